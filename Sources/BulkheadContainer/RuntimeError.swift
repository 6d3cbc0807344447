/// An error the runtime reports to its caller: one line that says what failed and why.
public struct RuntimeError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
