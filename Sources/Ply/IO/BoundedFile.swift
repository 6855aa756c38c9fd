#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file read a piece at a time, never more than asked for: the readers ask for what the
/// file's own header declares, then check that nothing follows, so that a file that does not
/// end where it says (a gzip bomb, `/dev/zero`, a log appended to a model) costs at most its
/// declared size in memory. Works on regular files, pipes and devices alike.
final class BoundedFile {
    /// Why a read failed: the system call and its errno.
    struct Failure: Error {
        let operation: String
        let code: Int32
        var reason: String { String(cString: strerror(code)) }
    }

    let path: String
    private let fd: Int32
    /// The size on disk when the file is a regular file (nil for pipes and devices).
    let regularSize: Int?

    init(path: String) throws(Failure) {
        self.path = path
        let opened = open(path, O_RDONLY | O_CLOEXEC)
        guard opened >= 0 else { throw Failure(operation: "open", code: errno) }
        var st = stat()
        guard fstat(opened, &st) == 0 else {
            let code = errno
            close(opened)
            throw Failure(operation: "stat", code: code)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(opened)
            throw Failure(operation: "read", code: EISDIR)
        }
        fd = opened
        regularSize = (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : nil
    }

    deinit { close(fd) }

    /// The descriptor, for handing on (e.g. to zlib through `dup`).
    var descriptor: Int32 { fd }

    /// Up to `count` bytes (fewer only at end of file). Memory grows with what arrives, in
    /// pieces of at most 1 MiB, so a header declaring a huge size reserves nothing up front.
    func read(upTo count: Int) throws(Failure) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(max(count, 0), 1 << 20))
        while result.count < count {
            let want = min(chunk.count, count - result.count)
            let got = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, want) }
            if got < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "read", code: errno)
            }
            if got == 0 { break }
            result.append(contentsOf: chunk[0..<got])
        }
        return result
    }

    /// Whether at least one more byte follows (it is consumed).
    func hasMore() throws(Failure) -> Bool {
        try !read(upTo: 1).isEmpty
    }
}

private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}
