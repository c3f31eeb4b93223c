"""ParameterServer on real processes: the reference job trains to the book's
accuracy with 2 workers and 2 ps tasks, greedy placement with partitioning
balances the ps tasks, the sparse click-through job beats the constant
predictor, and the staleness controls and backup workers do what they say."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from harness import (BIN, CONFIGS, ClusterTestCase, REFERENCE, make_cluster, requires,
                     requires_fashion_mnist)

SPARSE_CTR = os.path.join(CONFIGS, "sparse_ctr.json")
# A short run of the reference job, for the options that need no accuracy.
SHORT = ["--config", REFERENCE, "--epochs", "1", "--max-steps", "150"]


class ParameterServerTestCase(ClusterTestCase):

    def launch(self, workers, ps, args, timeout=240):
        model_dir = os.path.join(self.tmp, f"run{len(self.tasks)}")
        task = self.start(["launch", "--workers", str(workers), "--ps", str(ps),
                           "--model-dir", model_dir] + list(args), name="launch")
        self.assert_exit(task, 0, timeout=timeout)
        return self.summary(model_dir), task.output()

    def assert_each_partition_on_one_ps(self, summary, num_ps):
        # Every variable is on exactly one ps, or split into partitions that
        # cover its rows once, each on one ps.
        for name, parts in summary["placement"].items():
            self.assertGreaterEqual(len(parts), 1, name)
            next_row = 0
            for part in parts:
                self.assertIn(part["ps"], range(num_ps), name)
                self.assertEqual(part["rows"][0], next_row, name)
                next_row = part["rows"][1]
        self.assertEqual(len(summary["ps_bytes"]), num_ps)


@requires_fashion_mnist
class ReferenceJobTest(ParameterServerTestCase):

    def test_two_workers_two_ps_reach_the_reference_accuracy(self):
        # launch picks parameter_server by itself when there are ps tasks.
        summary, out = self.launch(2, 2, ["--config", REFERENCE])
        self.assertEqual(summary["strategy"], "parameter_server")
        self.assertEqual(summary["num_workers"], 2)
        self.assertEqual(summary["num_ps"], 2)
        self.assertEqual(summary["epochs"], 10)
        self.assertGreaterEqual(summary["test_accuracy"], 0.85, summary["history"])
        self.assert_each_partition_on_one_ps(summary, 2)
        # Round-robin, no partitioning: whole variables alternate over the ps tasks.
        self.assertEqual({name: parts[0]["ps"] for name, parts in summary["placement"].items()},
                         {"dense_0/kernel": 0, "dense_0/bias": 1, "dense_1/kernel": 0,
                          "dense_1/bias": 1, "dense_2/kernel": 0, "dense_2/bias": 1})
        self.assertIn("placement: round_robin over 2 ps task(s)", out)
        self.assertEqual(summary["data_path"], "shm")
        # Both workers trained: the ps tasks counted both workers' gradients.
        self.assertEqual(set(summary["samples_per_sec_by_worker"]), {"worker:0", "worker:1"})
        self.assertGreater(summary["pushes"]["applied"], summary["chief_pushes"]["applied"])

    def test_greedy_placement_with_partitions_balances_the_ps_tasks(self):
        summary, out = self.launch(2, 2, ["--config", REFERENCE, "--placement", "greedy",
                                          "--max-shard-bytes", "65536"])
        self.assertGreaterEqual(summary["test_accuracy"], 0.85, summary["history"])
        self.assert_each_partition_on_one_ps(summary, 2)
        low, high = min(summary["ps_bytes"]), max(summary["ps_bytes"])
        self.assertLessEqual(high - low, 0.10 * high, summary["ps_bytes"])
        kernel = summary["placement"]["dense_0/kernel"]
        self.assertGreater(len(kernel), 1)
        self.assertEqual({p["ps"] for p in kernel}, {0, 1})
        self.assertTrue(all(p["bytes"] <= 65536 for parts in summary["placement"].values() for p in parts))
        self.assertIn("placement: greedy over 2 ps task(s), partitioning: max_shard_bytes 65536", out)


class SparseJobTest(ParameterServerTestCase):

    def test_sparse_ctr_beats_the_constant_predictor(self):
        summary, out = self.launch(2, 2, ["--config", SPARSE_CTR])
        table = summary["placement"]["embedding/table"]
        self.assertEqual({p["ps"] for p in table}, {0, 1})
        self.assertEqual(table[-1]["rows"][1], 1 << 20)
        # docs/strategies.md: at least 10% below the loss of the base rate.
        self.assertLess(summary["test_loss"], 0.9 * summary["baseline_test_loss"], summary)
        self.assertGreater(summary["test_auc"], 0.7)
        self.assertIn("for the base rate", out)


@requires_fashion_mnist
class UpdateRulesTest(ParameterServerTestCase):

    def test_grpc_data_path_trains(self):
        summary, _ = self.launch(2, 1, SHORT + ["--rpc-layer", "grpc"])
        self.assertEqual(summary["data_path"], "grpc")
        self.assertEqual(summary["final_step"], 150)
        self.assertLess(summary["train_loss"], 1.5)

    def test_staleness_bound_drops_and_scaling_scales(self):
        unbounded, _ = self.launch(2, 1, SHORT)
        self.assertEqual(unbounded["pushes"]["dropped_stale"], 0)
        self.assertEqual(unbounded["pushes"]["scaled"], 0)
        # Two workers interleave: many gradients are one update old.
        self.assertGreater(unbounded["pushes"]["mean_staleness"], 0.1)
        bounded, _ = self.launch(2, 1, SHORT + ["--max-staleness", "0"])
        self.assertGreater(bounded["pushes"]["dropped_stale"], 0)
        self.assertEqual(bounded["pushes"]["applied"] + bounded["pushes"]["dropped_stale"],
                         bounded["pushes"]["pushes"])
        scaled, _ = self.launch(2, 1, SHORT + ["--staleness-scaling"])
        self.assertGreater(scaled["pushes"]["scaled"], 0)
        self.assertEqual(scaled["pushes"]["dropped_stale"], 0)

    def test_warmup_lets_the_chief_train_alone_first(self):
        summary, out = self.launch(2, 1, SHORT + ["--warmup-steps", "40"])
        self.assertIn("[worker:1]", out)
        self.assertRegex(out, r"\[worker:1\].*waited [0-9.]+s for the chief's 40 warm-up steps")
        # The ps counted no gradient of worker:1 during the warm-up.
        self.assertEqual(summary["pushes"]["dropped_warmup"], 0)

    def test_synchronous_steps_with_a_backup_worker(self):
        summary, _ = self.launch(3, 1, ["--config", REFERENCE, "--epochs", "1", "--max-steps", "60",
                                        "--global-batch-size", "255", "--sync-replicas", "2"])
        self.assertEqual(summary["update_rules"]["sync_replicas"], 2)
        pushes = summary["pushes"]
        self.assertEqual(pushes["applied"] + pushes["dropped_stale"], pushes["pushes"])
        self.assertLess(summary["train_loss"], 2.0)


@requires_fashion_mnist
class DeadPsTest(ParameterServerTestCase):

    def test_killed_ps_is_named_by_every_worker(self):
        # Recovery is the next step (checkpoints); until then a lost ps must
        # stop the workers at once, naming it, not leave them waiting.
        cluster = make_cluster(workers=2, ps=1)
        args = ["--config", REFERENCE, "--epochs", "50", "--strategy", "parameter_server"]
        workers = [self.start_cluster_task(cluster, "worker", i, args) for i in range(2)]
        ps = self.start_cluster_task(cluster, "ps", 0, args)
        self.assertTrue(workers[0].wait_for_line(lambda l: l.startswith("epoch 1/"), 120),
                        workers[0].output())
        ps.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        for worker in workers:
            code = worker.wait(60)
            self.assertNotEqual(code, 0, worker.output())
            self.assertLess(time.monotonic() - killed_at, 20)
            self.assertIn("ps:0", worker.output()[-2000:])


@requires_fashion_mnist
@requires(shutil.which("mpirun"), "Open MPI's mpirun is not installed (apt-get install openmpi-bin)")
class MpirunTest(ParameterServerTestCase):

    def test_mpirun_with_a_ps_rank(self):
        # The last rank is the ps: its server registers the ParameterServer
        # service before it knows its role.
        model_dir = os.path.join(self.tmp, "mpi")
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl_tcp_if_include", "lo",
               "--mca", "oob_tcp_if_include", "lo", "-np", "3", BIN, "train", "--model-dir", model_dir,
               "--strategy", "parameter_server", "--mpi-ps", "1"] + SHORT
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], 2)
        self.assertEqual(summary["num_ps"], 1)
        self.assertEqual(summary["pushes"]["pushes"], 2 * 150 * 6)


if __name__ == "__main__":
    unittest.main()
