/// What `DataDirectory.load` returns.
public struct LoadedData: Sendable {
    /// The format read.
    public var format: DataDirectory.Format
    /// The training set (nil when only the test set was asked for).
    public var train: ImageDataset?
    /// The test set, or the validation split; nil when there is none.
    public var test: ImageDataset?
    /// Class names when the data set has them (folder names, CIFAR's).
    public var classNames: [String]?
    /// The normalisation applied (per channel), if any: what an evaluation of the same
    /// model on other images must apply too.
    public var normalization: (mean: [Float], std: [Float])?
    /// Images skipped as unreadable (`DataOptions.skipBadImages`), with the reason.
    public var skipped: [DataError]
}
