import Foundation
import Testing
@testable import Ply
#if canImport(FoundationXML)
import FoundationXML
#endif

/// End-to-end training: a short run learns, the same seed gives the same bits, an interrupted
/// run resumes to exactly the uninterrupted result, a non-finite loss stops the run and keeps
/// the last good checkpoint, SIGKILL during checkpoint saves never leaves a broken checkpoint,
/// SIGINT saves and `--resume` continues, the plots are well-formed, and `ply eval` agrees
/// with the trainer. Data: the first 600 training and 200 test images of Fashion-MNIST
/// (Fixtures/fashion-mnist-small). The runs through the `ply` executable (signals, `--resume`,
/// `ply eval`) are in TrainerTests+PlyExecutable.swift.
@Suite struct TrainerTests {
    // MARK: - Helpers

    static let dataDirectory = fixtures.appendingPathComponent("fashion-mnist-small").path

    /// The fixture's training (600) and test (200) sets, loaded once.
    static let data: Result<(train: ImageDataset, test: ImageDataset), any Error> = Result {
        (try ImageDataset.mnist(directory: dataDirectory, split: .train),
         try ImageDataset.mnist(directory: dataDirectory, split: .test))
    }

    static func fixtureData() throws -> (train: ImageDataset, test: ImageDataset) { try data.get() }

    /// Settings that learn reliably on 600 images in 2-3 epochs: PyTorch's default
    /// initialisation, plain SGD lr 0.05, batch 16 (38 batches per epoch).
    static func quickConfiguration(epochs: Int = 3, seed: UInt64 = 1, output: String? = nil) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.epochs = epochs
        c.batchSize = 16
        c.learningRate = 0.05
        c.initialization = .pytorchDefault
        c.seed = seed
        c.outputDirectory = output
        c.trainingAccuracy = false
        c.logEvery = 1_000
        return c
    }

    /// A ConvNet on its own runtime seeded like the run (PyTorch's default initialisation
    /// draws from the runtime's generator, so a shared runtime would make runs depend on
    /// what other tests did first), and a trainer for it.
    static func makeTrainer(_ configuration: TrainingConfiguration) throws -> Trainer {
        var options = Runtime.Options()
        options.seed = configuration.seed
        options.useEnvironment = false
        let runtime = try Runtime(options: options)
        let model = try Zoo.convNet(runtime: runtime)
        return try Trainer(model: model, configuration: configuration)
    }

    /// Every parameter and buffer as raw bit patterns, for bit-for-bit comparisons.
    static func weightBits(_ model: Model) throws -> [String: [UInt32]] {
        var bits: [String: [UInt32]] = [:]
        for (name, p) in try model.namedParameters() { bits[name] = p.read().map(\.bitPattern) }
        return bits
    }

    static func bits(_ values: [Double]) -> [UInt64] { values.map(\.bitPattern) }

    /// A fresh, empty temporary directory.
    static func makeTemporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ply-trainer-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ directory: String) { try? FileManager.default.removeItem(atPath: directory) }

    static func checkpoint(in directory: String) -> String { (directory as NSString).appendingPathComponent("checkpoint.safetensors") }

    /// Catches the `TrainingError` `body` throws (records an issue when it throws nothing or something else).
    static func trainingError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> TrainingError? {
        do {
            try body()
            Issue.record("expected a TrainingError, but the run finished", sourceLocation: sourceLocation)
        } catch let error as TrainingError {
            return error
        } catch {
            Issue.record("expected a TrainingError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    // MARK: - 1. A short run learns

    @Test func shortRunLearns() throws {
        let (train, test) = try Self.fixtureData()
        #expect(train.count == 600 && test.count == 200)
        let trainer = try Self.makeTrainer(Self.quickConfiguration(epochs: 3))
        var batches = 0
        let summary = try trainer.run(train: train, test: test, progress: { event in
            if case let .batch(_, _, _, cost, _, _) = event {
                #expect(cost.isFinite)
                batches += 1
            }
        })
        #expect(batches == 3 * 38)
        let losses = summary.epochLosses
        try #require(losses.count == 3)
        #expect(losses.allSatisfy { $0.isFinite })
        // Cross-entropy starts near ln 10 = 2.30; three epochs bring it well down.
        #expect(losses[0] < 2.4)
        #expect(losses[2] < 0.8 * losses[0], "epoch losses \(losses)")
        let accuracy = try #require(summary.testAccuracy)
        #expect(accuracy > 45, "test accuracy \(accuracy)% (chance is 10%)")
        #expect(summary.trainingAccuracies.isEmpty)
        let confusion = try #require(summary.confusion)
        #expect(confusion.joined().reduce(0, +) == test.count)
    }

    // MARK: - 2. Determinism

    @Test func sameSeedGivesIdenticalRuns() throws {
        let (train, test) = try Self.fixtureData()
        func run(seed: UInt64) throws -> (summary: TrainingSummary, weights: [String: [UInt32]], costs: [UInt32]) {
            let trainer = try Self.makeTrainer(Self.quickConfiguration(epochs: 2, seed: seed))
            var costs: [UInt32] = []
            let summary = try trainer.run(train: train, test: test, progress: { event in
                if case let .batch(_, _, _, cost, _, _) = event { costs.append(cost.bitPattern) }
            })
            return (summary, try Self.weightBits(trainer.model), costs)
        }
        let a = try run(seed: 7), b = try run(seed: 7)
        #expect(a.weights == b.weights, "same seed, different final weights")
        #expect(a.costs == b.costs, "same seed, different batch losses")
        #expect(Self.bits(a.summary.epochLosses) == Self.bits(b.summary.epochLosses))
        #expect(a.summary.testAccuracy == b.summary.testAccuracy)
        #expect(a.summary.confusion == b.summary.confusion)
        // The comparison is not vacuous: another seed gives other weights and losses.
        let c = try run(seed: 8)
        #expect(a.weights != c.weights)
        #expect(a.costs != c.costs)
    }

    // MARK: - 3. Resume equals an uninterrupted run

    @Test func interruptedRunResumesToTheSameResult() throws {
        let (train, test) = try Self.fixtureData()
        let dirA = try Self.makeTemporaryDirectory(), dirB = try Self.makeTemporaryDirectory()
        defer { Self.remove(dirA); Self.remove(dirB) }
        // Adam (moment estimates and step count in the checkpoint), a step schedule, weight
        // decay and training accuracy, so every piece of saved state matters.
        func configuration(_ dir: String) -> TrainingConfiguration {
            var c = Self.quickConfiguration(epochs: 3, seed: 3, output: dir)
            c.optimizer = .adam(weightDecay: 1e-4)
            c.learningRate = 2e-3
            c.schedule = .step(stepSize: 2, gamma: 0.5)
            c.trainingAccuracy = true
            return c
        }

        // A: three epochs straight through.
        let trainerA = try Self.makeTrainer(configuration(dirA))
        let summaryA = try trainerA.run(train: train, test: test)
        let weightsA = try Self.weightBits(trainerA.model)

        // B: stopped before batch 10 of epoch 2 (the 49th poll: 38 batches in epoch 1).
        let trainerB = try Self.makeTrainer(configuration(dirB))
        var polls = 0
        let error = Self.trainingError {
            _ = try trainerB.run(train: train, test: test, shouldStop: {
                polls += 1
                return polls == 38 + 11
            })
        }
        let path = Self.checkpoint(in: dirB)
        #expect(error == .interrupted(epoch: 2, batch: 10, checkpoint: path))
        let saved = try SafeTensors.read(path: path)
        #expect(saved.metadata["format"] == "ply-checkpoint-1")
        #expect(saved.metadata["epoch"] == "1" && saved.metadata["batch"] == "10")
        #expect(saved.metadata["partial_samples"] == "160")
        #expect(saved.metadata["optimizer_steps"] == String(38 + 10))
        #expect(saved.metadata["validation_losses"]?.split(separator: ",").count == 1, "one finished epoch's validation loss")
        // An interrupted run writes no plots: it has no test result yet.
        #expect(!FileManager.default.fileExists(atPath: (dirB as NSString).appendingPathComponent("confusion.txt")))

        // B, continued by a new trainer (its fresh initialisation is overwritten by the checkpoint).
        let trainerC = try Self.makeTrainer(configuration(dirB))
        var resumedAt: (Int, Int)?
        var firstBatch: Int?
        let summaryC = try trainerC.run(train: train, test: test, resume: true, progress: { event in
            switch event {
            case let .resumed(_, epoch, batch): resumedAt = (epoch, batch)
            case let .batch(_, batch, _, _, _, _): if firstBatch == nil { firstBatch = batch }
            default: break
            }
        })
        #expect(resumedAt.map { [$0.0, $0.1] } == [1, 10])
        #expect(firstBatch == 10)

        let weightsC = try Self.weightBits(trainerC.model)
        #expect(weightsC == weightsA, "resumed run ends with other weights")
        #expect(Self.bits(summaryC.epochLosses) == Self.bits(summaryA.epochLosses),
                "losses \(summaryC.epochLosses) vs \(summaryA.epochLosses)")
        #expect(summaryC.trainingAccuracies == summaryA.trainingAccuracies)
        #expect(Self.bits(summaryC.validationLosses) == Self.bits(summaryA.validationLosses))
        #expect(summaryC.validationAccuracies == summaryA.validationAccuracies && summaryA.validationAccuracies.count == 3)
        #expect(summaryC.testAccuracy == summaryA.testAccuracy)
        #expect(summaryC.confusion == summaryA.confusion)
        // The final checkpoints agree entry for entry, optimizer state and metadata included.
        // (The model's entries come in state_dict order; the optimizer's after a resume come
        // in the order Optimizer.loadState sorted them into, which differs but is harmless.)
        let finalA = try SafeTensors.read(path: Self.checkpoint(in: dirA))
        let finalC = try SafeTensors.read(path: path)
        let isOptimizer = { (name: String) in name.hasPrefix(Checkpoint.optimizerPrefix) }
        #expect(finalA.order.filter { !isOptimizer($0) } == finalC.order.filter { !isOptimizer($0) })
        #expect(finalA.entries == finalC.entries)
        #expect(finalA.metadata == finalC.metadata)
        #expect(finalA.entries.keys.contains { $0.hasPrefix(Checkpoint.optimizerPrefix) })
    }

    // MARK: - 4. A non-finite loss stops the run and keeps the last good checkpoint

    @Test func nonFiniteLossKeepsTheLastGoodCheckpoint() throws {
        let (train, test) = try Self.fixtureData()
        let dir = try Self.makeTemporaryDirectory()
        defer { Self.remove(dir) }
        // Epoch 1 trains at 0.05; from epoch 2 the rate is 0.05 * 1e21, which overflows.
        var config = Self.quickConfiguration(epochs: 3, output: dir)
        config.schedule = .step(stepSize: 1, gamma: 1e21)
        let trainer = try Self.makeTrainer(config)
        var savedBytes: [Data] = []
        var savedWeights: [[String: [UInt32]]] = []
        var lastBatch: (epoch: Int, batch: Int)?
        let error = Self.trainingError {
            _ = try trainer.run(train: train, test: test, progress: { event in
                switch event {
                case let .checkpoint(path):
                    if let bytes = FileManager.default.contents(atPath: path) { savedBytes.append(bytes) }
                    if let weights = try? Self.weightBits(trainer.model) { savedWeights.append(weights) }
                case let .batch(epoch, batch, _, _, _, _):
                    lastBatch = (epoch, batch)
                default: break
                }
            })
        }
        let path = Self.checkpoint(in: dir)
        guard case let .nonFiniteLoss(epoch, batch, value, checkpoint) = try #require(error) else {
            Issue.record("expected nonFiniteLoss, got \(String(describing: error))")
            return
        }
        #expect(epoch == 2)
        #expect(!value.isFinite)
        #expect(checkpoint == path)
        // The failing batch is the one after the last reported one.
        let before = batch == 0 ? [1, 37] : [2, batch - 1]
        #expect(lastBatch.map { [$0.epoch, $0.batch] } == before)
        let message = error?.description ?? ""
        #expect(message.contains("epoch 2, batch \(batch)") && message.contains(path), "message: \(message)")

        // The checkpoint is the one written after epoch 1, byte for byte, and loads back.
        try #require(savedBytes.count == 1)
        #expect(FileManager.default.contents(atPath: path) == savedBytes[0])
        let file = try SafeTensors.read(path: path)
        #expect(file.metadata["format"] == "ply-checkpoint-1")
        #expect(file.metadata["epoch"] == "1" && file.metadata["batch"] == "0")
        let restored = try Self.makeTrainer(Self.quickConfiguration(seed: 99))
        let state = try Checkpoint.load(from: path, model: restored.model, optimizer: restored.optimizer)
        #expect(state.epoch == 1 && state.batch == 0 && state.epochLosses.count == 1)
        #expect(state.epochLosses.allSatisfy { $0.isFinite })
        let restoredWeights = try Self.weightBits(restored.model)
        #expect(restoredWeights == savedWeights.first)
        // No temporary file was left behind, and no plots were written.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(files == ["checkpoint.safetensors"], "directory holds \(files)")
    }

    @Test func nonFiniteLossInTheFirstEpochHasNoCheckpoint() throws {
        let (train, _) = try Self.fixtureData()
        // Rates up to 1e10 merely kill every ReLU (the loss stays finite, as in PyTorch);
        // 1e20 overflows the weights to infinity, and inf - inf is NaN.
        var config = Self.quickConfiguration(epochs: 1)
        config.learningRate = 1e20
        let trainer = try Self.makeTrainer(config)
        let error = Self.trainingError { _ = try trainer.run(train: train, test: nil) }
        guard case let .nonFiniteLoss(epoch, batch, value, checkpoint) = try #require(error) else {
            Issue.record("expected nonFiniteLoss, got \(String(describing: error))")
            return
        }
        #expect(epoch == 1 && batch > 0 && !value.isFinite && checkpoint == nil)
        #expect(error?.description.contains("No checkpoint was written") == true)
    }

    /// A NaN pixel poisons the loss of the batch that holds it, as in PyTorch.
    ///
    /// Known bug: the relu plugin computes `x > 0 ? x : 0`, which maps NaN to 0 (PyTorch's
    /// relu propagates NaN). The NaN pixel makes conv_1's weight gradient NaN, the step
    /// writes NaN into conv_1.weight, and from then on relu turns conv_1's all-NaN output
    /// into zeros: the loss stays finite (about ln 10) and the run "finishes" with NaN
    /// weights and a dead network instead of stopping. (Fixed: relu propagates NaN.)
    @Test func nanPixelStopsAtItsBatch() throws {
        let (clean, _) = try Self.fixtureData()
        let poisoned = 123
        var pixels = clean.images
        pixels[poisoned * clean.sampleSize + 14 * 28 + 14] = .nan
        let train = ImageDataset(count: clean.count, channels: 1, height: 28, width: 28, images: pixels, labels: clean.labels)
        let config = Self.quickConfiguration(epochs: 1)
        let expectedBatch = try #require(BatchLoader(dataset: train, batchSize: 16, shuffle: true, seed: config.seed, epoch: 0)
            .order.firstIndex(of: poisoned)) / 16
        let trainer = try Self.makeTrainer(config)
        do {
            let error = Self.trainingError { _ = try trainer.run(train: train, test: nil) }
            guard case let .nonFiniteLoss(epoch, batch, value, checkpoint) = try #require(error) else {
                Issue.record("expected nonFiniteLoss, got \(String(describing: error))")
                return
            }
            #expect(epoch == 1 && !value.isFinite && checkpoint == nil)
            #expect(batch == expectedBatch, "NaN pixel in batch \(expectedBatch), loss became non-finite at batch \(batch)")
        }
    }

    // MARK: - 6. Plots

    /// Element names of a well-formed XML document (nil when it does not parse).
    final class ElementCounter: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var root: String?
        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            if root == nil { root = elementName }
            counts[elementName, default: 0] += 1
        }

        static func parse(_ path: String) -> ElementCounter? {
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            let parser = XMLParser(data: data)
            let counter = ElementCounter()
            parser.delegate = counter
            return parser.parse() ? counter : nil
        }
    }

    @Test func plotsAreWrittenAndWellFormed() throws {
        let (train, test) = try Self.fixtureData()
        let dir = try Self.makeTemporaryDirectory()
        defer { Self.remove(dir) }
        var config = Self.quickConfiguration(epochs: 2, output: dir)
        config.trainingAccuracy = true
        let summary = try Self.makeTrainer(config).run(train: train, test: test)
        func file(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

        let curves = try #require(ElementCounter.parse(file("training.svg")), "training.svg is not well-formed XML")
        #expect(curves.root == "svg")
        // Training loss and accuracy, and the test set's (the validation curve, dashed).
        #expect(curves.counts["polyline"] == 4)
        #expect(curves.counts["circle"] == 4 * 2, "one point per epoch on each curve")

        let heat = try #require(ElementCounter.parse(file("confusion.svg")), "confusion.svg is not well-formed XML")
        #expect(heat.root == "svg")
        #expect(heat.counts["rect"] == 1 + 10 * 10, "background and one cell per (true, predicted) pair")

        let text = try String(contentsOfFile: file("confusion.txt"), encoding: .utf8)
        let rows = text.split(separator: "\n").dropFirst(2).map { $0.split(separator: " ") }
        try #require(rows.count == 10, "confusion.txt:\n\(text)")
        var matrix: [[Int]] = []
        for (i, row) in rows.enumerated() {
            // class index, its Fashion-MNIST name (one or two words), ten counts, recall
            let name = KnownDatasets.fashionMNISTClassNames[i].split(separator: " ")
            try #require(row.count == 12 + name.count, "row \(i): \(row)")
            #expect(Int(row[0]) == i && Array(row[1...name.count]) == name)
            matrix.append(row.suffix(11).prefix(10).compactMap { Int($0) })
            #expect(row.last?.hasSuffix("%") == true)
        }
        #expect(matrix.joined().reduce(0, +) == test.count)
        #expect(matrix == summary.confusion)
        let correct = (0..<10).reduce(0) { $0 + matrix[$1][$1] }
        #expect(abs(100 * Double(correct) / Double(test.count) - (summary.testAccuracy ?? -1)) < 1e-9)
    }
}
