#!/usr/bin/python3
"""The PyTorch half of the parameter-file round trip (exit 77 = skipped: no PyTorch).

1. Loads the safetensors file tapegrad wrote into the same torch.nn.Sequential with
   load_state_dict(strict=True) and checks PyTorch computes tapegrad's output.
2. Changes the weights, writes them as safetensors, and writes PyTorch's new output, for
   torch_interop_model read to check.
"""
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import load, save  # beside this file


def main():
    d = sys.argv[1]
    model = torch.nn.Sequential(
        torch.nn.Conv1d(28, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
        torch.nn.Conv1d(64, 128, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
        torch.nn.Flatten(), torch.nn.Linear(128 * 7, 10))
    model.load_state_dict(load(f"{d}/tapegrad.safetensors")[0], strict=True)
    io = load(f"{d}/io.safetensors")[0]
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
