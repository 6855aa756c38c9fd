#!/usr/bin/env python3
"""Writes Fashion-MNIST (MNIST-format IDX files) out as image folders, for Benchmarks/image-folders.

Usage: fashion_mnist_folders.py IDX_DIR OUT_DIR [JPEG_QUALITY]

OUT_DIR/png/{train,test}/<label>-<name>/<index>.png    every image, lossless 8-bit gray PNG
OUT_DIR/jpeg/{train,test}/<label>-<name>/<index>.jpg   the same as gray JPEGs (quality, default 90)
OUT_DIR/idx-by-class/{train,t10k}-*-ubyte.gz           the IDX files with the images stably
                                                       sorted by label: the order torchvision's
                                                       ImageFolder (and Ply) reads the folders in
Needs Pillow and numpy (the virtualenv of Benchmarks/setup-pytorch has both).
"""
import gzip, os, struct, sys
import numpy as np
from PIL import Image

NAMES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]

def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    shape = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)

def write_idx(path, array, magic):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes())

def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    quality = int(sys.argv[3]) if len(sys.argv) == 4 else 90
    os.makedirs(os.path.join(out, "idx-by-class"), exist_ok=True)
    for prefix, split in (("train", "train"), ("t10k", "test")):
        images = read_idx(os.path.join(src, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(src, f"{prefix}-labels-idx1-ubyte.gz"))
        order = np.argsort(labels, kind="stable")
        write_idx(os.path.join(out, "idx-by-class", f"{prefix}-images-idx3-ubyte.gz"), images[order], 0x803)
        write_idx(os.path.join(out, "idx-by-class", f"{prefix}-labels-idx1-ubyte.gz"), labels[order], 0x801)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = f"{label}-{NAMES[label]}"
            picture = Image.fromarray(image, mode="L")
            for kind, ext, kwargs in (("png", "png", {}), ("jpeg", "jpg", {"quality": quality})):
                d = os.path.join(out, kind, split, folder)
                if i == 0 or not os.path.isdir(d):
                    os.makedirs(d, exist_ok=True)
                picture.save(os.path.join(d, f"{i:05d}.{ext}"), **kwargs)
        print(f"{split}: {len(labels)} images written", flush=True)

if __name__ == "__main__":
    main()
