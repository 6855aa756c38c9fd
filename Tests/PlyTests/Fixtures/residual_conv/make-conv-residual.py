#!/usr/bin/env python3
"""Writes the reference cases of conv2d's residual input (Plugins/Conv/conv_residual.h) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/residual_conv/make-conv-residual.py

PyTorch is the oracle, run in double precision: nn.Conv2d's default initialisation (seeded, float32
values), input and residual standard normal (float32 values); "output" is relu(conv(x) + r) and
"output_linear" conv(x) + r, both in double precision, written with 9 significant digits. Format:
golden/README.md's layer cases with one more tensor, "residual". The 1x1 cases are the product
that adds the residual in its tiles at the AVX-512 level (conv_1x1.c): channels that are not
multiples of 12 or 16 (part-filled tiles), odd planes whose last strip is part-filled (7x9: 63
positions) or ends in dot-product tail positions (7x7: 49 = 48 + 1, the 48-wide tile; 14x14: 196
= 192 + 4), several images per group, stride 2, no bias; the 3x3 case takes another kernel and
conv.c's separate pass. Not used by the build or the tests (they read the committed files).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import tensor, write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("res_1x1_c19_oc20_7x9", 1, 19, 20, 7, 9, 1, 1, 0, True),
    ("res_1x1_c33_oc28_7x7_batch3", 3, 33, 28, 7, 7, 1, 1, 0, True),
    ("res_1x1_c40_oc30_14x14", 1, 40, 30, 14, 14, 1, 1, 0, True),
    ("res_1x1_c24_oc13_s2_13x11_nobias", 2, 24, 13, 13, 11, 1, 2, 0, False),
    ("res_3x3_p1_c16_oc24_9x9", 1, 16, 24, 9, 9, 3, 1, 1, True),
]


def outputs(y):
    """The residual r, drawn after the input, and relu(y + r) and y + r."""
    r = torch.randn(y.shape)
    lin = y + r.double()
    return {"residual": tensor(r), "output": tensor(torch.relu(lin)), "output_linear": tensor(lin)}


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=700, more_attrs={"trainable": False}, outputs=outputs)
