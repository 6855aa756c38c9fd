#!/usr/bin/env python3
"""Full-size proof of ONNX import (and export) against ONNX Runtime (issue #19; docs/onnx.md).
Not used by Ply's build, tests or CI (the tests use the tiny fixtures in
Tests/PlyTests/Fixtures/onnx). Needs the virtualenv of Benchmarks/setup-pytorch plus
onnxruntime and onnx, and a built `ply` with its plugins.

    $PLY_TORCH_VENV/bin/python Benchmarks/onnx_check.py [--ply .build/release/ply]
        [--models resnet18 alexnet googlenet ...] [--batch 2] [--no-export] [--zoo] [--fixtures]

For each torchvision model (random weights, seed 0, eval mode): torch.onnx.export at opset 17
(the TorchScript exporter, dynamo=False, as Benchmarks/peer_models.py does), ONNX Runtime's
logits for a seeded input, then `ply predict --model M.onnx` on the same input; and, unless
--no-export, `ply import` + `ply export` of the imported model run back in ONNX Runtime.
With --zoo, also the zoo's own models (Ply's composite blocks: residual, basic_conv2d, GoogLeNet's
and Inception v3's blocks): torchvision's state_dict as safetensors, `ply export --model NAME
--weights`, run in ONNX Runtime against PyTorch's logits (models not in the zoo, such as
mobilenet_v2, are skipped there).
With --fixtures, also the test fixtures (Tests/PlyTests/Fixtures/onnx: tiny_mobile with
MobileNet's operators, asym_pads, ...): `ply import` + `ply export`, run in ONNX Runtime against
the logits stored beside each (the tests check the import side; this checks what Ply writes).
Each line: the largest |difference| / the largest |logit| (must be <= 1e-4), or Ply's error.
Exit status 1 when any model fails.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import torch
import torchvision

SIZES = {"inception_v3": 299}
# torchvision models the zoo also has (Sources/Ply/Zoo): --zoo exports these through `ply export --model NAME`
ZOO = {"alexnet", "googlenet", "inception_v3", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
       "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}


def ort_run(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def save_safetensors(state, path):
    """A safetensors file (F32 / I64) without the safetensors package."""
    import json
    import struct
    header, blobs, off = {}, [], 0
    for k, v in state.items():
        a = v.contiguous().numpy()
        b = a.tobytes()
        header[k] = {"dtype": {"float32": "F32", "int64": "I64"}[str(a.dtype)], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def randomize(model):
    """Random statistics and affine terms, so BatchNorm is not an identity and the logits are
    not all alike (torchvision's initialisation leaves GoogLeNet's nearly constant)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        elif isinstance(m, torch.nn.Linear) and m.bias is not None:
            m.bias.data.uniform_(-0.5, 0.5)


def zoo_export(args, work):
    failed = 0
    for name in args.models:
        if name not in ZOO:
            print(f"{name}: zoo export: not in Ply's zoo (import and export above only)")
            continue
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
        randomize(model)
        size = SIZES.get(name, 224)
        x = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            ref = model(x).numpy()
        st, out = os.path.join(work, name + ".safetensors"), os.path.join(work, name + ".zoo.onnx")
        save_safetensors(model.state_dict(), st)
        p = subprocess.run([args.ply, "export", "--model", name, "--weights", st, "--in-channels", "3",
                            "--image-size", str(size), "--output", out], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{name}: zoo export: FAILED: {p.stderr.strip()}")
            failed += 1
            continue
        r = rel(ort_run(out, x.numpy()), ref)
        failed += r > 1e-4
        print(f"{name}: zoo export: max |onnxruntime(ply export) - pytorch| / max |logit| = {r:.2e} "
              f"{'ok' if r <= 1e-4 else 'FAILED'}")
    return failed


FIXTURES = ["tiny_resnet", "tiny_alexnet", "tiny_googlenet", "tiny_ops", "tiny_mobile", "tiny_mobile_dynamo",
            "asym_pads", "leaky", "tiny_convs", "tiny_mobilenet_v2"]


def fixtures_export(args, work):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "PlyTests", "Fixtures", "onnx")
    failed = 0
    for name in FIXTURES:
        x = np.load(os.path.join(here, name + ".input.npy"))
        ref = np.load(os.path.join(here, name + ".logits.npy"))
        out_dir, back = os.path.join(work, "fx-" + name), os.path.join(work, "fx-" + name + ".ply.onnx")
        p = subprocess.run([args.ply, "import", os.path.join(here, name + ".onnx"), "--output", out_dir],
                           capture_output=True, text=True)
        if p.returncode == 0:
            p = subprocess.run([args.ply, "export", "--model", os.path.join(out_dir, "model.yaml"), "--weights",
                                os.path.join(out_dir, "weights.safetensors"), "--in-channels", str(x.shape[1]),
                                "--image-size", str(x.shape[2]), "--output", back], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{name}: fixture export: FAILED: {p.stderr.strip()}")
            failed += 1
            continue
        r = rel(ort_run(back, x), ref)
        failed += r > 1e-4
        print(f"{name}: fixture export: max |onnxruntime(ply export) - onnxruntime| / max |logit| = {r:.2e} "
              f"{'ok' if r <= 1e-4 else 'FAILED'}")
    return failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ply", default=".build/release/ply")
    ap.add_argument("--models", nargs="*", default=["resnet18", "alexnet", "googlenet", "vgg11_bn", "resnet50",
                                                       "inception_v3", "mobilenet_v2"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--zoo", action="store_true")
    ap.add_argument("--fixtures", action="store_true")
    args = ap.parse_args()
    failed = 0
    work = tempfile.mkdtemp(prefix="ply-onnx-check-")
    for name in args.models:
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
        randomize(model)
        size = SIZES.get(name, 224)
        x = torch.rand(args.batch, 3, size, size, generator=torch.Generator().manual_seed(7))
        onnx_path = os.path.join(work, name + ".onnx")
        torch.onnx.export(model, (x,), onnx_path, opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamo=False)
        ref = ort_run(onnx_path, x.numpy())
        npy_in, npy_out = os.path.join(work, name + ".in.npy"), os.path.join(work, name + ".out.npy")
        np.save(npy_in, x.numpy())
        p = subprocess.run([args.ply, "predict", "--model", onnx_path, "--input", npy_in, "--output", npy_out],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{name}: import: FAILED: {p.stderr.strip()}")
            failed += 1
            continue
        r = rel(np.load(npy_out), ref)
        ok = r <= 1e-4
        failed += not ok
        print(f"{name}: import: max |ply - onnxruntime| / max |logit| = {r:.2e} {'ok' if ok else 'FAILED'} "
              f"(max |logit| {np.abs(ref).max():.3g}, logit spread {ref.std():.3g})")
        if args.no_export:
            continue
        out_dir = os.path.join(work, name)
        back = os.path.join(work, name + ".ply.onnx")
        p = subprocess.run([args.ply, "import", onnx_path, "--output", out_dir], capture_output=True, text=True)
        if p.returncode == 0:
            p = subprocess.run([args.ply, "export", "--model", os.path.join(out_dir, "model.yaml"), "--weights",
                                os.path.join(out_dir, "weights.safetensors"), "--in-channels", "3", "--image-size",
                                str(size), "--output", back], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{name}: export: FAILED: {p.stderr.strip()}")
            failed += 1
            continue
        r = rel(ort_run(back, x.numpy()), ref)
        ok = r <= 1e-4
        failed += not ok
        print(f"{name}: export: max |onnxruntime(ply export) - onnxruntime| / max |logit| = {r:.2e} {'ok' if ok else 'FAILED'}")
    if args.zoo:
        failed += zoo_export(args, work)
    if args.fixtures:
        failed += fixtures_export(args, work)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
