import Foundation
import Testing
@testable import Ply

/// ABI 1.7's blocked channel layout, host side: which values `infer` keeps NCHW16c (only where
/// the writer can write it, every reader can read it, the value is 4-D and neither the model's
/// input nor its output, in evaluation), buffers padded to whole blocks, and outputs equal to
/// the NCHW run's. Uses the fixture plugin Fixtures/blocked/blocked_layers.c, whose element-wise
/// layers check that padding lanes reach them as 0.
@Suite struct BlockedLayoutTests {
    static let source = fixtures.appendingPathComponent("blocked/blocked_layers.c")

    /// The fixture, compiled once per process (and its variant with a half-declared type).
    static let library: String = build("libblocked.so", [])
    static let halfLibrary: String = build("libblocked_half.so", ["-DBLK_HALF"])
    static func build(_ name: String, _ flags: [String]) -> String {
        do {
            let dir = try CCompiler.temporaryDirectory("blocked")
            return try CCompiler.compile(source, to: dir.appendingPathComponent(name), extraFlags: flags)
        } catch { fatalError("cannot build the blocked-layout fixture: \(error)") }
    }

    /// A runtime with the built-ins and the fixture.
    static func runtime(blocked: Bool = true, checked: Bool = false, threads: Int = 2) throws -> Runtime {
        var options = Runtime.Options()
        options.useEnvironment = false
        options.threads = threads
        options.blockedLayouts = blocked
        options.checkPlugins = checked
        options.log = { _, _ in }
        let r = try Runtime(options: options)
        try r.loadPlugin(at: library)
        return r
    }

    /// Builds a model on `runtime` from (name, type, inputs by name) rows, in evaluation mode.
    static func model(_ runtime: Runtime, _ rows: [(String, String, [String])]) throws -> Model {
        let net = Model(runtime: runtime)
        for (name, type, inputs) in rows {
            let ids = try inputs.map { try #require($0 == "input" ? Model.input : net.node(named: $0)) }
            try net.add(name, type, inputs: ids.isEmpty ? nil : ids)
        }
        net.isTraining = false
        return net
    }

    static func input(_ shape: Shape, seed: UInt64 = 3) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<shape.count).map { _ in g.nextUnitFloat() * 2 - 1 }
    }

    /// `infer`'s output and each named node's planned layout.
    static func run(_ net: Model, _ x: [Float], _ shape: Shape, _ names: [String]) throws -> ([Float], [ValueLayout]) {
        let y = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
        return (y, try names.map { net.inferenceLayout(of: try #require(net.node(named: $0))) })
    }

    static let chain: [(String, String, [String])] = [
        ("start", "blk_start", []), ("mid1", "blk_mid", []), ("mid2", "blk_mid", []), ("end", "blk_end", []),
    ]

    @Test(arguments: [false, true])
    func chainRunsBlockedBetweenLayersThatTakeIt(checked: Bool) throws {
        let shape: Shape = [2, 20, 3, 5]  // 20 channels: a second block with 12 padding lanes
        let x = Self.input(shape)
        let net = try Self.model(try Self.runtime(checked: checked), Self.chain)
        let (y, layouts) = try Self.run(net, x, shape, ["start", "mid1", "mid2", "end"])
        #expect(layouts == [.nchw16c, .nchw16c, .nchw16c, .nchw])
        // the same sums in the same order: equal to the formula and to the NCHW plan, bit for bit
        #expect(y == x.map { ((2 * $0 + 0.5) + 1 + 1) - 0.25 })
        let flat = try Self.model(try Self.runtime(blocked: false), Self.chain)
        let (yFlat, flatLayouts) = try Self.run(flat, x, shape, ["start", "mid1", "mid2", "end"])
        #expect(flatLayouts == [.nchw, .nchw, .nchw, .nchw] && yFlat == y)
        let reference = try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }
        #expect(reference == y, "forward (always NCHW) and the blocked infer differ")
        // the blocked buffers hold the padded channels: 32 of 20
        #expect(net.inferenceFloats > flat.inferenceFloats)
        for name in ["start", "mid1", "mid2"] {
            let id = try #require(net.node(named: name))
            #expect(net.inferCapacities[net.inferSlot[id]] >= 2 * 32 * 3 * 5, "\(name)'s buffer holds less than its padded value")
        }
        // a second call runs on buffers holding the first call's values
        #expect(try Self.run(net, x, shape, []).0 == y)
    }

    @Test func aReaderWithoutLayoutsKeepsItsInputNCHW() throws {
        let rows: [(String, String, [String])] = [
            ("start", "blk_start", []), ("mid1", "blk_mid", []), ("act", "relu", []), ("mid2", "blk_mid", []),
            ("end", "blk_end", []),
        ]
        let shape: Shape = [1, 16, 4, 4]
        let x = Self.input(shape, seed: 9)
        let net = try Self.model(try Self.runtime(), rows)
        let (y, layouts) = try Self.run(net, x, shape, ["start", "mid1", "act", "mid2", "end"])
        // relu (a built-in without the ABI 1.7 slots) reads mid1: NCHW there; mid2 starts again
        #expect(layouts == [.nchw16c, .nchw, .nchw, .nchw16c, .nchw])
        #expect(y == x.map { max((2 * $0 + 0.5) + 1, 0) + 1 - 0.25 })
    }

    @Test func fanOutAndTwoInputs() throws {
        let rows: [(String, String, [String])] = [
            ("start", "blk_start", []), ("a", "blk_mid", ["start"]), ("b", "blk_end", ["start"]),
            ("c", "blk_mid", ["start"]), ("sum", "blk_add", ["a", "c"]), ("both", "blk_add", ["sum", "b"]),
        ]
        let shape: Shape = [3, 5, 2, 3]
        let x = Self.input(shape, seed: 4)
        let net = try Self.model(try Self.runtime(), rows)
        let (y, layouts) = try Self.run(net, x, shape, ["start", "a", "b", "c", "sum", "both"])
        // start is read by three layers that all take NCHW16c; b writes NCHW only; both is the output
        #expect(layouts == [.nchw16c, .nchw16c, .nchw, .nchw16c, .nchw16c, .nchw])
        #expect(y == x.map { let s = 2 * $0 + 0.5; return ((s + 1) + (s + 1)) + (s - 0.25) })
        let flat = try Self.model(try Self.runtime(blocked: false), rows)
        #expect(try Self.run(flat, x, shape, []).0 == y)
    }

    @Test func trainingTheOutputAndNonImagesStayNCHW() throws {
        let shape: Shape = [2, 20, 3, 5]
        let x = Self.input(shape)
        let net = try Self.model(try Self.runtime(), Self.chain)
        net.isTraining = true
        let (y, layouts) = try Self.run(net, x, shape, ["start", "mid1", "mid2", "end"])
        #expect(layouts == [.nchw, .nchw, .nchw, .nchw], "training plans stay NCHW")
        net.isTraining = false
        #expect(try Self.run(net, x, shape, []).0 == y)
        // a model ending on a layer that could write NCHW16c: its output stays NCHW
        let open = try Self.model(try Self.runtime(), Array(Self.chain.prefix(3)))
        let (_, openLayouts) = try Self.run(open, x, shape, ["start", "mid1", "mid2"])
        #expect(openLayouts == [.nchw16c, .nchw16c, .nchw])
        // 2-D values: nothing to block
        let flatShape: Shape = [4, 20]
        let (_, flatLayouts) = try Self.run(net, Self.input(flatShape), flatShape, ["start", "mid1", "mid2", "end"])
        #expect(flatLayouts == [.nchw, .nchw, .nchw, .nchw])
    }

    @Test func lanesRunTheBlockedPlanToo() throws {
        let shape: Shape = [8, 20, 3, 3]
        let x = Self.input(shape, seed: 12)
        let net = try Self.model(try Self.runtime(threads: 2), Self.chain)
        let whole = try Self.run(net, x, shape, []).0
        #expect(try net.prepareLanes(forBatch: 8, lanes: 2) == 2)
        let laned = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
        #expect(laned == whole)
    }

    @Test func evalLayoutsWithoutNCHWIsAnError() throws {
        let r = try Self.runtime()
        let net = Model(runtime: r)
        try net.add("odd", "blk_odd", [("bad", .int(1))])
        try net.add("end", "blk_end")
        net.isTraining = false
        let shape: Shape = [1, 4, 2, 2]
        let x = Self.input(shape)
        do {
            _ = try x.withUnsafeBufferPointer { try net.infer($0, shape: shape) }
            Issue.record("infer accepted an output set without NCHW")
        } catch let error as PlyError {
            #expect("\(error)".contains("leaves out NCHW"), "\(error)")
        }
    }

    @Test func aTypeWithHalfTheSlotsIsRefused() throws {
        var options = Runtime.Options()
        options.useEnvironment = false
        options.log = { _, _ in }
        let r = try Runtime(options: options)
        do {
            _ = try r.loadPlugin(at: Self.halfLibrary)
            Issue.record("a type with eval_layouts and no forward_layout was loaded")
        } catch let error as PlyError {
            #expect("\(error)".contains("blk_half") && "\(error)".contains("both or neither"), "\(error)")
        }
    }

    /// The built-in pools on blocked values: maxpool2d reads and writes NCHW16c (a run passes
    /// through it, or starts at it after a layer writing NCHW), avgpool2d likewise (padding counted
    /// or not, ceil mode), adaptive_avgpool2d reads it and
    /// ends the run; both equal the NCHW plan bit for bit (max: the same window order and NaN
    /// rule; the global average: the same 8 partial sums per channel).
    @Test(arguments: [[2, 20, 9, 7], [1, 16, 8, 8], [3, 5, 4, 4]])
    func poolsTakeBlockedValues(_ dims: [Int]) throws {
        let shape = Shape(dims)
        var x = Self.input(shape, seed: UInt64(dims[1]))
        x[3] = .nan  // the NaN rule, in a blocked lane and not at a window's first element
        func build(_ r: Runtime) throws -> Model {
            let net = Model(runtime: r)
            try net.add("start", "blk_start")
            try net.add("pool", "maxpool2d", [("kernel_size", .int(3)), ("stride", .int(2)), ("padding", .int(1))])
            // (Inception's branch pool: each row's horizontal maxima kept for three output rows)
            try net.add("poolb", "maxpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1))])
            try net.add("mid", "blk_mid")
            try net.add("act", "relu")
            try net.add("pool2", "maxpool2d", [("kernel_size", .int(2)), ("stride", .int(1))])
            try net.add("avg", "avgpool2d", [("kernel_size", .int(3)), ("stride", .int(1)), ("padding", .int(1))])
            try net.add("avg2", "avgpool2d", [("kernel_size", .int(3)), ("stride", .int(2)), ("padding", .int(1)),
                                              ("ceil_mode", .bool(true)), ("count_include_pad", .bool(false))])
            try net.add("mid2", "blk_mid")
            try net.add("pool3", "maxpool2d", [("kernel_size", .int(2)), ("stride", .int(1)), ("padding", .int(1))]) // blocked in, NCHW out
            try net.add("act2", "relu")
            try net.add("gap", "adaptive_avgpool2d", [("output_size", .ints([1, 1]))])
            try net.add("end", "blk_end")
            net.isTraining = false
            return net
        }
        let names = ["start", "pool", "poolb", "mid", "act", "pool2", "avg", "avg2", "mid2", "pool3", "act2", "gap", "end"]
        let net = try build(try Self.runtime(checked: true)) // guard zones: a lane written past its plane is caught
        let (y, layouts) = try Self.run(net, x, shape, names)
        // relu (no ABI 1.7 slots) reads mid: NCHW; pool2 reads NCHW and starts a run again; gap ends it
        #expect(layouts == [.nchw16c, .nchw16c, .nchw16c, .nchw, .nchw, .nchw16c, .nchw16c, .nchw16c, .nchw16c, .nchw, .nchw,
                            .nchw, .nchw])
        let flat = try build(try Self.runtime(blocked: false))
        let yFlat = try Self.run(flat, x, shape, []).0
        #expect(y.count == yFlat.count && zip(y, yFlat).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        #expect(y.contains { $0.isNaN }, "the NaN reaches the output through the max pools")
        // and a global average of a 7x7 plane through the blocked path, alone
        let g = Model(runtime: try Self.runtime())
        try g.add("start", "blk_start")
        try g.add("gap", "adaptive_avgpool2d", [("output_size", .ints([1, 1]))])
        g.isTraining = false
        let gFlat = Model(runtime: try Self.runtime(blocked: false))
        try gFlat.add("start", "blk_start")
        try gFlat.add("gap", "adaptive_avgpool2d", [("output_size", .ints([1, 1]))])
        gFlat.isTraining = false
        let (ga, gl) = try Self.run(g, x, shape, ["start", "gap"])
        let gaFlat = try Self.run(gFlat, x, shape, []).0
        #expect(gl == [.nchw16c, .nchw])
        #expect(ga.count == gaFlat.count && zip(ga, gaFlat).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }

    /// conv2d's 1x1 stride-1 path on NCHW16c (AVX-512, evaluation): blocked in and out (with a
    /// fused relu), blocked in and NCHW out, NCHW in and blocked out, against the NCHW plan within
    /// what another order of the same sums gives. Below AVX-512 the conv offers NCHW only.
    @Test func conv1x1TakesBlockedValues() throws {
        func conv(_ c: Int, _ oc: Int) -> Attributes {
            [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(1))]
        }
        func build(_ r: Runtime) throws -> Model {
            let net = Model(runtime: r)
            try net.add("start", "blk_start")
            try net.add("c1", "conv2d", conv(20, 24))
            try net.add("r1", "relu")
            try net.add("mid", "blk_mid")
            try net.add("c2", "conv2d", conv(24, 40))
            try net.add("act", "relu6")
            try net.add("c3", "conv2d", conv(40, 8))
            try net.add("end", "blk_end")
            net.fuseActivations()  // r1 into c1
            net.isTraining = false
            return net
        }
        let shape: Shape = [2, 20, 15, 17]  // 255 positions (at least conv_blocked.c's 14x14): tiles of 6 and 3 over
        let x = Self.input(shape, seed: 21)
        let net = try build(try Self.runtime())
        let names = ["start", "c1", "r1", "mid", "c2", "act", "c3", "end"]
        let (y, layouts) = try Self.run(net, x, shape, names)
        if cpuLevel == "avx512" {
            #expect(layouts == [.nchw16c, .nchw16c, .nchw16c, .nchw16c, .nchw, .nchw, .nchw16c, .nchw])
        } else {
            #expect(layouts == [.nchw, .nchw, .nchw, .nchw, .nchw, .nchw, .nchw, .nchw])
        }
        let flat = try build(try Self.runtime(blocked: false))
        let yFlat = try Self.run(flat, x, shape, []).0
        #expect(y.count == yFlat.count)
        let worst = zip(y, yFlat).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst <= 2e-6, "blocked and NCHW convs differ by \(worst)")
        #expect(yFlat.contains { $0 != yFlat[0] }, "a constant output would hide a wrong conv")
    }
}

/// conv2d's other kernels and the residual blocks on NCHW16c.
@Suite struct BlockedConvTests {
    static func conv(_ c: Int, _ oc: Int, _ k: Int, _ s: Int, _ p: Int) -> Attributes {
        [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(k)), ("stride", .int(s)),
         ("padding", .int(p))]
    }

    /// The worst difference of y from yFlat, relative to max(1, |yFlat|).
    static func worst(_ y: [Float], _ yFlat: [Float]) -> Float {
        zip(y, yFlat).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
    }

    /// The padded "rows" kernel (any kernel size, stride and padding) between blocked values, with a
    /// fused relu, against the NCHW plan; and a 3-channel stem (NCHW in) writing NCHW16c.
    @Test(arguments: [[3, 1, 1], [3, 1, 0], [3, 2, 1], [1, 2, 0], [5, 1, 2], [7, 2, 3], [1, 1, 1]])
    func convKernelsTakeBlockedValues(_ ksp: [Int]) throws {
        let (k, s, p) = (ksp[0], ksp[1], ksp[2])
        func build(_ r: Runtime) throws -> Model {
            let net = Model(runtime: r)
            try net.add("stem", "conv2d", Self.conv(3, 20, k, s, p))
            try net.add("c1", "conv2d", Self.conv(20, 40, k, s, p))
            try net.add("r1", "relu")
            try net.add("c2", "conv2d", Self.conv(40, 24, 3, 1, 1))
            try net.add("end", "blk_end")
            _ = net.fuseActivations()
            net.isTraining = false
            return net
        }
        let shape: Shape = [1, 3, 61, 57]  // every conv's input plane at least conv_blocked.c's 14x14
        let x = BlockedLayoutTests.input(shape, seed: UInt64(10 * k + s))
        let net = try build(try BlockedLayoutTests.runtime())
        let (y, layouts) = try BlockedLayoutTests.run(net, x, shape, ["stem", "c1", "c2", "end"])
        if cpuLevel == "avx512" {
            #expect(layouts == [.nchw16c, .nchw16c, .nchw16c, .nchw])
        } else {
            #expect(layouts == [.nchw, .nchw, .nchw, .nchw])
        }
        let yFlat = try BlockedLayoutTests.run(try build(try BlockedLayoutTests.runtime(blocked: false)), x, shape, []).0
        #expect(y.count == yFlat.count)
        #expect(Self.worst(y, yFlat) <= 2e-6, "blocked and NCHW convs differ by \(Self.worst(y, yFlat))")
        #expect(yFlat.contains { $0 != yFlat[0] }, "a constant output would hide a wrong conv")
    }

    /// A small ResNet: the stem writes NCHW16c, the max pool, basic and bottleneck blocks (identity and
    /// downsample shortcuts, strides 1 and 2) pass it on, the global pool ends it. Batch-norm statistics
    /// from a training forward first, so the folds are not the identity; frozen and not.
    @Test(arguments: [false, true])
    func residualBlocksRunBlocked(frozen: Bool) throws {
        func build(_ r: Runtime) throws -> Model {
            let net = Model(runtime: r)
            try net.add("stem", "conv2d", Self.conv(3, 32, 7, 2, 3))
            try net.add("relu", "relu")
            try net.add("pool", "maxpool2d", [("kernel_size", .int(3)), ("stride", .int(2)), ("padding", .int(1))])
            try net.add("b1", "residual_basic", [("inplanes", .int(32)), ("planes", .int(32))])
            try net.add("b2", "residual_basic", [("inplanes", .int(32)), ("planes", .int(48)), ("stride", .int(2)),
                                                 ("downsample", .bool(true))])
            try net.add("n1", "residual_bottleneck", [("inplanes", .int(48)), ("planes", .int(16)),
                                                      ("downsample", .bool(true))])
            try net.add("n2", "residual_bottleneck", [("inplanes", .int(64)), ("planes", .int(16))])
            try net.add("n3", "residual_bottleneck", [("inplanes", .int(64)), ("planes", .int(24)), ("stride", .int(2)),
                                                      ("downsample", .bool(true))])
            try net.add("gap", "adaptive_avgpool2d", [("output_size", .ints([1, 1]))])
            _ = net.fuseActivations()
            return net
        }
        // planes 60x56 after the stem, 30x28 after the pool, 15x14 after b2; n3 reads 15x14 but its last 1x1
        // reads 8x7, under conv_blocked.c's 14x14: n3 takes NCHW only, so n2 writes NCHW (a block reading
        // blocked and writing NCHW)
        let shape: Shape = [2, 3, 120, 112]
        let x = BlockedLayoutTests.input(shape, seed: 77)
        func prepared(_ blocked: Bool) throws -> Model {
            let net = try build(try BlockedLayoutTests.runtime(blocked: blocked))
            net.isTraining = true
            _ = try x.withUnsafeBufferPointer { try net.forward($0, shape: shape) }
            net.isTraining = false
            if frozen { _ = try net.freezeForInference() }
            return net
        }
        let names = ["stem", "pool", "b1", "b2", "n1", "n2", "n3", "gap"]
        let (y, layouts) = try BlockedLayoutTests.run(try prepared(true), x, shape, names)
        if cpuLevel == "avx512" {
            #expect(layouts == [.nchw16c, .nchw16c, .nchw16c, .nchw16c, .nchw16c, .nchw, .nchw, .nchw])
        } else {
            #expect(layouts == Array(repeating: .nchw, count: names.count))
        }
        let yFlat = try BlockedLayoutTests.run(try prepared(false), x, shape, []).0
        #expect(y.count == yFlat.count && y.count == 2 * 96)
        #expect(Self.worst(y, yFlat) <= 2e-6, "blocked and NCHW blocks differ by \(Self.worst(y, yFlat))")
        #expect(yFlat.contains { $0 != yFlat[0] }, "a constant output would hide a wrong block")
    }
}

extension BlockedConvTests {
    /// The zoo's ResNets in evaluation at 224: NCHW16c from the stem through layer3 but its last block
    /// (layer4's 7x7 planes are under conv_blocked.c's 14x14, so layer4 reads NCHW and layer3's last
    /// block writes it), and outputs within the summation-order bound of the NCHW plan, frozen as
    /// `ply bench-model` runs them.
    @Test(arguments: ["resnet18", "resnet50"])
    func zooResNetsRunBlockedThroughout(_ name: String) throws {
        let size = 224
        func prepared(_ blocked: Bool) throws -> Model {
            let model = try Zoo.model(named: name, runtime: try BlockedLayoutTests.runtime(blocked: blocked),
                                      numClasses: 10, inChannels: 3, imageSize: size)
            model.isTraining = false
            _ = try model.freezeForInference()
            return model
        }
        let shape: Shape = [1, 3, size, size]
        let x = BlockedLayoutTests.input(shape, seed: 5)
        let net = try prepared(true)
        let y = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
        let layouts = Dictionary(uniqueKeysWithValues: net.nodes.indices.map { (net.nodes[$0].name, net.inferenceLayout(of: $0)) })
        let blocks = net.nodes.map(\.name).filter { $0.hasPrefix("layer") && $0.split(separator: ".").count == 2 }
        let lastOf3 = blocks.last { $0.hasPrefix("layer3.") }
        #expect(blocks.count == (name == "resnet18" ? 8 : 16) && lastOf3 != nil)
        let expected = blocks.map { b in b.hasPrefix("layer4.") || b == lastOf3 || cpuLevel != "avx512" ? ValueLayout.nchw : .nchw16c }
        #expect(blocks.map { layouts[$0] } == expected)
        #expect(layouts["maxpool"] == (cpuLevel == "avx512" ? .nchw16c : .nchw))
        let flat = try prepared(false)
        let yFlat = try x.withUnsafeBufferPointer { Array(try flat.infer($0, shape: shape)) }
        #expect(y.count == yFlat.count && y.count == 10)
        #expect(Self.worst(y, yFlat) <= 2e-6, "blocked and NCHW differ by \(Self.worst(y, yFlat))")
    }
}

extension BlockedConvTests {
    /// The zoo's Inception networks in evaluation: their blocks run NCHW16c inside and between each
    /// other (basic_conv2d through its folded conv, the pool branches' max and average pools, concats
    /// as copies of whole channel blocks) on planes of 14x14 and up; the blocks on smaller planes stay
    /// NCHW, and so does the value the last blocked one writes for them. Batch 1 (branches written
    /// straight into the output) and 2 (concats as copies, v3's 35x35 and 17x17 blocks a group of
    /// images at a time), frozen and not, against the NCHW plan.
    @Test(arguments: [("googlenet", 224, 1, false), ("googlenet", 224, 2, true), ("inception_v3", 299, 1, true),
                      ("inception_v3", 299, 2, false)])
    func zooInceptionsRunBlocked(_ name: String, _ size: Int, _ batch: Int, _ frozen: Bool) throws {
        func prepared(_ blocked: Bool) throws -> Model {
            let model = try Zoo.model(named: name, runtime: try BlockedLayoutTests.runtime(blocked: blocked),
                                      numClasses: 10, inChannels: 3, imageSize: size)
            model.isTraining = false
            if frozen { _ = try model.freezeForInference() }
            return model
        }
        let shape: Shape = [batch, 3, size, size]
        let x = BlockedLayoutTests.input(shape, seed: 9)
        let net = try prepared(true)
        let y = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
        let layouts = Dictionary(uniqueKeysWithValues: net.nodes.indices.map { (net.nodes[$0].name, net.inferenceLayout(of: $0)) })
        let blocked = name == "googlenet"
            ? ["inception3a", "inception3b", "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e"]
            : ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]
        // (Mixed_7a reads 17x17 and no child of it reads its 8x8 values: it runs blocked, writing NCHW for 7b)
        let flat = name == "googlenet" ? ["maxpool4", "inception5a", "inception5b"] : ["Mixed_7a", "Mixed_7b", "Mixed_7c"]
        let want: ValueLayout = cpuLevel == "avx512" ? .nchw16c : .nchw
        #expect(blocked.map { layouts[$0] } == blocked.map { _ in want })
        #expect(flat.map { layouts[$0] } == flat.map { _ in ValueLayout.nchw })
        let flatNet = try prepared(false) // alive while its output is copied: infer's buffer is the model's
        let yFlat = try x.withUnsafeBufferPointer { Array(try flatNet.infer($0, shape: shape)) }
        #expect(y.count == yFlat.count && y.count == 10 * batch)
        #expect(Self.worst(y, yFlat) <= 2e-6, "blocked and NCHW differ by \(Self.worst(y, yFlat))")
    }
}
