#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under Fuzz/corpus/<target>/ (run from anywhere).

Small valid files of each format, so the fuzzers start from inputs that get past the
first checks: IDX headers and data (raw and gzip), safetensors files of every dtype and
the golden ones, the zoo's model texts (taken from Sources/Ply/Zoo/*.swift) and a few
hand-written model files, and .npy files. Only the standard library (and numpy, if it is
there, for .npy files written by numpy itself) is used. Regenerating is deterministic.
"""
import gzip, io, json, os, re, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


# ---- checkpoint metadata (FuzzCheckpoint: first byte picks SGD/Adam, then key=value lines)
CHECKPOINT_GOOD = {
    "format": "ply-checkpoint-1", "epoch": "1", "batch": "0", "generator": "12345",
    "optimizer_steps": "10", "epoch_losses": "0.5,0.25", "training_accuracies": "90.5",
    "partial_loss": "0", "partial_samples": "0",
}


def checkpoint_seeds():
    def text(meta):
        return "\n".join(f"{k}={v}" for k, v in meta.items())
    for opt, name in ((b"\x00", "sgd"), (b"\x01", "adam")):
        put("FuzzCheckpoint", f"{name}-good", opt + text(CHECKPOINT_GOOD).encode())
    for key, value in (("epoch", "-1"), ("epoch", "9223372036854775807"), ("batch", "-5"),
                       ("optimizer_steps", "-1"), ("partial_samples", "-3"), ("generator", "-1"),
                       ("epoch_losses", "nan,inf,,"), ("partial_loss", "1e999")):
        meta = dict(CHECKPOINT_GOOD)
        meta[key] = value
        put("FuzzCheckpoint", f"sgd-{key}-{value[:8]}", b"\x00" + text(meta).encode())

# ---- ply command lines (FuzzCLI: words separated by newlines, the first a subcommand) --------
# The command lines of README.md, docs/ and BENCHMARKS.md, and every option of each command.
CLI_SEEDS = {
    "plugins": "plugins",
    "plugins-describe": "plugins --describe conv2d",
    "train-help": "train --help",
    "train-tutorial": "train --epochs 2 --model lenet5",
    "train-full": "train --model convnet --epochs 10 --batch-size 128 --lr 0.05 --optimizer sgd --momentum 0.9 "
                  "--nesterov --weight-decay 0.0005 --schedule step:3:0.1 --initialization normal --seed 1 "
                  "--threads 2 --data /usr/share/datasets/fashion-mnist --output /tmp/ply-fuzz-out --limit 1000 "
                  "--no-train-accuracy",
    "train-adam-cosine": "train --optimizer adam --schedule cosine:0.001 --resume --resume-anyway",
    "train-plugins": "train --plugin ./libchannel_scale.so --plugin-dir /tmp --no-builtins --strict-attributes "
                     "--keep-denormals --no-user-libraries",
    "default-train": "--epochs 1 --batch-size=64",
    "eval": "eval --weights runs/convnet/checkpoint.safetensors",
    "eval-full": "eval --model convnet --weights w.safetensors --data /tmp --split train --batch-size 256",
    "bench": "bench --training --repeats 1 --threads 2",
    "bench-model": "bench-model resnet18 --batch 1 --threads 2",
    "bench-model-full": "bench-model googlenet --batch 2 --image-size 224 --channels 3 --classes 1000 --training "
                        "--runs 5 --iterations 3 --warmup 2",
    "bench-capi": "bench-capi --threads 1",
    "bench-activations": "bench-activations --library /tmp/libactivations.so --threads 1 --repeats 20 --shape 128 8 28 28",
    "summary": "summary resnet18 --num-classes 1000 --in-channels 3 --image-size 224",
    "summary-batch": "summary convnet --batch 4 --image-size 28",
    "predict": "predict --model convnet --weights runs/convnet/checkpoint.safetensors --input images.npy "
               "--output /tmp/logits.npy",
    "predict-full": "predict --model resnet18 --num-classes 1000 --weights resnet18.safetensors --input x.npy "
                    "--output /tmp/y.npy --node avgpool --in-channels 3 --image-size 224 --batch-size 64",
    "help": "help train",
    "bench-data": "bench-data --data /tmp/images --batch-size 64 --resize 32 --center-crop 28 --normalize",
    "inspect": "inspect --model convnet --weights runs/convnet/checkpoint.safetensors --layer conv_1 --position 3,4 "
               "--index 0 --split test --output /tmp/inspect",
    "train-augmented": "train --data /tmp/images --random-crop 4 --horizontal-flip --val-split 0.1 --no-validation "
                       "--distributed --allreduce-after-backward --skip-bad-images",
}


def cli_seeds():
    for name, line in CLI_SEEDS.items():
        put("FuzzCLI", name, "\n".join(line.split(" ")))

# ---- IDX -----------------------------------------------------------------
def idx(dims, payload=None, type_code=0x08):
    n = 1
    for d in dims:
        n *= d
    if payload is None:
        payload = bytes((i * 37) & 0xFF for i in range(n))
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


put("FuzzIDX", "labels-5", idx([5], bytes([0, 1, 2, 9, 3])))
put("FuzzIDX", "images-2x4x4", idx([2, 4, 4]))
put("FuzzIDX", "images-1x28x28", idx([1, 28, 28]))
put("FuzzIDX", "matrix-3x5", idx([3, 5]))
put("FuzzIDX", "empty-0x28x28", idx([0, 28, 28]))
put("FuzzIDX", "labels-5.gz", gz(idx([5], bytes([0, 1, 2, 9, 3]))))
put("FuzzIDX", "images-2x4x4.gz", gz(idx([2, 4, 4])))
fixtures = os.path.join(ROOT, "Tests", "PlyTests", "Fixtures", "fashion-mnist-small")
labels = os.path.join(fixtures, "t10k-labels-idx1-ubyte.gz")
if os.path.exists(labels):
    put("FuzzIDX", "t10k-labels-idx1-ubyte.gz", open(labels, "rb").read())
images = os.path.join(fixtures, "t10k-images-idx3-ubyte.gz")
if os.path.exists(images):
    raw = gzip.decompress(open(images, "rb").read())
    three = raw[16:16 + 3 * 28 * 28]  # three real Fashion-MNIST images
    put("FuzzIDX", "t10k-images-3.gz", gz(idx([3, 28, 28], three)))
    put("FuzzIDX", "t10k-images-1", idx([1, 28, 28], three[:784]))

# ---- safetensors ---------------------------------------------------------
DTYPES = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "BF16": (None, 2), "I64": ("q", 8), "I32": ("i", 4),
          "I16": ("h", 2), "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("?", 1)}


def safetensors(tensors, metadata=None):
    header, buf = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(data)]}
        buf += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + buf


def values(dtype, n):
    fmt, size = DTYPES[dtype]
    if fmt is None:  # bf16: the top half of f32
        return b"".join(struct.pack("<f", 0.5 * i - 1)[2:] for i in range(n))
    if fmt in "def":
        return b"".join(struct.pack("<" + fmt, 0.25 * i - 1) for i in range(n))
    if fmt == "?":
        return bytes(i % 2 for i in range(n))
    return b"".join(struct.pack("<" + fmt, i - 2 if fmt not in "B" else i) for i in range(n))


for dtype in DTYPES:
    put("FuzzSafeTensors", f"{dtype.lower()}-2x3.safetensors", safetensors([("t", dtype, [2, 3], values(dtype, 6))]))
put("FuzzSafeTensors", "two-with-metadata.safetensors",
    safetensors([("conv.weight", "F32", [2, 1, 1, 1], values("F32", 2)), ("conv.bias", "F32", [2], values("F32", 2))],
                {"format": "pt", "note": "caf\u00e9 \\u00e9"}))
put("FuzzSafeTensors", "scalar-and-empty.safetensors",
    safetensors([("s", "F32", [], values("F32", 1)), ("e", "I64", [0, 4], b"")]))
put("FuzzSafeTensors", "empty-header.safetensors", safetensors([]))
for name in ["seed_convnet.safetensors"]:
    p = os.path.join(ROOT, "Tests", "PlyTests", "Fixtures", "golden", "models", name)
    if os.path.exists(p):
        put("FuzzSafeTensors", name, open(p, "rb").read())

# ---- model files -----------------------------------------------------------
for path in sorted(os.listdir(os.path.join(ROOT, "Sources", "Ply", "Zoo"))):
    src = open(os.path.join(ROOT, "Sources", "Ply", "Zoo", path)).read()
    for m in re.finditer(r'static let (\w+)Text = """\n(.*?)\n\s*"""', src, re.S):
        lines = m.group(2).split("\n")
        indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
        put("FuzzModelFile", f"zoo-{m.group(1)}.yaml", "\n".join(l[indent:] for l in lines) + "\n")
put("FuzzModelFile", "minimal.yaml", "layers:\n  - type: relu\n")
put("FuzzModelFile", "json.json", json.dumps({"model": "j", "params": {"c": 4}, "layers": [
    {"name": "conv", "type": "conv2d", "in_channels": 1, "out_channels": "$c", "kernel_size": 3},
    {"type": "flatten"}, {"type": "linear", "in_features": "$(c * 26 * 26)", "out_features": 10}]}))
put("FuzzModelFile", "groups-repeat-if.yaml", """\
model: features
params: {width: 4, deep: true, sizes: [1, 2]}
vars:
  w2: $(width * 2 if deep else width)
  half: ${w2 / 2 % 3 - -1}
min_input_size: $(max(28, min(32, 30)))
layers:
  - group: stem
    vars: {k: 3}
    layers:
      - {type: conv2d, in_channels: 1, out_channels: $width, kernel_size: $k, padding: 1}
      - {type: batchnorm2d, num_features: $width}
  - repeat: 2
    as: i
    layers:
      - {name: block$i, type: conv2d, in_channels: $width, out_channels: $width, kernel_size: [3, 1], padding: [1, 0]}
      - {name: act$i, type: relu, if: $(i == 0 or not deep)}
  - {name: skip, type: add, inputs: [stem.1, block1]}
  - {name: cat, type: concat, inputs: [skip, stem.0], dim: 1}
  - {name: pool, type: avgpool2d, kernel_size: 2, stride: 2, ceil_mode: true}
  - {name: up, type: interpolate, scale_factor: 2.0, mode: nearest}
  - {name: drop, type: dropout, p: 0.5}
  - {name: gap, type: adaptive_avgpool2d, output_size: [1, 1]}
  - {name: flat, type: flatten}
  - {name: fc, type: linear, in_features: $(2 * width), out_features: 10}
  - {name: prob, type: log_softmax, dim: 1}
output: fc
""")
put("FuzzModelFile", "anchors.yaml", """\
block: &b {type: conv2d, in_channels: 2, out_channels: 2, kernel_size: 1}
layers:
  - {type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 1}
  - *b
  - {type: residual_basic, inplanes: 2, planes: 2, stride: 1, downsample: false}
  - {type: basic_conv2d, in_channels: 2, out_channels: 3, kernel_size: 1}
  - {type: maxpool2d, kernel_size: 3, stride: 2, padding: 1, dilation: 1}
  - {type: sigmoid}
  - {type: tanh}
  - {type: softmax, dim: 1}
""")

# ---- .npy --------------------------------------------------------------------
def npy(descr, shape, data, fortran=False, version=(1, 0)):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", "(%s)" % "".join(f"{d}, " for d in shape) if len(shape) != 1 else f"({shape[0]},)")
    lensize = 2 if version[0] == 1 else 4
    pad = -(6 + 2 + lensize + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    length = struct.pack("<H" if lensize == 2 else "<I", len(header))
    return b"\x93NUMPY" + bytes(version) + length + header.encode("latin1") + data


put("FuzzNumPy", "f32-2x3.npy", npy("<f4", [2, 3], values("F32", 6)))
put("FuzzNumPy", "f64-4.npy", npy("<f8", [4], values("F64", 4)))
put("FuzzNumPy", "u1-1x28x28.npy", npy("|u1", [1, 28, 28], bytes(i & 0xFF for i in range(784))))
put("FuzzNumPy", "i8-3.npy", npy("<i8", [3], values("I64", 3)))
put("FuzzNumPy", "i4-2x2-fortran.npy", npy("<i4", [2, 2], values("I32", 4), fortran=True))
put("FuzzNumPy", "f4-scalar.npy", npy("<f4", [], values("F32", 1)))
put("FuzzNumPy", "f4-empty-0x3.npy", npy("<f4", [0, 3], b""))
put("FuzzNumPy", "f4-big-endian.npy", npy(">f4", [2], struct.pack(">ff", 1.5, -2.0)))
put("FuzzNumPy", "f2-v2.npy", npy("<f2", [3], values("F16", 3), version=(2, 0)))
put("FuzzNumPy", "bool-4-v3.npy", npy("|b1", [4], bytes([0, 1, 1, 0]), version=(3, 0)))
try:
    import numpy as np
    for name, a in [("np-f32-3x2.npy", np.arange(6, dtype=np.float32).reshape(3, 2)),
                    ("np-i64-5.npy", np.arange(5, dtype=np.int64)),
                    ("np-u8-2x2x2.npy", np.arange(8, dtype=np.uint8).reshape(2, 2, 2))]:
        buf = io.BytesIO()
        np.save(buf, a)
        put("FuzzNumPy", name, buf.getvalue())
except ImportError:
    pass
checkpoint_seeds()
cli_seeds()
# FuzzONNX: the importer's test networks (Tests/PlyTests/Fixtures/onnx/make-fixtures.py writes them)
onnx_fixtures = os.path.join(ROOT, "Tests", "PlyTests", "Fixtures", "onnx")
for name in ["tiny_ops", "leaky", "tiny_googlenet", "tiny_resnet", "tiny_alexnet", "tiny_resnet_external", "tiny_mobile",
             "asym_pads"]:
    with open(os.path.join(onnx_fixtures, name + ".onnx"), "rb") as f:
        put("FuzzONNX", name + ".onnx", f.read())
print("seeds written under", CORPUS)
