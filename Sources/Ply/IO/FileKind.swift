#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a path is when it is not a regular file ("a directory", "a character device", ...),
/// or nil for a regular file or a path `stat` cannot see (the open that follows reports that).
/// Readers refuse the rest up front: a directory has no bytes to parse, and a device or FIFO
/// (`/dev/zero`, a pipe) may never end or may block.
func nonRegularFileKind(_ path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    switch st.st_mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFDIR: return "a directory"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFIFO: return "a FIFO (named pipe)"
    case S_IFSOCK: return "a socket"
    default: return "not a regular file"
    }
}

/// `nonRegularFileKind` without FIFOs: what readers refuse by name before reading. A directory
/// has no bytes and a device (`/dev/zero`) never ends; a named pipe is read, but never past
/// what its header declares (BoundedFile), so `<(zcat data.gz)` works.
func refusedFileKind(_ path: String) -> String? {
    guard let kind = nonRegularFileKind(path) else { return nil }
    var st = stat()
    if stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFIFO { return nil }
    return kind
}
