import ArgumentParser
import Foundation
import Ply

/// How `train`, `eval` and `predict` read and transform images: the deterministic transforms
/// and the normalisation (the random ones are `AugmentationOptionGroup`, training only).
struct DataOptionGroup: ParsableArguments {
    @Option(help: "Resize images so that the shorter side is N pixels (Pillow's bilinear, as torchvision's Resize); without --center-crop they are then cropped to NxN.")
    var resize: Int?
    @Option(name: .customLong("center-crop"), help: "Crop the central NxN pixels (after --resize).")
    var centerCrop: Int?
    @Option(help: "Convert images to 1 (gray) or 3 (RGB) channels (default: 1 when every training image is gray, else 3).")
    var channels: Int?
    @Flag(help: "Normalise each channel with the training set's mean and standard deviation (after the transforms).")
    var normalize = false
    @Option(help: "Normalise with these per-channel means (comma-separated, or one for all), with --std.")
    var mean: String?
    @Option(help: "Per-channel standard deviations for --mean.")
    var std: String?
    @Option(name: .customLong("val-split"), help: "Image folders without test/: hold out this fraction of train/ (0 < F < 1) as the validation set, drawn with --seed.")
    var valSplit: Double?
    @Flag(name: .customLong("skip-bad-images"), help: "Skip images that cannot be decoded (and say how many) instead of stopping at the first.")
    var skipBadImages = false
    @Option(name: .customLong("cache-decoded"), help: ArgumentHelp(
        "Image folders: auto (cache the decoded images when they fit in a quarter of the memory, else decode them batch by batch on background threads), on (always cache), off (always stream). Same results either way.",
        valueName: "auto|on|off"))
    var cacheDecoded: String?

    func validate() throws {
        try checkOption("--resize", resize, in: 1...ImageTransforms.maxSide)
        try checkOption("--center-crop", centerCrop, in: 1...ImageTransforms.maxSide)
        if let channels, channels != 1 && channels != 3 { throw ValidationError("--channels must be 1 or 3, got \(channels)") }
        if let cacheDecoded, DecodedCache(rawValue: cacheDecoded) == nil {
            throw ValidationError("--cache-decoded must be auto, on or off, got '\(cacheDecoded)'")
        }
        if let valSplit { try checkOption("--val-split", valSplit, valSplit > 0 && valSplit < 1, "a fraction in (0, 1)") }
        if normalize && (mean != nil || std != nil) { throw ValidationError("--normalize computes the mean and std; do not give --mean/--std with it") }
        if (mean == nil) != (std == nil) { throw ValidationError("--mean and --std go together") }
        _ = try normalization()
    }

    /// `--mean` / `--std` parsed, or `.computed` for `--normalize`.
    func normalization() throws -> DataOptions.Normalization {
        if normalize { return .computed }
        guard let mean, let std else { return .none }
        func list(_ option: String, _ text: String, positive: Bool) throws -> [Float] {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            var values: [Float] = []
            for part in parts {
                guard let v = Float(part.trimmingCharacters(in: .whitespaces)), v.isFinite, !positive || v > 0 else {
                    throw ValidationError("\(option) must be comma-separated finite numbers\(positive ? " > 0" : ""), got '\(text)'")
                }
                values.append(v)
            }
            guard values.count == 1 || values.count == 3 else {
                throw ValidationError("\(option) takes 1 value or 3 (one per RGB channel), got \(values.count) in '\(text)'")
            }
            return values
        }
        let m = try list("--mean", mean, positive: false), s = try list("--std", std, positive: true)
        guard m.count == s.count else { throw ValidationError("--mean has \(m.count) values but --std \(s.count)") }
        return .given(mean: m, std: s)
    }

    /// The library's options for a run seeded with `seed`; what the command line leaves unsaid
    /// comes from the model file's `transforms:` (`file`).
    func options(seed: UInt64, threads: Int?, file: TransformSettings? = nil) throws -> DataOptions {
        var options = DataOptions()
        options.transforms = ImageTransforms(resize: resize ?? file?.resize, centerCrop: centerCrop ?? file?.centerCrop,
                                             channels: channels ?? file?.channels)
        let given = try normalization()
        options.normalization = given == .none ? (file?.normalization ?? .none) : given
        options.validationSplit = valSplit
        options.seed = seed
        options.skipBadImages = skipBadImages
        options.threads = threads
        options.cache = cacheDecoded.flatMap(DecodedCache.init(rawValue:)) ?? file?.cacheDecoded ?? .auto
        return options
    }

    /// Says on stderr how many images were skipped and the first few reasons.
    static func reportSkipped(_ data: LoadedData) {
        guard !data.skipped.isEmpty else { return }
        var text = "ply: skipped \(data.skipped.count) unreadable image(s) (--skip-bad-images):\n"
        for error in data.skipped.prefix(5) { text += "  \(error)\n" }
        if data.skipped.count > 5 { text += "  ...\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// The random transforms of training images.
struct AugmentationOptionGroup: ParsableArguments {
    @Option(name: .customLong("random-crop"), help: "Pad training images with P pixels on each side and crop their size back out at a random place (torchvision's RandomCrop(size, padding=P)).")
    var randomCrop: Int?
    @Flag(name: .customLong("horizontal-flip"), help: "Flip half of the training images left to right (RandomHorizontalFlip).")
    var horizontalFlip = false

    func validate() throws {
        try checkOption("--random-crop", randomCrop, in: 1...Augmentation.maxPadding)
    }

    /// The augmentation, with the padding black after `normalization`; what the command line
    /// leaves unsaid comes from the model file's `transforms:` (`file`).
    func augmentation(normalization: (mean: [Float], std: [Float])?, file: TransformSettings? = nil) -> Augmentation {
        let fill = normalization.map { n in zip(n.mean, n.std).map { -$0 / $1 } } ?? []
        return Augmentation(cropPadding: randomCrop ?? file?.randomCrop ?? 0,
                            horizontalFlip: horizontalFlip || (file?.horizontalFlip ?? false), fill: fill)
    }
}

/// The `transforms:` of the model `--model` names (a zoo name or a model file), if it has them.
func modelFileTransforms(_ model: String) throws -> TransformSettings? {
    let ext = (model as NSString).pathExtension.lowercased()
    if ["yaml", "yml", "json"].contains(ext) { return try ModelFile(contentsOf: URL(fileURLWithPath: model)).transforms }
    return try Zoo.modelFile(named: model).file.transforms
}
