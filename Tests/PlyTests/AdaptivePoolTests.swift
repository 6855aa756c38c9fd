import Foundation
import Testing
@testable import Ply

/// adaptive_avgpool2d's forward shortcuts (Plugins/Pooling/pooling.c: an output the size of the input
/// copies the planes; a 1x1 output sums each plane in 8 interleaved partial sums) against PyTorch in
/// double precision (Fixtures/adaptive_pool, written by make-adaptive-pool.py), on 1, 2 and 3 threads,
/// in evaluation and training: odd plane sizes (tails past a multiple of 8, planes shorter than 8),
/// more than one image, cases large enough to be split over the threads, and one axis kept with the
/// other pooled (the window loop, which must not take the copy).
@Suite struct AdaptivePoolTests {
    static let cases = fixtureCases("adaptive_pool")

    static let twoThreads = threadedRuntime(2)
    static let threeThreads = threadedRuntime(3)

    @Test func casesArePresent() {
        #expect(Self.cases.count == 6, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let json = try JSON.load(fixtures.appendingPathComponent("adaptive_pool/\(name).json"))
        let attrs = try json.attributes(case: name)
        let input = try #require(json["input"]?.tensor), expected = try #require(json["output"]?.tensor)
        for runtime in [sharedRuntime, Self.twoThreads, Self.threeThreads] {
            for training in [false, true] {
                let layer = try Layer("adaptive_avgpool2d", attrs, runtime: runtime)
                layer.setTraining(training)
                let label = "\(name), training \(training), \(runtime.threads) threads"
                let y = try layer.forward([input])
                #expect(y.shape == expected.shape, "\(label): output shape \(y.shape) vs \(expected.shape)")
                let c = closeness(y.data, expected.data)
                #expect(c.ok, "\(label): max error \(c.error) > \(c.bound)")
            }
        }
    }
}
