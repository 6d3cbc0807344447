// Helpers shared by the OCI tests: fixtures captured from runc 1.1.5 (`runc spec`,
// `runc spec --rootless`, `runc features`) and assertions on the field an error names.

import FoundationEssentials
import Testing
@testable import BulkheadOCI

enum Fixture {
    static func bytes(_ name: String) throws -> [UInt8] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
    }

    static func spec(_ name: String) throws -> Spec { try Spec.decode(bytes(name)) }
}

/// A config that passes validation, to be broken one field at a time.
func goodSpec() -> Spec { Spec.defaultSpec() }

/// Decodes `json` and expects a ConfigError that names `field`.
func expectDecodeError(_ json: String, field: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let spec = try Spec.decode(Array(json.utf8))
        Issue.record("decoded without error: \(spec)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
    }
}

/// Validates `spec` and expects the first error to name `field`.
func expectInvalid(_ spec: Spec, field: String, forCreate: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try spec.validate(forCreate: forCreate)
        Issue.record("validated without error; expected one at \(field)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    }
}

/// Applies `change` to a good config and expects validation to name `field`.
func expectInvalid(field: String, sourceLocation: SourceLocation = #_sourceLocation, _ change: (inout Spec) -> Void) {
    var spec = goodSpec()
    change(&spec)
    expectInvalid(spec, field: field, sourceLocation: sourceLocation)
}

/// Applies `change` to a good config and expects it still to validate.
func expectValid(sourceLocation: SourceLocation = #_sourceLocation, _ change: (inout Spec) -> Void) {
    var spec = goodSpec()
    change(&spec)
    do { try spec.validate(forCreate: true) } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}
