// Reading config.json into a Spec, with errors that name the field. Swift's DecodingError carries
// a coding path; this file turns it into a JSON path a person can act on, and recovers the field of
// out-of-range numbers, which the decoder reports without a path.

import FoundationEssentials

extension Spec {
    /// Decodes a config.json document. Every failure is a ConfigError naming the field.
    public static func decode(_ data: some DataProtocol) throws(ConfigError) -> Spec {
        let bytes = [UInt8](data)
        switch attempt(bytes) {
        case .success(let spec): return spec
        case .failure(let error): throw translate(error, bytes)
        }
    }

    /// Reads and decodes `<bundle>/config.json`. Does not validate: call `validate(forCreate:)`.
    public static func load(bundle: String) throws(ConfigError) -> Spec {
        let path = bundle.hasSuffix("/") ? bundle + "config.json" : bundle + "/config.json"
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            throw ConfigError(field: "", message: "not found: expected the file \(path) in bundle \(bundle)")
        } catch let error as CocoaError {
            let reason = (error.userInfo["NSUnderlyingError"]).map { "\($0)" } ?? "\(error.code)"
            throw ConfigError(field: "", message: "cannot read \(path): \(reason)")
        } catch {
            throw ConfigError(field: "", message: "cannot read \(path): \(error)")
        }
        return try decode(data)
    }

    private static func attempt(_ bytes: [UInt8]) -> Result<Spec, any Error> {
        Result { try JSONDecoder().decode(Spec.self, from: Data(bytes)) }
    }

    static func translate(_ error: any Error, _ bytes: [UInt8]) -> ConfigError {
        guard let error = error as? DecodingError else {
            return ConfigError(field: "", message: "invalid JSON: \(error)")
        }
        switch error {
        case .typeMismatch(let type, let context):
            let path = JSONPath.render(context.codingPath)
            let found = foundClause(context.debugDescription)
            if path.isEmpty {
                return ConfigError(field: "", message: "expected a JSON object at the top level\(found)")
            }
            return ConfigError(field: path, message: "expected \(describe(type))\(found)")
        case .valueNotFound(let type, let context):
            return ConfigError(field: JSONPath.render(context.codingPath),
                               message: "expected \(describe(type)), found null")
        case .keyNotFound(let key, let context):
            return ConfigError(field: JSONPath.render(context.codingPath + [key]), message: "missing required field")
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            return ConfigError(field: JSONPath.render(context.codingPath), message: context.debugDescription)
        case .dataCorrupted:
            return diagnoseCorrupted(bytes)
        @unknown default:
            return ConfigError(field: "", message: "invalid JSON: \(error)")
        }
    }

    /// The decoder said "not valid JSON" without a path: either the syntax is wrong (report line and
    /// column) or a number does not fit its field (negative uid, 1.5 for an integer, 2^64).
    private static func diagnoseCorrupted(_ bytes: [UInt8]) -> ConfigError {
        var scanner = JSONScanner(bytes)
        do {
            try scanner.scan()
        } catch {
            return ConfigError(field: "", message: "invalid JSON: \(error.message) at line \(error.line), column \(error.column)")
        }
        // Any number may be the one: 70000 does not fit a UInt16, -1 fits an Int64 but not a UInt32.
        // This runs only on the error path, so a few extra decodes of a small document are cheap.
        let suspects = scanner.numbers
        func replacing(_ replaced: [JSONScanner.NumberToken], with text: (JSONScanner.NumberToken) -> String) -> [UInt8] {
            var out: [UInt8] = []
            var at = 0
            for n in replaced {
                out += bytes[at..<n.range.lowerBound]
                out += Array(text(n).utf8)
                at = n.range.upperBound
            }
            out += bytes[at...]
            return out
        }
        func isPathlessCorruption(_ trial: [UInt8]) -> Bool {
            guard case .failure(let e) = attempt(trial), case .dataCorrupted(let c) = e as? DecodingError else { return false }
            return c.codingPath.isEmpty
        }
        // If the error stays with every number set to 0, numbers are not the problem. Otherwise
        // restore one number at a time with every other one set to 0: the first that brings the
        // error back is the culprit. Replacing it by a string then makes the decoder say its type.
        let zeroed = replacing(suspects) { _ in "0" }
        guard !isPathlessCorruption(zeroed) else {
            return ConfigError(field: "", message: "invalid JSON: the decoder rejected the document")
        }
        for culprit in suspects where isPathlessCorruption(replacing(suspects) { $0.range == culprit.range ? $0.text : "0" }) {
            let probe = replacing(suspects) { $0.range == culprit.range ? "\"?\"" : "0" }
            var expected = "a number that fits this field"
            if case .failure(let e) = attempt(probe), case .typeMismatch(let type, _) = e as? DecodingError {
                expected = describe(type)
            }
            return ConfigError(field: JSONPath.render(culprit.path), message: "expected \(expected), got \(culprit.text)")
        }
        return ConfigError(field: "", message: "invalid JSON: the decoder rejected the document")
    }

    /// "Expected to decode Int64 but found a string instead." -> ", found a string".
    private static func foundClause(_ debugDescription: String) -> String {
        guard let r = debugDescription.firstRange(of: "but found ") else { return "" }
        var rest = String(debugDescription[r.upperBound...])
        if rest.hasSuffix(" instead.") { rest.removeLast(" instead.".count) }
        return ", found " + rest
    }

    /// What a person should have written, for the Swift type the decoder wanted.
    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type: return "an integer"
        case is Int32.Type: return "an integer (32-bit)"
        case is Int16.Type, is Int8.Type: return "a small integer"
        case is UInt64.Type, is UInt.Type: return "a non-negative integer"
        case is UInt32.Type: return "a non-negative integer (at most 4294967295)"
        case is UInt16.Type: return "a non-negative integer (at most 65535)"
        case is UInt8.Type: return "a non-negative integer (at most 255)"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean (true or false)"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(name)"
        }
    }
}
