import Foundation
import Testing
@testable import Ply

/// A relu fused into the conv or batch norm before it (`fuse_activation`, Model.fuseActivations) must give
/// the same numbers as the relu layer it replaces, bit for bit: forward, input gradient and
/// every parameter gradient, on the direct kernels and on the im2col plans, NaN included.
@Suite struct FusionTests {
    /// conv 1 -> 8 (direct kernels) -> relu -> conv 8 -> 70 (im2col) -> batch norm -> relu -> conv 70 -> 4, whose
    /// output also feeds an add (so its relu stays a layer) -> relu -> add -> flatten -> linear.
    func build(_ runtime: Runtime, fuse: Bool) throws -> Model {
        let m = Model(runtime: runtime)
        try m.add("c1", "conv2d", [("in_channels", .int(1)), ("out_channels", .int(8)), ("kernel_size", .int(3)), ("padding", .int(1))])
        try m.add("r1", "relu")
        try m.add("c2", "conv2d", [("in_channels", .int(8)), ("out_channels", .int(70)), ("kernel_size", .int(3)), ("padding", .int(1))])
        try m.add("bn2", "batchnorm2d", [("num_features", .int(70))])
        try m.add("r2", "relu") // fused into the batch norm
        let c3 = try m.add("c3", "conv2d", [("in_channels", .int(70)), ("out_channels", .int(4)), ("kernel_size", .int(1))])
        let r3 = try m.add("r3", "relu", inputs: [c3])
        try m.add("twice", "add", inputs: [r3, c3]) // c3 feeds two nodes: not fused
        try m.add("flat", "flatten")
        try m.add("fc", "linear", [("in_features", .int(4 * 9 * 9)), ("out_features", .int(5))])
        if fuse { #expect(m.fuseActivations() == 2) }
        return m
    }

    func same(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }

    @Test(arguments: [false, true])
    func fusedReluIsBitIdentical(_ poisoned: Bool) throws {
        for threads in [1, 2] {
            var options = Runtime.Options()
            options.threads = threads
            let runtime = try Runtime(options: options)
            let plain = try build(runtime, fuse: false), fused = try build(runtime, fuse: true)
            var g = SplitMix64(seed: 99)
            for ((_, p), (_, q)) in zip(try plain.namedParameters(), try fused.namedParameters()) where p.floats != nil {
                let values = (0..<p.shape.count).map { _ in g.nextUnitFloat() - 0.5 + (p.name == "running_var" ? 1 : 0) }
                try p.write(values)
                try q.write(values)
            }
            var x = (0..<(6 * 81)).map { _ in g.nextUnitFloat() * 2 - 1 }
            if poisoned { x[100] = .nan } // image 1 only
            let shape = Shape([6, 1, 9, 9])
            let y0 = Array(try x.withUnsafeBufferPointer { try plain.forward($0, shape: shape) })
            let y1 = Array(try x.withUnsafeBufferPointer { try fused.forward($0, shape: shape) })
            #expect(same(y0, y1), "\(threads) threads: forward differs")
            let dy = (0..<y0.count).map { Float($0 % 7) - 3 }
            let dx0 = Array(try dy.withUnsafeBufferPointer { try plain.backward($0, inputGradient: true) }!)
            let dx1 = Array(try dy.withUnsafeBufferPointer { try fused.backward($0, inputGradient: true) }!)
            #expect(same(dx0, dx1), "\(threads) threads: input gradient differs")
            for ((name, p), (_, q)) in zip(try plain.namedParameters(), try fused.namedParameters()) where p.gradient != nil {
                #expect(same(Array(p.gradient!), Array(q.gradient!)), "\(threads) threads: gradient of \(name) differs")
            }
        }
    }

    @Test func zooModelsFuseAndRefuseNewNodes() throws {
        let convnet = try Zoo.model(named: "convnet", runtime: sharedRuntime)
        #expect(convnet.fuseActivations() == 2)
        #expect(throws: (any Error).self) { try convnet.add("extra", "relu") }
        let vgg = try Zoo.model(named: "vgg11", runtime: sharedRuntime, numClasses: 10, inChannels: 3, imageSize: 32)
        #expect(vgg.fuseActivations() == 8) // the 8 convs; the classifier's relus follow linears
    }
}
