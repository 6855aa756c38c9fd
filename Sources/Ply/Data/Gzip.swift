#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Minimal gzip support through the system zlib, loaded at run time.
///
/// Swift cannot `import` zlib without a module map, and the package manifest
/// has no system-library target for it, so the handful of functions we need
/// (`gzopen`, `gzread`, `gzwrite`, `gzclose`, `gzerror`) are looked up with
/// `dlopen` / `dlsym` and called through `@convention(c)` function pointers.
/// The library is opened once, lazily and thread-safely (Swift global `let`).
///
/// zlib's `gz*` interface streams whole files, handles multi-member archives,
/// and verifies the CRC and length in the gzip trailer.
enum Gzip {
    private typealias GzOpen = @convention(c) (UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> OpaquePointer?
    private typealias GzDOpen = @convention(c) (Int32, UnsafePointer<CChar>?) -> OpaquePointer?
    private typealias GzRead = @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UInt32) -> Int32
    private typealias GzWrite = @convention(c) (OpaquePointer?, UnsafeRawPointer?, UInt32) -> Int32
    private typealias GzClose = @convention(c) (OpaquePointer?) -> Int32
    private typealias GzError = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?) -> UnsafePointer<CChar>?

    /// The resolved zlib entry points.
    private struct Library: Sendable {
        let open: GzOpen
        let dopen: GzDOpen
        let read: GzRead
        let write: GzWrite
        let close: GzClose
        let error: GzError
    }

    /// Loaded on first use; the failure reason is kept so every caller sees it.
    private static let library: Result<Library, DataError> = load()

    private static func load() -> Result<Library, DataError> {
        var handle: UnsafeMutableRawPointer?
        for name in ["libz.so.1", "libz.so", "libz.1.dylib", "libz.dylib"] {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
        }
        guard let handle else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(.zlibUnavailable("cannot load libz.so.1: \(reason)"))
        }
        func symbol<T>(_ name: String, _ type: T.Type) -> T? {
            guard let pointer = dlsym(handle, name) else { return nil }
            return unsafeBitCast(pointer, to: type)
        }
        guard let open = symbol("gzopen", GzOpen.self),
              let dopen = symbol("gzdopen", GzDOpen.self),
              let read = symbol("gzread", GzRead.self),
              let write = symbol("gzwrite", GzWrite.self),
              let close = symbol("gzclose", GzClose.self),
              let error = symbol("gzerror", GzError.self)
        else {
            return .failure(.zlibUnavailable("libz is missing one of gzopen/gzdopen/gzread/gzwrite/gzclose/gzerror"))
        }
        return .success(Library(open: open, dopen: dopen, read: read, write: write, close: close, error: error))
    }

    /// True if `prefix` starts with the gzip magic bytes `1f 8b`.
    static func hasMagic<C: Collection>(_ prefix: C) -> Bool where C.Element == UInt8 {
        var iterator = prefix.makeIterator()
        return iterator.next() == 0x1f && iterator.next() == 0x8b
    }

    /// Decompresses the whole gzip file at `path`.
    ///
    /// - Throws: `DataError.zlibUnavailable`, `.unreadable` if the file cannot
    ///   be opened, `.corruptGzip` if the stream is damaged or ends early.
    /// Stops with `DataError.decompressedTooLarge` once the output passes `limit` bytes, so a
    /// small file that inflates to gigabytes costs at most `limit` (+1 MiB) of memory.
    static func decompress(path: String, sizeHint: Int = 0, limit: Int = Int.max) throws(DataError) -> [UInt8] {
        let zlib = try library.get()
        guard let file = zlib.open(path, "rb") else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        var output: [UInt8] = []
        output.reserveCapacity(max(sizeHint, 0))
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let got = zlib.read(file, buffer.baseAddress, UInt32(chunk))
            if got < 0 {
                let message = describe(zlib, file)
                _ = zlib.close(file)
                throw .corruptGzip(path: path, reason: message)
            }
            if got == 0 { break }
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<Int(got)]))
            if output.count > limit {
                _ = zlib.close(file)
                throw .decompressedTooLarge(path: path, limit: limit)
            }
        }
        // gzread reports a stream that ends early only as end of file; gzclose
        // then returns Z_BUF_ERROR (-5). Any non-zero result is a damaged file.
        let status = zlib.close(file)
        if status != 0 {
            let reason = status == -5 ? "unexpected end of compressed stream (truncated .gz)" : "zlib error \(status)"
            throw .corruptGzip(path: path, reason: reason)
        }
        return output
    }

    /// A gzip stream read a piece at a time (zlib reads data that is not gzip as is).
    final class Stream {
        private let zlib: Library
        private var file: OpaquePointer?
        let path: String

        /// Reads from a duplicate of `descriptor` (the caller keeps its own).
        init(descriptor: Int32, path: String) throws(DataError) {
            zlib = try library.get()
            self.path = path
            let copy = dup(descriptor)
            guard copy >= 0, let f = zlib.dopen(copy, "rb") else {
                let reason = String(cString: strerror(errno))
                if copy >= 0 { close(copy) }
                throw .unreadable(path: path, reason: reason)
            }
            file = f
        }

        deinit { if let file { _ = zlib.close(file) } }

        /// Up to `count` decompressed bytes (fewer only at the end of the stream).
        func read(upTo count: Int) throws(DataError) -> [UInt8] {
            guard let file else { return [] }
            var result: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: min(max(count, 0), 1 << 20))
            while result.count < count {
                let want = min(chunk.count, count - result.count)
                let got = chunk.withUnsafeMutableBytes { zlib.read(file, $0.baseAddress, UInt32(want)) }
                if got < 0 { throw .corruptGzip(path: path, reason: describe(zlib, file)) }
                if got == 0 { break }
                result.append(contentsOf: chunk[0..<Int(got)])
            }
            return result
        }

        /// Closes the stream; a stream that ended early (truncated .gz) is an error.
        func finish() throws(DataError) {
            guard let f = file else { return }
            file = nil
            let status = zlib.close(f)
            if status != 0 {
                let reason = status == -5 ? "unexpected end of compressed stream (truncated .gz)" : "zlib error \(status)"
                throw .corruptGzip(path: path, reason: reason)
            }
        }
    }

    /// Writes `bytes` to `path` as a gzip file (used to build test fixtures).
    static func write(_ bytes: [UInt8], to path: String) throws(DataError) {
        let zlib = try library.get()
        guard let file = zlib.open(path, "wb") else {
            throw .unreadable(path: path, reason: "cannot create: " + String(cString: strerror(errno)))
        }
        var offset = 0
        while offset < bytes.count {
            let length = min(bytes.count - offset, 1 << 20)
            let written = bytes.withUnsafeBytes { raw in
                zlib.write(file, raw.baseAddress.map { $0 + offset }, UInt32(length))
            }
            if written <= 0 {
                let message = describe(zlib, file)
                _ = zlib.close(file)
                throw .unreadable(path: path, reason: "gzwrite failed: \(message)")
            }
            offset += Int(written)
        }
        let status = zlib.close(file)
        if status != 0 {
            throw .unreadable(path: path, reason: "gzclose failed with zlib error \(status)")
        }
    }

    private static func describe(_ zlib: Library, _ file: OpaquePointer) -> String {
        var code: Int32 = 0
        let text = zlib.error(file, &code).map { String(cString: $0) } ?? ""
        return text.isEmpty ? "zlib error \(code)" : "\(text) (zlib error \(code))"
    }
}
