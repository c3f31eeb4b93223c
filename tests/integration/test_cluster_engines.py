"""Clusters that other launchers describe: a Slurm step's environment (as srun
sets it, here for tasks on 127.0.0.1) and torchrun-style variables (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT, as torchrun and Kubeflow's PyTorchJob set
them). Each job must train and end with identical parameters on every worker."""
import os
import unittest

from harness import (ClusterTestCase, REFERENCE, free_port_range, free_ports,
                     requires_fashion_mnist)

SHORT = ["--strategy", "multi_worker_mirrored", "--config", REFERENCE, "--max-steps", "60",
         "--epochs", "1"]

# Blank (unset, to meshtrain) every variable another resolver would read, so
# that the environment the test runs in cannot pick the resolver.
BLANK = {name: "" for name in [
    "TF_CONFIG", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS",
    "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_STEP_TASKS_PER_NODE",
    "SLURM_TASKS_PER_NODE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE",
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "MESHTRAIN_HOST"]}


@requires_fashion_mnist
class ClusterEnginesTest(ClusterTestCase):

    def assert_trained(self, tasks, model_dir, workers):
        for task in tasks:
            self.assert_exit(task, 0, timeout=240)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], workers)
        self.assertEqual(summary["final_step"], 60)
        checksums = summary["param_checksums"]
        self.assertEqual(len(checksums), workers, checksums)
        self.assertEqual(len(set(checksums.values())), 1, checksums)

    def test_slurm_step_environment_trains_three_workers(self):
        base = free_port_range(3)
        model_dir = os.path.join(self.tmp, "slurm")
        tasks = []
        for rank in range(3):
            env = dict(BLANK, SLURM_JOB_ID="7", SLURM_STEP_ID="0", SLURM_PROCID=str(rank),
                       SLURM_LOCALID=str(rank), SLURM_NTASKS="3", SLURM_STEP_NODELIST="localhost",
                       SLURM_JOB_NODELIST="localhost", SLURM_STEP_TASKS_PER_NODE="3",
                       SLURM_TASKS_PER_NODE="3")
            tasks.append(self.start(["train"] + SHORT + ["--global-batch-size", "255",
                                                         "--port-base", str(base),
                                                         "--model-dir", model_dir],
                                    env=env, name=f"rank{rank}"))
        self.assert_trained(tasks, model_dir, 3)
        self.assertIn("cluster from Slurm (SLURM_PROCID=0", tasks[0].output())

    def test_torchrun_variables_train_two_workers(self):
        master_port = free_ports(1)[0]
        model_dir = os.path.join(self.tmp, "torchrun")
        tasks = []
        for rank in range(2):
            env = dict(BLANK, RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(master_port))
            tasks.append(self.start(["train"] + SHORT + ["--model-dir", model_dir], env=env,
                                    name=f"rank{rank}"))
        self.assert_trained(tasks, model_dir, 2)
        self.assertIn("cluster from torchrun-style variables (RANK=0, WORLD_SIZE=2",
                      tasks[0].output())

    def test_torchrun_check_config_says_where_addresses_come_from(self):
        env = dict(BLANK, RANK="1", WORLD_SIZE="2", MASTER_ADDR="10.0.0.1", MASTER_PORT="29500")
        task = self.start(["check-config"], env=env, name="check-config")
        self.assert_exit(task, 0, timeout=30)
        self.assertIn("torchrun-style rank 1 of 2 (local rank 0); this task connects to "
                      "10.0.0.1:29500", task.output())
        bad = self.start(["check-config"], env=dict(env, MASTER_PORT="x"), name="bad")
        self.assert_exit(bad, 1, timeout=30)
        self.assertIn("torchrun-style environment: MASTER_PORT='x'", bad.output())


if __name__ == "__main__":
    unittest.main()
