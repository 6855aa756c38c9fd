// libFuzzer target for the NumPy .npy reader (`NumPy.parse(bytes:path:)`): the preamble,
// the Python-literal header parser, the dtype / order / shape checks and the conversion
// of the data to Float.
// A thrown error is the expected outcome for bad input; a trap or a sanitizer report is a bug.
import Ply

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let (shape, values) = try? NumPy.parse(bytes: bytes, path: "<fuzz>") {
        // A parsed array must hold exactly product(shape) values.
        if shape.reduce(1, *) != values.count { fatalError("NumPy.parse: \(values.count) values for shape \(shape)") }
    }
    return 0
}
