import Foundation
import Testing
@testable import Ply

/// conv_1x1.c's thread splits of strided 1x1 convs (Plugins/Conv/conv_1x1.c, conv_1x1_forward):
/// at batch 1 the threads that split the output channels subsample the image once together (each
/// its range of input channels, in a region of their own) and then all read it; the threads that
/// split the positions subsample only their own positions, parts that start and end inside an
/// output row. Against PyTorch's convolution in double precision (Fixtures/pointwise_split,
/// written by make-pointwise-split.py) on 1, 2 and 3 threads, through "auto" and forced
/// "pointwise" (AVX2 and AVX-512 levels), twice each (the second forward reuses the scratch that
/// the first left).
@Suite struct PointwiseSplitTests {
    static let cases = fixtureCases("pointwise_split")

    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 5, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchOnAnyThreadCount(_ name: String) throws {
        let f = try FixtureCase("pointwise_split", name)
        let input = try f.input, expected = try f.expected()
        let algorithms = avx2Kernels ? ["auto", "pointwise"] : ["auto"]
        for runtime in Self.runtimes.all {
            for algorithm in algorithms {
                let label = "\(name), \(algorithm), \(runtime.threads) threads"
                let layer = try f.layer([("algorithm", .string(algorithm))], on: runtime, label: label)
                try expectForwardsMatch(layer, input, expected, label)
            }
        }
    }
}
