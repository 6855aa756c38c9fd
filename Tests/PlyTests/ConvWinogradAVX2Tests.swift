import Foundation
import Testing
@testable import Ply

/// conv2d's Winograd F(4x4) at the AVX2 level (Plugins/Conv/conv_winograd4_avx2.c for the transforms,
/// Plugins/Conv/conv_kernel_avx2.c for the products): "auto" in evaluation takes it for the 3x3,
/// stride-1 layers where the F(4x4) rule holds (conv_winograd_suits_inference), where it took the spans
/// or im2col before. Against PyTorch's convolution in double precision (Fixtures/winograd_avx2, written
/// by make-conv-winograd-avx2.py) on 1, 2 and 3 threads, plain and with the relu fused. At the AVX2
/// level also: "auto" gave neither forced "im2col"'s nor forced "spans"' floats (so it took another
/// path: Winograd is the only other one there), and the same floats on every thread count (each
/// tile's sums do not depend on how the plans split the tiles and channels).
@Suite struct ConvWinogradAVX2Tests {
    static let cases = fixtureCases("winograd_avx2")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 6, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("winograd_avx2", name)
        let input = try f.input
        for relu in [false, true] {
            let expected = try f.expected(relu: relu)
            var autos: [[Float]] = []
            for runtime in Self.runtimes.all {
                let label = "\(name), auto\(relu ? ", relu" : ""), \(runtime.threads) threads"
                let layer = try f.layer(on: runtime, relu: relu, label: label)
                try expectForwardsMatch(layer, input, expected, label) // the second reuses U
                autos.append(try layer.forward([input]).data)
            }
            guard cpuLevel == "avx2" else { continue }
            for (i, other) in autos.enumerated().dropFirst() {
                let differing = zip(autos[0], other).filter { $0 != $1 }.count
                #expect(differing == 0, "\(name): \(Self.runtimes.all[i].threads) threads gave \(differing) floats unlike \(Self.runtimes.all[0].threads)'s")
            }
            for algorithm in ["im2col", "spans"] {
                let label = "\(name), \(algorithm)\(relu ? ", relu" : "")"
                let layer = try f.layer([("algorithm", .string(algorithm))], on: sharedRuntime, relu: relu, label: label)
                try expectForwardsMatch(layer, input, expected, label, passes: 1)
                let same = try layer.forward([input]).data == autos[0]
                #expect(!same, "\(label): \"auto\" gave forced \(algorithm)'s floats (it did not take Winograd)")
            }
        }
    }
}
