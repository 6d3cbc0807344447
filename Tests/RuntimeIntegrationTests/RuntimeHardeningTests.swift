// Attacks that hit runc ("Hardening against what hit runc"), each attempted from inside a
// container started by bulkhead-runtime, and asserted to fail:
//  - CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe of a process that
//    exec'd `#!/proc/self/exe` (the runtime itself, run inside the container);
//  - CVE-2024-21626: host descriptors leaked into the container (and /proc/self/fd/N as cwd);
//  - a mount destination under a symlink pointing out of the rootfs;
//  - CVE-2025-31133: a /dev/null symlink in the image used to mask paths.
// Same conventions as the other integration tests: root only, a Sandbox per test whose cleanup
// checks that nothing is left.

import BulkheadOCI
import FoundationEssentials
import Glibc
import Testing

/// Runs `binary --root <sandbox root> args` (a copy of the runtime, for the binary-overwrite test).
private func hardeningRun(_ sandbox: Sandbox, binary: String, _ args: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
    try await sandbox.spawn([binary, "--root", sandbox.root] + args).wait(timeout: timeout)
}

/// True when both paths are the same inode (stat follows /proc magic links).
private func hardeningSameFile(_ a: String, _ b: String) -> Bool {
    var x = stat()
    var y = stat()
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino
}

/// Mount points of our (the host's) mount namespace.
private func hardeningHostMountPoints() -> [String] {
    lines(readText("/proc/self/mountinfo") ?? "").compactMap { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 ? String(fields[4]).replacing("\\040", with: " ") : nil
    }
}

/// Descriptor numbers of `pid`, and those that are directories.
private func hardeningDescriptors(_ pid: pid_t) -> (all: [String], directories: [String]) {
    let fds = directoryEntries("/proc/\(pid)/fd").sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
    let directories = fds.compactMap { fd -> String? in
        var st = stat()
        guard stat("/proc/\(pid)/fd/\(fd)", &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { return nil }
        return "\(fd) -> \(opsReadlink("/proc/\(pid)/fd/\(fd)") ?? "?")"
    }
    return (fds, directories)
}

/// True when `pid`'s cwd is inside its root: the cwd, looked up from the process's root by the
/// path the kernel reports, is the same inode (an escaped cwd is not reachable from the root).
private func hardeningCwdInsideRoot(_ pid: pid_t) -> (inside: Bool, cwd: String) {
    guard let cwd = opsReadlink("/proc/\(pid)/cwd") else { return (false, "?") }
    var actual = stat()
    var viaRoot = stat()
    guard stat("/proc/\(pid)/cwd", &actual) == 0, cwd.hasPrefix("/"), stat("/proc/\(pid)/root" + cwd, &viaRoot) == 0 else {
        return (false, cwd)
    }
    return (actual.st_dev == viaRoot.st_dev && actual.st_ino == viaRoot.st_ino, cwd)
}

/// For fds 3...15: `cd /proc/self/fd/N` must fail (no leaked directory to escape through).
private let hardeningEscapeScript =
    "for n in 3 4 5 6 7 8 9 10 11 12 13 14 15; do if cd /proc/self/fd/$n 2>/dev/null; then echo escape=$n:$(pwd); cd /; fi; done"

@Suite(
    "bulkhead-runtime hardening against runc's CVEs",
    .serialized,
    .enabled(if: isRoot, "needs root: creates namespaces, cgroups and mounts"),
    .enabled(if: haveBusybox, "needs /bin/busybox (busybox-static) for the container rootfs"),
    .enabled(if: haveRuntime, "needs the bulkhead-runtime binary next to the test bundle (swift build --build-tests)")
)
struct RuntimeHardeningTests {

    // MARK: (a) CVE-2019-5736

    /// The image's /bin/evil is `#!/proc/self/exe list`: when the runtime's exec child execs it,
    /// the kernel runs the runtime's own binary (its /proc/self/exe) inside the container, as
    /// `list`, which reads /run/bulkhead/*/state.json from the container's filesystem: a FIFO
    /// there holds it. The container's pid 1 finds the process, opens /proc/<pid>/exe, kills it
    /// and, once the runtime has exited, reopens the descriptor through /proc/self/fd/3 for writing.
    /// The runtime under attack is a private copy, so a successful attack damages only the copy.
    @Test("CVE-2019-5736: a container cannot reach and overwrite the runtime binary via /proc/<pid>/exe")
    func runtimeBinaryCannotBeOverwritten() async throws {
        let sandbox = try Sandbox("cve5736")
        defer { sandbox.cleanup() }
        let binary = sandbox.directory + "/bulkhead-runtime-copy"
        let original = try #require(readBytes(runtimeBinary), "cannot read \(runtimeBinary)")
        try writeFile(binary, original, mode: 0o755)
        let logDirectory = sandbox.directory + "/attack"
        try makeDirectory(logDirectory, mode: 0o777)
        let log = logDirectory + "/attack.log"

        let attack = """
            log=/log/attack.log
            echo start > $log
            found=
            i=0
            while [ -z "$found" ] && [ $i -lt 10000 ]; do
              for p in /proc/[0-9]*; do
                if [ -r $p/exe ] && ! [ $p/exe -ef /bin/busybox ]; then found=$p; break; fi
              done
              i=$((i+1))
              [ -z "$found" ] && usleep 2000
            done
            if [ -z "$found" ]; then
              echo not-found >> $log
            else
              echo "found $found exe=$(readlink $found/exe)" >> $log
              (
                exec 3< $found/exe || exit 1
                echo "opened fd3=$(readlink /proc/self/fd/3)" >> $log
                kill -9 ${found#/proc/}
                j=0
                while [ $j -lt 100 ]; do
                  if echo PWNED-BY-CONTAINER >> /proc/self/fd/3; then echo WROTE >> $log; break; fi
                  j=$((j+1)); usleep 100000
                done
              ) 2>> $log
              echo "attack-status=$?" >> $log
              kill -9 ${found#/proc/} 2>/dev/null
            fi
            echo done >> $log
            exec sleep 600
            """
        let bundle = try sandbox.makeBundle(args: ["sh", "/attack.sh"]) { spec in
            spec.mounts?.append(Mount(destination: "/log", type: "bind", source: logDirectory, options: ["rbind", "rw"]))
        }
        try writeFile(bundle.rootfs + "/attack.sh", attack, mode: 0o755)
        try writeFile(bundle.rootfs + "/bin/evil", "#!/proc/self/exe list\n", mode: 0o755)
        if symlink("busybox", bundle.rootfs + "/bin/usleep") != 0 && errno != EEXIST { throw TestError("symlink usleep: errno \(errno)") }
        for directory in ["/run", "/run/bulkhead", "/run/bulkhead/trap"] { try makeDirectory(bundle.rootfs + directory) }
        guard mkfifo(bundle.rootfs + "/run/bulkhead/trap/state.json", 0o644) == 0 else { throw TestError("mkfifo: errno \(errno)") }

        let id = sandbox.newID("cve5736")
        let run = try await hardeningRun(sandbox, binary: binary, ["run", "--detach", "--bundle", bundle.path, id])
        try #require(run.status == 0, "\(run)")
        let state = try #require(try await sandbox.state(id).0)
        #expect(state.status == "running")

        // The trigger: exec the image's /bin/evil (it returns once the attacker killed it).
        var exec: CommandResult?
        do {
            exec = try await hardeningRun(sandbox, binary: binary, ["exec", id, "/bin/evil"], timeout: .seconds(60))
        } catch {
            Issue.record("exec /bin/evil did not return: \(error)")
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline, !(readText(log) ?? "").contains("done"), isAlive(state.pid) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let attackLog = readText(log) ?? ""
        let context = "attack log:\n\(attackLog)\nexec: \(exec.map { "\($0)" } ?? "none")"
        let after = readBytes(binary) ?? []
        let unchanged = after == original  // (not inside #expect: it would print 28 MB of bytes)
        #expect(unchanged, "the container modified the runtime binary (\(original.count) -> \(after.count) bytes); \(context)")
        #expect(!attackLog.contains("WROTE"), "the container opened the runtime binary for writing; \(context)")
        #expect(!attackLog.contains("exe=\(binary)"), "a process in the container's pid namespace runs the runtime's binary from the host; \(context)")

        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    // MARK: (b) CVE-2024-21626

    @Test("CVE-2024-21626: container and exec'd processes hold only fds 0-2 (plus preserved ones), no host directory; cd /proc/self/fd/N fails")
    func noLeakedDescriptors() async throws {
        let sandbox = try Sandbox("cve21626")
        defer { sandbox.cleanup() }
        let probe = "ls /proc/$$/fd; \(hardeningEscapeScript); echo done"

        // The container's init, in the foreground, without and with a preserved descriptor.
        let foreground = try sandbox.makeBundle("fg", args: ["sh", "-c", probe])
        let plain = try await sandbox.run(["run", "--bundle", foreground.path, sandbox.newID("fg")])
        #expect(plain.status == 0, "\(plain)")
        #expect(lines(plain.stdout) == ["0", "1", "2", "done"], "\(plain)")
        let pipe = try makePipe()
        defer { close(pipe.read) }
        let preserved: CommandResult
        do {
            defer { close(pipe.write) }
            preserved = try await sandbox.run(["run", "--preserve-fds", "1", "--bundle", foreground.path, sandbox.newID("fgp")],
                                              extra: [FdMapping(from: pipe.write, to: 3)])
        }
        #expect(preserved.status == 0, "\(preserved)")
        #expect(lines(preserved.stdout) == ["0", "1", "2", "3", "done"], "\(preserved)")

        // A running container, seen from the host: exactly 0, 1, 2, none a directory, cwd in the rootfs.
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"])
        let id = sandbox.newID("cve21626")
        let state = try await opsStartDetached(sandbox, bundle, id)
        let initFds = hardeningDescriptors(state.pid)
        #expect(initFds.all == ["0", "1", "2"], "container init descriptors: \(initFds.all.map { "\($0) -> \(opsReadlink("/proc/\(state.pid)/fd/\($0)") ?? "?")" })")
        #expect(initFds.directories.isEmpty, "\(initFds.directories)")
        let initCwd = hardeningCwdInsideRoot(state.pid)
        #expect(initCwd.inside && initCwd.cwd == "/", "container init cwd \(initCwd)")
        #expect(hardeningSameFile("/proc/\(state.pid)/root", bundle.rootfs), "the container's root is not its rootfs")

        // exec'd processes: foreground, with a preserved descriptor, detached.
        let exec = try await sandbox.run(["exec", id, "sh", "-c", probe])
        #expect(exec.status == 0, "\(exec)")
        #expect(lines(exec.stdout) == ["0", "1", "2", "done"], "\(exec)")
        let execPipe = try makePipe()
        defer { close(execPipe.read) }
        let execPreserved: CommandResult
        do {
            defer { close(execPipe.write) }
            execPreserved = try await sandbox.run(["exec", "--preserve-fds", "1", id, "sh", "-c", probe],
                                                  extra: [FdMapping(from: execPipe.write, to: 3)])
        }
        #expect(execPreserved.status == 0, "\(execPreserved)")
        #expect(lines(execPreserved.stdout) == ["0", "1", "2", "3", "done"], "\(execPreserved)")
        let pidFile = sandbox.directory + "/exec.pid"
        let detached = try await sandbox.run(["exec", "--detach", "--pid-file", pidFile, id, "sleep", "300"])
        try #require(detached.status == 0, "\(detached)")
        let execPid = try #require(readText(pidFile).flatMap { pid_t($0.trimmed) })
        sandbox.track(pid: execPid)
        let execFds = hardeningDescriptors(execPid)
        #expect(execFds.all == ["0", "1", "2"], "exec'd process descriptors: \(execFds.all.map { "\($0) -> \(opsReadlink("/proc/\(execPid)/fd/\($0)") ?? "?")" })")
        #expect(execFds.directories.isEmpty, "\(execFds.directories)")
        let execCwd = hardeningCwdInsideRoot(execPid)
        #expect(execCwd.inside && execCwd.cwd == "/", "exec'd process cwd \(execCwd)")
        kill(execPid, SIGKILL)
        reapIfChild(execPid, timeoutMs: 5000)

        // Every executable visible in the container's pid namespace is the image's.
        let exes = try await sandbox.run(["exec", id, "sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done"])
        #expect(exes.status == 0, "\(exes)")
        #expect(lines(exes.stdout).allSatisfy { $0 == "/bin/busybox" }, "\(exes)")

        // exec --cwd /proc/self/fd/N: refused, or a cwd inside the rootfs.
        for n in 3...9 {
            let cwdPidFile = sandbox.directory + "/cwd\(n).pid"
            let cwdExec = try await sandbox.run(["exec", "--detach", "--pid-file", cwdPidFile, "--cwd", "/proc/self/fd/\(n)", id, "sleep", "300"])
            guard cwdExec.status == 0, let pid = readText(cwdPidFile).flatMap({ pid_t($0.trimmed) }) else { continue }
            sandbox.track(pid: pid)
            let cwd = hardeningCwdInsideRoot(pid)
            #expect(cwd.inside, "exec --cwd /proc/self/fd/\(n) escaped to \(cwd.cwd)")
            kill(pid, SIGKILL)
            reapIfChild(pid, timeoutMs: 5000)
        }
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    @Test("CVE-2024-21626: process.cwd /proc/self/fd/N is refused or stays inside the rootfs", arguments: Array(3...9))
    func cwdThroughProcSelfFd(n: Int) async throws {
        let sandbox = try Sandbox("cwdfd\(n)")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            spec.process?.cwd = "/proc/self/fd/\(n)"
        }
        let id = sandbox.newID("cwdfd\(n)")
        let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
        if run.status != 0 {
            #expect(!exists(sandbox.root + "/" + id), "a failed run left its state: \(run)")
            return
        }
        let state = try #require(try await sandbox.state(id).0)
        let cwd = hardeningCwdInsideRoot(state.pid)
        #expect(cwd.inside, "process.cwd /proc/self/fd/\(n) escaped to \(cwd.cwd)")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    // MARK: (c) mount destination through a symlink

    @Test("a bind mount destined under a symlink to a host directory lands in the rootfs or fails; the host directory gets nothing",
          arguments: ["absolute", "relative"])
    func mountDestinationSymlinkEscape(kind: String) async throws {
        let sandbox = try Sandbox("symesc")
        defer { sandbox.cleanup() }
        var template = Array("/tmp/bh-it-escape-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestError("mkdtemp: errno \(errno)") }
        let hostDirectory = String(cString: made)
        defer {
            for point in hardeningHostMountPoints().reversed() where point == hostDirectory || point.hasPrefix(hostDirectory + "/") {
                umount2(point, Int32(MNT_DETACH))
            }
            let devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)
            if let pid = try? spawnProcess(["/bin/rm", "-rf", "--one-file-system", hostDirectory], stdout: devnull, stderr: devnull) {
                _ = waitBlocking(pid)
            }
            close(devnull)
        }
        let source = sandbox.directory + "/mount-source"
        try makeDirectory(source)
        try writeFile(source + "/marker", "marker-content\n")
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "cat /evil/x/marker"]) { spec in
            spec.mounts?.append(Mount(destination: "/evil/x", type: "bind", source: source, options: ["rbind", "rw"]))
        }
        // /../../../../tmp/DIR, or ../../../../../../tmp/DIR from the rootfs (both reach the host's /tmp/DIR if followed on the host).
        let target = kind == "absolute" ? "/../../../.." + hostDirectory : "../../../../../.." + hostDirectory
        guard symlink(target, bundle.rootfs + "/evil") == 0 else { throw TestError("symlink: errno \(errno)") }

        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("symesc")])
        #expect(directoryEntries(hostDirectory).isEmpty, "the mount escaped the rootfs into \(hostDirectory): \(directoryEntries(hostDirectory)); \(result)")
        let hostMounts = hardeningHostMountPoints().filter { $0 == hostDirectory || $0.hasPrefix(hostDirectory + "/") }
        #expect(hostMounts.isEmpty, "mounts on the host under \(hostDirectory): \(hostMounts)")
        if result.status == 0 {
            #expect(lines(result.stdout) == ["marker-content"], "the mount did not land at /evil/x in the container: \(result)")
        }
        #expect(readText(source + "/marker") == "marker-content\n")
    }

    // MARK: (d) CVE-2025-31133

    @Test("CVE-2025-31133: without a /dev tmpfs, an image's /dev/null symlink is never what masks a path",
          arguments: ["/secret", "/proc/sys/kernel/core_pattern"])
    func devNullSymlinkIsNotUsedForMasking(target: String) async throws {
        let sandbox = try Sandbox("devnull")
        defer { sandbox.cleanup() }
        let corePattern = readText("/proc/sys/kernel/core_pattern")
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "head -c 200 /proc/timer_list; echo; echo end"]) { spec in
            spec.mounts = spec.mounts?.filter { $0.destination != "/dev" && !$0.destination.hasPrefix("/dev/") }
        }
        try writeFile(bundle.rootfs + "/secret", "TOP-SECRET\n")
        guard symlink(target, bundle.rootfs + "/dev/null") == 0 else { throw TestError("symlink: errno \(errno)") }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("devnull")])
        if result.status == 0 {
            #expect(lines(result.stdout) == ["end"], "the masked /proc/timer_list is not empty: \(result)")
        } else {
            #expect(result.stderr.contains("/dev/null"), "the error does not name /dev/null: \(result)")
        }
        #expect(!result.stdout.contains("TOP-SECRET"), "the mask is the symlink's target: \(result)")
        #expect(readText("/proc/sys/kernel/core_pattern") == corePattern)
        #expect(readText(bundle.rootfs + "/secret") == "TOP-SECRET\n")
    }
}
