import CPly
import Foundation
import Synchronization

/// A fixed set of worker threads for `parallel_for`: the caller runs chunk 0 and worker `i`
/// chunk `i`. Workers spin briefly between jobs (a training step calls parallel_for a dozen
/// times a few hundred microseconds apart, and waking a sleeping thread costs tens of
/// microseconds), for as long as `WorkerSpin` says, then sleep on a condition variable. One
/// job at a time: a second caller that finds the pool busy is told so and runs its chunks elsewhere.
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
    private let pending = Atomic<Int>(0)
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
    }

    /// Asks the workers to exit (they hold the pool until they do).
    func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    private func chunk(_ j: Job, _ c: Int) {
        let begin = j.n * c / j.chunks, end = j.n * (c + 1) / j.chunks
        guard begin < end else { return }
        if RegionTrace.isOn {
            RegionTrace.timed(stamps + RegionTrace.stampsPerChunk * c) { j.fn?(j.context, Int64(begin), Int64(end)) }
        } else {
            j.fn?(j.context, Int64(begin), Int64(end))
        }
    }

    /// Runs the job and returns true, or returns false at once when the pool is in use.
    func run(fn: ply_parallel_fn, context: UnsafeMutableRawPointer?, n: Int, chunks: Int) -> Bool {
        guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        job.pointee = Job(fn: fn, context: context, n: n, chunks: min(chunks, workers + 1))
        pending.store(workers, ordering: .relaxed)
        let posted = RegionTrace.isOn ? RegionTrace.now() : 0
        let postedCPU = RegionTrace.isOn ? RegionTrace.cpuNow() : 0
        if RegionTrace.isOn { stamps.update(repeating: 0, count: stampCount) }
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(cond)
            pthread_mutex_unlock(mutex)
        }
        chunk(job.pointee, 0)
        var spins = 0
        while pending.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        if RegionTrace.isOn {
            let c = job.pointee.chunks, doneCPU = RegionTrace.cpuNow()
            RegionTrace.record(.init(fn: UInt(bitPattern: unsafeBitCast(fn, to: Int.self)), n: n, chunks: c,
                                     posted: posted, done: RegionTrace.now(),
                                     stamps: Array(UnsafeBufferPointer(start: stamps, count: RegionTrace.stampsPerChunk * c))
                                         + [postedCPU, doneCPU]))
        }
        return true
    }

    private func workerLoop(index: Int) {
        // Generation 0 is the pool's state before its first job: a worker that starts after
        // that job was posted must still see it as new.
        var seen = 0
        var spin = WorkerSpin(switches: WorkerSpin.involuntarySwitches())
        while true {
            var g = generation.load(ordering: .acquiring)
            var spins = 0
            // poll until the deadline (WorkerSpin), then sleep
            let deadline = g == seen ? spin.deadline(now: RegionTrace.now(), switches: WorkerSpin.involuntarySwitches()) : 0
            while g == seen {
                spins += 1
                if spins % WorkerSpin.pollsPerClockRead == 0 && RegionTrace.now() >= deadline {
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
            let j = job.pointee
            if index < j.chunks { chunk(j, index) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}
