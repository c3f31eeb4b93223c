"""--trace: every task's steps and collectives in one Chrome trace (JSON trace
events on one time axis), as Perfetto and chrome://tracing read it."""
import glob
import json
import os
import unittest

from harness import (ClusterTestCase, REFERENCE, requires_fashion_mnist)

STEPS = 40


def load(path):
    with open(path) as f:
        return json.load(f)


def spans(trace, name):
    return [e for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"] == name]


@requires_fashion_mnist
class TraceTest(ClusterTestCase):

    def test_launch_merges_every_tasks_timeline(self):
        trace_file = os.path.join(self.tmp, "trace.json")
        task = self.start(["launch", "--workers", "2", "--config", REFERENCE, "--epochs", "1",
                           "--max-steps", str(STEPS), "--model-dir", os.path.join(self.tmp, "run"),
                           "--trace", trace_file], name="launch")
        self.assert_exit(task, 0, timeout=120)
        self.assertEqual(glob.glob(trace_file + ".*"), [], "the per-task parts are merged and removed")
        trace = load(trace_file)
        names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "process_name"}
        self.assertEqual(sorted(names.values()), ["worker:0", "worker:1"])
        for e in trace["traceEvents"]:
            if e.get("ph") == "X":
                self.assertIsInstance(e["ts"], int)
                self.assertGreaterEqual(e["dur"], 0)
        steps = {pid: sorted((e for e in spans(trace, "step") if e["pid"] == pid), key=lambda e: e["ts"])
                 for pid in names}
        for pid, list_ in steps.items():
            self.assertEqual(len(list_), STEPS, names[pid])
            self.assertEqual([e["args"]["step"] for e in list_], list(range(STEPS)))
        # Gradients meet in allreduce spans on both workers, with their bytes.
        allreduce = spans(trace, "allreduce")
        self.assertEqual({e["pid"] for e in allreduce}, set(names))
        self.assertTrue(all(e["args"]["bytes"] > 0 for e in allreduce))
        # One time axis: a synchronous step overlaps on the two workers.
        a, b = list(steps.values())
        overlapping = sum(1 for x, y in zip(a, b)
                          if x["ts"] < y["ts"] + y["dur"] and y["ts"] < x["ts"] + x["dur"])
        self.assertGreaterEqual(overlapping, STEPS * 0.9)

    def test_lone_process_names_its_replica_threads(self):
        # --overlap thread: `auto` starts combiner threads only where a core is
        # spare, which depends on the machine the test runs on.
        trace_file = os.path.join(self.tmp, "mirrored.json")
        task = self.start(["train", "--config", REFERENCE, "--strategy", "mirrored", "--devices", "2",
                           "--overlap", "thread", "--max-steps", "10", "--trace", trace_file], name="train")
        self.assert_exit(task, 0, timeout=120)
        trace = load(trace_file)
        threads = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
        self.assertTrue({"training loop", "replica 0", "replica 1", "combiner 0", "combiner 1"} <= threads, threads)
        self.assertEqual(len(spans(trace, "forward_backward")), 20)  # 10 steps x 2 replicas
        self.assertEqual(len(spans(trace, "step")), 10)


if __name__ == "__main__":
    unittest.main()
