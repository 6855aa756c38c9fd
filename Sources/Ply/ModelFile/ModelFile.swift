import Foundation
import Yams

/// A model description in YAML (or JSON, which YAML contains): parameters with defaults,
/// a `layers` sequence of plugin layers, groups and repeats, and an output. The format is
/// described in docs/model-format.md. `build` turns it into a `Model`; every error names
/// the file, line, column and field.
public struct ModelFile: @unchecked Sendable {
    /// The path the text came from, or `<text>`.
    public let source: String
    /// The text as given.
    public let text: String
    /// `model:` (default: the file name without extension, or "model").
    public let name: String
    /// `description:`, if any.
    public let summary: String?
    /// The declared parameters and their defaults, in file order.
    public let parameters: [(name: String, value: AttributeValue)]

    let root: Yams.Node

    /// `transforms:`, if any: the data transforms the model is meant to be trained with.
    public let transforms: TransformSettings?

    static let topKeys: Set<String> = ["model", "description", "params", "vars", "min_input_size", "layers", "output", "transforms"]

    /// The most nodes a model file may expand to (`repeat`s included): 100,000, far beyond any
    /// real network (ResNet-152 has about 500), so that `repeat: 1000000000` is an error
    /// naming the line rather than minutes at 100% CPU and memory without end.
    public static let maxNodes = 100_000
    /// The most entries (layers, groups, repeat iterations) expanding a file may visit: a
    /// repeat whose layers are all switched off by `if:` makes no nodes but still costs time.
    /// Three per node allowed: a node inside a group inside a repeat costs three.
    public static let maxExpansionSteps = 3 * maxNodes
    /// The largest model file read, in bytes (16 MiB; real ones are a few KB). A bigger file,
    /// or a device such as /dev/zero, is refused after reading at most this much (+1 byte).
    public static let maxFileBytes = 16 << 20

    /// Parses `text`; `source` names it in errors (a path, or `<text>`).
    public init(text: String, source: String = "<text>") throws {
        self.source = source
        self.text = text
        // Refuse absurd nesting before Yams' recursive composer sees it (Nesting.swift).
        try ModelFile.checkNesting(text, source: source)
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ModelFile.syntaxError(error, file: source)
        }
        guard let node, let map = node.mapping else {
            throw ModelFileError(.structure, file: source, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1,
                                 field: "model", message: "a model file is a mapping with at least `layers:`")
        }
        root = node
        let r = Reader(file: source)
        let keys = try r.keys(map, allowed: ModelFile.topKeys, context: "the top level")
        guard keys["layers"] != nil else {
            throw r.error(.structure, node, field: "layers", message: "missing `layers:` (the sequence of layers)")
        }
        if let n = keys["model"] {
            guard let s = n.scalar?.string, !s.isEmpty else { throw r.error(.structure, n, field: "model", message: "must be a name") }
            name = s
        } else {
            name = source == "<text>" ? "model" : URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        }
        summary = keys["description"]?.scalar?.string
        transforms = try keys["transforms"].map { try TransformSettings.parse($0, reader: r) }
        var params: [(String, AttributeValue)] = []
        if let p = keys["params"] {
            guard let pm = p.mapping else { throw r.error(.structure, p, field: "params", message: "must be a mapping of name: default value") }
            var seen = Set<String>()
            for (k, v) in pm {
                let key = try r.name(k, field: "params")
                guard seen.insert(key).inserted else {
                    throw r.error(.structure, k, field: "params.\(key)", message: "parameter '\(key)' is declared twice")
                }
                params.append((key, try r.literal(v, field: "params.\(key)")))
            }
        }
        parameters = params
    }

    /// Reads and parses the file at `url` (YAML or JSON).
    public init(contentsOf url: URL) throws {
        // Missing files and directories are I/O errors of their own kind (PLY_ERR_IO in C).
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw PlyError.io(path: url.path, problem: .missing, reason: "model file")
        }
        if let kind = refusedFileKind(url.path) {
            throw PlyError.io(path: url.path, problem: .unreadable, reason: "is \(kind), not a model file")
        }
        // Read at most maxFileBytes + 1: a larger file (or /dev/zero) is refused, not slurped.
        let bytes: [UInt8]
        do {
            let file = try BoundedFile(path: url.path)
            bytes = try file.read(upTo: ModelFile.maxFileBytes + 1)
        } catch {
            throw PlyError.io(path: url.path, problem: .unreadable, reason: "\(error.operation) failed: \(error.reason)")
        }
        guard bytes.count <= ModelFile.maxFileBytes else {
            throw ModelFileError(.limit, file: url.path, line: nil, column: nil, field: "file",
                                 message: "the file is larger than \(ModelFile.maxFileBytes) bytes, the limit for a model file")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ModelFileError(.syntax, file: url.path, line: nil, column: nil, field: "file",
                                 message: "cannot read the file as UTF-8 text: it is not valid UTF-8")
        }
        try self.init(text: text, source: url.path)
    }

    /// Builds the model. `parameters` override the file's defaults (a name the file does
    /// not declare is an error). With `inputShape` (NCHW) the zoo's small-input rule applies
    /// — an input whose height or width is below `min_input_size` gets a parameter-free
    /// `interpolate` node named `resize` in front, resizing it (bilinear) up to that size —
    /// and every node's shape is checked, so a shape that does not fit is reported at the
    /// line of the layer where it happens. The model comes complete, with the relus that
    /// their layers can do themselves fused into them (`Model.fuseActivations`).
    public func build(runtime: Runtime, parameters overrides: [String: AttributeValue] = [:], inputShape: Shape? = nil) throws -> Model {
        var b = Builder(file: self, runtime: runtime)
        let model = try b.build(overrides: overrides, inputShape: inputShape)
        model.fuseActivations()
        return model
    }

    /// The declared `min_input_size` for `parameters` (nil when the file has none).
    public func minInputSize(parameters overrides: [String: AttributeValue] = [:]) throws -> Int? {
        var b = Builder(file: self, runtime: nil)
        let env = try b.environment(overrides)
        return try b.minInputSize(env)
    }

    static func syntaxError(_ error: YamlError, file: String) -> ModelFileError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let ctx = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return ModelFileError(.syntax, file: file, line: mark.line, column: mark.column, field: "yaml",
                                  message: "YAML syntax: \(problem)\(ctx)")
        case let .reader(problem, offset, _, yaml):
            var line: Int?, column: Int?
            if let offset {
                let prefix = yaml.utf8.prefix(offset)
                line = prefix.filter { $0 == UInt8(ascii: "\n") }.count + 1
                column = (prefix.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).last?.count ?? 0) + 1
            }
            return ModelFileError(.syntax, file: file, line: line, column: column, field: "yaml", message: "YAML: \(problem)")
        default:
            return ModelFileError(.syntax, file: file, line: nil, column: nil, field: "yaml", message: "YAML: \(error)")
        }
    }
}

/// Helpers that read YAML nodes and report errors at their marks.
struct Reader {
    let file: String

    func error(_ kind: ModelFileError.Kind, _ node: Yams.Node?, field: String, layer: String? = nil, message: String) -> ModelFileError {
        ModelFileError(kind, file: file, line: node?.mark?.line, column: node?.mark?.column, field: field, layer: layer, message: message)
    }

    /// The keys of a mapping (each a plain string, no duplicates, all in `allowed` unless nil).
    func keys(_ map: Yams.Node.Mapping, allowed: Set<String>?, context: String, layer: String? = nil) throws -> [String: Yams.Node] {
        var result: [String: Yams.Node] = [:]
        for (k, v) in map {
            guard let key = k.scalar?.string else {
                throw error(.structure, k, field: "key", layer: layer, message: "keys must be plain names")
            }
            guard result[key] == nil else {
                throw error(.structure, k, field: key, layer: layer, message: "'\(key)' is given twice in \(context)")
            }
            if let allowed, !allowed.contains(key) {
                throw error(.structure, k, field: key, layer: layer,
                            message: "unknown key '\(key)' in \(context); expected one of: \(allowed.sorted().joined(separator: ", "))")
            }
            result[key] = v
        }
        return result
    }

    /// An identifier (parameter, variable or loop index name).
    func name(_ node: Yams.Node, field: String) throws -> String {
        guard let s = node.scalar?.string, let f = s.first, f.isLetter || f == "_",
              s.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
              !["and", "or", "not", "if", "else", "true", "false", "min", "max"].contains(s) else {
            throw error(.structure, node, field: field, message: "'\(node.scalar?.string ?? "?")' is not a usable name (letters, digits, _)")
        }
        return s
    }

    /// A scalar or list without expressions (parameter defaults).
    func literal(_ node: Yams.Node, field: String) throws -> AttributeValue {
        try value(node, env: nil, field: field, layer: nil)
    }

    /// A scalar as its YAML type says, with `$name` / `$(...)` substituted (when `env` is given).
    func scalar(_ node: Yams.Node, env: [String: AttributeValue]?, field: String, layer: String?) throws -> AttributeValue {
        guard let s = node.scalar else {
            throw error(.structure, node, field: field, layer: layer, message: "must be a single value, not a \(node.mapping != nil ? "mapping" : "list")")
        }
        switch Tag.Name(rawValue: node.tag.description) {
        case .int:
            if let i = node.int { return .int(i) }
        case .float:
            if let f = node.float { return .float(f) }
        case .bool:
            if let b = node.bool { return .bool(b) }
        case .null:
            throw error(.structure, node, field: field, layer: layer, message: "has no value")
        default:
            break
        }
        if let env {
            do {
                if let v = try Expression.substitute(s.string, env) { return v }
            } catch let Expression.Failure.unknownName(n, known) {
                throw error(.unknownParameter, node, field: field, layer: layer,
                            message: "unknown name '\(n)' in '\(s.string)'; known: \(known.joined(separator: ", "))")
            } catch let Expression.Failure.invalid(why) {
                throw error(.structure, node, field: field, layer: layer, message: why)
            }
        }
        return .string(s.string)
    }

    /// A scalar or a flat list of numbers / strings, substituted.
    func value(_ node: Yams.Node, env: [String: AttributeValue]?, field: String, layer: String?) throws -> AttributeValue {
        guard let seq = node.sequence else { return try scalar(node, env: env, field: field, layer: layer) }
        let items = try seq.map { try scalar($0, env: env, field: field, layer: layer) }
        var ints: [Int] = [], floats: [Double] = []
        for item in items {
            switch item {
            case let .int(i): ints.append(i); floats.append(Double(i))
            case let .float(f): floats.append(f)
            default:
                throw error(.structure, node, field: field, layer: layer, message: "a list must hold numbers only, got \(item)")
            }
        }
        return ints.count == items.count ? .ints(ints) : .floats(floats)
    }
}

/// Walks a model file's layers into a `Model`.
struct Builder {
    let file: ModelFile
    let runtime: Runtime?
    let r: Reader
    var model: Model?
    var ids: [String: Model.NodeID] = [:]
    /// The entry each node came from: its mark, name and attribute nodes, for shape errors.
    var entries: [Model.NodeID: (node: Yams.Node, name: String, attrs: [String: Yams.Node])] = [:]
    var keys: [String: Yams.Node] = [:]
    /// Entries visited so far (bounded by `ModelFile.maxExpansionSteps`).
    var steps = 0

    init(file: ModelFile, runtime: Runtime?) {
        self.file = file
        self.runtime = runtime
        self.r = Reader(file: file.source)
        if let map = file.root.mapping { for (k, v) in map { if let s = k.scalar?.string { keys[s] = v } } }
    }

    static let layerKeys: Set<String> = ["name", "type", "inputs", "if"]
    static let groupKeys: Set<String> = ["group", "layers", "inputs", "vars", "if"]
    static let repeatKeys: Set<String> = ["repeat", "as", "layers", "if"]

    /// Defaults, then the caller's overrides, then `vars:` in order.
    mutating func environment(_ overrides: [String: AttributeValue]) throws -> [String: AttributeValue] {
        var env: [String: AttributeValue] = [:]
        for (k, v) in file.parameters { env[k] = v }
        let paramsNode = keys["params"]
        for (k, v) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let d = env[k] else {
                let declared = file.parameters.map(\.name).joined(separator: ", ")
                throw r.error(.unknownParameter, paramsNode ?? file.root, field: "params.\(k)",
                              message: "the caller sets parameter '\(k)', which this model does not declare; it has: \(declared.isEmpty ? "none" : declared)")
            }
            switch (d, v) {
            case (.int, .int), (.float, .float), (.bool, .bool), (.string, .string), (.ints, .ints), (.floats, .floats),
                 (.float, .int), (.floats, .ints):
                env[k] = v
            default:
                throw r.error(.badParameter, paramsNode ?? file.root, field: "params.\(k)",
                              message: "parameter '\(k)' defaults to \(d), so it cannot be set to \(v)")
            }
        }
        if let vars = keys["vars"] {
            guard let vm = vars.mapping else { throw r.error(.structure, vars, field: "vars", message: "must be a mapping of name: value") }
            for (k, v) in vm {
                let key = try r.name(k, field: "vars")
                guard env[key] == nil else {
                    throw r.error(.structure, k, field: "vars.\(key)", message: "'\(key)' is already a parameter or variable")
                }
                env[key] = try r.value(v, env: env, field: "vars.\(key)", layer: nil)
            }
        }
        return env
    }

    func minInputSize(_ env: [String: AttributeValue]) throws -> Int? {
        guard let n = keys["min_input_size"] else { return nil }
        guard case let .int(v) = try r.value(n, env: env, field: "min_input_size", layer: nil), v > 0 else {
            throw r.error(.structure, n, field: "min_input_size", message: "must be a positive integer")
        }
        return v
    }

    mutating func build(overrides: [String: AttributeValue], inputShape: Shape?) throws -> Model {
        guard let runtime else { throw PlyError.invalid("no runtime") }
        let env = try environment(overrides)
        let m = Model(runtime: runtime)
        model = m
        ids["input"] = Model.input
        if let shape = inputShape, shape.rank == 4, let minimum = try minInputSize(env),
           shape.dims[2] < minimum || shape.dims[3] < minimum {
            let size = [max(shape.dims[2], minimum), max(shape.dims[3], minimum)]
            let id = try m.add("resize", "interpolate", [("size", .ints(size)), ("mode", .string("bilinear")),
                                                          ("align_corners", .bool(false))])
            ids["resize"] = id
            ids["input"] = id
            entries[id] = (keys["min_input_size"] ?? file.root, "resize", [:])
        }
        guard let layers = keys["layers"] else { throw r.error(.structure, file.root, field: "layers", message: "missing") }
        var counter = 0
        var next: Model.NodeID? = nil
        try sequence(layers, prefix: "", env: env, counter: &counter, defaultInput: &next)
        if m.nodes.count == 1 || (m.nodes.count == 2 && ids["resize"] != nil) {
            throw r.error(.structure, layers, field: "layers", message: "the model has no layers")
        }
        if let out = keys["output"] {
            guard case let .string(name) = try r.scalar(out, env: env, field: "output", layer: nil) else {
                throw r.error(.structure, out, field: "output", message: "must be a node name")
            }
            m.output = try resolve(name, scope: "", node: out, field: "output", layer: nil)
        }
        if let shape = inputShape { try checkShapes(shape) }
        return m
    }

    /// Adds the entries of a `layers:` sequence under `prefix`.
    mutating func sequence(_ node: Yams.Node, prefix: String, env: [String: AttributeValue], counter: inout Int,
                           defaultInput: inout Model.NodeID?) throws {
        guard let seq = node.sequence else {
            throw r.error(.structure, node, field: "layers", layer: prefix.isEmpty ? nil : prefix,
                          message: "must be a sequence of layers (each line starting with '- ')")
        }
        for entry in seq {
            try self.entry(entry, prefix: prefix, env: env, counter: &counter, defaultInput: &defaultInput)
        }
    }

    func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    /// The name of an entry: its `name:`/`group:` value (substituted) or its position.
    func entryName(_ node: Yams.Node?, field: String, env: [String: AttributeValue], counter: Int, prefix: String) throws -> String {
        guard let node else { return String(counter) }
        let v = try r.scalar(node, env: env, field: field, layer: prefix.isEmpty ? nil : prefix)
        let s: String
        switch v {
        case let .string(x): s = x
        case let .int(i): s = String(i)
        default: throw r.error(.structure, node, field: field, message: "a name must be text or a number, got \(v)")
        }
        guard !s.isEmpty, !s.hasPrefix("."), !s.hasSuffix("."), !s.contains(".."), !s.contains(where: \.isWhitespace) else {
            throw r.error(.structure, node, field: field, message: "'\(s)' is not a usable node name (no spaces, no empty dotted parts)")
        }
        return s
    }

    mutating func entry(_ node: Yams.Node, prefix: String, env: [String: AttributeValue], counter: inout Int,
                        defaultInput: inout Model.NodeID?) throws {
        let where_ = prefix.isEmpty ? nil : prefix
        steps += 1
        guard steps <= ModelFile.maxExpansionSteps else {
            throw r.error(.limit, node, field: "layers", layer: where_,
                          message: "expanding the model visits more than \(ModelFile.maxExpansionSteps) entries (the limit); check the `repeat:` counts")
        }
        guard let map = node.mapping else {
            throw r.error(.structure, node, field: "layers", layer: where_,
                          message: "each entry is a mapping with `type:` (a layer), `group:` or `repeat:`")
        }
        var raw: [String: Yams.Node] = [:]
        var order: [String] = []
        for (k, v) in map {
            guard let key = k.scalar?.string else { throw r.error(.structure, k, field: "key", layer: where_, message: "keys must be plain names") }
            guard raw[key] == nil else { throw r.error(.structure, k, field: key, layer: where_, message: "'\(key)' is given twice") }
            raw[key] = v
            order.append(key)
        }
        if let cond = raw["if"] {
            guard case let .bool(on) = try r.value(cond, env: env, field: "if", layer: where_) else {
                throw r.error(.structure, cond, field: "if", layer: where_, message: "must be true or false (e.g. $aux_logits)")
            }
            if !on { return }
        }
        let kinds = ["type", "group", "repeat"].filter { raw[$0] != nil }
        guard kinds.count == 1 else {
            throw r.error(.structure, node, field: kinds.isEmpty ? "type" : kinds.joined(separator: "/"), layer: where_,
                          message: kinds.isEmpty ? "an entry needs `type:` (a layer), `group:` (a named sequence) or `repeat:`"
                              : "an entry has only one of `type:`, `group:` and `repeat:`")
        }
        switch kinds[0] {
        case "group":
            for k in order where !Builder.groupKeys.contains(k) {
                throw r.error(.structure, mapKey(map, k), field: k, layer: where_,
                              message: "unknown key '\(k)' in a group; expected: \(Builder.groupKeys.sorted().joined(separator: ", "))")
            }
            let name = join(prefix, try entryName(raw["group"], field: "group", env: env, counter: counter, prefix: prefix))
            counter += 1
            guard let layers = raw["layers"] else { throw r.error(.structure, node, field: "layers", layer: name, message: "a group needs `layers:`") }
            var inner = defaultInput
            if let ins = raw["inputs"] {
                let resolved = try inputs(ins, scope: prefix, env: env, layer: name)
                guard resolved.count == 1 else {
                    throw r.error(.structure, ins, field: "inputs", layer: name, message: "a group takes one input (its first layer's)")
                }
                inner = resolved[0]
            }
            var local = env
            if let vars = raw["vars"] {
                guard let vm = vars.mapping else { throw r.error(.structure, vars, field: "vars", layer: name, message: "must be a mapping of name: value") }
                for (k, v) in vm {
                    let key = try r.name(k, field: "vars")
                    local[key] = try r.value(v, env: local, field: "vars.\(key)", layer: name)
                }
            }
            var c = 0
            try sequence(layers, prefix: name, env: local, counter: &c, defaultInput: &inner)
            defaultInput = inner
        case "repeat":
            for k in order where !Builder.repeatKeys.contains(k) {
                throw r.error(.structure, mapKey(map, k), field: k, layer: where_,
                              message: "unknown key '\(k)' in a repeat; expected: \(Builder.repeatKeys.sorted().joined(separator: ", "))")
            }
            guard let countNode = raw["repeat"], case let .int(times) = try r.value(countNode, env: env, field: "repeat", layer: where_), times >= 0 else {
                throw r.error(.structure, raw["repeat"], field: "repeat", layer: where_, message: "must be a count (an integer >= 0)")
            }
            guard times <= ModelFile.maxNodes else {
                throw r.error(.limit, raw["repeat"], field: "repeat", layer: where_,
                              message: "repeat \(times) is more than a model may have nodes (the limit is \(ModelFile.maxNodes))")
            }
            guard let layers = raw["layers"] else { throw r.error(.structure, node, field: "layers", layer: where_, message: "a repeat needs `layers:`") }
            let variable = try raw["as"].map { try r.name($0, field: "as") }
            if let variable, env[variable] != nil {
                throw r.error(.structure, raw["as"], field: "as", layer: where_, message: "'\(variable)' is already a parameter or variable")
            }
            for i in 0..<times {
                var inner = env
                if let variable { inner[variable] = .int(i) }
                try sequence(layers, prefix: prefix, env: inner, counter: &counter, defaultInput: &defaultInput)
            }
        default:
            try layer(raw, order: order, map: map, node: node, prefix: prefix, env: env, counter: &counter, defaultInput: &defaultInput)
        }
    }

    func mapKey(_ map: Yams.Node.Mapping, _ key: String) -> Yams.Node? {
        map.first { $0.key.scalar?.string == key }?.key
    }

    mutating func layer(_ raw: [String: Yams.Node], order: [String], map: Yams.Node.Mapping, node: Yams.Node, prefix: String,
                        env: [String: AttributeValue], counter: inout Int, defaultInput: inout Model.NodeID?) throws {
        guard let model, let runtime else { return }
        guard model.nodes.count <= ModelFile.maxNodes else {
            throw r.error(.limit, node, field: "layers", layer: prefix.isEmpty ? nil : prefix,
                          message: "the model expands to more than \(ModelFile.maxNodes) nodes (the limit); check the `repeat:` counts")
        }
        let name = join(prefix, try entryName(raw["name"], field: "name", env: env, counter: counter, prefix: prefix))
        counter += 1
        guard ids[name] == nil else {
            throw r.error(.duplicateName, raw["name"] ?? node, field: "name", layer: name,
                          message: "there is already a node named '\(name)'")
        }
        let typeNode = raw["type"]!
        guard case let .string(typeName) = try r.scalar(typeNode, env: env, field: "type", layer: name) else {
            throw r.error(.structure, typeNode, field: "type", layer: name, message: "must be a layer type name")
        }
        guard runtime.layerTypes.contains(where: { $0.name == typeName }) else {
            let known = runtime.layerTypes.map(\.name).sorted().joined(separator: ", ")
            throw r.error(.unknownLayerType, typeNode, field: "type", layer: name,
                          message: "unknown layer type '\(typeName)'; loaded types: \(known)")
        }
        var attributes: Attributes = []
        var attrNodes: [String: Yams.Node] = [:]
        for key in order where !Builder.layerKeys.contains(key) {
            guard let v = raw[key] else { continue }
            if key == "layers" || key == "group" || key == "repeat" || key == "as" {
                throw r.error(.structure, mapKey(map, key), field: key, layer: name, message: "'\(key)' does not belong in a layer entry (it has `type:`)")
            }
            attributes.append((key, try r.value(v, env: env, field: key, layer: name)))
            attrNodes[key] = v
        }
        let from: [Model.NodeID]
        if let ins = raw["inputs"] {
            from = try inputs(ins, scope: prefix, env: env, layer: name)
        } else {
            from = [defaultInput ?? (model.nodes.count - 1)]
        }
        let created: Layer
        do {
            created = try Layer(typeName, attributes, runtime: runtime, node: name)
        } catch let PlyError.layer(_, _, status, message) {
            let (field, at) = culprit(message, attrNodes, fallback: typeNode)
            var error = r.error(.badAttribute, at, field: field, layer: name, message: message)
            error.pluginStatus = status
            throw error
        } catch let PlyError.attribute(error) {
            // The schema check names the attribute: point at its key when it is unknown (or
            // given twice), at its value when it is of another kind, else at the type.
            let given = error.childType == nil ? error.name.flatMap { n in attrNodes[n].map { (n, $0) } } : nil
            let at: Yams.Node
            switch error.kind {
            case .unknown, .duplicate: at = given.flatMap { mapKey(map, $0.0) } ?? typeNode
            default: at = given?.1 ?? typeNode
            }
            // A missing attribute has no node: point at the type, name the attribute as the field.
            let field = given?.0 ?? (error.kind == .missing && error.childType == nil ? error.name : nil) ?? "type"
            throw r.error(.badAttribute, at, field: field, layer: name, message: error.reason)
        } catch let error as MemoryLimitError {
            throw r.error(.limit, typeNode, field: "type", layer: name, message: error.description)
        }
        let id: Model.NodeID
        do {
            id = try model.add(name, created, inputs: from)
        } catch let error as PlyError {
            throw r.error(.structure, raw["inputs"] ?? node, field: "inputs", layer: name, message: error.description)
        }
        ids[name] = id
        entries[id] = (node, name, attrNodes)
        defaultInput = id
    }

    /// The attribute a plugin's message is about: a quoted `'name'`, else any given
    /// attribute name that appears as a word; the node to point at (the value if given).
    func culprit(_ message: String, _ attrs: [String: Yams.Node], fallback: Yams.Node) -> (String, Yams.Node) {
        var quoted: [String] = []
        let parts = message.split(separator: "'", omittingEmptySubsequences: false)
        for (i, p) in parts.enumerated() where i % 2 == 1 { quoted.append(String(p)) }
        if let q = quoted.first(where: { attrs[$0] != nil }) { return (q, attrs[q]!) }
        let words = Set(message.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init))
        if let w = attrs.keys.sorted(by: { $0.count > $1.count }).first(where: { words.contains($0) }) { return (w, attrs[w]!) }
        if let q = quoted.first(where: { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !$0.isEmpty }) {
            return (q, fallback)
        }
        return ("type", fallback)
    }

    /// Node ids for `inputs:` (one name or a list), each looked up from the innermost group
    /// outwards: in group `layer1.0`, `conv1` means `layer1.0.conv1`, then `layer1.conv1`, then `conv1`.
    func inputs(_ node: Yams.Node, scope: String, env: [String: AttributeValue], layer: String) throws -> [Model.NodeID] {
        let items = node.sequence.map(Array.init) ?? [node]
        guard !items.isEmpty else { throw r.error(.structure, node, field: "inputs", layer: layer, message: "names no node") }
        return try items.map { item in
            let v = try r.scalar(item, env: env, field: "inputs", layer: layer)
            let name: String
            switch v {
            case let .string(s): name = s
            case let .int(i): name = String(i)
            default: throw r.error(.structure, item, field: "inputs", layer: layer, message: "must name a node, got \(v)")
            }
            return try resolve(name, scope: scope, node: item, field: "inputs", layer: layer)
        }
    }

    func resolve(_ name: String, scope: String, node: Yams.Node, field: String, layer: String?) throws -> Model.NodeID {
        var s = scope
        while true {
            if let id = ids[join(s, name)] { return id }
            if s.isEmpty { break }
            s = s.lastIndex(of: ".").map { String(s[..<$0]) } ?? ""
        }
        let nearby = ids.keys.filter { $0.hasSuffix(name) || name.hasSuffix($0) }.sorted().prefix(5)
        throw r.error(.unknownInput, node, field: field, layer: layer,
                      message: "no node named '\(name)' before this point (inputs name earlier layers or `input`)"
                          + (nearby.isEmpty ? "" : "; similar: \(nearby.joined(separator: ", "))"))
    }

    /// Plans shapes node by node so the first one that does not fit is reported at its line.
    func checkShapes(_ inputShape: Shape) throws {
        guard let model else { return }
        var shapes = [inputShape]
        for (id, n) in model.nodes.enumerated().dropFirst() {
            guard let layer = n.layer else { shapes.append(inputShape); continue }
            let ins = n.inputs.map { shapes[$0] }
            do {
                shapes.append(try layer.outputShape(for: ins))
            } catch let error as PlyError {
                let entry = entries[id]
                var message = error.description
                var status: Int32?
                if case let .layer(_, _, s, m) = error { message = m; status = s }
                let given = zip(n.inputs, ins).map { "\(model.nodes[$0].name) \($1)" }.joined(separator: ", ")
                let (field, at) = culprit(message, entry?.attrs ?? [:], fallback: entry?.node ?? file.root)
                var failure = r.error(.shape, at, field: field == "type" ? "inputs" : field, layer: n.name,
                                      message: "\(message) (inputs: \(given))")
                failure.pluginStatus = status  // the plugin's own status (shape, out of memory, ...)
                throw failure
            }
        }
    }
}
