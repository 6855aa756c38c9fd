import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading and writing the safetensors format: an 8-byte little-endian header length N,
/// N bytes of UTF-8 JSON describing each tensor (dtype, shape, byte range in the buffer)
/// plus optional string `__metadata__`, then the tensor bytes (little-endian, row-major).
/// Nothing in a file is trusted: every field is checked before use.
public enum SafeTensors {
    /// Headers larger than this are refused as absurd (100 MB, the reference library's limit).
    public static let maxHeaderLength = 100_000_000

    /// Element types of the format.
    public enum DType: String, CaseIterable, Sendable {
        /// IEEE float32.
        case F32
        /// IEEE float64.
        case F64
        /// IEEE float16.
        case F16
        /// bfloat16 (float32's upper 16 bits).
        case BF16
        /// Signed 64-bit integer.
        case I64
        /// Signed 32-bit integer.
        case I32
        /// Signed 16-bit integer.
        case I16
        /// Signed 8-bit integer.
        case I8
        /// Unsigned 8-bit integer.
        case U8
        /// Boolean, one byte (0 or 1).
        case BOOL

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .F64, .I64: return 8
            case .F32, .I32: return 4
            case .F16, .BF16, .I16: return 2
            case .I8, .U8, .BOOL: return 1
            }
        }

        /// Floating-point (as opposed to integer or boolean).
        public var isFloatingPoint: Bool { [.F32, .F64, .F16, .BF16].contains(self) }
    }

    /// One tensor: its element type, shape and raw little-endian bytes.
    public struct Entry: Sendable, Equatable {
        /// The element type.
        public let dtype: DType
        /// The dimensions, outermost first.
        public let shape: [Int]
        /// The raw little-endian element bytes, row-major.
        public let bytes: [UInt8]

        /// An entry from raw bytes (checked when written: the count must be product(shape) × size).
        public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// An F32 entry holding `values`.
        public init(floats values: [Float], shape: [Int]) {
            self.init(dtype: .F32, shape: shape, bytes: littleEndianBytes(values.map(\.bitPattern)))
        }

        /// An I64 entry holding `values`.
        public init(int64s values: [Int64], shape: [Int]) {
            self.init(dtype: .I64, shape: shape, bytes: littleEndianBytes(values))
        }

        /// Number of elements the shape describes.
        public var count: Int { shape.reduce(1, *) }

        /// The values as Float: exact for F32, F16, BF16 and small integers; F64 and large
        /// integers are rounded to the nearest Float. Throws if the bytes do not fit the shape.
        public func floats() throws -> [Float] {
            try checkSize()
            switch dtype {
            case .F32: return decode(UInt32.self).map { Float(bitPattern: $0) }
            case .F64: return decode(UInt64.self).map { Float(Double(bitPattern: $0)) }
            case .F16: return decode(UInt16.self).map { Float(Float16(bitPattern: $0)) }
            case .BF16: return decode(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
            case .I64: return decode(Int64.self).map { Float($0) }
            case .I32: return decode(Int32.self).map { Float($0) }
            case .I16: return decode(Int16.self).map { Float($0) }
            case .I8: return bytes.map { Float(Int8(bitPattern: $0)) }
            case .U8: return bytes.map { Float($0) }
            case .BOOL: return bytes.map { $0 == 0 ? 0 : 1 }
            }
        }

        /// The values as Int64 for integer and boolean dtypes (nil for floating point).
        public func int64s() throws -> [Int64]? {
            try checkSize()
            switch dtype {
            case .I64: return decode(Int64.self)
            case .I32: return decode(Int32.self).map { Int64($0) }
            case .I16: return decode(Int16.self).map { Int64($0) }
            case .I8: return bytes.map { Int64(Int8(bitPattern: $0)) }
            case .U8: return bytes.map { Int64($0) }
            case .BOOL: return bytes.map { $0 == 0 ? 0 : 1 }
            case .F32, .F64, .F16, .BF16: return nil
            }
        }

        private func checkSize() throws {
            guard let need = SafeTensors.byteCount(shape: shape, dtype: dtype), need == bytes.count else {
                throw SafeTensorsError.invalidTensor(path: "<in memory>", tensor: "<entry>",
                                                     reason: "\(bytes.count) bytes do not fit \(dtype.rawValue) \(shape)")
            }
        }

        private func decode<T: FixedWidthInteger>(_: T.Type) -> [T] {
            let n = bytes.count / MemoryLayout<T>.size
            return [T](unsafeUninitializedCapacity: n) { out, initialized in
                bytes.withUnsafeBytes { raw in
                    for i in 0..<n { out[i] = T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)) }
                }
                initialized = n
            }
        }
    }

    /// Bytes needed for `shape` of `dtype`, or nil when a dimension is negative or the count overflows.
    static func byteCount(shape: [Int], dtype: DType) -> Int? {
        var n = dtype.size
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = m
        }
        return n
    }

    // MARK: Reading

    /// Reads and validates the file at `path`. `order` lists tensor names as the header does.
    public static func read(path: String) throws -> (entries: [String: Entry], order: [String], metadata: [String: String]) {
        if let kind = refusedFileKind(path) { throw SafeTensorsError.notARegularFile(path: path, kind: kind) }
        return try parse(bytes: readFile(path), path: path)
    }

    /// Validates and decodes a whole safetensors file held in memory; `path` names it in errors.
    public static func parse(bytes: [UInt8], path: String) throws -> (entries: [String: Entry], order: [String], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw SafeTensorsError.truncated(path: path, size: bytes.count) }
        var n: UInt64 = 0
        for i in (0..<8).reversed() { n = n << 8 | UInt64(bytes[i]) }
        guard n <= UInt64(maxHeaderLength), n <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError.headerLength(path: path, length: n, fileSize: bytes.count)
        }
        let headerEnd = 8 + Int(n)
        let header = bytes[8..<headerEnd]
        guard String(validating: header, as: UTF8.self) != nil else { throw SafeTensorsError.headerEncoding(path: path) }
        var parser = JSONParser(bytes: Array(header), path: path)
        let root = try parser.parseDocument()
        guard case let .object(fields) = root else { throw SafeTensorsError.headerNotObject(path: path) }

        let bufferLength = bytes.count - headerEnd
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var metadata: [String: String] = [:]
        var ranges: [(name: String, range: Range<Int>)] = []
        for (name, value) in fields {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            func bad(_ field: String, _ reason: String) -> SafeTensorsError {
                .invalidEntry(path: path, tensor: name, field: field, reason: reason)
            }
            guard case let .object(info) = value else { throw bad("entry", "must be an object, got \(value.kind)") }
            let keys = Dictionary(info, uniquingKeysWith: { a, _ in a })
            for field in ["dtype", "shape", "data_offsets"] where keys[field] == nil { throw bad(field, "missing") }
            guard case let .string(dtypeName)? = keys["dtype"] else { throw bad("dtype", "must be a string, got \(keys["dtype"]!.kind)") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard case let .array(dimValues)? = keys["shape"] else { throw bad("shape", "must be an array, got \(keys["shape"]!.kind)") }
            var shape: [Int] = []
            for (i, v) in dimValues.enumerated() {
                guard case let .integer(d) = v else { throw bad("shape", "dimension \(i) must be an integer, got \(v.kind)") }
                guard d >= 0 else { throw bad("shape", "dimension \(i) is negative (\(d))") }
                shape.append(d)
            }
            guard let expected = byteCount(shape: shape, dtype: dtype) else {
                throw bad("shape", "\(shape) × \(dtype.size) bytes overflows")
            }
            guard case let .array(offsetValues)? = keys["data_offsets"] else {
                throw bad("data_offsets", "must be an array, got \(keys["data_offsets"]!.kind)")
            }
            guard offsetValues.count == 2, case let .integer(begin) = offsetValues[0], case let .integer(end) = offsetValues[1] else {
                throw bad("data_offsets", "must be two integers [begin, end]")
            }
            guard begin >= 0, begin <= end else { throw bad("data_offsets", "[\(begin), \(end)] is not an increasing range") }
            guard end <= bufferLength else {
                throw bad("data_offsets", "end \(end) is past the end of the \(bufferLength)-byte buffer")
            }
            guard end - begin == expected else {
                throw SafeTensorsError.sizeMismatch(path: path, tensor: name, expected: expected, got: end - begin)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, bytes: Array(bytes[(headerEnd + begin)..<(headerEnd + end)]))
            order.append(name)
            if begin < end { ranges.append((name, begin..<end)) }
        }
        ranges.sort { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(ranges, ranges.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw SafeTensorsError.overlap(path: path, first: a.name, second: b.name)
        }
        return (entries, order, metadata)
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case let .object(pairs) = value else {
            throw SafeTensorsError.invalidMetadata(path: path, key: nil, reason: "must be an object, got \(value.kind)")
        }
        var result: [String: String] = [:]
        for (k, v) in pairs {
            guard case let .string(s) = v else {
                throw SafeTensorsError.invalidMetadata(path: path, key: k, reason: "values must be strings, got \(v.kind)")
            }
            result[k] = s
        }
        return result
    }

    /// Reads the 8-byte length, the header, then only the bytes the header's `data_offsets`
    /// reach, and refuses anything after them: a device such as /dev/zero or a file with data
    /// appended is never read past what the header declares (the header itself is at most
    /// `maxHeaderLength`). A header that does not parse is handed to `parse` as it is, which
    /// reports what is wrong with it.
    private static func readFile(_ path: String) throws -> [UInt8] {
        let file: BoundedFile
        do { file = try BoundedFile(path: path) } catch {
            throw SafeTensorsError.io(path: path, operation: error.operation, errno: error.code)
        }
        func read(_ count: Int) throws -> [UInt8] {
            do { return try file.read(upTo: count) } catch {
                throw SafeTensorsError.io(path: path, operation: error.operation, errno: error.code)
            }
        }
        var bytes = try read(8)
        guard bytes.count == 8 else { return bytes }
        var n: UInt64 = 0
        for i in (0..<8).reversed() { n = n << 8 | UInt64(bytes[i]) }
        guard n <= UInt64(maxHeaderLength) else { return bytes + (try read(1)) }  // parse reports the length
        if let size = file.regularSize, n > UInt64(max(size - 8, 0)) { return bytes + (try read(size - 8)) }
        bytes += try read(Int(n))
        guard bytes.count == 8 + Int(n) else { return bytes }
        // The end of the data the header declares (the furthest data_offsets end).
        var parser = JSONParser(bytes: Array(bytes[8...]), path: path)
        guard String(validating: bytes[8...], as: UTF8.self) != nil, let root = try? parser.parseDocument(),
              case let .object(fields) = root else { return bytes }
        var end = 0
        for (name, value) in fields where name != "__metadata__" {
            guard case let .object(info) = value,
                  let offsets = info.first(where: { $0.0 == "data_offsets" })?.1,
                  case let .array(pair) = offsets, pair.count == 2, case let .integer(e) = pair[1], e >= 0 else { continue }
            end = max(end, e)
        }
        let declared = 8 + Int(n) + end
        if let size = file.regularSize, size > declared {
            throw SafeTensorsError.trailingData(path: path, declared: declared, size: size)
        }
        bytes += try read(end)
        if bytes.count == declared, !(try read(1)).isEmpty {
            throw SafeTensorsError.trailingData(path: path, declared: declared, size: nil)
        }
        return bytes
    }

    // MARK: Writing

    /// Writes `tensors` (in this order) and `metadata` to `path` atomically: the data goes to
    /// `.<name>.tmp-<pid>` in the same directory, is flushed to disk, then renamed over `path`,
    /// and the directory is flushed. On any failure the temporary file is removed and a
    /// previous file at `path` is left untouched.
    public static func write(path: String, tensors: [(name: String, entry: Entry)], metadata: [String: String]) throws {
        try write(path: path, tensors: tensors, metadata: metadata, writer: posixWrite)
    }

    /// `write` with the system call that moves bytes replaced (a seam for simulating a full
    /// disk or short writes in tests). `writer` follows write(2): bytes written, or -1 and errno.
    static func write(path: String, tensors: [(name: String, entry: Entry)], metadata: [String: String],
                      writer: (Int32, UnsafeRawPointer, Int) -> Int) throws {
        let header = try encodeHeader(path: path, tensors: tensors, metadata: metadata)
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path

        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw SafeTensorsError.io(path: temp, operation: "create temporary file", errno: errno) }
        var closed = false
        do {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try writeAll(fd, $0, path: temp, writer: writer) }
            try header.withUnsafeBytes { try writeAll(fd, $0, path: temp, writer: writer) }
            for (_, entry) in tensors {
                try entry.bytes.withUnsafeBytes { try writeAll(fd, $0, path: temp, writer: writer) }
            }
            guard fsync(fd) == 0 else { throw SafeTensorsError.io(path: temp, operation: "fsync", errno: errno) }
            closed = true
            guard close(fd) == 0 else { throw SafeTensorsError.io(path: temp, operation: "close", errno: errno) }
            guard rename(temp, path) == 0 else {
                throw SafeTensorsError.io(path: path, operation: "rename \(temp) to", errno: errno)
            }
        } catch {
            if !closed { close(fd) }
            unlink(temp)
            throw error
        }
        // The new file is in place; make the rename itself durable.
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw SafeTensorsError.io(path: directory, operation: "open directory for fsync", errno: errno) }
        defer { close(dfd) }
        if fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP {
            throw SafeTensorsError.io(path: directory, operation: "fsync directory", errno: errno)
        }
    }

    private static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String,
                                 writer: (Int32, UnsafeRawPointer, Int) -> Int) throws {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let n = writer(fd, base + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.io(path: path, operation: "write", errno: errno)
            }
            if n == 0 { throw SafeTensorsError.shortWrite(path: path, written: done, expected: buffer.count) }
            done += n
        }
    }

    /// The JSON header, padded with spaces so that 8 + its length is a multiple of 8.
    static func encodeHeader(path: String, tensors: [(name: String, entry: Entry)], metadata: [String: String]) throws -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += jsonString("__metadata__") + ":{"
            json += metadata.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        var seen = Set<String>()
        for (name, entry) in tensors {
            func bad(_ reason: String) -> SafeTensorsError { .invalidTensor(path: path, tensor: name, reason: reason) }
            guard name != "__metadata__" else { throw bad("the name is reserved for metadata") }
            guard seen.insert(name).inserted else { throw bad("the name appears twice") }
            guard let need = byteCount(shape: entry.shape, dtype: entry.dtype) else {
                throw bad("shape \(entry.shape) has a negative dimension or overflows")
            }
            guard need == entry.bytes.count else {
                throw bad("\(entry.bytes.count) bytes given; \(entry.dtype.rawValue) \(entry.shape) needs \(need)")
            }
            if !first { json += "," }
            first = false
            json += jsonString(name) + ":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":["
                + entry.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(offset + need)]}"
            offset += need
        }
        json += "}"
        var bytes = Array(json.utf8)
        while bytes.count % 8 != 0 { bytes.append(0x20) }
        return bytes
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

#if canImport(Glibc)
private func posixRead(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int { Glibc.read(fd, p, n) }
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
#elseif canImport(Musl)
private func posixRead(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int { Musl.read(fd, p, n) }
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Musl.write(fd, p, n) }
#else
private func posixRead(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int { Darwin.read(fd, p, n) }
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
#endif

/// Little-endian bytes of integers.
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    let size = MemoryLayout<T>.size
    return [UInt8](unsafeUninitializedCapacity: values.count * size) { out, initialized in
        for (i, v) in values.enumerated() {
            withUnsafeBytes(of: v.littleEndian) { raw in
                for k in 0..<size { out[i * size + k] = raw[k] }
            }
        }
        initialized = values.count * size
    }
}
