import Foundation

/// A layer type described for people, as Python's `help(nn.Conv2d)` does: what
/// `ply plugins --describe TYPE` prints.
public enum TypeDescription {
    /// The description of the type called `name`: its doc, library, inputs, attributes with
    /// kinds, defaults, whether required and what they do, and its parameters (from an instance
    /// made with the defaults when every required attribute has one; else only listed as
    /// depending on them). An unknown name is an error listing the close names.
    public static func text(for name: String, runtime: Runtime) throws -> String {
        let types = runtime.layerTypes
        guard let type = types.first(where: { $0.name == name }) else {
            let close = closeNames(to: name, among: types.map(\.name), limit: 5)
            throw PlyError.invalid("unknown layer type '\(name)'"
                + (close.isEmpty ? "; `ply plugins` lists the loaded types" : "; close names: \(close.joined(separator: ", "))"))
        }
        var lines = ["\(type.name) — \(type.doc.isEmpty ? "(no description)" : type.doc)"]
        lines.append("  library: \(type.library)")
        let count = type.maxInputs == type.minInputs ? "\(type.minInputs)"
            : "\(type.minInputs)...\(type.maxInputs.map(String.init) ?? "")"
        lines.append("  inputs (\(count)): \(type.inputsDoc ?? "not described")")
        lines.append("  backward: \(type.differentiable ? "yes" : "no (cannot be trained through)")"
            + "; describe: \(type.selfDescribing ? "yes" : "no (summaries count 0 MACs and keep the receptive field)")")
        lines.append("")
        guard let specs = type.attributes else {
            lines.append("Attributes: not declared (no schema: attributes are passed unchecked; --strict-attributes refuses them)")
            lines += parameters(type, attributes: [], runtime: runtime, note: "with no attributes")
            return lines.joined(separator: "\n")
        }
        if specs.isEmpty {
            lines.append("Attributes: none")
        } else {
            lines.append("Attributes:")
            let rows = specs.map { s -> [String] in
                [s.name, s.kindText, s.isRequired ? "required" : s.defaultText.map { "= \($0)" } ?? "optional", s.doc]
            }
            let widths = (0..<3).map { i in rows.map { $0[i].count }.max() ?? 0 }
            for r in rows {
                lines.append("  " + (0..<3).map { r[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    + (r[3].isEmpty ? "" : "  " + r[3]))
            }
        }
        lines.append("")
        let required = specs.filter(\.isRequired)
        let undefaulted = required.filter { $0.defaultValue == nil }
        if !undefaulted.isEmpty {
            lines.append("Parameters: depend on \(undefaulted.map(\.name).joined(separator: ", ")) (create a layer to see them)")
        } else {
            let given = required.compactMap { s in s.defaultValue.map { (s.name, $0) } }
            lines += parameters(type, attributes: given, runtime: runtime, note: given.isEmpty ? "with the defaults" : "with the defaults shown")
        }
        return lines.joined(separator: "\n")
    }

    static func parameters(_ type: LayerType, attributes: Attributes, runtime: Runtime, note: String) -> [String] {
        let params: [Parameter]
        do {
            params = try Layer(type: type, attributes: attributes, runtime: runtime).parameters
        } catch {
            return ["Parameters: unknown (an instance \(note) cannot be created: \(error))"]
        }
        if params.isEmpty { return ["Parameters: none"] }
        var lines = ["Parameters (an instance \(note)):"]
        let width = params.map(\.name.count).max() ?? 0
        let shapeWidth = params.map(\.shape.description.count).max() ?? 0
        for p in params {
            lines.append("  " + p.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + p.shape.description.padding(toLength: shapeWidth, withPad: " ", startingAt: 0) + "  "
                + (p.trainable ? "trainable" : "buffer"))
        }
        return lines
    }
}
