// Containers under seccomp filters, run by the bulkhead-runtime binary: a denied syscall fails
// with the configured errno, a killing action kills, argument conditions discriminate, LOG
// allows, a default-deny allow-list runs busybox, and a seccomp agent receives the notify fd.
// Needs root (namespaces, mounts, cgroups). Everything here is prefixed `seccomp` so it cannot
// collide with helpers of other files of this target.

import BulkheadOCI
import FoundationEssentials
import Glibc
import Testing

private let seccompIsRoot = getuid() == 0
private let seccompSkipReason: Comment = "needs root: the runtime creates namespaces, mounts and cgroups"

/// bulkhead-runtime beside the test bundle (`swift build --build-tests` builds both).
private func seccompRuntimePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    return String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)]) + "/bulkhead-runtime"
}

private struct SeccompRunResult {
    var status: Int32  // exit code, or 128 + signal
    var stdout: String
    var stderr: String
}

/// A running child with stdout and stderr going to files.
private struct SeccompProcess {
    var pid: pid_t
    var outPath: String
    var errPath: String

    /// Waits at most `timeout` seconds, then kills it (a hung container must not hang the suite).
    func wait(timeout: Double = 60) -> SeccompRunResult {
        var status: Int32 = 0
        var waited = 0.0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if waited > timeout {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(10_000)
            waited += 0.01
        }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return SeccompRunResult(status: code, stdout: seccompRead(outPath), stderr: seccompRead(errPath))
    }
}

private func seccompRead(_ path: String) -> String {
    guard let f = fopen(path, "r") else { return "" }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// posix_spawn of `argv`, stdin from /dev/null, stdout and stderr into files under `dir` (nil:
/// to /dev/null).
private func seccompSpawn(_ argv: [String], dir: String?) -> SeccompProcess {
    let out = dir.map { $0 + "/stdout" } ?? "/dev/null", err = dir.map { $0 + "/stderr" } ?? "/dev/null"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    var pid: pid_t = 0
    let rc = spawnRegistered(&pid) { posix_spawn(&$0, argv[0], &actions, nil, cArgs, environ) }
    precondition(rc == 0, "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))")
    return SeccompProcess(pid: pid, outPath: out, errPath: err)
}

/// A bundle with a busybox rootfs, removed (with the runtime's state directory) on deinit.
private final class SeccompBundle {
    static let applets = ["sh", "echo", "mkdir", "sync", "linux32", "linux64", "hostname", "id", "cat", "true"]
    let dir: String
    let id: String

    init(_ name: String) {
        id = "seccomp-\(name)-\(getpid())"
        dir = "/tmp/bulkhead-\(id)-\(UInt32.random(in: 0...UInt32.max))"
        for d in ["", "/rootfs", "/rootfs/bin", "/rootfs/proc", "/rootfs/dev", "/rootfs/sys", "/rootfs/tmp", "/state"] {
            mkdir(dir + d, 0o755)
        }
        let copied = seccompSpawn(["/bin/cp", "/bin/busybox", dir + "/rootfs/bin/busybox"], dir: dir).wait()
        precondition(copied.status == 0, "cp /bin/busybox: \(copied.stderr)")
        for applet in Self.applets { symlink("busybox", dir + "/rootfs/bin/" + applet) }
    }

    deinit {
        _ = seccompSpawn(["/bin/rm", "-rf", dir], dir: nil).wait()
    }

    /// Writes config.json: the default spec with `args`, a writable root and `seccomp` (JSON).
    func configure(args: [String], seccomp: String, noNewPrivileges: Bool = true) throws {
        var spec = Spec.defaultSpec(args: args)
        spec.process?.terminal = false
        spec.process?.noNewPrivileges = noNewPrivileges
        spec.root?.readonly = false
        spec.linux?.seccomp = try JSONDecoder().decode(Seccomp.self, from: Data(seccomp.utf8))
        let data = try JSONEncoder().encode(spec)
        let fd = open(dir + "/config.json", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func start() -> SeccompProcess {
        seccompSpawn([seccompRuntimePath(), "--root", dir + "/state", "run", "--bundle", dir, id], dir: dir)
    }

    func run() -> SeccompRunResult { start().wait() }
}

@Suite(.enabled(if: seccompIsRoot, seccompSkipReason))
struct SeccompTests {
    struct MissingRuntime: Error, CustomStringConvertible {
        var description: String { "\(seccompRuntimePath()) is missing: build it with `swift build --build-tests`" }
    }

    init() throws {
        if access(seccompRuntimePath(), X_OK) != 0 { throw MissingRuntime() }
    }

    @Test(arguments: [true, false])
    func deniedMkdirFailsWithEPERM(noNewPrivileges: Bool) throws {
        let bundle = SeccompBundle("mkdir-\(noNewPrivileges)")
        try bundle.configure(args: ["sh", "-c", "echo ok; mkdir /tmp/x; echo rc=$?"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
            """, noNewPrivileges: noNewPrivileges)
        let r = bundle.run()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ok\nrc=1\n")
        #expect(r.stderr.contains("mkdir: can't create directory '/tmp/x': Operation not permitted"), "\(r.stderr)")
        #expect(access(bundle.dir + "/rootfs/tmp/x", F_OK) != 0)
    }

    @Test(arguments: [true, false])
    func killProcessKillsWithSIGSYS(noNewPrivileges: Bool) throws {
        let bundle = SeccompBundle("kill-\(noNewPrivileges)")
        try bundle.configure(args: ["sh", "-c", "echo before; exec sync"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]}
            """, noNewPrivileges: noNewPrivileges)
        let r = bundle.run()
        #expect(r.status == 128 + SIGSYS, "\(r.stderr)")
        #expect(r.stdout == "before\n")
    }

    /// personality(PER_LINUX32) is denied, personality(PER_LINUX) is not: the rule looks at arg 0.
    @Test(arguments: [
        #"{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}"#,
        #"{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}"#,
        #"{"index": 0, "value": 4, "op": "SCMP_CMP_GE"}"#,
    ])
    func argumentConditionDiscriminates(condition: String) throws {
        let bundle = SeccompBundle("arg-\(UInt32.random(in: 0...UInt32.max))")
        try bundle.configure(args: ["sh", "-c", "linux64 echo linux64 ran; linux32 echo linux32 ran; echo done"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [\(condition)]}]}
            """)
        let r = bundle.run()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "linux64 ran\ndone\n")
        #expect(r.stderr.contains("Operation not permitted"), "\(r.stderr)")
    }

    @Test func logAllows() throws {
        let bundle = SeccompBundle("log")
        try bundle.configure(args: ["sh", "-c", "mkdir /tmp/logged && echo made"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}
            """)
        let r = bundle.run()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "made\n")
        #expect(access(bundle.dir + "/rootfs/tmp/logged", F_OK) == 0)
    }

    /// Docker's model: deny by default, allow a list. The runtime's own steps after the load
    /// (with no_new_privs false: setresuid, capset, the exec fifo...) pass too.
    @Test(arguments: [true, false])
    func defaultDenyAllowListRunsBusybox(noNewPrivileges: Bool) throws {
        let bundle = SeccompBundle("allowlist-\(noNewPrivileges)")
        let names = seccompAllowList.split(separator: " ").map { "\"\($0)\"" }.joined(separator: ",")
        try bundle.configure(args: ["sh", "-c", "echo ok; mkdir /tmp/d && echo made; hostname other || echo denied"], seccomp: """
            {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
             "syscalls": [{"names": [\(names)], "action": "SCMP_ACT_ALLOW"}]}
            """, noNewPrivileges: noNewPrivileges)
        let r = bundle.run()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "ok\nmade\ndenied\n")
        #expect(r.stderr.contains("Operation not permitted"), "\(r.stderr)")  // sethostname is not in the list
    }

    @Test func unknownSyscallIsAnErrorNamingTheField() throws {
        let bundle = SeccompBundle("unknown")
        try bundle.configure(args: ["true"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"},
             {"names": ["mkdir", "nosuchcall"], "action": "SCMP_ACT_ERRNO"}]}
            """)
        let r = bundle.run()
        #expect(r.status == 1)
        #expect(r.stderr.contains(#"config.json: linux.seccomp.syscalls[1].names: unknown syscall "nosuchcall""#), "\(r.stderr)")
    }

    @Test func unreachableListenerIsAnErrorNamingTheField() throws {
        let bundle = SeccompBundle("nolistener")
        try bundle.configure(args: ["true"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "\(bundle.dir)/no-agent.sock",
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
            """)
        let r = bundle.run()
        #expect(r.status == 1)
        #expect(r.stderr.contains("config.json: linux.seccomp.listenerPath: "), "\(r.stderr)")
    }

    /// The agent receives the notify fd with the containerProcessState, then closes it without
    /// answering: the container's notified mkdir fails with ENOSYS.
    @Test func notifySendsTheListenerToTheAgent() throws {
        let bundle = SeccompBundle("notify")
        let socketPath = bundle.dir + "/agent.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in socketPath.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0 && listen(listener, 1) == 0)
        try bundle.configure(args: ["sh", "-c", "echo before; mkdir /tmp/n; echo rc=$?"], seccomp: """
            {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "\(socketPath)", "listenerMetadata": "hello",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
            """)
        let process = bundle.start()

        var pollfd = Glibc.pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&pollfd, 1, 30_000) == 1 else {
            let r = process.wait()
            Issue.record("the runtime did not connect to the agent: \(r.stderr)")
            return
        }
        let connection = accept(listener, nil, nil)
        defer { close(connection) }
        let (payload, fd) = seccompReceiveFd(connection)
        #expect(fd >= 0)
        if fd >= 0 {
            var target = [CChar](repeating: 0, count: 256)
            let n = readlink("/proc/self/fd/\(fd)", &target, 255)
            #expect(String(decoding: target[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "anon_inode:seccomp notify")
            close(fd)
        }
        let r = process.wait()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "before\nrc=1\n")
        #expect(r.stderr.contains("Function not implemented"), "\(r.stderr)")

        struct Message: Decodable {
            struct State: Decodable { var id, status, bundle: String; var pid: Int }
            var fds: [String]
            var pid: Int
            var metadata: String
            var state: State
        }
        let message = try JSONDecoder().decode(Message.self, from: Data(payload.utf8))
        #expect(message.fds == ["seccompFd"])
        #expect(message.metadata == "hello")
        #expect(message.pid > 1 && message.state.pid == message.pid)
        #expect(message.state.id == bundle.id && message.state.bundle == bundle.dir)
    }
}

/// recvmsg of one SCM_RIGHTS descriptor and its payload (the cmsg layout of x86-64/aarch64:
/// a 16-byte header, then the int).
private func seccompReceiveFd(_ socket: Int32) -> (String, Int32) {
    var data = [UInt8](repeating: 0, count: 65536)
    var control = [UInt8](repeating: 0, count: 64)
    var received = 0
    data.withUnsafeMutableBytes { dataBytes in
        control.withUnsafeMutableBytes { controlBytes in
            var iov = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
            withUnsafeMutablePointer(to: &iov) { iovPointer in
                var msg = msghdr()
                msg.msg_iov = iovPointer
                msg.msg_iovlen = 1
                msg.msg_control = controlBytes.baseAddress
                msg.msg_controllen = controlBytes.count
                received = recvmsg(socket, &msg, Int32(MSG_CMSG_CLOEXEC))
            }
        }
    }
    guard received > 0 else { return ("", -1) }
    let level = control.withUnsafeBytes { $0.load(fromByteOffset: 8, as: Int32.self) }
    let type = control.withUnsafeBytes { $0.load(fromByteOffset: 12, as: Int32.self) }
    let fd = level == SOL_SOCKET && type == SCM_RIGHTS ? control.withUnsafeBytes { $0.load(fromByteOffset: 16, as: Int32.self) } : -1
    return (String(decoding: data[0..<received], as: UTF8.self), fd)
}

/// Docker's default profile's unconditional allow-list, as libseccomp 2.5 knows it.
private let seccompAllowList = """
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime \
    clock_getres clock_gettime clock_nanosleep clone clone3 close close_range connect copy_file_range creat dup \
    dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve \
    execveat exit exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod fchmodat fchown \
    fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstatfs fsync ftruncate \
    futex futex_waitv futimesat getcpu getcwd getdents getdents64 getegid geteuid getgid getgroups getitimer \
    getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid getrlimit \
    get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getxattr \
    inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents \
    io_pgetevents ioprio_get ioprio_set io_setup io_submit kill lchown lgetxattr link linkat listen listxattr \
    llistxattr lremovexattr lseek lsetxattr lstat madvise membarrier memfd_create mincore mkdir mkdirat mknod \
    mknodat mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend \
    mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep \
    newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free \
    pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pwrite64 pwritev \
    pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg recvmsg remap_file_pages removexattr \
    rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask \
    rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity \
    sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler \
    sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp \
    select semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid setgroups \
    setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list setsid \
    setsockopt set_thread_area set_tid_address setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack \
    signalfd signalfd4 socket socketpair splice stat statfs statx symlink symlinkat sync sync_file_range syncfs \
    sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_settime \
    timerfd_create timerfd_gettime timerfd_settime times tkill truncate umask uname unlink unlinkat utime \
    utimensat utimes vfork vmsplice wait4 waitid write writev arch_prctl personality
    """
