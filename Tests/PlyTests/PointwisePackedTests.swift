import Foundation
import Testing

@testable import Ply

/// In evaluation, conv_1x1.c's large planes (one image's input above 1M floats) read the weights
/// packed once per weight version (Plugins/Conv/conv.c, L->pw): the packed copy must follow a host
/// write (the parameter generation moves), an owner's write followed by set_training (a folded
/// conv's), and the old weights written back, on one thread and several (each thread packing its
/// own strips, the positions split between them).
@Suite struct PointwisePackedTests {
    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    /// 300 channels of 31x29 (269,700 floats: the large-plane path, K in blocks of 256 and 44), 29
    /// output channels (two full tiles of 12 and one of 5), 899 positions (28 strips of 32 and 3
    /// left over); then stride 2 on 61x57 (31x29 again after subsampling).
    @Test(.enabled(if: avx2Kernels, "forces algorithm \"pointwise\", whose kernels are AVX2 and AVX-512"),
          arguments: [(1, 31, 29), (2, 61, 57)])
    func packedWeightsFollowEveryWrite(_ shape: (stride: Int, h: Int, w: Int)) throws {
        let (n, c, oc) = (2, 300, 29)
        for threads in [1, 3] {
            // fast runs on a runtime of its own, whose parameter generation only fast's own host
            // writes move (the reference's writes go to the shared one): the owner's write below is
            // then seen through set_training alone
            var options = Runtime.Options()
            options.threads = threads
            let runtime = try Runtime(options: options)
            func conv(_ algorithm: String, _ runtime: Runtime) throws -> Layer {
                try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)), ("kernel_size", .int(1)),
                                     ("stride", .int(shape.stride)), ("algorithm", .string(algorithm))], runtime: runtime)
            }
            let fast = try conv("pointwise", runtime), reference = try conv("blas", sharedRuntime)
            fast.setTraining(false)
            reference.setTraining(false)
            var g = SplitMix64(seed: 41)
            let x = try Tensor(shape: [n, c, shape.h, shape.w], data: random(n * c * shape.h * shape.w, &g))
            func agree(_ what: String) throws {
                for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
                let y1 = try fast.forward([x]), y0 = try reference.forward([x])
                #expect(y1.shape == y0.shape)
                let r = closeness(y1.data, y0.data)
                #expect(r.ok, "stride \(shape.stride), \(runtime.threads) threads, \(what): max error \(r.error) > \(r.bound)")
                #expect(y1.data.contains { $0 != 0 })
            }
            try agree("first weights")
            try agree("first weights again")
            let old = try fast.parameters[0].read()
            var w = old
            w[w.count - 1] += 0.5 // the last row of the last, part-filled tile
            try fast.parameters[0].write(w)
            try agree("after a host write of the last weight")
            // an owner's write through the value's memory, the generation left where it is
            let v = try fast.parameters[0].value.assumingMemoryBound(to: Float.self)
            for i in 0..<old.count { v[i] = old[i] * -0.5 }
            fast.setTraining(false)
            try agree("after an owner's write and set_training")
            try fast.parameters[0].write(old)
            try agree("with the first weights back")
        }
    }

    /// At the AVX-512 level planes of at least 784 positions on at least 192 input channels take the
    /// packed strips (and so the packed weights) even below 1M floats (conv_1x1.c, PACK_P and PACK_K:
    /// Inception v3's 35x35 1x1 convs on 192 channels, 235,200 floats, took the small-plane order
    /// before). The packed copy follows every write as on the large planes (against "blas" on 1 and 2
    /// threads), and it is what the product reads: after an owner's write through the value's memory
    /// with no set_training (the contract's way to say the weights changed) the output is still the
    /// old weights' floats exactly, where the small-plane order reads the new weights in place.
    @Test(.enabled(if: avx512Kernels, "the packed order below 1M floats is the AVX-512 level's"),
          arguments: [(192, 35, 35), (256, 28, 28)])
    func smallPlanesOfManyChannelsReadThePackedWeights(_ shape: (c: Int, h: Int, w: Int)) throws {
        let oc = 29
        for threads in [1, 2] {
            var options = Runtime.Options()
            options.threads = threads
            let runtime = try Runtime(options: options)
            func conv(_ algorithm: String, _ runtime: Runtime) throws -> Layer {
                try Layer("conv2d", [("in_channels", .int(shape.c)), ("out_channels", .int(oc)), ("kernel_size", .int(1)),
                                     ("algorithm", .string(algorithm))], runtime: runtime)
            }
            let fast = try conv("auto", runtime), reference = try conv("blas", sharedRuntime)
            fast.setTraining(false)
            reference.setTraining(false)
            var g = SplitMix64(seed: 43)
            let x = try Tensor(shape: [1, shape.c, shape.h, shape.w], data: random(shape.c * shape.h * shape.w, &g))
            let label = "\(shape.c) channels of \(shape.h)x\(shape.w), \(threads) threads"
            for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
            let y1 = try fast.forward([x]), y0 = try reference.forward([x])
            let r = closeness(y1.data, y0.data)
            #expect(r.ok, "\(label): max error \(r.error) > \(r.bound)")
            let old = try fast.parameters[0].read()
            let v = try fast.parameters[0].value.assumingMemoryBound(to: Float.self)
            for i in 0..<old.count { v[i] = old[i] * -0.5 }
            #expect(try fast.forward([x]).data == y1.data, "\(label): the product did not read the packed copy")
            fast.setTraining(false)
            try reference.parameters[0].write(try fast.parameters[0].read())
            let z1 = try fast.forward([x]), z0 = try reference.forward([x])
            let rz = closeness(z1.data, z0.data)
            #expect(rz.ok, "\(label), after an owner's write and set_training: max error \(rz.error) > \(rz.bound)")
        }
    }

    // Against PyTorch (Fixtures/pointwise_packed, make-pointwise-packed.py, double precision): the
    // first block of 12 output channels packs each strip as it reads it from the plane (ctile),
    // the later blocks read the packed strip; on 1, 2 and 3 threads (one image: the threads split
    // its positions), through "auto" and forced "pointwise", two forwards per weight version, the
    // second version written after the first's forwards.
    static let packedCases = fixtureCases("pointwise_packed")

    @Test func fixtureCasesArePresent() {
        #expect(Self.packedCases.count == 2, "\(Self.packedCases)")
    }

    /// The fixture's input: x[i] = Float((i * 7919) % 1000) / 500 - 1 over the flat index (see
    /// make-pointwise-packed.py; each step an exact IEEE float32 operation, as numpy's there).
    static func fixtureInput(_ shape: [Int]) throws -> Tensor {
        let count = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let m = Float((i * 7919) % 1000)
            data[i] = m / 500 - 1
        }
        return try Tensor(shape: Shape(shape), data: data)
    }

    @Test(arguments: packedCases)
    func matchesPyTorchAfterEveryWeightWrite(_ name: String) throws {
        let f = try FixtureCase("pointwise_packed", name)
        let input = try Self.fixtureInput(try #require(f.json["input_shape"]?.array.compactMap { $0.int }))
        let algorithms = avx2Kernels ? ["auto", "pointwise"] : ["auto"]
        for runtime in [sharedRuntime, threadedRuntime(2), threadedRuntime(3)] {
            for algorithm in algorithms {
                let layer = try Layer("conv2d", f.attrs + [("algorithm", .string(algorithm))], runtime: runtime)
                layer.setTraining(false)
                for version in ["", "2"] {
                    try writeFixtureParams(f.json, "params" + version, to: layer, name)
                    let expected = try f.tensor("output" + version)
                    try expectForwardsMatch(layer, input, expected,
                                            "\(name), \(algorithm), \(runtime.threads) threads, weights \(version.isEmpty ? "1" : version)")
                }
            }
        }
    }
}
