import CBulkhead
import Glibc

/// Facts about a process read from /proc, and signals sent through a pidfd so that a recycled
/// pid is never signalled.
public enum LinuxProcess {
    /// Field 22 of /proc/PID/stat (start time in clock ticks since boot) and field 3 (state).
    /// Together with the pid it names one process for good: pids are recycled, start times are not.
    public static func stat(_ pid: Int32) -> (startTime: UInt64, state: Character)? {
        guard let bytes = try? Files.readBytes("/proc/\(pid)/stat"),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After "(comm)": state is field 3, start time field 22 (the 20th after the parenthesis).
        var field = 0
        var i = close + 1
        var state: Character?
        while i < bytes.count {
            while i < bytes.count && bytes[i] == 0x20 { i += 1 }
            let start = i
            while i < bytes.count && bytes[i] != 0x20 && bytes[i] != 0x0a { i += 1 }
            if start == i { break }
            if field == 0 { state = Character(Unicode.Scalar(bytes[start])) }
            if field == 19 {
                var value: UInt64 = 0
                for b in bytes[start..<i] {
                    guard b >= 0x30 && b <= 0x39 else { return nil }
                    value = value &* 10 &+ UInt64(b - 0x30)
                }
                return state.map { (value, $0) }
            }
            field += 1
        }
        return nil
    }

    /// True when `pid` is the process that started at `startTime` and has not exited (zombies
    /// have exited).
    public static func isRunning(_ pid: Int32, startTime: UInt64) -> Bool {
        guard let s = stat(pid) else { return false }
        return s.startTime == startTime && s.state != "Z" && s.state != "X"
    }

    /// Sends `signal` to the process `pid` started at `startTime`, race-free.
    public static func signal(_ pid: Int32, startTime: UInt64, _ signal: Int32) throws(SystemError) {
        let fd = bh_pidfd_open(pid)
        if fd < 0 { throw SystemError("pidfd_open", path: "pid \(pid)") }
        defer { Glibc.close(fd) }
        // The pidfd is ours now: if the start time still matches, it is the same process.
        guard isRunning(pid, startTime: startTime) else { throw SystemError("kill", path: "pid \(pid)", errno: ESRCH) }
        if bh_pidfd_send_signal(fd, signal) != 0 { throw SystemError("kill", path: "pid \(pid)") }
    }

    /// Waits until the process has exited (it need not be our child), up to `timeoutMs`.
    /// Returns false on timeout.
    public static func waitForExit(_ pid: Int32, startTime: UInt64, timeoutMs: Int32) -> Bool {
        let fd = bh_pidfd_open(pid)
        if fd < 0 { return true }
        defer { Glibc.close(fd) }
        if !isRunning(pid, startTime: startTime) { return true }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = retryingEINTR { poll(&p, 1, timeoutMs) }
        return r > 0
    }

    /// Becomes a child subreaper: orphans below us are reparented to us, and we reap them.
    public static func becomeSubreaper() {
        _ = bh_set_child_subreaper()
    }

    /// Highest capability number this kernel knows (read once).
    public static func lastCapability() -> Int32 { lastCapabilityNumber }

    private static let lastCapabilityNumber: Int32 = {
        if let text = try? Files.readString("/proc/sys/kernel/cap_last_cap"),
           let n = Int32(text.trimmingCharacters(in: " \n")) { return n }
        return 40
    }()
}

extension String {
    /// Trims the given characters from both ends (no Foundation here).
    public func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
