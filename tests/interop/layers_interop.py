#!/usr/bin/python3
"""The PyTorch half of the layers' comparison (exit 77 = skipped: no PyTorch).

Model A: loads tapegrad's initial parameters and buffers into the same torch.nn.Sequential
(strict), trains ten SGD steps on the same batches, and compares every parameter and buffer
(BatchNorm's running statistics and num_batches_tracked included) with tapegrad's after the same
steps. Model B (every kind of layer, evaluation mode): loads tapegrad's file strictly, checks the
output, then changes every parameter and buffer and writes them and its new output for
layers_interop to check.
"""
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import load, save  # beside this file


def model_a():
    nn = torch.nn
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8),
                         nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3))


def model_b():
    nn = torch.nn
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.1), nn.Dropout(0.3),
                         nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 8), nn.ELU(0.5),
                         nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 8), nn.GELU(approximate="tanh"),
                         nn.Linear(8, 3), nn.LogSoftmax(1))


def main():
    d = sys.argv[1]
    io, meta = load(f"{d}/io.safetensors")
    failures = 0

    a = model_a()
    a.load_state_dict(load(f"{d}/a_initial.safetensors")[0], strict=True)
    a.train()
    sgd = torch.optim.SGD(a.parameters(), lr=0.1)
    for s in range(io["x"].shape[0]):
        sgd.zero_grad()
        torch.nn.functional.cross_entropy(a(io["x"][s]), io["labels"][s].long()).backward()
        sgd.step()
    theirs = load(f"{d}/a_trained.safetensors")[0]
    ours = a.state_dict()
    if set(theirs) != set(ours):
        print(f"model A: names differ: {sorted(set(theirs) ^ set(ours))}")
        return 1
    worst = max((theirs[k].double() - ours[k].double()).abs().max().item() for k in ours)
    print(f"model A after 10 training steps: largest difference in parameters and buffers {worst:g}")
    print(f"  running_mean {ours['1.running_mean'][:3].tolist()}, num_batches_tracked "
          f"{ours['1.num_batches_tracked'].item()}")
    failures += worst > 1e-4 or ours["1.num_batches_tracked"].item() != 10

    b = model_b()
    b.load_state_dict(load(f"{d}/b_tapegrad.safetensors")[0], strict=True)
    names = [str(layer) for layer in b]
    if names != meta["names"].strip().split("\n"):
        print("layer names differ:\n  tapegrad " + "\n  tapegrad ".join(meta["names"].strip().split("\n")) +
              "\n  PyTorch  " + "\n  PyTorch  ".join(names))
        failures += 1
    else:
        print(f"the {len(names)} layers' names are PyTorch's")
    b.eval()
    with torch.no_grad():
        diff = (b(io["xb"]) - io["yb"]).abs().max().item()
    print(f"model B (evaluation) on tapegrad's parameters and buffers: largest difference {diff:g}")
    failures += diff > 1e-5
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(0.5).add_(0.01)
        b[1].running_mean.add_(0.25)
        b[1].running_var.mul_(1.5)
        b[1].num_batches_tracked.add_(5)
        save(f"{d}/b_torch.safetensors", b.state_dict())
        save(f"{d}/b_torch_out.safetensors", {"yb": b(io["xb"])})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
