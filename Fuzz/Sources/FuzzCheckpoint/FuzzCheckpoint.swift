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

/// What every input shares: the runtime (with libply_linear.so loaded), the tensors of a valid
/// checkpoint of each optimizer, and the scratch file. The model and the optimizer are made
/// anew for each input, so that no input sees state an earlier one left (a finding reproduces
/// from its file alone) and nothing mutable is shared.
private struct Fixture: Sendable {
    let runtime: Runtime
    let sgdTensors: [(name: String, entry: SafeTensors.Entry)]
    let adamTensors: [(name: String, entry: SafeTensors.Entry)]
    let path: String
}

/// linear 3 -> 2, as every checkpoint the fuzzer writes holds.
private func makeModel(_ runtime: Runtime) throws -> Model {
    let model = Model(runtime: runtime)
    try model.add("fc", "linear", [("in_features", .int(3)), ("out_features", .int(2))])
    return model
}

private func makeOptimizer(adam: Bool) throws -> Optimizer {
    adam ? try Adam() : try SGD(learningRate: 0.1, momentum: 0.9)
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
        let model = try makeModel(runtime)
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
        return Fixture(runtime: runtime, sgdTensors: try tensors(makeOptimizer(adam: false)),
                       adamTensors: try tensors(makeOptimizer(adam: true)), path: path)
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
    guard let model = try? makeModel(fixture.runtime), let optimizer = try? makeOptimizer(adam: useAdam) else {
        fatalError("FuzzCheckpoint: cannot make the model and optimizer")
    }
    _ = try? Checkpoint.load(from: fixture.path, model: model, optimizer: optimizer)
    return 0
}
