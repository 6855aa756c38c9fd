import Foundation
import Testing
@testable import Ply

/// The zoo, written as model files: parameter counts equal torchvision's, state_dict names
/// and shapes and hash-init logits equal the golden models, and every model takes 1×28×28.
@Suite(.serialized) struct ZooTests {
    static func trainable(_ m: Model) throws -> Int {
        try m.namedParameters().filter(\.parameter.trainable).reduce(0) { $0 + $1.parameter.shape.count }
    }

    static func imagenet(_ name: String, _ parameters: [String: AttributeValue] = [:]) throws -> Model {
        try Zoo.model(named: name, runtime: sharedRuntime, numClasses: 1000, inChannels: 3, imageSize: 224, parameters: parameters)
    }

    /// torchvision's counts for the models the golden tests do not already count
    /// (alexnet, vgg16, resnet18 and googlenet are checked against the golden param_count).
    static let counts: [(String, [String: AttributeValue], Int)] = [
        ("vgg11", [:], 132_863_336), ("vgg16_bn", [:], 138_365_992),
        ("googlenet", ["aux_logits": .bool(true)], 13_004_888),
        ("inception_v3", [:], 23_834_568), ("inception_v3", ["aux_logits": .bool(true)], 27_161_264),
        ("resnet34", [:], 21_797_672), ("resnet50", [:], 25_557_032),
        ("resnet101", [:], 44_549_160), ("resnet152", [:], 60_192_808),
    ]

    /// Trainable parameters for 1000 classes and 3 channels equal torchvision's (Inception
    /// v3 at its 299×299: its aux classifier does not fit 224).
    @Test(arguments: counts.indices) func parameterCount(_ i: Int) throws {
        let (name, parameters, expected) = ZooTests.counts[i]
        let m = try Zoo.model(named: name, runtime: sharedRuntime, numClasses: 1000, inChannels: 3,
                              imageSize: name == "inception_v3" ? 299 : 224, parameters: parameters)
        #expect(try ZooTests.trainable(m) == expected, "\(name) \(parameters)")
        #expect(m.nodes.first { $0.name == "resize" } == nil, "no resize node at full size")
    }

    @Test func namesListEveryModel() throws {
        let expected = ["convnet", "lenet5", "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
                        "vgg19_bn", "googlenet", "inception_v3", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
        #expect(Set(Zoo.names) == Set(expected))
        #expect(Zoo.names.count == expected.count)
        #expect(throws: PlyError.self) { try Zoo.model(named: "resnet9", runtime: sharedRuntime) }
    }

    static let goldens = ["seed_convnet", "seed_lenet5", "alexnet", "resnet18", "googlenet", "vgg16"]

    /// state_dict names and shapes in PyTorch order, and the hash-init logits within
    /// `max|ours - ref| <= 1e-3 * max|ref|`.
    @Test(arguments: goldens) func golden(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("golden/models/\(name).json"))
        let dims = json["input_shape"]?.array.compactMap { $0.int } ?? []
        let inputShape = Shape(dims)
        let m = try Zoo.model(named: name, runtime: sharedRuntime, numClasses: inputShape.dims[1] == 3 ? 1000 : 10,
                              inChannels: inputShape.dims[1], imageSize: inputShape.dims[2])
        // The golden state_dicts leave out integer buffers (num_batches_tracked), as the hash init does.
        let ours = try m.namedParameters().filter { !$0.parameter.isInteger }.map { "\($0.name) \($0.parameter.shape.dims)" }
        let ref = try #require(json["state_dict"]).array.map { "\($0.array[0].string ?? "?") \($0.array[1].array.compactMap(\.int))" }
        #expect(ours == ref)
        #expect(try ZooTests.trainable(m) == json["param_count"]?.int)
        try hashInitialize(m)
        m.isTraining = false
        let out = try m.forward(hashInput(inputShape))
        let expected = try #require(json["output"]?.tensor)
        #expect(out.shape == expected.shape)
        let scale = expected.data.map(abs).max() ?? 1
        let worst = zip(out.data, expected.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-3 * scale, "\(name): max|ours - ref| = \(worst), bound \(1e-3 * scale)")
    }

    /// 1-channel 28×28 (Fashion-MNIST): models whose pools cannot take it get a `resize`
    /// node up to their minimum; the state_dict is unchanged; forward gives [2, 10].
    @Test(arguments: ["convnet", "lenet5", "resnet18", "resnet50", "alexnet", "vgg11", "googlenet", "inception_v3"])
    func smallInputs(_ name: String) throws {
        let m = try Zoo.model(named: name, runtime: sharedRuntime, numClasses: 10, inChannels: 1, imageSize: 28)
        let resize = m.nodes.first { $0.name == "resize" }
        let minimum = try Zoo.modelFile(named: name).file.minInputSize()
        #expect((resize != nil) == (minimum.map { $0 > 28 } ?? false), "\(name): resize only below min_input_size")
        if let resize {
            #expect(resize.layer?.type.name == "interpolate")
            #expect(try resize.layer?.parameters.isEmpty == true)
            #expect(m.nodes[1].name == "resize")
        }
        m.isTraining = false
        let out = try m.forward(hashInput([2, 1, 28, 28]))
        #expect(out.shape == [2, 10])
        let finite = out.data.allSatisfy { $0.isFinite }
        #expect(finite)
        // The resize node adds nothing to the state_dict.
        #expect(try !m.namedParameters().contains { $0.name.hasPrefix("resize.") })
    }

    /// `min_input_size` is the true minimum: one pixel less does not plan without the resize node.
    @Test(arguments: ["alexnet", "googlenet", "inception_v3"])
    func minimumInputSizeIsTight(_ name: String) throws {
        let (file, variant) = try Zoo.modelFile(named: name)
        let minimum = try #require(try file.minInputSize())
        var params = variant
        params["in_channels"] = .int(1)
        params["num_classes"] = .int(10)
        let m = try file.build(runtime: sharedRuntime, parameters: params)
        #expect(throws: (any Error).self) { _ = try m.shapes(for: [1, 1, minimum - 1, minimum - 1]) }
        #expect(try m.shapes(for: [1, 1, minimum, minimum]).last == [1, 10])
    }

    /// A model file on disk (YAML or JSON) works by path, as `ply train --model file.yaml` uses it.
    @Test func modelByPath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ply-zoo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = dir.appendingPathComponent("tiny.yaml")
        try Zoo.convNetText.write(to: yaml, atomically: true, encoding: .utf8)
        let a = try Zoo.model(named: yaml.path, runtime: sharedRuntime)
        #expect(try ZooTests.trainable(a) == 9098)
        let json = dir.appendingPathComponent("tiny.json")
        try """
            {"model": "tiny", "params": {"num_classes": 10, "in_channels": 1},
             "layers": [{"name": "flatten", "type": "flatten"},
                        {"name": "fc", "type": "linear", "in_features": "$(in_channels * 28 * 28)", "out_features": "$num_classes"}]}
            """.write(to: json, atomically: true, encoding: .utf8)
        let b = try Zoo.model(named: json.path, runtime: sharedRuntime, numClasses: 3)
        #expect(try b.namedParameters().map(\.parameter.shape.dims) == [[3, 784], [3]])
        let c = try Zoo.model(text: Zoo.leNet5Text, runtime: sharedRuntime, imageSize: 28)
        #expect(try ZooTests.trainable(c) == 61_706)
    }
}
