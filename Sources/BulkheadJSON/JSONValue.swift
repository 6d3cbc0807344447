/// A parsed JSON document, or one being built for output. Objects keep their members in order (the
/// parser's document order; for output, the order they were written in), so output is stable
/// without sorting. A key that occurs twice in a parsed object keeps its first position and its
/// last value.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number exactly as written (the parser checked it against the JSON number grammar; for
    /// output, `integer(_:)` makes one).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// A number from an integer.
    public static func integer(_ value: some BinaryInteger) -> JSONValue { .number(String(value)) }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// What was found, for "expected X, found Y" messages.
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number(let text): return "the number \(text)"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value of `key` in an object; nil for other values and absent keys. Setting a key of an
    /// object replaces its value in place or appends it; setting nil removes it.
    public subscript(key: String) -> JSONValue? {
        get {
            guard case .object(let members) = self else { return nil }
            return members.first { $0.key == key }?.value
        }
        set {
            guard case .object(var members) = self else { return }
            if let i = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[i].value = newValue } else { members.remove(at: i) }
            } else if let newValue {
                members.append(JSONMember(key: key, value: newValue))
            }
            self = .object(members)
        }
    }

    /// The integer this number denotes exactly, if it is one and fits T (see `exactInteger`); nil
    /// for other values.
    public func integer<T: FixedWidthInteger>(as _: T.Type = T.self) -> T? {
        guard case .number(let text) = self else { return nil }
        return Self.exactInteger(text)
    }

    /// The integer a JSON number denotes exactly, if it is one and fits T: 12, -0, 1e3 and 2.50e1
    /// are integers; 1.5 and 1e-1 are not. `text` matches the JSON number grammar.
    public static func exactInteger<T: FixedWidthInteger>(_ text: String) -> T? {
        var text = text
        return text.withUTF8 { exactInteger($0) }
    }

    private static func exactInteger<T: FixedWidthInteger>(_ b: UnsafeBufferPointer<UInt8>) -> T? {
        let zero = UInt8(ascii: "0")
        var i = 0
        let negative = i < b.count && b[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        let intStart = i
        while i < b.count, b[i] >= zero, b[i] <= UInt8(ascii: "9") { i += 1 }
        let intCount = i - intStart
        var fracStart = i, fracCount = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            fracStart = i
            while i < b.count, b[i] >= zero, b[i] <= UInt8(ascii: "9") { i += 1 }
            fracCount = i - fracStart
        }
        var exponent = 0
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            let expNegative = i < b.count && b[i] == UInt8(ascii: "-")
            if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
            while i < b.count {
                if exponent < 1_000_000 { exponent = exponent * 10 + Int(b[i] &- zero) }
                i += 1
            }
            if expNegative { exponent = -exponent }
        }
        // The digits of integer and fraction part as one sequence; the number is that sequence
        // times 10^(exponent - fracCount).
        let total = intCount + fracCount
        func digit(_ k: Int) -> UInt8 { (k < intCount ? b[intStart + k] : b[fracStart + k - intCount]) &- zero }
        var first = 0
        while first < total, digit(first) == 0 { first += 1 }
        if first == total { return 0 }  // 0, -0, 0.000e5
        var last = total - 1
        while digit(last) == 0 { last -= 1 }
        let scale = (total - 1 - last) + exponent - fracCount
        if scale < 0 { return nil }  // a fraction
        if last - first + 1 + scale > 20 { return nil }  // more digits than UInt64.max has
        var magnitude: UInt64 = 0
        for k in first...last {
            let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(digit(k)))
            if o1 || o2 { return nil }
            magnitude = s
        }
        for _ in 0..<scale {
            let (m, o) = magnitude.multipliedReportingOverflow(by: 10)
            if o { return nil }
            magnitude = m
        }
        if !negative { return T(exactly: magnitude) }
        guard T.isSigned else { return nil }
        if let m = T(exactly: magnitude) { return 0 - m }
        if magnitude == UInt64(T.min.magnitude) { return T.min }
        return nil
    }
}

public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue

    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// `["a": .string("b"), "c": .integer(1)]` is an object with its members in that order.
extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(elements.map { JSONMember(key: $0.0, value: $0.1) })
    }
}
