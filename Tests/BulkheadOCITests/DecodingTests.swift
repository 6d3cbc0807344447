// Decoding errors name the JSON path of the field and say what was expected.

import FoundationEssentials
import Testing
@testable import BulkheadOCI

@Suite struct DecodingTests {
    @Test func typeMismatchInNestedFieldNamesThePath() throws {
        do {
            _ = try Spec.decode(Array(#"{"linux":{"resources":{"memory":{"limit":"1g"}}}}"#.utf8))
            Issue.record("decoded")
        } catch {
            #expect(error.field == "linux.resources.memory.limit")
            #expect(error.message == "expected an integer, found a string")
            #expect(error.description == "config.json: linux.resources.memory.limit: expected an integer, found a string")
        }
    }

    @Test func stringExpectedButNumberFound() {
        expectDecodeError(#"{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh",1]}}"#,
                          field: "process.args[1]")
    }

    @Test func missingRequiredFieldInArrayElement() throws {
        let json = #"{"ociVersion":"1.0.0","mounts":[{"destination":"/a"},{"type":"tmpfs"}]}"#
        expectDecodeError(json, field: "mounts[1].destination")
        do { _ = try Spec.decode(Array(json.utf8)) } catch { #expect(error.message == "missing required field") }
    }

    @Test func missingOciVersion() {
        expectDecodeError(#"{"root":{"path":"rootfs"}}"#, field: "ociVersion")
    }

    @Test func nullForRequiredValue() {
        expectDecodeError(#"{"ociVersion":"1.0.0","root":{"path":null}}"#, field: "root.path")
    }

    @Test func objectExpectedButArrayFound() {
        expectDecodeError(#"{"ociVersion":"1.0.0","linux":{"resources":[]}}"#, field: "linux.resources")
    }

    @Test func mapKeysWithDotsAreQuoted() {
        expectDecodeError(#"{"ociVersion":"1.0.0","linux":{"sysctl":{"net.ipv4.ip_forward":1}}}"#,
                          field: #"linux.sysctl["net.ipv4.ip_forward"]"#)
    }

    @Test func negativeNumberForUnsignedFieldNamesTheField() throws {
        let json = #"{"ociVersion":"1.0.0","process":{"user":{"uid":-1,"gid":0},"cwd":"/","args":["sh"]}}"#
        expectDecodeError(json, field: "process.user.uid")
        do { _ = try Spec.decode(Array(json.utf8)) } catch { #expect(error.message.contains("non-negative")) }
    }

    @Test func outOfRangeNumberNamesTheField() {
        // The other negative number (memory limit -1) is legal and must not be blamed.
        let json = #"{"ociVersion":"1.0.0","linux":{"resources":{"memory":{"limit":-1},"blockIO":{"weight":70000}}}}"#
        expectDecodeError(json, field: "linux.resources.blockIO.weight")
    }

    @Test func fractionForIntegerFieldNamesTheField() {
        expectDecodeError(#"{"ociVersion":"1.0.0","linux":{"resources":{"pids":{"limit":1.5}}}}"#,
                          field: "linux.resources.pids.limit")
    }

    @Test func invalidJSONReportsLineAndColumn() throws {
        do {
            _ = try Spec.decode(Array("{\n  \"ociVersion\": \"1.0.0\",\n  \"root\": {\"path\" \"x\"}\n}".utf8))
            Issue.record("decoded")
        } catch {
            #expect(error.field == "")
            #expect(error.message.hasPrefix("invalid JSON: "))
            #expect(error.message.contains("line 3"))
            #expect(error.description.hasPrefix("config.json: invalid JSON"))
        }
    }

    @Test func topLevelMustBeAnObject() {
        expectDecodeError("[1]", field: "")
    }

    @Test func loadReadsBundleConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bulkhead-oci-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(Fixture.bytes("runc-spec.json")).write(to: dir.appendingPathComponent("config.json"))
        let spec = try Spec.load(bundle: dir.path)
        #expect(spec.process?.args == ["sh"])
    }

    @Test func loadMissingConfigSaysSo() {
        do {
            _ = try Spec.load(bundle: "/nonexistent-bundle-\(UInt64.random(in: 0...UInt64.max))")
            Issue.record("loaded")
        } catch {
            #expect(error.field == "")
            #expect(error.message.contains("not found"))
            #expect(error.message.contains("config.json"))
        }
    }
}
