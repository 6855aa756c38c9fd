import CPly
import Foundation

/// Why distributed training could not start or stopped.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    /// No communicator library was found (`searched`: the paths tried).
    case communicatorMissing(searched: [String])
    /// The library is not a usable communicator (`reason`: dlopen's or the entry's words).
    case communicatorRefused(path: String, reason: String)
    /// A collective failed (`call`: which; `reason`: the engine's words). The job is broken.
    case collectiveFailed(call: String, reason: String)
    /// The ranks disagree about something they must share (`what`), e.g. a checkpoint only
    /// some of them can read.
    case ranksDisagree(what: String)
    /// The communicator was used after `finalize()`.
    case finalized

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .communicatorMissing(searched):
            return "distributed training needs the MPI communicator \(Communicator.defaultLibraryName), not found in "
                + searched.joined(separator: ", ")
                + "; build it with scripts/build-comm-mpi (needs Debian's libopenmpi-dev and openmpi-bin) "
                + "or name it with PLY_COMM_LIBRARY"
        case let .communicatorRefused(path, reason):
            return "communicator \(path) cannot be used: \(reason)"
        case let .collectiveFailed(call, reason):
            return "distributed training: \(call) failed (\(reason)); another rank has probably died. "
                + "The last checkpoint is intact: rerun with --resume"
        case let .ranksDisagree(what):
            return "distributed training: the ranks disagree: \(what)"
        case .finalized:
            return "the communicator was used after finalize()"
        }
    }
}

/// One process's place in a data-parallel job: a communication engine (Open MPI) loaded
/// from its own shared library (`Include/ply/comm.h`), so that Ply links no engine.
///
/// Start the job with the engine's launcher (`mpirun -np 4 ...`), then in every rank:
///
/// ```swift
/// let comm = try Communicator.load()      // MPI_Init; finds libplycomm_mpi.so
/// defer { comm.finalize() }
/// let trainer = try Trainer(model: model, configuration: config, communicator: comm)
/// ```
///
/// Calls are serialized: use a communicator from one thread at a time (the trainer does).
/// Every collective must be called by every rank in the same order.
public final class Communicator {
    /// The library's file name: not `libply_*`, which the runtime loads as layer plugins.
    public static let defaultLibraryName = "libplycomm_mpi" + Runtime.sharedLibrarySuffix

    /// This process's rank, 0..<`size`.
    public let rank: Int
    /// The number of ranks in the job.
    public let size: Int
    /// This process's rank among those on the same host.
    public let localRank: Int
    /// How many ranks share this host (the trainer divides the cores between them).
    public let localSize: Int
    /// The engine in words ("Open MPI v4.1.4").
    public let engine: String
    /// The library it came from.
    public let path: String

    private let comm: ply_comm
    /// The implementation's state (`ply_comm.self`).
    private let ctx: UnsafeMutableRawPointer
    private var open = true
    /// Seconds spent blocked in collectives since the last `takeBlockedSeconds()`.
    var blockedSeconds = 0.0

    private init(comm: ply_comm, context: UnsafeMutableRawPointer, path: String) {
        self.comm = comm
        self.ctx = context
        self.path = path
        rank = Int(comm.rank)
        size = Int(comm.world_size)
        localRank = Int(comm.local_rank)
        localSize = Int(max(comm.local_size, 1))
        engine = comm.engine.map { String(cString: $0) } ?? "unknown engine"
    }

    deinit { finalize() }

    /// Where `load()` looks: `PLY_COMM_LIBRARY` if set, else `libplycomm_mpi.so` beside the
    /// executable and the built-in plugins (the directories `Runtime` loads layer plugins from).
    public static func searchPaths() -> [String] {
        if let explicit = ProcessInfo.processInfo.environment["PLY_COMM_LIBRARY"], !explicit.isEmpty { return [explicit] }
        return Runtime.builtinDirectories().map { ($0 as NSString).appendingPathComponent(defaultLibraryName) }
    }

    /// Loads the communicator library and joins the job the launcher started (MPI_Init).
    /// `path`: the library, or nil for the first of `searchPaths()` that exists. Once per process.
    public static func load(path: String? = nil) throws(DistributedError) -> Communicator {
        let candidates = path.map { [$0] } ?? searchPaths()
        guard let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw .communicatorMissing(searched: candidates)
        }
        // RTLD_GLOBAL: Open MPI dlopen()s its own components, which resolve libmpi's symbols globally.
        guard let handle = dlopen(file, RTLD_NOW | RTLD_GLOBAL) else {
            throw .communicatorRefused(path: file, reason: dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        guard let symbol = dlsym(handle, PLY_COMM_ENTRY_SYMBOL) else {
            throw .communicatorRefused(path: file, reason: "no \(PLY_COMM_ENTRY_SYMBOL) symbol: not a Ply communicator")
        }
        let entry = unsafeBitCast(symbol, to: ply_comm_entry_fn.self)
        var message = [CChar](repeating: 0, count: 512)
        guard let result = entry(UInt16(PLY_COMM_ABI_MAJOR), UInt16(PLY_COMM_ABI_MINOR), &message, message.count) else {
            throw .communicatorRefused(path: file, reason: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        // Read within the size the library declared; every field up to `abort` is required in 1.0.
        let declared = Int(result.pointee.struct_size)
        guard result.pointee.abi_major == PLY_COMM_ABI_MAJOR else {
            throw .communicatorRefused(path: file, reason: "communicator ABI \(result.pointee.abi_major).\(result.pointee.abi_minor); "
                                           + "this host speaks \(PLY_COMM_ABI_MAJOR).x")
        }
        guard declared >= MemoryLayout<ply_comm>.size else {
            throw .communicatorRefused(path: file, reason: "its ply_comm is \(declared) bytes; 1.0 needs \(MemoryLayout<ply_comm>.size)")
        }
        let c = result.pointee
        guard let context = c.`self`, c.allreduce_sum_f32 != nil, c.iallreduce_sum_f32 != nil, c.test != nil, c.wait != nil,
              c.broadcast != nil, c.barrier != nil, c.last_error != nil, c.finalize != nil, c.abort != nil else {
            throw .communicatorRefused(path: file, reason: "a required callback is NULL")
        }
        guard c.world_size >= 1, (0..<c.world_size).contains(c.rank) else {
            throw .communicatorRefused(path: file, reason: "rank \(c.rank) of \(c.world_size) is not a valid place in a job")
        }
        return Communicator(comm: c, context: context, path: file)
    }

    private func check(_ status: Int32, _ call: @autoclosure () -> String) throws(DistributedError) {
        guard status == 0 else {
            throw .collectiveFailed(call: call(), reason: comm.last_error!(ctx).map { String(cString: $0) } ?? "unknown")
        }
    }

    private func timed<T>(_ body: () throws(DistributedError) -> T) throws(DistributedError) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { blockedSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }

    /// In place: every element becomes the sum over ranks (every rank gets the same bits).
    public func allreduceSum(_ data: UnsafeMutableBufferPointer<Float>) throws(DistributedError) {
        guard open else { throw .finalized }
        try timed { () throws(DistributedError) in
            try check(comm.allreduce_sum_f32!(ctx, data.baseAddress, Int64(data.count)), "allreduce of \(data.count) floats")
        }
    }

    /// `allreduceSum` of an array.
    public func allreduceSum(_ values: inout [Float]) throws(DistributedError) {
        var failure: DistributedError?
        values.withUnsafeMutableBufferPointer { b in
            do throws(DistributedError) { try allreduceSum(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Copies rank `root`'s `data` into every other rank's.
    public func broadcast(_ data: UnsafeMutableRawBufferPointer, root: Int = 0) throws(DistributedError) {
        guard open else { throw .finalized }
        try timed { () throws(DistributedError) in
            try check(comm.broadcast!(ctx, data.baseAddress, Int64(data.count), Int32(root)),
                      "broadcast of \(data.count) bytes from rank \(root)")
        }
    }

    /// Returns once every rank has called it.
    public func barrier() throws(DistributedError) {
        guard open else { throw .finalized }
        try timed { () throws(DistributedError) in try check(comm.barrier!(ctx), "barrier") }
    }

    /// A started non-blocking allreduce (see `startAllreduceSum`).
    struct Request {
        fileprivate let handle: UnsafeMutableRawPointer
    }

    /// Starts summing `data` over ranks; the buffer must stay untouched until `wait` (or a
    /// `test` that returns true) completes the request.
    func startAllreduceSum(_ data: UnsafeMutableBufferPointer<Float>) throws(DistributedError) -> Request {
        guard open else { throw .finalized }
        var handle: UnsafeMutableRawPointer?
        try timed { () throws(DistributedError) in
            try check(comm.iallreduce_sum_f32!(ctx, data.baseAddress, Int64(data.count), &handle),
                      "start of an allreduce of \(data.count) floats")
        }
        guard let handle else { throw .collectiveFailed(call: "iallreduce", reason: "the communicator returned no request") }
        return Request(handle: handle)
    }

    /// Drives progress; true (and the request is freed) when it completed.
    func test(_ request: Request) throws(DistributedError) -> Bool {
        var done: Int32 = 0
        try timed { () throws(DistributedError) in try check(comm.test!(ctx, request.handle, &done), "test of an allreduce") }
        return done != 0
    }

    /// Blocks until `request` completes (and frees it).
    func wait(_ request: Request) throws(DistributedError) {
        try timed { () throws(DistributedError) in try check(comm.wait!(ctx, request.handle), "wait for an allreduce") }
    }

    /// Leaves the job (MPI_Finalize). Every rank calls it once; later calls do nothing.
    public func finalize() {
        guard open else { return }
        open = false
        _ = comm.finalize!(ctx)
    }

    /// Ends every rank of the job with exit status `code` (MPI_Abort): for an error only this
    /// rank met, which would otherwise leave the others waiting in a collective.
    public func abort(code: Int32) -> Never {
        comm.abort!(ctx, code)
        exit(code)
    }
}
