import Foundation
import Testing
@testable import Ply

/// `Model.freezeForInference()` (plugin.h's `freeze`, ABI 1.6): the layers free the unfolded
/// weights behind their folds, the outputs stay the same bit for bit, and everything that needs
/// the weights or training afterwards is refused with `PlyError.frozen`.
@Suite struct FreezeTests {
    /// Expects `body` to throw `PlyError.frozen`.
    static func expectFrozen(_ what: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("\(what): expected PlyError.frozen, nothing was thrown")
        } catch PlyError.frozen {
        } catch {
            Issue.record("\(what): expected PlyError.frozen, got \(error)")
        }
    }

    /// Floats of the conv weights inside composite blocks (the unfolded originals a freeze frees).
    static func blockConvWeights(_ model: Model) throws -> Int {
        let composite: Set<String> = ["residual_basic", "residual_bottleneck", "basic_conv2d", "inception_googlenet"]
        var total = 0
        for node in model.nodes {
            guard let layer = node.layer, composite.contains(layer.type.name) else { continue }
            for p in try layer.parameters where p.name.hasSuffix("weight") && p.shape.rank == 4 { total += p.shape.count }
        }
        return total
    }

    static func input(_ shape: Shape) -> [Float] {
        var g = SplitMix64(seed: 11)
        return (0..<shape.count).map { _ in g.nextUnitFloat() * 2 - 1 }
    }

    @Test(arguments: [("resnet18", 32), ("resnet50", 32), ("googlenet", 64)])
    func freezeFreesTheOriginalsAndKeepsOutputs(_ name: String, _ size: Int) throws {
        // its own: liveBytes counts this model's blocks only; NCHW throughout, so that `forward` (always
        // NCHW) equals `infer` bit for bit (BlockedLayoutTests freeze the blocked plan)
        var options = Runtime.Options()
        options.blockedLayouts = false
        let runtime = try Runtime(options: options)
        let model = try Zoo.model(named: name, runtime: runtime, numClasses: 10, inChannels: 3, imageSize: size)
        model.isTraining = false
        let shape: Shape = [2, 3, size, size]
        let x = Self.input(shape)
        let convWeights = try Self.blockConvWeights(model)
        #expect(convWeights > 0)
        let one: Shape = [1, 3, size, size]
        let first = Array(x.prefix(one.count))
        let singleBefore = try first.withUnsafeBufferPointer { Array(try model.infer($0, shape: one)) }
        let before = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) } // folds made
        let bytesBefore = runtime.state.liveBytes.load(ordering: .relaxed)
        let released = try model.freezeForInference()
        #expect(released > 0)
        #expect(model.isFrozen)
        let bytesAfter = runtime.state.liveBytes.load(ordering: .relaxed)
        // each original conv weight and its gradient (4 bytes each) are given back
        #expect(bytesBefore - bytesAfter >= 8 * convWeights, "freed \(bytesBefore - bytesAfter) bytes, conv weights \(convWeights)")
        let after = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) }
        #expect(after == before) // bit for bit
        let forward = try x.withUnsafeBufferPointer { Array(try model.forward($0, shape: shape)) }
        #expect(forward == before)
        // another batch size plans again on the frozen layers (kernels may differ by batch: compared with itself)
        let single = try first.withUnsafeBufferPointer { Array(try model.infer($0, shape: one)) }
        #expect(single == singleBefore)
    }

    @Test func afterFreezeWeightsAndTrainingAreRefused() throws {
        let runtime = try Runtime()
        let model = try Zoo.model(named: "resnet18", runtime: runtime, numClasses: 10, inChannels: 3, imageSize: 32)
        let kept = try model.namedParameters() // views taken before the freeze
        let weight = try #require(kept.first { $0.name.hasSuffix("conv1.weight") && $0.name.hasPrefix("layer1") })
        let shape: Shape = [1, 3, 32, 32]
        let x = Self.input(shape)
        try model.freezeForInference()
        Self.expectFrozen("namedParameters") { _ = try model.namedParameters() }
        Self.expectFrozen("a layer's parameters") { _ = try model.nodes[1].layer!.parameters }
        Self.expectFrozen("writing a kept view") { try weight.parameter.write(Array(repeating: 0, count: weight.parameter.shape.count)) }
        #expect(weight.parameter.floats == nil)
        #expect(weight.parameter.gradient == nil)
        #expect(weight.parameter.read().isEmpty)
        Self.expectFrozen("saving") { try model.saveWeights(to: FileManager.default.temporaryDirectory.appendingPathComponent("frozen-\(UUID()).safetensors").path) }
        Self.expectFrozen("a trainer") { _ = try Trainer(model: model, configuration: TrainingConfiguration(), classes: 10) }
        Self.expectFrozen("adding a node") { try model.add("extra", "relu") }
        model.isTraining = true
        Self.expectFrozen("infer in training mode") { _ = try x.withUnsafeBufferPointer { try model.infer($0, shape: shape) } }
        Self.expectFrozen("forward in training mode") { _ = try x.withUnsafeBufferPointer { try model.forward($0, shape: shape) } }
        model.isTraining = false
        let out = try x.withUnsafeBufferPointer { Array(try model.forward($0, shape: shape)) }
        #expect(out.count == 10)
        Self.expectFrozen("backward") { _ = try out.withUnsafeBufferPointer { try model.backward($0) } }
        // a second freeze is a no-op
        #expect(try model.freezeForInference() == 0)
    }

    /// The model's own conv2d -> batchnorm2d nodes: folded for good at the freeze.
    @Test func modelLevelFoldsAreFinal() throws {
        let runtime = try Runtime()
        let model = Model(runtime: runtime)
        try model.add("conv", "conv2d", [("in_channels", .int(3)), ("out_channels", .int(8)), ("kernel_size", .int(3)),
                                         ("padding", .int(1)), ("bias", .bool(false))])
        try model.add("bn", "batchnorm2d", [("num_features", .int(8))])
        try model.add("relu", "relu")
        for (name, p) in try model.namedParameters() where name.hasPrefix("bn.running") {
            try p.write((0..<p.shape.count).map { Float($0 % 3) * 0.25 + (name.hasSuffix("var") ? 0.5 : -0.1) })
        }
        model.fuseActivations()
        model.isTraining = false
        let shape: Shape = [2, 3, 9, 9]
        let x = Self.input(shape)
        let before = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) }
        let bytesBefore = runtime.layerBytes
        #expect(try model.freezeForInference() >= 1)
        // the original conv goes: its weight (8 x 3 x 3 x 3) and gradient
        #expect(bytesBefore - runtime.layerBytes >= 2 * 4 * 216)
        #expect(model.nodes[1].layer?.type.name == "conv2d")
        runtime.parametersChanged() // another model's weights moving does not re-derive a frozen fold
        let after = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) }
        #expect(after == before)
        // the folded-away conv has no value of its own once frozen
        model.output = 1
        Self.expectFrozen("the folded conv as output") { _ = try x.withUnsafeBufferPointer { try model.infer($0, shape: shape) } }
    }
    /// Plain 1x1 layers below the AVX-512 level read their weights packed on every plane, so the freeze
    /// keeps only the packing (conv.c's conv_freeze): their plain weights go with the gradients, and every
    /// input shape, seen before the freeze or not, gives the unfrozen layers' bits.
    @Test func oneByOneLayersKeepOnlyTheirPacking() throws {
        let runtime = try Runtime()
        func make() throws -> Model {
            let model = Model(runtime: runtime)
            try model.add("a", "conv2d", [("in_channels", .int(16)), ("out_channels", .int(26)), ("kernel_size", .int(1))])
            try model.add("relu", "relu")
            try model.add("b", "conv2d", [("in_channels", .int(26)), ("out_channels", .int(8)), ("kernel_size", .int(1)),
                                          ("stride", .int(2)), ("bias", .bool(false))])
            return model
        }
        let model = try make(), twin = try make()
        for ((_, p), (_, q)) in zip(try model.namedParameters(), try twin.namedParameters()) { try q.write(p.read()) }
        model.fuseActivations()
        twin.fuseActivations()
        model.isTraining = false
        twin.isTraining = false
        let weights = 16 * 26 + 26 * 8
        let seen: [Shape] = [[2, 16, 9, 9], [1, 16, 5, 7]], unseen: Shape = [3, 16, 31, 13]
        let inputs = (seen + [unseen]).map { Self.input($0) }
        let before = try zip(seen, inputs).map { s, x in try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: s)) } }
        let bytesBefore = runtime.layerBytes
        try model.freezeForInference()
        let freed = bytesBefore - runtime.layerBytes
        // the gradients everywhere; at AVX2 the plain weights as well (AVX-512 packs some planes only)
        #expect(freed >= 4 * weights * (cpuLevel == "avx2" ? 2 : 1), "freed \(freed) bytes, weights \(weights)")
        for (k, s) in (seen + [unseen]).enumerated() {
            let out = try inputs[k].withUnsafeBufferPointer { Array(try model.infer($0, shape: s)) }
            let expected = k < seen.count ? before[k]
                : try inputs[k].withUnsafeBufferPointer { Array(try twin.infer($0, shape: s)) }
            #expect(out == expected, "input \(s)")
        }
    }
    /// A GoogLeNet frozen before its first forward never stacks its 1x1 branches (the stacked conv
    /// would copy weights its frozen members may have freed): above batch 1 the members run on
    /// their own and give what the unfrozen model's stacked conv gives, to rounding.
    @Test func frozenBeforeStackingRunsTheMembers() throws {
        let runtime = try Runtime()
        let size = 64
        let model = try Zoo.model(named: "googlenet", runtime: runtime, numClasses: 10, inChannels: 3, imageSize: size)
        let twin = try Zoo.model(named: "googlenet", runtime: runtime, numClasses: 10, inChannels: 3, imageSize: size)
        for ((_, p), (_, q)) in zip(try model.namedParameters(), try twin.namedParameters()) { try q.write(p.read()) }
        model.isTraining = false
        twin.isTraining = false
        try model.freezeForInference()
        runtime.parametersChanged() // a generation moved after the freeze derives nothing again
        let shape: Shape = [3, 3, size, size]
        let x = Self.input(shape)
        let frozen = try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) }
        let stacked = try x.withUnsafeBufferPointer { Array(try twin.infer($0, shape: shape)) }
        #expect(closeness(frozen, stacked, relative: 1e-6).ok)
        #expect(try x.withUnsafeBufferPointer { Array(try model.infer($0, shape: shape)) } == frozen)
    }
    /// A frozen conv holds no scratch between forwards (conv.c's release_scratch): what its layer
    /// holds after a forward is what it held after the freeze, where an unfrozen one keeps its scratch.
    @Test(arguments: [1, 3])
    func frozenConvGivesItsScratchBack(_ kernel: Int) throws {
        let runtime = try Runtime()
        let layer = try Layer("conv2d", [("in_channels", .int(32)), ("out_channels", .int(32)), ("kernel_size", .int(kernel)),
                                         ("padding", .int(kernel / 2))], runtime: runtime)
        layer.setTraining(false)
        let shape: Shape = [1, 32, 28, 28]
        let x = try Tensor(shape: shape, data: Self.input(shape))
        let before = runtime.layerBytes
        let unfrozen = try layer.forward([x])
        #expect(runtime.layerBytes > before) // the scratch (and the packed weights) kept
        #expect(layer.freeze())
        let frozenBytes = runtime.layerBytes
        #expect(try layer.forward([x]).data == unfrozen.data)
        #expect(runtime.layerBytes == frozenBytes, "\(runtime.layerBytes - frozenBytes) bytes kept")
    }
}
