import Foundation

/// A JSON value keeping object key order and telling integers from other numbers.
enum JSONValue {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null

    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer(let i): return "the integer \(i)"
        case .number(let d): return "the non-integer number \(d)"
        case .bool(let b): return "\(b)"
        case .null: return "null"
        }
    }
}
