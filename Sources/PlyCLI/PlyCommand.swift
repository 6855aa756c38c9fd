import ArgumentParser
import Foundation
import Ply

/// `ply`: train, evaluate and inspect convolutional networks built from plugin layers.

struct PlyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ply",
        abstract: "Convolutional networks from plugin layers, checked against PyTorch.",
        subcommands: [TrainCommand.self, EvalCommand.self, PluginsCommand.self, BenchCommand.self, BenchCAPICommand.self, BenchActivationsCommand.self, BenchModelCommand.self, BenchLayersCommand.self, BenchDataCommand.self, SummaryCommand.self, PredictCommand.self, InspectCommand.self, ImportCommand.self, ExportCommand.self],
        defaultSubcommand: TrainCommand.self
    )
}

/// Options every command that loads plugins shares.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugin"), help: "Load a plugin library (repeatable).")
    var plugins: [String] = []

    @Option(name: .customLong("plugin-dir"), help: "Load every plugin library in a directory (repeatable).")
    var pluginDirectories: [String] = []

    @Flag(name: .customLong("no-builtins"), help: "Do not load the built-in plugins.")
    var noBuiltins = false

    @Flag(name: .customLong("strict-attributes"),
          help: "Refuse attributes for layer types that declare no attribute schema (default: pass them unchecked, with a warning).")
    var strictAttributes = false

    @Flag(name: .customLong("keep-denormals"),
          help: "Compute with IEEE denormals, as PyTorch does (default: flushed to zero, which is faster).")
    var keepDenormals = false

    @Flag(name: .customLong("no-user-libraries"),
          help: "Refuse user_activation layers that name a shared library (library:/symbol:): opening one runs its code.")
    var noUserLibraries = false

    func validate() throws {
        try checkNotEmpty("--plugin", plugins)
        try checkNotEmpty("--plugin-dir", pluginDirectories)
    }

    /// A runtime with the requested plugins.
    func makeRuntime(seed: UInt64 = 1, threads: Int? = nil) throws -> Runtime {
        var options = Runtime.Options()
        options.loadBuiltins = !noBuiltins
        options.flushDenormals = !keepDenormals
        options.strictAttributes = strictAttributes
        options.allowUserLibraries = !noUserLibraries
        options.seed = seed
        if let threads { options.threads = threads }
        let runtime = try Runtime(options: options)
        for dir in pluginDirectories { try runtime.loadPlugins(inDirectory: dir) }
        for path in plugins { try runtime.loadPlugin(at: path) }
        return runtime
    }
}

/// Prints an error the way every command reports one, then exits non-zero.
func fail(_ error: Error) -> ExitCode {
    // Foundation's errors print as `Error Domain=NSCocoaErrorDomain Code=516 … UserInfo={…}`:
    // say the path and the problem instead.
    let ns = error as NSError
    let text = ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain ? describeFileError(error) : "\(error)"
    FileHandle.standardError.write(Data("ply: error: \(text)\n".utf8))
    return ExitCode.failure
}
