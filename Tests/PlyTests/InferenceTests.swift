import Foundation
import Testing
@testable import Ply

/// `Model.infer` runs the graph with buffers shared by lifetime: its outputs must be
/// `forward`'s bit for bit (chains, residual adds, inception concats, fused activations), it
/// must hold fewer floats than `forward`'s plan, and `backward` must refuse to follow it.
@Suite struct InferenceTests {
    static let models: [(name: String, channels: Int, size: Int)] = [
        ("convnet", 1, 28), ("vgg11", 3, 32), ("resnet18", 3, 32), ("googlenet", 3, 64),
    ]

    /// A runtime that keeps every value NCHW, as `forward` does: blocked values (NCHW16c) change
    /// the order of the sums, and BlockedLayoutTests hold them to the NCHW plan.
    static let nchwRuntime: Runtime = {
        var options = Runtime.Options()
        options.blockedLayouts = false
        do { return try Runtime(options: options) } catch { fatalError("no runtime: \(error)") }
    }()

    @Test(arguments: 0..<models.count)
    func inferEqualsForward(_ i: Int) throws {
        let m = InferenceTests.models[i]
        let net = try Zoo.model(named: m.name, runtime: Self.nchwRuntime, numClasses: 10, inChannels: m.channels,
                                imageSize: m.size)
        net.fuseActivations()
        net.isTraining = false
        let shape: Shape = [2, m.channels, m.size, m.size]
        var g = SplitMix64(seed: UInt64(i + 11))
        let x = (0..<shape.count).map { _ in g.nextUnitFloat() * 2 - 1 }
        let reference = try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }
        for pass in 1...2 { // the second pass runs on buffers holding the first's values
            let inferred = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
            #expect(inferred == reference, "\(m.name), pass \(pass): infer differs from forward")
        }
        let planned = try net.shapes(for: shape).reduce(0) { $0 + $1.count }
        #expect(net.inferenceFloats < planned, "\(m.name): infer holds \(net.inferenceFloats) floats, forward \(planned)")
    }

    @Test func backwardRefusesToFollowInfer() throws {
        let net = try Zoo.model(named: "convnet", runtime: sharedRuntime)
        let shape: Shape = [3, 1, 28, 28]
        let x = [Float](repeating: 0.5, count: shape.count)
        let y = try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }
        let dy = [Float](repeating: 1, count: y.count)
        _ = try x.withUnsafeBufferPointer { try net.infer($0, shape: shape) }
        #expect(throws: PlyError.self) { try dy.withUnsafeBufferPointer { try net.backward($0) } }
        _ = try x.withUnsafeBufferPointer { try net.forward($0, shape: shape) }
        try dy.withUnsafeBufferPointer { _ = try net.backward($0) } // forward again: allowed
    }

    @Test func inferChecksItsInput() throws {
        let net = try Zoo.model(named: "convnet", runtime: sharedRuntime)
        let x = [Float](repeating: 0, count: 10)
        #expect(throws: PlyError.self) { try x.withUnsafeBufferPointer { _ = try net.infer($0, shape: [1, 1, 28, 28]) } }
        #expect(throws: PlyError.self) { try x.withUnsafeBufferPointer { _ = try net.infer($0, shape: [10, 1, 2, 2]) } }
    }

    /// The plan follows the graph: after an `infer`, a node added or an earlier node made the
    /// output is planned again. (The plan used to stay: the added node indexed past it, a trap,
    /// and an earlier output came back from a buffer a later node had reused: wrong values.)
    @Test func inferFollowsGraphChanges() throws {
        let net = Model(runtime: sharedRuntime)
        try net.add("fc1", "linear", [("in_features", .int(8)), ("out_features", .int(8))])
        try net.add("act1", "relu")
        try net.add("fc2", "linear", [("in_features", .int(8)), ("out_features", .int(8))])
        try net.add("act2", "relu")
        try net.add("fc3", "linear", [("in_features", .int(8)), ("out_features", .int(4))])
        net.isTraining = false
        let shape: Shape = [3, 8]
        var g = SplitMix64(seed: 5)
        let x = (0..<shape.count).map { _ in g.nextUnitFloat() * 2 - 1 }
        func both() throws -> (forward: [Float], infer: [Float]) {
            let f = try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }
            let i = try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }
            return (f, i)
        }
        var r = try both()
        #expect(r.infer == r.forward)
        // fc1's buffer is free once act1 ran, and fc3 takes it: made the output, fc1 must keep it
        net.output = try #require(net.node(named: "fc1"))
        r = try both()
        #expect(r.infer == r.forward, "an earlier output after an infer")
        net.output = try #require(net.node(named: "fc3"))
        _ = try both()
        try net.add("act3", "relu")
        r = try both()
        #expect(r.infer.count == 12 && r.infer == r.forward, "a node added after an infer")
    }

    /// A conv folded into the batch norm after it, later made the output: `forward` and `infer`
    /// in evaluation compute it again. (The folds were planned once per node count: `forward`
    /// returned the conv's never-written buffer, zeros, and `infer` indexed a buffer the plan had
    /// not given it, a trap.)
    @Test func aFoldedConvMadeTheOutputIsComputed() throws {
        let net = Model(runtime: sharedRuntime)
        try net.add("conv", "conv2d", [("in_channels", .int(2)), ("out_channels", .int(3)), ("kernel_size", .int(3)),
                                       ("padding", .int(1))])
        try net.add("bn", "batchnorm2d", [("num_features", .int(3))])
        try net.add("act", "relu")
        let shape: Shape = [2, 2, 5, 5]
        var g = SplitMix64(seed: 8)
        let x = (0..<shape.count).map { _ in g.nextUnitFloat() * 2 - 1 }
        net.output = try #require(net.node(named: "conv"))
        // the conv's own values: training mode folds nothing
        let reference = try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }
        net.output = try #require(net.node(named: "act"))
        net.isTraining = false
        _ = try x.withUnsafeBufferPointer { try net.forward($0, shape: shape) }
        _ = try x.withUnsafeBufferPointer { try net.infer($0, shape: shape) }
        net.output = try #require(net.node(named: "conv"))
        for (what, y) in [("forward", try x.withUnsafeBufferPointer { Array(try net.forward($0, shape: shape)) }),
                          ("infer", try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) })] {
            #expect(y.count == reference.count && zip(y, reference).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) },
                    "\(what): the conv made the output after its fold ran")
        }
    }

    /// An output id past the last node (or negative) is an error where the model runs, not a trap.
    @Test func anOutputThatIsNoNodeIsAnError() throws {
        let net = Model(runtime: sharedRuntime)
        try net.add("fc", "linear", [("in_features", .int(3)), ("out_features", .int(2))])
        let shape: Shape = [1, 3]
        let x: [Float] = [1, 2, 3]
        _ = try x.withUnsafeBufferPointer { try net.forward($0, shape: shape) }
        let dy: [Float] = [1, 1]
        for bad in [2, 99, -1] {
            net.output = bad
            for (what, call) in [("forward", { _ = try x.withUnsafeBufferPointer { try net.forward($0, shape: shape) } }),
                                 ("infer", { _ = try x.withUnsafeBufferPointer { try net.infer($0, shape: shape) } }),
                                 ("shapes", { _ = try net.shapes(for: shape) }),
                                 ("backward", { _ = try dy.withUnsafeBufferPointer { try net.backward($0) } })] as [(String, () throws -> Void)] {
                do {
                    try call()
                    Issue.record("\(what) ran with output \(bad)")
                } catch let error as PlyError {
                    #expect("\(error)".contains("node \(bad), which does not exist"), "\(what): \(error)")
                }
            }
            #expect(net.outputShape == nil)
        }
        net.output = 1
        #expect(try x.withUnsafeBufferPointer { Array(try net.infer($0, shape: shape)) }.count == 2)
    }
}
