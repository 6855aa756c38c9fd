// Ply's Swift front door, used from outside: every built-in layer type is there with
// nothing set by hand, and the tutorial's ConvNet trains (its loss falls) on a small
// synthetic task. Prints one line per check; exits 1 on the first failure.
import Foundation
import Ply

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("consumer: FAIL \(message)\n".utf8))
    exit(1)
}

do {
    let runtime = try Runtime()
    let names = Set(runtime.layerTypes.map(\.name))
    let expected = ["relu", "tanh", "sigmoid", "softmax", "log_softmax", "batchnorm2d", "conv2d", "dropout",
                    "basic_conv2d", "inception_googlenet", "concat", "add", "linear", "cross_entropy",
                    "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "flatten", "residual_basic",
                    "residual_bottleneck", "interpolate", "user_activation"]
    let missing = expected.filter { !names.contains($0) }
    if !missing.isEmpty { fail("built-in layer types missing: \(missing.joined(separator: ", "))") }
    let sources = Set(runtime.layerTypes.map(\.library.path))
    print("consumer: \(names.count) layer types from \(sources.count) families, e.g. \(try runtime.layerType(named: "conv2d").library.path)")

    // The tutorial's ConvNet from the zoo, trained on 64 synthetic 28x28 images of 4 classes
    // (a bright square in one quadrant each): a few steps must lower the loss.
    var configuration = TrainingConfiguration()
    configuration.learningRate = 0.05
    configuration.initialization = .pytorchDefault
    configuration.seed = 7
    let model = try Zoo.model(named: "convnet", runtime: runtime, numClasses: 4, inChannels: 1, imageSize: 28)
    let trainer = try Trainer(model: model, configuration: configuration, classes: 4)
    let n = 64
    var images = [Float](repeating: 0, count: n * 28 * 28)
    var labels = [Int32](repeating: 0, count: n)
    for i in 0..<n {
        let label = i % 4
        labels[i] = Int32(label)
        let (top, left) = ((label / 2) * 14, (label % 2) * 14)
        for y in top + 3..<top + 11 { for x in left + 3..<left + 11 { images[i * 784 + y * 28 + x] = 1 } }
    }
    var losses: [Float] = []
    for _ in 0..<30 {
        let loss = try images.withUnsafeBufferPointer {
            try trainer.step(images: $0, shape: Shape([n, 1, 28, 28]), labels: labels)
        }
        losses.append(loss)
    }
    print("consumer: losses " + losses.map { String(format: "%.4f", $0) }.joined(separator: " "))
    guard let first = losses.first, let last = losses.last, first.isFinite, last.isFinite else { fail("non-finite loss") }
    if !(last < 0.5 * first) { fail("the loss did not fall: \(first) -> \(last)") }
    print("consumer: ok (loss \(String(format: "%.4f", first)) -> \(String(format: "%.4f", last)))")
} catch {
    fail("\(error)")
}
