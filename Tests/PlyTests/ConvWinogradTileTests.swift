import Foundation
import Testing
@testable import Ply

/// conv2d's Winograd tile for few input channels on small planes (Plugins/Conv/conv_winograd.c,
/// conv_winograd_tile: F(2x2) below F4_MIN_CHANNELS input channels on planes of at most F4_SMALL_SIDE a
/// side, where the product rules take F(4x4) otherwise) against PyTorch's convolution in double
/// precision (Fixtures/winograd_small, written by make-conv-winograd-small.py): "auto" in evaluation and
/// forced F(2x2) on 1, 2 and 3 threads, and "auto" giving F(2x2)'s output bit for bit (not F(4x4)'s,
/// whose rounding differs), so a build whose rule takes F(4x4) there fails.
@Suite struct ConvWinogradTileTests {
    static let cases = fixtureCases("winograd_small")
    static let oneThread = threadedRuntime(1)
    static let twoThreads = threadedRuntime(2)
    static let threeThreads = threadedRuntime(3)

    @Test func casesArePresent() {
        #expect(Self.cases.count == 2, "\(Self.cases)")
    }

    /// The case's layer on `runtime` with `extra` attributes, its parameters the fixture's.
    func layer(_ name: String, _ json: JSON, _ extra: Attributes, _ runtime: Runtime) throws -> Layer {
        let layer = try Layer("conv2d", try json.attributes(case: name) + extra, runtime: runtime)
        layer.setTraining(false)
        let params = try layer.parameters
        for (pname, value) in json["params"]?.object ?? [:] {
            let p = try #require(params.first { $0.name == pname }, "\(name): no parameter '\(pname)'")
            try p.write(try #require(value.tensor).data)
        }
        return layer
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("winograd_small/\(name).json"))
        let input = try #require(json["input"]?.tensor), expected = try #require(json["output"]?.tensor)
        // below the AVX-512 level forcing "winograd" is refused and "auto" takes im2col's path
        let forced: [Attributes] = avx512Kernels
            ? [[], [("algorithm", .string("winograd")), ("winograd_tile", .int(2))]] : [[]]
        for runtime in [Self.oneThread, Self.twoThreads, Self.threeThreads] {
            for extra in forced {
                let l = try layer(name, json, extra, runtime)
                let label = "\(name), \(extra.isEmpty ? "auto" : "F(2x2)"), \(runtime.threads) threads"
                for pass in 1...2 { // the second forward reuses the transformed weights
                    let y = try l.forward([input])
                    #expect(y.shape == expected.shape, "\(label): output shape \(y.shape) vs \(expected.shape)")
                    let c = closeness(y.data, expected.data)
                    #expect(c.ok, "\(label), pass \(pass): max error \(c.error) > \(c.bound)")
                }
            }
        }
    }

    /// "auto" runs these layers by F(2x2): its output is forced F(2x2)'s bit for bit, and differs from
    /// forced F(4x4)'s (so the comparison tells the two apart).
    @Test(.enabled(if: avx512Kernels, "Winograd runs at the AVX-512 level only"), arguments: cases)
    func autoTakesTwoByTwoTiles(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("winograd_small/\(name).json"))
        let input = try #require(json["input"]?.tensor)
        for runtime in [Self.oneThread, Self.twoThreads] {
            let auto = try layer(name, json, [], runtime).forward([input]).data
            let f2 = try layer(name, json, [("algorithm", .string("winograd")), ("winograd_tile", .int(2))], runtime)
                .forward([input]).data
            let f4 = try layer(name, json, [("algorithm", .string("winograd")), ("winograd_tile", .int(4))], runtime)
                .forward([input]).data
            let differing = zip(auto, f2).filter { $0 != $1 }.count, apart = zip(f2, f4).filter { $0 != $1 }.count
            #expect(auto.count == f2.count && differing == 0,
                    "\(name), \(runtime.threads) threads: auto differs from F(2x2) in \(differing) of \(f2.count) values")
            #expect(apart > 0, "\(name), \(runtime.threads) threads: F(2x2) and F(4x4) gave the same output")
        }
    }
}
