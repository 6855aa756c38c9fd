import Foundation
import Testing
@testable import Ply

/// conv_1x1.c's thread splits of strided 1x1 convs (Plugins/Conv/conv_1x1.c, conv_1x1_forward):
/// at batch 1 the threads that split the output channels subsample the image once together (each
/// its range of input channels, in a region of their own) and then all read it; the threads that
/// split the positions subsample only their own positions, parts that start and end inside an
/// output row. Against PyTorch's convolution in double precision (Fixtures/pointwise_split,
/// written by make-pointwise-split.py) on 1, 2 and 3 threads, through "auto" and forced
/// "pointwise" (AVX2 and AVX-512 levels), twice each (the second forward reuses the scratch that
/// the first left).
@Suite struct PointwiseSplitTests {
    static let cases: [String] = {
        let dir = fixtures.appendingPathComponent("pointwise_split")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }()

    static func runtime(threads: Int) -> Runtime {
        var options = Runtime.Options()
        options.threads = threads
        do { return try Runtime(options: options) } catch { fatalError("cannot create the test runtime: \(error)") }
    }

    static let runtimes = [sharedRuntime, runtime(threads: 2), runtime(threads: 3)]

    @Test func casesArePresent() {
        #expect(Self.cases.count == 5, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchOnAnyThreadCount(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("pointwise_split/\(name).json"))
        var attrs: Attributes = []
        for (key, value) in json["attrs"]?.object.sorted(by: { $0.key < $1.key }) ?? [] {
            attrs.append((key, try #require(value.attribute, "\(name): attribute \(key)")))
        }
        let input = try #require(json["input"]?.tensor), expected = try #require(json["output"]?.tensor)
        let algorithms = avx2Kernels ? ["auto", "pointwise"] : ["auto"]
        for runtime in Self.runtimes {
            for algorithm in algorithms {
                let layer = try Layer("conv2d", attrs + [("algorithm", .string(algorithm))], runtime: runtime)
                layer.setTraining(false)
                let params = try layer.parameters
                for (pname, value) in json["params"]?.object ?? [:] {
                    let p = try #require(params.first { $0.name == pname }, "\(name): no parameter '\(pname)'")
                    try p.write(try #require(value.tensor).data)
                }
                let label = "\(name), \(algorithm), \(runtime.threads) threads"
                for pass in 1...2 {
                    let y = try layer.forward([input])
                    #expect(y.shape == expected.shape, "\(label): output shape \(y.shape) vs \(expected.shape)")
                    let c = closeness(y.data, expected.data)
                    #expect(c.ok, "\(label), pass \(pass): max error \(c.error) > \(c.bound)")
                }
            }
        }
    }
}
