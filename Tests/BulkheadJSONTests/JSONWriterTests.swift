// JSON output and building: compact text, member order, escapes, integers, and that the parser
// reads back what the writer writes.

import BulkheadJSON
import Testing

@Suite struct JSONWriterTests {
    @Test func compactTextKeepsMemberOrder() {
        let value: JSONValue = ["z": .integer(-3), "a": .array([.bool(true), .null, .number("1.5e3")]), "m": [:]]
        #expect(value.text == #"{"z":-3,"a":[true,null,1.5e3],"m":{}}"#)
        #expect(JSONValue.array([]).text == "[]")
    }

    @Test func stringsEscapeWhatJSONRequiresAndNothingElse() {
        #expect(JSONValue.string("a\"b\\c/d").text == #""a\"b\\c/d""#)
        #expect(JSONValue.string("\n\r\t\u{8}\u{C}\u{0}\u{1F}").text == #""\n\r\t\b\f\u0000\u001f""#)
        #expect(JSONValue.string("café ☃ 😀").text == "\"café ☃ 😀\"")
    }

    @Test func whatIsWrittenParsesBack() throws {
        let value: JSONValue = ["k\"ey": .string("line\nbreak \u{1} é"), "n": .integer(UInt64.max),
                                "nested": ["list": .array([.integer(0), .string(""), ["x": .null]])]]
        #expect(try JSONParser.parse(Array(value.text.utf8)) == value)
    }

    @Test func subscriptReadsReplacesAppendsAndRemoves() {
        var value: JSONValue = ["a": .integer(1), "b": .integer(2)]
        #expect(value["b"] == .integer(2) && value["c"] == nil)
        value["a"] = .string("x")
        value["c"] = .bool(false)
        value["b"] = nil
        #expect(value.text == #"{"a":"x","c":false}"#)
        var notAnObject = JSONValue.array([])
        notAnObject["a"] = .null
        #expect(notAnObject == .array([]) && notAnObject["a"] == nil)
    }

    @Test func exactIntegers() {
        #expect(JSONValue.number("1e3").integer(as: UInt64.self) == 1000)
        #expect(JSONValue.number("2.50e1").integer(as: Int8.self) == 25)
        #expect(JSONValue.number("-0").integer(as: UInt8.self) == 0)
        #expect(JSONValue.number("-128").integer(as: Int8.self) == -128)
        #expect(JSONValue.number("-1").integer(as: UInt64.self) == nil)
        #expect(JSONValue.number("1.5").integer(as: Int.self) == nil)
        #expect(JSONValue.number("1e-1").integer(as: Int.self) == nil)
        #expect(JSONValue.number("18446744073709551616").integer(as: UInt64.self) == nil)
        #expect(JSONValue.number("256").integer(as: UInt8.self) == nil)
        #expect(JSONValue.string("1").integer(as: Int.self) == nil)
    }
}
