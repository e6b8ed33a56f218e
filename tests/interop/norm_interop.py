#!/usr/bin/python3
"""The PyTorch half of the normalisation comparison (exit 77 = skipped: no PyTorch).

Reads the cases norm_interop wrote (x, γ, β, running statistics, upstream gradients gy), runs
torch.nn.functional.batch_norm (training with momentum 1, so the running statistics become the
batch mean and unbiased variance; or evaluation) or layer_norm on each, in float32 and float64,
and writes y, the gradients of x, γ and β, and the batch statistics, for norm_interop to compare.
"""
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import NAMES, load, save  # beside this file


def run(problem, i, line, dtype, rounded_to=None):
    """Runs case i in dtype, on the inputs rounded to `rounded_to` first if given."""
    op, _, normalized, affine, eps = line.split()
    eps = float(eps)
    first = rounded_to or dtype
    get = lambda name: problem[f"{i}.{name}"].to(first).to(dtype).clone()
    x = get("x").requires_grad_()
    w = get("w").requires_grad_() if affine != "none" else None
    b = get("b").requires_grad_() if affine == "both" else None
    out = {}
    if op == "layer_norm":
        shape = [int(d) for d in normalized.split(",")]
        y = F.layer_norm(x, shape, w, b, eps)
    else:
        training = op == "batch_norm"
        mean, var = get("running_mean"), get("running_var")
        before = (mean.clone(), var.clone())
        y = F.batch_norm(x, mean, var, w, b, training=training, momentum=1.0, eps=eps)
        if training and x.numel() > 0:
            out["mean"], out["var"] = mean, var
        elif not (torch.equal(mean, before[0]) and torch.equal(var, before[1])):
            raise RuntimeError(f"case {i}: running statistics changed")
    y.backward(get("gy"))
    out["y"], out["gx"] = y, x.grad
    if w is not None:
        out["gw"] = w.grad
    if b is not None:
        out["gb"] = b.grad
    return out


def main():
    d = sys.argv[1]
    problem, meta = load(f"{d}/problem.safetensors")
    results = {}
    for i, line in enumerate(meta["cases"].strip().split("\n")):
        for dtype in (torch.float64, torch.float32):
            for name, t in run(problem, i, line, dtype).items():
                results[f"{i}.{NAMES[dtype]}.{name}"] = t
        # F32X: the exact answer (to float64's precision) for the float32 inputs.
        for name, t in run(problem, i, line, torch.float64, torch.float32).items():
            results[f"{i}.F32X.{name}"] = t
    save(f"{d}/torch_norm.safetensors", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
