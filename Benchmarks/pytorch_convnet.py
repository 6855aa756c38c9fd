#!/usr/bin/env python3
"""The tutorial's ConvNet trained with PyTorch on Fashion-MNIST: the reference side of
Benchmarks/compare. Not used by Ply's build, tests or CI.

    $PLY_TORCH_VENV/bin/python Benchmarks/pytorch_convnet.py [--threads 2] [--epochs 1]

Same set-up as `ply train`: conv 1->8 3x3 pad 1, ReLU, max-pool 2, conv 8->16 3x3 pad 1,
ReLU, max-pool 2, linear 784->10; weights N(0, 0.01), biases 0; plain SGD lr 0.05;
batch 128, reshuffled every epoch; mean cross-entropy; pixels scaled to [0, 1] (/255, as
torchvision's ToTensor does). The data is read from the IDX .gz files with gzip + numpy
and held in memory as one tensor; batches are slices of a random permutation.

Printed at the end (parsed by Benchmarks/compare):
    Throughput: N images/s    training images / wall time of the training loops (batching,
                              forward, loss, backward, SGD step; not the per-epoch
                              training-accuracy pass nor the test evaluation)
    Peak RSS: N MB            getrusage(RUSAGE_SELF).ru_maxrss
    Test accuracy: N%         on the 10,000 test images after the last epoch
"""
import argparse
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    """An IDX file (gzip or raw) as a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return array.reshape(dims)


def load_split(directory, prefix):
    def find(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                return path
        raise FileNotFoundError(os.path.join(directory, stem + ".gz"))

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    pixels = images.astype(np.float32)
    pixels /= 255.0  # in place: no second float copy of the whole set
    x = torch.from_numpy(pixels).unsqueeze(1)  # N x 1 x 28 x 28
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


class ConvNet(nn.Module):
    """The tutorial's ConvNet, with its parameter names."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv_1 = nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1)
        self.pool_1 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.conv_2 = nn.Conv2d(8, 16, kernel_size=3, stride=1, padding=1)
        self.pool_2 = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.linear_1 = nn.Linear(7 * 7 * 16, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.detach().normal_(0.0, 0.01)
                m.bias.detach().zero_()

    def forward(self, x):
        out = self.pool_1(F.relu(self.conv_1(x)))
        out = self.pool_2(F.relu(self.conv_2(out)))
        return self.linear_1(out.flatten(1))


@torch.no_grad()
def accuracy(model, x, y, batch_size=1000):
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    model.train()
    return 100.0 * correct / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--epochs", type=int, default=1, help="epochs (default 1)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="directory with the MNIST-format IDX files")
    p.add_argument("--no-train-accuracy", action="store_true",
                   help="skip the training-set accuracy after each epoch (never timed anyway)")
    p.add_argument("--log-every", type=int, default=50, help="print the cost every N batches")
    args = p.parse_args()
    if args.threads < 1 or args.epochs < 1 or args.batch_size < 1:
        p.error("--threads, --epochs and --batch-size must be positive")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = load_split(args.data, "train")
    test_x, test_y = load_split(args.data, "t10k")

    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    n = len(train_x)
    batches = (n + args.batch_size - 1) // args.batch_size

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{n} training images, batch {args.batch_size}, lr {args.lr}, {args.epochs} epoch(s)")
    start = time.perf_counter()
    train_seconds = 0.0
    trained = 0
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        for b in range(batches):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            features, targets = train_x[idx], train_y[idx]
            logits = model(features)
            cost = F.cross_entropy(logits, targets)
            optimizer.zero_grad()
            cost.backward()
            optimizer.step()
            trained += len(idx)
            if b % args.log_every == 0:
                print(f"Epoch: {epoch + 1:03d}/{args.epochs:03d} | Batch {b:03d}/{batches:03d} | "
                      f"Cost: {cost.item():.4f}", flush=True)
        train_seconds += time.perf_counter() - t0
        if not args.no_train_accuracy:
            print(f"Epoch: {epoch + 1:03d}/{args.epochs:03d} training accuracy: "
                  f"{accuracy(model, train_x, train_y):.2f}%")
        print(f"Time elapsed: {(time.perf_counter() - start) / 60:.2f} min", flush=True)

    print(f"Total Training Time: {(time.perf_counter() - start) / 60:.2f} min")
    print(f"Test accuracy: {accuracy(model, test_x, test_y):.2f}%")
    print(f"Throughput: {trained / train_seconds:.0f} images/s")
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    print(f"Peak RSS: {rss_mb:.1f} MB")


if __name__ == "__main__":
    main()
