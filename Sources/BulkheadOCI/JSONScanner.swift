// A minimal JSON syntax checker. Swift's JSONDecoder (FoundationEssentials, Swift 6.3) reports both
// syntax errors and numbers that do not fit the field's type as "The given data was not valid JSON"
// with an empty coding path; this scanner recovers what it lost: the line and column of a syntax
// error, and the path and byte range of every number so that the decoder can find the one that
// did not fit (see Spec.decode).

struct JSONScanner {
    struct SyntaxError: Error {
        var line: Int
        var column: Int
        var message: String
    }

    struct NumberToken {
        var path: [JSONPath.Component]
        var range: Range<Int>
        var text: String
    }

    private let bytes: [UInt8]
    private var pos = 0
    private var path: [JSONPath.Component] = []
    private(set) var numbers: [NumberToken] = []

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Checks the whole document and collects its numbers.
    mutating func scan() throws(SyntaxError) {
        skipSpace()
        try value()
        skipSpace()
        if pos < bytes.count { throw error("unexpected data after the top-level value") }
    }

    private mutating func value() throws(SyntaxError) {
        guard pos < bytes.count else { throw error("unexpected end of data, expected a value") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): try object()
        case UInt8(ascii: "["): try array()
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[pos])))', expected a value")
        }
    }

    private mutating func object() throws(SyntaxError) {
        pos += 1
        skipSpace()
        if peek(UInt8(ascii: "}")) { pos += 1; return }
        while true {
            skipSpace()
            guard peek(UInt8(ascii: "\"")) else { throw error("expected a string key") }
            let key = try string()
            skipSpace()
            guard peek(UInt8(ascii: ":")) else { throw error("expected ':' after key \"\(key)\"") }
            pos += 1
            skipSpace()
            path.append(.key(key))
            try value()
            path.removeLast()
            skipSpace()
            if peek(UInt8(ascii: ",")) { pos += 1; continue }
            if peek(UInt8(ascii: "}")) { pos += 1; return }
            throw error("expected ',' or '}' in object")
        }
    }

    private mutating func array() throws(SyntaxError) {
        pos += 1
        skipSpace()
        if peek(UInt8(ascii: "]")) { pos += 1; return }
        var index = 0
        while true {
            skipSpace()
            path.append(.index(index))
            try value()
            path.removeLast()
            index += 1
            skipSpace()
            if peek(UInt8(ascii: ",")) { pos += 1; continue }
            if peek(UInt8(ascii: "]")) { pos += 1; return }
            throw error("expected ',' or ']' in array")
        }
    }

    private mutating func string() throws(SyntaxError) -> String {
        pos += 1
        var out: [UInt8] = []
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; return String(decoding: out, as: UTF8.self) }
            if c < 0x20 { throw error("control character in string") }
            if c == UInt8(ascii: "\\") {
                pos += 1
                guard pos < bytes.count else { break }
                let e = bytes[pos]
                if e == UInt8(ascii: "u") {
                    guard pos + 4 < bytes.count, bytes[(pos + 1)...(pos + 4)].allSatisfy(isHex) else {
                        throw error("invalid \\u escape")
                    }
                    pos += 4
                } else if !"\"\\/bfnrt".utf8.contains(e) {
                    throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
                } else {
                    out.append(e)  // keys only need to be recognisable, not exact
                }
            } else {
                out.append(c)
            }
            pos += 1
        }
        throw error("unterminated string")
    }

    private mutating func number() throws(SyntaxError) {
        let start = pos
        if peek(UInt8(ascii: "-")) { pos += 1 }
        guard digits() > 0 else { throw error("invalid number") }
        if peek(UInt8(ascii: ".")) {
            pos += 1
            guard digits() > 0 else { throw error("invalid number") }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            pos += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { pos += 1 }
            guard digits() > 0 else { throw error("invalid number") }
        }
        numbers.append(NumberToken(path: path, range: start..<pos,
                                   text: String(decoding: bytes[start..<pos], as: UTF8.self)))
    }

    private mutating func digits() -> Int {
        let start = pos
        while pos < bytes.count, bytes[pos] >= UInt8(ascii: "0"), bytes[pos] <= UInt8(ascii: "9") { pos += 1 }
        return pos - start
    }

    private mutating func literal(_ word: String) throws(SyntaxError) {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<(pos + w.count)]) == w else {
            throw error("invalid literal, expected \(word)")
        }
        pos += w.count
    }

    private mutating func skipSpace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    private func peek(_ c: UInt8) -> Bool { pos < bytes.count && bytes[pos] == c }

    private func isHex(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f"))
            || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
    }

    private func error(_ message: String) -> SyntaxError {
        var line = 1, column = 1
        for c in bytes[0..<min(pos, bytes.count)] {
            if c == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return SyntaxError(line: line, column: column, message: message)
    }
}
