import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Every problem reading or writing a safetensors file. Each case names the file and,
/// where there is one, the tensor or field at fault.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call failed (`operation` says which, `errno` why).
    case io(path: String, operation: String, errno: Int32)
    /// The path is a directory, device, FIFO or socket (`kind` says which), not a file.
    case notARegularFile(path: String, kind: String)
    /// A write accepted no bytes (it neither progressed nor reported an error).
    case shortWrite(path: String, written: Int, expected: Int)
    /// The file is too short to hold the 8-byte header length.
    case truncated(path: String, size: Int)
    /// The header length runs past the end of the file or is absurdly large.
    case headerLength(path: String, length: UInt64, fileSize: Int)
    /// The header is not valid UTF-8.
    case headerEncoding(path: String)
    /// The header is not valid JSON (`offset` is the byte inside the header).
    case headerSyntax(path: String, offset: Int, reason: String)
    /// The header is valid JSON but not an object.
    case headerNotObject(path: String)
    /// An entry (or one of its fields) is missing or of the wrong JSON type or value.
    case invalidEntry(path: String, tensor: String, field: String, reason: String)
    /// An entry's dtype is not one safetensors defines.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// An entry's byte range does not hold product(shape) × element size bytes.
    case sizeMismatch(path: String, tensor: String, expected: Int, got: Int)
    /// Two tensors' byte ranges overlap.
    case overlap(path: String, first: String, second: String)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(path: String, key: String?, reason: String)
    /// A tensor handed to `write` is not consistent (name, shape or byte count).
    case invalidTensor(path: String, tensor: String, reason: String)
    /// Data follows the end of the last tensor the header declares (`declared` is the file
    /// size the header accounts for); `size` is the file's size when known.
    case trailingData(path: String, declared: Int, size: Int?)

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .io(path, operation, code):
            return "\(path): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        case let .notARegularFile(path, kind):
            return "\(path) is \(kind), not a safetensors file"
        case let .shortWrite(path, written, expected):
            return "\(path): write stopped after \(written) of \(expected) bytes"
        case let .truncated(path, size):
            return "\(path): \(size) bytes is too short for a safetensors file (needs an 8-byte header length)"
        case let .headerLength(path, length, fileSize):
            return "\(path): header length \(length) does not fit: the file has \(fileSize) bytes"
                + (length > UInt64(SafeTensors.maxHeaderLength) ? " and headers are limited to \(SafeTensors.maxHeaderLength) bytes" : "")
        case let .headerEncoding(path):
            return "\(path): header is not valid UTF-8"
        case let .headerSyntax(path, offset, reason):
            return "\(path): header is not valid JSON at byte \(offset): \(reason)"
        case let .headerNotObject(path):
            return "\(path): header is not a JSON object"
        case let .invalidEntry(path, tensor, field, reason):
            return "\(path): tensor '\(tensor)': \(field): \(reason)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)': unknown dtype '\(dtype)' (known: "
                + SafeTensors.DType.allCases.map(\.rawValue).joined(separator: ", ") + ")"
        case let .sizeMismatch(path, tensor, expected, got):
            return "\(path): tensor '\(tensor)': data_offsets cover \(got) bytes; dtype and shape need \(expected)"
        case let .overlap(path, first, second):
            return "\(path): tensors '\(first)' and '\(second)' have overlapping data_offsets"
        case let .invalidMetadata(path, key, reason):
            return "\(path): __metadata__\(key.map { "['\($0)']" } ?? ""): \(reason)"
        case let .invalidTensor(path, tensor, reason):
            return "\(path): cannot write tensor '\(tensor)': \(reason)"
        case let .trailingData(path, declared, size):
            return "\(path): unexpected trailing data: the header accounts for \(declared) bytes, the file "
                + (size.map { "has \($0)" } ?? "goes on past them (not read further)")
        }
    }
}

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

// MARK: - A strict JSON reader for headers

/// A JSON value keeping object key order and telling integers from other numbers.
enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null

    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer(let i): return "the integer \(i)"
        case .number(let d): return "the non-integer number \(d)"
        case .bool(let b): return "\(b)"
        case .null: return "null"
        }
    }
}

/// Parses RFC 8259 JSON from UTF-8 bytes. Rejects duplicate keys, nesting deeper than 64,
/// integers that do not fit Int and anything after the value but whitespace.
struct JSONParser {
    let bytes: [UInt8]
    let path: String
    var i = 0
    var depth = 0

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    mutating func parseDocument() throws -> JSONValue {
        let v = try value()
        skipSpace()
        if i < bytes.count { throw fail("unexpected '\(Character(Unicode.Scalar(bytes[i])))' after the value") }
        return v
    }

    private func fail(_ reason: String) -> SafeTensorsError { .headerSyntax(path: path, offset: i, reason: reason) }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < bytes.count, bytes[i] == c else {
            throw fail(i < bytes.count ? "expected '\(Character(Unicode.Scalar(c)))'" : "unexpected end of header")
        }
        i += 1
    }

    private mutating func value() throws -> JSONValue {
        skipSpace()
        guard i < bytes.count else { throw fail("unexpected end of header") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            depth += 1
            defer { depth -= 1 }
            guard depth <= 64 else { throw fail("nested too deeply") }
            i += 1
            var pairs: [(String, JSONValue)] = []
            var keys = Set<String>()
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyStart = i
                let key = try string()
                guard keys.insert(key).inserted else { i = keyStart; throw fail("duplicate key '\(key)'") }
                try expect(UInt8(ascii: ":"))
                pairs.append((key, try value()))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of header") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1
            defer { depth -= 1 }
            guard depth <= 64 else { throw fail("nested too deeply") }
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end of header") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        default:
            throw fail("unexpected '\(Character(Unicode.Scalar(bytes[i])))'")
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("invalid literal") }
        i += w.count
    }

    private mutating func number() throws -> JSONValue {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
            return i - s
        }
        let intStart = i
        let n = digits()
        guard n > 0 else { throw fail("invalid number") }
        if n > 1, bytes[intStart] == UInt8(ascii: "0") { i = intStart; throw fail("leading zero in number") }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1; integral = false
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1; integral = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if integral {
            guard let v = Int(text) else { i = start; throw fail("integer \(text) is out of range") }
            return .integer(v)
        }
        guard let d = Double(text) else { i = start; throw fail("invalid number \(text)") }
        return .number(d)
    }

    private mutating func string() throws -> String {
        i += 1  // opening quote
        var out = [UInt8]()
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw fail("unterminated string") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in string")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in string") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("unpaired surrogate in string")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - i >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }
}
