import Foundation

/// Reader for the CIFAR-10 and CIFAR-100 binary versions
/// (<https://www.cs.toronto.edu/~kriz/cifar.html>: `cifar-10-binary.tar.gz`,
/// `cifar-100-binary.tar.gz`).
///
/// Every record is the label byte(s) then 3072 pixel bytes: the 1024 red values of the 32×32
/// image row by row, then the green, then the blue. CIFAR-10 records have one label byte
/// (0–9; files `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`, class names in
/// `batches.meta.txt`); CIFAR-100 records have two, the coarse (0–19) then the fine (0–99)
/// label (files `train.bin`, `test.bin`, names in `fine_label_names.txt`). Ply trains on the
/// fine labels.
public enum CIFAR {
    /// Which of the two data sets.
    public enum Variant: String, Sendable {
        /// 10 classes, one label byte per record.
        case cifar10 = "CIFAR-10"
        /// 100 classes (fine labels), two label bytes per record.
        case cifar100 = "CIFAR-100"

        /// Label bytes per record.
        public var labelBytes: Int { self == .cifar10 ? 1 : 2 }
        /// Bytes per record: the labels and 3×32×32 pixels.
        public var recordBytes: Int { labelBytes + 3 * 32 * 32 }
        /// Number of classes.
        public var classCount: Int { self == .cifar10 ? 10 : 100 }

        /// The files of a split, in the order they are read.
        public func files(_ split: ImageDataset.Split) -> [String] {
            switch (self, split) {
            case (.cifar10, .train): return (1...5).map { "data_batch_\($0).bin" }
            case (.cifar10, .test): return ["test_batch.bin"]
            case (.cifar100, .train): return ["train.bin"]
            case (.cifar100, .test): return ["test.bin"]
            }
        }

        /// The class-name file of the distribution.
        public var namesFile: String { self == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt" }
    }

    /// CIFAR-10's class names (`batches.meta.txt`), used when the file is missing.
    public static let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    /// The variant and the directory holding its files: `directory` itself, or the folder the
    /// archive unpacks to (`cifar-10-batches-bin`, `cifar-100-binary`) inside it; nil when
    /// neither holds a CIFAR file.
    public static func detect(directory: String) -> (variant: Variant, directory: String)? {
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        for dir in [base, base + "/cifar-10-batches-bin", base + "/cifar-100-binary"] {
            let exists = { (name: String) in FileManager.default.fileExists(atPath: dir + "/" + name) }
            if exists("data_batch_1.bin") || exists("test_batch.bin") { return (.cifar10, dir) }
            if exists("train.bin") || exists("test.bin") { return (.cifar100, dir) }
        }
        return nil
    }

    /// Loads a split of the CIFAR set in `directory` (see `detect`), pixels scaled to [0, 1].
    ///
    /// - Throws: `DataError.unknownFormat` when there is no CIFAR file, `.missingFile` for a
    ///   split's missing file, `.cifarSize` for a file that is not whole records,
    ///   `.labelOutOfRange` naming file and record.
    public static func load(directory: String, split: ImageDataset.Split) throws(DataError) -> ImageDataset {
        guard let (variant, dir) = detect(directory: directory) else { throw .unknownFormat(directory: directory) }
        var pixels: [Float] = []
        var labels: [Int32] = []
        for name in variant.files(split) {
            let path = dir + "/" + name
            guard FileManager.default.fileExists(atPath: path) else {
                throw .missingFile(directory: dir, candidates: [name])
            }
            let (p, l) = try read(path: path, variant: variant)
            pixels += p
            labels += l
        }
        var dataset = ImageDataset(count: labels.count, channels: 3, height: 32, width: 32, images: pixels, labels: labels)
        dataset.classNames = names(directory: dir, variant: variant)
        return dataset
    }

    /// The class names from the distribution's names file (one per line, blank lines
    /// ignored), or CIFAR-10's known names, or nil.
    static func names(directory: String, variant: Variant) -> [String]? {
        let path = directory + "/" + variant.namesFile
        if let bytes = try? IDX.readBytes(path: path, limit: 1 << 20) {
            let lines = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if lines.count == variant.classCount { return lines }
        }
        return variant == .cifar10 ? cifar10Names : nil
    }

    /// The largest CIFAR file read (CIFAR-100's train.bin is 153 700 000 bytes).
    public static let maxFileBytes = 1 << 30

    /// Reads one binary file: pixels (N×3×32×32, scaled to [0, 1]) and labels.
    public static func read(path: String, variant: Variant) throws(DataError) -> (pixels: [Float], labels: [Int32]) {
        let bytes = try IDX.readBytes(path: path, limit: maxFileBytes)
        let record = variant.recordBytes
        guard !bytes.isEmpty, bytes.count % record == 0 else {
            throw .cifarSize(path: path, bytes: bytes.count, recordBytes: record)
        }
        let n = bytes.count / record
        let image = 3 * 32 * 32
        var labels = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            let label = Int(bytes[i * record + variant.labelBytes - 1])   // the fine label for CIFAR-100
            guard label < variant.classCount else {
                throw .labelOutOfRange(path: path, index: i, label: label, classCount: variant.classCount)
            }
            labels[i] = Int32(label)
        }
        let pixels = [Float](unsafeUninitializedCapacity: n * image) { buffer, initialized in
            bytes.withUnsafeBufferPointer { b in
                for i in 0..<n {
                    let from = i * record + variant.labelBytes
                    for j in 0..<image { buffer[i * image + j] = Float(b[from + j]) / 255 }
                }
            }
            initialized = n * image
        }
        return (pixels, labels)
    }
}
