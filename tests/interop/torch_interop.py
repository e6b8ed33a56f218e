#!/usr/bin/python3
"""The PyTorch half of the parameter-file round trip (exit 77 = skipped: no PyTorch).

For the cnn-fashion model ("cnn") and the README's CNN with BatchNorm and a hidden layer
("cnn_fc"), in evaluation mode:
1. Loads the safetensors file tapegrad wrote into the same torch.nn.Sequential with
   load_state_dict(strict=True) and checks PyTorch computes tapegrad's output.
2. Changes the parameters and buffers, writes them as safetensors, and writes PyTorch's new
   output, for torch_interop_model read to check.
"""
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import load, save  # beside this file


def build(name):
    nn = torch.nn
    if name == "cnn":
        return nn.Sequential(
            nn.Conv1d(28, 64, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Flatten(), nn.Linear(128 * 7, 10))
    return nn.Sequential(
        nn.Conv1d(28, 64, 3, padding=1), nn.BatchNorm1d(64), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(64, 128, 3, padding=1), nn.BatchNorm1d(128), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(128 * 7, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))


def main():
    d = sys.argv[1]
    io = load(f"{d}/io.safetensors")[0]
    out = {}
    failures = 0
    for name in ("cnn", "cnn_fc"):
        model = build(name)
        model.load_state_dict(load(f"{d}/{name}_tapegrad.safetensors")[0], strict=True)
        model.eval()
        with torch.no_grad():
            diff = (model(io["x"]) - io[f"y_{name}"]).abs().max().item()
        print(f"{name}: PyTorch vs tapegrad on tapegrad's weights: largest difference {diff:g}")
        failures += diff > 1e-4
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5).add_(0.01)
            for key, b in model.state_dict().items():
                if key.endswith("running_mean"):
                    b.add_(0.25)
                elif key.endswith("running_var"):
                    b.mul_(1.5)
            save(f"{d}/{name}_torch.safetensors", model.state_dict())
            out[f"y_{name}"] = model(io["x"])
    save(f"{d}/torch_out.safetensors", out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
