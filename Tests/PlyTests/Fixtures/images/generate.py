#!/usr/bin/env python3
"""Regenerates the image fixtures of ImageDataTests.decodeResizeAndCropMatchPillowOnPhotographs.

Usage: ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/images/generate.py
(needs scikit-learn for its sample photographs, Pillow, torchvision, numpy). Run from this folder.

flower.jpg is scikit-learn's `load_sample_images` photograph as shipped (640x427 JPEG);
china-*.{jpg,png} are its china.jpg shrunk with Pillow (a 320x213 JPEG, a 160x107 gray PNG,
a 96x64 RGB PNG) and a 28x28 crop (a JPEG, for InspectTests, with Pillow's RGB and L decodes
of it). For each case: Pillow's decode (converted to RGB or L, every
`decodedStride`-th pixel kept to stay small) and torchvision's Resize(resize) +
CenterCrop(crop) on the PIL image, as uint8 (1, C, H, W) .npy files.
"""
import json, os, shutil
import numpy as np
import sklearn.datasets
from PIL import Image
import torchvision.transforms as T

src = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
shutil.copy(os.path.join(src, "flower.jpg"), "flower.jpg")
china = Image.open(os.path.join(src, "china.jpg"))
china.resize((320, 213), Image.BILINEAR).save("china-320.jpg", quality=90)
china.resize((160, 107), Image.BILINEAR).convert("L").save("china-gray-160.png")
china.resize((96, 64), Image.BILINEAR).save("china-rgba-96.png")
# ply inspect --image on a real JPEG (InspectTests): a 28x28 crop of the photograph as shipped
# (the temple's roof), and Pillow's decode of it as RGB and as L, (C, H, W) uint8.
china.crop((300, 100, 328, 128)).save("china-crop-28.jpg", quality=90)
crop = Image.open("china-crop-28.jpg")
np.save("china-crop-28-rgb.npy", np.asarray(crop.convert("RGB")).transpose(2, 0, 1).copy())
np.save("china-crop-28-gray.npy", np.asarray(crop.convert("L"))[None].copy())

cases = []
def case(name, file, resize, crop, channels):
    im = Image.open(file).convert("RGB" if channels == 3 else "L")
    dec = np.asarray(im).reshape(im.size[1], im.size[0], -1).transpose(2, 0, 1)[None]
    step = 4 if dec.shape[2] * dec.shape[3] > 20000 else 1
    np.save(f"{name}-decoded.npy", dec[:, :, ::step, ::step].copy())
    t = ([T.Resize(resize)] if resize else []) + ([T.CenterCrop(crop)] if crop else [])
    out = T.Compose(t)(im)
    a = np.asarray(out).reshape(out.size[1], out.size[0], -1).transpose(2, 0, 1)[None].copy()
    np.save(f"{name}-expected.npy", a)
    cases.append(dict(name=name, file=file, resize=resize, crop=crop, channels=channels,
                      shape=list(a.shape), decodedStride=step))

case("flower", "flower.jpg", 100, 96, 3)
case("flower-gray", "flower.jpg", 57, None, 1)
case("china", "china-320.jpg", 90, None, 3)
case("china-gray", "china-gray-160.png", 40, 33, 1)
case("china-up", "china-rgba-96.png", 128, 101, 3)
json.dump(cases, open("cases.json", "w"), indent=1)
