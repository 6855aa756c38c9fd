import Foundation
import Testing
@testable import Ply

/// conv2d's im2col plans (Plugins/Conv/conv_gemm.c), with the AVX-512 kernel ("im2col") and
/// with OpenBLAS only ("blas"), and the live-tap plan of small planes (Plugins/Conv/conv_taps.c,
/// "taps"), against a double-precision convolution: every plan (forward "columns" with tiles
/// inside one image or spanning several, forward "rows", backward "rows" and "images" with
/// per-thread partial gradients; live-tap groups of every shape, positions with no live tap;
/// Winograd F(2x2, 3x3)'s and F(4x4, 3x3)'s "rows", "ranges" and "columns" plans, odd sizes, wide padding, and
/// their input and weight gradients; strided layers
/// folded by space-to-depth into Winograd's, "s2d"; unpadded 1x1 layers as a product on the input, "pointwise";
/// 3x3 layers of stride 1 and 2 by the direct kernel vectorised over output channels, "panels")
/// on 1, 2 and 3 threads, forward and three accumulating backward passes.
@Suite struct ConvGemmTests {
    static let runtimes: [Runtime] = [1, 2, 3].map { threads in
        var options = Runtime.Options()
        options.threads = threads
        do { return try Runtime(options: options) } catch { fatalError("cannot create a test runtime: \(error)") }
    }

    struct Case: CustomStringConvertible, Sendable {
        var n, c, oc, h, w, k: Int
        var stride = 1, pad = 0
        var bias = true
        var description: String { "N\(n) C\(c)->\(oc) \(h)x\(w) k\(k) s\(stride) p\(pad)\(bias ? "" : " no-bias")" }
    }

    static let cases: [Case] = [
        Case(n: 1, c: 64, oc: 64, h: 7, w: 7, k: 3, pad: 1),                 // forward "rows" (batch 1, few columns)
        Case(n: 5, c: 8, oc: 16, h: 3, w: 3, k: 3, pad: 1, bias: false),     // one part: too few columns to split
        Case(n: 40, c: 3, oc: 8, h: 4, w: 4, k: 3, pad: 1),                  // tiles spanning images
        Case(n: 3, c: 4, oc: 5, h: 20, w: 20, k: 3, pad: 1),                 // tiles cut at image boundaries
        Case(n: 6, c: 16, oc: 8, h: 9, w: 9, k: 1),                          // pointwise, tiles in one image
        Case(n: 50, c: 4, oc: 4, h: 3, w: 3, k: 1),                          // pointwise, tiles spanning images
        Case(n: 4, c: 5, oc: 7, h: 11, w: 13, k: 3, stride: 2, pad: 1),      // strided
        Case(n: 9, c: 6, oc: 10, h: 7, w: 6, k: 1, stride: 2, bias: false),  // ResNet's downsample shape
        Case(n: 2, c: 512, oc: 4, h: 3, w: 3, k: 3, pad: 1),                 // K = 4608: the narrowest tiles
        Case(n: 3, c: 40, oc: 24, h: 2, w: 2, k: 3, pad: 1),                 // taps: 2x2 plane (ResNet-18's layer3 at
                                                                             // 32x32), weights by permutes + a part block
        Case(n: 2, c: 32, oc: 20, h: 4, w: 4, k: 3, stride: 2, pad: 1, bias: false), // taps of 4, 6, 6 and 9 (layer3.0.conv1)
        Case(n: 2, c: 1, oc: 2, h: 70, w: 70, k: 3, pad: 1),                 // several tiles per image
        Case(n: 3, c: 2, oc: 3, h: 5, w: 8, k: 5, pad: 4),                   // padding wider than half the kernel
        Case(n: 20, c: 32, oc: 40, h: 2, w: 2, k: 3, pad: 1),                // ResNet's 2x2 stage: 4 taps of 9
        Case(n: 17, c: 24, oc: 33, h: 1, w: 1, k: 3, pad: 1),                // ResNet's 1x1 stage: the centre tap
        Case(n: 16, c: 8, oc: 16, h: 2, w: 2, k: 3, stride: 2, pad: 1),      // 2x2 -> 1x1, strided
        Case(n: 7, c: 5, oc: 9, h: 4, w: 3, k: 3, pad: 1, bias: false),      // 3 x 3 groups of 1, 2 and 4 positions
        // the training products' kernel (conv_kernel_product) past one block of 256 k, on part-filled blocks of
        // rows and strips: the input gradient's over 300 output channels (A read by columns, 5 rows), the weight
        // gradient's over 300 images, im2col's input gradient over 270 output channels
        Case(n: 5, c: 6, oc: 300, h: 2, w: 2, k: 3, pad: 1),
        Case(n: 300, c: 7, oc: 9, h: 1, w: 1, k: 3, pad: 1, bias: false),
        Case(n: 2, c: 3, oc: 270, h: 6, w: 5, k: 3, stride: 2, pad: 1),
        Case(n: 3, c: 2, oc: 3, h: 3, w: 3, k: 1, pad: 1),                   // border positions see no input: bias only
        Case(n: 3, c: 20, oc: 24, h: 30, w: 31, k: 3, pad: 1),               // Winograd: many strips, an odd width
        Case(n: 2, c: 17, oc: 19, h: 9, w: 10, k: 3, bias: false),           // Winograd: no padding, an odd height
        Case(n: 1, c: 16, oc: 40, h: 37, w: 5, k: 3, pad: 1),                // Winograd: 3 tiles a row, strips across rows
        Case(n: 2, c: 3, oc: 5, h: 6, w: 7, k: 3, pad: 2),                   // Winograd: padding 2
        // Winograd F(2x2)'s "ranges" on 2 threads: 7 strips of 32 tiles (the last of 4), too many
        // channels for "rows" to stay within a thread's chunk: each thread a range of whole strips
        Case(n: 1, c: 80, oc: 16, h: 28, w: 27, k: 3, pad: 1),
        // Winograd's input gradient (conv_winograd_backward.c): F(4x4) on ResNet-18's layer1 shape
        // (fewer channels), F(2x2) with the gradient's padding 2 (a layer without padding), and the
        // training rule that takes Winograd over the live taps on a 4x4 plane (through "auto")
        Case(n: 8, c: 16, oc: 24, h: 8, w: 8, k: 3, pad: 1),
        Case(n: 4, c: 16, oc: 16, h: 10, w: 10, k: 3, bias: false),
        Case(n: 16, c: 16, oc: 16, h: 4, w: 4, k: 3, pad: 1),
        // Winograd's weight gradient (conv_winograd_wgrad.c) beyond the cases above: two chunks of tiles
        // gathered across tile rows with an odd height; 4x4 planes, four images a vector, the last
        // vector of two; 7x7 planes with channel counts not multiples of 16
        Case(n: 9, c: 16, oc: 16, h: 15, w: 16, k: 3, pad: 1),
        Case(n: 18, c: 16, oc: 16, h: 4, w: 4, k: 3, pad: 1, bias: false),
        Case(n: 5, c: 17, oc: 18, h: 7, w: 7, k: 3, pad: 1),
        Case(n: 1, c: 3, oc: 16, h: 35, w: 37, k: 11, stride: 4, pad: 2),    // space-to-depth: AlexNet's stem, smaller
        Case(n: 1, c: 1, oc: 16, h: 64, w: 61, k: 11, stride: 4, pad: 2),    // space-to-depth chosen by "auto"
        Case(n: 2, c: 2, oc: 5, h: 13, w: 12, k: 5, stride: 2, pad: 1),      // space-to-depth: 5x5 stride 2, odd sizes
        Case(n: 1, c: 2, oc: 3, h: 20, w: 17, k: 7, stride: 3, pad: 3, bias: false), // stride 3, pixels past the last window
        Case(n: 2, c: 3, oc: 16, h: 70, w: 75, k: 7, stride: 2, pad: 3),    // ResNet's stem, smaller: stride-2 strips of 32 lanes
        Case(n: 1, c: 40, oc: 30, h: 7, w: 7, k: 1),                        // pointwise: 49 = 32 + 16 + a dot-product tail
        Case(n: 1, c: 300, oc: 13, h: 30, w: 30, k: 1, bias: false),        // pointwise: a large plane, K in blocks
        Case(n: 2, c: 20, oc: 26, h: 14, w: 15, k: 1, stride: 2),           // pointwise strided: subsampled, tail of 8
        Case(n: 3, c: 24, oc: 20, h: 14, w: 15, k: 1),                      // pointwise: 210 = 6*32 + 16 + a tail of 2
        Case(n: 1, c: 40, oc: 50, h: 7, w: 7, k: 3, pad: 1),                 // panels: 40 = 16 + 16 + 8 channels, 2 panels, the second part-filled
        Case(n: 2, c: 17, oc: 33, h: 13, w: 11, k: 3, stride: 2, pad: 1),    // panels strided: odd sizes, rows of 6 = 6
        Case(n: 1, c: 16, oc: 96, h: 10, w: 17, k: 3, bias: false),          // panels: no padding, rows of 15 = 7 + 7 + 1
        // stride 2 through im2col's contiguous loads and even-lane permute: rows of 35 outputs (a
        // strip's second half live, rows across strips) and a 7x7 stem with padding 3
        Case(n: 2, c: 3, oc: 9, h: 9, w: 70, k: 3, stride: 2, pad: 1),
        Case(n: 2, c: 3, oc: 8, h: 20, w: 45, k: 7, stride: 2, pad: 3, bias: false),
    ]

    /// y[n][o][i][j] = b[o] + sum w[o][c][p][q] x[n][c][i*s-pad+p][j*s-pad+q], and its adjoints, in Double.
    struct Reference {
        var y: [Double], dx: [Double], dw: [Double], db: [Double]
        init(_ k: Case, x: [Float], w: [Float], b: [Float], dy: [Float]) {
            let oh = (k.h + 2 * k.pad - k.k) / k.stride + 1, ow = (k.w + 2 * k.pad - k.k) / k.stride + 1
            y = Array(repeating: 0, count: k.n * k.oc * oh * ow)
            dx = Array(repeating: 0, count: x.count)
            dw = Array(repeating: 0, count: w.count)
            db = Array(repeating: 0, count: k.oc)
            for n in 0..<k.n {
                for o in 0..<k.oc {
                    for i in 0..<oh {
                        for j in 0..<ow {
                            let yi = ((n * k.oc + o) * oh + i) * ow + j
                            var s = k.bias ? Double(b[o]) : 0
                            let g = Double(dy[yi])
                            db[o] += g
                            for c in 0..<k.c {
                                for p in 0..<k.k {
                                    let ih = i * k.stride - k.pad + p
                                    guard ih >= 0 && ih < k.h else { continue }
                                    for q in 0..<k.k {
                                        let iw = j * k.stride - k.pad + q
                                        guard iw >= 0 && iw < k.w else { continue }
                                        let xi = ((n * k.c + c) * k.h + ih) * k.w + iw
                                        let wi = ((o * k.c + c) * k.k + p) * k.k + q
                                        s += Double(w[wi]) * Double(x[xi])
                                        dx[xi] += Double(w[wi]) * g
                                        dw[wi] += Double(x[xi]) * g
                                    }
                                }
                            }
                            y[yi] = s
                        }
                    }
                }
            }
        }
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    @Test(arguments: cases)
    func im2colPlansMatchDoublePrecision(_ k: Case) throws {
        var g = SplitMix64(seed: UInt64(k.n * 7919 + k.c * 131 + k.oc * 17 + k.h))
        let x = random(k.n * k.c * k.h * k.w, &g), w = random(k.oc * k.c * k.k * k.k, &g), b = random(k.oc, &g)
        let oh = (k.h + 2 * k.pad - k.k) / k.stride + 1, ow = (k.w + 2 * k.pad - k.k) / k.stride + 1
        let dy = random(k.n * k.oc * oh * ow, &g)
        let ref = Reference(k, x: x, w: w, b: b, dy: dy)
        let xt = try Tensor(shape: [k.n, k.c, k.h, k.w], data: x)
        let dyt = try Tensor(shape: [k.n, k.oc, oh, ow], data: dy)
        // workspace_mb 0 sends the backward through the "images" plan, 32 (the default) through "rows".
        for runtime in ConvGemmTests.runtimes {
            var algorithms = [("im2col", 32), ("im2col", 0), ("blas", 32)]
            if oh <= 16 && ow <= 16 { algorithms.append(("taps", 32)) }
            // Winograd's and space-to-depth's kernels are AVX-512 only: below that level forcing them is
            // refused (KernelTests.forcedAVX512AlgorithmsNameTheCPULevel)
            if avx512Kernels && k.k == 3 && k.stride == 1 {
                algorithms += [("winograd", 32), ("winograd2", 32), ("winograd4", 32)] // the tile "auto" picks, F(2x2), F(4x4)
                // F(6x6) rounds ~5x more than F(4x4): within the bound up to ~128 input channels, which is
                // as far as conv_winograd_tile takes it
                if k.c <= 128 { algorithms.append(("winograd6", 32)) }
            }
            if avx512Kernels && k.stride >= 2 && k.k <= 3 * k.stride { algorithms.append(("s2d", 32)) } // (likewise)
            if avx2Kernels && k.k == 1 && k.pad == 0 { algorithms.append(("pointwise", 32)) } // (AVX2 too)
            if avx512Kernels && k.k == 3 && k.stride <= 2 { algorithms.append(("panels", 32)) } // (likewise)
            // (and where evaluation takes "panels": pass 3's forward below)
            if k.k == 11 || (k.k == 3 && k.n >= 4 && k.c >= 16) || (k.k == 3 && k.c >= 16 && k.oc >= 32) {
                algorithms.append(("auto", 32))
            }
            for (algorithm, workspace) in algorithms {
                let label = "\(k), \(algorithm), \(runtime.threads) threads, workspace \(workspace) MB"
                let conv = try Layer("conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)),
                                                ("kernel_size", .int(k.k)), ("stride", .int(k.stride)),
                                                ("padding", .int(k.pad)), ("bias", .bool(k.bias)),
                                                ("algorithm", .string(algorithm.hasPrefix("winograd") ? "winograd" : algorithm)),
                                                ("winograd_tile", .int(Int(algorithm.dropFirst(8)) ?? 0)),
                                                ("workspace_mb", .int(workspace))],
                                     runtime: runtime)
                let params = try conv.parameters
                try params[0].write(w)
                if k.bias { try params[1].write(b) }
                let y = try conv.forward([xt])
                let fwd = closeness(y.data, ref.y.map(Float.init))
                #expect(fwd.ok, "\(label): forward max error \(fwd.error) > \(fwd.bound)")
                // passes 1 and 2 follow a training forward (the live-tap plan reuses its gathers), pass 3
                // an evaluation-mode one (nothing kept: the backward gathers itself; "auto" may take
                // "panels" there)
                for pass in 1...3 {
                    if pass == 3 {
                        conv.setTraining(false)
                        let ye = try conv.forward([xt])
                        let e = closeness(ye.data, ref.y.map(Float.init))
                        #expect(e.ok, "\(label): evaluation forward max error \(e.error) > \(e.bound)")
                    }
                    try expectConvBackward(conv, params, x: xt, y: y, dy: dyt, dx: ref.dx, dw: ref.dw,
                                           db: k.bias ? ref.db : nil, pass: pass, label)
                }
            }
        }
    }

    @Test func workspaceMustBeSane() throws {
        #expect(throws: (any Error).self) {
            _ = try Layer("conv2d", [("in_channels", .int(1)), ("out_channels", .int(1)), ("kernel_size", .int(1)),
                                     ("workspace_mb", .int(-1))], runtime: sharedRuntime)
        }
    }
}
