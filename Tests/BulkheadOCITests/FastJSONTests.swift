// The Decoder over parsed JSON: exact integer conversion at every width, optionals, dictionaries,
// and DecodingErrors whose coding path names the value.

import BulkheadJSON
import FoundationEssentials
import Testing
@testable import BulkheadOCI

private func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try FastJSON.decode(type, from: Array(json.utf8))
}

/// The error decoding `json` throws, or nil (recorded as an issue) if it decodes.
private func decodingError<T: Decodable>(_ type: T.Type, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> DecodingError? {
    do {
        let value = try decode(type, json)
        Issue.record("decoded \(json) as \(value)", sourceLocation: sourceLocation)
    } catch let error as DecodingError {
        return error
    } catch {
        Issue.record("not a DecodingError: \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

private func path(_ error: DecodingError?) -> String? {
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): return JSONPath.render(c.codingPath)
    case .keyNotFound(let key, let c): return JSONPath.render(c.codingPath + [key])
    default: return nil
    }
}

private func isTypeMismatch(_ error: DecodingError?, _ type: Any.Type) -> Bool {
    if case .typeMismatch(let t, _) = error { return t == type }
    return false
}

/// Every width through the concrete keyed overloads (synthesized Decodable).
private struct Widths: Decodable, Equatable {
    var i: Int, i8: Int8, i16: Int16, i32: Int32, i64: Int64
    var u: UInt, u8: UInt8, u16: UInt16, u32: UInt32, u64: UInt64

    static let fields = ["i", "i8", "i16", "i32", "i64", "u", "u8", "u16", "u32", "u64"]
}

/// The same through the concrete unkeyed overloads.
private struct UnkeyedWidths: Decodable, Equatable {
    var values: [String] = []
    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        values.append(String(try c.decode(Int.self)))
        values.append(String(try c.decode(Int8.self)))
        values.append(String(try c.decode(Int16.self)))
        values.append(String(try c.decode(Int32.self)))
        values.append(String(try c.decode(Int64.self)))
        values.append(String(try c.decode(UInt.self)))
        values.append(String(try c.decode(UInt8.self)))
        values.append(String(try c.decode(UInt16.self)))
        values.append(String(try c.decode(UInt32.self)))
        values.append(String(try c.decode(UInt64.self)))
        #expect(c.isAtEnd)
    }
}

private struct Optionals: Decodable, Equatable {
    var s: String?
    var b: Bool?
    var n: UInt16?
    var d: Double?
    var nested: Optionals2?
    var list: [Int]?
}

private struct Optionals2: Decodable, Equatable {
    var x: Int?
}

private func maxText<T: FixedWidthInteger>(_: T.Type) -> String { String(UInt64(T.max)) }
private func minText<T: FixedWidthInteger>(_: T.Type) -> String { T.isSigned ? "-" + String(UInt64(T.min.magnitude)) : "0" }
/// One above max and one below min, as decimal text (2^64 when max is UInt64.max).
private func aboveMaxText<T: FixedWidthInteger>(_: T.Type) -> String {
    UInt64(T.max) == UInt64.max ? "18446744073709551616" : String(UInt64(T.max) + 1)
}
private func belowMinText<T: FixedWidthInteger>(_: T.Type) -> String {
    T.isSigned ? "-" + String(UInt64(T.min.magnitude) + 1) : "-1"
}

@Suite struct FastJSONTests {
    private static var types: [any (FixedWidthInteger & Decodable).Type] {
        [Int.self, Int8.self, Int16.self, Int32.self, Int64.self, UInt.self, UInt8.self, UInt16.self, UInt32.self, UInt64.self]
    }

    private func texts(_ f: (any FixedWidthInteger.Type) -> String) -> [String] {
        Self.types.map { f($0) }
    }

    @Test func integerBoundsThroughKeyedContainers() throws {
        let maxima = texts { maxText($0) }, minima = texts { minText($0) }
        func object(_ values: [String]) -> String {
            "{" + zip(Widths.fields, values).map { "\"\($0)\":\($1)" }.joined(separator: ",") + "}"
        }
        let top = try decode(Widths.self, object(maxima))
        #expect(top == Widths(i: .max, i8: .max, i16: .max, i32: .max, i64: .max, u: .max, u8: .max, u16: .max, u32: .max, u64: .max))
        let bottom = try decode(Widths.self, object(minima))
        #expect(bottom == Widths(i: .min, i8: .min, i16: .min, i32: .min, i64: .min, u: 0, u8: 0, u16: 0, u32: 0, u64: 0))

        let above = texts { aboveMaxText($0) }, below = texts { belowMinText($0) }
        for (k, field) in Widths.fields.enumerated() {
            for bad in [above[k], below[k]] {
                var values = maxima
                values[k] = bad
                let error = decodingError(Widths.self, object(values))
                #expect(path(error) == field, "\(field) = \(bad)")
                #expect(isTypeMismatch(error, Self.types[k]), "\(field) = \(bad): \(String(describing: error))")
                if case .typeMismatch(_, let c) = error {
                    #expect(c.debugDescription.contains(bad))
                }
            }
        }
    }

    @Test func integerBoundsThroughUnkeyedContainers() throws {
        let maxima = texts { maxText($0) }, minima = texts { minText($0) }
        #expect(try decode(UnkeyedWidths.self, "[" + maxima.joined(separator: ",") + "]").values == maxima)
        #expect(try decode(UnkeyedWidths.self, "[" + minima.joined(separator: ",") + "]").values == minima)
        let above = texts { aboveMaxText($0) }, below = texts { belowMinText($0) }
        for k in Self.types.indices {
            for bad in [above[k], below[k]] {
                var values = maxima
                values[k] = bad
                let error = decodingError(UnkeyedWidths.self, "[" + values.joined(separator: ",") + "]")
                #expect(path(error) == "[\(k)]")
                #expect(isTypeMismatch(error, Self.types[k]))
            }
        }
    }

    @Test func integerBoundsThroughSingleValueContainers() throws {
        #expect(try decode(Int8.self, "-128") == .min)
        #expect(try decode(UInt64.self, "18446744073709551615") == .max)
        #expect(try decode(Int64.self, "-9223372036854775808") == .min)
        #expect(try decode(UInt32.self, "4294967295") == .max)
        #expect(isTypeMismatch(decodingError(UInt32.self, "4294967296"), UInt32.self))
        #expect(isTypeMismatch(decodingError(Int16.self, "-32769"), Int16.self))
        #expect(isTypeMismatch(decodingError(UInt64.self, "123456789012345678901234567890"), UInt64.self))
    }

    @Test func integersMustBeExact() throws {
        #expect(try decode(Int.self, "-0") == 0)
        #expect(try decode(UInt8.self, "-0") == 0)
        #expect(try decode(UInt8.self, "-0.0e7") == 0)
        #expect(try decode(Int.self, "1.0") == 1)
        #expect(try decode(Int.self, "1e3") == 1000)
        #expect(try decode(Int.self, "2.50E1") == 25)
        #expect(try decode(Int64.self, "1000e-3") == 1)
        #expect(try decode(UInt64.self, "1.8446744073709551615e19") == .max)
        #expect(isTypeMismatch(decodingError(Int.self, "1.5"), Int.self))
        #expect(isTypeMismatch(decodingError(Int.self, "1e-1"), Int.self))
        #expect(isTypeMismatch(decodingError(UInt8.self, "-1"), UInt8.self))
        #expect(isTypeMismatch(decodingError(UInt64.self, "1e20"), UInt64.self))
        #expect(isTypeMismatch(decodingError(Int.self, "1e999999999999"), Int.self))
        #expect(isTypeMismatch(decodingError(Int.self, "\"1\""), Int.self))
    }

    @Test func floatingPoint() throws {
        #expect(try decode(Double.self, "1e3") == 1000)
        #expect(try decode(Double.self, "2.5E-3") == 0.0025)
        #expect(try decode(Double.self, "-1.5e+2") == -150)
        #expect(try decode(Double.self, "12345678901234567890") == 12345678901234567890.0)
        let negativeZero = try decode(Double.self, "-0")
        #expect(negativeZero == 0 && negativeZero.sign == .minus)
        #expect(try decode(Float.self, "0.5") == 0.5)
        #expect(try decode([Double].self, "[1, 0.25]") == [1, 0.25])
        #expect(isTypeMismatch(decodingError(Double.self, "1e400"), Double.self))
        #expect(isTypeMismatch(decodingError(Float.self, "1e39"), Float.self))
        #expect(isTypeMismatch(decodingError(Double.self, "true"), Double.self))
    }

    @Test func optionalsAbsentAndNullAreNil() throws {
        #expect(try decode(Optionals.self, "{}") == Optionals())
        #expect(try decode(Optionals.self, #"{"s":null,"b":null,"n":null,"d":null,"nested":null,"list":null}"#) == Optionals())
        let full = try decode(Optionals.self, #"{"s":"x","b":false,"n":65535,"d":0.5,"nested":{"x":null},"list":[1,2]}"#)
        #expect(full == Optionals(s: "x", b: false, n: 65535, d: 0.5, nested: Optionals2(x: nil), list: [1, 2]))
        #expect(try decode([Int?].self, "[1,null,3]") == [1, nil, 3])
        #expect(try decode(Int?.self, "null") == nil)
        // Present but of the wrong type is still an error, with the path.
        let error = decodingError(Optionals.self, #"{"nested":{"x":"1"}}"#)
        #expect(path(error) == "nested.x")
        #expect(isTypeMismatch(error, Int.self))
        #expect(path(decodingError(Optionals.self, #"{"n":70000}"#)) == "n")
    }

    @Test func requiredValues() {
        let missing = decodingError(Root.self, #"{"readonly":true}"#)
        if case .keyNotFound(let key, let c) = missing {
            #expect(key.stringValue == "path")
            #expect(c.codingPath.isEmpty)
        } else {
            Issue.record("expected keyNotFound, got \(String(describing: missing))")
        }
        let null = decodingError(Root.self, #"{"path":null}"#)
        if case .valueNotFound(let type, let c) = null {
            #expect(ObjectIdentifier(type) == ObjectIdentifier(String.self))
            #expect(JSONPath.render(c.codingPath) == "path")
        } else {
            Issue.record("expected valueNotFound, got \(String(describing: null))")
        }
        #expect(path(decodingError([Root].self, #"[{"path":"a"},null]"#)) == "[1]")
        #expect(isTypeMismatch(decodingError(Root.self, "[]"), [String: Any].self))
        #expect(isTypeMismatch(decodingError([String].self, "{}"), [Any].self))
    }

    @Test func dictionaries() throws {
        #expect(try decode([String: String].self, #"{"net.ipv4.ip_forward":"1","b":"2"}"#) == ["net.ipv4.ip_forward": "1", "b": "2"])
        #expect(try decode([String: TimeOffset].self, #"{"boottime":{"secs":-5,"nanosecs":7},"monotonic":{}}"#)
                == ["boottime": TimeOffset(secs: -5, nanosecs: 7), "monotonic": TimeOffset(secs: nil, nanosecs: nil)])
        #expect(try decode([String: [Int]].self, #"{"a":[1],"b":[]}"#) == ["a": [1], "b": []])
        #expect(try decode([String: Int].self, "{}") == [:])
        let many = (0..<200).map { "\"key\($0)\":\($0)" }.joined(separator: ",")
        let big = try decode([String: Int].self, "{\(many)}")
        #expect(big.count == 200 && big["key199"] == 199)
        let error = decodingError([String: TimeOffset].self, #"{"boottime":{"secs":1,"nanosecs":-1}}"#)
        #expect(path(error) == "boottime.nanosecs")
        #expect(isTypeMismatch(error, UInt32.self))
    }

    @Test func errorPathsInsideArrays() throws {
        let json = #"{"ociVersion":"1.0.0","mounts":[{"destination":"/a"},{"destination":"/b"},{"destination":5}]}"#
        let error = decodingError(Spec.self, json)
        #expect(path(error) == "mounts[2].destination")
        if case .typeMismatch(_, let c) = error {
            #expect(c.codingPath.map(\.stringValue) == ["mounts", "Index 2", "destination"])
            #expect(c.codingPath.map(\.intValue) == [nil, 2, nil])
        }
        expectDecodeError(json, field: "mounts[2].destination")
        expectDecodeError(#"{"ociVersion":"1","linux":{"uidMappings":[{"containerID":0,"hostID":0,"size":1},{"containerID":0,"hostID":-1,"size":1}]}}"#,
                          field: "linux.uidMappings[1].hostID")
        expectDecodeError(#"{"ociVersion":"1","linux":{"seccomp":{"defaultAction":"a","syscalls":[{"names":["x"],"action":"a","args":[{"index":0,"value":1.5,"op":"o"}]}]}}}"#,
                          field: "linux.seccomp.syscalls[0].args[0].value")
        expectDecodeError(#"{"ociVersion":"1","linux":{"timeOffsets":{"boottime":{"secs":"x"}}}}"#,
                          field: "linux.timeOffsets.boottime.secs")
    }

    @Test func syntaxErrorsAreDataCorruptedWithLineAndColumn() {
        let error = decodingError(Spec.self, "{\n\"ociVersion\": 1.0.0}")
        guard case .dataCorrupted(let c) = error else {
            Issue.record("expected dataCorrupted, got \(String(describing: error))")
            return
        }
        #expect(c.codingPath.isEmpty)
        #expect(c.underlyingError as? JSONSyntaxError == JSONSyntaxError(line: 2, column: 18, message: "expected ',' or '}' after a value in object"))
        do {
            _ = try Spec.decode(Array("{\n\"ociVersion\": 1.0.0}".utf8))
        } catch {
            #expect(error == ConfigError(field: "", message: "invalid JSON: expected ',' or '}' after a value in object at line 2, column 18"))
        }
    }

    @Test func rawValueEnumsAndStates() throws {
        let state = try decode(State.self, #"{"ociVersion":"1.2.0","id":"c","status":"running","pid":42,"bundle":"/b","annotations":{"a":"b"}}"#)
        #expect(state == State(id: "c", status: .running, pid: 42, bundle: "/b", annotations: ["a": "b"]))
        let error = decodingError(State.self, #"{"ociVersion":"1.2.0","id":"c","status":"sleeping","bundle":"/b"}"#)
        guard case .dataCorrupted(let c) = error else {
            Issue.record("expected dataCorrupted, got \(String(describing: error))")
            return
        }
        #expect(JSONPath.render(c.codingPath) == "status")
    }

    @Test func agreesWithJSONDecoderOnTheFixtures() throws {
        for name in ["runc-spec.json", "runc-spec-rootless.json"] {
            let bytes = try Fixture.bytes(name)
            #expect(try FastJSON.decode(Spec.self, from: bytes) == JSONDecoder().decode(Spec.self, from: Data(bytes)))
        }
        let features = try Fixture.bytes("runc-features.json")
        #expect(try FastJSON.decode(Features.self, from: features) == JSONDecoder().decode(Features.self, from: Data(features)))
        var spec = Spec.defaultSpec()
        spec.annotations = ["é": "\u{1F600}\n\"", "org.example/key": ""]
        spec.linux?.timeOffsets = ["boottime": TimeOffset(secs: Int64.min, nanosecs: UInt32.max)]
        spec.linux?.resources = Resources(memory: Resources.Memory(limit: Int64.max, swap: -1), cpu: Resources.CPU(shares: UInt64.max))
        #expect(try FastJSON.decode(Spec.self, from: Array(JSONEncoder().encode(spec))) == spec)
    }

    @Test func outOfRangeMessagesNameTheFieldAndTheExpectedRange() {
        let cases: [(String, String, String)] = [
            (#"{"ociVersion":"1","linux":{"resources":{"blockIO":{"weight":70000}}}}"#,
             "linux.resources.blockIO.weight", "expected a non-negative integer (at most 65535), found 70000"),
            (#"{"ociVersion":"1","process":{"user":{"uid":-1,"gid":0},"cwd":"/"}}"#,
             "process.user.uid", "expected a non-negative integer (at most 4294967295), found -1"),
            (#"{"ociVersion":"1","linux":{"resources":{"pids":{"limit":1.5}}}}"#,
             "linux.resources.pids.limit", "expected an integer, found 1.5"),
            (#"{"ociVersion":"1","process":{"user":{"uid":0,"gid":0},"cwd":"/","oomScoreAdj":"x"}}"#,
             "process.oomScoreAdj", "expected an integer, found a string"),
            (#"{"ociVersion":"1","root":{"path":7}}"#, "root.path", "expected a string, found the number 7"),
        ]
        for (json, field, message) in cases {
            do {
                _ = try Spec.decode(Array(json.utf8))
                Issue.record("decoded \(json)")
            } catch {
                #expect(error == ConfigError(field: field, message: message))
            }
        }
    }

    @Test func loadReportsUnreadableConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bulkhead-oci-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("config.json"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try Spec.load(bundle: dir.path)
            Issue.record("loaded a directory")
        } catch {
            #expect(error == ConfigError(field: "", message: "cannot read \(dir.path)/config.json: Is a directory"))
        }
    }

    @Test func loadReadsLargeConfigs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bulkhead-oci-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var spec = Spec.defaultSpec()
        spec.annotations = Dictionary(uniqueKeysWithValues: (0..<5000).map { ("key\($0)", String(repeating: "v", count: 40)) })
        try JSONEncoder().encode(spec).write(to: dir.appendingPathComponent("config.json"))
        #expect(try Spec.load(bundle: dir.path + "/") == spec)
    }
}
