"""Development benchmark (not a test): how fast a cluster (multi_worker_mirrored
or parameter_server) notices a SIGKILLed task and resumes training, and how
many steps it redoes.

For each scenario it runs `meshtrain launch --max-restarts 2` on the reference
job (3 epochs, a checkpoint every 50 steps) N times, SIGKILLs the victim at a
random moment after the first checkpoint, and reads the log timestamps (ms) of
every survivor's "training failed" (a worker) or "stopped serving" (a ps) line
and every task's "resumed training" line against the kill time. A
parameter-server worker restarts alone (nobody fails): its resume is its
"restore:" line, just before its first step.

  MESHTRAIN_BIN=build/launcher/meshtrain python3 tests/bench/fault_tolerance_bench.py [--runs 5]
"""
import argparse
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import LOG_TIME, Task, committed, now_of_day, started_pid, time_of_day  # noqa: E402
from test_fault_tolerance import JOB  # noqa: E402

MWMS = ["--strategy", "multi_worker_mirrored"]
SCENARIOS = [
    ("shm, 2 workers, kill worker:1", MWMS + ["--workers", "2"], "worker:1"),
    ("shm, 2 workers, kill the chief", MWMS + ["--workers", "2"], "worker:0"),
    ("grpc, 2 workers, kill worker:1", MWMS + ["--workers", "2", "--rpc-layer", "grpc"], "worker:1"),
    ("shm, 3 workers, kill worker:1", MWMS + ["--workers", "3", "--global-batch-size", "255"], "worker:1"),
    ("ps, 2 workers + 2 ps, kill worker:1", ["--workers", "2", "--ps", "2"], "worker:1"),
    ("ps, 2 workers + 2 ps, kill the chief", ["--workers", "2", "--ps", "2"], "worker:0"),
    ("ps, 2 workers + 2 ps, kill ps:0", ["--workers", "2", "--ps", "2"], "ps:0"),
]


def run_once(model_dir, shape, victim, rng):
    task = Task(["launch", "--model-dir", model_dir, "--max-restarts", "2"] + shape + JOB, name="launch")
    try:
        if not task.wait_for_line(lambda l: committed(l, 50), 120):
            raise RuntimeError(task.output())
        time.sleep(rng.uniform(0.0, 1.5))  # a random moment
        killed_at = now_of_day()
        os.kill(started_pid(task, victim), signal.SIGKILL)
        if task.wait(300) != 0:
            raise RuntimeError(task.output())
    finally:
        task.kill()
    errors, resumed, lost, alone = {}, [], [], []
    for line in task.lines:
        m = LOG_TIME.match(line)
        who = m.group("task") if m else None
        t = time_of_day(line) if m else None
        if ("training failed after" in line or "stopped serving" in line) and who not in errors:
            errors[who] = t - killed_at
        if "resumed training at step" in line:
            resumed.append(t - killed_at)
            steps = re.search(r"(\d+) steps lost", line)
            if steps:
                lost.append(int(steps.group(1)))
        if who == victim and "restore:" in line and t is not None and t > killed_at:
            alone.append(t - killed_at)
    return {"kill_to_error_s": errors, "kill_to_resumed_s": max(resumed) if resumed else min(alone, default=None),
            "steps_lost": max(lost) if lost else None}


def describe(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for name, shape, victim in SCENARIOS:
        if args.only not in name:
            continue
        results = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="meshtrain-ft-bench-") as tmp:
                results.append(run_once(os.path.join(tmp, "run"), shape, victim, rng))
            print(f"  {name} run {i + 1}: {json.dumps(results[-1])}", flush=True)
        errors = [e for r in results for e in r["kill_to_error_s"].values()]
        print(f"{name}: kill to error on survivors {describe(errors)} s; kill to training resumed "
              f"{describe([r['kill_to_resumed_s'] for r in results])} s; steps lost "
              f"{describe([r['steps_lost'] for r in results])}", flush=True)


if __name__ == "__main__":
    main()
