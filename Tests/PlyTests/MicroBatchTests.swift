import Foundation
import Testing
@testable import Ply

/// A training step in slices (Trainer+MicroBatch.swift) against the whole batch at once (the
/// path the SGD golden run checks against PyTorch): the same weights after two steps up to float
/// rounding, the same loss, a NaN in the last slice leaving the weights untouched, and models
/// with batch statistics or random masks never sliced.
@Suite struct MicroBatchTests {
    /// A ConvNet trainer on its own 1-thread runtime (PyTorch's default initialisation from `seed`).
    static func trainer(seed: UInt64 = 5) throws -> Trainer {
        var options = Runtime.Options()
        options.seed = seed
        options.threads = 1
        options.useEnvironment = false
        var configuration = TrainingConfiguration()
        configuration.learningRate = 0.05
        configuration.optimizer = .sgd(momentum: 0.9)
        configuration.initialization = .pytorchDefault
        configuration.seed = seed
        return try Trainer(model: try Zoo.convNet(runtime: try Runtime(options: options)), configuration: configuration)
    }

    static func batch(_ n: Int, seed: UInt64) -> (images: [Float], labels: [Int32]) {
        var g = SplitMix64(seed: seed)
        return ((0..<n * 28 * 28).map { _ in g.nextUnitFloat() }, (0..<n).map { _ in Int32(g.next(below: 10)) })
    }

    @Test func slicedStepMatchesTheWholeBatch() throws {
        let sliced = try MicroBatchTests.trainer(), whole = try MicroBatchTests.trainer()
        let shape = Shape([64, 1, 28, 28])
        // 88 KB of activations per image against 1.5 MB: slices of 16
        #expect(try sliced.microBatchSize(for: shape) == 16)
        for step in 0..<2 {
            let (images, labels) = MicroBatchTests.batch(64, seed: UInt64(10 + step))
            let cost = try images.withUnsafeBufferPointer { try sliced.step(images: $0, shape: shape, labels: labels) }
            let input = try Tensor(shape: shape, data: images)
            let reference = try TrainingTests.trainStep(whole.model, input, labels.map(Int.init), whole.optimizer)
            #expect(abs(cost - reference) <= 1e-5 * max(1, abs(reference)), "step \(step): loss \(cost) against \(reference)")
            for ((name, p), (_, q)) in zip(try sliced.model.namedParameters(), try whole.model.namedParameters()) {
                let c = closeness(p.read(), q.read())
                #expect(c.ok, "step \(step): \(name) max error \(c.error) > \(c.bound)")
            }
        }
    }

    @Test func nonFiniteLossInALaterSliceLeavesTheWeights() throws {
        let trainer = try MicroBatchTests.trainer()
        let shape = Shape([64, 1, 28, 28])
        var (images, labels) = MicroBatchTests.batch(64, seed: 3)
        images[63 * 28 * 28 + 5] = .nan // the last image, in the last slice
        let before = try trainer.model.namedParameters().map { $0.parameter.read() }
        let cost = try images.withUnsafeBufferPointer { try trainer.step(images: $0, shape: shape, labels: labels) }
        #expect(cost.isNaN)
        #expect(try trainer.model.namedParameters().map { $0.parameter.read() } == before)
    }

    @Test func batchStatisticsAndRandomMasksAreNotSliced() throws {
        let options = { () -> Runtime.Options in
            var o = Runtime.Options()
            o.threads = 1
            o.useEnvironment = false
            return o
        }()
        for layer in ["{name: norm, type: batchnorm2d, num_features: 8}", "{name: drop, type: dropout, p: 0.5}"] {
            let text = """
                model: sliced
                layers:
                  - {name: conv, type: conv2d, in_channels: 1, out_channels: 8, kernel_size: 3, padding: 1}
                  - \(layer)
                  - {name: flatten, type: flatten}
                  - {name: fc, type: linear, in_features: 6272, out_features: 10}
                """
            let model = try ModelFile(text: text).build(runtime: try Runtime(options: options))
            let trainer = try Trainer(model: model, configuration: TrainingConfiguration())
            #expect(try trainer.microBatchSize(for: Shape([128, 1, 28, 28])) == nil, "\(layer)")
        }
        // the ConvNet itself is sliced at that batch
        #expect(try MicroBatchTests.trainer().microBatchSize(for: Shape([128, 1, 28, 28])) == 16)
    }
}
