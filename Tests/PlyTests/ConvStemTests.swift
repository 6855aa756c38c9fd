import Foundation
import Testing
@testable import Ply

/// conv2d's "stem" kernel (Plugins/Conv/conv_stem.c: first layers with at most 4 input channels and
/// kernels of 5x5 and more or 3x3 of stride 2, direct on the input split into its column phases)
/// against PyTorch's convolution in double precision (Fixtures/stem, written by make-conv-stem.py).
/// "auto" takes it in evaluation at the AVX2 and AVX-512 levels (for 3x3 stride-2 layers at AVX-512
/// only; im2col + GEMM on the portable path, and in training), on 1, 2 and 3 threads (3: the batch's
/// vectors split mid-image); against im2col at ResNet's stem geometry, before and after the weights
/// change (the kernel packs them on every call); and bit for bit against its own order of sums.
@Suite struct ConvStemTests {
    static let cases = fixtureCases("stem")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 7, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("stem", name)
        let input = try f.input, expected = try f.expected()
        for runtime in Self.runtimes.all {
            for training in [false, true] { // evaluation takes the stem kernel; training im2col's forward
                let label = "\(name), training \(training), \(runtime.threads) threads"
                let layer = try f.layer(on: runtime, training: training, label: label)
                try expectForwardsMatch(layer, input, expected, label, passes: 1)
            }
        }
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    /// ResNet's stem (3 -> 64 channels, 7x7, stride 2, padding 3) on a 2x3x64x70 batch in evaluation,
    /// "auto" against "im2col", with the relu fused, then again after new weights are written: each
    /// forward reads the weights it is given (nothing of the old ones kept).
    @Test func resnetStemMatchesIm2colAndFollowsNewWeights() throws {
        let (n, c, oc, h, w) = (2, 3, 64, 64, 70)
        for runtime in [sharedRuntime, Self.runtimes.two] {
            func make(_ algorithm: String) throws -> Layer {
                let layer = try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)),
                                                 ("kernel_size", .int(7)), ("stride", .int(2)), ("padding", .int(3)),
                                                 ("algorithm", .string(algorithm))], runtime: runtime)
                layer.setTraining(false)
                #expect(layer.fuseActivation("relu"), "conv2d fuses the relu")
                return layer
            }
            let fast = try make("auto"), reference = try make("im2col")
            var g = SplitMix64(seed: 97)
            let x = try Tensor(shape: [n, c, h, w], data: random(n * c * h * w, &g))
            for round in 1...2 {
                for p in try fast.parameters { try p.write(random(p.shape.count, &g)) }
                for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
                let y = try fast.forward([x]), ref = try reference.forward([x])
                #expect(y.shape == [n, oc, 32, 35], "\(y.shape)")
                #expect(y.data.allSatisfy { $0 >= 0 }, "round \(round): the fused relu")
                let close = closeness(y.data, ref.data)
                #expect(close.ok, "round \(round), \(runtime.threads) threads: max error \(close.error) > \(close.bound)")
            }
        }
    }

    /// The stem kernel's sums, in its order: per output the taps (c, kh, kw) in order, each a fused
    /// multiply-add into one accumulator from 0, then + bias, then the relu. Both levels' tiles sum so
    /// (16 or 8 lanes, one output per lane), and im2col's product does not (the bias first there), so
    /// "auto" matching this bit for bit shows that it runs the stem kernel, at AVX2 as at AVX-512.
    func stemOrder(_ x: [Float], _ w: [Float], _ b: [Float], n: Int, c: Int, h: Int, wd: Int, oc: Int, k: Int,
                   stride: Int, pad: Int) -> [Float] {
        let oh = (h + 2 * pad - k) / stride + 1, ow = (wd + 2 * pad - k) / stride + 1
        var y = [Float](repeating: 0, count: n * oc * oh * ow)
        for i in 0..<n { for o in 0..<oc { for r in 0..<oh { for q in 0..<ow {
            var acc: Float = 0
            for ci in 0..<c { for kh in 0..<k { for kw in 0..<k {
                let yy = r * stride + kh - pad, xx = q * stride + kw - pad
                let v: Float = yy >= 0 && yy < h && xx >= 0 && xx < wd ? x[((i * c + ci) * h + yy) * wd + xx] : 0
                acc = acc.addingProduct(w[((o * c + ci) * k + kh) * k + kw], v)
            } } }
            let s = acc + b[o]
            y[((i * oc + o) * oh + r) * ow + q] = s > 0 ? s : 0
        } } } }
        return y
    }

    /// At the AVX2 and AVX-512 levels "auto" runs 7x7 and 5x5 first layers of stride 2 on the stem kernel (at
    /// stride 1 the direct few-channel kernels come first): ResNet's stem geometry and a 5x5, outputs of 35
    /// and 10 columns (rows that end in part-filled vectors);
    /// 20 output channels: a last block of 2 rows of 6 at AVX2, 8 of 12 at AVX-512), on 1 and 2 threads.
    @Test(.enabled(if: avx2Kernels, "the stem kernel runs at the AVX2 and AVX-512 levels"),
          arguments: [(7, 2, 3, 70), (5, 2, 2, 20)])
    func autoRunsTheStemKernelBitForBit(_ geometry: (Int, Int, Int, Int)) throws {
        let (k, stride, pad, wd) = geometry
        let (n, c, oc, h) = (2, 3, 20, 23)
        for runtime in [sharedRuntime, Self.runtimes.two] {
            let layer = try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(k)),
                                             ("stride", .int(stride)), ("padding", .int(pad))], runtime: runtime)
            layer.setTraining(false)
            #expect(layer.fuseActivation("relu"), "conv2d fuses the relu")
            var g = SplitMix64(seed: 41)
            for p in try layer.parameters { try p.write(random(p.shape.count, &g)) }
            let params = try layer.parameters.map { try $0.read() }
            let x = try Tensor(shape: [n, c, h, wd], data: random(n * c * h * wd, &g))
            let y = try layer.forward([x])
            let expected = stemOrder(x.data, params[0], params[1], n: n, c: c, h: h, wd: wd, oc: oc, k: k, stride: stride,
                                     pad: pad)
            let differ = zip(y.data, expected).filter { $0 != $1 }.count
            let worst = zip(y.data, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(y.shape == [n, oc, (h + 2 * pad - k) / stride + 1, (wd + 2 * pad - k) / stride + 1], "\(y.shape)")
            #expect(differ == 0, "\(k)x\(k) stride \(stride), \(runtime.threads) threads: \(differ) of \(expected.count) outputs differ from the stem kernel's sums (by up to \(worst))")
        }
    }
}
