import Foundation


/// Splits an `ImageDataset` into mini-batches, optionally shuffled, and
/// optionally assembles upcoming batches on a background thread.
///
/// Iterating yields `batchCount` batches in order `index` 0, 1, …; the last one
/// is partial when `batchSize` does not divide the dataset (60 000 / 128 gives
/// 469 batches, the last holding 96 images).
///
/// Shuffling is deterministic: the order is a Fisher–Yates shuffle driven by
/// `SplitMix64` seeded from `(seed, epoch)`, so the same seed and epoch always
/// give the same order, and each epoch gets a different one:
///
/// ```swift
/// for epoch in 0..<10 {
///     for batch in BatchLoader(dataset: train, batchSize: 128, seed: 42, epoch: epoch) {
///         train(batch.images, batch.labels, batch.count)
///     }
/// }
/// ```
///
/// With an `augmentation`, every image is randomly cropped and flipped as the batch is
/// assembled (on the prefetch thread), seeded by `(seed, epoch, dataset index)`: the same
/// images whatever the batch size or the point a run resumed from.
///
/// A streamed data set (`ImageDataset.stream`) is decoded here, batch by batch, on the
/// stream's threads: with prefetching, up to `prefetch` batches ahead of training, so memory
/// holds those batches and no more. The batches are the same as from the cached set.
///
/// With `prefetch > 0` a producer thread builds up to `prefetch` batches
/// ahead of the consumer, so the next batch is usually ready the moment it is
/// asked for. Prefetching never changes the batches produced. Stopping
/// iteration early (or dropping the iterator) stops the producer.
public struct BatchLoader: Sequence, Sendable {
    /// One mini-batch.
    public struct Batch: Sendable, Equatable {
        /// `count * channels * height * width` pixels in N×C×H×W order.
        public let images: [Float]
        /// `count` class indices.
        public let labels: [Int32]
        /// Number of images in this batch (`batchSize`, or fewer for the last one).
        public let count: Int
        /// Position of this batch in the epoch, from 0.
        public let index: Int
    }

    /// The data being batched.
    public let dataset: ImageDataset
    /// Maximum number of images per batch.
    public let batchSize: Int
    /// Whether the order is shuffled (otherwise dataset order).
    public let shuffle: Bool
    /// Seed of the shuffle.
    public let seed: UInt64
    /// Epoch index mixed into the shuffle seed.
    public let epoch: Int
    /// Number of batches the background thread may prepare ahead; 0 disables it.
    public let prefetch: Int
    /// Dataset indices in the order they are served this epoch.
    public let order: [Int]
    /// Random crop and flip applied to each image (`.none`: images as stored).
    public let augmentation: Augmentation

    /// Creates a loader for one epoch.
    ///
    /// - Parameters:
    ///   - dataset: the images and labels.
    ///   - batchSize: images per batch (the last batch may be smaller).
    ///   - shuffle: shuffle with `seed` and `epoch`; otherwise keep dataset order.
    ///   - seed: shuffle seed.
    ///   - epoch: epoch index; pass the current epoch to reshuffle each epoch.
    ///   - prefetch: batches prepared ahead on a background thread (0 = none).
    ///   - augmentation: random crop and flip per image, seeded by `seed`, `epoch` and the
    ///     image's index (`.none`: none).
    /// - Precondition: `batchSize > 0`, `prefetch >= 0`.
    public init(dataset: ImageDataset, batchSize: Int, shuffle: Bool = true,
                seed: UInt64 = 0, epoch: Int = 0, prefetch: Int = 2, augmentation: Augmentation = .none) {
        precondition(batchSize > 0, "BatchLoader: batchSize must be positive, got \(batchSize)")
        precondition(prefetch >= 0, "BatchLoader: prefetch must not be negative, got \(prefetch)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.prefetch = prefetch
        self.augmentation = augmentation
        self.order = shuffle
            ? Self.permutation(count: dataset.count, seed: seed, epoch: epoch)
            : Array(0..<dataset.count)
    }

    /// The same loader for another epoch (a new deterministic order when shuffling).
    public func forEpoch(_ epoch: Int) -> BatchLoader {
        BatchLoader(dataset: dataset, batchSize: batchSize, shuffle: shuffle,
                    seed: seed, epoch: epoch, prefetch: prefetch, augmentation: augmentation)
    }

    /// Number of batches per epoch, including a final partial batch.
    public var batchCount: Int { (dataset.count + batchSize - 1) / batchSize }

    /// A Fisher–Yates (Durstenfeld) shuffle of `0..<count`, driven by
    /// `SplitMix64(seed: mix(seed ^ mix(epoch)))`: for `i` from `count - 1`
    /// down to 1, swap element `i` with element `next(below: i + 1)`.
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var generator = SplitMix64(seed: SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(bitPattern: Int64(epoch)))))
        var order = Array(0..<count)
        var i = count - 1
        while i > 0 {
            order.swapAt(i, generator.next(below: i + 1))
            i -= 1
        }
        return order
    }

    /// Assembles batch `index` (on the calling thread; a streamed set's images are decoded on
    /// its `ImageStream.threads` threads).
    ///
    /// - Precondition: `0 <= index < batchCount`.
    /// - Throws: a streamed image's `DataError` (its file changed since the set was loaded);
    ///   never for a set in memory.
    public func batch(at index: Int) throws(DataError) -> Batch {
        precondition(index >= 0 && index < batchCount, "BatchLoader: batch \(index) out of 0..<\(batchCount)")
        let start = index * batchSize
        let end = Swift.min(start + batchSize, dataset.count)
        return try assemble(Array(order[start..<end]), index: index)
    }

    /// Part `part` of `parts` of batch `index`: its images `count * part / parts ..<
    /// count * (part + 1) / parts` in the batch's order, for one rank of a data-parallel job
    /// (the parts of all ranks together are `batch(at: index)`; a part may be empty when the
    /// batch has fewer images than `parts`). `index` in the result is the batch's.
    ///
    /// - Precondition: `0 <= index < batchCount`, `0 <= part < parts`.
    /// - Throws: as `batch(at:)`.
    public func batch(at index: Int, part: Int, of parts: Int) throws(DataError) -> Batch {
        precondition(index >= 0 && index < batchCount, "BatchLoader: batch \(index) out of 0..<\(batchCount)")
        precondition(parts >= 1 && part >= 0 && part < parts, "BatchLoader: part \(part) out of 0..<\(parts)")
        let first = index * batchSize
        let total = Swift.min(first + batchSize, dataset.count) - first
        let start = first + total * part / parts, end = first + total * (part + 1) / parts
        return try assemble(Array(order[start..<end]), index: index)
    }

    /// The images `samples` of the data set, in that order, augmented when there is an
    /// augmentation: seeded by each image's index, so a rank's part of a batch holds the very
    /// images the whole batch would, and a streamed set the very images a cached one would.
    private func assemble(_ samples: [Int], index: Int) throws(DataError) -> Batch {
        let size = dataset.sampleSize
        let count = samples.count
        let labels = samples.map { dataset.labels[$0] }
        guard count > 0 else { return Batch(images: [], labels: [], count: 0, index: index) }
        var images = [Float](repeating: 0, count: count * size)
        if augmentation.isIdentity {
            try images.withUnsafeMutableBufferPointer { (b) throws(DataError) in try dataset.copyImages(samples, into: b.baseAddress!) }
            return Batch(images: images, labels: labels, count: count, index: index)
        }
        func augment(_ source: UnsafePointer<Float>, at position: (_ slot: Int, _ sample: Int) -> Int) {
            images.withUnsafeMutableBufferPointer { target in
                for (slot, sample) in samples.enumerated() {
                    augmentation.apply(source: source + position(slot, sample), target: target.baseAddress! + slot * size,
                                       channels: dataset.channels, height: dataset.height, width: dataset.width,
                                       seed: seed, epoch: epoch, index: sample)
                }
            }
        }
        if case let .memory(pixels) = dataset.storage {
            pixels.withUnsafeBufferPointer { augment($0.baseAddress!, at: { _, sample in sample * size }) }
        } else {
            // A streamed set: decoded first, then cropped and flipped as the cached images are.
            var plain = [Float](repeating: 0, count: count * size)
            try plain.withUnsafeMutableBufferPointer { (b) throws(DataError) in try dataset.copyImages(samples, into: b.baseAddress!) }
            plain.withUnsafeBufferPointer { augment($0.baseAddress!, at: { slot, _ in slot * size }) }
        }
        return Batch(images: images, labels: labels, count: count, index: index)
    }

    /// Returns an iterator over this epoch's batches.
    public func makeIterator() -> Iterator { Iterator(loader: self) }

    /// Iterator over the batches of one epoch.
    ///
    /// Not `Sendable`: consume it on one thread. With prefetching it owns a
    /// producer thread, which ends when the epoch is done or the iterator is
    /// discarded.
    public struct Iterator: IteratorProtocol {
        private let loader: BatchLoader
        private var nextIndex = 0
        private let prefetcher: Prefetcher?
        /// Why iteration ended early: a streamed image that could not be decoded any more
        /// (`next()` then returns nil; `nextBatch()` throws it).
        public private(set) var error: DataError?

        init(loader: BatchLoader) {
            self.loader = loader
            prefetcher = loader.prefetch > 0 && loader.batchCount > 0 ? Prefetcher(loader: loader) : nil
        }

        /// The next batch, or `nil` at the end of the epoch — or early, with `error` set, when a
        /// streamed image could not be decoded (`nextBatch()` throws that instead).
        public mutating func next() -> Batch? {
            do { return try nextBatch() } catch { return nil }
        }

        /// The next batch, or `nil` at the end of the epoch.
        ///
        /// - Throws: the `DataError` of a streamed image that could not be decoded (then again
        ///   at every later call).
        public mutating func nextBatch() throws(DataError) -> Batch? {
            if let error { throw error }
            do throws(DataError) {
                if let prefetcher { return try prefetcher.next() }
                guard nextIndex < loader.batchCount else { return nil }
                defer { nextIndex += 1 }
                return try loader.batch(at: nextIndex)
            } catch {
                self.error = error
                throw error
            }
        }
    }
}

/// Bounded FIFO shared by one producer thread and one consumer.
///
/// `@unchecked Sendable` is sound because every stored `var` is read and
/// written only while holding `condition`'s lock; the `let`s are immutable.
private final class BatchQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    private var items: [BatchLoader.Batch] = []
    private var finished = false
    private var cancelled = false
    private var failure: DataError?

    init(capacity: Int) { self.capacity = capacity }

    /// Producer: waits for room, then enqueues. Returns false if cancelled.
    func put(_ batch: BatchLoader.Batch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        items.append(batch)
        condition.broadcast()
        return true
    }

    /// Producer: no more batches will come.
    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Producer: stopped by `error`, which the consumer gets after the batches before it.
    func fail(_ error: DataError) {
        condition.lock()
        failure = error
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Consumer: waits for a batch; nil once the producer finished and the queue is drained,
    /// or the producer's error then.
    func take() throws(DataError) -> BatchLoader.Batch? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty {
            if let failure { throw failure }
            return nil
        }
        let batch = items.removeFirst()
        condition.broadcast()
        return batch
    }

    /// Consumer gave up: wake and stop the producer.
    func cancel() {
        condition.lock()
        cancelled = true
        items.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}

/// Owns the producer thread for one iterator; cancels it when released.
private final class Prefetcher {
    private let queue: BatchQueue

    init(loader: BatchLoader) {
        let queue = BatchQueue(capacity: loader.prefetch)
        self.queue = queue
        let thread = Thread {
            for index in 0..<loader.batchCount {
                do throws(DataError) {
                    guard queue.put(try loader.batch(at: index)) else { return }
                } catch {
                    queue.fail(error)
                    return
                }
            }
            queue.finish()
        }
        thread.name = "ply.BatchLoader.prefetch"
        thread.start()
    }

    func next() throws(DataError) -> BatchLoader.Batch? { try queue.take() }

    deinit { queue.cancel() }
}
