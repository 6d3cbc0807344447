import BulkheadJSON

/// Firecracker's request bodies: parsed into a JSONValue first and then read field by field
/// (`JSONObjectReader`), so every refusal can name the field, the way Firecracker's serde errors do
/// ("missing field `vcpu_count`", "unknown field `foo`").
extension JSONValue {
    /// Parses a request body or config file; the error says where the syntax is wrong, without
    /// echoing the input.
    static func parseRequest(_ bytes: [UInt8]) throws(FirecrackerError) -> JSONValue {
        do {
            return try JSONParser.parse(bytes)
        } catch {
            throw FirecrackerError("An error occurred when deserializing the json body of a request: the body is not valid JSON (\(error)).")
        }
    }

    /// The JSON type name, for error messages.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Reads the fields of one JSON object, refusing wrong types, missing required fields and (at
/// `finish`) fields nobody asked for — Firecracker's structs deny unknown fields.
struct JSONObjectReader {
    let fields: [JSONMember]
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
        if let v = fields.first(where: { $0.key == key })?.value, v != .null { return v }
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
        guard let i = v.integer(as: UInt64.self) else {
            let found = if case let .number(text) = v { text } else { v.typeName }
            throw fail("field `\(key)` must be a non-negative integer, not \(found)")
        }
        return i
    }

    mutating func uint(_ key: String) throws(FirecrackerError) -> UInt64 {
        guard let i = try optionalUInt(key) else { throw fail("missing field `\(key)`") }
        return i
    }

    /// A field kept as it came (accepted and echoed in /vm/config, but not acted on).
    mutating func raw(_ key: String) -> JSONValue? { value(key) }

    /// Refuses fields that no accessor read.
    func finish() throws(FirecrackerError) {
        if let unknown = fields.first(where: { !seen.contains($0.key) })?.key {
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
