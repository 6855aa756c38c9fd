"""Shared by the fixture generators in this folder's subfolders: golden/README.md's JSON format.

Imported, never run (the generators put this folder on sys.path). Not used by the build or the
tests (they read the committed files).
"""
import json
import os


def tensor(t):
    """A tensor as {"shape", "data"}: row-major values with 9 significant digits."""
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.flatten().tolist()]}


def pair(v):
    """A kernel/stride/padding attribute as [height, width]."""
    return list(v) if isinstance(v, tuple) else [v, v]


def write_case(folder, case):
    """Writes `case` to folder/<name>.json, compact, and prints its name and output shape."""
    with open(os.path.join(folder, case["name"] + ".json"), "w") as f:
        json.dump(case, f, separators=(",", ":"))
    print(case["name"], tuple(case["output"]["shape"]))


def write_conv2d_eval_cases(folder, cases, seed, more_attrs=None, outputs=None):
    """One conv2d case per (name, N, C, OC, H, W, kernel, stride, padding, bias) row, forward only:
    nn.Conv2d's default initialisation seeded with seed + row index, input standard normal
    (float32 values), output computed in double precision. `more_attrs` (a dict) is appended to
    each case's attributes; `outputs(y)`, given the double-precision convolution, returns the
    tensors written after "input" in its place (default: {"output": tensor(y)}; it may draw more
    random values, after the input's)."""
    import torch
    import torch.nn as nn

    for i, (name, n, c, oc, h, w, k, s, p, bias) in enumerate(cases):
        torch.manual_seed(seed + i)
        conv = nn.Conv2d(c, oc, k, s, p, bias=bias).eval()
        x = torch.randn(n, c, h, w)
        with torch.no_grad():
            y = conv.double()(x.double())
        attrs = {"in_channels": c, "out_channels": oc, "kernel_size": pair(k), "stride": pair(s),
                 "padding": pair(p), "bias": bias, **(more_attrs or {})}
        case = {"name": name, "op": "conv2d", "attrs": attrs, "mode": "eval",
                "params": {pn: tensor(pv) for pn, pv in conv.named_parameters()}, "input": tensor(x)}
        case.update(outputs(y) if outputs else {"output": tensor(y)})
        write_case(folder, case)
