/// How `DataDirectory.load` reads and transforms a data set.
public struct DataOptions: Sendable, Equatable {
    /// Which splits to load.
    public enum Splits: Sendable, Equatable {
        /// Training and test (or validation) set.
        case both
        /// The training set only.
        case train
        /// The test (or validation) set only.
        case test
    }

    /// Per-channel normalisation `(x − mean) / std`, torchvision's `Normalize`.
    public enum Normalization: Sendable, Equatable {
        /// None: pixels in [0, 1].
        case none
        /// These values: one per channel, or one for all.
        case given(mean: [Float], std: [Float])
        /// The training set's own per-channel mean and (population) standard deviation,
        /// after the transforms; applied to the test set too.
        case computed
    }

    /// Resize, centre crop, channel count.
    public var transforms = ImageTransforms()
    /// Normalisation (default: none).
    public var normalization = Normalization.none
    /// With image folders that have no `test/`: hold out this fraction of `train/` (0 < f < 1)
    /// as the test set, drawn with `seed`. nil: no split.
    public var validationSplit: Double?
    /// Seeds the validation split.
    public var seed: UInt64 = 1
    /// Skip (and count, in `LoadedData.skipped`) images that cannot be decoded instead of failing.
    public var skipBadImages = false
    /// Decoding threads (nil: one per core).
    public var threads: Int?
    /// The most pixels an image may declare (`ImageDecoder.maxPixels`).
    public var maxPixels = ImageDecoder.maxPixels
    /// Image folders: hold the decoded images in memory, or decode them batch by batch as
    /// training reads them (`DecodedCache`; default `.auto`: cache what fits in `cacheBudget`).
    /// The other formats are always in memory.
    public var cache = DecodedCache.auto
    /// With `cache == .auto`: the most bytes a decoded set (`N·C·H·W·4`, each split on its
    /// own) may take to be cached; nil: `defaultCacheBudget`.
    public var cacheBudget: Int?

    /// A quarter of the machine's memory: what `.auto` caches at most per split (6 GiB of
    /// 24: Fashion-MNIST's 188 MB is cached, ImageNet's 1.28 M images at 224×224 are streamed).
    public static var defaultCacheBudget: Int { MemoryBudget.physicalBytes / 4 }

    /// The defaults: no transform, no normalisation, no split.
    public init() {}

    /// Throws `DataError.invalidOption` naming the first option out of range.
    public func validate() throws(DataError) {
        try transforms.validate()
        if let f = validationSplit, !(f > 0 && f < 1) {
            throw .invalidOption(name: "validation split", value: String(f), accepted: "a fraction in (0, 1)")
        }
        if let t = threads, !(1...1024).contains(t) {
            throw .invalidOption(name: "threads", value: String(t), accepted: "1...1024")
        }
        if let b = cacheBudget, b < 0 {
            throw .invalidOption(name: "cache budget", value: String(b), accepted: "0 or more bytes")
        }
        guard maxPixels >= 1 else { throw .invalidOption(name: "max pixels", value: String(maxPixels), accepted: "1 or more") }
        if case let .given(mean, std) = normalization {
            guard !mean.isEmpty, mean.count == std.count, mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw .invalidOption(name: "normalisation", value: "mean \(mean), std \(std)",
                                     accepted: "as many finite means as finite stds > 0")
            }
        }
    }
}
