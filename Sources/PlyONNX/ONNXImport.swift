import Foundation
import Ply
import SwiftProtobuf

/// An ONNX model turned into a Ply model file and a state_dict (docs/onnx.md): `modelFileText`
/// is the readable model file, `weights` its parameters under the node names (torchvision's
/// names when the ONNX graph kept them), and `build` makes the model with those weights loaded.
public struct ONNXImport: Sendable {
    /// Largest ONNX file read (protobuf's own limit for one message).
    public static let maxFileBytes = Int(Int32.max)

    /// The file the model came from (or the name given for bytes).
    public let source: String
    /// The model's name: the file name without `.onnx`.
    public let name: String
    /// The default-domain opset the model was exported with.
    public let opset: Int
    /// The layers, in order.
    public let layers: [ImportedLayer]
    /// The node whose value is the model's output.
    public let output: String
    /// Parameters and buffers by state_dict name (`conv1.weight`), in layer order.
    public let weights: [(name: String, entry: SafeTensors.Entry)]
    /// The graph input's shape as exported (batch first); 0 where it is not fixed.
    public let inputShape: [Int]

    /// Reads and maps the ONNX file at `path`; tensors stored beside it (external data) load too.
    public init(contentsOf path: String) throws {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: path) else { throw PlyError.io(path: path, problem: .missing, reason: "") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= Self.maxFileBytes else {
            throw ONNXError.malformed(path: path, reason: "the file has \(size) bytes; a protobuf message holds at most \(Self.maxFileBytes)")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PlyError.io(path: path, problem: .unreadable, reason: error.localizedDescription)
        }
        try self.init(data: data, path: path)
    }

    /// Maps an ONNX model held in memory; `path` names it in errors and locates external data.
    public init(bytes: [UInt8], path: String = "<bytes>") throws {
        try self.init(data: Data(bytes), path: path)
    }

    init(data: Data, path: String) throws {
        let proto: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            proto = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw ONNXError.malformed(path: path, reason: "protobuf: \(error)")
        }
        source = path
        var base = URL(fileURLWithPath: path).lastPathComponent
        if base.lowercased().hasSuffix(".onnx") { base = String(base.dropLast(5)) }
        name = base.isEmpty ? "onnx_model" : base
        guard proto.hasGraph else { throw ONNXError.malformed(path: path, reason: "no graph") }
        let imports = proto.opsetImport.filter { $0.domain.isEmpty || $0.domain == "ai.onnx" }
        guard let version = imports.first?.version else { throw ONNXError.malformed(path: path, reason: "no default-domain opset_import") }
        guard (7...23).contains(version) else {
            throw ONNXError.malformed(path: path, reason: "opset \(version); Ply reads opsets 7 to 23 (tested: 13 to 18)")
        }
        opset = Int(version)
        let graph = proto.graph
        var g = GraphImporter(path: path, opset: opset)
        for t in graph.initializer { g.constants[t.name] = try g.decoder.decode(t) }
        let inputs = graph.input.filter { g.constants[$0.name] == nil }
        guard inputs.count == 1, let x = inputs.first else {
            throw ONNXError.malformed(path: path, reason: "Ply models take one input; the graph has \(inputs.count) (\(inputs.map(\.name)))")
        }
        inputShape = x.type.tensorType.shape.dim.map { d in
            if case let .dimValue(v)? = d.value, v > 0, v < Int64(Int32.max) { return Int(v) } else { return 0 }
        }
        g.exportedBatch = inputShape.first ?? 0
        g.nodeOf[x.name] = "input"
        g.rankOf[x.name] = max(inputShape.count, 1)
        for n in graph.node { for i in n.input where !i.isEmpty { g.consumers[i, default: 0] += 1 } }
        for o in graph.output { g.consumers[o.name, default: 0] += 1 }
        for n in graph.node { try g.map(n) }
        guard graph.output.count == 1, let out = graph.output.first else {
            throw ONNXError.malformed(path: path, reason: "Ply models have one output; the graph has \(graph.output.count)")
        }
        try g.materializePad(out.name)
        guard let outNode = g.nodeOf[out.name], outNode != "input" else {
            throw ONNXError.malformed(path: path, reason: "the graph's output '\(out.name)' is not computed by a layer Ply maps")
        }
        guard !g.layers.isEmpty else { throw ONNXError.malformed(path: path, reason: "the graph has no layers") }
        layers = g.layers
        weights = g.weights
        output = outNode
    }

    /// The Ply model file (YAML, docs/model-format.md): one layer per line, `inputs:` where a
    /// layer does not read the one before it.
    public var modelFileText: String {
        var lines = [
            "# Imported from \(URL(fileURLWithPath: source).lastPathComponent) (ONNX, opset \(opset)) by `ply import`.",
            "# Input: \(inputShape) (batch first). Weights: weights.safetensors beside this file.",
            "model: \(Self.scalar(name))",
            "layers:",
        ]
        var previous = "input"
        for l in layers {
            var fields = ["name: \(Self.scalar(l.name))", "type: \(Self.scalar(l.type))"]
            if l.inputs != [previous] {
                fields.append("inputs: " + (l.inputs.count == 1 ? Self.scalar(l.inputs[0]) : "[" + l.inputs.map(Self.scalar).joined(separator: ", ") + "]"))
            }
            for (k, v) in l.attributes { fields.append("\(k): \(Self.value(v))") }
            lines.append("  - {" + fields.joined(separator: ", ") + "}")
            previous = l.name
        }
        if output != previous { lines.append("output: \(Self.scalar(output))") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func scalar(_ s: String) -> String {
        let plain = s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" } && !s.isEmpty
            && !["true", "false", "null", "yes", "no", "on", "off"].contains(s.lowercased()) && Double(s) == nil && !s.hasPrefix("-")
        return plain ? s : "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func float(_ d: Double) -> String {
        if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }  // YAML's infinities
        let s = "\(Float(d))"
        return s.contains(".") || !s.contains("e") ? s : s.replacingOccurrences(of: "e", with: ".0e")
    }

    static func value(_ v: AttributeValue) -> String {
        switch v {
        case let .int(i): return "\(i)"
        case let .float(d): return float(d)
        case let .bool(b): return b ? "true" : "false"
        case let .string(s): return scalar(s)
        case let .ints(i): return "[" + i.map { "\($0)" }.joined(separator: ", ") + "]"
        case let .floats(f): return "[" + f.map(float).joined(separator: ", ") + "]"
        }
    }

    /// Builds the model for `inputShape` (default: the exported input shape, batch 1) and loads
    /// the imported weights.
    public func build(runtime: Runtime, inputShape shape: Shape? = nil) throws -> Model {
        let file = try ModelFile(text: modelFileText, source: source)
        let dims = shape ?? Shape([1] + inputShape.dropFirst().map { max($0, 1) })
        let model = try file.build(runtime: runtime, inputShape: dims)
        try loadWeights(into: model)
        return model
    }

    /// Loads the imported weights into `model` (built from `modelFileText`), all or nothing.
    public func loadWeights(into model: Model) throws {
        var entries: [String: SafeTensors.Entry] = [:]
        for w in weights { entries[w.name] = w.entry }
        try model.loadState(entries, order: weights.map(\.name), source: source)
    }

    /// Writes `directory/model.yaml` and `directory/weights.safetensors` (the directory is
    /// created when missing).
    public func write(to directory: String) throws {
        let dir = URL(fileURLWithPath: directory)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data(modelFileText.utf8).write(to: dir.appendingPathComponent("model.yaml"), options: .atomic)
        } catch {
            throw PlyError.io(path: directory, problem: .unwritable, reason: error.localizedDescription)
        }
        try SafeTensors.write(path: dir.appendingPathComponent("weights.safetensors").path, tensors: weights,
                              metadata: ["source": URL(fileURLWithPath: source).lastPathComponent, "format": "pt"])
    }
}
