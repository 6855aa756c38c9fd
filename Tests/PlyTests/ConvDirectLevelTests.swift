import Foundation
import Testing
@testable import Ply

/// The direct kernels (Plugins/Conv/conv_direct.c, at the AVX2 level conv_direct_avx2.c) against the im2col
/// plan on odd shapes: 1, 3 and 8 input channels; 1, 5, 8, 16 and 19 output channels (the packed blocks of 8,
/// 4, 2 and 1 and the 64-position span); 3x3 and 5x5 kernels with "same" padding (the weight gradient reading
/// the input gradient's padded copy) and other padding; rows that are not a multiple of 8 or 16 (the masked
/// tails); batches of 1 and 3 (one chunk per thread, uneven); a fused relu or none. Forward, input gradient,
/// weight and bias gradients within `closeness`'s bound, on 1 and 3 threads; and on the ConvNet's layers
/// "auto" gives the direct kernels' bits (so it runs them: im2col rounds otherwise).
@Suite(.enabled(if: avx2Kernels, "forces algorithm \"direct\", whose kernels are AVX-512 and AVX2 only"))
struct ConvDirectLevelTests {
    struct Case: CustomStringConvertible, Sendable {
        var c, oc, k, pad, h, w: Int
        var description: String { "C\(c)->\(oc) k\(k) pad \(pad) \(h)x\(w)" }
    }

    static let cases: [Case] = {
        var cases: [Case] = []
        var i = 0
        for c in [1, 3, 8] {
            for oc in [1, 5, 8, 16, 19] {
                for k in [3, 5] {
                    // "same" padding on two cases of three, else 0 or k - 1; widths 9, 13, 21 and 30
                    let pad = i % 3 == 2 ? (i % 2 == 0 ? 0 : k - 1) : k / 2
                    cases.append(Case(c: c, oc: oc, k: k, pad: pad, h: [7, 11, 6][i % 3], w: [9, 13, 21, 30][i % 4]))
                    i += 1
                }
            }
        }
        return cases
    }()

    static let runtimes: [Runtime] = [1, 3].map { threads in
        var options = Runtime.Options()
        options.threads = threads
        do { return try Runtime(options: options) } catch { fatalError("cannot create the test runtime: \(error)") }
    }

    /// conv2d (algorithm `algorithm`) then, with `relu`, a relu fused into it.
    func model(_ k: Case, _ algorithm: String, relu: Bool, _ runtime: Runtime) throws -> Model {
        let m = Model(runtime: runtime)
        try m.add("conv", "conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)), ("kernel_size", .int(k.k)),
                                     ("padding", .int(k.pad)), ("algorithm", .string(algorithm))])
        if relu {
            try m.add("relu", "relu")
            #expect(m.fuseActivations() == 1)
        }
        return m
    }

    struct Run { var y, dx: [Float]; var grads: [(String, [Float])] }

    /// One forward and backward of `m` with parameters, input and output gradient drawn from `seed`.
    func run(_ m: Model, _ k: Case, batch: Int, seed: UInt64) throws -> Run {
        var g = SplitMix64(seed: seed)
        for (_, p) in try m.namedParameters() where p.floats != nil {
            try p.write((0..<p.shape.count).map { _ in g.nextUnitFloat() - 0.5 })
        }
        let x = (0..<(batch * k.c * k.h * k.w)).map { _ in g.nextUnitFloat() * 2 - 1 }
        let y = Array(try x.withUnsafeBufferPointer { try m.forward($0, shape: Shape([batch, k.c, k.h, k.w])) })
        let dy = (0..<y.count).map { _ in g.nextUnitFloat() * 2 - 1 }
        let dx = Array(try dy.withUnsafeBufferPointer { try m.backward($0, inputGradient: true) }!)
        let grads = try m.namedParameters().compactMap { item in item.parameter.gradient.map { (item.name, Array($0)) } }
        return Run(y: y, dx: dx, grads: grads)
    }

    @Test(arguments: cases)
    func directMatchesIm2col(_ k: Case) throws {
        for runtime in ConvDirectLevelTests.runtimes {
            for batch in [1, 3] {
                for relu in [false, true] {
                    let label = "\(k), batch \(batch), relu \(relu), \(runtime.threads) threads"
                    let seed = UInt64(k.c * 1000 + k.oc * 10 + k.k + batch)
                    let ref = try run(model(k, "im2col", relu: relu, runtime), k, batch: batch, seed: seed)
                    let got = try run(model(k, "direct", relu: relu, runtime), k, batch: batch, seed: seed)
                    let y = closeness(got.y, ref.y), dx = closeness(got.dx, ref.dx)
                    #expect(y.ok, "\(label): forward max error \(y.error) > \(y.bound)")
                    #expect(dx.ok, "\(label): input gradient max error \(dx.error) > \(dx.bound)")
                    #expect(got.grads.count == ref.grads.count && got.grads.count == 2, "\(label): weight and bias gradients")
                    for ((name, a), (_, b)) in zip(got.grads, ref.grads) {
                        let e = closeness(a, b)
                        #expect(e.ok, "\(label): gradient of \(name) max error \(e.error) > \(e.bound)")
                    }
                }
            }
        }
    }

    /// An infinity in the input's first or last column (which the lanes past a row's end read, masked) reaches
    /// exactly the outputs and gradients it reaches in the im2col plan.
    @Test(arguments: cases)
    func infinityReachesWhatIm2colReaches(_ k: Case) throws {
        let runtime = ConvDirectLevelTests.runtimes[0]
        for (row, col) in [(0, k.w - 1), (k.h / 2, k.w - 1), (k.h - 1, 0), (k.h / 2, 0)] {
            var g = SplitMix64(seed: UInt64(k.c * 100 + k.oc + row))
            let ref = try model(k, "im2col", relu: false, runtime), fast = try model(k, "direct", relu: false, runtime)
            for ((_, p), (_, q)) in zip(try ref.namedParameters(), try fast.namedParameters()) where p.floats != nil {
                let values = (0..<p.shape.count).map { _ in g.nextUnitFloat() - 0.5 }
                try p.write(values)
                try q.write(values)
            }
            var x = (0..<(k.c * k.h * k.w)).map { _ in g.nextUnitFloat() * 2 - 1 }
            x[(k.c - 1) * k.h * k.w + row * k.w + col] = .infinity
            let shape = Shape([1, k.c, k.h, k.w])
            let y0 = Array(try x.withUnsafeBufferPointer { try ref.forward($0, shape: shape) })
            let y1 = Array(try x.withUnsafeBufferPointer { try fast.forward($0, shape: shape) })
            let dy = (0..<y0.count).map { _ in g.nextUnitFloat() * 2 - 1 }
            _ = try dy.withUnsafeBufferPointer { try ref.backward($0, inputGradient: true) }
            _ = try dy.withUnsafeBufferPointer { try fast.backward($0, inputGradient: true) }
            let finite = { (a: [Float]) in a.map { $0.isFinite } }
            #expect(finite(y0) == finite(y1), "\(k), inf at (\(row), \(col)): forward")
            for ((name, p), (_, q)) in zip(try ref.namedParameters(), try fast.namedParameters()) {
                #expect(finite(Array(p.gradient!)) == finite(Array(q.gradient!)), "\(k), inf at (\(row), \(col)): \(name)")
            }
        }
    }

    /// The ConvNet's conv_1 and conv_2 (relu fused): "auto" runs the direct kernels here, so its forward and
    /// gradients are the forced "direct" plan's, bit for bit.
    @Test(arguments: [Case(c: 1, oc: 8, k: 3, pad: 1, h: 28, w: 28), Case(c: 8, oc: 16, k: 3, pad: 1, h: 14, w: 14)])
    func autoTakesTheDirectKernels(_ k: Case) throws {
        for runtime in ConvDirectLevelTests.runtimes {
            let auto = try run(model(k, "auto", relu: true, runtime), k, batch: 5, seed: 3)
            let direct = try run(model(k, "direct", relu: true, runtime), k, batch: 5, seed: 3)
            #expect(auto.y == direct.y && auto.dx == direct.dx, "\(k), \(runtime.threads) threads")
            for ((name, a), (_, b)) in zip(auto.grads, direct.grads) { #expect(a == b, "\(k): gradient of \(name)") }
        }
    }
}
