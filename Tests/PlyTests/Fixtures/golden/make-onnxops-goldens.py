#!/usr/bin/env python3
"""Writes the golden cases of the layers added for ONNX's operators (issue #19) into layers/:
hardtanh, relu6, leakyrelu, hardswish, hardsigmoid (activation family), pad2d (reshape
family), scale (batch-norm family) and mul (join family), in the format README.md describes.

Usage: ~/.cache/ply-torch-venv/bin/python make-onnxops-goldens.py [OUTPUT_DIR]
(default: the layers/ folder beside this script). PyTorch is the oracle: every output and
gradient comes from torch's own modules and autograd. The inputs include the kinks exactly
(hardtanh at min_val and max_val, hardswish and hardsigmoid at -3 and 3, leakyrelu at 0), so
the cases pin PyTorch's gradient convention there.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def enc(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float(f"{v:.9g}") for v in t.flatten().tolist()]}


def with_kinks(shape, kinks, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * scale
    flat = x.view(-1)
    for i, k in enumerate(kinks):
        flat[(i * 7) % flat.numel()] = k
    return x


def case(out, name, op, attrs, fn, x, params=None):
    params = {k: v.clone().requires_grad_(True) for k, v in (params or {}).items()}
    xs = [t.clone().requires_grad_(True) for t in (x if isinstance(x, list) else [x])]
    y = fn(*xs, **params)
    g = torch.Generator().manual_seed(1)
    dy = torch.randn(y.shape, generator=g)
    y.backward(dy)
    d = {"name": name, "op": op, "attrs": attrs, "mode": "train",
         "params": {k: enc(v) for k, v in params.items()}, "buffers": {}}
    if isinstance(x, list):
        d["inputs"] = [enc(t) for t in xs]
    else:
        d["input"] = enc(xs[0])
    d["output"] = enc(y)
    d["grad_output"] = enc(dy)
    if isinstance(x, list):
        d["grad_inputs"] = [enc(t.grad) for t in xs]
    else:
        d["grad_input"] = enc(xs[0].grad)
    d["grad_params"] = {k: enc(v.grad) for k, v in params.items()}
    d["buffers_after"] = {}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(d, f, separators=(",", ":"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers")
    s = (2, 3, 4, 5)
    case(out, "hardtanh_m1_2", "hardtanh", {"min_val": -1.0, "max_val": 2.0}, nn.Hardtanh(-1.0, 2.0),
         with_kinks(s, [-1.0, 2.0, -1.0, 2.0, 0.0], 2.0))
    case(out, "hardtanh_default", "hardtanh", {}, nn.Hardtanh(), with_kinks(s, [-1.0, 1.0, 0.0], 1.5, seed=2))
    case(out, "relu6", "relu6", {}, nn.ReLU6(), with_kinks(s, [0.0, 6.0, 0.0, 6.0], 4.0, seed=3))
    case(out, "leakyrelu_default", "leakyrelu", {}, nn.LeakyReLU(), with_kinks(s, [0.0, 0.0], 2.0, seed=4))
    case(out, "leakyrelu_0.2", "leakyrelu", {"negative_slope": 0.2}, nn.LeakyReLU(0.2),
         with_kinks(s, [0.0], 2.0, seed=5))
    case(out, "hardswish", "hardswish", {}, nn.Hardswish(), with_kinks(s, [-3.0, 3.0, -3.0, 3.0, 0.0], 3.0, seed=6))
    case(out, "hardsigmoid", "hardsigmoid", {}, nn.Hardsigmoid(), with_kinks(s, [-3.0, 3.0, -3.0, 3.0, 0.0], 3.0, seed=7))
    # ONNX HardSigmoid's own defaults (alpha 0.2, beta 0.5): PyTorch has no module for other
    # alpha, beta; the oracle is hardtanh(alpha * x + beta, 0, 1), whose gradient convention
    # (0 at the kinks) is Hardsigmoid's.
    case(out, "hardsigmoid_onnx_0.2", "hardsigmoid", {"alpha": 0.2, "beta": 0.5},
         lambda x: F.hardtanh(0.2 * x + 0.5, 0.0, 1.0), with_kinks(s, [-2.5, 2.5, 0.0], 3.0, seed=8))
    x = with_kinks((2, 3, 4, 5), [], 1.0, seed=9)
    case(out, "pad2d_constant_1_2_0_3", "pad2d", {"padding": [1, 2, 0, 3]}, lambda x: F.pad(x, (1, 2, 0, 3)), x)
    case(out, "pad2d_constant_value", "pad2d", {"padding": [0, 1, 2, 0], "value": -1.5},
         lambda x: F.pad(x, (0, 1, 2, 0), value=-1.5), x)
    case(out, "pad2d_reflect_2_1_1_3", "pad2d", {"padding": [2, 1, 1, 3], "mode": "reflect"},
         lambda x: F.pad(x, (2, 1, 1, 3), mode="reflect"), x)
    g = torch.Generator().manual_seed(10)
    w, b = torch.randn(3, generator=g), torch.randn(3, generator=g)
    case(out, "scale_3_bias", "scale", {"num_features": 3, "bias": True},
         lambda x, weight, bias: x * weight.view(1, 3, 1, 1) + bias.view(1, 3, 1, 1), x, {"weight": w, "bias": b})
    case(out, "scale_1", "scale", {"num_features": 1}, lambda x, weight: x * weight, x, {"weight": torch.tensor([0.75])})
    gate = torch.sigmoid(torch.randn(2, 3, 1, 1, generator=g))
    case(out, "mul_se_gate", "mul", {}, torch.mul, [x, gate])
    case(out, "mul_both_broadcast", "mul", {}, torch.mul, [torch.randn(2, 1, 4, 5, generator=g), torch.randn(1, 3, 4, 1, generator=g)])


if __name__ == "__main__":
    main()
