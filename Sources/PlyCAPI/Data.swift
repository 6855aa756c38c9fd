import CPlyAPI
import Foundation
import Ply

/// A `ply_dataset`: images in memory; `labelled` is false for an images-only set
/// (its labels are -1).
final class DatasetHandle: Handle {
    override class var cName: String { "ply_dataset" }
    let dataset: ImageDataset
    let labelled: Bool
    /// The normalisation it was loaded with (ply_dataset_load), for ply_fit's padding colour.
    let normalization: (mean: [Float], std: [Float])?
    /// Images skipped as unreadable while loading.
    let skipped: Int
    /// The class names as C strings, owned here (ply_dataset_class_name hands them out).
    let classNames: [UnsafeMutablePointer<CChar>]

    init(_ dataset: ImageDataset, labelled: Bool, normalization: (mean: [Float], std: [Float])? = nil, skipped: Int = 0) {
        self.dataset = dataset
        self.labelled = labelled
        self.normalization = normalization
        self.skipped = skipped
        self.classNames = (dataset.classNames ?? []).map { strdup($0)! }
    }

    deinit { classNames.forEach { free($0) } }

    func requireLabels(_ what: String) throws {
        guard labelled else { throw CAPIError(Status.invalidArgument, "\(what) has no labels (it was loaded without a label file)") }
    }
}

@_cdecl("ply_dataset_load_mnist")
public func capi_dataset_load_mnist(_ directory: UnsafePointer<CChar>?, _ split: Int32,
                                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let directory = try string(directory, "directory")
        let out = try checkOut(out, "out")
        let which: ImageDataset.Split
        switch split {
        case Int32(PLY_SPLIT_TRAIN.rawValue): which = .train
        case Int32(PLY_SPLIT_TEST.rawValue): which = .test
        default: throw CAPIError(Status.invalidArgument, "split is \(split); use PLY_SPLIT_TRAIN (0) or PLY_SPLIT_TEST (1)")
        }
        let data = try ImageDataset.mnist(directory: directory, split: which)
        out.pointee = retain(DatasetHandle(data, labelled: true))
    }
}

@_cdecl("ply_dataset_from_idx")
public func capi_dataset_from_idx(_ imagesPath: UnsafePointer<CChar>?, _ labelsPath: UnsafePointer<CChar>?,
                                  _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let images = try string(imagesPath, "images_path")
        let out = try checkOut(out, "out")
        if let labelsPath {
            let data = try ImageDataset(imagesPath: images, labelsPath: String(cString: labelsPath))
            out.pointee = retain(DatasetHandle(data, labelled: true))
            return
        }
        let array = try IDX.readImages(path: images)
        guard array.shape.count == 3, array.shape[1] > 0, array.shape[2] > 0 else {
            throw CAPIError(Status.io, "\(images): images must be N x H x W with H, W > 0; the file has shape \(array.shape)")
        }
        let n = array.shape[0]
        let data = ImageDataset(count: n, channels: 1, height: array.shape[1], width: array.shape[2],
                                images: array.data.map { Float($0) / 255 },
                                labels: [Int32](repeating: -1, count: n))
        out.pointee = retain(DatasetHandle(data, labelled: false))
    }
}

@_cdecl("ply_dataset_from_memory")
public func capi_dataset_from_memory(_ images: UnsafePointer<Float>?, _ labels: UnsafePointer<Int32>?, _ count: Int64,
                                     _ channels: Int64, _ height: Int64, _ width: Int64,
                                     _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let out = try checkOut(out, "out")
        guard count >= 0 else { throw CAPIError(Status.invalidArgument, "count is \(count); it must be >= 0") }
        let sample = try elementCount([Int(channels), Int(height), Int(width)], "image shape [channels, height, width]")
        let (total, overflow) = sample.multipliedReportingOverflow(by: Int(count))
        guard !overflow else { throw CAPIError(Status.shape, "\(count) images of \(sample) floats are too many") }
        guard count == 0 || images != nil else { throw CAPIError(Status.invalidArgument, "images is NULL") }
        var labelArray = [Int32](repeating: -1, count: Int(count))
        if let labels {
            for i in 0..<Int(count) {
                guard labels[i] >= 0 else { throw CAPIError(Status.invalidArgument, "label \(i) is \(labels[i]); labels must be >= 0") }
                labelArray[i] = labels[i]
            }
        }
        let pixels = images.map { Array(UnsafeBufferPointer(start: $0, count: total)) } ?? []
        let data = ImageDataset(count: Int(count), channels: Int(channels), height: Int(height), width: Int(width),
                                images: pixels, labels: labelArray)
        out.pointee = retain(DatasetHandle(data, labelled: labels != nil))
    }
}

@_cdecl("ply_dataset_shape")
public func capi_dataset_shape(_ dataset: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?,
                               _ channels: UnsafeMutablePointer<Int64>?, _ height: UnsafeMutablePointer<Int64>?,
                               _ width: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let d = try object(dataset, DatasetHandle.self, "dataset").dataset
        count?.pointee = Int64(d.count)
        channels?.pointee = Int64(d.channels)
        height?.pointee = Int64(d.height)
        width?.pointee = Int64(d.width)
    }
}

@_cdecl("ply_dataset_labelled")
public func capi_dataset_labelled(_ dataset: OpaquePointer?, _ labelled: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let d = try object(dataset, DatasetHandle.self, "dataset")
        try checkOut(labelled, "labelled_out").pointee = d.labelled ? 1 : 0
    }
}

@_cdecl("ply_dataset_copy")
public func capi_dataset_copy(_ dataset: OpaquePointer?, _ first: Int64, _ count: Int64,
                              _ images: UnsafeMutablePointer<Float>?, _ labels: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let d = try object(dataset, DatasetHandle.self, "dataset").dataset
        guard first >= 0, count >= 0, first <= Int64(d.count), count <= Int64(d.count) - first else {
            throw CAPIError(Status.invalidArgument, "images \(first)..<\(first &+ count) are outside the data set's 0..<\(d.count)")
        }
        let lo = Int(first), n = Int(count)
        if let images, n > 0 {
            try d.copyImages(Array(lo..<(lo + n)), into: images)
        }
        if let labels { for i in 0..<n { labels[i] = d.labels[lo + i] } }
    }
}

@_cdecl("ply_dataset_destroy")
public func capi_dataset_destroy(_ dataset: OpaquePointer?) { release(dataset) }

@_cdecl("ply_dataset_load")
public func capi_dataset_load(_ directory: UnsafePointer<CChar>?, _ split: Int32, _ options: UnsafePointer<ply_data_options>?,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let directory = try string(directory, "directory")
        let out = try checkOut(out, "out")
        let splits: DataOptions.Splits
        switch split {
        case Int32(PLY_SPLIT_TRAIN.rawValue): splits = .train
        case Int32(PLY_SPLIT_TEST.rawValue): splits = .test
        default: throw CAPIError(Status.invalidArgument, "split is \(split); use PLY_SPLIT_TRAIN (0) or PLY_SPLIT_TEST (1)")
        }
        var o = DataOptions()
        if let p = try checkStruct(options, "options") {
            func positive(_ value: Int32, _ name: String) throws -> Int? {
                guard value >= 0 else { throw CAPIError(Status.invalidArgument, "options->\(name) is \(value); 0 (none) or more") }
                return value == 0 ? nil : Int(value)
            }
            let resize = try positive(field(p, \.resize, 0), "resize")
            let crop = try positive(field(p, \.center_crop, 0), "center_crop")
            let channels = try positive(field(p, \.channels, 0), "channels")
            o.transforms = ImageTransforms(resize: resize, centerCrop: crop, channels: channels)
            switch field(p, \.normalization, 0) {
            case Int32(PLY_NORMALIZE_NONE.rawValue): o.normalization = .none
            case Int32(PLY_NORMALIZE_COMPUTED.rawValue): o.normalization = .computed
            case Int32(PLY_NORMALIZE_GIVEN.rawValue):
                let n = Int(field(p, \.normalization_channels, 0))
                guard n == 1 || n == 3 else {
                    throw CAPIError(Status.invalidArgument, "options->normalization_channels is \(n); 1 or 3 with PLY_NORMALIZE_GIVEN")
                }
                let mean = field(p, \.mean, (0, 0, 0)), std = field(p, \.std, (0, 0, 0))
                o.normalization = .given(mean: Array([mean.0, mean.1, mean.2].prefix(n)), std: Array([std.0, std.1, std.2].prefix(n)))
            case let other:
                throw CAPIError(Status.invalidArgument,
                                "options->normalization is \(other); PLY_NORMALIZE_NONE, PLY_NORMALIZE_COMPUTED or PLY_NORMALIZE_GIVEN")
            }
            let fraction = field(p, \.validation_split, 0)
            o.validationSplit = fraction == 0 ? nil : fraction
            o.seed = field(p, \.seed, 1)
            o.skipBadImages = field(p, \.skip_bad_images, 0) != 0
            o.threads = try positive(field(p, \.threads, 0), "threads")
            switch field(p, \.cache_decoded, 0) {
            case Int32(PLY_CACHE_AUTO.rawValue): o.cache = .auto
            case Int32(PLY_CACHE_ON.rawValue): o.cache = .on
            case Int32(PLY_CACHE_OFF.rawValue): o.cache = .off
            case let other:
                throw CAPIError(Status.invalidArgument, "options->cache_decoded is \(other); PLY_CACHE_AUTO (0), PLY_CACHE_ON (1) or PLY_CACHE_OFF (2)")
            }
            let budget = field(p, \.cache_budget, 0)
            guard budget <= UInt64(Int.max) else {
                throw CAPIError(Status.invalidArgument, "options->cache_budget is \(budget); at most \(Int.max) bytes")
            }
            o.cacheBudget = budget == 0 ? nil : Int(budget)
        }
        do { try o.validate() } catch { throw CAPIError(Status.invalidArgument, "options: \(error)") }
        let loaded = try DataDirectory(path: directory).load(options: o, splits: splits)
        guard let data = splits == .train ? loaded.train : loaded.test else {
            throw CAPIError(Status.io, "\(directory) has no test set (an image folder without test/: set options->validation_split)")
        }
        out.pointee = retain(DatasetHandle(data, labelled: true, normalization: loaded.normalization, skipped: loaded.skipped.count))
    }
}

@_cdecl("ply_dataset_class_count")
public func capi_dataset_class_count(_ dataset: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let d = try object(dataset, DatasetHandle.self, "dataset")
        try checkOut(count, "count_out").pointee = Int64(d.classNames.count)
    }
}

@_cdecl("ply_dataset_class_name")
public func capi_dataset_class_name(_ dataset: OpaquePointer?, _ index: Int64,
                                    _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    boundary {
        let d = try object(dataset, DatasetHandle.self, "dataset")
        let name = try checkOut(name, "name_out")
        guard index >= 0, index < Int64(d.classNames.count) else {
            throw CAPIError(Status.invalidArgument, "index is \(index); the data set has \(d.classNames.count) class names")
        }
        name.pointee = UnsafePointer(d.classNames[Int(index)])
    }
}

@_cdecl("ply_dataset_skipped")
public func capi_dataset_skipped(_ dataset: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let d = try object(dataset, DatasetHandle.self, "dataset")
        try checkOut(count, "count_out").pointee = Int64(d.skipped)
    }
}
