import Foundation
import Testing
@testable import Ply

/// The worker pool's polling before it sleeps (`WorkerSpin`): long on a core the worker has to
/// itself, short for a while after the worker lost the CPU while it polled, and bounded, so
/// idle workers do go to sleep and a job posted then still runs.
@Suite struct WorkerSpinTests {
    @Test func pollsShortForAWhileAfterAPreemptionWhilePolling() {
        let t0: UInt64 = 5_000_000_000, hold = WorkerSpin.contendedHoldNanoseconds, gap = WorkerSpin.preemptedGapNanoseconds
        #expect(WorkerSpin.contendedNanoseconds < WorkerSpin.idleNanoseconds)
        var spin = WorkerSpin()
        // nothing seen yet: the long poll
        #expect(spin.deadline(now: t0) == t0 + WorkerSpin.idleNanoseconds)
        // clock reads closer than the gap (a kernel thread's short preemption included): still long
        spin.polled(last: t0, now: t0 + 90)
        spin.polled(last: t0 + 90, now: t0 + gap - 1)
        #expect(spin.deadline(now: t0 + gap) == t0 + gap + WorkerSpin.idleNanoseconds)
        // a gap of `gap` ending at t1: the short poll until t1 + hold
        let t1 = t0 + 10 * gap
        spin.polled(last: t1 - gap, now: t1)
        #expect(spin.deadline(now: t1) == t1 + WorkerSpin.contendedNanoseconds)
        #expect(spin.deadline(now: t1 + hold - 1) == t1 + hold - 1 + WorkerSpin.contendedNanoseconds)
        // the hold over with no new gap: the long poll again
        #expect(spin.deadline(now: t1 + hold) == t1 + hold + WorkerSpin.idleNanoseconds)
        // another gap restarts the hold from its end
        let t2 = t1 + 3 * hold
        spin.polled(last: t2 - 5 * gap, now: t2)
        #expect(spin.deadline(now: t2) == t2 + WorkerSpin.contendedNanoseconds)
        #expect(spin.deadline(now: t2 + hold - 1) == t2 + hold - 1 + WorkerSpin.contendedNanoseconds)
    }

    /// Counts the items and calls of the jobs a pool ran.
    final class Coverage: @unchecked Sendable {
        let lock = NSLock()
        var items = 0
        var calls = 0
    }

    static func run(_ pool: WorkerPool, _ coverage: Coverage) -> Bool {
        pool.run(fn: { context, begin, end in
            let c = Unmanaged<Coverage>.fromOpaque(context!).takeUnretainedValue()
            c.lock.withLock { c.items += Int(end - begin); c.calls += 1 }
        }, context: Unmanaged.passUnretained(coverage).toOpaque(), n: 300, chunks: 3)
    }

    /// After a job, both workers stop polling and sleep (a poll that never ends would keep them
    /// awake: the wait below gives up after 20 s), and the next job wakes them and runs whole.
    @Test func idleWorkersSleepAndWakeForTheNextJob() throws {
        let pool = WorkerPool(workers: 2)
        defer { pool.shutdown() }
        try #require(pool.workers == 2)
        let coverage = Coverage()
        #expect(Self.run(pool, coverage))
        var waited = 0
        while pool.sleepingWorkers < 2 && waited < 20_000 {
            usleep(1000)
            waited += 1
        }
        #expect(pool.sleepingWorkers == 2)
        #expect(Self.run(pool, coverage))
        #expect(coverage.items == 600)
        #expect(coverage.calls == 6)
    }
}
