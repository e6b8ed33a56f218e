#!/usr/bin/python3
"""The PyTorch half of the normalisation comparison (exit 77 = skipped: no PyTorch).

Reads the cases norm_interop wrote (x, γ, β, running statistics, upstream gradients gy), runs
torch.nn.functional.batch_norm (training with momentum 1, so the running statistics become the
batch mean and unbiased variance; or evaluation) or layer_norm on each, in float32 and float64,
and writes y, the gradients of x, γ and β, and the batch statistics, for norm_interop to compare.
"""
import json
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}
NAMES = {torch.float32: "F32", torch.float64: "F64"}


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        if begin == end:  # frombuffer refuses an empty buffer
            out[name] = torch.zeros(info["shape"], dtype=dtype)
            continue
        raw = bytearray(data[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]).clone()
    return out, header.get("__metadata__", {})


def save(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs))


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
