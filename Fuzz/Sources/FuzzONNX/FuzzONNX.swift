// libFuzzer target for the ONNX importer: protobuf decoding (swift-protobuf, from the
// committed onnx.pb.swift), every tensor's declared dims and type against its data, the
// constant folding of shape arithmetic and the operator mapping; then, when the file maps,
// building the model with the built-in plugins (attributes, shapes) and loading its weights.
// A thrown error is the expected outcome for bad input; a trap or a sanitizer report is a bug.
// External data is not followed: the input's path is "<fuzz>", whose directory holds nothing.
import Ply
import PlyONNX

let runtime: Runtime? = {
    var options = Runtime.Options()
    options.allowUserLibraries = false
    return try? Runtime(options: options)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let imported = try? ONNXImport(bytes: bytes, path: "/nonexistent-ply-fuzz/<fuzz>.onnx") else { return 0 }
    _ = imported.modelFileText
    // Shapes as exported, but small: the fuzzer explores the mapping, not huge activations.
    let dims = [1] + imported.inputShape.dropFirst().map { min(max($0, 1), 64) }
    if let runtime, dims.count == 4 {
        _ = try? imported.build(runtime: runtime, inputShape: Shape(dims))
    }
    return 0
}
