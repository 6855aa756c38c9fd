#!/usr/bin/env python3
"""Writes the reference cases of the padding of narrow planes (Plugins/Conv/conv_spans.c, pad_rows512)
into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/narrow_pad/make-narrow-pad.py

The panels (conv_panels.c) and spans (conv_spans.c) kernels copy their input into a zero-padded
buffer first; on an AVX-512 CPU, planes whose padded rows hold at most 16 floats are padded a row per
masked load, permute and masked store. The cases, run with the kernel forced by the name's prefix
(conv2d's "algorithm" attribute): 3x3 panels on 7x7 (padded rows of 9), 14x14 at stride 2 (16: the
widest the path takes), 6x6 with padding 2, 15x15 (17: the general loop), batch 2, and 208 planes of
7x7 (16.8k padded floats: past conv_panels.c's PAD_SPLIT_FLOATS, so 2 and 3 threads pad ranges of
planes, 208 not a multiple of 3); spans 1x3 on 8x8 (rows of 10) and 3x1 padded on rows only (no
padding on the width). PyTorch's nn.Conv2d is the oracle, in double precision (fixture_json.py).
Not used by the build or the tests (they read the committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("panels_3x3_24to40_7x7", 1, 24, 40, 7, 7, 3, 1, 1, True),
    ("panels_3x3_20to33_14x14_stride2", 1, 20, 33, 14, 14, 3, 2, 1, True),
    ("panels_3x3_12to16_6x6_pad2_batch2", 2, 12, 16, 6, 6, 3, 1, 2, False),
    ("panels_3x3_16to32_15x15", 1, 16, 32, 15, 15, 3, 1, 1, True),
    ("panels_3x3_208to8_7x7", 1, 208, 8, 7, 7, 3, 1, 1, True),
    ("spans_1x3_32to40_8x8", 1, 32, 40, 8, 8, (1, 3), 1, (0, 1), True),
    ("spans_3x1_32to24_5x11", 1, 32, 24, 5, 11, (3, 1), 1, (1, 0), False),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=1600)
