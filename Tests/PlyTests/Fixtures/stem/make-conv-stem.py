#!/usr/bin/env python3
"""Writes the reference cases of conv2d's "stem" kernel (Plugins/Conv/conv_stem.c) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/stem/make-conv-stem.py

PyTorch's nn.Conv2d is the oracle, run in double precision: parameters from its default
initialisation (seeded, float32 values), input standard normal (float32 values); the output is
the double-precision convolution of those values, written with 9 significant digits. Format:
golden/README.md's layer cases, forward only (eval mode). Every case has at most 4 input
channels and a kernel of 5x5 or more or a 3x3 of stride 2, so "auto" takes the stem kernel in
evaluation on an AVX-512 CPU (im2col + GEMM below that level): ResNet's 7x7 stride-2 stem on
small planes (64 output channels: the 8-row tile; 20: a 12-row block and a part-filled one),
rows whose last vector is part-filled, strides 3 and (2, 1), a non-square kernel, no bias;
Inception v3's 3x3 stride-2 first layer (32 output channels: the 8-row tile) on a batch of 2
odd planes, and a padded 3x3 stride 2 with 24 output channels (two 12-row blocks), no bias.
Not used by the build or the tests (they read the committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("stem_7x7_s2_p3_oc64", 1, 3, 64, 36, 45, 7, 2, 3, True),
    ("stem_7x7_s2_p3_oc20_nobias", 1, 3, 20, 38, 35, 7, 2, 3, False),
    ("stem_7x7_s2_p3_batch3", 3, 3, 12, 25, 40, 7, 2, 3, True),
    ("stem_5x5_s3_p1_c2", 1, 2, 40, 33, 40, 5, 3, 1, True),
    ("stem_5x7_s2x1_p2x3_c1", 1, 1, 16, 21, 50, (5, 7), (2, 1), (2, 3), True),
    ("stem_3x3_s2_p0_oc32_batch2", 2, 3, 32, 39, 37, 3, 2, 0, True),
    ("stem_3x3_s2_p1_oc24_c2", 1, 2, 24, 29, 45, 3, 2, 1, False),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=500)
