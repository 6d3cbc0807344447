import Glibc

/// A failure of the cgroup layer. `operation` names what was being done: the spec field whose
/// limit could not be applied (e.g. "linux.resources.memory.limit"), or the step (e.g. "mkdir").
public struct CgroupError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var path: String?
    /// errno of the failing system call, when a system call failed.
    public var errno: Int32?
    public var message: String

    public init(operation: String, path: String? = nil, errno: Int32? = nil, message: String) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.message = message
    }

    public var errnoText: String? { errno.map { String(cString: strerror($0)) } }

    public var description: String {
        var text = "\(operation): \(message)"
        if let path { text += " (\(path)" + (errnoText.map { ": \($0)" } ?? "") + ")" }
        else if let errnoText { text += " (\(errnoText))" }
        return text
    }
}

/// Reads and writes of cgroup filesystem files. Each write is one write(2) call, because the
/// kernel parses every write to a cgroup file as one complete value.
enum CgroupFiles {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func read(_ path: String, operation: String = "read") throws(CgroupError) -> String {
        do {
            return try Files.readString(path)
        } catch {
            throw CgroupError(operation: operation, path: path, errno: error.errno,
                              message: error.operation == "open" ? "cannot open" : "cannot read")
        }
    }

    /// Reads a file, or nil when it cannot be read (used where absence is an answer, not an error).
    static func readIfPresent(_ path: String) -> String? { try? read(path) }

    static func write(_ path: String, _ value: String, operation: String) throws(CgroupError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 {
            throw CgroupError(operation: operation, path: path, errno: Glibc.errno,
                              message: "cannot open to write \"\(value)\"")
        }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n < 0 {
                throw CgroupError(operation: operation, path: path, errno: Glibc.errno,
                                  message: "cannot write \"\(value)\"")
            }
            if n != bytes.count {
                throw CgroupError(operation: operation, path: path, message: "short write of \"\(value)\"")
            }
            return
        }
    }
}
