// The JSON parser: the value tree, exact number text, escapes, and where syntax errors are.

import Testing
import BulkheadJSON

@Suite struct JSONParserTests {
    private func parse(_ json: String) throws(JSONSyntaxError) -> JSONValue { try JSONParser.parse(Array(json.utf8)) }

    private func syntaxError(_ json: String) -> JSONSyntaxError? {
        do {
            let value = try parse(json)
            Issue.record("parsed \(json) as \(value)")
            return nil
        } catch {
            return error
        }
    }

    @Test func nestedStructures() throws {
        let value = try parse(#" { "a" : [1, {"b": [true, false, null]}, [] , {}], "c": "d" } "#)
        #expect(value == .object([
            JSONMember(key: "a", value: .array([
                .number("1"),
                .object([JSONMember(key: "b", value: .array([.bool(true), .bool(false), .null]))]),
                .array([]),
                .object([]),
            ])),
            JSONMember(key: "c", value: .string("d")),
        ]))
    }

    @Test func objectsKeepKeyOrderAndTheLastDuplicate() throws {
        #expect(try parse(#"{"z":1,"a":2,"z":3}"#) == .object([
            JSONMember(key: "z", value: .number("3")), JSONMember(key: "a", value: .number("2")),
        ]))
        // Large objects find duplicates through an index.
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        let value = try parse("{\(many),\"k7\":\"again\"}")
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.count == 40)
        #expect(members[7] == JSONMember(key: "k7", value: .string("again")))
    }

    @Test func scalarsAtTheTopLevel() throws {
        #expect(try parse("true") == .bool(true))
        #expect(try parse(" null ") == .null)
        #expect(try parse("\"x\"") == .string("x"))
        #expect(try parse("-12.5e+3") == .number("-12.5e+3"))
        #expect(try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array("[]".utf8)) == .array([]))  // BOM
    }

    @Test func numbersKeepTheirSourceText() throws {
        #expect(try parse("123456789012345678901234567890") == .number("123456789012345678901234567890"))
        #expect(try parse("-0") == .number("-0"))
        #expect(try parse("[0, 0.5, 1E9, 2e-7]") == .array([.number("0"), .number("0.5"), .number("1E9"), .number("2e-7")]))
    }

    @Test func escapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""caf\u00e9 \u00E9""#) == .string("café é"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse(#""a\uD83D\uDE00b""#) == .string("a😀b"))   // surrogate pair
        #expect(try parse(#""\uD834\uDD1E""#) == .string("𝄞"))
        #expect(try parse("\"naïve ☃ 😀\"") == .string("naïve ☃ 😀"))     // raw UTF-8
        #expect(try parse(#"{"k\u0065y":1}"#) == .object([JSONMember(key: "key", value: .number("1"))]))
    }

    @Test func badEscapesAndStrings() {
        #expect(syntaxError(#""\uD83D""#)?.message.contains("unpaired") == true)
        #expect(syntaxError(#""\uD83Dx""#)?.message.contains("unpaired") == true)
        #expect(syntaxError(#""\uDE00""#)?.message.contains("unpaired") == true)
        #expect(syntaxError(#""\uD83D\u0041""#)?.message.contains("low surrogate") == true)
        #expect(syntaxError(#""\u12G4""#)?.message.contains("hex digit") == true)
        #expect(syntaxError(#""\u12"#)?.message.contains("unterminated") == true)
        #expect(syntaxError(#""\x""#)?.message == "invalid escape '\\x' in string")
        #expect(syntaxError("\"a\tb\"")?.message.contains("control character") == true)
        #expect(syntaxError("\"abc")?.message == "unterminated string")
        do {
            _ = try JSONParser.parse([0x22, 0xFF, 0x22])
            Issue.record("parsed invalid UTF-8")
        } catch {
            #expect(error.message == "invalid UTF-8 in string")
        }
    }

    @Test func syntaxErrorLineAndColumn() {
        let error = syntaxError("{\n  \"a\": 1,\n  \"b\" 2\n}")
        #expect(error == JSONSyntaxError(line: 3, column: 7, message: "expected ':' after key \"b\""))
        #expect(error?.description == "expected ':' after key \"b\" at line 3, column 7")
        // Columns count characters, not UTF-8 bytes.
        #expect(syntaxError("[\"é😀\" x]").map { [$0.line, $0.column] } == [1, 7])
        #expect(syntaxError("").map { [$0.line, $0.column] } == [1, 1])
        #expect(syntaxError("[1,\n\n  ").map { [$0.line, $0.column] } == [3, 3])
    }

    @Test func grammarIsStrict() {
        for bad in ["[1,]", "{\"a\":1,}", "{,}", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "[+1]", "[1 2]",
                    "{\"a\" 1}", "{1:2}", "[tru]", "[nul]", "NaN", "[Infinity]", "{} {}", "[", "{\"a\":", "'a'"] {
            #expect(syntaxError(bad) != nil, "\(bad)")
        }
        #expect(syntaxError("[1,]")?.message == "unexpected ']', expected a value")
        #expect(syntaxError("{} x")?.message == "unexpected 'x' after the top-level value")
        #expect(syntaxError("[01]")?.message == "leading zero in number")
    }

    @Test func depthIsLimited() {
        let deep = String(repeating: "[", count: JSONParser.maxDepth + 1) + String(repeating: "]", count: JSONParser.maxDepth + 1)
        #expect(syntaxError(deep)?.message.contains("nested") == true)
        let ok = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        #expect((try? parse(ok)) != nil)
    }
}
