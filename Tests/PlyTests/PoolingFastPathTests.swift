import Foundation
import Testing
@testable import Ply

/// The vectorised 2×2 / stride 2 max pool must agree exactly with PyTorch's rule (first
/// maximum in row-major order wins; NaN wins) — ties and NaNs on purpose, odd sizes included.
@Suite struct PoolingFastPathTests {
    /// Reference: scalar max pool with argmax, as PyTorch defines it.
    func reference(_ x: [Float], _ n: Int, _ h: Int, _ w: Int) -> (out: [Float], argmax: [Int]) {
        let oh = h / 2, ow = w / 2
        var out: [Float] = [], arg: [Int] = []
        for p in 0..<n { for i in 0..<oh { for j in 0..<ow {
            var m = -Float.infinity, idx = p * h * w + 2 * i * w + 2 * j
            for di in 0..<2 { for dj in 0..<2 {
                let k = p * h * w + (2 * i + di) * w + 2 * j + dj
                if x[k] > m || x[k].isNaN { m = x[k]; idx = k }
            } }
            out.append(m); arg.append(idx)
        } } }
        return (out, arg)
    }

    @Test(arguments: [(28, 28), (14, 14), (17, 35), (2, 16), (3, 9), (32, 33)])
    func agreesWithScalarRule(_ size: (Int, Int)) throws {
        let (h, w) = size, planes = 6
        var g = SplitMix64(seed: UInt64(h * 100 + w))
        // Few distinct values: many ties. A sprinkle of NaNs and infinities.
        var x = (0..<(planes * h * w)).map { _ in Float(Int(g.nextUnitFloat() * 4)) - 1.5 }
        for _ in 0..<(x.count / 50) { x[Int(g.next() % UInt64(x.count))] = .nan }
        for _ in 0..<(x.count / 80) { x[Int(g.next() % UInt64(x.count))] = -.infinity }
        let layer = try Layer("maxpool2d", [("kernel_size", .int(2)), ("stride", .int(2))], runtime: sharedRuntime)
        let input = try Tensor(shape: [2, 3, h, w], data: x)
        let out = try layer.forward([input])
        let ref = reference(x, planes, h, w)
        #expect(out.data.count == ref.out.count)
        for (a, b) in zip(out.data, ref.out) { #expect(a == b || (a.isNaN && b.isNaN)) }
        let dy = try Tensor(shape: out.shape, data: (0..<out.data.count).map { Float($0 + 1) })
        let dx = try #require(try layer.backward(inputs: [input], output: out, gradOutput: dy)[0])
        var expected = [Float](repeating: 0, count: x.count)
        for (k, idx) in ref.argmax.enumerated() { expected[idx] += dy.data[k] }
        #expect(dx.data == expected)
    }

    /// Pooling geometries of GoogLeNet, Inception v3 and ResNet (3x3 stride 1 and 2, padding,
    /// ceil_mode), plus a wide kernel and uneven strides.
    static let windows: [(k: [Int], s: [Int], p: [Int], ceil: Bool)] = [
        ([3, 3], [1, 1], [1, 1], false), ([3, 3], [2, 2], [1, 1], false), ([3, 3], [2, 2], [0, 0], true),
        ([3, 3], [2, 2], [0, 0], false), ([5, 4], [1, 3], [2, 1], true), ([2, 3], [3, 1], [0, 1], false),
    ]

    /// Evaluation mode takes a path without argmax bookkeeping: its maxima must equal the
    /// training path's (which the golden cases check against PyTorch) exactly, ties, NaNs and
    /// infinities included.
    @Test(arguments: 0..<windows.count)
    func maxPoolEvaluationEqualsTraining(_ i: Int) throws {
        let win = PoolingFastPathTests.windows[i]
        let attrs: Attributes = [("kernel_size", .ints(win.k)), ("stride", .ints(win.s)), ("padding", .ints(win.p)),
                                 ("ceil_mode", .bool(win.ceil))]
        let train = try Layer("maxpool2d", attrs, runtime: sharedRuntime)
        let eval = try Layer("maxpool2d", attrs, runtime: sharedRuntime)
        train.setTraining(true)
        eval.setTraining(false)
        var g = SplitMix64(seed: UInt64(i + 7))
        // 13x17: rows shorter than a vector; 9x70: several vectors per row, and a tail. Without NaNs
        // too: a plane with one goes back to the general kernel from the separable 3x3 ones.
        for (shape, nans) in [([2, 3, 13, 17], true), ([1, 2, 9, 70], true), ([2, 3, 13, 17], false),
                              ([1, 2, 9, 70], false), ([1, 2, 7, 7], false), ([1, 1, 112, 112], false)] {
            var x = (0..<shape.reduce(1, *)).map { _ in Float(Int(g.nextUnitFloat() * 5)) - 2.5 }
            if nans { for _ in 0..<(x.count / 40) { x[Int(g.next() % UInt64(x.count))] = .nan } }
            for _ in 0..<(x.count / 60) { x[Int(g.next() % UInt64(x.count))] = -.infinity }
            // +0 and -0 compare equal: the first in row-major order must win, bit for bit
            for k in x.indices where x[k] > 0 { x[k] = g.next() % 2 == 0 ? 0.0 : -0.0 }
            let input = try Tensor(shape: Shape(shape), data: x)
            let a = try train.forward([input]), b = try eval.forward([input])
            #expect(a.shape == b.shape)
            for (u, v) in zip(a.data, b.data) { #expect(u.bitPattern == v.bitPattern || (u.isNaN && v.isNaN), "\(shape)") }
        }
    }

    /// Training mode keeps the argmax (the vectorised rows for strides 1 and 2): its maxima and the
    /// gradient routed by the argmax must follow PyTorch's rule exactly (first maximum in
    /// row-major order, a NaN wins, a window of -inf keeps its first valid element).
    @Test(arguments: 0..<windows.count)
    func maxPoolTrainingFollowsTheScalarRule(_ i: Int) throws {
        let win = PoolingFastPathTests.windows[i]
        let layer = try Layer("maxpool2d", [("kernel_size", .ints(win.k)), ("stride", .ints(win.s)),
                                            ("padding", .ints(win.p)), ("ceil_mode", .bool(win.ceil))],
                              runtime: sharedRuntime)
        layer.setTraining(true)
        var g = SplitMix64(seed: UInt64(i + 101))
        for shape in [[2, 3, 13, 17], [1, 2, 9, 70]] {
            let (h, w) = (shape[2], shape[3]), planes = shape[0] * shape[1]
            var x = (0..<shape.reduce(1, *)).map { _ in Float(Int(g.nextUnitFloat() * 5)) - 2.5 }
            for _ in 0..<(x.count / 40) { x[Int(g.next() % UInt64(x.count))] = .nan }
            for _ in 0..<(x.count / 30) { x[Int(g.next() % UInt64(x.count))] = -.infinity }
            let input = try Tensor(shape: Shape(shape), data: x)
            let y = try layer.forward([input])
            let (oh, ow) = (y.shape.dims[2], y.shape.dims[3])
            let dy = try Tensor(shape: y.shape, data: (0..<y.data.count).map { Float($0 % 97 + 1) })
            let dx = try #require(try layer.backward(inputs: [input], output: y, gradOutput: dy)[0])
            var expected = [Float](repeating: 0, count: x.count)
            for p in 0..<planes { for a in 0..<oh { for b in 0..<ow {
                let h0 = max(a * win.s[0] - win.p[0], 0), h1 = min(a * win.s[0] - win.p[0] + win.k[0], h)
                let w0 = max(b * win.s[1] - win.p[1], 0), w1 = min(b * win.s[1] - win.p[1] + win.k[1], w)
                var m = -Float.infinity, idx = p * h * w + h0 * w + w0
                for r in h0..<h1 { for c in w0..<w1 {
                    let k = p * h * w + r * w + c
                    if x[k] > m || x[k].isNaN { m = x[k]; idx = k }
                } }
                let o = (p * oh + a) * ow + b
                #expect(y.data[o] == m || (y.data[o].isNaN && m.isNaN), "\(shape) output \(o)")
                expected[idx] += dy.data[o]
            } } }
            #expect(dx.data == expected, "\(shape): gradient routed by the argmax")
        }
    }

    /// Average pooling sums a row of windows at a time; the sums must be bit-identical to the
    /// plain per-window loop (rows, then columns), for both padding conventions.
    @Test(arguments: 0..<windows.count)
    func avgPoolMatchesPlainLoop(_ i: Int) throws {
        let win = PoolingFastPathTests.windows[i]
        for includePad in [true, false] {
            let layer = try Layer("avgpool2d", [("kernel_size", .ints(win.k)), ("stride", .ints(win.s)),
                                                ("padding", .ints(win.p)), ("ceil_mode", .bool(win.ceil)),
                                                ("count_include_pad", .bool(includePad))], runtime: sharedRuntime)
            var g = SplitMix64(seed: UInt64(i + 70))
            let (h, w) = (13, 17)
            let x = (0..<(h * w)).map { _ in g.nextUnitFloat() * 2 - 1 }
            let out = try layer.forward([try Tensor(shape: [1, 1, h, w], data: x)])
            let oh = out.shape.dims[2], ow = out.shape.dims[3]
            for r in 0..<oh {
                for c in 0..<ow {
                    let hs = r * win.s[0] - win.p[0], ws = c * win.s[1] - win.p[1]
                    let he = min(hs + win.k[0], h + win.p[0]), we = min(ws + win.k[1], w + win.p[1])
                    let size = (he - hs) * (we - ws)
                    let h0 = max(hs, 0), w0 = max(ws, 0), h1 = min(he, h), w1 = min(we, w)
                    var sum: Float = 0
                    for y in h0..<max(h0, h1) { for xx in w0..<max(w0, w1) { sum += x[y * w + xx] } }
                    let div = Float(includePad ? size : (h1 - h0) * (w1 - w0))
                    let expected = h0 >= h1 || w0 >= w1 ? 0 : sum / div
                    #expect(out.data[r * ow + c] == expected, "window (\(r), \(c)) include_pad \(includePad)")
                }
            }
        }
    }

    /// The 3x3 / stride 1 / padding 1 average pool (Inception v3's pool branches) on its planes: a
    /// masked loop for the first and last rows and a middle loop without row masks on rows of 16 and
    /// more (35x35, 17x17), every plane masked on narrower ones (8x8). The sums must be bit-identical
    /// to the plain loop's (rows, then columns, the taps inside the plane only), signed zeros
    /// included: a window of -0s sums to -0 only as 0 + -0 + ... = +0 does not, so the first tap's
    /// add from +0 matters.
    /// (1, 1) to (3, 2): planes of fewer than 8 floats, one masked vector through a buffer at the
    /// AVX2 level (pooling_avx2.c); (3, 3): one vector and one overlapping it.
    @Test(arguments: [(35, 35), (17, 17), (8, 8), (16, 16), (20, 33), (1, 40), (40, 1), (64, 64), (1, 1), (2, 3),
                      (1, 7), (3, 2), (3, 3)])
    func avgPool3x3MiddleRowsMatchPlainLoop(_ size: (Int, Int)) throws {
        let (h, w) = size, planes = 3
        let layer = try Layer("avgpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1)),
                                            ("count_include_pad", .bool(true))], runtime: sharedRuntime)
        var g = SplitMix64(seed: UInt64(h * 1000 + w))
        var x = (0..<(planes * h * w)).map { _ in g.nextUnitFloat() * 2 - 1 }
        // -0 and +0 in runs (whole windows of zeros), values whose sums round differently by order
        for k in x.indices where g.next() % 3 == 0 { x[k] = g.next() % 2 == 0 ? -0.0 : 0.0 }
        for k in x.indices where g.next() % 7 == 0 { x[k] *= 3.0e7 }
        // a 5x5 block of -0 in each plane's middle: windows of nine -0s (their sum is +0)
        for p in 0..<planes { for y in max(h / 2 - 2, 0)..<min(h / 2 + 3, h) { for xx in max(w / 2 - 2, 0)..<min(w / 2 + 3, w) {
            x[(p * h + y) * w + xx] = -0.0
        } } }
        let out = try layer.forward([try Tensor(shape: [1, planes, h, w], data: x)])
        for p in 0..<planes { for r in 0..<h { for c in 0..<w {
            var sum: Float = 0
            for y in max(r - 1, 0)...min(r + 1, h - 1) { for xx in max(c - 1, 0)...min(c + 1, w - 1) {
                sum += x[(p * h + y) * w + xx]
            } }
            let got = out.data[(p * h + r) * w + c], want = sum / 9
            #expect(got.bitPattern == want.bitPattern, "plane \(p) (\(r), \(c)) of \(h)x\(w): \(got) want \(want)")
        } } }
    }

    /// The 3x3 max pools' kernels without argmax (stride 1: separable over the flat plane; stride 2:
    /// fused rows) against the training path's general kernel, bit for bit, on the planes where
    /// their edges are: fewer than 8 floats (one masked vector through a buffer at the AVX2 level),
    /// rows of 8 to 16 outputs (a last vector overlapping the one before), and a NaN at the first,
    /// the last or a middle element only (each must send the plane back to the general kernel).
    @Test(arguments: [(1, 1), (2, 3), (1, 7), (7, 1), (3, 5), (9, 21), (15, 15), (5, 33)])
    func maxPool3x3EdgesEqualTraining(_ size: (Int, Int)) throws {
        let (h, w) = size
        for win in PoolingFastPathTests.windows.prefix(4) where win.p[0] == 1 || (h >= 3 && w >= 3) {
            let attrs: Attributes = [("kernel_size", .ints(win.k)), ("stride", .ints(win.s)),
                                     ("padding", .ints(win.p)), ("ceil_mode", .bool(win.ceil))]
            let train = try Layer("maxpool2d", attrs, runtime: sharedRuntime)
            let eval = try Layer("maxpool2d", attrs, runtime: sharedRuntime)
            train.setTraining(true)
            eval.setTraining(false)
            var g = SplitMix64(seed: UInt64(h * 100 + w))
            for nanAt in [nil, 0, h * w - 1, h * w / 2] as [Int?] {
                var x = (0..<(2 * h * w)).map { _ in Float(Int(g.nextUnitFloat() * 4)) - 2.5 }
                for k in x.indices where g.next() % 5 == 0 { x[k] = -.infinity }
                for k in x.indices where x[k] > 0 { x[k] = g.next() % 2 == 0 ? 0.0 : -0.0 }
                if let k = nanAt { x[k] = .nan; x[h * w + k] = .nan }
                let input = try Tensor(shape: [1, 2, h, w], data: x)
                let a = try train.forward([input]), b = try eval.forward([input])
                #expect(a.shape == b.shape)
                for (u, v) in zip(a.data, b.data) {
                    #expect(u.bitPattern == v.bitPattern || (u.isNaN && v.isNaN),
                            "\(size) \(win) NaN at \(nanAt ?? -1)")
                }
            }
        }
    }
}
