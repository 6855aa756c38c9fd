#!/usr/bin/env python3
"""Writes the grouped, depthwise and dilated conv2d golden cases into layers/ (format: README.md).

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/golden/make-conv-groups.py

PyTorch's nn.Conv2d is the oracle: parameters from its default initialisation (seeded),
input and grad_output standard normal; output, grad_input and grad_params from one forward
and backward. Not used by the build or the tests (they read the committed files).
"""
import json
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))

# name, N, C, OC, H, W, kernel, stride, padding, dilation, groups, bias, mode
CASES = [
    ("conv2d_depthwise_3x3_s1_p1", 2, 8, 8, 9, 9, 3, 1, 1, 1, 8, True, "train"),
    ("conv2d_depthwise_3x3_s2_p1_x2", 2, 6, 12, 11, 10, 3, 2, 1, 1, 6, True, "eval"),
    ("conv2d_depthwise_5x3_s1x2_d2x1_nobias", 2, 4, 4, 10, 9, (5, 3), (1, 2), (4, 1), (2, 1), 4, False, "train"),
    ("conv2d_groups4_x2_3x3_p1", 2, 8, 16, 7, 6, 3, 1, 1, 1, 4, True, "train"),
    ("conv2d_dilation2_3x3_p2", 2, 3, 4, 9, 9, 3, 1, 2, 2, 1, True, "train"),
    ("conv2d_dilation2x3_3x3_s1x2_p1x2", 2, 3, 5, 10, 13, 3, (1, 2), (1, 2), (2, 3), 1, True, "eval"),
    ("conv2d_groups2_dilation2_s2_p2", 2, 4, 6, 9, 11, 3, 2, 2, 2, 2, False, "train"),
]


def tensor(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.flatten().tolist()]}


def pair(v):
    return list(v) if isinstance(v, tuple) else [v, v]


def main():
    for i, (name, n, c, oc, h, w, k, s, p, d, g, bias, mode) in enumerate(CASES):
        torch.manual_seed(100 + i)
        conv = nn.Conv2d(c, oc, k, s, p, d, g, bias)
        x = torch.randn(n, c, h, w, requires_grad=True)
        conv.train(mode == "train")
        y = conv(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        attrs = {"in_channels": c, "out_channels": oc, "kernel_size": pair(k), "stride": pair(s),
                 "padding": pair(p), "dilation": pair(d), "groups": g, "bias": bias}
        case = {"name": name, "op": "conv2d", "attrs": attrs, "mode": mode,
                "params": {pn: tensor(pv) for pn, pv in conv.named_parameters()}, "buffers": {},
                "input": tensor(x), "output": tensor(y), "grad_output": tensor(dy), "grad_input": tensor(x.grad),
                "grad_params": {pn: tensor(pv.grad) for pn, pv in conv.named_parameters()}, "buffers_after": {}}
        with open(os.path.join(HERE, "layers", name + ".json"), "w") as f:
            json.dump(case, f, separators=(",", ":"))
        print(name, tuple(y.shape))


if __name__ == "__main__":
    main()
