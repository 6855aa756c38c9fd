// Yams composes a document recursively (Parser.loadNode -> loadSequence/loadMapping ->
// loadNode ...), a few stack frames per level of nesting, so a file nested ~10,000 deep
// (`[[[[...`, `{a: {a: ...`, `- - - - ...`, or block mappings indented once more per line)
// overflowed the stack inside Yams before Ply saw a node. libyaml's own parser is not
// recursive (it keeps explicit stacks), so Ply walks libyaml's event stream first — the
// same parser, the same tokens, no guessing about quotes, comments or block scalars — and
// refuses the file at the first sequence or mapping nested deeper than the limit.
import CYaml

extension ModelFile {
    /// The deepest a model file may nest sequences and mappings (flow `[` / `{` and block
    /// indentation levels alike; the top-level mapping is level 1). A model needs about 2 per
    /// level of `group:` nesting, so this allows 126 nested groups; far deeper input is
    /// refused with a `ModelFileError` naming the line and column where the limit is crossed,
    /// before anything recursive (the YAML composer, the model builder) sees it.
    public static let maxNesting = 256

    /// Throws `ModelFileError` (`.syntax`, field `yaml`) at the first sequence or mapping in
    /// `text`'s first document nested deeper than `maxNesting`, counting what an alias brings
    /// in (an alias is replaced by a copy of its anchored node, so `*a` inside 200 levels,
    /// where `&a` is 100 deep, makes 300). Returns quietly when libyaml finds a syntax error
    /// first: composing stops at the same place, and reports it.
    package static func checkNesting(_ text: String, source: String) throws {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return }
        var failure: ModelFileError?
        bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)

            // The open collections: their anchors and the height of their tallest child so far.
            var open: [(anchor: String?, height: Int)] = []
            // The height (levels of sequences/mappings; a scalar is 0) of every anchored node.
            var anchors: [String: Int] = [:]
            func finished(_ height: Int) {
                if let last = open.indices.last { open[last].height = max(open[last].height, height) }
            }
            func refuse(_ mark: yaml_mark_t, _ message: String) {
                failure = ModelFileError(.syntax, file: source, line: Int(mark.line) + 1, column: Int(mark.column) + 1,
                                         field: "yaml", message: message)
            }
            func name(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                p.map { String(cString: $0) }
            }
            let limit = ModelFile.maxNesting
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return }  // Yams reports the syntax error
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT, YAML_DOCUMENT_END_EVENT, YAML_NO_EVENT:
                    return  // Yams composes only the first document
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    if open.count + 1 > limit {
                        refuse(event.start_mark, "sequences and mappings nested more than \(limit) levels deep "
                            + "(`[`, `{`, `- ` or indentation); a model file needs far fewer")
                        return
                    }
                    let anchor = event.type == YAML_SEQUENCE_START_EVENT ? event.data.sequence_start.anchor
                                                                          : event.data.mapping_start.anchor
                    open.append((name(anchor), 0))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let closed = open.popLast() else { return }
                    let height = closed.height + 1
                    if let anchor = closed.anchor { anchors[anchor] = height }
                    finished(height)
                case YAML_SCALAR_EVENT:
                    if let anchor = name(event.data.scalar.anchor) { anchors[anchor] = 0 }
                case YAML_ALIAS_EVENT:
                    let alias = name(event.data.alias.anchor) ?? ""
                    let height = anchors[alias] ?? 0  // an unknown alias is Yams' error to report
                    if open.count + height > limit {
                        refuse(event.start_mark, "alias '*\(alias)' nests sequences and mappings \(open.count + height) "
                            + "levels deep, more than \(limit) (an alias stands for a copy of its anchored node); "
                            + "a model file needs far fewer")
                        return
                    }
                    finished(height)
                default:
                    break  // stream and document starts
                }
            }
        }
        if let failure { throw failure }
    }
}
