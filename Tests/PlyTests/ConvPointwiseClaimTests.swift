import Foundation
import Testing
@testable import Ply

/// The pointwise (1x1) conv at batch 1 on 2 and 3 threads (Plugins/Conv/conv_1x1.c): the image is cut
/// in PARTS_PER_WORKER parts per worker that the threads claim one at a time (`ply_claim`), by
/// positions on planes of 8+ strips a thread, else by output channels. Each part computes the same
/// way whichever thread claims it, so the output must be the 1-thread output bit for bit, at odd
/// boundaries too: 17x17 (289 positions, 19 blocks of 16 over 8 or 12 parts, the last a 1-position
/// tail), 28x28 (49 blocks), 14x14 and 7x7 split by output channels (100 and 257 rows: part-filled
/// 12-row tiles), and a strided 1x1 (the image subsampled once and shared).
@Suite struct ConvPointwiseClaimTests {
    static let runtimes = SuiteRuntimes()
    static let one = threadedRuntime(1)

    struct Shape: CustomStringConvertible, Sendable {
        let c, oc, side, stride: Int
        var description: String { "\(c)->\(oc) \(side)x\(side) stride \(stride)" }
    }

    static let shapes = [
        Shape(c: 40, oc: 24, side: 17, stride: 1),   // positions: 289 = 18 blocks of 16 + 1
        Shape(c: 64, oc: 36, side: 28, stride: 1),   // positions: 784 = 49 blocks of 16
        Shape(c: 33, oc: 20, side: 35, stride: 1),   // positions: 1225, an odd K
        Shape(c: 48, oc: 100, side: 14, stride: 1),  // output channels: 100 rows
        Shape(c: 64, oc: 257, side: 7, stride: 1),   // output channels: 257 rows
        Shape(c: 32, oc: 52, side: 28, stride: 2),   // strided, output channels of a shared subsample
    ]

    @Test(arguments: shapes)
    func batchOneMatchesOneThreadExactly(_ s: Shape) throws {
        var g = SplitMix64(seed: UInt64(s.c * 1000 + s.oc))
        let x = try Tensor(shape: [1, s.c, s.side, s.side],
                           data: (0..<(s.c * s.side * s.side)).map { _ in g.nextUnitFloat() * 2 - 1 })
        let w = (0..<(s.oc * s.c)).map { _ in (g.nextUnitFloat() * 2 - 1) * 0.2 }
        let b = (0..<s.oc).map { _ in g.nextUnitFloat() - 0.5 }
        let side = (s.side - 1) / s.stride + 1
        // twice on each runtime: the parts' counter starts from 0 on every forward
        let outputs = try convOutputsOnThreads(
            [Self.one, Self.runtimes.two, Self.runtimes.three],
            [("in_channels", .int(s.c)), ("out_channels", .int(s.oc)), ("kernel_size", .int(1)), ("stride", .int(s.stride)),
             ("padding", .int(0)), ("algorithm", .string("pointwise"))],
            w: w, b: b, x: x, shape: [1, s.oc, side, side], "\(s)")
        // (against a plain sum too, so that a part left out everywhere would not pass)
        expectSameAsOneThread(outputs, reference: referenceConv(x.data, w, b, c: s.c, oc: s.oc, side: s.side, k: 1, stride: s.stride, pad: 0), "\(s)")
    }
}
