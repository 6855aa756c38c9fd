#!/usr/bin/env python3
"""Writes the reference cases of conv2d's Winograd F(4x4) forward at the AVX2 level
(Plugins/Conv/conv_winograd4_avx2.c, Plugins/Conv/conv_kernel_avx2.c) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/winograd_avx2/make-conv-winograd-avx2.py

PyTorch's nn.Conv2d is the oracle, run in double precision: parameters from its default
initialisation (seeded, float32 values), input standard normal (float32 values); the output is
the double-precision convolution of those values, written with 9 significant digits. Format:
golden/README.md's layer cases, forward only (eval mode). Every case is a 3x3, stride-1 layer that
"auto" in evaluation runs by F(4x4) on an AVX2 CPU (conv_winograd_suits_inference: at least 16
channels each way, conv_winograd_tile's F(4x4) rule): a 28x28 plane of 64 input channels (ResNet's
and VGG's shape at a 28x28 stage), planes whose tile rows are not multiples of 8 tiles (9, 11 and
12 tiles: the vectors' part-filled halves, segments crossing a block of 16), columns that are not a
multiple of 4 (45: the last tile past the plane), no padding, several images, no bias and channel
counts that are not multiples of 6 or 8 (the product kernel's rows and lanes). Not used by the build
or the tests (they read the committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("wino4_64to40_28x28", 1, 64, 40, 28, 28, 3, 1, 1, True),
    ("wino4_17to20_44x45", 1, 17, 20, 44, 45, 3, 1, 1, True),
    ("wino4_24to19_38x38_pad0_nobias", 1, 24, 19, 38, 38, 3, 1, 0, False),
    ("wino4_16to23_36x36_batch2", 2, 16, 23, 36, 36, 3, 1, 1, True),
    ("wino4_48to36_14x14", 1, 48, 36, 14, 14, 3, 1, 1, True),
    ("wino4_32to24_7x7_batch4", 4, 32, 24, 7, 7, 3, 1, 1, True),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=500)
