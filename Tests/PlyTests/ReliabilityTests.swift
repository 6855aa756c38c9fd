import Foundation
import Testing
@testable import Ply

/// Issue #15, reliability round two: hostile and careless inputs to `ply` and the trainer each
/// end in a clear error naming the option or file, the value and what is accepted — never a
/// crash, a hang or a silent wrong answer (an accuracy for weights that were never loaded).
@Suite struct ReliabilityTests {
    static let data = TrainerTests.dataDirectory

    /// `ply` with `arguments`; fails the test on a crash (a signal, or Swift's trap status).
    static func ply(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> CCompiler.Output {
        let out = try CLITests.run(arguments)
        #expect(out.status == 0 || out.status == 1 || out.status == 64,
                "ply \(arguments.joined(separator: " ")) exited with \(out.status): \(out.stderr)", sourceLocation: sourceLocation)
        #expect(!out.stderr.contains("Fatal error") && !out.stderr.contains("Stack dump"), "\(out.stderr)",
                sourceLocation: sourceLocation)
        return out
    }

    /// `ply` must fail, and its stderr must contain every one of `words`.
    static func expectFailure(_ arguments: [String], mentions words: [String],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let out = try ply(arguments, sourceLocation: sourceLocation)
        #expect(out.status != 0, "ply \(arguments.joined(separator: " ")) succeeded: \(out.stdout)", sourceLocation: sourceLocation)
        for word in words {
            #expect(out.stderr.contains(word), "ply \(arguments.joined(separator: " ")): '\(word)' not in: \(out.stderr)",
                    sourceLocation: sourceLocation)
        }
    }

    static func temporaryDirectory() throws -> String { try TrainerTests.makeTemporaryDirectory() }

    /// A short `ply train` run (64 images, batch 16, `epochs`) into `output`.
    static func train(_ output: String, epochs: Int = 1, model: String = "convnet", extra: [String] = []) throws {
        let out = try ply(["train", "--data", data, "--epochs", String(epochs), "--limit", "64", "--batch-size", "16",
                           "--model", model, "--output", output, "--no-train-accuracy"] + extra)
        #expect(out.status == 0, "\(out.stderr)")
    }

    /// Writes an MNIST-format pair of raw IDX files for `split` into `directory`.
    static func writeIDX(_ directory: String, split: String, count: Int, height: Int, width: Int) throws {
        func be(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(v).bigEndian) { Array($0) } }
        let images = [0, 0, 8, 3] + be(count) + be(height) + be(width) + [UInt8]((0..<(count * height * width)).map { UInt8($0 % 251) })
        let labels = [0, 0, 8, 1] + be(count) + [UInt8]((0..<count).map { UInt8($0 % 10) })
        try Data(images).write(to: URL(fileURLWithPath: "\(directory)/\(split)-images-idx3-ubyte"))
        try Data(labels).write(to: URL(fileURLWithPath: "\(directory)/\(split)-labels-idx1-ubyte"))
    }

    /// Rewrites the checkpoint at `path` with `change` applied to its metadata.
    static func editMetadata(_ path: String, _ change: (inout [String: String]) -> Void) throws {
        let file = try SafeTensors.read(path: path)
        var metadata = file.metadata
        change(&metadata)
        try SafeTensors.write(path: path, tensors: file.order.map { ($0, file.entries[$0]!) }, metadata: metadata)
    }

    // MARK: - 1. eval, predict and --resume load strictly

    @Test func evalRefusesWeightsThatDoNotFitTheModel() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.train("\(dir)/lenet", model: "lenet5")
        // A LeNet-5 checkpoint evaluated as the ConvNet: every name is wrong.
        try Self.expectFailure(["eval", "--data", Self.data, "--weights", "\(dir)/lenet/checkpoint.safetensors"],
                               mentions: ["missing: conv_1.weight", "unexpected: conv1.weight"])
        // A safetensors file with the header `{}`.
        let empty = "\(dir)/empty.safetensors"
        try Data(withUnsafeBytes(of: UInt64(2).littleEndian) { Array($0) } + Array("{}".utf8)).write(to: URL(fileURLWithPath: empty))
        try Self.expectFailure(["eval", "--data", Self.data, "--weights", empty], mentions: [empty, "missing: conv_1.weight"])
        // The right names with a wrong shape, and a wrong dtype.
        try Self.train("\(dir)/convnet")
        let file = try SafeTensors.read(path: "\(dir)/convnet/checkpoint.safetensors")
        var tensors = file.order.map { ($0, file.entries[$0]!) }
        let i = try #require(tensors.firstIndex { $0.0 == "conv_1.bias" })
        tensors[i].1 = SafeTensors.Entry(floats: [1, 2, 3], shape: [3])
        try SafeTensors.write(path: "\(dir)/shape.safetensors", tensors: tensors, metadata: [:])
        try Self.expectFailure(["eval", "--data", Self.data, "--weights", "\(dir)/shape.safetensors"],
                               mentions: ["wrong shape: conv_1.bias"])
        tensors[i].1 = SafeTensors.Entry(int64s: [Int64](repeating: 1, count: file.entries["conv_1.bias"]!.shape[0]),
                                         shape: file.entries["conv_1.bias"]!.shape)
        try SafeTensors.write(path: "\(dir)/dtype.safetensors", tensors: tensors, metadata: [:])
        try Self.expectFailure(["eval", "--data", Self.data, "--weights", "\(dir)/dtype.safetensors"],
                               mentions: ["wrong dtype: conv_1.bias"])
        // 32x32 images against a checkpoint trained on 28x28.
        let big = "\(dir)/data32"
        try FileManager.default.createDirectory(atPath: big, withIntermediateDirectories: true)
        try Self.writeIDX(big, split: "t10k", count: 20, height: 32, width: 32)
        try Self.expectFailure(["eval", "--data", big, "--weights", "\(dir)/convnet/checkpoint.safetensors"],
                               mentions: ["1x32x32", "wrong shape: linear_1.weight"])
        // The checkpoint itself still evaluates.
        let ok = try Self.ply(["eval", "--data", Self.data, "--weights", "\(dir)/convnet/checkpoint.safetensors"])
        #expect(ok.status == 0 && ok.stdout.contains("Test accuracy"), "\(ok.stderr)")
    }

    @Test func predictAndResumeRefuseWeightsThatDoNotFit() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.train("\(dir)/run")
        let checkpoint = "\(dir)/run/checkpoint.safetensors"
        // A 3-channel input for 1-channel weights: the input is named, not the weights blamed alone.
        try NumPy.write(path: "\(dir)/rgb.npy", shape: [2, 3, 28, 28], values: [Float](repeating: 0.5, count: 2 * 3 * 784))
        try Self.expectFailure(["predict", "--weights", checkpoint, "--input", "\(dir)/rgb.npy", "--output", "\(dir)/out.npy"],
                               mentions: ["\(dir)/rgb.npy has images with 3 channel(s)", "trained on 1", "conv_1.weight"])
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.npy"))
        // The LeNet-5 model resumed from a ConvNet checkpoint.
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "2", "--limit", "64", "--batch-size", "16",
                                "--model", "lenet5", "--output", "\(dir)/run", "--resume"],
                               mentions: [checkpoint, "missing: conv1.weight"])
    }

    // MARK: - 2. Options are validated where parsed

    static let badOptions: [([String], [String])] = [
        (["eval", "--batch-size", "0"], ["--batch-size", "1...16777216", "got 0"]),
        (["eval", "--batch-size=-5"], ["--batch-size", "got -5"]),
        (["eval", "--batch-size", String(Int.max)], ["--batch-size", "got \(Int.max)"]),
        (["eval", "--split", "validation"], ["--split", "validation"]),
        (["train", "--batch-size", "100000000000"], ["--batch-size", "1...16777216", "got 100000000000"]),
        (["train", "--schedule", "step:0:0.1"], ["--schedule", "step:0:0.1", "SIZE"]),
        (["train", "--schedule", "step:2:-1"], ["--schedule", "GAMMA"]),
        (["train", "--schedule", "cosine:abc"], ["--schedule", "MIN", "abc"]),
        (["train", "--schedule", "exponential"], ["--schedule", "exponential"]),
        (["train", "--epochs", "0"], ["--epochs", "got 0"]),
        (["train", "--lr", "nan"], ["--lr", "nan"]),
        (["train", "--momentum", "1.5"], ["--momentum", "1.5"]),
        (["train", "--weight-decay=-1"], ["--weight-decay", "-1"]),
        (["train", "--limit", "0"], ["--limit", "got 0"]),
        (["train", "--threads", "0"], ["--threads", "got 0"]),
        (["train", "--optimizer", "rmsprop"], ["--optimizer", "rmsprop"]),
        (["train", "--resume-anyway"], ["--resume-anyway", "--resume"]),
        (["bench-model", "convnet", "--batch", "100000000000"], ["--batch", "got 100000000000"]),
        (["bench-model", "convnet", "--batch", "16000000", "--image-size", "224"], ["--batch 16000000", "memory"]),
        (["bench-model", "convnet", "--runs", "0"], ["--runs", "got 0"]),
        (["summary", "convnet", "--batch", "0"], ["--batch", "got 0"]),
        (["summary", "convnet", "--image-size", "100000000"], ["--image-size", "got 100000000"]),
        // In range, but the multiply-accumulates overflow 64 bits (was an arithmetic-overflow trap).
        (["summary", "resnet18", "--batch", "16777216", "--image-size", "65536", "--in-channels", "3"],
         ["multiply-accumulates", "exceed 2^63"]),
        (["predict", "--weights", "w", "--input", "i", "--output", "o", "--batch-size", "0"], ["--batch-size", "got 0"]),
        (["bench", "--repeats", "0"], ["--repeats", "got 0"]),
        // A million classes took minutes initialising a 784 x 10^6 layer before the weights were even read.
        (["predict", "--weights", "w", "--input", "i", "--output", "o", "--num-classes", "1048576"],
         ["--num-classes", "1...100000", "got 1048576"]),
        (["predict", "--weights", "w", "--input", "i", "--output", "/tmp"], ["--output /tmp is a directory"]),
        (["predict", "--weights", "w", "--input", "i", "--output", "/nonexistent-dir/o.npy"], ["/nonexistent-dir", "does not exist"]),
        (["bench-activations", "--library", "x", "--shape", "0", "4"], ["--shape"]),
    ]

    /// An empty path or name is refused where it is parsed, with ArgumentParser's usage error
    /// (exit 64): `train --output ''` failed only after loading the data ("output directory  is
    /// not writable: cannot create it: : no such file or directory"), `predict --output ''` only
    /// after inference, `--plugin ''` said ": no such file or directory".
    static let emptyValues: [([String], String)] = [
        (["train", "--output", ""], "--output must not be empty"),
        (["train", "--model", ""], "--model must not be empty"),
        (["eval", "--weights", ""], "--weights must not be empty"),
        (["predict", "--weights", "w", "--input", "i", "--output", ""], "--output must not be empty"),
        (["predict", "--weights", "w", "--input", "", "--output", "o"], "--input must not be empty"),
        (["summary", ""], "<model> must not be empty"),
        (["plugins", "--plugin", ""], "--plugin must not be empty"),
        (["plugins", "--describe", ""], "--describe must not be empty"),
        (["bench-activations", "--library", ""], "--library must not be empty"),
        (["inspect", "--weights", ""], "--weights must not be empty"),
        (["inspect", "--weights", "w", "--image", ""], "--image must not be empty"),
        (["inspect", "--weights", "w", "--output", ""], "--output must not be empty"),
        (["bench-data", "--data", ""], "--data must not be empty"),
        (["import", "", "--output", "o"], "<model> must not be empty"),
        (["export", "--model", "", "--weights", "w", "--output", "o.onnx"], "--model must not be empty"),
        (["export", "--model", "convnet", "--weights", "", "--output", "o.onnx"], "--weights must not be empty"),
        (["bench-layers", ""], "<model> must not be empty"),
    ]

    @Test(arguments: emptyValues)
    func emptyPathOrNameIsRefusedWhenParsed(_ arguments: [String], _ message: String) throws {
        let out = try Self.ply(arguments)
        #expect(out.status == 64, "ply \(arguments): exit \(out.status): \(out.stderr)")
        #expect(out.stderr.contains("Error: \(message)"), "ply \(arguments): \(out.stderr)")
    }

    @Test(arguments: badOptions)
    func optionOutOfRangeIsRefusedWhenParsed(_ arguments: [String], _ words: [String]) throws {
        try Self.expectFailure(arguments + (arguments[0] == "eval" || arguments[0] == "train" ? ["--data", "/nonexistent"] : []),
                               mentions: words)
    }

    @Test func resumeWithFewerEpochsThanTheCheckpointIsAnError() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.train(dir, epochs: 2)
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "1", "--limit", "64", "--batch-size", "16",
                                "--output", dir, "--resume"],
                               mentions: ["already finished 2 epochs", "--epochs 3"])
        // Part-way through epoch 2 with --epochs 1: the partial epoch would be dropped silently.
        try Self.editMetadata(TrainerTests.checkpoint(in: dir)) {
            $0["epoch"] = "1"
            $0["batch"] = "2"
            $0["epoch_losses"] = String($0["epoch_losses"]!.split(separator: ",")[0])
            $0["validation_losses"] = String($0["validation_losses"]!.split(separator: ",")[0])
            $0["validation_accuracies"] = String($0["validation_accuracies"]!.split(separator: ",")[0])
            $0["partial_samples"] = "32"
            $0["partial_loss"] = "70.0"
        }
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "1", "--limit", "64", "--batch-size", "16",
                                "--output", dir, "--resume"],
                               mentions: ["already finished 1 epochs and part of the next", "--epochs 2"])
    }

    @Test func scheduleIsValidatedByTheTrainerToo() throws {
        var config = TrainerTests.quickConfiguration()
        config.schedule = .step(stepSize: 0, gamma: 0.1)
        #expect(throws: TrainingError.self) { try TrainerTests.makeTrainer(config) }
        config = TrainerTests.quickConfiguration()
        config.batchSize = 0
        #expect(throws: TrainingError.invalidConfiguration(field: "batchSize", value: "0", accepted: "1...16777216")) {
            try TrainerTests.makeTrainer(config)
        }
    }

    // MARK: - 3. A checkpoint's metadata is checked, and so is the run it belongs to

    static let badMetadata: [(key: String, value: String)] = [
        ("epoch", "-1"), ("epoch", String(Int64.max)), ("epoch", "7"), ("epoch", "one"),
        ("batch", "-3"), ("optimizer_steps", "-1"), ("optimizer_steps", "12345"),
        ("partial_samples", "-1"), ("partial_loss", "nan"), ("partial_loss", "-2"),
        ("generator", "-1"), ("epoch_losses", "0.5,x"), ("training_accuracies", "101"),
        ("batch_size", "0"), ("dataset_count", "-64"),
    ]

    @Test(arguments: badMetadata)
    func checkpointMetadataOutOfRangeIsRefused(_ key: String, _ value: String) throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.train(dir)
        let path = TrainerTests.checkpoint(in: dir)
        try Self.editMetadata(path) { $0[key] = value }
        // The library: a typed error naming the key.
        let trainer = try TrainerTests.makeTrainer(TrainerTests.quickConfiguration())
        do {
            _ = try Checkpoint.load(from: path, model: trainer.model, optimizer: trainer.optimizer)
            Issue.record("metadata \(key)=\(value) was accepted")
        } catch let error as CheckpointError {
            guard case let .invalidMetadata(_, badKey, _, _) = error else { Issue.record("\(error)"); return }
            // An epoch that disagrees with epoch_losses is reported on whichever it checks first.
            #expect(badKey == key || (key == "epoch_losses" && badKey == "epoch_losses") || key == "epoch", "\(error)")
        }
        // The tool: an error, no crash.
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "3", "--limit", "64", "--batch-size", "16",
                                "--output", dir, "--resume"], mentions: [path, "metadata"])
    }

    @Test func checkpointMetadataMissingAKeyIsRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.train(dir)
        try Self.editMetadata(TrainerTests.checkpoint(in: dir)) { $0["epoch"] = nil }
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "3", "--limit", "64", "--batch-size", "16",
                                "--output", dir, "--resume"], mentions: ["metadata has no 'epoch'"])
    }

    @Test func resumingADifferentRunIsRefusedUnlessAsked() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.train(dir)
        let base = ["train", "--data", Self.data, "--epochs", "2", "--output", dir, "--resume", "--no-train-accuracy"]
        try Self.expectFailure(base + ["--limit", "64", "--batch-size", "8"], mentions: ["batch size: checkpoint 16, this run 8"])
        try Self.expectFailure(base + ["--limit", "48", "--batch-size", "16"],
                               mentions: ["training set size: checkpoint 64 images, this run 48 images"])
        // Same size, other images: the fingerprint tells.
        try Self.editMetadata(TrainerTests.checkpoint(in: dir)) { $0["dataset_fingerprint"] = "0123456789abcdef" }
        try Self.expectFailure(base + ["--limit", "64", "--batch-size", "16"], mentions: ["training set contents"])
        let anyway = try Self.ply(base + ["--limit", "64", "--batch-size", "16", "--resume-anyway"])
        #expect(anyway.status == 0 && anyway.stdout.contains("Resuming from"), "\(anyway.stderr)")
    }

    @Test func resumeWithoutACheckpointSaysItStartsFresh() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let out = try Self.ply(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--batch-size", "16",
                                "--output", dir, "--resume", "--no-train-accuracy"])
        #expect(out.status == 0)
        #expect(out.stderr.contains("no checkpoint at \(TrainerTests.checkpoint(in: dir)); --resume starts a fresh run"), "\(out.stderr)")
    }

    // MARK: - 4. Nothing to train on, or a model that is not a classifier

    @Test func emptyTrainingOrTestSetIsAnError() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.writeIDX(dir, split: "train", count: 0, height: 28, width: 28)
        try Self.writeIDX(dir, split: "t10k", count: 10, height: 28, width: 28)
        try Self.expectFailure(["train", "--data", dir, "--epochs", "1", "--output", "\(dir)/out"],
                               mentions: ["training set is empty"])
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/checkpoint.safetensors"))
        try Self.writeIDX(dir, split: "train", count: 20, height: 28, width: 28)
        try Self.writeIDX(dir, split: "t10k", count: 0, height: 28, width: 28)
        try Self.expectFailure(["train", "--data", dir, "--epochs", "1", "--output", "\(dir)/out"], mentions: ["test set is empty"])
        try Self.expectFailure(["eval", "--data", dir, "--weights", "\(dir)/none.safetensors"], mentions: ["test set is empty"])
        // Test images of another size than the training images: refused before training, not after.
        try Self.writeIDX(dir, split: "t10k", count: 10, height: 32, width: 32)
        let out = try Self.ply(["train", "--data", dir, "--epochs", "1", "--output", "\(dir)/out", "--no-train-accuracy"])
        #expect(out.status != 0 && out.stderr.contains("the test set's images are 1x32x32 (CxHxW) but the training set's are 1x28x28"),
                "\(out.stderr)")
        #expect(!out.stdout.contains("Epoch"), "\(out.stdout)")
        // The library refuses too.
        let (train, _) = try TrainerTests.fixtureData()
        let trainer = try TrainerTests.makeTrainer(TrainerTests.quickConfiguration(epochs: 1))
        #expect(throws: TrainingError.emptyDataset(role: "training set", count: 0)) {
            try trainer.run(train: train.prefix(0), test: nil)
        }
        #expect(throws: TrainingError.self) { try trainer.evaluate(train.prefix(0)) }
    }

    @Test func modelWhoseOutputIsNotClassesIsRefusedBeforeTraining() throws {
        var options = Runtime.Options()
        options.useEnvironment = false
        let runtime = try Runtime(options: options)
        let model = Model(runtime: runtime)
        try model.add("flatten", "flatten")  // (N, 784): not (N, 10)
        try model.add("fc", "linear", [("in_features", .int(784)), ("out_features", .int(784))])
        let trainer = try Trainer(model: model, configuration: TrainerTests.quickConfiguration(epochs: 1))
        let (train, test) = try TrainerTests.fixtureData()
        #expect(throws: TrainingError.wrongOutputShape(shape: [1, 784], classes: 10)) {
            try trainer.run(train: train.prefix(32), test: test)
        }
        #expect(throws: TrainingError.wrongOutputShape(shape: [1, 784], classes: 10)) { try trainer.evaluate(test) }
    }

    // MARK: - 5. One trainer per output directory

    @Test func secondTrainerOnTheSameOutputDirectoryIsRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        // Hold the lock as a first run would (flock: another open file description conflicts).
        let lockPath = "\(dir)/\(OutputLock.fileName)"
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let text = Array("4242\n".utf8)
        #expect(pwrite(fd, text, text.count, 0) == text.count)
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--output", dir],
                               mentions: ["in use by another training run", "pid 4242", lockPath])
        #expect(!FileManager.default.fileExists(atPath: TrainerTests.checkpoint(in: dir)))
        // Released: the next run goes ahead.
        flock(fd, LOCK_UN)
        try Self.train(dir)
        #expect(FileManager.default.fileExists(atPath: TrainerTests.checkpoint(in: dir)))
    }

    @Test func secondPlyTrainNamesTheRunningOne() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let out = "\(dir)/out"
        let first = try TrainerTests.PlyProcess(["train", "--data", Self.data, "--epochs", "1000", "--batch-size", "16",
                                                 "--output", out, "--no-train-accuracy"], logs: dir, name: "first")
        defer { if first.process.isRunning { first.signal(SIGKILL) } }
        let lockPath = "\(out)/\(OutputLock.fileName)"
        #expect(first.wait(until: { (try? String(contentsOfFile: lockPath, encoding: .utf8))?.hasSuffix("\n") == true }),
                "the first run never took the lock: \(first.stderr)")
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--output", out],
                               mentions: ["in use by another training run", "pid \(first.process.processIdentifier)"])
        first.signal(SIGTERM)
        _ = first.finish()
        // The first run's checkpoint is its own, and the lock file went with it.
        #expect(FileManager.default.fileExists(atPath: TrainerTests.checkpoint(in: out)))
        #expect(!FileManager.default.fileExists(atPath: lockPath))
    }

    // MARK: - 6. Messages a user can act on

    @Test func outputThatCannotBeADirectoryIsReportedBeforeTraining() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let file = "\(dir)/a-file"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        try Self.expectFailure(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--output", file],
                               mentions: ["output directory \(file) exists and is not a directory"])
        // /proc/1 is a directory nobody (root included) can create files in; no epoch runs first.
        let out = try Self.ply(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--output", "/proc/1"])
        #expect(out.status != 0 && out.stderr.contains("output directory /proc/1 is not writable"), "\(out.stderr)")
        #expect(!out.stdout.contains("Epoch"), "\(out.stdout)")
        #expect(!out.stderr.contains("NSCocoaErrorDomain"))
        // A directory where the checkpoint goes: refused before the first epoch, not at its end.
        try FileManager.default.createDirectory(atPath: "\(dir)/out/checkpoint.safetensors", withIntermediateDirectories: true)
        let blocked = try Self.ply(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--output", "\(dir)/out"])
        #expect(blocked.status != 0 && blocked.stderr.contains("checkpoint.safetensors is a directory; checkpoint.safetensors is written there"),
                "\(blocked.stderr)")
        #expect(!blocked.stdout.contains("Epoch"), "\(blocked.stdout)")
        try FileManager.default.removeItem(atPath: "\(dir)/out/checkpoint.safetensors")
        try FileManager.default.createDirectory(atPath: "\(dir)/out/training.svg", withIntermediateDirectories: true)
        let plot = try Self.ply(["train", "--data", Self.data, "--epochs", "1", "--limit", "32", "--output", "\(dir)/out"])
        #expect(plot.status != 0 && plot.stderr.contains("training.svg is a directory; training.svg is written there"), "\(plot.stderr)")
        #expect(!plot.stdout.contains("Epoch"), "\(plot.stdout)")
    }

    @Test func nonRegularFilesAreRefusedByName() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.expectFailure(["eval", "--data", Self.data, "--weights", "/dev/zero"],
                               mentions: ["/dev/zero is a character device, not a safetensors file"])
        try Self.expectFailure(["eval", "--data", Self.data, "--weights", dir], mentions: ["\(dir) is a directory"])
        try Self.expectFailure(["predict", "--weights", "/dev/null", "--input", "/dev/zero", "--output", "\(dir)/o.npy"],
                               mentions: ["/dev/zero", "character device"])
        try FileManager.default.createDirectory(atPath: "\(dir)/model.yaml", withIntermediateDirectories: true)
        try Self.expectFailure(["summary", "\(dir)/model.yaml"], mentions: ["\(dir)/model.yaml", "is a directory"])
        // Data: a directory where the images file should be.
        try Self.writeIDX(dir, split: "train", count: 5, height: 28, width: 28)
        try FileManager.default.removeItem(atPath: "\(dir)/train-images-idx3-ubyte")
        try FileManager.default.createDirectory(atPath: "\(dir)/train-images-idx3-ubyte", withIntermediateDirectories: true)
        try Self.expectFailure(["train", "--data", dir, "--epochs", "1"], mentions: ["train-images-idx3-ubyte is a directory"])
    }

    @Test func idxWithZeroHeightSaysSo() throws {
        let dir = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dir) }
        try Self.writeIDX(dir, split: "train", count: 5, height: 0, width: 28)
        try Self.writeIDX(dir, split: "t10k", count: 5, height: 28, width: 28)
        try Self.expectFailure(["train", "--data", dir, "--epochs", "1", "--output", "\(dir)/out"],
                               mentions: ["train-images-idx3-ubyte", "[5, 0, 28]", "zero image size"])
    }
}
