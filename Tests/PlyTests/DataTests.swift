import Foundation
import Testing
@testable import Ply

// MARK: - Helpers

/// A fresh, empty temporary directory (removed by `cleanup`).
private func makeTemporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("ply-data-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func cleanup(_ directory: String) {
    try? FileManager.default.removeItem(atPath: directory)
}

/// IDX bytes: magic, big-endian sizes, then `data`.
private func idx(magic: UInt32, shape: [Int], data: [UInt8]) -> [UInt8] {
    func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24 & 0xff), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
    return bigEndian(magic) + shape.flatMap { bigEndian(UInt32($0)) } + data
}

private func imagesFile(count: Int, height: Int, width: Int, pixels: [UInt8]) -> [UInt8] {
    idx(magic: 0x0000_0803, shape: [count, height, width], data: pixels)
}

private func labelsFile(_ labels: [UInt8]) -> [UInt8] {
    idx(magic: 0x0000_0801, shape: [labels.count], data: labels)
}

private func writeRaw(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

private func writeGzip(_ bytes: [UInt8], to path: String) throws {
    try Gzip.write(bytes, to: path)
}

/// 3 images of 2×4 with distinctive pixel values, and their labels.
private let samplePixels: [UInt8] = (0..<24).map { UInt8(($0 * 37 + 11) % 256) }
private let sampleLabels: [UInt8] = [7, 0, 9]

/// Runs `body`, requires a `DataError`, and checks its message mentions every fragment.
@discardableResult
private func expectDataError(
    _ fragments: [String],
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> DataError? {
    let error = #expect(throws: DataError.self, sourceLocation: sourceLocation) { try body() }
    if let error {
        for fragment in fragments {
            #expect(error.description.contains(fragment),
                    "message \"\(error.description)\" should mention \"\(fragment)\"",
                    sourceLocation: sourceLocation)
        }
    }
    return error
}

/// Synthetic dataset whose image `i` has every pixel equal to `i` and label `i % 10`.
private func indexDataset(count: Int, channels: Int = 1, height: Int = 2, width: Int = 2) -> ImageDataset {
    let size = channels * height * width
    var images = [Float](repeating: 0, count: count * size)
    for i in 0..<count {
        for j in 0..<size { images[i * size + j] = Float(i) }
    }
    return ImageDataset(count: count, channels: channels, height: height, width: width,
                        images: images, labels: (0..<count).map { Int32($0 % 10) })
}

/// The dataset indices a batch holds (decoded from the pixel values).
private func indices(of batch: BatchLoader.Batch, sampleSize: Int) -> [Int] {
    (0..<batch.count).map { Int(batch.images[$0 * sampleSize]) }
}

// MARK: - IDX / dataset loading

@Suite("DataTests IDX") struct DataTestsIDX {
    @Test func roundTripValuesAndScaling() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let images = dir + "/images", labels = dir + "/labels"
        try writeRaw(imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels), to: images)
        try writeRaw(labelsFile(sampleLabels), to: labels)

        let dataset = try ImageDataset(imagesPath: images, labelsPath: labels)
        #expect(dataset.count == 3)
        #expect(dataset.channels == 1)
        #expect(dataset.height == 2)
        #expect(dataset.width == 4)
        #expect(dataset.labels == [7, 0, 9])
        #expect(dataset.images == samplePixels.map { Float($0) / 255 })
        #expect(dataset.images.allSatisfy { (0...1).contains($0) })

        // Extremes map to exactly 0 and 1.
        try writeRaw(imagesFile(count: 1, height: 1, width: 2, pixels: [0, 255]), to: images)
        try writeRaw(labelsFile([1]), to: labels)
        #expect(try ImageDataset(imagesPath: images, labelsPath: labels).images == [0, 1])
    }

    @Test func generalIDXReader() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let path = dir + "/tensor.idx"
        try writeGzip(idx(magic: 0x0000_0804, shape: [2, 1, 2, 3], data: Array(0..<12)), to: path)
        let array = try IDX.read(path: path)
        #expect(array.shape == [2, 1, 2, 3])
        #expect(array.data == Array(0..<12))

        // Element types other than unsigned byte are rejected.
        try writeRaw(idx(magic: 0x0000_0D01, shape: [1], data: [0, 0, 0, 0]), to: path)
        expectDataError([path, "element type 0xD"]) { _ = try IDX.read(path: path) }
    }

    @Test func gzipEqualsRaw() throws {
        let rawDir = try makeTemporaryDirectory(), gzDir = try makeTemporaryDirectory()
        defer { cleanup(rawDir); cleanup(gzDir) }
        for (prefix, labels) in [("train", sampleLabels), ("t10k", [3, 3, 1] as [UInt8])] {
            let images = imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels.reversed())
            try writeRaw(images, to: "\(rawDir)/\(prefix)-images-idx3-ubyte")
            try writeRaw(labelsFile(labels), to: "\(rawDir)/\(prefix)-labels-idx1-ubyte")
            try writeGzip(images, to: "\(gzDir)/\(prefix)-images-idx3-ubyte.gz")
            try writeGzip(labelsFile(labels), to: "\(gzDir)/\(prefix)-labels-idx1-ubyte.gz")
        }
        // The gzip files really are compressed (magic 1f 8b).
        let head = try #require(FileManager.default.contents(atPath: "\(gzDir)/train-images-idx3-ubyte.gz"))
        #expect(Array(head.prefix(2)) == [0x1f, 0x8b])

        for split in ImageDataset.Split.allCases {
            let raw = try ImageDataset.mnist(directory: rawDir, split: split)
            let gz = try ImageDataset.mnist(directory: gzDir, split: split)
            #expect(raw == gz)
            #expect(raw.count == 3)
        }
        #expect(try ImageDataset.mnist(directory: gzDir, split: .test).labels == [3, 3, 1])
        #expect(try IDX.readBytes(path: "\(gzDir)/train-labels-idx1-ubyte.gz") == labelsFile(sampleLabels))
    }

    @Test func truncatedFile() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let full = imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels)  // 16 + 24 bytes
        let short = Array(full.dropLast(5))
        let raw = dir + "/images-raw", gz = dir + "/images.gz", labels = dir + "/labels"
        try writeRaw(short, to: raw)
        try writeGzip(short, to: gz)
        try writeRaw(labelsFile(sampleLabels), to: labels)

        for path in [raw, gz] {
            let error = expectDataError([path, "truncated", "40 bytes", "35 bytes"]) {
                _ = try ImageDataset(imagesPath: path, labelsPath: labels)
            }
            #expect(error == .truncated(path: path, expectedBytes: 40, actualBytes: 35))
        }

        // Header itself cut short.
        try writeRaw(Array(full.prefix(10)), to: raw)
        expectDataError([raw, "too short", "16", "10"]) { _ = try IDX.readImages(path: raw) }

        // Extra bytes after the declared data are also an error.
        try writeRaw(full + [1, 2], to: raw)
        expectDataError([raw, "trailing", "40 bytes", "42 bytes"]) { _ = try IDX.readImages(path: raw) }

        // A .gz whose compressed stream is cut off.
        let big = imagesFile(count: 100, height: 28, width: 28,
                             pixels: (0..<78_400).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) })
        try writeGzip(big, to: gz)
        let compressed = try #require(FileManager.default.contents(atPath: gz))
        try Data(compressed.prefix(compressed.count / 2)).write(to: URL(fileURLWithPath: gz))
        expectDataError([gz, "gzip"]) { _ = try IDX.readImages(path: gz) }
    }

    @Test func wrongMagic() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let images = dir + "/images", labels = dir + "/labels"
        try writeRaw(labelsFile(sampleLabels), to: images)  // a label file where images belong
        try writeRaw(labelsFile(sampleLabels), to: labels)
        let error = expectDataError([images, "magic", "0x00000803", "0x00000801"]) {
            _ = try ImageDataset(imagesPath: images, labelsPath: labels)
        }
        #expect(error == .badMagic(path: images, expected: 0x803, actual: 0x801))

        // An image file where labels belong.
        let other = dir + "/other"
        try writeRaw(imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels), to: images)
        try writeRaw(imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels), to: other)
        expectDataError([other, "magic", "expected 0x00000801", "got 0x00000803"]) {
            _ = try ImageDataset(imagesPath: images, labelsPath: other)
        }

        // Not IDX at all.
        try writeRaw(Array("hello, world".utf8), to: images)
        expectDataError([images, "magic"]) { _ = try IDX.readImages(path: images) }
    }

    @Test func countMismatch() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let images = dir + "/images", labels = dir + "/labels"
        try writeRaw(imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels), to: images)
        try writeRaw(labelsFile([1, 2]), to: labels)
        let error = expectDataError([images, labels, "3 images", "2 labels", "mismatch"]) {
            _ = try ImageDataset(imagesPath: images, labelsPath: labels)
        }
        #expect(error == .countMismatch(imagesPath: images, imageCount: 3, labelsPath: labels, labelCount: 2))
    }

    @Test func labelOutOfRange() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let images = dir + "/images", labels = dir + "/labels"
        try writeRaw(imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels), to: images)
        try writeGzip(labelsFile([1, 10, 2]), to: labels)
        let error = expectDataError([labels, "label 10", "index 1", "0...9"]) {
            _ = try ImageDataset(imagesPath: images, labelsPath: labels)
        }
        #expect(error == .labelOutOfRange(path: labels, index: 1, label: 10, classCount: 10))

        // classCount is a parameter.
        try writeRaw(labelsFile([0, 3, 2]), to: labels)
        expectDataError([labels, "label 3", "0...2"]) {
            _ = try ImageDataset(imagesPath: images, labelsPath: labels, classCount: 3)
        }
        #expect(try ImageDataset(imagesPath: images, labelsPath: labels, classCount: 4).labels == [0, 3, 2])
    }

    @Test func missingFiles() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let error = expectDataError([dir, "missing", "train-images-idx3-ubyte"]) {
            _ = try ImageDataset.mnist(directory: dir, split: .train)
        }
        if case let .missingFile(directory, candidates) = error {
            #expect(directory == dir)
            #expect(candidates.contains("train-images-idx3-ubyte.gz"))
        } else {
            Issue.record("expected .missingFile, got \(String(describing: error))")
        }

        // Images present, labels missing: the labels file is the one named.
        try writeRaw(imagesFile(count: 3, height: 2, width: 4, pixels: samplePixels), to: dir + "/t10k-images-idx3-ubyte")
        expectDataError([dir, "t10k-labels-idx1-ubyte"]) {
            _ = try ImageDataset.mnist(directory: dir, split: .test)
        }

        // A directory that does not exist at all.
        let nowhere = dir + "/does-not-exist"
        expectDataError([nowhere, "missing"]) { _ = try ImageDataset.mnist(directory: nowhere, split: .test) }

        // A single missing file.
        expectDataError([nowhere + "/x", "not found"]) { _ = try IDX.read(path: nowhere + "/x") }
    }

    @Test func normalisation() throws {
        let dataset = ImageDataset(count: 2, channels: 2, height: 1, width: 2,
                                   images: [0, 1, 2, 3, 4, 5, 6, 7], labels: [0, 1])
        let stats = try dataset.channelStatistics()
        #expect(stats.mean == [2.5, 4.5])
        // Channel 0 holds 0, 1, 4, 5 and channel 1 holds 2, 3, 6, 7: variance 4.25 each.
        #expect(stats.std.allSatisfy { abs($0 - Float(4.25).squareRoot()) < 1e-6 })
        let normal = dataset.normalized(mean: [1, 2], std: [2, 4])
        #expect(normal.images == [-0.5, 0, 0, 0.25, 1.5, 2, 1, 1.25])
        #expect(normal.labels == dataset.labels)
        #expect(dataset.normalized(mean: 1, std: 2).images == [-0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3])
    }

    @Test func realFashionMNISTTestSet() throws {
        let directory = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: directory) else {
            print("note: \(directory) not found; skipping the real Fashion-MNIST check")
            return
        }
        let test = try ImageDataset.mnist(directory: directory, split: .test)
        #expect(test.count == 10_000)
        #expect(test.channels == 1 && test.height == 28 && test.width == 28)
        #expect(test.images.count == 10_000 * 784)
        #expect(test.labels.allSatisfy { (0...9).contains($0) })
        // Fashion-MNIST's test set is balanced: 1000 images per class.
        var perClass = [Int](repeating: 0, count: 10)
        for label in test.labels { perClass[Int(label)] += 1 }
        #expect(perClass == Array(repeating: 1000, count: 10))
        #expect(test.labels.prefix(5) == [9, 2, 1, 1, 6])
        #expect(test.images.min() == 0 && test.images.max() == 1)
        let mean = try test.channelStatistics().mean[0]
        #expect(abs(mean - 0.2868) < 0.01)
    }
}

// MARK: - Batch loading

@Suite("DataTests BatchLoader") struct DataTestsBatchLoader {
    @Test func splitMix64ReferenceValues() {
        // Output of Vigna's splitmix64.c for seed 1234567.
        var generator = SplitMix64(seed: 1_234_567)
        #expect((0..<5).map { _ in generator.next() } == [
            6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
            4_593_380_528_125_082_431, 16_408_922_859_458_223_821,
        ])
        var bounded = SplitMix64(seed: 7)
        #expect((0..<1000).allSatisfy { _ in (0..<13).contains(bounded.next(below: 13)) })
    }

    @Test func batchCountAndLastPartialBatch() {
        let dataset = indexDataset(count: 60_000, height: 1, width: 1)
        let loader = BatchLoader(dataset: dataset, batchSize: 128, seed: 1)
        #expect(loader.batchCount == 469)
        var seen = 0
        var last: BatchLoader.Batch?
        for batch in loader {
            #expect(batch.index == seen)
            #expect(batch.images.count == batch.count)
            #expect(batch.labels.count == batch.count)
            if batch.index < 468 { #expect(batch.count == 128) }
            seen += 1
            last = batch
        }
        #expect(seen == 469)
        #expect(last?.count == 96)

        #expect(BatchLoader(dataset: indexDataset(count: 256), batchSize: 128).batchCount == 2)
        #expect(BatchLoader(dataset: indexDataset(count: 0), batchSize: 128).batchCount == 0)
        #expect(Array(BatchLoader(dataset: indexDataset(count: 0), batchSize: 4)).isEmpty)
        #expect(Array(BatchLoader(dataset: indexDataset(count: 5), batchSize: 10)).map(\.count) == [5])
    }

    @Test func everyIndexExactlyOncePerEpoch() {
        let dataset = indexDataset(count: 1000, channels: 2, height: 3, width: 2)
        for epoch in 0..<3 {
            var seen: [Int] = []
            for batch in BatchLoader(dataset: dataset, batchSize: 64, seed: 9, epoch: epoch) {
                let ids = indices(of: batch, sampleSize: dataset.sampleSize)
                // Whole images travel together with their own label.
                for (slot, id) in ids.enumerated() {
                    let image = batch.images[slot * 12..<(slot + 1) * 12]
                    #expect(image.allSatisfy { $0 == Float(id) })
                    #expect(batch.labels[slot] == Int32(id % 10))
                }
                seen += ids
            }
            #expect(seen.count == 1000)
            #expect(seen.sorted() == Array(0..<1000))
            #expect(seen != Array(0..<1000), "epoch \(epoch) should be shuffled")
        }
        let ordered = BatchLoader(dataset: dataset, batchSize: 64, shuffle: false)
        #expect(ordered.flatMap { indices(of: $0, sampleSize: dataset.sampleSize) } == Array(0..<1000))
    }

    @Test func deterministicShuffling() {
        let dataset = indexDataset(count: 500)
        let a = BatchLoader(dataset: dataset, batchSize: 32, seed: 42, epoch: 3)
        let b = BatchLoader(dataset: dataset, batchSize: 32, seed: 42, epoch: 3)
        #expect(a.order == b.order)
        #expect(Array(a) == Array(b))
        #expect(a.order == BatchLoader.permutation(count: 500, seed: 42, epoch: 3))

        let nextEpoch = a.forEpoch(4)
        #expect(nextEpoch.order != a.order)
        #expect(nextEpoch.order.sorted() == a.order.sorted())
        #expect(nextEpoch.order == BatchLoader(dataset: dataset, batchSize: 32, seed: 42, epoch: 4).order)
        #expect(BatchLoader(dataset: dataset, batchSize: 32, seed: 43, epoch: 3).order != a.order)

        // Epoch orders are all distinct.
        let orders = Set((0..<20).map { BatchLoader.permutation(count: 500, seed: 42, epoch: $0) })
        #expect(orders.count == 20)
    }

    @Test func prefetchYieldsSameBatches() throws {
        let dataset = indexDataset(count: 1003, height: 4, width: 4)
        let plain = Array(BatchLoader(dataset: dataset, batchSize: 50, seed: 5, epoch: 2, prefetch: 0))
        #expect(plain.count == 21)
        for depth in [1, 2, 8, 64] {
            let prefetched = Array(BatchLoader(dataset: dataset, batchSize: 50, seed: 5, epoch: 2, prefetch: depth))
            #expect(prefetched == plain, "prefetch \(depth)")
        }
        // batch(at:) agrees with iteration.
        let loader = BatchLoader(dataset: dataset, batchSize: 50, seed: 5, epoch: 2)
        #expect(try loader.batch(at: 20) == plain[20])
        #expect(plain[20].count == 3)
    }

    @Test func stoppingEarlyReleasesTheProducer() {
        let dataset = indexDataset(count: 10_000)
        let loader = BatchLoader(dataset: dataset, batchSize: 10, seed: 1, prefetch: 2)
        for _ in 0..<50 {
            var taken = 0
            for batch in loader {
                #expect(batch.index == taken)
                taken += 1
                if taken == 3 { break }
            }
            #expect(taken == 3)
        }
        // Iterators are independent: a fresh one starts from batch 0.
        var first = loader.makeIterator()
        var second = loader.makeIterator()
        #expect(first.next()?.index == 0)
        #expect(first.next()?.index == 1)
        #expect(second.next()?.index == 0)
    }

    @Test func consumingOnAnotherTaskWhileProducing() async {
        let dataset = indexDataset(count: 2000)
        let expected = Array(BatchLoader(dataset: dataset, batchSize: 16, seed: 3, prefetch: 0))
        let results = await withTaskGroup(of: [BatchLoader.Batch].self) { group in
            for _ in 0..<4 {
                group.addTask { Array(BatchLoader(dataset: dataset, batchSize: 16, seed: 3, prefetch: 3)) }
            }
            var all: [[BatchLoader.Batch]] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 4)
        #expect(results.allSatisfy { $0 == expected })
    }
}

// MARK: - Fuzzing regressions (Fuzz/FuzzIDX, RELIABILITY.md)

@Suite("DataTests fuzz regressions") struct DataTestsFuzzRegressions {
    /// Found by FuzzIDX: a 64-byte damaged .gz whose trailer claims 0xB2000664 bytes made
    /// the reader reserve 1 GiB before zlib saw the stream (fatal where the allocation
    /// fails). The size hint is now capped at deflate's 1032:1 expansion of the file's
    /// own length, and the file is reported as corrupt.
    @Test func gzipTrailerCannotReserveGigabytes() throws {
        let crash: [UInt8] = [
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02, 0xff, 0x63, 0x60, 0xe0, 0x60, 0x66, 0x60,
            0x60, 0x60, 0x02, 0x62, 0x16, 0x30, 0x56, 0xf5, 0xca, 0x9f, 0xb2, 0xf3, 0x1e, 0xb3, 0x86, 0x6f,
            0xd1, 0xf4, 0x3d, 0x0f, 0xd9, 0x44, 0xfc, 0x4a, 0x67, 0xed, 0x7f, 0xc2, 0xa9, 0x17, 0x5c, 0x31,
            0xf7, 0xd0, 0xe0, 0x60, 0x64, 0x60, 0x60, 0x60, 0x65, 0x60, 0x64, 0xe2, 0x64, 0x06, 0x00, 0xb2,
        ]
        let dir = try makeTemporaryDirectory()
        defer { cleanup(dir) }
        let path = "\(dir)/crash-idx1-ubyte.gz"
        try writeRaw(crash, to: path)
        #expect(IDX.gzipSizeHint(path: path) <= crash.count * 1032)
        expectDataError([path, "corrupt gzip"]) { _ = try IDX.read(path: path) }
    }
}
