import Foundation
import Testing
@testable import Ply

/// adaptive_avgpool2d's forward shortcuts (Plugins/Pooling/pooling_planes.c: an output the size of the input
/// copies the planes; a 1x1 output sums each plane in 8 interleaved partial sums) against PyTorch in
/// double precision (Fixtures/adaptive_pool, written by make-adaptive-pool.py), on 1, 2 and 3 threads,
/// in evaluation and training: odd plane sizes (tails past a multiple of 8, planes shorter than 8),
/// more than one image, cases large enough to be split over the threads, and one axis kept with the
/// other pooled (the window loop, which must not take the copy).
@Suite struct AdaptivePoolTests {
    static let cases = fixtureCases("adaptive_pool")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 6, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("adaptive_pool", name)
        let input = try f.input, expected = try f.expected()
        for runtime in Self.runtimes.all {
            for training in [false, true] {
                let label = "\(name), training \(training), \(runtime.threads) threads"
                let layer = try f.layer(type: "adaptive_avgpool2d", on: runtime, training: training, label: label)
                try expectForwardsMatch(layer, input, expected, label, passes: 1)
            }
        }
    }
}
