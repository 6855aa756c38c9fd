import ArgumentParser
import Foundation
import Ply
import PlyONNX

/// `ply import`: an ONNX model to a Ply model file and safetensors weights.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert an ONNX model to DIR/model.yaml (a Ply model file) and DIR/weights.safetensors.",
        discussion: """
            Node names come from the ONNX graph (torch.onnx's module scopes, so torchvision's names survive), and so \
            do the weights' names where the graph kept them. The model is built and its weights loaded before \
            anything is written: what is written runs. See docs/onnx.md for the operators Ply maps.
            """)

    @Argument(help: "The ONNX model (.onnx); tensors in external-data files beside it load too.") var model: String
    @Option(help: "Directory for model.yaml and weights.safetensors (created when missing).") var output: String
    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        try checkNotEmpty("<model>", model)
        guard !output.isEmpty else { throw ValidationError("--output must name a directory") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDir), !isDir.boolValue {
            throw ValidationError("--output \(output) is a file; give a directory")
        }
    }

    func run() throws {
        do {
            let imported = try ONNXImport(contentsOf: model)
            // Build it once: a mapping Ply cannot run is an error now, not when the files are used.
            let runtime = try pluginOptions.makeRuntime()
            let net = try imported.build(runtime: runtime)
            try imported.write(to: output)
            let params = imported.weights.reduce(0) { $0 + $1.entry.count }
            print("imported \(model) (opset \(imported.opset)): \(net.nodes.count - 1) layers, \(params) parameter values")
            print("wrote \((output as NSString).appendingPathComponent("model.yaml")) and "
                + (output as NSString).appendingPathComponent("weights.safetensors"))
        } catch let error as ValidationError { throw error } catch { throw fail(error) }
    }
}
