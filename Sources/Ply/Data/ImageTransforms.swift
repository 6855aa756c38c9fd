/// The deterministic transforms applied to every image as it is loaded, in torchvision's
/// order: `Resize(resize)` (shorter side), `CenterCrop(centerCrop)`, conversion to
/// `channels`. The random ones (crop with padding, flip) are an `Augmentation`, applied per
/// batch; normalisation is `ImageDataset.normalized(mean:std:)`.
///
/// Resizing is Pillow's `Image.resize(size, Image.BILINEAR)` — what torchvision's `Resize`
/// does to the PIL images `ImageFolder` loads — to the byte: a triangle filter widened by the
/// scale factor when shrinking (antialiased), 8-bit fixed-point weights with 22 fraction bits,
/// the horizontal pass first with a rounded 8-bit intermediate, then the vertical pass.
public struct ImageTransforms: Sendable, Equatable {
    /// Resize so that the shorter side is this many pixels, keeping the aspect ratio (the longer
    /// side is `Int(resize * long / short)`, as torchvision computes it); nil: no resize.
    public var resize: Int?
    /// Crop this square from the centre (torchvision's `CenterCrop`: offsets rounded half to
    /// even, zero padding when the image is smaller); nil: no crop. With `resize` and no
    /// `centerCrop`, images are cropped to `resize` × `resize`, so that every image has one size.
    public var centerCrop: Int?
    /// Channels the images are converted to: 1 (gray) or 3 (RGB); nil: 1 when every image
    /// of the training set is gray, else 3.
    public var channels: Int?

    /// No transform.
    public init(resize: Int? = nil, centerCrop: Int? = nil, channels: Int? = nil) {
        self.resize = resize
        self.centerCrop = centerCrop
        self.channels = channels
    }

    /// The largest side accepted for `resize` and `centerCrop`.
    public static let maxSide = 16_384

    /// Throws `DataError.invalidOption` naming the first field out of range.
    public func validate() throws(DataError) {
        if let resize, !(1...Self.maxSide).contains(resize) {
            throw .invalidOption(name: "resize", value: String(resize), accepted: "1...\(Self.maxSide)")
        }
        if let centerCrop, !(1...Self.maxSide).contains(centerCrop) {
            throw .invalidOption(name: "center crop", value: String(centerCrop), accepted: "1...\(Self.maxSide)")
        }
        if let channels, channels != 1 && channels != 3 {
            throw .invalidOption(name: "channels", value: String(channels), accepted: "1 or 3")
        }
    }

    /// The square side every image has after these transforms, when they fix one.
    public var outputSide: Int? { centerCrop ?? resize }

    /// Resize then centre-crop `image` (channels unchanged).
    public func apply(_ image: DecodedImage) -> DecodedImage {
        var out = image
        if let resize { out = Self.resized(out, shorterSide: resize) }
        if let side = outputSide { out = Self.centerCropped(out, width: side, height: side) }
        return out
    }

    /// torchvision's output size for `Resize(shorterSide)`: the shorter side becomes
    /// `shorterSide`, the longer `Int(shorterSide * long / short)` (truncated).
    public static func resizedSize(width: Int, height: Int, shorterSide: Int) -> (width: Int, height: Int) {
        let short = min(width, height), long = max(width, height)
        let newLong = Int(Double(shorterSide) * Double(long) / Double(short))
        return width <= height ? (shorterSide, newLong) : (newLong, shorterSide)
    }

    /// `image` resized so that its shorter side is `shorterSide` (Pillow's bilinear; see the type).
    public static func resized(_ image: DecodedImage, shorterSide: Int) -> DecodedImage {
        let size = resizedSize(width: image.width, height: image.height, shorterSide: shorterSide)
        return resized(image, width: size.width, height: size.height)
    }

    /// `image` resized to `width` × `height` exactly as Pillow's `resize((width, height), BILINEAR)`.
    public static func resized(_ image: DecodedImage, width: Int, height: Int) -> DecodedImage {
        precondition(width >= 1 && height >= 1, "resized: size must be positive")
        var out = image
        // Pillow skips a pass whose size does not change (its weights would be the identity).
        if width != image.width { out = pass(out, outSize: width, horizontal: true) }
        if height != image.height { out = pass(out, outSize: height, horizontal: false) }
        return out
    }

    /// Pillow's fixed-point precision: 32 bits less 8 for the pixel and 2 for the sign and overshoot.
    private static let precisionBits = 22

    /// Pillow's `precompute_coeffs` with the bilinear filter and `normalize_coeffs_8bpc`: for
    /// output pixel x, centre = (x + ½)·scale, support = max(scale, 1), taps from
    /// xmin = ⌊centre − support + ½⌋ to ⌊centre + support + ½⌋ (clamped to the input), weight of
    /// tap i = max(0, 1 − |(i − centre + ½) / max(scale, 1)|), normalised to sum 1, then
    /// rounded to 22-bit fixed point.
    static func coefficients(inSize: Int, outSize: Int) -> (bounds: [(first: Int, count: Int)], weights: [[Int32]]) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        var bounds: [(first: Int, count: Int)] = []
        var weights: [[Int32]] = []
        bounds.reserveCapacity(outSize)
        weights.reserveCapacity(outSize)
        for x in 0..<outSize {
            let center = (Double(x) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var k = [Double](repeating: 0, count: max(xmax, 0))
            var total = 0.0
            for i in 0..<max(xmax, 0) {
                let t = abs((Double(i + xmin) - center + 0.5) * ss)
                let w = t < 1 ? 1 - t : 0
                k[i] = w
                total += w
            }
            let fixed: [Int32] = k.map { value in
                let v = total != 0 ? value / total : value
                let scaled = v * Double(1 << precisionBits)
                return Int32(v < 0 ? scaled - 0.5 : scaled + 0.5)
            }
            bounds.append((xmin, max(xmax, 0)))
            weights.append(fixed)
        }
        return (bounds, weights)
    }

    /// One separable pass along rows (`horizontal`) or columns, rounding to 8 bits as Pillow does.
    private static func pass(_ image: DecodedImage, outSize: Int, horizontal: Bool) -> DecodedImage {
        let c = image.channels
        let inSize = horizontal ? image.width : image.height
        let (bounds, weights) = coefficients(inSize: inSize, outSize: outSize)
        let outW = horizontal ? outSize : image.width, outH = horizontal ? image.height : outSize
        let half = Int32(1) << (precisionBits - 1)
        let pixels = [UInt8](unsafeUninitializedCapacity: outW * outH * c) { buffer, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                for y in 0..<outH {
                    for x in 0..<outW {
                        let o = horizontal ? x : y
                        let (first, count) = bounds[o]
                        let k = weights[o]
                        for ch in 0..<c {
                            var sum = half
                            for i in 0..<count {
                                let sx = horizontal ? first + i : x, sy = horizontal ? y : first + i
                                sum &+= Int32(src[(sy * image.width + sx) * c + ch]) &* k[i]
                            }
                            // Pillow's clip8: the integer part, clamped to 0...255.
                            let value = sum >> Int32(precisionBits)
                            buffer[(y * outW + x) * c + ch] = sum <= 0 ? 0 : UInt8(min(value, 255))
                        }
                    }
                }
            }
            initialized = outW * outH * c
        }
        return DecodedImage(width: outW, height: outH, channels: c, pixels: pixels)
    }

    /// torchvision's `CenterCrop((height, width))`: the offset of each axis is
    /// `round((size − crop) / 2)` (Python's round: half to even) when the crop fits, and the
    /// image is padded with zeros, `(crop − size) // 2` before, when it does not.
    public static func centerCropped(_ image: DecodedImage, width: Int, height: Int) -> DecodedImage {
        if width == image.width && height == image.height { return image }
        func offset(_ size: Int, _ crop: Int) -> Int {
            if crop > size { return -((crop - size) / 2) }
            let d = size - crop
            let k = d / 2
            return d % 2 == 0 ? k : (k % 2 == 0 ? k : k + 1)   // k + ½ rounded half to even
        }
        let top = offset(image.height, height), left = offset(image.width, width)
        let c = image.channels
        var pixels = [UInt8](repeating: 0, count: width * height * c)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<height {
                let sy = y + top
                guard sy >= 0 && sy < image.height else { continue }
                for x in 0..<width {
                    let sx = x + left
                    guard sx >= 0 && sx < image.width else { continue }
                    for ch in 0..<c { pixels[(y * width + x) * c + ch] = src[(sy * image.width + sx) * c + ch] }
                }
            }
        }
        return DecodedImage(width: width, height: height, channels: c, pixels: pixels)
    }
}
