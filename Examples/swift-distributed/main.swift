// Data-parallel training from Swift, run with mpirun: a small residual network with
// synchronised batch norm, trained on every rank of an MPI job.
//
//   swift build --product ply-swift-distributed-example && scripts/build-comm-mpi
//   mpirun -np 2 .build/debug/ply-swift-distributed-example [MNIST-DIR] [EPOCHS]
//
// Every rank runs this same program. `Communicator.load()` joins the job mpirun started (it
// loads libplycomm_mpi.so from beside the executable, or PLY_COMM_LIBRARY); the trainer shares
// each global batch of 128 out between the ranks, sums their gradients, and with
// `syncBatchNorm` sums the batch-norm statistics too, so the weights are one process's within
// float rounding. Rank 0 alone prints. As root, Open MPI wants --allow-run-as-root.
import Foundation
import Ply

let arguments = CommandLine.arguments
let dataDirectory = arguments.count > 1 ? arguments[1] : "/usr/share/datasets/fashion-mnist"
let epochs = arguments.count > 2 ? Int(arguments[2]) ?? 1 : 1

do {
    let communicator = try Communicator.load()
    defer { communicator.finalize() }
    let rank = communicator.rank
    // Ranks on one host share its cores.
    let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / communicator.localSize)
    var options = Runtime.Options()
    options.threads = threads
    let runtime = try Runtime(options: options)

    // A batch-normed stem and one residual block (its batch-norms are the block's children:
    // they synchronise through the runtime like the stem's).
    let model = try Model.sequential(runtime: runtime) {
        Conv2d(1, 16, kernel: 3, stride: 2, padding: 1, bias: false).named("conv1")
        BatchNorm2d(16).named("bn1")
        ReLU()
        AnyLayer("residual_basic", [("inplanes", .int(16)), ("planes", .int(32)), ("stride", .int(2)),
                                    ("downsample", .bool(true))], name: "layer1")
        AdaptiveAvgPool2d(1)
        Flatten()
        Linear(32, 10).named("fc")
    }

    let train = try ImageDataset.mnist(directory: dataDirectory, split: .train)
    let test = try ImageDataset.mnist(directory: dataDirectory, split: .test)

    var configuration = TrainingConfiguration()
    configuration.epochs = epochs
    configuration.learningRate = 0.1
    configuration.optimizer = .sgd(momentum: 0.9)
    configuration.initialization = .pytorchDefault
    configuration.trainingAccuracy = false
    configuration.syncBatchNorm = true    // PyTorch's SyncBatchNorm: statistics of the global batch
    let trainer = try Trainer(model: model, configuration: configuration, communicator: communicator)
    if rank == 0 { print("\(communicator.size) ranks (\(communicator.engine)), \(threads) thread(s) each") }
    let summary = try trainer.run(train: train, test: test, progress: { event in
        if rank == 0, case let .batch(epoch, batch, batches, cost, _, true) = event {
            print(String(format: "Epoch: %03d/%03d | Batch %03d/%03d | Cost: %.4f", epoch, epochs, batch, batches, cost))
        }
    })
    if rank == 0 { print(String(format: "Test accuracy: %.2f%%", summary.testAccuracy ?? 0)) }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
