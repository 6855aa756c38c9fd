import Foundation
import Yams

/// A model description in YAML (or JSON, which YAML contains): parameters with defaults,
/// a `layers` sequence of plugin layers, groups and repeats, and an output. The format is
/// described in docs/model-format.md. `build` turns it into a `Model`; every error names
/// the file, line, column and field.
public struct ModelFile: @unchecked Sendable {
    /// The path the text came from, or `<text>`.
    public let source: String
    /// The text as given.
    public let text: String
    /// `model:` (default: the file name without extension, or "model").
    public let name: String
    /// `description:`, if any.
    public let summary: String?
    /// The declared parameters and their defaults, in file order.
    public let parameters: [(name: String, value: AttributeValue)]

    let root: Yams.Node

    /// `transforms:`, if any: the data transforms the model is meant to be trained with.
    public let transforms: TransformSettings?

    static let topKeys: Set<String> = ["model", "description", "params", "vars", "min_input_size", "layers", "output", "transforms"]

    /// The most nodes a model file may expand to (`repeat`s included): 100,000, far beyond any
    /// real network (ResNet-152 has about 500), so that `repeat: 1000000000` is an error
    /// naming the line rather than minutes at 100% CPU and memory without end.
    public static let maxNodes = 100_000
    /// The most entries (layers, groups, repeat iterations) expanding a file may visit: a
    /// repeat whose layers are all switched off by `if:` makes no nodes but still costs time.
    /// Three per node allowed: a node inside a group inside a repeat costs three.
    public static let maxExpansionSteps = 3 * maxNodes
    /// The largest model file read, in bytes (16 MiB; real ones are a few KB). A bigger file,
    /// or a device such as /dev/zero, is refused after reading at most this much (+1 byte).
    public static let maxFileBytes = 16 << 20

    /// Parses `text`; `source` names it in errors (a path, or `<text>`).
    public init(text: String, source: String = "<text>") throws {
        self.source = source
        self.text = text
        // Refuse absurd nesting before Yams' recursive composer sees it (Nesting.swift).
        try ModelFile.checkNesting(text, source: source)
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ModelFile.syntaxError(error, file: source)
        }
        guard let node, let map = node.mapping else {
            throw ModelFileError(.structure, file: source, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1,
                                 field: "model", message: "a model file is a mapping with at least `layers:`")
        }
        root = node
        let r = Reader(file: source)
        let keys = try r.keys(map, allowed: ModelFile.topKeys, context: "the top level")
        guard keys["layers"] != nil else {
            throw r.error(.structure, node, field: "layers", message: "missing `layers:` (the sequence of layers)")
        }
        if let n = keys["model"] {
            guard let s = n.scalar?.string, !s.isEmpty else { throw r.error(.structure, n, field: "model", message: "must be a name") }
            name = s
        } else {
            name = source == "<text>" ? "model" : URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        }
        summary = keys["description"]?.scalar?.string
        transforms = try keys["transforms"].map { try TransformSettings.parse($0, reader: r) }
        var params: [(String, AttributeValue)] = []
        if let p = keys["params"] {
            guard let pm = p.mapping else { throw r.error(.structure, p, field: "params", message: "must be a mapping of name: default value") }
            var seen = Set<String>()
            for (k, v) in pm {
                let key = try r.name(k, field: "params")
                guard seen.insert(key).inserted else {
                    throw r.error(.structure, k, field: "params.\(key)", message: "parameter '\(key)' is declared twice")
                }
                params.append((key, try r.literal(v, field: "params.\(key)")))
            }
        }
        parameters = params
    }

    /// Reads and parses the file at `url` (YAML or JSON).
    public init(contentsOf url: URL) throws {
        // Missing files and directories are I/O errors of their own kind (PLY_ERR_IO in C).
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw PlyError.io(path: url.path, problem: .missing, reason: "model file")
        }
        if let kind = refusedFileKind(url.path) {
            throw PlyError.io(path: url.path, problem: .unreadable, reason: "is \(kind), not a model file")
        }
        // Read at most maxFileBytes + 1: a larger file (or /dev/zero) is refused, not slurped.
        let bytes: [UInt8]
        do {
            let file = try BoundedFile(path: url.path)
            bytes = try file.read(upTo: ModelFile.maxFileBytes + 1)
        } catch {
            throw PlyError.io(path: url.path, problem: .unreadable, reason: "\(error.operation) failed: \(error.reason)")
        }
        guard bytes.count <= ModelFile.maxFileBytes else {
            throw ModelFileError(.limit, file: url.path, line: nil, column: nil, field: "file",
                                 message: "the file is larger than \(ModelFile.maxFileBytes) bytes, the limit for a model file")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ModelFileError(.syntax, file: url.path, line: nil, column: nil, field: "file",
                                 message: "cannot read the file as UTF-8 text: it is not valid UTF-8")
        }
        try self.init(text: text, source: url.path)
    }

    /// Builds the model. `parameters` override the file's defaults (a name the file does
    /// not declare is an error). With `inputShape` (NCHW) the zoo's small-input rule applies
    /// — an input whose height or width is below `min_input_size` gets a parameter-free
    /// `interpolate` node named `resize` in front, resizing it (bilinear) up to that size —
    /// and every node's shape is checked, so a shape that does not fit is reported at the
    /// line of the layer where it happens. The model comes complete, with the relus that
    /// their layers can do themselves fused into them (`Model.fuseActivations`).
    public func build(runtime: Runtime, parameters overrides: [String: AttributeValue] = [:], inputShape: Shape? = nil) throws -> Model {
        var b = Builder(file: self, runtime: runtime)
        let model = try b.build(overrides: overrides, inputShape: inputShape)
        model.fuseActivations()
        return model
    }

    /// The declared `min_input_size` for `parameters` (nil when the file has none).
    public func minInputSize(parameters overrides: [String: AttributeValue] = [:]) throws -> Int? {
        var b = Builder(file: self, runtime: nil)
        let env = try b.environment(overrides)
        return try b.minInputSize(env)
    }

    static func syntaxError(_ error: YamlError, file: String) -> ModelFileError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let ctx = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return ModelFileError(.syntax, file: file, line: mark.line, column: mark.column, field: "yaml",
                                  message: "YAML syntax: \(problem)\(ctx)")
        case let .reader(problem, offset, _, yaml):
            var line: Int?, column: Int?
            if let offset {
                let prefix = yaml.utf8.prefix(offset)
                line = prefix.filter { $0 == UInt8(ascii: "\n") }.count + 1
                column = (prefix.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).last?.count ?? 0) + 1
            }
            return ModelFileError(.syntax, file: file, line: line, column: column, field: "yaml", message: "YAML: \(problem)")
        default:
            return ModelFileError(.syntax, file: file, line: nil, column: nil, field: "yaml", message: "YAML: \(error)")
        }
    }
}
