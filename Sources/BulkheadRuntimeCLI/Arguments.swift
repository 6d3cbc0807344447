/// A command line in runc's style (urfave/cli): `-flag`, `--flag`, `--flag=value` and
/// `--flag value`; flags stop at the first positional argument or at `--`.
public struct Arguments: Equatable {
    public var values: [String: String] = [:]
    /// Every value of a flag given more than once (`--env A=1 --env B=2`), in order.
    public var repeated: [String: [String]] = [:]
    // An array, not a Set: a handful of entries, and hashing costs a static binary's start-up.
    public var switches: [String] = []
    public var positional: [String] = []

    /// A flag a command takes: its names (without dashes) and whether it takes a value.
    public struct Flag: Sendable {
        public var names: [String]
        public var takesValue: Bool

        public init(_ names: String..., value: Bool = false) {
            self.names = names
            self.takesValue = value
        }
    }

    public struct UsageError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `args` against `flags`; returns the rest unparsed when `stopAtPositional` (the
    /// global flags before a subcommand).
    public static func parse(_ args: [String], flags: [Flag], stopAtPositional: Bool = true) throws(UsageError) -> Arguments {
        var result = Arguments()
        var i = 0
        var flagsOver = false
        while i < args.count {
            let arg = args[i]
            i += 1
            if flagsOver || !arg.hasPrefix("-") || arg == "-" {
                result.positional.append(arg)
                if stopAtPositional { flagsOver = true }
                continue
            }
            if arg == "--" { flagsOver = true; continue }
            var name = String(arg.drop { $0 == "-" })
            var inlineValue: String?
            if let eq = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let flag = flags.first(where: { $0.names.contains(name) }) else {
                throw UsageError(description: "flag provided but not defined: -\(name)")
            }
            let key = flag.names[0]
            if flag.takesValue {
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else {
                    guard i < args.count else { throw UsageError(description: "flag needs an argument: -\(name)") }
                    value = args[i]
                    i += 1
                }
                result.values[key] = value
                result.repeated[key, default: []].append(value)
            } else {
                if let inlineValue, inlineValue == "false" { result.switches.removeAll { $0 == key }; continue }
                if !result.switches.contains(key) { result.switches.append(key) }
            }
        }
        return result
    }

    public func has(_ name: String) -> Bool { switches.contains(name) }
    public subscript(_ name: String) -> String? { values[name] }
    public func all(_ name: String) -> [String] { repeated[name] ?? [] }
}
