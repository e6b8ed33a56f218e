#!/usr/bin/python3
"""The PyTorch half of the optimiser comparison (exit 77 = skipped: no PyTorch).

Reads the problem optim_interop wrote (initial W, b; batches X, Y; the settings), runs each
setting with torch.optim for every batch, in float32 and float64, and writes the final W, b and
the norms clip_grad_norm_ returned, for optim_interop to compare.
"""
import math
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import NAMES, load, save  # beside this file


def optimizer(kind, kv, params):
    args = {k: v for k, v in kv.items() if not k.startswith("clip_")}
    if "beta1" in args or "beta2" in args:
        args["betas"] = (args.pop("beta1", 0.9), args.pop("beta2", 0.999))
    for flag in ("nesterov", "amsgrad", "centered"):
        if flag in args:
            args[flag] = bool(args[flag])
    return getattr(torch.optim, kind)(params, **args)


def run(problem, line, dtype):
    words = line.split()
    kind = words[0]
    kv = {}
    for w in words[1:]:
        k, v = w.split("=")
        kv[k] = math.inf if v == "inf" else float(v)
    w = problem["W"].to(dtype).clone().requires_grad_()
    b = problem["b"].to(dtype).clone().requires_grad_()
    opt = optimizer(kind, kv, [w, b])
    norms = torch.zeros(problem["X"].shape[0], dtype=dtype)
    for s in range(problem["X"].shape[0]):
        x, y = problem["X"][s].to(dtype), problem["Y"][s].to(dtype)
        opt.zero_grad()
        torch.nn.functional.mse_loss(torch.nn.functional.linear(x, w, b), y).backward()
        if "clip_norm" in kv:
            norms[s] = torch.nn.utils.clip_grad_norm_([w, b], kv["clip_norm"], kv.get("clip_type", 2.0))
        if "clip_value" in kv:
            torch.nn.utils.clip_grad_value_([w, b], kv["clip_value"])
        opt.step()
    return w, b, norms


def main():
    d = sys.argv[1]
    problem, meta = load(f"{d}/problem.safetensors")
    results = {}
    for i, line in enumerate(meta["settings"].strip().split("\n")):
        for dtype in (torch.float64, torch.float32):
            w, b, norms = run(problem, line, dtype)
            for name, t in (("W", w), ("b", b), ("norms", norms)):
                results[f"{i}.{NAMES[dtype]}.{name}"] = t
    save(f"{d}/torch_optim.safetensors", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
