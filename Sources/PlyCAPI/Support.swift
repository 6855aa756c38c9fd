import CPlyAPI
import Foundation
import Ply

// The boundary between C callers and the Swift library: handles, status codes and the
// rule that no Swift error (and no bad pointer we can detect) crosses into C.

/// Status codes (`ply_status` from plugin.h, plus the C API's own).
enum Status {
    static let ok: Int32 = 0
    static let invalidArgument = Int32(PLY_ERR_INVALID_ARGUMENT.rawValue)
    static let shape = Int32(PLY_ERR_SHAPE.rawValue)
    static let outOfMemory = Int32(PLY_ERR_OUT_OF_MEMORY.rawValue)
    static let notFound = Int32(PLY_ERR_NOT_FOUND.rawValue)
    static let abi = Int32(PLY_ERR_ABI.rawValue)
    static let numeric = Int32(PLY_ERR_NUMERIC.rawValue)
    static let `internal` = Int32(PLY_ERR_INTERNAL.rawValue)
    static let unsupported = Int32(PLY_ERR_UNSUPPORTED.rawValue)
    /// PLY_ERR_IO in ply.h (a macro with a cast, which Swift does not import).
    static let io: Int32 = 64
}

/// An error raised at the boundary itself, with the status it maps to.
struct CAPIError: Error, CustomStringConvertible {
    let status: Int32
    let message: String
    init(_ status: Int32, _ message: String) {
        self.status = status
        self.message = message
    }
    var description: String { message }
}

/// The status and message a Swift error becomes: by the error's type and case, never by
/// reading its message.
func result(for error: any Error) -> (Int32, String) {
    switch error {
    case let e as CAPIError:
        return (e.status, e.message)
    case let e as PlyError:
        return (result(for: e), e.description)
    case let e as DataError:
        // Every DataError but an option out of range is about a file's presence or content
        // (missing, unreadable, not IDX, a corrupt image).
        if case .invalidOption = e { return (Status.invalidArgument, e.description) }
        return (Status.io, e.description)
    case let e as SafeTensorsError:
        switch e {
        case .invalidTensor: return (Status.invalidArgument, e.description)  // the caller's tensors, not the file
        default: return (Status.io, e.description)
        }
    case let e as NumPyError: return (Status.io, e.description)
    case let e as WeightMismatchError: return (Status.invalidArgument, e.description)
    case let e as ModelFileError:
        if let status = e.pluginStatus, status != 0 { return (status, e.description) }
        switch e.kind {
        case .shape: return (Status.shape, e.description)
        case .unknownLayerType: return (Status.notFound, e.description)
        default: return (Status.invalidArgument, e.description)
        }
    case let e as TrainingError:
        switch e {
        case .nonFiniteLoss: return (Status.numeric, e.description)
        case .interrupted: return (Status.internal, e.description)
        case .wrongOutputShape, .datasetShapeMismatch: return (Status.shape, e.description)
        case .outputNotADirectory, .outputNotWritable, .outputLocked: return (Status.io, e.description)
        case .invalidConfiguration, .emptyDataset, .checkpointAhead, .resumeMismatch: return (Status.invalidArgument, e.description)
        }
    case let e as CheckpointError: return (Status.invalidArgument, e.description)
    case let e as DistributedError:
        switch e {
        case .communicatorMissing: return (Status.notFound, e.description)
        case .communicatorRefused: return (Status.abi, e.description)
        case .collectiveFailed: return (Status.internal, e.description)
        case .ranksDisagree, .finalized: return (Status.invalidArgument, e.description)
        }
    case let e as InspectError:
        switch e {
        case .noSuchLayer, .noConvolution: return (Status.notFound, e.description)
        case .positionOutside, .notAFeatureMap, .imageShape: return (Status.shape, e.description)
        case .invalidPicture: return (Status.invalidArgument, e.description)
        case .pngRead, .pngWrite, .jpegRead: return (Status.io, e.description)
        }
    case let e as ResourceError: return (Status.outOfMemory, e.description)
    case let e as CocoaError: return (Status.io, describeFileError(e))
    default: return (Status.internal, String(describing: error))
    }
}

/// The C result code of each PlyError case.
func result(for error: PlyError) -> Int32 {
    switch error {
    case .io: return Status.io
    case .abi: return Status.abi
    case .notFound, .unknownLayerType: return Status.notFound
    case .shape: return Status.shape
    case .numeric: return Status.numeric
    case .outOfMemory: return Status.outOfMemory
    case let .layer(_, _, status, _), let .nodeFailed(_, _, _, status, _):
        return status == 0 ? Status.internal : status
    case .plugin, .duplicateLayerType, .invalid: return Status.invalidArgument
    case .frozen: return Status.unsupported
    case let .attribute(problem):
        // ply_status: PLY_ERR_NOT_FOUND is "a required attribute ... does not exist".
        return problem.kind == .missing ? Status.notFound : Status.invalidArgument
    }
}

/// Runs `body`, turning any thrown error into a status and this thread's `ply_last_error`.
@inline(__always)
func boundary(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok
    } catch {
        let (status, message) = result(for: error)
        plycapi_set_error(message)
        return status
    }
}

/// Base class of every object a C handle points to, so a handle of the wrong kind is an
/// error rather than a crash.
class Handle {
    /// The C type name, for messages ("ply_model").
    class var cName: String { "ply handle" }
}

func retain(_ h: Handle) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(h).toOpaque()) }

func release(_ p: OpaquePointer?) {
    guard let p else { return }
    Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).release()
}

/// The object behind `p`, which must be a `T`; `what` names the argument in errors.
func object<T: Handle>(_ p: OpaquePointer?, _ type: T.Type, _ what: String) throws -> T {
    guard let p else { throw CAPIError(Status.invalidArgument, "\(what) is NULL") }
    guard let h = Unmanaged<Handle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue() as? T else {
        throw CAPIError(Status.invalidArgument, "\(what) is not a \(T.cName) handle")
    }
    return h
}

/// Stores a new handle into `out` (checked for NULL before any work is done).
func checkOut<T>(_ out: UnsafeMutablePointer<T>?, _ what: String) throws -> UnsafeMutablePointer<T> {
    guard let out else { throw CAPIError(Status.invalidArgument, "\(what) is NULL") }
    return out
}

/// A NUL-terminated UTF-8 string argument.
func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
    guard let p else { throw CAPIError(Status.invalidArgument, "\(what) is NULL") }
    return String(cString: p)
}

/// Reads field `key` of a caller's versioned struct (first field `uint32_t struct_size`),
/// or `fallback` when the caller's struct is too small to hold it. Never reads past
/// `struct_size`.
func field<S, T>(_ p: UnsafePointer<S>, _ key: KeyPath<S, T>, _ fallback: T) -> T {
    let size = Int(UnsafeRawPointer(p).load(as: UInt32.self))
    guard let offset = MemoryLayout<S>.offset(of: key), offset + MemoryLayout<T>.size <= size else { return fallback }
    return UnsafeRawPointer(p).load(fromByteOffset: offset, as: T.self)
}

/// Writes field `key` of a caller's versioned struct when its `struct_size` holds it.
func setField<S, T>(_ p: UnsafeMutablePointer<S>, _ key: WritableKeyPath<S, T>, _ value: T) {
    let size = Int(UnsafeRawPointer(p).load(as: UInt32.self))
    guard let offset = MemoryLayout<S>.offset(of: key), offset + MemoryLayout<T>.size <= size else { return }
    UnsafeMutableRawPointer(p).storeBytes(of: value, toByteOffset: offset, as: T.self)
}

/// Checks a caller's versioned struct: non-NULL when required, and at least its header.
func checkStruct<S>(_ p: UnsafePointer<S>?, _ what: String) throws -> UnsafePointer<S>? {
    guard let p else { return nil }
    let size = UnsafeRawPointer(p).load(as: UInt32.self)
    guard size >= 8 else {
        throw CAPIError(Status.abi, "\(what)->struct_size is \(size); initialise it with its _init function")
    }
    return p
}

/// `a * b * ...` for C dimensions, each > 0, without overflow.
func elementCount(_ dims: [Int], _ what: String) throws -> Int {
    var n = 1
    for d in dims {
        guard d > 0 else { throw CAPIError(Status.shape, "\(what) has a dimension \(d); every dimension must be > 0") }
        let (m, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, m <= Int(Int32.max) * 64 else { throw CAPIError(Status.shape, "\(what) \(dims) is too large") }
        n = m
    }
    return n
}
