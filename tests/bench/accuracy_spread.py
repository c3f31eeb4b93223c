"""Development benchmark (not a test): the spread of an undisturbed job's test
accuracy over seeds, the figure a statistical bound in the integration tests
is set from. Asynchronous training (parameter_server) is not deterministic, so
its fault tests compare a disturbed run's accuracy with one undisturbed run's
within a bound; that bound must exceed the largest difference between two
undisturbed runs, with margin.

By default: the job of tests/integration/test_ps_fault_tolerance.py (2 workers,
2 ps, 5 epochs, a checkpoint every 50 steps) once per seed.

  MESHTRAIN_BIN=build/launcher/meshtrain python3 tests/bench/accuracy_spread.py [--seeds 10]
"""
import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import BIN  # noqa: E402
from test_ps_fault_tolerance import JOB, PS  # noqa: E402

RUN_TIMEOUT_S = 600


def run_once(seed, args, scratch):
    model_dir = os.path.join(scratch, f"seed-{seed}")
    began = time.monotonic()
    proc = subprocess.run([BIN, "launch", "--model-dir", model_dir, "--seed", str(seed)] + args,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0:
        sys.exit(f"seed {seed}: meshtrain launch exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    with open(os.path.join(model_dir, "summary.json")) as f:
        accuracy = json.load(f)["test_accuracy"]
    shutil.rmtree(model_dir, ignore_errors=True)
    return accuracy, time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="runs, seeds 1..N (at least 2)")
    parser.add_argument("args", nargs="*", help="meshtrain launch arguments (default: the ps fault test's job)")
    options = parser.parse_args()
    if options.seeds < 2:
        parser.error("--seeds must be at least 2")
    args = options.args or PS + JOB
    accuracies = []
    with tempfile.TemporaryDirectory(prefix="meshtrain-spread-") as scratch:
        for seed in range(1, options.seeds + 1):
            accuracy, seconds = run_once(seed, args, scratch)
            accuracies.append(accuracy)
            print(f"seed {seed}: test accuracy {accuracy:.4f} ({seconds:.0f} s)", flush=True)
    widest = max(abs(a - b) for a, b in itertools.combinations(accuracies, 2))
    print(json.dumps({
        "job": " ".join(args), "runs": len(accuracies),
        "min": round(min(accuracies), 4), "max": round(max(accuracies), 4),
        "mean": round(statistics.mean(accuracies), 4), "stdev": round(statistics.stdev(accuracies), 4),
        "largest_difference_between_two_runs": round(widest, 4),
    }))


if __name__ == "__main__":
    main()
