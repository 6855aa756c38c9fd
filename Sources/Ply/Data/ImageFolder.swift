import Foundation
import Synchronization

/// A folder of images per class, as torchvision's `ImageFolder` reads it:
/// `ROOT/<class>/**/*.{png,jpg,jpeg}` (extensions in any case, sub-folders of a class
/// included). Classes are the sub-folders' names sorted (label 0 is the first), and the files
/// of a class are taken in the order `sorted(os.walk(...))` gives: folders by path, then names
/// sorted within each. One difference: folders whose name starts with a dot
/// (`.ipynb_checkpoints`) are not classes.
public struct ImageFolder: Sendable {
    /// One image file and its class index.
    public struct Item: Sendable, Equatable {
        /// The file's path.
        public var path: String
        /// Its class index (position of its class folder in `classes`).
        public var label: Int32
    }

    /// The folder read.
    public let root: String
    /// Class names, sorted; `classes[label]` names a label.
    public let classes: [String]
    /// Every image file, class by class.
    public let items: [Item]

    /// The file extensions read (compared in lower case).
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Lists `root`'s classes and image files (nothing is decoded).
    ///
    /// - Throws: `DataError.fileNotFound` / `.notARegularFile` for a missing root or one that
    ///   is not a directory, `.noImages` when there is no class folder or a class folder has no
    ///   image (torchvision refuses that too: its label would never be seen).
    public init(root: String) throws(DataError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { throw .fileNotFound(path: root) }
        guard isDirectory.boolValue else { throw .noImages(directory: root, detail: "not a directory") }
        let entries: [String]
        do { entries = try FileManager.default.contentsOfDirectory(atPath: root) } catch {
            throw .unreadable(path: root, reason: (error as NSError).localizedDescription)
        }
        let classes = entries.filter { name in
            var dir: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &dir) && dir.boolValue
        }.sorted()
        guard !classes.isEmpty else {
            throw .noImages(directory: root, detail: "no class folders (expected \(root)/<class>/<image>.png|jpg)")
        }
        var items: [Item] = []
        var empty: [String] = []
        for (label, name) in classes.enumerated() {
            let files = Self.imageFiles(under: root + "/" + name)
            if files.isEmpty { empty.append(name) }
            items += files.map { Item(path: $0, label: Int32(label)) }
        }
        guard empty.isEmpty else {
            throw .noImages(directory: root, detail: "no .png, .jpg or .jpeg file in the class folder(s) \(empty.joined(separator: ", "))")
        }
        self.root = root
        self.classes = classes
        self.items = items
    }

    /// Unlabelled images (label 0, one class named after `root`), to decode and transform as a
    /// folder's: `ply predict` on a folder or a file.
    public init(files: [String], root: String) {
        self.init(root: root, classes: [root], items: files.map { Item(path: $0, label: 0) })
    }

    /// The image files (.png, .jpg, .jpeg) below `directory`, in
    /// `sorted(os.walk(directory, followlinks=True))` order.
    public static func imageFiles(under directory: String) -> [String] {
        var folders: [(path: String, entries: [(name: String, isDirectory: Bool)])] = []
        var pending = [directory]
        var seen = Set<String>()
        while let folder = pending.popLast() {
            // Symbolic links are followed (as torchvision does); a loop is walked once.
            let real = (folder as NSString).resolvingSymlinksInPath
            guard seen.insert(real).inserted else { continue }
            let entries = listDirectory(folder)
            folders.append((folder, entries))
            pending += entries.filter(\.isDirectory).map { folder + "/" + $0.name }
        }
        var files: [String] = []
        for (folder, entries) in folders.sorted(by: { $0.path < $1.path }) {
            for entry in entries.sorted(by: { $0.name < $1.name })
            where !entry.isDirectory && Self.extensions.contains((entry.name as NSString).pathExtension.lowercased()) {
                files.append(folder + "/" + entry.name)
            }
        }
        return files
    }

    /// The entries of `directory` (not `.` and `..`) and whether each is a directory (through a
    /// symbolic link too), from `readdir`'s entry type: a stat only where the file system does
    /// not say (a link, or `DT_UNKNOWN`). 60 000 stats were a tenth of loading Fashion-MNIST's JPEGs.
    static func listDirectory(_ directory: String) -> [(name: String, isDirectory: Bool)] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var result: [(name: String, isDirectory: Bool)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            let type = Int32(entry.pointee.d_type)
            var isDirectory = type == Int32(DT_DIR)
            if type == Int32(DT_LNK) || type == Int32(DT_UNKNOWN) {
                var st = stat()
                isDirectory = stat(directory + "/" + name, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
            }
            result.append((name, isDirectory))
        }
        return result
    }

    /// The folder with only the items at `indices` (in that order).
    public func subset(_ indices: [Int]) -> ImageFolder {
        ImageFolder(root: root, classes: classes, items: indices.map { items[$0] })
    }

    private init(root: String, classes: [String], items: [Item]) {
        self.root = root
        self.classes = classes
        self.items = items
    }

    /// A deterministic split into (training, validation): `Int(fraction · count)` items (at
    /// least 1, and at least 1 left for training) drawn by a Fisher–Yates shuffle seeded with
    /// `seed`, each part then kept in folder order.
    public func split(validationFraction fraction: Double, seed: UInt64) -> (train: ImageFolder, validation: ImageFolder) {
        let n = items.count
        let k = min(max(Int(fraction * Double(n)), 1), max(n - 1, 0))
        let order = BatchLoader.permutation(count: n, seed: seed ^ 0x7661_6c69_6461_7465, epoch: 0)   // "validate"
        let validation = order.prefix(k).sorted()
        let train = order.dropFirst(k).sorted()
        return (subset(train), subset(validation))
    }

    /// What loading reports besides the data.
    public struct LoadReport: Sendable {
        /// Files skipped (with `skipBadImages`), with the reason.
        public var skipped: [DataError] = []
        /// An empty report.
        public init() {}
    }

    /// Decodes every image on `threads` threads, applies `transforms` and returns the data set
    /// (pixels scaled to [0, 1], N×C×H×W): held in memory, or streamed (`ImageDataset.stream`:
    /// decoded again batch by batch as training reads it) as `cache` says — `.auto` caches when
    /// the decoded set, `N·C·H·W·4` bytes, fits in `cacheBudget` (nil:
    /// `DataOptions.defaultCacheBudget`). Every image is decoded here either way, so that an
    /// unreadable one fails (or is skipped) now, in both modes alike, and the streamed set has
    /// the same images, in the same order, as the cached one.
    ///
    /// The channel count is `transforms.channels`, else `channels` if given (the training
    /// set's, for its test set), else 1 when every image is gray and 3 otherwise.
    ///
    /// - Throws: the first unreadable image's `DataError` (in folder order), unless
    ///   `skipBadImages`; `.imageSizeMismatch` for an image whose size after the transforms is
    ///   not the first one's; `.allImagesBad` when nothing is left; `.unreadable` when
    ///   caching is `.on` and the set does not fit in memory.
    public func load(transforms: ImageTransforms, channels: Int? = nil, skipBadImages: Bool = false,
                     threads: Int? = nil, maxPixels: Int = ImageDecoder.maxPixels,
                     cache: DecodedCache = .on, cacheBudget: Int? = nil,
                     report: inout LoadReport) throws(DataError) -> ImageDataset {
        try transforms.validate()
        let n = items.count
        let budget = cacheBudget ?? DataOptions.defaultCacheBudget
        let results = ResultSlots(count: n)
        let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, n))
        let items = self.items
        // Bytes of the images kept so far (as floats): `.auto` keeps none past the budget, so
        // that checking a set too large to cache never holds it.
        let kept = Atomic<Int>(0)
        // Static interleaved assignment: worker w decodes items w, w + workers, ...; each
        // writes only its own slots.
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var i = worker
            let jpeg = JPEGHandle()
            while i < n {
                do {
                    let image = transforms.apply(try ImageDecoder.decode(path: items[i].path, maxPixels: maxPixels, jpeg: jpeg))
                    var keep = cache == .on
                    if cache == .auto {
                        let bytes = 4 * image.width * image.height * (transforms.channels ?? image.channels)
                        keep = kept.wrappingAdd(bytes, ordering: .relaxed).newValue <= budget
                    }
                    results.set(i, keep ? .image(image) : .checked(width: image.width, height: image.height, channels: image.channels))
                } catch {
                    results.set(i, .failure(error as? DataError ?? .unreadable(path: items[i].path, reason: "\(error)")))
                }
                i += workers
            }
        }
        var good: [Int] = []
        var shapes: [(width: Int, height: Int, channels: Int)] = []
        good.reserveCapacity(n)
        for i in 0..<n {
            switch results.get(i) {
            case let .image(image):
                good.append(i)
                shapes.append((image.width, image.height, image.channels))
            case let .checked(width, height, channels):
                good.append(i)
                shapes.append((width, height, channels))
            case let .failure(error):
                if !skipBadImages { throw error }
                report.skipped.append(error)
            case nil:
                preconditionFailure("ImageFolder.load: image \(i) was not decoded")
            }
        }
        guard let first = shapes.first else {
            throw .allImagesBad(directory: root, skipped: report.skipped.count, first: report.skipped.first?.description ?? "")
        }
        for (shape, i) in zip(shapes, good) where shape.width != first.width || shape.height != first.height {
            throw .imageSizeMismatch(path: items[i].path, width: shape.width, height: shape.height,
                                     expectedWidth: first.width, expectedHeight: first.height)
        }
        let c = transforms.channels ?? channels ?? (shapes.contains { $0.channels == 3 } ? 3 : 1)
        let (h, w) = (first.height, first.width)
        let labels = good.map { items[$0].label }
        guard let bytes = MemoryBudget.floatBytes([good.count, c, h, w]) else {
            throw .sizeOverflow(path: root, dimensions: [good.count, c, h, w])
        }
        let everyImageKept = good.allSatisfy { if case .image = results.get($0) { true } else { false } }
        guard cache == .on || (cache == .auto && bytes <= budget && everyImageKept) else {
            let stream = ImageStream(items: good.map { items[$0] }, transforms: transforms, channels: c, height: h, width: w,
                                     threads: workers, maxPixels: maxPixels)
            var dataset = ImageDataset(stream: stream, labels: labels)
            dataset.classNames = classes
            return dataset
        }
        do { try MemoryBudget.require("\(good.count) images of \(c)x\(h)x\(w) from \(root)", bytes: bytes) } catch {
            throw .unreadable(path: root, reason: "\(error) (--cache-decoded off streams them instead)")
        }
        let sample = c * h * w
        let pixels = [Float](unsafeUninitializedCapacity: good.count * sample) { buffer, initialized in
            for (k, i) in good.enumerated() {
                guard case let .image(image) = results.get(i) else { preconditionFailure("ImageFolder.load: image \(i) not kept") }
                ImageStream.writePlanes(image, channels: c, into: buffer.baseAddress! + k * sample)
            }
            initialized = good.count * sample
        }
        var dataset = ImageDataset(count: good.count, channels: c, height: h, width: w, images: pixels, labels: labels)
        dataset.classNames = classes
        return dataset
    }
}

/// What decoding one file gave.
private enum Slot: Sendable {
    /// The image after the transforms, kept to be cached.
    case image(DecodedImage)
    /// Readable, of this size after the transforms; not kept (the set is streamed).
    case checked(width: Int, height: Int, channels: Int)
    /// Unreadable.
    case failure(DataError)
}

/// One result slot per image, written by the decoding workers (each its own slots) and read
/// after they have all finished.
private final class ResultSlots: Sendable {
    private let slots: Mutex<[Slot?]>

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func set(_ i: Int, _ value: Slot) { slots.withLock { $0[i] = value } }

    func get(_ i: Int) -> Slot? { slots.withLock { $0[i] } }
}
