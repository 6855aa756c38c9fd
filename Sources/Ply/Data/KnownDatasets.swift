/// Data sets Ply recognises by their content, to name their classes.
///
/// MNIST and Fashion-MNIST share file names, image sizes and file sizes (raw), and
/// redistributions recompress the `.gz` files (Debian's `dataset-fashion-mnist` differs in
/// size from the original release), so neither names nor sizes tell them apart. The labels
/// do: a split is recognised when its first 20 labels are that split's published first 20
/// (a chance match has probability 10⁻²⁰), which also recognises a prefix of the set (the
/// test fixtures, `--limit`).
public enum KnownDatasets {
    /// Fashion-MNIST's class names, by label (Zalando's README).
    public static let fashionMNISTClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Fashion-MNIST's first 20 training labels and first 20 test labels.
    static let fashionMNISTPrefixes: [[Int32]] = [
        [9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4],
        [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0],
    ]

    /// The class names of a recognised data set: Fashion-MNIST's when `dataset` holds
    /// single-channel 28×28 images whose first 20 labels are Fashion-MNIST's (training or
    /// test split); nil otherwise.
    public static func classNames(for dataset: ImageDataset) -> [String]? {
        guard dataset.channels == 1, dataset.height == 28, dataset.width == 28, dataset.count >= 20 else { return nil }
        let first = Array(dataset.labels.prefix(20))
        return fashionMNISTPrefixes.contains(first) ? fashionMNISTClassNames : nil
    }
}
