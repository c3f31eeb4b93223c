#!/usr/bin/env python3
"""Elastic training's costs (docs/fault_tolerance.md 5.9), measured on real processes.

Each trial starts a multi_worker_mirrored cluster of --workers tasks on
127.0.0.1 with --elastic --rejoin-grace G, SIGKILLs the last worker at a
random moment of training, then, once the survivors train on N-1, starts it
again and waits for the cluster to train on N. From the chief's summary.json
(the recoveries' detected/resumed times, same clock as this script):

  kill -> N-1     from the SIGKILL to the first step the survivors completed
                  on N-1 workers, less the grace (the issue's goal: <= 1 s median)
  grow -> N       from the new task's start (its exec) to the first step
                  completed on N workers (goal: <= 2 s)
  steps lost      the chief's steps redone (goal: <= 1): the step in flight at most

  scripts/bench-elastic.sh [--repeat 5] [--grace 1s] [--workers 3] [--job synthetic|reference]

The synthetic job is configs/synthetic_elastic.json (test_elastic.py's; steps
of a few ms); the reference job is Fashion-MNIST's MLP (needs the dataset).
"""
import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from processes import Task, free_ports  # noqa: E402
# name: (job config, its arguments): the synthetic job runs 60 epochs, long
# enough for a kill, a shrink and a grow-back on a slow machine.
JOBS = {"synthetic": (os.path.join(ROOT, "configs/synthetic_elastic.json"), ["--epochs", "60"]),
        "reference": (os.path.join(ROOT, "configs/fashion_mnist_mlp.json"), [])}
TRIAL_TIMEOUT = 600  # seconds: every wait of a trial ends by then


def wait_for(task, pattern, deadline):
    """The first line of `task` matching `pattern`; raises at `deadline` (time.time())."""
    rule = re.compile(pattern)
    if not task.wait_for_line(rule.search, max(0.0, deadline - time.time())):
        raise RuntimeError(f"no line matching {pattern!r}; last lines:\n" + "\n".join(task.lines[-30:]))


def trial(binary, args, tmp):
    config, job_args = JOBS[args.job]
    ports = free_ports(args.workers)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    model_dir = tempfile.mkdtemp(dir=tmp)
    cmd = [binary, "train", "--config", config, "--strategy", "multi_worker_mirrored", "--elastic",
           "--rejoin-grace", args.grace, "--model-dir", model_dir] + job_args

    def start(i):
        return Task(cmd, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})

    tasks = [start(i) for i in range(args.workers)]
    victim = args.workers - 1
    deadline = time.time() + TRIAL_TIMEOUT
    try:
        wait_for(tasks[0], r"stuck rule: ", deadline)  # training runs (8 steps done)
        time.sleep(random.uniform(0.0, 0.5))
        killed = time.time()
        tasks[victim].kill()
        wait_for(tasks[0], rf"trains on {args.workers - 1} worker\(s\)", deadline)
        wait_for(tasks[0], rf"resumed training at step .*{args.workers - 1} training workers", deadline)
        joiner = start(victim)
        tasks.append(joiner)
        for t in tasks[:victim] + [joiner]:
            code = t.proc.wait(timeout=max(1, deadline - time.time()))
            if code != 0:
                raise RuntimeError(f"a task exited {code}:\n" + "\n".join(t.lines[-30:]))
    finally:
        for t in tasks:
            t.kill()
    with open(os.path.join(model_dir, "summary.json")) as f:
        recoveries = json.load(f)["recoveries"]
    shrink = next(r for r in recoveries if r["workers"] == args.workers - 1)
    grow = next(r for r in recoveries if r["workers"] == args.workers and r["detected_unix"] > shrink["resumed_unix"])
    grace = parse_seconds(args.grace)
    return {"kill_to_resumed_s": shrink["resumed_unix"] - killed,
            "after_grace_s": shrink["resumed_unix"] - killed - grace,
            "grow_s": grow["resumed_unix"] - joiner.started_unix,
            "steps_lost": shrink["steps_lost"]}


def parse_seconds(text):
    m = re.fullmatch(r"([\d.]+)(ms|s)", text)
    if not m:
        raise SystemExit(f"--grace {text}: write it as 1s or 500ms")
    return float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build/launcher/meshtrain"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--grace", default="1s")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--job", choices=["synthetic", "reference"], default="synthetic")
    parser.add_argument("--json", help="write the trials here")
    args = parser.parse_args()
    parse_seconds(args.grace)
    with tempfile.TemporaryDirectory(prefix="bench-elastic-") as tmp:
        rows = []
        for i in range(args.repeat):
            row = trial(args.binary, args, tmp)
            rows.append(row)
            print(f"trial {i + 1}: kill -> {args.workers - 1} workers {row['kill_to_resumed_s']:.3f} s "
                  f"({row['after_grace_s']:.3f} s after the {args.grace} grace), "
                  f"grow -> {args.workers} {row['grow_s']:.3f} s after the task started, "
                  f"steps lost {row['steps_lost']}", flush=True)
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"median of {len(rows)}: kill -> N-1 {median['after_grace_s']:.3f} s after the grace (goal <= 1), "
          f"grow -> N {median['grow_s']:.3f} s (goal <= 2), steps lost max {max(r['steps_lost'] for r in rows)} "
          f"(goal <= 1)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"trials": rows, "median": median, "grace": args.grace, "workers": args.workers,
                       "job": args.job}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
