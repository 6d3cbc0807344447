// A strict JSON (RFC 8259) parser into a value tree (JSONValue). It exists so that neither the
// runtime's config.json nor the VMM's API bodies go through FoundationEssentials' JSONDecoder, whose
// per-type dynamic casts scan the static binary's conformance tables (most of `create`'s
// instructions, measured with callgrind), and so that bulkhead-vmm links no Foundation at all.
// Numbers stay as their source text, so that readers can convert them exactly to the width a field
// asks for; syntax errors carry a line and column.

/// A JSON syntax error, with the 1-based line and column (in characters) where it was found.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(message) at line \(line), column \(column)" }
}

public struct JSONParser {
    /// Deeper documents are refused rather than risking the stack (configs nest about 6 levels).
    public static let maxDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    private var pos = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONSyntaxError) -> JSONValue in
            var parser = JSONParser(buffer)
            return try parser.document()
        }
    }

    private mutating func document() throws(JSONSyntaxError) -> JSONValue {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }  // UTF-8 BOM
        skipSpace()
        let result = try value()
        skipSpace()
        if pos < bytes.count { throw error("unexpected \(describe(bytes[pos])) after the top-level value") }
        return result
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard pos < bytes.count else { throw error("unexpected end of data, expected a value") }
        switch bytes[pos] {
        case .openBrace: return try object()
        case .openBracket: return try array()
        case .quote: return .string(try string())
        case .t: try literal("true"); return .bool(true)
        case .f: try literal("false"); return .bool(false)
        case .n: try literal("null"); return .null
        case .minus, .zero ... .nine: return .number(try number())
        case let c: throw error("unexpected \(describe(c)), expected a value")
        }
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        pos += 1
        var members: [JSONMember] = []
        var index: [String: Int]? = nil  // only for large objects, to find duplicate keys
        skipSpace()
        if peek(.closeBrace) {
            pos += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard peek(.quote) else {
                throw error(members.isEmpty ? "expected a string key or '}' in object" : "expected a string key in object")
            }
            let key = try string()
            skipSpace()
            guard peek(.colon) else { throw error("expected ':' after key \"\(key)\"") }
            pos += 1
            skipSpace()
            let member = try value()
            if let existing = Self.find(key, in: members, index: &index) {
                members[existing].value = member
            } else {
                index?[key] = members.count
                members.append(JSONMember(key: key, value: member))
            }
            skipSpace()
            if peek(.comma) {
                pos += 1
                continue
            }
            if peek(.closeBrace) {
                pos += 1
                depth -= 1
                return .object(members)
            }
            throw error("expected ',' or '}' after a value in object")
        }
    }

    private static func find(_ key: String, in members: [JSONMember], index: inout [String: Int]?) -> Int? {
        if let index { return index[key] }
        if members.count < 16 { return members.firstIndex { $0.key == key } }
        var built: [String: Int] = [:]
        for (i, m) in members.enumerated() { built[m.key] = i }
        index = built
        return built[key]
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        pos += 1
        var elements: [JSONValue] = []
        skipSpace()
        if peek(.closeBracket) {
            pos += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipSpace()
            elements.append(try value())
            skipSpace()
            if peek(.comma) {
                pos += 1
                continue
            }
            if peek(.closeBracket) {
                pos += 1
                depth -= 1
                return .array(elements)
            }
            throw error("expected ',' or ']' after a value in array")
        }
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw error("nested more than \(Self.maxDepth) levels deep") }
    }

    /// A string starting at the opening quote; returns with `pos` after the closing quote.
    private mutating func string() throws(JSONSyntaxError) -> String {
        pos += 1
        let start = pos
        // Most strings have no escapes: make the String straight from the input.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == .quote {
                let s = try makeString(UnsafeBufferPointer(rebasing: bytes[start..<pos]))
                pos += 1
                return s
            }
            if c == .backslash { break }
            if c < 0x20 { throw error("unescaped control character \(describe(c)) in string") }
            pos += 1
        }
        var out = [UInt8](bytes[start..<pos])
        while pos < bytes.count {
            let c = bytes[pos]
            if c == .quote {
                let s = try out.withUnsafeBufferPointer { (b) throws(JSONSyntaxError) -> String in try makeString(b) }
                pos += 1
                return s
            }
            if c < 0x20 { throw error("unescaped control character \(describe(c)) in string") }
            if c != .backslash {
                out.append(c)
                pos += 1
                continue
            }
            pos += 1
            guard pos < bytes.count else { break }
            switch bytes[pos] {
            case .quote: out.append(.quote)
            case .backslash: out.append(.backslash)
            case .slash: out.append(.slash)
            case .b: out.append(0x08)
            case .f: out.append(0x0C)
            case .n: out.append(0x0A)
            case .r: out.append(0x0D)
            case .t: out.append(0x09)
            case .u:
                let scalar = try unicodeEscape()
                UTF8.encode(scalar) { out.append($0) }
                continue
            case let e: throw error("invalid escape '\\\(describeBare(e))' in string")
            }
            pos += 1
        }
        throw error("unterminated string")
    }

    private func makeString(_ utf8: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> String {
        // ASCII needs no validation; String(decoding:) is specialized here, String(validating:) is
        // a generic call that looks up metadata for every string.
        if !utf8.contains(where: { $0 >= 0x80 }) { return String(decoding: utf8, as: UTF8.self) }
        guard let s = String(validating: utf8, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
        return s
    }

    /// `pos` is at the `u` of `\uXXXX`; returns with `pos` after the escape (or the pair of escapes
    /// that make a UTF-16 surrogate pair).
    private mutating func unicodeEscape() throws(JSONSyntaxError) -> Unicode.Scalar {
        let first = try hex4()
        var value = first
        if (0xD800..<0xDC00).contains(first) {
            guard pos + 1 < bytes.count, bytes[pos] == .backslash, bytes[pos + 1] == .u else {
                throw error("unpaired UTF-16 surrogate \\u\(hex(first)) in string")
            }
            pos += 1
            let second = try hex4()
            guard (0xDC00..<0xE000).contains(second) else {
                throw error("\\u\(hex(first)) is not followed by a low surrogate in string")
            }
            value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else if (0xDC00..<0xE000).contains(first) {
            throw error("unpaired UTF-16 surrogate \\u\(hex(first)) in string")
        }
        return Unicode.Scalar(value)!  // surrogates excluded above, the rest is at most 0x10FFFF
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for i in 1...4 {
            guard pos + i < bytes.count else { throw error("unterminated \\u escape in string") }
            let c = bytes[pos + i]
            let digit: UInt8
            switch c {
            case .zero ... .nine: digit = c - .zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default:
                pos += i
                throw error("invalid hex digit \(describe(c)) in \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        pos += 5
        return value
    }

    private func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func number() throws(JSONSyntaxError) -> String {
        let start = pos
        if peek(.minus) { pos += 1 }
        if peek(.zero) {
            pos += 1
            if pos < bytes.count, bytes[pos] >= .zero, bytes[pos] <= .nine {
                throw error("leading zero in number")
            }
        } else if digits() == 0 {
            throw error("expected a digit in number")
        }
        if peek(.dot) {
            pos += 1
            guard digits() > 0 else { throw error("expected a digit after '.' in number") }
        }
        if peek(.e) || peek(.upperE) {
            pos += 1
            if peek(.plus) || peek(.minus) { pos += 1 }
            guard digits() > 0 else { throw error("expected a digit in the exponent of number") }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    private mutating func digits() -> Int {
        let start = pos
        while pos < bytes.count, bytes[pos] >= .zero, bytes[pos] <= .nine { pos += 1 }
        return pos - start
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        for i in 0..<count {
            guard pos + i < bytes.count, bytes[pos + i] == word.utf8Start[i] else {
                pos += i
                throw error("invalid literal, expected \(word)")
            }
        }
        pos += count
    }

    private mutating func skipSpace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    private func peek(_ c: UInt8) -> Bool { pos < bytes.count && bytes[pos] == c }

    private func describe(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7F { return "'\(describeBare(c))'" }
        return "byte 0x" + (c < 16 ? "0" : "") + String(c, radix: 16, uppercase: true)
    }

    private func describeBare(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? String(Character(Unicode.Scalar(c))) : "\\x" + String(c, radix: 16)
    }

    /// The error at `pos`, with its line and column (UTF-8 continuation bytes do not count).
    private func error(_ message: String) -> JSONSyntaxError {
        var line = 1, column = 1
        for c in bytes[0..<min(pos, bytes.count)] {
            if c == 0x0A {
                line += 1
                column = 1
            } else if c & 0xC0 != 0x80 {
                column += 1
            }
        }
        return JSONSyntaxError(line: line, column: column, message: message)
    }
}

private extension UInt8 {
    static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), slash = UInt8(ascii: "/")
    static let colon = UInt8(ascii: ":"), comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-"), plus = UInt8(ascii: "+"), dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
    static let b = UInt8(ascii: "b"), e = UInt8(ascii: "e"), upperE = UInt8(ascii: "E"), f = UInt8(ascii: "f")
    static let n = UInt8(ascii: "n"), r = UInt8(ascii: "r"), t = UInt8(ascii: "t"), u = UInt8(ascii: "u")
}
