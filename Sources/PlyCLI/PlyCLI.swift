import ArgumentParser

/// The `ply` command line as a library: the `ply` executable is `PlyCLI.main()`, and the
/// option-parsing fuzzer (Fuzz/Sources/FuzzCLI) feeds `PlyCLI.parse` arbitrary argument lists.
/// Not a stable API: the commands and their options are documented by `ply help`.
public enum PlyCLI {
    /// Parses `arguments` (without the program name; `nil` reads the process's), validates every
    /// option, and runs the command, exiting the process as `ply` does.
    public static func main(_ arguments: [String]? = nil) {
        PlyCommand.main(arguments)
    }

    /// Parses and validates `arguments` (without the program name) without running the command.
    /// Throws the error `ply` would print for them; never runs a command, reads a file or
    /// allocates a tensor.
    public static func parse(_ arguments: [String]) throws {
        _ = try PlyCommand.parseAsRoot(arguments)
    }

    /// The message and exit code `ply` would give for an error `parse` threw.
    public static func message(for error: Error) -> (text: String, exitCode: Int32) {
        (PlyCommand.fullMessage(for: error), PlyCommand.exitCode(for: error).rawValue)
    }
}
