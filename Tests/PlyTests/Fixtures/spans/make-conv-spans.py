#!/usr/bin/env python3
"""Writes the reference cases of conv2d's "spans" kernel (Plugins/Conv/conv_spans.c) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/spans/make-conv-spans.py

PyTorch's nn.Conv2d is the oracle, run in double precision: parameters from its default
initialisation (seeded, float32 values), input standard normal (float32 values); the output is
the double-precision convolution of those values, written with 9 significant digits. Format:
golden/README.md's layer cases, forward only (eval mode). The first two have 32 or more input
and output channels, so "auto" takes the spans there in evaluation on an AVX-512 CPU (1x7 and
7x1, Inception v3's 17x17 blocks, smaller); the others are reached by forcing algorithm "spans"
(odd sizes, strides, part-filled panels). Not used by the build or the tests (they read the
committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("spans_1x7_p0x3_auto", 1, 32, 33, 6, 17, (1, 7), 1, (0, 3), True),
    ("spans_7x1_p3x0_auto_nobias", 2, 32, 40, 9, 5, (7, 1), 1, (3, 0), False),
    ("spans_5x5_p2", 1, 5, 33, 9, 11, 5, 1, 2, True),
    ("spans_3x3_s2_p0", 2, 17, 33, 13, 11, 3, 2, 0, True),
    ("spans_3x3_p1_8x8", 1, 18, 34, 8, 8, 3, 1, 1, False),
    ("spans_1x3_s1x2_p0x1", 3, 6, 7, 5, 9, (1, 3), (1, 2), (0, 1), True),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=300)
