"""Faults that only a network has, on emulated hosts (docs/fault_tolerance.md):
a cable pulled for good is named by every survivor within 10 s; a 2 s flap is
not a death; a link slowed to 10 Mbit/s slows the job, which says so and goes
on; a task SIGKILLed on another host and restarted there (as its host's
supervisor would) resumes the job, bit for bit the undisturbed one; with
--elastic, the hosts left after a cable is pulled go on without the cut-off
one."""
import os
import re
import signal
import statistics
import time
import unittest

from harness import REFERENCE, committed, requires_fashion_mnist
from multihost import MultiHostTestCase, requires_hosts

# Two epochs of the reference job (468 steps) on one thread per task.
JOB = ["--config", REFERENCE, "--epochs", "2", "--threads", "1", "--strategy", "multi_worker_mirrored",
       "--checkpoint-every-steps", "50", "--max-to-keep", "0"]
PROGRESS = re.compile(r"epoch (\d+): step (\d+)/\d+ .* ([\d.]+) ms/step")


def progress_lines(task):
    """(epoch, step in the epoch, ms/step) of the chief's progress lines so far."""
    out = []
    for line in task.lines:
        m = PROGRESS.search(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), float(m.group(3))))
    return out


@requires_fashion_mnist
@requires_hosts
class NetworkFaultsTest(MultiHostTestCase):
    HOSTS = 3
    undisturbed = None  # summary of an undisturbed run of JOB on 2 hosts

    def run_job(self, cluster, model_dir, extra=()):
        return self.start_all(cluster, JOB + ["--model-dir", model_dir] + list(extra))

    def undisturbed_run(self):
        if NetworkFaultsTest.undisturbed is None:
            model_dir = os.path.join(self.tmp, "undisturbed")
            tasks = self.run_job(self.cluster(worker=[1, 2]), model_dir)
            for task in tasks.values():
                self.assert_exit(task, 0, timeout=180)
            NetworkFaultsTest.undisturbed = self.summary(model_dir)
        return NetworkFaultsTest.undisturbed

    def assert_undisturbed_result(self, summary):
        baseline = self.undisturbed_run()
        self.assertEqual(summary["final_step"], baseline["final_step"])
        self.assertEqual(summary["param_checksums"], baseline["param_checksums"])

    def test_cable_pulled_for_good_is_named_by_every_survivor_within_10s(self):
        cluster = self.cluster(worker=[1, 2, 3])
        tasks = self.run_job(cluster, os.path.join(self.tmp, "pulled"),
                             ["--global-batch-size", "255", "--epochs", "50", "--recovery-timeout", "5s"])
        chief, survivor, cut_off = tasks["worker:0"], tasks["worker:1"], tasks["worker:2"]
        self.assertTrue(chief.wait_for_line(lambda l: committed(l, 50), 120), chief.output())
        self.hosts.link(3, up=False)
        pulled_at = time.monotonic()
        victim = re.escape(cluster["worker"][2])
        for task in (chief, survivor):
            named = task.wait_for_line(lambda l: re.search(rf"worker:2 \({victim}\)", l) is not None, 10)
            self.assertTrue(named, f"{task.name} did not name worker:2 within 10 s:\n{task.output()}")
            print(f"\n{self.id()}: {task.name} named worker:2 {time.monotonic() - pulled_at:.1f}s "
                  "after the cable was pulled", flush=True)
        # Nobody restarts worker:2's host: by the documented rule the survivors
        # wait --recovery-timeout for it, then fail naming it and the fix.
        for task in (chief, survivor):
            self.assertNotEqual(task.wait(60), 0, task.output())
            self.assertRegex(task.output(), rf"worker:2 \({victim}\) did not come back within")
        # The cut-off task loses the chief's coordination service and stops too.
        self.assertNotEqual(cut_off.wait(60), 0, cut_off.output())
        self.assertIn("worker:0", cut_off.output())

    def test_cable_pulled_for_good_elastic_survivors_go_on_across_hosts(self):
        # Elastic (docs/fault_tolerance.md 5.9): the two hosts left re-form the
        # ring and finish the job, the global batch of 255 now split 128/127.
        cluster = self.cluster(worker=[1, 2, 3])
        model_dir = os.path.join(self.tmp, "elastic")
        tasks = self.run_job(cluster, model_dir, ["--global-batch-size", "255", "--epochs", "3", "--elastic",
                                                  "--rejoin-grace", "1s"])
        chief, survivor = tasks["worker:0"], tasks["worker:1"]
        self.assertTrue(chief.wait_for_line(lambda l: committed(l, 50), 120), chief.output())
        self.hosts.link(3, up=False)
        pulled_at = time.monotonic()
        went_on = chief.wait_for_line(lambda l: "trains on 2 worker(s)" in l, 30)
        self.assertTrue(went_on, chief.output())
        print(f"\n{self.id()}: training on 2 hosts {time.monotonic() - pulled_at:.1f}s after the cable "
              "was pulled (stuck bound 2 s + grace 1 s)", flush=True)
        for task in (chief, survivor):
            self.assert_exit(task, 0, timeout=300)
        summary = self.summary(model_dir)
        self.assertEqual(summary["num_workers"], 2)
        self.assertEqual([r["workers"] for r in summary["recoveries"]], [2])
        self.assertLessEqual(summary["recoveries"][0]["steps_lost"], 1)
        self.assertEqual(len(set(summary["param_checksums"].values())), 1, summary["param_checksums"])
        self.assertGreater(summary["test_accuracy"], 0.8, summary)

    def test_two_second_flap_is_not_a_death(self):
        cluster = self.cluster(worker=[1, 2])
        model_dir = os.path.join(self.tmp, "flap")
        # The stuck rule (docs/fault_tolerance.md 5.8) counts a task silent for
        # ~1.7 s while training as stuck: a 2 s outage is one by default. This
        # test is about TCP riding out an outage shorter than the bound, so it
        # raises the bound above it.
        tasks = self.run_job(cluster, model_dir, ["--stuck-timeout", "4s"])
        self.assertTrue(tasks["worker:0"].wait_for_line(lambda l: committed(l, 100), 120))
        self.hosts.link(2, up=False)
        time.sleep(2)  # the length of the outage is the subject of the test
        self.hosts.link(2, up=True)
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        summary = self.summary(model_dir)
        self.assertEqual(summary["restarts"], 0)
        self.assertEqual(summary["recoveries"], [])
        self.assert_undisturbed_result(summary)

    def test_link_slowed_to_10_mbit_slows_the_steps_and_the_job_goes_on(self):
        cluster = self.cluster(worker=[1, 2])
        model_dir = os.path.join(self.tmp, "slow")
        tasks = self.run_job(cluster, model_dir, ["--progress-every", "1s"])
        chief = tasks["worker:0"]
        self.assertTrue(chief.wait_for_line(lambda l: committed(l, 100), 120), chief.output())
        before = progress_lines(chief)
        self.hosts.set_rate(2, "10mbit")
        # Three progress reports taken wholly at 10 Mbit/s, then the link recovers.
        self.assertTrue(chief.wait_for_line(lambda l: len(progress_lines(chief)) >= len(before) + 4, 60),
                        chief.output())
        slowed = progress_lines(chief)[len(before) + 1:]
        self.hosts.set_rate(2, self.RATE)
        for task in tasks.values():
            self.assert_exit(task, 0, timeout=180)
        fast_ms = statistics.median(ms for _, _, ms in before) if before else 20.0
        slow_ms = statistics.median(ms for _, _, ms in slowed)
        print(f"\n{self.id()}: {fast_ms:.1f} ms/step at {self.RATE}, {slow_ms:.1f} ms/step at 10mbit",
              flush=True)
        # A step moves 1.07 MB each way: ~0.9 s at 10 Mbit/s, ~10 ms at 1 Gbit/s.
        self.assertGreater(slow_ms, 10 * fast_ms, chief.output())
        self.assertGreater(slow_ms, 400, chief.output())
        # Slowly, but it went on: the steps advanced while the link was slow.
        self.assertGreater(slowed[-1][:2], slowed[0][:2])
        summary = self.summary(model_dir)
        self.assertEqual(summary["recoveries"], [])
        self.assert_undisturbed_result(summary)

    def test_task_killed_on_another_host_is_restarted_there_and_the_job_resumes(self):
        cluster = self.cluster(worker=[1, 2])
        model_dir = os.path.join(self.tmp, "killed")
        tasks = self.run_job(cluster, model_dir)
        self.assertTrue(tasks["worker:0"].wait_for_line(lambda l: committed(l, 100), 120))
        tasks["worker:1"].kill(signal.SIGKILL)
        self.assertEqual(tasks["worker:1"].wait(30), -signal.SIGKILL)
        # Host 2's supervisor restarts its task with the same TF_CONFIG.
        restarted = self.start_task(cluster, "worker", 1, JOB + ["--model-dir", model_dir])
        self.assert_exit(tasks["worker:0"], 0, timeout=180)
        self.assert_exit(restarted, 0, timeout=180)
        summary = self.summary(model_dir)
        self.assertGreaterEqual(summary["restored_from_step"], 100)
        self.assertIn("worker:1", summary["recoveries"][-1]["cause"])
        self.assert_undisturbed_result(summary)


if __name__ == "__main__":
    unittest.main()
