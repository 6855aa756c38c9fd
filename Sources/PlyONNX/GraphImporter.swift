import Foundation
import Ply

/// Maps an ONNX graph onto Ply layers, node by node in the graph's (topological) order.
/// Graph tensors become Ply nodes; constants (initializers, `Constant`, and what folds from
/// them) become weights or attribute values.
struct GraphImporter {
    /// Operators with a mapping, as errors list them.
    static let supported = [
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
        "ConstantOfShape", "Conv", "Dropout", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish",
        "Identity", "LeakyRelu", "MatMul (+ Add: Linear)", "MaxPool", "Mul (of two tensors, or by a per-channel constant)",
        "Pad (constant or reflect, of height and width)", "ReduceMean (over H and W)", "Relu", "Reshape (of the flatten kind)",
        "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Tanh", "Transpose", "Unsqueeze",
    ]

    let path: String
    let opset: Int
    let decoder: TensorDecoder

    var layers: [ImportedLayer] = []
    var weights: [(name: String, entry: SafeTensors.Entry)] = []
    /// Graph tensor → the Ply node computing it ("input" for the graph input).
    var nodeOf: [String: String] = [:]
    /// Graph tensor → its rank, for the tensors Ply computes.
    var rankOf: [String: Int] = [:]
    var constants: [String: ConstTensor] = [:]
    /// Graph tensor → (tensor it pads, pad height, pad width, the Pad node): a symmetric zero
    /// `Pad` waiting for its consumer, which folds it into its own padding (Conv, AveragePool)
    /// or gets a `pad2d` layer (``materializePad(_:)``).
    var padded: [String: (source: String, h: Int, w: Int, node: Onnx_NodeProto)] = [:]
    /// How many nodes read each graph tensor.
    var consumers: [String: Int] = [:]
    var usedNames: Set<String> = ["input"]
    /// Layer index of a bias-less linear made from a MatMul, by its output tensor (Add folds in).
    var matmulLinear: [String: Int] = [:]
    /// Layer index of a bias-less scale made from a Mul by a constant, by its output tensor
    /// (an Add of a constant of as many channels folds in as its bias).
    var scaleLayer: [String: Int] = [:]
    /// The graph input's batch dimension as exported (0: free).
    var exportedBatch = 0

    init(path: String, opset: Int) {
        self.path = path
        self.opset = opset
        decoder = TensorDecoder(path: path)
    }

    // MARK: - Names

    /// A Ply node name for `node`: the module path of a weight's name (`layer1.0.conv1.weight`
    /// → `layer1.0.conv1`), else the module scope of the node's name (torch.onnx's
    /// `/layer1/layer1.0/relu/Relu` → `layer1.0.relu`), else the operator; made unique.
    mutating func plyName(for node: Onnx_NodeProto, weight: String? = nil) -> String {
        var base = ""
        if let weight, weight.hasSuffix(".weight"), !weight.hasPrefix("onnx::") {
            base = String(weight.dropLast(".weight".count))
        } else {
            var scope: [String] = []
            for c in node.name.split(separator: "/").dropLast().map(String.init) {
                if let last = scope.last, c.hasPrefix(last + ".") { scope[scope.count - 1] = c } else { scope.append(c) }
            }
            base = scope.joined(separator: ".")
            if base.isEmpty {
                base = node.name.split(separator: "/").last.map(String.init) ?? ""
                if base.isEmpty { base = node.opType }
                base = base.lowercased()
            }
        }
        let cleaned = base.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" ? $0 : "_" }
        base = String(cleaned).split(separator: ".", omittingEmptySubsequences: true).joined(separator: ".")
        if base.isEmpty { base = "node" }
        return uniqueName(base)
    }

    // MARK: - Errors and attributes

    func unsupported(_ node: Onnx_NodeProto, _ reason: String) -> ONNXError {
        .unsupportedUse(path: path, node: node.name.isEmpty ? node.output.first ?? "?" : node.name, opType: node.opType,
                        opset: opset, reason: reason)
    }

    func attr(_ node: Onnx_NodeProto, _ name: String) -> Onnx_AttributeProto? { node.attribute.first { $0.name == name } }
    func int(_ node: Onnx_NodeProto, _ name: String, _ dflt: Int) -> Int { attr(node, name).map { Int(clamping: $0.i) } ?? dflt }
    func float(_ node: Onnx_NodeProto, _ name: String, _ dflt: Float) -> Float { attr(node, name)?.f ?? dflt }
    func ints(_ node: Onnx_NodeProto, _ name: String) -> [Int]? { attr(node, name).map { $0.ints.map { Int(clamping: $0) } } }
    func string(_ node: Onnx_NodeProto, _ name: String) -> String? {
        attr(node, name).map { String(decoding: $0.s, as: UTF8.self) }
    }

    /// Input `i` of `node` ("" = absent).
    func input(_ node: Onnx_NodeProto, _ i: Int) -> String { i < node.input.count ? node.input[i] : "" }

    /// The constant at input `i`, or an error saying it must be one.
    func constant(_ node: Onnx_NodeProto, _ i: Int, _ what: String) throws -> ConstTensor {
        let name = input(node, i)
        guard let c = constants[name] else { throw unsupported(node, "\(what) (input \(i), '\(name)') must be a constant or an initializer") }
        return c
    }

    /// The Ply node computing graph tensor `name`.
    func plyInput(_ node: Onnx_NodeProto, _ name: String) throws -> String {
        if padded[name] != nil {
            throw ONNXError.malformed(path: path, reason: "node '\(node.name)' reads the Pad output '\(name)' before it was mapped")
        }
        guard let n = nodeOf[name] else {
            if constants[name] != nil {
                throw unsupported(node, "input '\(name)' is a constant where Ply needs a computed tensor")
            }
            throw ONNXError.malformed(path: path, reason: "node '\(node.name)' reads '\(name)', which no earlier node or input produces")
        }
        return n
    }

    func rank(_ name: String) -> Int { rankOf[name] ?? 4 }

    /// Adds a layer computing `node`'s first output (named `name`, or as ``plyName(for:weight:)`` says).
    mutating func add(_ node: Onnx_NodeProto, type: String, _ attributes: Attributes, inputs: [String], rank: Int,
                      weight: String? = nil, params: [(String, SafeTensors.Entry)] = [], name given: String? = nil) throws {
        let name = given ?? plyName(for: node, weight: weight)
        layers.append(ImportedLayer(name: name, type: type, attributes: attributes, inputs: inputs))
        for (p, e) in params { weights.append((name: "\(name).\(p)", entry: e)) }
        guard let out = node.output.first, !out.isEmpty else {
            throw ONNXError.malformed(path: path, reason: "node '\(node.name)' (\(node.opType)) has no output")
        }
        for extra in node.output.dropFirst() where !extra.isEmpty && consumers[extra, default: 0] > 0 {
            throw unsupported(node, "its output '\(extra)' is used; Ply computes only the first output")
        }
        nodeOf[out] = name
        rankOf[out] = rank
    }

    /// The padding of `pads` [top, left, bottom, right] (or of `auto_pad`).
    func pads(_ node: Onnx_NodeProto) throws -> [Int] {
        let autoPad = string(node, "auto_pad") ?? "NOTSET"
        guard let p = ints(node, "pads"), autoPad == "NOTSET" || autoPad.isEmpty else {
            switch autoPad {
            case "NOTSET", "", "VALID": return [0, 0, 0, 0]
            case "SAME_UPPER", "SAME_LOWER":
                let k = ints(node, "kernel_shape") ?? []
                let s = ints(node, "strides") ?? [1, 1]
                guard k.count == 2, k.allSatisfy({ $0 % 2 == 1 }), s.allSatisfy({ $0 == 1 }) else {
                    throw unsupported(node, "auto_pad \(autoPad) is supported for stride 1 and odd kernels only "
                        + "(kernel \(k), strides \(s)); export with explicit pads")
                }
                return [k[0] / 2, k[1] / 2, k[0] / 2, k[1] / 2]
            default:
                throw unsupported(node, "auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
            }
        }
        guard p.count == 4 else { throw unsupported(node, "pads \(p): Ply's layers are 2-d (4 pads expected)") }
        guard p.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else {
            throw unsupported(node, "pads \(p) (top, left, bottom, right): Ply pads by 0 to 1048576 pixels")
        }
        return p
    }

    /// `pads` split into the symmetric part a layer pads itself, (height, width), and what is
    /// left for a `pad2d` before it, [left, right, top, bottom] (all zero when symmetric).
    static func split(_ p: [Int]) -> (symmetric: (Int, Int), extra: [Int]) {
        let h = min(p[0], p[2]), w = min(p[1], p[3])
        return ((h, w), [p[1] - w, p[3] - w, p[0] - h, p[2] - h])
    }

    /// `base`, or `base_1`, `base_2`, ... : a name no layer has yet (now taken).
    mutating func uniqueName(_ base: String) -> String {
        var name = base
        var k = 1
        while usedNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
        usedNames.insert(name)
        return name
    }

    /// Adds a `pad2d` layer `name` (unique already) padding Ply node `source` by `padding`
    /// [left, right, top, bottom]; returns `name`.
    mutating func addPad(name: String, source: String, padding: [Int], mode: String = "constant", value: Float = 0) -> String {
        var attrs: Attributes = [("padding", .ints(padding))]
        if mode != "constant" { attrs.append(("mode", .string(mode))) }
        if value != 0 { attrs.append(("value", .float(Double(value)))) }
        layers.append(ImportedLayer(name: name, type: "pad2d", attributes: attrs, inputs: [source]))
        return name
    }

    /// Turns a zero `Pad` waiting for its consumer (`padded`) into a `pad2d` layer, for a
    /// consumer that cannot fold it.
    mutating func materializePad(_ tensor: String) throws {
        guard let p = padded.removeValue(forKey: tensor) else { return }
        let source = try plyInput(p.node, p.source)
        nodeOf[tensor] = addPad(name: plyName(for: p.node), source: source, padding: [p.w, p.w, p.h, p.h])
        rankOf[tensor] = 4
    }

    func pair(_ node: Onnx_NodeProto, _ name: String, _ dflt: Int) throws -> [Int] {
        guard let v = ints(node, name) else { return [dflt, dflt] }
        guard v.count == 2, v.allSatisfy({ $0 >= 1 }) else {
            throw unsupported(node, "\(name) \(v): Ply's layers are 2-d (two positive values expected)")
        }
        return v
    }

    static func pairValue(_ v: [Int]) -> AttributeValue { v[0] == v[1] ? .int(v[0]) : .ints(v) }
}
