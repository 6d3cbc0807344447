import Glibc

/// The monitor's log: Firecracker's levels, one line per event, to a file (`--log-path` or
/// PUT /logger) or to stderr. Not to stdout, which carries the guest's serial console.
public final class VMMLogger: @unchecked Sendable {
    public enum Level: Int, Comparable, Sendable {
        case off = 0, error, warning, info, debug, trace

        /// Firecracker's names, case-insensitive ("Warn" too).
        public init?(name: String) {
            switch name.lowercased() {
            case "off": self = .off
            case "error": self = .error
            case "warning", "warn": self = .warning
            case "info": self = .info
            case "debug": self = .debug
            case "trace": self = .trace
            default: return nil
            }
        }

        public var name: String { ["OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"][rawValue] }
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public private(set) var level: Level
    public let instanceID: String
    private var fd: Int32 = 2
    private let lock = ThreadLock()

    public init(instanceID: String, level: Level = .info) {
        self.instanceID = instanceID
        self.level = level
    }

    /// Sends lines to `path` (appended; a FIFO works too, as Firecracker users pass one).
    public func configure(path: String?, level: Level?) throws(FirecrackerError) {
        lock.lock()
        defer { lock.unlock() }
        if let level { self.level = level }
        guard let path else { return }
        let newFD = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o644)
        guard newFD >= 0 else {
            throw FirecrackerError("Failed to open the log file `log_path` \(path): \(String(cString: strerror(errno))).")
        }
        if fd != 2 { close(fd) }
        fd = newFD
    }

    /// True while lines go to stderr (no log file), so callers need not print errors twice.
    public var writesToStderr: Bool {
        lock.lock()
        defer { lock.unlock() }
        return fd == 2
    }

    public func log(_ level: Level, _ message: String) {
        guard level != .off, level <= self.level else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let line = "\(now.tv_sec).\(String(now.tv_nsec / 1000).leftPadded(6)) [\(instanceID):\(level.name)] \(message)\n"
        lock.lock()
        defer { lock.unlock() }
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    public func error(_ m: String) { log(.error, m) }
    public func warning(_ m: String) { log(.warning, m) }
    public func info(_ m: String) { log(.info, m) }
}

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
