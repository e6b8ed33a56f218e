#!/usr/bin/python3
"""PyTorch's side of benchmarks/compare: the same workloads as tapegrad_bench.cpp, float32, CPU.

Prints one JSON object per line: {"name", "threads", "median_us", "min_us", "max_us"}.
Usage: torch_bench.py --threads N [--filter REGEX] [--repeats R]
"""
import argparse
import gzip
import json
import os
import re
import statistics
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"


def timeit(step, repeats, min_seconds=0.2):
    """Median, min and max of `repeats` timings, each averaging enough calls for min_seconds."""
    for _ in range(3):
        step()
    n, elapsed = 1, 0.0
    while True:
        t = time.perf_counter()
        for _ in range(n):
            step()
        elapsed = time.perf_counter() - t
        if elapsed >= min_seconds / 4 or n >= 1 << 20:
            break
        n *= 2
    n = max(1, int(n * (min_seconds / 4) / max(elapsed, 1e-9)))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            step()
        samples.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(samples), min(samples), max(samples)


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def cnn():
    return nn.Sequential(
        nn.Conv1d(28, 64, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(128 * 7, 10))


def train_step(model, x, y, opt):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return torch.frombuffer(bytearray(data[4 + 4 * rank:]), dtype=torch.uint8).reshape(dims)


def workloads():
    g = torch.Generator().manual_seed(0)
    rand = lambda *s: torch.rand(*s, generator=g) * 2 - 1
    labels = lambda n: torch.randint(0, 10, (n,), generator=g)
    w = {}

    x16 = rand(1, 16).requires_grad_()
    def overhead():
        torch.relu(x16).sum().backward()
        x16.grad = None
    w["op-overhead"] = overhead

    for name, sizes, batch in [("mlp-small", [64, 32, 10], 32), ("mlp-fashion", [784, 256, 128, 10], 64),
                               ("mlp-wide", [784, 1024, 1024, 10], 256)]:
        model = mlp(sizes)
        w[name] = train_step(model, rand(batch, sizes[0]), labels(batch),
                             torch.optim.SGD(model.parameters(), lr=0.1))

    # mlp-fashion-grad / -hvp: the loss's gradient with respect to every parameter, and one
    # Hessian-vector product with torch.autograd.functional.hvp (v random).
    model = mlp([784, 256, 128, 10])
    xh, yh = rand(64, 784), labels(64)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().requires_grad_() for p in model.parameters())
    vh = tuple(rand(*p.shape) for p in params)
    def loss_of(*ps, model=model):  # bound now: `model` is reassigned below
        out = torch.nn.utils.stateless.functional_call(model, dict(zip(names, ps)), (xh,))
        return F.cross_entropy(out, yh)
    w["mlp-fashion-grad"] = lambda: torch.autograd.grad(loss_of(*params), params)
    w["mlp-fashion-hvp"] = lambda: torch.autograd.functional.hvp(loss_of, params, vh)

    conv = nn.Conv1d(16, 32, 5, padding=2)
    xc = rand(32, 16, 256)
    def conv_fwd():
        with torch.no_grad():
            conv(xc)
    w["conv1d-fwd"] = conv_fwd
    xg = xc.clone().requires_grad_()
    def conv_fwdbwd():
        conv.zero_grad(set_to_none=True)
        xg.grad = None
        conv(xg).sum().backward()
    w["conv1d-fwdbwd"] = conv_fwdbwd

    model = cnn()
    w["cnn-fashion"] = train_step(model, rand(64, 28, 28), labels(64),
                                  torch.optim.SGD(model.parameters(), lr=0.1))

    a = rand(1024, 1024); b = rand(1024, 1024)
    w["sgemm_rate/1024"] = lambda: torch.mm(a, b)

    # The sweep: the mlp-fashion step at several batches, and the MLP 784-W-W-10 at batch 64.
    for batch in (1, 4, 16, 64, 256, 1024):
        model = mlp([784, 256, 128, 10])
        w[f"sweep/batch/{batch}"] = train_step(model, rand(batch, 784), labels(batch),
                                               torch.optim.SGD(model.parameters(), lr=0.1))
    for width in (64, 128, 256, 512, 1024, 2048, 4096):
        model = mlp([784, width, width, 10])
        w[f"sweep/width/{width}"] = train_step(model, rand(64, 784), labels(64),
                                               torch.optim.SGD(model.parameters(), lr=0.1))

    for rows, cols in [(1, 16), (64, 256), (256, 1024)]:
        x = rand(rows, cols)
        xr = x.clone().requires_grad_()
        bias = rand(cols)
        br = bias.clone().requires_grad_()
        for op_name, op in [("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh),
                            ("exp", torch.exp)]:
            def fwd(op=op, x=x):
                with torch.no_grad():
                    op(x)
            def fwdbwd(op=op, x=xr):
                op(x).sum().backward()
                x.grad = None
            w[f"op/{op_name}/fwd/{rows}/{cols}"] = fwd
            w[f"op/{op_name}/fwdbwd/{rows}/{cols}"] = fwdbwd
        def add_fwd(x=x, b=bias):
            with torch.no_grad():
                x + b
        def add_fwdbwd(x=xr, b=br):
            (x + b).sum().backward()
            x.grad = None
            b.grad = None
        w[f"op/bias_add/fwd/{rows}/{cols}"] = add_fwd
        w[f"op/bias_add/fwdbwd/{rows}/{cols}"] = add_fwdbwd
    for n in (16, 256, 1024):
        a = rand(n, n); b = rand(n, n)
        ar = a.clone().requires_grad_(); br = b.clone().requires_grad_()
        def mm_fwd(a=a, b=b):
            with torch.no_grad():
                torch.mm(a, b)
        def mm_fwdbwd(a=ar, b=br):
            torch.mm(a, b).sum().backward()
            a.grad = None
            b.grad = None
        w[f"op/matmul/fwd/{n}"] = mm_fwd
        w[f"op/matmul/fwdbwd/{n}"] = mm_fwdbwd
    return w


def fashion_epoch(threads):
    """fashion-mlp: one training epoch end to end (batch 64, SGD lr 0.05 momentum 0.9, seed 0)."""
    torch.manual_seed(0)
    images = read_idx(f"{FASHION}/train-images-idx3-ubyte.gz").float().div_(255).reshape(-1, 784)
    labels = read_idx(f"{FASHION}/train-labels-idx1-ubyte.gz").long()
    model = mlp([784, 256, 128, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.randperm(len(labels))
    t = time.perf_counter()
    for i in range(0, len(labels), 64):
        idx = order[i:i + 64]
        train_step(model, images[idx], labels[idx], opt)()
    return (time.perf_counter() - t) * 1e6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--filter", default=".*")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pattern = re.compile(args.filter)
    for name, step in workloads().items():
        if pattern.search(name):
            med, lo, hi = timeit(step, args.repeats)
            print(json.dumps({"name": name, "threads": args.threads, "median_us": med, "min_us": lo,
                              "max_us": hi}), flush=True)
    if pattern.search("fashion-mlp-epoch") and os.path.exists(FASHION):
        samples = [fashion_epoch(args.threads) for _ in range(3)]
        print(json.dumps({"name": "fashion-mlp-epoch", "threads": args.threads,
                          "median_us": statistics.median(samples), "min_us": min(samples),
                          "max_us": max(samples)}), flush=True)


if __name__ == "__main__":
    main()
