import Foundation
import Ply
import SwiftProtobuf

/// Walks the model's nodes and writes ONNX nodes and initializers.
struct ONNXWriter {
    let model: Model
    var nodes: [Onnx_NodeProto] = []
    var initializers: [Onnx_TensorProto] = []
    var state: [String: SafeTensors.Entry] = [:]
    var outputTensor = ""
    var outputDims: [Int] = []
    var counter = 0

    init(model: Model) { self.model = model }

    mutating func run(inputShape: Shape) throws {
        for (n, e) in try model.stateEntries() { state[n] = e }
        let shapes = try model.shapes(for: inputShape)
        var tensorOf = ["input"]
        for (id, node) in model.nodes.enumerated().dropFirst() {
            guard let layer = node.layer else { tensorOf.append(tensorOf[node.inputs.first ?? 0]); continue }
            let inputs = node.inputs.map { tensorOf[$0] }
            let inShapes = node.inputs.map { shapes[$0] }
            let description = try layer.describe(inputShapes: inShapes)
            let out = try emit(type: layer.type.name, attributes: layer.attributes, children: description.children,
                               prefix: node.name, inputs: inputs, inShapes: inShapes, outShape: shapes[id])
            tensorOf.append(out)
        }
        outputTensor = tensorOf[model.output]
        outputDims = Array(shapes[model.output].dims.dropFirst())
    }

    // MARK: - Helpers

    static func attribute(_ name: String, ints: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = ints.map { Int64($0) }
        return a
    }

    static func attribute(_ name: String, int: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(int)
        return a
    }

    static func attribute(_ name: String, string: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(string.utf8)
        return a
    }

    static func attribute(_ name: String, float: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = float
        return a
    }

    /// Adds a node; returns its output tensor's name (`name`, made unique).
    mutating func node(_ op: String, _ inputs: [String], name: String, _ attributes: [Onnx_AttributeProto] = []) -> String {
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = name
        n.input = inputs
        counter += 1
        n.output = [name.isEmpty ? "t\(counter)" : name]
        if nodes.contains(where: { $0.output.first == n.output[0] }) { n.output = ["\(name)_\(counter)"] }
        n.attribute = attributes
        nodes.append(n)
        return n.output[0]
    }

    /// Adds the state_dict tensor `name` as an initializer (float32, raw little-endian data),
    /// with its own shape or `dims` (of as many elements: a per-channel vector as [C, 1, 1]).
    mutating func initializer(_ name: String, layer: String, type: String, dims: [Int]? = nil) throws -> String {
        guard let e = state[name] else {
            throw ONNXError.unsupportedLayer(node: layer, type: type, reason: "no parameter '\(name)' in the model's state")
        }
        return constant(name, floats: try e.floats(), dims: dims ?? e.shape)
    }

    /// Adds a float32 initializer `name` (made unique) holding `floats` of `dims`; returns its name.
    mutating func constant(_ name: String, floats f: [Float], dims: [Int]) -> String {
        var t = Onnx_TensorProto()
        t.name = uniqueInitializer(name)
        t.dims = dims.map { Int64($0) }
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var raw = Data(capacity: f.count * 4)
        for v in f { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        t.rawData = raw
        initializers.append(t)
        return t.name
    }

    /// Adds an int64 initializer `name` (made unique) holding `ints` (1-d); returns its name.
    mutating func constant(_ name: String, ints: [Int]) -> String {
        var t = Onnx_TensorProto()
        t.name = uniqueInitializer(name)
        t.dims = [Int64(ints.count)]
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.int64Data = ints.map { Int64($0) }
        initializers.append(t)
        return t.name
    }

    func uniqueInitializer(_ name: String) -> String {
        var n = name
        var k = 1
        while initializers.contains(where: { $0.name == n }) { n = "\(name)_\(k)"; k += 1 }
        return n
    }

    static func value(_ attrs: Attributes, _ key: String) -> AttributeValue? { attrs.first { $0.0 == key }?.1 }

    static func pair(_ attrs: Attributes, _ key: String, _ dflt: Int) -> [Int] {
        switch value(attrs, key) {
        case let .int(i)?: return [i, i]
        case let .ints(v)? where v.count == 2: return v
        case let .ints(v)? where v.count == 1: return [v[0], v[0]]
        default: return [dflt, dflt]
        }
    }

    static func int(_ attrs: Attributes, _ key: String, _ dflt: Int) -> Int {
        if case let .int(i)? = value(attrs, key) { return i }
        return dflt
    }

    static func bool(_ attrs: Attributes, _ key: String, _ dflt: Bool) -> Bool {
        if case let .bool(b)? = value(attrs, key) { return b }
        return dflt
    }

    static func float(_ attrs: Attributes, _ key: String, _ dflt: Double) -> Double {
        switch value(attrs, key) {
        case let .float(d)?: return d
        case let .int(i)?: return Double(i)
        default: return dflt
        }
    }

    // MARK: - Layers

    /// Emits one layer (or a composite's sub-graph); returns the tensor holding its output.
    mutating func emit(type: String, attributes a: Attributes, children: [LayerDescription.Child], prefix: String,
                       inputs: [String], inShapes: [Shape], outShape: Shape) throws -> String {
        func fail(_ reason: String) -> ONNXError { .unsupportedLayer(node: prefix, type: type, reason: reason) }
        let x = inputs.first ?? "input"
        switch type {
        case "conv2d":
            let k = Self.pair(a, "kernel_size", 1)
            var p = Self.pair(a, "padding", 0)
            let d = Self.pair(a, "dilation", 1), groups = Self.int(a, "groups", 1)
            // "same" (stride 1, odd kernels): d*(k-1)/2 on each side, as conv2d computes it
            if case let .string(s)? = Self.value(a, "padding") { p = s == "same" ? [d[0] * (k[0] - 1) / 2, d[1] * (k[1] - 1) / 2] : [0, 0] }
            var ins = [x, try initializer("\(prefix).weight", layer: prefix, type: type)]
            if Self.bool(a, "bias", true) { ins.append(try initializer("\(prefix).bias", layer: prefix, type: type)) }
            // a second input (an inference-only conv's residual, added before its activation): Conv, then Add
            let conv = node("Conv", ins, name: inputs.count > 1 ? "\(prefix).conv" : prefix,
                            [Self.attribute("kernel_shape", ints: k), Self.attribute("strides", ints: Self.pair(a, "stride", 1)),
                             Self.attribute("pads", ints: [p[0], p[1], p[0], p[1]]),
                             Self.attribute("dilations", ints: d), Self.attribute("group", int: groups)])
            return inputs.count > 1 ? node("Add", [conv, inputs[1]], name: prefix) : conv
        case "batchnorm2d":
            guard Self.bool(a, "affine", true), Self.bool(a, "track_running_stats", true) else {
                throw fail("affine and track_running_stats must be true (ONNX's BatchNormalization has scale, bias and statistics)")
            }
            let ins = try [x] + ["weight", "bias", "running_mean", "running_var"].map { try initializer("\(prefix).\($0)", layer: prefix, type: type) }
            return node("BatchNormalization", ins, name: prefix,
                        [Self.attribute("epsilon", float: Float(Self.float(a, "eps", 1e-5))),
                         Self.attribute("momentum", float: Float(1 - Self.float(a, "momentum", 0.1)))])
        case "relu", "sigmoid", "tanh", "hardswish":
            return node(["relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "hardswish": "HardSwish"][type]!, [x], name: prefix)
        case "hardtanh", "relu6":
            let lo = type == "relu6" ? 0 : Float(Self.float(a, "min_val", -1)), hi = type == "relu6" ? 6 : Float(Self.float(a, "max_val", 1))
            let minInput = lo == -.infinity ? "" : constant("\(prefix).min", floats: [lo], dims: [])
            let maxInput = hi == .infinity ? "" : constant("\(prefix).max", floats: [hi], dims: [])
            return node("Clip", [x, minInput, maxInput], name: prefix)
        case "leakyrelu":
            return node("LeakyRelu", [x], name: prefix, [Self.attribute("alpha", float: Float(Self.float(a, "negative_slope", 0.01)))])
        case "hardsigmoid":
            return node("HardSigmoid", [x], name: prefix, [Self.attribute("alpha", float: Float(Self.float(a, "alpha", 1.0 / 6.0))),
                                                           Self.attribute("beta", float: Float(Self.float(a, "beta", 0.5)))])
        case "pad2d":
            let p = Self.value(a, "padding").flatMap { v -> [Int]? in
                if case let .ints(i) = v { return i }
                if case let .int(i) = v { return [i, i, i, i] }
                return nil
            } ?? []
            guard p.count == 4 else { throw fail("padding must be 4 values [left, right, top, bottom]") }
            var mode = "constant"
            if case let .string(m)? = Self.value(a, "mode") { mode = m }
            let pads = constant("\(prefix).pads", ints: [0, 0, p[2], p[0], 0, 0, p[3], p[1]])
            var ins = [x, pads]
            if mode == "constant" { ins.append(constant("\(prefix).value", floats: [Float(Self.float(a, "value", 0))], dims: [])) }
            return node("Pad", ins, name: prefix, [Self.attribute("mode", string: mode)])
        case "scale":
            let r = inShapes.first?.rank ?? 4
            let c = Self.int(a, "num_features", 1)
            let dims = c == 1 ? [1] : [c] + Array(repeating: 1, count: max(r - 2, 0))
            var y = node("Mul", [x, try initializer("\(prefix).weight", layer: prefix, type: type, dims: dims)],
                         name: Self.bool(a, "bias", false) ? "\(prefix).mul" : prefix)
            if Self.bool(a, "bias", false) {
                y = node("Add", [y, try initializer("\(prefix).bias", layer: prefix, type: type, dims: dims)], name: prefix)
            }
            return y
        case "mul":
            return node("Mul", inputs, name: prefix)
        case "softmax", "log_softmax":
            return node(type == "softmax" ? "Softmax" : "LogSoftmax", [x], name: prefix, [Self.attribute("axis", int: Self.int(a, "dim", 1))])
        case "maxpool2d", "avgpool2d":
            let k = Self.pair(a, "kernel_size", 1)
            let s = Self.value(a, "stride") == nil ? k : Self.pair(a, "stride", 1)
            let p = Self.pair(a, "padding", 0)
            guard Self.pair(a, "dilation", 1) == [1, 1] else { throw fail("dilation must be 1") }
            var attrs = [Self.attribute("kernel_shape", ints: k), Self.attribute("strides", ints: s),
                         Self.attribute("pads", ints: [p[0], p[1], p[0], p[1]]),
                         Self.attribute("ceil_mode", int: Self.bool(a, "ceil_mode", false) ? 1 : 0)]
            if type == "avgpool2d" {
                if case .string? = Self.value(a, "divisor_override") { throw fail("divisor_override has no ONNX equivalent") }
                attrs.append(Self.attribute("count_include_pad", int: Self.bool(a, "count_include_pad", true) ? 1 : 0))
            }
            return node(type == "maxpool2d" ? "MaxPool" : "AveragePool", [x], name: prefix, attrs)
        case "adaptive_avgpool2d":
            guard let i = inShapes.first, i.rank == 4, outShape.rank == 4 else { throw fail("needs a 4-d input") }
            let (ih, iw, oh, ow) = (i.dims[2], i.dims[3], outShape.dims[2], outShape.dims[3])
            if oh == 1 && ow == 1 { return node("GlobalAveragePool", [x], name: prefix) }
            guard ih % oh == 0, iw % ow == 0 else {
                throw fail("output \(oh)x\(ow) from \(ih)x\(iw) is not a whole-window average (ONNX has no adaptive pooling); export for an input size whose feature map divides")
            }
            return node("AveragePool", [x], name: prefix, [Self.attribute("kernel_shape", ints: [ih / oh, iw / ow]),
                                                           Self.attribute("strides", ints: [ih / oh, iw / ow])])
        case "flatten":
            guard Self.int(a, "start_dim", 1) == 1, Self.int(a, "end_dim", -1) == -1 else { throw fail("only start_dim 1, end_dim -1") }
            return node("Flatten", [x], name: prefix, [Self.attribute("axis", int: 1)])
        case "linear":
            var ins = [x, try initializer("\(prefix).weight", layer: prefix, type: type)]
            if Self.bool(a, "bias", true) { ins.append(try initializer("\(prefix).bias", layer: prefix, type: type)) }
            return node("Gemm", ins, name: prefix, [Self.attribute("transB", int: 1)])
        case "dropout":
            return x
        case "add":
            var acc = inputs[0]
            for (i, y) in inputs.dropFirst().enumerated() {
                acc = node("Add", [acc, y], name: i == inputs.count - 2 ? prefix : "\(prefix).add\(i)")
            }
            return acc
        case "concat":
            return node("Concat", inputs, name: prefix, [Self.attribute("axis", int: Self.int(a, "dim", 1))])
        case "residual_basic", "residual_bottleneck", "basic_conv2d", "inception_googlenet":
            return try composite(type: type, children: children, prefix: prefix, input: x)
        case "inception_v3_a", "inception_v3_b", "inception_v3_c", "inception_v3_d", "inception_v3_e":
            return try inceptionV3(type: type, children: children, prefix: prefix, input: x)
        default:
            throw fail("no ONNX mapping for this type (Ply exports \(ONNXExport.supportedTypes.joined(separator: ", ")))")
        }
    }

    /// A chain of children, each reading the one before; `reluAfterNorms` puts a Relu after
    /// every batchnorm but the last (a residual block's main path).
    mutating func chain(_ children: [LayerDescription.Child], prefix: String, input: String, reluAfterNorms: Bool) throws -> String {
        var t = input
        let norms = children.filter { $0.typeName == "batchnorm2d" }.count
        var seen = 0
        for c in children {
            guard let name = c.name else { continue }
            t = try emit(type: c.typeName, attributes: c.attributes ?? [], children: c.details.children, prefix: "\(prefix).\(name)",
                         inputs: [t], inShapes: c.inputShapes, outShape: c.outputShape)
            if reluAfterNorms, c.typeName == "batchnorm2d" {
                seen += 1
                if seen < norms { t = node("Relu", [t], name: "\(prefix).relu\(seen)") }
            }
        }
        return t
    }

    /// The blocks' sub-graphs, from their children (names as torchvision's modules).
    mutating func composite(type: String, children: [LayerDescription.Child], prefix: String, input: String) throws -> String {
        guard !children.isEmpty, children.allSatisfy({ $0.attributes != nil || $0.typeName == "relu" }) else {
            throw ONNXError.unsupportedLayer(node: prefix, type: type, reason: "its children are not described (describe, plugin ABI 1.2)")
        }
        switch type {
        case "residual_basic", "residual_bottleneck":
            let main = children.filter { !($0.name ?? "").hasPrefix("downsample") && $0.typeName != "relu" }
            let down = children.filter { ($0.name ?? "").hasPrefix("downsample") }
            let y = try chain(main, prefix: prefix, input: input, reluAfterNorms: true)
            let skip = down.isEmpty ? input : try chain(down, prefix: prefix, input: input, reluAfterNorms: false)
            let sum = node("Add", [y, skip], name: "\(prefix).add")
            return node("Relu", [sum], name: prefix)
        case "basic_conv2d":
            let y = try chain(children.filter { $0.typeName != "relu" }, prefix: prefix, input: input, reluAfterNorms: false)
            return node("Relu", [y], name: prefix)
        default:  // inception_googlenet: branchN.M children, each branch a chain, concatenated
            var order: [String] = []
            var branches: [String: [LayerDescription.Child]] = [:]
            for c in children {
                let b = String((c.name ?? "").split(separator: ".").first ?? "")
                if branches[b] == nil { order.append(b) }
                branches[b, default: []].append(c)
            }
            let outs = try order.map { try chain(branches[$0]!, prefix: prefix, input: input, reluAfterNorms: false) }
            return node("Concat", outs, name: prefix, [Self.attribute("axis", int: 1)])
        }
    }
}
