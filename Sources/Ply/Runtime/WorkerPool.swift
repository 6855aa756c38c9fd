import CPly
import Foundation
import Synchronization

/// A fixed set of worker threads for `parallel_for`. Chunk `c` of a job belongs to worker `c`
/// (chunk 0 to the caller), so consecutive layers that split their work alike find their slice
/// of the data in that core's cache; but a chunk is run by whichever thread claims it first, and
/// a thread done with its own chunk claims the others' that have not started, so a worker that
/// is asleep or switched out never stalls the region: the caller runs its chunk instead of
/// waiting tens of microseconds for it to wake (or milliseconds on a loaded machine). Workers
/// spin briefly between jobs (a training step calls parallel_for a dozen times a few hundred
/// microseconds apart, and waking a sleeping thread costs tens of microseconds), for as long as
/// `WorkerSpin` says, then sleep on a condition variable. One job at a time: a second caller that
/// finds the pool busy is told so and runs its chunks elsewhere.
final class WorkerPool: @unchecked Sendable {
    /// One job, written by the caller before `generation` is bumped, read by the workers after.
    struct Job {
        var fn: ply_parallel_fn?
        var context: UnsafeMutableRawPointer?
        var n = 0
        var chunks = 0
    }

    /// Workers that started (fewer than asked for when the system refused threads).
    private(set) var workers = 0
    private let job = UnsafeMutablePointer<Job>.allocate(capacity: 1)
    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    /// Chunks of the current job not yet finished.
    private let pending = Atomic<Int>(0)
    /// Per chunk, the generation of the last job whose chunk it was that a thread claimed (a
    /// job's chunks past its count are claimed when it is posted): a chunk runs once, and a
    /// worker that comes late to a job finished without it claims nothing of it.
    private let claims: UnsafeMutablePointer<Atomic<Int>>
    private let claimCount: Int
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let exited = Atomic<Int>(0)
    /// Each chunk's stamps while `RegionTrace` is on (`RegionTrace.Record.stamps`).
    private let stamps: UnsafeMutablePointer<UInt64>
    private let stampCount: Int
    /// Workers asleep on the condition variable now (tests: idle workers do go to sleep).
    var sleepingWorkers: Int { sleepers.load(ordering: .sequentiallyConsistent) }

    /// Starts a detached thread running `body`; false when the system refuses (EAGAIN under
    /// `ulimit -u`, out of memory). Tests substitute one that fails on purpose.
    typealias Spawner = (@escaping @Sendable () -> Void) -> Bool

    /// `flushDenormals`: the workers compute with denormals flushed to zero for good (they
    /// are Ply's own threads). `workers` is how many were asked for; `self.workers` how many
    /// started: when the system refuses a thread the pool runs with those it has (the run
    /// only ever waits for started workers) and `log` says so.
    init(workers wanted: Int, flushDenormals: Bool = false, log: ((String) -> Void)? = nil,
         spawn: Spawner = WorkerPool.spawnThread) {
        job.initialize(to: Job())
        stampCount = RegionTrace.stampsPerChunk * (max(wanted, 1) + 1)
        stamps = .allocate(capacity: stampCount)
        stamps.initialize(repeating: 0, count: stampCount)
        claimCount = max(wanted, 1) + 1
        claims = .allocate(capacity: claimCount)
        for c in 0..<claimCount { (claims + c).initialize(to: Atomic(0)) }
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        var started = 0
        var failure: String?
        for index in 1...max(wanted, 1) where wanted > 0 {
            let ok = spawn { [self] in
                if flushDenormals { _ = cply_denormals_flush() }
                self.workerLoop(index: index)
            }
            if !ok { failure = String(cString: strerror(errno)); break }
            started += 1
        }
        self.workers = started
        if let failure {
            log?("could not start worker thread \(started + 1) of \(wanted) (\(failure)); "
                 + (started == 0 ? "parallel_for runs on the calling thread" : "running with \(started) worker\(started == 1 ? "" : "s")"))
        }
    }

    /// pthread_create, detached, named `ply-worker`; false (errno set) when it fails.
    static func spawnThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let status = pthread_create(&thread, &attr, { raw in
            #if canImport(Darwin)
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            #else
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            #endif
            box.body()
            return nil
        }, context)
        if status != 0 {
            Unmanaged<Box>.fromOpaque(context).release()
            errno = status
            return false
        }
        return true
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
        job.deallocate()
        stamps.deallocate()
        claims.deinitialize(count: claimCount)
        claims.deallocate()
    }

    /// Asks the workers to exit (they hold the pool until they do).
    func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Claims chunk `c` of job `g` for the calling thread; false when a thread claimed it first
    /// (or the job is over). Claiming succeeds only while job `g` is unfinished, so `job` holds
    /// job `g` until the claimer counts the chunk done.
    private func claim(_ c: Int, _ g: Int) -> Bool {
        let last = claims[c].load(ordering: .relaxed)
        return last < g && claims[c].compareExchange(expected: last, desired: g, ordering: .acquiringAndReleasing).exchanged
    }

    /// Runs chunk `c` of the job in `job` and counts it done.
    private func chunk(_ c: Int) {
        let j = job.pointee
        let begin = j.n * c / j.chunks, end = j.n * (c + 1) / j.chunks
        if begin < end {
            if RegionTrace.isOn {
                RegionTrace.timed(stamps + RegionTrace.stampsPerChunk * c) { j.fn?(j.context, Int64(begin), Int64(end)) }
            } else {
                j.fn?(j.context, Int64(begin), Int64(end))
            }
        }
        pending.subtract(1, ordering: .releasing)
    }

    /// Runs the chunks of job `g` that no thread has claimed yet, `first` first, then the
    /// others from `first` on (for a worker, from its own chunk: chunks are where layers expect them).
    private func runUnclaimed(_ g: Int, first: Int) {
        for k in 0...workers {
            let c = (first + k) % (workers + 1)
            if claim(c, g) { chunk(c) }
        }
    }

    /// Runs the job and returns true, or returns false at once when the pool is in use.
    func run(fn: ply_parallel_fn, context: UnsafeMutableRawPointer?, n: Int, chunks: Int) -> Bool {
        guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        let count = min(chunks, workers + 1), g = generation.load(ordering: .relaxed) + 1
        job.pointee = Job(fn: fn, context: context, n: n, chunks: count)
        pending.store(count, ordering: .relaxed)
        for c in count..<(workers + 1) { claims[c].store(g, ordering: .relaxed) }
        let posted = RegionTrace.isOn ? RegionTrace.now() : 0
        let postedCPU = RegionTrace.isOn ? RegionTrace.cpuNow() : 0
        if RegionTrace.isOn { stamps.update(repeating: 0, count: stampCount) }
        generation.store(g, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
        runUnclaimed(g, first: 0)
        var spins = 0
        while pending.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        if RegionTrace.isOn {
            let doneCPU = RegionTrace.cpuNow()
            RegionTrace.record(.init(fn: UInt(bitPattern: unsafeBitCast(fn, to: Int.self)), n: n, chunks: count,
                                     posted: posted, done: RegionTrace.now(),
                                     stamps: Array(UnsafeBufferPointer(start: stamps, count: RegionTrace.stampsPerChunk * count))
                                         + [postedCPU, doneCPU]))
        }
        return true
    }

    private func workerLoop(index: Int) {
        // Generation 0 is the pool's state before its first job: a worker that starts after
        // that job was posted must still see it as new.
        var seen = 0
        var spin = WorkerSpin()
        while true {
            var g = generation.load(ordering: .acquiring)
            var spins = 0
            // poll until the deadline (WorkerSpin), then sleep; a long gap between two clock
            // reads is a preemption while polling (WorkerSpin.polled)
            var last = g == seen ? RegionTrace.now() : 0
            let deadline = g == seen ? spin.deadline(now: last) : 0
            while g == seen {
                spins += 1
                if spins % WorkerSpin.pollsPerClockRead == 0 {
                    let now = RegionTrace.now()
                    spin.polled(last: last, now: now)
                    last = now
                }
                if spins % WorkerSpin.pollsPerClockRead == 0 && last >= deadline {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    g = generation.load(ordering: .sequentiallyConsistent)
                    while g == seen {
                        pthread_cond_wait(cond, mutex)
                        g = generation.load(ordering: .sequentiallyConsistent)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    break
                }
                g = generation.load(ordering: .acquiring)
            }
            seen = g
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            runUnclaimed(g, first: index)
        }
    }
}
