import Foundation

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
