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
        var outputs: [(Int, [Float])] = []
        for runtime in [Self.one, Self.runtimes.two, Self.runtimes.three] {
            let conv = try Layer("conv2d", [("in_channels", .int(s.c)), ("out_channels", .int(s.oc)),
                                            ("kernel_size", .int(3)), ("stride", .int(s.stride)),
                                            ("padding", .int(1)), ("algorithm", .string("panels"))],
                                 runtime: runtime)
            let params = try conv.parameters
            try params[0].write(w)
            try params[1].write(b)
            conv.setTraining(false)
            if s.relu { #expect(conv.fuseActivation("relu"), "conv2d fuses the relu") }
            // twice: the parts' counters start from 0 on every forward
            for pass in 1...2 {
                let y = try conv.forward([x])
                #expect(y.shape == [1, s.oc, s.out, s.out], "\(s): \(y.shape)")
                if pass == 2 { outputs.append((runtime.threads, y.data)) }
            }
        }
        #expect(outputs[0].0 == 1)
        let one = outputs[0].1
        let c = closeness(one, reference(s, x.data, w, b))
        #expect(c.ok, "\(s), 1 thread: max error \(c.error) > \(c.bound)")
        for (threads, y) in outputs.dropFirst() {
            let differing = zip(y, one).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(differing == 0, "\(s), \(threads) threads: \(differing) of \(y.count) outputs differ from 1 thread's")
        }
    }

    /// y[o][oh][ow] = b[o] + sum_{c, kh, kw} w[o][c][kh][kw] x[c][oh*stride + kh - 1][ow*stride + kw - 1]
    /// (zero outside the plane), in double; relu'd where the shape fuses it.
    func reference(_ s: Shape, _ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
        let side = s.out
        var y = [Float](repeating: 0, count: s.oc * side * side)
        for o in 0..<s.oc {
            for oh in 0..<side {
                for ow in 0..<side {
                    var acc = Double(b[o])
                    for c in 0..<s.c {
                        for kh in 0..<3 {
                            let ih = oh * s.stride + kh - 1
                            if ih < 0 || ih >= s.side { continue }
                            for kw in 0..<3 {
                                let iw = ow * s.stride + kw - 1
                                if iw < 0 || iw >= s.side { continue }
                                acc += Double(w[((o * s.c + c) * 3 + kh) * 3 + kw]) * Double(x[(c * s.side + ih) * s.side + iw])
                            }
                        }
                    }
                    y[(o * side + oh) * side + ow] = Float(s.relu ? max(acc, 0) : acc)
                }
            }
        }
        return y
    }
}
