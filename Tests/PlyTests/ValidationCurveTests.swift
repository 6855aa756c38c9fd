import Foundation
import Testing
@testable import Ply

/// The held-out set's loss and accuracy per epoch (the validation curve) in the summary, the
/// log, training.svg and checkpoints; class names on the confusion matrix.
@Suite struct ValidationCurveTests {
    /// Two epochs with the fixture's test set: one validation point per epoch, the last equal to
    /// the final test evaluation, and the loss equal to the loss layer's (PyTorch-checked)
    /// mean cross-entropy over the test set's logits.
    @Test func everyEpochEvaluatesTheHeldOutSet() throws {
        let (train, test) = try TrainerTests.fixtureData()
        var events: [(Int, Double, Double)] = []
        var order: [String] = []
        let trainer = try TrainerTests.makeTrainer(TrainerTests.quickConfiguration(epochs: 2))
        let summary = try trainer.run(train: train, test: test, progress: { event in
            switch event {
            case let .validation(epoch, loss, accuracy): events.append((epoch, loss, accuracy)); order.append("validation \(epoch)")
            case let .epoch(epoch, _, _, _): order.append("epoch \(epoch)")
            default: break
            }
        })
        #expect(order == ["validation 1", "epoch 1", "validation 2", "epoch 2"])
        #expect(summary.validationLosses == events.map(\.1) && summary.validationAccuracies == events.map(\.2))
        #expect(summary.validationAccuracies.last == summary.testAccuracy)
        #expect(summary.validationLosses[1] < summary.validationLosses[0], "\(summary.validationLosses)")

        // The loss as the cross_entropy layer computes it on the same logits (float32, mean).
        let model = trainer.model
        model.isTraining = false
        let logits = try model.forward(Tensor(shape: [test.count, 1, 28, 28], data: test.images))
        let targets = test.labels.map(Float.init)
        var dLogits = [Float](repeating: 0, count: logits.data.count)
        let reference = try logits.data.withUnsafeBufferPointer {
            try trainer.lossForwardBackward(logits: $0, targets: targets, n: test.count, dLogits: &dLogits)
        }
        let ours = try #require(summary.validationLosses.last)
        #expect(abs(ours - Double(reference)) <= 1e-5 * Double(reference), "\(ours) vs the loss layer's \(reference)")

        // Off: no curve, the same final test accuracy.
        var config = TrainerTests.quickConfiguration(epochs: 2)
        config.validationEachEpoch = false
        let plain = try TrainerTests.makeTrainer(config).run(train: train, test: test)
        #expect(plain.validationLosses.isEmpty && plain.testAccuracy == summary.testAccuracy)
        #expect(TrainerTests.bits(plain.epochLosses) == TrainerTests.bits(summary.epochLosses), "evaluating changed training")
    }

    @Test func trainingCurvesDrawTheValidationDashedWithGaps() {
        let svg = Plots.trainingCurves(losses: [2, 1, 0.5], accuracies: [50, 70, 80],
                                       validationLosses: [.nan, 1.2, 0.7], validationAccuracies: [.nan, 65, 75])
        #expect(svg.contains(">validation loss</text>") && svg.contains(">validation accuracy</text>"))
        // Epoch 1 has no validation point: the dashed curves are 2 points each (epochs 2 and 3).
        let dashed = svg.components(separatedBy: "<polyline").filter { $0.contains("stroke-dasharray") }
        #expect(dashed.count == 2, "\(dashed)")
        for line in dashed {
            let points = line.components(separatedBy: "points=\"")[1].prefix(while: { $0 != "\"" })
            #expect(points.split(separator: " ").count == 2, "\(points)")
        }
        #expect(!Plots.trainingCurves(losses: [1], accuracies: [50]).contains("validation"))
    }

    @Test func checkpointsRefuseAMalformedCurve() throws {
        let base: [String: String] = ["format": "ply-checkpoint-1", "generator": "1", "epoch_losses": "1.5,1.2", "training_accuracies": "",
                                      "epoch": "2", "batch": "0", "partial_samples": "0", "partial_loss": "0"]
        var good = base
        good["validation_losses"] = "nan,0.9"
        good["validation_accuracies"] = "nan,71.5"
        let state = try Checkpoint.state(from: good, path: "c")
        #expect(state.validationLosses.count == 2 && state.validationLosses[0].isNaN && state.validationAccuracies[1] == 71.5)
        #expect(try Checkpoint.state(from: base, path: "c").validationLosses.isEmpty, "older files have no curve")
        var infinite = base
        infinite["validation_losses"] = "\(Double.infinity),0.5"
        #expect(try Checkpoint.state(from: infinite, path: "c").validationLosses == [.infinity, 0.5])
        var tooMany = base
        tooMany["validation_losses"] = "1,1,1"
        #expect(throws: CheckpointError.invalidMetadata(path: "c", key: "validation_losses", value: "3 values",
                                                        accepted: "at most one per finished epoch (2)")) {
            try Checkpoint.state(from: tooMany, path: "c")
        }
        var percent = base
        percent["validation_accuracies"] = "101"
        #expect(throws: CheckpointError.invalidMetadata(path: "c", key: "validation_accuracies", value: "101.0",
                                                        accepted: "percentages in 0...100, or nan")) {
            try Checkpoint.state(from: percent, path: "c")
        }
    }

    /// Fashion-MNIST is recognised by its labels (the fixture is its first images); other data is not.
    @Test func fashionMNISTClassNamesLabelTheConfusionMatrix() throws {
        let (train, test) = try TrainerTests.fixtureData()
        #expect(train.classNames == KnownDatasets.fashionMNISTClassNames && test.classNames == KnownDatasets.fashionMNISTClassNames)
        #expect(train.prefix(50).classNames == KnownDatasets.fashionMNISTClassNames)
        let shuffled = ImageDataset(count: train.count, channels: 1, height: 28, width: 28, images: train.images,
                                    labels: train.labels.reversed())
        #expect(KnownDatasets.classNames(for: shuffled) == nil)
        let matrix = [[3, 1], [0, 2]]
        #expect(Plots.confusionText(matrix, classNames: ["cat", "dog & co"]) == """
            true \\ predicted
                           0    1 recall
            0 cat          3    1 75.0%
            1 dog & co     0    2 100.0%

            """)
        let svg = Plots.confusionSVG(matrix, classNames: ["cat", "dog & co"])
        #expect(svg.contains(">dog &amp; co</text>") && svg.contains("rotate(-60"))
        // A names list that does not fit the matrix is ignored: indices, as before.
        #expect(Plots.confusionText(matrix, classNames: ["one"]) == Plots.confusionText(matrix))
    }

    /// `ply train` prints a test line after each epoch's training accuracy, keeping the tutorial's lines.
    @Test func trainLogPrintsTheValidationLine() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let out = try CLITests.run(["train", "--data", TrainerTests.dataDirectory, "--epochs", "2", "--output", dir])
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        let i = try #require(lines.firstIndex { $0.hasPrefix("Epoch: 001/002 training accuracy: ") }, "\(out.stdout)")
        #expect(lines[i + 1].wholeMatch(of: /Epoch: 001\/002 test accuracy: \d+\.\d\d% \| test cost: \d\.\d{4} \| training cost: \d\.\d{4}/) != nil,
                "\(lines[i + 1])")
        #expect(lines[i + 2].hasPrefix("Time elapsed: "))
        #expect(lines.contains { $0.hasPrefix("Epoch: 002/002 test accuracy: ") } && lines.contains { $0.hasPrefix("Test accuracy: ") })
        let confusion = try String(contentsOfFile: dir + "/confusion.txt", encoding: .utf8)
        #expect(confusion.contains("9 Ankle boot"), "\(confusion)")
        let noValidation = try CLITests.run(["train", "--data", TrainerTests.dataDirectory, "--epochs", "1", "--output", dir + "/b",
                                             "--no-validation"])
        #expect(noValidation.status == 0 && !noValidation.stdout.contains("test cost"), "\(noValidation.stderr)")
    }
}
