import Foundation
import Testing
@testable import Ply
import PlyONNX

/// ONNX export (docs/onnx.md): a model with every exported block type, written as ONNX and read
/// back by the importer, computes the same logits; the ONNX Runtime side of the proof is
/// Benchmarks/onnx_check.py (full-size models) and Fixtures/onnx/check-export.py.
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
