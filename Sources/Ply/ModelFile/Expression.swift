import Foundation

/// The `$name`, `$(...)` and `${...}` expressions of model files: integers and floats, `true`/`false`, names
/// (parameters, variables, loop indices), `+ - * / %` (`/` and `%` floor on integers, as
/// Python's `//` and `%`), comparisons `== != < <= > >=`, `and`, `or`, `not`, parentheses,
/// `min(...)`, `max(...)` and `a if condition else b`.
enum Expression {
    enum Failure: Error {
        case unknownName(String, known: [String])
        case invalid(String)
    }

    /// Evaluates `text` (the inside of `$(...)`) with `env`.
    static func evaluate(_ text: String, _ env: [String: AttributeValue]) throws -> AttributeValue {
        var p = Parser(tokens: try tokenize(text), env: env)
        let v = try p.conditional()
        if p.pos < p.tokens.count { throw Failure.invalid("unexpected '\(p.tokens[p.pos])' in '\(text)'") }
        return v
    }

    /// Substitutes every `$name`, `$(expression)` and `${expression}` of `text`: a text that is
    /// one substitution keeps the value's type (`$(planes * 4)` is an integer); otherwise the
    /// values are written into the string (`block$i`). Nil when `text` has none.
    static func substitute(_ text: String, _ env: [String: AttributeValue]) throws -> AttributeValue? {
        let chars = Array(text)
        var parts: [(literal: String, expr: String)] = []
        var literal = ""
        var i = 0
        while i < chars.count {
            guard chars[i] == "$", i + 1 < chars.count else { literal.append(chars[i]); i += 1; continue }
            let c = chars[i + 1]
            if c == "(" || c == "{" {
                let close: Character = c == "(" ? ")" : "}"
                var depth = 0, j = i + 1
                while j < chars.count {
                    if chars[j] == c { depth += 1 } else if chars[j] == close { depth -= 1; if depth == 0 { break } }
                    j += 1
                }
                guard j < chars.count else { throw Failure.invalid("'$\(c)' without a closing '\(close)' in '\(text)'") }
                parts.append((literal, String(chars[(i + 2)..<j])))
                literal = ""
                i = j + 1
            } else if c.isLetter || c == "_" {
                var j = i + 1
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                parts.append((literal, String(chars[(i + 1)..<j])))
                literal = ""
                i = j
            } else {
                literal.append(chars[i]); i += 1
            }
        }
        if parts.isEmpty { return nil }
        if parts.count == 1 && parts[0].literal.isEmpty && literal.isEmpty {
            return try evaluate(parts[0].expr, env)
        }
        var out = ""
        for part in parts {
            out += part.literal
            switch try evaluate(part.expr, env) {
            case let .string(s): out += s
            case let v: out += v.description
            }
        }
        return .string(out + literal)
    }

    enum Token: CustomStringConvertible, Equatable {
        case int(Int), float(Double), name(String), op(String)
        var description: String {
            switch self {
            case let .int(i): return String(i)
            case let .float(f): return String(f)
            case let .name(n): return n
            case let .op(o): return o
            }
        }
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c.isNumber {
                var j = i
                while j < chars.count && (chars[j].isNumber || chars[j] == "." || chars[j] == "_") { j += 1 }
                let s = String(chars[i..<j]).replacingOccurrences(of: "_", with: "")
                if let v = Int(s) { tokens.append(.int(v)) } else if let v = Double(s) { tokens.append(.float(v)) } else {
                    throw Failure.invalid("bad number '\(s)' in '\(text)'")
                }
                i = j
            } else if c.isLetter || c == "_" {
                var j = i
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                tokens.append(.name(String(chars[i..<j])))
                i = j
            } else {
                let two = i + 1 < chars.count ? String(chars[i...i + 1]) : ""
                if ["==", "!=", "<=", ">="].contains(two) {
                    tokens.append(.op(two)); i += 2
                } else if "+-*/%()<>,".contains(c) {
                    tokens.append(.op(String(c))); i += 1
                } else {
                    throw Failure.invalid("unexpected character '\(c)' in '\(text)'")
                }
            }
        }
        if tokens.isEmpty { throw Failure.invalid("empty expression in '\(text)'") }
        return tokens
    }

    struct Parser {
        let tokens: [Token]
        var pos = 0
        let env: [String: AttributeValue]
        /// Nesting of parentheses, calls, `not`, unary `-` and `if`/`else` chains, bounded so
        /// that a deep expression is an error, not a stack overflow (found by fuzzing).
        var depth = 0
        static let maxDepth = 100

        init(tokens: [Token], env: [String: AttributeValue]) {
            self.tokens = tokens
            self.env = env
        }

        var peek: Token? { pos < tokens.count ? tokens[pos] : nil }
        mutating func take(_ t: Token) -> Bool {
            if peek == t { pos += 1; return true }
            return false
        }

        mutating func descend() throws {
            depth += 1
            if depth > Parser.maxDepth { throw Failure.invalid("expression nested more than \(Parser.maxDepth) levels deep") }
        }

        /// `a if condition else b` (Python's order).
        mutating func conditional() throws -> AttributeValue {
            try descend()
            defer { depth -= 1 }
            let v = try orExpr()
            guard take(.name("if")) else { return v }
            let c = try bool(try orExpr(), "if")
            guard take(.name("else")) else { throw Failure.invalid("'if' without 'else'") }
            let other = try conditional()
            return c ? v : other
        }

        mutating func orExpr() throws -> AttributeValue {
            var v = try andExpr()
            while take(.name("or")) { let r = try andExpr(); v = .bool(try bool(v, "or") || bool(r, "or")) }
            return v
        }
        mutating func andExpr() throws -> AttributeValue {
            var v = try notExpr()
            while take(.name("and")) { let r = try notExpr(); v = .bool(try bool(v, "and") && bool(r, "and")) }
            return v
        }
        mutating func notExpr() throws -> AttributeValue {
            if take(.name("not")) {
                try descend()
                defer { depth -= 1 }
                return .bool(!(try bool(try notExpr(), "not")))
            }
            return try comparison()
        }
        mutating func comparison() throws -> AttributeValue {
            let l = try sum()
            for op in ["==", "!=", "<=", ">=", "<", ">"] where take(.op(op)) {
                let r = try sum()
                if op == "==" { return .bool(equal(l, r)) }
                if op == "!=" { return .bool(!equal(l, r)) }
                let a = try number(l, op), b = try number(r, op)
                switch op {
                case "<=": return .bool(a <= b)
                case ">=": return .bool(a >= b)
                case "<": return .bool(a < b)
                default: return .bool(a > b)
                }
            }
            return l
        }
        mutating func sum() throws -> AttributeValue {
            var v = try product()
            while let t = peek, t == .op("+") || t == .op("-") {
                pos += 1
                v = try arithmetic(v, try product(), t.description)
            }
            return v
        }
        mutating func product() throws -> AttributeValue {
            var v = try unary()
            while let t = peek, t == .op("*") || t == .op("/") || t == .op("%") {
                pos += 1
                v = try arithmetic(v, try unary(), t.description)
            }
            return v
        }
        mutating func unary() throws -> AttributeValue {
            if take(.op("-")) {
                try descend()
                defer { depth -= 1 }
                switch try unary() {
                case let .int(i):
                    guard i != .min else { throw Failure.invalid("integer overflow: -(\(i))") }
                    return .int(-i)
                case let .float(f): return .float(-f)
                case let v: throw Failure.invalid("cannot negate \(v)")
                }
            }
            return try atom()
        }
        mutating func atom() throws -> AttributeValue {
            guard let t = peek else { throw Failure.invalid("expression ends too early") }
            pos += 1
            switch t {
            case let .int(i): return .int(i)
            case let .float(f): return .float(f)
            case .op("("):
                let v = try conditional()
                guard take(.op(")")) else { throw Failure.invalid("missing ')'") }
                return v
            case .name("true"): return .bool(true)
            case .name("false"): return .bool(false)
            case let .name(n) where (n == "min" || n == "max") && peek == .op("("):
                pos += 1
                var args = [try conditional()]
                while take(.op(",")) { args.append(try conditional()) }
                guard take(.op(")")) else { throw Failure.invalid("missing ')' after \(n)(...") }
                var best = args[0]
                for a in args.dropFirst() {
                    let x = try number(a, n), y = try number(best, n)
                    if n == "min" ? x < y : x > y { best = a }
                }
                _ = try number(best, n)
                return best
            case let .name(n):
                guard let v = env[n] else { throw Failure.unknownName(n, known: env.keys.sorted()) }
                return v
            case let .op(o):
                throw Failure.invalid("unexpected '\(o)'")
            }
        }

        func bool(_ v: AttributeValue, _ op: String) throws -> Bool {
            if case let .bool(b) = v { return b }
            throw Failure.invalid("'\(op)' needs true or false, got \(v)")
        }
        func number(_ v: AttributeValue, _ op: String) throws -> Double {
            switch v {
            case let .int(i): return Double(i)
            case let .float(f): return f
            default: throw Failure.invalid("'\(op)' needs numbers, got \(v)")
            }
        }
        func equal(_ a: AttributeValue, _ b: AttributeValue) -> Bool {
            if let x = try? number(a, ""), let y = try? number(b, "") { return x == y }
            return a == b
        }
        func arithmetic(_ a: AttributeValue, _ b: AttributeValue, _ op: String) throws -> AttributeValue {
            if case let .int(x) = a, case let .int(y) = b {
                // Integers that leave Int's range are an error, not a trap (found by fuzzing).
                func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> AttributeValue {
                    guard !r.overflow else { throw Failure.invalid("integer overflow: \(x) \(op) \(y)") }
                    return .int(r.partialValue)
                }
                switch op {
                case "+": return try checked(x.addingReportingOverflow(y))
                case "-": return try checked(x.subtractingReportingOverflow(y))
                case "*": return try checked(x.multipliedReportingOverflow(by: y))
                default:
                    guard y != 0 else { throw Failure.invalid("division by zero") }
                    // Int.min / -1 is the one quotient that overflows (and so traps in `%` too).
                    if y == -1 { return op == "/" ? try checked(x.multipliedReportingOverflow(by: -1)) : .int(0) }
                    // Floor division and modulo, as Python's; the remainder is taken directly
                    // (x - q * y overflows for Int.max % -2).
                    let r = x % y
                    let adjust = r != 0 && ((r < 0) != (y < 0))
                    return .int(op == "/" ? x / y - (adjust ? 1 : 0) : r + (adjust ? y : 0))
                }
            }
            let x = try number(a, op), y = try number(b, op)
            switch op {
            case "+": return .float(x + y)
            case "-": return .float(x - y)
            case "*": return .float(x * y)
            case "/": return .float(x / y)
            default: return .float(x - (x / y).rounded(.down) * y)
            }
        }
    }
}
