// Ply from Swift: build the tutorial's ConvNet in code, train it, evaluate, predict.
//
//   swift run ply-swift-example [MNIST-DIR] [EPOCHS]
//
// It links Ply as a package that depends on the `Ply` product does (with PlyBuiltins), so the
// built-in layers come with it: no plugin library needs to be on disk.
import Foundation
import Ply

let arguments = CommandLine.arguments
let dataDirectory = arguments.count > 1 ? arguments[1] : "/usr/share/datasets/fashion-mnist"
let epochs = arguments.count > 2 ? Int(arguments[2]) ?? 1 : 1

do {
    let runtime = try Runtime()

    // The same plugin layers a model file or the C API would create, named as the tutorial names them.
    let model = try Model.sequential(runtime: runtime) {
        Conv2d(1, 8, kernel: 3, padding: 1).named("conv_1")
        ReLU()
        MaxPool2d(2)
        Conv2d(8, 16, kernel: 3, padding: 1).named("conv_2")
        ReLU()
        MaxPool2d(2)
        Flatten()
        Linear(16 * 7 * 7, 10).named("linear_1")
    }

    let train = try ImageDataset.mnist(directory: dataDirectory, split: .train)
    let test = try ImageDataset.mnist(directory: dataDirectory, split: .test)

    var configuration = TrainingConfiguration()   // the tutorial's: SGD lr 0.05, batch 128, N(0, 0.01)
    configuration.epochs = epochs
    configuration.trainingAccuracy = false
    let trainer = try Trainer(model: model, configuration: configuration)
    let summary = try trainer.run(train: train, test: test, progress: { event in
        if case let .batch(epoch, batch, batches, cost, _, true) = event {
            print(String(format: "Epoch: %03d/%03d | Batch %03d/%03d | Cost: %.4f", epoch, epochs, batch, batches, cost))
        }
    })
    print(String(format: "Test accuracy: %.2f%%", summary.testAccuracy ?? 0))

    // Predict the first five test images.
    model.isTraining = false
    let first = test.prefix(5)
    let logits = try model.forward(Tensor(shape: [5, 1, 28, 28], data: first.images))
    let predicted = (0..<5).map { i in (0..<10).max { logits.data[i * 10 + $0] < logits.data[i * 10 + $1] } ?? 0 }
    print("predicted: \(predicted)  true: \(first.labels.map(Int.init))")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
