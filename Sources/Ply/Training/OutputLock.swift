import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory `flock` on `.ply-train.lock` in a training run's output directory, so two runs
/// cannot write the same checkpoint. The file holds the holder's pid (for the message the
/// second run gets); the lock itself dies with the process, so a stale file never blocks.
/// The holder removes the file when it finishes (while still holding the lock); a run that
/// locked a file removed meanwhile notices (the path no longer names its file) and retries.
struct OutputLock {
    static let fileName = ".ply-train.lock"
    private let fd: Int32
    private let path: String

    /// Creates `directory` if needed (checking that it is a writable directory) and locks it.
    static func acquire(directory: String) throws(TrainingError) -> OutputLock {
        var st = stat()
        if stat(directory, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .outputNotADirectory(path: directory) }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw .outputNotWritable(path: directory, reason: "cannot create it: " + describeFileError(error))
            }
        }
        let path = (directory as NSString).appendingPathComponent(fileName)
        while true {
            if let lock = try attempt(directory: directory, path: path) { return lock }
        }
    }

    /// One try: the lock, or nil when the file locked was removed by its previous holder.
    private static func attempt(directory: String, path: String) throws(TrainingError) -> OutputLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw .outputNotWritable(path: directory, reason: "cannot create \(fileName) in it: \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let got = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw .outputNotWritable(path: directory, reason: "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            let holder = got > 0 ? String(decoding: buffer[0..<got], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            throw .outputLocked(directory: directory, lockFile: path, holder: Int32(holder).map(String.init))
        }
        var mine = stat(), named = stat()
        guard fstat(fd, &mine) == 0, stat(path, &named) == 0, mine.st_ino == named.st_ino, mine.st_dev == named.st_dev else {
            close(fd)
            return nil
        }
        // Record the holder; a write that fails (full disk) is a directory training cannot use.
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, text, text.count, 0) == text.count else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .outputNotWritable(path: directory, reason: "cannot write \(path): \(reason)")
        }
        return OutputLock(fd: fd, path: path)
    }

    /// Removes the lock file and unlocks.
    func release() {
        unlink(path)
        close(fd)
    }
}

/// A Foundation or POSIX file error in words: the path and what is wrong, without the
/// `NSCocoaErrorDomain Code=…` dump.
public func describeFileError(_ error: Error) -> String {
    let ns = error as NSError
    let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    let what = describeFileProblem(error)
    return path.map { "\($0): \(what)" } ?? what
}

/// What `describeFileError` says is wrong, without the path.
public func describeFileProblem(_ error: Error) -> String {
    let ns = error as NSError
    var reason: String?
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { reason = String(cString: strerror(Int32(ns.code))) }
    if reason == nil, ns.domain == NSCocoaErrorDomain {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileWriteFileExists: reason = "a file with that name already exists"
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file or directory"
        case .fileWriteNoPermission, .fileReadNoPermission: reason = "permission denied"
        case .fileWriteOutOfSpace: reason = "no space left on the device"
        case .fileWriteVolumeReadOnly: reason = "read-only file system"
        case .fileReadCorruptFile: reason = "the file is damaged or not in the expected format"
        case .fileReadInapplicableStringEncoding: reason = "not valid text in the expected encoding"
        case .fileReadTooLarge: reason = "the file is too large to read"
        default: reason = nil
        }
    }
    return reason ?? (ns.domain == NSCocoaErrorDomain ? "file error \(ns.code)" : "\(error)")
}
