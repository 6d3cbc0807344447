import BulkheadLinux
import BulkheadOCI
import CBulkhead
import Glibc

/// The kinds of thread bulkhead-vmm runs, each confined by its own seccomp filter once setup is
/// over (as Firecracker does with its api, vmm and vcpu filters):
///
/// - `api`: serves the Firecracker API on the Unix socket. Confined after InstanceStart, so
///   everything before (reading the kernel, opening disks, /dev/kvm, building the VM) is setup.
/// - `vmm`: owns the VM's lifecycle after start: waits for the guest to stop, removes the API
///   socket and ends the process with the guest's status (with --no-api that is the main
///   thread); and the device event thread, which moves host input (TAP, vsock, stdin) into the
///   devices, as Firecracker's VMM thread does.
/// - `vcpu`: runs KVM_RUN and emulates the devices on its exits (serial, i8042, virtio-mmio and
///   virtio-blk I/O on the disk files opened during setup).
///
/// Each thread loads its filter itself with seccomp(2), without SECCOMP_FILTER_FLAG_TSYNC, after
/// PR_SET_NO_NEW_PRIVS; a filter is inherited by threads created later, so a thread confines
/// itself only after creating the threads it starts. A syscall outside the list kills the whole
/// process (SECCOMP_RET_KILL_PROCESS): a guest that took over a device model cannot go on.
///
/// A jailer mode can wrap this without changing it: before anything here runs, a jailer would
/// enter a new mount namespace with only the kernel, initrd, disks and /dev/kvm bind-mounted,
/// chroot (pivot_root) into it, join a cgroup with cpu/memory/pids limits, drop to an
/// unprivileged uid/gid and close every other descriptor, then exec bulkhead-vmm (Firecracker's
/// jailer does exactly that). The filters below need none of those syscalls, since setup (open,
/// socket, bind) happens before any thread is confined; the jailer only narrows what setup can
/// reach. `ThreadConfinement` is the place such a mode would join (a `Jail` value next to
/// `policy`), which is why the policy travels as a value rather than a global flag.
public enum VMMThreadKind: String, Sendable, CaseIterable {
    case api, vmm, vcpu
}

/// What the threads do about seccomp: `--no-seccomp` turns it off (for debugging, as in
/// Firecracker); `--seccomp-log` allows and logs (audit type=1326 in the kernel log) the
/// syscalls a filter would kill for, to find one missing from a list.
public enum SeccompPolicy: String, Sendable, Equatable {
    case kill, log, off
}

public enum ThreadConfinement {
    /// Every thread: memory allocation (malloc, the Swift runtime), locks, signal masks and
    /// returns, the clock (vDSO fallback), and the ends of a thread and of the process.
    static let runtime = [
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
        "futex", "sched_yield", "restart_syscall",
        "rt_sigprocmask", "rt_sigreturn",
        "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday",
        "getpid", "gettid", "getrandom",
        "exit", "exit_group",
        // Traps and aborts report through the thread's own signal (abort(3) raises SIGABRT).
        "tgkill", "rt_sigaction",
        // The log line (stderr or --log-path / the logger's file, opened during setup).
        "write",
    ]

    /// The syscalls each kind needs after setup (measured with `strace -f -c` over the
    /// bulkhead-vmm tests, then narrowed by reading the code of each thread).
    public static func allowList(_ kind: VMMThreadKind) -> [String] {
        switch kind {
        case .api:
            return runtime + [
                // The poll loop of UnixSocketHTTPServer: accept, read requests, send answers.
                "poll", "ppoll", "accept", "accept4", "read", "sendto", "close", "fcntl",
                // FlushMetrics appends to metrics_path (opened per flush) and PUT /logger may
                // open a new log file: both are API requests a running microVM still takes.
                "openat",
                // Pause: pthread_kill of the vCPU thread (tgkill above). SendCtrlAltDel: the
                // i8042 irqfd (write above).
            ]
        case .vmm:
            return runtime + [
                // The supervisor: waits for the guest to stop, removes the API socket, exits.
                "unlink", "unlinkat", "pause",
                // The device event loop (DeviceEventLoop): polls the TAPs, the vsock sockets and
                // stdin; moves frames, streams and console input in; accepts host connections on
                // the vsock listener (opened during setup) and closes finished ones.
                "poll", "ppoll", "read", "readv", "writev", "recvfrom", "recvmsg", "sendto", "sendmsg",
                "accept", "accept4", "close", "fcntl", "shutdown",
            ]
        case .vcpu:
            return runtime + [
                // virtio-blk on the disk files opened during setup; fsync for VIRTIO_BLK_T_FLUSH.
                "pread64", "pwrite64", "preadv", "pwritev", "fsync", "fdatasync",
                // The guest's transmit queues are served on this thread when it kicks them:
                // virtio-net writes frames to its TAP; virtio-vsock answers and forwards on Unix
                // stream sockets and connects guest-initiated streams to `<uds_path>_<port>`
                // (socket is limited to AF_UNIX below).
                "read", "readv", "writev", "sendto", "sendmsg", "recvfrom", "recvmsg",
                "connect", "shutdown", "close", "fcntl",
            ]
        }
    }

    /// Syscalls allowed only with certain arguments: the vCPU thread's ioctls are KVM_RUN, and
    /// KVM_GET_REGS to name the guest's rip when a run fails; nothing else on any descriptor
    /// (no KVM_CREATE_VM, no KVM_SET_USER_MEMORY_REGION, no terminal or socket ioctls).
    public static func argumentRules(_ kind: VMMThreadKind) -> [SeccompFilter.ArgumentRule] {
        switch kind {
        case .api: return []
        // Restoring the console terminal's settings on the way out (tcsetattr).
        case .vmm: return [.init("ioctl", argument: 1, values: [UInt64(TCSETS)])]
        case .vcpu: return [.init("ioctl", argument: 1, values: vcpuIoctls),
                            .init("socket", argument: 0, values: [UInt64(AF_UNIX)])]
        }
    }

    public static let vcpuIoctls = [UInt64(BH_KVM_RUN), UInt64(BH_KVM_GET_REGS)]

    /// The compiled filter of `kind` for `policy` (nil for `.off`).
    public static func filter(_ kind: VMMThreadKind, policy: SeccompPolicy) throws(ConfigError) -> SeccompFilter? {
        switch policy {
        case .off: return nil
        case .kill: return try SeccompFilter(allowing: allowList(kind), restricted: argumentRules(kind), defaultAction: "SCMP_ACT_KILL_PROCESS")
        case .log: return try SeccompFilter(allowing: allowList(kind), restricted: argumentRules(kind), defaultAction: "SCMP_ACT_LOG")
        }
    }

    /// Confines the calling thread as `kind`. Irreversible; threads created afterwards inherit it.
    public static func confineCurrentThread(_ kind: VMMThreadKind, policy: SeccompPolicy) throws(FirecrackerError) {
        do {
            guard let filter = try filter(kind, policy: policy) else { return }
            try filter.loadOnCurrentThread()
        } catch {
            throw FirecrackerError("Cannot install the seccomp filter of the \(kind.rawValue) thread: \(error)")
        }
    }
}
