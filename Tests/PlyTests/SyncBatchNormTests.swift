import Foundation
import Testing
@testable import Ply

/// Issue #18's `--sync-batchnorm`: batch-norm statistics summed over the ranks (PyTorch's
/// SyncBatchNorm), so that a model with batch norm — a residual one, whose batch-norms are
/// children the block makes through `create_layer` — trains one process's weights on 2 ranks.
/// As the user runs it (`mpirun -np 2 ply train --distributed --sync-batchnorm`); skipped, as
/// DistributedTests, without mpirun or the communicator.
@Suite(.serialized) struct SyncBatchNormTests {
    /// A residual network small enough for a debug build: a batch-normed stem and one
    /// `residual_basic` block with a downsample branch (three batch-norms inside the block).
    static let model = """
        model: tiny_resnet
        params:
          num_classes: 10
          in_channels: 1
        layers:
          - {name: conv1, type: conv2d, in_channels: $in_channels, out_channels: 8, kernel_size: 3, stride: 2, padding: 1, bias: false}
          - {name: bn1, type: batchnorm2d, num_features: 8}
          - {name: relu, type: relu}
          - group: layer1
            layers:
              - {type: residual_basic, inplanes: 8, planes: 16, stride: 2, downsample: true}
          - {name: avgpool, type: adaptive_avgpool2d, output_size: 1}
          - {name: flatten, type: flatten}
          - {name: fc, type: linear, in_features: 16, out_features: $num_classes}

        """

    /// 600 images, batch 64: 10 steps, the last of 24 images (12 per rank).
    static func arguments(_ dir: String, _ output: String) -> [String] {
        DistributedTests.trainArguments("\(dir)/\(output)", epochs: 1) + ["--model", "\(dir)/tiny_resnet.yaml"]
    }

    /// The bound is DistributedTests' (1e-5 of each tensor's largest value for weights and
    /// batch-norm running statistics, 1e-4 for momentum buffers): synchronised statistics
    /// change only the order of float additions (and send the per-rank sums as float32).
    /// Measured (debug build, 2026-12-05, 2 ranks, 10 steps): weights and running statistics
    /// at most 2.9e-7 of their tensor's largest value, momentum buffers 4.7e-7. Without
    /// `--sync-batchnorm` the same run differs by 0.47 (layer1.0.bn1.bias): checked here too,
    /// so that the comparison can fail. (ResNet-18 itself, one step of batch 32 at 28x28:
    /// 4.7e-6 on momentum buffers, but 10 steps cost minutes in a debug build.)
    @Test(.enabled(if: DistributedTests.available, DistributedTests.skipReason))
    func twoRanksTrainOneProcessWeights() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.model.write(toFile: "\(dir)/tiny_resnet.yaml", atomically: true, encoding: .utf8)
        let single = try CLITests.run(Self.arguments(dir, "single"))
        #expect(single.status == 0, "\(single.stderr)")
        let reference = try DistributedTests.weights("\(dir)/single")
        #expect(reference.keys.contains("layer1.0.downsample.1.running_var"), "\(reference.keys.sorted())")

        for ranks in [2, 4] {
            let synced = try DistributedTests.mpi(ranks, Self.arguments(dir, "sync\(ranks)") + ["--sync-batchnorm"])
            #expect(synced.status == 0, "\(synced.stderr)")
            DistributedTests.expectSame(try DistributedTests.weights("\(dir)/sync\(ranks)"), reference,
                                        "\(ranks) ranks, --sync-batchnorm")
        }

        // Per-rank statistics (the default) are a different computation: far outside the bound.
        let perRank = try DistributedTests.mpi(2, Self.arguments(dir, "local"))
        #expect(perRank.status == 0, "\(perRank.stderr)")
        let local = try DistributedTests.weights("\(dir)/local")
        let ref = reference["bn1.weight"] ?? [], mine = local["bn1.weight"] ?? []
        let worst = zip(ref, mine).map { abs($0 - $1) }.max() ?? 0
        #expect(worst > 1e-3 * (ref.map(abs).max() ?? 0), "per-rank statistics gave one process's bn1.weight (\(worst))")
    }

    /// Examples/swift-distributed, as its README runs it (built with the package's products).
    static var example: String {
        ((CLITests.ply.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("ply-swift-distributed-example")
    }

    @Test(.enabled(if: DistributedTests.available && FileManager.default.isExecutableFile(atPath: example),
                   "needs mpirun, the communicator and ply-swift-distributed-example (swift build)"))
    func swiftExampleTrainsOnTwoRanks() throws {
        let out = try CCompiler.run("env", ["OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMPI_MCA_btl=self,vader",
                                            DistributedTests.mpirun ?? "mpirun", "--oversubscribe", "-np", "2", Self.example,
                                            TrainerTests.dataDirectory, "1"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("2 ranks"), "\(out.stdout)")
        // rank 0 alone prints: one accuracy line
        #expect(out.stdout.components(separatedBy: "Test accuracy: ").count == 2, "\(out.stdout)")
    }

    /// A last batch with fewer images than ranks would leave a rank out of the collectives:
    /// refused on every rank before training, naming the sizes.
    @Test(.enabled(if: DistributedTests.available, DistributedTests.skipReason))
    func lastBatchSmallerThanTheRanksIsRefused() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.model.write(toFile: "\(dir)/tiny_resnet.yaml", atomically: true, encoding: .utf8)
        let out = try DistributedTests.mpi(2, Self.arguments(dir, "short") + ["--limit", "65", "--sync-batchnorm"])
        #expect(out.status != 0, "\(out.stdout)")
        #expect(out.stderr.contains("a last batch of at least 2 images (one per rank): 65 images in batches of 64 leave 1"),
                "\(out.stderr)")
    }

    @Test func syncBatchNormNeedsDistributed() throws {
        let out = try CLITests.run(["train", "--sync-batchnorm"])
        #expect(out.status == 64 && out.stderr.contains("--sync-batchnorm needs --distributed"), "\(out.stderr)")
    }

    @Test func trainerRefusesSyncBatchNormWithoutCommunicator() throws {
        let runtime = try Runtime()
        let model = try Zoo.model(named: "convnet", runtime: runtime)
        var config = TrainingConfiguration()
        config.syncBatchNorm = true
        #expect(throws: TrainingError.self) { _ = try Trainer(model: model, configuration: config) }
    }
}
