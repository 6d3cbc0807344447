import BulkheadLinux
import BulkheadOCI
import CBulkhead
import FoundationEssentials
import Glibc

/// The runtime spec's hooks: programs run at points of the lifecycle with the container's state
/// on stdin. prestart, createRuntime and poststart, poststop run in the runtime's namespaces;
/// createContainer and startContainer in the container's.
struct HookRunner {
    enum Kind: String {
        case prestart, createRuntime, createContainer, startContainer, poststart, poststop
    }

    /// Namespaces a container-namespace hook joins: the container's, by /proc/PID/ns.
    struct Namespaces {
        var pid: Int32
        var types: [String]
    }

    /// Runs every hook of `kind` in order; the first failure (non-zero exit, a signal, a timeout,
    /// a program that cannot start) is an error naming the hook.
    static func run(_ hooks: [Hook]?, _ kind: Kind, state: State, in namespaces: Namespaces? = nil) throws(RuntimeError) {
        guard let hooks, !hooks.isEmpty else { return }
        let input: [UInt8]
        do {
            input = Array(try JSONEncoder().encode(state))
        } catch {
            throw RuntimeError("hooks: cannot encode the state: \(error)")
        }
        for (index, hook) in hooks.enumerated() {
            let name = "\(kind.rawValue) hook [\(index)] \(hook.path)"
            let status = try runOne(hook, input: input, in: namespaces, name: name)
            if status != 0 {
                throw RuntimeError("\(name) failed: \(describe(status))")
            }
        }
    }

    /// Runs every hook and logs failures instead of failing: a failed poststart or poststop hook
    /// changes neither the outcome of the operation nor whether the hooks after it run (the
    /// spec's rule).
    static func runReportingFailures(_ hooks: [Hook]?, _ kind: Kind, state: State, warn: (String) -> Void) {
        for hook in hooks ?? [] {
            do {
                try run([hook], kind, state: state)
            } catch {
                warn("\(error)")
            }
        }
    }

    static func describe(_ status: Int32) -> String {
        switch status {
        case -1: return "timed out and was killed"
        case 126: return "could not enter the container's namespaces (exit status 126)"
        case 127: return "could not be executed (exit status 127)"
        case 128...: return "killed by signal \(status - 128)"
        default: return "exit status \(status)"
        }
    }

    /// Exit status of one hook (128+signal when killed, -1 on timeout).
    private static func runOne(_ hook: Hook, input: [UInt8], in namespaces: Namespaces?, name: String) throws(RuntimeError) -> Int32 {
        var pipeFds: [Int32] = [-1, -1]
        guard pipe(&pipeFds) == 0 else { throw RuntimeError("\(name): \(SystemError("pipe"))") }
        _ = bh_set_cloexec(pipeFds[1], 1)
        let args = (hook.args?.isEmpty == false ? hook.args! : [hook.path])
        let cArgs = args.map { strdup($0) } + [nil]
        let cEnv = (hook.env ?? []).map { strdup($0) } + [nil]
        defer {
            for a in cArgs { free(a) }
            for e in cEnv { free(e) }
        }

        let pid: pid_t
        if let namespaces {
            var fds: [Int32] = []
            var types: [Int32] = []
            defer { for fd in fds { close(fd) } }
            for type in NamespaceKind.joinOrder where namespaces.types.contains(type) {
                guard let flag = NamespaceKind.cloneFlags[type] else { continue }
                let path = NamespaceKind.procPath(type, pid: namespaces.pid)
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 { close(pipeFds[0]); close(pipeFds[1]); throw RuntimeError("\(name): \(SystemError("open", path: path))") }
                fds.append(fd)
                types.append(flag)
            }
            pid = bh_spawn_in_namespaces(fds, types, Int32(fds.count), hook.path, cArgs, cEnv, pipeFds[0])
        } else {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, pipeFds[0], 0)
            var spawned: pid_t = 0
            let r = posix_spawn(&spawned, hook.path, &actions, nil, cArgs, cEnv)
            pid = r == 0 ? spawned : -1
            if r != 0 { errno = r }
        }
        close(pipeFds[0])
        if pid < 0 {
            let error = SystemError("start", path: hook.path)
            close(pipeFds[1])
            throw RuntimeError("\(name): \(error)")
        }
        // The state, then EOF, however large it is; a hook that exits without reading it (EPIPE)
        // or stops reading until its timeout must not stop or kill us.
        let deadline = hook.timeout.map { monotonicSeconds() + Double($0) }
        writeState(input, to: pipeFds[1], child: pid, deadline: deadline)
        close(pipeFds[1])
        let remaining = deadline.map { max(0, Int(($0 - monotonicSeconds()).rounded(.up))) }
        return wait(pid, timeoutSeconds: remaining.map { max($0, 1) })
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Writes all of `bytes` to the hook's stdin, in pieces as the pipe drains, until the hook
    /// exits or the deadline passes. SIGPIPE is ignored meanwhile: a hook that exits first gives
    /// EPIPE, not our death. (Ignored only here: the hook was spawned with the default.)
    private static func writeState(_ bytes: [UInt8], to fd: Int32, child: pid_t, deadline: Double?) {
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        _ = bh_fcntl_setfl(fd, bh_fcntl_getfl(fd) | O_NONBLOCK)
        let pidfd = bh_pidfd_open(child)
        defer { if pidfd >= 0 { close(pidfd) } }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            guard n < 0 && errno == EAGAIN else { return }
            var fds = [pollfd(fd: fd, events: Int16(POLLOUT), revents: 0), pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            let wait = deadline.map { Int32(clamping: Int(max(0, ($0 - monotonicSeconds()) * 1000))) } ?? -1
            if retryingEINTR({ poll(&fds, pidfd >= 0 ? 2 : 1, wait) }) <= 0 { return }
            if pidfd >= 0 && fds[1].revents != 0 { return }
        }
    }

    /// Waits for our child, killing it when the timeout passes (then -1).
    private static func wait(_ pid: pid_t, timeoutSeconds: Int?) -> Int32 {
        var status: Int32 = 0
        guard let timeoutSeconds, timeoutSeconds > 0 else {
            _ = retryingEINTR { waitpid(pid, &status, 0) }
            return ContainerRuntime.shellStatus(status)
        }
        let pidfd = bh_pidfd_open(pid)
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        let ready = pidfd >= 0 ? retryingEINTR { poll(&p, 1, Int32(clamping: timeoutSeconds * 1000)) } : 1
        if pidfd >= 0 { close(pidfd) }
        if ready == 0 {
            Glibc.kill(pid, SIGKILL)
            _ = retryingEINTR { waitpid(pid, &status, 0) }
            return -1
        }
        _ = retryingEINTR { waitpid(pid, &status, 0) }
        return ContainerRuntime.shellStatus(status)
    }
}
