#!/usr/bin/env python3
"""Writes the reference cases of conv_1x1.c's thread splits at batch 1 (strided 1x1 convs: the
threads' shared subsampled image when they split the output channels, each part's own positions
when they split the positions) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/pointwise_split/make-pointwise-split.py

PyTorch's nn.Conv2d is the oracle, run in double precision (fixture_json.write_conv2d_eval_cases).
Edge sizes: input channels that the threads cannot split evenly (37 on 2 and 3 threads), output
channels past a multiple of the 12-row tile, odd planes, strides 2 and 2x3, parts that start and
end inside an output row, a batch of 3 that 2 threads split inside each image. Not used by the
build or the tests (they read the committed files).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    # 7x8 outputs (56 positions, 2 strips): the threads split the 50 output channels
    ("pw_s2_rows_c37", 1, 37, 50, 13, 15, 1, 2, 0, True),
    # 7x7 outputs from 14x14 (ResNet-50's last downsample, narrower): output channels split, no bias
    ("pw_s2_rows_7x7_nobias", 1, 64, 40, 14, 14, 1, 2, 0, False),
    # 21x20 outputs (420 positions, 14 strips): the threads split the positions, cut inside rows
    ("pw_s2_positions", 1, 20, 30, 41, 39, 1, 2, 0, True),
    # stride 2x3, 25x21 outputs (525 positions): positions split, rows of 21 cut at multiples of 32
    ("pw_s2x3_positions", 1, 9, 13, 50, 61, 1, (2, 3), 0, True),
    # a batch of 3 on 2 threads: each image split in two (output channels, 5x5 outputs)
    ("pw_s2_batch3", 3, 24, 40, 9, 9, 1, 2, 0, True),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=500)
