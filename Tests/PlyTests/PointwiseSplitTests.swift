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

    static let runtimes = [sharedRuntime, threadedRuntime(2), threadedRuntime(3)]

    @Test func casesArePresent() {
        #expect(Self.cases.count == 5, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchOnAnyThreadCount(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("pointwise_split/\(name).json"))
        let attrs = try json.attributes(case: name)
        let input = try #require(json["input"]?.tensor), expected = try #require(json["output"]?.tensor)
        let algorithms = avx2Kernels ? ["auto", "pointwise"] : ["auto"]
        for runtime in Self.runtimes {
            for algorithm in algorithms {
                let layer = try Layer("conv2d", attrs + [("algorithm", .string(algorithm))], runtime: runtime)
                layer.setTraining(false)
                try writeFixtureParams(json, "params", to: layer, name)
                try expectForwardsMatch(layer, input, expected, "\(name), \(algorithm), \(runtime.threads) threads")
            }
        }
    }
}
