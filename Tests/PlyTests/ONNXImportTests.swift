import Foundation
import Testing
@testable import Ply
import PlyONNX

/// ONNX import (docs/onnx.md) against ONNX Runtime: tiny-width networks made of torchvision's
/// own blocks, exported by torch.onnx at opset 17 (and by its dynamo exporter at 18, weights in
/// external data) (Fixtures/onnx/make-fixtures.py), imported
/// and run in Ply; the logits must equal ONNX Runtime's within 1e-4 of the largest logit.
@Suite struct ONNXImportTests {
    static let dir = fixtures.appendingPathComponent("onnx")
    static let models = ["tiny_resnet", "tiny_alexnet", "tiny_googlenet", "tiny_ops", "tiny_resnet_external",
                         "tiny_resnet_dynamo", "tiny_ops_dynamo", "leaky", "tiny_mobile", "tiny_mobile_dynamo", "asym_pads",
                         "tiny_mobilenet_v2"]

    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Runs `model` on `name`'s input and compares with ONNX Runtime's logits.
    static func expectMatchesONNXRuntime(_ model: Model, _ name: String) throws {
        let base = name.replacingOccurrences(of: "_external", with: "")
        let (shape, x) = try NumPy.read(path: path("\(base).input.npy"))
        let (refShape, ref) = try NumPy.read(path: path("\(base).logits.npy"))
        model.isTraining = false
        let y = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: Shape(shape))) }
        #expect(y.count == ref.count, "\(name): \(y.count) outputs, ONNX Runtime \(refShape)")
        let scale = ref.map(abs).max() ?? 1
        let worst = zip(y, ref).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-4 * scale, "\(name): largest difference \(worst), largest logit \(scale)")
    }

    @Test(arguments: models)
    func logitsEqualONNXRuntime(_ name: String) throws {
        let imported = try ONNXImport(contentsOf: Self.path("\(name).onnx"))
        #expect(imported.opset == (name.hasSuffix("_dynamo") ? 18 : 17))
        let (shape, _) = try NumPy.read(path: Self.path("\(name.replacingOccurrences(of: "_external", with: "")).input.npy"))
        let model = try imported.build(runtime: sharedRuntime, inputShape: Shape(shape))
        try Self.expectMatchesONNXRuntime(model, name)
    }

    /// Conv's group and dilations (Fixtures/onnx/make-fixtures.py's TinyConvs: depthwise with a
    /// channel multiplier, grouped + dilated, dilations (2, 3)) import as conv2d's groups and
    /// dilation, compute ONNX Runtime's logits, and export back as the same attributes.
    @Test func groupedAndDilatedConvsRoundTrip() throws {
        let imported = try ONNXImport(contentsOf: Self.path("tiny_convs.onnx"))
        let (shape, _) = try NumPy.read(path: Self.path("tiny_convs.input.npy"))
        let dw = try #require(imported.layers.first { $0.type == "conv2d" && $0.name.hasPrefix("dw") })
        #expect(dw.attributes.contains { $0.0 == "groups" && $0.1 == .int(8) })
        #expect(dw.attributes.contains { $0.0 == "in_channels" && $0.1 == .int(8) })
        let dilated = try #require(imported.layers.first { $0.type == "conv2d" && $0.name.hasPrefix("dilated") })
        #expect(dilated.attributes.contains { $0.0 == "dilation" && $0.1 == .ints([2, 3]) })
        let model = try imported.build(runtime: sharedRuntime, inputShape: Shape(shape))
        try Self.expectMatchesONNXRuntime(model, "tiny_convs")
        let bytes = try ONNXExport.serialize(model, inputShape: Shape(shape))
        let reread = try ONNXImport(bytes: bytes, path: "tiny_convs.onnx")
        let grouped = try #require(reread.layers.first { $0.type == "conv2d" && $0.name.hasPrefix("grouped") })
        #expect(grouped.attributes.contains { $0.0 == "groups" && $0.1 == .int(4) })
        #expect(grouped.attributes.contains { $0.0 == "dilation" && $0.1 == .int(2) })
        let back = try reread.build(runtime: sharedRuntime, inputShape: Shape(shape))
        try Self.expectMatchesONNXRuntime(back, "tiny_convs")
    }

    /// The graph's names survive: torchvision's state_dict names for the weights (BatchNorm
    /// kept in the graph), module scopes for the layers without weights, joins as add/concat.
    @Test func namesComeFromTheGraph() throws {
        let r = try ONNXImport(contentsOf: Self.path("tiny_resnet.onnx"))
        let names = Set(r.weights.map(\.name))
        for n in ["conv1.weight", "bn1.running_var", "bn1.num_batches_tracked", "layer1.1.downsample.0.weight",
                  "layer2.0.bn3.bias", "fc.weight", "fc.bias"] {
            #expect(names.contains(n), "no weight \(n)")
        }
        #expect(r.layers.map(\.name).contains("layer1.0.relu_1"))
        #expect(r.layers.first { $0.name == "layer1.1.downsample.0" }?.inputs == ["layer1.0.relu_1"])
        #expect(r.layers.filter { $0.type == "add" }.count == 3)
        let g = try ONNXImport(contentsOf: Self.path("tiny_googlenet.onnx"))
        #expect(g.layers.filter { $0.type == "concat" }.count == 2)
        #expect(g.layers.contains { $0.name == "inception3a.branch2.1.conv" && $0.type == "conv2d" })
        // The file is a model file like any other (and runs: logitsEqualONNXRuntime builds from it).
        let file = try ModelFile(text: r.modelFileText)
        #expect(file.name == "tiny_resnet")
    }

    @Test func unsupportedOperatorNamesNodeOpAndOpset() throws {
        do {
            _ = try ONNXImport(contentsOf: Self.path("elu.onnx"))
            Issue.record("Elu imported")
        } catch let ONNXError.unsupportedOperator(_, node, opType, opset, supported) {
            #expect(node == "/Elu" && opType == "Elu" && opset == 17)
            #expect(supported.contains("Conv") && supported.contains("Relu") && supported.contains("LeakyRelu"))
        }
    }

    /// MobileNet's operators map onto the new layers: Clip(0, 6) a relu6, Clip(min) and
    /// Hardtanh a hardtanh, the SE gate's Mul of two tensors a mul, a Mul and Add of
    /// per-channel constants one scale with bias, a scalar Mul a scale of one weight, the
    /// one-sided ZeroPad2d and the ReflectionPad2d pad2d layers.
    @Test func mobileOperatorsMapOntoTheirLayers() throws {
        let m = try ONNXImport(contentsOf: Self.path("tiny_mobile.onnx"))
        let types = m.layers.map(\.type)
        for t in ["relu6", "hardswish", "hardsigmoid", "mul", "scale", "leakyrelu", "pad2d", "hardtanh"] {
            #expect(types.contains(t), "no \(t) in \(types)")
        }
        let scales = m.layers.filter { $0.type == "scale" }
        #expect(scales.count == 2)
        #expect(scales.contains { $0.attributes.contains { $0.0 == "bias" && $0.1 == .bool(true) } })
        #expect(scales.contains { $0.attributes.contains { $0.0 == "num_features" && $0.1 == .int(1) } })
        let pads = m.layers.filter { $0.type == "pad2d" }
        #expect(pads.contains { $0.attributes.contains { $0.0 == "mode" && $0.1 == .string("reflect") } })
        #expect(pads.contains { $0.attributes.contains { $0.0 == "padding" && $0.1 == .ints([0, 1, 0, 1]) } })
        let clamps = m.layers.filter { $0.type == "hardtanh" }
        #expect(clamps.contains { $0.attributes.contains { $0.0 == "max_val" && $0.1 == .float(.infinity) } })
        // the file says so too, and reads back (YAML's .inf for the one-sided clamp)
        #expect(m.modelFileText.contains("max_val: .inf"))
        _ = try ModelFile(text: m.modelFileText)
        // asymmetric pads: the extra side in a pad2d before the layer (-inf before the max pool)
        let a = try ONNXImport(contentsOf: Self.path("asym_pads.onnx"))
        #expect(a.layers.map(\.type) == ["pad2d", "conv2d", "pad2d", "maxpool2d", "pad2d", "avgpool2d",
                                         "adaptive_avgpool2d", "flatten", "linear"])
        #expect(a.layers[0].attributes.contains { $0.0 == "padding" && $0.1 == .ints([0, 0, 0, 2]) })
        #expect(a.layers[2].attributes.contains { $0.0 == "value" && $0.1 == .float(-.infinity) })
    }

    /// Every prefix of a valid file and a few corruptions: an error, never a crash.
    @Test func malformedFilesAreErrors() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent("tiny_ops.onnx")))
        var errors = 0
        for cut in stride(from: 0, to: bytes.count, by: 97) {
            do { _ = try ONNXImport(bytes: Array(bytes[..<cut])) } catch is ONNXError { errors += 1 }
        }
        #expect(errors == (bytes.count + 96) / 97)
        var g = SplitMix64(seed: 3)
        // tiny_mobile: corrupted Pad, Clip, Mul and HardSigmoid nodes too
        let mobile = [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent("tiny_mobile.onnx")))
        for source in [bytes, mobile] {
            for _ in 0..<200 {
                var b = source
                for _ in 0..<4 { b[Int(g.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: g.next()) }
                do { _ = try ONNXImport(bytes: b) } catch is ONNXError {}
            }
        }
    }

    @Test func externalDataErrors() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ply-onnx-\(getpid())")
        try? FileManager.default.removeItem(at: tmp)
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let graph = tmp.appendingPathComponent("m.onnx")
        try FileManager.default.copyItem(at: Self.dir.appendingPathComponent("tiny_resnet_external.onnx"), to: graph)
        #expect(throws: ONNXError.self) { try ONNXImport(contentsOf: graph.path) }  // no data file
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("tiny_resnet_external.data"))
        try data.prefix(data.count - 4).write(to: tmp.appendingPathComponent("tiny_resnet_external.data"))
        do {
            _ = try ONNXImport(contentsOf: graph.path)
            Issue.record("a truncated data file loaded")
        } catch let ONNXError.externalData(_, tensor, reason) {
            #expect(tensor == "fc.bias" && reason.contains("bytes"), "\(tensor): \(reason)")
        }
    }

    /// `ply import` and `ply predict --model x.onnx`, as a user runs them.
    @Test func importAndPredictFromTheCommandLine() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ply-onnx-cli-\(getpid())")
        try? FileManager.default.removeItem(at: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = tmp.appendingPathComponent("resnet").path
        func ply(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try TrainerTests.plyExecutable())
            p.arguments = args
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let (status, err) = try ply(["import", Self.path("tiny_resnet.onnx"), "--output", out])
        #expect(status == 0, "\(err)")
        let yaml = try String(contentsOfFile: out + "/model.yaml", encoding: .utf8)
        #expect(yaml.contains("- {name: layer1.0.conv1, type: conv2d"))
        for (i, args) in [["--model", out + "/model.yaml", "--weights", out + "/weights.safetensors"],
                          ["--model", Self.path("tiny_resnet.onnx")]].enumerated() {
            let logits = tmp.appendingPathComponent("logits\(i).npy").path
            let (s, e) = try ply(["predict"] + args + ["--input", Self.path("tiny_resnet.input.npy"), "--output", logits])
            #expect(s == 0, "\(e)")
            let (_, y) = try NumPy.read(path: logits)
            let (_, ref) = try NumPy.read(path: Self.path("tiny_resnet.logits.npy"))
            let scale = ref.map(abs).max() ?? 1
            #expect(zip(y, ref).allSatisfy { abs($0 - $1) <= 1e-4 * scale }, "\(args)")
        }
        let (bad, message) = try ply(["import", Self.path("elu.onnx"), "--output", out + "2"])
        #expect(bad != 0 && message.contains("Elu (opset 17) is not supported"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: out + "2"))
    }
}
