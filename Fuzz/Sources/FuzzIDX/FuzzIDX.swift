// libFuzzer target for the IDX reader (MNIST / Fashion-MNIST files).
//
// Raw bytes go to `IDX.parse` twice (any magic, then the image magic). Input that starts
// with the gzip magic is also written to a scratch file and read with `IDX.read(path:)`, so
// `readBytes` and the zlib wrapper see damaged and truncated .gz streams too.
// A thrown DataError is the expected outcome for bad input; a trap or a sanitizer report is a bug.
import Foundation
import Ply

private let scratch: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(dir)/ply-fuzz-idx-\(getpid()).gz"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? IDX.parse(bytes, path: "<fuzz>")
    _ = try? IDX.parse(bytes, path: "<fuzz>", magic: IDX.imagesMagic)
    if size >= 2, bytes[0] == 0x1f, bytes[1] == 0x8b {
        if FileManager.default.createFile(atPath: scratch, contents: Data(bytes)) {
            _ = try? IDX.read(path: scratch)
            _ = try? IDX.readLabels(path: scratch)
            unlink(scratch)
        }
    }
    return 0
}
