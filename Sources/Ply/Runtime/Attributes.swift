import CPly

/// A typed layer attribute, named as PyTorch names its constructor arguments.
public enum AttributeValue: Sendable, Equatable, CustomStringConvertible {
    /// An integer (`out_channels: 8`).
    case int(Int)
    /// A floating-point number (`eps: 1e-5`).
    case float(Double)
    /// A boolean (`bias: false`).
    case bool(Bool)
    /// A string (`mode: bilinear`).
    case string(String)
    /// A list of integers (`kernel_size: [3, 3]`).
    case ints([Int])
    /// A list of floating-point numbers.
    case floats([Double])

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .float(v): return String(v)
        case let .bool(v): return String(v)
        case let .string(v): return "'\(v)'"
        case let .ints(v): return "(" + v.map(String.init).joined(separator: ", ") + ")"
        case let .floats(v): return "(" + v.map { String($0) }.joined(separator: ", ") + ")"
        }
    }
}

/// Layer attributes in the order they were written, e.g. `[("in_channels", .int(1)), ("kernel_size", .ints([3, 3]))]`.
public typealias Attributes = [(String, AttributeValue)]

/// Calls `body` with a C `ply_attrs` view of `attributes`, valid only inside `body`.
func withCAttributes<R>(_ attributes: Attributes, _ body: (UnsafePointer<ply_attrs>) throws -> R) rethrows -> R {
    var allocations: [UnsafeMutableRawPointer] = []
    defer { allocations.forEach { $0.deallocate() } }
    func cString(_ s: String) -> UnsafePointer<CChar> {
        let bytes = Array(s.utf8CString)
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        allocations.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }
    func array<T>(_ values: [T]) -> UnsafePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(values.count, 1))
        p.initialize(from: values, count: values.count)
        allocations.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }
    var items: [ply_attr] = []
    for (name, value) in attributes {
        var a = ply_attr()
        a.name = cString(name)
        a.count = 1
        switch value {
        case let .int(v): a.kind = Int32(PLY_ATTR_INT.rawValue); a.v.i = Int64(v)
        case let .float(v): a.kind = Int32(PLY_ATTR_FLOAT.rawValue); a.v.f = v
        case let .bool(v): a.kind = Int32(PLY_ATTR_BOOL.rawValue); a.v.i = v ? 1 : 0
        case let .string(v): a.kind = Int32(PLY_ATTR_STRING.rawValue); a.v.s = cString(v)
        case let .ints(v):
            a.kind = Int32(PLY_ATTR_INTS.rawValue); a.count = Int32(v.count); a.v.ints = array(v.map { Int64($0) })
        case let .floats(v):
            a.kind = Int32(PLY_ATTR_FLOATS.rawValue); a.count = Int32(v.count); a.v.floats = array(v)
        }
        items.append(a)
    }
    return try items.withUnsafeBufferPointer { buffer in
        var attrs = ply_attrs()
        attrs.struct_size = UInt32(MemoryLayout<ply_attrs>.size)
        attrs.abi_version = cply_abi_version()
        attrs.count = Int32(buffer.count)
        attrs.items = buffer.baseAddress
        return try withUnsafePointer(to: &attrs) { try body($0) }
    }
}
