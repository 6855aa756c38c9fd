import Foundation
import Testing
@testable import Ply

/// `ply inspect`, `ModelInspector` and `ply_inspect_*`: pictures decoded back with libpng to the
/// pixel values the conventions give for known weights, receptive fields against the summary's
/// numbers and against where gradients actually reach, and the errors.
@Suite struct InspectTests {
    /// conv 3x3 pad 1 (1 → 2 channels), avgpool 2x2, conv 3x3 stride 2 pad 1 (2 → 2): on 8x8
    /// input the outputs are 2x8x8, 2x4x4 and 2x2x2.
    static let tinyText = """
        model: tiny
        layers:
          - {name: conv, type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3, padding: 1}
          - {name: pool, type: avgpool2d, kernel_size: 2, stride: 2}
          - {name: conv2, type: conv2d, in_channels: 2, out_channels: 2, kernel_size: 3, stride: 2, padding: 1}
        """

    static func tiny() throws -> Model { try Zoo.model(text: tinyText, runtime: sharedRuntime, imageSize: 8) }

    static func parameter(_ model: Model, _ name: String) throws -> Parameter {
        try #require(try model.namedParameters().first { $0.name == name }?.parameter, "no parameter \(name)")
    }

    static func temporaryPNG(_ name: String) throws -> (URL, String) {
        let dir = try CCompiler.temporaryDirectory("inspect")
        return (dir, dir.appendingPathComponent(name).path)
    }

    /// Filter 0 holds 0, 1, ..., 8 (normalised: round(255·k/8)), filter 1 is constant (mid-grey 128);
    /// at scale 1 the grid is 2 tiles of 3x3 side by side, framed and separated by gap lines.
    @Test func filterGridDecodesToTheNormalisedWeights() throws {
        let model = try Self.tiny()
        try Self.parameter(model, "conv.weight").write((0..<9).map(Float.init) + Array(repeating: 0.5, count: 9))
        let inspector = try ModelInspector(model: model, channels: 1, height: 8, width: 8)
        let (layer, parameter, picture) = try inspector.filters(scale: 1)
        #expect(layer == "conv" && parameter == "weight")
        let (dir, path) = try Self.temporaryPNG("filters.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        try picture.write(to: path)
        let decoded = try PNGImage(contentsOf: path)
        #expect(decoded.width == 9 && decoded.height == 5 && decoded.channels == 3)
        let expected: [UInt8] = [0, 32, 64, 96, 128, 159, 191, 223, 255]
        for y in 0..<3 {
            for x in 0..<3 {
                let v = expected[y * 3 + x]
                #expect(decoded[1 + y, 1 + x] == [v, v, v], "filter 0 at (\(y), \(x))")
                #expect(decoded[1 + y, 5 + x] == [128, 128, 128], "filter 1 at (\(y), \(x))")
            }
        }
        for x in 0..<9 { #expect(decoded[0, x] == ModelInspector.gapColour && decoded[4, x] == ModelInspector.gapColour) }
        for y in 0..<5 { #expect(decoded[y, 0] == ModelInspector.gapColour && decoded[y, 4] == ModelInspector.gapColour) }
        // Scale 3: every value a 3x3 block.
        let big = try inspector.filters(scale: 3).picture
        #expect(big.width == 2 * 9 + 3 && big.height == 9 + 2)
        #expect(big[1 + 3 * 2 + 2, 1 + 3 * 1 + 1] == [223, 223, 223])
    }

    /// Channel 0 of `conv` is the identity (1 at the kernel's centre), channel 1 its negative:
    /// the feature maps are the image and its inverse, each normalised on its own.
    @Test func featureMapsDecodeToTheLayerOutput() throws {
        let model = try Self.tiny()
        var weight = [Float](repeating: 0, count: 18)
        weight[4] = 1
        weight[13] = -1
        try Self.parameter(model, "conv.weight").write(weight)
        try Self.parameter(model, "conv.bias").write([0, 0])
        let image = (0..<64).map { Float(($0 * 37) % 64) }  // a permutation of 0...63
        let inspector = try ModelInspector(model: model, channels: 1, height: 8, width: 8)
        let (dir, path) = try Self.temporaryPNG("features.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        try inspector.featureMaps(layer: "conv", image: image, scale: 2).write(to: path)
        let decoded = try PNGImage(contentsOf: path)
        #expect(decoded.width == 2 * 17 + 1 && decoded.height == 16 + 2)
        for y in 0..<8 {
            for x in 0..<8 {
                let v = Double(image[y * 8 + x])
                let up = UInt8((255 * v / 63).rounded()), down = UInt8((255 * (63 - v) / 63).rounded())
                #expect(decoded[1 + 2 * y + 1, 1 + 2 * x] == [up, up, up], "channel 0 at (\(y), \(x))")
                #expect(decoded[1 + 2 * y, 1 + 17 + 2 * x + 1] == [down, down, down], "channel 1 at (\(y), \(x))")
            }
        }
        // A layer whose output is not a feature map (none here): the input's size is checked.
        #expect(throws: InspectError.imageShape(expected: [1, 8, 8], got: [10])) {
            try inspector.featureMaps(layer: "conv", image: Array(repeating: 0, count: 10))
        }
    }

    /// The rectangle is the summary's: receptive field 8 (3, then 4 after the pool, then
    /// 4 + 2·2), jump 4, start 0.5 — and exactly the input pixels a gradient from that output
    /// position reaches (positive weights, average pooling: every path carries gradient).
    @Test func receptiveFieldMatchesTheSummaryAndTheGradient() throws {
        let model = try Self.tiny()
        for name in ["conv.weight", "conv2.weight"] {
            let p = try Self.parameter(model, name)
            try p.write(Array(repeating: 1, count: p.shape.count))
        }
        let inspector = try ModelInspector(model: model, channels: 1, height: 8, width: 8)
        let row = try inspector.row("conv2")
        #expect(row.receptiveField == .init(8, 8) && row.jump == .init(4, 4) && row.start == .init(0.5, 0.5))
        for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let box = try inspector.receptiveField(layer: "conv2", y: y, x: x)
            #expect(box == row.receptiveField(y: y, x: x))
            #expect(box.height == 8 && box.width == 8)
            #expect(box.top == -3 + 4 * y && box.left == -3 + 4 * x)
            // Where the gradient of output (channel 0, y, x) lands in the input.
            model.isTraining = true
            let input = [Float](repeating: 1, count: 64)
            _ = try input.withUnsafeBufferPointer { try model.forward($0, shape: [1, 1, 8, 8]) }
            var gradient = [Float](repeating: 0, count: 8)
            gradient[y * 2 + x] = 1
            let g = try #require(try gradient.withUnsafeBufferPointer { try model.backward($0, inputGradient: true) })
            let reached = (0..<64).filter { g[$0] != 0 }
            let rows = reached.map { $0 / 8 }, columns = reached.map { $0 % 8 }
            let support = ReceptiveFieldBox(top: rows.min() ?? -1, left: columns.min() ?? -1,
                                            bottom: rows.max() ?? -1, right: columns.max() ?? -1)
            #expect(box.clipped(height: 8, width: 8) == support, "position (\(y), \(x))")
        }
        // The picture: the input (here all equal: mid-grey) with the clipped box framed in red.
        let (dir, path) = try Self.temporaryPNG("rf.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (box, picture) = try inspector.receptiveFieldPicture(layer: "conv2", y: 1, x: 0,
                                                                 image: Array(repeating: 0.25, count: 64), scale: 1)
        #expect(box == ReceptiveFieldBox(top: 1, left: -3, bottom: 8, right: 4))
        try picture.write(to: path)
        let decoded = try PNGImage(contentsOf: path)
        #expect(decoded.width == 8 && decoded.height == 8)
        for y in 0..<8 {
            for x in 0..<8 {
                let onBorder = (1...7).contains(y) && (0...4).contains(x) && (y == 1 || y == 7 || x == 0 || x == 4)
                #expect(decoded[y, x] == (onBorder ? ModelInspector.boxColour : [128, 128, 128]), "(\(y), \(x))")
            }
        }
    }

    /// The tutorial ConvNet's conv_2 at (3, 4): rows 3...10, columns 5...12 (the C example and
    /// scripts/test-install print these).
    @Test func convNetReceptiveField() throws {
        let model = try Zoo.convNet(runtime: sharedRuntime)
        let inspector = try ModelInspector(model: model, channels: 1, height: 28, width: 28)
        #expect(try inspector.receptiveField(layer: "conv_2", y: 3, x: 4) == ReceptiveFieldBox(top: 3, left: 5, bottom: 10, right: 12))
        // pool_2's (0, 0) reads conv_2's rows 0...1, which read pool_1's -1...2, which read the
        // input's -2...5, which conv_1 (padding 1) widens to -3...6: field 10, start 1.5.
        #expect(try inspector.receptiveField(layer: "pool_2", y: 0, x: 0) == ReceptiveFieldBox(top: -3, left: -3, bottom: 6, right: 6))
    }

    @Test func errorsNameTheLayersAndTheSize() throws {
        let inspector = try ModelInspector(model: try Self.tiny(), channels: 1, height: 8, width: 8)
        #expect(throws: InspectError.noSuchLayer(name: "conv3", valid: ["conv", "pool", "conv2"])) {
            try inspector.receptiveField(layer: "conv3", y: 0, x: 0)
        }
        #expect(throws: InspectError.positionOutside(layer: "conv2", y: 2, x: 0, height: 2, width: 2)) {
            try inspector.receptiveField(layer: "conv2", y: 2, x: 0)
        }
        #expect(throws: InspectError.invalidPicture("scale is 33; accepted: 1...32")) { try inspector.filters(scale: 33) }
        let (dir, path) = try Self.temporaryPNG("not.png")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "not a png".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try PNGImage(contentsOf: path) } throws: { error in
            guard case let .pngRead(p, _)? = error as? InspectError else { return false }
            return p == path
        }
    }

    // MARK: - the command line

    static func trainedConvNet(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("convnet.safetensors").path
        let model = try Zoo.convNet(runtime: sharedRuntime)
        try hashInitialize(model)
        try model.saveWeights(to: path)
        return path
    }

    @Test func cliWritesThePicturesAndRefusesBadOptions() throws {
        let dir = try CCompiler.temporaryDirectory("inspect-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = try Self.trainedConvNet(in: dir)
        let data = fixtures.appendingPathComponent("fashion-mnist-small").path
        let out = dir.appendingPathComponent("pictures").path
        let base = ["inspect", "--weights", weights, "--data", data, "--output", out]
        let ok = try CLITests.run(base + ["--index", "3", "--layer", "conv_2", "--position", "3,4", "--scale", "1"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("conv_2 position 3,4 sees input rows 3...10, columns 5...12 (8x8)"), "\(ok.stdout)")
        let filters = try PNGImage(contentsOf: out + "/filters.png")
        #expect(filters.width == 3 * 3 + 2 + 2 && filters.height == 3 * 3 + 2 + 2)  // 8 tiles of 3x3: 3 columns, 3 rows
        let features = try PNGImage(contentsOf: out + "/features-conv_2.png")
        #expect(features.width == 4 * 14 + 3 + 2 && features.height == 4 * 14 + 3 + 2)  // 16 tiles of 14x14
        let rf = try PNGImage(contentsOf: out + "/receptive-field-conv_2-3-4.png")
        #expect(rf.width == 28 && rf[3, 5] == ModelInspector.boxColour && rf[10, 12] == ModelInspector.boxColour)

        let untouched = dir.appendingPathComponent("untouched").path
        func refused(_ extra: [String], _ message: String) throws {
            let r = try CLITests.run(["inspect", "--weights", weights, "--data", data, "--output", untouched] + extra)
            #expect(r.status != 0 && r.stderr.contains(message), "\(extra): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: untouched), "\(extra): a refused run wrote \(untouched)")
        }
        try refused(["--layer", "conv_9"], "no layer named 'conv_9'; the model's layers (as `ply summary` lists them): conv_1, relu_1, pool_1, conv_2")
        try refused(["--layer", "pool_2", "--position", "7,0"], "position 7,0 is outside layer 'pool_2''s output of 7x7")
        try refused(["--layer", "flatten"], "layer 'flatten''s output for one image is [1, 784], not a feature map")
        try refused(["--position", "1,1"], "--position needs --layer")
        try refused(["--layer", "conv_2", "--position", "1"], "--position must be Y,X")
        try refused(["--layer", "conv_2", "--position=-1,2"], "Y and X must be 0 or more")
        try refused(["--scale", "0"], "--scale must be in 1...32, got 0")
        try refused(["--index", "200"], "--index 200: the test set of")
        try refused(["--image", out + "/filters.png", "--index", "1"], "--image and --index/--split exclude each other")
        try refused(["--image", out + "/missing.png"], "missing.png: cannot read PNG")
    }

    /// A PNG file as the image: the tutorial ConvNet takes the decoded 28x28 grey picture.
    @Test func cliTakesAPNGImage() throws {
        let dir = try CCompiler.temporaryDirectory("inspect-png")
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = try Self.trainedConvNet(in: dir)
        var picture = try PNGImage(width: 28, height: 28, channels: 1, fill: [0])
        for i in 0..<(28 * 28) { picture.pixels[i] = UInt8(i % 256) }
        let image = dir.appendingPathComponent("image.png").path
        try picture.write(to: image)
        #expect(try PNGImage(contentsOf: image) == picture)
        let r = try CLITests.run(["inspect", "--weights", weights, "--image", image, "--layer", "pool_1", "--position", "0,0",
                                  "--output", dir.path, "--scale", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("pool_1 position 0,0 sees input rows -1...2, columns -1...2 (4x4)"), "\(r.stdout)")
    }

    /// A real JPEG as the image (a 28x28 crop of scikit-learn's china.jpg, Fixtures/images):
    /// decoded with TurboJPEG to Pillow's pixels exactly (RGB and `convert("L")`), and taken by
    /// `ply inspect --image`, grey for the tutorial ConvNet.
    @Test func jpegImageDecodesAsPillowAndIsInspected() throws {
        let images = fixtures.appendingPathComponent("images")
        let jpeg = images.appendingPathComponent("china-crop-28.jpg").path
        for (channels, file) in [(3, "china-crop-28-rgb.npy"), (1, "china-crop-28-gray.npy")] {
            let picture = try PNGImage(contentsOf: jpeg, channels: channels)
            let (shape, expected) = try NumPy.read(path: images.appendingPathComponent(file).path)
            #expect(shape == [channels, 28, 28] && picture.width == 28 && picture.height == 28)
            #expect(picture.planes == expected, "\(file): TurboJPEG's pixels are not Pillow's")
        }
        #expect(try PNGImage(contentsOf: jpeg).channels == 3)  // the file's own: colour

        let dir = try CCompiler.temporaryDirectory("inspect-jpeg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = try Self.trainedConvNet(in: dir)
        let r = try CLITests.run(["inspect", "--weights", weights, "--image", jpeg, "--in-channels", "1", "--layer", "conv_2",
                                  "--position", "3,4", "--output", dir.path, "--scale", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("for \(jpeg), one tile per channel"), "\(r.stdout)")
        #expect(r.stdout.contains("conv_2 position 3,4 sees input rows 3...10, columns 5...12 (8x8)"), "\(r.stdout)")
        // The receptive-field picture is the decoded image (normalised) with the box in red.
        let rf = try PNGImage(contentsOf: dir.appendingPathComponent("receptive-field-conv_2-3-4.png").path)
        #expect(rf.width == 28 && rf[3, 5] == ModelInspector.boxColour && rf[0, 0] != ModelInspector.boxColour)
        // A damaged JPEG is named, with TurboJPEG's reason.
        let broken = dir.appendingPathComponent("broken.jpg").path
        try Data(try Data(contentsOf: URL(fileURLWithPath: jpeg)).prefix(300)).write(to: URL(fileURLWithPath: broken))
        let bad = try CLITests.run(["inspect", "--weights", weights, "--image", broken, "--output", dir.path])
        #expect(bad.status != 0 && bad.stderr.contains("broken.jpg: cannot read JPEG"), "\(bad.stderr)")
    }
}
