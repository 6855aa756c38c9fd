import CPly

extension Runtime {
    /// The kernel set OpenBLAS runs in this process ("SkylakeX", "Haswell", ...), or nil where it is not
    /// loaded (another CBLAS, or no plugin that links it loaded yet). Ply names the one for the CPU's
    /// level (`PLY_CPU` lowers it) unless `OPENBLAS_CORETYPE` was set before the first runtime started.
    public static var blasCore: String? { cply_blas_corename().map { String(cString: $0) } }

    /// Whether OpenBLAS's kernel set came from `OPENBLAS_CORETYPE` in the environment, which Ply
    /// leaves alone, rather than from Ply's choice for the CPU's level. An environment that sets it for
    /// every program (to `Haswell`, say, on an AVX-512 CPU) slows training's products through OpenBLAS.
    public static var blasCoreFromEnvironment: Bool { cply_blas_coretype_from_user() == 1 }

    /// One line for benchmark output: the BLAS kernels and where their choice came from, or nil
    /// where OpenBLAS is not loaded.
    public static var blasSummary: String? {
        guard let core = blasCore else { return nil }
        return "OpenBLAS \(core)" + (blasCoreFromEnvironment
            ? " (OPENBLAS_CORETYPE from the environment; unset, Ply picks the kernels for this CPU)" : "")
    }
}
