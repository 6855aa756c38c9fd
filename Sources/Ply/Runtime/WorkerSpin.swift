import Foundation

/// How long an idle `WorkerPool` worker polls for its next job before it sleeps on the pool's
/// condition variable: a time, not a count of polls, and shorter on a contended core.
///
/// Why a time: the pool used to poll 20,000 times, meant as "roughly 50-100 µs", which on this
/// machine's Xeon is 6.7 µs (a C replica of the loop, SCHED_FIFO, 5 runs: 6.7-7.6 µs). The
/// tutorial ConvNet's 2-thread training step leaves the worker idle for 2-40 µs between most of
/// its parallel regions (the relus, pools, loss and the Swift between layers run on the caller),
/// so about half of its regions found the worker asleep and waited ~23 µs for its wake-up
/// (PLY_REGION_TRACE, SCHED_FIFO on the loaded machine; a quiet VM's wake-up is 29-60 µs,
/// `Benchmarks/pool_roundtrip.c`). The conv forwards' idle gaps (median 5-8 µs) sat on that
/// 6.7 µs edge, so which side of it they fell on, and the step's speed, moved with any few
/// hundred nanoseconds of host code. With `idleNanoseconds` 0.5% of the regions find it asleep.
///
/// Why shorter when contended: on an oversubscribed machine a spinning worker uses up its share
/// of the scheduler and is then descheduled rather than woken when the job comes (branch thr2b's
/// table in BENCHMARKS.md). A worker switched out involuntarily within the last
/// `contendedHoldNanoseconds` polls `contendedNanoseconds` only, the old 20,000 polls' time.
/// Measured (`ply bench-model convnet --training --batch 128 --image-size 28 --channels 1
/// --classes 10 --threads 2 --runs 3 --iterations 20`, alternating with main's build, 6-8 rounds,
/// medians, images/s): under SCHED_FIFO (the cores to itself) main 48,613, 50 µs 62,212, this
/// rule 60,949; at load 9-13 without it main 11,756-13,721, a plain 50 µs 7,304-7,969 (0.6x),
/// this rule 10,478-16,280 (within the rounds' spread).
struct WorkerSpin {
    /// Polling time on an uncontended core: covers 99% of the ConvNet step's idle gaps (the
    /// trace above; 100 µs measured no faster: 62,668 against 62,212 images/s).
    static let idleNanoseconds: UInt64 = 50_000
    /// Polling time after an involuntary context switch: the old 20,000 polls' 6.7 µs.
    static let contendedNanoseconds: UInt64 = 7_000
    /// How long one involuntary switch keeps the short polling (a second's hold measured the
    /// same under load: 14,411 against 16,280 images/s, within the spread).
    static let contendedHoldNanoseconds: UInt64 = 100_000_000
    /// Polls between two reads of the clock (a read is ~22 ns, 256 polls ~90 ns).
    static let pollsPerClockRead = 256

    private var switches: Int
    private var contendedUntil: UInt64 = 0

    /// `switches`: the worker thread's involuntary context switches so far.
    init(switches: Int) { self.switches = switches }

    /// The monotonic time (`RegionTrace.now()`, CLOCK_MONOTONIC through the vDSO) until which a
    /// worker going idle at `now`, switched out involuntarily `switches` times so far, polls
    /// before it sleeps.
    mutating func deadline(now: UInt64, switches: Int) -> UInt64 {
        if switches != self.switches {
            self.switches = switches
            contendedUntil = now &+ WorkerSpin.contendedHoldNanoseconds
        }
        return now &+ (now < contendedUntil ? WorkerSpin.contendedNanoseconds : WorkerSpin.idleNanoseconds)
    }

    /// The calling thread's involuntary context switches so far (getrusage, ~180 ns; Linux only:
    /// elsewhere 0, so a worker always polls `idleNanoseconds`).
    static func involuntarySwitches() -> Int {
        #if os(Linux)
        var usage = rusage()
        // RUSAGE_THREAD (1): glibc declares it only under _GNU_SOURCE, which Swift's Glibc lacks
        guard getrusage(__rusage_who_t(1), &usage) == 0 else { return 0 }
        return usage.ru_nivcsw
        #else
        return 0
        #endif
    }
}
