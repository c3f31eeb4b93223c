#!/usr/bin/env python3
"""What 16 bits on the wire buy and cost, on this machine, in one interleaved session.

  1. AllReduce busbw: `meshtrain bench allreduce --workers 2` over each data path
     (shm, tcp, grpc) with --wire-dtype float32, bfloat16 and float16. busbw counts
     the float32 buffer summed (bytes / time x 2(n-1)/n), so a 16-bit wire that moved
     its half of the bytes twice as fast shows as twice the busbw.
  2. The reference job (configs/fashion_mnist_mlp.json) under multi_worker_mirrored
     (2 workers; its default data path here, shm, and tcp) and parameter_server (2
     workers + 1 ps), per wire dtype: samples/s
     and test accuracy, over --seeds (the accuracy cost is the difference per seed).
Every repeat runs every configuration once, in turn, so a noisy minute hits all
alike; medians over repeats are printed, with ratios to float32.

  scripts/bench-wire-dtype.sh [--repeat 3] [--sizes 64K,1M,16M,64M] [--layers shm,tcp,grpc]
                              [--epochs 10] [--seeds 1234,1,2] [--skip-allreduce] [--skip-train]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("float32", "bfloat16", "float16")
STRATEGIES = {
    "multi_worker_mirrored 2w": ["--workers", "2", "--strategy", "multi_worker_mirrored"],
    "multi_worker_mirrored 2w tcp": ["--workers", "2", "--strategy", "multi_worker_mirrored",
                                     "--rpc-layer", "tcp"],
    "parameter_server 2w+1ps": ["--workers", "2", "--ps", "1", "--strategy", "parameter_server"],
}


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def allreduce(binary, layer, dtype, args, tmp):
    out = os.path.join(tmp, f"ar-{layer}-{dtype}.json")
    run([binary, "bench", "allreduce", "--workers", "2", "--sizes", args.sizes, "--rpc-layer", layer,
         "--wire-dtype", dtype, "--min-time", f"{args.min_time}s", "--json", out])
    with open(out) as f:
        return {r["size_bytes"]: r["busbw_gbps"] for r in json.load(f)}


def train(binary, strategy, dtype, seed, args, tmp):
    model_dir = os.path.join(tmp, f"job-{len(os.listdir(tmp))}")
    run([binary, "launch"] + STRATEGIES[strategy] +
        ["--config", os.path.join(ROOT, "configs/fashion_mnist_mlp.json"), "--epochs", str(args.epochs),
         "--seed", str(seed), "--wire-dtype", dtype, "--model-dir", model_dir, "--quiet"])
    with open(os.path.join(model_dir, "summary.json")) as f:
        s = json.load(f)
    return {"samples_per_sec": s["samples_per_sec"], "test_accuracy": s["test_accuracy"],
            "bytes_sent_per_step": s["bytes_sent_per_step"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--meshtrain", default=os.path.join(ROOT, "build/launcher/meshtrain"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sizes", default="64K,1M,16M,64M")
    p.add_argument("--layers", default="shm,tcp,grpc")
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", default="1234")
    p.add_argument("--skip-allreduce", action="store_true")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--json", help="write every measurement here")
    args = p.parse_args()
    layers = args.layers.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    busbw = {(l, d): [] for l in layers for d in DTYPES}
    jobs = {(s, d, seed): [] for s in STRATEGIES for d in DTYPES for seed in seeds}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            print(f"repeat {rep + 1}/{args.repeat} ...", flush=True)
            if not args.skip_allreduce:
                for key in busbw:
                    busbw[key].append(allreduce(args.meshtrain, key[0], key[1], args, tmp))
            if not args.skip_train:
                for key in jobs:
                    jobs[key].append(train(args.meshtrain, key[0], key[1], key[2], args, tmp))
    if not args.skip_allreduce:
        sizes = sorted(busbw[(layers[0], DTYPES[0])][0])
        print(f"\nAllReduce busbw (GB/s of the float32 buffer), 2 ranks, median of {args.repeat}")
        print(f"{'path':>5} {'dtype':>9} " + " ".join(f"{s >> 10:>9}K" for s in sizes))
        for (layer, dtype), runs in busbw.items():
            med = [statistics.median(r[s] for r in runs) for s in sizes]
            base = [statistics.median(r[s] for r in busbw[(layer, "float32")]) for s in sizes]
            print(f"{layer:>5} {dtype:>9} " + " ".join(f"{m:10.2f}" for m in med) +
                  ("" if dtype == "float32" else "   x" + " x".join(f"{m / b:.2f}" for m, b in zip(med, base))))
    if not args.skip_train:
        print(f"\nReference job, {args.epochs} epochs, median of {args.repeat}")
        for (strategy, dtype, seed), runs in jobs.items():
            sps = statistics.median(r["samples_per_sec"] for r in runs)
            acc = statistics.median(r["test_accuracy"] for r in runs)
            base = statistics.median(r["samples_per_sec"] for r in jobs[(strategy, "float32", seed)])
            print(f"{strategy:>26} {dtype:>9} seed {seed:>5}: {sps:10.0f} samples/s (x{sps / base:.2f})"
                  f"  accuracy {acc:.4f}  bytes/step {runs[0]['bytes_sent_per_step']:.0f}"
                  f"  runs {[round(r['samples_per_sec']) for r in runs]} {[r['test_accuracy'] for r in runs]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"busbw": {f"{l} {d}": v for (l, d), v in busbw.items()},
                       "jobs": {f"{s} {d} {seed}": v for (s, d, seed), v in jobs.items()}}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
