#!/usr/bin/env python3
"""Writes the batchnorm2d golden cases on narrow planes into layers/ (format: README.md).

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/golden/make-batchnorm-narrow.py

Planes of 1 to 8 values (1x1, 2x2, 2x3: ResNet-18's layer3 and layer4 at 32x32 input) take
Plugins/BatchNorm/batchnorm_narrow.c, vectorised across blocks of 16 channels; channel counts
that leave a part-filled last block (37, 20, 18). PyTorch's nn.BatchNorm2d is the oracle:
weight, bias and running statistics drawn (seeded) so that a channel mixed up with another
shows, input and grad_output standard normal (shifted per channel). Not used by the build or
the tests (they read the committed files).
"""
import json
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))

# name, N, C, H, W, mode
CASES = [
    ("batchnorm2d_narrow_1x1_train", 6, 37, 1, 1, "train"),
    ("batchnorm2d_narrow_2x2_train", 5, 20, 2, 2, "train"),
    ("batchnorm2d_narrow_2x3_eval", 3, 18, 2, 3, "eval"),
]


def tensor(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.flatten().tolist()]}


def main():
    for i, (name, n, c, h, w, mode) in enumerate(CASES):
        torch.manual_seed(300 + i)
        bn = nn.BatchNorm2d(c)
        with torch.no_grad():
            bn.weight.copy_(torch.rand(c) + 0.5)
            bn.bias.copy_(torch.randn(c))
            bn.running_mean.copy_(torch.randn(c))
            bn.running_var.copy_(torch.rand(c) + 0.5)
        params = {pn: tensor(pv) for pn, pv in bn.named_parameters()}
        buffers = {"running_mean": tensor(bn.running_mean), "running_var": tensor(bn.running_var)}
        x = (torch.randn(n, c, h, w) + torch.randn(1, c, 1, 1) * 2).requires_grad_(True)
        bn.train(mode == "train")
        y = bn(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        case = {"name": name, "op": "batchnorm2d", "attrs": {"num_features": c, "eps": 1e-05, "momentum": 0.1},
                "mode": mode, "params": params, "buffers": buffers, "input": tensor(x), "output": tensor(y),
                "grad_output": tensor(dy), "grad_input": tensor(x.grad),
                "grad_params": {pn: tensor(pv.grad) for pn, pv in bn.named_parameters()},
                "buffers_after": {"running_mean": tensor(bn.running_mean), "running_var": tensor(bn.running_var)}}
        with open(os.path.join(HERE, "layers", name + ".json"), "w") as f:
            json.dump(case, f, separators=(",", ":"))
        print(name, tuple(y.shape))


if __name__ == "__main__":
    main()
