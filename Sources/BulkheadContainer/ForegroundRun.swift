import BulkheadLinux
import BulkheadOCI
import CBulkhead
import Glibc

extension ContainerRuntime {
    /// `run`: create and start; in the foreground, forward signals to the container, wait for it
    /// and delete it (unless `keep`), returning its exit status as a shell reports it (128+signal
    /// when killed). Detached, return 0 once it runs.
    public func run(_ request: CreateRequest, detach: Bool, keep: Bool = false) throws(RuntimeError) -> Int32 {
        if detach {
            let lock = try store.reserve(request.id)
            let created = try create(request, lock: lock)
            do {
                try releaseFromFifo(created.record)
            } catch {
                try? delete(request.id, force: true)
                throw error
            }
            return 0
        }

        // Orphans of the container (without its own pid namespace) come to us, and we reap them.
        LinuxProcess.becomeSubreaper()
        // Every signal we can catch goes to the container instead; SIGCHLD tells us it exited.
        _ = bh_block_catchable_signals()
        defer { _ = bh_unblock_signals() }
        let signals = bh_signalfd_all_catchable()
        if signals < 0 { throw RuntimeError("\(SystemError("signalfd"))") }
        defer { close(signals) }

        let created: Created
        do {
            let lock = try store.reserve(request.id)
            created = try create(request, lock: lock)
        }
        do {
            try releaseFromFifo(created.record)
        } catch {
            try? delete(request.id, force: true)
            throw error
        }

        let status = waitForContainer(pid: created.pid, signals: signals)
        if !keep { try delete(request.id, force: true) }
        return status
    }

    /// Waits for our child `pid`, forwarding signals to it and reaping every other child.
    func waitForContainer(pid: Int32, signals: Int32) -> Int32 {
        while true {
            // Reap first: the child may have exited before we started to listen.
            var status: Int32 = 0
            while true {
                let reaped = waitpid(-1, &status, WNOHANG)
                if reaped <= 0 { break }
                if reaped == pid {
                    // Drain the rest of our children (orphans) that already exited.
                    while waitpid(-1, nil, WNOHANG) > 0 {}
                    return Self.shellStatus(status)
                }
            }
            let signal = bh_read_signal(signals)
            if signal > 0 && signal != SIGCHLD { Glibc.kill(pid, signal) }
        }
    }

    /// A wait status as a shell's exit code: the code, or 128 + the signal that killed it.
    public static func shellStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}
