import Foundation
import Testing
@testable import Ply

/// The fast kernels against their references: the direct (AVX-512 or AVX2) convolution against the
/// im2col + sgemm path on random shapes, the small linear path against a double-precision
/// product, the threaded element-wise activations, and parallel_for's worker pool under
/// concurrent callers.
@Suite struct KernelTests {
    /// A runtime with 3 threads, so batches split unevenly and chunk 2 exists.
    static let threaded: Runtime = {
        var options = Runtime.Options()
        options.threads = 3
        do { return try Runtime(options: options) } catch { fatalError("cannot create the test runtime: \(error)") }
    }()

    struct ConvCase: CustomStringConvertible, Sendable {
        var n, c, oc, h, w, kh, kw, ph, pw: Int
        var stride = 1
        var bias = true
        var description: String {
            "N\(n) C\(c)->\(oc) \(h)x\(w) k\(kh)x\(kw) p\(ph),\(pw) s\(stride)\(bias ? "" : " no-bias")"
        }
    }

    static let convCases: [ConvCase] = {
        var cases = [
            ConvCase(n: 128, c: 1, oc: 8, h: 28, w: 28, kh: 3, kw: 3, ph: 1, pw: 1),   // ConvNet conv_1
            ConvCase(n: 128, c: 8, oc: 16, h: 14, w: 14, kh: 3, kw: 3, ph: 1, pw: 1),  // ConvNet conv_2
            ConvCase(n: 1, c: 1, oc: 1, h: 1, w: 1, kh: 1, kw: 1, ph: 0, pw: 0),
            ConvCase(n: 1, c: 3, oc: 5, h: 7, w: 9, kh: 3, kw: 3, ph: 1, pw: 1),
            ConvCase(n: 3, c: 2, oc: 31, h: 5, w: 17, kh: 3, kw: 5, ph: 0, pw: 2, bias: false),
            ConvCase(n: 5, c: 16, oc: 64, h: 6, w: 6, kh: 5, kw: 5, ph: 4, pw: 4),
            ConvCase(n: 2, c: 7, oc: 3, h: 33, w: 2, kh: 2, kw: 2, ph: 1, pw: 0),
            ConvCase(n: 4, c: 4, oc: 6, h: 10, w: 11, kh: 7, kw: 7, ph: 3, pw: 3),
            ConvCase(n: 2, c: 3, oc: 4, h: 9, w: 9, kh: 3, kw: 3, ph: 1, pw: 1, stride: 2),  // falls back
        ]
        var g = SplitMix64(seed: 42)
        for _ in 0..<8 {
            let kh = 1 + g.next(below: 5), kw = 1 + g.next(below: 5)
            cases.append(ConvCase(n: 1 + g.next(below: 6), c: 1 + g.next(below: 16), oc: 1 + g.next(below: 40),
                                  h: kh + g.next(below: 20), w: kw + g.next(below: 20), kh: kh, kw: kw,
                                  ph: g.next(below: kh), pw: g.next(below: kw), bias: g.next(below: 2) == 0))
        }
        return cases
    }()

    func convLayer(_ k: ConvCase, _ algorithm: String, _ runtime: Runtime) throws -> Layer {
        try Layer("conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)), ("kernel_size", .ints([k.kh, k.kw])),
                             ("padding", .ints([k.ph, k.pw])), ("stride", .int(k.stride)), ("bias", .bool(k.bias)),
                             ("algorithm", .string(algorithm))], runtime: runtime)
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    @Test(arguments: convCases)
    func directConvolutionMatchesIm2col(_ k: ConvCase) throws {
        for runtime in [sharedRuntime, KernelTests.threaded] {
            let reference = try convLayer(k, "im2col", runtime)
            // below the AVX2 level "direct" is refused (forcedAVX512AlgorithmsNameTheCPULevel) and
            // "auto" takes im2col's portable path, which this still checks against the reference's
            let fast = try convLayer(k, k.stride == 1 && avx2Kernels ? "direct" : "auto", runtime)
            var g = SplitMix64(seed: UInt64(k.n * 1000 + k.c * 100 + k.oc))
            for (p, q) in zip(try reference.parameters, try fast.parameters) { try q.write(p.read()) }
            let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: random(k.n * k.c * k.h * k.w, &g))
            let y0 = try reference.forward([x]), y1 = try fast.forward([x])
            #expect(y0.shape == y1.shape)
            let fwd = closeness(y1.data, y0.data)
            #expect(fwd.ok, "\(k): forward max error \(fwd.error) > \(fwd.bound)")
            // Two backward passes: parameter gradients accumulate.
            for pass in 0..<2 {
                let dy = try Tensor(shape: y0.shape, data: random(y0.shape.count, &g))
                let dx0 = try reference.backward(inputs: [x], output: y0, gradOutput: dy)[0]!
                let dx1 = try fast.backward(inputs: [x], output: y1, gradOutput: dy)[0]!
                let c = closeness(dx1.data, dx0.data)
                #expect(c.ok, "\(k) pass \(pass): grad_input max error \(c.error) > \(c.bound)")
                for (p, q) in zip(try reference.parameters, try fast.parameters) {
                    let e = closeness(Array(q.gradient!), Array(p.gradient!))
                    #expect(e.ok, "\(k) pass \(pass): grad of \(p.name) max error \(e.error) > \(e.bound)")
                }
            }
        }
    }

    /// NaN and infinity reach exactly the outputs and gradients they reach in the reference
    /// (the direct kernel's discarded and masked lanes must not leak them).
    @Test(.enabled(if: avx2Kernels, "forces algorithm \"direct\", whose kernels are AVX-512 and AVX2 only"))
    func directConvolutionPropagatesNaNLikeIm2col() throws {
        let k = ConvCase(n: 2, c: 2, oc: 4, h: 6, w: 5, kh: 3, kw: 3, ph: 0, pw: 0)
        let reference = try convLayer(k, "im2col", sharedRuntime), fast = try convLayer(k, "direct", sharedRuntime)
        for (p, q) in zip(try reference.parameters, try fast.parameters) { try q.write(p.read()) }
        var g = SplitMix64(seed: 7)
        var data = random(k.n * k.c * k.h * k.w, &g)
        data[4] = .infinity  // last column of row 0: only some windows read it
        data[k.h * k.w + 13] = .nan
        let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: data)
        let y0 = try reference.forward([x]), y1 = try fast.forward([x])
        #expect(zip(y0.data, y1.data).allSatisfy { $0.isNaN == $1.isNaN && ($0.isNaN || abs($0 - $1) <= 1e-5 * max(1, abs($0))) })
        let dy = try Tensor(shape: y0.shape, data: random(y0.shape.count, &g))
        _ = try reference.backward(inputs: [x], output: y0, gradOutput: dy)
        _ = try fast.backward(inputs: [x], output: y1, gradOutput: dy)
        let w0 = Array(try reference.parameters[0].gradient!), w1 = Array(try fast.parameters[0].gradient!)
        #expect(zip(w0, w1).allSatisfy { $0.isNaN == $1.isNaN && $0.isInfinite == $1.isInfinite })
    }

    /// Winograd keeps its transformed weights from one forward to the next (Plugins/Conv/conv.c,
    /// winograd_weights), and "panels" its packed weights (tile 0 below): an SGD step, a change of the
    /// last weight only, and the old weights written back must each reach the next forward, and an
    /// unchanged layer gives the same output again.
    @Test(.enabled(if: avx512Kernels, "forces algorithm \"winograd\" or \"panels\", whose kernels are AVX-512 only"),
          arguments: [2, 4, 6, 0])
    func winogradFollowsWeightChanges(_ tile: Int) throws {
        let k = ConvCase(n: 2, c: 16, oc: 24, h: 18, w: 17, kh: 3, kw: 3, ph: 1, pw: 1)
        for runtime in [sharedRuntime, KernelTests.threaded] {
            let reference = try convLayer(k, "im2col", runtime)
            let fast = try Layer("conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)), ("kernel_size", .int(3)),
                                            ("padding", .int(1)), ("algorithm", .string(tile == 0 ? "panels" : "winograd")),
                                            ("winograd_tile", .int(tile))], runtime: runtime)
            var g = SplitMix64(seed: 13)
            let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: random(k.n * k.c * k.h * k.w, &g))
            try expectPackedWeightsFollowChanges(fast, reference, input: x, &g,
                                                 label: "tile \(tile), \(runtime.threads) threads")
        }
    }

    /// "s2d" keeps the folded layer's Winograd weights from one forward to the next (Plugins/Conv/conv_s2d.c):
    /// an SGD step, a change of the last weight and the old weights back must each reach the next forward,
    /// and so must an input size whose folded layer takes another tile side (40x40: F(2x2) on 48 folded
    /// channels; 160x160: F(4x4)), and back.
    @Test(.enabled(if: avx512Kernels, "forces algorithm \"s2d\", whose kernels are AVX-512 only"))
    func s2dFollowsWeightChangesAndTileSide() throws {
        let k = ConvCase(n: 1, c: 3, oc: 16, h: 40, w: 40, kh: 11, kw: 11, ph: 2, pw: 2, stride: 4)
        for runtime in [sharedRuntime, KernelTests.threaded] {
            let reference = try convLayer(k, "im2col", runtime), fast = try convLayer(k, "s2d", runtime)
            var g = SplitMix64(seed: 41)
            let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: random(k.n * k.c * k.h * k.w, &g))
            let label = "s2d, \(runtime.threads) threads"
            try expectPackedWeightsFollowChanges(fast, reference, input: x, &g, label: label)
            for side in [160, 40, 160] {
                let xs = try Tensor(shape: [1, k.c, side, side], data: random(k.c * side * side, &g))
                let c = closeness(try fast.forward([xs]).data, try reference.forward([xs]).data)
                #expect(c.ok, "\(label), \(side)x\(side): max error \(c.error) > \(c.bound)")
            }
        }
    }

    /// What a conv derives from its weights (Winograd's U, the packed weights of "panels") is trusted
    /// while the host's parameter generation stays, until set_training: the call an owner makes after
    /// writing a folded conv's values without moving the generation (ply_fold_write,
    /// ConvBatchNormFold). The conv runs on a runtime of its own, whose generation nothing else moves.
    @Test(.enabled(if: avx512Kernels, "forces algorithm \"winograd\" or \"panels\", whose kernels are AVX-512 only"),
          arguments: ["winograd", "panels"])
    func convFollowsOwnerWritesAfterSetTraining(_ algorithm: String) throws {
        let k = ConvCase(n: 1, c: 16, oc: 40, h: 12, w: 12, kh: 3, kw: 3, ph: 1, pw: 1)
        let own = try Runtime(options: Runtime.Options())
        let fast = try Layer("conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)), ("kernel_size", .int(3)),
                                        ("padding", .int(1)), ("trainable", .bool(false)),
                                        ("algorithm", .string(algorithm))], runtime: own)
        fast.setTraining(false)
        let reference = try convLayer(k, "im2col", KernelTests.threaded)
        var g = SplitMix64(seed: 29)
        let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: random(k.n * k.c * k.h * k.w, &g))
        // the owner's write: through the value's memory, the generation left where it is
        func ownerWrite(_ seed: UInt64) throws {
            var h = SplitMix64(seed: seed)
            for p in try fast.parameters {
                let v = p.value.assumingMemoryBound(to: Float.self)
                for i in 0..<p.shape.count { v[i] = h.nextUnitFloat() * 2 - 1 }
            }
            fast.setTraining(false)
        }
        func agree(_ what: String) throws {
            for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
            let c = closeness(try fast.forward([x]).data, try reference.forward([x]).data)
            #expect(c.ok, "\(algorithm), \(what): max error \(c.error) > \(c.bound)")
        }
        try ownerWrite(1)
        try agree("first weights")
        try agree("first weights again")
        try ownerWrite(2)
        try agree("after the owner wrote other weights")
    }

    @Test func forcedAlgorithmsAreRefusedWhereTheyDoNotApply() throws {
        let strided = ConvCase(n: 1, c: 1, oc: 1, h: 5, w: 5, kh: 3, kw: 3, ph: 1, pw: 1, stride: 2)
        #expect(throws: PlyError.self) { try convLayer(strided, "direct", sharedRuntime) }
        let wide = ConvCase(n: 1, c: 64, oc: 64, h: 5, w: 5, kh: 3, kw: 3, ph: 1, pw: 1)
        #expect(throws: PlyError.self) { try convLayer(wide, "direct", sharedRuntime) }
        #expect(throws: PlyError.self) { try convLayer(wide, "fft", sharedRuntime) } // no such algorithm
        #expect(throws: PlyError.self) { try convLayer(strided, "winograd", sharedRuntime) } // F(2x2, 3x3): stride 1 only
        let five = ConvCase(n: 1, c: 4, oc: 4, h: 9, w: 9, kh: 5, kw: 5, ph: 2, pw: 2)
        #expect(throws: PlyError.self) { try convLayer(five, "winograd", sharedRuntime) } // and 3x3 only
        #expect(throws: PlyError.self) { try convLayer(five, "s2d", sharedRuntime) } // space-to-depth: stride >= 2
        let big = ConvCase(n: 1, c: 3, oc: 4, h: 30, w: 30, kh: 11, kw: 11, ph: 2, pw: 2, stride: 3)
        #expect(throws: PlyError.self) { try convLayer(big, "s2d", sharedRuntime) } // and a kernel of at most 3S
        #expect(throws: PlyError.self) { try convLayer(five, "pointwise", sharedRuntime) } // 1x1 only
        let padded = ConvCase(n: 1, c: 4, oc: 4, h: 9, w: 9, kh: 1, kw: 1, ph: 1, pw: 1)
        #expect(throws: PlyError.self) { try convLayer(padded, "pointwise", sharedRuntime) } // and no padding
        #expect(throws: PlyError.self) { try convLayer(five, "panels", sharedRuntime) } // 3x3 only
        let stride3 = ConvCase(n: 1, c: 4, oc: 4, h: 9, w: 9, kh: 3, kw: 3, ph: 1, pw: 1, stride: 3)
        #expect(throws: PlyError.self) { try convLayer(stride3, "panels", sharedRuntime) } // and stride 1 or 2
    }

    /// Below the AVX-512 level the algorithms with AVX-512 kernels only are refused, on layers
    /// they would otherwise fit, with a message naming the algorithm and the CPU level; below AVX2
    /// "direct" and "pointwise" too (they have AVX2 kernels: conv_direct_avx2.c, conv_1x1_avx2.c).
    @Test(.disabled(if: avx512Kernels, "the AVX-512 kernels run here"))
    func forcedAVX512AlgorithmsNameTheCPULevel() throws {
        var cases = [("winograd", ConvCase(n: 1, c: 16, oc: 16, h: 8, w: 8, kh: 3, kw: 3, ph: 1, pw: 1)),
                     ("s2d", ConvCase(n: 1, c: 3, oc: 4, h: 30, w: 30, kh: 5, kw: 5, ph: 2, pw: 2, stride: 2)),
                     ("panels", ConvCase(n: 1, c: 16, oc: 32, h: 7, w: 7, kh: 3, kw: 3, ph: 1, pw: 1))]
        if !avx2Kernels {
            cases.append(("direct", ConvCase(n: 1, c: 2, oc: 4, h: 6, w: 6, kh: 3, kw: 3, ph: 1, pw: 1)))
            cases.append(("pointwise", ConvCase(n: 1, c: 16, oc: 16, h: 8, w: 8, kh: 1, kw: 1, ph: 0, pw: 0)))
        }
        for (algorithm, k) in cases {
            let error = try #require(throws: PlyError.self) { try convLayer(k, algorithm, sharedRuntime) }
            guard case let .layer(_, _, _, message) = error else {
                Issue.record("\(algorithm): not a layer error: \(error)")
                continue
            }
            #expect(message.contains("\"\(algorithm)\"") && message.contains("AVX-512") && message.contains(cpuLevel),
                    "\(algorithm): \(message)")
        }
    }

    /// The small linear path, the sgemm one (a large layer), the few-rows forward (1 to 8 rows,
    /// linear_gemv.c: blocks of 4 weight rows, two passes over them from 5 rows on, masked tails
    /// where in_features is not a multiple of the vector) and the 9-to-32-rows one above the small
    /// path's 2^24 multiply-adds (linear_rows.c: one vector of inputs up to 16 rows, two above;
    /// groups of 128 features with a part-filled last block of rows; on AVX2 blocks of 6 rows up
    /// to 16 inputs and 2 above, 32 inputs filling both vectors) against double precision.
    @Test(arguments: [(128, 784, 10), (1, 1, 1), (3, 17, 5), (7, 33, 64), (1, 4100, 4100), (2, 37, 9), (2, 1000, 70), (1, 48, 3),
                      (4, 300, 33), (5, 1001, 67), (6, 16, 5), (8, 2050, 129), (3, 100, 4097), (16, 1030, 1100),
                      (20, 1000, 900), (32, 700, 901)])
    func linearMatchesDoublePrecision(_ size: (Int, Int, Int)) throws {
        let (m, inF, outF) = size
        for runtime in [sharedRuntime, KernelTests.threaded] {
            let layer = try Layer("linear", [("in_features", .int(inF)), ("out_features", .int(outF))], runtime: runtime)
            var g = SplitMix64(seed: UInt64(m + inF + outF))
            let x = try Tensor(shape: [m, inF], data: random(m * inF, &g))
            let w = try layer.parameters[0].read(), b = try layer.parameters[1].read()
            let y = try layer.forward([x])
            var ref = [Float](repeating: 0, count: m * outF)
            for i in 0..<m { for o in 0..<outF {
                var s = Double(b[o])
                for k in 0..<inF { s += Double(x.data[i * inF + k]) * Double(w[o * inF + k]) }
                ref[i * outF + o] = Float(s)
            } }
            let c = closeness(y.data, ref)
            #expect(c.ok, "\(size): forward max error \(c.error)")
            let dy = try Tensor(shape: y.shape, data: random(m * outF, &g))
            let dx = try layer.backward(inputs: [x], output: y, gradOutput: dy)[0]!
            var refDx = [Float](repeating: 0, count: m * inF), refDw = [Float](repeating: 0, count: outF * inF)
            for i in 0..<m { for k in 0..<inF {
                var s = 0.0
                for o in 0..<outF { s += Double(dy.data[i * outF + o]) * Double(w[o * inF + k]) }
                refDx[i * inF + k] = Float(s)
            } }
            for o in 0..<outF { for k in 0..<inF {
                var s = 0.0
                for i in 0..<m { s += Double(dy.data[i * outF + o]) * Double(x.data[i * inF + k]) }
                refDw[o * inF + k] = Float(s)
            } }
            #expect(closeness(dx.data, refDx).ok, "\(size): grad_input")
            #expect(closeness(Array(try layer.parameters[0].gradient!), refDw).ok, "\(size): grad_weight")
        }
    }

    /// Element-wise activations split over threads give exactly the one-thread result.
    @Test(arguments: ["relu", "tanh", "sigmoid"])
    func threadedActivationsAreExact(_ type: String) throws {
        var g = SplitMix64(seed: 3)
        let count = 3 * 65_536 + 17
        var data = random(count, &g)
        data[5] = .nan; data[count - 1] = -.infinity
        let x = try Tensor(shape: [count], data: data)
        let one = try Layer(type, [], runtime: sharedRuntime), three = try Layer(type, [], runtime: KernelTests.threaded)
        var serial = Runtime.Options()
        serial.threads = 1
        let single = try Layer(type, [], runtime: try Runtime(options: serial))
        let y = try single.forward([x]), y1 = try one.forward([x]), y3 = try three.forward([x])
        let same = { (a: [Float], b: [Float]) in zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) } }
        #expect(same(y.data, y1.data) && same(y.data, y3.data))
        let dy = try Tensor(shape: [count], data: random(count, &g))
        let d = try single.backward(inputs: [x], output: y, gradOutput: dy)[0]!
        let d3 = try three.backward(inputs: [x], output: y3, gradOutput: dy)[0]!
        #expect(same(d.data, d3.data))
    }

    /// Several threads using one runtime's parallel_for at once (the pool serves one and the
    /// others fall back) all get correct results.
    @Test func concurrentParallelForCallers() async throws {
        let k = ConvCase(n: 16, c: 8, oc: 16, h: 14, w: 14, kh: 3, kw: 3, ph: 1, pw: 1)
        let reference = try convLayer(k, "im2col", KernelTests.threaded)
        var g = SplitMix64(seed: 11)
        let x = try Tensor(shape: [k.n, k.c, k.h, k.w], data: random(k.n * k.c * k.h * k.w, &g))
        let weights = try reference.parameters.map { $0.read() }
        let expected = try reference.forward([x]).data
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let layer = try self.convLayer(k, "auto", KernelTests.threaded)
                    for (p, w) in zip(try layer.parameters, weights) { try p.write(w) }
                    var ok = true
                    for _ in 0..<20 {
                        let y = try layer.forward([x])
                        if !closeness(y.data, expected).ok { ok = false }
                    }
                    return ok
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
