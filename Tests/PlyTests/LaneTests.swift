import Foundation
import Testing
@testable import Ply

/// Batch lanes (`Model.prepareLanes(forBatch:lanes:)`, `BatchLanes`): `infer` with the batch split
/// into groups of images, each carried through the whole model by one thread on a replica of the
/// layers, gives what `infer` without lanes gives on each group, bit for bit (whichever lane ran
/// it), and the whole batch's output within 1e-6; follows parameter changes; and is refused where
/// it cannot be made.
@Suite struct LaneTests {
    /// `name` at `size` with every parameter and buffer set from a seeded generator (batch norms'
    /// running variances positive), on `runtime`.
    static func model(_ name: String, size: Int, runtime: Runtime, seed: UInt64 = 5) throws -> Model {
        let m = try Zoo.model(named: name, runtime: runtime, numClasses: 10, inChannels: 3, imageSize: size)
        var g = SplitMix64(seed: seed)
        for (pname, p) in try m.namedParameters() {
            guard let f = p.floats else { continue }
            let variance = pname.hasSuffix("running_var")
            for i in f.indices { f[i] = variance ? 0.5 + g.nextUnitFloat() : (g.nextUnitFloat() - 0.5) * 0.2 }
        }
        m.fuseActivations()
        m.isTraining = false
        return m
    }

    /// `model.infer` on `x` one group of `group` images at a time, the outputs end to end.
    static func grouped(_ model: Model, _ x: [Float], _ shape: Shape, group: Int) throws -> [Float] {
        let n = shape.dims[0], per = shape.count / n
        var out: [Float] = []
        for first in stride(from: 0, to: n, by: group) {
            let last = min(n, first + group)
            var dims = shape.dims
            dims[0] = last - first
            out += try x.withUnsafeBufferPointer {
                Array(try model.infer(UnsafeBufferPointer(rebasing: $0[(first * per)..<(last * per)]), shape: Shape(dims)))
            }
        }
        return out
    }

    static func images(_ shape: Shape) -> [Float] {
        var g = SplitMix64(seed: 23)
        return (0..<shape.count).map { _ in g.nextUnitFloat() * 2 - 1 }
    }

    /// Groups of one image (batch 4 and 5 on 2 lanes) and of four (batch 16: 4 groups); unfrozen
    /// and frozen; residual, inception (GoogLeNet's stacked 1x1 branches above batch 1) and
    /// Inception v3 blocks.
    @Test(arguments: [("resnet18", 32, 5), ("resnet18", 32, 16), ("resnet50", 32, 4), ("googlenet", 64, 5),
                      ("inception_v3", 75, 4)])
    func lanesGiveTheOutputsOfTheirGroups(_ name: String, _ size: Int, _ batch: Int) throws {
        let runtime = threadedRuntime(2)
        let whole = try Self.model(name, size: size, runtime: runtime)
        let split = try Self.model(name, size: size, runtime: runtime)
        let shape = Shape([batch, 3, size, size])
        let x = Self.images(shape)
        let group = BatchLanes.groupSize(images: batch, lanes: 2)
        #expect(group == (batch == 16 ? 4 : 1))
        let expected = try Self.grouped(whole, x, shape, group: group)
        let oneCall = try x.withUnsafeBufferPointer { Array(try whole.infer($0, shape: shape)) }
        #expect(closeness(expected, oneCall, relative: 1e-6).ok, "\(name): groups against one call")
        #expect(try split.prepareLanes(forBatch: batch, lanes: 2) == 2)
        #expect(split.laneCount == 2)
        let unfrozen = try x.withUnsafeBufferPointer { Array(try split.infer($0, shape: shape)) }
        #expect(unfrozen == expected, "\(name): lanes, unfrozen")
        try split.freezeForInference()
        #expect(split.laneCount == 2)
        for pass in 0..<2 { // the groups go to whichever lane claims them first
            let frozen = try x.withUnsafeBufferPointer { Array(try split.infer($0, shape: shape)) }
            #expect(frozen == expected, "\(name): lanes, frozen, pass \(pass)")
        }
        // one image: fewer images than lanes, run whole
        let one = Shape([1, 3, size, size])
        let first = try x.withUnsafeBufferPointer { Array(try split.infer(UnsafeBufferPointer(rebasing: $0[0..<one.count]), shape: one)) }
        #expect(first == (try Self.grouped(whole, Array(x[0..<one.count]), one, group: 1)), "\(name): one image")
    }

    /// Parameters written after the lanes were made reach every lane (the replicas copy them
    /// again when the runtime's parameter generation moves).
    @Test func lanesFollowParameterChanges() throws {
        let runtime = threadedRuntime(2)
        let whole = try Self.model("resnet18", size: 32, runtime: runtime)
        let split = try Self.model("resnet18", size: 32, runtime: runtime)
        try split.prepareLanes(forBatch: 4, lanes: 2)
        let shape = Shape([4, 3, 32, 32])
        let x = Self.images(shape)
        let before = try x.withUnsafeBufferPointer { Array(try split.infer($0, shape: shape)) }
        for m in [whole, split] {
            let (_, fc) = try #require(try m.namedParameters().first { $0.name == "fc.weight" })
            let f = try #require(fc.floats)
            for i in f.indices { f[i] *= -1.5 }
        }
        let expected = try Self.grouped(whole, x, shape, group: BatchLanes.groupSize(images: 4, lanes: 2))
        let after = try x.withUnsafeBufferPointer { Array(try split.infer($0, shape: shape)) }
        #expect(after == expected)
        #expect(after != before)
    }

    /// The automatic choice: the runtime's threads when each lane gets two images or more and no
    /// weight tensor reaches `BatchLanes.largestParameter` elements; else none.
    @Test func automaticLanes() throws {
        let two = threadedRuntime(2)
        #expect(try Self.model("resnet18", size: 32, runtime: two).prepareLanes(forBatch: 4) == 2)
        #expect(try Self.model("resnet18", size: 32, runtime: two).prepareLanes(forBatch: 3) == 1)
        #expect(try Self.model("resnet18", size: 32, runtime: threadedRuntime(1)).prepareLanes(forBatch: 16) == 1)
        let side = 2048 // a fully connected layer of 2048 x 2048 = 1 << 22 weights
        let wide = Model(runtime: two)
        try wide.add("flatten", "flatten")
        try wide.add("fc", "linear", [("in_features", .int(side)), ("out_features", .int(side))])
        #expect(side * side == BatchLanes.largestParameter)
        #expect(try wide.prepareLanes(forBatch: 16) == 1)
        #expect(try wide.prepareLanes(forBatch: 16, lanes: 2) == 2) // asked for: made all the same
    }

    /// What cannot be made is refused with an error naming why; lanes go when the graph changes.
    @Test func lanesRefusedOrDropped() throws {
        let runtime = threadedRuntime(2)
        let m = try Self.model("resnet18", size: 32, runtime: runtime)
        #expect(throws: PlyError.self) { try m.prepareLanes(forBatch: 4, lanes: 3) }
        #expect(throws: PlyError.self) { try m.prepareLanes(forBatch: 4, lanes: 0) }
        #expect(throws: PlyError.self) { try m.prepareLanes(forBatch: 0) }
        #expect(try m.prepareLanes(forBatch: 4, lanes: 2) == 2)
        #expect(try m.prepareLanes(forBatch: 4, lanes: 1) == 1)
        #expect(m.laneCount == 1)
        let chain = Model(runtime: runtime)
        try chain.add("conv", "conv2d", [("in_channels", .int(3)), ("out_channels", .int(4)), ("kernel_size", .int(3))])
        #expect(try chain.prepareLanes(forBatch: 4, lanes: 2) == 2)
        try chain.add("relu", "relu")
        #expect(chain.laneCount == 1, "adding a node drops the lanes")
        try m.freezeForInference()
        do {
            try m.prepareLanes(forBatch: 4)
            Issue.record("prepareLanes on a frozen model: nothing was thrown")
        } catch PlyError.frozen {
        } catch {
            Issue.record("prepareLanes on a frozen model: expected PlyError.frozen, got \(error)")
        }
    }

    /// `ply bench-model --lanes` is checked where parsed.
    @Test func benchModelChecksLanes() throws {
        for (args, words) in [(["--lanes", "0"], ["--lanes", "got 0"]), (["--lanes", "3", "--threads", "2"], ["--lanes 3", "--threads"]),
                              (["--lanes", "2", "--training"], ["--lanes", "inference"])] {
            let out = try CLITests.run(["bench-model", "convnet", "--batch", "4", "--image-size", "28", "--channels", "1"] + args)
            #expect(out.status != 0, "\(args)")
            for w in words { #expect(out.stderr.contains(w), "\(args): \(out.stderr)") }
        }
        let out = try CLITests.run(["bench-model", "convnet", "--batch", "8", "--image-size", "28", "--channels", "1",
                                    "--classes", "10", "--threads", "2", "--lanes", "2", "--runs", "1", "--iterations", "1"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("lanes 2"), "\(out.stdout)")
    }
}
