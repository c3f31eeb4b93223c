#!/usr/bin/env python3
"""The reference job in PyTorch eager mode on one GPU: the peer for
`meshtrain train --devices gpu:0` (scripts/bench-gpu.sh runs both).

Fashion-MNIST, MLP 784-300-100-10 (ReLU), softmax cross-entropy, SGD momentum
0.9, lr 0.05, batch 256, data reshuffled every epoch with a fixed seed, test
accuracy after each epoch. Throughput = training samples / training time, with
torch.cuda.synchronize() at both ends of each epoch's loop (evaluation
excluded), as meshtrain's summary.json counts it.

--inputs host (default) keeps the data in pinned host memory and copies each
batch to the GPU with non_blocking=True, as meshtrain does; --inputs device
keeps the whole training set on the GPU (PyTorch's best case).
Prints one JSON line.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    def images(name):
        a = read_idx(os.path.join(data_dir, name))
        return torch.from_numpy(a.reshape(a.shape[0], -1).astype(np.float32) / 255.0)

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(data_dir, name)).astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--inputs", choices=["host", "device"], default="host")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("torch_mlp_gpu.py: torch.cuda.is_available() is False")
    dev = torch.device("cuda:0")
    xtr, ytr, xte, yte = load(args.data)
    if args.inputs == "device":
        xtr, ytr = xtr.to(dev), ytr.to(dev)
    else:
        xtr, ytr = xtr.pin_memory(), ytr.pin_memory()
    xte, yte = xte.to(dev), yte.to(dev)
    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                          nn.Linear(100, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    n = xtr.shape[0]
    train_s, samples, history = 0.0, 0, []
    for epoch in range(args.epochs):
        order = torch.randperm(n, generator=gen)
        if args.inputs == "device":
            order = order.to(dev)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for begin in range(0, n, args.batch):
            idx = order[begin:begin + args.batch]
            if args.inputs == "device":
                x, y = xtr[idx], ytr[idx]
            else:
                x = xtr[idx].pin_memory().to(dev, non_blocking=True)
                y = ytr[idx].pin_memory().to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        train_s += time.perf_counter() - t0
        samples += n
        with torch.no_grad():
            acc = (model(xte).argmax(dim=1) == yte).float().mean().item()
        history.append({"epoch": epoch + 1, "test_accuracy": acc})
    print(json.dumps({"framework": f"torch {torch.__version__} eager", "gpu": torch.cuda.get_device_name(0),
                      "inputs": args.inputs, "epochs": args.epochs, "samples_per_sec": samples / train_s,
                      "train_seconds": train_s, "test_accuracy": history[-1]["test_accuracy"],
                      "history": history}))


if __name__ == "__main__":
    main()
