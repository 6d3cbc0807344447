import Glibc

/// A failed system call: the operation, what it acted on, and errno.
public struct SystemError: Error, CustomStringConvertible, Equatable {
    public var operation: String
    public var path: String?
    public var errno: Int32

    public init(_ operation: String, path: String? = nil, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String {
        let what = path.map { "\(operation) \($0)" } ?? operation
        return "\(what): \(errnoText(errno))"
    }
}

/// The text of an errno value, as strerror gives it.
public func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Throws SystemError when a libc call returned -1.
@discardableResult
public func check(_ result: Int32, _ operation: @autoclosure () -> String, path: String? = nil) throws(SystemError) -> Int32 {
    if result == -1 { throw SystemError(operation(), path: path) }
    return result
}

/// Retries a call interrupted by a signal.
public func retryingEINTR(_ call: () -> Int32) -> Int32 {
    while true {
        let r = call()
        if r == -1 && errno == EINTR { continue }
        return r
    }
}
