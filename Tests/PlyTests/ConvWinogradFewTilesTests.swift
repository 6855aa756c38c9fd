import Foundation
import Testing
@testable import Ply

/// conv2d's Winograd forward on few tiles: in evaluation "auto" takes Winograd F(2x2) for 3x3, stride-1
/// layers from 32 tiles of 2x2 where U is at most 8 MB (CONV_WINOGRAD_INFERENCE_MIN_TILES and _MAX_U,
/// Plugins/Conv/conv_winograd.h; ResNet's 14x14 planes and AlexNet's 13x13 at batch 1, small layers
/// at 7x7 at batches 2-3), where it took the panels (or im2col) below 64 before. Every case has more
/// than 16 input channels (the direct kernel takes 16 and fewer). Against PyTorch's convolution in
/// double precision (Fixtures/winograd_few_tiles, written by make-conv-winograd-few-tiles.py) on 1, 2 and 3
/// threads, "auto" and forced "winograd"; on an AVX-512 CPU "auto" gives forced Winograd's floats
/// exactly (it took that path), not forced "panels"'.
@Suite struct ConvWinogradFewTilesTests {
    static let cases = fixtureCases("winograd_few_tiles")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 5, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("winograd_few_tiles", name)
        let input = try f.input, expected = try f.expected()
        // forcing "winograd" or "panels" below the AVX-512 level is refused
        let algorithms = avx512Kernels ? ["auto", "winograd", "panels"] : ["auto"]
        for runtime in Self.runtimes.all {
            var outputs: [String: [Float]] = [:]
            for algorithm in algorithms {
                let label = "\(name), \(algorithm), \(runtime.threads) threads"
                let layer = try f.layer([("algorithm", .string(algorithm))], on: runtime, label: label)
                try expectForwardsMatch(layer, input, expected, label) // the second reuses the transformed weights
                outputs[algorithm] = try layer.forward([input]).data
            }
            if avx512Kernels {
                let label = "\(name), \(runtime.threads) threads"
                let asWinograd = outputs["auto"] == outputs["winograd"], asPanels = outputs["auto"] == outputs["panels"]
                #expect(asWinograd, "\(label): \"auto\" did not give forced Winograd's floats")
                #expect(!asPanels, "\(label): \"auto\" gave the panels' floats")
            }
        }
    }
}
