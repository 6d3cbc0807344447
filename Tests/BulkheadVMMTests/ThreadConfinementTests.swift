import BulkheadLinux
import CBulkhead
import Glibc
import Testing
@testable import BulkheadVMM

/// What no thread of the monitor may ever do once set up: run programs, debug other processes,
/// change mounts or credentials, load kernels or modules, open new sockets.
let forbiddenEverywhere = [
    "execve", "execveat", "ptrace", "mount", "umount2", "pivot_root", "chroot", "setns", "unshare",
    "clone3", "fork", "vfork", "setuid", "setgid", "kexec_load", "init_module", "finit_module",
    "bpf", "process_vm_writev", "bind", "listen", "open_by_handle_at",
]

/// Only the vCPU thread, which serves virtio-vsock's transmit queue, may open a stream to the
/// host's `<uds_path>_<port>`: socket (AF_UNIX only, an argument rule) and connect.
let vsockOnly = ["socket", "connect"]

@Suite("Seccomp filters of the monitor's threads")
struct ThreadConfinementFilterTests {
    @Test(arguments: VMMThreadKind.allCases)
    func noListAllowsWhatTheMonitorNeverDoesAndTheFilterCompilesItsList(kind: VMMThreadKind) throws {
        let list = ThreadConfinement.allowList(kind)
        for name in forbiddenEverywhere { #expect(!list.contains(name), "\(kind) allows \(name)") }
        if kind != .vcpu {
            for name in vsockOnly { #expect(!list.contains(name), "\(kind) allows \(name)") }
        }
        // The compiled program: every allowed syscall is compared with, no forbidden one is.
        let filter = try #require(try ThreadConfinement.filter(kind, policy: .kill))
        let compared = filter.comparedConstants
        for name in list {
            let number = try #require(SeccompFilter.syscallNumber(name), "\(name)")
            #expect(compared.contains(UInt32(number)), "\(kind): \(name) (\(number)) is not in the program")
        }
        for name in forbiddenEverywhere {
            let number = try #require(SeccompFilter.syscallNumber(name), "\(name)")
            #expect(!compared.contains(UInt32(number)), "\(kind): the program compares with \(name) (\(number))")
        }
        #expect(try ThreadConfinement.filter(kind, policy: .off) == nil)
        // ioctl is in the vCPU program (the two KVM request numbers) and the VMM one (TCSETS) only.
        let ioctl = UInt32(try #require(SeccompFilter.syscallNumber("ioctl")))
        #expect(compared.contains(ioctl) == (kind != .api))
        #expect(compared.contains(UInt32(truncatingIfNeeded: BH_KVM_RUN)) == (kind == .vcpu))
        #expect(compared.contains(UInt32(truncatingIfNeeded: BH_KVM_GET_REGS)) == (kind == .vcpu))
        #expect(!compared.contains(UInt32(truncatingIfNeeded: BH_KVM_CREATE_VM)))
    }

    @Test func eachThreadGetsOnlyWhatItsJobNeeds() {
        let api = Set(ThreadConfinement.allowList(.api))
        let vmm = Set(ThreadConfinement.allowList(.vmm))
        let vcpu = Set(ThreadConfinement.allowList(.vcpu))
        // Only the vCPU thread talks to KVM (KVM_RUN and KVM_GET_REGS only) and to the disks.
        for name in ["pread64", "pwrite64", "fsync"] {
            #expect(vcpu.contains(name) && !api.contains(name) && !vmm.contains(name), "\(name)")
        }
        for list in [api, vmm, vcpu] { #expect(!list.contains("ioctl")) }
        #expect(ThreadConfinement.argumentRules(.api).isEmpty)
        // The VMM thread's one ioctl: TCSETS, to give the console terminal its settings back.
        #expect(ThreadConfinement.argumentRules(.vmm) == [.init("ioctl", argument: 1, values: [UInt64(TCSETS)])])
        // The vCPU thread's sockets are Unix ones only (vsock's host side).
        #expect(ThreadConfinement.argumentRules(.vcpu) == [.init("ioctl", argument: 1, values: [UInt64(BH_KVM_RUN), UInt64(BH_KVM_GET_REGS)]),
                                                         .init("socket", argument: 0, values: [UInt64(AF_UNIX)])])
        #expect(!vcpu.contains("socket"))
        // Only the API thread opens a file (the metrics file). Connections are accepted by the API
        // thread (API clients) and the VMM's event thread (vsock host clients), never by a vCPU.
        #expect(api.contains("openat") && !vcpu.contains("openat") && !vmm.contains("openat"))
        for name in ["accept", "accept4", "poll"] {
            #expect(api.contains(name) && vmm.contains(name) && !vcpu.contains(name), "\(name)")
        }
        // Only the VMM thread removes the API socket at the end.
        #expect(vmm.contains("unlink") && !api.contains("unlink") && !vcpu.contains("unlink"))
    }

    /// A syscall outside the list kills the process: a forked child loads the API thread's
    /// filter and calls execve (prepared before fork; the child runs no Swift code that allocates).
    @Test func aForbiddenSyscallKillsTheProcess() throws {
        let filter = try #require(try ThreadConfinement.filter(.api, policy: .kill))
        let program = filter.program
        let path = strdup("/bin/true")!
        defer { free(path) }
        var argv: [UnsafeMutablePointer<CChar>?] = [path, nil]
        let pid = program.withUnsafeBytes { bytes -> pid_t in
            argv.withUnsafeMutableBufferPointer { args -> pid_t in
                let pid = fork()
                if pid == 0 {
                    if bh_seccomp_load_thread_filter(bytes.baseAddress, Int32(bytes.count / 8), 0) != 0 { _exit(2) }
                    execve(path, args.baseAddress!, environ)
                    _exit(3)  // execve returned: not killed
                }
                return pid
            }
        }
        #expect(pid > 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // Killed by SIGSYS (SECCOMP_RET_KILL_PROCESS), not exited.
        #expect(status & 0x7f == SIGSYS, "wait status \(status)")
    }
}

/// The Seccomp lines of /proc/<pid>/task/<tid>/status for every user-space thread of `pid`:
/// [tid: (mode, filters)] (2 = SECCOMP_MODE_FILTER).
func seccompStatus(of pid: pid_t) -> [String: (mode: String, filters: String)] {
    var result: [String: (String, String)] = [:]
    guard let dir = opendir("/proc/\(pid)/task") else { return [:] }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name.first?.isNumber == true,
              let bytes = try? readFile("/proc/\(pid)/task/\(name)/status") else { continue }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        func field(_ key: String) -> String {
            lines.first { $0.hasPrefix(key + ":") }.map { String($0.dropFirst(key.count + 1).filter { $0 != " " && $0 != "\t" }) } ?? "?"
        }
        // KVM starts a kernel worker in the VM's process (kvm-nx-lpage-recovery, a vhost_task):
        // it runs no user-space code, so it is not one of the monitor's threads.
        if field("Name").hasPrefix("kvm-") { continue }
        result[name] = (field("Seccomp"), field("Seccomp_filters"))
    }
    return result
}

@Suite("Seccomp in a running bulkhead-vmm",
       .enabled(if: vmmBinaryAvailable, "needs the bulkhead-vmm binary next to the test bundle (swift build --build-tests)"),
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guests"))
struct ThreadConfinementProcessTests {
    /// Boots the Ctrl-Alt-Del guest with the API up, reads every thread's seccomp status while the
    /// guest waits, then ends it through the API.
    /// `settled` says when the threads are as the test expects them: each thread confines itself
    /// when it starts, and on a loaded machine the VMM thread may not have run yet when the guest
    /// is already waiting (seen: one thread at Seccomp 0 while two parallel suites ran QEMU).
    func threadsOfARunningVMM(_ extra: [String], vcpus: Int = 1,
                              settled: ([String: (mode: String, filters: String)]) -> Bool = { _ in true })
        throws -> [String: (mode: String, filters: String)] {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try writeFile(directory + "/guest.elf", try buildGuest("ctrl_alt_del_guest.c"))
        try writeFile(directory + "/config.json", Array("""
            {"boot-source": {"kernel_image_path": "\(directory)/guest.elf"},
             "machine-config": {"vcpu_count": \(vcpus), "mem_size_mib": 32}}
            """.utf8))
        let vmm = try VMMProcess(["--api-sock", "SOCK", "--config-file", directory + "/config.json"] + extra, directory: directory)
        defer { if vmm.exitStatus == nil { kill(vmm.pid, SIGKILL); vmm.wait(seconds: 5) } }
        #expect(vmm.waitForSocket())
        let client = try APIClient(path: vmm.socketPath)
        var waited = 0
        while !vmm.stdout.contains("WAITING FOR CTRL-ALT-DEL") && waited < 6000 { usleep(10_000); waited += 1 }
        // A request after the filters are on still works (GET / and the state it reports).
        #expect(try client.request("GET", "/").body.contains(#""state":"Running""#))
        var threads = seccompStatus(of: vmm.pid)
        for _ in 0..<2000 where !settled(threads) {
            usleep(10_000)
            threads = seccompStatus(of: vmm.pid)
        }
        #expect(try client.request("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status == 204)
        #expect(vmm.wait(seconds: 120) == 0, "stderr: \(vmm.stderr)")
        return threads
    }

    @Test func everyThreadRunsUnderItsOwnFilter() throws {
        // The API (main) thread, the VMM thread, the device event thread (stdin for the
        // console) and the vCPU thread.
        let threads = try threadsOfARunningVMM([]) { $0.count == 4 && $0.values.allSatisfy { $0.mode == "2" } }
        #expect(threads.count == 4, "\(threads)")
        for (tid, status) in threads {
            #expect(status.mode == "2", "thread \(tid): Seccomp \(status.mode)")
            // One filter each: loaded by the thread itself, not inherited and stacked.
            #expect(status.filters == "1", "thread \(tid): Seccomp_filters \(status.filters)")
        }
    }

    @Test func eachVCPUThreadLoadsItsOwnFilter() throws {
        // Three vCPUs (the guest starts none of the APs, which wait in KVM_RUN): one thread each,
        // plus the API, VMM and device event threads; Ctrl-Alt-Del still ends them all and the process.
        let threads = try threadsOfARunningVMM([], vcpus: 3) { $0.count == 6 && $0.values.allSatisfy { $0.mode == "2" } }
        #expect(threads.count == 6, "\(threads)")
        for (tid, status) in threads {
            #expect(status.mode == "2" && status.filters == "1", "thread \(tid): \(status)")
        }
    }

    @Test func noSeccompLeavesTheThreadsUnfiltered() throws {
        let threads = try threadsOfARunningVMM(["--no-seccomp"]) { $0.count == 4 }
        #expect(threads.count == 4, "\(threads)")
        for (tid, status) in threads { #expect(status.mode == "0", "thread \(tid): Seccomp \(status.mode)") }
    }
}
