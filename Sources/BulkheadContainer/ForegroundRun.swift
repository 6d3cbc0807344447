import BulkheadLinux
import BulkheadOCI
import CBulkhead
import Glibc

extension ContainerRuntime {
    /// `run`: create and start; in the foreground, forward signals to the container (and its
    /// terminal to ours, when config.json asks for one and no --console-socket is given), wait for
    /// it and delete it (unless `keep`), returning its exit status as a shell reports it
    /// (128+signal when killed). Detached, return 0 once it runs.
    public func run(_ request: CreateRequest, detach: Bool, keep: Bool = false) throws(RuntimeError) -> Int32 {
        if detach {
            let created = try create(request, lock: try store.reserve(request.id))
            do {
                try start(created.record)
            } catch {
                try? delete(request.id, force: true)
                throw error
            }
            return 0
        }

        let session = try ForegroundSession()
        var request = request
        request.terminalSocket = session.childTerminalSocket
        let created = try create(request, lock: try store.reserve(request.id))
        // The child sent the pty master before it reported ready, if it made one.
        let terminal = request.consoleSocket == nil ? session.receiveTerminal() : -1
        defer { if terminal >= 0 { close(terminal) } }
        do {
            try start(created.record)
        } catch {
            try? delete(request.id, force: true)
            throw error
        }

        let status = session.wait(for: created.pid, terminal: terminal)
        if !keep { try delete(request.id, force: true) }
        return status
    }

    /// Writes `pid` to the --pid-file `path` (relative to the working directory), atomically.
    func writePidFile(_ path: String, pid: Int32) throws(RuntimeError) {
        do {
            try Files.writeAtomically(Files.absolute(path, relativeTo: Files.currentDirectory()), Array("\(pid)".utf8), mode: 0o644)
        } catch {
            throw RuntimeError("cannot write pid file: \(error)")
        }
    }


    /// Reaps every exited child; returns `pid`'s exit status once it is among them.
    static func reap(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        while true {
            let reaped = waitpid(-1, &status, WNOHANG)
            if reaped <= 0 { return nil }
            if reaped == pid {
                // The rest of our children (orphans) that already exited.
                while waitpid(-1, nil, WNOHANG) > 0 {}
                return shellStatus(status)
            }
        }
    }

    /// A wait status as a shell's exit code: the code, or 128 + the signal that killed it.
    public static func shellStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}

/// What a foreground `run` or `exec` holds while its process runs: it is a child subreaper (so
/// orphans of a container without its own pid namespace come to it and are reaped), every signal
/// it can catch is blocked and read from a signalfd (to be forwarded; SIGCHLD tells of the exit),
/// and a socket pair receives the process's pty when it gets a terminal and no --console-socket.
final class ForegroundSession {
    let signals: Int32
    private let terminalSockets: [Int32]
    var childTerminalSocket: Int32 { terminalSockets[1] }

    init() throws(RuntimeError) {
        LinuxProcess.becomeSubreaper()
        _ = bh_block_catchable_signals()
        signals = bh_signalfd_all_catchable()
        if signals < 0 {
            let error = SystemError("signalfd")
            _ = bh_unblock_signals()
            throw RuntimeError("\(error)")
        }
        var pair: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) != 0 {
            let error = SystemError("socketpair")
            close(signals)
            _ = bh_unblock_signals()
            throw RuntimeError("\(error)")
        }
        terminalSockets = pair
    }

    deinit {
        close(terminalSockets[0])
        close(terminalSockets[1])
        close(signals)
        _ = bh_unblock_signals()
    }

    /// The pty master the child sent, or -1 when it made no terminal (it sends before it reports
    /// ready, so nothing is waited for).
    func receiveTerminal() -> Int32 {
        _ = bh_fcntl_setfl(terminalSockets[0], bh_fcntl_getfl(terminalSockets[0]) | O_NONBLOCK)
        return bh_recv_fd(terminalSockets[0])
    }

    /// Waits for our child `pid` (proxying `terminal` when it is one), forwarding signals to it
    /// and reaping every other child; returns its exit status as a shell reports it.
    func wait(for pid: Int32, terminal: Int32) -> Int32 {
        if terminal >= 0 { return TerminalProxy(master: terminal).run(container: pid, signals: signals) }
        while true {
            if let status = ContainerRuntime.reap(pid) { return status }
            let signal = bh_read_signal(signals)
            if signal > 0 && signal != SIGCHLD { Glibc.kill(pid, signal) }
        }
    }
}

/// Copies between our stdio and the container's pty while it runs: keystrokes in (stdin raw when
/// it is a terminal), output out, window size changes across, other signals to the container.
struct TerminalProxy {
    let master: Int32

    func run(container pid: Int32, signals: Int32) -> Int32 {
        var saved = termios()
        let stdinIsTerminal = isatty(0) == 1 && tcgetattr(0, &saved) == 0
        if stdinIsTerminal {
            var raw = saved
            cfmakeraw(&raw)
            tcsetattr(0, TCSANOW, &raw)
            copyWindowSize()
        }
        defer { if stdinIsTerminal { tcsetattr(0, TCSANOW, &saved) } }

        var stdinOpen = true
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: master, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stdinOpen ? 0 : -1, events: Int16(POLLIN), revents: 0)]
            if retryingEINTR({ poll(&fds, 3, -1) }) < 0 { break }
            if fds[1].revents != 0 && !copy(from: master, to: 1, &buffer) {
                // The pty closed: every process holding it is gone; wait for the exit status.
                break
            }
            if fds[2].revents != 0 && !copy(from: 0, to: master, &buffer) { stdinOpen = false }
            if fds[0].revents != 0 {
                let signal = bh_read_signal(signals)
                if signal == SIGWINCH { copyWindowSize() }
                else if signal == SIGCHLD { if let status = ContainerRuntime.reap(pid) { drain(&buffer); return status } }
                else if signal > 0 { Glibc.kill(pid, signal) }
            }
        }
        while true {
            if let status = ContainerRuntime.reap(pid) { return status }
            let signal = bh_read_signal(signals)
            if signal > 0 && signal != SIGCHLD && signal != SIGWINCH { Glibc.kill(pid, signal) }
        }
    }

    /// Output still buffered in the pty after the process exited.
    func drain(_ buffer: inout [UInt8]) {
        _ = bh_fcntl_setfl(master, bh_fcntl_getfl(master) | O_NONBLOCK)
        while copy(from: master, to: 1, &buffer) {}
    }

    /// One read and its full write; false at end of input or error.
    func copy(from: Int32, to: Int32, _ buffer: inout [UInt8]) -> Bool {
        let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { return true }
        if n <= 0 { return false }
        return (try? Files.writeAll(to, Array(buffer[0..<n]), path: "fd \(to)")) != nil
    }

    func copyWindowSize() {
        var rows: UInt16 = 0, cols: UInt16 = 0
        if bh_tiocgwinsz(0, &rows, &cols) == 0 { _ = bh_tiocswinsz(master, rows, cols) }
    }
}
