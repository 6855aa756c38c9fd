import CPly
import Foundation
import Synchronization

/// The host's `alloc` blocks of `minimum` bytes up to `LargeBlockCache.minimum` requested while the calling
/// thread carries a batch lane (`cply_lane_active`, `BatchLanes`): each its own anonymous mapping, and up to
/// `perThread` of them kept mapped per thread once given back, for that thread's next requests.
///
/// A frozen layer gives its scratch back after every forward (conv.c's `release_scratch`), and each lane runs
/// its replica of the model on its own thread. glibc serves a thread other than the main one from an arena of
/// its own, made of 64 MB heaps that it unmaps whenever one falls empty, and maps larger blocks for every call
/// until its dynamic threshold has risen past them: ResNet-18 at batch 16 on 2 threads (lanes of 4 images)
/// made and unmapped a heap in nearly every forward, 13-25 thousand page faults a batch (none on 1 thread), and
/// ran at 150-166 images/s against 177-183 with `--lanes 1` (AMD EPYC Zen 5, 2 vCPUs). The same run with
/// every thread on glibc's main arena (`GLIBC_TUNABLES=glibc.malloc.arena_max=1`, process-wide) gave 189.
///
/// A request takes the smallest kept block of its thread that covers it; a thread keeps at most `perThread`
/// blocks, dropping the smallest, so what a lane holds beyond its layers' live blocks is at most `perThread`
/// blocks below `LargeBlockCache.minimum`. Blocks given back on another thread than the one that took them
/// join that thread's list.
final class LaneBlockCache: Sendable {
    /// Blocks from this size on (header and guard room included) are mapped here when a lane asks.
    static let minimum = 1 << 20
    /// Blocks kept per thread: a layer's scratch and its blocked-layout buffer, and the next layer's.
    static let perThread = 4

    private struct Kept {
        var blocks: [(address: UInt, size: Int)] = []
    }

    /// pthread_self() -> that thread's kept blocks.
    private let kept = Mutex<[UInt: Kept]>([:])

    private static var thread: UInt { UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// Whether a block of `total` bytes (header and guard room included), not zeroed, is this cache's.
    static func serves(_ total: Int, zeroed: Bool) -> Bool {
        !zeroed && total >= minimum && total < LargeBlockCache.minimum && cply_lane_active() != 0
    }

    /// A mapping of at least `size` bytes and its length: the calling thread's smallest kept block that covers
    /// it, else a new one; nil when none can be mapped.
    func take(_ size: Int) -> (block: UnsafeMutableRawPointer, size: Int)? {
        let thread = Self.thread
        let found: (address: UInt, size: Int)? = kept.withLock { all in
            guard var mine = all[thread] else { return nil }
            var best: Int?
            for (i, b) in mine.blocks.enumerated() where b.size >= size && (best == nil || b.size < mine.blocks[best!].size) {
                best = i
            }
            guard let best else { return nil }
            let b = mine.blocks.remove(at: best)
            all[thread] = mine
            return b
        }
        if let found, let p = UnsafeMutableRawPointer(bitPattern: found.address) { return (p, found.size) }
        return LargeBlockCache.map(size)
    }

    /// Takes back a mapping from `take` into the calling thread's list; past `perThread` the smallest is unmapped.
    func give(_ block: UnsafeMutableRawPointer, size: Int) {
        let thread = Self.thread
        let dropped: (address: UInt, size: Int)? = kept.withLock { all in
            var mine = all[thread] ?? Kept()
            mine.blocks.append((UInt(bitPattern: block), size))
            var drop: (address: UInt, size: Int)?
            if mine.blocks.count > Self.perThread, let i = mine.blocks.indices.min(by: { mine.blocks[$0].size < mine.blocks[$1].size }) {
                drop = mine.blocks.remove(at: i)
            }
            all[thread] = mine
            return drop
        }
        if let dropped, let p = UnsafeMutableRawPointer(bitPattern: dropped.address) { munmap(p, dropped.size) }
    }

    /// Blocks kept, over all threads (for tests).
    var keptCount: Int { kept.withLock { $0.values.reduce(0) { $0 + $1.blocks.count } } }

    deinit {
        for (_, mine) in kept.withLock({ $0 }) {
            for b in mine.blocks { if let p = UnsafeMutableRawPointer(bitPattern: b.address) { munmap(p, b.size) } }
        }
    }
}
