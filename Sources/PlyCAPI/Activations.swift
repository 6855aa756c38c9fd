import CPlyAPI
import Foundation
import Ply
import Yams

/// A C activation registered under a name with `ply_runtime_register_activation`.
struct RegisteredActivation {
    let address: Int
    let derivative: Int?
}

extension RuntimeHandle {
    /// Rewrites every layer entry of model text whose `type` is a registered activation into
    /// a `user_activation` layer calling the C function (`address`, `signature`,
    /// `derivative_address`). Text that names none is returned unchanged, so its error
    /// positions stay exact; rewritten text is re-serialised (positions refer to that).
    func expandActivations(in text: String) throws -> String {
        let table = activations
        guard !table.isEmpty, table.keys.contains(where: { text.contains($0) }) else { return text }
        // Too deeply nested for Yams' recursive composer (and `walk`): ModelFile reports that too.
        guard (try? ModelFile.checkNesting(text, source: "")) != nil else { return text }
        guard let root = try? Yams.compose(yaml: text) else { return text }  // the model parser reports the syntax error
        var changed = false
        func walk(_ node: Node) -> Node {
            switch node {
            case let .mapping(m):
                var pairs: [(Node, Node)] = m.map { ($0.key, walk($0.value)) }
                if let i = pairs.firstIndex(where: { $0.0.string == "type" }), let name = pairs[i].1.string,
                   let act = table[name] {
                    changed = true
                    pairs[i].1 = Node("user_activation")
                    pairs.append((Node("address"), Node(String(act.address))))
                    pairs.append((Node("signature"), Node("float(float)", .implicit, .doubleQuoted)))
                    if let d = act.derivative { pairs.append((Node("derivative_address"), Node(String(d)))) }
                }
                return .mapping(Node.Mapping(pairs, m.tag, m.style, m.mark))
            case let .sequence(s):
                return .sequence(Node.Sequence(s.map(walk), s.tag, s.style, s.mark))
            default:
                return node
            }
        }
        let rewritten = walk(root)
        return changed ? try Yams.serialize(node: rewritten) : text
    }
}

@_cdecl("ply_runtime_register_activation")
public func capi_runtime_register_activation(_ runtime: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                             _ fn: (@convention(c) (Float) -> Float)?,
                                             _ derivative: (@convention(c) (Float) -> Float)?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        let name = try string(name, "name")
        guard let fn else { throw CAPIError(Status.invalidArgument, "fn is NULL") }
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
            throw CAPIError(Status.invalidArgument, "activation name '\(name)' must be lowercase [a-z0-9_], like a layer type")
        }
        guard r.runtime.layerTypes.contains(where: { $0.name == "user_activation" }) else {
            throw CAPIError(Status.notFound, "activations need the user_activation layer type (libply_user_activation.so), "
                + "which this runtime has not loaded")
        }
        if r.runtime.layerTypes.contains(where: { $0.name == name }) {
            throw CAPIError(Status.invalidArgument, "'\(name)' is already a layer type; choose another activation name")
        }
        let entry = RegisteredActivation(address: Int(bitPattern: unsafeBitCast(fn, to: UnsafeRawPointer.self)),
                                         derivative: derivative.map { Int(bitPattern: unsafeBitCast($0, to: UnsafeRawPointer.self)) })
        try r.register(name, entry)
    }
}
