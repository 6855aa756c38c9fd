// libFuzzer target for a checkpoint's own metadata (issue #15): the input is the metadata,
// one `key=value` per line (`epoch`, `batch`, `generator`, `optimizer_steps`, `epoch_losses`,
// `training_accuracies`, `partial_loss`, `partial_samples`, `format`, anything else), written
// with a valid model and optimizer state (linear 3 -> 2, SGD with momentum, then Adam) into a
// safetensors checkpoint, which `Checkpoint.load` then reads back. Every value a checkpoint
// holds comes from a file someone may have edited, so a negative, huge or malformed number
// must be an error naming it, never a trap.
//
// The runtime loads libply_linear.so from next to this executable (Fuzz/Package.swift puts
// it there). A thrown error is the expected outcome for bad input; a trap or a sanitizer
// report is a bug.
import Foundation
import Ply

private struct Fixture {
    let model: Model
    let sgd: SGD
    let adam: Adam
    let sgdTensors: [(name: String, entry: SafeTensors.Entry)]
    let adamTensors: [(name: String, entry: SafeTensors.Entry)]
    let path: String
}

private let fixture: Fixture = {
    var options = Runtime.Options()
    options.loadBuiltins = false
    options.useEnvironment = false
    options.threads = 1
    options.log = { _, _ in }
    do {
        let runtime = try Runtime(options: options)
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let dir = URL(fileURLWithPath: exe).deletingLastPathComponent().path
        try runtime.loadPlugin(at: "\(dir)/libply_linear.so")
        let model = Model(runtime: runtime)
        try model.add("fc", "linear", [("in_features", .int(3)), ("out_features", .int(2))])
        let sgd = try SGD(learningRate: 0.1, momentum: 0.9)
        let adam = try Adam()
        let path = NSTemporaryDirectory() + "/fuzz-checkpoint-\(getpid()).safetensors"
        // The tensors of a valid checkpoint of each optimizer (as Checkpoint.save writes
        // them), which every input is written with.
        func tensors(_ optimizer: Optimizer) throws -> [(name: String, entry: SafeTensors.Entry)] {
            var result = try model.stateEntries()
            for (name, values) in optimizer.stateTensors() {
                result.append((Checkpoint.optimizerPrefix + name, SafeTensors.Entry(floats: values, shape: [values.count])))
            }
            return result
        }
        return Fixture(model: model, sgd: sgd, adam: adam, sgdTensors: try tensors(sgd), adamTensors: try tensors(adam), path: path)
    } catch {
        fatalError("FuzzCheckpoint: setup: \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    // The first byte picks the optimizer; the rest is the metadata text.
    let useAdam = (bytes.first ?? 0) & 1 == 1
    let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
    var metadata: [String: String] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        metadata[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
    }
    let tensors = useAdam ? fixture.adamTensors : fixture.sgdTensors
    guard (try? SafeTensors.write(path: fixture.path, tensors: tensors, metadata: metadata)) != nil else { return 0 }
    let optimizer: Optimizer = useAdam ? fixture.adam : fixture.sgd
    _ = try? Checkpoint.load(from: fixture.path, model: fixture.model, optimizer: optimizer)
    return 0
}
