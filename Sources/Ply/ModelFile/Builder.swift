import Foundation
import Yams

/// Walks a model file's layers into a `Model`: parameters and `vars:`, groups, repeats and
/// `if:`, each layer entry made through the runtime, `inputs:` resolved by scope, and the shapes
/// checked node by node (`ModelFile.build`).
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
