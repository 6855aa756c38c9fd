import CPly

/// Every error the runtime reports. Messages say what was wrong and where.
public enum PlyError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A plugin library could not be loaded or is not a valid Ply plugin.
    case plugin(path: String, reason: String)
    /// Two libraries register the same layer type name.
    case duplicateLayerType(name: String, first: String, second: String)
    /// No loaded plugin provides this layer type.
    case unknownLayerType(String, known: [String])
    /// A plugin callback failed; `message` is the plugin's own text.
    case layer(type: String, call: String, status: Int32, message: String)
    /// A model, tensor or argument is not usable as given.
    case invalid(String)

    /// The message in words, as `print` and error reports show it.
    public var description: String {
        switch self {
        case let .plugin(path, reason):
            return "plugin \(path): \(reason)"
        case let .duplicateLayerType(name, first, second):
            return "layer type '\(name)' from \(second) is already registered by \(first); "
                + "refusing the second library (load without built-ins to replace a built-in type)"
        case let .unknownLayerType(name, known):
            return "unknown layer type '\(name)'; loaded types: \(known.sorted().joined(separator: ", "))"
        case let .layer(type, call, status, message):
            return "\(type).\(call) failed (\(PlyError.statusName(status))): \(message)"
        case let .invalid(message):
            return message
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
