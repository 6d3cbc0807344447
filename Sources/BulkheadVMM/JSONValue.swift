import FoundationEssentials

/// A parsed JSON document. The Firecracker API reads request bodies into this first and then
/// field by field (`JSONObjectReader`), so every refusal can name the field, the way Firecracker's
/// serde errors do ("missing field `vcpu_count`", "unknown field `foo`").
public enum JSONValue: Equatable, Sendable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .integer(i): try c.encode(i)
        case let .number(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }

    /// Parses `bytes`; the error text says what is wrong, without echoing the input.
    public static func parse(_ bytes: [UInt8]) throws(FirecrackerError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw FirecrackerError("An error occurred when deserializing the json body of a request: the body is not valid JSON.")
        }
    }

    /// Compact JSON text with sorted keys (stable output for clients and tests).
    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The JSON type name, for error messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Reads the fields of one JSON object, refusing wrong types, missing required fields and (at
/// `finish`) fields nobody asked for — Firecracker's structs deny unknown fields.
struct JSONObjectReader {
    let fields: [String: JSONValue]
    /// What the object is, for messages: "boot-source", "drive", ...
    let context: String
    private var seen: Set<String> = []

    init(_ value: JSONValue, context: String) throws(FirecrackerError) {
        guard case let .object(fields) = value else {
            throw FirecrackerError("An error occurred when deserializing the json body of a request: \(context) must be a JSON object, not \(value.typeName).")
        }
        self.fields = fields
        self.context = context
    }

    private func fail(_ message: String) -> FirecrackerError {
        FirecrackerError("An error occurred when deserializing the json body of a request: \(message) (in \(context)).")
    }

    private mutating func value(_ key: String) -> JSONValue? {
        seen.insert(key)
        if let v = fields[key], v != .null { return v }
        return nil
    }

    mutating func optionalString(_ key: String) throws(FirecrackerError) -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw fail("field `\(key)` must be a string, not \(v.typeName)") }
        return s
    }

    mutating func string(_ key: String) throws(FirecrackerError) -> String {
        guard let s = try optionalString(key) else { throw fail("missing field `\(key)`") }
        return s
    }

    mutating func optionalBool(_ key: String) throws(FirecrackerError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case let .bool(b) = v else { throw fail("field `\(key)` must be a boolean, not \(v.typeName)") }
        return b
    }

    mutating func bool(_ key: String) throws(FirecrackerError) -> Bool {
        guard let b = try optionalBool(key) else { throw fail("missing field `\(key)`") }
        return b
    }

    mutating func optionalUInt(_ key: String) throws(FirecrackerError) -> UInt64? {
        guard let v = value(key) else { return nil }
        guard case let .integer(i) = v, i >= 0 else {
            throw fail("field `\(key)` must be a non-negative integer, not \(v.typeName == "a number" ? "\(v.text)" : v.typeName)")
        }
        return UInt64(i)
    }

    mutating func uint(_ key: String) throws(FirecrackerError) -> UInt64 {
        guard let i = try optionalUInt(key) else { throw fail("missing field `\(key)`") }
        return i
    }

    /// A field kept as it came (accepted and echoed in /vm/config, but not acted on).
    mutating func raw(_ key: String) -> JSONValue? { value(key) }

    /// Refuses fields that no accessor read.
    func finish() throws(FirecrackerError) {
        if let unknown = fields.keys.sorted().first(where: { !seen.contains($0) }) {
            throw fail("unknown field `\(unknown)`, expected one of \(seen.sorted().map { "`\($0)`" }.joined(separator: ", "))")
        }
    }
}

/// A refused API request or configuration: what Firecracker puts in `fault_message`.
public struct FirecrackerError: Error, Equatable, CustomStringConvertible {
    public let faultMessage: String
    public init(_ faultMessage: String) { self.faultMessage = faultMessage }
    public var description: String { faultMessage }
}
