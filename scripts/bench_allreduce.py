#!/usr/bin/env python3
"""AllReduce busbw of meshtrain beside torch gloo and Open MPI, in one run, as ratios.

Runs, for each repeat (interleaved, so a noisy minute hits every system alike):
  meshtrain bench allreduce over shm, tcp and grpc;
  torch.distributed gloo (scripts/peers/torch_allreduce.py, Debian's /usr/bin/python3);
  Open MPI MPI_Allreduce over TCP and over shared memory (scripts/peers/mpi_allreduce.c).
Prints busbw (GB/s, median over repeats) per size and the ratios the project's
goals name. Peers that are not installed are skipped with a note.

  scripts/bench-allreduce.sh [--workers 2] [--sizes 4K,64K,1M,16M,64M] [--repeat 3] [--min-time 1]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPI_FLAGS = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl_tcp_if_include", "lo",
             "--mca", "oob_tcp_if_include", "lo"]


def parse_size(s):
    s = s.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def fmt_size(b):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= div:
            return f"{b // div} {unit}"
    return f"{b} B"


def run_json(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def meshtrain(binary, layer, args, tmp, field="busbw_gbps"):
    """{size_bytes: the row's field} of `meshtrain bench allreduce` on 127.0.0.1."""
    out = os.path.join(tmp, f"mt-{layer}.json")
    run_json([binary, "bench", "allreduce", "--workers", str(args.workers), "--sizes", args.sizes,
              "--rpc-layer", layer, "--min-time", f"{args.min_time}s", "--json", out])
    with open(out) as f:
        return {r["size_bytes"]: r[field] for r in json.load(f)}


def gloo(sizes, args):
    proc = run_json(["/usr/bin/python3", os.path.join(ROOT, "scripts/peers/torch_allreduce.py"),
                     "--nproc", str(args.workers), "--sizes", ",".join(map(str, sizes)),
                     "--min-time", str(args.min_time)])
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return {r["size_bytes"]: r["busbw_gbps"] for r in rows}


def mpi(exe, sizes, args, tcp):
    extra = ["--mca", "pml", "ob1", "--mca", "btl", "tcp,self"] if tcp else []
    proc = run_json(["mpirun"] + MPI_FLAGS + extra + ["-np", str(args.workers), exe, str(args.min_time)] +
                    [str(s) for s in sizes])
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    return {r["size_bytes"]: r["busbw_gbps"] for r in rows}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--meshtrain", default=os.path.join(ROOT, "build/launcher/meshtrain"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sizes", default="4K,64K,1M,16M,64M")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--json", help="write every measurement here")
    args = p.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    have_torch = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0
    have_mpi = shutil.which("mpirun") and shutil.which("mpicc")
    systems = {"meshtrain shm": [], "meshtrain tcp": [], "meshtrain grpc": []}
    if have_torch:
        systems["torch gloo"] = []
    else:
        print("note: /usr/bin/python3 has no torch (scripts/install-deps.sh --peers): gloo skipped")
    with tempfile.TemporaryDirectory() as tmp:
        mpi_exe = os.path.join(tmp, "mpi_allreduce")
        if have_mpi:
            subprocess.run(["mpicc", "-O2", "-o", mpi_exe, os.path.join(ROOT, "scripts/peers/mpi_allreduce.c")],
                           check=True)
            systems["Open MPI tcp"] = []
            systems["Open MPI shm"] = []
        else:
            print("note: Open MPI is not installed: MPI skipped")
        for rep in range(args.repeat):
            print(f"repeat {rep + 1}/{args.repeat} ...", flush=True)
            for layer in ("shm", "tcp", "grpc"):
                systems[f"meshtrain {layer}"].append(meshtrain(args.meshtrain, layer, args, tmp))
            if have_torch:
                systems["torch gloo"].append(gloo(sizes, args))
            if have_mpi:
                systems["Open MPI tcp"].append(mpi(mpi_exe, sizes, args, True))
                systems["Open MPI shm"].append(mpi(mpi_exe, sizes, args, False))
    med = {name: {s: statistics.median(r[s] for r in runs) for s in sizes} for name, runs in systems.items()}
    print(f"\nAllReduce busbw (GB/s), {args.workers} ranks on 127.0.0.1, median of {args.repeat} interleaved runs")
    names = list(med)
    print(f"{'size':>8} " + " ".join(f"{n:>14}" for n in names))
    for s in sizes:
        print(f"{fmt_size(s):>8} " + " ".join(f"{med[n][s]:14.2f}" for n in names))
    ratios = [("meshtrain shm", "torch gloo"), ("meshtrain tcp", "torch gloo"),
              ("meshtrain shm", "Open MPI tcp"), ("meshtrain tcp", "Open MPI tcp"),
              ("meshtrain shm", "Open MPI shm")]
    print("\nratios")
    for a, b in ratios:
        if a in med and b in med:
            print(f"  {a:>14} / {b:<14} " + "  ".join(f"{fmt_size(s)} {med[a][s] / med[b][s]:5.2f}x" for s in sizes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workers": args.workers, "runs": systems, "median": med}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
