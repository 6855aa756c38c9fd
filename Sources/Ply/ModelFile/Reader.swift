import Foundation
import Yams

/// Helpers that read YAML nodes and report errors at their marks (a model file's fields, for
/// `ModelFile`, `Builder` and `TransformSettings`).
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
