import Yams

/// The `transforms:` section of a model file: the data transforms the model is meant to be
/// trained and evaluated with, so that a file can carry them (`ply train --model net.yaml`
/// uses them where the command line does not say otherwise).
///
/// ```yaml
/// transforms:
///   resize: 36            # shorter side, Pillow's bilinear (torchvision's Resize)
///   center_crop: 32
///   channels: 3
///   normalize: true       # the training set's mean and std; or {mean: [...], std: [...]}
///   random_crop: 4        # training images: RandomCrop(size, padding=4)
///   horizontal_flip: true # training images: RandomHorizontalFlip()
///   cache_decoded: auto   # image folders: auto, on (hold decoded images in memory) or off (stream)
/// ```
public struct TransformSettings: Sendable, Equatable {
    /// `resize:` (shorter side).
    public var resize: Int?
    /// `center_crop:`.
    public var centerCrop: Int?
    /// `channels:` (1 or 3).
    public var channels: Int?
    /// `normalize:`: `true` (computed), `false` (none) or `{mean: [...], std: [...]}`.
    public var normalization: DataOptions.Normalization?
    /// `random_crop:` (padding).
    public var randomCrop: Int?
    /// `horizontal_flip:`.
    public var horizontalFlip: Bool?
    /// `cache_decoded:` (`auto`, `on`, `off`; `true`/`false` for on/off).
    public var cacheDecoded: DecodedCache?

    /// Nothing set.
    public init() {}

    static let keys: Set<String> = ["resize", "center_crop", "channels", "normalize", "random_crop", "horizontal_flip", "cache_decoded"]

    /// Reads a `transforms:` mapping; errors name the line, column and key.
    static func parse(_ node: Yams.Node, reader r: Reader) throws -> TransformSettings {
        guard let map = node.mapping else {
            throw r.error(.structure, node, field: "transforms",
                          message: "must be a mapping of \(keys.sorted().joined(separator: ", "))")
        }
        let entries = try r.keys(map, allowed: keys, context: "transforms")
        var s = TransformSettings()
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let n = entries[key] else { return nil }
            guard case let .int(v) = try r.literal(n, field: "transforms.\(key)"), range.contains(v) else {
                throw r.error(.structure, n, field: "transforms.\(key)", message: "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        func numbers(_ node: Yams.Node, _ field: String) throws -> [Float] {
            switch try r.literal(node, field: field) {
            case let .ints(v): return v.map(Float.init)
            case let .floats(v): return v.map(Float.init)
            case let .int(v): return [Float(v)]
            case let .float(v): return [Float(v)]
            default: throw r.error(.structure, node, field: field, message: "must be a number or a list of numbers")
            }
        }
        s.resize = try int("resize", 1...ImageTransforms.maxSide)
        s.centerCrop = try int("center_crop", 1...ImageTransforms.maxSide)
        s.channels = try int("channels", 1...3)
        if let c = s.channels, c == 2, let n = entries["channels"] {
            throw r.error(.structure, n, field: "transforms.channels", message: "must be 1 or 3")
        }
        s.randomCrop = try int("random_crop", 0...Augmentation.maxPadding)
        if let n = entries["horizontal_flip"] {
            guard case let .bool(b) = try r.literal(n, field: "transforms.horizontal_flip") else {
                throw r.error(.structure, n, field: "transforms.horizontal_flip", message: "must be true or false")
            }
            s.horizontalFlip = b
        }
        if let n = entries["cache_decoded"] {
            switch try r.literal(n, field: "transforms.cache_decoded") {
            case let .bool(b): s.cacheDecoded = b ? .on : .off
            case let .string(v) where DecodedCache(rawValue: v) != nil: s.cacheDecoded = DecodedCache(rawValue: v)
            default: throw r.error(.structure, n, field: "transforms.cache_decoded", message: "must be auto, on or off")
            }
        }
        if let n = entries["normalize"] {
            if let m = n.mapping {
                let kv = try r.keys(m, allowed: ["mean", "std"], context: "transforms.normalize")
                guard let meanNode = kv["mean"], let stdNode = kv["std"] else {
                    throw r.error(.structure, n, field: "transforms.normalize", message: "needs both mean and std")
                }
                let mean = try numbers(meanNode, "transforms.normalize.mean"), std = try numbers(stdNode, "transforms.normalize.std")
                guard [1, 3].contains(mean.count), mean.count == std.count, std.allSatisfy({ $0 > 0 && $0.isFinite }),
                      mean.allSatisfy(\.isFinite) else {
                    throw r.error(.structure, n, field: "transforms.normalize",
                                  message: "mean and std must be 1 or 3 finite numbers each, std > 0")
                }
                s.normalization = .given(mean: mean, std: std)
            } else if case let .bool(b) = try r.literal(n, field: "transforms.normalize") {
                s.normalization = b ? .computed : DataOptions.Normalization.none
            } else {
                throw r.error(.structure, n, field: "transforms.normalize",
                              message: "must be true (the training set's mean and std), false, or {mean: [...], std: [...]}")
            }
        }
        return s
    }
}
