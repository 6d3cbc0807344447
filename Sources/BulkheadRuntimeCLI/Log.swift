import BulkheadLinux
import FoundationEssentials
import Glibc

/// runc's logging: `--log FILE` (default stderr) in `--log-format text|json`. Engines read the
/// last `{"level":"error","msg":...}` line of the file to show why a command failed; errors also
/// go to stderr for people.
public struct Log {
    public enum Format: String { case text, json }

    public var path: String?
    public var format: Format
    public var debug: Bool

    public init(path: String?, format: Format, debug: Bool) {
        self.path = path
        self.format = format
        self.debug = debug
    }

    struct Line: Encodable {
        var level: String
        var msg: String
        var time: String
    }

    public func error(_ message: String) {
        write(level: "error", message)
        // The log went to a file: people still read stderr.
        if path != nil { printError(message) }
    }

    public func warning(_ message: String) { write(level: "warning", message) }

    public func debugMessage(_ message: String) {
        if debug { write(level: "debug", message) }
    }

    func write(level: String, _ message: String) {
        let time = Timestamp.now()
        let text: String
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(Line(level: level, msg: message, time: time))) ?? Data()
            text = String(decoding: data, as: UTF8.self) + "\n"
        case .text:
            text = "time=\"\(time)\" level=\(level) msg=\"\(message)\"\n"
        }
        guard let path else {
            if format == .json { writeStderr(text) } else { printError(message) }
            return
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            printError("cannot open log file \(path): \(errnoText(errno)); \(message)")
            return
        }
        defer { close(fd) }
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    func printError(_ message: String) {
        writeStderr("bulkhead-runtime: \(message)\n")
    }
}

/// Writes to fd 2 directly: the C `stderr` global is not concurrency-safe in Swift 6.
func writeStderr(_ text: String) { writeAll(2, text) }

/// A line on stdout, written directly: `print` costs dynamic casts that a static binary pays for
/// at every start (measured: a third of a `start` command's instructions).
func output(_ text: some StringProtocol, newline: Bool = true) { writeAll(1, newline ? text + "\n" : String(text)) }

func writeAll(_ fd: Int32, _ text: String) {
    // Nothing to do about a failing stdout or stderr but to stop writing to it.
    try? Files.writeAll(fd, Array(text.utf8), path: "fd \(fd)")
}
