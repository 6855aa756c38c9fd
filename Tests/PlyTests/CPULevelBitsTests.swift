import Foundation
import Testing
@testable import Ply

/// The AVX2 kernels give the AVX-512 kernels' bits wherever both levels run the same algorithm, as their
/// headers say (conv_direct_avx2.h, conv_stem_avx2.h, conv_winograd4_avx2.c, conv_blocked_wino_x86.h,
/// conv_1x1_avx2.h for the large planes, conv_reorder_avx2.h, pooling_avx2.c): so a model's outputs do not
/// depend on which of the two x86 levels a machine has, and the main job ends on the README's digits on
/// both. The level is fixed per process (ply_cpu_level reads PLY_CPU once), so each case runs `ply
/// predict` twice on the same weights and input, once as detected (AVX-512) and once with PLY_CPU=avx2,
/// and compares the two .npy files byte for byte. Needs an AVX-512 CPU; below it there is one level to
/// run. Where "auto" picks another algorithm per level (a Winograd tile other than F(4x4), the only
/// one AVX2 has; the tails of the 1x1 small planes) bits may differ by design, so the cases pin what must match: the ConvNet as trained, the stems, the
/// Winograd F(4x4) in NCHW and through the blocked layout, 1x1 convs on large planes, spans, the pools.
@Suite(.enabled(if: cpuLevel == "avx512", "compares the AVX-512 kernels with the AVX2 ones, so needs an AVX-512 CPU"))
struct CPULevelBitsTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        /// The model file's layers, one flow-style mapping per line.
        var layers: [String]
        var input: [Int]
        var description: String { name }
    }

    static let cases: [Case] = [
        // The tutorial's ConvNet forward (conv_direct: 1 -> 8 -> 16 channels, fused relu, 2x2 max pools).
        Case(name: "convnet", layers: [
            "{name: conv_1, type: conv2d, in_channels: 1, out_channels: 8, kernel_size: 3, padding: 1}",
            "{name: relu_1, type: relu}",
            "{name: pool_1, type: maxpool2d, kernel_size: 2, stride: 2}",
            "{name: conv_2, type: conv2d, in_channels: 8, out_channels: 16, kernel_size: 3, padding: 1}",
            "{name: relu_2, type: relu}",
            "{name: pool_2, type: maxpool2d, kernel_size: 2, stride: 2}",
        ], input: [3, 1, 28, 28]),
        // The direct kernel forced on odd shapes: 5x5, 19 output channels (blocks of 16, 2 and 1), masked row tails.
        Case(name: "direct 3->19 5x5", layers: [
            "{name: conv, type: conv2d, in_channels: 3, out_channels: 19, kernel_size: 5, padding: 2, algorithm: direct}",
            "{name: relu, type: relu}",
        ], input: [2, 3, 13, 21]),
        // ResNet's stem (conv_stem: 7x7 stride 2 on 3 channels) and its 3x3 stride-2 max pool.
        Case(name: "stem 7x7/2", layers: [
            "{name: conv, type: conv2d, in_channels: 3, out_channels: 64, kernel_size: 7, stride: 2, padding: 3, bias: false}",
            "{name: bn, type: batchnorm2d, num_features: 64}",
            "{name: relu, type: relu}",
            "{name: pool, type: maxpool2d, kernel_size: 3, stride: 2, padding: 1}",
        ], input: [1, 3, 70, 66]),
        // Winograd F(4x4) in NCHW (56x56) and, at AVX2, through the blocked layout (28x28 to 56x56 planes).
        Case(name: "winograd F4 56x56", layers: [
            "{name: conv, type: conv2d, in_channels: 64, out_channels: 64, kernel_size: 3, padding: 1, winograd_tile: 4}",
        ], input: [1, 64, 56, 56]),
        Case(name: "winograd F4 28x30 blocked", layers: [
            "{name: conv, type: conv2d, in_channels: 40, out_channels: 40, kernel_size: 3, padding: 1, winograd_tile: 4}",
            "{name: bn, type: batchnorm2d, num_features: 40}",
            "{name: relu, type: relu}",
            "{name: pool, type: maxpool2d, kernel_size: 3, stride: 2, padding: 1}",
        ], input: [1, 40, 28, 30]),
        // 1x1 convs: a large plane (conv_1x1's packed strips, K blocks of 256, an 8-position tail) and a small
        // one whose positions fill whole vectors (its order: each strip over the whole K). A small plane's tail
        // of at most 8 positions (56x57, 14x14, 7x7) is dot products along K at AVX-512 (TAIL_MAX in
        // conv_1x1_product.h) and a masked tile at AVX2: other sums, so not compared.
        Case(name: "pointwise 384->256 56x57", layers: [
            "{name: conv, type: conv2d, in_channels: 384, out_channels: 256, kernel_size: 1}",
        ], input: [1, 384, 56, 57]),
        Case(name: "pointwise 64->256 56x56", layers: [
            "{name: conv, type: conv2d, in_channels: 64, out_channels: 256, kernel_size: 1}",
        ], input: [1, 64, 56, 56]),
        // Spans over rows: Inception v3's 1x7 and 7x1 on 17x17.
        Case(name: "spans 1x7 7x1", layers: [
            "{name: a, type: conv2d, in_channels: 32, out_channels: 32, kernel_size: [1, 7], padding: [0, 3], algorithm: spans}",
            "{name: b, type: conv2d, in_channels: 32, out_channels: 48, kernel_size: [7, 1], padding: [3, 0], algorithm: spans}",
        ], input: [1, 32, 17, 17]),
        // The 3x3 stride-1 average pool's edge masks (35x35) and the 2x2 max pool's odd row tails.
        Case(name: "pools", layers: [
            "{name: avg, type: avgpool2d, kernel_size: 3, stride: 1, padding: 1}",
            "{name: max, type: maxpool2d, kernel_size: 2, stride: 2}",
        ], input: [2, 16, 35, 35]),
    ]

    @Test(arguments: cases)
    func avx2GivesTheAVX512Bits(_ k: Case) throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        let text = "model: case\nlayers:\n" + k.layers.map { "  - " + $0 }.joined(separator: "\n") + "\n"
        try text.write(toFile: path("model.yaml"), atomically: true, encoding: .utf8)

        // Random weights (batch-norm scales near 1), saved as the state dict `ply predict` loads.
        var g = SplitMix64(seed: 0x1e7e1)
        let model = try ModelFile(text: text).build(runtime: sharedRuntime, inputShape: Shape(k.input))
        for (name, p) in try model.namedParameters() where p.floats != nil {
            let scale: Float = name.hasSuffix("bn.weight") ? 0.5 : 1
            try p.write((0..<p.shape.count).map { _ in (g.nextUnitFloat() - 0.5) * scale + (scale < 1 ? 1 : 0) })
        }
        try model.saveWeights(to: path("weights.safetensors"))
        let input = (0..<k.input.reduce(1, *)).map { _ in g.nextUnitFloat() * 2 - 1 }
        try NumPy.write(path: path("input.npy"), shape: k.input, values: input)

        let last = String(k.layers.last!.split(separator: ",")[0].dropFirst("{name: ".count))
        var outputs: [Data] = []
        for level in ["avx512", "avx2"] {
            let ply = try TrainerTests.PlyProcess(
                ["predict", "--model", path("model.yaml"), "--weights", path("weights.safetensors"), "--input", path("input.npy"),
                 "--output", path("\(level).npy"), "--node", last, "--num-classes", "1"],
                logs: dir, name: level, environment: ["PLY_CPU": level])
            let status = ply.finish(timeout: 120)
            try #require(status == 0, "ply predict at PLY_CPU=\(level) exited \(status): \(ply.stderr)")
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: path("\(level).npy"))))
        }
        let (shape, values) = try NumPy.read(path: path("avx512.npy"))
        #expect(shape.count == 4 && values.contains { $0 != 0 }, "\(k): the AVX-512 output is empty or all zeros")
        let avx2 = try NumPy.read(path: path("avx2.npy")).values
        let differing = zip(values, avx2).filter { $0.bitPattern != $1.bitPattern }.count
        let same = outputs[0] == outputs[1]
        #expect(same, "\(k): \(differing) of \(values.count) outputs differ between the AVX-512 and AVX2 kernels")
    }
}
