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
/// table in BENCHMARKS.md). A worker that lost the CPU for at least `preemptedGapNanoseconds`
/// while it polled (two of its clock reads, ~90 ns of polling apart, that far apart) polls
/// `contendedNanoseconds` only for the next `contendedHoldNanoseconds`.
/// Measured (`ply bench-model convnet --training --batch 128 --image-size 28 --channels 1
/// --classes 10 --threads 2 --runs 3 --iterations 20`, alternating with main's build, 6-8 rounds,
/// medians, images/s): under SCHED_FIFO (the cores to itself) main 48,613, 50 µs 62,212, the
/// rule then (an involuntary context switch anywhere, by getrusage) 60,949; at load 9-13 without
/// it main 11,756-13,721, a plain 50 µs 7,304-7,969 (0.6x), that rule 10,478-16,280.
/// Why a gap while polling, not any involuntary switch (the rule before): on a 2-vCPU VM at load
/// ~1.5 (AMD Zen 3, eighteenth session) kernel threads preempt the worker ~30 times a second
/// (`/usr/bin/time -v`: 74 involuntary switches in 2.5 s), so every switch's 100 ms hold kept the
/// worker on the short poll all the time. The ConvNet's 2-thread step above (`--runs 5`, its convs
/// direct at AVX2) slept 5,710-9,518 times a run (voluntary switches) with that rule and 464-625
/// with this one. Its speed did not resolve on that host (the second vCPU in a slow phase, 2
/// threads no faster than 1): 23.1k / 26.6k / 23.3k images/s against 24.1k / 26.8k / 21.7k,
/// alternating; with 6 busy loops on the 2 vCPUs (load ~8) 8.0k / 5.7k against 6.8k / 7.2k.
/// An oversubscribed core takes the CPU away for a scheduler slice or more (milliseconds), and a
/// worker that polls most of its idle time is soon caught at it.
struct WorkerSpin {
    /// Polling time on an uncontended core: covers 99% of the ConvNet step's idle gaps (the
    /// trace above; 100 µs measured no faster: 62,668 against 62,212 images/s).
    static let idleNanoseconds: UInt64 = 50_000
    /// Polling time while contended: the old 20,000 polls' 6.7 µs.
    static let contendedNanoseconds: UInt64 = 7_000
    /// How long one preemption while polling keeps the short polling (a second's hold measured the
    /// same under load: 14,411 against 16,280 images/s, within the spread).
    static let contendedHoldNanoseconds: UInt64 = 100_000_000
    /// A gap between two clock reads of the polling loop at least this long is a preemption: the
    /// core is shared with other runnable threads (a CFS slice is 0.75-3 ms; the kernel threads'
    /// preemptions above are shorter).
    static let preemptedGapNanoseconds: UInt64 = 2_000_000
    /// Polls between two reads of the clock (a read is ~22 ns, 256 polls ~90 ns).
    static let pollsPerClockRead = 256

    private var contendedUntil: UInt64 = 0

    init() {}

    /// The monotonic time (`RegionTrace.now()`, CLOCK_MONOTONIC through the vDSO) until which a
    /// worker going idle at `now` polls before it sleeps.
    func deadline(now: UInt64) -> UInt64 {
        now &+ (now < contendedUntil ? WorkerSpin.contendedNanoseconds : WorkerSpin.idleNanoseconds)
    }

    /// Two consecutive clock reads of the polling loop, at `last` and `now`: a gap of at least
    /// `preemptedGapNanoseconds` starts (or restarts) the short polling's hold at `now`.
    mutating func polled(last: UInt64, now: UInt64) {
        if now &- last >= WorkerSpin.preemptedGapNanoseconds {
            contendedUntil = now &+ WorkerSpin.contendedHoldNanoseconds
        }
    }
}
