import CPNG
import CTurboJPEG

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An 8-bit image in memory: `height` rows of `width` pixels of `channels` interleaved bytes
/// (H×W×C, as Pillow and NumPy hold them): 1 channel (gray) or 3 (R, G, B).
public struct DecodedImage: Sendable, Equatable {
    /// Pixels per row.
    public let width: Int
    /// Rows.
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// `height * width * channels` bytes, row-major, channels interleaved.
    public let pixels: [UInt8]

    /// Wraps pixels already in memory.
    ///
    /// - Precondition: `width, height >= 1`, `channels` 1 or 3, `pixels.count == height * width * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width >= 1 && height >= 1 && (channels == 1 || channels == 3), "DecodedImage: invalid shape")
        precondition(pixels.count == width * height * channels, "DecodedImage: \(pixels.count) bytes for \(height)x\(width)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The image with `count` channels: gray to RGB repeats the value; RGB to gray is Pillow's
    /// `convert("L")` (ITU-R 601-2 luma, `(R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16`), which
    /// torchvision's `Grayscale` uses.
    public func converted(toChannels count: Int) -> DecodedImage {
        precondition(count == 1 || count == 3, "converted(toChannels:): 1 or 3, got \(count)")
        if count == channels { return self }
        let n = width * height
        let out = [UInt8](unsafeUninitializedCapacity: n * count) { buffer, initialized in
            pixels.withUnsafeBufferPointer { p in
                if count == 3 {
                    for i in 0..<n { buffer[3 * i] = p[i]; buffer[3 * i + 1] = p[i]; buffer[3 * i + 2] = p[i] }
                } else {
                    for i in 0..<n {
                        let luma = UInt32(p[3 * i]) * 19595 + UInt32(p[3 * i + 1]) * 38470 + UInt32(p[3 * i + 2]) * 7471 + 0x8000
                        buffer[i] = UInt8(luma >> 16)
                    }
                }
            }
            initialized = n * count
        }
        return DecodedImage(width: width, height: height, channels: count, pixels: out)
    }
}

/// Decodes PNG (libpng's simplified API) and JPEG (libjpeg-turbo's TurboJPEG) files into
/// `DecodedImage`s, telling them apart by their first bytes, not by the file name.
///
/// Reads are bounded: a file is read up to `maxFileBytes`, and an image's declared width and
/// height are checked against `maxPixels` before its pixels are allocated, so a small file
/// declaring a 100 000 × 100 000 image costs nothing. Safe to call from many threads at once
/// (each call owns its decoder state).
///
/// What comes out, compared with Pillow (which torchvision's `ImageFolder` uses): JPEG pixels are
/// libjpeg-turbo's with its defaults (accurate integer IDCT, fancy upsampling) — what Pillow
/// gets from the same library. PNG: palette and low bit depths are expanded, 16-bit samples
/// reduced to 8, and an alpha channel dropped (Pillow's `convert("RGB")`). A JPEG that ends
/// early is refused as corrupt (Pillow: "image file is truncated"); libjpeg's other warnings
/// (extraneous bytes before a marker) are not errors, as in Pillow. CMYK JPEGs are refused.
public enum ImageDecoder {
    /// The most pixels an image may declare: Pillow's default decompression-bomb limit
    /// (`Image.MAX_IMAGE_PIXELS`, 89 478 485 = 0.25 GiB of 24-bit pixels).
    public static let maxPixels = 89_478_485
    /// The largest image file read (256 MiB).
    public static let maxFileBytes = 256 << 20

    /// Which decoder a file's first bytes call for (nil: neither).
    public enum Format: String, Sendable { case png = "PNG", jpeg = "JPEG" }

    /// The format of `bytes` by magic number: PNG's 8-byte signature, JPEG's `FF D8 FF`.
    public static func format(of bytes: [UInt8]) -> Format? {
        if bytes.count >= 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        return nil
    }

    /// Reads and decodes the image file at `path`, in its own channel count (1 for gray
    /// images, 3 for colour ones).
    ///
    /// - Throws: `DataError.fileNotFound`, `.unreadable`, `.notARegularFile`,
    ///   `.unsupportedImage` (neither PNG nor JPEG), `.corruptImage`, `.imageTooLarge`.
    public static func decode(path: String, maxPixels: Int = maxPixels) throws(DataError) -> DecodedImage {
        try decode(path: path, maxPixels: maxPixels, jpeg: nil)
    }

    /// `decode(path:maxPixels:)` with a TurboJPEG handle kept by the caller (one per thread;
    /// nil: one for this call).
    static func decode(path: String, maxPixels: Int, jpeg: JPEGHandle?) throws(DataError) -> DecodedImage {
        if let kind = nonRegularFileKind(path) { throw .notARegularFile(path: path, kind: kind) }
        let bytes: [UInt8]
        do {
            let file = try BoundedFile(path: path)
            // A regular file's size is known: ask for exactly that (BoundedFile's buffer is the
            // size asked for, up to 1 MiB; an image is usually far smaller), and one byte more
            // to see a file that grew.
            bytes = try file.read(upTo: min(file.regularSize.map { $0 + 1 } ?? maxFileBytes, maxFileBytes))
            if bytes.count == maxFileBytes, try file.hasMore() {
                throw DataError.unreadable(path: path, reason: "larger than \(maxFileBytes) bytes, the most an image file may be")
            }
        } catch let error as BoundedFile.Failure {
            if error.code == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: error.reason)
        } catch let error as DataError {
            throw error
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        return try decode(bytes: bytes, path: path, maxPixels: maxPixels, jpeg: jpeg)
    }

    /// Decodes an image already in memory; `path` names it in errors.
    public static func decode(bytes: [UInt8], path: String, maxPixels: Int = maxPixels) throws(DataError) -> DecodedImage {
        try decode(bytes: bytes, path: path, maxPixels: maxPixels, jpeg: nil)
    }

    static func decode(bytes: [UInt8], path: String, maxPixels: Int, jpeg: JPEGHandle?) throws(DataError) -> DecodedImage {
        switch format(of: bytes) {
        case .png: return try decodePNG(bytes, path: path, maxPixels: maxPixels)
        case .jpeg:
            guard let handle = jpeg ?? JPEGHandle() else {
                throw .corruptImage(path: path, format: "JPEG", reason: "TurboJPEG could not start: " + String(cString: tjGetErrorStr2(nil)))
            }
            return try decodeJPEG(bytes, path: path, maxPixels: maxPixels, handle: handle.handle)
        case nil:
            throw .unsupportedImage(path: path, reason: bytes.isEmpty ? "the file is empty"
                : "its first bytes are neither PNG's signature (89 50 4E 47) nor JPEG's (FF D8 FF)")
        }
    }

    private static func checkSize(_ width: Int, _ height: Int, format: Format, path: String, maxPixels: Int) throws(DataError) {
        guard width >= 1, height >= 1 else {
            throw .corruptImage(path: path, format: format.rawValue, reason: "declared size \(width)x\(height)")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > maxPixels { throw .imageTooLarge(path: path, width: width, height: height, limit: maxPixels) }
    }

    private static func decodePNG(_ bytes: [UInt8], path: String, maxPixels: Int) throws(DataError) -> DecodedImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        func message(_ image: inout png_image) -> String {
            withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        let began = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard began != 0 else { throw .corruptImage(path: path, format: "PNG", reason: message(&image)) }
        let width = Int(image.width), height = Int(image.height)
        try checkSize(width, height, format: .png, path: path, maxPixels: maxPixels)
        let color = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        // 8-bit, direct (no colour map), keeping alpha so that nothing is composited: it is dropped below.
        image.format = (color ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | (alpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
        let stored = (color ? 3 : 1) + (alpha ? 1 : 0)
        var raw = [UInt8](repeating: 0, count: width * height * stored)
        let finished = raw.withUnsafeMutableBytes {
            png_image_finish_read(&image, nil, $0.baseAddress, Int32(width * stored), nil)
        }
        guard finished != 0 else { throw .corruptImage(path: path, format: "PNG", reason: message(&image)) }
        let channels = color ? 3 : 1
        if !alpha { return DecodedImage(width: width, height: height, channels: channels, pixels: raw) }
        let n = width * height
        let pixels = [UInt8](unsafeUninitializedCapacity: n * channels) { buffer, initialized in
            for i in 0..<n { for c in 0..<channels { buffer[i * channels + c] = raw[i * stored + c] } }
            initialized = n * channels
        }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    private static func decodeJPEG(_ bytes: [UInt8], path: String, maxPixels: Int, handle: tjhandle) throws(DataError) -> DecodedImage {
        func reason() -> String { String(cString: tjGetErrorStr2(handle)) }
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &w, &h, &subsampling, &colorspace)
        }
        guard header == 0 else { throw .corruptImage(path: path, format: "JPEG", reason: reason()) }
        let width = Int(w), height = Int(h)
        try checkSize(width, height, format: .jpeg, path: path, maxPixels: maxPixels)
        if colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue) {
            throw .unsupportedImage(path: path, reason: "a CMYK JPEG; convert it to RGB first")
        }
        let channels = colorspace == Int32(TJCS_GRAY.rawValue) ? 1 : 3
        let pixelFormat = channels == 1 ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        let status = bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { target in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress, w, 0, h, pixelFormat, 0)
            }
        }
        if status != 0 {
            let text = reason()
            // A warning still decodes the image; only a file that ends early is refused (Pillow's
            // "image file is truncated"), the rest (extraneous bytes before a marker) are ignored.
            if tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) || text.contains("Premature end") {
                throw .corruptImage(path: path, format: "JPEG", reason: text)
            }
        }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }
}

/// A TurboJPEG decompressor, reused for the images one thread decodes (creating one costs
/// libjpeg's memory pools per image otherwise). Not shared between threads.
final class JPEGHandle {
    let handle: tjhandle

    init?() {
        guard let h = tjInitDecompress() else { return nil }
        handle = h
    }

    deinit { tjDestroy(handle) }
}
