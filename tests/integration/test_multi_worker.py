"""MultiWorkerMirrored on real processes: the cluster trains, workers agree,
late workers are waited for, missing and dead tasks are named."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from harness import (BIN, ClusterTestCase, REFERENCE, make_cluster, requires, requires_fashion_mnist)

# A short run of the reference job: enough steps that every worker trains.
SHORT = ["--config", REFERENCE, "--max-steps", "60", "--epochs", "1"]


@requires_fashion_mnist
class MultiWorkerTest(ClusterTestCase):

    def launch(self, workers, extra=()):
        model_dir = os.path.join(self.tmp, f"w{workers}")
        task = self.start(["launch", "--workers", str(workers), "--model-dir", model_dir,
                           "--strategy", "multi_worker_mirrored"] + SHORT + list(extra), name="launch")
        self.assert_exit(task, 0, timeout=180)
        return self.summary(model_dir), task

    def test_two_workers_end_with_identical_parameters(self):
        summary, task = self.launch(2)
        self.assertEqual(summary["strategy"], "multi_worker_mirrored")
        self.assertEqual(summary["num_workers"], 2)
        self.assertEqual(summary["final_step"], 60)
        checksums = summary["param_checksums"]
        self.assertEqual(sorted(checksums), ["worker:0", "worker:1"])
        self.assertEqual(len(set(checksums.values())), 1, checksums)
        # Output is prefixed by task.
        self.assertRegex(task.output(), r"\[worker:1\] ")

    def test_three_workers_end_with_identical_parameters(self):
        # 256 does not divide by 3: the run must say so ...
        model_dir = os.path.join(self.tmp, "bad")
        bad = self.start(["launch", "--workers", "3", "--model-dir", model_dir] + SHORT, name="launch")
        code = bad.wait(120)
        self.assertNotEqual(code, 0)
        self.assertIn("does not divide by 3", bad.output())
        # ... and a batch that divides trains, all three workers agreeing.
        summary, _ = self.launch(3, ["--global-batch-size", "255"])
        self.assertEqual(summary["num_workers"], 3)
        self.assertEqual(len(summary["param_checksums"]), 3)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])

    def test_grpc_rpc_layer_gives_the_same_parameters(self):
        fast, _ = self.launch(2)
        slow, _ = self.launch(2, ["--rpc-layer", "grpc"])
        self.assertEqual(slow["communication"], "ring over grpc")
        self.assertEqual(fast["communication"], "ring over shm")
        self.assertEqual(fast["param_checksums"], slow["param_checksums"])

    def test_late_worker_is_waited_for(self):
        cluster = make_cluster(workers=2)
        model_dir = os.path.join(self.tmp, "late")
        args = SHORT + ["--strategy", "multi_worker_mirrored", "--model-dir", model_dir]
        first = self.start_cluster_task(cluster, "worker", 0, args)
        # The chief is up and waiting for its peer before the peer exists.
        self.assertTrue(first.wait_for_line(lambda l: "waiting" in l or "registered" in l or "startup" in l, 30)
                        or first.proc.poll() is None)
        time.sleep(3)  # "several seconds" late: the delay is the subject of the test
        self.assertIsNone(first.proc.poll(), first.output())
        second = self.start_cluster_task(cluster, "worker", 1, args)
        self.assert_exit(first, 0, 120)
        self.assert_exit(second, 0, 120)
        summary = self.summary(model_dir)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1)

    def test_missing_task_fails_by_the_deadline_naming_it(self):
        cluster = make_cluster(workers=2)
        args = SHORT + ["--strategy", "multi_worker_mirrored", "--startup-timeout", "3s"]
        only = self.start_cluster_task(cluster, "worker", 0, args)
        code = only.wait(60)
        self.assertNotEqual(code, 0)
        self.assertLess(only.elapsed(), 30)
        out = only.output()
        self.assertIn("worker:1", out)
        self.assertIn(cluster["worker"][1], out)

    def test_killed_worker_is_named_by_every_survivor_within_30s(self):
        cluster = make_cluster(workers=3)
        args = ["--config", REFERENCE, "--epochs", "50", "--global-batch-size", "255",
                "--strategy", "multi_worker_mirrored"]
        tasks = [self.start_cluster_task(cluster, "worker", i, args) for i in range(3)]
        # Wait until training runs (the chief prints its first epoch).
        self.assertTrue(tasks[0].wait_for_line(lambda l: l.startswith("epoch 1/"), 120), tasks[0].output())
        tasks[1].kill(signal.SIGKILL)
        killed_at = time.monotonic()
        for survivor in (tasks[0], tasks[2]):
            code = survivor.wait(60)
            took = time.monotonic() - killed_at
            self.assertNotEqual(code, 0, survivor.output())
            self.assertLess(took, 30, f"{survivor.name} took {took:.1f}s")
            self.assertIn("worker:1", survivor.output().split("\n")[-1] + survivor.output()[-2000:])


@requires_fashion_mnist
@requires(shutil.which("mpirun"), "Open MPI's mpirun is not installed (apt-get install openmpi-bin)")
class MpirunTest(ClusterTestCase):

    def test_mpirun_two_ranks_train(self):
        model_dir = os.path.join(self.tmp, "mpi")
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl_tcp_if_include", "lo",
               "--mca", "oob_tcp_if_include", "lo", "-np", "2", BIN, "train", "--model-dir", model_dir,
               "--strategy", "multi_worker_mirrored"] + SHORT
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], 2)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1)


if __name__ == "__main__":
    unittest.main()
