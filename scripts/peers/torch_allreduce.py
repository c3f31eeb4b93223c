#!/usr/bin/python3
"""torch.distributed (gloo) all_reduce of float32 on 127.0.0.1: the peer of
`meshtrain bench allreduce`, with the same method: per size a few warm-up ops,
then iterations of barrier; t0; all_reduce; t1 until --min-time has passed (at
least 5, at most 2000); an iteration's time is the slowest rank's; the median
is reported. Prints a JSON list of {size_bytes, time_s, algbw_gbps, busbw_gbps}.

  /usr/bin/python3 scripts/peers/torch_allreduce.py --nproc 2 --sizes 4096,1048576

With RANK and WORLD_SIZE in the environment (as torchrun and the many-hosts
benchmark set them, with MASTER_ADDR, MASTER_PORT and GLOO_SOCKET_IFNAME), it
runs that one rank instead of spawning --nproc ranks on 127.0.0.1.
"""
import argparse
import json
import os
import statistics
import time


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--sizes", default="4096,65536,1048576,16777216,67108864")
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--port", type=int, default=29532)
    return p.parse_args()


def worker(rank, world, args):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        x = torch.ones(size // 4, dtype=torch.float32)
        for _ in range(3):
            dist.all_reduce(x)
        times, start = [], time.perf_counter()
        while len(times) < 5 or (time.perf_counter() - start < args.min_time and len(times) < 2000):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            t = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            times.append(t.item())
        med = statistics.median(times)
        algbw = size / med / 1e9
        rows.append({"size_bytes": size, "time_s": med, "algbw_gbps": algbw,
                     "busbw_gbps": algbw * 2 * (world - 1) / world, "iters": len(times)})
    if rank == 0:
        print(json.dumps(rows), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    args = parse()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args)
        raise SystemExit(0)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(args.port), GLOO_SOCKET_IFNAME="lo")
    import torch.multiprocessing as mp
    mp.spawn(worker, args=(args.nproc, args), nprocs=args.nproc, join=True)
