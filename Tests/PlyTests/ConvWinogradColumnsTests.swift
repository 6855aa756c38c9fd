import Foundation
import Testing
@testable import Ply

/// Winograd's "columns" plan (Plugins/Conv/conv_winograd.c, make_plan and step_products): the tiles of
/// the whole batch cut in chunks that fall evenly on the threads, each thread transforming, multiplying
/// and writing back its chunks whole. Since branch rn50b16x each thread takes one contiguous run of
/// chunks (the images a batch split by halves gives it in the 1x1 convs around it), no longer every
/// threads-th chunk. Each chunk computes the same way whichever thread runs it, so the output must be
/// the 1-thread output bit for bit, and the 1-thread output within tolerance of a plain double sum. A
/// split that leaves a chunk out or runs one twice does not pass: a mutant whose last thread stops one
/// chunk early fails here on 2 and 3 threads (BENCHMARKS.md, the rn50b16x section). Shapes (F(4x4)
/// forced, 14x14 planes: 16 tiles an image): 24 images of 64 -> 64 channels, 384 tiles in 12 chunks of
/// 32 ("columns" on 2 and 3 threads); 48 images of 32 -> 32, 768 tiles in 8 chunks of 96 ("columns" on
/// 2 threads, "ranges" on 3). AVX-512 only (Winograd's forward kernel).
@Suite(.enabled(if: avx512Kernels, "Winograd's forward is AVX-512"))
struct ConvWinogradColumnsTests {
    static let runtimes = SuiteRuntimes()

    // (images, channels in = out, relu fused); 14x14 planes
    @Test(arguments: [(24, 64, true), (48, 32, false)])
    func columnsMatchOneThreadExactly(images: Int, channels: Int, relu: Bool) throws {
        let s = (n: images, c: channels, oc: channels, side: 14, relu: relu)
        var g = SplitMix64(seed: UInt64(s.n * 1000 + s.c))
        let per = s.c * s.side * s.side
        let x = try Tensor(shape: [s.n, s.c, s.side, s.side],
                           data: (0..<(s.n * per)).map { _ in g.nextUnitFloat() * 2 - 1 })
        let w = (0..<(s.oc * s.c * 9)).map { _ in (g.nextUnitFloat() * 2 - 1) * 0.2 }
        let b = (0..<s.oc).map { _ in g.nextUnitFloat() - 0.5 }
        let outputs = try convOutputsOnThreads(
            [threadedRuntime(1), Self.runtimes.two, Self.runtimes.three],
            [("in_channels", .int(s.c)), ("out_channels", .int(s.oc)), ("kernel_size", .int(3)), ("padding", .int(1)),
             ("algorithm", .string("winograd")), ("winograd_tile", .int(4))],
            w: w, b: b, relu: s.relu, x: x, shape: [s.n, s.oc, s.side, s.side], "\(s)")
        // the reference per image (referenceConv takes one image), concatenated
        var reference: [Float] = []
        for i in 0..<s.n {
            reference += referenceConv(Array(x.data[i * per ..< (i + 1) * per]), w, b, c: s.c, oc: s.oc, side: s.side,
                                       k: 3, stride: 1, pad: 1, relu: s.relu)
        }
        expectSameAsOneThread(outputs, reference: reference, "\(s)")
    }
}
