import CPlyAPI
import Foundation
import Ply

/// Carries a C caller's `release(user_data)` into the runtime's registry.
struct ReleaseTarget: @unchecked Sendable {
    let release: @convention(c) (UnsafeMutableRawPointer?) -> Void
    let userData: UnsafeMutableRawPointer?
}

/// Registers `fn` under `name` in the runtime's function registry (FunctionRegistry.swift),
/// which `user_activation` layers reach through the host's `resolve_function` slot. Nothing is
/// written into model text: a model names the function (`{type: user_activation, function: NAME}`).
func registerFunction(_ runtime: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ signature: String,
                      _ fn: UnsafeRawPointer?, _ derivative: UnsafeRawPointer?,
                      _ release: ReleaseTarget?) throws {
    let r = try object(runtime, RuntimeHandle.self, "runtime")
    let name = try string(name, "name")
    guard let fn else { throw CAPIError(Status.invalidArgument, "fn is NULL") }
    guard r.runtime.layerTypes.contains(where: { $0.name == "user_activation" }) else {
        throw CAPIError(Status.notFound, "functions are called by the user_activation layer type "
            + "(libply_user_activation.so), which this runtime has not loaded")
    }
    try r.runtime.registerFunction(name, signature: signature, function: fn, derivative: derivative,
                                   release: release.map { t in { t.release(t.userData) } })
}

@_cdecl("ply_runtime_register_activation")
public func capi_runtime_register_activation(_ runtime: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                             _ fn: (@convention(c) (Float) -> Float)?,
                                             _ derivative: (@convention(c) (Float) -> Float)?) -> Int32 {
    boundary {
        try registerFunction(runtime, name, "float(float)", fn.map { unsafeBitCast($0, to: UnsafeRawPointer.self) },
                             derivative.map { unsafeBitCast($0, to: UnsafeRawPointer.self) }, nil)
    }
}

@_cdecl("ply_runtime_register_function")
public func capi_runtime_register_function(_ runtime: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                           _ signature: UnsafePointer<CChar>?,
                                           _ fn: (@convention(c) () -> Void)?,
                                           _ derivative: (@convention(c) () -> Void)?,
                                           _ userData: UnsafeMutableRawPointer?,
                                           _ release: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?) -> Int32 {
    boundary {
        let signature = try string(signature, "signature")
        try registerFunction(runtime, name, signature, fn.map { unsafeBitCast($0, to: UnsafeRawPointer.self) },
                             derivative.map { unsafeBitCast($0, to: UnsafeRawPointer.self) },
                             release.map { ReleaseTarget(release: $0, userData: userData) })
    }
}
