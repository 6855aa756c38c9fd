#!/usr/bin/env python3
"""Writes the reference cases of conv2d's Winograd forward on few tiles (Plugins/Conv/conv_winograd.c,
CONV_WINOGRAD_INFERENCE_MIN_TILES) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/winograd_few_tiles/make-conv-winograd-few-tiles.py

PyTorch's nn.Conv2d is the oracle, run in double precision: parameters from its default
initialisation (seeded, float32 values), input standard normal (float32 values); the output is
the double-precision convolution of those values, written with 9 significant digits. Format:
golden/README.md's layer cases, forward only (eval mode). Every case is a 3x3, stride-1 layer with
17 or more input channels (16 and fewer take the direct kernel, conv_direct_fits), 16 or more output
channels and 32 to 63 tiles of 2x2 (ceil(H/2) x ceil(W/2) per image), so "auto" in evaluation takes
Winograd F(2x2) there on an AVX-512 CPU (the panels or im2col before branch rn50s): odd planes
(13x13, 11x12), part-filled strips (36, 48 and 49 tiles), exactly one strip (2 images of 7x7), and
channel counts that are not multiples of 8 or 16. Not used by the build or the tests (they read
the committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("wino_few_13x13", 1, 18, 33, 13, 13, 3, 1, 1, True),
    ("wino_few_11x12_nobias", 1, 20, 17, 11, 12, 3, 1, 1, False),
    ("wino_few_2x7x7", 2, 24, 32, 7, 7, 3, 1, 1, True),
    ("wino_few_3x7x8", 3, 17, 40, 7, 8, 3, 1, 1, True),
    ("wino_few_14x14", 1, 32, 36, 14, 14, 3, 1, 1, True),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=400)
