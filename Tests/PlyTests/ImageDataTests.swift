import CPNG
import CTurboJPEG
import Foundation
import Testing
@testable import Ply

/// Issue #17 items 1–3 and 6: image folders, CIFAR binary files, transforms — decoded with
/// libpng and TurboJPEG and checked against Pillow/torchvision on real photographs.
@Suite struct ImageDataTests {
    // MARK: - Writing test images (with the same libraries, encoding)

    /// Writes `pixels` (H×W×C, C 1 or 3) as a PNG with libpng's simplified API.
    static func writePNG(_ path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = channels == 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0
        let ok = pixels.withUnsafeBytes { png_image_write_to_file(&image, path, 0, $0.baseAddress, Int32(width * channels), nil) }
        guard ok != 0 else { throw PlyError.invalid("cannot write \(path)") }
    }

    /// Writes `pixels` as a JPEG (quality 95) with TurboJPEG.
    static func writeJPEG(_ path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard let handle = tjInitCompress() else { throw PlyError.invalid("tjInitCompress") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let format = channels == 3 ? Int32(TJPF_RGB.rawValue) : Int32(TJPF_GRAY.rawValue)
        let sampling = channels == 3 ? Int32(TJSAMP_420.rawValue) : Int32(TJSAMP_GRAY.rawValue)
        let status = pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), format, &buffer, &size, sampling, 95, 0)
        }
        defer { tjFree(buffer) }
        guard status == 0, let buffer else { throw PlyError.invalid("tjCompress2: \(String(cString: tjGetErrorStr2(handle)))") }
        try Data(bytes: buffer, count: Int(size)).write(to: URL(fileURLWithPath: path))
    }

    /// Deterministic pixels: value depends on (seed, y, x, c).
    static func pattern(width: Int, height: Int, channels: Int, seed: Int) -> [UInt8] {
        (0..<(width * height * channels)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761 &+ seed &* 97) >> 7) }
    }

    static func temporaryDirectory() throws -> String { try TrainerTests.makeTemporaryDirectory() }

    /// A tiny image folder: classes `b_dog` and `a_cat` (sorted: a_cat = 0), PNG and JPEG, gray
    /// and RGB, 10×12 or other sizes, one image in a nested folder; `corrupt` adds a broken JPEG.
    static func makeFolder(corrupt: Bool = false, test: Bool = true, sameSize: Bool = false) throws -> String {
        let root = try temporaryDirectory()
        for (split, count) in test ? [("train", 4), ("test", 2)] : [("train", 4)] {
            for (k, name) in ["b_dog", "a_cat"].enumerated() {
                let dir = "\(root)/\(split)/\(name)"
                try FileManager.default.createDirectory(atPath: dir + "/nested", withIntermediateDirectories: true)
                for i in 0..<count {
                    let (w, h) = sameSize || i % 2 == 0 ? (12, 10) : (15, 20)
                    let channels = i == 1 ? 3 : 1
                    let pixels = pattern(width: w, height: h, channels: channels, seed: 10 * k + i)
                    let base = i == 3 ? "\(dir)/nested/img\(i)" : "\(dir)/img\(i)"
                    if i % 2 == 0 {
                        try writePNG(base + ".png", width: w, height: h, channels: channels, pixels: pixels)
                    } else {
                        try writeJPEG(base + ".JPG", width: w, height: h, channels: channels, pixels: pixels)
                    }
                }
                try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(dir)/notes.txt"))
            }
        }
        if corrupt {
            try Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46]).write(to: URL(fileURLWithPath: "\(root)/train/a_cat/broken.jpg"))
        }
        return root
    }

    // MARK: - Image folders

    @Test func folderClassesOrderAndLabelsAreTorchvisions() throws {
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try ImageFolder(root: root + "/train")
        #expect(folder.classes == ["a_cat", "b_dog"])
        // sorted(os.walk): the class folder's files by name, then the nested folder's; .txt ignored.
        let names = folder.items.map { String($0.path.dropFirst(root.count + 7)) }
        #expect(names == ["a_cat/img0.png", "a_cat/img1.JPG", "a_cat/img2.png", "a_cat/nested/img3.JPG",
                          "b_dog/img0.png", "b_dog/img1.JPG", "b_dog/img2.png", "b_dog/nested/img3.JPG"])
        #expect(folder.items.map(\.label) == [0, 0, 0, 0, 1, 1, 1, 1])
    }

    @Test func folderLoadsGrayAndRGBAtOneSize() throws {
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var options = DataOptions()
        options.transforms = ImageTransforms(resize: 8)
        let data = try DataDirectory(path: root).load(options: options)
        #expect(data.format == .imageFolder)
        let train = try #require(data.train), test = try #require(data.test)
        // One image is RGB, so every image becomes 3 channels (gray repeated).
        #expect([train.count, train.channels, train.height, train.width] as [Int] == [8, 3, 8, 8] as [Int])
        #expect([test.count, test.channels, test.height, test.width] as [Int] == [4, 3, 8, 8] as [Int])
        #expect(train.classNames == ["a_cat", "b_dog"])
        #expect(train.labels == [0, 0, 0, 0, 1, 1, 1, 1])
        // A gray PNG stays exact through decode (no resize: img0 is 12x10, centre crop 8 from a
        // resize to 8 of the shorter side is 9x8 -> cropped; check the gray image is replicated).
        let first = Array(train.images[0..<64]), second = Array(train.images[64..<128])
        #expect(first == second)
        // Forced to 1 channel: RGB converted with Pillow's luma weights.
        options.transforms.channels = 1
        let gray = try #require(try DataDirectory(path: root).load(options: options).train)
        #expect(gray.channels == 1)
    }

    @Test func pngDecodesExactly() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rgb = Self.pattern(width: 7, height: 5, channels: 3, seed: 3)
        try Self.writePNG(dir + "/x.png", width: 7, height: 5, channels: 3, pixels: rgb)
        let image = try ImageDecoder.decode(path: dir + "/x.png")
        #expect(image == DecodedImage(width: 7, height: 5, channels: 3, pixels: rgb))
        // Pillow's convert("L"): (R·19595 + G·38470 + B·7471 + 32768) >> 16.
        let gray = image.converted(toChannels: 1)
        let r = UInt32(rgb[0]) * 19595, g = UInt32(rgb[1]) * 38470, b = UInt32(rgb[2]) * 7471
        let luma = UInt8((r + g + b + 32768) >> 16)
        #expect(gray.pixels[0] == luma)
    }

    @Test func corruptImageIsNamedOrSkippedAndCounted() throws {
        let root = try Self.makeFolder(corrupt: true, sameSize: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let error = #expect(throws: DataError.self) { try DataDirectory(path: root).load(options: DataOptions()) }
        #expect(error?.description.contains("train/a_cat/broken.jpg") == true, "\(String(describing: error))")
        #expect(error?.description.contains("--skip-bad-images") == true)
        var options = DataOptions()
        options.skipBadImages = true
        let data = try DataDirectory(path: root).load(options: options)
        #expect(data.skipped.count == 1)
        #expect(data.train?.count == 8)
    }

    @Test func truncatedAndForeignFilesAreRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pixels = Self.pattern(width: 32, height: 32, channels: 3, seed: 1)
        try Self.writeJPEG(dir + "/a.jpg", width: 32, height: 32, channels: 3, pixels: pixels)
        try Self.writePNG(dir + "/a.png", width: 32, height: 32, channels: 3, pixels: pixels)
        for name in ["a.jpg", "a.png"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/cut-" + name))
            let error = #expect(throws: DataError.self) { try ImageDecoder.decode(path: dir + "/cut-" + name) }
            guard case .corruptImage(let path, _, _) = error else { Issue.record("\(name): \(String(describing: error))"); continue }
            #expect(path == dir + "/cut-" + name)
        }
        try Data("GIF89a......".utf8).write(to: URL(fileURLWithPath: dir + "/gif.png"))
        #expect(throws: DataError.unsupportedImage(path: dir + "/gif.png", reason: "its first bytes are neither PNG's signature (89 50 4E 47) nor JPEG's (FF D8 FF)")) {
            try ImageDecoder.decode(path: dir + "/gif.png")
        }
        #expect(throws: DataError.notARegularFile(path: dir, kind: "a directory")) { try ImageDecoder.decode(path: dir) }
    }

    /// The declared size is checked before any pixel is allocated: a 1 GB-pixel image costs nothing.
    @Test func declaredSizeIsCheckedBeforeAllocating() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pixels = Self.pattern(width: 40, height: 30, channels: 1, seed: 2)
        try Self.writePNG(dir + "/a.png", width: 40, height: 30, channels: 1, pixels: pixels)
        try Self.writeJPEG(dir + "/a.jpg", width: 40, height: 30, channels: 1, pixels: pixels)
        for name in ["a.png", "a.jpg"] {
            #expect(throws: DataError.imageTooLarge(path: dir + "/" + name, width: 40, height: 30, limit: 1000)) {
                try ImageDecoder.decode(path: dir + "/" + name, maxPixels: 1000)
            }
        }
        // A PNG header declaring 2^31-1 x 2^31-1 pixels, with a valid CRC: refused from the header alone.
        var ihdr: [UInt8] = Array("IHDR".utf8) + [0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 8, 2, 0, 0, 0]
        let crc = ihdr.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32Checksum($0)) }
        ihdr += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        let bomb: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr
        let error = #expect(throws: DataError.self) { try ImageDecoder.decode(bytes: bomb, path: "bomb.png") }
        guard case .imageTooLarge = error else {
            // libpng itself refuses sizes past its own user limit (1 000 000 px per side): also a clear error.
            guard case .corruptImage(let path, "PNG", _) = error else { Issue.record("\(String(describing: error))"); return }
            #expect(path == "bomb.png")
            return
        }
    }

    @Test func mixedSizesWithoutResizeAreAnError() throws {
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let error = #expect(throws: DataError.self) { try DataDirectory(path: root).load(options: DataOptions()) }
        guard case .imageSizeMismatch(let path, 15, 20, 12, 10) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(path.hasSuffix("a_cat/img1.JPG"))
        #expect(error?.description.contains("--resize") == true)
    }

    @Test func validationSplitIsDeterministicAndDisjoint() throws {
        let root = try Self.makeFolder(test: false, sameSize: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try ImageFolder(root: root + "/train")
        let (train, validation) = folder.split(validationFraction: 0.25, seed: 7)
        #expect(validation.items.count == 2 && train.items.count == 6)
        #expect(Set(train.items.map(\.path)).isDisjoint(with: validation.items.map(\.path)))
        #expect(folder.split(validationFraction: 0.25, seed: 7).validation.items == validation.items)
        var options = DataOptions()
        options.validationSplit = 0.25
        options.seed = 7
        let data = try DataDirectory(path: root).load(options: options)
        #expect(data.train?.count == 6 && data.test?.count == 2)
        // Without a split the folder has no held-out set.
        #expect(try DataDirectory(path: root).load(options: DataOptions()).test == nil)
        // With test/ present a split is ambiguous: refused.
        let both = try Self.makeFolder(sameSize: true)
        defer { try? FileManager.default.removeItem(atPath: both) }
        #expect(throws: DataError.self) { try DataDirectory(path: both).load(options: options) }
    }

    @Test func classesMustMatchAndNotBeEmpty() throws {
        let root = try Self.makeFolder(sameSize: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/test/c_cow", withIntermediateDirectories: true)
        let error = #expect(throws: DataError.self) { try DataDirectory(path: root).load(options: DataOptions()) }
        guard case .noImages(let dir, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(dir == root + "/test")
        try Self.writePNG(root + "/test/c_cow/x.png", width: 12, height: 10, channels: 1, pixels: [UInt8](repeating: 9, count: 120))
        #expect(throws: DataError.classMismatch(train: ["a_cat", "b_dog"], test: ["a_cat", "b_dog", "c_cow"])) {
            try DataDirectory(path: root).load(options: DataOptions())
        }
    }

    // MARK: - Against Pillow and torchvision, on scikit-learn's sample photographs

    struct PillowCase: Decodable {
        var name: String, file: String, resize: Int?, crop: Int?, channels: Int, shape: [Int], decodedStride: Int
    }

    /// Fixtures/images (generate.py): JPEG and PNG photographs decoded by Pillow 13 and
    /// transformed by torchvision 0.29 (`Resize(n)`, `CenterCrop(n)` on PIL images). Ply's
    /// decode and transforms must give the same bytes: tolerance 0 (Pillow's arithmetic is
    /// reproduced, and both use libjpeg-turbo's accurate IDCT).
    @Test func decodeResizeAndCropMatchPillowOnPhotographs() throws {
        let dir = fixtures.appendingPathComponent("images")
        let cases = try JSONDecoder().decode([PillowCase].self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
        #expect(cases.count == 5)
        for c in cases {
            let decoded = try ImageDecoder.decode(path: dir.appendingPathComponent(c.file).path).converted(toChannels: c.channels)
            let (dShape, dValues) = try NumPy.read(path: dir.appendingPathComponent("\(c.name)-decoded.npy").path)
            var ours: [Float] = []
            for ch in 0..<c.channels {
                for y in stride(from: 0, to: decoded.height, by: c.decodedStride) {
                    for x in stride(from: 0, to: decoded.width, by: c.decodedStride) {
                        ours.append(Float(decoded.pixels[(y * decoded.width + x) * c.channels + ch]) / 255)
                    }
                }
            }
            #expect(ours.count == dShape.reduce(1, *), "\(c.name): decoded shape")
            let decodeDiff = zip(ours, dValues).map { abs($0 - $1) * 255 }.max() ?? .infinity
            #expect(decodeDiff == 0, "\(c.name): decode differs from Pillow's by up to \(decodeDiff) levels")

            let out: DecodedImage
            if let crop = c.crop {
                out = ImageTransforms(resize: c.resize, centerCrop: crop).apply(decoded)
            } else {
                out = ImageTransforms.resized(decoded, shorterSide: try #require(c.resize))
            }
            let (eShape, expected) = try NumPy.read(path: dir.appendingPathComponent("\(c.name)-expected.npy").path)
            #expect([1, c.channels, out.height, out.width] == eShape, "\(c.name): size \(out.width)x\(out.height), torchvision \(eShape)")
            var planar = [Float](repeating: 0, count: out.pixels.count)
            for ch in 0..<c.channels { for j in 0..<(out.width * out.height) { planar[ch * out.width * out.height + j] = Float(out.pixels[j * c.channels + ch]) / 255 } }
            let diff = zip(planar, expected).map { abs($0 - $1) * 255 }.max() ?? .infinity
            #expect(diff == 0, "\(c.name): transforms differ from torchvision's by up to \(diff) levels")
        }
    }

    @Test func centerCropRoundsHalfToEvenAndPads() {
        let image = DecodedImage(width: 7, height: 1, channels: 1, pixels: [0, 1, 2, 3, 4, 5, 6])
        // (7 - 4) / 2 = 1.5 rounds to 2 (Python's round), so the crop starts at 2.
        #expect(ImageTransforms.centerCropped(image, width: 4, height: 1).pixels == [2, 3, 4, 5])
        // (7 - 2) / 2 = 2.5 rounds to 2.
        #expect(ImageTransforms.centerCropped(image, width: 2, height: 1).pixels == [2, 3])
        // Larger than the image: (9 - 7) // 2 = 1 zero before.
        #expect(ImageTransforms.centerCropped(image, width: 9, height: 1).pixels == [0, 0, 1, 2, 3, 4, 5, 6, 0])
        let size = ImageTransforms.resizedSize(width: 640, height: 427, shorterSide: 100)
        #expect(size.width == 149 && size.height == 100)
    }

    // MARK: - Augmentation

    @Test func augmentationIsSeededPerImageAndExact() {
        let a = Augmentation(cropPadding: 2, horizontalFlip: true, fill: [-1])
        #expect(a.draw(seed: 5, epoch: 3, index: 11) == a.draw(seed: 5, epoch: 3, index: 11))
        let draws = (0..<64).map { a.draw(seed: 5, epoch: 3, index: $0) }
        #expect(Set(draws.map { "\($0)" }).count > 20, "draws should vary per image")
        #expect(draws.allSatisfy { (0...4).contains($0.top) && (0...4).contains($0.left) })
        #expect(draws.contains { $0.flip } && draws.contains { !$0.flip })
        #expect(a.draw(seed: 5, epoch: 4, index: 11) != a.draw(seed: 5, epoch: 3, index: 11)
                || a.draw(seed: 5, epoch: 4, index: 12) != a.draw(seed: 5, epoch: 3, index: 12))
        // Values: a 1x3x4 image through a chosen draw.
        let source: [Float] = (0..<12).map(Float.init)
        var target = [Float](repeating: 99, count: 12)
        let index = (0..<64).first { let d = a.draw(seed: 5, epoch: 0, index: $0); return d.top == 1 && d.flip }!
        let d = a.draw(seed: 5, epoch: 0, index: index)
        source.withUnsafeBufferPointer { s in
            target.withUnsafeMutableBufferPointer { t in
                a.apply(source: s.baseAddress!, target: t.baseAddress!, channels: 1, height: 3, width: 4, seed: 5, epoch: 0, index: index)
            }
        }
        for y in 0..<3 {
            for x in 0..<4 {
                let sy = y + d.top - 2, sx = (3 - x) + d.left - 2
                let want: Float = sy >= 0 && sy < 3 && sx >= 0 && sx < 4 ? source[sy * 4 + sx] : -1
                #expect(target[y * 4 + x] == want, "(\(y), \(x)) with \(d)")
            }
        }
    }

    /// The same image gets the same augmentation whatever batch it falls in: batch size 3
    /// and 5, with and without the prefetch thread.
    @Test func augmentedBatchesDoNotDependOnBatching() {
        let n = 13
        let data = ImageDataset(count: n, channels: 2, height: 4, width: 5, images: (0..<(n * 40)).map { Float($0 % 97) },
                                labels: (0..<n).map { Int32($0 % 3) })
        let aug = Augmentation(cropPadding: 1, horizontalFlip: true)
        func perImage(_ batchSize: Int, prefetch: Int) -> [Int: [Float]] {
            let loader = BatchLoader(dataset: data, batchSize: batchSize, seed: 9, epoch: 2, prefetch: prefetch, augmentation: aug)
            var result: [Int: [Float]] = [:]
            var position = 0
            for batch in loader {
                for i in 0..<batch.count {
                    result[loader.order[position]] = Array(batch.images[(i * 40)..<((i + 1) * 40)])
                    position += 1
                }
            }
            return result
        }
        let reference = perImage(3, prefetch: 0)
        #expect(reference.count == n)
        #expect(perImage(5, prefetch: 2) == reference)
        #expect(reference != Dictionary(uniqueKeysWithValues: (0..<n).map { ($0, Array(data.images[($0 * 40)..<(($0 + 1) * 40)])) }))
    }

    /// With random crops and flips, a run interrupted mid-epoch and resumed ends with the
    /// uninterrupted run's weights, bit for bit; and the augmentation does change training.
    @Test func augmentedRunResumesBitIdentically() throws {
        let (train, test) = try TrainerTests.fixtureData()
        let dirA = try Self.temporaryDirectory(), dirB = try Self.temporaryDirectory()
        defer { TrainerTests.remove(dirA); TrainerTests.remove(dirB) }
        func configuration(_ dir: String?, augment: Bool = true) -> TrainingConfiguration {
            var c = TrainerTests.quickConfiguration(epochs: 1, seed: 5, output: dir)
            if augment { c.augmentation = Augmentation(cropPadding: 3, horizontalFlip: true) }
            return c
        }
        let trainerA = try TrainerTests.makeTrainer(configuration(dirA))
        _ = try trainerA.run(train: train, test: test)
        let weightsA = try TrainerTests.weightBits(trainerA.model)

        let trainerB = try TrainerTests.makeTrainer(configuration(dirB))
        var polls = 0
        _ = TrainerTests.trainingError {
            _ = try trainerB.run(train: train, test: test, shouldStop: { polls += 1; return polls == 17 })
        }
        let trainerC = try TrainerTests.makeTrainer(configuration(dirB))
        _ = try trainerC.run(train: train, test: test, resume: true)
        #expect(try TrainerTests.weightBits(trainerC.model) == weightsA, "the resumed augmented run ends with other weights")

        let plain = try TrainerTests.makeTrainer(configuration(nil, augment: false))
        _ = try plain.run(train: train, test: test)
        #expect(try TrainerTests.weightBits(plain.model) != weightsA, "augmentation changed nothing")
    }

    // MARK: - CIFAR

    /// CIFAR records: label byte(s), then 1024 R, 1024 G, 1024 B.
    static func cifarRecord(labels: [UInt8], seed: Int) -> [UInt8] {
        labels + (0..<3072).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    @Test func cifar10BinaryIsDetectedAndRead() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sub = dir + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        for b in 1...5 {
            let bytes = (0..<2).flatMap { Self.cifarRecord(labels: [UInt8((b + $0) % 10)], seed: b * 10 + $0) }
            try Data(bytes).write(to: URL(fileURLWithPath: "\(sub)/data_batch_\(b).bin"))
        }
        try Data(Self.cifarRecord(labels: [9], seed: 99)).write(to: URL(fileURLWithPath: "\(sub)/test_batch.bin"))
        try Data((CIFAR.cifar10Names.joined(separator: "\n") + "\n\n").utf8).write(to: URL(fileURLWithPath: "\(sub)/batches.meta.txt"))
        let directory = try DataDirectory(path: dir)
        #expect(directory.format == .cifar10)
        let data = try directory.load(options: DataOptions())
        let train = try #require(data.train), test = try #require(data.test)
        #expect([train.count, train.channels, train.height, train.width] as [Int] == [10, 3, 32, 32] as [Int])
        #expect(train.labels == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6])
        #expect(test.labels == [9])
        #expect(data.classNames == CIFAR.cifar10Names)
        // Pixel (c=1 green, y=2, x=3) of the first record is byte 1 + 1024 + 2*32 + 3.
        let record = Self.cifarRecord(labels: [1], seed: 10)
        #expect(train.images[1024 + 2 * 32 + 3] == Float(record[1 + 1024 + 67]) / 255)
        // A file that is not whole records.
        try Data(Self.cifarRecord(labels: [1], seed: 0) + [7]).write(to: URL(fileURLWithPath: "\(sub)/test_batch.bin"))
        #expect(throws: DataError.cifarSize(path: "\(sub)/test_batch.bin", bytes: 3074, recordBytes: 3073)) {
            try directory.load(options: DataOptions())
        }
        // A label out of range names file and record.
        try Data(Self.cifarRecord(labels: [3], seed: 0) + Self.cifarRecord(labels: [10], seed: 1))
            .write(to: URL(fileURLWithPath: "\(sub)/test_batch.bin"))
        #expect(throws: DataError.labelOutOfRange(path: "\(sub)/test_batch.bin", index: 1, label: 10, classCount: 10)) {
            try directory.load(options: DataOptions())
        }
    }

    @Test func cifar100UsesFineLabelsAndTransforms() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.cifarRecord(labels: [3, 77], seed: 1) + Self.cifarRecord(labels: [19, 99], seed: 2))
            .write(to: URL(fileURLWithPath: "\(dir)/train.bin"))
        try Data(Self.cifarRecord(labels: [0, 5], seed: 3)).write(to: URL(fileURLWithPath: "\(dir)/test.bin"))
        let directory = try DataDirectory(path: dir)
        #expect(directory.format == .cifar100)
        var options = DataOptions()
        options.transforms = ImageTransforms(resize: 40, centerCrop: 36, channels: 1)
        options.normalization = .computed
        let data = try directory.load(options: options)
        let train = try #require(data.train)
        #expect(train.labels == [77, 99])
        #expect([train.channels, train.height, train.width] as [Int] == [1, 36, 36] as [Int])
        let (mean, std) = try train.channelStatistics()
        #expect(abs(mean[0]) < 1e-5 && abs(std[0] - 1) < 1e-4, "normalised with its own statistics: \(mean) \(std)")
        #expect(try #require(data.normalization).mean.count == 1)
    }

    @Test func unknownDirectoryNamesTheFormats() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: DataError.self) { try DataDirectory(path: dir) }
        #expect(error == .unknownFormat(directory: dir))
        #expect(error?.description.contains("CIFAR-10") == true)
    }

    // MARK: - The command line

    @Test func trainEvalAndPredictReadImageFolders() throws {
        let root = try Self.makeFolder(corrupt: true)
        let out = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: out) }
        try ReliabilityTests.expectFailure(["train", "--data", root, "--epochs", "1", "--output", out, "--resize", "12"],
                                           mentions: ["broken.jpg", "--skip-bad-images"])
        let common = ["--resize", "14", "--center-crop", "12", "--normalize"]
        let trained = try ReliabilityTests.ply(["train", "--data", root, "--epochs", "1", "--batch-size", "4", "--output", out,
                                                "--skip-bad-images", "--random-crop", "2", "--horizontal-flip"] + common)
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stderr.contains("skipped 1 unreadable image"))
        #expect(trained.stdout.contains("Test accuracy"))
        let evaluated = try ReliabilityTests.ply(["eval", "--data", root, "--weights", out + "/checkpoint.safetensors",
                                                  "--skip-bad-images"] + common)
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        #expect(evaluated.stdout.contains("Test accuracy") && evaluated.stdout.contains("(4 images)"))
        let predicted = try ReliabilityTests.ply(["predict", "--input", root + "/test", "--weights", out + "/checkpoint.safetensors",
                                                  "--output", out + "/logits.npy", "--resize", "14", "--center-crop", "12",
                                                  "--channels", "3"])
        #expect(predicted.status == 0, "\(predicted.stderr)")
        #expect(predicted.stdout.split(separator: "\n").count == 4)
        #expect(try NumPy.read(path: out + "/logits.npy").shape == [4, 2])
    }

    /// A model file's `transforms:` set what the command line leaves unsaid; bad entries name
    /// the line and key.
    @Test func modelFileTransforms() throws {
        let file = try ModelFile(text: """
            layers:
              - {type: flatten}
            transforms:
              resize: 14
              center_crop: 12
              channels: 3
              normalize: {mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2]}
              random_crop: 2
              horizontal_flip: true
            """)
        var expected = TransformSettings()
        expected.resize = 14
        expected.centerCrop = 12
        expected.channels = 3
        expected.normalization = .given(mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2])
        expected.randomCrop = 2
        expected.horizontalFlip = true
        #expect(file.transforms == expected)
        #expect(try ModelFile(text: "layers:\n  - {type: flatten}\ntransforms: {normalize: true}\n").transforms?.normalization == .computed)
        for (bad, words) in [("resize: 0", ["transforms.resize", ":4:"]), ("channels: 2", ["transforms.channels"]),
                             ("normalize: {mean: [1, 2], std: [1]}", ["transforms.normalize"]), ("rotate: 3", ["rotate"])] {
            let error = #expect(throws: ModelFileError.self) { try ModelFile(text: "layers:\n  - {type: flatten}\ntransforms:\n  \(bad)\n") }
            for word in words { #expect(error?.description.contains(word) == true, "\(String(describing: error)) lacks \(word)") }
        }
        // ply train takes them from the file: a 3-channel 12x12 ConvNet trains on the folder.
        let root = try Self.makeFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let model = root + "/tiny.yaml"
        try """
            params: {num_classes: 10, in_channels: 1}
            layers:
              - {type: conv2d, in_channels: $in_channels, out_channels: 2, kernel_size: 3}
              - {type: flatten}
              - {type: linear, in_features: 200, out_features: $num_classes}
            transforms: {resize: 14, center_crop: 12, channels: 3, normalize: true, random_crop: 1, horizontal_flip: true}
            """.write(toFile: model, atomically: true, encoding: .utf8)
        let out = try ReliabilityTests.ply(["train", "--data", root, "--model", model, "--epochs", "1", "--batch-size", "4",
                                            "--output", root + "/run"])
        #expect(out.status == 0 && out.stdout.contains("Test accuracy"), "\(out.stderr)")
    }

    /// Fixtures/capi/capi_images.c: ply_dataset_load on an image folder and CIFAR files, class
    /// names, skipped images, ply_fit with random crop and flip (API 1.4).
    @Test func cAPILoadsFoldersAndCIFAR() throws {
        let root = try Self.makeFolder(corrupt: true)
        let cifar = try Self.temporaryDirectory()
        let dir = try CCompiler.temporaryDirectory("capi-images")
        defer {
            try? FileManager.default.removeItem(atPath: root); try? FileManager.default.removeItem(atPath: cifar)
            try? FileManager.default.removeItem(at: dir)
        }
        for b in 1...5 {
            try Data(Self.cifarRecord(labels: [0], seed: b) + Self.cifarRecord(labels: [1], seed: 2))
                .write(to: URL(fileURLWithPath: cifar + "/data_batch_\(b).bin"))
        }
        let program = try CAPITests.compileProgram(fixtures.appendingPathComponent("capi/capi_images.c"), into: dir)
        let out = try CAPITests.run(program, [root, cifar])
        let failed = out.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        #expect(out.status == 0 && failed.isEmpty, "capi_images: \(failed.joined(separator: "\n"))\n\(out.stderr)")
        #expect(out.stdout.contains("0 failures"), "\(out.stdout)\n\(out.stderr)")
    }

    @Test func dataOptionsAreValidatedWhereParsed() throws {
        let root = try Self.makeFolder(sameSize: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (arguments, words) in [
            (["--channels", "2"], ["--channels", "1 or 3", "2"]),
            (["--resize", "0"], ["--resize", "0"]),
            (["--val-split", "1.5"], ["--val-split", "(0, 1)"]),
            (["--mean", "0.5"], ["--mean and --std go together"]),
            (["--mean", "0.5,0.5", "--std", "0.2,0.2"], ["--mean", "1 value or 3"]),
            (["--mean", "0.5", "--std", "0"], ["--std", "> 0"]),
            (["--normalize", "--mean", "1", "--std", "1"], ["--normalize"]),
            (["--random-crop", "-1"], ["--random-crop"]),
            (["--val-split", "0.2"], ["validation split", "test exists"]),
        ] {
            try ReliabilityTests.expectFailure(["train", "--data", root, "--epochs", "1", "--output", root + "/run"] + arguments,
                                               mentions: words)
        }
    }
}

/// CRC-32 (IEEE, reflected, as PNG chunks use): bitwise, for one small test chunk.
private func crc32Checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
