#!/usr/bin/env python3
"""Writes the reference cases of Inception v3 blocks evaluated on batches of 17x17 planes into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/inception/make-inception-batches.py

In evaluation a block whose input plane has at least 17x17 positions runs image by image (or in
groups of as many images as threads) at batch N > 1 (Plugins/Inception/inception_graph.c,
forward_groups), each image's branches written straight into their channels of the output. The
case reaches that path with 3 images (on 2 threads: a group of 2 and a group of 1; one block kind
only: the grouping is the same code for every block, and the files are large). torchvision's
InceptionA is the oracle, in eval mode and double precision:
parameters from their default initialisation (seeded, float32 values), batch-norm statistics and
affine terms drawn so none is trivial, input standard normal (float32 values); the output is written
with 9 significant digits. Format: golden/README.md's layer cases, forward only (eval mode). Not
used by the build or the tests (they read the committed files).
"""
import os
import sys

import torch
from torchvision.models.inception import InceptionA

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import tensor, write_case  # noqa: E402

# name, op, module, attrs, input shape
CASES = [
    ("inception_v3_a_eval_3x17x17", "inception_v3_a", lambda: InceptionA(4, pool_features=3),
     {"in_channels": 4, "pool_features": 3}, (3, 4, 17, 17)),
]


def main():
    for i, (name, op, make, attrs, shape) in enumerate(CASES):
        torch.manual_seed(500 + i)
        block = make().eval()
        with torch.no_grad():
            for mod in block.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.5, 0.5)
                    mod.running_var.uniform_(0.5, 2.0)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.3, 0.3)
        x = torch.randn(*shape)
        with torch.no_grad():
            y = block.double()(x.double())
        params = {k: tensor(v.float()) for k, v in block.named_parameters()}
        buffers = {k: tensor(v.float()) for k, v in block.named_buffers() if "num_batches" not in k}
        case = {"name": name, "op": op, "attrs": attrs, "mode": "eval", "params": params, "buffers": buffers,
                "input": tensor(x), "output": tensor(y)}
        write_case(HERE, case)


if __name__ == "__main__":
    main()
