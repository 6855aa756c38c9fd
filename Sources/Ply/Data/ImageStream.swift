import Foundation
import Synchronization

/// Whether an image-folder set is decoded once and held in memory (cached) or decoded batch
/// by batch as training reads it (streamed). Either way the floats are the same, bit for bit.
public enum DecodedCache: String, Sendable, Equatable, CaseIterable {
    /// Cache when the decoded set (`N·C·H·W·4` bytes) fits in `DataOptions.cacheBudget`,
    /// else stream. The default.
    case auto
    /// Always cache (refused, before allocating, when the set does not fit in memory).
    case on
    /// Always stream: memory holds only the batches being prepared.
    case off
}

/// The images of a streamed data set: files decoded, transformed, scaled (and normalised)
/// each time a batch needs them, on `threads` threads, the very steps `ImageFolder.load`
/// applies once to a cached set — so a streamed set gives the same floats, bit for bit.
///
/// Immutable, and safe to use from several threads at once (each decode owns its state).
public final class ImageStream: Sendable, Equatable {
    /// The files, in data-set order (the unreadable ones already left out).
    public let items: [ImageFolder.Item]
    /// The deterministic transforms applied to each image.
    public let transforms: ImageTransforms
    /// Channels every image is converted to.
    public let channels: Int
    /// Height of every image after the transforms.
    public let height: Int
    /// Width of every image after the transforms.
    public let width: Int
    /// Decoding threads.
    public let threads: Int
    /// `ImageDecoder` limit on declared pixels.
    let maxPixels: Int
    /// Per-channel normalisations `(x − mean) / std`, applied in order (empty: none).
    let normalizations: [Normalization]

    /// One `ImageDataset.normalized(mean:std:)`: one mean and std per channel.
    struct Normalization: Sendable, Equatable {
        let mean: [Float]
        let std: [Float]
    }

    init(items: [ImageFolder.Item], transforms: ImageTransforms, channels: Int, height: Int, width: Int,
         threads: Int, maxPixels: Int, normalizations: [Normalization] = []) {
        self.items = items
        self.transforms = transforms
        self.channels = channels
        self.height = height
        self.width = width
        self.threads = max(1, threads)
        self.maxPixels = maxPixels
        self.normalizations = normalizations
    }

    /// Floats per image.
    public var sampleSize: Int { channels * height * width }

    /// Equal when they decode the same files the same way.
    public static func == (a: ImageStream, b: ImageStream) -> Bool {
        a === b || (a.items == b.items && a.transforms == b.transforms && a.channels == b.channels
            && a.height == b.height && a.width == b.width && a.maxPixels == b.maxPixels && a.normalizations == b.normalizations)
    }

    /// The same stream, then normalised per channel (after any normalisation it has: they
    /// compose, as `ImageDataset.normalized` on cached pixels does).
    func normalized(mean: [Float], std: [Float]) -> ImageStream {
        ImageStream(items: items, transforms: transforms, channels: channels, height: height, width: width,
                    threads: threads, maxPixels: maxPixels, normalizations: normalizations + [Normalization(mean: mean, std: std)])
    }

    /// The items at `indices`.
    func subset(_ indices: some Collection<Int>) -> ImageStream {
        ImageStream(items: indices.map { items[$0] }, transforms: transforms, channels: channels, height: height,
                    width: width, threads: threads, maxPixels: maxPixels, normalizations: normalizations)
    }

    /// Decodes the images at `indices` into `target` (`indices.count · sampleSize` floats, image
    /// after image), on up to `threads` threads.
    ///
    /// - Throws: the `DataError` of the first image (in `indices` order) that cannot be read
    ///   any more, or whose size after the transforms changed (the file changed since the set
    ///   was checked).
    public func decode(_ indices: [Int], into target: UnsafeMutablePointer<Float>) throws(DataError) {
        let n = indices.count
        guard n > 0 else { return }
        let workers = min(threads, n)
        let size = sampleSize
        let failure = Mutex<(position: Int, error: DataError)?>(nil)
        nonisolated(unsafe) let out = target
        // Static interleaved assignment, as `ImageFolder.load`: worker w decodes positions w,
        // w + workers, ...; each writes only its own images.
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let jpeg = JPEGHandle()
            var k = worker
            while k < n {
                do throws(DataError) {
                    try self.decodeOne(self.items[indices[k]], into: out + k * size, jpeg: jpeg)
                } catch {
                    failure.withLock { if $0 == nil || k < $0!.position { $0 = (k, error) } }
                }
                k += workers
            }
        }
        if let (_, error) = failure.withLock({ $0 }) { throw error }
    }

    /// One image, as `ImageFolder.load` computes it: decode, transform, convert the channels,
    /// byte / 255 (CHW), then each `(x − mean) / std` as `ImageDataset.normalized` does.
    func decodeOne(_ item: ImageFolder.Item, into target: UnsafeMutablePointer<Float>, jpeg: JPEGHandle?) throws(DataError) {
        let image = transforms.apply(try ImageDecoder.decode(path: item.path, maxPixels: maxPixels, jpeg: jpeg))
        guard image.width == width, image.height == height else {
            throw .imageSizeMismatch(path: item.path, width: image.width, height: image.height,
                                     expectedWidth: width, expectedHeight: height)
        }
        Self.writePlanes(image, channels: channels, into: target)
        let (c, plane) = (channels, height * width)
        for n in normalizations {
            for ch in 0..<c {
                let m = n.mean[ch], s = n.std[ch]
                for j in (ch * plane)..<((ch + 1) * plane) { target[j] = (target[j] - m) / s }
            }
        }
    }

    /// `image` converted to `channels` (`DecodedImage.converted(toChannels:)`), H×W×C bytes to
    /// C×H×W floats `byte / 255` (torchvision's `ToTensor`) at `target`: what a cached set holds
    /// (`ImageFolder.load`) and a streamed batch gets.
    static func writePlanes(_ image: DecodedImage, channels c: Int, into target: UnsafeMutablePointer<Float>) {
        let converted = image.converted(toChannels: c)
        let plane = image.height * image.width
        converted.pixels.withUnsafeBufferPointer { p in
            for ch in 0..<c {
                for j in 0..<plane { target[ch * plane + j] = Float(p[j * c + ch]) / 255 }
            }
        }
    }

    /// Images decoded at a time by `statistics()`: 256, or as many as fit in 64 MiB (at least
    /// one) — the memory of a pass over the set is bounded whatever the image size (256 images
    /// of 3×128×128 floats are 48 MiB; of 3×224×224, 154 MB: 111 of them).
    var chunk: Int { max(1, min(256, (64 << 20) / max(1, sampleSize * MemoryLayout<Float>.size))) }

    /// Per-channel mean and population standard deviation over every image, summed in Double
    /// in the order `ImageDataset.channelStatistics` sums a cached set (per channel, image
    /// after image, pixel after pixel): the same values to the bit, without holding the set.
    func statistics() throws(DataError) -> (mean: [Float], std: [Float]) {
        var sum = [Double](repeating: 0, count: channels), squares = sum
        let plane = height * width, size = sampleSize
        let chunk = self.chunk
        var buffer = [Float](repeating: 0, count: chunk * size)
        var first = 0
        while first < items.count {
            let indices = Array(first..<min(first + chunk, items.count))
            try buffer.withUnsafeMutableBufferPointer { (b) throws(DataError) in try decode(indices, into: b.baseAddress!) }
            for k in 0..<indices.count {
                for c in 0..<channels {
                    let start = k * size + c * plane
                    for value in buffer[start..<start + plane] {
                        sum[c] += Double(value)
                        squares[c] += Double(value) * Double(value)
                    }
                }
            }
            first += chunk
        }
        let total = Double(items.count * plane)
        var mean = [Float](repeating: 0, count: channels), std = mean
        guard !items.isEmpty else { return (mean, std) }
        for c in 0..<channels {
            let m = sum[c] / total
            mean[c] = Float(m)
            std[c] = Float(max(squares[c] / total - m * m, 0).squareRoot())
        }
        return (mean, std)
    }
}
