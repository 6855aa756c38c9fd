import Foundation
import Testing
@testable import Ply

/// The receptive fields `ply summary` and `ply inspect` give for block layers — residual
/// (basic, bottleneck, strided with a downsample shortcut) and inception (GoogLeNet's, and
/// Inception-v3's A to E: 5x5, 3x3-double, factorised 1x7/7x1 and 1x3/3x1 branches, strided
/// reductions, pooling branches) — against a real computation: the input pixels the gradient
/// of one output position (all its channels) reaches. A block reports only its effective
/// window (kernel, stride); where the field sits is inferred from the sizes, so this checks
/// that inference.
///
/// Every weight is positive, biases and batch-norm shifts too, the input is positive and the
/// model runs in evaluation mode (batch norm a fixed positive scale): every relu passes, every
/// convolution tap carries gradient, so the gradient reaches exactly the theoretical field —
/// the computed box clipped to the image, edges included. (Max pooling would send it to one
/// position of each window; the pooling branches here are never a block's widest path.)
@Suite struct BlockReceptiveFieldTests {
    static let stem = "  - {name: stem, type: conv2d, in_channels: 3, out_channels: 4, kernel_size: 3, padding: 1}\n"

    /// (case, model layers after the stem, input side, the layer checked (the last)).
    static let cases: [(String, String, Int, String)] = [
        ("basic", "  - {name: b1, type: residual_basic, inplanes: 4, planes: 4, stride: 1, downsample: false}\n", 12, "b1"),
        ("basic, stride 2, odd input", "  - {name: b2, type: residual_basic, inplanes: 4, planes: 6, stride: 2, downsample: true}\n", 13, "b2"),
        ("bottleneck, stride 2", "  - {name: n1, type: residual_bottleneck, inplanes: 4, planes: 2, stride: 2, downsample: true}\n", 12, "n1"),
        ("a ResNet stage chain", """
              - {name: b1, type: residual_basic, inplanes: 4, planes: 4, stride: 1, downsample: false}
              - {name: b2, type: residual_basic, inplanes: 4, planes: 6, stride: 2, downsample: true}
              - {name: n1, type: residual_bottleneck, inplanes: 6, planes: 2, stride: 2, downsample: true}

            """, 22, "n1"),
        ("googlenet", "  - {name: g, type: inception_googlenet, in_channels: 4, ch1x1: 2, ch3x3red: 2, ch3x3: 2, ch5x5red: 2, ch5x5: 2, pool_proj: 2}\n", 10, "g"),
        ("v3 A", "  - {name: a, type: inception_v3_a, in_channels: 4, pool_features: 2}\n", 10, "a"),
        ("v3 B, stride 2", "  - {name: b, type: inception_v3_b, in_channels: 4}\n", 13, "b"),
        ("v3 C, 1x7 and 7x1", "  - {name: c, type: inception_v3_c, in_channels: 4, channels_7x7: 2}\n", 16, "c"),
        ("v3 D, stride 2", "  - {name: d, type: inception_v3_d, in_channels: 4}\n", 14, "d"),
        ("v3 E, 1x3 and 3x1", "  - {name: e, type: inception_v3_e, in_channels: 4}\n", 8, "e"),
    ]

    @Test(arguments: 0..<cases.count)
    func blockFieldIsWhereTheGradientReaches(_ index: Int) throws {
        let (label, layers, side, layer) = Self.cases[index]
        let model = try Zoo.model(text: "model: rf\nlayers:\n" + Self.stem + layers, runtime: sharedRuntime,
                                  inChannels: 3, imageSize: side)
        // Positive weights (a fixed pattern in [0.05, 0.15]) and biases; batch norm keeps its
        // defaults (scale 1, shift 0, running mean 0, variance 1).
        for (name, p) in try model.namedParameters() where p.trainable {
            let n = p.shape.count
            try p.write((0..<n).map { name.hasSuffix("bias") ? 0.01 : 0.05 + 0.1 * Float(($0 &* 7919) % 101) / 101 })
        }
        model.isTraining = false
        let inspector = try ModelInspector(model: model, channels: 3, height: side, width: side)
        let out = try inspector.row(layer).outputShape
        let (c, h, w) = (out.dims[1], out.dims[2], out.dims[3])
        let input = [Float](repeating: 1, count: 3 * side * side)
        for (y, x) in [(0, 0), (h / 2, w / 2), (h - 1, w - 1)] {
            _ = try input.withUnsafeBufferPointer { try model.forward($0, shape: [1, 3, side, side]) }
            // Every channel at (y, x): a concatenating block's channels come from different
            // branches, and the position's field is the widest branch's.
            var gradient = [Float](repeating: 0, count: c * h * w)
            for ch in 0..<c { gradient[(ch * h + y) * w + x] = 1 }
            let g = try #require(try gradient.withUnsafeBufferPointer { try model.backward($0, inputGradient: true) })
            var reached: [(Int, Int)] = []
            for ch in 0..<3 { for i in 0..<(side * side) where g[ch * side * side + i] != 0 { reached.append((i / side, i % side)) } }
            let support = ReceptiveFieldBox(top: reached.map(\.0).min() ?? -1, left: reached.map(\.1).min() ?? -1,
                                            bottom: reached.map(\.0).max() ?? -1, right: reached.map(\.1).max() ?? -1)
            let box = try inspector.receptiveField(layer: layer, y: y, x: x)
            #expect(box.clipped(height: side, width: side) == support,
                    "\(label): \(layer) at (\(y), \(x)): computed \(box), the gradient reaches \(support)")
        }
    }
}
