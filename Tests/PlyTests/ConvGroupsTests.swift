import Foundation
import Testing
@testable import Ply

/// conv2d's groups and dilation (Plugins/Conv/conv_depthwise.c, and conv_gemm.c once per group)
/// against a double-precision convolution: depthwise with and without a channel multiplier,
/// grouped, dilated, strided and padded every way, through "auto", "im2col" (with the
/// "images" and "rows" backward plans), "blas" and "depthwise", on 1, 2 and 3 threads, forward
/// and two accumulating backward passes (with a fused relu too). PyTorch's own numbers are the
/// golden cases (Fixtures/golden/layers/conv2d_{depthwise,groups,dilation}*.json).
@Suite struct ConvGroupsTests {
    struct Case: CustomStringConvertible, Sendable {
        var n, c, oc, h, w: Int
        var kh, kw: Int
        var sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1
        var bias = true
        var oh: Int { (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1 }
        var ow: Int { (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1 }
        var description: String {
            "N\(n) C\(c)->\(oc) \(h)x\(w) k\(kh)x\(kw) s\(sh)x\(sw) p\(ph)x\(pw) d\(dh)x\(dw) g\(groups)\(bias ? "" : " no-bias")"
        }
    }

    static let cases: [Case] = [
        Case(n: 2, c: 16, oc: 16, h: 14, w: 14, kh: 3, kw: 3, ph: 1, pw: 1, groups: 16),              // MobileNet's depthwise
        Case(n: 3, c: 8, oc: 8, h: 15, w: 13, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, groups: 8),    // strided, odd sizes
        Case(n: 2, c: 5, oc: 15, h: 7, w: 7, kh: 3, kw: 3, ph: 1, pw: 1, groups: 5, bias: false),      // channel multiplier 3
        Case(n: 1, c: 4, oc: 8, h: 12, w: 11, kh: 5, kw: 3, sh: 3, sw: 2, ph: 2, pw: 3, dh: 2, dw: 3, groups: 4), // everything
        Case(n: 2, c: 3, oc: 3, h: 40, w: 37, kh: 3, kw: 3, ph: 0, pw: 2, groups: 3),                  // planes of many blocks
        Case(n: 1, c: 2, oc: 2, h: 6, w: 6, kh: 7, kw: 7, ph: 3, pw: 3, groups: 2),                    // 49 taps: two turns
        Case(n: 1, c: 2, oc: 4, h: 9, w: 75, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, groups: 2),      // stride-2 rows of 38: 3 vectors
        Case(n: 4, c: 3, oc: 3, h: 3, w: 3, kh: 1, kw: 1, sh: 2, sw: 2, groups: 3),                    // phases with no tap
        Case(n: 2, c: 8, oc: 16, h: 9, w: 8, kh: 3, kw: 3, ph: 1, pw: 1, groups: 4),                   // grouped, multiplier 2
        Case(n: 3, c: 6, oc: 4, h: 10, w: 9, kh: 3, kw: 3, sh: 2, sw: 1, ph: 2, pw: 2, dh: 2, dw: 2, groups: 2), // grouped + dilated
        Case(n: 2, c: 3, oc: 5, h: 11, w: 12, kh: 3, kw: 3, ph: 2, pw: 3, dh: 2, dw: 3),               // dilated (2, 3)
        Case(n: 1, c: 64, oc: 64, h: 6, w: 6, kh: 3, kw: 3, ph: 2, pw: 2, dh: 2, dw: 2, groups: 2),    // forward "rows"
        Case(n: 40, c: 4, oc: 6, h: 4, w: 4, kh: 3, kw: 3, ph: 2, pw: 2, dh: 2, dw: 2),                // tiles spanning images
        Case(n: 2, c: 4, oc: 4, h: 5, w: 5, kh: 1, kw: 1, groups: 2),                                  // pointwise groups
    ]

    /// y[n][o][i][j] = b[o] + sum w[o][c][p][q] x[n][g*C/G + c][i*sh - ph + p*dh][j*sw - pw + q*dw], g = o / (OC/G),
    /// and its adjoints, in Double.
    struct Reference {
        var y: [Double], dx: [Double], dw: [Double], db: [Double]
        init(_ k: Case, x: [Float], w: [Float], b: [Float], dy: [Float]) {
            let cg = k.c / k.groups, og = k.oc / k.groups
            y = Array(repeating: 0, count: k.n * k.oc * k.oh * k.ow)
            dx = Array(repeating: 0, count: x.count)
            dw = Array(repeating: 0, count: w.count)
            db = Array(repeating: 0, count: k.oc)
            for n in 0..<k.n {
                for o in 0..<k.oc {
                    for i in 0..<k.oh {
                        for j in 0..<k.ow {
                            let yi = ((n * k.oc + o) * k.oh + i) * k.ow + j
                            var s = k.bias ? Double(b[o]) : 0
                            let g = Double(dy[yi])
                            db[o] += g
                            for c in 0..<cg {
                                for p in 0..<k.kh {
                                    let ih = i * k.sh - k.ph + p * k.dh
                                    guard ih >= 0 && ih < k.h else { continue }
                                    for q in 0..<k.kw {
                                        let iw = j * k.sw - k.pw + q * k.dw
                                        guard iw >= 0 && iw < k.w else { continue }
                                        let xi = ((n * k.c + o / og * cg + c) * k.h + ih) * k.w + iw
                                        let wi = ((o * cg + c) * k.kh + p) * k.kw + q
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

    static func layer(_ k: Case, algorithm: String, workspace: Int = 32, runtime: Runtime) throws -> Layer {
        try Layer("conv2d", [("in_channels", .int(k.c)), ("out_channels", .int(k.oc)), ("kernel_size", .ints([k.kh, k.kw])),
                             ("stride", .ints([k.sh, k.sw])), ("padding", .ints([k.ph, k.pw])), ("dilation", .ints([k.dh, k.dw])),
                             ("groups", .int(k.groups)), ("bias", .bool(k.bias)), ("algorithm", .string(algorithm)),
                             ("workspace_mb", .int(workspace))],
                  runtime: runtime)
    }

    @Test(arguments: cases)
    func plansMatchDoublePrecision(_ k: Case) throws {
        var g = SplitMix64(seed: UInt64(k.n * 7919 + k.c * 131 + k.oc * 17 + k.h * 3 + k.groups))
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }
        let x = random(k.n * k.c * k.h * k.w), w = random(k.oc * k.c / k.groups * k.kh * k.kw), b = random(k.oc)
        let dy = random(k.n * k.oc * k.oh * k.ow)
        let ref = Reference(k, x: x, w: w, b: b, dy: dy)
        let xt = try Tensor(shape: [k.n, k.c, k.h, k.w], data: x)
        let dyt = try Tensor(shape: [k.n, k.oc, k.oh, k.ow], data: dy)
        var algorithms = [("auto", 32), ("im2col", 32), ("im2col", 0), ("blas", 32)]
        if k.groups == k.c && k.groups > 1 { algorithms.append(("depthwise", 32)) }
        for runtime in ConvGemmTests.runtimes {
            for (algorithm, workspace) in algorithms {
                let label = "\(k), \(algorithm), \(runtime.threads) threads, workspace \(workspace) MB"
                let conv = try Self.layer(k, algorithm: algorithm, workspace: workspace, runtime: runtime)
                let params = try conv.parameters
                #expect(params[0].shape == Shape([k.oc, k.c / k.groups, k.kh, k.kw]))
                try params[0].write(w)
                if k.bias { try params[1].write(b) }
                let y = try conv.forward([xt])
                #expect(y.shape == Shape([k.n, k.oc, k.oh, k.ow]))
                let fwd = closeness(y.data, ref.y.map(Float.init))
                #expect(fwd.ok, "\(label): forward max error \(fwd.error) > \(fwd.bound)")
                for pass in 1...2 {
                    try expectConvBackward(conv, params, x: xt, y: y, dy: dyt, dx: ref.dx, dw: ref.dw,
                                           db: k.bias ? ref.db : nil, pass: pass, label)
                }
            }
        }
    }

    /// A model's conv + relu is fused by the host (the relu computed in the conv's kernel, its
    /// derivative masked in the conv's backward): the same numbers as the two layers apart.
    @Test func fusedReluOnDepthwiseAndGrouped() throws {
        func model(_ fuse: Bool) throws -> Model {
            let m = try ModelFile(text: """
                layers:
                  - {name: dw, type: conv2d, in_channels: 6, out_channels: 12, kernel_size: 3, stride: 2, padding: 1, groups: 6}
                  - {name: r1, type: relu}
                  - {name: gc, type: conv2d, in_channels: 12, out_channels: 8, kernel_size: 3, padding: 2, dilation: 2, groups: 4}
                  - {name: r2, type: relu}
                  - {name: flat, type: flatten}
                """).build(runtime: sharedRuntime, inputShape: [2, 6, 9, 9])
            if fuse { #expect(m.fuseActivations() == 2) }
            return m
        }
        let fused = try model(true), apart = try model(false)
        var g = SplitMix64(seed: 3)
        for ((_, p), (_, q)) in zip(try fused.namedParameters(), try apart.namedParameters()) {
            let v = (0..<p.shape.count).map { _ in g.nextUnitFloat() - 0.5 }
            try p.write(v)
            try q.write(v)
        }
        let x = (0..<(2 * 6 * 81)).map { _ in g.nextUnitFloat() - 0.3 }
        let shape = Shape([2, 6, 9, 9])
        let a = Array(try x.withUnsafeBufferPointer { try fused.forward($0, shape: shape) })
        let b = Array(try x.withUnsafeBufferPointer { try apart.forward($0, shape: shape) })
        #expect(closeness(a, b).ok)
        #expect(b.contains(0) && b.contains { $0 > 0 })
        let dy = (0..<b.count).map { Float($0 % 7) - 3 }
        let dx0 = Array(try dy.withUnsafeBufferPointer { try fused.backward($0, inputGradient: true) }!)
        let dx1 = Array(try dy.withUnsafeBufferPointer { try apart.backward($0, inputGradient: true) }!)
        #expect(closeness(dx0, dx1).ok)
        for ((name, p), (_, q)) in zip(try fused.namedParameters(), try apart.namedParameters()) {
            #expect(closeness(Array(p.gradient!), Array(q.gradient!)).ok, "gradient of \(name)")
        }
    }

    /// MobileNet's depthwise conv -> batchnorm2d -> relu nodes fold into one conv at evaluation
    /// (Sources/Ply/Runtime/ConvBatchNormFold.swift scales each output channel's C/groups x kh x kw
    /// weights): the same outputs as the layers' own.
    @Test func depthwiseConvBatchNormFolds() throws {
        let net = Model(runtime: sharedRuntime)
        try net.add("conv", "conv2d", [("in_channels", .int(6)), ("out_channels", .int(12)), ("kernel_size", .int(3)),
                                       ("stride", .int(2)), ("padding", .int(1)), ("groups", .int(6)), ("bias", .bool(false))])
        try net.add("bn", "batchnorm2d", [("num_features", .int(12))])
        try net.add("relu", "relu")
        net.fuseActivations()
        try FoldingTests.writeSeededParameters(net)
        net.isTraining = false
        let shape: Shape = [2, 6, 9, 9]
        let x = FoldingTests.values(shape.count, seed: 1, -1, 1)
        let ref = try FoldingTests.unfoldedConvBatchNormRelu(net, try Tensor(shape: shape, data: x)).data
        let inferred = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
        let c = closeness(inferred, ref)
        #expect(c.ok, "max error \(c.error) > \(c.bound)")
    }

    @Test func forcedAlgorithmsThatCannotNameTheAttribute() throws {
        for algorithm in ["direct", "taps", "winograd", "s2d"] {
            for (attr, value, word) in [("groups", AttributeValue.int(2), "groups=2"), ("dilation", .int(2), "dilation (2, 2)")] {
                do {
                    _ = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(4)), ("kernel_size", .int(3)),
                                             (attr, value), ("algorithm", .string(algorithm))], runtime: sharedRuntime)
                    Issue.record("\(algorithm) with \(attr) accepted")
                } catch {
                    let message = "\(error)"
                    // (below AVX-512, direct/winograd/s2d may be refused for the CPU level first: either names why)
                    #expect(message.contains(word) || message.contains("CPU level"), "\(algorithm), \(attr): \(message)")
                }
            }
        }
        do {
            _ = try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(8)), ("kernel_size", .int(3)),
                                     ("groups", .int(2)), ("algorithm", .string("depthwise"))], runtime: sharedRuntime)
            Issue.record("depthwise with groups 2 of 4 accepted")
        } catch {
            #expect("\(error)".contains("groups == in_channels"), "\(error)")
        }
        for (c, oc, groups) in [(4, 6, 4), (6, 4, 4), (4, 4, 0)] {
            do {
                _ = try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(3)),
                                         ("groups", .int(groups))], runtime: sharedRuntime)
                Issue.record("groups \(groups) for \(c) -> \(oc) accepted")
            } catch {
                #expect("\(error)".contains("groups=\(groups) must be positive and divide in_channels=\(c) and out_channels=\(oc)"),
                        "\(error)")
            }
        }
    }

    /// The dilated kernel's span, not its size, must fit the padded input.
    @Test func dilatedKernelMustFit() throws {
        let conv = try Layer("conv2d", [("in_channels", .int(1)), ("out_channels", .int(1)), ("kernel_size", .int(3)),
                                        ("dilation", .int(3))], runtime: sharedRuntime)
        do {
            _ = try conv.forward([try Tensor(shape: [1, 1, 6, 7], data: Array(repeating: 0, count: 42))])
            Issue.record("a 7-pixel kernel ran on a 6-pixel-high input")
        } catch {
            #expect("\(error)".contains("smaller than the kernel's height 7 (kernel 3, dilation 3)"), "\(error)")
        }
    }

    /// Parameters, MACs and receptive fields count C/groups inputs per output and the dilated span;
    /// a weight of the ungrouped shape is refused naming the shape expected.
    @Test func summaryAndWeightShapes() throws {
        let file = try ModelFile(text: """
            layers:
              - {name: dw, type: conv2d, in_channels: 8, out_channels: 16, kernel_size: 3, padding: 1, groups: 8}
              - {name: gc, type: conv2d, in_channels: 16, out_channels: 8, kernel_size: 3, padding: 2, dilation: 2, groups: 4, bias: false}
            """)
        let model = try file.build(runtime: sharedRuntime, inputShape: [1, 8, 10, 10])
        let s = try ModelSummary(model: model, inputShape: [1, 8, 10, 10])
        #expect(s.rows.map(\.parameters) == [16 * 1 * 9 + 16, 8 * 4 * 9])
        #expect(s.rows.map(\.macs) == [16 * 100 * 1 * 9, 8 * 100 * 4 * 9])
        #expect(s.rows.map(\.receptiveField) == [.init(3, 3), .init(7, 7)])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("convgroups-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafeTensors.write(path: path, tensors: [
            ("dw.weight", .init(floats: Array(repeating: 0, count: 16 * 8 * 9), shape: [16, 8, 3, 3])),
            ("dw.bias", .init(floats: Array(repeating: 0, count: 16), shape: [16])),
            ("gc.weight", .init(floats: Array(repeating: 0, count: 8 * 4 * 9), shape: [8, 4, 3, 3])),
        ], metadata: [:])
        do {
            try model.loadWeights(from: path)
            Issue.record("a [16, 8, 3, 3] weight loaded into a depthwise conv")
        } catch {
            #expect("\(error)".contains("dw.weight (model [16, 1, 3, 3], file [16, 8, 3, 3])"), "\(error)")
        }
    }
}
