"""A full disk must not lose work (docs/fault_tolerance.md, "A full disk").

The model directory is a 3 MB tmpfs this test mounts: the reference job's
checkpoints are about 2.1 MB, so the first fits and every later one does not.
The job must train to the end, leave no partial files, say how much space a
checkpoint needs and where, write summary.json and exit non-zero because its
final checkpoint did not fit; a resume on the same full directory must read the
newest checkpoint and say what to free.
"""
import os
import re
import subprocess
import tempfile
import unittest

import harness

TRAIN_ARGS = ["--config", harness.REFERENCE, "--epochs", "1", "--max-steps", "200",
              "--checkpoint-every-steps", "50"]


def can_mount_tmpfs():
    """Whether this process may mount a tmpfs (root, mount(2) allowed)."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory(prefix="meshtrain-mount-probe-") as d:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                          capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", d], capture_output=True)
    return True


def temp_files(directory):
    return [os.path.join(root, name) for root, _, names in os.walk(directory)
            for name in names if ".tmp" in name]


@harness.requires_fashion_mnist
@harness.requires(can_mount_tmpfs(), "cannot mount a tmpfs (needs root and mount(2))")
class FullDiskTest(harness.ClusterTestCase):

    def setUp(self):
        super().setUp()
        self.model_dir = os.path.join(self.tmp, "model")
        os.mkdir(self.model_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", self.model_dir],
                       check=True)

    def tearDown(self):
        # Unmounted also after a failure: tasks first, then the mount, then the
        # temporary directory it sits in (ClusterTestCase.tearDown).
        for t in self.tasks:
            t.kill()
            t.proc.wait(timeout=10)
        subprocess.run(["umount", "-l", self.model_dir], capture_output=True)
        super().tearDown()

    def train(self):
        task = self.start(["train"] + TRAIN_ARGS + ["--model-dir", self.model_dir])
        code = task.wait(timeout=60)
        return code, task.output()

    def test_training_goes_on_and_resume_reads_the_newest_checkpoint(self):
        code, out = self.train()
        # Trained to the end, with the periodic saves failing and retried.
        self.assertIn("done: 200 steps", out)
        self.assertIn("ckpt-50 committed", out)
        for step in (100, 150):
            self.assertRegex(out, rf"checkpoint at step {step}: no space left in "
                                  rf"{re.escape(self.model_dir)}: a checkpoint needs about \d+ bytes")
        self.assertIn("the next interval tries again", out)
        self.assertEqual(temp_files(self.model_dir), [])
        self.assertEqual(sorted(d for d in os.listdir(self.model_dir) if d.startswith("ckpt-")),
                         ["ckpt-50"])
        # The documented outcome: summary.json written, exit non-zero with the fix.
        self.assertNotEqual(code, 0, out)
        self.assertRegex(out, rf"final checkpoint at step 200: no space left in "
                              rf"{re.escape(self.model_dir)}")
        self.assertIn("point --model-dir elsewhere", out)
        summary = self.summary(self.model_dir)
        self.assertEqual(summary["final_step"], 200)
        self.assertIn("no space left", summary["final_checkpoint"])

        # Resume on the same, still full, directory.
        code, out = self.train()
        self.assertIn(f"restore: {self.model_dir}/ckpt-50 (step 50", out)
        self.assertRegex(out, r"free at least \d+ bytes there")
        self.assertIn("done: 200 steps", out)
        self.assertNotEqual(code, 0, out)
        self.assertEqual(temp_files(self.model_dir), [])


if __name__ == "__main__":
    unittest.main()
