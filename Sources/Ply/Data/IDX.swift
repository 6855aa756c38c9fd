#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An n-dimensional array of unsigned bytes read from an IDX file.
public struct IDXArray: Sendable, Equatable {
    /// The file it was read from (used in error messages).
    public let path: String
    /// Dimension sizes, outermost first (e.g. `[60000, 28, 28]`).
    public let shape: [Int]
    /// Row-major element data; `data.count == shape.reduce(1, *)`.
    public let data: [UInt8]
}

/// Reader for the IDX format used by MNIST and Fashion-MNIST.
///
/// Layout: two zero bytes, an element-type byte (only `0x08`, unsigned byte,
/// is supported), a dimension-count byte, then one big-endian `UInt32` size
/// per dimension, then the elements. Files may be raw or gzip-compressed
/// (detected by the `1f 8b` magic, not by the file name).
public enum IDX {
    /// Magic number of an MNIST image file: unsigned bytes, 3 dimensions.
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic number of an MNIST label file: unsigned bytes, 1 dimension.
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// How far past its declared end a file is read to say how long it is (1 MiB): data
    /// beyond that is reported as `.longerThanDeclared` without being read.
    public static let trailingMargin = 1 << 20

    /// The file as a stream of (decompressed) bytes: raw regular files directly; gzip (by the
    /// `1f 8b` magic) and pipes or devices through zlib, which passes non-gzip data through.
    private final class Source {
        let file: BoundedFile
        let gzip: Gzip.Stream?

        init(path: String) throws(DataError) {
            if let kind = refusedFileKind(path) { throw .notARegularFile(path: path, kind: kind) }
            let opened: BoundedFile
            do { opened = try BoundedFile(path: path) } catch {
                if error.code == ENOENT { throw .fileNotFound(path: path) }
                throw .unreadable(path: path, reason: error.reason)
            }
            file = opened
            if opened.regularSize != nil {
                var magic: [UInt8] = [0, 0]
                let got = magic.withUnsafeMutableBytes { pread(opened.descriptor, $0.baseAddress, 2, 0) }
                gzip = got == 2 && Gzip.hasMagic(magic) ? try Gzip.Stream(descriptor: opened.descriptor, path: path) : nil
            } else {
                gzip = try? Gzip.Stream(descriptor: opened.descriptor, path: path)
            }
        }

        func read(upTo count: Int) throws(DataError) -> [UInt8] {
            if let gzip { return try gzip.read(upTo: count) }
            do { return try file.read(upTo: count) } catch {
                throw .unreadable(path: file.path, reason: error.reason)
            }
        }

        /// The exact size of a raw regular file (nil for gzip and streams).
        var rawSize: Int? { gzip == nil ? file.regularSize : nil }

        func finish() throws(DataError) { try gzip?.finish() }
    }

    /// Reads a whole file, transparently decompressing gzip; at most `limit` bytes.
    ///
    /// - Throws: `DataError.fileNotFound`, `.unreadable`, `.corruptGzip`, `.zlibUnavailable`,
    ///   `.decompressedTooLarge` past `limit`.
    public static func readBytes(path: String, limit: Int = 1 << 32) throws(DataError) -> [UInt8] {
        let source = try Source(path: path)
        let bytes = try source.read(upTo: limit)
        if bytes.count == limit, try !source.read(upTo: 1).isEmpty {
            throw .decompressedTooLarge(path: path, limit: limit)
        }
        try source.finish()
        return bytes
    }

    /// Reads and validates an IDX file of unsigned bytes.
    ///
    /// The header is read first and checked; then exactly the bytes it declares are read
    /// (memory grows with the data that arrives, never with what the header claims), and a
    /// byte more tells whether anything follows. Trailing data is measured up to
    /// `trailingMargin` past the declared end and no further, so a gzip bomb or `/dev/zero`
    /// costs at most the declared size.
    ///
    /// - Parameters:
    ///   - path: a raw or gzip-compressed IDX file.
    ///   - magic: if given, the exact 4-byte magic required (e.g. `imagesMagic`).
    /// - Throws: `DataError` naming `path` if the file is missing, unreadable,
    ///   has the wrong magic / type / dimension count, or its length does not
    ///   match its header (`.truncated` with expected and actual byte counts).
    public static func read(path: String, magic: UInt32? = nil) throws(DataError) -> IDXArray {
        let source = try Source(path: path)
        var bytes = try source.read(upTo: 4)
        if bytes.count == 4 { bytes += try source.read(upTo: 4 * Int(bytes[3])) }
        let total: Int
        do { total = try header(bytes, path: path, magic: magic).total } catch {
            if case .headerTooShort = error { try source.finish() }  // a damaged .gz says so first
            throw error
        }
        bytes += try source.read(upTo: total - bytes.count)
        if bytes.count < total {
            try source.finish()
            throw .truncated(path: path, expectedBytes: total, actualBytes: bytes.count)
        }
        let extra = try source.read(upTo: trailingMargin + 1)
        if !extra.isEmpty {
            if let size = source.rawSize, size > total {
                throw .trailingBytes(path: path, expectedBytes: total, actualBytes: size)
            }
            if extra.count <= trailingMargin {
                throw .trailingBytes(path: path, expectedBytes: total, actualBytes: total + extra.count)
            }
            throw .longerThanDeclared(path: path, expectedBytes: total, readBytes: total + extra.count)
        }
        try source.finish()
        return try parse(bytes, path: path, magic: magic)
    }

    /// Checks the header at the start of `bytes` (only the header need be there) and returns
    /// the shape, the header's size and the file size it declares.
    static func header(_ bytes: [UInt8], path: String, magic: UInt32?) throws(DataError) -> (shape: [Int], headerSize: Int, total: Int) {
        guard bytes.count >= 4 else {
            throw .headerTooShort(path: path, expectedBytes: 4, actualBytes: bytes.count)
        }
        let found = bigEndianUInt32(bytes, at: 0)
        if let magic, found != magic {
            throw .badMagic(path: path, expected: magic, actual: found)
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw .badMagic(path: path, expected: magic ?? (0x0000_0800 | UInt32(bytes[3])), actual: found)
        }
        guard bytes[2] == 0x08 else {
            throw .unsupportedType(path: path, typeCode: bytes[2])
        }
        let rank = Int(bytes[3])
        guard rank >= 1 else {
            throw .wrongDimensions(path: path, expected: 1, actual: 0)
        }
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw .headerTooShort(path: path, expectedBytes: headerSize, actualBytes: bytes.count)
        }
        var shape: [Int] = []
        var elements = 1
        var overflow = false
        for axis in 0..<rank {
            let size = Int(bigEndianUInt32(bytes, at: 4 + 4 * axis))
            shape.append(size)
            let (product, over) = elements.multipliedReportingOverflow(by: size)
            elements = product
            overflow = overflow || over
        }
        let (total, over) = headerSize.addingReportingOverflow(elements)
        if overflow || over { throw .sizeOverflow(path: path, dimensions: shape) }
        return (shape, headerSize, total)
    }

    /// Validates and decodes IDX bytes already in memory; `path` is only used in errors.
    public static func parse(_ bytes: [UInt8], path: String, magic: UInt32? = nil) throws(DataError) -> IDXArray {
        let (shape, headerSize, total) = try header(bytes, path: path, magic: magic)
        if bytes.count < total {
            throw .truncated(path: path, expectedBytes: total, actualBytes: bytes.count)
        }
        if bytes.count > total {
            throw .trailingBytes(path: path, expectedBytes: total, actualBytes: bytes.count)
        }
        return IDXArray(path: path, shape: shape, data: Array(bytes[headerSize...]))
    }

    /// Reads an MNIST-style image file (magic `0x00000803`, shape N×H×W).
    public static func readImages(path: String) throws(DataError) -> IDXArray {
        try read(path: path, magic: imagesMagic)
    }

    /// Reads an MNIST-style label file (magic `0x00000801`, shape N) and checks
    /// every label is in `0..<classCount`.
    ///
    /// - Throws: `DataError.labelOutOfRange` naming the file, index and label.
    public static func readLabels(path: String, classCount: Int = 10) throws(DataError) -> IDXArray {
        let array = try read(path: path, magic: labelsMagic)
        if let index = array.data.firstIndex(where: { Int($0) >= classCount }) {
            throw .labelOutOfRange(path: path, index: index, label: Int(array.data[index]), classCount: classCount)
        }
        return array
    }

    private static func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// The gzip trailer's ISIZE (uncompressed length mod 2^32), used only to
    /// reserve capacity; 0 if unavailable or implausible. The trailer is the
    /// file's word, so the hint is capped at what deflate can expand the file's
    /// bytes to (at most 1032:1): a 40-byte file claiming 4 GB must not make the
    /// reader reserve 1 GB up front (found by fuzzing, Fuzz/FuzzIDX).
    static func gzipSizeHint(path: String) -> Int {
        guard let file = fopen(path, "rb") else { return 0 }
        defer { fclose(file) }
        guard fseek(file, -4, SEEK_END) == 0 else { return 0 }
        let compressedBytes = ftell(file) + 4
        var trailer = [UInt8](repeating: 0, count: 4)
        guard trailer.withUnsafeMutableBytes({ fread($0.baseAddress, 1, 4, file) }) == 4 else { return 0 }
        let size = Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
        return min(size, max(compressedBytes, 0) * 1032, 1 << 30)
    }
}
