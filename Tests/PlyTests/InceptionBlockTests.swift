import Foundation
import Testing
@testable import Ply

/// The Inception plugin: torchvision's BasicConv2d, GoogLeNet `Inception` and Inception-v3
/// blocks A–E and Aux, composed from the host's conv / batch-norm / ReLU / pool / concat layers.
/// GoogLeNet and InceptionA have PyTorch goldens; the others are checked for shapes,
/// parameter names and counts against torchvision's architecture, and by finite differences.
@Suite struct InceptionBlockTests {
    static let goldenCases = ["inception_googlenet_train", "inception_googlenet_eval",
                              "inception_v3_a_train", "inception_v3_a_eval"]

    /// Eval cases through the shared golden runner.
    @Test(arguments: goldenCases.filter { $0.hasSuffix("_eval") })
    func golden(_ name: String) throws {
        try GoldenLayerTests.run(name, runtime: sharedRuntime)
    }

    /// Train cases, run twice on one module without zeroing the gradients: PyTorch's
    /// parameter gradients after the first step, twice them after the second (backward ADDS).
    /// (Before the golden set's 2026-12-05 refresh each train case's `grad_params` included its
    /// eval case's, and this test replayed the eval step first; no longer.)
    @Test(arguments: goldenCases.filter { $0.hasSuffix("_train") })
    func goldenTrainAccumulates(_ name: String) throws {
        let dir = fixtures.appendingPathComponent("golden/layers")
        let train = try Self.loadJSON(dir.appendingPathComponent("\(name).json"))
        let attrs = try #require(train["attrs"]).object.mapValues { $0.int! }
        let layer = try Self.layer(try #require(train["op"]?.string), attrs)
        let params = try layer.parameters
        for p in params { p.gradient?.update(repeating: 0) }

        let grads = train["grad_params"]?.object ?? [:]
        #expect(grads.count == params.filter(\.trainable).count, "\(name): every weight has a reference gradient")
        for step in 1...2 {
            try goldenBlockStep(layer, params, train, training: true, accumulated: Float(step), "\(name) (train step \(step))")
        }
        let counters = params.filter(\.isInteger)
        #expect(!counters.isEmpty && counters.allSatisfy { $0.integers![0] == 2 }, "two train steps counted")
    }

    // MARK: - torchvision's architecture, restated

    /// A module with parameters inside a block: a BasicConv2d or a Linear.
    enum Module {
        case basic(String, cin: Int, cout: Int, kh: Int, kw: Int)
        case linear(String, inFeatures: Int, outFeatures: Int)

        /// state_dict entries, in order: (name, shape); num_batches_tracked is a scalar.
        var entries: [(String, [Int])] {
            switch self {
            case let .basic(p, cin, cout, kh, kw):
                return [("\(p).conv.weight", [cout, cin, kh, kw]), ("\(p).bn.weight", [cout]), ("\(p).bn.bias", [cout]),
                        ("\(p).bn.running_mean", [cout]), ("\(p).bn.running_var", [cout]),
                        ("\(p).bn.num_batches_tracked", [])]
            case let .linear(p, i, o):
                return [("\(p).weight", [o, i]), ("\(p).bias", [o])]
            }
        }

        var trainableCount: Int {
            switch self {
            case let .basic(_, cin, cout, kh, kw): return cin * cout * kh * kw + 2 * cout
            case let .linear(_, i, o): return i * o + o
            }
        }
    }

    static func sq(_ p: String, _ cin: Int, _ cout: Int, _ k: Int) -> Module { .basic(p, cin: cin, cout: cout, kh: k, kw: k) }
    static func rect(_ p: String, _ cin: Int, _ cout: Int, _ kh: Int, _ kw: Int) -> Module {
        .basic(p, cin: cin, cout: cout, kh: kh, kw: kw)
    }

    /// torchvision's modules for a block type and attributes, in registration order.
    static func modules(_ type: String, _ a: [String: Int]) -> [Module] {
        let inC = a["in_channels"]!
        switch type {
        case "inception_googlenet":
            let (c1, c3r, c3, c5r, c5, pp) = (a["ch1x1"]!, a["ch3x3red"]!, a["ch3x3"]!, a["ch5x5red"]!, a["ch5x5"]!, a["pool_proj"]!)
            return [sq("branch1", inC, c1, 1), sq("branch2.0", inC, c3r, 1), sq("branch2.1", c3r, c3, 3),
                    sq("branch3.0", inC, c5r, 1), sq("branch3.1", c5r, c5, 3), sq("branch4.1", inC, pp, 1)]
        case "inception_v3_a":
            return [sq("branch1x1", inC, 64, 1), sq("branch5x5_1", inC, 48, 1), sq("branch5x5_2", 48, 64, 5),
                    sq("branch3x3dbl_1", inC, 64, 1), sq("branch3x3dbl_2", 64, 96, 3), sq("branch3x3dbl_3", 96, 96, 3),
                    sq("branch_pool", inC, a["pool_features"]!, 1)]
        case "inception_v3_b":
            return [sq("branch3x3", inC, 384, 3), sq("branch3x3dbl_1", inC, 64, 1), sq("branch3x3dbl_2", 64, 96, 3),
                    sq("branch3x3dbl_3", 96, 96, 3)]
        case "inception_v3_c":
            let c7 = a["channels_7x7"]!
            return [sq("branch1x1", inC, 192, 1),
                    sq("branch7x7_1", inC, c7, 1), rect("branch7x7_2", c7, c7, 1, 7), rect("branch7x7_3", c7, 192, 7, 1),
                    sq("branch7x7dbl_1", inC, c7, 1), rect("branch7x7dbl_2", c7, c7, 7, 1),
                    rect("branch7x7dbl_3", c7, c7, 1, 7), rect("branch7x7dbl_4", c7, c7, 7, 1),
                    rect("branch7x7dbl_5", c7, 192, 1, 7), sq("branch_pool", inC, 192, 1)]
        case "inception_v3_d":
            return [sq("branch3x3_1", inC, 192, 1), sq("branch3x3_2", 192, 320, 3),
                    sq("branch7x7x3_1", inC, 192, 1), rect("branch7x7x3_2", 192, 192, 1, 7),
                    rect("branch7x7x3_3", 192, 192, 7, 1), sq("branch7x7x3_4", 192, 192, 3)]
        case "inception_v3_e":
            return [sq("branch1x1", inC, 320, 1),
                    sq("branch3x3_1", inC, 384, 1), rect("branch3x3_2a", 384, 384, 1, 3), rect("branch3x3_2b", 384, 384, 3, 1),
                    sq("branch3x3dbl_1", inC, 448, 1), sq("branch3x3dbl_2", 448, 384, 3),
                    rect("branch3x3dbl_3a", 384, 384, 1, 3), rect("branch3x3dbl_3b", 384, 384, 3, 1),
                    sq("branch_pool", inC, 192, 1)]
        case "inception_v3_aux":
            return [sq("conv0", inC, 128, 1), sq("conv1", 128, 768, 5),
                    .linear("fc", inFeatures: 768, outFeatures: a["num_classes"]!)]
        default:
            return []
        }
    }

    static func layer(_ type: String, _ a: [String: Int]) throws -> Layer {
        try Layer(type, a.sorted { $0.key < $1.key }.map { ($0.key, AttributeValue.int($0.value)) }, runtime: sharedRuntime)
    }

    /// Full-size configurations as torchvision's Inception3 uses them.
    static let blocks: [(String, [String: Int])] = [
        ("inception_googlenet", ["in_channels": 192, "ch1x1": 64, "ch3x3red": 96, "ch3x3": 128, "ch5x5red": 16,
                                 "ch5x5": 32, "pool_proj": 32]),
        ("inception_v3_a", ["in_channels": 192, "pool_features": 32]),
        ("inception_v3_b", ["in_channels": 288]),
        ("inception_v3_c", ["in_channels": 768, "channels_7x7": 128]),
        ("inception_v3_d", ["in_channels": 768]),
        ("inception_v3_e", ["in_channels": 1280]),
        ("inception_v3_aux", ["in_channels": 768, "num_classes": 1000]),
    ]

    // MARK: - names, order, counts

    /// Every block lists torchvision's state_dict names and shapes, in order, with
    /// torchvision's trainable parameter count.
    @Test(arguments: blocks.indices)
    func stateDictNamesShapesAndCounts(_ i: Int) throws {
        let (type, attrs) = Self.blocks[i]
        let layer = try Self.layer(type, attrs)
        let params = try layer.parameters
        let expected = Self.modules(type, attrs).flatMap(\.entries)
        #expect(params.map(\.name) == expected.map(\.0), "\(type)")
        #expect(params.map(\.shape.dims) == expected.map(\.1), "\(type)")
        #expect(params.filter(\.trainable).map(\.name) == expected.map(\.0).filter { !$0.contains("running") && !$0.contains("num_batches") })
        #expect(params.filter(\.isInteger).allSatisfy { $0.name.hasSuffix("bn.num_batches_tracked") })
        let count = params.filter(\.trainable).reduce(0) { $0 + $1.shape.count }
        #expect(count == Self.modules(type, attrs).reduce(0) { $0 + $1.trainableCount }, "\(type)")
    }

    /// The blocks of torchvision's inception_v3 (with the aux head, 1000 classes) plus its stem
    /// and fc add up to torchvision's documented 27,161,264 parameters.
    @Test func inceptionV3TotalParameterCount() throws {
        let blocks: [(String, [String: Int])] = [
            ("inception_v3_a", ["in_channels": 192, "pool_features": 32]),
            ("inception_v3_a", ["in_channels": 256, "pool_features": 64]),
            ("inception_v3_a", ["in_channels": 288, "pool_features": 64]),
            ("inception_v3_b", ["in_channels": 288]),
            ("inception_v3_c", ["in_channels": 768, "channels_7x7": 128]),
            ("inception_v3_c", ["in_channels": 768, "channels_7x7": 160]),
            ("inception_v3_c", ["in_channels": 768, "channels_7x7": 160]),
            ("inception_v3_c", ["in_channels": 768, "channels_7x7": 192]),
            ("inception_v3_aux", ["in_channels": 768, "num_classes": 1000]),
            ("inception_v3_d", ["in_channels": 768]),
            ("inception_v3_e", ["in_channels": 1280]),
            ("inception_v3_e", ["in_channels": 2048]),
        ]
        var total = 0
        for (type, attrs) in blocks {
            total += try Self.layer(type, attrs).parameters.filter(\.trainable).reduce(0) { $0 + $1.shape.count }
        }
        for (cin, cout, k) in [(3, 32, 3), (32, 32, 3), (32, 64, 3), (64, 80, 1), (80, 192, 3)] {
            let stem = try Layer("basic_conv2d", [("in_channels", .int(cin)), ("out_channels", .int(cout)),
                                                  ("kernel_size", .int(k))], runtime: sharedRuntime)
            total += try stem.parameters.filter(\.trainable).reduce(0) { $0 + $1.shape.count }
        }
        total += 2048 * 1000 + 1000
        #expect(total == 27_161_264)
    }

    /// Against the real torchvision GoogLeNet state_dict (models/googlenet.json): every
    /// inception block's names and shapes, and the model's total parameter count.
    @Test func googlenetStateDictFromTorchvision() throws {
        let json = try JSON.load(fixtures.appendingPathComponent("golden/models/googlenet.json"))
        let entries = json["state_dict"]!.array.map { ($0.array[0].string!, $0.array[1].array.compactMap(\.int)) }
        let shape = Dictionary(entries, uniquingKeysWith: { a, _ in a })
        var total = 0
        for block in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"].map({ "inception" + $0 }) {
            let w = { (m: String) in shape["\(block).\(m).conv.weight"]! }
            let attrs = ["in_channels": w("branch1")[1], "ch1x1": w("branch1")[0], "ch3x3red": w("branch2.0")[0],
                         "ch3x3": w("branch2.1")[0], "ch5x5red": w("branch3.0")[0], "ch5x5": w("branch3.1")[0],
                         "pool_proj": w("branch4.1")[0]]
            let params = try Self.layer("inception_googlenet", attrs).parameters.filter { !$0.isInteger }
            let ref = entries.filter { $0.0.hasPrefix(block + ".") }
            #expect(params.map { "\(block).\($0.name)" } == ref.map(\.0))
            #expect(params.map(\.shape.dims) == ref.map(\.1))
            total += params.filter(\.trainable).reduce(0) { $0 + $1.shape.count }
        }
        for (cin, cout, k) in [(3, 64, 7), (64, 64, 1), (64, 192, 3)] { total += cin * cout * k * k + 2 * cout }
        total += 1024 * 1000 + 1000
        #expect(total == json["param_count"]?.int)
    }

    /// Loads a golden file through JSONSerialization (the InceptionA files are 5.7 MB, slow to
    /// decode through Decodable in debug builds).
    static func loadJSON(_ url: URL) throws -> JSON {
        func convert(_ any: Any) -> JSON {
            switch any {
            case let d as [String: Any]: return .object(d.mapValues(convert))
            case let a as [Any]: return .array(a.map(convert))
            case let s as String: return .string(s)
            case let n as NSNumber:
                let d = n.doubleValue
                return d == d.rounded() && abs(d) < 9e15 ? .int(Int(d)) : .double(d)
            default: return .null
            }
        }
        return convert(try JSONSerialization.jsonObject(with: Data(contentsOf: url)))
    }

    /// Keys of the object under top-level `key`, in file order (JSON objects lose the order).
    /// The values there are tensors, `{"shape": [...], "data": [...]}`, with no nested object.
    static func keysInFileOrder(_ data: Data, _ key: String) -> [String] {
        func find(_ text: String, from: Int) -> Int? { data.range(of: Data(text.utf8), in: from..<data.endIndex)?.lowerBound }
        guard let at = find("\"\(key)\":", from: data.startIndex), var pos = find("{", from: at) else { return [] }
        var keys: [String] = []
        pos += 1
        while let quote = find("\"", from: pos), let close = find("\"", from: quote + 1),
              let end = find("}", from: close), find("}", from: pos).map({ $0 > quote }) ?? false {
            keys.append(String(decoding: data[(quote + 1)..<close], as: UTF8.self))
            pos = end + 1
        }
        return keys
    }

    /// Parameter and buffer names come in the golden files' order (torchvision's state_dict).
    @Test(arguments: goldenCases)
    func parameterOrderMatchesGolden(_ name: String) throws {
        let url = fixtures.appendingPathComponent("golden/layers/\(name).json")
        let text = try Data(contentsOf: url)
        let json = try Self.loadJSON(url)
        let attrs = json["attrs"]!.object.mapValues { $0.int! }
        let params = try Self.layer(json["op"]!.string!, attrs).parameters
        let weights = Self.keysInFileOrder(text, "params"), buffers = Self.keysInFileOrder(text, "buffers")
        #expect(!weights.isEmpty && !buffers.isEmpty)
        #expect(params.filter(\.trainable).map(\.name) == weights)
        #expect(params.filter { !$0.trainable && !$0.isInteger }.map(\.name) == buffers)
    }

    // MARK: - shapes

    @Test(arguments: [
        (0, [1, 192, 28, 28], [1, 256, 28, 28]),
        (1, [1, 192, 35, 35], [1, 256, 35, 35]),
        (2, [1, 288, 35, 35], [1, 768, 17, 17]),
        (3, [1, 768, 17, 17], [1, 768, 17, 17]),
        (4, [1, 768, 17, 17], [1, 1280, 8, 8]),
        (5, [1, 1280, 8, 8], [1, 2048, 8, 8]),
        (6, [2, 768, 17, 17], [2, 1000]),
    ])
    func fullSizeOutputShapes(_ i: Int, _ input: [Int], _ output: [Int]) throws {
        let (type, attrs) = Self.blocks[i]
        let layer = try Self.layer(type, attrs)
        layer.setTraining(false)
        #expect(try layer.outputShape(for: [Shape(input)]) == Shape(output), "\(type)")
        var g = SplitMix64(seed: 7)
        let x = try Tensor(shape: Shape(input), data: (0..<Shape(input).count).map { _ in g.nextUnitFloat() - 0.5 })
        let y = try layer.forward([x])
        #expect(y.shape == Shape(output))
        #expect(y.data.allSatisfy { $0.isFinite })
    }

    // MARK: - finite differences

    /// Small configurations for the gradient check: (type, attrs, input shape, parameter).
    static let small: [(String, [String: Int], [Int], String)] = [
        ("basic_conv2d", ["in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1],
         [2, 3, 6, 5], "conv.weight"),
        ("inception_googlenet", ["in_channels": 4, "ch1x1": 2, "ch3x3red": 3, "ch3x3": 2, "ch5x5red": 2, "ch5x5": 3,
                                 "pool_proj": 2], [2, 4, 5, 5], "branch4.1.conv.weight"),
        ("inception_v3_a", ["in_channels": 4, "pool_features": 3], [2, 4, 4, 4], "branch3x3dbl_2.conv.weight"),
        ("inception_v3_b", ["in_channels": 4], [2, 4, 7, 7], "branch3x3dbl_3.conv.weight"),
        ("inception_v3_c", ["in_channels": 4, "channels_7x7": 3], [2, 4, 5, 5], "branch7x7dbl_3.conv.weight"),
        ("inception_v3_d", ["in_channels": 4], [2, 4, 7, 7], "branch7x7x3_2.bn.weight"),
        ("inception_v3_e", ["in_channels": 4], [2, 4, 3, 3], "branch3x3dbl_3b.conv.weight"),
        ("inception_v3_aux", ["in_channels": 4, "num_classes": 5], [2, 4, 17, 17], "conv0.conv.weight"),
    ]

    static func smallLayer(_ i: Int) throws -> (Layer, Tensor, String) {
        let (type, attrs, shape, param) = small[i]
        // A runtime of its own: the weights must not depend on what other tests drew from
        // the shared runtime's generator (a dead ReLU branch made the check vacuous once).
        var options = Runtime.Options()
        options.seed = UInt64(200 + i)
        let runtime = try Runtime(options: options)
        let layer = try Layer(type, attrs.sorted { $0.key < $1.key }.map { ($0.key, AttributeValue.int($0.value)) }, runtime: runtime)
        var g = SplitMix64(seed: UInt64(100 + i))
        let x = try Tensor(shape: Shape(shape), data: (0..<Shape(shape).count).map { _ in 2 * g.nextUnitFloat() - 1 })
        // Non-trivial batch-norm statistics and affine parameters.
        for p in try layer.parameters where p.shape.rank == 1 {
            let v = p.floats!
            for k in 0..<v.count {
                let u = g.nextUnitFloat()
                if p.name.hasSuffix("running_var") { v[k] = 0.5 + u } else if p.name.hasSuffix("bn.weight") { v[k] = 0.5 + u }
                else { v[k] = 0.2 * (u - 0.5) }
            }
        }
        return (layer, x, param)
    }

    /// Central differences of sum(output * g) for one input element and one parameter element,
    /// against backward (eval mode, so forward has no side effects).
    @Test(arguments: small.indices)
    func finiteDifferenceGradient(_ i: Int) throws {
        let (layer, x, pname) = try Self.smallLayer(i)
        let type = Self.small[i].0
        layer.setTraining(false)
        let y = try layer.forward([x])
        var gen = SplitMix64(seed: 5)
        let gy = try Tensor(shape: y.shape, data: (0..<y.shape.count).map { _ in 2 * gen.nextUnitFloat() - 1 })
        let loss = { (t: Tensor) throws -> Double in
            zip(try layer.forward([t]).data, gy.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let params = try layer.parameters
        for p in params { p.gradient?.update(repeating: 0) }
        let dx = try #require(try layer.backward(inputs: [x], output: y, gradOutput: gy)[0])
        let p = try #require(params.first { $0.name == pname }, "\(type) has no \(pname)")
        // The elements with the largest gradients (a dead ReLU channel would make the check vacuous).
        let grad = Array(p.gradient!)
        let kp = grad.indices.max { abs(grad[$0]) < abs(grad[$1]) }!
        let k = dx.data.indices.max { abs(dx.data[$0]) < abs(dx.data[$1]) }!

        // Eval mode is piecewise linear (conv, affine BN, ReLU, pools, concat): central
        // differences converge to the gradient as h shrinks, unless h crosses a ReLU or max-pool
        // kink, and float32 rounding grows as h shrinks; so try a few h and take the best.
        func numeric(_ f: (Float) throws -> Double) rethrows -> [Double] {
            try [1e-2, 3e-3, 1e-3, 3e-4].map { (h: Float) in (try f(h) - f(-h)) / Double(2 * h) }
        }
        let numericInput = try numeric { h in
            var xh = x
            xh.data[k] += h
            return try loss(xh)
        }
        let saved = p.floats![kp]
        let numericParam = try numeric { h in
            // a view taken after the last forward, so that layers keeping folded copies see the write
            // (see Parameter.floats)
            p.floats![kp] = saved + h
            defer { p.floats![kp] = saved }
            return try loss(x)
        }
        for (what, analytic, numeric) in [("input[\(k)]", Double(dx.data[k]), numericInput),
                                          ("\(pname)[\(kp)]", Double(grad[kp]), numericParam)] {
            let best = numeric.map { abs($0 - analytic) }.min()!
            #expect(best <= 1e-2 * abs(analytic) + 2e-5, "\(type): d/d\(what) analytic \(analytic) vs numeric \(numeric)")
            #expect(abs(analytic) > 1e-4, "\(type): d/d\(what) is \(analytic); the check would be vacuous")
        }
    }

    /// With grad_inputs[0].data == NULL the parameter gradients are the same; gradients
    /// accumulate over repeated backward calls; repeated forwards give the same output.
    @Test(arguments: [1, 4, 6])
    func parameterGradientsWithoutInputGradient(_ i: Int) throws {
        let (layer, x, pname) = try Self.smallLayer(i)
        let y = try layer.forward([x])
        let gy = try Tensor(shape: y.shape, data: (0..<y.shape.count).map { Float($0 % 7) - 3 })
        let p = try #require(try layer.parameters.first { $0.name == pname })
        p.gradient!.update(repeating: 0)
        _ = try layer.backward(inputs: [x], output: y, gradOutput: gy, wanted: [true])
        let withInput = Array(p.gradient!)
        p.gradient!.update(repeating: 0)
        let none = try layer.backward(inputs: [x], output: y, gradOutput: gy, wanted: [false])
        #expect(none[0] == nil)
        #expect(closeness(Array(p.gradient!), withInput).ok)
        _ = try layer.backward(inputs: [x], output: y, gradOutput: gy, wanted: [false])
        #expect(closeness(Array(p.gradient!), withInput.map { 2 * $0 }).ok)
        layer.setTraining(false)
        #expect(try layer.forward([x]) == (try layer.forward([x])))
    }

    /// Train mode counts batches in every batch-norm child; eval mode does not.
    @Test func trainingModeReachesEveryChild() throws {
        let (layer, x, _) = try Self.smallLayer(4)
        _ = try layer.forward([x])
        layer.setTraining(false)
        _ = try layer.forward([x])
        let counters = try layer.parameters.filter(\.isInteger)
        #expect(counters.count == 10)
        #expect(counters.allSatisfy { $0.integers![0] == 1 })
    }

    // MARK: - evaluation's arena and output slices

    /// Evaluation writes a batch of one's branches straight into their channels of the output
    /// (no concat) and keeps its intermediates in an arena it reuses and grows: one image alone
    /// must give that image's rows of a batch of two (which takes the concat), and a larger input
    /// in between (the arena grown) must not change a repeat of the first call.
    @Test(arguments: 1..<(small.count - 1))
    func evaluationSliceWritesMatchTheConcat(_ i: Int) throws {
        let (layer, x, _) = try Self.smallLayer(i)
        layer.setTraining(false)
        let one = try Tensor(shape: Shape([1] + Array(x.shape.dims.dropFirst())), data: Array(x.data.prefix(x.shape.count / 2)))
        let single = try layer.forward([one])
        let batch = try layer.forward([x])
        let firstImage = Array(batch.data.prefix(batch.shape.count / 2))
        #expect(single.shape.dims == [1] + Array(batch.shape.dims.dropFirst()))
        let worst = zip(single.data, firstImage).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst <= 1e-5, "\(Self.small[i].0): batch of one differs from the batch's first image by \(worst)")
        let dims = x.shape.dims
        var g = SplitMix64(seed: UInt64(300 + i))
        let bigShape = Shape([dims[0], dims[1], dims[2] + 4, dims[3] + 4])
        _ = try layer.forward([try Tensor(shape: bigShape, data: (0..<bigShape.count).map { _ in g.nextUnitFloat() })])
        let again = try layer.forward([one])
        #expect(again.data == single.data, "\(Self.small[i].0): a repeat after a larger input differs")
    }

    /// A batch on planes of 17x17 or more runs in evaluation in groups of as many images as threads,
    /// a group of one writing its branches straight into the output (inception_graph.c,
    /// forward_groups): torchvision's InceptionA on 3 images of 17x17 in double precision
    /// (Fixtures/inception, make-inception-batches.py), on 1, 2 (a group of 2, then 1) and 3 threads,
    /// twice on one layer (the arena reused).
    @Test(arguments: [1, 2, 3])
    func evaluationInGroupsOfImagesMatchesPyTorch(_ threads: Int) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("inception/inception_v3_a_eval_3x17x17.json"))
        let attrs = try #require(json["attrs"]).object.mapValues { $0.int! }
        var options = Runtime.Options()
        options.threads = threads
        let runtime = try Runtime(options: options)
        let layer = try Layer(try #require(json["op"]?.string),
                              attrs.sorted { $0.key < $1.key }.map { ($0.key, AttributeValue.int($0.value)) }, runtime: runtime)
        try writeGoldenParamsAndBuffers(json, to: try layer.parameters, "\(threads) threads")
        layer.setTraining(false)
        let x = try #require(json["input"]?.tensor), expected = try #require(json["output"]?.tensor)
        #expect(x.shape.dims[0] == 3 && x.shape.dims[2] * x.shape.dims[3] >= 17 * 17, "the case reaches the groups")
        try expectForwardsMatch(layer, x, expected, "\(threads) threads")
    }

    // MARK: - stacked 1x1 branches above batch 1

    /// Above batch 1 GoogLeNet's block runs its 1x1 branches on the input (branch1, branch2.0,
    /// branch3.0) as one stacked conv with its own copy of their folded weights
    /// (Plugins/Inception/inception_fuse.c); a batch of one runs each branch's own fold. Every image
    /// of a batch must equal that image alone, also after a member's conv weight, a member's
    /// batch-norm statistics and a training forward (which moves every running statistic without
    /// a parameter write) changed what the stacked copy holds. At 96x96 the copies out of the
    /// stacked output and the concat's are large enough to split over the runtime's threads.
    @Test(arguments: [5, 96])
    func stackedBranchesFollowWeightChanges(_ side: Int) throws {
        let (layer, x2, _) = try Self.smallLayer(1)
        var g = SplitMix64(seed: 401)
        let dims = [x2.shape.dims[0], x2.shape.dims[1], side, side]
        let shape = Shape([3] + Array(dims.dropFirst()))
        let x = try Tensor(shape: shape, data: (0..<shape.count).map { _ in 2 * g.nextUnitFloat() - 1 })
        layer.setTraining(false)
        func agree(_ what: String) throws -> [Float] {
            let batch = try layer.forward([x])
            let per = shape.count / 3, perOut = batch.shape.count / 3
            for n in 0..<3 {
                let one = try Tensor(shape: Shape([1] + Array(dims.dropFirst())),
                                     data: Array(x.data[(n * per)..<((n + 1) * per)]))
                let y = try layer.forward([one])
                let row = Array(batch.data[(n * perOut)..<((n + 1) * perOut)])
                let worst = zip(y.data, row).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= 1e-5, "\(what): image \(n) of the batch differs from it alone by \(worst)")
            }
            return batch.data
        }
        func change(_ name: String, _ f: (Float) -> Float) throws {
            let p = try #require(try layer.parameters.first { $0.name == name })
            try p.write(p.read().map(f))
        }
        var before = try agree("first forward"), after = before
        func moved() -> Bool { after != before } // (an #expect on the arrays would print them whole)
        try change("branch3.0.conv.weight") { $0 + 0.3 }
        after = try agree("after branch3.0's conv weight changed")
        #expect(moved(), "branch3.0's new weights changed nothing")
        before = after
        try change("branch1.bn.running_mean") { $0 - 0.3 }
        after = try agree("after branch1's running mean changed")
        #expect(moved(), "branch1's new running mean changed nothing")
        before = after
        layer.setTraining(true)
        _ = try layer.forward([x])
        layer.setTraining(false)
        after = try agree("after a training forward")
        #expect(moved(), "the training forward moved no running statistic")
    }

    // MARK: - errors

    @Test(arguments: [
        ("inception_v3_a", [("in_channels", AttributeValue.int(8))], "pool_features"),
        ("inception_v3_c", [("in_channels", .int(8)), ("channels_7x7", .int(0))], "channels_7x7"),
        ("inception_googlenet", [("in_channels", .int(8)), ("ch1x1", .float(2.5))], "ch1x1"),
        ("inception_v3_aux", [("in_channels", .int(-3)), ("num_classes", .int(10))], "in_channels"),
        ("basic_conv2d", [("in_channels", .int(3)), ("out_channels", .int(4))], "kernel_size"),
        ("basic_conv2d", [("in_channels", .int(3)), ("out_channels", .int(4)), ("kernel_size", .ints([3, 0]))], "kernel_size"),
        ("basic_conv2d", [("in_channels", .int(3)), ("out_channels", .int(4)), ("kernel_size", .int(3)),
                          ("padding", .int(-1))], "padding"),
    ])
    func badAttributes(_ type: String, _ attrs: Attributes, _ mentioned: String) throws {
        // The plugin's own error, or the host's attribute-schema check before create.
        let error = try #require(throws: (any Error).self) { try Layer(type, attrs, runtime: sharedRuntime) }
        #expect(error is PlyError, "\(error)")
        #expect("\(error)".contains(mentioned), "\(error)")
        #expect("\(error)".contains(type), "\(error)")
    }

    @Test func badInputShapes() throws {
        let b = try Self.layer("inception_v3_b", ["in_channels": 4])
        let channels = try #require(throws: PlyError.self) { try b.outputShape(for: [[1, 5, 9, 9]]) }
        #expect("\(channels)".contains("inception_v3_b") && "\(channels)".contains("in_channels = 4"), "\(channels)")
        let rank = try #require(throws: PlyError.self) { try b.outputShape(for: [[4, 9, 9]]) }
        #expect("\(rank)".contains("[N, C, H, W]"), "\(rank)")
        let aux = try Self.layer("inception_v3_aux", ["in_channels": 4, "num_classes": 3])
        let small = try #require(throws: PlyError.self) { try aux.outputShape(for: [[2, 4, 9, 9]]) }
        #expect("\(small)".contains("inception_v3_aux") && "\(small)".contains("smaller than the kernel"), "\(small)")
    }
}
