/// The random transforms of training images: torchvision's `RandomCrop(size, padding)` with
/// `size` the image's own (pad `cropPadding` pixels of `fill` on every side, then cut the
/// image's size back out at a random offset) and `RandomHorizontalFlip(0.5)`.
///
/// Reproducible: the offsets and the flip of an image depend only on (seed, epoch, the image's
/// index in the data set), through `SplitMix64` — not on the batch it lands in, the thread
/// that assembles it or where a run was interrupted, so a resumed run sees the very images an
/// uninterrupted one does. `BatchLoader` applies it on its prefetch thread.
public struct Augmentation: Sendable, Equatable {
    /// Pixels of padding on each side before the random crop; 0: no crop.
    public var cropPadding: Int
    /// Flip half of the images left to right.
    public var horizontalFlip: Bool
    /// The padding's value per channel (or one for all), in the data set's units: 0 for
    /// pixels in [0, 1]; `(0 − mean) / std` after normalisation, so that the padding is
    /// black as torchvision's (which pads before `Normalize`). Empty: 0.
    public var fill: [Float]

    /// No augmentation.
    public static let none = Augmentation()

    /// - Parameters:
    ///   - cropPadding: padding for the random crop (0: none).
    ///   - horizontalFlip: random horizontal flips.
    ///   - fill: the padding value per channel (empty: 0).
    public init(cropPadding: Int = 0, horizontalFlip: Bool = false, fill: [Float] = []) {
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
        self.fill = fill
    }

    /// The largest padding accepted.
    public static let maxPadding = 4096

    /// Whether it changes anything.
    public var isIdentity: Bool { cropPadding == 0 && !horizontalFlip }

    /// Throws `DataError.invalidOption` when `cropPadding` is out of range or a fill value is not finite.
    public func validate() throws(DataError) {
        guard (0...Self.maxPadding).contains(cropPadding) else {
            throw .invalidOption(name: "random crop padding", value: String(cropPadding), accepted: "0...\(Self.maxPadding)")
        }
        guard fill.allSatisfy(\.isFinite) else {
            throw .invalidOption(name: "fill", value: "\(fill)", accepted: "finite numbers")
        }
    }

    /// The crop offsets (each in `0...2·cropPadding`, the top-left corner in the padded image)
    /// and the flip of the image at `index` in `epoch`: one generator seeded by
    /// `mix(seed ^ mix(epoch) ^ mix(index ^ 0x6175_6775))`, drawn in the order top, left, flip.
    public func draw(seed: UInt64, epoch: Int, index: Int) -> (top: Int, left: Int, flip: Bool) {
        let e = SplitMix64.mix(UInt64(bitPattern: Int64(epoch)))
        let i = SplitMix64.mix(UInt64(bitPattern: Int64(index)) ^ 0x6175_6775)   // "augu"
        var generator = SplitMix64(seed: SplitMix64.mix(seed ^ e ^ i))
        let span = 2 * cropPadding + 1
        let top = cropPadding > 0 ? generator.next(below: span) : 0
        let left = cropPadding > 0 ? generator.next(below: span) : 0
        let flip = horizontalFlip ? generator.next(below: 2) == 1 : false
        return (top, left, flip)
    }

    /// Writes the augmented image at `index` (C×H×W floats at `source`) to `target`.
    ///
    /// Output pixel (c, y, x) is input (c, y + top − p, x' + left − p), with x' = W − 1 − x when
    /// flipped (torchvision crops, then flips), or `fill[c]` where that falls outside the image.
    public func apply(source: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>,
                      channels: Int, height: Int, width: Int, seed: UInt64, epoch: Int, index: Int) {
        let (top, left, flip) = draw(seed: seed, epoch: epoch, index: index)
        let p = cropPadding
        for c in 0..<channels {
            let value = fill.isEmpty ? 0 : fill[fill.count == 1 ? 0 : c]
            let plane = c * height * width
            for y in 0..<height {
                let sy = y + top - p
                let row = target + plane + y * width
                guard sy >= 0 && sy < height else {
                    row.update(repeating: value, count: width)
                    continue
                }
                let from = source + plane + sy * width
                for x in 0..<width {
                    let cx = flip ? width - 1 - x : x
                    let sx = cx + left - p
                    row[x] = sx >= 0 && sx < width ? from[sx] : value
                }
            }
        }
    }
}
