import CPNG
import Foundation

/// An 8-bit picture, grayscale (1 channel) or RGB (3), rows top to bottom and channels
/// interleaved, that reads and writes PNG files with libpng (its simplified `png_image` API)
/// and reads JPEG files with TurboJPEG.
public struct PNGImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// 1 (grayscale) or 3 (RGB).
    public let channels: Int
    /// `height * width * channels` bytes: row `y`, column `x`, channel `c` at `(y * width + x) * channels + c`.
    public var pixels: [UInt8]

    /// The largest width or height accepted (PNG allows 2³¹ − 1; this bounds what a corrupt
    /// header can make us allocate).
    public static let maxSide = 1 << 16

    /// A picture of one colour (`fill`, one value per channel).
    public init(width: Int, height: Int, channels: Int, fill: [UInt8]) throws(InspectError) {
        guard channels == 1 || channels == 3 else { throw .invalidPicture("channels is \(channels); 1 or 3 expected") }
        guard (1...Self.maxSide).contains(width), (1...Self.maxSide).contains(height) else {
            throw .invalidPicture("size \(width)x\(height); each side must be in 1...\(Self.maxSide)")
        }
        guard fill.count == channels else { throw .invalidPicture("fill has \(fill.count) values for \(channels) channel(s)") }
        self.width = width
        self.height = height
        self.channels = channels
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        for i in 0..<(width * height) { for c in 0..<channels { pixels[i * channels + c] = fill[c] } }
        self.pixels = pixels
    }

    /// The values at (`y`, `x`), one per channel.
    public subscript(y: Int, x: Int) -> [UInt8] {
        get { Array(pixels[((y * width + x) * channels)..<((y * width + x + 1) * channels)]) }
        set { for c in 0..<channels { pixels[(y * width + x) * channels + c] = newValue[c] } }
    }

    /// Writes the picture to `path` as an 8-bit PNG, atomically (a temporary file renamed into place).
    public func write(to path: String) throws(InspectError) {
        let temporary = (path as NSString).deletingLastPathComponent.isEmpty
            ? ".\(path).tmp-\(getpid())"
            : ((path as NSString).deletingLastPathComponent as NSString)
                .appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = channels == 3 ? Self.formatRGB : Self.formatGray
        let ok = pixels.withUnsafeBytes { png_image_write_to_file(&image, temporary, 0, $0.baseAddress, 0, nil) }
        let message = Self.message(of: image)
        png_image_free(&image)
        guard ok != 0 else {
            unlink(temporary)
            throw .pngWrite(path: path, reason: message.isEmpty ? String(cString: strerror(errno)) : message)
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .pngWrite(path: path, reason: reason)
        }
    }

    /// Decodes the PNG or JPEG file at `path` (told apart by its first bytes) into 8-bit
    /// `channels` (1: grayscale, 3: RGB; nil: the file's own, 3 for colour and palette files,
    /// else 1). PNG: libpng converts colour to gray, 16-bit to 8-bit, and composites alpha over
    /// black. JPEG: libjpeg-turbo's TurboJPEG decodes it as `ImageDecoder` does for training
    /// (Pillow's pixels), colour to gray as Pillow's `convert("L")`.
    public init(contentsOf path: String, channels: Int? = nil) throws(InspectError) {
        if let channels, channels != 1 && channels != 3 {
            throw .invalidPicture("channels is \(channels); 1 or 3 expected")
        }
        if let kind = nonRegularFileKind(path) { throw .pngRead(path: path, reason: "it is \(kind), not a PNG or JPEG file") }
        guard access(path, R_OK) == 0 else { throw .pngRead(path: path, reason: String(cString: strerror(errno))) }
        if Self.isJPEG(path) {
            let decoded: DecodedImage
            do { decoded = try ImageDecoder.decode(path: path) } catch { throw .jpegRead(path: path, reason: "\(error)") }
            guard decoded.width <= Self.maxSide, decoded.height <= Self.maxSide else {
                throw .jpegRead(path: path, reason: "its size \(decoded.width)x\(decoded.height) exceeds \(Self.maxSide) pixels a side")
            }
            let image = decoded.converted(toChannels: channels ?? decoded.channels)
            self.width = image.width
            self.height = image.height
            self.channels = image.channels
            self.pixels = image.pixels
            return
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            throw .pngRead(path: path, reason: Self.message(of: image))
        }
        let w = Int(image.width), h = Int(image.height)
        guard (1...Self.maxSide).contains(w), (1...Self.maxSide).contains(h) else {
            throw .pngRead(path: path, reason: "its size \(w)x\(h) exceeds \(Self.maxSide) pixels a side")
        }
        let c = channels ?? ((image.format & Self.formatRGB) != 0 ? 3 : 1)
        image.format = c == 3 ? Self.formatRGB : Self.formatGray
        var pixels = [UInt8](repeating: 0, count: w * h * c)
        let ok = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard ok != 0 else { throw .pngRead(path: path, reason: Self.message(of: image)) }
        self.width = w
        self.height = h
        self.channels = c
        self.pixels = pixels
    }

    /// Whether the file starts with JPEG's marker `FF D8 FF`.
    private static func isJPEG(_ path: String) -> Bool {
        guard let file = fopen(path, "rb") else { return false }
        defer { fclose(file) }
        var head = [UInt8](repeating: 0, count: 3)
        return fread(&head, 1, 3, file) == 3 && ImageDecoder.format(of: head) == .jpeg
    }

    /// The picture's values as a model's input: `channels` planes (CHW) of byte / 255, as
    /// training data is scaled.
    public var planes: [Float] {
        var out = [Float](repeating: 0, count: pixels.count)
        let plane = width * height
        for i in 0..<plane { for c in 0..<channels { out[c * plane + i] = Float(pixels[i * channels + c]) / 255 } }
        return out
    }

    /// png.h's PNG_FORMAT_GRAY (0) and PNG_FORMAT_RGB (PNG_FORMAT_FLAG_COLOR, 2): macros of
    /// macros, which Swift does not import.
    static let formatGray: png_uint_32 = 0
    static let formatRGB: png_uint_32 = 2

    /// libpng's message for the last failure on `image`.
    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
