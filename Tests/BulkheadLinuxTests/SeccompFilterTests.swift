// Compiling linux.seccomp with libseccomp: the program's return values, the flags, and errors
// that name the field. Nothing is loaded: a filter would confine the test process itself.

import BulkheadOCI
import FoundationEssentials
import Testing
@testable import BulkheadLinux

@Suite struct SeccompFilterTests {
    func seccomp(_ json: String) throws -> Seccomp {
        try JSONDecoder().decode(Seccomp.self, from: Data(json.utf8))
    }

    func compile(_ json: String) throws -> SeccompFilter {
        try SeccompFilter(seccomp(json))
    }

    /// The error `json` fails with, as the runtime prints it.
    func error(_ json: String) throws -> String {
        do {
            _ = try SeccompFilter(seccomp(json))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    /// The `k` of every BPF_RET|BPF_K instruction: what the filter can return.
    func returns(_ filter: SeccompFilter) -> Set<UInt32> {
        var values = Set<UInt32>()
        for i in 0..<filter.instructionCount {
            let bytes = filter.program[(i * 8)..<(i * 8 + 8)].map(UInt32.init)
            let code = bytes[0] | bytes[1] << 8
            if code == 0x06 { values.insert(bytes[4] | bytes[5] << 8 | bytes[6] << 16 | bytes[7] << 24) }
        }
        return values
    }

    /// The `k` of every instruction (the constants it compares with).
    func constants(_ filter: SeccompFilter) -> Set<UInt32> {
        Set((0..<filter.instructionCount).map { i in
            filter.program[(i * 8 + 4)..<(i * 8 + 8)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        })
    }

    @Test func denyOneSyscallWithErrnoRet() throws {
        let filter = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
            """)
        #expect(filter.program.count % 8 == 0 && filter.instructionCount > 4)
        #expect(filter.flags == 0)
        #expect(filter.listenerPath == nil)
        let rets = returns(filter)
        #expect(rets.contains(0x7fff_0000))  // SECCOMP_RET_ALLOW
        #expect(rets.contains(0x0005_0001))  // SECCOMP_RET_ERRNO | EPERM
    }

    @Test func everyActionAndItsData() throws {
        let filter = try compile("""
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["write"], "action": "SCMP_ACT_LOG"},
              {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"},
              {"names": ["syncfs"], "action": "SCMP_ACT_KILL_THREAD"},
              {"names": ["fsync"], "action": "SCMP_ACT_KILL"},
              {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
              {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 42},
              {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}
            ]}
            """)
        let rets = returns(filter)
        #expect(rets.contains(0x0005_0026))  // default: ERRNO(ENOSYS)
        #expect(rets.contains(0x7fff_0000))  // ALLOW
        #expect(rets.contains(0x7ffc_0000))  // LOG
        #expect(rets.contains(0x8000_0000))  // KILL_PROCESS
        #expect(rets.contains(0x0000_0000))  // KILL_THREAD
        #expect(rets.contains(0x0003_0000))  // TRAP
        #expect(rets.contains(0x7ff0_002a))  // TRACE(42)
        #expect(rets.contains(0x0005_0001))  // a rule's ERRNO without errnoRet: EPERM
    }

    @Test func ruleWithTheDefaultActionIsSkipped() throws {
        let plain = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)
        let redundant = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#)
        #expect(plain.program == redundant.program)
    }

    @Test func unknownSyscallNamesItsRule() throws {
        let message = try error("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_LOG"}, {"names": ["write"], "action": "SCMP_ACT_LOG"},
              {"names": ["close"], "action": "SCMP_ACT_LOG"}, {"names": ["open", "foo"], "action": "SCMP_ACT_LOG"}
            ]}
            """)
        #expect(message == #"config.json: linux.seccomp.syscalls[3].names: unknown syscall "foo""#)
    }

    @Test func unknownActions() throws {
        #expect(try error(#"{"defaultAction": "SCMP_ACT_MAYBE"}"#)
            .hasPrefix(#"config.json: linux.seccomp.defaultAction: unknown action "SCMP_ACT_MAYBE"; expected one of SCMP_ACT_KILL,"#))
        #expect(try error(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}"#)
            .hasPrefix(#"config.json: linux.seccomp.syscalls[0].action: unknown action "ALLOW""#))
    }

    @Test func architectures() throws {
        let native = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#)
        let multi = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
            """)
        #expect(constants(multi).contains(0x4000_0003))  // AUDIT_ARCH_I386
        #expect(!constants(native).contains(0x4000_0003))
        #expect(multi.instructionCount > native.instructionCount)
        #expect(try error(#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11"]}"#)
            .hasPrefix(#"config.json: linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_PDP11"; expected one of SCMP_ARCH_X86,"#))
        #expect(try error(#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}"#)
            .hasPrefix(#"config.json: linux.seccomp.architectures[0]: unknown architecture "x86_64""#))
    }

    @Test func everyOperator() throws {
        let ops = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT"]
        for op in ops {
            let filter = try compile("""
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 4294967295, "op": "\(op)"}]}]}
                """)
            #expect(constants(filter).contains(0xffff_ffff), "\(op)")
        }
        let masked = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}
            """)
        #expect(constants(masked).contains(2_114_060_288))  // the mask, ANDed into the argument
    }

    @Test func conditionsOnOneArgumentAreAlternatives() throws {
        // socket(AF_INET) or socket(AF_INET6): two conditions on arg 0, which libseccomp cannot AND.
        let filter = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}]}
            """)
        #expect(constants(filter).isSuperset(of: [2, 10]))
    }

    @Test func badConditions() throws {
        #expect(try error("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}
            """).hasPrefix(#"config.json: linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_ABOUT"; expected one of SCMP_CMP_NE,"#))
        #expect(try error("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 2, "op": "SCMP_CMP_EQ"}]}]}
            """) == "config.json: linux.seccomp.syscalls[0].args[0].index: a syscall has arguments 0 to 5, got 6")
    }

    @Test func flags() throws {
        let logged = try compile(#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]}"#)
        #expect(logged.flags == SeccompFilter.flagLog | SeccompFilter.flagSpecAllow)
        #expect(try error(#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"]}"#)
            .hasPrefix(#"config.json: linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FAST""#))
        #expect(try error(#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#)
            == "config.json: linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule (it changes how notifications wait)")
    }

    @Test func notifyNeedsAListenerAndAsksForOne() throws {
        let filter = try compile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
            """)
        #expect(filter.flags & SeccompFilter.flagNewListener != 0)
        #expect(filter.listenerPath == "/run/agent.sock")
        #expect(filter.listenerMetadata == "m")
        #expect(returns(filter).contains(0x7fc0_0000))  // SECCOMP_RET_USER_NOTIF
        #expect(try error(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#)
            == "config.json: linux.seccomp.listenerPath: expected the path of the seccomp agent's socket: SCMP_ACT_NOTIFY is used")
    }

    @Test func dockerSizedAllowListFitsTheKernelLimit() throws {
        let names = SeccompTestProfiles.busyboxAllowList.map { "\"\($0)\"" }.joined(separator: ", ")
        let filter = try compile(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [\#(names)], "action": "SCMP_ACT_ALLOW"}]}"#)
        #expect(filter.instructionCount <= SeccompFilter.maxInstructions)
        #expect(returns(filter) == [0x7fff_0000, 0x0005_0001, 0x0000_0000])  // allow, EPERM, kill (bad arch)
    }

    @Test func whatThisBuildSupports() {
        #expect(SeccompFilter.supportedActions().contains("SCMP_ACT_ERRNO"))
        #expect(SeccompFilter.supportedArchitectures().contains("SCMP_ARCH_X86_64"))
        #expect(SeccompFilter.supportedFlags().contains("SECCOMP_FILTER_FLAG_TSYNC"))
        #expect(Set(SeccompFilter.supportedFlags()).isSubset(of: SeccompFilter.knownFlags.map(\.name)))
    }
}

enum SeccompTestProfiles {
    /// The syscalls of Docker's default profile that libseccomp 2.5 knows (its unconditional allow-list).
    static let busyboxAllowList = [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
        "chown", "chown32", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep", "clone", "clone3",
        "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
        "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve",
        "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark",
        "fchdir", "fchmod", "fchmodat", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr",
        "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
        "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid",
        "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
        "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list", "getrusage", "getsid",
        "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getxattr",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
        "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
        "io_uring_enter", "io_uring_register", "io_uring_setup", "kill", "lchown", "lgetxattr", "link", "linkat",
        "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise",
        "membarrier", "memfd_create", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
        "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
        "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "open", "openat", "openat2",
        "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
        "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
        "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom",
        "recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
        "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity",
        "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
        "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
        "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid", "setgroups",
        "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid", "setreuid", "setrlimit",
        "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setxattr",
        "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socket",
        "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
        "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
        "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork",
        "vmsplice", "wait4", "waitid", "write", "writev", "arch_prctl", "personality",
    ]
}
