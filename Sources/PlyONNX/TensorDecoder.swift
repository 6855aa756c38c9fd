import Foundation
import Ply

/// Reads `TensorProto`s: the declared dims and type decide how many bytes are read, and every
/// length is checked against them before anything is copied.
struct TensorDecoder {
    /// Largest element count of one tensor (2^31: protobuf messages stop at 2 GiB anyway).
    static let maxElements = 1 << 31

    /// The model file (for messages and to resolve external data).
    let path: String

    /// Element count of `dims`, checked for negative sizes and overflow.
    func elementCount(_ dims: [Int64], name: String) throws -> Int {
        var n = 1
        for d in dims {
            guard d >= 0, d <= Int64(Self.maxElements) else {
                throw ONNXError.malformed(path: path, reason: "tensor '\(name)' has dimension \(d) (dims \(dims))")
            }
            let (m, overflow) = n.multipliedReportingOverflow(by: Int(d))
            guard !overflow, m <= Self.maxElements else {
                throw ONNXError.malformed(path: path, reason: "tensor '\(name)' has more than \(Self.maxElements) elements (dims \(dims))")
            }
            n = m
        }
        return n
    }

    func decode(_ t: Onnx_TensorProto) throws -> ConstTensor {
        let count = try elementCount(t.dims, name: t.name)
        let dims = t.dims.map { Int($0) }
        let type = Onnx_TensorProto.DataType(rawValue: Int(t.dataType))
        let width: Int
        switch type {
        case .float, .int32: width = 4
        case .double, .int64: width = 8
        case .uint8, .int8, .bool: width = 1
        default:
            throw ONNXError.malformed(path: path, reason: "tensor '\(t.name)' has data type \(t.dataType) "
                + "(\(type.map { "\($0)" } ?? "unknown")); Ply reads float, double, int64, int32, int8, uint8 and bool")
        }
        var raw: Data?
        if t.dataLocation == .external {
            raw = try readExternal(t, bytes: count * width)
        } else if t.hasRawData {
            guard t.rawData.count == count * width else {
                throw ONNXError.malformed(path: path, reason: "tensor '\(t.name)' has \(t.rawData.count) bytes of raw data; "
                    + "dims \(dims) of a \(width)-byte type need \(count * width)")
            }
            raw = t.rawData
        }
        func typed<T>(_ field: [T], _ label: String) throws -> [T] {
            guard field.count == count else {
                throw ONNXError.malformed(path: path, reason: "tensor '\(t.name)' has \(field.count) values in \(label); dims \(dims) need \(count)")
            }
            return field
        }
        func load<T>(_ data: Data, _: T.Type) -> [T] {
            data.withUnsafeBytes { b in (0..<count).map { b.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
        }
        switch type {
        case .float:
            let f = try raw.map { load($0, UInt32.self).map { Float(bitPattern: UInt32(littleEndian: $0)) } } ?? typed(t.floatData, "float_data")
            return ConstTensor(dims: dims, values: .floats(f))
        case .double:
            let d = try raw.map { load($0, UInt64.self).map { Double(bitPattern: UInt64(littleEndian: $0)) } } ?? typed(t.doubleData, "double_data")
            return ConstTensor(dims: dims, values: .floats(d.map { Float($0) }))
        case .int64:
            let i = try raw.map { load($0, Int64.self).map { Int64(littleEndian: $0) } } ?? typed(t.int64Data, "int64_data")
            return ConstTensor(dims: dims, values: .ints(i.map { .value($0) }))
        case .int32:
            let i = try raw.map { load($0, Int32.self).map { Int64(Int32(littleEndian: $0)) } } ?? typed(t.int32Data, "int32_data").map { Int64($0) }
            return ConstTensor(dims: dims, values: .ints(i.map { .value($0) }))
        default:  // one-byte types: int32_data holds them when there is no raw data
            let signed = type == .int8
            let i = try raw.map { d in d.map { signed ? Int64(Int8(bitPattern: $0)) : Int64($0) } }
                ?? typed(t.int32Data, "int32_data").map { Int64($0) }
            return ConstTensor(dims: dims, values: .ints(i.map { .value($0) }))
        }
    }

    /// The bytes of a tensor stored beside the model (`external_data`: location, offset,
    /// length), resolved against the model's directory; a location outside it is refused.
    private func readExternal(_ t: Onnx_TensorProto, bytes: Int) throws -> Data {
        var entries: [String: String] = [:]
        for e in t.externalData { entries[e.key] = e.value }
        func fail(_ reason: String) -> ONNXError { .externalData(path: path, tensor: t.name, reason: reason) }
        guard let location = entries["location"], !location.isEmpty else { throw fail("no 'location' entry") }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw fail("location '\(location)' is outside the model's directory")
        }
        func number(_ key: String) throws -> Int? {
            guard let s = entries[key] else { return nil }
            guard let v = Int(s), v >= 0 else { throw fail("\(key) '\(s)' is not a non-negative integer") }
            return v
        }
        let offset = try number("offset") ?? 0
        let length = try number("length") ?? bytes
        guard length == bytes else { throw fail("length \(length) bytes; the tensor's dims and type need \(bytes)") }
        let file = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(location).path
        guard let handle = FileHandle(forReadingAtPath: file) else { throw fail("cannot open \(file)") }
        defer { try? handle.close() }
        do {
            let size = Int(try handle.seekToEnd())
            guard offset <= size, bytes <= size - offset else {
                throw fail("\(file) has \(size) bytes; the tensor needs \(bytes) at offset \(offset)")
            }
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: bytes) ?? Data()
            guard data.count == bytes else { throw fail("\(file): read \(data.count) of \(bytes) bytes") }
            return data
        } catch let e as ONNXError {
            throw e
        } catch {
            throw fail("\(file): \(error.localizedDescription)")
        }
    }
}
