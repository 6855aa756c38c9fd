#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong while loading training data.
///
/// Each message names the file (or directory) involved and what is wrong with
/// it, so it can be shown to the user as is.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file starts with the gzip magic but its compressed stream is damaged.
    case corruptGzip(path: String, reason: String)
    /// The system zlib (`libz.so.1`) could not be loaded.
    case zlibUnavailable(String)
    /// The file is shorter than the IDX header it must start with.
    case headerTooShort(path: String, expectedBytes: Int, actualBytes: Int)
    /// The 4-byte magic number is not the expected one.
    case badMagic(path: String, expected: UInt32, actual: UInt32)
    /// The IDX element type is not `0x08` (unsigned byte).
    case unsupportedType(path: String, typeCode: UInt8)
    /// The IDX file has a different number of dimensions than required.
    case wrongDimensions(path: String, expected: Int, actual: Int)
    /// A size other than the item count is zero (an image of height or width 0).
    case zeroSize(path: String, dimensions: [Int])
    /// The path is a directory, device, FIFO or socket (`kind` says which), not a file.
    case notARegularFile(path: String, kind: String)
    /// The header's sizes multiply to more bytes than can be addressed.
    case sizeOverflow(path: String, dimensions: [Int])
    /// The (decompressed) file is shorter than its header declares.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// The (decompressed) file is longer than its header declares.
    case trailingBytes(path: String, expectedBytes: Int, actualBytes: Int)
    /// The (decompressed) data goes on past its declared size by more than the margin the
    /// reader looks ahead (`IDX.trailingMargin`); reading stopped there.
    case longerThanDeclared(path: String, expectedBytes: Int, readBytes: Int)
    /// Decompressing went past the most the caller accepts; decompression stopped there.
    case decompressedTooLarge(path: String, limit: Int)
    /// A label is outside `0..<classCount`.
    case labelOutOfRange(path: String, index: Int, label: Int, classCount: Int)
    /// The image file and label file hold different numbers of items.
    case countMismatch(imagesPath: String, imageCount: Int, labelsPath: String, labelCount: Int)
    /// None of the accepted file names exist in a dataset directory.
    case missingFile(directory: String, candidates: [String])
    /// An image file cannot be decoded (`format`: "PNG" or "JPEG"; `reason`: the decoder's words).
    case corruptImage(path: String, format: String, reason: String)
    /// A file with an image extension whose bytes are neither PNG nor JPEG.
    case unsupportedImage(path: String, reason: String)
    /// An image declares more pixels than `ImageDecoder.maxPixels` (checked before allocating).
    case imageTooLarge(path: String, width: Int, height: Int, limit: Int)
    /// After the transforms, an image's size differs from the data set's (the first image's).
    case imageSizeMismatch(path: String, width: Int, height: Int, expectedWidth: Int, expectedHeight: Int)
    /// A data directory is none of the formats Ply reads.
    case unknownFormat(directory: String)
    /// An image-folder split has no class folders, or a class folder no image.
    case noImages(directory: String, detail: String)
    /// The test folder's classes are not the training folder's.
    case classMismatch(train: [String], test: [String])
    /// Images were skipped (`--skip-bad-images`) and none were left, or none could be read.
    case allImagesBad(directory: String, skipped: Int, first: String)
    /// A CIFAR binary file's size is not a whole number of records.
    case cifarSize(path: String, bytes: Int, recordBytes: Int)
    /// A transform or loading option is out of range.
    case invalidOption(name: String, value: String, accepted: String)

    /// The value in words, as `print` shows it.
    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "\(path): file not found"
        case let .unreadable(path, reason):
            return "\(path): cannot read file: \(reason)"
        case let .corruptGzip(path, reason):
            return "\(path): corrupt gzip data: \(reason)"
        case let .zlibUnavailable(reason):
            return "gzip support unavailable: \(reason)"
        case let .headerTooShort(path, expected, actual):
            return "\(path): file too short for an IDX header: expected at least \(expected) bytes, got \(actual)"
        case let .badMagic(path, expected, actual):
            return "\(path): wrong IDX magic number: expected \(hex(expected)), got \(hex(actual))"
        case let .unsupportedType(path, code):
            return "\(path): unsupported IDX element type 0x\(String(code, radix: 16, uppercase: true)) (only 0x08, unsigned byte, is supported)"
        case let .wrongDimensions(path, expected, actual):
            return "\(path): wrong number of IDX dimensions: expected \(expected), got \(actual)"
        case let .zeroSize(path, dimensions):
            return "\(path): IDX dimensions \(dimensions) include a zero image size; images need height and width of 1 or more"
        case let .notARegularFile(path, kind):
            return "\(path) is \(kind), not an IDX file"
        case let .sizeOverflow(path, dimensions):
            return "\(path): IDX dimensions \(dimensions) are too large"
        case let .truncated(path, expected, actual):
            return "\(path): truncated file: header declares \(expected) bytes, file has \(actual) bytes"
        case let .trailingBytes(path, expected, actual):
            return "\(path): unexpected trailing data: header declares \(expected) bytes, file has \(actual) bytes"
        case let .longerThanDeclared(path, expected, read):
            return "\(path): unexpected trailing data: header declares \(expected) bytes, the (decompressed) data goes on past \(read) bytes; stopped reading there"
        case let .decompressedTooLarge(path, limit):
            return "\(path): gzip data decompresses to more than \(limit) bytes; stopped there"
        case let .labelOutOfRange(path, index, label, classCount):
            return "\(path): label \(label) at index \(index) is out of range 0...\(classCount - 1)"
        case let .countMismatch(imagesPath, imageCount, labelsPath, labelCount):
            return "image/label count mismatch: \(imagesPath) has \(imageCount) images but \(labelsPath) has \(labelCount) labels"
        case let .missingFile(directory, candidates):
            return "\(directory): missing dataset file (looked for \(candidates.joined(separator: ", ")))"
        case let .corruptImage(path, format, reason):
            return "\(path): cannot decode this \(format) image: \(reason) (--skip-bad-images skips such files and counts them)"
        case let .unsupportedImage(path, reason):
            return "\(path): not a PNG or JPEG image: \(reason) (--skip-bad-images skips such files and counts them)"
        case let .imageTooLarge(path, width, height, limit):
            return "\(path): image declares \(width)x\(height) pixels, more than the \(limit) accepted; not decoded"
        case let .imageSizeMismatch(path, width, height, expectedWidth, expectedHeight):
            return "\(path): image is \(width)x\(height) (WxH) after the transforms, but the data set's images are "
                + "\(expectedWidth)x\(expectedHeight); give --resize N (shorter side) and --center-crop N to bring every image to one size"
        case let .unknownFormat(directory):
            return "\(directory): no data set found: expected MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...), "
                + "CIFAR-10 binary (data_batch_1.bin ... test_batch.bin), CIFAR-100 binary (train.bin, test.bin) "
                + "or image folders (train/<class>/*.png|jpg, test/<class>/...)"
        case let .noImages(directory, detail):
            return "\(directory): \(detail)"
        case let .classMismatch(train, test):
            return "the test folder's classes \(test) are not the training folder's \(train): labels would not match"
        case let .allImagesBad(directory, skipped, first):
            return "\(directory): no readable image left (\(skipped) skipped; the first: \(first))"
        case let .cifarSize(path, bytes, recordBytes):
            return "\(path): \(bytes) bytes is not a whole number of \(recordBytes)-byte CIFAR records"
        case let .invalidOption(name, value, accepted):
            return "\(name) is \(value); accepted: \(accepted)"
        }
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
