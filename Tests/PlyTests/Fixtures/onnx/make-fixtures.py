#!/usr/bin/env python3
"""Regenerates the ONNX importer's test fixtures (Tests/PlyTests/ONNXImportTests.swift).

    ~/.cache/ply-torch-venv/bin/python Tests/PlyTests/Fixtures/onnx/make-fixtures.py [NAME...]

Tiny-width networks built from torchvision's own blocks (BasicBlock, Bottleneck, GoogLeNet's
Inception and BasicConv2d, AlexNet's layer pattern), exported with torch.onnx.export at
opset 17; for each, NAME.onnx, NAME.input.npy (seeded uniform [0, 1)) and NAME.logits.npy:
what ONNX Runtime computes for that input — the oracle the test compares Ply against.
Not used by the build or the tests (they read the committed files).
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.googlenet import BasicConv2d, Inception
from torchvision.models.resnet import BasicBlock, Bottleneck

HERE = os.path.dirname(os.path.abspath(__file__))


class TinyResNet(nn.Module):
    """ResNet's stem, a BasicBlock, a strided BasicBlock with downsample, a Bottleneck."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        down = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2, down))
        down = nn.Sequential(nn.Conv2d(16, 16, 1, 1, bias=False), nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(Bottleneck(16, 4, 1, down))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyAlexNet(nn.Module):
    """AlexNet's pattern: conv 11/4, ReLU, max-pools, adaptive average pool, dropout, Linear."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(8, 12, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(16 * 9, 24), nn.ReLU(inplace=True),
                                        nn.Linear(24, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TinyGoogLeNet(nn.Module):
    """GoogLeNet's stem (BasicConv2d, ceil-mode max-pools) and two Inception blocks."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = BasicConv2d(3, 8, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(8, 4, 4, 8, 2, 4, 4)
        self.inception3b = Inception(20, 8, 4, 8, 2, 4, 4)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(24, classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class Ops(nn.Module):
    """The other mapped operators: Pad before a conv, Sigmoid, Tanh, AveragePool with padding
    (count_include_pad false), Reshape of the flatten kind, MatMul + Add, Softmax."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.pool = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.weight = nn.Parameter(torch.randn(6 * 7 * 7, classes) * 0.05)
        self.bias = nn.Parameter(torch.randn(classes) * 0.1)

    def forward(self, x):
        x = torch.sigmoid(self.conv(F.pad(x, (1, 1, 1, 1))))
        x = self.pool(torch.tanh(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)
        return torch.softmax(torch.matmul(x, self.weight) + self.bias, dim=1)


class Leaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return F.leaky_relu(self.conv(x), 0.1)


class TinyConvs(nn.Module):
    """conv2d's groups and dilations: MobileNet-v2's depthwise 3x3 (stride 2, channel multiplier
    2), a grouped conv (groups 4) with dilation 2, a dilated conv with dilations (2, 3)."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 16, 3, 2, 1, groups=8)
        self.grouped = nn.Conv2d(16, 16, 3, 1, 2, dilation=2, groups=4)
        self.dilated = nn.Conv2d(16, 8, 3, 1, (2, 3), dilation=(2, 3))
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.grouped(F.relu(self.dw(x))))
        x = self.dilated(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Elu(nn.Module):
    """An operator Ply does not map (Elu): the importer's error case."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return F.elu(self.conv(x))


class MobileOps(nn.Module):
    """The operators of MobileNet-style networks (issue #19): ReLU6 (Clip 0..6), Hardswish,
    a squeeze-and-excitation gate (Hardsigmoid, Mul of two tensors), LeakyReLU, Hardtanh and a
    one-sided clamp (Clip), a per-channel scale and shift (Mul, Add of constants), ZeroPad2d
    with one side more (Pad), ReflectionPad2d, a scalar Mul."""

    def __init__(self, classes=6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU6()
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.act2 = nn.Hardswish()
        self.se_pool = nn.AdaptiveAvgPool2d(1)
        self.se_fc1 = nn.Conv2d(8, 4, 1)
        self.se_fc2 = nn.Conv2d(4, 8, 1)
        self.gate = nn.Hardsigmoid()
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.beta = nn.Parameter(torch.randn(8, 1, 1) * 0.1)
        self.leaky = nn.LeakyReLU(0.2)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv3 = nn.Conv2d(8, 12, 2, 2)
        self.tanh = nn.Hardtanh(-0.5, 0.75)
        self.reflect = nn.ReflectionPad2d((1, 0, 2, 1))
        self.conv4 = nn.Conv2d(12, 12, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, classes)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.conv2(x))
        x = x * self.gate(self.se_fc2(F.relu(self.se_fc1(self.se_pool(x)))))
        x = self.leaky(x * self.gamma + self.beta)
        x = self.tanh(self.conv3(self.pad(x)))
        x = torch.clamp(self.conv4(self.reflect(x)), min=-0.3) * 1.5
        return self.fc(torch.flatten(self.pool(x), 1))


class TinyMobileNetV2(nn.Module):
    """MobileNet-v2 from torchvision's own blocks at tiny widths: Conv2dNormActivation with
    ReLU6 (Clip 0..6), InvertedResidual (expand 1x1, depthwise 3x3, project; with and without
    the residual Add), the classifier's Dropout and Linear."""

    def __init__(self, classes=5):
        super().__init__()
        from torchvision.models.mobilenetv2 import InvertedResidual
        from torchvision.ops.misc import Conv2dNormActivation
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 8, stride=2, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6),
            InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 4), InvertedResidual(12, 12, 1, 4),
            Conv2dNormActivation(12, 16, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def asymmetric_pads():
    """Conv, MaxPool and AveragePool (count_include_pad) with more padding on one side, a graph
    torch.onnx does not write (TensorFlow converters do): built with onnx.helper, seeded weights."""
    from onnx import TensorProto, helper, numpy_helper
    g = np.random.default_rng(3)
    w = numpy_helper.from_array((g.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "conv.weight")
    b = numpy_helper.from_array((g.standard_normal(4) * 0.1).astype(np.float32), "conv.bias")
    fw = numpy_helper.from_array((g.standard_normal((5, 4)) * 0.3).astype(np.float32), "fc.weight")
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv", pads=[0, 1, 2, 1]),
        helper.make_node("MaxPool", ["c"], ["m"], name="/pool/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1]),
        helper.make_node("AveragePool", ["m"], ["a"], name="/avg/AveragePool", kernel_shape=[2, 2], strides=[1, 1],
                         pads=[0, 1, 1, 0], count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["a"], ["p"], name="/gap/GlobalAveragePool"),
        helper.make_node("Flatten", ["p"], ["f"], name="/flatten/Flatten"),
        helper.make_node("Gemm", ["f", "fc.weight"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "asym_pads", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 3, 11, 11])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 5])], [w, b, fw])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(HERE, "asym_pads.onnx")
    onnx.save(model, path)
    x = np.random.default_rng(7).random((2, 3, 11, 11), dtype=np.float32)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.save(os.path.join(HERE, "asym_pads.input.npy"), x)
    np.save(os.path.join(HERE, "asym_pads.logits.npy"), y.astype(np.float32))
    print("asym_pads", os.path.getsize(path), "bytes")


def export(name, model, size, training=torch.onnx.TrainingMode.EVAL, dynamo=False):
    torch.manual_seed(1)
    model.eval()
    # non-trivial BatchNorm statistics, so a wrong mapping shows in the logits
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(7))
    path = os.path.join(HERE, name + ".onnx")
    if dynamo:  # torch.onnx's default exporter since PyTorch 2.9 (needs onnxscript); opset 18
        torch.onnx.export(model, (x,), path, opset_version=18, input_names=["input"], output_names=["logits"])
    else:
        torch.onnx.export(model, (x,), path, opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamo=False, training=training)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.allclose(y, ref, rtol=1e-4, atol=1e-5), name
    np.save(os.path.join(HERE, name + ".input.npy"), x.numpy())
    np.save(os.path.join(HERE, name + ".logits.npy"), y.astype(np.float32))
    print(name, os.path.getsize(path), "bytes", [n.op_type for n in onnx.load(path).graph.node][:0])
    return path


def main():
    only = set(sys.argv[1:])  # names to regenerate (default: all)
    if only:
        for name, make in NEW.items():
            if name in only:
                make()
        return
    torch.manual_seed(0)
    # BatchNorm kept as BatchNormalization nodes (training=PRESERVE on an eval model), so the
    # imported weights keep torchvision's names; GoogLeNet below is exported the default way,
    # with BatchNorm folded into the convolutions.
    export("tiny_resnet", TinyResNet(), 32, torch.onnx.TrainingMode.PRESERVE)
    export("tiny_alexnet", TinyAlexNet(), 67)
    export("tiny_googlenet", TinyGoogLeNet(), 32)
    export("tiny_ops", Ops(), 14)
    export("leaky", Leaky(), 8)
    torch.manual_seed(3)  # (seeded here so that this fixture can be regenerated on its own)
    export("tiny_convs", TinyConvs(), 12)
    for make in NEW.values():
        make()
    # the dynamo exporter's graphs: ReduceMean for the global pool, Reshape to (2, -1) with the
    # exported batch written in, BatchNorm folded
    export("tiny_resnet_dynamo", TinyResNet(), 32, dynamo=True)
    export("tiny_ops_dynamo", Ops(), 14, dynamo=True)
    # external data: the same ResNet with every tensor in a file beside the graph
    m = onnx.load(os.path.join(HERE, "tiny_resnet.onnx"))
    if os.path.exists(os.path.join(HERE, "tiny_resnet_external.data")):
        os.remove(os.path.join(HERE, "tiny_resnet_external.data"))
    onnx.save_model(m, os.path.join(HERE, "tiny_resnet_external.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="tiny_resnet_external.data", size_threshold=0)


# Fixtures added with issue #19's operators; `make-fixtures.py NAME...` regenerates only these.
def seeded(make):
    """`make` with the generator seeded first, so each fixture regenerates alone the same."""
    def run():
        torch.manual_seed(0)
        make()
    return run


NEW = {
    "elu": seeded(lambda: export("elu", Elu(), 8)),
    "tiny_mobile": seeded(lambda: export("tiny_mobile", MobileOps(), 24)),
    "tiny_mobile_dynamo": seeded(lambda: export("tiny_mobile_dynamo", MobileOps(), 24, dynamo=True)),
    "asym_pads": asymmetric_pads,
    "tiny_mobilenet_v2": seeded(lambda: export("tiny_mobilenet_v2", TinyMobileNetV2(), 20)),
}

if __name__ == "__main__":
    main()
