#!/usr/bin/env python3
"""Writes the reference cases of Inception v3 blocks whose 1x1 branches on the block's input run as one
stacked conv in evaluation (Plugins/Inception/inception_fuse.c) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/inception/make-inception-stacked.py

The stacked conv holds its own copy of the members' folded weights (batch norm folded), copied again
whenever one of them changes. Each case is torchvision's block (InceptionA, C, D, E) in eval mode and
double precision on 2 small images, evaluated four times ("output", then "outputs_after"): as made, after a member's conv weight moved
(+0.25), after another member's batch-norm running mean moved (-0.3), and after one training forward on
the same input (which moves every running statistic without a parameter write).

The blocks' fixed widths (384, 448 channels...) make their parameters millions of values, so they are
not stored: every parameter and buffer (state_dict order, num_batches_tracked skipped) is drawn from one
SplitMix64 stream (seed in the case), each value u = (next() >> 40) / 2^24 mapped in float32 as
InceptionBlockTests.swift's `seededParameters` does:
    conv weight  (2u - 1) * float32(1 / sqrt(fan_in))     bn weight     0.5 + u
    bn bias      0.6u - 0.3                                running_mean  u - 0.5
    running_var  0.5 + 1.5u
Input standard normal (float32 values), outputs written with 9 significant digits. Not used by the
build or the tests (they read the committed files).
"""
import math
import os
import sys

import numpy as np
import torch
from torchvision.models.inception import InceptionA, InceptionC, InceptionD, InceptionE

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import tensor, write_case  # noqa: E402

MASK = (1 << 64) - 1

# name, op, module, attrs, input shape, seed, conv weight moved, running mean moved
CASES = [
    ("inception_v3_a_stacked", "inception_v3_a", lambda: InceptionA(6, pool_features=3),
     {"in_channels": 6, "pool_features": 3}, (2, 6, 5, 5), 601,
     "branch5x5_1.conv.weight", "branch3x3dbl_1.bn.running_mean"),
    ("inception_v3_c_stacked", "inception_v3_c", lambda: InceptionC(6, channels_7x7=4),
     {"in_channels": 6, "channels_7x7": 4}, (2, 6, 4, 4), 602,
     "branch7x7dbl_1.conv.weight", "branch1x1.bn.running_mean"),
    ("inception_v3_d_stacked", "inception_v3_d", lambda: InceptionD(6),
     {"in_channels": 6}, (2, 6, 5, 5), 603,
     "branch7x7x3_1.conv.weight", "branch3x3_1.bn.running_mean"),
    ("inception_v3_e_stacked", "inception_v3_e", lambda: InceptionE(6),
     {"in_channels": 6}, (2, 6, 2, 2), 604,
     "branch3x3_1.conv.weight", "branch1x1.bn.running_mean"),
]


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def units(self, n):
        return np.array([self.next() >> 40 for _ in range(n)], dtype=np.float32) * np.float32(1.0 / 16777216.0)


def seeded(block, seed):
    g = SplitMix64(seed)
    f32 = np.float32
    for name, t in block.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        u = g.units(t.numel())
        if name.endswith("conv.weight"):
            fan = t.numel() // t.shape[0]
            v = (f32(2) * u - f32(1)) * f32(1 / math.sqrt(fan))
        elif name.endswith("bn.weight"):
            v = f32(0.5) + u
        elif name.endswith("bn.bias"):
            v = f32(0.6) * u - f32(0.3)
        elif name.endswith("running_mean"):
            v = u - f32(0.5)
        elif name.endswith("running_var"):
            v = f32(0.5) + f32(1.5) * u
        else:
            raise SystemExit("no rule for " + name)
        t.copy_(torch.from_numpy(v.astype(np.float32)).reshape(t.shape))


def main():
    for i, (name, op, make, attrs, shape, seed, moved_w, moved_mean) in enumerate(CASES):
        torch.manual_seed(700 + i)
        block = make()
        with torch.no_grad():
            seeded(block, seed)
        block = block.double().eval()
        x = torch.randn(*shape)
        outputs = []
        with torch.no_grad():
            outputs.append(block(x.double()))
            sd = block.state_dict()
            sd[moved_w].copy_((sd[moved_w].float() + 0.25).double())  # float32 as the test writes it
            outputs.append(block(x.double()))
            sd[moved_mean].copy_((sd[moved_mean].float() - 0.3).double())
            outputs.append(block(x.double()))
            block.train()
            block(x.double())
            block.eval()
            outputs.append(block(x.double()))
        case = {"name": name, "op": op, "attrs": attrs, "mode": "eval", "seed": seed,
                "moved_weight": moved_w, "moved_mean": moved_mean, "input": tensor(x),
                "output": tensor(outputs[0]), "outputs_after": [tensor(y) for y in outputs[1:]]}
        write_case(HERE, case)


if __name__ == "__main__":
    main()
