"""Elastic training (docs/fault_tolerance.md 5.9): survivors go on without a
dead or stuck worker from the state they hold, and the cluster grows back
when the worker returns.

Real processes on 127.0.0.1, each started with its own TF_CONFIG (the test
plays the supervisor), multi_worker_mirrored with --elastic:
  - 3 workers, worker:2 SIGKILLed at a random step: after the rejoin grace
    the two survivors (the same processes) re-form the ring and go on from
    the step they held, losing at most the step in flight; no example is
    trained twice in an epoch across the shrink; then worker:2 is started
    again and the cluster grows back to 3, every worker ending with the same
    parameters;
  - with elastic.keep per_replica_batch the survivors train a global batch
    of 64 instead of 96 at 2/3 of the learning rate;
  - a SIGSTOPped worker is named stuck, and the others go on without it;
  - the reference job (Fashion-MNIST) on 3 workers, one killed at a random
    step, reaches test accuracy >= 0.86 on the two survivors;
  - `meshtrain launch --elastic --max-restarts 1`: a killed worker does not
    stop the group, it is restarted and the job ends with every worker;
  - `meshtrain launch --initial-workers 2` starts 2 of 3 workers and
    `meshtrain launch --join worker:2` adds the third to the running cluster.
"""
import json
import os
import random
import re
import signal
import time
import unittest

from harness import (CONFIGS, REFERENCE, ClusterTestCase, make_cluster, recorded_examples,
                     requires_fashion_mnist, started_pid)

# configs/synthetic_elastic.json: a synthetic job with steps of a few
# milliseconds, so that a run lasts the seconds a kill, a shrink and a
# grow-back take: 4096 examples, global batch 96 (43 steps an epoch; 96 splits
# over 3 and 2 workers evenly, 97 would not), 40 epochs, a 1 s rejoin grace.
JOB = os.path.join(CONFIGS, "synthetic_elastic.json")
EXAMPLES = 4096
BATCH = 96
STEPS_PER_EPOCH = 43
# After 40 epochs an undisturbed run scores ~0.8 on this job; chance is 0.25.
SANE_ACCURACY = 0.6


class ElasticTest(ClusterTestCase):

    def write_job(self, elastic=None, **training):
        with open(JOB) as f:
            job = json.load(f)
        job["training"].update(training)
        job["elastic"].update(elastic or {})
        path = os.path.join(self.tmp, "job.json")
        with open(path, "w") as f:
            json.dump(job, f)
        return path

    def start_workers(self, config, workers=3, extra=()):
        self.cluster = make_cluster(workers=workers)
        self.model_dir = os.path.join(self.tmp, "model")
        self.record = os.path.join(self.tmp, "record")
        os.makedirs(self.record, exist_ok=True)
        self.args = ["--config", config, "--model-dir", self.model_dir,
                     "--test-record-examples", self.record] + list(extra)
        return [self.start_cluster_task(self.cluster, "worker", i, self.args) for i in range(workers)]

    def wait_for(self, task, pattern, timeout=60):
        rule = re.compile(pattern)
        self.assertTrue(task.wait_for_line(lambda l: rule.search(l) is not None, timeout),
                        f"no line matching {pattern!r} from {task.name}:\n{task.output()}")
        return next(rule.search(l) for l in task.lines if rule.search(l))

    def kill_at_random_step(self, tasks, victim, sig=signal.SIGKILL):
        """Waits until training runs (the stuck rule is logged after 8 steps),
        then a random moment of the next 0.5 s, and signals `victim`."""
        self.wait_for(tasks[0], r"stuck rule: ")
        time.sleep(random.uniform(0.0, 0.5))
        tasks[victim].kill(sig)
        return time.monotonic()

    def assert_no_example_twice(self, lost_steps_allowed=1):
        """No example twice in any epoch; at most one global batch per lost
        step unrecorded (the step in flight: a killed worker's share of a
        step the survivors completed is trained but may not be recorded)."""
        by_epoch = recorded_examples(self.record)
        for epoch, c in by_epoch.items():
            twice = [i for i, n in c.items() if n > 1]
            self.assertEqual(twice, [], f"epoch {epoch}: examples trained more than once")
            self.assertGreaterEqual(len(c), EXAMPLES - lost_steps_allowed * BATCH, f"epoch {epoch}")

    def test_survivors_go_on_without_a_killed_worker_and_it_grows_back(self):
        tasks = self.start_workers(self.write_job())
        survivors = tasks[:2]
        pids = [t.proc.pid for t in survivors]
        self.kill_at_random_step(tasks, 2)
        shrunk = self.wait_for(tasks[0], r"elastic: generation (\d+) trains on 2 worker\(s\) from (\S+)'s "
                                         r"state of step (\d+) \(held: ([^;]+);")
        # Each survivor held a step boundary: the same one with the same
        # parameters (checksums), or one step apart when the ring's last
        # exchange of the step in flight reached one survivor only; then the
        # newest is the one resumed from.
        held = [(int(h.split()[2]), h.split()[3]) for h in shrunk.group(4).split(", ")]
        self.assertEqual(len(held), 2, shrunk.group(0))
        steps = [step for step, _ in held]
        self.assertLessEqual(max(steps) - min(steps), 1, shrunk.group(0))
        self.assertEqual(max(steps), int(shrunk.group(3)), shrunk.group(0))
        if steps[0] == steps[1]:
            self.assertEqual(held[0][1], held[1][1], shrunk.group(0))
        # The killed worker starts again (its supervisor's job) and joins.
        started = time.monotonic()
        tasks.append(self.start_cluster_task(self.cluster, "worker", 2, self.args))
        self.wait_for(tasks[0], r"elastic: generation \d+ trains on 3 worker\(s\)")
        grew = time.monotonic() - started
        for t in survivors + tasks[3:]:
            self.assert_exit(t, 0, timeout=300)
        self.assertEqual([t.proc.pid for t in survivors], pids)
        summary = self.summary(self.model_dir)
        recoveries = summary["recoveries"]
        self.assertEqual([r["workers"] for r in recoveries], [2, 3], recoveries)
        self.assertLessEqual(recoveries[0]["steps_lost"], 1)
        self.assertEqual(recoveries[1]["steps_lost"], 0)
        self.assertEqual(summary["num_workers"], 3)
        checksums = summary["param_checksums"]
        self.assertEqual(sorted(checksums), ["worker:0", "worker:1", "worker:2"])
        self.assertEqual(len(set(checksums.values())), 1, checksums)
        self.assertEqual(summary["final_step"], 40 * STEPS_PER_EPOCH)
        self.assertGreater(summary["test_accuracy"], SANE_ACCURACY, summary)
        self.assert_no_example_twice()
        print(f"\n{self.id()}: shrink resumed {recoveries[0]['recovery_seconds']:.2f} s after the error "
              f"(grace 1 s), grew back {grew:.2f} s after the new task started", flush=True)

    def test_keep_per_replica_batch_shrinks_the_global_batch_and_the_rate(self):
        tasks = self.start_workers(self.write_job(elastic={"keep": "per_replica_batch"}))
        self.kill_at_random_step(tasks, 2)
        for t in tasks[:2]:
            self.assert_exit(t, 0, timeout=300)
        self.assertIn("elastic: keep per_replica_batch: 2 of 3 workers train a global batch of 64 (not 96) "
                      "at 0.666667 x the learning rate", tasks[0].output())
        summary = self.summary(self.model_dir)
        self.assertEqual(summary["num_workers"], 2)
        # More steps than 40 epochs of 96: the epochs after the shrink take 64 a step.
        self.assertGreater(summary["final_step"], 40 * STEPS_PER_EPOCH)
        self.assertGreater(summary["test_accuracy"], SANE_ACCURACY, summary)
        self.assert_no_example_twice()

    def test_a_stuck_worker_is_named_and_left_behind(self):
        tasks = self.start_workers(self.write_job())
        try:
            self.kill_at_random_step(tasks, 2, signal.SIGSTOP)
            for survivor in tasks[:2]:
                self.wait_for(survivor, r"worker:2 \(\S+\) is stuck, not gone")
            self.wait_for(tasks[0], r"elastic: generation \d+ trains on 2 worker\(s\)")
            for t in tasks[:2]:
                self.assert_exit(t, 0, timeout=300)
        finally:
            tasks[2].kill(signal.SIGCONT)
            tasks[2].kill(signal.SIGKILL)
        summary = self.summary(self.model_dir)
        self.assertEqual(summary["num_workers"], 2)
        self.assertIn("is stuck, not gone", summary["recoveries"][0]["cause"])
        self.assertGreater(summary["test_accuracy"], SANE_ACCURACY, summary)
        self.assert_no_example_twice()

    @requires_fashion_mnist
    def test_reference_job_survives_a_killed_worker_and_reaches_the_target(self):
        tasks = self.start_workers(REFERENCE, extra=["--strategy", "multi_worker_mirrored",
                                                     "--elastic", "--rejoin-grace", "1s"])
        self.kill_at_random_step(tasks, random.choice([1, 2]))
        for t in tasks:
            if t.proc.poll() is None or t.proc.returncode != -signal.SIGKILL:
                self.assert_exit(t, 0, timeout=500)
        summary = self.summary(self.model_dir)
        self.assertEqual(summary["num_workers"], 2)
        self.assertLessEqual(summary["recoveries"][0]["steps_lost"], 1)
        self.assertGreaterEqual(summary["test_accuracy"], 0.86, summary)
        self.assert_no_example_twice()
        print(f"\n{self.id()}: test accuracy {summary['test_accuracy']:.4f} on 2 of 3 workers", flush=True)

    def test_launch_restarts_a_killed_worker_and_the_job_ends_with_every_worker(self):
        model_dir = os.path.join(self.tmp, "launched")
        job = self.start(["launch", "--workers", "3", "--max-restarts", "1", "--model-dir", model_dir,
                          "--config", self.write_job(epochs=30)], name="launch")
        self.wait_for(job, r"stuck rule: ")
        victim = started_pid(job, "worker:2")
        self.assertIsNotNone(victim, job.output())
        os.kill(victim, signal.SIGKILL)
        self.assert_exit(job, 0, timeout=300)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], 3)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])
        self.assertGreaterEqual(len(summary["recoveries"]), 1)

    def test_launch_join_adds_a_worker_to_a_running_cluster(self):
        model_dir = os.path.join(self.tmp, "joined")
        flags = ["--model-dir", model_dir, "--config", self.write_job(epochs=60)]
        job = self.start(["launch", "--workers", "3", "--initial-workers", "2"] + flags, name="launch")
        self.wait_for(job, r"the cluster starts with 2 training workers; worker:2 \(\S+\) may join later")
        self.wait_for(job, r"stuck rule: ")
        joiner = self.start(["launch", "--join", "worker:2"] + flags, name="join")
        self.wait_for(job, r"elastic: generation 1 trains on 3 worker\(s\)")
        self.assert_exit(job, 0, timeout=300)
        self.assert_exit(joiner, 0, timeout=60)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], 3)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])
        self.assertIn("worker:2 (127.0.0.1:", summary["recoveries"][0]["cause"])
        self.assertIn("joins the cluster", summary["recoveries"][0]["cause"])
        # A join once the job is over waits for a chief that is gone, until its deadline.
        late = self.start(["launch", "--join", "worker:2", "--startup-timeout", "2s"] + flags, name="late")
        self.assertNotEqual(late.wait(60), 0, late.output())
        self.assertIn("did not answer within 2s", late.output())


if __name__ == "__main__":
    unittest.main()
