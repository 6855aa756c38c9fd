import Foundation

/// A data directory in any format Ply reads, detected from the files in it:
///
/// - MNIST-format IDX files (`train-images-idx3-ubyte[.gz]`, ...; Fashion-MNIST);
/// - CIFAR-10 / CIFAR-100 binary (`data_batch_1.bin` ... `test_batch.bin`; `train.bin`,
///   `test.bin`), in the directory or in the folder the archive unpacks to;
/// - image folders as torchvision's `ImageFolder` reads them: `train/<class>/*.png|jpg|jpeg`
///   and `test/<class>/...`, or only `train/` with a validation split
///   (`DataOptions.validationSplit`).
///
/// ```swift
/// var options = DataOptions()
/// options.transforms = ImageTransforms(resize: 36, centerCrop: 32)
/// options.normalization = .computed
/// let data = try DataDirectory(path: "pictures").load(options: options)
/// let summary = try trainer.run(train: data.train, test: data.test)
/// ```
public struct DataDirectory: Sendable {
    /// The formats.
    public enum Format: String, Sendable {
        /// MNIST-format IDX files.
        case idx = "IDX"
        /// CIFAR-10 binary.
        case cifar10 = "CIFAR-10"
        /// CIFAR-100 binary (fine labels).
        case cifar100 = "CIFAR-100"
        /// Image folders (PNG, JPEG).
        case imageFolder = "image folder"
    }

    /// The directory.
    public let path: String
    /// What it holds.
    public let format: Format

    /// Detects the format of `path`.
    ///
    /// - Throws: `DataError.fileNotFound` when it does not exist, `.unknownFormat` when it holds
    ///   none of the formats.
    public init(path: String) throws(DataError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .fileNotFound(path: path) }
        guard isDirectory.boolValue else { throw .unknownFormat(directory: path) }
        self.path = path
        if (try? ImageDataset.mnistFiles(directory: path, split: .train)) != nil
            || (try? ImageDataset.mnistFiles(directory: path, split: .test)) != nil {
            format = .idx
        } else if let (variant, _) = CIFAR.detect(directory: path) {
            format = variant == .cifar10 ? .cifar10 : .cifar100
        } else if FileManager.default.fileExists(atPath: path + "/train", isDirectory: &isDirectory), isDirectory.boolValue {
            format = .imageFolder
        } else {
            throw .unknownFormat(directory: path)
        }
    }

    /// Loads the training set and the test (or validation) set, applies the transforms and
    /// the normalisation (`DataOptions`). `splits: .test` loads only what evaluating needs
    /// (and the training set too when the normalisation is computed from it).
    ///
    /// - Throws: `DataError`: a missing file, a corrupt image (unless skipped), an option out of
    ///   range (`.invalidOption`), a validation split asked for where a test set exists.
    public func load(options: DataOptions, splits: DataOptions.Splits = .both) throws(DataError) -> LoadedData {
        try options.validate()
        var report = ImageFolder.LoadReport()
        var train: ImageDataset?
        var test: ImageDataset?
        let needTrain = splits == .both || splits == .train || options.normalization == .computed
        let needTest = splits == .both || splits == .test
        switch format {
        case .idx, .cifar10, .cifar100:
            if let fraction = options.validationSplit {
                throw .invalidOption(name: "validation split", value: String(fraction),
                                     accepted: "none: \(path) is \(format.rawValue) with its own test set")
            }
            func one(_ split: ImageDataset.Split) throws(DataError) -> ImageDataset {
                format == .idx ? try ImageDataset.mnist(directory: path, split: split) : try CIFAR.load(directory: path, split: split)
            }
            if needTrain { train = try transformed(one(.train), options) }
            if needTest { test = try transformed(one(.test), options) }
        case .imageFolder:
            let trainFolder = try ImageFolder(root: path + "/train")
            var testFolder: ImageFolder?
            var trainItems = trainFolder
            let hasTest = FileManager.default.fileExists(atPath: path + "/test")
            if let fraction = options.validationSplit {
                if hasTest {
                    throw .invalidOption(name: "validation split", value: String(fraction),
                                         accepted: "none: \(path)/test exists and is the held-out set")
                }
                (trainItems, testFolder) = trainFolder.split(validationFraction: fraction, seed: options.seed)
            } else if hasTest {
                testFolder = try ImageFolder(root: path + "/test")
                if testFolder?.classes != trainFolder.classes {
                    throw .classMismatch(train: trainFolder.classes, test: testFolder?.classes ?? [])
                }
            }
            if needTrain || (needTest && options.transforms.channels == nil) {
                // The test set takes the training set's channel count, so the training set is read for it.
                train = try trainItems.load(transforms: options.transforms, skipBadImages: options.skipBadImages,
                                            threads: options.threads, maxPixels: options.maxPixels,
                                            cache: options.cache, cacheBudget: options.cacheBudget, report: &report)
            }
            if needTest, let testFolder {
                test = try testFolder.load(transforms: options.transforms, channels: train?.channels,
                                           skipBadImages: options.skipBadImages, threads: options.threads,
                                           maxPixels: options.maxPixels, cache: options.cache,
                                           cacheBudget: options.cacheBudget, report: &report)
                if let t = test, let tr = train, (t.height, t.width) != (tr.height, tr.width) {
                    throw .imageSizeMismatch(path: testFolder.root, width: t.width, height: t.height,
                                             expectedWidth: tr.width, expectedHeight: tr.height)
                }
            }
        }
        var statistics: (mean: [Float], std: [Float])?
        switch options.normalization {
        case .none: break
        case let .given(mean, std): statistics = (mean, std)
        case .computed:
            if let train {
                let s = try train.channelStatistics()
                statistics = (s.mean, s.std.map { $0 > 0 ? $0 : 1 })
            }
        }
        if let (mean, std) = statistics {
            let channels = train?.channels ?? test?.channels ?? mean.count
            guard mean.count == 1 || mean.count == channels, std.count == mean.count else {
                throw .invalidOption(name: "normalisation", value: "\(mean.count) mean and \(std.count) std values",
                                     accepted: "1 or \(channels) of each (the images' channels)")
            }
            let m = mean.count == 1 ? Array(repeating: mean[0], count: channels) : mean
            let s = std.count == 1 ? Array(repeating: std[0], count: channels) : std
            train = train?.normalized(mean: m, std: s)
            test = test?.normalized(mean: m, std: s)
            statistics = (m, s)
        }
        return LoadedData(format: format, train: splits == .test ? nil : train, test: test,
                          classNames: train?.classNames ?? test?.classNames, normalization: statistics,
                          skipped: report.skipped)
    }

    /// Applies resize, centre crop and channel conversion to a data set read from IDX or CIFAR
    /// files (the pixels go through 8-bit images, as torchvision's PIL path does).
    private func transformed(_ data: ImageDataset, _ options: DataOptions) throws(DataError) -> ImageDataset {
        let t = options.transforms
        if t.resize == nil && t.centerCrop == nil && (t.channels == nil || t.channels == data.channels) { return data }
        var images: [DecodedImage] = []
        images.reserveCapacity(data.count)
        let plane = data.height * data.width
        for n in 0..<data.count {
            var bytes = [UInt8](repeating: 0, count: plane * data.channels)
            for c in 0..<data.channels {
                for j in 0..<plane {
                    bytes[j * data.channels + c] = UInt8((data.images[(n * data.channels + c) * plane + j] * 255).rounded())
                }
            }
            let image = t.apply(DecodedImage(width: data.width, height: data.height, channels: data.channels, pixels: bytes))
            images.append(image.converted(toChannels: t.channels ?? data.channels))
        }
        guard let first = images.first else { return data }
        let (c, h, w) = (first.channels, first.height, first.width)
        var pixels = [Float](repeating: 0, count: images.count * c * h * w)
        for (k, image) in images.enumerated() {
            for ch in 0..<c { for j in 0..<(h * w) { pixels[(k * c + ch) * h * w + j] = Float(image.pixels[j * c + ch]) / 255 } }
        }
        var result = ImageDataset(count: images.count, channels: c, height: h, width: w, images: pixels, labels: data.labels)
        result.classNames = data.classNames
        return result
    }
}
