// libFuzzer target for model files: the YAML/JSON text is parsed (`ModelFile(text:)`), its
// `vars:` and `min_input_size` expressions evaluated (`minInputSize`), and the model built
// with the built-in plugins for a 1x1x28x28 input, so groups, repeats, `if`, inputs, node
// names, plugin attribute checks and every layer's shape inference see the text too.
//
// The runtime loads every libply_*.so next to this executable except user_activation,
// which by design loads the library or calls the address a model names. Run with
// ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=... (scripts/fuzz does),
// so a layer declaring absurd sizes gets a failed allocation it must report, not an OOM kill.
// A thrown error is the expected outcome for bad input; a trap or a sanitizer report is a bug.
import Foundation
import Ply

private let runtime: Runtime = {
    var options = Runtime.Options()
    options.loadBuiltins = false
    options.useEnvironment = false
    options.threads = 1
    options.log = { _, _ in }
    let runtime: Runtime
    do { runtime = try Runtime(options: options) } catch { fatalError("FuzzModelFile: runtime: \(error)") }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let dir = URL(fileURLWithPath: exe).deletingLastPathComponent().path
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
        .filter { $0.hasPrefix("libply_") && $0.hasSuffix(".so") && $0 != "libply_user_activation.so" }.sorted()
    for name in names {
        do { try runtime.loadPlugin(at: "\(dir)/\(name)") } catch { fatalError("FuzzModelFile: \(name): \(error)") }
    }
    if runtime.layerTypes.isEmpty { fatalError("FuzzModelFile: no libply_*.so plugins in \(dir)") }
    return runtime
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let file = try? ModelFile(text: text, source: "<fuzz>") else { return 0 }
    _ = try? file.minInputSize()
    _ = try? file.build(runtime: runtime, inputShape: Shape([1, 1, 28, 28]))
    return 0
}
