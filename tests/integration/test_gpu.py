"""GPU training on real processes (labels integration and gpu): the reference
job on one GPU, Mirrored on two logical GPUs of one GPU, Mirrored and
MultiWorkerMirrored over NCCL on two GPUs, the ring across workers with GPU
replicas, and a dead NCCL peer. Where no GPU (or too few) is visible the tests
skip, saying why."""
import os
import signal
import subprocess
import time
import unittest

from harness import (BIN, REFERENCE, ClusterTestCase, have_fashion_mnist, make_cluster, tf_config)


def probe_gpu(index):
    """None if gpu:index trains a step, else the reason it cannot."""
    proc = subprocess.run([BIN, "train", "--config", REFERENCE, "--devices", f"gpu:{index}",
                           "--max-steps", "1", "--epochs", "1", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return None
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"


# Why the whole module skips (None: it runs). setUpModule raises the skip, not
# the import, so that `python3 -m unittest test_gpu` skips as discovery does.
if not have_fashion_mnist():
    print("MESHTRAIN_GPU_TESTS_SKIPPED: Fashion-MNIST is not installed")
    SKIP_REASON = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
elif (NO_GPU := probe_gpu(0)) is not None:
    print(f"MESHTRAIN_GPU_TESTS_SKIPPED: {NO_GPU}")
    SKIP_REASON = f"no usable GPU: {NO_GPU}"
else:
    SKIP_REASON = None
NO_SECOND_GPU = probe_gpu(1) if SKIP_REASON is None else SKIP_REASON


def setUpModule():
    if SKIP_REASON is not None:
        raise unittest.SkipTest(SKIP_REASON)


class GpuTest(ClusterTestCase):

    def train(self, name, args, timeout=600):
        model_dir = os.path.join(self.tmp, name)
        task = self.start(["train", "--config", REFERENCE, "--model-dir", model_dir] + list(args), name=name)
        self.assert_exit(task, 0, timeout)
        return self.summary(model_dir), task

    def test_reference_job_on_one_gpu_and_mirrored_on_two_logical_gpus(self):
        one, _ = self.train("one_gpu", ["--devices", "gpu:0"])
        self.assertEqual(one["devices"], ["gpu:0"])
        self.assertGreaterEqual(one["test_accuracy"], 0.86, one)
        logical, _ = self.train("logical", ["--strategy", "mirrored", "--devices", "gpu:0,gpu:1",
                                            "--logical-gpus", "2"])
        self.assertEqual(logical["num_replicas"], 2)
        self.assertEqual(logical["cross_device_ops"], "on_device_reduce")
        self.assertGreaterEqual(logical["test_accuracy"], 0.86, logical)
        self.assertLess(abs(logical["test_accuracy"] - one["test_accuracy"]), 0.015)
        print(f"one GPU: {one['samples_per_sec']:.0f} samples/s, accuracy {one['test_accuracy']:.4f}; "
              f"2 logical GPUs: {logical['samples_per_sec']:.0f} samples/s, "
              f"accuracy {logical['test_accuracy']:.4f}")

    def test_memory_limit_too_small_is_named(self):
        model_dir = os.path.join(self.tmp, "tiny")
        task = self.start(["train", "--config", REFERENCE, "--devices", "gpu:0", "--max-steps", "2",
                           "--gpu-memory-limit", "1MiB", "--model-dir", model_dir], name="tiny")
        self.assertNotEqual(task.wait(120), 0)
        out = task.output()
        self.assertIn("RESOURCE_EXHAUSTED", out)
        self.assertIn("gpu:0", out)
        self.assertIn("--gpu-memory-limit", out)

    def test_ring_across_workers_with_gpu_replicas(self):
        # Both workers on GPU 0; gradients staged through the host for the ring.
        cluster = make_cluster(workers=2)
        model_dir = os.path.join(self.tmp, "ring")
        args = ["--config", REFERENCE, "--max-steps", "60", "--epochs", "1", "--devices", "gpu:0",
                "--strategy", "multi_worker_mirrored", "--communication", "ring",
                "--gpu-memory-limit", "2GiB", "--model-dir", model_dir]
        tasks = [self.start_cluster_task(cluster, "worker", i, args) for i in range(2)]
        for t in tasks:
            self.assert_exit(t, 0, 180)
        summary = self.summary(model_dir)
        self.assertTrue(summary["communication"].startswith("ring"), summary["communication"])
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])

    @unittest.skipIf(NO_SECOND_GPU is not None, f"needs a second GPU: {NO_SECOND_GPU}")
    def test_mirrored_on_two_gpus_uses_nccl(self):
        summary, _ = self.train("two_gpus", ["--strategy", "mirrored", "--devices", "gpu:0,gpu:1"])
        self.assertEqual(summary["cross_device_ops"], "nccl")
        self.assertGreaterEqual(summary["test_accuracy"], 0.86, summary)

    def start_nccl_worker(self, cluster, index, args):
        env = {"TF_CONFIG": tf_config(cluster, "worker", index), "CUDA_VISIBLE_DEVICES": str(index)}
        return self.start(["train"] + list(args), env=env, name=f"worker:{index}")

    @unittest.skipIf(NO_SECOND_GPU is not None, f"needs a second GPU: {NO_SECOND_GPU}")
    def test_multi_worker_nccl_on_two_gpus(self):
        cluster = make_cluster(workers=2)
        model_dir = os.path.join(self.tmp, "nccl")
        args = ["--config", REFERENCE, "--max-steps", "100", "--epochs", "1", "--devices", "gpu:0",
                "--strategy", "multi_worker_mirrored", "--communication", "nccl", "--model-dir", model_dir]
        tasks = [self.start_nccl_worker(cluster, i, args) for i in range(2)]
        for t in tasks:
            self.assert_exit(t, 0, 180)
        summary = self.summary(model_dir)
        self.assertEqual(summary["communication"], "nccl")
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])

    @unittest.skipIf(NO_SECOND_GPU is not None, f"needs a second GPU: {NO_SECOND_GPU}")
    def test_dead_nccl_peer_ends_the_survivor_within_30s(self):
        cluster = make_cluster(workers=2)
        args = ["--config", REFERENCE, "--epochs", "200", "--devices", "gpu:0",
                "--strategy", "multi_worker_mirrored", "--communication", "nccl"]
        tasks = [self.start_nccl_worker(cluster, i, args) for i in range(2)]
        self.assertTrue(tasks[0].wait_for_line(lambda l: l.startswith("epoch 1/"), 180), tasks[0].output())
        tasks[1].kill(signal.SIGKILL)
        killed_at = time.monotonic()
        code = tasks[0].wait(60)
        took = time.monotonic() - killed_at
        self.assertNotEqual(code, 0, tasks[0].output())
        self.assertLess(took, 30, f"the survivor took {took:.1f}s")
        self.assertIn("worker:1", tasks[0].output()[-3000:])


if __name__ == "__main__":
    unittest.main()
