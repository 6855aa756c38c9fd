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

    /// Assembles batch `index` (on the calling thread).
    ///
    /// - Precondition: `0 <= index < batchCount`.
    public func batch(at index: Int) -> Batch {
        precondition(index >= 0 && index < batchCount, "BatchLoader: batch \(index) out of 0..<\(batchCount)")
        let start = index * batchSize
        let end = Swift.min(start + batchSize, dataset.count)
        let size = dataset.sampleSize
        let count = end - start
        let images = [Float](unsafeUninitializedCapacity: count * size) { buffer, initialized in
            dataset.images.withUnsafeBufferPointer { source in
                guard let from = source.baseAddress, let to = buffer.baseAddress else { return }
                for (slot, sample) in order[start..<end].enumerated() {
                    copy(sample, from: from, to: to + slot * size)
                }
            }
            initialized = count * size  // count > 0 here, so both buffers are non-empty
        }
        let labels = order[start..<end].map { dataset.labels[$0] }
        return Batch(images: images, labels: labels, count: count, index: index)
    }

    /// Part `part` of `parts` of batch `index`: its images `count * part / parts ..<
    /// count * (part + 1) / parts` in the batch's order, for one rank of a data-parallel job
    /// (the parts of all ranks together are `batch(at: index)`; a part may be empty when the
    /// batch has fewer images than `parts`). `index` in the result is the batch's.
    ///
    /// - Precondition: `0 <= index < batchCount`, `0 <= part < parts`.
    public func batch(at index: Int, part: Int, of parts: Int) -> Batch {
        precondition(index >= 0 && index < batchCount, "BatchLoader: batch \(index) out of 0..<\(batchCount)")
        precondition(parts >= 1 && part >= 0 && part < parts, "BatchLoader: part \(part) out of 0..<\(parts)")
        let first = index * batchSize
        let total = Swift.min(first + batchSize, dataset.count) - first
        let start = first + total * part / parts, end = first + total * (part + 1) / parts
        let size = dataset.sampleSize
        var images = [Float](repeating: 0, count: (end - start) * size)
        dataset.images.withUnsafeBufferPointer { source in
            images.withUnsafeMutableBufferPointer { to in
                for (slot, sample) in order[start..<end].enumerated() {
                    copy(sample, from: source.baseAddress!, to: to.baseAddress! + slot * size)
                }
            }
        }
        return Batch(images: images, labels: order[start..<end].map { dataset.labels[$0] }, count: end - start, index: index)
    }

    /// Writes image `sample` of the data set (at `from`, the data set's pixels) to `target`,
    /// augmented when there is an augmentation: seeded by the image's index, so a rank's part
    /// of a batch holds the very images the whole batch would.
    private func copy(_ sample: Int, from: UnsafePointer<Float>, to target: UnsafeMutablePointer<Float>) {
        let size = dataset.sampleSize
        if augmentation.isIdentity {
            target.update(from: from + sample * size, count: size)
        } else {
            augmentation.apply(source: from + sample * size, target: target, channels: dataset.channels,
                               height: dataset.height, width: dataset.width, seed: seed, epoch: epoch, index: sample)
        }
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

        init(loader: BatchLoader) {
            self.loader = loader
            prefetcher = loader.prefetch > 0 && loader.batchCount > 0 ? Prefetcher(loader: loader) : nil
        }

        /// The next batch, or `nil` at the end of the epoch.
        public mutating func next() -> Batch? {
            if let prefetcher { return prefetcher.next() }
            guard nextIndex < loader.batchCount else { return nil }
            defer { nextIndex += 1 }
            return loader.batch(at: nextIndex)
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

    /// Consumer: waits for a batch; nil once the producer finished and the queue is drained.
    func take() -> BatchLoader.Batch? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty { return nil }
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
                guard queue.put(loader.batch(at: index)) else { return }
            }
            queue.finish()
        }
        thread.name = "ply.BatchLoader.prefetch"
        thread.start()
    }

    func next() -> BatchLoader.Batch? { queue.take() }

    deinit { queue.cancel() }
}
