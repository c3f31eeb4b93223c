"""Hostile and mistaken input on real processes (issue 20, items 4, 5, 7, 8).

Each case once crashed, hung or silently did the wrong thing:
- a 103 KB TF_CONFIG of arrays nested 51,500 deep killed the process with
  SIGSEGV (exit 139); now every JSON the program reads is refused past 64
  levels, with a short message;
- junk hosts and two spellings of one loopback endpoint passed TF_CONFIG
  validation, after which one task failed to bind and the other waited out
  the startup timeout;
- a model directory whose every checkpoint is corrupt started training from
  scratch with exit 0; a manifest whose step disagrees with its directory was
  restored;
- a configuration error under `launch` (a global batch that does not split over
  3 workers) waited for a recovery that could never come; a global batch larger
  than the dataset was accepted.
The jobs are the small synthetic config (no dataset needed), so the whole file
runs in well under a minute.
"""
import glob
import json
import os
import re
import time
import unittest

from harness import CONFIGS, ClusterTestCase, free_ports

SMALL = os.path.join(CONFIGS, "synthetic_small.json")  # 4096 examples, batch 128: 32 steps/epoch
PART = "model-00000-of-00001.safetensors"
DEEP = "[" * 51500 + "]" * 51500  # 103 KB
MAX_LINE = 1000  # no line of output quotes an unbounded value


class BadInputTest(ClusterTestCase):

    def run_task(self, args, env=None, timeout=60, name="task"):
        """Runs meshtrain to its end; returns (exit status, output)."""
        task = self.start(args, env=env, name=name)
        code = task.wait(timeout)
        return code, task.output()

    def assert_bounded(self, output):
        for line in output.splitlines():
            self.assertLess(len(line), MAX_LINE, f"an unbounded line: {line[:300]}...")

    def check_config(self, tf_config):
        return self.run_task(["check-config", "--tf-config", tf_config], timeout=20,
                             name="check-config")

    def tf_config(self, workers, index=0):
        return json.dumps({"cluster": {"worker": workers},
                           "task": {"type": "worker", "index": index}})

    # ---- item 4: nesting depth ----

    def test_deeply_nested_tf_config_is_an_error_not_a_crash(self):
        code, out = self.check_config(DEEP)
        self.assertEqual(code, 1, out)  # check-config's status for a bad TF_CONFIG
        self.assertIn("deeper than 64 levels", out)
        self.assert_bounded(out)
        code, out = self.run_task(["train", "--config", SMALL], env={"TF_CONFIG": DEEP},
                                  timeout=30, name="train")
        self.assertEqual(code, 1, out)  # not -11 / 139
        self.assertIn("environment variable TF_CONFIG", out)
        self.assertIn("deeper than 64 levels", out)
        self.assert_bounded(out)

    def test_deeply_nested_job_config_is_a_usage_error(self):
        path = os.path.join(self.tmp, "deep.json")
        with open(path, "w") as f:
            f.write('{"name": ' + DEEP + "}")
        code, out = self.run_task(["train", "--config", path], timeout=30, name="train")
        self.assertEqual(code, 2, out)
        self.assertIn("deeper than 64 levels", out)
        self.assert_bounded(out)

    # ---- item 5: hosts and endpoints ----

    def test_junk_hosts_are_refused_naming_the_field(self):
        port = free_ports(1)[0]
        for host, expect in [("*", "has '*' in its host"), ("a/b", "has '/' in its host"),
                             ("256.256.256.256", "is not an IPv4 address"),
                             ("[not-ipv6]", "not an IPv6 address"),
                             ("h" * 70000, "has a host of 70000 bytes"),
                             ("a\x01b", "contains a control character")]:
            code, out = self.check_config(self.tf_config(["localhost:1", f"{host}:{port}"]))
            self.assertEqual(code, 1, out[:500])
            self.assertIn("TF_CONFIG cluster.worker[1]: address ", out)
            self.assertIn(expect, out)
            self.assertNotIn("\x01", out)
            self.assert_bounded(out)

    def test_two_spellings_of_one_loopback_endpoint_fail_at_once(self):
        port = free_ports(1)[0]
        config = self.tf_config([f"localhost:{port}", f"127.0.0.1:{port}"], index=1)
        code, out = self.check_config(config)
        self.assertEqual(code, 1, out)
        self.assertIn(f"TF_CONFIG cluster.worker[1]: address '127.0.0.1:{port}' names the same "
                      f"endpoint as worker:0 ('localhost:{port}')", out)
        started = time.monotonic()
        code, out = self.run_task(["train", "--config", SMALL], env={"TF_CONFIG": config},
                                  timeout=30, name="worker:1")
        self.assertEqual(code, 1, out)
        self.assertIn("names the same endpoint", out)
        self.assertLess(time.monotonic() - started, 20)  # not the startup timeout

    # ---- item 7: checkpoints ----

    def train_small(self, model_dir, *extra, epochs=1):
        return self.run_task(["train", "--config", SMALL, "--model-dir", model_dir, "--epochs",
                              str(epochs), "--checkpoint-every-steps", "10", "--max-to-keep",
                              "5"] + list(extra), timeout=60, name="train")

    def test_every_checkpoint_corrupt_is_refused_unless_restore_none(self):
        model_dir = os.path.join(self.tmp, "run")
        code, out = self.train_small(model_dir)
        self.assertEqual(code, 0, out)
        parts = sorted(glob.glob(os.path.join(model_dir, "ckpt-*", PART)))
        self.assertGreaterEqual(len(parts), 2, out)
        for part in parts:
            with open(part, "r+b") as f:
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
                f.seek(-1, os.SEEK_END)
                f.write(bytes([last[0] ^ 1]))
        code, out = self.train_small(model_dir, epochs=2)
        self.assertEqual(code, 1, out)
        self.assertIn(f"every checkpoint in {model_dir} is corrupt", out)
        self.assertIn(os.path.join(model_dir, "ckpt-32", PART), out)
        self.assertIn("--restore none", out)
        code, out = self.train_small(model_dir, "--restore", "none", epochs=2)
        self.assertEqual(code, 0, out)
        self.assertIn("--restore none: training starts from the initial values", out)
        with open(os.path.join(model_dir, "summary.json")) as f:
            self.assertIsNone(json.load(f)["restored_from_step"])

    def test_a_manifest_step_that_disagrees_with_its_directory_is_not_restored(self):
        model_dir = os.path.join(self.tmp, "run")
        code, out = self.train_small(model_dir)
        self.assertEqual(code, 0, out)
        # The saver writes in the background and skips a boundary while a
        # write is in flight: the one before ckpt-32 is whichever it wrote.
        steps = sorted(int(d.split("-")[1]) for d in os.listdir(model_dir)
                       if d.startswith("ckpt-"))
        self.assertEqual(steps[-1], 32, steps)
        self.assertGreaterEqual(len(steps), 2, steps)
        index = os.path.join(model_dir, "ckpt-32", "index.json")
        with open(index) as f:
            text = f.read()
        text, n = re.subn(r'"step": 32\b', '"step": 2147483648', text)
        self.assertEqual(n, 1, text[:500])
        with open(index, "w") as f:
            f.write(text)
        code, out = self.train_small(model_dir, epochs=2)
        self.assertEqual(code, 0, out)
        self.assertIn("says step 2147483648 but the directory is named ckpt-32", out)
        with open(os.path.join(model_dir, "summary.json")) as f:
            self.assertEqual(json.load(f)["restored_from_step"], steps[-2])

    # ---- item 8: configuration errors end at once ----

    def test_a_batch_that_does_not_split_over_workers_ends_launch_at_once(self):
        started = time.monotonic()
        code, out = self.run_task(["launch", "--workers", "3", "--strategy",
                                   "multi_worker_mirrored", "--config", SMALL,
                                   "--global-batch-size", "128", "--model-dir",
                                   os.path.join(self.tmp, "run")], timeout=60, name="launch")
        self.assertNotEqual(code, 0, out)
        self.assertIn("global batch size 128 does not divide by 3", out)
        self.assertNotIn("recovering: waiting", out)
        self.assertNotIn("training failed after -1 steps", out)
        self.assertLess(time.monotonic() - started, 45, out)

    def test_a_global_batch_larger_than_the_dataset_is_refused(self):
        code, out = self.run_task(["train", "--config", SMALL, "--global-batch-size",
                                   "1000000000000"], timeout=30, name="train")
        self.assertEqual(code, 1, out)
        self.assertIn("global batch size 1000000000000 is larger than the training set "
                      "(4096 examples)", out)


if __name__ == "__main__":
    unittest.main()
