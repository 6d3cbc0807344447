import BulkheadLinux
import BulkheadOCI
import CBulkhead
import Glibc

/// The process `exec` runs: a whole one (runc's `--process FILE`), or config.json's process
/// adjusted by runc's flags. The adjustment runs inside `exec`, on the config.json it reads
/// anyway, so the bundle's config is read and decoded once.
public enum ExecProcess {
    case given(Process)
    case configured((inout Process) throws(RuntimeError) -> Void)
}

/// What `exec` takes: runc's `exec` flags, already turned into a process.
public struct ExecRequest {
    public var id: String
    public var process: ExecProcess
    public var detach = false
    public var pidFile: String?
    public var consoleSocket: String?
    public var preserveFds: Int32 = 0

    public init(id: String, process: ExecProcess, detach: Bool = false, pidFile: String? = nil,
                consoleSocket: String? = nil, preserveFds: Int32 = 0) {
        self.id = id
        self.process = process
        self.detach = detach
        self.pidFile = pidFile
        self.consoleSocket = consoleSocket
        self.preserveFds = preserveFds
    }
}

extension ContainerRuntime {
    /// Runs another process in a running container: its namespaces, cgroup and seccomp filter.
    /// Detached, returns 0 once it runs; else waits for it and returns its exit status.
    public func exec(_ request: ExecRequest) throws(RuntimeError) -> Int32 {
        let id = request.id
        let record: ContainerRecord
        let spec: Spec
        do {
            let lock = try store.lock(id)
            defer { withExtendedLifetime(lock) {} }
            let (current, status) = try current(id)
            guard let current, status == .running || status == .created else {
                throw RuntimeError("cannot exec in container \"\(id)\": it is \(status.rawValue)")
            }
            record = current
            do { spec = try Spec.load(bundle: record.bundle) } catch { throw RuntimeError("exec: \(error)") }
        }
        let process: Process
        switch request.process {
        case .given(let given):
            process = given
        case .configured(let adjust):
            // config.json's process is what `exec` builds on, as in runc.
            guard var configured = spec.process else {
                throw RuntimeError("exec: config.json of \(record.bundle) has no process")
            }
            try adjust(&configured)
            process = configured
        }
        if process.terminal == true && request.detach && request.consoleSocket == nil {
            throw RuntimeError("exec: --tty with --detach needs a --console-socket to receive the terminal")
        }
        let plan = try ContainerPlan(exec: process, join: try namespacesToJoin(record.pid),
                                     seccomp: spec.linux?.seccomp, preserveFds: request.preserveFds)
        let cgroup = try cgroup(of: record)

        let session = request.detach ? nil : try ForegroundSession()
        var spawnRequest = CreateRequest(id: id, bundle: record.bundle, pidFile: request.pidFile,
                                         consoleSocket: request.consoleSocket, noNewKeyring: true,
                                         preserveFds: request.preserveFds)
        spawnRequest.terminalSocket = session?.childTerminalSocket
        var quiet = spec
        quiet.hooks = nil
        let pid = try spawn(plan: plan, spec: quiet, bundle: record.bundle, request: spawnRequest, cgroup: cgroup,
                            waitForStart: false)
        if let pidFile = request.pidFile {
            do {
                try writePidFile(pidFile, pid: pid)
            } catch {
                Glibc.kill(pid, SIGKILL)
                throw error
            }
        }
        guard let session else { return 0 }
        let terminal = plan.terminal && request.consoleSocket == nil ? session.receiveTerminal() : -1
        defer { if terminal >= 0 { close(terminal) } }
        return session.wait(for: pid, terminal: terminal)
    }

    /// The container's namespaces that differ from ours, user first: joining one we are already
    /// in fails (EINVAL for a user namespace), and is pointless for the others.
    func namespacesToJoin(_ pid: Int32) throws(RuntimeError) -> [(type: Int32, path: String)] {
        var join: [(type: Int32, path: String)] = []
        let ownPid = getpid()
        for type in NamespaceKind.joinOrder {
            var mine = stat(), theirs = stat()
            let path = NamespaceKind.procPath(type, pid: pid)
            guard stat(path, &theirs) == 0 else {
                if errno == ENOENT && type == "time" { continue }
                throw RuntimeError("exec: \(SystemError("stat", path: path))")
            }
            if stat(NamespaceKind.procPath(type, pid: ownPid), &mine) == 0 && mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev {
                continue
            }
            join.append((NamespaceKind.cloneFlags[type]!, path))
        }
        return join
    }
}
