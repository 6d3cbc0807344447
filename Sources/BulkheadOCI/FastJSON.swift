// A Decoder over JSONValue trees. Every concrete decode(Int32.self ...) overload of the container
// protocols is implemented directly and generic ones call T(from:), so decoding performs no dynamic
// casts or conformance lookups of its own (FoundationEssentials' JSONDecoder checks every type
// against Date, Data, URL and dictionary markers, which costs most of `create`'s instructions in
// a static binary). Numbers are converted from their source text exactly: one that does not fit
// the requested type (negative for unsigned, too large, fractional for an integer) is a
// DecodingError.typeMismatch with the coding path of the field.

import BulkheadJSON

/// Decodes Decodable values from JSON.
///
/// Errors are `DecodingError`s with the coding path of the offending value. A syntax error is
/// `.dataCorrupted` with an empty path whose `underlyingError` is a `JSONSyntaxError` (line and
/// column). Keys absent and keys with a `null` value both make `decodeIfPresent` return nil.
/// A key that occurs twice in an object has its last value.
public enum FastJSON {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: [], debugDescription: "The given data was not valid JSON: \(error)", underlyingError: error))
        }
        return try decode(type, from: root)
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try T(from: JSONTreeDecoder(value, parent: nil, key: .root))
    }
}

/// One value being decoded. Also the node of the coding path (a parent chain that becomes an
/// array only when an error or a caller asks for it) and the single-value container.
final class JSONTreeDecoder: Decoder, SingleValueDecodingContainer {
    enum PathKey {
        case root
        case key(any CodingKey)
        case index(Int)
    }

    let value: JSONValue
    let parent: JSONTreeDecoder?
    let pathKey: PathKey
    /// Where a keyed container over this object looks first: fields are usually read in the order
    /// they were written, and dictionaries read in exactly that order (allKeys), so lookups stay O(1).
    var hint = 0

    init(_ value: JSONValue, parent: JSONTreeDecoder?, key: PathKey) {
        self.value = value
        self.parent = parent
        self.pathKey = key
    }

    var codingPath: [any CodingKey] {
        var keys: [any CodingKey] = []
        var node: JSONTreeDecoder? = self
        while let n = node {
            switch n.pathKey {
            case .root: break
            case .key(let k): keys.append(k)
            case .index(let i): keys.append(JSONIndexKey(i))
            }
            node = n.parent
        }
        return keys.reversed()
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .object(let members):
            return KeyedDecodingContainer(JSONKeyedContainer<Key>(decoder: self, members: members))
        case .null:
            throw DecodingError.valueNotFound([String: Any].self, DecodingError.Context(
                codingPath: codingPath, debugDescription: "Expected an object but found null instead."))
        default:
            throw JSONUnbox.mismatch([String: Any].self, value, codingPath)
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let elements):
            return JSONUnkeyedContainer(decoder: self, elements: elements)
        case .null:
            throw DecodingError.valueNotFound([Any].self, DecodingError.Context(
                codingPath: codingPath, debugDescription: "Expected an array but found null instead."))
        default:
            throw JSONUnbox.mismatch([Any].self, value, codingPath)
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    // SingleValueDecodingContainer

    func decodeNil() -> Bool { value.isNull }
    func decode(_: Bool.Type) throws -> Bool { try JSONUnbox.bool(value, codingPath) }
    func decode(_: String.Type) throws -> String { try JSONUnbox.string(value, codingPath) }
    func decode(_: Double.Type) throws -> Double { try JSONUnbox.double(value, codingPath) }
    func decode(_: Float.Type) throws -> Float { try JSONUnbox.float(value, codingPath) }
    func decode(_: Int.Type) throws -> Int { try JSONUnbox.integer(value, codingPath) }
    func decode(_: Int8.Type) throws -> Int8 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: Int16.Type) throws -> Int16 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: Int32.Type) throws -> Int32 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: Int64.Type) throws -> Int64 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: UInt.Type) throws -> UInt { try JSONUnbox.integer(value, codingPath) }
    func decode(_: UInt8.Type) throws -> UInt8 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: UInt16.Type) throws -> UInt16 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: UInt32.Type) throws -> UInt32 { try JSONUnbox.integer(value, codingPath) }
    func decode(_: UInt64.Type) throws -> UInt64 { try JSONUnbox.integer(value, codingPath) }
    func decode<T: Decodable>(_: T.Type) throws -> T { try T(from: self) }
}

/// An array element in a coding path.
struct JSONIndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}

/// `super`, for superDecoder().
private struct JSONSuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(stringValue: String) { guard stringValue == "super" else { return nil } }
    init?(intValue: Int) { return nil }
}

/// Conversions from a JSONValue to the requested type, with the errors JSONDecoder would throw.
/// The path is an autoclosure: it is built only when there is an error to report.
enum JSONUnbox {
    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [any CodingKey]) -> DecodingError {
        if value.isNull {
            return .valueNotFound(type, DecodingError.Context(
                codingPath: path, debugDescription: "Expected \(type) value but found null instead."))
        }
        return .typeMismatch(type, DecodingError.Context(
            codingPath: path, debugDescription: "Expected to decode \(type) but found \(value.kindDescription) instead."))
    }

    static func bool(_ value: JSONValue, _ path: @autoclosure () -> [any CodingKey]) throws -> Bool {
        if case .bool(let b) = value { return b }
        throw mismatch(Bool.self, value, path())
    }

    static func string(_ value: JSONValue, _ path: @autoclosure () -> [any CodingKey]) throws -> String {
        if case .string(let s) = value { return s }
        throw mismatch(String.self, value, path())
    }

    static func double(_ value: JSONValue, _ path: @autoclosure () -> [any CodingKey]) throws -> Double {
        guard case .number(let text) = value else { throw mismatch(Double.self, value, path()) }
        guard let d = Double(text), d.isFinite else { throw doesNotFit(Double.self, text, path()) }
        return d
    }

    static func float(_ value: JSONValue, _ path: @autoclosure () -> [any CodingKey]) throws -> Float {
        guard case .number(let text) = value else { throw mismatch(Float.self, value, path()) }
        guard let f = Float(text), f.isFinite else { throw doesNotFit(Float.self, text, path()) }
        return f
    }

    static func integer<T: FixedWidthInteger>(_ value: JSONValue, _ path: @autoclosure () -> [any CodingKey]) throws -> T {
        guard case .number(let text) = value else { throw mismatch(T.self, value, path()) }
        guard let n: T = JSONValue.exactInteger(text) else { throw doesNotFit(T.self, text, path()) }
        return n
    }

    private static func doesNotFit(_ type: Any.Type, _ text: String, _ path: [any CodingKey]) -> DecodingError {
        .typeMismatch(type, DecodingError.Context(
            codingPath: path, debugDescription: "Expected to decode \(type) but found \(text) instead."))
    }
}

struct JSONKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: JSONTreeDecoder
    let members: [JSONMember]

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    /// Member lookup by name, starting where the previous one ended.
    private func lookup(_ name: String) -> JSONValue? {
        let n = members.count
        var i = decoder.hint < n ? decoder.hint : 0
        for _ in 0..<n {
            if members[i].key == name {
                decoder.hint = i + 1
                return members[i].value
            }
            i += 1
            if i == n { i = 0 }
        }
        return nil
    }

    private func require(_ key: Key) throws -> JSONValue {
        guard let v = lookup(key.stringValue) else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(
                codingPath: codingPath, debugDescription: "No value associated with key \"\(key.stringValue)\"."))
        }
        return v
    }

    /// The value if the key is present and not null.
    private func present(_ key: Key) -> JSONValue? {
        guard let v = lookup(key.stringValue), !v.isNull else { return nil }
        return v
    }

    private func path(_ key: Key) -> [any CodingKey] { decoder.codingPath + [key] }

    private func child(_ value: JSONValue, _ key: any CodingKey) -> JSONTreeDecoder {
        JSONTreeDecoder(value, parent: decoder, key: .key(key))
    }

    func contains(_ key: Key) -> Bool { lookup(key.stringValue) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { try require(key).isNull }

    func decode(_: Bool.Type, forKey key: Key) throws -> Bool { try JSONUnbox.bool(require(key), path(key)) }
    func decode(_: String.Type, forKey key: Key) throws -> String { try JSONUnbox.string(require(key), path(key)) }
    func decode(_: Double.Type, forKey key: Key) throws -> Double { try JSONUnbox.double(require(key), path(key)) }
    func decode(_: Float.Type, forKey key: Key) throws -> Float { try JSONUnbox.float(require(key), path(key)) }
    func decode(_: Int.Type, forKey key: Key) throws -> Int { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: Int8.Type, forKey key: Key) throws -> Int8 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: Int16.Type, forKey key: Key) throws -> Int16 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: Int32.Type, forKey key: Key) throws -> Int32 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: Int64.Type, forKey key: Key) throws -> Int64 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: UInt.Type, forKey key: Key) throws -> UInt { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: UInt8.Type, forKey key: Key) throws -> UInt8 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: UInt16.Type, forKey key: Key) throws -> UInt16 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: UInt32.Type, forKey key: Key) throws -> UInt32 { try JSONUnbox.integer(require(key), path(key)) }
    func decode(_: UInt64.Type, forKey key: Key) throws -> UInt64 { try JSONUnbox.integer(require(key), path(key)) }
    func decode<T: Decodable>(_: T.Type, forKey key: Key) throws -> T { try T(from: child(require(key), key)) }

    func decodeIfPresent(_: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let v = present(key) else { return nil }
        return try JSONUnbox.bool(v, path(key))
    }
    func decodeIfPresent(_: String.Type, forKey key: Key) throws -> String? {
        guard let v = present(key) else { return nil }
        return try JSONUnbox.string(v, path(key))
    }
    func decodeIfPresent(_: Double.Type, forKey key: Key) throws -> Double? {
        guard let v = present(key) else { return nil }
        return try JSONUnbox.double(v, path(key))
    }
    func decodeIfPresent(_: Float.Type, forKey key: Key) throws -> Float? {
        guard let v = present(key) else { return nil }
        return try JSONUnbox.float(v, path(key))
    }
    func decodeIfPresent(_: Int.Type, forKey key: Key) throws -> Int? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int8.Type, forKey key: Key) throws -> Int8? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int16.Type, forKey key: Key) throws -> Int16? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int32.Type, forKey key: Key) throws -> Int32? { try integerIfPresent(key) }
    func decodeIfPresent(_: Int64.Type, forKey key: Key) throws -> Int64? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt.Type, forKey key: Key) throws -> UInt? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt8.Type, forKey key: Key) throws -> UInt8? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt16.Type, forKey key: Key) throws -> UInt16? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt32.Type, forKey key: Key) throws -> UInt32? { try integerIfPresent(key) }
    func decodeIfPresent(_: UInt64.Type, forKey key: Key) throws -> UInt64? { try integerIfPresent(key) }
    func decodeIfPresent<T: Decodable>(_: T.Type, forKey key: Key) throws -> T? {
        guard let v = present(key) else { return nil }
        return try T(from: child(v, key))
    }

    private func integerIfPresent<T: FixedWidthInteger>(_ key: Key) throws -> T? {
        guard let v = present(key) else { return nil }
        return try JSONUnbox.integer(v, path(key)) as T
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey> {
        try child(require(key), key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(require(key), key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        child(lookup("super") ?? .null, JSONSuperKey())
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        child(lookup(key.stringValue) ?? .null, key)
    }
}

struct JSONUnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: JSONTreeDecoder
    let elements: [JSONValue]
    private(set) var currentIndex = 0

    init(decoder: JSONTreeDecoder, elements: [JSONValue]) {
        self.decoder = decoder
        self.elements = elements
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private func path() -> [any CodingKey] { decoder.codingPath + [JSONIndexKey(currentIndex)] }

    private func current(_ type: Any.Type) throws -> JSONValue {
        guard currentIndex < elements.count else {
            throw DecodingError.valueNotFound(type, DecodingError.Context(
                codingPath: path(), debugDescription: "Unkeyed container is at end."))
        }
        return elements[currentIndex]
    }

    private func child(_ value: JSONValue) -> JSONTreeDecoder {
        JSONTreeDecoder(value, parent: decoder, key: .index(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard try current(Any?.self).isNull else { return false }
        currentIndex += 1
        return true
    }

    private mutating func next<T>(_ type: T.Type, _ unbox: (JSONValue, @autoclosure () -> [any CodingKey]) throws -> T) throws -> T {
        let v = try unbox(current(type), path())
        currentIndex += 1
        return v
    }

    mutating func decode(_ t: Bool.Type) throws -> Bool { try next(t, JSONUnbox.bool) }
    mutating func decode(_ t: String.Type) throws -> String { try next(t, JSONUnbox.string) }
    mutating func decode(_ t: Double.Type) throws -> Double { try next(t, JSONUnbox.double) }
    mutating func decode(_ t: Float.Type) throws -> Float { try next(t, JSONUnbox.float) }
    mutating func decode(_ t: Int.Type) throws -> Int { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: Int8.Type) throws -> Int8 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: Int16.Type) throws -> Int16 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: Int32.Type) throws -> Int32 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: Int64.Type) throws -> Int64 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: UInt.Type) throws -> UInt { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: UInt8.Type) throws -> UInt8 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: UInt16.Type) throws -> UInt16 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: UInt32.Type) throws -> UInt32 { try next(t, JSONUnbox.integer) }
    mutating func decode(_ t: UInt64.Type) throws -> UInt64 { try next(t, JSONUnbox.integer) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let v = try T(from: child(current(type)))
        currentIndex += 1
        return v
    }

    // decodeIfPresent: nil at the end or for null (which is consumed), as JSONDecoder does.
    private mutating func ifPresent<T>(_ decode: (inout Self) throws -> T) throws -> T? {
        if isAtEnd { return nil }
        if elements[currentIndex].isNull {
            currentIndex += 1
            return nil
        }
        return try decode(&self)
    }

    mutating func decodeIfPresent(_ t: Bool.Type) throws -> Bool? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: String.Type) throws -> String? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Double.Type) throws -> Double? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Float.Type) throws -> Float? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Int.Type) throws -> Int? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Int8.Type) throws -> Int8? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Int16.Type) throws -> Int16? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Int32.Type) throws -> Int32? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: Int64.Type) throws -> Int64? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: UInt.Type) throws -> UInt? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: UInt8.Type) throws -> UInt8? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: UInt16.Type) throws -> UInt16? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: UInt32.Type) throws -> UInt32? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent(_ t: UInt64.Type) throws -> UInt64? { try ifPresent { try $0.decode(t) } }
    mutating func decodeIfPresent<T: Decodable>(_ t: T.Type) throws -> T? { try ifPresent { try $0.decode(t) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey> {
        let c = try child(current(KeyedDecodingContainer<NestedKey>.self)).container(keyedBy: type)
        currentIndex += 1
        return c
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let c = try child(current((any UnkeyedDecodingContainer).self)).unkeyedContainer()
        currentIndex += 1
        return c
    }

    mutating func superDecoder() throws -> any Decoder {
        let d = try child(current((any Decoder).self))
        currentIndex += 1
        return d
    }
}
