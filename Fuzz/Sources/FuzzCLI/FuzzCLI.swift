// libFuzzer target for the `ply` command line's option parsing and validation (issue #15):
// the input is an argument list, words separated by NUL or newline bytes. When the first
// word is not a subcommand, the first byte picks one from `subcommands` (the empty entry
// leaves the default, `train`) and the rest of the input is the argument list; Fuzz/dict/cli.dict
// holds every option name, so libFuzzer combines them with values. `PlyCLI.parse` runs
// ArgumentParser and every command's `validate()`, without running the command; the message
// `ply` would print is then built too (help and usage text included).
//
// A thrown error is the expected outcome for bad options; a trap (an integer overflow, a
// range with lowerBound > upperBound, a force-unwrap), a sanitizer report or a hang is a
// bug, to be fixed where the option is validated.
import Foundation
import PlyCLI

/// The subcommands, and "" for none (the default subcommand) and "help".
private let subcommands = ["", "train", "eval", "plugins", "bench", "bench-capi", "bench-activations",
                           "bench-model", "bench-data", "bench-layers", "summary", "predict", "inspect", "import", "export", "help"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let first = bytes.first else { return 0 }
    func split(_ input: Slice<UnsafeBufferPointer<UInt8>>) -> [String] {
        input.split(omittingEmptySubsequences: false, whereSeparator: { $0 == 0 || $0 == 10 })
            .map { String(decoding: $0, as: UTF8.self) }
    }
    var words = split(bytes[...])
    if let word = words.first, !word.isEmpty, subcommands.contains(word) {
        // A real command line (the seeds): taken as it is.
    } else {
        // The first byte picks the subcommand; the rest of the input is the argument list.
        words = size > 1 ? split(bytes.dropFirst()) : []
        let subcommand = subcommands[Int(first) % subcommands.count]
        if !subcommand.isEmpty { words.insert(subcommand, at: 0) }
    }
    do {
        try PlyCLI.parse(words)
    } catch {
        _ = PlyCLI.message(for: error)
    }
    return 0
}
