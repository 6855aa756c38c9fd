import CPly
import Foundation
import Testing
@testable import Ply

/// Faults from outside Ply's control — a plugin failing half-way through forward or
/// backward, an output too large to allocate, a full disk during a checkpoint, SIGTERM
/// during training, data files deleted or truncated under a run — must each end as an error
/// that says what happened (or, for SIGTERM, a clean resumable stop), never a crash, and
/// must leave what was there before usable: the model, the last checkpoint, the run.
/// The faulty plugin is Fixtures/faultplugins/faulty.c, compiled with `cc` per test.
@Suite struct FaultTests {
    static let faultPlugins = fixtures.appendingPathComponent("faultplugins")

    /// An isolated runtime with the faulty plugin loaded, and the plugin's path.
    static func faultyRuntime(_ tag: String) throws -> (runtime: Runtime, library: String, directory: URL) {
        let dir = try CCompiler.temporaryDirectory(tag)
        let library = try CCompiler.compile(faultPlugins.appendingPathComponent("faulty.c"),
                                            to: dir.appendingPathComponent("libfaulty.so"))
        let runtime = try isolatedRuntime()
        let types = try runtime.loadPlugin(at: library)
        #expect(types.map(\.name) == ["faulty", "huge"])
        return (runtime, library, dir)
    }

    /// Scratch buffers the faulty plugin took from the host and has not given back.
    static func liveScratch(_ library: String) throws -> Int {
        // RTLD_NOLOAD: the copy the runtime loaded (its globals), not a new one.
        let handle = try #require(dlopen(library, RTLD_NOW | RTLD_NOLOAD), "\(library) is not loaded")
        defer { dlclose(handle) }
        let symbol = try #require(dlsym(handle, "faulty_live_scratch"))
        return symbol.assumingMemoryBound(to: Int.self).pointee
    }

    /// linear(8→6) → faulty (y = 2x) → relu → linear(6→4), with fixed weights.
    static func model(_ runtime: Runtime, _ faulty: Attributes) throws -> Model {
        let model = Model(runtime: runtime)
        try model.add("fc1", "linear", [("in_features", .int(8)), ("out_features", .int(6))])
        try model.add("fault", "faulty", faulty)
        try model.add("act", "relu")
        try model.add("fc2", "linear", [("in_features", .int(6)), ("out_features", .int(4))])
        var g = SplitMix64(seed: 11)
        for (_, p) in try model.namedParameters() {
            try p.write((0..<p.shape.count).map { _ in g.nextUnitFloat() - 0.5 })
        }
        return model
    }

    static let input: Tensor = {
        var g = SplitMix64(seed: 12)
        return try! Tensor(shape: [3, 8], data: (0..<24).map { _ in 2 * g.nextUnitFloat() - 1 })
    }()

    static func bits(_ t: Tensor) -> [UInt32] { t.data.map(\.bitPattern) }

    // MARK: - A plugin fails half-way through forward / backward

    @Test func pluginFailingInForwardReachesTheCallerAndTheModelRecovers() throws {
        let (runtime, library, dir) = try Self.faultyRuntime("fault-forward")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try Self.model(runtime, [("fail_forward_at", .int(2))])
        let before = try model.forward(Self.input)

        // Call 2 fails after spoiling half of its output with NaN.
        let error = try #require(throws: PlyError.self) { try model.forward(Self.input) }
        let message = error.description
        #expect(message.contains("node 'fault'") && message.contains("faulty.forward failed")
            && message.contains("faulty: injected failure half-way through forward call 2"), "\(message)")
        #expect(try Self.liveScratch(library) == 0, "the plugin's scratch was not returned")

        // The next forward recomputes every node: the same bits as before the failure.
        let after = try model.forward(Self.input)
        #expect(Self.bits(after) == Self.bits(before))
        #expect(after.data.allSatisfy { $0.isFinite })
        // So does a fresh model with the same weights (the failure left nothing behind).
        let fresh = try Self.model(runtime, [])
        #expect(try Self.bits(fresh.forward(Self.input)) == Self.bits(before))
        // Training through it works too.
        try model.zeroGradients()
        _ = try model.forward(Self.input)
        let grad = [Float](repeating: 0.25, count: 12)
        try grad.withUnsafeBufferPointer { _ = try model.backward($0) }
        try expectHostSurvives(runtime)
    }

    @Test func pluginFailingInBackwardReachesTheCallerAndTheModelRecovers() throws {
        let (runtime, library, dir) = try Self.faultyRuntime("fault-backward")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try Self.model(runtime, [("fail_backward_at", .int(2))])
        var g = SplitMix64(seed: 13)
        let gradOutput = (0..<12).map { _ in g.nextUnitFloat() - 0.5 }

        /// forward + backward from zeroed gradients; every parameter gradient and d/d input.
        func step() throws -> (output: [UInt32], grads: [String: [UInt32]], input: [UInt32]) {
            try model.zeroGradients()
            let out = try model.forward(Self.input)
            let dx = try gradOutput.withUnsafeBufferPointer { try model.backward($0, inputGradient: true) }
            var grads: [String: [UInt32]] = [:]
            for (name, p) in try model.namedParameters() { grads[name] = p.gradient.map { $0.map(\.bitPattern) } }
            return (Self.bits(out), grads, try #require(dx).map(\.bitPattern))
        }

        let reference = try step()                       // backward call 1
        #expect(reference.grads["fc1.weight"]?.contains { $0 != 0 } == true)
        try model.zeroGradients()
        let output = try model.forward(Self.input)
        let error = try #require(throws: PlyError.self) {
            _ = try gradOutput.withUnsafeBufferPointer { try model.backward($0, inputGradient: true) }  // call 2 fails
        }
        let message = error.description
        #expect(message.contains("node 'fault'") && message.contains("faulty.backward failed")
            && message.contains("faulty: injected failure half-way through backward call 2"), "\(message)")
        #expect(try Self.liveScratch(library) == 0, "the plugin's scratch was not returned")
        #expect(Self.bits(output) == reference.output)

        // After zeroing the gradients (as every training step does), the next step is exact.
        let again = try step()                           // backward call 3
        #expect(again.output == reference.output)
        #expect(again.grads == reference.grads, "parameter gradients differ after the failed backward")
        #expect(again.input == reference.input, "input gradient differs after the failed backward")
        try expectHostSurvives(runtime)
    }

    // MARK: - Outputs too large to allocate

    /// input [1, 4] → huge: [1, size, size].
    static func hugeModel(_ runtime: Runtime, size: Int) throws -> Model {
        let model = Model(runtime: runtime)
        try model.add("huge", "huge", [("size", .int(size))])
        return model
    }

    @Test func outputTooLargeToAllocateIsAnError() throws {
        let (runtime, _, dir) = try Self.faultyRuntime("fault-huge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Tensor(shape: [1, 4], data: [1, 2, 3, 4])
        // 2^40 float32 values (4 TiB) are refused wherever overcommit is not "always" (mode 1);
        // 2^46 (256 TiB) exceed the 128 TiB user address space of x86-64 and are refused everywhere.
        let overcommit = (try? String(contentsOfFile: "/proc/sys/vm/overcommit_memory", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var sizes = [1 << 23]
        if overcommit != "1" { sizes.insert(1 << 20, at: 0) }
        for size in sizes {
            let model = try Self.hugeModel(runtime, size: size)
            #expect(try model.shapes(for: [1, 4]).last == [1, size, size])
            for attempt in 1...2 {  // a failed plan leaves nothing half-planned: the retry fails the same way
                let error = try #require(throws: PlyError.self) { try model.forward(input) }
                let message = error.description
                #expect(message.contains("cannot allocate the output of node 'huge' [1, \(size), \(size)]")
                    && message.contains("\(size * size * 4) bytes") && message.contains("out of memory"),
                        "size \(size), attempt \(attempt): \(message)")
                #expect(model.outputShape == nil)
            }
        }
        // 2^64 elements: the size itself overflows, which infer_shape's check reports.
        let overflowing = try Self.hugeModel(runtime, size: 1 << 32)
        let error = try #require(throws: PlyError.self) { try overflowing.forward(input) }
        #expect(error.description.contains("node 'huge'") && error.description.contains("overflows 64 bits"), "\(error)")
        // 2^62 elements fit in Int, their 2^64 bytes do not.
        let bytesOverflow = try #require(throws: PlyError.self) { try Self.hugeModel(runtime, size: 1 << 31).forward(input) }
        #expect(bytesOverflow.description.contains("overflows 64 bits"), "\(bytesOverflow)")

        // The runtime and other models are unharmed.
        let small = try Self.model(runtime, [])
        #expect(try small.forward(Self.input).shape == [3, 4])
        try expectHostSurvives(runtime)
    }

    @Test func modelThatFailedToPlanRecoversWithAnInputItCanTake() throws {
        let (runtime, _, dir) = try Self.faultyRuntime("fault-replan")
        defer { try? FileManager.default.removeItem(at: dir) }
        // huge maps [N, 1] to [N, 8192, 8192]: 256 MiB per sample (calloc leaves the pages
        // untouched, and huge writes one value), so N = 1 plans and runs, N = 2^20 cannot.
        let model = try Self.hugeModel(runtime, size: 8192)
        func run(_ n: Int) throws -> Float {
            let input = [Float](repeating: 0.5, count: n)
            return try input.withUnsafeBufferPointer { try model.forward($0, shape: [n, 1])[0] }
        }
        #expect(try run(1) == 0.5)
        #expect(model.outputShape == [1, 8192, 8192])
        let error = try #require(throws: PlyError.self) { try run(1 << 20) }
        #expect(error.description.contains("cannot allocate the output of node 'huge' [1048576, 8192, 8192]"), "\(error)")
        #expect(model.outputShape == nil)
        // The old plan's buffers were released; the shape it could take plans and runs again.
        #expect(try run(1) == 0.5)
        #expect(model.outputShape == [1, 8192, 8192])
        try expectHostSurvives(runtime)
    }

    // MARK: - Disk full during a checkpoint

    @Test func diskFullDuringACheckpointKeepsThePreviousOne() throws {
        let (train, _) = try TrainerTests.fixtureData()
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        var config = TrainerTests.quickConfiguration(epochs: 1, output: dir)
        config.optimizer = .sgd(momentum: 0.9)
        let trainer = try TrainerTests.makeTrainer(config)
        _ = try trainer.run(train: train.prefix(64), test: nil)
        let path = TrainerTests.checkpoint(in: dir)
        let previous = try #require(FileManager.default.contents(atPath: path))
        let filesBefore = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()

        // The next save, as Checkpoint.save builds it, through the SafeTensors writer seam:
        // the disk fills up after `budget` bytes (write(2) then fails with ENOSPC).
        var tensors = try trainer.model.stateEntries()
        for (name, values) in trainer.optimizer.stateTensors() {
            tensors.append((Checkpoint.optimizerPrefix + name, SafeTensors.Entry(floats: values, shape: [values.count])))
        }
        let metadata = ["format": "ply-checkpoint-1", "epoch": "2", "batch": "0", "generator": "1", "optimizer_steps": "0",
                        "epoch_losses": "1,1", "training_accuracies": "", "partial_loss": "0", "partial_samples": "0"]
        let total = 8 + (try SafeTensors.encodeHeader(path: path, tensors: tensors, metadata: metadata)).count
            + tensors.reduce(0) { $0 + $1.entry.bytes.count }
        // Nothing fits; part of the length; mid-header; mid-tensor; all but the last byte.
        for budget in [0, 5, 100, total / 2, total - 1] {
            var written = 0
            let error = try #require(throws: SafeTensorsError.self, "budget \(budget)") {
                try SafeTensors.write(path: path, tensors: tensors, metadata: metadata) { fd, p, n in
                    let room = min(n, budget - written)
                    if room <= 0 { errno = ENOSPC; return -1 }
                    let done = Glibc.write(fd, p, room)
                    if done > 0 { written += done }
                    return done
                }
            }
            #expect(error.description.contains("No space left on device"), "budget \(budget): \(error)")
            #expect(FileManager.default.contents(atPath: path) == previous, "budget \(budget): the checkpoint changed")
            // No temporary file is left behind.
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            #expect(files == filesBefore, "budget \(budget): directory holds \(files)")
        }
        // A device that accepts nothing at all (write returns 0) is a short write, not a hang.
        let short = try #require(throws: SafeTensorsError.self) {
            try SafeTensors.write(path: path, tensors: tensors, metadata: metadata) { _, _, _ in 0 }
        }
        #expect(short.description.contains("write stopped after 0 of"), "\(short)")
        #expect(FileManager.default.contents(atPath: path) == previous)

        // The intact checkpoint loads and the run resumes from it.
        var resumeConfig = config
        resumeConfig.epochs = 2
        let resumed = try TrainerTests.makeTrainer(resumeConfig)
        let summary = try resumed.run(train: train.prefix(64), test: nil, resume: true)
        #expect(summary.epochLosses.count == 2 && summary.epochLosses.allSatisfy { $0.isFinite })
    }

    // MARK: - SIGTERM during training

    @Test func sigtermSavesMidEpochAndResumeContinues() throws {
        let dir = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(dir) }
        let output = (dir as NSString).appendingPathComponent("run")
        let path = TrainerTests.checkpoint(in: output)
        let base = ["train", "--data", TrainerTests.dataDirectory, "--output", output, "--no-train-accuracy",
                    "--batch-size", "16", "--lr", "0.01", "--momentum", "0.9", "--threads", "1"]
        let ply = try TrainerTests.PlyProcess(base + ["--epochs", "1000"], logs: dir, name: "sigterm")
        let started = ply.wait(until: { ply.stdout.contains("Epoch: 001/1000 | Batch 000") })
        try #require(started, "training did not start; stderr: \(ply.stderr)")
        usleep(UInt32.random(in: 100_000..<400_000))
        ply.signal(SIGTERM)
        let status = ply.finish()
        // Like Ctrl-C: a clean stop that saved its state, reported as exit status 1.
        #expect(ply.process.terminationReason == .exit && status == 1, "status \(status), reason \(ply.process.terminationReason)")
        let message = ply.stderr
        #expect(message.contains("interrupted at epoch") && message.contains("state saved to \(path)"), "stderr: \(message)")
        let (epoch, batch) = try TrainerTests.expectCompleteCheckpoint(path)
        #expect(message.contains("interrupted at epoch \(epoch + 1), batch \(batch);"), "checkpoint at (\(epoch), \(batch)); stderr: \(message)")

        // --resume finishes the interrupted epoch.
        let resumed = try TrainerTests.PlyProcess(base + ["--epochs", String(epoch + 1), "--resume"], logs: dir, name: "resume")
        #expect(resumed.finish() == 0, "stderr: \(resumed.stderr)")
        #expect(resumed.stdout.contains("Resuming from \(path) at epoch \(epoch + 1), batch \(batch)"), "\(resumed.stdout.prefix(400))")
        #expect(try TrainerTests.expectCompleteCheckpoint(path) == (epoch + 1, 0))
    }

    // MARK: - Data files that disappear or shrink

    /// A copy of the Fashion-MNIST cut in a directory of its own.
    static func copyOfTheData(_ tag: String) throws -> URL {
        let dir = try CCompiler.temporaryDirectory(tag)
        for name in try FileManager.default.contentsOfDirectory(atPath: TrainerTests.dataDirectory) where name.hasSuffix(".gz") {
            try FileManager.default.copyItem(at: URL(fileURLWithPath: TrainerTests.dataDirectory).appendingPathComponent(name),
                                             to: dir.appendingPathComponent(name))
        }
        return dir
    }

    @Test func dataFilesDeletedMidEpochDoNotStopTraining() throws {
        // In process: the data set is read into memory when loaded, so deleting its files
        // mid-epoch changes nothing; the run matches one whose files stayed.
        let dataDir = try Self.copyOfTheData("fault-deleted")
        defer { try? FileManager.default.removeItem(at: dataDir) }
        let train = try ImageDataset.mnist(directory: dataDir.path, split: .train).prefix(96)
        let test = try ImageDataset.mnist(directory: dataDir.path, split: .test)
        let trainer = try TrainerTests.makeTrainer(TrainerTests.quickConfiguration(epochs: 2))
        var deletedAt: (Int, Int)?
        let summary = try trainer.run(train: train, test: test, progress: { event in
            if case let .batch(epoch, batch, _, _, _, _) = event, epoch == 1, batch == 2, deletedAt == nil {
                try? FileManager.default.removeItem(at: dataDir)
                deletedAt = (epoch, batch)
            }
        })
        #expect(deletedAt != nil && !FileManager.default.fileExists(atPath: dataDir.path))
        let reference = try TrainerTests.makeTrainer(TrainerTests.quickConfiguration(epochs: 2))
            .run(train: try TrainerTests.fixtureData().train.prefix(96), test: try TrainerTests.fixtureData().test)
        #expect(TrainerTests.bits(summary.epochLosses) == TrainerTests.bits(reference.epochLosses))
        #expect(summary.testAccuracy == reference.testAccuracy)

        // As a process: `ply train` whose data directory is deleted after training starts
        // finishes its epoch and its test evaluation.
        let cliData = try Self.copyOfTheData("fault-deleted-cli")
        defer { try? FileManager.default.removeItem(at: cliData) }
        let logs = try TrainerTests.makeTemporaryDirectory()
        defer { TrainerTests.remove(logs) }
        let ply = try TrainerTests.PlyProcess(["train", "--data", cliData.path, "--output", (logs as NSString).appendingPathComponent("run"),
                                               "--epochs", "2", "--batch-size", "16", "--threads", "1",
                                               "--no-train-accuracy"], logs: logs, name: "deleted")
        let started = ply.wait(until: { ply.stdout.contains("Batch 000") })
        try #require(started, "training did not start; stderr: \(ply.stderr)")
        try FileManager.default.removeItem(at: cliData)
        #expect(ply.process.isRunning, "the run ended before its data was deleted: the test proves nothing")
        #expect(ply.finish() == 0, "stderr: \(ply.stderr)")
        #expect(ply.stdout.contains("Test accuracy:"), "\(ply.stdout)")
    }

    @Test func dataFileTruncatedBeforeItIsReadIsAClearError() throws {
        // The files are opened and then cut short (through the open descriptor, as a writer
        // replacing them in place would) before the data set reads them.
        for (file, cut) in [("train-images-idx3-ubyte", 3 * 1024), ("train-labels-idx1-ubyte", 200)] {
            for compressed in [false, true] {
                let dir = try Self.copyOfTheData("fault-truncated")
                defer { try? FileManager.default.removeItem(at: dir) }
                let gz = dir.appendingPathComponent(file + ".gz")
                var target = gz
                if !compressed {
                    // The raw IDX file (what the loader finds when there is no .gz).
                    target = dir.appendingPathComponent(file)
                    let raw = try IDX.readBytes(path: gz.path)
                    try Data(raw).write(to: target)
                    try FileManager.default.removeItem(at: gz)
                }
                let handle = try FileHandle(forUpdating: target)
                try handle.truncate(atOffset: UInt64(compressed ? cut / 4 : cut))
                let error = try #require(throws: DataError.self, "\(target.lastPathComponent)") {
                    _ = try ImageDataset.mnist(directory: dir.path, split: .train)
                }
                try handle.close()
                let message = error.description
                #expect(message.contains(target.path), "\(message)")
                if compressed {
                    #expect(message.contains("corrupt gzip data"), "\(message)")
                } else {
                    #expect(message.contains("truncated file") && message.contains("file has \(cut) bytes"), "\(message)")
                }
            }
        }
    }
}

/// The convenience API refuses an output that cannot be allocated instead of trapping.
@Suite struct ConvenienceForwardSizeTests {
    @Test func hugeOutputThroughLayerForwardIsAnError() throws {
        let layer = try Layer("interpolate", [("size", .ints([1 << 20, 1 << 20])), ("mode", .string("nearest"))], runtime: sharedRuntime)
        #expect { try layer.forward([Tensor(shape: [1, 1, 2, 2])]) } throws: { error in
            "\(error)".contains("does not fit")
        }
    }
}
