import Foundation
import Testing
@testable import Ply

/// The panels conv (Plugins/Conv/conv_panels.c: 3x3, vectorised over 32 output channels a panel) at
/// batch 1 on 2 and 3 threads: its units (one output row of one panel) are shared among the threads,
/// by a static split or claimed in parts (`ply_claim`, own share first: branch claimpanels-exp). Each
/// unit must compute the same way whichever thread runs it, so the output must be the 1-thread output
/// bit for bit, and within tolerance of a plain double sum (a unit left out everywhere would not
/// pass: a mutant dropping the last claimed unit fails here on 2 and 3 threads). Shapes: parts that
/// split a panel's rows unevenly (odd unit counts), parts that cross panels, more parts than units
/// (4x4 stride 2: 2 panels x 2 rows), a last block of fewer than 16 input channels, 1 panel (the
/// thread count capped at the panels), the relu fused or not. Forced "panels": AVX-512 only.
@Suite(.enabled(if: avx512Kernels, "forces algorithm \"panels\", whose kernel is AVX-512"))
struct ConvPanelsClaimTests {
    static let runtimes = SuiteRuntimes()
    static let one = threadedRuntime(1)

    struct Shape: CustomStringConvertible, Sendable {
        let c, oc, side, stride: Int
        let relu: Bool
        var out: Int { (side - 1) / stride + 1 } // padding 1
        var description: String { "\(c)->\(oc) \(side)x\(side) stride \(stride)\(relu ? " relu" : "")" }
    }

    static let shapes = [
        Shape(c: 40, oc: 72, side: 15, stride: 2, relu: true),    // 3 panels x 8 rows: 24 units
        Shape(c: 48, oc: 100, side: 7, stride: 1, relu: false),   // 4 panels (the last part-filled) x 7 rows
        Shape(c: 20, oc: 33, side: 9, stride: 1, relu: true),     // 2 panels x 9 rows, blocks of 16 + 4 channels
        Shape(c: 64, oc: 256, side: 13, stride: 2, relu: false),  // 8 panels x 7 rows: 56 units
        Shape(c: 16, oc: 64, side: 4, stride: 2, relu: false),    // 2 panels x 2 rows: fewer units than parts
        Shape(c: 24, oc: 32, side: 11, stride: 1, relu: true),    // 1 panel: one thread
    ]

    @Test(arguments: shapes)
    func batchOneMatchesOneThreadExactly(_ s: Shape) throws {
        var g = SplitMix64(seed: UInt64(s.c * 1000 + s.oc + s.side))
        let x = try Tensor(shape: [1, s.c, s.side, s.side],
                           data: (0..<(s.c * s.side * s.side)).map { _ in g.nextUnitFloat() * 2 - 1 })
        let w = (0..<(s.oc * s.c * 9)).map { _ in (g.nextUnitFloat() * 2 - 1) * 0.2 }
        let b = (0..<s.oc).map { _ in g.nextUnitFloat() - 0.5 }
        // twice on each runtime: claim counters start from 0 on every forward
        let outputs = try convOutputsOnThreads(
            [Self.one, Self.runtimes.two, Self.runtimes.three],
            [("in_channels", .int(s.c)), ("out_channels", .int(s.oc)), ("kernel_size", .int(3)), ("stride", .int(s.stride)),
             ("padding", .int(1)), ("algorithm", .string("panels"))],
            w: w, b: b, relu: s.relu, x: x, shape: [1, s.oc, s.out, s.out], "\(s)")
        expectSameAsOneThread(outputs, reference: referenceConv(x.data, w, b, c: s.c, oc: s.oc, side: s.side, k: 3, stride: s.stride, pad: 1, relu: s.relu), "\(s)")
    }
}
