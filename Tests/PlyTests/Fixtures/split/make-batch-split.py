#!/usr/bin/env python3
"""Writes the reference cases of conv2d's kernels split over threads inside one image into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/split/make-batch-split.py

Direct kernel: Plugins/Conv/conv_direct.c serves stride-1 layers with at most 16 input and 64
output channels on an AVX-512 or AVX2 CPU. With fewer images than threads its forward splits each image's
output channels over the threads in ranges of whole blocks of 8 (conv.c, conv_direct_job_make), where every thread gets at least
DIRECT_SPLIT_MIN_MACS multiply-adds. The cases: GoogLeNet's inception3a branch3.1 (16 -> 32, 3x3 on
28x28) and inception4a's (16 -> 48 on 14x14) at batch 1; 44 output channels (the last range ends in
a block of 4), no bias; and 2 images of a 5x5 layer (fewer images than 3 threads: both in every
range). Spans kernel (Plugins/Conv/conv_spans.c, 1x7/7x1 and 5x5 layers with 32 or more channels in
evaluation): with a padded input of SPANS_PAD_SPLIT_FLOATS or more the threads pad ranges of its
planes, at batch 1 too (Inception v3's 1x7 / 7x1 on 17x17; here 48 channels, and a 5x5 on 20x20 with
32). PyTorch's nn.Conv2d is the oracle, run in double precision: parameters from its default
initialisation (seeded, float32 values), input standard normal (float32 values); the output is
written with 9 significant digits. Format: golden/README.md's layer cases, forward only (eval
mode). Not used by the build or the tests (they read the committed files).

Added for branch v3par (Inception v3 at batch 1, 2 threads): a 1x7 layer of 5 panels (140 output
channels, the last part-filled) on 13x17, whose panels do not divide among 2 or 3 threads, so each
thread takes an even share of the 221 positions cut into its own spans (conv_spans.c, step_parts);
and a Winograd F(4x4) layer (3 images of 17 -> 20 on 44x44, 363 tiles; 17 input channels, as the
direct kernel takes 16 or fewer) that 2 and 3 threads run as "ranges" of half-strip units with a tail shared by output channels (conv_winograd.c, make_plan: 11
tiles on 2 threads, 27 on 3, where the first thread's output-channel share of the tail is empty).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import write_conv2d_eval_cases  # noqa: E402

# name, N, C, OC, H, W, kernel, stride, padding, bias
CASES = [
    ("direct_3x3_16to32_28x28", 1, 16, 32, 28, 28, 3, 1, 1, True),
    ("direct_3x3_16to48_14x14", 1, 16, 48, 14, 14, 3, 1, 1, True),
    ("direct_3x3_12to44_24x24_nobias", 1, 12, 44, 24, 24, 3, 1, 1, False),
    ("direct_5x5_16to40_20x20_batch2", 2, 16, 40, 20, 20, 5, 1, 2, True),
    ("spans_1x7_48to40_17x17", 1, 48, 40, 17, 17, (1, 7), 1, (0, 3), True),
    ("spans_5x5_32to40_20x20_nobias", 1, 32, 40, 20, 20, 5, 1, 2, False),
    ("spans_1x7_32to140_13x17", 1, 32, 140, 13, 17, (1, 7), 1, (0, 3), True),
    ("winograd_3x3_17to20_44x44_batch3", 3, 17, 20, 44, 44, 3, 1, 1, True),
]


if __name__ == "__main__":
    write_conv2d_eval_cases(HERE, CASES, seed=700)
