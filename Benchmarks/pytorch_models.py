#!/usr/bin/env python3
"""Images/s of a model's inference or training step in PyTorch on synthetic data: the
PyTorch half of Benchmarks/compare-models, the counterpart of `ply bench-model`. Not used by
Ply's build, tests or CI.

    $PLY_TORCH_VENV/bin/python Benchmarks/pytorch_models.py MODEL [--batch 1] [--image-size 224]
        [--channels 3] [--classes 1000] [--training] [--runs 5] [--iterations 0] [--warmup 2]
        [--threads 2] [--params-only]

MODEL: convnet (the tutorial's ConvNet, as in Benchmarks/pytorch_convnet.py), resnet18, resnet50,
alexnet, vgg16, googlenet, inception_v3 (torchvision's definitions; googlenet and
inception_v3 with aux_logits=False, init_weights=False, so the same graph as Ply's zoo).

Same semantics as `ply bench-model`:
  - input: uniform [0, 1) floats (seed 7), labels i % classes;
  - inference: model.eval() under torch.inference_mode();
  - training (--training): model.train(); one step = zero_grad, forward, mean
    F.cross_entropy, backward, SGD(lr=0.01, momentum=0.9).step();
  - timing: --warmup untimed steps, then one step to size a run at about 0.5 s (1 to 1000
    batches) unless --iterations says, then --runs timed runs; the median is reported.

Printed (parsed by Benchmarks/compare-models):
    params: N                   trainable parameters (compared with `ply summary`)
    run K: X images/s (Y ms per batch; CPU Z ms per batch, P%)
    result: X images/s (median of R runs; min A, max B)
    peak_rss_mb: X              getrusage(RUSAGE_SELF).ru_maxrss of this process
"""
import argparse
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNet(nn.Module):
    """The tutorial's ConvNet (Benchmarks/pytorch_convnet.py), for any input size/channels."""

    def __init__(self, num_classes=10, in_channels=1, image_size=28):
        super().__init__()
        self.conv_1 = nn.Conv2d(in_channels, 8, kernel_size=3, stride=1, padding=1)
        self.pool_1 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.conv_2 = nn.Conv2d(8, 16, kernel_size=3, stride=1, padding=1)
        self.pool_2 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        side = image_size // 2 // 2
        self.linear_1 = nn.Linear(side * side * 16, num_classes)

    def forward(self, x):
        out = self.pool_1(F.relu(self.conv_1(x)))
        out = self.pool_2(F.relu(self.conv_2(out)))
        return self.linear_1(out.flatten(1))


def make_model(name, classes, channels, image_size):
    if name == "convnet":
        return ConvNet(classes, channels, image_size)
    import torchvision.models as tvm  # only the torchvision models need torchvision

    if channels != 3:
        raise SystemExit(f"pytorch_models: {name} is torchvision's 3-channel definition; use --channels 3")
    if name == "resnet18":
        return tvm.resnet18(num_classes=classes)
    if name == "resnet50":
        return tvm.resnet50(num_classes=classes)
    if name == "alexnet":
        return tvm.alexnet(num_classes=classes)
    if name == "vgg16":
        return tvm.vgg16(num_classes=classes)
    if name == "googlenet":
        return tvm.googlenet(num_classes=classes, aux_logits=False, init_weights=False)
    if name == "inception_v3":
        return tvm.inception_v3(num_classes=classes, aux_logits=False, init_weights=False)
    raise SystemExit(f"pytorch_models: unknown model {name}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--training", action="store_true")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--iterations", type=int, default=0, help="batches per run (0: about 0.5 s)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--params-only", action="store_true", help="print the parameter count and stop")
    args = p.parse_args()
    if min(args.batch, args.image_size, args.channels, args.classes, args.runs) < 1 \
            or args.iterations < 0 or args.warmup < 0:
        p.error("--batch, --image-size, --channels, --classes, --runs must be positive")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    model = make_model(args.model, args.classes, args.channels, args.image_size)
    params = sum(q.numel() for q in model.parameters() if q.requires_grad)
    print(f"params: {params}")
    if args.params_only:
        return

    x = torch.rand(args.batch, args.channels, args.image_size, args.image_size)
    y = torch.arange(args.batch) % args.classes
    if args.training:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)

    for _ in range(args.warmup):
        step()
    per_run = args.iterations
    if per_run == 0:
        t0 = time.perf_counter()
        step()
        one = time.perf_counter() - t0
        per_run = max(1, min(1000, math.ceil(0.5 / max(one, 1e-6))))
    print(f"model: {args.model}, {'training step' if args.training else 'inference'}, input "
          f"[{args.batch}, {args.channels}, {args.image_size}, {args.image_size}], threads "
          f"{torch.get_num_threads()}, {args.runs} runs of {per_run} batches, torch {torch.__version__}",
          flush=True)
    rates = []
    for r in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(per_run):
            step()
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
        rates.append(args.batch * per_run / seconds)
        # the process's CPU time, as `ply bench-model` prints it: on a shared machine, wall time /
        # CPU time below the thread count means other work took the cores
        print(f"run {r + 1}: {rates[-1]:.2f} images/s ({seconds / per_run * 1e3:.3f} ms per batch; CPU "
              f"{cpu / per_run * 1e3:.3f} ms per batch, {cpu / seconds * 100:.0f}%)", flush=True)
    s = sorted(rates)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    print(f"result: {median:.2f} images/s (median of {n} runs; min {s[0]:.2f}, max {s[-1]:.2f})")
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    print(f"peak_rss_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20:.1f}")


if __name__ == "__main__":
    main()
