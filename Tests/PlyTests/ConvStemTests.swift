import Foundation
import Testing
@testable import Ply

/// conv2d's "stem" kernel (Plugins/Conv/conv_stem.c: first layers with at most 4 input channels and
/// kernels of 5x5 and more or 3x3 of stride 2, direct on the input split into its column phases)
/// against PyTorch's convolution in double precision (Fixtures/stem, written by make-conv-stem.py).
/// "auto" takes it in evaluation on an AVX-512 CPU (im2col + GEMM below that level, and in
/// training), on 1, 2 and 3 threads (3: the batch's vectors split mid-image); and against im2col
/// at ResNet's stem geometry, before and after the weights change (the kernel packs them on every
/// call).
@Suite struct ConvStemTests {
    static let cases = fixtureCases("stem")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 7, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("stem", name)
        let input = try f.input, expected = try f.expected()
        for runtime in Self.runtimes.all {
            for training in [false, true] { // evaluation takes the stem kernel; training im2col's forward
                let label = "\(name), training \(training), \(runtime.threads) threads"
                let layer = try f.layer(on: runtime, training: training, label: label)
                try expectForwardsMatch(layer, input, expected, label, passes: 1)
            }
        }
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    /// ResNet's stem (3 -> 64 channels, 7x7, stride 2, padding 3) on a 2x3x64x70 batch in evaluation,
    /// "auto" against "im2col", with the relu fused, then again after new weights are written: each
    /// forward reads the weights it is given (nothing of the old ones kept).
    @Test func resnetStemMatchesIm2colAndFollowsNewWeights() throws {
        let (n, c, oc, h, w) = (2, 3, 64, 64, 70)
        for runtime in [sharedRuntime, Self.runtimes.two] {
            func make(_ algorithm: String) throws -> Layer {
                let layer = try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)),
                                                 ("kernel_size", .int(7)), ("stride", .int(2)), ("padding", .int(3)),
                                                 ("algorithm", .string(algorithm))], runtime: runtime)
                layer.setTraining(false)
                #expect(layer.fuseActivation("relu"), "conv2d fuses the relu")
                return layer
            }
            let fast = try make("auto"), reference = try make("im2col")
            var g = SplitMix64(seed: 97)
            let x = try Tensor(shape: [n, c, h, w], data: random(n * c * h * w, &g))
            for round in 1...2 {
                for p in try fast.parameters { try p.write(random(p.shape.count, &g)) }
                for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
                let y = try fast.forward([x]), ref = try reference.forward([x])
                #expect(y.shape == [n, oc, 32, 35], "\(y.shape)")
                #expect(y.data.allSatisfy { $0 >= 0 }, "round \(round): the fused relu")
                let close = closeness(y.data, ref.data)
                #expect(close.ok, "round \(round), \(runtime.threads) threads: max error \(close.error) > \(close.bound)")
            }
        }
    }
}
