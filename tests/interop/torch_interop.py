#!/usr/bin/python3
"""The PyTorch half of the parameter-file round trip (exit 77 = skipped: no PyTorch).

1. Loads the safetensors file tapegrad wrote into the same torch.nn.Sequential with
   load_state_dict(strict=True) and checks PyTorch computes tapegrad's output.
2. Changes the weights, writes them as safetensors, and writes PyTorch's new output, for
   torch_interop_model read to check.
Debian's PyTorch 1.13 has no safetensors module, so the format is read and written here by hand.
"""
import json
import struct
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


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
        raw = bytearray(data[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]).clone()
    return out


def save(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        raw = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs))


def main():
    d = sys.argv[1]
    model = torch.nn.Sequential(
        torch.nn.Conv1d(28, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
        torch.nn.Conv1d(64, 128, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
        torch.nn.Flatten(), torch.nn.Linear(128 * 7, 10))
    model.load_state_dict(load(f"{d}/tapegrad.safetensors"), strict=True)
    io = load(f"{d}/io.safetensors")
    with torch.no_grad():
        diff = (model(io["x"]) - io["y"]).abs().max().item()
    print(f"PyTorch vs tapegrad on tapegrad's weights: largest difference {diff:g}")
    if diff > 1e-4:
        return 1
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5).add_(0.01)
        save(f"{d}/torch.safetensors", model.state_dict())
        save(f"{d}/torch_out.safetensors", {"y": model(io["x"])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
