import Foundation
import Testing
@testable import Ply

/// conv2d's Winograd F(4x4) at the AVX2 level (Plugins/Conv/conv_winograd4_avx2.c for the transforms,
/// Plugins/Conv/conv_kernel_avx2.c for the products): "auto" in evaluation takes it for the 3x3,
/// stride-1 layers where the F(4x4) rule holds (conv_winograd_suits_inference), where it took the spans
/// or im2col before. Against PyTorch's convolution in double precision (Fixtures/winograd_avx2, written
/// by make-conv-winograd-avx2.py) on 1, 2 and 3 threads, plain and with the relu fused. At the AVX2
/// level also: "auto" gave neither forced "im2col"'s nor forced "spans"' floats (so it took another
/// path: Winograd is the only other one there), and the same floats on every thread count (each
/// tile's sums do not depend on how the plans split the tiles and channels).
@Suite struct ConvWinogradAVX2Tests {
    static let cases = fixtureCases("winograd_avx2")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 6, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("winograd_avx2", name)
        let input = try f.input
        for relu in [false, true] {
            let expected = try f.expected(relu: relu)
            var autos: [[Float]] = []
            for runtime in Self.runtimes.all {
                let label = "\(name), auto\(relu ? ", relu" : ""), \(runtime.threads) threads"
                let layer = try f.layer(on: runtime, relu: relu, label: label)
                try expectForwardsMatch(layer, input, expected, label) // the second reuses U
                autos.append(try layer.forward([input]).data)
            }
            guard cpuLevel == "avx2" else { continue }
            for (i, other) in autos.enumerated().dropFirst() {
                let differing = zip(autos[0], other).filter { $0 != $1 }.count
                #expect(differing == 0, "\(name): \(Self.runtimes.all[i].threads) threads gave \(differing) floats unlike \(Self.runtimes.all[0].threads)'s")
            }
            for algorithm in ["im2col", "spans"] {
                let label = "\(name), \(algorithm)\(relu ? ", relu" : "")"
                let layer = try f.layer([("algorithm", .string(algorithm))], on: sharedRuntime, relu: relu, label: label)
                try expectForwardsMatch(layer, input, expected, label, passes: 1)
                let same = try layer.forward([input]).data == autos[0]
                #expect(!same, "\(label): \"auto\" gave forced \(algorithm)'s floats (it did not take Winograd)")
            }
        }
    }

    /// At the AVX2 level, evaluation forwards of 3x3 stride-1 layers on planes of 28x28 to 56x56 run the
    /// blocked layout's F(4x4) between two reorders (conv_blocked.c's conv_bwino_through), which sums in the
    /// NCHW F(4x4)'s order. So its outputs are bit for bit those of the same layer on a plane outside that
    /// range (the NCHW F(4x4)): here the input zero-extended to 64x64 on the right and below, whose outputs
    /// over the original plane are the same tiles' sums (4x4 tiles from the same origin, zeros where the
    /// padding was). That the blocked path ran shows in what the frozen layer keeps after its forward: the
    /// blocked F(4x4)'s transformed weights, 36 x 32 x 48 floats for 40 -> 24 channels (the NCHW path keeps
    /// another size). On 1 and 2 threads, with bias and the relu fused, batch 2; 150 input channels sum in two of
    /// conv_kernel_avx2.c's blocks of 128.
    @Test(.enabled(if: cpuLevel == "avx2", "the AVX2 level's path"), arguments: [(28, 28, 40), (35, 35, 40), (56, 50, 40), (28, 30, 150)])
    func blockedF4OnMidPlanesGivesTheNCHWBits(_ plane: (h: Int, w: Int, c: Int)) throws {
        let (n, c, oc, big) = (2, plane.c, 24, 64)
        var g = SplitMix64(seed: UInt64(plane.h * 100 + plane.w))
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }
        let x = random(n * c * plane.h * plane.w)
        var wide = [Float](repeating: 0, count: n * c * big * big)
        for i in 0..<(n * c) {
            for r in 0..<plane.h {
                for q in 0..<plane.w { wide[(i * big + r) * big + q] = x[(i * plane.h + r) * plane.w + q] }
            }
        }
        for threads in [1, 2] {
            var options = Runtime.Options()
            options.threads = threads
            let runtime = try Runtime(options: options) // its own: layerBytes counts only this test's layers
            func layer() throws -> Layer {
                let l = try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(3)),
                                             ("padding", .int(1))], runtime: runtime)
                #expect(l.fuseActivation("relu"), "conv2d fuses the relu")
                return l
            }
            let mid = try layer(), far = try layer()
            let params = random(oc * c * 9 + oc)
            for l in [mid, far] {
                let ps = try l.parameters
                try ps[0].write(Array(params[0..<(oc * c * 9)]))
                try ps[1].write(Array(params[(oc * c * 9)...]))
                l.freeze()
            }
            let bytes = runtime.layerBytes
            let y = try mid.forward([try Tensor(shape: [n, c, plane.h, plane.w], data: x)])
            let kept = runtime.layerBytes - bytes
            let bytesFar = runtime.layerBytes
            let yFar = try far.forward([try Tensor(shape: [n, c, big, big], data: wide)])
            let keptFar = runtime.layerBytes - bytesFar
            var expected = [Float]()
            for i in 0..<(n * oc) {
                for r in 0..<plane.h {
                    for q in 0..<plane.w { expected.append(yFar.data[(i * big + r) * big + q]) }
                }
            }
            let label = "\(c) channels \(plane.h)x\(plane.w), \(threads) threads"
            #expect(y.shape == [n, oc, plane.h, plane.w], "\(label): \(y.shape)")
            let differ = zip(y.data, expected).filter { $0 != $1 }.count
            #expect(differ == 0, "\(label): \(differ) of \(expected.count) outputs differ from the NCHW F(4x4)'s")
            // (the host's allocations carry a small header: the U's bytes and at most a few lines more)
            let blockedU = 4 * 36 * 32 * ((c + 15) / 16 * 16)
            #expect(kept >= blockedU && kept < blockedU + 1024, "\(label): the frozen layer kept \(kept) bytes, not the blocked U's \(blockedU)")
            #expect(keptFar != kept, "\(label): the NCHW path kept as much as the blocked one (\(kept) bytes)")
            #expect(y.data.contains { $0 > 0 } && y.data.contains { $0 == 0 }, "\(label): the relu")
        }
    }
}
