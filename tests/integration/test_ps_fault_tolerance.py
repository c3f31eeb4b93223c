"""Checkpoints and recovery of parameter_server jobs on real processes
(docs/fault_tolerance.md, protocols 5.5 and 5.6).

The reference job on 2 workers and 2 ps tasks, 5 epochs, a checkpoint every 50
steps, under `meshtrain launch --max-restarts 2`. A worker, the chief or a ps
is SIGKILLed at a random moment: the job must finish with a test accuracy
within ACCURACY_BOUND (0.03, set from the measured spread below) of an
undisturbed run's (asynchronous training is not deterministic, so the
parameters themselves differ from run to run), and
summary.json must show the restart and the step resumed from. The ps tasks
write their own shards; the checkpoint they write restores into one_device.
"""
import json
import os
import random
import re
import shutil
import signal
import time
import unittest

from harness import (LOG_TIME, REFERENCE, UndisturbedBaselineTestCase, committed, now_of_day,
                     requires_fashion_mnist, started_pid, time_of_day)

EPOCHS = 5  # 1,170 steps of global batch 256 over 2 workers
JOB = ["--config", REFERENCE, "--epochs", str(EPOCHS), "--checkpoint-every-steps", "50"]
PS = ["--workers", "2", "--ps", "2"]
# How far a disturbed run's test accuracy may be from the undisturbed run's.
# Asynchronous training is not deterministic: 10 undisturbed runs of this job
# (tests/bench/accuracy_spread.py --seeds 10, 2026-12-06, 2 cores, 4 of them
# beside a build) ended at 0.8633-0.8711 (stdev 0.0026; two runs differed by
# up to 0.0078), load alone moving them by ~0.004, and a disturbed run redoes
# or loses up to a checkpoint's worth of updates (once 0.012 from its baseline,
# failing the old bound of 0.01). 0.03 is about 4 times the widest pair and
# still far below what a broken restore costs (an untrained model scores 0.1).
ACCURACY_BOUND = 0.03
PARTS = ["ps-00000-of-00002.safetensors", "ps-00001-of-00002.safetensors"]


@requires_fashion_mnist
class PsFaultToleranceTest(UndisturbedBaselineTestCase):
    BASELINE_NAME = "psft"
    BASELINE_ARGS = PS + JOB

    def kill_and_recover(self, victim):
        """SIGKILLs `victim` at a random moment of training;
        returns the summary, the output and the measured figures."""
        model_dir = os.path.join(self.tmp, "run")
        job = self.start(["launch", "--model-dir", model_dir, "--max-restarts", "2"] + PS + JOB, name="launch")
        # A random moment of training: after a random checkpoint of the first
        # 300 steps (about half of the run), a random fraction of a step period later.
        # Never near the end: a task killed after the chief finished would
        # have no cluster to rejoin.
        step = random.randrange(50, 301, 50)
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
        errors = {}
        for line in job.lines:
            m = LOG_TIME.match(line)
            task = m.group("task") if m else None
            if task and task != victim and task not in errors and (
                    "training failed after" in line or "stopped serving" in line):
                errors[task] = round(time_of_day(line) - killed_at, 3)
        resumed = [time_of_day(l) - killed_at for l in job.lines if "resumed training at step" in l]
        figures = {"kill_to_error_s": errors, "kill_to_resumed_s": max(resumed) if resumed else None}
        print(f"{self.id()}: {json.dumps(figures)} summary: restarts={summary['restarts']} "
              f"restored_from_step={summary['restored_from_step']} "
              f"by worker={json.dumps(summary.get('restored_from_step_by_worker'))} "
              f"recoveries={json.dumps(summary['recoveries'])}", flush=True)
        return summary, job.output(), figures

    def assert_as_good_as_undisturbed(self, summary):
        self.assertEqual(summary["strategy"], "parameter_server")
        self.assertLess(abs(summary["test_accuracy"] - self.baseline["test_accuracy"]), ACCURACY_BOUND,
                        (summary["test_accuracy"], self.baseline["test_accuracy"]))
        self.assertGreaterEqual(summary["restarts"], 1)

    def test_killed_worker_restarts_alone_and_continues_its_shard(self):
        summary, out, figures = self.kill_and_recover("worker:1")
        self.assert_as_good_as_undisturbed(summary)
        # The others went on: no recovery of the cluster, no error anywhere else.
        self.assertEqual(summary["recoveries"], [], out[-3000:])
        self.assertEqual(figures["kill_to_error_s"], {}, out[-3000:])
        # The restarted worker resumed its shard from the newest checkpoint's record of it.
        resumed = summary["restored_from_step_by_worker"]["worker:1"]
        self.assertIsNotNone(resumed, out[-3000:])
        self.assertGreaterEqual(resumed, 50)
        self.assertIn("dense link of worker:1 ended", out)

    def test_killed_chief_restarts_and_the_cluster_resumes_from_the_checkpoint(self):
        summary, out, figures = self.kill_and_recover("worker:0")
        self.assert_as_good_as_undisturbed(summary)
        self.assertGreaterEqual(summary["restored_from_step"], 50)
        self.assertIn("chief restarted", summary["recoveries"][-1]["cause"])
        for survivor in ("worker:1", "ps:0", "ps:1"):
            self.assertLess(figures["kill_to_error_s"][survivor], 10, figures)

    def test_killed_ps_comes_back_with_its_shards_from_the_checkpoint(self):
        summary, out, figures = self.kill_and_recover("ps:0")
        self.assert_as_good_as_undisturbed(summary)
        self.assertGreaterEqual(summary["restored_from_step"], 50)
        record = summary["recoveries"][-1]
        self.assertGreaterEqual(record["steps_lost"], 0)
        self.assertGreater(record["recovery_seconds"], 0)
        # Every survivor stopped well within the 30 s the issue allows.
        for survivor in ("worker:0", "worker:1", "ps:1"):
            self.assertLess(figures["kill_to_error_s"][survivor], 10, figures)
        self.assertIn("ps:0", record["cause"] + out)

    def test_sigterm_to_a_ps_checkpoints_then_it_is_restarted(self):
        model_dir = os.path.join(self.tmp, "preempt")
        job = self.start(["launch", "--model-dir", model_dir] + PS + JOB, name="launch")
        self.assertTrue(job.wait_for_line(lambda l: committed(l, 50), 120), job.output())
        os.kill(started_pid(job, "ps:1"), signal.SIGTERM)
        self.assert_exit(job, 0, timeout=240)
        out = job.output()
        # The ps asked for a checkpoint, the chief wrote it, the ps left with
        # 75 and was restarted without using up a restart; the others
        # recovered from that checkpoint.
        saved = re.findall(r"ps:1 preempted \(SIGTERM\); the chief wrote ckpt-(\d+)", out)
        self.assertTrue(saved, out[-3000:])
        self.assertIn("ps:1 exited with status 75", out)
        summary = self.summary(model_dir)
        # The chief goes on checkpointing until the ps has left: the recovery
        # restores that checkpoint or a newer one.
        self.assertGreaterEqual(summary["recoveries"][-1]["restored_from_step"], int(saved[0]),
                                summary["recoveries"])
        self.assertLess(abs(summary["test_accuracy"] - self.baseline["test_accuracy"]), ACCURACY_BOUND)

    def test_ps_tasks_write_their_own_shards_and_one_device_restores_them(self):
        final = self.baseline["final_step"]
        with open(os.path.join(self.baseline_dir, f"ckpt-{final}", "index.json")) as f:
            manifest = json.load(f)
        self.assertTrue(manifest["final"])
        self.assertEqual(manifest["strategy"]["num_workers"], 2)
        self.assertEqual(manifest["strategy"]["num_ps"], 2)
        self.assertEqual(sorted(f["name"] for f in manifest["files"]), PARTS)
        # Each worker's own input position is recorded.
        self.assertEqual(set(manifest["input"]["tasks"]), {"worker:0", "worker:1"})

        model_dir = os.path.join(self.tmp, "one")
        shutil.copytree(self.baseline_dir, model_dir)
        os.remove(os.path.join(model_dir, "summary.json"))
        task = self.start(["train", "--model-dir", model_dir, "--strategy", "one_device"] + JOB, name="one")
        self.assert_exit(task, 0, timeout=120)
        summary = self.summary(model_dir)
        self.assertEqual(summary["restored_from_step"], final)
        self.assertEqual(summary["strategy"], "one_device")
        # The chief evaluated and wrote the final checkpoint once every worker
        # had finished: the same values, the same accuracy, to the example.
        self.assertEqual(summary["test_accuracy"], self.baseline["test_accuracy"])


if __name__ == "__main__":
    unittest.main()
