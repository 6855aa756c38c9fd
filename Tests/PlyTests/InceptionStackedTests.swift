import Foundation
import Testing
@testable import Ply

/// Inception v3's blocks A, C and D run the 1x1 branches that read the block's input as one
/// stacked conv in evaluation, from their own copy of the members' folded weights
/// (Plugins/Inception/inception_fuse.c); E does not (a measured tie for 35 MB), and its case checks
/// the same changes on its unstacked batch. Checked against torchvision's blocks in double precision
/// (Fixtures/inception, make-inception-stacked.py): the batch of 2 and its first image alone, on 1
/// and 2 threads, as made and after each change the stacked copy must follow -- a member's conv
/// weight, another member's batch-norm running mean, and a training forward (which moves every
/// running statistic without a parameter write).
@Suite struct InceptionStackedTests {
    static let cases = ["inception_v3_a_stacked", "inception_v3_c_stacked", "inception_v3_d_stacked",
                        "inception_v3_e_stacked"]

    /// The generator's parameters: every float parameter in state_dict order from one SplitMix64
    /// stream, u = (next() >> 40) / 2^24 mapped in Float as make-inception-stacked.py documents.
    static func seededParameters(_ layer: Layer, seed: UInt64) throws {
        var g = SplitMix64(seed: seed)
        for p in try layer.parameters where !p.isInteger {
            let n = p.shape.count
            let u = (0..<n).map { _ in g.nextUnitFloat() }
            let v: [Float]
            if p.name.hasSuffix("conv.weight") {
                let s = Float(1 / Double(n / p.shape.dims[0]).squareRoot())
                v = u.map { (2 * $0 - 1) * s }
            } else if p.name.hasSuffix("bn.weight") {
                v = u.map { 0.5 + $0 }
            } else if p.name.hasSuffix("bn.bias") {
                v = u.map { 0.6 * $0 - 0.3 }
            } else if p.name.hasSuffix("running_mean") {
                v = u.map { $0 - 0.5 }
            } else if p.name.hasSuffix("running_var") {
                v = u.map { 0.5 + 1.5 * $0 }
            } else {
                Issue.record("no rule for parameter \(p.name)")
                return
            }
            try p.write(v)
        }
    }

    /// One case on 1 and 2 threads (the fixture parsed once: most of the test's time in a debug build).
    @Test(arguments: cases)
    func stackedBranchesMatchPyTorchThroughChanges(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("inception/\(name).json"))
        for threads in [1, 2] { try Self.run(json, name, threads: threads) }
    }

    static func run(_ json: JSON, _ name: String, threads: Int) throws {
        let attrs = try #require(json["attrs"]).object.mapValues { $0.int! }
        var options = Runtime.Options()
        options.threads = threads
        let runtime = try Runtime(options: options)
        let layer = try Layer(try #require(json["op"]?.string),
                              attrs.sorted { $0.key < $1.key }.map { ($0.key, AttributeValue.int($0.value)) },
                              runtime: runtime)
        try Self.seededParameters(layer, seed: UInt64(try #require(json["seed"]?.int)))
        layer.setTraining(false)
        let x = try #require(json["input"]?.tensor)
        let expected = [try #require(json["output"]?.tensor)] + (json["outputs_after"]?.array ?? []).compactMap(\.tensor)
        #expect(expected.count == 4, "\(name): four reference outputs")
        let n = x.shape.dims[0], perIn = x.shape.count / n
        let first = try Tensor(shape: Shape([1] + Array(x.shape.dims.dropFirst())), data: Array(x.data.prefix(perIn)))

        func check(_ stage: Int, _ what: String) throws {
            let want = expected[stage]
            let perOut = want.shape.count / n
            let batch = try layer.forward([x])
            #expect(batch.shape == want.shape, "\(name), \(threads) threads, \(what): shape \(batch.shape)")
            let c = closeness(batch.data, want.data)
            #expect(c.ok, "\(name), \(threads) threads, \(what), batch of \(n): max error \(c.error) > \(c.bound)")
            let one = try layer.forward([first])
            let c1 = closeness(one.data, Array(want.data.prefix(perOut)))
            #expect(c1.ok, "\(name), \(threads) threads, \(what), first image alone: max error \(c1.error) > \(c1.bound)")
        }
        func change(_ key: String, _ f: (Float) -> Float) throws {
            let pname = try #require(json[key]?.string)
            let p = try #require(try layer.parameters.first { $0.name == pname }, "no parameter \(pname)")
            try p.write(p.read().map(f))
        }
        try check(0, "as made")
        try change("moved_weight") { $0 + 0.25 }
        try check(1, "after a member's conv weight moved")
        try change("moved_mean") { $0 - 0.3 }
        try check(2, "after a member's running mean moved")
        layer.setTraining(true)
        _ = try layer.forward([x])
        layer.setTraining(false)
        try check(3, "after a training forward")
    }
}
