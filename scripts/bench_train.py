#!/usr/bin/env python3
"""The reference job's throughput: meshtrain beside PyTorch, in one run, as ratios.

Each pair runs the same job (Fashion-MNIST MLP, global batch 256, SGD momentum)
with the same cores; repeats are interleaved so a noisy minute hits both sides.
samples/s = global training samples / training time (evaluation excluded), the
definition of both meshtrain's summary.json and scripts/peers/torch_mlp.py.

Pairs (the project's goals):
  one_device, 1 thread           vs PyTorch 1 process, 1 thread          (goal >= 1.0x)
  one_device, 2 threads          vs PyTorch 1 process, 2 BLAS threads    (goal >= 1.0x; PyTorch's
                                 fastest 2-thread setting: set_num_threads(2) alone is ~3x slower)
  mirrored, 2 CPU replicas       vs PyTorch 1 process, 2 BLAS threads    (goal >= 0.9x)
  central_storage, 2 replicas    vs PyTorch 1 process, 2 BLAS threads    (for reference)
  multi_worker_mirrored 2x1      vs PyTorch DDP (gloo) 2 ranks x 1 thread (goal >= 2.0x)
  parameter_server 2 workers+1ps vs PyTorch DDP (gloo) 2 ranks x 1 thread (goal >= 1.5x)

  scripts/bench-train.sh [--model mlp|cnn] [--epochs 3] [--repeat 3] [--only one_device_1t,mwms_2x1]
  scripts/bench-train.sh --model cnn --epochs 10 --repeat 1 --no-peer   # the CNN's full 10 epochs

The goals above are the reference job's; the reference CNN's (issue 16) are
>= 2.0x at one_device_1t, one_device_2t and mwms_2x1.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"mlp": os.path.join(ROOT, "configs/fashion_mnist_mlp.json"),
           "cnn": os.path.join(ROOT, "configs/fashion_mnist_cnn.json")}

# name: (meshtrain arguments, torch arguments, goal ratio or None)
PAIRS = {
    "one_device_1t": (["train", "--strategy", "one_device", "--threads", "1"],
                      ["--nproc", "1", "--threads", "1"], 1.0),
    "one_device_2t": (["train", "--strategy", "one_device", "--threads", "2"],
                      ["--nproc", "1", "--threads", "1", "--blas-threads", "2"], 1.0),
    "mirrored_2": (["train", "--strategy", "mirrored", "--devices", "cpu:0,cpu:1", "--threads", "2"],
                   ["--nproc", "1", "--threads", "1", "--blas-threads", "2"], 0.9),
    "central_storage_2": (["train", "--strategy", "central_storage", "--devices", "cpu:0,cpu:1", "--threads", "2"],
                          ["--nproc", "1", "--threads", "1", "--blas-threads", "2"], None),
    "mwms_2x1": (["launch", "--workers", "2", "--strategy", "multi_worker_mirrored"],
                 ["--nproc", "2", "--threads", "1"], 2.0),
    "ps_2w1ps": (["launch", "--workers", "2", "--ps", "1", "--strategy", "parameter_server"],
                 ["--nproc", "2", "--threads", "1"], 1.5),
}

# The reference CNN's goals (issue 16).
CNN_GOALS = {"one_device_1t": 2.0, "one_device_2t": 2.0, "mwms_2x1": 2.0}


def run_meshtrain(binary, args, model, epochs, tmp):
    model_dir = tempfile.mkdtemp(dir=tmp)
    cmd = [binary] + args + ["--config", CONFIGS[model], "--epochs", str(epochs), "--model-dir", model_dir, "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with open(os.path.join(model_dir, "summary.json")) as f:
        s = json.load(f)
    history = [round(e["test_accuracy"], 4) for e in s.get("history", [])]
    if len(history) > 1:
        print(f"  test accuracy by epoch: {', '.join(f'{a:.4f}' for a in history)}", flush=True)
    return s["samples_per_sec"], s["test_accuracy"], history


def run_torch(args, model, epochs):
    cmd = ["/usr/bin/python3", os.path.join(ROOT, "scripts/peers/torch_mlp.py"), "--model", model,
           "--epochs", str(epochs)] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return r["samples_per_sec"], r["test_accuracy"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--meshtrain", default=os.path.join(ROOT, "build/launcher/meshtrain"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--model", choices=sorted(CONFIGS), default="mlp",
                   help="mlp: the reference job; cnn: the reference CNN (the same network in PyTorch)")
    p.add_argument("--no-peer", action="store_true", help="meshtrain only (accuracy runs)")
    p.add_argument("--only", default="", help="comma-separated pair names: " + ",".join(PAIRS))
    p.add_argument("--json", help="write every measurement here")
    args = p.parse_args()
    names = [n for n in (args.only.split(",") if args.only else PAIRS) if n]
    results = {n: {"meshtrain": [], "pytorch": []} for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for n in names:
                mt_args, torch_args, _ = PAIRS[n]
                print(f"repeat {rep + 1}/{args.repeat}: {n}", flush=True)
                results[n]["meshtrain"].append(
                    run_meshtrain(args.meshtrain, mt_args, args.model, args.epochs, tmp))
                if not args.no_peer:
                    results[n]["pytorch"].append(run_torch(torch_args, args.model, args.epochs))
    print(f"\n{args.model} job ({os.path.relpath(CONFIGS[args.model], ROOT)}), {args.epochs} epochs, "
          f"median of {args.repeat} interleaved runs (samples/s)")
    print(f"{'pair':<20} {'meshtrain':>10} {'acc':>6} {'pytorch':>10} {'acc':>6} {'ratio':>7} {'goal':>6}")
    for n in names:
        mt = statistics.median(x[0] for x in results[n]["meshtrain"])
        mt_acc = results[n]["meshtrain"][-1][1]
        if args.no_peer:
            print(f"{n:<20} {mt:10.0f} {mt_acc:6.3f}")
            continue
        pt = statistics.median(x[0] for x in results[n]["pytorch"])
        pt_acc = results[n]["pytorch"][-1][1]
        goal = PAIRS[n][2] if args.model == "mlp" else CNN_GOALS.get(n)
        print(f"{n:<20} {mt:10.0f} {mt_acc:6.3f} {pt:10.0f} {pt_acc:6.3f} {mt / pt:6.2f}x "
              f"{(f'{goal:.1f}x' if goal else '-'):>6}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
