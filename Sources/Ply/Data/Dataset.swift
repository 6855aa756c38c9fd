#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A labelled set of images as `Float`s in N×C×H×W order: held in memory, or — for an image
/// folder too large to cache (`DataOptions.cache`) — decoded batch by batch from its files
/// (`stream`), the same floats either way.
public struct ImageDataset: Sendable, Equatable {
    /// Which half of a dataset to load.
    public enum Split: String, Sendable, CaseIterable {
        /// The training set (`train-*` files; 60 000 items for MNIST).
        case train
        /// The test set (`t10k-*` files; 10 000 items for MNIST).
        case test

        /// File-name prefix used by the MNIST distribution.
        public var filePrefix: String { self == .train ? "train" : "t10k" }
    }

    /// Number of images.
    public let count: Int
    /// Channels per image (1 for MNIST).
    public let channels: Int
    /// Image height in pixels.
    public let height: Int
    /// Image width in pixels.
    public let width: Int
    /// Where the pixels are.
    enum Storage: Sendable, Equatable {
        /// In memory, `count * channels * height * width` values.
        case memory([Float])
        /// Decoded from the files when asked for.
        case stream(ImageStream)
    }
    let storage: Storage

    /// Pixels, `count * channels * height * width` values in N×C×H×W order.
    /// Loaded data is scaled to [0, 1] (byte / 255, like torchvision's `ToTensor`).
    ///
    /// A streamed set (`stream` not nil) decodes every image here, into memory it was not
    /// cached in because it is large: read its images with `BatchLoader` or
    /// `copyImages(_:into:)` instead, which also report a file that became unreadable (here
    /// that stops the program).
    public var images: [Float] {
        switch storage {
        case let .memory(pixels): return pixels
        case let .stream(stream):
            return [Float](unsafeUninitializedCapacity: count * sampleSize) { buffer, initialized in
                do throws(DataError) {
                    if count > 0 { try stream.decode(Array(0..<count), into: buffer.baseAddress!) }
                } catch {
                    preconditionFailure("ImageDataset.images: \(error)")
                }
                initialized = count * sampleSize
            }
        }
    }

    /// The files a streamed set decodes its images from (nil: the set is in memory).
    public var stream: ImageStream? {
        if case let .stream(s) = storage { return s }
        return nil
    }
    /// One class index per image.
    public let labels: [Int32]
    /// The name of each class, by label (nil: unknown, shown as indices). Set by the loader
    /// that knows them (`mnist(directory:split:)` for Fashion-MNIST, see `KnownDatasets`; an
    /// image-folder set's folder names, CIFAR's names), and used to label the confusion
    /// matrix (`Plots`). Part of equality, not of `fingerprint`.
    public var classNames: [String]?

    /// Number of `Float`s per image (`channels * height * width`).
    public var sampleSize: Int { channels * height * width }

    /// Wraps data already in memory.
    ///
    /// - Precondition: `images.count == count * channels * height * width`
    ///   and `labels.count == count`.
    public init(count: Int, channels: Int, height: Int, width: Int, images: [Float], labels: [Int32]) {
        precondition(count >= 0 && channels > 0 && height > 0 && width > 0, "ImageDataset: invalid shape")
        precondition(images.count == count * channels * height * width,
                     "ImageDataset: \(images.count) pixels for \(count)x\(channels)x\(height)x\(width)")
        precondition(labels.count == count, "ImageDataset: \(labels.count) labels for \(count) images")
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
        self.storage = .memory(images)
        self.labels = labels
    }

    /// A streamed set: `stream`'s images with these labels (one per item).
    ///
    /// - Precondition: `labels.count == stream.items.count`.
    public init(stream: ImageStream, labels: [Int32]) {
        precondition(labels.count == stream.items.count, "ImageDataset: \(labels.count) labels for \(stream.items.count) images")
        self.count = labels.count
        self.channels = stream.channels
        self.height = stream.height
        self.width = stream.width
        self.storage = .stream(stream)
        self.labels = labels
    }

    /// Writes the images at `indices` (image after image, `sampleSize` floats each) to
    /// `target`: copied from memory, or decoded on the stream's threads.
    ///
    /// - Precondition: every index in `0..<count`; `target` holds `indices.count * sampleSize` floats.
    /// - Throws: a streamed image's `DataError` (a file that changed since it was loaded).
    public func copyImages(_ indices: [Int], into target: UnsafeMutablePointer<Float>) throws(DataError) {
        precondition(indices.allSatisfy { $0 >= 0 && $0 < count }, "ImageDataset.copyImages: index out of 0..<\(count)")
        switch storage {
        case let .memory(pixels):
            let size = sampleSize
            pixels.withUnsafeBufferPointer { source in
                for (slot, i) in indices.enumerated() { (target + slot * size).update(from: source.baseAddress! + i * size, count: size) }
            }
        case let .stream(stream):
            try stream.decode(indices, into: target)
        }
    }

    /// Loads an MNIST-format pair of IDX files (raw or gzip).
    ///
    /// - Parameters:
    ///   - imagesPath: IDX file with magic `0x00000803` (N×H×W bytes).
    ///   - labelsPath: IDX file with magic `0x00000801` (N bytes).
    ///   - classCount: labels must lie in `0..<classCount`.
    /// - Throws: `DataError` naming the offending file; `.countMismatch` if
    ///   the two files hold different numbers of items.
    public init(imagesPath: String, labelsPath: String, classCount: Int = 10) throws(DataError) {
        let imageArray = try IDX.readImages(path: imagesPath)
        let labelArray = try IDX.readLabels(path: labelsPath, classCount: classCount)
        let count = imageArray.shape[0]
        guard labelArray.shape[0] == count else {
            throw .countMismatch(imagesPath: imagesPath, imageCount: count,
                                 labelsPath: labelsPath, labelCount: labelArray.shape[0])
        }
        guard imageArray.shape[1] > 0, imageArray.shape[2] > 0 else {
            throw .zeroSize(path: imagesPath, dimensions: imageArray.shape)
        }
        let pixels = imageArray.data
        let scaled = [Float](unsafeUninitializedCapacity: pixels.count) { buffer, initialized in
            pixels.withUnsafeBufferPointer { source in
                for i in 0..<source.count { buffer[i] = Float(source[i]) / 255 }
            }
            initialized = pixels.count
        }
        self.init(count: count, channels: 1, height: imageArray.shape[1], width: imageArray.shape[2],
                  images: scaled, labels: labelArray.data.map { Int32($0) })
    }

    /// Loads MNIST or Fashion-MNIST from a directory holding the standard files
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-…`),
    /// each either raw or with a `.gz` suffix (`train-images.idx3-ubyte` is also accepted).
    ///
    /// - Throws: `DataError.missingFile` naming the directory and the names
    ///   looked for, or any error from `init(imagesPath:labelsPath:classCount:)`.
    public static func mnist(directory: String, split: Split, classCount: Int = 10) throws(DataError) -> ImageDataset {
        let (images, labels) = try mnistFiles(directory: directory, split: split)
        var dataset = try ImageDataset(imagesPath: images, labelsPath: labels, classCount: classCount)
        dataset.classNames = KnownDatasets.classNames(for: dataset)
        return dataset
    }

    /// The image and label files of a split of an MNIST-format directory.
    static func mnistFiles(directory: String, split: Split) throws(DataError) -> (images: String, labels: String) {
        (try locate(directory: directory, stem: "\(split.filePrefix)-images", kind: "idx3-ubyte"),
         try locate(directory: directory, stem: "\(split.filePrefix)-labels", kind: "idx1-ubyte"))
    }

    private static func locate(directory: String, stem: String, kind: String) throws(DataError) -> String {
        let names = ["\(stem)-\(kind).gz", "\(stem)-\(kind)", "\(stem).\(kind).gz", "\(stem).\(kind)"]
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        for name in names where access(base + name, F_OK) == 0 {
            return base + name
        }
        throw .missingFile(directory: directory, candidates: names)
    }

    /// Per-channel mean and (population) standard deviation over all images, summed in Double
    /// per channel, image after image (a streamed set in the same order: the same values).
    ///
    /// - Throws: a streamed image's `DataError`.
    public func channelStatistics() throws(DataError) -> (mean: [Float], std: [Float]) {
        if case let .stream(stream) = storage { return try stream.statistics() }
        let images = self.images
        let plane = height * width
        var mean = [Float](repeating: 0, count: channels)
        var std = [Float](repeating: 0, count: channels)
        guard count > 0 else { return (mean, std) }
        images.withUnsafeBufferPointer { pixels in
            for c in 0..<channels {
                var sum = 0.0, squares = 0.0
                for n in 0..<count {
                    let start = (n * channels + c) * plane
                    for value in pixels[start..<start + plane] {
                        sum += Double(value)
                        squares += Double(value) * Double(value)
                    }
                }
                let total = Double(count * plane)
                let m = sum / total
                mean[c] = Float(m)
                std[c] = Float(max(squares / total - m * m, 0).squareRoot())
            }
        }
        return (mean, std)
    }

    /// Returns a copy with every pixel replaced by `(x - mean[c]) / std[c]`
    /// (like torchvision's `Normalize`), e.g. `normalized(mean: [0.2860], std: [0.3530])`
    /// for Fashion-MNIST.
    ///
    /// - Precondition: one mean and one positive std per channel.
    public func normalized(mean: [Float], std: [Float]) -> ImageDataset {
        precondition(mean.count == channels && std.count == channels,
                     "normalized: need \(channels) mean/std values, got \(mean.count)/\(std.count)")
        precondition(std.allSatisfy { $0 > 0 }, "normalized: std must be positive")
        if case let .stream(stream) = storage {
            var result = ImageDataset(stream: stream.normalized(mean: mean, std: std), labels: labels)
            result.classNames = classNames
            return result
        }
        let plane = height * width
        var output = images
        output.withUnsafeMutableBufferPointer { pixels in
            for n in 0..<count {
                for c in 0..<channels {
                    let start = (n * channels + c) * plane
                    let m = mean[c], s = std[c]
                    for i in start..<start + plane { pixels[i] = (pixels[i] - m) / s }
                }
            }
        }
        var result = ImageDataset(count: count, channels: channels, height: height, width: width,
                                  images: output, labels: labels)
        result.classNames = classNames
        return result
    }

    /// Single-channel convenience for `normalized(mean:std:)`, applied to every channel.
    public func normalized(mean: Float, std: Float) -> ImageDataset {
        normalized(mean: Array(repeating: mean, count: channels), std: Array(repeating: std, count: channels))
    }
}

extension ImageDataset {
    /// The first `n` samples (all of them when `n >= count`), for quick runs and tests.
    public func prefix(_ n: Int) -> ImageDataset {
        let k = Swift.max(0, Swift.min(n, count))
        if let stream {
            var subset = ImageDataset(stream: stream.subset(0..<k), labels: Array(labels.prefix(k)))
            subset.classNames = classNames
            return subset
        }
        var subset = ImageDataset(count: k, channels: channels, height: height, width: width,
                                  images: Array(images.prefix(k * sampleSize)), labels: Array(labels.prefix(k)))
        subset.classNames = classNames
        return subset
    }

    /// The samples in `range` (clamped to `0..<count`): one rank's share of a data set.
    public func slice(_ range: Range<Int>) -> ImageDataset {
        let lo = Swift.max(0, Swift.min(range.lowerBound, count)), hi = Swift.max(lo, Swift.min(range.upperBound, count))
        if let stream { return ImageDataset(stream: stream.subset(lo..<hi), labels: Array(labels[lo..<hi])) }
        return ImageDataset(count: hi - lo, channels: channels, height: height, width: width,
                            images: Array(images[lo * sampleSize..<hi * sampleSize]), labels: Array(labels[lo..<hi]))
    }
}
