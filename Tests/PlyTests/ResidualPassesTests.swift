import Foundation
import Testing

@testable import Ply

/// In evaluation a large batch goes through a residual block in passes of a few images
/// (Plugins/Residual/residual_eval.c, images_per_pass): 12 images of 4x256x256 with a stride-2
/// downsample take two passes of 6. Each image's output is the one it gets alone (batch 1, one
/// pass): the first and last image of each pass, so that a pass reading or writing at the wrong
/// offset (as the first version did, adding float counts to void pointers) is caught.
@Suite struct ResidualPassesTests {
    @Test func evaluationInPassesMatchesImagesAlone() throws {
        for runtime in [sharedRuntime, KernelTests.threaded] {
            let layer = try Layer("residual_bottleneck", [("inplanes", .int(4)), ("planes", .int(1)), ("stride", .int(2))],
                                  runtime: runtime)
            layer.setTraining(false)
            let n = 12, c = 4, side = 256, per = c * side * side
            let x = hashInput(Shape([n, c, side, side]))
            let y = try layer.forward([x])
            let outPer = y.data.count / n
            for i in [0, 5, 6, 11] {
                var xi = Tensor(shape: Shape([1, c, side, side]))
                xi.data = Array(x.data[i * per ..< (i + 1) * per])
                let yi = try layer.forward([xi])
                let r = closeness(Array(y.data[i * outPer ..< (i + 1) * outPer]), yi.data)
                #expect(r.ok, "\(runtime.threads) threads, image \(i): max error \(r.error) > \(r.bound)")
                #expect(yi.data.contains { $0 != 0 })
            }
        }
    }
}
