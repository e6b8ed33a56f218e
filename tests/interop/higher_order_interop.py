#!/usr/bin/python3
"""The PyTorch half of the higher-order comparison (exit 77 = skipped: no PyTorch).

Reads the inputs higher_order_interop wrote and computes, with torch.autograd in float32 and
float64, the three cases that program describes: a gradient-penalty step's parameter gradients,
a Hessian-vector product (torch.autograd.functional.hvp) and a PINN residual's parameter
gradients (third derivatives). Writes them for higher_order_interop to compare.
"""
import sys

try:
    import torch
except ImportError:
    print("PyTorch is not installed: skipped")
    sys.exit(77)

from safetensors_io import NAMES, load, save  # beside this file

F = torch.nn.functional
PARAMS = ["w1", "b1", "w2", "b2"]
PINN = ["w1p", "b1p", "w3", "b3"]


def network(x, p):
    return F.linear(torch.tanh(F.linear(x, p[0], p[1])), p[2], p[3])


def cases(inputs, dtype):
    get = lambda name: inputs[name].to(dtype).clone()
    out = {}
    p = [get(n).requires_grad_() for n in PARAMS]
    x = get("x").requires_grad_()
    f = network(x, p)
    (gx,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    loss = (f * f).mean() + 0.5 * (gx * gx).sum(1).mean() + F.log_softmax(f, -1).mean()
    for n, g in zip(PARAMS, torch.autograd.grad(loss, p)):
        out["penalty." + n] = g
    out["penalty.loss"] = loss.detach()

    xc = get("x")
    def hvp_loss(*q):
        f = network(xc, q)
        return torch.logsumexp(f, -1).mean() - (f * f * f).mean()
    _, hv = torch.autograd.functional.hvp(hvp_loss, tuple(get(n) for n in PARAMS),
                                          tuple(get("v_" + n) for n in PARAMS))
    for n, h in zip(PARAMS, hv):
        out["hvp." + n] = h

    p = [get(n).requires_grad_() for n in PINN]
    x = get("xp").requires_grad_()
    u = network(x, p)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), x, create_graph=True)
    r = d2u - get("gp")
    loss = (r * r).mean()
    # b3 does not reach u″: no gradient (None), stored as zeros.
    for n, q, g in zip(PINN, p, torch.autograd.grad(loss, p, allow_unused=True)):
        out["pinn." + n] = torch.zeros_like(q) if g is None else g
    out["pinn.loss"] = loss.detach()
    return {name + "." + NAMES[dtype]: t.detach() for name, t in out.items()}


def main():
    directory = sys.argv[1]
    inputs, _ = load(directory + "/inputs.safetensors")
    results = {}
    for dtype in (torch.float64, torch.float32):
        results.update(cases(inputs, dtype))
    save(directory + "/torch_higher_order.safetensors", results)


if __name__ == "__main__":
    main()
