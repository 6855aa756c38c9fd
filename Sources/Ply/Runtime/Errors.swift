import CPly

/// Every error the runtime reports. Messages say what was wrong and where.
///
/// Each case has one kind, which the C API maps to one result code by case (never by
/// reading the message): `.io` → PLY_ERR_IO, `.notFound` and `.unknownLayerType` →
/// PLY_ERR_NOT_FOUND, `.shape` → PLY_ERR_SHAPE, `.numeric` → PLY_ERR_NUMERIC,
/// `.outOfMemory` → PLY_ERR_OUT_OF_MEMORY, `.abi` → PLY_ERR_ABI, `.layer` and `.nodeFailed`
/// → the plugin's own status, `.attribute` → PLY_ERR_NOT_FOUND for a missing required
/// attribute (plugin.h's meaning of the code) and PLY_ERR_INVALID_ARGUMENT otherwise, `.frozen` →
/// PLY_ERR_UNSUPPORTED, the rest
/// → PLY_ERR_INVALID_ARGUMENT.
public enum PlyError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A plugin library could not be loaded or is not a valid Ply plugin.
    case plugin(path: String, reason: String)
    /// A plugin library was built for another ABI, or declares a struct smaller than the host needs.
    case abi(path: String, reason: String)
    /// Two libraries register the same layer type name.
    case duplicateLayerType(name: String, first: String, second: String)
    /// No loaded plugin provides this layer type.
    case unknownLayerType(String, known: [String])
    /// A plugin callback failed; `status` is the plugin's own `ply_status`, `message` its own text.
    case layer(type: String, call: String, status: Int32, message: String)
    /// A plugin callback failed inside a model: the node, its layer type, the call, the
    /// plugin's own `ply_status` and its message.
    case nodeFailed(node: String, type: String, call: String, status: Int32, message: String)
    /// A file or directory is missing, or cannot be read or written.
    case io(path: String, problem: IOProblem, reason: String)
    /// Something named does not exist (a node, a registered function, a file inside a set).
    case notFound(String)
    /// A shape does not fit.
    case shape(String)
    /// A NaN or infinity where there must be none.
    case numeric(String)
    /// Memory could not be allocated.
    case outOfMemory(String)
    /// A model, tensor or argument is not usable as given.
    case invalid(String)
    /// An attribute list that does not fit the layer type's schema (ABI 1.2 `attr_specs`),
    /// found before `create`: an unknown name (with the closest valid one), a value of another
    /// kind, a missing required attribute. See ``AttributeProblem``.
    case attribute(AttributeProblem)
    /// Training, a backward pass or parameter access asked of a model or layer frozen for
    /// inference (``Model/freezeForInference()``), whose layers may have freed their weights.
    case frozen(String)

    /// What went wrong with a file.
    public enum IOProblem: String, Sendable {
        /// It does not exist.
        case missing
        /// It exists but cannot be opened or read (permissions, a directory, not text).
        case unreadable
        /// It cannot be created or written.
        case unwritable
    }

    /// The message in words, as `print` and error reports show it.
    public var description: String {
        switch self {
        case let .plugin(path, reason), let .abi(path, reason):
            return "plugin \(path): \(reason)"
        case let .duplicateLayerType(name, first, second):
            return "layer type '\(name)' from \(second) is already registered by \(first); "
                + "refusing the second library (load without built-ins to replace a built-in type)"
        case let .unknownLayerType(name, known):
            return "unknown layer type '\(name)'; loaded types: \(known.sorted().joined(separator: ", "))"
        case let .layer(type, call, status, message):
            return "\(type).\(call) failed (\(PlyError.statusName(status))): \(message)"
        case let .nodeFailed(node, type, call, status, message):
            return "\(call) of node '\(node)' (\(type)): \(type).\(call) failed (\(PlyError.statusName(status))): \(message)"
        case let .io(path, problem, reason):
            switch problem {
            case .missing: return "\(path): no such file or directory\(reason.isEmpty ? "" : " (\(reason))")"
            case .unreadable: return "\(path): cannot read: \(reason)"
            case .unwritable: return "\(path): cannot write: \(reason)"
            }
        case let .notFound(m), let .shape(m), let .numeric(m), let .outOfMemory(m), let .invalid(m), let .frozen(m):
            return m
        case let .attribute(problem):
            return problem.description
        }
    }

    /// The same error with `context` in front of its message, keeping its kind (a node's
    /// failure stays a shape, out-of-memory, ... error). A plugin's `.layer` failure becomes
    /// `.nodeFailed` when `node` is given.
    public func within(node: String? = nil, _ context: String) -> PlyError {
        switch self {
        case let .layer(type, call, status, message):
            if let node { return .nodeFailed(node: node, type: type, call: call, status: status, message: message) }
            return .invalid("\(context): \(description)")
        case .nodeFailed, .io, .plugin, .abi, .duplicateLayerType, .unknownLayerType, .attribute:
            return self
        case let .notFound(m): return .notFound("\(context): \(m)")
        case let .shape(m): return .shape("\(context): \(m)")
        case let .numeric(m): return .numeric("\(context): \(m)")
        case let .outOfMemory(m): return .outOfMemory("\(context): \(m)")
        case let .invalid(m): return .invalid("\(context): \(m)")
        case let .frozen(m): return .frozen("\(context): \(m)")
        }
    }

    /// The name of a `ply_status` code.
    public static func statusName(_ status: Int32) -> String {
        switch UInt32(bitPattern: status) {
        case PLY_OK.rawValue: return "ok"
        case PLY_ERR_INVALID_ARGUMENT.rawValue: return "invalid argument"
        case PLY_ERR_SHAPE.rawValue: return "shape"
        case PLY_ERR_OUT_OF_MEMORY.rawValue: return "out of memory"
        case PLY_ERR_UNSUPPORTED.rawValue: return "unsupported"
        case PLY_ERR_NOT_FOUND.rawValue: return "not found"
        case PLY_ERR_ABI.rawValue: return "ABI"
        case PLY_ERR_NUMERIC.rawValue: return "numeric"
        case PLY_ERR_INTERNAL.rawValue: return "internal"
        default: return "status \(status)"
        }
    }
}
