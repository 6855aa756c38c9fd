import Foundation
import Testing
@testable import Ply

/// The residual bottleneck's add + relu in evaluation split by positions (Plugins/Residual/
/// residual_eval.c: at batch 1, planes of 4 or more strips of 32 positions per thread, each
/// thread adding the positions its 1x1 convs wrote) against torchvision's Bottleneck in double
/// precision (Fixtures/bottleneck_split, written by make-bottleneck-split.py) on 1, 2 and 3
/// threads: 19x19 (361 positions, cut at 192 on 2 threads and at 128 and 256 on 3) and 23x21 with
/// a downsample, outputs of 65,536 floats or more so that the add runs on the threads.
@Suite struct BottleneckSplitTests {
    static let cases = ["bottleneck_19x19", "bottleneck_23x21_downsample"]

    static func runtime(threads: Int) -> Runtime {
        var options = Runtime.Options()
        options.threads = threads
        do { return try Runtime(options: options) } catch { fatalError("cannot create the test runtime: \(error)") }
    }

    static let runtimes = [sharedRuntime, runtime(threads: 2), runtime(threads: 3)]

    @Test(arguments: cases)
    func matchesTorchvisionOnAnyThreadCount(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("bottleneck_split/\(name).json"))
        var attrs: Attributes = []
        for (key, value) in json["attrs"]?.object.sorted(by: { $0.key < $1.key }) ?? [] {
            attrs.append((key, try #require(value.attribute, "\(name): attribute \(key)")))
        }
        let input = try #require(json["input"]?.tensor), expected = try #require(json["output"]?.tensor)
        #expect(expected.data.count >= 1 << 16)
        var given = json["params"]?.object ?? [:]
        for (k, v) in json["buffers"]?.object ?? [:] { given[k] = v }
        for runtime in Self.runtimes {
            let layer = try Layer("residual_bottleneck", attrs, runtime: runtime)
            layer.setTraining(false)
            let params = try layer.parameters
            for (pname, value) in given {
                let p = try #require(params.first { $0.name == pname }, "\(name): no parameter '\(pname)'")
                try p.write(try #require(value.tensor).data)
            }
            for pass in 1...2 {
                let y = try layer.forward([input])
                #expect(y.shape == expected.shape, "\(name): output shape \(y.shape) vs \(expected.shape)")
                let c = closeness(y.data, expected.data)
                #expect(c.ok, "\(name), \(runtime.threads) threads, pass \(pass): max error \(c.error) > \(c.bound)")
            }
        }
    }
}
