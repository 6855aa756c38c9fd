#!/usr/bin/env python3
"""Writes the reference cases of adaptive_avgpool2d's two forward shortcuts into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/adaptive_pool/make-adaptive-pool.py

Plugins/Pooling/pooling_planes.c takes two shortcuts in the forward: an output the size of the input
copies the planes (AlexNet's 6x6 -> 6x6), and a 1x1 output sums each plane in 8 interleaved
partial sums (GoogLeNet's and ResNet's global pool). The cases: planes shorter than 8 and with a
tail past a multiple of 8 (3x5, 17x17), enough planes to split over 2 and 3 threads (pool_dispatch
splits from 2 x 2^15 of work: 230 planes of 17x17, 240 of 13x11), an image count above 1, and one
axis kept with the other pooled (6x6 -> 6x3: the window loop, not the copy). PyTorch's
F.adaptive_avg_pool2d is the oracle, run in double precision; inputs are multiples of 1/16 in
[-4, 4) (exact in float32, short in JSON). Format: golden/README.md's layer cases, forward only.
Not used by the build or the tests (they read the committed files).
"""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import tensor, write_case  # noqa: E402

# name, input shape (N, C, H, W), output size (OH, OW)
CASES = [
    ("global_1x5_3x5", (1, 5, 3, 5), (1, 1)),
    ("global_2x3_7x7", (2, 3, 7, 7), (1, 1)),
    ("global_1x230_17x17", (1, 230, 17, 17), (1, 1)),
    ("identity_2x5_6x6", (2, 5, 6, 6), (6, 6)),
    ("identity_1x240_13x11", (1, 240, 13, 11), (13, 11)),
    ("rows_kept_1x4_6x6_to_6x3", (1, 4, 6, 6), (6, 3)),
]


if __name__ == "__main__":
    g = torch.Generator().manual_seed(900)
    for name, shape, size in CASES:
        x = (torch.randint(-64, 64, shape, generator=g).double() / 16.0)
        y = F.adaptive_avg_pool2d(x, size)
        write_case(HERE, {"name": name, "op": "adaptive_avgpool2d", "attrs": {"output_size": list(size)},
                          "mode": "eval", "input": tensor(x.float()), "output": tensor(y)})
