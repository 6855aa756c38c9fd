import Foundation
import Testing
@testable import Ply

/// conv2d's optional second input, the residual added before the activation (Plugins/Conv/conv_residual.h:
/// an inference-only layer's relu(conv(x) + r), a residual block's last conv with its add + relu)
/// against PyTorch in double precision (Fixtures/residual_conv, written by make-conv-residual.py), on
/// 1, 2 and 3 threads, with and without the relu: the 1x1 cases are conv_1x1.c's product adding r in
/// its tiles (the AVX2 and AVX-512 levels), the 3x3 case another kernel and conv.c's pass after it (and
/// every case at the generic level). Then the large planes' product (K in blocks, r added with the last
/// block) against the reference conv plus r, the fused sums bit for bit against the separate add, and
/// the inputs it refuses.
@Suite struct ConvResidualTests {
    static let cases = fixtureCases("residual_conv")
    static let runtimes = SuiteRuntimes()

    @Test func casesArePresent() {
        #expect(Self.cases.count == 5, "\(Self.cases)")
    }

    @Test(arguments: cases)
    func matchesPyTorchInDoublePrecision(_ name: String) throws {
        let f = try FixtureCase("residual_conv", name)
        let x = try f.input, r = try f.tensor("residual")
        for runtime in Self.runtimes.all {
            for relu in [true, false] {
                let label = "\(name), relu \(relu), \(runtime.threads) threads"
                let layer = try f.layer(on: runtime, relu: relu, label: label)
                try expectForwardsMatch(layer, [x, r], try f.tensor(relu ? "output" : "output_linear"), label, passes: 1)
            }
        }
    }

    func random(_ count: Int, _ g: inout SplitMix64) -> [Float] { (0..<count).map { _ in g.nextUnitFloat() * 2 - 1 } }

    /// The large planes (300 channels of 31x29: K in blocks of 256 and 44, the residual added with the
    /// last; 29 output channels: tiles of 12, 12 and 5; 899 positions: a part-filled last strip), two
    /// images, stride 1 and 2, 1 and 3 threads (the positions split): relu(conv + r) against the
    /// reference conv ("blas") followed by the sum and relu here.
    @Test(arguments: [(1, 31, 29), (2, 61, 57)])
    func largePlanesAddTheResidualWithTheLastBlock(_ shape: (stride: Int, h: Int, w: Int)) throws {
        let (n, c, oc) = (2, 300, 29)
        for runtime in [sharedRuntime, Self.runtimes.three] {
            func conv(_ algorithm: String) throws -> Layer {
                let layer = try Layer("conv2d", [("in_channels", .int(c)), ("out_channels", .int(oc)),
                                                 ("kernel_size", .int(1)), ("stride", .int(shape.stride)),
                                                 ("algorithm", .string(algorithm)), ("trainable", .bool(false))],
                                      runtime: runtime)
                layer.setTraining(false)
                return layer
            }
            let fast = try conv("auto"), reference = try conv("blas")
            #expect(fast.fuseActivation("relu"))
            var g = SplitMix64(seed: 43)
            for p in try fast.parameters { try p.write(random(p.shape.count, &g)) }
            for (p, q) in zip(try fast.parameters, try reference.parameters) { try q.write(p.read()) }
            let x = try Tensor(shape: [n, c, shape.h, shape.w], data: random(n * c * shape.h * shape.w, &g))
            let plain = try reference.forward([x])
            let r = try Tensor(shape: plain.shape, data: random(plain.data.count, &g))
            let expected = zip(plain.data, r.data).map { max($0 + $1, 0) }
            let y = try fast.forward([x, r])
            #expect(y.shape == plain.shape)
            let close = closeness(y.data, expected)
            #expect(close.ok, "stride \(shape.stride), \(runtime.threads) threads: max error \(close.error) > \(close.bound)")
            #expect(y.data.contains { $0 == 0 } && y.data.contains { $0 > 0 }, "the relu after the sum")
        }
    }

    /// The residual added inside the 1x1 product gives the bits of the same conv followed by a separate add
    /// (+ relu): the sum is taken in the same order (the finished conv + bias, then r). Planes whose strips
    /// end in tiles (31x29, stride 2: 15x15 = 7 strips of 32 and 1 position), in columns (7x7: 32 + 16 + 1;
    /// 14x14: 6 x 32 + 4), K in one block and in two (300: 256 + 44), output channels in 12-row tiles and a
    /// 6- or 5-row rest; one image and two, 1 and 3 threads (positions or output channels split), relu and
    /// not. At the AVX-512 level the product adds r in its tiles; at AVX2 (where conv_1x1_adds_residual
    /// says no) conv.c's separate pass does. An AVX2 product that added r to the first K block's partial
    /// sums instead of the last's failed it (171-760 outputs differing per case).
    @Test(arguments: [(300, 29, 7, 7, 1), (64, 30, 14, 14, 1), (40, 18, 31, 29, 2), (300, 12, 9, 11, 1)])
    func fusedResidualGivesTheBitsOfTheSeparateAdd(_ shape: (c: Int, oc: Int, h: Int, w: Int, stride: Int)) throws {
        for runtime in [sharedRuntime, Self.runtimes.three] {
            for (n, relu) in [(1, true), (2, false), (2, true)] {
                func conv() throws -> Layer {
                    let layer = try Layer("conv2d", [("in_channels", .int(shape.c)), ("out_channels", .int(shape.oc)),
                                                     ("kernel_size", .int(1)), ("stride", .int(shape.stride)),
                                                     ("trainable", .bool(false))], runtime: runtime)
                    layer.setTraining(false)
                    return layer
                }
                let fused = try conv(), plain = try conv()
                if relu { #expect(fused.fuseActivation("relu")) }
                var g = SplitMix64(seed: UInt64(41 + shape.c + n))
                for p in try fused.parameters { try p.write(random(p.shape.count, &g)) }
                for (p, q) in zip(try fused.parameters, try plain.parameters) { try q.write(p.read()) }
                let x = try Tensor(shape: [n, shape.c, shape.h, shape.w], data: random(n * shape.c * shape.h * shape.w, &g))
                let y = try plain.forward([x])
                let r = try Tensor(shape: y.shape, data: random(y.data.count, &g))
                let expected = zip(y.data, r.data).map { (a: Float, b: Float) -> Float in
                    let v = a + b
                    return !relu || v > 0 || v.isNaN ? v : 0
                }
                let got = try fused.forward([x, r])
                let label = "\(shape), batch \(n), relu \(relu), \(runtime.threads) threads"
                #expect(got.shape == y.shape, "\(label)")
                let differing = zip(got.data, expected).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "\(label): \(differing) of \(expected.count) outputs differ from the separate add")
            }
        }
    }

    /// A trainable layer refuses the second input (it has no backward for it), and a residual of
    /// another shape than the output is refused with the shape it needs.
    @Test func refusesATrainableLayerAndAnotherShape() throws {
        func layer(trainable: Bool) throws -> Layer {
            try Layer("conv2d", [("in_channels", .int(4)), ("out_channels", .int(6)), ("kernel_size", .int(1)),
                                 ("trainable", .bool(trainable))], runtime: sharedRuntime)
        }
        let x = Tensor(shape: [1, 4, 5, 5]), r = Tensor(shape: [1, 6, 5, 5])
        let trainable = try layer(trainable: true)
        trainable.setTraining(false)
        #expect {
            _ = try trainable.forward([x, r])
        } throws: { error in
            "\(error)".contains("input 1") && "\(error)".contains("trainable=false")
        }
        let frozenWeights = try layer(trainable: false)
        frozenWeights.setTraining(false)
        #expect {
            _ = try frozenWeights.forward([x, Tensor(shape: [1, 6, 5, 4])])
        } throws: { error in
            "\(error)".contains("input 1") && "\(error)".contains("[1, 6, 5, 5]") && "\(error)".contains("[1, 6, 5, 4]")
        }
        #expect(try frozenWeights.forward([x, r]).shape == [1, 6, 5, 5])
    }
}
