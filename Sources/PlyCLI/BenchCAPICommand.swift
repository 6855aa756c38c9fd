import ArgumentParser
import Foundation
import Ply

/// `ply bench-capi`: the Swift side of Examples/c/bench_forward.c. Times `Model.forward` on
/// an unsafe buffer (the Swift API's fastest path, no copies) for the tutorial's ConvNet at
/// batch 1 and 128, exactly as bench_forward times `ply_model_forward`, so the two together
/// give the C API's overhead per call.
struct BenchCAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-capi",
        abstract: "Time Model.forward of the ConvNet (batch 1 and 128), to compare with Examples/c/bench_forward.c.")

    @Option(help: "Threads lent to plugins (default: one per processor, as the C API's default).") var threads: Int?

    func validate() throws {
        try checkOption("--threads", threads, in: OptionLimits.threads)
    }

    func run() throws {
        var options = Runtime.Options()
        if let threads { options.threads = threads }
        let runtime = try Runtime(options: options)
        let model = try Zoo.convNet(runtime: runtime)
        model.isTraining = false
        for n in [1, 128] {
            let iterations = n == 1 ? 20_000 : 400
            let input = (0..<(n * 784)).map { Float(($0 * 37) % 101) / 100 }
            let shape = Shape([n, 1, 28, 28])
            var rounds: [Double] = []
            var checksum: Float = 0
            try input.withUnsafeBufferPointer { buffer in
                for _ in 0..<(iterations / 10) { _ = try model.forward(buffer, shape: shape) }
                for _ in 0..<7 {
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<iterations { _ = try model.forward(buffer, shape: shape) }
                    rounds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(iterations))
                    checksum += try model.forward(buffer, shape: shape)[0]
                }
            }
            rounds.sort()
            print(String(format: "Swift  Model.forward     batch %3d: best %9.2f us, median %9.2f us per call (%d calls x 7; checksum %g)",
                         n, rounds[0] * 1e6, rounds[3] * 1e6, iterations, Double(checksum)))
        }
    }
}
