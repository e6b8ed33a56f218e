#!/usr/bin/python3
"""The PyTorch half of the activation and loss comparison (exit 77 = skipped: no PyTorch).

Reads the inputs ops_interop wrote (sets "f" and "s" of inputs x, targets t, probabilities p,
log-probabilities logp, upstream gradients gy and gs; the settings), runs each setting with
torch.nn.functional on each set in float32 and float64, and writes the output and the gradients
of input and target, for ops_interop to compare.
"""
import sys
import warnings

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import NAMES, load, save  # beside this file


F = torch.nn.functional
LOSSES = ("l1_loss", "smooth_l1_loss", "huber_loss", "kl_div")


def parse(line):
    words = line.split()
    kv = {}
    for w in words[1:]:
        k, v = w.split("=")
        if k == "log_target":
            kv[k] = v == "1"
        elif k in ("reduction", "approximate"):
            kv[k] = v
        else:
            kv[k] = float(v)
    return words[0], kv


def run(inputs, line, s, dtype):
    op, kv = parse(line)
    x = inputs["x" + s].to(dtype).clone().requires_grad_()
    args = [x]
    if op in LOSSES:
        name = ("logp" if kv.get("log_target") else "p") if op == "kl_div" else "t"
        t = inputs[name + s].to(dtype).clone().requires_grad_()
        args.append(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's reduction='mean' warns
        y = getattr(F, op)(*args, **kv)
    g = inputs[("gy" if y.dim() else "gs") + s].to(dtype)
    y.backward(g)
    out = {"y": y, "gx": x.grad}
    if op in LOSSES:
        out["gt"] = t.grad
    return out


def main():
    d = sys.argv[1]
    inputs, meta = load(f"{d}/inputs.safetensors")
    results = {}
    for i, line in enumerate(meta["settings"].strip().split("\n")):
        for s in ("f", "s"):
            for dtype in (torch.float64, torch.float32):
                for what, t in run(inputs, line, s, dtype).items():
                    results[f"{i}.{s}.{NAMES[dtype]}.{what}"] = t
    save(f"{d}/torch_ops.safetensors", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
