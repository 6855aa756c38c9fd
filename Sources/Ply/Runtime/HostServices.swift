import CPly
import Dispatch
import Foundation
import Synchronization

/// Severity of a message a plugin or the runtime logs.
public enum LogLevel: Int32, Sendable, Comparable {
    /// Detail for whoever debugs a plugin.
    case debug = 0
    /// Notices, such as a library skipped for not being a plugin.
    case info
    /// Something is off but the run goes on (the default log handler prints these).
    case warning
    /// A failure (the default log handler prints these).
    case error
    /// Orders levels by severity: `debug < info < warning < error`.
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// The last error a plugin reported on this thread (the ABI's errors are per thread).
final class ErrorSlot {
    var status: Int32 = 0
    var message: String?
    /// The typed error behind `message`, when the host itself failed a plugin's request (an
    /// attribute schema error in `create_layer`): `Layer.check` throws it instead of a
    /// `PlyError.layer` when the message reached the caller unchanged.
    var typed: (any Error & CustomStringConvertible)?
    /// Layers being created on this thread (`Layer.init`), innermost last: the node name for
    /// error messages, and the children composites create meanwhile.
    var creating: [CreationFrame] = []
    /// A block the host's `alloc` refused for the memory limit during the current call.
    var refused: (requested: Int, held: Int, limit: Int)?

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
        defer { message = nil; status = 0; typed = nil; refused = nil }
        return message
    }
}

/// A `Layer.init` under way on this thread.
struct CreationFrame {
    /// The node name, when known.
    let node: String?
    /// The type being created.
    let type: String
    /// Instances made through `create_layer` meanwhile (forgotten when the layer goes).
    var children: [OpaquePointer] = []
}

/// A layer instance a composite made through `create_layer`: its type and attributes, so that
/// when the composite reports it through `add_child` it can be printed and described.
struct CreatedLayer {
    let type: UnsafePointer<ply_layer_type>
    let typeName: String
    let attributes: Attributes
}

/// The mutable state behind one runtime's `ply_host` table.
final class HostState: @unchecked Sendable {
    private let lock = NSLock()
    private var rng: SplitMix64
    let threads: Int
    /// Runtime.Options.flushDenormals.
    let flushDenormals: Bool
    let logHandler: @Sendable (LogLevel, String) -> Void
    /// Looks a layer type up by name (set by the runtime that owns this state).
    var lookup: (@Sendable (String) -> LayerType?)?
    /// Runtime.Options.strictAttributes: a type without a schema is refused attributes.
    var strictAttributes = false
    /// Runtime.Options.blockedLayouts: `infer` may keep values NCHW16c between layers.
    var blockedLayouts = true

    /// Instances made through `create_layer`, by address (see `CreatedLayer`).
    private var created: [OpaquePointer: CreatedLayer] = [:]

    /// Records an instance `create_layer` made.
    func record(_ instance: OpaquePointer, _ entry: CreatedLayer) { lock.withLock { created[instance] = entry } }
    /// What `create_layer` recorded for `instance` of `type`, if it made it.
    func createdLayer(_ instance: OpaquePointer, type: UnsafePointer<ply_layer_type>) -> CreatedLayer? {
        lock.withLock { created[instance].flatMap { $0.type == type ? $0 : nil } }
    }
    /// Forgets instances (their owner has been destroyed, and them with it).
    func forget(_ instances: [OpaquePointer]) {
        guard !instances.isEmpty else { return }
        lock.withLock { for i in instances { created[i] = nil } }
    }
    /// Named native functions for plugins (the `resolve_function` slot; FunctionRegistry.swift).
    let functions = FunctionRegistry()

    /// The `param_generation` slot (ABI 1.3): moves whenever the host may have written a layer's
    /// parameter or buffer values — every writable view handed out (`Parameter.floats`,
    /// `integers`, `write`), which is how loading, initialisation and the optimizers write.
    /// Layers that derive data from their values (batch norm folded into a conv) compare it.
    let paramGeneration = Atomic<UInt64>(1)

    /// Notes that parameter values may change (see `paramGeneration`).
    func parametersMayChange() { paramGeneration.add(1, ordering: .relaxed) }

    /// The communicator batch-norm layers synchronise their statistics through while training
    /// with `TrainingConfiguration.syncBatchNorm` (the `sync_ranks` / `sync_allreduce_sum`
    /// slots, ABI 1.4); nil otherwise. Set by the trainer around a run.
    var batchNormCommunicator: Communicator? {
        get { lock.withLock { syncCommunicator } }
        set { lock.withLock { syncCommunicator = newValue } }
    }
    private var syncCommunicator: Communicator?

    /// Blocks from the host's `alloc` not yet given back to its `free` (all plugins, all
    /// layers of this runtime): LeakTests checks it returns to where it was after every
    /// model is destroyed.
    let liveAllocations = Atomic<Int>(0)

    /// Bytes held through the host's `alloc` (headers and guard room included).
    let liveBytes = Atomic<Int>(0)
    /// Runtime.memoryLimit: `alloc` refuses a block that would take `liveBytes` past it.
    let memoryLimit = Atomic<Int>(Int(clamping: ProcessInfo.processInfo.physicalMemory))
    /// Runtime.checkPlugins (PLY_CHECK_PLUGINS): guard zones written and verified.
    let checkPlugins = Atomic<Bool>(GuardZone.requestedByEnvironment)
    private let guardLock = NSLock()
    /// Live `alloc` blocks whose guard zone was written (checked mode): start -> size.
    private var guarded: [UnsafeMutableRawPointer: Int] = [:]
    /// A block freed with its guard zone broken, not yet reported (its size).
    private var brokenOnFree: Int?

    /// Blocks of `alloc` from `LargeBlockCache.minimum` bytes on: mapped, and the last one freed kept
    /// mapped for the next.
    let largeBlocks = LargeBlockCache()

    /// Blocks of `alloc` from `LaneBlockCache.minimum` bytes up to `LargeBlockCache.minimum` asked for on a
    /// batch lane's thread: mapped, and a few per thread kept mapped once freed.
    let laneBlocks = LaneBlockCache()

    /// Bytes in front of every `alloc` block: its size, whether it is guarded and whether it is a
    /// mapping of its own (1: `alloc_zeroed`'s; 2: a large block of `largeBlocks`; 3: a lane's block of
    /// `laneBlocks`).
    static let blockHeader = 64

    /// Blocks of `alloc_zeroed` at least this large (header and guard room included) are their
    /// own anonymous mapping: zero pages the kernel backs only when first written, so a
    /// gradient a model never trains costs no memory (ResNet-50's are 100 MB). Smaller ones are
    /// `posix_memalign` + `memset`: a mapping per block would cost a system call and a page of
    /// rounding each (glibc's malloc maps blocks from 128 KiB by default; from 256 KiB the rounding
    /// to whole pages is under 2%).
    static let mappedZeroedMinimum = 256 << 10

    /// The host's `alloc` (`zeroed` false: contents unspecified, zeroing left to the plugin) and
    /// `alloc_zeroed` (ABI 1.5; `zeroed` true: all zeros, large blocks mapped lazily, see
    /// `mappedZeroedMinimum`): 64-byte aligned. Each block carries a header (its size, for
    /// `liveBytes`, whether it is guarded and whether it is a mapping of its own) and room for a
    /// guard zone after it; a block that would take what the layers hold past `memoryLimit` is
    /// refused (nil), and the refusal noted in the thread's error slot for `Layer` to report as
    /// `MemoryLimitError`.
    func allocate(_ requested: Int, zeroed: Bool = false) -> UnsafeMutableRawPointer? {
        let size = max(requested, 1)
        var (total, overflow) = size.addingReportingOverflow(HostState.blockHeader + GuardZone.bytes)
        let held = liveBytes.load(ordering: .relaxed)
        let limit = memoryLimit.load(ordering: .relaxed)
        if overflow || total > limit - min(held, limit) {
            ErrorSlot.current.refused = (size, held, limit)
            return nil
        }
        let mapped = zeroed && total >= HostState.mappedZeroedMinimum
        let large = !zeroed && total >= LargeBlockCache.minimum
        let lane = LaneBlockCache.serves(total, zeroed: zeroed)
        var raw: UnsafeMutableRawPointer?
        if mapped {
            // page-aligned, so 64-byte aligned; fresh anonymous pages read as zero
            let p = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let p, p != MAP_FAILED else { return nil }
            raw = p
        } else if large {
            // page-aligned; the mapping's whole length is what the block holds
            guard let (p, length) = largeBlocks.take(total) else { return nil }
            (raw, total) = (p, length)
        } else if lane {
            guard let (p, length) = laneBlocks.take(total) else { return nil }
            (raw, total) = (p, length)
        } else {
            guard posix_memalign(&raw, 64, total) == 0 else { return nil }
        }
        guard let raw else { return nil }
        let check = checkPlugins.load(ordering: .relaxed)
        raw.storeBytes(of: total, as: Int.self)
        raw.storeBytes(of: check ? 1 : 0, toByteOffset: 8, as: Int.self)
        raw.storeBytes(of: mapped ? 1 : large ? 2 : lane ? 3 : 0, toByteOffset: 16, as: Int.self)
        let block = raw + HostState.blockHeader
        if zeroed && !mapped { memset(block, 0, size) }
        liveBytes.add(total, ordering: .relaxed)
        liveAllocations.add(1, ordering: .relaxed)
        if check {
            GuardZone.stamp(block + size)
            guardLock.withLock { guarded[block] = size }
        }
        return block
    }

    /// The host's `free` for blocks from `allocate`; a guarded block's zone is checked first.
    func release(_ block: UnsafeMutableRawPointer) {
        let raw = block - HostState.blockHeader
        let total = raw.load(as: Int.self)
        if raw.load(fromByteOffset: 8, as: Int.self) != 0 {
            guardLock.withLock {
                if let size = guarded.removeValue(forKey: block), !GuardZone.intact(block + size), brokenOnFree == nil {
                    brokenOnFree = size
                }
            }
        }
        liveBytes.subtract(total, ordering: .relaxed)
        liveAllocations.subtract(1, ordering: .relaxed)
        switch raw.load(fromByteOffset: 16, as: Int.self) {
        case 1: munmap(raw, total)
        case 2: largeBlocks.give(raw, size: total)
        case 3: laneBlocks.give(raw, size: total)
        default: Foundation.free(raw)
        }
    }

    /// The first `alloc` block whose guard zone is broken (freed during the call, or live),
    /// described; nil when all are intact. Reported once.
    func brokenHostBlock() -> String? {
        guardLock.withLock {
            if let size = brokenOnFree {
                brokenOnFree = nil
                return "a \(size)-byte block from the host's alloc (freed during the call)"
            }
            for (block, size) in guarded where !GuardZone.intact(block + size) {
                GuardZone.stamp(block + size)  // reported once
                return "a \(size)-byte block from the host's alloc"
            }
            return nil
        }
    }

    /// The persistent workers behind `parallel_for` (created on first use).
    private var poolStorage: WorkerPool?
    private let poolLock = NSLock()

    init(seed: UInt64, threads: Int, flushDenormals: Bool = true,
         logHandler: @escaping @Sendable (LogLevel, String) -> Void) {
        self.rng = SplitMix64(seed: seed)
        self.threads = max(1, threads)
        self.flushDenormals = flushDenormals
        self.logHandler = logHandler
    }

    deinit { poolStorage?.shutdown() }

    /// Runs `fn` over [0, n) in chunks of at least `grain` on the worker pool. Chunk `c` runs on
    /// the same thread (chunk 0 on the caller) unless that thread comes late (`WorkerPool`), so
    /// consecutive layers that split the batch alike find their slice of the data in that core's
    /// cache. When the pool is busy (another thread's model is using it) the chunks run on
    /// Dispatch instead.
    func parallelFor(n: Int, grain: Int, fn: ply_parallel_fn, context: UnsafeMutableRawPointer?) {
        let minChunk = max(grain, 1)
        // on a lane's thread (BatchLanes) every range runs here: the other threads carry other lanes
        let chunks = cply_lane_active() != 0 ? 1 : max(1, min(threads, (n + minChunk - 1) / minChunk))
        if chunks == 1 {
            if RegionTrace.isOn { RegionTrace.serial(fn: fn, context: context, n: n); return }
            fn(context, 0, Int64(n)); return
        }
        let pool = poolLock.withLock { () -> WorkerPool in
            if let p = poolStorage { return p }
            let log = logHandler
            let p = WorkerPool(workers: threads - 1, flushDenormals: flushDenormals) { log(.warning, $0) }
            poolStorage = p
            return p
        }
        if pool.workers == 0 { fn(context, 0, Int64(n)); return } // no thread could be started
        if pool.run(fn: fn, context: context, n: n, chunks: chunks) { return }
        let flush = flushDenormals
        HostTable.parallelFor(threads: threads, n: n, grain: grain) { b, e in
            let saved = flush ? cply_denormals_flush() : 0
            fn(context, Int64(b), Int64(e))
            if flush { cply_denormals_restore(saved) }
        }
    }

    /// Runs `body` with denormals flushed on this thread when the runtime asks for it, and
    /// puts the thread's floating-point modes back afterwards.
    func computing<T>(_ body: () throws -> T) rethrows -> T {
        guard flushDenormals else { return try body() }
        let saved = cply_denormals_flush()
        defer { cply_denormals_restore(saved) }
        return try body()
    }

    /// `body(begin, end)` over [0, n), one range per thread (at least `minimum` items each), on
    /// the same worker pool as the plugins' parallel_for: for the host's own element-wise
    /// passes (optimizer steps, zeroing gradients), which would otherwise run on one core.
    func parallelRanges(_ n: Int, minimum: Int = 1 << 15, _ body: (Int, Int) -> Void) {
        let parts = min(threads, max(1, n / max(minimum, 1)))
        if parts <= 1 { body(0, n); return }
        withoutActuallyEscaping(body) { body in
            var f = body
            withUnsafeMutablePointer(to: &f) { context in
                parallelFor(n: n, grain: (n + parts - 1) / parts, fn: { context, begin, end in
                    guard let context else { return }
                    context.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(begin), Int(end))
                }, context: UnsafeMutableRawPointer(context))
            }
        }
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
            slot.typed = nil
            slot.status = Int32(bitPattern: status.rawValue)
            slot.message = message.map { String(cString: $0) } ?? "(no message)"
        }
        h.log = { host, level, message in
            guard let host, let message else { return }
            HostTable.state(host).logHandler(LogLevel(rawValue: Int32(bitPattern: level.rawValue)) ?? .info, String(cString: message))
        }
        h.alloc = { host, bytes in
            guard let host else { return nil }
            return HostTable.state(host).allocate(bytes)
        }
        h.alloc_zeroed = { host, bytes in
            guard let host else { return nil }
            return HostTable.state(host).allocate(bytes, zeroed: true)
        }
        h.free = { host, p in
            guard let host, let p else { return }
            HostTable.state(host).release(p)
        }
        h.parallel_for = { host, n, grain, fn, context in
            guard let host, let fn, n > 0 else { return }
            HostTable.state(host).parallelFor(n: Int(n), grain: Int(grain), fn: fn, context: context)
        }
        h.thread_count = { host in // a lane's layers run as on a one-thread runtime (BatchLanes)
            guard let host, cply_lane_active() == 0 else { return 1 }
            return Int32(HostTable.state(host).threads)
        }
        h.create_layer = { host, name, attrs, typeOut, layerOut in
            guard let host, let name, let typeOut, let layerOut else { return PLY_ERR_INVALID_ARGUMENT }
            let typeName = String(cString: name)
            guard let type = HostTable.state(host).lookup?(typeName) else {
                return HostTable.fail(PLY_ERR_NOT_FOUND, "no loaded plugin provides layer type '\(typeName)'")
            }
            typeOut.pointee = type.pointer
            let state = HostTable.state(host)
            let slot = ErrorSlot.current
            let frame = slot.creating.last
            let given: Attributes
            do {
                given = try attributes(from: attrs)
                try type.checkAttributes(given, node: nil, state: state,
                                         context: frame.map { (parent: $0.type, node: $0.node) })
            } catch let PlyError.attribute(problem) {
                // The schema check's typed error, kept for Layer.check to rethrow when the
                // plugin passes the message on unchanged.
                let status = HostTable.fail(PLY_ERR_INVALID_ARGUMENT, problem.description)
                slot.typed = PlyError.attribute(problem)
                return status
            } catch {
                return HostTable.fail(PLY_ERR_INVALID_ARGUMENT, "create_layer('\(typeName)'): \(error)")
            }
            let status = type.vtable.create(host, attrs, layerOut)
            // Recorded only while a layer is being created: its Layer forgets them when it goes. A
            // child made later (a fold made at the first evaluation forward) is the plugin's own
            // business, and describe does not report it.
            if status == PLY_OK, let made = layerOut.pointee, !slot.creating.isEmpty {
                state.record(made, CreatedLayer(type: type.pointer, typeName: typeName, attributes: given))
                slot.creating[slot.creating.count - 1].children.append(made)
            }
            return status
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
        h.resolve_function = HostTable.resolveFunction
        h.param_generation = { host in
            guard let host else { return 0 }
            return HostTable.state(host).paramGeneration.load(ordering: .relaxed)
        }
        h.sync_ranks = { host in
            guard let host, let comm = HostTable.state(host).batchNormCommunicator else { return 1 }
            return Int32(comm.size)
        }
        h.sync_allreduce_sum = { host, data, count in
            guard let host, let comm = HostTable.state(host).batchNormCommunicator else { return PLY_OK }
            guard count >= 0, count == 0 || data != nil else {
                return HostTable.fail(PLY_ERR_INVALID_ARGUMENT, "sync_allreduce_sum: \(count) values at \(String(describing: data))")
            }
            do throws(DistributedError) {
                try comm.allreduceSum(UnsafeMutableBufferPointer(start: data, count: Int(count)))
            } catch {
                let status = HostTable.fail(PLY_ERR_INTERNAL, error.description)
                ErrorSlot.current.typed = error
                return status
            }
            return PLY_OK
        }
        pointer.initialize(to: h)
    }

    deinit { pointer.deallocate() }

    static func state(_ host: UnsafePointer<ply_host>) -> HostState {
        Unmanaged<HostState>.fromOpaque(host.pointee.host_data).takeUnretainedValue()
    }

    static func fail(_ status: ply_status, _ message: String) -> ply_status {
        let slot = ErrorSlot.current
        slot.typed = nil
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
        // on a lane's thread (BatchLanes) every range runs here: the other threads carry other lanes
        let chunks = cply_lane_active() != 0 ? 1 : max(1, min(threads, (n + minChunk - 1) / minChunk))
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
