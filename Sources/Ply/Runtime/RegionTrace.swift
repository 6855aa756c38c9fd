import CPly
import Foundation
import Synchronization

/// Opt-in timing of every parallel region, for finding where a multi-threaded forward loses
/// time (imbalance inside a region, per-region cost, layers that run on one thread).
///
/// Off unless the environment variable `PLY_REGION_TRACE` names a file when the process starts;
/// off, it costs one load of a flag per `parallel_for`. On, every `parallel_for` (the pool's
/// and the one-chunk path) records the body's address, `n`, the chunk count, when it was posted,
/// each chunk's start and end on its thread and when the caller saw all done; `Model.infer`
/// records each node's start and end. At exit the records go to the file as tab-separated
/// lines (format in `write`); `Benchmarks/region_trace.py` turns them into a per-layer table.
/// Recording takes a lock and allocates: the numbers are for comparing layers and threads with
/// one another, not for absolute speed.
enum RegionTrace {
    /// The trace file, or nil when tracing is off (read once).
    static let path: String? = {
        guard let raw = getenv("PLY_REGION_TRACE") else { return nil }
        let p = String(cString: raw)
        return p.isEmpty ? nil : p
    }()

    /// Whether tracing is on.
    static let isOn: Bool = path != nil

    /// One parallel region, or a node's start / end mark (`label` set; `posted` the time,
    /// `done` the thread's CPU time).
    struct Record: Sendable {
        var fn: UInt = 0
        var n = 0
        var chunks = 0
        var posted: UInt64 = 0
        var done: UInt64 = 0
        /// Chunk c's start and end (monotonic) and its thread's CPU time at both, at [4c] ...
        /// [4c + 3] (0 when the chunk was empty); then the caller's CPU time when it posted the
        /// region and when it saw it done.
        var stamps: [UInt64] = []
        var label: String?
    }

    private static let records = Mutex<[Record]>([])
    private static let registered = Mutex<Bool>(false)

    /// Stamps per chunk in `Record.stamps`.
    static let stampsPerChunk = 4

    /// Runs `body` and writes its start, end and the thread CPU time at both to `to[0..<4]`.
    @inline(__always) static func timed(_ to: UnsafeMutablePointer<UInt64>, _ body: () -> Void) {
        to[2] = cpuNow()
        to[0] = now()
        body()
        to[1] = now()
        to[3] = cpuNow()
    }

    /// This thread's CPU nanoseconds.
    @inline(__always) static func cpuNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Monotonic nanoseconds.
    @inline(__always) static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    static func record(_ r: Record) {
        records.withLock { $0.append(r) }
        if r.label == nil { name(r.fn) }
        registered.withLock { done in
            if done { return }
            done = true
            atexit { RegionTrace.write() }
        }
    }

    /// A one-chunk `parallel_for`: runs it on the calling thread and records it.
    static func serial(fn: ply_parallel_fn, context: UnsafeMutableRawPointer?, n: Int) {
        var stamps = [UInt64](repeating: 0, count: stampsPerChunk)
        stamps.withUnsafeMutableBufferPointer { p in timed(p.baseAddress!) { fn(context, 0, Int64(n)) } }
        record(Record(fn: UInt(bitPattern: unsafeBitCast(fn, to: Int.self)), n: n, chunks: 1,
                      posted: stamps[0], done: stamps[1], stamps: stamps + [stamps[2], stamps[3]]))
    }

    /// A node's forward starts (`begin`) or ends.
    static func mark(_ name: String, begin: Bool) {
        record(Record(posted: now(), done: cpuNow(), label: (begin ? "begin " : "end ") + name))
    }

    /// Writes the records: `region <symbol> <n> <chunks> <posted> <done> <start0> <end0> ...`
    /// (symbol: `file+0xoffset` of the body, for `nm`) and
    /// `mark <begin|end> <node> <time>`, times in nanoseconds.
    /// Body address -> `file+0xoffset`, found when the body is first seen (a plugin may be
    /// unloaded before exit).
    private static let names = Mutex<[UInt: String]>([:])

    private static func name(_ fn: UInt) {
        if names.withLock({ $0[fn] != nil }) { return }
        var found = "0x" + String(fn, radix: 16)
        if let maps = fopen("/proc/self/maps", "r") {
            defer { fclose(maps) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            defer { free(line) }
            while getline(&line, &capacity, maps) > 0, let line {
                let f = String(cString: line).split(separator: " ", omittingEmptySubsequences: true)
                guard f.count >= 6, f[1].contains("x") else { continue }
                let range = f[0].split(separator: "-")
                guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                      let offset = UInt(f[2], radix: 16), fn >= start, fn < end else { continue }
                found = f[5].trimmingCharacters(in: .whitespacesAndNewlines) + "+0x" + String(fn - start + offset, radix: 16)
                break
            }
        }
        names.withLock { $0[fn] = found }
    }

    /// Writes the records: `region <body> <n> <chunks> <posted> <done>` then per chunk
    /// `<start> <end> <cpu start> <cpu end>`, then the caller's CPU time at posting and at done
    /// (body: `file+0xoffset`, for `nm`), and
    /// `mark <begin|end> <node> <time> <the thread's CPU time>`; nanoseconds.
    static func write() {
        guard let path, let file = fopen(path, "w") else { return }
        defer { fclose(file) }
        let names = names.withLock { $0 }
        for r in records.withLock({ $0 }) {
            if let label = r.label {
                fputs("mark\t\(label.replacingOccurrences(of: " ", with: "\t"))\t\(r.posted)\t\(r.done)\n", file)
                continue
            }
            let stamps = r.stamps.map(String.init).joined(separator: "\t")
            fputs("region\t\(names[r.fn] ?? "?")\t\(r.n)\t\(r.chunks)\t\(r.posted)\t\(r.done)\t\(stamps)\n", file)
        }
    }
}
