#!/usr/bin/python3
"""The reference job in PyTorch, the peer meshtrain's benchmarks compare with.

Fashion-MNIST, MLP 784-300-100-10 (ReLU) or, with --model cnn, the reference CNN
(configs/fashion_mnist_cnn.json), softmax cross-entropy, SGD momentum 0.9,
lr 0.05, global batch 256 split over ranks, data reshuffled each epoch and sharded
by rank (DistributedSampler), CPU. One process (--nproc 1) is plain PyTorch; more
ranks use DistributedDataParallel over gloo on 127.0.0.1.

Throughput = global training samples / training time per epoch (barriers around the
training loop; evaluation excluded), as meshtrain reports it. Prints one JSON object.

  /usr/bin/python3 scripts/peers/torch_mlp.py --nproc 1 --threads 1 --epochs 3

With RANK and WORLD_SIZE in the environment (torchrun's variables, which the
many-hosts benchmark sets with MASTER_ADDR, MASTER_PORT and GLOO_SOCKET_IFNAME
per host), it runs that one rank instead of spawning --nproc on 127.0.0.1.
"""
import argparse
import os
import sys


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--nproc", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per rank")
    p.add_argument("--blas-threads", type=int, default=None, help="OpenBLAS threads (default: --threads)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--global-batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--port", type=int, default=29531)
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                   help="mlp: the reference job; cnn: configs/fashion_mnist_cnn.json's network")
    return p.parse_args()


ARGS = parse()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads or ARGS.threads)
os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")

import gzip  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d):
    x = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
    xt = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    # The CNN takes NCHW images; the MLP flat rows.
    shape = (1, 28, 28) if ARGS.model == "cnn" else (-1,)
    f = lambda a: torch.from_numpy(a.reshape(a.shape[0], *shape).astype(np.float32) / 255.0)
    y = torch.from_numpy(read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    yt = torch.from_numpy(read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    return f(x), y, f(xt), yt


class Length(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def make_model():
    if ARGS.model == "cnn":
        # conv2d 32 3x3 same relu, max_pool2d 2, conv2d 64 3x3 same relu, max_pool2d 2,
        # flatten, dense 128 relu, dense 10 (configs/fashion_mnist_cnn.json).
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))


def worker(rank, world):
    torch.set_num_threads(ARGS.threads)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    xtr, ytr, xte, yte = load(ARGS.data)
    local = ARGS.global_batch // world
    torch.manual_seed(ARGS.seed)
    model = make_model()
    net = DDP(model) if world > 1 else model
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    sampler = DistributedSampler(Length(len(xtr)), num_replicas=world, rank=rank, shuffle=True, seed=ARGS.seed)
    barrier = dist.barrier if world > 1 else (lambda: None)
    epochs = []
    for epoch in range(ARGS.epochs):
        sampler.set_epoch(epoch)
        idx = torch.tensor(list(iter(sampler)), dtype=torch.int64)
        barrier()
        t0 = time.perf_counter()
        for i in range(0, idx.numel(), local):
            b = idx[i:i + local]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xtr.index_select(0, b)), ytr.index_select(0, b)).backward()
            opt.step()
        barrier()
        train_s = time.perf_counter() - t0
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        epochs.append({"epoch": epoch + 1, "train_s": train_s, "samples_per_sec": len(idx) * world / train_s,
                       "test_accuracy": acc})
    if rank == 0:
        total = sum(e["train_s"] for e in epochs)
        print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "model": ARGS.model, "nproc": world, "threads": ARGS.threads,
                          "blas_threads": ARGS.blas_threads or ARGS.threads, "epochs": epochs,
                          "samples_per_sec": len(idx) * world * len(epochs) / total,
                          "test_accuracy": epochs[-1]["test_accuracy"]}), flush=True)
    if world > 1:
        dist.destroy_process_group()


def spawned(rank, world):
    worker(rank, world)


if __name__ == "__main__":
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
        sys.exit(0)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(ARGS.port)
    if ARGS.nproc == 1:
        worker(0, 1)
    else:
        import torch.multiprocessing as mp
        mp.spawn(spawned, args=(ARGS.nproc,), nprocs=ARGS.nproc, join=True)
    sys.exit(0)
