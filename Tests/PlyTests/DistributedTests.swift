import Foundation
import Testing
@testable import Ply

/// Issue #18: data-parallel training over Open MPI, as a user runs it (`mpirun -np N ply train
/// --distributed`), against one process with the same global batch.
///
/// Skipped (with the reason) when `mpirun` or the communicator `libplycomm_mpi.so` beside
/// `ply` is missing: scripts/install-deps installs Open MPI and scripts/test builds the
/// communicator (scripts/build-comm-mpi), so CI runs them.
@Suite(.serialized) struct DistributedTests {
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var communicator: String {
        ((CLITests.ply.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(Communicator.defaultLibraryName)
    }
    static var available: Bool { mpirun != nil && FileManager.default.fileExists(atPath: communicator) }
    static let skipReason: Comment = "needs mpirun (Debian's openmpi-bin) and libplycomm_mpi.so beside ply (scripts/build-comm-mpi)"

    /// 600 training images, batch 64: 10 steps an epoch, the last of 24 images (6 per rank at
    /// N = 4). PyTorch's initialisation and momentum, so that the weights move well away
    /// from their start and a wrong share or scale would show.
    static func trainArguments(_ output: String, epochs: Int) -> [String] {
        ["train", "--data", TrainerTests.dataDirectory, "--epochs", String(epochs), "--batch-size", "64", "--lr", "0.05",
         "--momentum", "0.9", "--initialization", "default", "--output", output, "--no-train-accuracy", "--threads", "1"]
    }

    /// `mpirun -np ranks ply ...` (as root too; more ranks than cores).
    static func mpi(_ ranks: Int, _ arguments: [String]) throws -> CCompiler.Output {
        try CCompiler.run("env", ["OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMPI_MCA_btl=self,vader",
                                  mpirun ?? "mpirun", "--oversubscribe", "-np", String(ranks), CLITests.ply.path]
                          + arguments + ["--distributed"])
    }

    static func weights(_ directory: String) throws -> [String: [Float]] {
        let file = try SafeTensors.read(path: TrainerTests.checkpoint(in: directory))
        var result: [String: [Float]] = [:]
        for (name, entry) in file.entries where entry.dtype == .F32 {
            result[name] = entry.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return result
    }

    /// The tolerance: sharing a batch's gradient out over N ranks and summing it back changes
    /// only the order of float32 additions, and the momentum steps carry those few-ulp
    /// differences forward. Measured (debug build, 2026-12-05), largest difference relative to
    /// the tensor's largest value: weights 4.6e-7 after one epoch (10 steps) at N = 1, 2, 4, and
    /// 8.8e-7 after two (N = 2, resumed at N = 4); momentum buffers, which are averaged
    /// gradients with cancellation, 2.2e-7 and 1.1e-5. Bounds: 1e-5 for weights, 1e-4 for
    /// optimizer state: 10x above the measured, and 1000x below what one image left out of
    /// the last batch does to the weights (1e-2 to 0.7 relative, measured the same way).
    static func expectSame(_ ours: [String: [Float]], _ reference: [String: [Float]], _ what: String) {
        #expect(Set(ours.keys) == Set(reference.keys), "\(what): tensors differ")
        for (name, ref) in reference {
            guard let mine = ours[name], mine.count == ref.count else { Issue.record("\(what): \(name) missing or resized"); continue }
            let scale = ref.map(abs).max() ?? 0
            let worst = zip(mine, ref).map { abs($0 - $1) }.max() ?? 0
            let bound: Float = name.hasPrefix("optimizer.") ? 1e-4 : 1e-5
            #expect(worst <= bound * max(scale, 1e-6), "\(what): \(name) differs by \(worst) (largest value \(scale))")
        }
    }

    @Test(.enabled(if: available, skipReason))
    func sameWeightsAsOneProcessForOneTwoAndFourRanks() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let single = try CLITests.run(Self.trainArguments("\(dir)/single", epochs: 1))
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try Self.weights("\(dir)/single")
        for ranks in [1, 2, 4] {
            let out = try Self.mpi(ranks, Self.trainArguments("\(dir)/n\(ranks)", epochs: 1))
            #expect(out.status == 0, "N = \(ranks): \(out.stderr)")
            #expect(out.stdout.contains("Distributed: \(ranks) ranks"), "\(out.stdout)")
            // rank 0 alone logs: one line per logging batch, not one per rank
            #expect(out.stdout.components(separatedBy: "Batch 000/010").count == 2, "\(out.stdout)")
            Self.expectSame(try Self.weights("\(dir)/n\(ranks)"), reference, "N = \(ranks)")
        }
    }

    @Test(.enabled(if: available, skipReason))
    func resumesWithAnotherNumberOfRanks() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let single = try CLITests.run(Self.trainArguments("\(dir)/single", epochs: 2))
        #expect(single.status == 0, "\(single.stderr)")
        let first = try Self.mpi(2, Self.trainArguments("\(dir)/run", epochs: 1))
        #expect(first.status == 0, "\(first.stderr)")
        let second = try Self.mpi(4, Self.trainArguments("\(dir)/run", epochs: 2) + ["--resume"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("Resuming from"), "\(second.stdout)")
        Self.expectSame(try Self.weights("\(dir)/run"), try Self.weights("\(dir)/single"), "2 epochs: N = 2, then 4 resumed")
    }

    /// Without the communicator, --distributed says what is missing and how to build it
    /// (runs everywhere: it fails before any MPI call).
    @Test func missingCommunicatorSaysHowToBuildIt() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let out = try CLITests.run(Self.trainArguments("\(dir)/x", epochs: 1) + ["--distributed"],
                                   environment: ["PLY_COMM_LIBRARY": "\(dir)/no-such-libplycomm_mpi.so"])
        #expect(out.status == 1, "\(out.stdout) \(out.stderr)")
        for word in ["no-such-libplycomm_mpi.so", "scripts/build-comm-mpi", "libopenmpi-dev"] {
            #expect(out.stderr.contains(word), "'\(word)' not in: \(out.stderr)")
        }
    }

    @Test func allreduceAfterBackwardNeedsDistributed() throws {
        let out = try CLITests.run(["train", "--allreduce-after-backward"])
        #expect(out.status == 64 && out.stderr.contains("--allreduce-after-backward needs --distributed"), "\(out.stderr)")
    }
}
