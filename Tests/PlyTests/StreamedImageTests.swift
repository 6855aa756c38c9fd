import Foundation
import Testing
@testable import Ply

/// Image folders streamed from their files (`DataOptions.cache` `.off`, or `.auto` over the
/// budget) against the same folders cached: the same floats, statistics, batches, skipped
/// images and trained weights, bit for bit; files damaged after loading named when a batch
/// reaches them; the option from the command line, a model file and C (capi_images.c).
@Suite struct StreamedImageTests {
    static func load(_ root: String, _ cache: DecodedCache, budget: Int? = nil, skip: Bool = false) throws -> LoadedData {
        var options = DataOptions()
        options.transforms = ImageTransforms(resize: 9, centerCrop: 8)
        options.normalization = .computed
        options.cache = cache
        options.cacheBudget = budget
        options.skipBadImages = skip
        options.threads = 2
        return try DataDirectory(path: root).load(options: options)
    }

    static func augmentation(_ data: LoadedData) -> Augmentation {
        let fill = data.normalization.map { n in zip(n.mean, n.std).map { -$0 / $1 } } ?? []
        return Augmentation(cropPadding: 2, horizontalFlip: true, fill: fill)
    }

    @Test func streamedSetIsTheCachedSetBitForBit() throws {
        let root = try ImageDataTests.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cached = try Self.load(root, .on), streamed = try Self.load(root, .off)
        let (ct, st) = (try #require(cached.train), try #require(streamed.train))
        #expect(ct.stream == nil && st.stream != nil && streamed.test?.stream != nil)
        #expect([st.count, st.channels, st.height, st.width] as [Int] == [ct.count, ct.channels, ct.height, ct.width] as [Int])
        #expect(st.labels == ct.labels && st.classNames == ct.classNames)
        // The computed normalisation, summed in the same order: the same Floats.
        let (cn, sn) = (try #require(cached.normalization), try #require(streamed.normalization))
        #expect(cn.mean.map(\.bitPattern) == sn.mean.map(\.bitPattern) && cn.std.map(\.bitPattern) == sn.std.map(\.bitPattern))
        #expect(st.images.map(\.bitPattern) == ct.images.map(\.bitPattern))
        #expect(streamed.test?.images.map(\.bitPattern) == cached.test?.images.map(\.bitPattern))
        #expect(st.fingerprint == ct.fingerprint)
        #expect(st.slice(2..<5).images == ct.slice(2..<5).images && st.prefix(3).images == ct.prefix(3).images)
        // Augmented, shuffled, prefetched batches, and a rank's part of one.
        for epoch in 0..<2 {
            let a = BatchLoader(dataset: ct, batchSize: 3, seed: 7, epoch: epoch, prefetch: 2, augmentation: Self.augmentation(cached))
            let b = BatchLoader(dataset: st, batchSize: 3, seed: 7, epoch: epoch, prefetch: 2, augmentation: Self.augmentation(streamed))
            #expect(Array(a) == Array(b), "epoch \(epoch)")
            #expect(try a.batch(at: 1, part: 1, of: 2) == b.batch(at: 1, part: 1, of: 2))
        }
        // .auto: cached within the budget, streamed past it (the training set is 8 x 3x8x8 floats).
        #expect(try Self.load(root, .auto).train?.stream == nil)
        #expect(try Self.load(root, .auto, budget: 8 * 3 * 64 * 4).train?.stream == nil)
        let over = try Self.load(root, .auto, budget: 8 * 3 * 64 * 4 - 1)
        #expect(over.train?.stream != nil && over.test?.stream == nil)  // the test set (4 images) still fits
        #expect(over.train?.images == ct.images)
    }

    /// A model for 3x8x8 images and 2 classes.
    static func trainer(seed: UInt64, augmentation: Augmentation = .none) throws -> Trainer {
        var options = Runtime.Options()
        options.seed = seed
        options.useEnvironment = false
        let model = try Zoo.model(text: """
            model: tiny
            layers:
              - {type: conv2d, in_channels: 3, out_channels: 2, kernel_size: 3}
              - {type: relu}
              - {type: flatten}
              - {type: linear, in_features: 72, out_features: 2}
            """, runtime: try Runtime(options: options), inChannels: 3, imageSize: 8)
        var c = TrainerTests.quickConfiguration(epochs: 2, seed: seed)
        c.batchSize = 3
        c.augmentation = augmentation
        return try Trainer(model: model, configuration: c, classes: 2)
    }

    @Test func trainingIsBitIdenticalStreamedOrCached() throws {
        let root = try ImageDataTests.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var weights: [[String: [UInt32]]] = []
        var losses: [[UInt64]] = []
        for cache in [DecodedCache.on, .off] {
            let data = try Self.load(root, cache)
            let trainer = try Self.trainer(seed: 3, augmentation: Self.augmentation(data))
            let summary = try trainer.run(train: try #require(data.train), test: data.test)
            weights.append(try TrainerTests.weightBits(trainer.model))
            losses.append(TrainerTests.bits(summary.epochLosses + summary.validationLosses))
        }
        #expect(weights[0] == weights[1], "streamed training ended with other weights")
        #expect(losses[0] == losses[1])
    }

    @Test func badImagesFailOrAreSkippedAlikeAndLaterDamageIsNamed() throws {
        let root = try ImageDataTests.makeFolder(corrupt: true, sameSize: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (cache, budget) in [(DecodedCache.on, nil), (.off, nil), (.auto, 1)] {
            let error = #expect(throws: DataError.self) { try Self.load(root, cache, budget: budget) }
            #expect(error?.description.contains("train/a_cat/broken.jpg") == true, "\(cache): \(String(describing: error))")
            let data = try Self.load(root, cache, budget: budget, skip: true)
            #expect(data.skipped.count == 1 && data.train?.count == 8, "\(cache)")
        }
        // A file damaged after the set was loaded: the batch that reaches it fails, naming it.
        let data = try Self.load(root, .off, skip: true)
        let train = try #require(data.train)
        let victim = try #require(train.stream?.items[5].path)
        try Data("damaged".utf8).write(to: URL(fileURLWithPath: victim))
        var batches = BatchLoader(dataset: train, batchSize: 4, shuffle: false, prefetch: 1).makeIterator()
        #expect(try batches.nextBatch()?.count == 4)
        let error = #expect(throws: DataError.self) { _ = try batches.nextBatch() }
        #expect(error?.description.contains(victim) == true, "\(String(describing: error))")
        #expect(batches.next() == nil && batches.error != nil)
        let trainer = try Self.trainer(seed: 1)
        let trainingError = #expect(throws: DataError.self) { _ = try trainer.run(train: train, test: nil) }
        #expect(trainingError?.description.contains(victim) == true)
    }

    @Test func cacheOptionFromTheCommandLineAndAModelFile() throws {
        let root = try ImageDataTests.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var checkpoints: [Data] = []
        for mode in ["on", "off"] {
            let out = root + "/run-\(mode)"
            let r = try ReliabilityTests.ply(["train", "--data", root, "--epochs", "1", "--batch-size", "4", "--output", out,
                                              "--resize", "9", "--center-crop", "8", "--normalize", "--random-crop", "1",
                                              "--horizontal-flip", "--cache-decoded", mode])
            #expect(r.status == 0 && r.stdout.contains("Test accuracy"), "\(mode): \(r.stderr)")
            checkpoints.append(try Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint.safetensors")))
        }
        #expect(checkpoints[0] == checkpoints[1], "--cache-decoded off trained other weights")
        try ReliabilityTests.expectFailure(["train", "--data", root, "--epochs", "1", "--output", root + "/bad",
                                            "--cache-decoded", "maybe"], mentions: ["--cache-decoded", "auto, on or off", "maybe"])
        for (text, expected) in [("off", DecodedCache.off), ("auto", .auto), ("true", .on)] {
            let file = try ModelFile(text: "layers:\n  - {type: flatten}\ntransforms: {cache_decoded: \(text)}\n")
            #expect(file.transforms?.cacheDecoded == expected, "\(text)")
        }
        let error = #expect(throws: ModelFileError.self) {
            try ModelFile(text: "layers:\n  - {type: flatten}\ntransforms:\n  cache_decoded: sometimes\n")
        }
        #expect(error?.description.contains("transforms.cache_decoded") == true, "\(String(describing: error))")
    }
}
