// Reading config.json into a Spec, with errors that name the field. The decoder (FastJSON) reports
// every failure as a DecodingError with a coding path; this file turns it into a JSON path a
// person can act on.

import BulkheadJSON
import Glibc

extension Spec {
    /// Decodes a config.json document. Every failure is a ConfigError naming the field.
    public static func decode(_ bytes: [UInt8]) throws(ConfigError) -> Spec {
        do {
            return try FastJSON.decode(Spec.self, from: bytes)
        } catch {
            throw translate(error)
        }
    }

    /// Reads and decodes `<bundle>/config.json`. Does not validate: call `validate(forCreate:)`.
    public static func load(bundle: String) throws(ConfigError) -> Spec {
        let path = bundle.hasSuffix("/") ? bundle + "config.json" : bundle + "/config.json"
        let bytes: [UInt8]
        switch readFile(path) {
        case .success(let b):
            bytes = b
        case .failure(let e) where e.code == ENOENT:
            throw ConfigError(field: "", message: "not found: expected the file \(path) in bundle \(bundle)")
        case .failure(let e):
            throw ConfigError(field: "", message: "cannot read \(path): \(String(cString: strerror(e.code)))")
        }
        return try decode(bytes)
    }

    private struct Errno: Error { var code: Int32 }

    /// The whole file, read with open/read (cheaper than Data(contentsOf:) in a static binary).
    private static func readFile(_ path: String) -> Result<[UInt8], Errno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return .failure(Errno(code: errno)) }
        defer { close(fd) }
        var st = stat()
        var capacity = 64 * 1024
        if fstat(fd, &st) == 0, st.st_size > 0 { capacity = Int(st.st_size) + 1 }  // +1: see EOF in one read
        var bytes = [UInt8](repeating: 0, count: capacity)
        var count = 0
        while true {
            if count == bytes.count { bytes.append(contentsOf: repeatElement(0, count: bytes.count)) }
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(code: errno))
            }
            if n == 0 { break }
            count += n
        }
        bytes.removeSubrange(count...)
        return .success(bytes)
    }

    public static func translate(_ error: any Error) -> ConfigError {
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
        case .dataCorrupted(let context):
            if let syntax = context.underlyingError as? JSONSyntaxError {
                return ConfigError(field: "", message: "invalid JSON: \(syntax.message) at line \(syntax.line), column \(syntax.column)")
            }
            let path = JSONPath.render(context.codingPath)
            return ConfigError(field: path, message: path.isEmpty ? "invalid JSON: \(context.debugDescription)" : context.debugDescription)
        @unknown default:
            return ConfigError(field: "", message: "invalid JSON: \(error)")
        }
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
