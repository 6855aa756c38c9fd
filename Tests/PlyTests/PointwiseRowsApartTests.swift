import Foundation
import Testing

@testable import Ply

/// conv_1x1.c's small-plane order on planes of at least 784 positions at batches above 1 (rows
/// pages apart: ResNet-50's 56x56 and 28x28 convs on 64 and 128 channels at batch 16) first packs each
/// strip's rows together (xq, pack_strips) and the tiles read the packed strips. Against "blas"
/// (im2col and OpenBLAS): 3 images on 1 thread (one group of images), 2 (each image's positions split
/// in two parts, the second starting past 0) and 3 (an image each), and 1 image (not packed), stride
/// 1 and 2, two forwards each (the second reuses the scratch): 33x35 (1155 positions: 36 strips of 32
/// and 3 tail positions) and 24x46 (1104 = 23 strips of 48, the 3-vector tile), 20 channels into 29
/// (tiles of 12, 12 and 5 rows).
@Suite struct PointwiseRowsApartTests {
    @Test(.enabled(if: avx2Kernels, "forces algorithm \"pointwise\", whose kernels are AVX2 and AVX-512"),
          arguments: [(1, 33, 35), (2, 65, 69), (1, 24, 46)])
    func packedStripsMatchTheReference(_ shape: (stride: Int, h: Int, w: Int)) throws {
        let (c, oc) = (20, 29)
        for n in [1, 3] {
            for threads in [1, 2, 3] {
                var options = Runtime.Options()
                options.threads = threads
                let runtime = try Runtime(options: options)
                func conv(_ algorithm: String, _ runtime: Runtime) throws -> Layer {
                    try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(1)),
                                         ("stride", .int(shape.stride)), ("algorithm", .string(algorithm))],
                              runtime: runtime)
                }
                let fast = try conv("pointwise", runtime), reference = try conv("blas", sharedRuntime)
                fast.setTraining(false)
                reference.setTraining(false)
                for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
                var g = SplitMix64(seed: 47)
                let count = n * c * shape.h * shape.w
                let x = try Tensor(shape: [n, c, shape.h, shape.w], data: (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 })
                let label = "\(n) images, \(c) channels of \(shape.h)x\(shape.w), stride \(shape.stride), \(threads) threads"
                for pass in 1...2 { // the second forward reuses the scratch
                    let y1 = try fast.forward([x]), y0 = try reference.forward([x])
                    #expect(y1.shape == y0.shape, "\(label)")
                    let r = closeness(y1.data, y0.data)
                    #expect(r.ok, "\(label), forward \(pass): max error \(r.error) > \(r.bound)")
                }
            }
        }
    }
}
