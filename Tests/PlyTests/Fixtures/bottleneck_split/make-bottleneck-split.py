#!/usr/bin/env python3
"""Writes the reference cases of the residual blocks' add + relu split at batch 1
(Plugins/Residual/residual_eval.c: bottleneck blocks on planes of 4 or more strips of 32 positions
per thread add by positions, each thread the positions its 1x1 convs wrote) into this folder.

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/bottleneck_split/make-bottleneck-split.py

torchvision's Bottleneck in eval mode is the oracle, run in double precision: parameters from its
default initialisation (seeded), batch-norm weights, biases and running statistics drawn at random
(so that the folding does something), input standard normal (float32 values). The outputs have
65,536 floats or more (the add runs on the threads from there). Edge sizes: 19x19 (361 positions,
12 strips of 32 with 9 left: 3 threads cut at 128 and 256, 2 at 192) and 23x21. Format:
golden/README.md's layer cases, forward only. Not used by the build or the tests (they read the
committed files).
"""
import os
import sys

import torch
from torchvision.models.resnet import Bottleneck

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fixture_json import tensor, write_case  # noqa: E402

# name, inplanes, planes, H, W (stride 1; a 1x1 downsample where inplanes != 4 * planes)
CASES = [
    ("bottleneck_19x19", 192, 48, 19, 19),
    ("bottleneck_23x21_downsample", 24, 34, 23, 21),
]


def main():
    for i, (name, inplanes, planes, h, w) in enumerate(CASES):
        torch.manual_seed(700 + i)
        ds = None
        if inplanes != 4 * planes:
            ds = torch.nn.Sequential(torch.nn.Conv2d(inplanes, 4 * planes, 1, bias=False),
                                     torch.nn.BatchNorm2d(4 * planes))
        block = Bottleneck(inplanes, planes, downsample=ds)
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        block.eval()
        x = torch.randn(1, inplanes, h, w)
        with torch.no_grad():
            y = block.double()(x.double())
        params = {k: tensor(v) for k, v in block.named_parameters()}
        buffers = {k: tensor(v) for k, v in block.named_buffers() if not k.endswith("num_batches_tracked")}
        assert y.numel() >= 1 << 16, name
        write_case(HERE, {"name": name, "op": "residual_bottleneck",
                          "attrs": {"inplanes": inplanes, "planes": planes, "stride": 1, "downsample": ds is not None},
                          "mode": "eval", "params": params, "buffers": buffers,
                          "input": tensor(x), "output": tensor(y)})


if __name__ == "__main__":
    main()
