import Foundation
import Testing
@testable import Ply

/// Who runs a job's chunks (`WorkerPool`): every chunk exactly once, and a worker that is late
/// (asleep, switched out, not yet started) never holds the region up: the caller runs its chunk.
@Suite struct WorkerPoolTests {
    /// What a job's chunks saw: the items covered, the calls, and the calls made on a thread
    /// other than the caller's.
    final class Runs: @unchecked Sendable {
        let lock = NSLock()
        let caller = pthread_self()
        var items = 0
        var calls = 0
        var elsewhere = 0
        /// Chunk 0 waits (up to 20 s) for another thread to have run a chunk first.
        var waitForOthers = false

        func ran(_ begin: Int64, _ end: Int64) {
            let here = pthread_equal(pthread_self(), caller) != 0
            if here && waitForOthers && begin == 0 {
                var waited = 0
                while lock.withLock({ elsewhere }) == 0 && waited < 20_000 { usleep(1000); waited += 1 }
            }
            lock.withLock {
                items += Int(end - begin)
                calls += 1
                if !here { elsewhere += 1 }
            }
        }
    }

    static func run(_ pool: WorkerPool, _ runs: Runs, n: Int, chunks: Int) -> Bool {
        pool.run(fn: { context, begin, end in
            Unmanaged<Runs>.fromOpaque(context!).takeUnretainedValue().ran(begin, end)
        }, context: Unmanaged.passUnretained(runs).toOpaque(), n: n, chunks: chunks)
    }

    /// A worker held before its loop starts: the caller runs both chunks itself and returns
    /// (the pool used to wait for the worker: here, until the fallback released it 30 s later).
    /// Released, the worker claims nothing of the finished job and takes its chunk of the next.
    @Test func theCallerRunsTheChunkOfAWorkerThatIsLate() throws {
        let gate = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { gate.signal() }
        let pool = WorkerPool(workers: 1, spawn: { body in WorkerPool.spawnThread { gate.wait(); body() } })
        defer { pool.shutdown() }
        try #require(pool.workers == 1)
        let late = Runs()
        #expect(Self.run(pool, late, n: 100, chunks: 2))
        #expect(late.items == 100)
        #expect(late.calls == 2)
        #expect(late.elsewhere == 0)
        gate.signal()
        let next = Runs()
        next.waitForOthers = true
        #expect(Self.run(pool, next, n: 100, chunks: 2))
        #expect(next.items == 100)
        #expect(next.calls == 2)
        #expect(next.elsewhere >= 1)
    }

    /// Many small jobs on three workers, so that the threads race to claim each other's chunks:
    /// every chunk runs exactly once.
    @Test func everyChunkRunsOnceWhileThreadsClaimEachOthers() throws {
        let pool = WorkerPool(workers: 3)
        defer { pool.shutdown() }
        try #require(pool.workers == 3)
        let runs = Runs()
        for round in 0..<3000 { #expect(Self.run(pool, runs, n: 40 + round % 7, chunks: 1 + round % 4)) }
        let items = (0..<3000).reduce(0) { $0 + 40 + $1 % 7 }, calls = (0..<3000).reduce(0) { $0 + 1 + $1 % 4 }
        #expect(runs.items == items)
        #expect(runs.calls == calls)
    }
}
