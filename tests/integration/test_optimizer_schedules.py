"""Learning-rate schedules and weight decay on real processes: the reference
job with cosine decay after a linear warm-up (and decoupled weight decay)
trains under one_device, multi_worker_mirrored and parameter_server; mirrored
with 2 devices and multi_worker_mirrored with 2 workers end bit-identical; and
a run resumed from a mid-run checkpoint ends where an uninterrupted one does,
since the schedule follows the checkpointed update counts."""
import json
import os
import unittest

from harness import ClusterTestCase, REFERENCE, requires_fashion_mnist

STEPS = 60
SCHEDULED = {
    "type": "sgd",
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "exclude_from_weight_decay": ["bias"],
    "learning_rate": {"schedule": "cosine", "initial": 0.05, "decay_steps": 50, "alpha": 0.1,
                      "warmup_steps": 10},
}


@requires_fashion_mnist
class OptimizerSchedulesTest(ClusterTestCase):

    def setUp(self):
        super().setUp()
        with open(REFERENCE) as f:
            job = json.load(f)
        job["optimizer"] = SCHEDULED
        self.config = os.path.join(self.tmp, "scheduled.json")
        with open(self.config, "w") as f:
            json.dump(job, f)

    def run_task(self, name, args, steps=STEPS, model_dir=None):
        model_dir = model_dir or os.path.join(self.tmp, name)
        task = self.start(list(args) + ["--config", self.config, "--epochs", "1", "--max-steps",
                                        str(steps), "--model-dir", model_dir], name=name)
        self.assert_exit(task, 0, timeout=240)
        return self.summary(model_dir)

    def checksums(self, summary):
        values = set(summary["param_checksums"].values())
        self.assertEqual(len(values), 1, summary["param_checksums"])
        return values.pop()

    def test_strategies_train_with_a_schedule_and_agree(self):
        runs = {
            "one_device": ["train"],
            "mirrored": ["train", "--strategy", "mirrored", "--devices", "2"],
            "multi_worker_mirrored": ["launch", "--workers", "2", "--strategy",
                                      "multi_worker_mirrored"],
            "parameter_server": ["launch", "--workers", "2", "--ps", "1"],
        }
        summaries = {name: self.run_task(name, args) for name, args in runs.items()}
        for name, s in summaries.items():
            self.assertEqual(s["strategy"], name)
            self.assertGreater(s["test_accuracy"], 0.6, (name, s["test_accuracy"]))
        for name in ["one_device", "mirrored", "multi_worker_mirrored"]:
            self.assertEqual(summaries[name]["final_step"], STEPS, name)
        self.assertEqual(self.checksums(summaries["mirrored"]),
                         self.checksums(summaries["multi_worker_mirrored"]))

    def test_a_resumed_run_ends_as_an_uninterrupted_one(self):
        straight = self.run_task("straight", ["train"])
        resumed_dir = os.path.join(self.tmp, "resumed")
        first = self.run_task("first", ["train", "--checkpoint-every-steps", "10"], steps=25,
                              model_dir=resumed_dir)
        self.assertEqual(first["final_step"], 25)
        # Step 25 lies in the cosine part, after the warm-up.
        resumed = self.run_task("resumed", ["train", "--restore", "latest"], model_dir=resumed_dir)
        self.assertIsNotNone(resumed["restored_from_step"])
        self.assertEqual(resumed["final_step"], STEPS)
        self.assertEqual(resumed["param_checksums"], straight["param_checksums"])


if __name__ == "__main__":
    unittest.main()
