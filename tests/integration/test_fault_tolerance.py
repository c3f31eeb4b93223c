"""Checkpoints and recovery on real processes (docs/fault_tolerance.md).

MultiWorkerMirrored jobs of the reference model, short enough for CI (3 epochs
of 2 workers, a checkpoint every 50 steps): a worker or the chief is SIGKILLed
at a random moment under `meshtrain launch --max-restarts 2`, and the job must
finish as an undisturbed run of the same job and seed does. Synchronous
training is deterministic, so a resume that restores values, optimizer slots
and the input position exactly ends with the very same parameters (checksums
equal), which is stricter than the issue's "test accuracy within 0.01" (also
asserted). Checkpoints themselves: a SIGKILL during a write, a flipped byte and
a truncated file, an evaluator, and a checkpoint of 2 workers restored into
one_device.
"""
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
import unittest

from harness import (committed_steps, ClusterTestCase, LOG_TIME, REFERENCE, UndisturbedBaselineTestCase,
                     NUMPY_PYTHON, committed, have_numpy_python, make_cluster, now_of_day, requires,
                     requires_fashion_mnist, started_pid, time_of_day)

EPOCHS = 3  # 705 steps of global batch 256
JOB = ["--config", REFERENCE, "--epochs", str(EPOCHS), "--checkpoint-every-steps", "50"]
MWMS = ["--workers", "2", "--strategy", "multi_worker_mirrored"]
PART = "model-00000-of-00001.safetensors"

@requires_fashion_mnist
class FaultToleranceTest(UndisturbedBaselineTestCase):
    BASELINE_NAME = "ft"
    BASELINE_ARGS = MWMS + JOB

    def launch(self, model_dir, extra=()):
        return self.start(["launch", "--model-dir", model_dir, "--max-restarts", "2"] + MWMS + JOB +
                          list(extra), name="launch")

    def kill_and_recover(self, victim):
        """SIGKILLs `victim` at a random moment of training; returns the summary and figures."""
        model_dir = os.path.join(self.tmp, "run")
        job = self.launch(model_dir)
        # A random moment of training: after a random checkpoint of the first
        # 350 steps (of 702), a random fraction of a step period later.
        # Never near the end: a task killed after the chief finished would
        # have no cluster to rejoin.
        step = random.randrange(50, 351, 50)
        self.assertTrue(job.wait_for_line(lambda l: committed(l, step), 120), job.output())
        delay = random.uniform(0.0, 0.1)
        print(f"\n{self.id()}: killing {victim} {delay:.3f}s after ckpt-{step}", flush=True)
        time.sleep(delay)  # the randomness is the subject, not a synchronisation
        pid = started_pid(job, victim)
        self.assertIsNotNone(pid, job.output())
        killed_at = now_of_day()
        os.kill(pid, signal.SIGKILL)
        self.assert_exit(job, 0, timeout=240)
        summary = self.summary(model_dir)
        out = job.lines
        survivors = [t for t in ("worker:0", "worker:1") if t != victim]
        errors = {}
        for line in out:
            task = LOG_TIME.match(line).group("task") if LOG_TIME.match(line) else None
            if task in survivors and "training failed after" in line and task not in errors:
                errors[task] = time_of_day(line) - killed_at
        resumed = [time_of_day(l) - killed_at for l in out if "resumed training at step" in l]
        figures = {"kill_to_error_s": errors, "kill_to_resumed_s": max(resumed) if resumed else None,
                   "committed_steps": sorted(committed_steps(out))}
        print(f"{self.id()}: {json.dumps(figures)} summary: restarts={summary['restarts']} "
              f"restored_from_step={summary['restored_from_step']} recoveries={json.dumps(summary['recoveries'])}",
              flush=True)
        return summary, figures

    def assert_same_result_as_undisturbed(self, summary):
        self.assertEqual(summary["final_step"], self.baseline["final_step"])
        self.assertLess(abs(summary["test_accuracy"] - self.baseline["test_accuracy"]), 0.01)
        # Stricter: the resumed run is bit for bit the undisturbed one.
        self.assertEqual(summary["param_checksums"], self.baseline["param_checksums"])

    def test_killed_worker_restarts_and_the_job_resumes_from_the_checkpoint(self):
        summary, figures = self.kill_and_recover("worker:1")
        self.assert_same_result_as_undisturbed(summary)
        self.assertGreaterEqual(summary["restarts"], 1)
        self.assertGreaterEqual(summary["restored_from_step"], 50)
        self.assertIn(summary["restored_from_step"], figures["committed_steps"])
        record = summary["recoveries"][-1]
        self.assertIn("worker:1", record["cause"])
        self.assertGreaterEqual(record["steps_lost"], 0)
        # A checkpoint every 50 steps, one of them deferred at most a save's length.
        self.assertLess(record["steps_lost"], 2 * 50)
        self.assertGreater(record["recovery_seconds"], 0)
        # The survivor noticed well within the 30 s the issue allows.
        self.assertIn("worker:0", figures["kill_to_error_s"])
        self.assertLess(figures["kill_to_error_s"]["worker:0"], 10)

    def test_killed_chief_restarts_and_the_workers_rejoin_it(self):
        summary, figures = self.kill_and_recover("worker:0")
        self.assert_same_result_as_undisturbed(summary)
        self.assertGreaterEqual(summary["restarts"], 1)
        self.assertGreaterEqual(summary["restored_from_step"], 50)
        self.assertIn("chief restarted", summary["recoveries"][-1]["cause"])
        self.assertLess(figures["kill_to_error_s"]["worker:1"], 10)

    def test_chief_killed_inside_a_checkpoint_write_resumes_from_the_previous_one(self):
        model_dir = os.path.join(self.tmp, "write")
        # Every fsync of a save sleeps 0.3 s, so a save lasts ~2 s: long enough
        # to be caught inside it.
        job = self.launch(model_dir, ["--test-checkpoint-sync-delay", "0.3s"])
        self.assertTrue(job.wait_for_line(lambda l: committed(l, 50), 120), job.output())
        self.assertTrue(job.wait_for_line(lambda l: re.search(r"checkpoint: writing \S*ckpt-(?!50\b)\d+", l), 120),
                        job.output())
        os.kill(started_pid(job, "worker:0"), signal.SIGKILL)
        self.assert_exit(job, 0, timeout=240)
        summary = self.summary(model_dir)
        self.assertEqual(summary["restored_from_step"], 50)
        self.assertNotIn("is corrupt", job.output())  # an unfinished write is not a corrupt checkpoint
        self.assert_same_result_as_undisturbed(summary)

    def test_sigterm_to_a_worker_checkpoints_then_it_is_restarted(self):
        model_dir = os.path.join(self.tmp, "preempt")
        job = self.start(["launch", "--model-dir", model_dir] + MWMS + JOB, name="launch")  # no --max-restarts
        self.assertTrue(job.wait_for_line(lambda l: committed(l, 100), 120), job.output())
        os.kill(started_pid(job, "worker:1"), signal.SIGTERM)
        self.assert_exit(job, 0, timeout=240)
        out = job.output()
        self.assertIn("exited with status 75 (preempted: restart me)", out)
        summary = self.summary(model_dir)
        self.assert_same_result_as_undisturbed(summary)
        record = summary["recoveries"][-1]
        # The chief checkpointed at the step boundary after the request: at
        # most a couple of steps are redone.
        self.assertLessEqual(record["steps_lost"], 3, record)

    def test_sigterm_to_launch_checkpoints_every_task_and_exits_75_then_resumes(self):
        model_dir = os.path.join(self.tmp, "stopped")
        job = self.start(["launch", "--model-dir", model_dir] + MWMS + JOB, name="launch")
        self.assertTrue(job.wait_for_line(lambda l: committed(l, 100), 120), job.output())
        job.proc.send_signal(signal.SIGTERM)  # the launcher alone; it forwards the signal
        self.assert_exit(job, 75, timeout=60)
        saved = re.findall(r"worker:0 preempted \(SIGTERM\) at step (\d+); ckpt-(\d+) written", job.output())
        self.assertTrue(saved, job.output())
        step = int(saved[0][1])
        again = self.start(["launch", "--model-dir", model_dir] + MWMS + JOB, name="launch")
        self.assert_exit(again, 0, timeout=240)
        summary = self.summary(model_dir)
        self.assertEqual(summary["restored_from_step"], step)
        self.assert_same_result_as_undisturbed(summary)

    def test_evaluator_writes_one_line_per_checkpoint(self):
        model_dir = os.path.join(self.tmp, "eval")
        job = self.start(["launch", "--evaluator", "--model-dir", model_dir] + MWMS + JOB +
                         ["--max-to-keep", "0", "--checkpoint-every-steps", "200"], name="launch")
        self.assert_exit(job, 0, timeout=240)
        with open(os.path.join(model_dir, "eval.jsonl")) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        steps = sorted(int(os.path.basename(d)[5:]) for d in glob.glob(os.path.join(model_dir, "ckpt-*")))
        self.assertEqual(steps, [200, 400, 600, 705])
        self.assertEqual([l["step"] for l in lines], steps)
        self.assertTrue(lines[-1]["final"])
        self.assertFalse(any(l["final"] for l in lines[:-1]))
        # The evaluator's view of the final checkpoint is the chief's last evaluation.
        self.assertAlmostEqual(lines[-1]["accuracy"], self.summary(model_dir)["test_accuracy"], places=9)

    def test_evaluator_writes_the_final_line_when_the_final_save_rewrites_its_step(self):
        # The chief's periodic checkpoint of the last step, then the final save
        # of that same step: the evaluator sees ckpt-N first as not final.
        final_dir = os.path.join(self.baseline_dir, f"ckpt-{self.baseline['final_step']}")
        model_dir = os.path.join(self.tmp, "rewrite")
        ckpt = os.path.join(model_dir, os.path.basename(final_dir))
        shutil.copytree(final_dir, ckpt)
        index = os.path.join(ckpt, "index.json")
        with open(index) as f:
            manifest = json.load(f)
        manifest["final"] = False
        with open(index, "w") as f:
            json.dump(manifest, f)
        cluster = make_cluster(workers=1, evaluator=True)
        evaluator = self.start_cluster_task(cluster, "evaluator", 0, JOB + ["--model-dir", model_dir])
        self.assertTrue(evaluator.wait_for_line(lambda l: "evaluator: ckpt-" in l, 120), evaluator.output())
        staged = os.path.join(self.tmp, "staged")
        shutil.copytree(final_dir, staged)  # the final save: a new directory renamed over the old
        os.rename(ckpt, os.path.join(self.tmp, "old"))
        os.rename(staged, ckpt)
        self.assert_exit(evaluator, 0, timeout=120)
        with open(os.path.join(model_dir, "eval.jsonl")) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        self.assertEqual([(l["step"], l["final"]) for l in lines],
                         [(self.baseline["final_step"], False), (self.baseline["final_step"], True)])
        self.assertEqual(lines[0]["accuracy"], lines[1]["accuracy"])

    def test_killed_evaluator_is_noticed_by_nobody_and_resumes_where_it_was(self):
        model_dir = os.path.join(self.tmp, "eval-killed")
        job = self.start(["launch", "--evaluator", "--model-dir", model_dir, "--max-restarts", "2"] + MWMS +
                         JOB + ["--max-to-keep", "0", "--checkpoint-every-steps", "100"], name="launch")
        self.assertTrue(job.wait_for_line(lambda l: "evaluator: ckpt-100:" in l, 120), job.output())
        os.kill(started_pid(job, "evaluator:0"), signal.SIGKILL)
        self.assert_exit(job, 0, timeout=240)
        out = job.output()
        self.assertIn("evaluator:0 exited with status 137; restarting it", out)
        self.assertNotIn("recovering", out)  # the workers never noticed
        summary = self.summary(model_dir)
        self.assertEqual(summary["restarts"], 0)
        self.assertEqual(summary["param_checksums"], self.baseline["param_checksums"])
        with open(os.path.join(model_dir, "eval.jsonl")) as f:
            steps = [json.loads(l)["step"] for l in f if l.strip()]
        self.assertEqual(steps, [100, 200, 300, 400, 500, 600, 700, 705])  # each once, in order

    def test_one_device_restores_a_checkpoint_written_by_two_workers(self):
        model_dir = os.path.join(self.tmp, "one")
        shutil.copytree(self.baseline_dir, model_dir)
        os.remove(os.path.join(model_dir, "summary.json"))
        task = self.start(["train", "--model-dir", model_dir, "--strategy", "one_device"] + JOB, name="one")
        self.assert_exit(task, 0, timeout=120)
        summary = self.summary(model_dir)
        self.assertEqual(summary["restored_from_step"], self.baseline["final_step"])
        self.assertEqual(summary["strategy"], "one_device")
        # Same values, same test set: the same accuracy, to the example.
        self.assertEqual(summary["test_accuracy"], self.baseline["test_accuracy"])
        self.assertEqual(summary["param_checksums"]["worker:0"], self.baseline["param_checksums"]["worker:0"])
        with open(os.path.join(model_dir, f"ckpt-{self.baseline['final_step']}", "index.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["strategy"]["num_workers"], 2)
        self.assertTrue(manifest["final"])


@requires_fashion_mnist
class CheckpointFilesTest(ClusterTestCase):
    """One process (one_device): what lands on disk and how damage is handled."""

    def train(self, model_dir, steps, extra=()):
        return self.start(["train", "--config", REFERENCE, "--model-dir", model_dir, "--max-steps", str(steps),
                           "--checkpoint-every-steps", "50"] + list(extra), name="train")

    def test_kill_during_a_checkpoint_write_leaves_the_previous_one_valid(self):
        model_dir = os.path.join(self.tmp, "run")
        self.assert_exit(self.train(model_dir, 100), 0, timeout=120)  # ckpt-50, ckpt-100
        # Every fsync now takes 2 s: the next save is caught inside its write.
        slow = self.train(model_dir, 300, ["--test-checkpoint-sync-delay", "2s"])
        self.assertTrue(slow.wait_for_line(lambda l: "checkpoint: writing" in l and "ckpt-150" in l, 60),
                        slow.output())
        slow.kill(signal.SIGKILL)
        slow.wait(30)
        self.assertFalse(os.path.exists(os.path.join(model_dir, "ckpt-150", "index.json")))
        with open(os.path.join(model_dir, "checkpoint")) as f:
            self.assertIn('model_checkpoint_path: "ckpt-100"', f.read())
        resumed = self.train(model_dir, 200)
        self.assert_exit(resumed, 0, timeout=120)
        summary = self.summary(model_dir)
        self.assertEqual(summary["restored_from_step"], 100)
        self.assertEqual(summary["final_step"], 200)
        self.assertNotIn("is corrupt", resumed.output())  # an uncommitted write is no corruption
        # The leftover was replaced by a whole ckpt-150 of the resumed run.
        self.assertTrue(os.path.exists(os.path.join(model_dir, "ckpt-150", "index.json")))

    def test_flipped_byte_and_truncated_file_are_named_and_skipped(self):
        model_dir = os.path.join(self.tmp, "run")
        self.assert_exit(self.train(model_dir, 150), 0, timeout=120)  # ckpt-50, 100, 150
        flipped = os.path.join(model_dir, "ckpt-150", PART)
        with open(flipped, "r+b") as f:
            f.seek(-1000, os.SEEK_END)
            byte = f.read(1)
            f.seek(-1000, os.SEEK_END)
            f.write(bytes([byte[0] ^ 0x01]))
        truncated = os.path.join(model_dir, "ckpt-100", PART)
        os.truncate(truncated, os.path.getsize(truncated) // 2)
        resumed = self.train(model_dir, 200)
        self.assert_exit(resumed, 0, timeout=120)
        out = resumed.output()
        self.assertRegex(out, re.escape(flipped) + r" is corrupt: its CRC32C is [0-9a-f]{8}, the manifest says")
        self.assertRegex(out, re.escape(truncated) + r" is corrupt: it has \d+ bytes, the manifest says \d+ "
                                                     r"\(truncated")
        self.assertEqual(self.summary(model_dir)["restored_from_step"], 50)

    @requires(have_numpy_python(), "numpy is not installed for /usr/bin/python3 (apt-get install python3-numpy)")
    def test_tensor_files_are_safetensors_that_numpy_reads(self):
        model_dir = os.path.join(self.tmp, "run")
        self.assert_exit(self.train(model_dir, 60), 0, timeout=120)
        part = os.path.join(model_dir, "ckpt-60", PART)
        script = (
            "import json, struct, sys, numpy as np\n"
            "data = open(sys.argv[1], 'rb').read()\n"
            "n = struct.unpack('<Q', data[:8])[0]\n"
            "header = json.loads(data[8:8 + n])\n"
            "e = header['dense_0/kernel']\n"
            "b, end = e['data_offsets']\n"
            "w = np.frombuffer(data[8 + n + b:8 + n + end], dtype='<f4').reshape(e['shape'])\n"
            "print(json.dumps({'dtype': e['dtype'], 'shape': list(w.shape), 'finite': bool(np.isfinite(w).all()),"
            " 'std': float(w.std()), 'keys': sorted(k for k in header if k != '__metadata__')}))\n")
        proc = subprocess.run([NUMPY_PYTHON, "-c", script, part], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        seen = json.loads(proc.stdout)
        self.assertEqual(seen["dtype"], "F32")
        self.assertEqual(seen["shape"], [784, 300])
        self.assertTrue(seen["finite"])
        self.assertGreater(seen["std"], 0.01)  # trained weights, not zeros
        self.assertIn("dense_0/kernel/momentum", seen["keys"])
        with open(os.path.join(model_dir, "ckpt-60", "index.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["step"], 60)
        position = manifest["input"]
        self.assertEqual({k: position[k] for k in ("epoch", "step", "tasks")},
                         {"epoch": 0, "step": 60, "tasks": {"worker:0": {"epoch": 0, "step": 60}}})
        # The global position: 60 steps of 256, the first 15360 of epoch 0's order.
        self.assertEqual(position["global"]["trained"], {"0": [0, 15360]})
        self.assertEqual(position["layout"]["tasks"], ["worker:0"])


if __name__ == "__main__":
    unittest.main()
