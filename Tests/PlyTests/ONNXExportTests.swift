import Foundation
import Testing
@testable import Ply
import PlyONNX

/// ONNX export (docs/onnx.md): a model with every exported block type, written as ONNX and read
/// back by the importer, computes the same logits; the ONNX Runtime side of the proof is
/// Benchmarks/onnx_check.py (full-size models, `--zoo` for the zoo's blocks).
@Suite struct ONNXExportTests {
    /// Small widths; every composite the exporter maps (residual_basic with and without
    /// downsample, residual_bottleneck, basic_conv2d, inception_googlenet) and the plain layers.
    static let blocks = """
        model: blocks
        layers:
          - {name: stem, type: basic_conv2d, in_channels: 3, out_channels: 8, kernel_size: 3, padding: 1}
          - {name: pool, type: maxpool2d, kernel_size: 3, stride: 2, ceil_mode: true}
          - {name: res1, type: residual_basic, inplanes: 8, planes: 8, stride: 1, downsample: false}
          - {name: res2, type: residual_basic, inplanes: 8, planes: 12, stride: 2, downsample: true}
          - {name: res3, type: residual_bottleneck, inplanes: 12, planes: 4, stride: 1, downsample: true}
          - {name: inc, type: inception_googlenet, in_channels: 16, ch1x1: 4, ch3x3red: 4, ch3x3: 6, ch5x5red: 2, ch5x5: 4, pool_proj: 2}
          - {name: side, type: conv2d, inputs: res3, in_channels: 16, out_channels: 16, kernel_size: 1}
          - {name: bn, type: batchnorm2d, num_features: 16}
          - {name: sum, type: add, inputs: [inc, bn]}
          - {name: avg, type: avgpool2d, kernel_size: 3, stride: 1, padding: 1, count_include_pad: false}
          - {name: gap, type: adaptive_avgpool2d, output_size: 2}
          - {name: flatten, type: flatten}
          - {name: drop, type: dropout, p: 0.5}
          - {name: fc, type: linear, in_features: 64, out_features: 7}
          - {name: act, type: tanh}
          - {name: out, type: softmax, dim: 1}
        """

    static func randomize(_ model: Model, seed: UInt64) throws {
        var g = SplitMix64(seed: seed)
        for (name, p) in try model.namedParameters() where !p.isInteger {
            let values = (0..<p.shape.count).map { _ in
                name.hasSuffix("running_var") ? 0.5 + g.nextUnitFloat() : (g.nextUnitFloat() - 0.5) * 0.6
            }
            _ = p.floats?.update(fromContentsOf: values)
        }
    }

    @Test func exportedBlocksComputeTheSameLogits() throws {
        let shape: Shape = [2, 3, 16, 16]
        let model = try ModelFile(text: Self.blocks).build(runtime: sharedRuntime, inputShape: shape)
        try Self.randomize(model, seed: 5)
        model.isTraining = false
        let bytes = try ONNXExport.serialize(model, inputShape: shape)
        let back = try ONNXImport(bytes: bytes, path: "blocks.onnx")
        #expect(back.opset == 17)
        #expect(back.weights.contains { $0.name == "res2.downsample.0.weight" })
        #expect(back.weights.contains { $0.name == "inc.branch2.1.bn.running_var" })
        let again = try back.build(runtime: sharedRuntime, inputShape: shape)
        again.isTraining = false
        var g = SplitMix64(seed: 9)
        let x = (0..<shape.count).map { _ in g.nextUnitFloat() }
        let y = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) }
        let z = try x.withUnsafeBufferPointer { Array(try again.infer($0, shape: shape)) }
        let scale = y.map(abs).max() ?? 1
        #expect(zip(y, z).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    }

    /// Exports `text` for `shape`, imports the bytes back and requires the same outputs.
    static func roundTrip(_ text: String, shape: Shape, seed: UInt64) throws -> ONNXImport {
        let model = try ModelFile(text: text).build(runtime: sharedRuntime, inputShape: shape)
        try randomize(model, seed: seed)
        model.isTraining = false
        let back = try ONNXImport(bytes: try ONNXExport.serialize(model, inputShape: shape), path: "roundtrip.onnx")
        let again = try back.build(runtime: sharedRuntime, inputShape: shape)
        again.isTraining = false
        var g = SplitMix64(seed: seed + 1)
        let x = (0..<shape.count).map { _ in g.nextUnitFloat() * 4 - 2 }
        let y = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) }
        let z = try x.withUnsafeBufferPointer { Array(try again.infer($0, shape: shape)) }
        let scale = y.map(abs).max() ?? 1
        let worst = zip(y, z).map { abs($0 - $1) }.max() ?? .infinity
        #expect(y.count == z.count && worst <= 1e-5 * scale, "largest difference \(worst), largest output \(scale)")
        return back
    }

    /// The layers added for MobileNet-style models (issue #19) write as Clip, LeakyRelu,
    /// HardSwish, HardSigmoid, Pad, Mul and Add, and read back as the same layers.
    @Test func newLayersRoundTrip() throws {
        let back = try Self.roundTrip("""
            model: newops
            layers:
              - {name: stem, type: conv2d, in_channels: 3, out_channels: 8, kernel_size: 3, padding: 1}
              - {name: a1, type: relu6}
              - {name: pad, type: pad2d, padding: [0, 1, 2, 0]}
              - {name: a2, type: hardswish}
              - {name: s, type: scale, num_features: 8, bias: true}
              - {name: a3, type: leakyrelu, negative_slope: 0.2}
              - {name: gap, type: adaptive_avgpool2d, output_size: 1}
              - {name: gate, type: hardsigmoid}
              - {name: se, type: mul, inputs: [a3, gate]}
              - {name: r, type: pad2d, padding: 1, mode: reflect}
              - {name: ht, type: hardtanh, min_val: -0.5, max_val: .inf}
              - {name: ht2, type: hardtanh}
              - {name: hs, type: hardsigmoid, alpha: 0.2, beta: 0.5}
              - {name: s1, type: scale, num_features: 1}
              - {name: p, type: pad2d, padding: [1, 0, 0, 1], value: -.inf}
              - {name: mp, type: maxpool2d, kernel_size: 2}
            """, shape: [2, 3, 9, 8], seed: 11)
        #expect(back.layers.map(\.type) == ["conv2d", "relu6", "pad2d", "hardswish", "scale", "leakyrelu", "adaptive_avgpool2d",
                                            "hardsigmoid", "mul", "pad2d", "hardtanh", "hardtanh", "hardsigmoid", "scale",
                                            "pad2d", "maxpool2d"])
        #expect(back.weights.contains { $0.name == "s.bias" } && back.weights.contains { $0.name == "s1.weight" })
    }

    /// An inference-only conv2d with a second input (a residual added before its activation,
    /// Plugins/Conv/conv_residual.h) writes as Conv then Add, and reads back to the same outputs.
    @Test func residualInputWritesConvThenAdd() throws {
        let back = try Self.roundTrip("""
            model: resconv
            layers:
              - {name: stem, type: conv2d, in_channels: 3, out_channels: 6, kernel_size: 3, padding: 1}
              - {name: c, type: conv2d, inputs: [stem, stem], in_channels: 6, out_channels: 6, kernel_size: 1, trainable: false}
              - {name: a, type: relu}
            """, shape: [2, 3, 7, 9], seed: 13)
        #expect(back.layers.map(\.type).filter { $0 == "conv2d" }.count == 2)
        #expect(back.layers.map(\.type).contains("add"))
    }

    /// Inception v3's blocks export as their sub-graphs (torchvision's branches and pools) and
    /// read back to the same outputs, with torchvision's state_dict names.
    @Test(arguments: [("inception_v3_a", "pool_features: 4", 5), ("inception_v3_b", "", 7),
                      ("inception_v3_c", "channels_7x7: 4", 5), ("inception_v3_d", "", 7), ("inception_v3_e", "", 3)])
    func inceptionV3BlocksRoundTrip(_ type: String, _ extra: String, _ size: Int) throws {
        let back = try Self.roundTrip("""
            model: block
            layers:
              - {name: Mixed, type: \(type), in_channels: 8\(extra.isEmpty ? "" : ", " + extra)}
            """, shape: Shape([1, 8, size, size]), seed: 13)
        #expect(back.weights.contains { $0.name.hasPrefix("Mixed.branch") && $0.name.hasSuffix(".conv.weight") })
    }

    @Test func layerWithoutMappingIsAnError() throws {
        let model = try ModelFile(text: """
            layers:
              - {name: up, type: interpolate, size: 8, mode: bilinear}
              - {name: c, type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3}
            """).build(runtime: sharedRuntime, inputShape: [1, 1, 4, 4])
        do {
            _ = try ONNXExport.serialize(model, inputShape: [1, 1, 4, 4])
            Issue.record("interpolate exported")
        } catch let ONNXError.unsupportedLayer(node, type, _) {
            #expect(node == "up" && type == "interpolate")
        }
    }
}
