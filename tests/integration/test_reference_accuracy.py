"""The reference job (configs/fashion_mnist_mlp.json, 10 epochs) reaches the
book's accuracy under every synchronous strategy, changing only the strategy
flags: the same job config runs unchanged."""
import os
import unittest

from harness import (ClusterTestCase, REFERENCE, requires_fashion_mnist)

REQUIRED_FIELDS = ["strategy", "num_workers", "num_ps", "global_batch_size", "epochs", "final_step",
                   "train_loss", "test_accuracy", "samples_per_sec", "wall_seconds"]


@requires_fashion_mnist
class ReferenceAccuracyTest(ClusterTestCase):

    def run_job(self, name, args):
        model_dir = os.path.join(self.tmp, name)
        task = self.start(list(args) + ["--config", REFERENCE, "--model-dir", model_dir], name=name)
        self.assert_exit(task, 0, timeout=300)
        summary = self.summary(model_dir)
        for field in REQUIRED_FIELDS:
            self.assertIn(field, summary)
        self.assertEqual(summary["epochs"], 10)
        self.assertEqual(summary["final_step"], 2350)  # ceil(60000 / 256) per epoch
        self.assertGreaterEqual(summary["test_accuracy"], 0.86, summary)
        self.assertGreater(summary["samples_per_sec"], 0)
        return summary

    def test_one_device(self):
        s = self.run_job("one_device", ["train"])
        self.assertEqual(s["strategy"], "one_device")
        self.assertEqual(s["num_workers"], 1)

    def test_mirrored_two_cpu_replicas(self):
        s = self.run_job("mirrored", ["train", "--strategy", "mirrored", "--devices", "cpu:0,cpu:1"])
        self.assertEqual(s["num_replicas"], 2)
        self.assertEqual(s["cross_device_ops"], "reduce_to_one_device")

    def test_central_storage_two_replicas(self):
        s = self.run_job("central", ["train", "--strategy", "central_storage", "--devices", "2"])
        self.assertEqual(s["num_replicas"], 2)
        self.assertEqual(s["parameter_device"], "cpu:0")

    def test_multi_worker_mirrored_two_workers(self):
        s = self.run_job("mwms", ["launch", "--workers", "2", "--strategy", "multi_worker_mirrored"])
        self.assertEqual(s["num_workers"], 2)
        self.assertEqual(len(set(s["param_checksums"].values())), 1)

    def test_multi_worker_mirrored_two_workers_by_two_replicas(self):
        s = self.run_job("mwms2x2", ["launch", "--workers", "2", "--strategy", "multi_worker_mirrored",
                                     "--devices", "cpu:0,cpu:1"])
        self.assertEqual(s["num_replicas"], 4)
        self.assertEqual(s["replicas_per_worker"], 2)
        self.assertEqual(len(set(s["param_checksums"].values())), 1)


if __name__ == "__main__":
    unittest.main()
