import CPlyAPI
import Foundation
import Ply

/// A `ply_optimizer`.
final class OptimizerHandle: Handle {
    override class var cName: String { "ply_optimizer" }
    let optimizer: Optimizer
    init(_ optimizer: Optimizer) { self.optimizer = optimizer }
}

@_cdecl("ply_optimizer_sgd")
public func capi_optimizer_sgd(_ learningRate: Double, _ momentum: Double, _ weightDecay: Double, _ nesterov: Int32,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let out = try checkOut(out, "out")
        let sgd = try SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov != 0)
        out.pointee = retain(OptimizerHandle(sgd))
    }
}

@_cdecl("ply_optimizer_adam")
public func capi_optimizer_adam(_ learningRate: Double, _ beta1: Double, _ beta2: Double, _ epsilon: Double,
                                _ weightDecay: Double, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let out = try checkOut(out, "out")
        let adam = try Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
        out.pointee = retain(OptimizerHandle(adam))
    }
}

@_cdecl("ply_optimizer_set_learning_rate")
public func capi_optimizer_set_learning_rate(_ optimizer: OpaquePointer?, _ learningRate: Double) -> Int32 {
    boundary {
        let o = try object(optimizer, OptimizerHandle.self, "optimizer")
        guard learningRate >= 0, learningRate.isFinite else {
            throw CAPIError(Status.invalidArgument, "learning rate \(learningRate) must be finite and >= 0")
        }
        o.optimizer.learningRate = learningRate
    }
}

@_cdecl("ply_optimizer_destroy")
public func capi_optimizer_destroy(_ optimizer: OpaquePointer?) { release(optimizer) }

@_cdecl("ply_model_train_step")
public func capi_model_train_step(_ model: OpaquePointer?, _ optimizer: OpaquePointer?, _ images: UnsafePointer<Float>?,
                                  _ labels: UnsafePointer<Int32>?, _ batch: Int64, _ lossOut: UnsafeMutablePointer<Float>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let o = try object(optimizer, OptimizerHandle.self, "optimizer")
        guard batch >= 1 else { throw CAPIError(Status.invalidArgument, "batch is \(batch); it must be >= 1") }
        guard let images else { throw CAPIError(Status.invalidArgument, "images is NULL") }
        guard let labels else { throw CAPIError(Status.invalidArgument, "labels is NULL") }
        let dims = [Int(batch), m.inChannels, m.imageSize, m.imageSize]
        let count = try elementCount(dims, "batch shape")
        let out = try m.outputShape(for: dims)
        guard out.rank == 2, out.dims[0] == Int(batch) else {
            throw CAPIError(Status.shape, "train_step needs an output of [batch, classes]; the model gives \(out)")
        }
        let classes = out.dims[1]
        var targets = [Float](repeating: 0, count: Int(batch))
        for i in 0..<Int(batch) {
            guard labels[i] >= 0, Int(labels[i]) < classes else {
                throw CAPIError(Status.invalidArgument, "label \(i) is \(labels[i]); expected a class in 0..<\(classes)")
            }
            targets[i] = Float(labels[i])
        }
        if !m.model.isTraining { m.model.isTraining = true }
        let loss = try m.loss ?? Layer("cross_entropy", [("reduction", .string("mean"))], runtime: m.model.runtime)
        m.loss = loss
        let logits = try m.model.forward(UnsafeBufferPointer(start: images, count: count), shape: Shape(dims))
        let inputs = [try Tensor(shape: out, data: Array(logits)), try Tensor(shape: Shape([Int(batch)]), data: targets)]
        let value = try loss.forward(inputs)
        let cost = value.data.first ?? .nan
        guard cost.isFinite else {
            throw CAPIError(Status.numeric, "the loss is \(cost); the step was not taken (try a smaller learning rate)")
        }
        let grads = try loss.backward(inputs: inputs, output: value, gradOutput: Tensor(shape: value.shape, repeating: 1),
                                      wanted: [true, false])
        guard let dLogits = grads.first ?? nil else { throw CAPIError(Status.internal, "cross_entropy gave no gradient") }
        try m.model.zeroGradients()
        try dLogits.data.withUnsafeBufferPointer { _ = try m.model.backward($0) }
        try o.optimizer.step(m.model.namedParameters())
        lossOut?.pointee = cost
    }
}

/// A `ply_communicator`.
final class CommunicatorHandle: Handle {
    override class var cName: String { "ply_communicator" }
    let communicator: Communicator
    init(_ communicator: Communicator) { self.communicator = communicator }
}

@_cdecl("ply_communicator_open")
public func capi_communicator_open(_ library: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let out = try checkOut(out, "out")
        let path = library.map { String(cString: $0) }
        // DistributedError maps to PLY_ERR_NOT_FOUND (missing) or PLY_ERR_ABI (refused): result(for:).
        out.pointee = retain(CommunicatorHandle(try Communicator.load(path: path)))
    }
}

@_cdecl("ply_communicator_rank")
public func capi_communicator_rank(_ communicator: OpaquePointer?) -> Int32 {
    (try? object(communicator, CommunicatorHandle.self, "communicator")).map { Int32($0.communicator.rank) } ?? -1
}

@_cdecl("ply_communicator_size")
public func capi_communicator_size(_ communicator: OpaquePointer?) -> Int32 {
    (try? object(communicator, CommunicatorHandle.self, "communicator")).map { Int32($0.communicator.size) } ?? -1
}

@_cdecl("ply_communicator_close")
public func capi_communicator_close(_ communicator: OpaquePointer?) {
    guard let c = try? object(communicator, CommunicatorHandle.self, "communicator") else { return }
    c.communicator.finalize()
    release(communicator)
}

/// Whether the C progress callback asked to stop.
final class StopFlag { var value = false }

@_cdecl("ply_fit")
public func capi_fit(_ model: OpaquePointer?, _ train: OpaquePointer?, _ options: UnsafePointer<ply_fit_options>?,
                     _ progress: ply_progress_fn?, _ userData: UnsafeMutableRawPointer?,
                     _ result: UnsafeMutablePointer<ply_fit_result>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let d = try object(train, DatasetHandle.self, "train")
        try d.requireLabels("the training set")
        var c = TrainingConfiguration()
        c.trainingAccuracy = true
        var initialization: Int32 = Int32(PLY_INIT_NORMAL.rawValue), std = 0.01
        var optimizerKind = Int32(PLY_OPTIMIZER_SGD.rawValue), momentum = 0.0, weightDecay = 0.0, nesterov = false
        var communicator: Communicator?
        if let p = try checkStruct(options, "options") {
            c.epochs = Int(field(p, \.epochs, 10))
            c.batchSize = Int(field(p, \.batch_size, 128))
            optimizerKind = field(p, \.optimizer, optimizerKind)
            nesterov = field(p, \.nesterov, 0) != 0
            c.learningRate = field(p, \.learning_rate, 0.05)
            momentum = field(p, \.momentum, 0)
            weightDecay = field(p, \.weight_decay, 0)
            initialization = field(p, \.initialization, initialization)
            c.trainingAccuracy = field(p, \.training_accuracy, 1) != 0
            std = field(p, \.init_std, 0.01)
            c.seed = field(p, \.seed, 1)
            c.logEvery = Int(field(p, \.log_every, 50))
            c.outputDirectory = field(p, \.output_directory, nil).map { String(cString: $0) }
            if let handle = field(p, \.communicator, nil) {
                communicator = try object(handle, CommunicatorHandle.self, "options->communicator").communicator
            }
            let padding = field(p, \.random_crop_padding, 0)
            guard (0...Int32(Augmentation.maxPadding)).contains(padding) else {
                throw CAPIError(Status.invalidArgument, "options->random_crop_padding is \(padding); 0...\(Augmentation.maxPadding)")
            }
            c.augmentation = Augmentation(cropPadding: Int(padding), horizontalFlip: field(p, \.horizontal_flip, 0) != 0,
                                          fill: d.normalization.map { n in zip(n.mean, n.std).map { -$0 / $1 } } ?? [])
            c.syncBatchNorm = field(p, \.sync_batchnorm, 0) != 0
            if c.syncBatchNorm && communicator == nil {
                throw CAPIError(Status.invalidArgument,
                                "options->sync_batchnorm is 1 without options->communicator; it synchronises batch norm over the ranks of a data-parallel job")
            }
        }
        guard c.epochs >= 1 else { throw CAPIError(Status.invalidArgument, "options->epochs is \(c.epochs); it must be >= 1") }
        guard c.batchSize >= 1 else { throw CAPIError(Status.invalidArgument, "options->batch_size is \(c.batchSize); it must be >= 1") }
        guard c.learningRate.isFinite, c.learningRate >= 0 else {
            throw CAPIError(Status.invalidArgument, "options->learning_rate is \(c.learningRate); it must be finite and >= 0")
        }
        switch optimizerKind {
        case Int32(PLY_OPTIMIZER_SGD.rawValue): c.optimizer = .sgd(momentum: momentum, weightDecay: weightDecay, nesterov: nesterov)
        case Int32(PLY_OPTIMIZER_ADAM.rawValue): c.optimizer = .adam(weightDecay: weightDecay)
        default: throw CAPIError(Status.invalidArgument, "options->optimizer is \(optimizerKind); use PLY_OPTIMIZER_SGD or PLY_OPTIMIZER_ADAM")
        }
        switch initialization {
        case Int32(PLY_INIT_NORMAL.rawValue): c.initialization = .normal(std: std)
        case Int32(PLY_INIT_KEEP.rawValue): c.initialization = .pytorchDefault
        default: throw CAPIError(Status.invalidArgument, "options->initialization is \(initialization); use PLY_INIT_NORMAL or PLY_INIT_KEEP")
        }
        // Fail before any step when the data does not fit the model.
        let data = d.dataset
        let out = try m.outputShape(for: [1, data.channels, data.height, data.width])
        guard out.rank == 2 else { throw CAPIError(Status.shape, "training needs an output of [batch, classes]; the model gives \(out)") }
        let classes = out.dims[1]
        if let bad = data.labels.firstIndex(where: { Int($0) >= classes }) {
            throw CAPIError(Status.invalidArgument, "label of image \(bad) is \(data.labels[bad]); the model has \(classes) classes")
        }
        if let result { _ = try checkStruct(UnsafePointer(result), "result") }

        let trainer = try Trainer(model: m.model, configuration: c, classes: classes, communicator: communicator)
        let stop = StopFlag()
        var completed = 0, lastLoss = Double.nan, lastAccuracy = -1.0
        let started = Date()
        var report = ply_progress()
        report.struct_size = UInt32(MemoryLayout<ply_progress>.size)
        report.epochs = Int32(c.epochs)
        var batches: Int32 = 0
        var summary: TrainingSummary?
        do {
            summary = try trainer.run(train: data, test: nil, shouldStop: { stop.value }) { event in
                switch event {
                case let .batch(epoch, batch, count, cost, rate, log):
                    batches = Int32(count)
                    guard let progress else { return }
                    report.kind = Int32(PLY_PROGRESS_BATCH.rawValue)
                    report.epoch = Int32(epoch)
                    report.batch = Int32(batch)
                    report.batches = Int32(count)
                    report.loss = Double(cost)
                    report.images_per_second = rate
                    report.training_accuracy = -1
                    report.elapsed_seconds = Date().timeIntervalSince(started)
                    report.log = log ? 1 : 0
                    if progress(&report, userData) != 0 { stop.value = true }
                case let .epoch(epoch, accuracy, loss, elapsed):
                    completed = epoch
                    lastLoss = loss
                    lastAccuracy = accuracy ?? -1
                    guard let progress else { return }
                    report.kind = Int32(PLY_PROGRESS_EPOCH.rawValue)
                    report.epoch = Int32(epoch)
                    report.batch = batches
                    report.batches = batches
                    report.loss = loss
                    report.images_per_second = 0
                    report.training_accuracy = accuracy ?? -1
                    report.elapsed_seconds = elapsed
                    report.log = 0
                    if progress(&report, userData) != 0 { stop.value = true }
                case .checkpoint, .resumed, .validation:
                    break
                }
            }
        } catch TrainingError.interrupted {
            summary = nil
        }
        if let result {
            setField(result, \.stopped, summary == nil ? 1 : 0)
            setField(result, \.epochs_completed, Int32(completed))
            setField(result, \.loss, lastLoss)
            setField(result, \.training_accuracy, lastAccuracy)
            setField(result, \.seconds, summary?.seconds ?? Date().timeIntervalSince(started))
            setField(result, \.images_per_second, summary?.imagesPerSecond ?? 0)
        }
    }
}

@_cdecl("ply_evaluate")
public func capi_evaluate(_ model: OpaquePointer?, _ dataset: OpaquePointer?, _ accuracy: UnsafeMutablePointer<Double>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let d = try object(dataset, DatasetHandle.self, "dataset")
        let out = try checkOut(accuracy, "accuracy_out")
        try d.requireLabels("the data set")
        let data = d.dataset
        let wasTraining = m.model.isTraining
        m.model.isTraining = false
        defer { m.model.isTraining = wasTraining }
        var correct = 0
        var batches = BatchLoader(dataset: data, batchSize: 128, shuffle: false, prefetch: 0).makeIterator()
        while let batch = try batches.nextBatch() {
            let dims = [batch.count, data.channels, data.height, data.width]
            let shape = try m.outputShape(for: dims)
            guard shape.rank == 2 else { throw CAPIError(Status.shape, "evaluation needs an output of [batch, classes]; the model gives \(shape)") }
            let logits = try batch.images.withUnsafeBufferPointer { try m.model.forward($0, shape: Shape(dims)) }
            let c = shape.dims[1]
            for i in 0..<batch.count {
                var best = 0
                for k in 1..<max(c, 1) where logits[i * c + k] > logits[i * c + best] { best = k }
                if best == Int(batch.labels[i]) { correct += 1 }
            }
        }
        out.pointee = data.count == 0 ? 0 : 100 * Double(correct) / Double(data.count)
    }
}
