@preconcurrency import CFFI
import Foundation

/// A Swift closure used as an element-wise activation: the `user_activation` layer type
/// (Plugins/UserActivation) calls it through a libffi closure, so the same plugin that
/// calls functions from a user's C library calls Swift code too.
///
/// ```swift
/// let beta: Float = 1.5
/// let act = try UserActivation({ x in x / (1 + exp(-beta * x)) })   // capturing is fine
/// try model.add("act", "user_activation", act.attributes)
/// ```
///
/// How it works: `ffi_closure_alloc` + `ffi_prep_closure_loc` turn the closure into a C
/// function pointer of type `float (*)(float)`; `attributes` passes that pointer to the
/// plugin as `address` with `signature: "float(float)"` (and `derivative_address` when a
/// derivative is given). Without a derivative, backward uses the plugin's central
/// differences (see docs/plugins.md, "User activations").
///
/// Lifetime: `attributes` also carries `owner`/`owner_retain`/`owner_release`, so every
/// layer created from them retains this object (closure, derivative and libffi closures)
/// until the layer is destroyed. Keep the `UserActivation` itself alive until the layers
/// are created; after that the layers keep it alive. Attributes outlive nothing: do not
/// store them in a model file.
///
/// Threads: the plugin calls the closure from the runtime's thread pool, several elements
/// at once, hence `@Sendable`. Cost: one `ffi_call` into a libffi closure per element (tens
/// of nanoseconds); see BENCHMARKS.md, "User activations".
public final class UserActivation: @unchecked Sendable {
    /// The closure's signature as the plugin sees it.
    public static let signature = "float(float)"

    /// Boxed Swift closure reached from the C trampoline through `user_data`.
    final class FunctionBox: @unchecked Sendable {
        let body: @Sendable (Float) -> Float
        init(_ body: @escaping @Sendable (Float) -> Float) { self.body = body }
    }

    /// One libffi closure: the writable closure object and its executable address.
    struct FFIClosure {
        let closure: UnsafeMutablePointer<ffi_closure>
        let code: UnsafeMutableRawPointer
    }

    private let function: FunctionBox
    private let derivativeFunction: FunctionBox?
    private let cif: UnsafeMutablePointer<ffi_cif>
    private let argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>
    private var closures: [FFIClosure] = []
    /// Whether the plugin may call the closure from several threads at once.
    public let parallel: Bool

    /// Wraps `f` (and optionally its derivative `f'`) as C functions `float(float)`.
    /// - Parameters:
    ///   - f: the activation, applied element by element.
    ///   - derivative: d f / d x; without it backward uses central differences.
    ///   - parallel: let the plugin call `f` from the runtime's thread pool (default);
    ///     `false` calls it from one thread at a time.
    /// - Throws: `PlyError.invalid` when libffi cannot allocate or prepare a closure.
    public init(_ f: @escaping @Sendable (Float) -> Float, derivative: (@Sendable (Float) -> Float)? = nil,
                parallel: Bool = true) throws {
        function = FunctionBox(f)
        derivativeFunction = derivative.map { FunctionBox($0) }
        self.parallel = parallel
        cif = .allocate(capacity: 1)
        cif.initialize(to: ffi_cif())
        argumentTypes = .allocate(capacity: 1)
        argumentTypes.initialize(to: UserActivation.floatType)
        let status = ffi_prep_cif(cif, FFI_DEFAULT_ABI, 1, UserActivation.floatType, argumentTypes)
        guard status == FFI_OK else {
            throw PlyError.invalid("UserActivation: ffi_prep_cif failed for float(float) (ffi_status \(status.rawValue))")
        }
        closures.append(try makeClosure(function))
        if let d = derivativeFunction { closures.append(try makeClosure(d)) }
    }

    deinit {
        for c in closures { ffi_closure_free(UnsafeMutableRawPointer(c.closure)) }
        argumentTypes.deinitialize(count: 1).deallocate()
        cif.deinitialize(count: 1).deallocate()
    }

    /// The C address of the function (`float (*)(float)`), valid while this object lives.
    public var address: Int { Int(bitPattern: closures[0].code) }

    /// The C address of the derivative, if one was given.
    public var derivativeAddress: Int? { closures.count > 1 ? Int(bitPattern: closures[1].code) : nil }

    /// Attributes of a `user_activation` layer calling this closure:
    /// `model.add("act", "user_activation", act.attributes)`.
    public var attributes: Attributes {
        var result: Attributes = [("address", .int(address)), ("signature", .string(Self.signature))]
        if let d = derivativeAddress { result.append(("derivative_address", .int(d))) }
        if !parallel { result.append(("parallel", .bool(false))) }
        result.append(("owner", .int(Int(bitPattern: Unmanaged.passUnretained(self).toOpaque()))))
        result.append(("owner_retain", .int(unsafeBitCast(UserActivation.retainOwner, to: Int.self))))
        result.append(("owner_release", .int(unsafeBitCast(UserActivation.releaseOwner, to: Int.self))))
        return result
    }

    /// Calls the closure directly (for checks; layers go through the C pointer).
    public func callAsFunction(_ x: Float) -> Float { function.body(x) }

    // MARK: - libffi

    /// libffi's descriptor of `float` (a C global with a fixed address).
    private static var floatType: UnsafeMutablePointer<ffi_type> { address(of: &ffi_type_float) }
    private static func address(of type: UnsafeMutablePointer<ffi_type>) -> UnsafeMutablePointer<ffi_type> { type }

    private func makeClosure(_ box: FunctionBox) throws -> FFIClosure {
        var code: UnsafeMutableRawPointer?
        guard let raw = ffi_closure_alloc(MemoryLayout<ffi_closure>.size, &code), let code else {
            throw PlyError.invalid("UserActivation: ffi_closure_alloc failed (no executable memory for a closure)")
        }
        let closure = raw.bindMemory(to: ffi_closure.self, capacity: 1)
        // user_data is unretained: this object owns `box` for as long as the closure exists.
        let status = ffi_prep_closure_loc(closure, cif, UserActivation.trampoline,
                                          Unmanaged.passUnretained(box).toOpaque(), code)
        guard status == FFI_OK else {
            ffi_closure_free(raw)
            throw PlyError.invalid("UserActivation: ffi_prep_closure_loc failed (ffi_status \(status.rawValue))")
        }
        return FFIClosure(closure: closure, code: code)
    }

    /// What libffi runs when the C pointer is called: read the float argument, call the
    /// boxed closure, store the float result.
    private static let trampoline: @convention(c) (UnsafeMutablePointer<ffi_cif>?, UnsafeMutableRawPointer?,
                                                   UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                                   UnsafeMutableRawPointer?) -> Void = { _, result, arguments, userData in
        guard let result, let arguments, let x = arguments[0], let userData else { return }
        // No retain/release per call: the owning UserActivation keeps the box alive, and
        // threads calling at once would otherwise contend on its reference count.
        let y = Unmanaged<FunctionBox>.fromOpaque(userData)._withUnsafeGuaranteedRef {
            $0.body(x.assumingMemoryBound(to: Float.self).pointee)
        }
        result.assumingMemoryBound(to: Float.self).pointee = y
    }

    /// `owner_retain` / `owner_release`: the layer's hold on this object.
    private static let retainOwner: @convention(c) (UnsafeMutableRawPointer?) -> Void = { owner in
        guard let owner else { return }
        _ = Unmanaged<UserActivation>.fromOpaque(owner).retain()
    }
    private static let releaseOwner: @convention(c) (UnsafeMutableRawPointer?) -> Void = { owner in
        guard let owner else { return }
        Unmanaged<UserActivation>.fromOpaque(owner).release()
    }
}
