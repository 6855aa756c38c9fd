import Foundation

/// A `.npy` file that cannot be read or written; the message names the file and the problem.
public struct NumPyError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or `<bytes>` for `NumPy.parse(bytes:)` without a path).
    public let path: String
    /// What is wrong, in words.
    public let reason: String

    /// An error about `path` saying `reason`.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// The value in words, as `print` shows it.
    public var description: String { "\(path): \(reason)" }
}

/// NumPy's `.npy` format (format versions 1.0, 2.0 and 3.0), for arrays going into and
/// out of models from Python (`np.save` / `np.load`).
///
/// Reading accepts little-endian, C-order (`fortran_order: False`) arrays of
/// - `<f4` (float32): as is;
/// - `<f8` (float64): rounded to the nearest float32 (magnitudes beyond float32's range become ±inf);
/// - `|u1` (uint8, also written `<u1`/`>u1`): divided by 255, to [0, 1] — as the IDX loader and
///   torchvision's `ToTensor` scale image bytes, so raw images give the inputs a model was trained on.
///
/// Nothing in the header is trusted: the magic, the version, the header length (within the
/// file and at most `maxHeaderLength`), the header dictionary (exactly the keys `descr`,
/// `fortran_order` and `shape`, as NumPy requires), every dimension and the data length
/// (exactly product(shape) × itemsize bytes; no more, no less) are checked, and each
/// problem is a `NumPyError` naming the file. Fortran order, big-endian data, object and
/// structured arrays and other dtypes are refused with that reason.
///
/// Writing produces format 1.0 (2.0 if the header needs more than 65535 bytes), `<f4`,
/// C order, the header padded to a multiple of 64 bytes as NumPy writes it.
public enum NumPy {
    /// The largest header accepted (NumPy's own `np.load` refuses more than 10,000 bytes by default).
    public static let maxHeaderLength = 1 << 20
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// The element types `read` converts to float32.
    public enum DType: String, Sendable {
        /// Little-endian float32, read as is.
        case float32 = "<f4"
        /// Little-endian float64, rounded to float32.
        case float64 = "<f8"
        /// Unsigned bytes, divided by 255.
        case uint8 = "|u1"
        var size: Int { switch self { case .float32: 4; case .float64: 8; case .uint8: 1 } }
    }

    /// Reads a `.npy` file as float32 values in C order (see the type's notes for conversions).
    public static func read(path: String) throws -> (shape: [Int], values: [Float]) {
        // Read the preamble and header, then only the data the header declares (memory grows
        // with what arrives), then one byte more to catch trailing data: /dev/zero or a file
        // with something appended is never read past its declared size.
        if let kind = refusedFileKind(path) { throw NumPyError(path: path, reason: "is \(kind), not a .npy file") }
        let file: BoundedFile
        do { file = try BoundedFile(path: path) } catch {
            throw NumPyError(path: path, reason: error.code == ENOENT ? "no such file" : "cannot be read (\(error.operation): \(error.reason))")
        }
        func read(_ count: Int) throws -> [UInt8] {
            do { return try file.read(upTo: count) } catch {
                throw NumPyError(path: path, reason: "cannot be read (\(error.operation): \(error.reason))")
            }
        }
        var bytes = try read(10)
        if bytes.count == 10, bytes[6] >= 2 { bytes += try read(2) }
        if bytes.count >= 10, Array(bytes[0..<6]) == magic {
            let length = bytes[6] >= 2 && bytes.count == 12
                ? Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
                : Int(bytes[8]) | Int(bytes[9]) << 8
            if length <= maxHeaderLength { bytes += try read(length) }
        }
        let (shape, dtype, dataOffset) = try parseHeader(bytes: bytes, path: path, fileSize: file.regularSize ?? Int.max)
        let needed = shape.reduce(1, *) * dtype.size  // checked for overflow by parseHeader
        bytes += try read(needed)
        if bytes.count == dataOffset + needed, !(try read(1)).isEmpty {
            let size = file.regularSize.map { "the file has \($0 - dataOffset)" } ?? "the file goes on past them (not read further)"
            throw NumPyError(path: path, reason: "shape \(shapeText(shape)) of \(dtype.rawValue) needs \(needed) bytes of data, \(size) (trailing bytes)")
        }
        return try parse(bytes: bytes, path: path)
    }

    /// Parses the bytes of a `.npy` file; errors name `path`. Safe on any input (the fuzzing seam).
    public static func parse(bytes: [UInt8], path: String = "<bytes>") throws -> (shape: [Int], values: [Float]) {
        let (shape, dtype, dataOffset) = try parseHeader(bytes: bytes, path: path)
        let count = shape.reduce(1, *)  // checked for overflow by parseHeader
        let available = bytes.count - dataOffset
        let needed = count * dtype.size
        guard available == needed else {
            throw NumPyError(path: path, reason: "shape \(shapeText(shape)) of \(dtype.rawValue) needs \(needed) bytes of data, the file has \(available)"
                             + (available < needed ? " (truncated)" : " (trailing bytes)"))
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let data = UnsafeRawBufferPointer(rebasing: raw[dataOffset...])
            switch dtype {
            case .float32:
                for i in 0..<count { values[i] = Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            case .float64:
                for i in 0..<count {
                    values[i] = Float(Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            case .uint8:
                for i in 0..<count { values[i] = Float(data[i]) / 255 }
            }
        }
        return (shape, values)
    }

    /// Checks the magic, version and header, and returns the shape, dtype and where the data starts.
    /// `fileSize`: the whole file's size when `bytes` holds only its start (nil: `bytes` is all of it).
    static func parseHeader(bytes: [UInt8], path: String, fileSize: Int? = nil) throws -> (shape: [Int], dtype: DType, dataOffset: Int) {
        let fileBytes = fileSize ?? bytes.count
        func fail(_ reason: String) -> NumPyError { NumPyError(path: path, reason: reason) }
        guard bytes.count >= 10 else {
            throw fail("not a .npy file: \(bytes.count) bytes is shorter than the 10-byte preamble")
        }
        guard Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file: the magic string \\x93NUMPY is missing")
        }
        let major = bytes[6], minor = bytes[7]
        let headerLength: Int, headerStart: Int
        switch (major, minor) {
        case (1, 0):
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case (2, 0), (3, 0):
            guard bytes.count >= 12 else { throw fail("format \(major).\(minor) preamble is truncated (\(bytes.count) bytes)") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(minor) (1.0, 2.0 and 3.0 are read)")
        }
        guard headerLength <= maxHeaderLength else {
            throw fail("header length \(headerLength) exceeds the limit of \(maxHeaderLength) bytes")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw fail("header length \(headerLength) runs past the end of the \(bytes.count)-byte file")
        }
        let headerBytes = bytes[headerStart..<(headerStart + headerLength)]
        // 1.0 and 2.0 headers are latin-1 (in practice ASCII); 3.0 allows UTF-8.
        let header: String
        if major == 3 {
            guard let text = String(validating: headerBytes, as: UTF8.self) else { throw fail("header is not valid UTF-8") }
            header = text
        } else {
            header = String(decoding: headerBytes.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        }
        let dict: [String: HeaderValue]
        do {
            var parser = HeaderParser(Array(header.unicodeScalars))
            dict = try parser.parseDictionary()
        } catch let e as HeaderParser.Failure {
            throw fail("malformed header (\(e.message)): \(header.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))")
        }
        let expected: Set<String> = ["descr", "fortran_order", "shape"]
        for k in expected where dict[k] == nil { throw fail("header has no '\(k)' key") }
        if let extra = dict.keys.filter({ !expected.contains($0) }).sorted().first {
            throw fail("header has an unexpected key '\(extra)' (only 'descr', 'fortran_order' and 'shape' are allowed)")
        }

        let dtype: DType
        switch dict["descr"]! {
        case let .string(d):
            switch d {
            case "<f4": dtype = .float32
            case "<f8": dtype = .float64
            case "|u1", "<u1", ">u1": dtype = .uint8
            case "|O", "<O", ">O", "O": throw fail("object arrays ('\(d)') are not supported: save a numeric array (float32, float64 or uint8)")
            case "<f2", "<i1", "|i1", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8", "|b1", "<c8", "<c16":
                throw fail("dtype '\(d)' is not supported: use float32 ('<f4'), float64 ('<f8') or uint8 ('|u1')")
            default:
                if d.hasPrefix(">") { throw fail("big-endian data ('\(d)') is not supported: save with dtype '<\(d.dropFirst())' (little-endian)") }
                throw fail("dtype '\(d)' is not supported: use float32 ('<f4'), float64 ('<f8') or uint8 ('|u1')")
            }
        case .list:
            throw fail("structured arrays (a list 'descr') are not supported: save a plain numeric array")
        default:
            throw fail("'descr' must be a string such as '<f4'")
        }
        guard case let .bool(fortran) = dict["fortran_order"]! else { throw fail("'fortran_order' must be True or False") }
        guard !fortran else {
            throw fail("Fortran-order arrays are not supported: save np.ascontiguousarray(x) (C order)")
        }
        guard case let .tuple(dims) = dict["shape"]! else { throw fail("'shape' must be a tuple of integers") }
        var shape: [Int] = []
        var product = 1
        for (i, v) in dims.enumerated() {
            guard case let .int(d) = v else { throw fail("'shape' dimension \(i) is not an integer") }
            guard d >= 0 else { throw fail("'shape' dimension \(i) is negative (\(d))") }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            let (bytesNeeded, overflow2) = p.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, !overflow2, bytesNeeded <= fileBytes else {
                throw fail("shape \(shapeText(dims.compactMap { if case let .int(x) = $0 { x } else { nil } })) needs more data than the \(fileBytes)-byte file holds")
            }
            product = p
            shape.append(d)
        }
        return (shape, dtype, headerStart + headerLength)
    }

    /// Writes float32 `values` of `shape` (C order) as a `.npy` file, atomically (a temporary
    /// file renamed into place).
    public static func write(path: String, shape: [Int], values: [Float]) throws {
        let bytes = try encode(shape: shape, values: values, path: path)
        if let kind = nonRegularFileKind(path) { throw NumPyError(path: path, reason: "is \(kind); cannot write a .npy file there") }
        let url = URL(fileURLWithPath: path)
        do {
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw NumPyError(path: path, reason: "cannot be written: \(describeFileProblem(error))")
        }
    }

    /// The bytes of a `.npy` file holding float32 `values` of `shape`.
    public static func encode(shape: [Int], values: [Float], path: String = "<bytes>") throws -> [UInt8] {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw NumPyError(path: path, reason: "shape \(shapeText(shape)) has a negative dimension")
        }
        guard shape.reduce(1, *) == values.count else {
            throw NumPyError(path: path, reason: "shape \(shapeText(shape)) needs \(shape.reduce(1, *)) values, got \(values.count)")
        }
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText(shape)), }"
        // Pad with spaces so the data starts on a multiple of 64 bytes; the header ends in '\n'.
        let padded1 = (10 + dict.utf8.count + 1 + 63) / 64 * 64
        let v1 = padded1 - 10 <= 65535
        let preamble = v1 ? 10 : 12
        let total = v1 ? padded1 : (12 + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - preamble - dict.utf8.count - 1) + "\n"
        let n = dict.utf8.count
        var out = magic + (v1 ? [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)]
                                : [2, 0, UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)])
        out += Array(dict.utf8)
        out.reserveCapacity(out.count + values.count * 4)
        for v in values {
            let b = v.bitPattern.littleEndian
            out += [UInt8(b & 0xFF), UInt8((b >> 8) & 0xFF), UInt8((b >> 16) & 0xFF), UInt8(b >> 24)]
        }
        return out
    }

    /// A shape as Python writes a tuple: `()`, `(3,)`, `(2, 3)`.
    static func shapeText(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}

/// A value in a `.npy` header: the subset of Python literals NumPy writes there.
enum HeaderValue: Equatable {
    case string(String), bool(Bool), int(Int), tuple([HeaderValue]), list([HeaderValue]), none
}

/// A parser for the header's Python dictionary literal (`{'descr': '<f4', 'fortran_order':
/// False, 'shape': (2, 3), }`): strings, True/False/None, integers, tuples and lists.
/// Nesting is bounded, so hostile input cannot exhaust the stack.
struct HeaderParser {
    struct Failure: Error { let message: String }
    let text: [Unicode.Scalar]
    var i = 0
    var depth = 0

    init(_ text: [Unicode.Scalar]) { self.text = text }

    mutating func skipSpace() {
        while i < text.count, text[i] == " " || text[i] == "\t" || text[i] == "\n" || text[i] == "\r" { i += 1 }
    }

    mutating func expect(_ c: Unicode.Scalar) throws {
        skipSpace()
        guard i < text.count, text[i] == c else {
            throw Failure(message: i < text.count ? "expected '\(c)' at offset \(i), found '\(text[i])'" : "expected '\(c)', found the end")
        }
        i += 1
    }

    mutating func parseDictionary() throws -> [String: HeaderValue] {
        try expect("{")
        var result: [String: HeaderValue] = [:]
        while true {
            skipSpace()
            if i < text.count, text[i] == "}" { i += 1; break }
            guard case let .string(key) = try parseValue() else { throw Failure(message: "dictionary keys must be strings") }
            guard result[key] == nil else { throw Failure(message: "duplicate key '\(key)'") }
            try expect(":")
            result[key] = try parseValue()
            skipSpace()
            guard i < text.count else { throw Failure(message: "unterminated dictionary") }
            if text[i] == "," { i += 1; continue }
            if text[i] == "}" { i += 1; break }
            throw Failure(message: "expected ',' or '}' at offset \(i), found '\(text[i])'")
        }
        skipSpace()
        guard i == text.count else { throw Failure(message: "unexpected text after the dictionary at offset \(i)") }
        return result
    }

    mutating func parseValue() throws -> HeaderValue {
        skipSpace()
        guard i < text.count else { throw Failure(message: "expected a value, found the end") }
        let c = text[i]
        if c == "'" || c == "\"" {
            i += 1
            var s = ""
            while i < text.count, text[i] != c {
                guard text[i] != "\\" else { throw Failure(message: "escapes in strings are not supported") }
                s.unicodeScalars.append(text[i]); i += 1
            }
            guard i < text.count else { throw Failure(message: "unterminated string") }
            i += 1
            return .string(s)
        }
        if c == "(" || c == "[" {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 32 else { throw Failure(message: "nesting deeper than 32 levels") }
            let close: Unicode.Scalar = c == "(" ? ")" : "]"
            i += 1
            var items: [HeaderValue] = []
            var sawComma = false
            while true {
                skipSpace()
                guard i < text.count else { throw Failure(message: "unterminated \(c == "(" ? "tuple" : "list")") }
                if text[i] == close { i += 1; break }
                items.append(try parseValue())
                skipSpace()
                guard i < text.count else { throw Failure(message: "unterminated \(c == "(" ? "tuple" : "list")") }
                if text[i] == "," { i += 1; sawComma = true; continue }
                if text[i] == close { i += 1; break }
                throw Failure(message: "expected ',' or '\(close)' at offset \(i), found '\(text[i])'")
            }
            // `(3)` is a parenthesised integer in Python, not a tuple.
            if c == "(", items.count == 1, !sawComma { return items[0] }
            return c == "(" ? .tuple(items) : .list(items)
        }
        if c == "-" || ("0"..."9").contains(c) {
            var digits = ""
            if c == "-" { digits = "-"; i += 1 }
            while i < text.count, ("0"..."9").contains(text[i]) { digits.unicodeScalars.append(text[i]); i += 1 }
            if i < text.count, text[i] == "L" { i += 1 }  // Python 2's long suffix, in old files
            guard let v = Int(digits) else { throw Failure(message: "integer '\(digits)' is malformed or out of range") }
            return .int(v)
        }
        for (word, value) in [("True", HeaderValue.bool(true)), ("False", .bool(false)), ("None", .none)] {
            let w = Array(word.unicodeScalars)
            if i + w.count <= text.count, Array(text[i..<(i + w.count)]) == w {
                i += w.count
                return value
            }
        }
        throw Failure(message: "unexpected '\(c)' at offset \(i)")
    }
}
