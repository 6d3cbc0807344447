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

    /// Runs the hooks and logs failures instead of failing: poststart and poststop failures do
    /// not change the outcome of the operation (the spec's rule).
    static func runReportingFailures(_ hooks: [Hook]?, _ kind: Kind, state: State, warn: (String) -> Void) {
        do {
            try run(hooks, kind, state: state)
        } catch {
            warn("\(error)")
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
            // User first: the others belong to it.
            let ordered = namespaces.types.sorted { a, _ in a == "user" }
            for type in ordered {
                guard let flag = NamespaceKind.cloneFlags[type] else { continue }
                let file = ["network": "net", "mount": "mnt"][type] ?? type
                let fd = open("/proc/\(namespaces.pid)/ns/\(file)", O_RDONLY | O_CLOEXEC)
                if fd < 0 { close(pipeFds[0]); close(pipeFds[1]); throw RuntimeError("\(name): \(SystemError("open", path: "/proc/\(namespaces.pid)/ns/\(file)"))") }
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
        // The state, then EOF. A hook that does not read it must not block us.
        _ = bh_fcntl_setfl(pipeFds[1], bh_fcntl_getfl(pipeFds[1]) | O_NONBLOCK)
        _ = input.withUnsafeBytes { Glibc.write(pipeFds[1], $0.baseAddress, $0.count) }
        close(pipeFds[1])
        return wait(pid, timeoutSeconds: hook.timeout)
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
