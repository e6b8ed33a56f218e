#!/usr/bin/python3
"""The PyTorch half of the cross-entropy comparison (exit 77 = skipped: no PyTorch).

Reads the inputs cross_entropy_interop wrote (logits x, labels, probability targets p, class
weights w, upstream gradients gy and gs; the settings), runs each setting with
torch.nn.functional.cross_entropy in float32 and float64, and writes the loss and the logits'
gradient, for cross_entropy_interop to compare.
"""
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import NAMES, load, save  # beside this file


def parse(line):
    return dict(w.split("=") for w in line.split()[1:])


def run(inputs, line, dtype):
    kv = parse(line)
    x = inputs["x"].to(dtype).clone().requires_grad_()
    if kv["target"] == "labels":
        target = inputs["labels"].round().long()
    else:
        target = inputs["p"].to(dtype)
    weight = inputs["w"].to(dtype) if kv["weight"] == "1" else None
    y = torch.nn.functional.cross_entropy(x, target, weight=weight, reduction=kv["reduction"],
                                          label_smoothing=float(kv["label_smoothing"]))
    y.backward(inputs["gy" if y.dim() else "gs"].to(dtype))
    return {"y": y, "gx": x.grad}


def main():
    d = sys.argv[1]
    inputs, meta = load(f"{d}/inputs.safetensors")
    results = {}
    for i, line in enumerate(meta["settings"].strip().split("\n")):
        for dtype in (torch.float64, torch.float32):
            for what, t in run(inputs, line, dtype).items():
                results[f"{i}.{NAMES[dtype]}.{what}"] = t
    save(f"{d}/torch_ce.safetensors", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
