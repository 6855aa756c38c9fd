import Foundation
import Testing
@testable import Ply

/// The worker pool's polling before it sleeps (`WorkerSpin`): long on a core the worker has to
/// itself, short for a while after the worker was switched out involuntarily, and bounded, so
/// idle workers do go to sleep and a job posted then still runs.
@Suite struct WorkerSpinTests {
    @Test func pollsShortForAWhileAfterAnInvoluntarySwitch() {
        let t0: UInt64 = 5_000_000_000, hold = WorkerSpin.contendedHoldNanoseconds
        #expect(WorkerSpin.contendedNanoseconds < WorkerSpin.idleNanoseconds)
        var spin = WorkerSpin(switches: 3)
        // no switch since the worker started: the long poll
        #expect(spin.deadline(now: t0, switches: 3) == t0 + WorkerSpin.idleNanoseconds)
        // a switch seen at t0 + 10: the short poll until t0 + 10 + hold
        #expect(spin.deadline(now: t0 + 10, switches: 4) == t0 + 10 + WorkerSpin.contendedNanoseconds)
        #expect(spin.deadline(now: t0 + 10 + hold - 1, switches: 4) == t0 + 10 + hold - 1 + WorkerSpin.contendedNanoseconds)
        // the hold over with no new switch: the long poll again
        #expect(spin.deadline(now: t0 + 10 + hold, switches: 4) == t0 + 10 + hold + WorkerSpin.idleNanoseconds)
        // another switch restarts the hold from when it is seen
        let t1 = t0 + 3 * hold
        #expect(spin.deadline(now: t1, switches: 9) == t1 + WorkerSpin.contendedNanoseconds)
        #expect(spin.deadline(now: t1 + hold - 1, switches: 9) == t1 + hold - 1 + WorkerSpin.contendedNanoseconds)
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
