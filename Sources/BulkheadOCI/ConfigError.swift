// An error in a bundle's config.json that names the offending field, so that a user (or the engine
// that wrote the config) can find it without reading the runtime's source.

public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// JSON path of the offending field: `process.args`, `mounts[2].destination`,
    /// `linux.sysctl["net.ipv4.ip_forward"]`. Empty when the problem is the file as a whole
    /// (missing, unreadable, not JSON at all).
    public var field: String
    /// What was wrong and what was expected.
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String {
        field.isEmpty ? "config.json: \(message)" : "config.json: \(field): \(message)"
    }
}

/// Renders JSON paths the same way for decoding errors and validation errors:
/// identifier-like keys are joined with dots, array indices are `[n]`, and any other key (map keys
/// such as sysctl names, which contain dots themselves) is quoted in brackets so that the path
/// stays unambiguous.
enum JSONPath {
    enum Component: Equatable {
        case key(String)
        case index(Int)
    }

    static func render(_ components: [Component]) -> String {
        var out = ""
        for component in components {
            switch component {
            case .index(let i):
                out += "[\(i)]"
            case .key(let k) where isIdentifier(k):
                out += out.isEmpty ? k : "." + k
            case .key(let k):
                out += "[\"\(k)\"]"
            }
        }
        return out
    }

    /// Appends one map or struct key to an already rendered path.
    static func append(_ base: String, key: String) -> String {
        if isIdentifier(key) { return base.isEmpty ? key : base + "." + key }
        return base + "[\"\(key)\"]"
    }

    /// Coding paths from Swift's decoders: array elements are keys with an integer value.
    static func render(_ codingPath: [any CodingKey]) -> String {
        render(codingPath.map { key in
            if let i = key.intValue { return .index(i) }
            return .key(key.stringValue)
        })
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else {
            return false
        }
        return s.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
        }
    }
}
