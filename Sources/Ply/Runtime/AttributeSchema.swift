import CPly
import Foundation

/// The kind of value an attribute takes, as a layer type's schema declares it (`ply_attr_kind`).
public enum AttributeKind: Int32, Sendable, CustomStringConvertible {
    /// An integer; booleans are accepted too (as 0 / 1).
    case int = 1
    /// A number; integers are accepted too.
    case float = 2
    /// A boolean; the integers 0 and 1 are accepted too.
    case bool = 3
    /// A string.
    case string = 4
    /// A list of integers (with ``AttributeSpec/isPair``, a single integer too).
    case ints = 5
    /// A list of numbers; a list of integers is accepted too.
    case floats = 6

    /// The kind in words (`an integer`, `a list of integers`).
    public var description: String {
        switch self {
        case .int: return "an integer"
        case .float: return "a number"
        case .bool: return "a boolean"
        case .string: return "a string"
        case .ints: return "a list of integers"
        case .floats: return "a list of numbers"
        }
    }

    /// The short name `ply plugins --describe` prints (`int`, `int list`).
    public var shortName: String {
        switch self {
        case .int: return "int"
        case .float: return "float"
        case .bool: return "bool"
        case .string: return "string"
        case .ints: return "int list"
        case .floats: return "float list"
        }
    }
}

/// One attribute a layer type takes, from its plugin's `attr_specs` (ABI 1.2): the host checks
/// every attribute list against these before it creates a layer.
public struct AttributeSpec: Sendable, Equatable {
    /// PyTorch's argument name (`kernel_size`).
    public let name: String
    /// The kind of value it takes.
    public let kind: AttributeKind
    /// Whether it must be given.
    public let isRequired: Bool
    /// Whether it is a pair as `kernel_size` is: an integer (used for both axes) or a list of two.
    public let isPair: Bool
    /// Whether a string is accepted too (`padding: same`); the plugin checks the word.
    public let acceptsString: Bool
    /// Whether both the scalar and the list form of the kind are accepted (`scale_factor: 2` or
    /// `[2, 3]`).
    public let scalarOrList: Bool
    /// The default as a model file writes it (`1`, `[0, 0]`, `true`), if the plugin states one.
    public let defaultText: String?
    /// One line: what it does.
    public let doc: String

    /// A spec (for tests and Swift-side descriptions; plugins declare theirs in C).
    public init(name: String, kind: AttributeKind, isRequired: Bool = false, isPair: Bool = false,
                acceptsString: Bool = false, scalarOrList: Bool = false, defaultText: String? = nil, doc: String = "") {
        self.name = name
        self.kind = kind
        self.isRequired = isRequired
        self.isPair = isPair
        self.acceptsString = acceptsString
        self.scalarOrList = scalarOrList
        self.defaultText = defaultText
        self.doc = doc
    }

    /// The kind in short words, as `ply plugins --describe` prints it (`int or pair`).
    public var kindText: String {
        var text = isPair ? "int or pair" : kind.shortName
        if scalarOrList {
            switch kind {
            case .int, .ints: text = "int or int list"
            case .float, .floats: text = "float or float list"
            default: break
            }
        }
        return acceptsString ? text + " or string" : text
    }

    /// Whether `value` has a kind this attribute accepts (the host's attribute readers' rules).
    public func accepts(_ value: AttributeValue) -> Bool {
        if acceptsString, case .string = value { return true }
        if scalarOrList {
            switch (kind, value) {
            case (.int, .ints), (.ints, .int), (.ints, .bool): return true
            case (.float, .floats), (.float, .ints), (.floats, .float), (.floats, .int): return true
            default: break
            }
        }
        switch (kind, value) {
        case (.int, .int), (.int, .bool): return true
        case (.float, .float), (.float, .int): return true
        case (.bool, .bool): return true
        case let (.bool, .int(v)): return v == 0 || v == 1
        case (.string, .string): return true
        case (.ints, .ints): return true
        case (.ints, .int): return isPair
        case (.floats, .floats), (.floats, .ints): return true
        default: return false
        }
    }

    /// What it accepts, in words, for errors: `an integer or a list of integers`.
    var expected: String {
        var text = isPair ? "an integer or a pair of integers" : kind.description
        if scalarOrList {
            switch kind {
            case .int, .ints: text = "an integer or a list of integers"
            case .float, .floats: text = "a number or a list of numbers"
            default: break
            }
        }
        return acceptsString ? text + ", or a string" : text
    }

    /// The default parsed as a value of this kind, when the text is one (`3`, `[1, 1]`, `true`, `zeros`).
    public var defaultValue: AttributeValue? {
        guard let text = defaultText?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        func numbers(_ t: String) -> [String]? {
            guard t.hasPrefix("["), t.hasSuffix("]") else { return nil }
            return t.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        switch kind {
        case .int: return Int(text).map(AttributeValue.int) ?? (text == "true" ? .bool(true) : text == "false" ? .bool(false) : nil)
        case .float: return Double(text).map(AttributeValue.float)
        case .bool: return text == "true" ? .bool(true) : text == "false" ? .bool(false) : nil
        case .string: return .string(text)
        case .ints:
            if isPair, let v = Int(text) { return .int(v) }
            guard let items = numbers(text) else { return nil }
            let v = items.compactMap { Int($0) }
            return v.count == items.count ? .ints(v) : nil
        case .floats:
            guard let items = numbers(text) else { return nil }
            let v = items.compactMap { Double($0) }
            return v.count == items.count ? .floats(v) : nil
        }
    }

    /// Reads a NULL-terminated `ply_attr_spec` list (nil when the list itself is NULL), refusing
    /// entries the host cannot use.
    static func read(_ list: UnsafePointer<ply_attr_spec>?, library: String, type: String) throws -> [AttributeSpec]? {
        guard let list else { return nil }
        var specs: [AttributeSpec] = []
        var seen = Set<String>()
        var i = 0
        while let cName = list[i].name {
            let s = list[i]
            let name = String(cString: cName)
            guard let kind = AttributeKind(rawValue: s.kind) else {
                throw PlyError.plugin(path: library, reason: "layer type '\(type)': attribute spec '\(name)' has unknown kind \(s.kind)")
            }
            guard seen.insert(name).inserted else {
                throw PlyError.plugin(path: library, reason: "layer type '\(type)': attribute spec '\(name)' is listed twice")
            }
            let pair = s.flags & Int32(PLY_ATTR_PAIR.rawValue) != 0
            if pair && kind != .ints {
                throw PlyError.plugin(path: library, reason: "layer type '\(type)': attribute spec '\(name)' has PLY_ATTR_PAIR "
                    + "but kind \(kind.shortName) (a pair's kind is PLY_ATTR_INTS)")
            }
            specs.append(AttributeSpec(name: name, kind: kind, isRequired: s.flags & Int32(PLY_ATTR_REQUIRED.rawValue) != 0,
                                       isPair: pair, acceptsString: s.flags & Int32(PLY_ATTR_OR_STRING.rawValue) != 0,
                                       scalarOrList: s.flags & Int32(PLY_ATTR_SCALAR_OR_LIST.rawValue) != 0,
                                       defaultText: s.default_text.map { String(cString: $0) },
                                       doc: s.doc.map { String(cString: $0) } ?? ""))
            i += 1
            if i > 10_000 {
                throw PlyError.plugin(path: library, reason: "layer type '\(type)': attr_specs has no NULL-named end within 10000 entries")
            }
        }
        return specs
    }

    /// The first problem of `attributes` against `specs`: an unknown name (with the closest
    /// valid one), a name given twice, a value of another kind, or a missing required attribute.
    static func problem(_ attributes: Attributes, specs: [AttributeSpec], type: String)
        -> (kind: PlyError.AttributeProblem.Kind, name: String, reason: String)? {
        var given = Set<String>()
        for (name, value) in attributes {
            guard given.insert(name).inserted else { return (.duplicate, name, "attribute '\(name)' is given twice") }
            guard let spec = specs.first(where: { $0.name == name }) else {
                let valid = specs.map(\.name)
                let best = closest(to: name, among: valid)
                var reason = "unknown attribute '\(name)'"
                if let best { reason += "; did you mean '\(best)'?" }
                reason += valid.isEmpty ? " (\(type) takes no attributes)" : " (\(type) takes \(valid.joined(separator: ", ")))"
                return (.unknown(suggestion: best), name, reason)
            }
            guard spec.accepts(value) else {
                let given = describeKind(value)
                return (.wrongKind(expected: spec.expected, given: given), name,
                        "attribute '\(name)' must be \(spec.expected), got \(given)")
            }
        }
        if let missing = specs.first(where: { $0.isRequired && !given.contains($0.name) }) {
            return (.missing, missing.name,
                    "missing required attribute '\(missing.name)' (\(missing.kindText)\(missing.doc.isEmpty ? "" : ": \(missing.doc)"))")
        }
        return nil
    }

    /// A value's kind in words, for errors: `a string`, `a list of 3 integers`.
    static func describeKind(_ value: AttributeValue) -> String {
        switch value {
        case .int: return "an integer"
        case .float: return "a float"
        case .bool: return "a boolean"
        case .string: return "a string"
        case let .ints(v): return "a list of \(v.count) integer\(v.count == 1 ? "" : "s")"
        case let .floats(v): return "a list of \(v.count) number\(v.count == 1 ? "" : "s") (not all integers)"
        }
    }
}

/// Levenshtein distance between two names (for "did you mean" suggestions).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count), current = Array(repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}

/// The candidate closest to `name` by edit distance, when it is close enough to be a likely
/// typo (at most a third of the longer name, and at least 2 edits allowed); ties go to the first.
func closest(to name: String, among candidates: [String]) -> String? {
    closeNames(to: name, among: candidates, limit: 1).first
}

/// Up to `limit` candidates close to `name` (see `closest(to:among:)`), nearest first; a
/// candidate that contains `name` (or is contained in it) counts as close too.
func closeNames(to name: String, among candidates: [String], limit: Int = 3) -> [String] {
    let scored = candidates.map { c -> (String, Int) in (c, editDistance(name, c)) }
        .filter { c, d in d <= max(2, max(name.count, c.count) / 3) || (name.count >= 3 && (c.contains(name) || name.contains(c))) }
    return scored.enumerated().sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.prefix(limit).map(\.element.0)
}

/// Swift attributes from a C `ply_attrs` list (what a composite passes to `create_layer`).
func attributes(from attrs: UnsafePointer<ply_attrs>?) throws -> Attributes {
    guard let attrs, attrs.pointee.count > 0 else { return [] }
    guard let items = attrs.pointee.items else {
        throw PlyError.invalid("an attribute list of \(attrs.pointee.count) entries has no items")
    }
    var out: Attributes = []
    for i in 0..<Int(attrs.pointee.count) {
        let a = items[i]
        guard let cName = a.name else { throw PlyError.invalid("attribute \(i) of the list has no name") }
        let name = String(cString: cName)
        let count = Int(max(a.count, 0))
        switch UInt32(bitPattern: a.kind) {
        case PLY_ATTR_INT.rawValue: out.append((name, .int(Int(a.v.i))))
        case PLY_ATTR_FLOAT.rawValue: out.append((name, .float(a.v.f)))
        case PLY_ATTR_BOOL.rawValue: out.append((name, .bool(a.v.i != 0)))
        case PLY_ATTR_STRING.rawValue:
            guard let s = a.v.s else { throw PlyError.invalid("attribute '\(name)' is a NULL string") }
            out.append((name, .string(String(cString: s))))
        case PLY_ATTR_INTS.rawValue:
            guard count == 0 || a.v.ints != nil else { throw PlyError.invalid("attribute '\(name)' has no integers") }
            out.append((name, .ints((0..<count).map { Int(a.v.ints[$0]) })))
        case PLY_ATTR_FLOATS.rawValue:
            guard count == 0 || a.v.floats != nil else { throw PlyError.invalid("attribute '\(name)' has no numbers") }
            out.append((name, .floats((0..<count).map { a.v.floats[$0] })))
        default:
            throw PlyError.invalid("attribute '\(name)' has unknown kind \(a.kind)")
        }
    }
    return out
}

extension LayerType {
    /// Checks `attributes` against the type's schema before `create`: throws
    /// ``PlyError/attribute(_:)`` for an unknown name, a value of another kind or a missing required
    /// attribute; for a type without a schema, logs a warning once (or, with
    /// `Runtime.Options.strictAttributes`, throws). `node` and `context` only shape the message:
    /// the node name when known, and for a child layer what creates it.
    func checkAttributes(_ attributes: Attributes, node: String?, state: HostState, context: (parent: String, node: String?)? = nil) throws {
        let layerName = context?.node ?? node
        let typeName = context?.parent ?? name
        let prefix = context == nil ? "" : "a \(name) layer it creates through create_layer: "
        guard let specs = self.attributes else {
            guard !attributes.isEmpty else { return }
            if state.strictAttributes {
                throw PlyError.attribute(.init(.unchecked, layer: layerName, type: typeName, name: nil,
                                     childType: context == nil ? nil : name, reason: prefix + "layer type '\(name)' (\(library.path)) declares no attribute schema, so "
                                            + "its attributes cannot be checked, and strict attribute checking is on "
                                            + "(--strict-attributes / Runtime.Options.strictAttributes)"))
            }
            if warnedUnchecked.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                state.logHandler(.warning, "layer type '\(name)' (\(library.path)) declares no attribute schema: its attributes "
                    + "are passed unchecked, so a misspelt name is ignored (--strict-attributes makes this an error)")
            }
            return
        }
        if let (kind, attribute, reason) = AttributeSpec.problem(attributes, specs: specs, type: name) {
            throw PlyError.attribute(.init(kind, layer: layerName, type: typeName, name: attribute,
                                           childType: context == nil ? nil : name, reason: prefix + reason))
        }
    }
}
