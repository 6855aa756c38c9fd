import Foundation
import Testing
@testable import Ply

/// The panels and spans kernels' zero padding of narrow planes (Plugins/Conv/conv_spans.c,
/// pad_rows512: padded rows of at most 16 floats, a masked load, permute and store per row on an
/// AVX-512 CPU) against PyTorch's convolution in double precision (Fixtures/narrow_pad, written by
/// make-narrow-pad.py), the kernel forced by the case name's prefix, on 1, 2 and 3 threads, in
/// evaluation (where these kernels run), the relu fused or not: rows of 9, 10, 11 and 16 floats,
/// padding of 0, 1 and 2 on the width, stride 2, two images, a 17-float row (the general loop) and
/// 208 planes (padded by ranges of planes on 2 and 3 threads). Below AVX-512 forcing the panels is
/// refused and the spans pad by the general loop; below AVX2 both are refused.
@Suite struct NarrowPadTests {
    static let cases = fixtureCases("narrow_pad")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 7, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("narrow_pad", name)
        let kernel = String(name.prefix { $0 != "_" })
        let forced: Attributes = [("algorithm", .string(kernel))]
        let input = try f.input
        // forcing the panels needs the AVX-512 kernels, the spans AVX2 (else refused, naming the level)
        guard kernel == "panels" ? avx512Kernels : avx2Kernels else {
            #expect(throws: (any Error).self) { try Layer("conv2d", f.attrs + forced, runtime: sharedRuntime) }
            return
        }
        for runtime in Self.runtimes.all {
            for relu in [false, true] {
                let label = "\(name), relu \(relu), \(runtime.threads) threads"
                let layer = try f.layer(forced, on: runtime, relu: relu, label: label)
                try expectForwardsMatch(layer, input, try f.expected(relu: relu), label, passes: 1)
            }
        }
    }
}
