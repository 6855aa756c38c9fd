@preconcurrency import CFFI
import Foundation

/// A Swift closure used as an element-wise activation: the `user_activation` layer type
/// (Plugins/UserActivation) calls it through a libffi closure, so the same plugin that
/// calls functions from a user's C library calls Swift code too.
///
/// ```swift
/// let beta: Float = 1.5
/// let act = try UserActivation({ x in x / (1 + exp(-beta * x)) })   // capturing is fine
/// let attributes = try act.register(as: "swish_beta", in: runtime)   // [("function", "swish_beta")]
/// try model.add("act", "user_activation", attributes)
/// ```
///
/// and a model file built with that runtime can say `{type: user_activation, function: swish_beta}`.
///
/// How it works: `ffi_closure_alloc` + `ffi_prep_closure_loc` turn the closure into a C
/// function pointer of type `float (*)(float)`; `register(as:in:)` puts that pointer (and the
/// derivative's) into the runtime's registry of named functions under a name. The layer
/// obtains it from the host by that name (the `resolve_function` slot of `ply_host`): no
/// pointer ever travels through attributes or model text. Without a derivative, backward
/// uses the plugin's central differences (see docs/user-activations.md).
///
/// Lifetime: the runtime keeps this object (closure, derivative and libffi closures) alive
/// until the runtime itself is gone, and layers keep their runtime alive; registrations are
/// never removed.
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

    /// Registers this activation with `runtime` under `name` (letters, digits, `_`, `.`, `-`;
    /// once per runtime) and returns the attributes of a `user_activation` layer calling it:
    /// `[("function", name)]`, plus `("parallel", false)` when it must not run in parallel.
    /// The runtime keeps this object alive from now on.
    @discardableResult
    public func register(as name: String, in runtime: Runtime) throws -> Attributes {
        try runtime.registerFunction(name, signature: Self.signature, function: UnsafeRawPointer(closures[0].code),
                                     derivative: closures.count > 1 ? UnsafeRawPointer(closures[1].code) : nil,
                                     owner: self)
        return attributes(name)
    }

    /// The attributes of a `user_activation` layer calling the function registered as `name`.
    public func attributes(_ name: String) -> Attributes {
        var result: Attributes = [("function", .string(name))]
        if !parallel { result.append(("parallel", .bool(false))) }
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
            throw PlyError.outOfMemory("UserActivation: ffi_closure_alloc failed (no executable memory for a closure)")
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
}
