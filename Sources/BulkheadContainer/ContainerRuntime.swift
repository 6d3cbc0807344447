import BulkheadLinux
import BulkheadOCI
import CBulkhead
import FoundationEssentials
import Glibc

/// Where a container's cgroup is, and which of its directories `create` made (those `delete`
/// removes).
public struct CgroupRecord: Codable, Sendable {
    public var path: String
    public var createdDirectories: [String]
    /// "directory controller" entries: controllers create enabled in cgroup.subtree_control.
    public var enabledControllers: [String]?
}

/// What `create` takes besides config.json: runc's `create` flags.
public struct CreateRequest: Sendable {
    public var id: String
    public var bundle: String
    public var pidFile: String?
    public var consoleSocket: String?
    public var noPivot = false
    public var noNewKeyring = false
    public var preserveFds: Int32 = 0
    /// A connected socket of our own that receives the terminal (a foreground `run`), used when
    /// config.json asks for a terminal and no --console-socket is given.
    var terminalSocket: Int32?

    public init(id: String, bundle: String, pidFile: String? = nil, consoleSocket: String? = nil,
                noPivot: Bool = false, noNewKeyring: Bool = false, preserveFds: Int32 = 0) {
        self.id = id
        self.bundle = bundle
        self.pidFile = pidFile
        self.consoleSocket = consoleSocket
        self.noPivot = noPivot
        self.noNewKeyring = noNewKeyring
        self.preserveFds = preserveFds
    }
}

/// A container's state as `state` and `list` show it: the spec's fields plus runc's extras.
public struct ContainerState: Codable, Sendable {
    public var ociVersion: String
    public var id: String
    public var pid: Int32
    public var status: ContainerStatus
    public var bundle: String
    public var rootfs: String
    public var created: String
    public var owner: String
    public var annotations: [String: String]?
}

/// The container engine: config.json in a bundle -> a process in its namespaces and cgroups,
/// and the lifecycle around it (create, start, state, kill, delete), as the runtime spec defines.
public struct ContainerRuntime {
    public let store: StateStore
    /// Where warnings go (failed poststart and poststop hooks): the command line's log.
    public var warn: (String) -> Void = { _ in }

    public init(root: String) {
        store = StateStore(root: root)
    }

    // MARK: create

    /// Builds the container and leaves its process waiting for `start`. On failure nothing is
    /// left behind: no process, cgroup, mount (they die with the child's mount namespace) or
    /// state directory. Returns the container's pid.
    @discardableResult
    public func create(_ request: CreateRequest) throws(RuntimeError) -> Int32 {
        try create(request, lock: store.reserve(request.id)).pid
    }

    /// The container process, when it is this process's child (as `run` needs).
    struct Created {
        var pid: Int32
        var record: ContainerRecord
    }

    func create(_ request: CreateRequest, lock: ContainerLock) throws(RuntimeError) -> Created {
        let id = request.id
        var cleanup: [() -> Void] = [{ try? store.remove(id) }]
        func undo() { for step in cleanup.reversed() { step() } }

        do throws(RuntimeError) {
            let bundle = Files.absolute(request.bundle, relativeTo: Files.currentDirectory())
            let spec: Spec
            do {
                spec = try Spec.load(bundle: bundle)
                try spec.validate(forCreate: true)
            } catch {
                throw RuntimeError("\(error)")
            }
            if spec.process?.terminal == true && request.consoleSocket == nil && request.terminalSocket == nil {
                throw RuntimeError("config.json: process.terminal is true: a --console-socket is required to receive the terminal")
            }
            if spec.process?.terminal != true && request.consoleSocket != nil {
                throw RuntimeError("--console-socket given but config.json: process.terminal is false")
            }

            // The cgroup first: the child is placed in it before it creates anything.
            let hierarchies = try cgroupHierarchies()
            var cgroup: Cgroup?
            var resources = spec.linux?.resources ?? Resources()
            resources.devices = ContainerPlan.deviceRules(for: spec)
            do {
                var made = try Cgroup(cgroupsPath: spec.linux?.cgroupsPath, containerID: id, hierarchies: hierarchies)
                try made.create(resources: resources)
                cgroup = made
            } catch {
                // A user without a delegated cgroup runs containers without one, as runc does
                // rootless, as long as config.json asks for no limit.
                let denied = error.errno == EACCES || error.errno == EPERM || error.errno == EROFS
                guard getuid() != 0, denied, Self.asksForNoLimits(spec.linux?.resources) else {
                    throw RuntimeError("cgroup: \(error)")
                }
                warn("cgroup: \(error); running without a cgroup (rootless, no limits asked)")
            }
            if let createdCgroup = cgroup { cleanup.append { _ = try? createdCgroup.remove() } }

            let plan = try ContainerPlan(spec: spec, bundle: bundle,
                                         options: .init(noPivot: request.noPivot, preserveFds: request.preserveFds),
                                         cgroup: cgroup)
            for warning in plan.warnings { warn(warning) }
            if plan.hostMountNamespace, let rootfs = plan.rootfs {
                cleanup.append { try? MountTable.unmountAll(under: rootfs) }
            }

            // The container process opens the fifo for writing after it became its configured
            // user (or root of its user namespace): writable by others, readable by root only, as
            // runc makes it.
            if mkfifo(store.fifoPath(id), 0o622) != 0 || chmod(store.fifoPath(id), 0o622) != 0 {
                throw RuntimeError("\(SystemError("mkfifo", path: store.fifoPath(id)))")
            }
            let pid = try spawn(plan: plan, spec: spec, bundle: bundle, request: request, cgroup: cgroup)

            guard let stat = LinuxProcess.stat(pid) else {
                throw RuntimeError("container process \(pid) exited during create")
            }
            let record = ContainerRecord(
                id: id, bundle: bundle, rootfs: plan.rootfs ?? "", pid: pid, startTime: stat.startTime,
                created: Timestamp.now(), owner: Self.userName(getuid()), annotations: spec.annotations,
                cgroup: CgroupRecord(path: cgroup?.path ?? "", createdDirectories: cgroup?.createdDirectories ?? [],
                                     enabledControllers: cgroup?.enabledControllers),
                hooks: spec.hooks, namespaces: spec.linux?.namespaces?.map(\.type),
                hostMounts: plan.hostMountNamespace ? true : nil)
            try store.write(record)
            if let pidFile = request.pidFile { try writePidFile(pidFile, pid: pid) }
            return Created(pid: pid, record: record)
        } catch {
            undo()
            throw error
        }
    }

    func cgroupHierarchies() throws(RuntimeError) -> CgroupHierarchies {
        do {
            return try CgroupHierarchies.detect()
        } catch {
            throw RuntimeError("cgroup: \(error)")
        }
    }

    /// Clones the child, answers its requests (cgroup placement, id maps) and waits until it
    /// is built and blocked on the exec fifo. Returns the container process's pid.
    func spawn(plan: ContainerPlan, spec: Spec, bundle: String, request: CreateRequest,
               cgroup: Cgroup?, waitForStart: Bool = true) throws(RuntimeError) -> Int32 {
        let id = request.id
        var pair: [Int32] = [0, 0]
        if socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) != 0 {
            throw RuntimeError("\(SystemError("socketpair"))")
        }
        let (parentEnd, childEnd) = (pair[0], pair[1])
        defer { close(parentEnd) }
        var childFds: [Int32] = [childEnd]
        defer { for fd in childFds { close(fd) } }

        // Descriptors the child uses must not sit where preserved fds go (3 ..< 3+n).
        let minimumFd = 3 + request.preserveFds
        func lift(_ fd: Int32) -> Int32 {
            if fd >= minimumFd { return fd }
            let moved = fcntl(fd, F_DUPFD_CLOEXEC, minimumFd)
            close(fd)
            return moved
        }
        let syncFd = lift(childEnd)
        childFds[0] = syncFd

        var dirfd: Int32 = -1
        if waitForStart {
            dirfd = lift(open(store.directory(id), BH_O_PATH | O_DIRECTORY | O_CLOEXEC))
            if dirfd < 0 { throw RuntimeError("\(SystemError("open", path: store.directory(id)))") }
            childFds.append(dirfd)
        }

        var consoleFd: Int32 = -1
        if plan.terminal, request.consoleSocket == nil, let socket = request.terminalSocket {
            consoleFd = lift(fcntl(socket, F_DUPFD_CLOEXEC, 0))
            childFds.append(consoleFd)
        } else if let socketPath = request.consoleSocket {
            do { consoleFd = lift(try UnixSocket.connect(socketPath)) } catch { throw RuntimeError("--console-socket: \(error)") }
            childFds.append(consoleFd)
        }
        var joinFds: [Int32] = []
        for ns in plan.joinNamespaces {
            let fd = open(ns.path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError("config.json: linux.namespaces: \(SystemError("open", path: ns.path))") }
            joinFds.append(lift(fd))
            childFds.append(joinFds.last!)
        }

        // The seccomp agent's socket is a host path: connect here, the child cannot see it.
        var listenerFd: Int32 = -1
        var listenerState: [String] = []
        if let filter = plan.seccomp, let path = filter.listenerPath {
            do { listenerFd = lift(try UnixSocket.connect(path)) } catch {
                throw RuntimeError("config.json: linux.seccomp.listenerPath: \(error)")
            }
            childFds.append(listenerFd)
            listenerState = SeccompNotifyState.payload(id: id, bundle: bundle, annotations: spec.annotations,
                                                       metadata: filter.listenerMetadata)
        }
        let hooks = spec.hooks
        let createHooks = [hooks?.prestart, hooks?.createRuntime, hooks?.createContainer].contains { !($0 ?? []).isEmpty }
        let cplan = CPlan(plan, syncFd: syncFd, fifoDirfd: dirfd, consoleFd: consoleFd, joinFds: joinFds,
                          newKeyring: !request.noNewKeyring, createHooks: createHooks,
                          seccompListenerFd: listenerFd, seccompState: listenerState)
        var cPlanValue = cplan.plan
        // The program starts through the exec shim, so that the runtime's binary is never the
        // /proc/self/exe of a process in the container (CVE-2019-5736). Where there is no shim
        // for this architecture, the child execs the program directly.
        let shim = bh_exec_shim_fd()
        if shim >= 0 {
            cPlanValue.exec_shim_fd = lift(shim)
            childFds.append(cPlanValue.exec_shim_fd)
        }
        let stage1 = bh_spawn_container(&cPlanValue)
        if stage1 < 0 { throw RuntimeError("\(SystemError("clone"))") }
        var stage1Reaped = false
        var containerPid: Int32 = 0
        let killChildren = {
            Glibc.kill(stage1, SIGKILL)
            if !stage1Reaped { var status: Int32 = 0; _ = retryingEINTR { waitpid(stage1, &status, 0) } }
            if containerPid > 0 {
                Glibc.kill(containerPid, SIGKILL)
                var status: Int32 = 0
                _ = retryingEINTR { waitpid(containerPid, &status, 0) }
            }
        }
        // The child holds its own copies now.
        for fd in childFds { close(fd) }
        childFds = []

        do throws(RuntimeError) {
            do {
                try cgroup?.addProcess(stage1)
            } catch {
                throw RuntimeError("cgroup: \(error)")
            }
            try send(parentEnd, BH_MSG_GO)
            // Stage 1 reports the container's pid and exits; stage 2 may speak first.
            func awaitContainerPid() throws(RuntimeError) {
                while containerPid == 0 {
                    let next = try receive(parentEnd)
                    if next.type == Int32(BH_MSG_ERROR.rawValue) { throw childError(next) }
                    guard next.type == Int32(BH_MSG_PID.rawValue) else {
                        throw RuntimeError("container init: unexpected message \(next.type)")
                    }
                    containerPid = Int32(next.value)
                }
                if !stage1Reaped {
                    var status: Int32 = 0
                    _ = retryingEINTR { waitpid(stage1, &status, 0) }
                    stage1Reaped = true
                }
            }
            while true {
                let message = try receive(parentEnd)
                switch bh_msg_type(UInt32(message.type)) {
                case BH_MSG_USERMAP:
                    try writeIDMaps(pid: stage1, plan: plan)
                    try send(parentEnd, BH_MSG_USERMAP_DONE)
                case BH_MSG_PID:
                    containerPid = Int32(message.value)
                    try awaitContainerPid()
                case BH_MSG_HOOKS:
                    try awaitContainerPid()
                    // "created", as crun and the conformance suite have it: the container exists
                    // and its process waits; only the root is not pivoted yet.
                    let state = State(id: id, status: .created, pid: containerPid, bundle: bundle, annotations: spec.annotations)
                    try HookRunner.run(hooks?.prestart, .prestart, state: state)
                    try HookRunner.run(hooks?.createRuntime, .createRuntime, state: state)
                    try HookRunner.run(hooks?.createContainer, .createContainer, state: state,
                                       in: .init(pid: containerPid, types: spec.linux?.namespaces?.map(\.type) ?? []))
                    try send(parentEnd, BH_MSG_HOOKS_DONE)
                case BH_MSG_READY:
                    try awaitContainerPid()
                    return containerPid
                case BH_MSG_ERROR:
                    throw childError(message)
                default:
                    throw RuntimeError("container init: unexpected message \(message.type)")
                }
            }
        } catch {
            killChildren()
            throw error
        }
    }

    /// The child's report of what failed, with its errno.
    private func childError(_ message: bh_msg) -> RuntimeError {
        let text = withUnsafeBytes(of: message.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return RuntimeError("container init: \(text): \(errnoText(message.err))")
    }

    private func send(_ fd: Int32, _ type: bh_msg_type) throws(RuntimeError) {
        var message = bh_msg()
        message.type = Int32(type.rawValue)
        let n = withUnsafeBytes(of: &message) { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n != MemoryLayout<bh_msg>.size { throw RuntimeError("container init exited early") }
    }

    private func receive(_ fd: Int32) throws(RuntimeError) -> bh_msg {
        var message = bh_msg()
        let n = withUnsafeMutableBytes(of: &message) { buffer in
            var r: Int
            repeat { r = recv(fd, buffer.baseAddress, buffer.count, 0) } while r < 0 && errno == EINTR
            return r
        }
        if n != MemoryLayout<bh_msg>.size { throw RuntimeError("container init exited before it was ready") }
        return message
    }

    /// Writes the new user namespace's id maps. Root writes them directly. A user may map only
    /// its own ids itself (after denying setgroups); other ranges go through the setuid helpers
    /// newuidmap/newgidmap (package uidmap), which check /etc/subuid and /etc/subgid.
    private func writeIDMaps(pid: Int32, plan: ContainerPlan) throws(RuntimeError) {
        func text(_ mappings: [IDMapping]) -> String {
            mappings.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
        }
        let (uids, gids) = plan.userMappings
        if getuid() != 0 {
            for (mappings, helper, field) in [(uids, "newuidmap", "uidMappings"), (gids, "newgidmap", "gidMappings")] {
                let own = helper == "newuidmap" ? getuid() : getgid()
                let onlySelf = mappings.count == 1 && mappings[0].hostID == own && mappings[0].size == 1
                if onlySelf && helper == "newgidmap" {
                    do { try Files.write("/proc/\(pid)/setgroups", "deny") } catch {
                        throw RuntimeError("config.json: linux.gidMappings: \(error)")
                    }
                }
                if onlySelf {
                    do { try Files.write("/proc/\(pid)/\(helper == "newuidmap" ? "uid_map" : "gid_map")", text(mappings)) } catch {
                        throw RuntimeError("config.json: linux.\(field): \(error)")
                    }
                    continue
                }
                let argv = [helper, "\(pid)"] + mappings.flatMap { ["\($0.containerID)", "\($0.hostID)", "\($0.size)"] }
                do {
                    _ = try Subprocess.output(argv)
                } catch {
                    throw RuntimeError("config.json: linux.\(field): \(helper) refused the mapping (\(error)); a user may map its own id, or ranges /etc/sub\(helper == "newuidmap" ? "uid" : "gid") grants it through \(helper) (package uidmap)")
                }
            }
            return
        }
        do {
            try Files.write("/proc/\(pid)/uid_map", text(uids))
            try Files.write("/proc/\(pid)/gid_map", text(gids))
        } catch {
            throw RuntimeError("config.json: linux.uidMappings/gidMappings: \(error)")
        }
    }

    // MARK: start, state, kill, delete

    /// Lets the created container's process exec the user's program.
    public func start(_ id: String) throws(RuntimeError) {
        let lock = try store.lock(id)
        defer { withExtendedLifetime(lock) {} }
        let (record, status) = try current(id)
        guard status == .created, let record else {
            throw RuntimeError("cannot start container \"\(id)\": it is \(status.rawValue), not created")
        }
        try start(record)
    }

    /// startContainer hooks, the user's program, poststart hooks.
    func start(_ record: ContainerRecord) throws(RuntimeError) {
        do {
            try HookRunner.run(record.hooks?.startContainer, .startContainer, state: state(of: record, .created),
                               in: .init(pid: record.pid, types: record.namespaces ?? []))
        } catch {
            // The spec: a failed startContainer hook stops the container; delete follows.
            try? LinuxProcess.signal(record.pid, startTime: record.startTime, SIGKILL)
            throw error
        }
        try releaseFromFifo(record)
        HookRunner.runReportingFailures(record.hooks?.poststart, .poststart, state: state(of: record, .running), warn: warn)
    }

    func state(of record: ContainerRecord, _ status: ContainerStatus) -> State {
        State(id: record.id, status: status, pid: record.pid, bundle: record.bundle, annotations: record.annotations)
    }

    /// Opens the exec fifo for reading: the container's blocked open completes, it writes a byte
    /// and execs. Waits for that byte or for the process to die.
    func releaseFromFifo(_ record: ContainerRecord) throws(RuntimeError) {
        let path = store.fifoPath(record.id)
        let fifo = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fifo < 0 { throw RuntimeError("cannot start container \"\(record.id)\": \(SystemError("open", path: path))") }
        defer { close(fifo) }
        let pidfd = bh_pidfd_open(record.pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        var fds = [pollfd(fd: fifo, events: Int16(POLLIN), revents: 0), pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
        while true {
            let r = retryingEINTR { poll(&fds, pidfd >= 0 ? 2 : 1, 1000) }
            if r < 0 { throw RuntimeError("\(SystemError("poll", path: path))") }
            if fds[0].revents & Int16(POLLIN) != 0 {
                var byte: UInt8 = 0
                if read(fifo, &byte, 1) == 1 { break }
            }
            if (pidfd >= 0 && fds[1].revents != 0) || !LinuxProcess.isRunning(record.pid, startTime: record.startTime) {
                throw RuntimeError("cannot start container \"\(record.id)\": its process exited before start")
            }
        }
        unlink(path)
    }

    /// The record and the live status: running while the process lives, created until the
    /// fifo is consumed, stopped once it exited; creating before the record is written.
    func current(_ id: String) throws(RuntimeError) -> (ContainerRecord?, ContainerStatus) {
        guard let record = try store.read(id) else { return (nil, .creating) }
        guard LinuxProcess.isRunning(record.pid, startTime: record.startTime) else { return (record, .stopped) }
        if Files.exists(store.fifoPath(id)) { return (record, .created) }
        if let cgroup = try? cgroup(of: record), cgroup.isFrozen() { return (record, .paused) }
        return (record, .running)
    }

    public func state(_ id: String) throws(RuntimeError) -> ContainerState {
        try StateStore.validate(id: id)
        guard Files.exists(store.directory(id)) else { throw RuntimeError("container \"\(id)\" does not exist") }
        let (record, status) = try current(id)
        guard let record else {
            return ContainerState(ociVersion: Spec.version, id: id, pid: 0, status: .creating, bundle: "", rootfs: "",
                                  created: "", owner: "", annotations: nil)
        }
        return ContainerState(ociVersion: Spec.version, id: id, pid: status == .stopped ? 0 : record.pid, status: status,
                              bundle: record.bundle, rootfs: record.rootfs, created: record.created, owner: record.owner,
                              annotations: record.annotations)
    }

    public func list() -> [ContainerState] {
        store.ids().compactMap { try? state($0) }
    }

    /// Sends `signal` to the container's process, or with `all` to every process in its cgroup.
    public func kill(_ id: String, signal: Int32, all: Bool = false) throws(RuntimeError) {
        let lock = try store.lock(id)
        defer { withExtendedLifetime(lock) {} }
        let (record, status) = try current(id)
        guard let record, status == .created || status == .running || status == .paused else {
            throw RuntimeError("cannot kill container \"\(id)\": it is \(status.rawValue)")
        }
        if all {
            do {
                guard let cgroup = try cgroup(of: record) else {
                    // No cgroup: the container's processes are its init's pid namespace; signal init.
                    try LinuxProcess.signal(record.pid, startTime: record.startTime, signal)
                    return
                }
                try cgroup.killAll(signal: signal)
            } catch {
                throw RuntimeError("kill --all: \(error)")
            }
            return
        }
        do {
            try LinuxProcess.signal(record.pid, startTime: record.startTime, signal)
        } catch {
            throw RuntimeError("cannot kill container \"\(id)\": \(error)")
        }
    }

    /// The container's cgroup; nil when it runs without one (rootless without delegation).
    func cgroup(of record: ContainerRecord) throws(RuntimeError) -> Cgroup? {
        guard !record.cgroup.path.isEmpty else { return nil }
        return Cgroup(path: record.cgroup.path, hierarchies: try cgroupHierarchies(),
                      createdDirectories: record.cgroup.createdDirectories,
                      enabledControllers: record.cgroup.enabledControllers ?? [])
    }

    /// The same, for operations that need one.
    func requiredCgroup(of record: ContainerRecord, for operation: String) throws(RuntimeError) -> Cgroup {
        guard let cgroup = try cgroup(of: record) else {
            throw RuntimeError("\(operation): container \"\(record.id)\" has no cgroup (it was created rootless without a delegated cgroup)")
        }
        return cgroup
    }

    /// True when `resources` sets no limit (device rules are enforced by the user namespace).
    static func asksForNoLimits(_ resources: Resources?) -> Bool {
        guard var r = resources else { return true }
        r.devices = nil
        return r == Resources()
    }

    /// Removes a stopped container (or, as runc does, a created one: its process never ran the
    /// user's program). `force` kills a running one first.
    public func delete(_ id: String, force: Bool = false) throws(RuntimeError) {
        // runc's answer to `delete --force` of a container that is not there: nothing to do.
        // Engines call it after a failed create.
        if force && !Files.exists(store.directory(id)) {
            try StateStore.validate(id: id)
            return
        }
        let lock = try store.lock(id)
        defer { withExtendedLifetime(lock) {} }
        let (record, status) = try current(id)
        guard let record else {
            // Left by a create that died: nothing runs, remove the directory.
            try store.remove(id)
            return
        }
        if status == .running || status == .paused {
            guard force else {
                throw RuntimeError("cannot delete container \"\(id)\" that is not stopped: \(status.rawValue) (use --force)")
            }
        }
        let cgroup = try cgroup(of: record)
        if status != .stopped {
            try? cgroup?.killAll(signal: SIGKILL)
            try? LinuxProcess.signal(record.pid, startTime: record.startTime, SIGKILL)
            // Frozen tasks take their SIGKILL when thawed.
            if status == .paused { try? cgroup?.thaw() }
            _ = LinuxProcess.waitForExit(record.pid, startTime: record.startTime, timeoutMs: 10_000)
        } else {
            // The init exited; with a shared pid namespace its children may still run.
            if let pids = try? cgroup?.pids(), !pids.isEmpty { try? cgroup?.killAll(signal: SIGKILL) }
        }
        do {
            try cgroup?.remove()
        } catch {
            throw RuntimeError("cannot remove cgroup of \"\(id)\": \(error)")
        }
        if record.hostMounts == true, !record.rootfs.isEmpty {
            do { try MountTable.unmountAll(under: record.rootfs) } catch {
                throw RuntimeError("cannot unmount what container \"\(id)\" mounted under \(record.rootfs): \(error)")
            }
        }
        try store.remove(id)
        HookRunner.runReportingFailures(record.hooks?.poststop, .poststop, state: state(of: record, .stopped), warn: warn)
    }

    /// Pids of every process in the container's cgroup.
    public func pids(_ id: String) throws(RuntimeError) -> [Int32] {
        try StateStore.validate(id: id)
        guard let record = try store.read(id) else { throw RuntimeError("container \"\(id)\" does not exist") }
        do {
            guard let cgroup = try cgroup(of: record) else { return [record.pid] }
            return try cgroup.pids().sorted()
        } catch {
            throw RuntimeError("\(error)")
        }
    }

    /// The name of `uid` from /etc/passwd. Not getpwuid: in a static binary it would dlopen NSS.
    static func userName(_ uid: uid_t) -> String {
        let passwd = (try? Files.readString("/etc/passwd")) ?? ""
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 2, fields[2] == "\(uid)" { return String(fields[0]) }
        }
        return "\(uid)"
    }
}
