import ArgumentParser
import Foundation
import Ply

/// `ply plugins`: the loaded layer types and where they come from.
struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "List the loaded layer types with their library of origin, or describe one.")

    @OptionGroup var pluginOptions: PluginOptions

    @Option(name: .customLong("describe"), help: "Describe one layer type: its inputs, attributes and parameters.")
    var describe: String?

    func validate() throws {
        try checkNotEmpty("--describe", describe)
    }

    func run() throws {
        let runtime: Runtime
        do { runtime = try pluginOptions.makeRuntime() } catch { throw fail(error) }
        if let describe {
            do { print(try TypeDescription.text(for: describe, runtime: runtime)) } catch { throw fail(error) }
            return
        }
        let types = runtime.layerTypes
        let nameWidth = max(4, types.map(\.name.count).max() ?? 0)
        print("TYPE".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  INPUTS  BACKWARD  LIBRARY / DESCRIPTION")
        for t in types {
            let inputs = t.maxInputs == t.minInputs ? "\(t.minInputs)" : "\(t.minInputs)+"
            print(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                + inputs.padding(toLength: 6, withPad: " ", startingAt: 0) + "  "
                + (t.differentiable ? "yes" : "no ").padding(toLength: 8, withPad: " ", startingAt: 0) + "  "
                + "\(t.library.name) \(t.library.version) \(t.library.path)")
            if !t.doc.isEmpty { print(String(repeating: " ", count: nameWidth + 20) + t.doc) }
        }
        print("\(types.count) layer types from \(Set(types.map(\.library.path)).count) libraries")
    }
}
