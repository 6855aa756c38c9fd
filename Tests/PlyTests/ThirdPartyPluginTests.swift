import Foundation
import Testing
@testable import Ply

/// The example third-party plugin (Examples/plugin/leaky_relu.c), built the way its README
/// says — plain `cc`, no SwiftPM, no Swift runtime — then loaded by path and checked
/// numerically on its own and inside a model with built-in layers.
@Suite struct ThirdPartyPluginTests {
    static let source = CCompiler.repositoryRoot.appendingPathComponent("Examples/plugin/leaky_relu.c")

    /// Compiles the example into a fresh directory; returns the directory and the library path.
    func buildExample(_ tag: String) throws -> (directory: URL, path: String) {
        let dir = try CCompiler.temporaryDirectory("example-\(tag)")
        let path = try CCompiler.compile(Self.source, to: dir.appendingPathComponent("libleaky_relu.so"))
        return (dir, path)
    }

    /// A runtime with the built-ins and the example loaded.
    func runtimeWithExample(_ tag: String) throws -> (runtime: Runtime, directory: URL, path: String) {
        let (dir, path) = try buildExample(tag)
        let runtime = try isolatedRuntime()
        try runtime.loadPlugin(at: path)
        return (runtime, dir, path)
    }

    // MARK: - Building and loading

    @Test func buildsWithPlainCCompilerAndNoSwift() throws {
        let (dir, path) = try buildExample("nm")
        defer { try? FileManager.default.removeItem(at: dir) }

        let undefined = try CCompiler.run("nm", ["-D", "--undefined-only", path])
        try #require(undefined.status == 0, "nm failed: \(undefined.stderr)")
        #expect(!undefined.stdout.lowercased().contains("swift"), "needs Swift symbols:\n\(undefined.stdout)")

        let defined = try CCompiler.run("nm", ["-D", "--defined-only", path])
        let exported = defined.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
        #expect(exported.contains("ply_plugin_entry"), "\(defined.stdout)")

        if CCompiler.available("readelf") {
            let dynamic = try CCompiler.run("readelf", ["-d", path])
            let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            #expect(!needed.isEmpty, "\(dynamic.stdout)")
            for line in needed {
                #expect(line.contains("libc.so") || line.contains("libm.so"), "unexpected dependency: \(line)")
            }
        }
    }

    @Test func loadsByPathAndListsItsTypes() throws {
        let (dir, path) = try buildExample("load")
        defer { try? FileManager.default.removeItem(at: dir) }
        let runtime = try isolatedRuntime()
        let before = runtime.layerTypes.count

        let types = try runtime.loadPlugin(at: path)
        #expect(types.map(\.name) == ["leaky_relu", "channel_shuffle"])
        for t in types {
            #expect(t.library.path == path)
            #expect(t.library.name == "example.leaky_relu" && t.library.version == "1.0.0")
            #expect(t.library.description.contains(path))
            #expect(t.minInputs == 1 && t.maxInputs == 1)
            #expect(t.differentiable)
            #expect(!t.doc.isEmpty)
        }
        // Listed by the runtime after the built-ins, with their library of origin.
        let listed = runtime.layerTypes
        #expect(listed.count == before + 2)
        #expect(listed.suffix(2).map(\.name) == ["leaky_relu", "channel_shuffle"])
        #expect(try runtime.layerType(named: "channel_shuffle").library.path == path)
        #expect(try runtime.layerType(named: "relu").library.path != path)
        // The shared runtime is not affected.
        #expect(throws: PlyError.self) { try sharedRuntime.layerType(named: "leaky_relu") }
    }

    @Test func loadsADirectory() throws {
        let (dir, path) = try buildExample("dir")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Next to it: a shared library that is not a Ply plugin, and a file that is not a library.
        let helperSource = dir.appendingPathComponent("helper.c")
        try "int helper_answer(void) { return 42; }\n".write(to: helperSource, atomically: true, encoding: .utf8)
        let helper = try CCompiler.compile(helperSource, to: dir.appendingPathComponent("libhelper.so"))
        try "not a library\n".write(to: dir.appendingPathComponent("README.txt"), atomically: true, encoding: .utf8)

        let log = LogRecorder()
        let runtime = try isolatedRuntime(log: log)
        let loaded = try runtime.loadPlugins(inDirectory: dir.path)
        #expect(loaded.map(\.name).sorted() == ["channel_shuffle", "leaky_relu"])
        #expect(loaded.allSatisfy { $0.library.path == path })
        #expect(log.messages.contains { $0.contains(helper) && $0.contains("not a Ply plugin") }, "\(log.messages)")
        #expect(try Layer("leaky_relu", runtime: runtime).forward([try Tensor(shape: [2], data: [-100, 5])]).data == [-1, 5])
    }

    // MARK: - leaky_relu

    @Test(arguments: [nil, 0.2, 0.0, -0.5, 1.5] as [Double?])
    func leakyReluForwardMatchesClosedForm(_ slope: Double?) throws {
        let (runtime, dir, _) = try runtimeWithExample("lrelu-fwd")
        defer { try? FileManager.default.removeItem(at: dir) }
        let attrs: Attributes = slope.map { [("negative_slope", .float($0))] } ?? []
        let layer = try Layer("leaky_relu", attrs, runtime: runtime)
        var rng = ExampleRandom(seed: 7)
        var values = (0..<2 * 3 * 4 * 5).map { _ in rng.uniform(-3, 3) }
        values[0] = 0; values[1] = -0.0; values[2] = 1e30; values[3] = -1e-30
        let input = try Tensor(shape: [2, 3, 4, 5], data: values)

        let output = try layer.forward([input])
        #expect(output.shape == input.shape)
        let a = Float(slope ?? 0.01)
        // Exactly: one float32 multiplication per element, as in the closed form.
        let expected = values.map { $0 > 0 ? $0 : $0 * a }
        for i in values.indices where output.data[i] != expected[i] {
            Issue.record("x[\(i)] = \(values[i]): leaky_relu gives \(output.data[i]), expected \(expected[i])")
        }
    }

    @Test func leakyReluAcceptsAnIntegerSlope() throws {
        let (runtime, dir, _) = try runtimeWithExample("lrelu-int")
        defer { try? FileManager.default.removeItem(at: dir) }
        let layer = try Layer("leaky_relu", [("negative_slope", .int(2))], runtime: runtime)
        #expect(try layer.forward([try Tensor(shape: [3], data: [-1, 0, 4])]).data == [-2, 0, 4])
    }

    @Test func leakyReluBackwardMatchesFiniteDifferences() throws {
        let (runtime, dir, _) = try runtimeWithExample("lrelu-bwd")
        defer { try? FileManager.default.removeItem(at: dir) }
        let slope = 0.1
        let layer = try Layer("leaky_relu", [("negative_slope", .float(slope))], runtime: runtime)
        var rng = ExampleRandom(seed: 11)
        // Keep inputs away from the kink at 0 so central differences see one linear piece.
        let values = (0..<2 * 3 * 3 * 3).map { _ -> Float in
            let v = rng.uniform(0.2, 2)
            return rng.uniform(0, 1) < 0.5 ? -v : v
        }
        let input = try Tensor(shape: [2, 3, 3, 3], data: values)
        let weights = try Tensor(shape: input.shape, data: values.map { _ in rng.uniform(-1, 1) })

        // loss(x) = sum(weights * leaky_relu(x)); d loss / d x by the layer's backward.
        let output = try layer.forward([input])
        let grads = try layer.backward(inputs: [input], output: output, gradOutput: weights)
        let analytic = try #require(grads[0]).data

        func loss(_ x: [Float]) throws -> Double {
            let y = try layer.forward([try Tensor(shape: input.shape, data: x)]).data
            return zip(y, weights.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        for i in values.indices {
            var plus = values, minus = values
            plus[i] += h; minus[i] -= h
            let numeric = (try loss(plus) - loss(minus)) / Double(2 * h)
            #expect(abs(numeric - Double(analytic[i])) <= 1e-3 * max(1, abs(numeric)),
                    "x[\(i)] = \(values[i]): finite difference \(numeric) vs backward \(analytic[i])")
            // And the closed form.
            let closed = weights.data[i] * (values[i] > 0 ? 1 : Float(slope))
            #expect(abs(analytic[i] - closed) <= 1e-6, "x[\(i)]: \(analytic[i]) vs \(closed)")
        }

        // An input gradient that is not wanted is not written (and is not an error).
        let skipped = try layer.backward(inputs: [input], output: output, gradOutput: weights, wanted: [false])
        #expect(skipped[0] == nil)
    }

    // MARK: - channel_shuffle

    /// PyTorch's nn.ChannelShuffle: output channel k * groups + g is input channel g * (C / groups) + k.
    static func shuffled(_ x: Tensor, groups: Int) -> [Float] {
        let n = x.shape.dims[0], c = x.shape.dims[1], inner = x.shape.count / max(n * c, 1)
        var out = [Float](repeating: .nan, count: x.data.count)
        for b in 0..<n {
            for oc in 0..<c {
                let ic = (oc % groups) * (c / groups) + oc / groups
                for s in 0..<inner { out[(b * c + oc) * inner + s] = x.data[(b * c + ic) * inner + s] }
            }
        }
        return out
    }

    @Test func channelShuffleMatchesPyTorchDocExample() throws {
        let (runtime, dir, _) = try runtimeWithExample("shuffle-doc")
        defer { try? FileManager.default.removeItem(at: dir) }
        // torch.nn.ChannelShuffle(2) on channels [1, 2, 3, 4] (each 2x2) gives [1, 3, 2, 4].
        let layer = try Layer("channel_shuffle", [("groups", .int(2))], runtime: runtime)
        let input = try Tensor(shape: [1, 4, 2, 2], data: (1...4).flatMap { c in Array(repeating: Float(c), count: 4) })
        let output = try layer.forward([input])
        #expect(output.data == [1, 3, 2, 4].flatMap { c in Array(repeating: Float(c), count: 4) })
    }

    @Test(arguments: [
        ([2, 6, 3, 2], 3), ([2, 6, 3, 2], 2), ([1, 4, 5], 2), ([1, 8, 2, 1, 3], 4), ([3, 5, 2, 2], 1), ([3, 5, 2, 2], 5),
    ] as [([Int], Int)])
    func channelShuffleMatchesIndexFormula(_ dims: [Int], _ groups: Int) throws {
        let (runtime, dir, _) = try runtimeWithExample("shuffle")
        defer { try? FileManager.default.removeItem(at: dir) }
        let layer = try Layer("channel_shuffle", [("groups", .int(groups))], runtime: runtime)
        let shape = Shape(dims)
        let input = try Tensor(shape: shape, data: (0..<shape.count).map(Float.init))
        #expect(try layer.outputShape(for: [shape]) == shape)

        let output = try layer.forward([input])
        #expect(output.data == Self.shuffled(input, groups: groups))
        if groups == 1 || groups == dims[1] { #expect(output.data == input.data, "identity permutation") }

        // Backward routes each output gradient back to the input element it came from:
        // grad_in[n, g * (C / groups) + k] = grad_out[n, k * groups + g].
        var rng = ExampleRandom(seed: UInt64(groups))
        let gradOut = try Tensor(shape: shape, data: (0..<shape.count).map { _ in rng.uniform(-1, 1) })
        let gradIn = try #require(try layer.backward(inputs: [input], output: output, gradOutput: gradOut)[0])
        #expect(Self.shuffled(gradIn, groups: groups) == gradOut.data)
        // The adjoint identity <shuffle(x), g> = <x, backward(g)>.
        let lhs = zip(output.data, gradOut.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(input.data, gradIn.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-6 * max(1, abs(lhs)))
    }

    @Test func clearErrorsForBadAttributesAndShapes() throws {
        let (runtime, dir, _) = try runtimeWithExample("errors")
        defer { try? FileManager.default.removeItem(at: dir) }

        // Names and kinds: the host, against the example's attribute schema, before create.
        let missing = try requireAttributeProblem { try Layer("channel_shuffle", runtime: runtime) }
        #expect(missing.kind == .missing && missing.description.contains("'groups'"), "\(missing)")
        let typo = try requireAttributeProblem {
            try Layer("leaky_relu", [("negative_slop", .float(0.2))], runtime: runtime)
        }
        #expect(typo.description.contains("did you mean 'negative_slope'?"), "\(typo)")
        let zero = try #require(throws: PlyError.self) { try Layer("channel_shuffle", [("groups", .int(0))], runtime: runtime) }
        #expect(zero.description.contains("groups must be positive"), "\(zero)")
        let wrongKind = try requireAttributeProblem {
            try Layer("leaky_relu", [("negative_slope", .string("big"))], runtime: runtime)
        }
        #expect(wrongKind.description.contains("'negative_slope'") && wrongKind.description.contains("a string"), "\(wrongKind)")

        let layer = try Layer("channel_shuffle", [("groups", .int(4))], runtime: runtime)
        let indivisible = try #require(throws: PlyError.self) { try layer.outputShape(for: [[1, 6, 2, 2]]) }
        #expect(indivisible.description.contains("is 6") && indivisible.description.contains("groups=4"), "\(indivisible)")
        let flat = try #require(throws: PlyError.self) { try layer.outputShape(for: [[2, 8]]) }
        #expect(flat.description.contains("at least 3 dims") && flat.description.contains("got 2"), "\(flat)")
        #expect(throws: PlyError.self) { try layer.forward([Tensor(shape: [1, 6, 2, 2])]) }
        // Still usable.
        #expect(try layer.outputShape(for: [[1, 8, 2, 2]]) == [1, 8, 2, 2])
        try expectHostSurvives(runtime)
    }

    // MARK: - In a model

    @Test func runsInsideAModelWithBuiltinLayers() throws {
        let (runtime, dir, _) = try runtimeWithExample("model")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Model(runtime: runtime)
        try model.add("conv", "conv2d", [("in_channels", .int(2)), ("out_channels", .int(4)), ("kernel_size", .int(3))])
        try model.add("act", "leaky_relu", [("negative_slope", .float(0.1))])
        try model.add("shuffle", "channel_shuffle", [("groups", .int(2))])
        try model.add("flat", "flatten")
        try model.add("fc", "linear", [("in_features", .int(4 * 4 * 4)), ("out_features", .int(3))])

        var rng = ExampleRandom(seed: 3)
        let shape: Shape = [2, 2, 6, 6]
        let x = try Tensor(shape: shape, data: (0..<shape.count).map { _ in rng.uniform(-1, 1) })
        #expect(try model.shapes(for: shape).map(\.dims) == [[2, 2, 6, 6], [2, 4, 4, 4], [2, 4, 4, 4], [2, 4, 4, 4], [2, 64], [2, 3]])

        // Forward equals the layers applied one after another.
        let y = try model.forward(x)
        #expect(y.shape == [2, 3])
        var manual = x
        var activations: [Tensor] = []
        for node in model.nodes.dropFirst() {
            manual = try #require(node.layer).forward([manual])
            activations.append(manual)
        }
        #expect(closeness(y.data, manual.data).ok)
        // The plugin's layers did what they say inside the graph too.
        let conv = activations[0], act = activations[1], shuffled = activations[2]
        #expect(closeness(act.data, conv.data.map { $0 > 0 ? $0 : $0 * 0.1 }).ok)
        #expect(shuffled.data == Self.shuffled(act, groups: 2))

        // Backward: loss = sum(w * y). Input gradient against central differences.
        let w = (0..<y.data.count).map { _ in rng.uniform(-1, 1) }
        try model.zeroGradients()
        let gradInput = try w.withUnsafeBufferPointer { g in
            try #require(try model.backward(g, inputGradient: true)).map { $0 }
        }
        #expect(gradInput.count == shape.count)
        func loss(_ values: [Float]) throws -> Double {
            let out = try model.forward(try Tensor(shape: shape, data: values)).data
            return zip(out, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        for i in stride(from: 0, to: shape.count, by: 7) {
            var plus = x.data, minus = x.data
            plus[i] += h; minus[i] -= h
            let numeric = (try loss(plus) - loss(minus)) / Double(2 * h)
            // Loose: a pre-activation may sit near leaky_relu's kink, and float32 sums are noisy.
            #expect(abs(numeric - Double(gradInput[i])) <= 2e-3 + 5e-2 * abs(numeric),
                    "d loss / d x[\(i)]: finite difference \(numeric) vs backward \(gradInput[i])")
        }

        // Parameter gradients reached both trainable built-ins, through the plugin's layers.
        let params = try model.namedParameters()
        #expect(params.map(\.name) == ["conv.weight", "conv.bias", "fc.weight", "fc.bias"])
        for (name, p) in params {
            let g = try #require(p.gradient, "\(name) has a gradient")
            #expect(g.contains { $0 != 0 }, "\(name) gradient is all zero")
            #expect(g.allSatisfy { $0.isFinite }, "\(name) gradient is finite")
        }
        // conv.bias gradient by hand: sum over batch and positions of d loss / d conv output,
        // where d loss / d conv = leaky_relu'(conv) * unshuffle(d loss / d shuffle output).
        let fc = try #require(model.nodes[5].layer)
        let gFlat = try #require(try fc.backward(inputs: [activations[3]], output: activations[4],
                                                   gradOutput: try Tensor(shape: [2, 3], data: w), wanted: [true])[0])
        let gShuffled = try Tensor(shape: [2, 4, 4, 4], data: gFlat.data)
        let shuffleLayer = try #require(model.nodes[3].layer)
        let gAct = try #require(try shuffleLayer.backward(inputs: [act], output: shuffled, gradOutput: gShuffled)[0])
        var biasGrad = [Float](repeating: 0, count: 4)
        for b in 0..<2 { for c in 0..<4 { for s in 0..<16 {
            let k = (b * 4 + c) * 16 + s
            biasGrad[c] += gAct.data[k] * (conv.data[k] > 0 ? 1 : 0.1)
        } } }
        let convBias = try #require(params.first { $0.name == "conv.bias" }?.parameter.gradient)
        let c = closeness(Array(convBias), biasGrad, relative: 1e-4)
        #expect(c.ok, "conv.bias gradient max error \(c.error) > \(c.bound)")
    }
}

/// A small deterministic generator for test data (splitmix64).
private struct ExampleRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * Float(next() >> 40) * (1.0 / 16_777_216.0)
    }
}
