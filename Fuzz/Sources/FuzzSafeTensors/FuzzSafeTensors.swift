// libFuzzer target for the safetensors reader (its length prefix, its JSON header parser
// and every field check), then each tensor's decoding as floats and integers.
// A thrown error is the expected outcome for bad input; a trap or a sanitizer report is a bug.
import Ply

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? SafeTensors.parse(bytes: bytes, path: "<fuzz>") else { return 0 }
    for name in file.order {
        guard let entry = file.entries[name] else { continue }
        _ = try? entry.floats()
        _ = try? entry.int64s()
    }
    return 0
}
