#!/usr/bin/env python3
"""Images/s of a model's inference in ONNX Runtime or ncnn on synthetic data: the peers'
half of Benchmarks/compare-models (--peers), beside `ply bench-model` and
Benchmarks/pytorch_models.py. Not used by Ply's build, tests or CI.

    $PLY_TORCH_VENV/bin/python Benchmarks/peer_models.py prepare MODEL [--batch 1]
        [--image-size 224] [--channels 3] [--classes 1000]
    $PLY_TORCH_VENV/bin/python Benchmarks/peer_models.py run ENGINE MODEL [same shape flags]
        [--runs 5] [--iterations 0] [--warmup 2] [--threads 2]

ENGINE: onnxruntime or ncnn. MODEL: as in pytorch_models.py (the same torchvision
definitions, so the same graph as Ply's zoo).

`prepare` converts the torchvision model once per shape, in its own process (it imports
torch, which `run` must not pay for in memory): ONNX with torch.onnx.export, opset 17
(ONNX Runtime then applies all its graph optimisations, ORT_ENABLE_ALL); ncnn with pnnx
from the same traced model, weights kept in fp32 (pnnx's fp16=False). Files go to
$PLY_PEER_CACHE (default ~/.cache/ply-peer-models), named by model and shape.

`run` measures inference only, fp32 everywhere: ncnn with fp16/bf16 storage, packing and
arithmetic switched off; ncnn has no batch dimension, so a batch of N is N extractions on
one extractor per image (what an ncnn user does). Input: uniform [0, 1) floats (seed 7).
Timing as pytorch_models.py: warm-up, a run sized to about 0.5 s, --runs timed runs.

Printed (parsed by Benchmarks/compare-models):
    run K: X images/s (Y ms per batch)
    result: X images/s (median of R runs; min A, max B)
    peak_rss_mb: X
and, for comparing by CPU time on a busy machine (at 1 thread the work done; at more it also
counts the engines' spinning workers):
    cpu: X ms per batch (process CPU time, median of R runs)
"""
import argparse
import math
import os
import resource
import sys
import time


def cache_dir():
    d = os.environ.get("PLY_PEER_CACHE", os.path.expanduser("~/.cache/ply-peer-models"))
    os.makedirs(d, exist_ok=True)
    return d


def stem(args):
    return os.path.join(cache_dir(), f"{args.model}_b{args.batch}_s{args.image_size}_c{args.channels}_k{args.classes}")


def prepare(args):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pytorch_models import make_model

    torch.manual_seed(7)
    model = make_model(args.model, args.classes, args.channels, args.image_size).eval()
    base = stem(args)
    x = torch.rand(args.batch, args.channels, args.image_size, args.image_size)
    if not os.path.exists(base + ".onnx"):
        torch.onnx.export(model, x, base + ".onnx", opset_version=17, input_names=["x"], output_names=["y"],
                          dynamo=False)
    if not os.path.exists(base + ".ncnn.param"):
        import pnnx
        one = x[:1]
        pnnx.export(model, base + ".pt", one, ncnnparam=base + ".ncnn.param", ncnnbin=base + ".ncnn.bin",
                    pnnxparam=base + ".pnnx.param", pnnxbin=base + ".pnnx.bin", pnnxpy=base + "_pnnx.py",
                    pnnxonnx=base + ".pnnx.onnx", ncnnpy=base + "_ncnn.py", fp16=False)
    print(f"prepared: {base}.onnx, {base}.ncnn.param")


def runner(args):
    import numpy as np

    rng = np.random.default_rng(7)
    x = rng.random((args.batch, args.channels, args.image_size, args.image_size), dtype=np.float32)
    base = stem(args)
    threads = args.threads or os.cpu_count()
    if args.engine == "onnxruntime":
        import onnxruntime as ort

        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(base + ".onnx", o, providers=["CPUExecutionProvider"])

        def step():
            session.run(None, {"x": x})
        return step
    if args.engine == "ncnn":
        import ncnn

        net = ncnn.Net()
        net.opt.num_threads = threads
        for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage",
                     "use_int8_inference"):
            if hasattr(net.opt, flag):
                setattr(net.opt, flag, False)
        if net.load_param(base + ".ncnn.param") != 0 or net.load_model(base + ".ncnn.bin") != 0:
            raise SystemExit(f"peer_models: cannot load {base}.ncnn.*; run `prepare` first")
        # ncnn.Mat(array) wraps the array's memory without copying: keep the arrays alive.
        arrays = [np.ascontiguousarray(x[i]) for i in range(args.batch)]
        images = [ncnn.Mat(a).clone() for a in arrays]

        def step():
            for m in images:
                ex = net.create_extractor()
                ex.input("in0", m)
                ret, _ = ex.extract("out0")
                if ret != 0:
                    raise SystemExit(f"peer_models: ncnn extract failed ({ret})")
        return step
    raise SystemExit(f"peer_models: unknown engine {args.engine}")


def measure(args):
    step = runner(args)
    for _ in range(args.warmup):
        step()
    iterations = args.iterations
    if iterations == 0:
        t = time.perf_counter()
        step()
        once = max(time.perf_counter() - t, 1e-6)
        iterations = max(1, min(1000, math.ceil(0.5 / once)))
    rates, cpus = [], []
    for r in range(args.runs):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(iterations):
            step()
        elapsed = time.perf_counter() - t
        cpus.append(1000 * (time.process_time() - c) / iterations)
        rate = iterations * args.batch / elapsed
        rates.append(rate)
        print(f"run {r + 1}: {rate:.2f} images/s ({1000 * elapsed / iterations:.2f} ms per batch)")
    rates.sort()
    med = rates[len(rates) // 2] if len(rates) % 2 else (rates[len(rates) // 2 - 1] + rates[len(rates) // 2]) / 2
    print(f"result: {med:.2f} images/s (median of {len(rates)} runs; min {rates[0]:.2f}, max {rates[-1]:.2f})")
    print(f"peak_rss_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
    cpus.sort()
    cpu = cpus[len(cpus) // 2] if len(cpus) % 2 else (cpus[len(cpus) // 2 - 1] + cpus[len(cpus) // 2]) / 2
    print(f"cpu: {cpu:.2f} ms per batch (process CPU time, median of {len(cpus)} runs)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("prepare", "run"):
        q = sub.add_parser(name)
        if name == "run":
            q.add_argument("engine", choices=["onnxruntime", "ncnn"])
        q.add_argument("model")
        q.add_argument("--batch", type=int, default=1)
        q.add_argument("--image-size", type=int, default=224)
        q.add_argument("--channels", type=int, default=3)
        q.add_argument("--classes", type=int, default=1000)
        if name == "run":
            q.add_argument("--runs", type=int, default=5)
            q.add_argument("--iterations", type=int, default=0)
            q.add_argument("--warmup", type=int, default=2)
            q.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if min(args.batch, args.image_size, args.channels, args.classes) < 1:
        p.error("--batch, --image-size, --channels, --classes must be positive")
    if args.command == "prepare":
        prepare(args)
    else:
        if args.runs < 1 or args.iterations < 0 or args.warmup < 0:
            p.error("--runs must be positive; --iterations and --warmup not negative")
        measure(args)


if __name__ == "__main__":
    main()
