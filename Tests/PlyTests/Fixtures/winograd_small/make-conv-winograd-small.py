#!/usr/bin/env python3
"""Writes the reference cases of conv2d's Winograd tile rule for few input channels on small planes
(Plugins/Conv/conv_winograd.c, conv_winograd_tile: F(2x2) below F4_MIN_CHANNELS input channels on
planes of at most F4_SMALL_SIDE a side, where the rules before took F(4x4)) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/winograd_small/make-conv-winograd-small.py

PyTorch's nn.Conv2d is the oracle, run in double precision (fixture_json.write_conv2d_eval_cases).
Both cases are geometries where F(4x4) fills a strip of 32 tiles with at most 0.6 of F(2x2)'s
products (the rule that took F(4x4) before): a 27x28 plane at batch 1 (49 tiles of 4x4) and a 7x7
plane at batch 9 (36 tiles, as GoogLeNet's inception5 3x3 branches at batch 16 have 64), odd channel
counts below 64. Not used by the build or the tests (they read the committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("wino_small_17to20_27x28", 1, 17, 20, 27, 28, 3, 1, 1, True),
    ("wino_small_19to24_7x7_n9", 9, 19, 24, 7, 7, 3, 1, 1, True),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=1600)
