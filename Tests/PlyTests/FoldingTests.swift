import Foundation
import Testing
@testable import Ply

/// Batch norm folded into the conv before it at inference (residual blocks, basic_conv2d, and
/// conv2d -> batchnorm2d nodes of a model): evaluation outputs equal those of the unfolded
/// layers run one after another, within `closeness`'s default (1e-5 of the largest output
/// magnitude: folding reorders one multiplication per weight), and the folded copy follows
/// every change of the weights or running statistics.
@Suite struct FoldingTests {
    /// Deterministic values in [lo, hi).
    static func values(_ n: Int, seed: UInt64, _ lo: Float, _ hi: Float) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in lo + (hi - lo) * g.nextUnitFloat() }
    }

    /// Writes every float parameter and buffer of `net`, the k-th from `values` seeded k: running
    /// variances in [0.5, 2), the rest in [-0.5, 0.5).
    static func writeSeededParameters(_ net: Model) throws {
        for (k, item) in try net.namedParameters().enumerated() where !item.parameter.isInteger {
            let n = item.parameter.shape.count
            try item.parameter.write(item.name.hasSuffix("running_var") ? values(n, seed: UInt64(k), 0.5, 2)
                                     : values(n, seed: UInt64(k), -0.5, 0.5))
        }
    }

    /// relu(bn(conv(x))) unfolded: copies of `net`'s first two nodes (a conv2d and a batchnorm2d)
    /// with their parameters, run one after the other in evaluation.
    static func unfoldedConvBatchNormRelu(_ net: Model, _ x: Tensor) throws -> Tensor {
        let layers = net.nodes.compactMap(\.layer)
        let conv = try Layer("conv2d", layers[0].attributes, runtime: sharedRuntime)
        let bn = try Layer("batchnorm2d", layers[1].attributes, runtime: sharedRuntime)
        for (dst, src) in [(conv, layers[0]), (bn, layers[1])] {
            for (p, q) in zip(try dst.parameters, try src.parameters) { try p.write(q.read()) }
            dst.setTraining(false)
        }
        return relu(try bn.forward([try conv.forward([x])]))
    }

    /// Gives every parameter and buffer of `layer` non-trivial values (variances positive).
    static func randomize(_ layer: Layer, seed: UInt64) throws {
        for (k, p) in try layer.parameters.enumerated() where !p.isInteger {
            let n = p.shape.count, s = seed &+ UInt64(k) &* 101
            if p.name.hasSuffix("running_var") { try p.write(values(n, seed: s, 0.5, 2)) }
            else if p.name.hasSuffix("running_mean") || p.name.hasSuffix("bias") { try p.write(values(n, seed: s, -0.5, 0.5)) }
            else if p.name.hasSuffix("bn1.weight") || p.name.hasSuffix("bn2.weight") || p.name.hasSuffix("bn3.weight")
                        || p.name.hasSuffix("bn.weight") || p.name.hasSuffix("downsample.1.weight") {
                try p.write(values(n, seed: s, 0.5, 1.5))
            } else { try p.write(values(n, seed: s, -0.2, 0.2)) }
        }
    }

    /// A standalone layer of `type` with `block`'s parameters under `prefix` (e.g. "conv1.").
    static func copy(_ type: String, _ attrs: Attributes, from block: Layer, prefix: String) throws -> Layer {
        let layer = try Layer(type, attrs, runtime: sharedRuntime)
        let source = try block.parameters
        for p in try layer.parameters {
            let from = try #require(source.first { $0.name == prefix + p.name }, "no \(prefix)\(p.name)")
            try p.write(from.read())
        }
        layer.setTraining(false)
        return layer
    }

    static func relu(_ t: Tensor) -> Tensor {
        var r = t
        r.data = t.data.map { $0 > 0 ? $0 : 0 }
        return r
    }

    /// The basic block or bottleneck as its unfolded layers, one after another (evaluation).
    static func reference(_ block: Layer, bottleneck: Bool, inplanes: Int, planes: Int, stride: Int, x: Tensor) throws -> Tensor {
        let out = bottleneck ? planes * 4 : planes
        let geometry: [(k: Int, s: Int, cin: Int, cout: Int)] = bottleneck
            ? [(1, 1, inplanes, planes), (3, stride, planes, planes), (1, 1, planes, out)]
            : [(3, stride, inplanes, planes), (3, 1, planes, planes)]
        var h = x
        for (i, g) in geometry.enumerated() {
            let conv = try copy("conv2d", [("in_channels", .int(g.cin)), ("out_channels", .int(g.cout)), ("kernel_size", .int(g.k)), ("stride", .int(g.s)), ("padding", .int(g.k / 2)), ("bias", .bool(false))],
                                from: block, prefix: "conv\(i + 1).")
            let bn = try copy("batchnorm2d", [("num_features", .int(g.cout))], from: block, prefix: "bn\(i + 1).")
            h = try bn.forward([try conv.forward([h])])
            if i + 1 < geometry.count { h = relu(h) }
        }
        var id = x
        if stride != 1 || inplanes != out {
            let conv = try copy("conv2d", [("in_channels", .int(inplanes)), ("out_channels", .int(out)), ("kernel_size", .int(1)), ("stride", .int(stride)), ("bias", .bool(false))], from: block, prefix: "downsample.0.")
            let bn = try copy("batchnorm2d", [("num_features", .int(out))], from: block, prefix: "downsample.1.")
            id = try bn.forward([try conv.forward([x])])
        }
        var sum = h
        sum.data = zip(h.data, id.data).map { $0 + $1 }
        return relu(sum)
    }

    static let blocks: [(type: String, inplanes: Int, planes: Int, stride: Int)] = [
        ("residual_basic", 16, 16, 1), ("residual_basic", 16, 32, 2), ("residual_bottleneck", 32, 8, 1),
        ("residual_bottleneck", 16, 8, 2),
    ]

    @Test(arguments: 0..<blocks.count)
    func residualEvalMatchesUnfolded(_ i: Int) throws {
        let b = Self.blocks[i]
        let block = try Layer(b.type, [("inplanes", .int(b.inplanes)), ("planes", .int(b.planes)), ("stride", .int(b.stride))],
                              runtime: sharedRuntime)
        try Self.randomize(block, seed: UInt64(i + 1))
        block.setTraining(false)
        let x = try Tensor(shape: [2, b.inplanes, 12, 12], data: Self.values(2 * b.inplanes * 144, seed: 99, -1, 1))
        let bottleneck = b.type == "residual_bottleneck"
        func check(_ label: String) throws {
            let y = try block.forward([x])
            let ref = try Self.reference(block, bottleneck: bottleneck, inplanes: b.inplanes, planes: b.planes,
                                         stride: b.stride, x: x)
            let c = closeness(y.data, ref.data)
            #expect(c.ok, "\(b.type) \(b.inplanes)->\(b.planes)/\(b.stride), \(label): max error \(c.error) > \(c.bound)")
        }
        try check("first evaluation")
        try check("second evaluation (folded values reused)")
        // A running statistic and a weight change through the host's views: the fold follows.
        let params = try block.parameters
        let variance = try #require(params.first { $0.name == "bn1.running_var" })
        try variance.write(variance.read().map { $0 * 3 })
        try check("after bn1.running_var changed")
        let weight = try #require(params.first { $0.name == (bottleneck ? "conv3.weight" : "conv2.weight") })
        let w = try #require(weight.floats)
        for k in 0..<w.count { w[k] = -w[k] }
        try check("after a conv weight changed in place")
        // A training forward moves the running statistics itself.
        block.setTraining(true)
        _ = try block.forward([x])
        block.setTraining(false)
        try check("after a training forward moved the running statistics")
    }

    @Test func residualBackwardAfterEvaluationForward() throws {
        // Evaluation keeps nothing; a backward after it computes the intermediates again. The
        // block is piecewise linear in x, so central differences (h = 1e-3) give its input
        // gradient up to float rounding away from the relu kinks: checked at 8 positions.
        let block = try Layer("residual_basic", [("inplanes", .int(8)), ("planes", .int(16)), ("stride", .int(2))],
                              runtime: sharedRuntime)
        try Self.randomize(block, seed: 7)
        block.setTraining(false)
        let x = try Tensor(shape: [2, 8, 10, 10], data: Self.values(1600, seed: 5, -1, 1))
        let y = try block.forward([x])
        let g = try Tensor(shape: y.shape, data: Self.values(y.shape.count, seed: 6, -1, 1))
        let gx = try #require(try block.backward(inputs: [x], output: y, gradOutput: g)[0])
        func f(_ t: Tensor) throws -> Double {
            zip(try block.forward([t]).data, g.data).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-3
        for i in stride(from: 17, to: 1600, by: 199) {
            var plus = x, minus = x
            plus.data[i] += h
            minus.data[i] -= h
            let numeric = (try f(plus) - f(minus)) / Double(2 * h)
            #expect(abs(numeric - Double(gx.data[i])) < 1e-2, "d/dx[\(i)]: backward \(gx.data[i]), differences \(numeric)")
        }
    }

    @Test func basicConv2dEvalMatchesUnfolded() throws {
        let attrs: Attributes = [("in_channels", .int(6)), ("out_channels", .int(10)), ("kernel_size", .ints([3, 1])), ("padding", .ints([1, 0]))]
        let block = try Layer("basic_conv2d", attrs, runtime: sharedRuntime)
        try Self.randomize(block, seed: 3)
        block.setTraining(false)
        let x = try Tensor(shape: [2, 6, 9, 9], data: Self.values(2 * 6 * 81, seed: 4, -1, 1))
        func check(_ label: String) throws {
            let conv = try Self.copy("conv2d", [("in_channels", .int(6)), ("out_channels", .int(10)), ("kernel_size", .ints([3, 1])), ("padding", .ints([1, 0])), ("bias", .bool(false))], from: block, prefix: "conv.")
            let bn = try Self.copy("batchnorm2d", [("num_features", .int(10)), ("eps", .float(0.001))], from: block, prefix: "bn.")
            let ref = Self.relu(try bn.forward([try conv.forward([x])]))
            let c = closeness(try block.forward([x]).data, ref.data)
            #expect(c.ok, "basic_conv2d, \(label): max error \(c.error) > \(c.bound)")
        }
        try check("first evaluation")
        let mean = try #require(try block.parameters.first { $0.name == "bn.running_mean" })
        try mean.write(mean.read().map { $0 + 0.25 })
        try check("after bn.running_mean changed")
        block.setTraining(true)
        _ = try block.forward([x])
        block.setTraining(false)
        try check("after a training forward")
    }

    /// conv2d -> batchnorm2d -> relu nodes of a model: `infer` and `forward` in evaluation run
    /// them as one folded conv; outputs equal the layers' own, and follow weight changes.
    @Test func modelNodesFold() throws {
        let net = Model(runtime: sharedRuntime)
        try net.add("conv", "conv2d", [("in_channels", .int(3)), ("out_channels", .int(8)), ("kernel_size", .int(3)), ("padding", .int(1))])
        try net.add("bn", "batchnorm2d", [("num_features", .int(8))])
        try net.add("relu", "relu")
        try net.add("pool", "maxpool2d", [("kernel_size", .int(2))])
        net.fuseActivations()
        try Self.writeSeededParameters(net)
        net.isTraining = false
        let shape: Shape = [2, 3, 8, 8]
        let x = Self.values(shape.count, seed: 1, -1, 1)
        func reference() throws -> [Float] {
            let pool = try Layer("maxpool2d", [("kernel_size", .int(2))], runtime: sharedRuntime)
            return try pool.forward([try Self.unfoldedConvBatchNormRelu(net, try Tensor(shape: shape, data: x))]).data
        }
        func check(_ label: String) throws {
            let ref = try reference()
            let inferred = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
            let forwarded = try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }
            #expect(inferred == forwarded, "\(label): infer and forward differ")
            let c = closeness(inferred, ref)
            #expect(c.ok, "\(label): max error \(c.error) > \(c.bound)")
        }
        try check("first evaluation")
        let variance = try #require(try net.namedParameters().first { $0.name == "bn.running_var" }?.parameter)
        try variance.write(variance.read().map { $0 * 0.5 })
        try check("after bn.running_var changed")
        // A backward after an evaluation forward still works (it makes the folded conv's value).
        _ = try x.withUnsafeBufferPointer { try net.forward($0, shape: shape) }
        let dy = [Float](repeating: 1, count: 2 * 8 * 4 * 4)
        let dx = try dy.withUnsafeBufferPointer { try net.backward($0, inputGradient: true) }
        #expect(dx.map { $0.contains { $0 != 0 } } == true)
    }
}
