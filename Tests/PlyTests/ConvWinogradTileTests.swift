import Foundation
import Testing
@testable import Ply

/// conv2d's Winograd tile for few input channels on small planes (Plugins/Conv/conv_winograd.c,
/// conv_winograd_tile: F(2x2) below F4_MIN_CHANNELS input channels on planes of at most F4_SMALL_SIDE a
/// side, where the product rules take F(4x4) otherwise) against PyTorch's convolution in double
/// precision (Fixtures/winograd_small, written by make-conv-winograd-small.py): "auto" in evaluation and
/// forced F(2x2) on 1, 2 and 3 threads, and "auto" giving F(2x2)'s output bit for bit (not F(4x4)'s,
/// whose rounding differs), so a build whose rule takes F(4x4) there fails.
@Suite struct ConvWinogradTileTests {
    static let cases = fixtureCases("winograd_small")
    static let oneThread = threadedRuntime(1)
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 2, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("winograd_small", name)
        let input = try f.input, expected = try f.expected()
        // below the AVX-512 level forcing "winograd" is refused and "auto" takes im2col's path
        let forced: [Attributes] = avx512Kernels
            ? [[], [("algorithm", .string("winograd")), ("winograd_tile", .int(2))]] : [[]]
        for runtime in [Self.oneThread, Self.runtimes.two, Self.runtimes.three] {
            for extra in forced {
                let label = "\(name), \(extra.isEmpty ? "auto" : "F(2x2)"), \(runtime.threads) threads"
                let layer = try f.layer(extra, on: runtime, label: label)
                try expectForwardsMatch(layer, input, expected, label) // the second reuses the transformed weights
            }
        }
    }

    /// "auto" runs these layers by F(2x2): its output is forced F(2x2)'s bit for bit, and differs from
    /// forced F(4x4)'s (so the comparison tells the two apart).
    @Test(.enabled(if: avx512Kernels, "Winograd runs at the AVX-512 level only"), arguments: cases)
    func autoTakesTwoByTwoTiles(_ name: String) throws {
        let f = try FixtureCase("winograd_small", name)
        let input = try f.input
        for runtime in [Self.oneThread, Self.runtimes.two] {
            func output(_ extra: Attributes) throws -> [Float] {
                try f.layer(extra, on: runtime, label: name).forward([input]).data
            }
            let auto = try output([])
            let f2 = try output([("algorithm", .string("winograd")), ("winograd_tile", .int(2))])
            let f4 = try output([("algorithm", .string("winograd")), ("winograd_tile", .int(4))])
            let differing = zip(auto, f2).filter { $0 != $1 }.count, apart = zip(f2, f4).filter { $0 != $1 }.count
            #expect(auto.count == f2.count && differing == 0,
                    "\(name), \(runtime.threads) threads: auto differs from F(2x2) in \(differing) of \(f2.count) values")
            #expect(apart > 0, "\(name), \(runtime.threads) threads: F(2x2) and F(4x4) gave the same output")
        }
    }
}
