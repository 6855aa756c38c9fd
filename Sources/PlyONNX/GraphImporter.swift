import Foundation
import Ply

/// Maps an ONNX graph onto Ply layers, node by node in the graph's (topological) order.
/// Graph tensors become Ply nodes; constants (initializers, `Constant`, and what folds from
/// them) become weights or attribute values.
struct GraphImporter {
    /// Operators with a mapping, as errors list them.
    static let supported = [
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip (as ReLU: min 0, no max)", "Concat", "Constant",
        "ConstantOfShape", "Conv", "Dropout", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "Identity",
        "MatMul (+ Add: Linear)", "MaxPool", "Pad (constant zeros, into a following Conv or AveragePool)",
        "ReduceMean (over H and W)", "Relu", "Reshape (of the flatten kind)", "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Tanh", "Transpose", "Unsqueeze",
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
    /// Graph tensor → (tensor it pads, pad height, pad width): a zero `Pad` waiting for its consumer.
    var padded: [String: (source: String, h: Int, w: Int)] = [:]
    /// How many nodes read each graph tensor.
    var consumers: [String: Int] = [:]
    var usedNames: Set<String> = ["input"]
    /// Layer index of a bias-less linear made from a MatMul, by its output tensor (Add folds in).
    var matmulLinear: [String: Int] = [:]
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
        var name = base
        var k = 1
        while usedNames.contains(name) { name = "\(base)_\(k)"; k += 1 }
        usedNames.insert(name)
        return name
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
            throw unsupported(node, "reads the output of a Pad, which Ply folds only into a following Conv or AveragePool")
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

    /// Adds a layer computing `node`'s first output.
    mutating func add(_ node: Onnx_NodeProto, type: String, _ attributes: Attributes, inputs: [String], rank: Int,
                      weight: String? = nil, params: [(String, SafeTensors.Entry)] = []) throws {
        let name = plyName(for: node, weight: weight)
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

    /// The symmetric (height, width) padding of `pads` [top, left, bottom, right].
    func symmetricPads(_ node: Onnx_NodeProto) throws -> (Int, Int) {
        let autoPad = string(node, "auto_pad") ?? "NOTSET"
        guard let p = ints(node, "pads"), autoPad == "NOTSET" || autoPad.isEmpty else {
            switch autoPad {
            case "NOTSET", "", "VALID": return (0, 0)
            case "SAME_UPPER", "SAME_LOWER":
                let k = ints(node, "kernel_shape") ?? []
                let s = ints(node, "strides") ?? [1, 1]
                guard k.count == 2, k.allSatisfy({ $0 % 2 == 1 }), s.allSatisfy({ $0 == 1 }) else {
                    throw unsupported(node, "auto_pad \(autoPad) is supported for stride 1 and odd kernels only "
                        + "(kernel \(k), strides \(s)); export with explicit pads")
                }
                return (k[0] / 2, k[1] / 2)
            default:
                throw unsupported(node, "auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
            }
        }
        guard p.count == 4 else { throw unsupported(node, "pads \(p): Ply's layers are 2-d (4 pads expected)") }
        guard p[0] == p[2], p[1] == p[3], p.allSatisfy({ $0 >= 0 }) else {
            throw unsupported(node, "pads \(p) (top, left, bottom, right) are not symmetric; Ply pads both sides equally")
        }
        return (p[0], p[1])
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
