import CPly
import Dispatch
import Foundation

/// Severity of a message a plugin or the runtime logs.
public enum LogLevel: Int32, Sendable, Comparable {
    case debug = 0, info, warning, error
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// The last error a plugin reported on this thread (the ABI's errors are per thread).
final class ErrorSlot {
    var status: Int32 = 0
    var message: String?

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in if let raw { Unmanaged<ErrorSlot>.fromOpaque(raw).release() } }
        return key
    }()

    /// This thread's slot, created on first use.
    static var current: ErrorSlot {
        if let raw = pthread_getspecific(key) { return Unmanaged<ErrorSlot>.fromOpaque(raw).takeUnretainedValue() }
        let slot = ErrorSlot()
        pthread_setspecific(key, Unmanaged.passRetained(slot).toOpaque())
        return slot
    }

    /// Clears the slot and returns what it held.
    func take() -> String? {
        defer { message = nil; status = 0 }
        return message
    }
}

/// The mutable state behind one runtime's `ply_host` table.
final class HostState: @unchecked Sendable {
    private let lock = NSLock()
    private var rng: SplitMix64
    let threads: Int
    let logHandler: @Sendable (LogLevel, String) -> Void
    /// Looks a layer type up by name (set by the runtime that owns this state).
    var lookup: (@Sendable (String) -> LayerType?)?

    init(seed: UInt64, threads: Int, logHandler: @escaping @Sendable (LogLevel, String) -> Void) {
        self.rng = SplitMix64(seed: seed)
        self.threads = max(1, threads)
        self.logHandler = logHandler
    }

    var rngState: UInt64 {
        get { lock.withLock { rng.state } }
        set { lock.withLock { rng.state = newValue } }
    }

    func fillUniform(_ data: UnsafeMutablePointer<Float>, _ n: Int, _ low: Float, _ high: Float) {
        lock.withLock {
            for i in 0..<n { data[i] = low + (high - low) * rng.nextUnitFloat() }
        }
    }
}

/// Builds and owns the C services table lent to plugins.
final class HostTable: @unchecked Sendable {
    let state: HostState
    let pointer: UnsafeMutablePointer<ply_host>

    init(state: HostState) {
        self.state = state
        pointer = .allocate(capacity: 1)
        var h = ply_host()
        h.struct_size = UInt32(MemoryLayout<ply_host>.size)
        h.abi_version = cply_abi_version()
        h.host_data = Unmanaged.passUnretained(state).toOpaque()
        h.set_error = { _, status, message in
            let slot = ErrorSlot.current
            slot.status = Int32(bitPattern: status.rawValue)
            slot.message = message.map { String(cString: $0) } ?? "(no message)"
        }
        h.log = { host, level, message in
            guard let host, let message else { return }
            HostTable.state(host).logHandler(LogLevel(rawValue: Int32(bitPattern: level.rawValue)) ?? .info, String(cString: message))
        }
        h.alloc = { _, bytes in
            var p: UnsafeMutableRawPointer?
            return posix_memalign(&p, 64, max(bytes, 1)) == 0 ? p : nil
        }
        h.free = { _, p in Foundation.free(p) }
        h.parallel_for = { host, n, grain, fn, context in
            guard let host, let fn, n > 0 else { return }
            HostTable.parallelFor(threads: HostTable.state(host).threads, n: Int(n), grain: Int(grain)) { b, e in
                fn(context, Int64(b), Int64(e))
            }
        }
        h.thread_count = { host in host.map { Int32(HostTable.state($0).threads) } ?? 1 }
        h.create_layer = { host, name, attrs, typeOut, layerOut in
            guard let host, let name, let typeOut, let layerOut else { return PLY_ERR_INVALID_ARGUMENT }
            let typeName = String(cString: name)
            guard let type = HostTable.state(host).lookup?(typeName) else {
                return HostTable.fail(PLY_ERR_NOT_FOUND, "no loaded plugin provides layer type '\(typeName)'")
            }
            typeOut.pointee = type.pointer
            return type.vtable.create(host, attrs, layerOut)
        }
        h.attr_int = { _, attrs, name, out in
            HostTable.attr(attrs, name) { a, n in
                switch a.kind {
                case Int32(PLY_ATTR_INT.rawValue), Int32(PLY_ATTR_BOOL.rawValue): out?.pointee = a.v.i; return PLY_OK
                default: return HostTable.wrongKind(n, a, "an integer")
                }
            }
        }
        h.attr_float = { _, attrs, name, out in
            HostTable.attr(attrs, name) { a, n in
                switch a.kind {
                case Int32(PLY_ATTR_FLOAT.rawValue): out?.pointee = a.v.f; return PLY_OK
                case Int32(PLY_ATTR_INT.rawValue): out?.pointee = Double(a.v.i); return PLY_OK
                default: return HostTable.wrongKind(n, a, "a number")
                }
            }
        }
        h.attr_bool = { _, attrs, name, out in
            HostTable.attr(attrs, name) { a, n in
                switch a.kind {
                case Int32(PLY_ATTR_BOOL.rawValue): out?.pointee = a.v.i != 0 ? 1 : 0; return PLY_OK
                case Int32(PLY_ATTR_INT.rawValue) where a.v.i == 0 || a.v.i == 1: out?.pointee = Int32(a.v.i); return PLY_OK
                default: return HostTable.wrongKind(n, a, "a boolean")
                }
            }
        }
        h.attr_string = { _, attrs, name, out in
            HostTable.attr(attrs, name) { a, n in
                guard a.kind == Int32(PLY_ATTR_STRING.rawValue) else { return HostTable.wrongKind(n, a, "a string") }
                out?.pointee = a.v.s
                return PLY_OK
            }
        }
        h.attr_pair = { _, attrs, name, out in
            HostTable.attr(attrs, name) { a, n in
                switch a.kind {
                case Int32(PLY_ATTR_INT.rawValue):
                    out?[0] = a.v.i; out?[1] = a.v.i; return PLY_OK
                case Int32(PLY_ATTR_INTS.rawValue) where a.count == 2 && a.v.ints != nil:
                    out?[0] = a.v.ints[0]; out?[1] = a.v.ints[1]; return PLY_OK
                case Int32(PLY_ATTR_INTS.rawValue) where a.count == 1 && a.v.ints != nil:
                    out?[0] = a.v.ints[0]; out?[1] = a.v.ints[0]; return PLY_OK
                default: return HostTable.wrongKind(n, a, "an integer or a pair of integers")
                }
            }
        }
        h.fill_uniform = { host, data, n, low, high in
            guard let host, let data, n > 0 else { return }
            HostTable.state(host).fillUniform(data, Int(n), low, high)
        }
        pointer.initialize(to: h)
    }

    deinit { pointer.deallocate() }

    static func state(_ host: UnsafePointer<ply_host>) -> HostState {
        Unmanaged<HostState>.fromOpaque(host.pointee.host_data).takeUnretainedValue()
    }

    static func fail(_ status: ply_status, _ message: String) -> ply_status {
        let slot = ErrorSlot.current
        slot.status = Int32(bitPattern: status.rawValue)
        slot.message = message
        return status
    }

    static func attr(_ attrs: UnsafePointer<ply_attrs>?, _ name: UnsafePointer<CChar>?,
                     _ read: (ply_attr, String) -> ply_status) -> ply_status {
        guard let attrs, let name else { return fail(PLY_ERR_INVALID_ARGUMENT, "attribute lookup without a name") }
        let wanted = String(cString: name)
        for i in 0..<Int(max(attrs.pointee.count, 0)) {
            let a = attrs.pointee.items[i]
            if let n = a.name, strcmp(n, name) == 0 { return read(a, wanted) }
        }
        return PLY_ERR_NOT_FOUND
    }

    static func wrongKind(_ name: String, _ a: ply_attr, _ expected: String) -> ply_status {
        let kinds = [1: "an integer", 2: "a float", 3: "a boolean", 4: "a string", 5: "a list of integers", 6: "a list of floats"]
        var got = kinds[Int(a.kind)] ?? "kind \(a.kind)"
        if a.kind == Int32(PLY_ATTR_INTS.rawValue) { got += " of length \(a.count)" }
        return fail(PLY_ERR_INVALID_ARGUMENT, "attribute '\(name)' must be \(expected), got \(got)")
    }

    /// Splits [0, n) into chunks of at least `grain` and runs them on up to `threads` threads.
    static func parallelFor(threads: Int, n: Int, grain: Int, _ body: (Int, Int) -> Void) {
        let minChunk = max(grain, 1)
        let chunks = max(1, min(threads, (n + minChunk - 1) / minChunk))
        if chunks == 1 { body(0, n); return }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let begin = n * c / chunks, end = n * (c + 1) / chunks
                if begin < end { box.value(begin, end) }
            }
        }
    }
}

/// Carries a non-Sendable value into a concurrent region whose safety the ABI guarantees.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
