import BulkheadLinux
import CBulkhead
import Glibc

/// The plan laid out as the C child reads it: a struct bh_plan whose strings and arrays live in
/// malloc'd memory owned by this object. The clone copies the address space, so the child reads
/// the same pointers without allocating.
final class CPlan {
    private var allocations: [UnsafeMutableRawPointer] = []
    private(set) var plan = bh_plan()

    init(_ p: ContainerPlan, syncFd: Int32, fifoDirfd: Int32, consoleFd: Int32, joinFds: [Int32],
         newKeyring: Bool, createHooks: Bool = false, seccompListenerFd: Int32 = -1, seccompState: [String] = []) {
        plan.sync_fd = syncFd
        var fds = plan.join_fds, types = plan.join_types
        withUnsafeMutableBytes(of: &fds) { raw in
            for (i, fd) in joinFds.prefix(8).enumerated() { raw.storeBytes(of: fd, toByteOffset: i * 4, as: Int32.self) }
        }
        withUnsafeMutableBytes(of: &types) { raw in
            for i in 0..<min(joinFds.count, 8) {
                raw.storeBytes(of: p.joinNamespaces[i].type, toByteOffset: i * 4, as: Int32.self)
            }
        }
        plan.join_fds = fds
        plan.join_types = types
        plan.njoin = Int32(min(joinFds.count, 8))
        plan.new_user = p.newUser ? 1 : 0
        plan.unshare_flags = p.unshareFlags
        plan.new_cgroup = p.newCgroup ? 1 : 0
        plan.timens_offsets = string(p.timensOffsets)
        plan.rootfs = string(p.rootfs)
        plan.root_propagation = UInt64(p.rootPropagation)
        plan.rootfs_propagation = UInt64(p.rootfsPropagation)
        plan.no_pivot = p.noPivot ? 1 : 0
        plan.host_mount_ns = p.hostMountNamespace ? 1 : 0
        plan.readonly_root = p.readonlyRoot ? 1 : 0

        plan.ops = operations(p.steps)
        plan.nops = Int32(p.steps.count)
        plan.post_ops = operations(p.postSteps)
        plan.npost_ops = Int32(p.postSteps.count)

        let sysctls = array(of: bh_sysctl.self, count: p.sysctls.count)
        for (i, s) in p.sysctls.enumerated() {
            sysctls[i] = bh_sysctl(path: string(s.path), value: string(s.value))
        }
        plan.sysctls = UnsafePointer(sysctls)
        plan.nsysctls = Int32(p.sysctls.count)
        plan.hostname = string(p.hostname)
        plan.domainname = string(p.domainname)

        plan.argv = stringArray(p.args)
        // The same argv after two slots the child fills for the exec shim.
        let shimArgv = array(of: UnsafePointer<CChar>?.self, count: p.args.count + 3)
        for i in p.args.indices { shimArgv[i + 2] = plan.argv[i] }
        plan.shim_argv = UnsafeMutablePointer(shimArgv)
        plan.exec_shim_fd = -1
        plan.envp = stringArray(p.env)
        plan.path_env = string(p.pathEnv)
        plan.cwd = string(p.cwd)
        plan.uid = p.uid
        plan.gid = p.gid
        let groups = array(of: UInt32.self, count: p.groups.count)
        for (i, g) in p.groups.enumerated() { groups[i] = g }
        plan.groups = UnsafePointer(groups)
        plan.ngroups = Int32(p.groups.count)
        plan.set_groups = p.setGroups ? 1 : 0
        plan.umask = p.umask
        let rlimits = array(of: bh_rlimit.self, count: p.rlimits.count)
        for (i, r) in p.rlimits.enumerated() { rlimits[i] = bh_rlimit(resource: r.resource, soft: r.soft, hard: r.hard) }
        plan.rlimits = UnsafePointer(rlimits)
        plan.nrlimits = Int32(p.rlimits.count)
        plan.oom_score_adj_set = p.oomScoreAdj == nil ? 0 : 1
        plan.oom_score_adj = p.oomScoreAdj ?? 0
        if let caps = p.capabilities {
            plan.set_caps = 1
            plan.cap_bounding = caps.bounding
            plan.cap_effective = caps.effective
            plan.cap_permitted = caps.permitted
            plan.cap_inheritable = caps.inheritable
            plan.cap_ambient = caps.ambient
        }
        plan.last_cap = LinuxProcess.lastCapability()
        plan.no_new_privs = p.noNewPrivileges ? 1 : 0
        plan.terminal = p.terminal ? 1 : 0
        plan.console_fd = consoleFd
        plan.console_rows = p.consoleSize.rows
        plan.console_cols = p.consoleSize.cols
        plan.preserve_fds = p.preserveFds
        plan.fifo_dirfd = fifoDirfd
        plan.fifo_name = string("exec.fifo")
        plan.new_keyring = newKeyring ? 1 : 0
        plan.create_hooks = createHooks ? 1 : 0
        plan.exec_label_path = string(p.execLabel?.path)
        plan.exec_label = string(p.execLabel?.value)

        plan.seccomp_listener_fd = seccompListenerFd
        if let filter = p.seccomp {
            let program = array(of: UInt8.self, count: filter.program.count)
            filter.program.withUnsafeBytes { program.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: filter.program.count) }
            plan.seccomp_filter = UnsafeRawPointer(program).assumingMemoryBound(to: bh_sock_filter.self)
            plan.seccomp_len = Int32(filter.instructionCount)
            plan.seccomp_flags = filter.flags
            if seccompListenerFd >= 0, seccompState.count == 3 {
                plan.seccomp_state = (string(seccompState[0]), string(seccompState[1]), string(seccompState[2]))
            }
        }
    }

    deinit {
        for a in allocations { free(a) }
    }

    private func operations(_ steps: [ContainerPlan.Step]) -> UnsafePointer<bh_op> {
        let ops = array(of: bh_op.self, count: steps.count)
        for (i, step) in steps.enumerated() {
            var op = bh_op()
            op.kind = step.kind
            op.mode = step.mode
            op.flags = UInt64(step.flags)
            op.dev = step.device
            op.uid = step.uid
            op.gid = step.gid
            op.remount_flags = UInt32(truncatingIfNeeded: step.remountFlags)
            op.target_is_file = step.targetIsFile ? 1 : 0
            op.copy_up = step.copyUp ? 1 : 0
            op.source = string(step.source)
            op.target = string(step.target)
            op.fstype = string(step.fstype)
            op.data = string(step.data)
            ops[i] = op
        }
        return UnsafePointer(ops)
    }

    private func string(_ s: String?) -> UnsafePointer<CChar>? {
        guard let s, let copy = strdup(s) else { return nil }
        allocations.append(UnsafeMutableRawPointer(copy))
        return UnsafePointer(copy)
    }

    private func array<T>(of: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A NULL-terminated array of C strings, as execve takes.
    private func stringArray(_ strings: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let list = array(of: UnsafePointer<CChar>?.self, count: strings.count + 1)
        for (i, s) in strings.enumerated() { list[i] = string(s) }
        list[strings.count] = nil
        return UnsafePointer(list)
    }
}
