#!/usr/bin/env python3
"""Writes the reference cases of conv_1x1.c's large-plane path (one image's input above 1M floats:
each strip of 32 positions packed by the first block of 12 output channels as it reads it, the
weights packed once per weight version in evaluation) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/pointwise_packed/make-pointwise-packed.py

PyTorch's nn.Conv2d is the oracle, run in double precision. Each case holds two weight versions
(params/output, then params2/output2: every weight scaled by -0.5 and the last one moved), so the
test can check that the packed copy follows a write after the first forward. The input is not
stored (~280K floats a case): it is x[i] = float32((i * 7919) % 1000) / 500 - 1 over the flat
[N, C, H, W] index i, computed in float32 here and in the test (each step an exact IEEE operation).
Edge sizes: 257 input channels (K blocks of 256 and 1), output channels past a multiple of the
12-row tile (29 = 12 + 12 + 5, 13 = 12 + 1), a last strip of 29 positions (two vectors, the second
masked) and one of 16 (one vector). Not used by the build or the tests (they read the committed
files).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import pair, tensor, write_case  # noqa: E402

# name, N, C, OC, H, W, bias
CASES = [
    # 31x35 = 1085 positions: 33 strips of 32 and one of 29
    ("pp_c257_oc29_31x35", 1, 257, 29, 31, 35, True),
    # 40x26 = 1040 positions: 32 strips of 32 and one of 16; no bias
    ("pp_c257_oc13_40x26_nobias", 1, 257, 13, 40, 26, False),
]


def input_of(n, c, h, w):
    i = np.arange(n * c * h * w, dtype=np.int64)
    x = (i * 7919 % 1000).astype(np.float32) / np.float32(500) - np.float32(1)
    return x.reshape(n, c, h, w)


if __name__ == "__main__":
    import torch
    import torch.nn as nn

    for k, (name, n, c, oc, h, w, bias) in enumerate(CASES):
        torch.manual_seed(600 + k)
        conv = nn.Conv2d(c, oc, 1, 1, 0, bias=bias).eval()
        x = torch.from_numpy(input_of(n, c, h, w))
        with torch.no_grad():
            y = conv.double()(x.double())
            params = {pn: tensor(pv.float()) for pn, pv in conv.named_parameters()}
            conv.weight.mul_(-0.5)
            conv.weight.view(-1)[-1] += 0.5
            conv.weight.copy_(conv.weight.float().double())  # float32 weights, as Ply holds them
            y2 = conv(x.double())
            params2 = {pn: tensor(pv.float()) for pn, pv in conv.named_parameters()}
        attrs = {"in_channels": c, "out_channels": oc, "kernel_size": [1, 1], "stride": [1, 1],
                 "padding": [0, 0], "bias": bias}
        write_case(HERE, {"name": name, "op": "conv2d", "attrs": attrs, "mode": "eval",
                          "input_shape": [n, c, h, w], "params": params, "output": tensor(y),
                          "params2": params2, "output2": tensor(y2)})
