// Integration tests of bulkhead-runtime's hooks, exec, pause/resume, update, events, ps and
// masked/read-only paths: the real binary against real namespaces, cgroups and mounts. Every
// test uses its own Sandbox (state root, bundles, output under /var/tmp) and its cleanup checks
// that no process or cgroup outlives `delete --force`.
//
// Serialized: its containers share the cgroup hierarchies, and pause/update read cgroup files.

import BulkheadOCI
import FoundationEssentials
import Glibc
import Testing

// MARK: - helpers of this file

/// The state a hook receives on stdin (decoded leniently: pid may be absent once stopped).
private struct OpsHookState: Decodable {
    var ociVersion: String?
    var id: String
    var status: String
    var pid: Int32?
    var bundle: String
}

/// `events --stats` output: {"type":"stats","id":..,"data":{cpu, memory, pids}}.
private struct OpsStatsEvent: Decodable {
    struct Usage: Decodable { var total: UInt64 }
    struct CPU: Decodable { var usage: Usage }
    struct MemoryEntry: Decodable {
        var usage: UInt64
        var max: UInt64?
        var limit: UInt64
    }
    struct Memory: Decodable { var usage: MemoryEntry }
    struct Pids: Decodable {
        var current: UInt64
        var limit: UInt64?
    }
    struct Data: Decodable {
        var cpu: CPU?
        var memory: Memory?
        var pids: Pids?
    }
    var type: String
    var id: String
    var data: Data
}

func opsReadlink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Polls until `path` exists (or `timeout`); true if it does.
func opsWaitForFile(_ path: String, timeout: Duration = .seconds(10)) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if exists(path) { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return exists(path)
}

/// `run --detach` and the running state, or a thrown error describing the failure.
func opsStartDetached(_ sandbox: Sandbox, _ bundle: Bundle, _ id: String) async throws -> ContainerStateJSON {
    let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
    guard run.status == 0 else { throw TestError("run --detach failed: \(run)") }
    let (state, result) = try await sandbox.state(id)
    guard let state, state.status == "running", state.pid > 0 else { throw TestError("not running after run --detach: \(result)") }
    return state
}

/// The lines of the container's v1 cgroup file, e.g. ("memory", "memory.limit_in_bytes").
func opsCgroupValue(_ id: String, _ controller: String, _ file: String) -> String? {
    readText("/sys/fs/cgroup/\(controller)/bulkhead/\(id)/\(file)")?.trimmed
}

/// Nothing of a failed create may remain: state directory, cgroups, processes.
func opsExpectNothingLeft(_ sandbox: Sandbox, _ id: String, _ context: CommandResult,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!exists(sandbox.root + "/" + id), "state directory left behind: \(context)", sourceLocation: sourceLocation)
    #expect(existingCgroups("bulkhead/\(id)").isEmpty, "cgroups left: \(existingCgroups("bulkhead/\(id)"))", sourceLocation: sourceLocation)
    let inCgroup = processesInCgroup(containing: "/bulkhead/\(id)").filter { isAlive($0) }
    #expect(inCgroup.isEmpty, "processes left in the cgroup: \(inCgroup)", sourceLocation: sourceLocation)
    let holding = processesHolding(sandbox.directory).filter { $0 != getpid() && isAlive($0) }
    #expect(holding.isEmpty, "processes left holding files of the sandbox: \(holding.map { "\($0) \(processName($0))" })",
            sourceLocation: sourceLocation)
    reapRuntimeZombies()
}

@Suite(
    "bulkhead-runtime hooks, exec, pause, update, events, masked paths",
    .serialized,
    .enabled(if: isRoot, "needs root: creates namespaces, cgroups and mounts"),
    .enabled(if: haveBusybox, "needs /bin/busybox (busybox-static) for the container rootfs"),
    .enabled(if: haveRuntime, "needs the bulkhead-runtime binary next to the test bundle (swift build --build-tests)")
)
struct RuntimeOperationsTests {

    // MARK: hooks

    @Test("the six hooks get the state on stdin: id, status, pid, bundle; createContainer in the container's namespaces, startContainer in its root")
    func hooksReceiveState() async throws {
        let sandbox = try Sandbox("hooks")
        defer { sandbox.cleanup() }
        let out = sandbox.directory + "/hooks"
        try makeDirectory(out, mode: 0o777)
        let hostPath = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        func hostHook(_ script: String) -> Hook { Hook(path: "/bin/sh", args: ["sh", "-c", script], env: hostPath) }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            spec.hostname = "bh-hooks"
            spec.root?.readonly = false
            var hooks = Hooks()
            hooks.prestart = [hostHook("cat > \(out)/prestart.json")]
            hooks.createRuntime = [hostHook("cat > \(out)/createRuntime.json")]
            hooks.createContainer = [hostHook(
                "cat > \(out)/createContainer.json; readlink /proc/self/ns/uts > \(out)/createContainer.uts; "
                    + "readlink /proc/self/ns/mnt > \(out)/createContainer.mnt")]
            // Resolved in the container: its /bin/sh (busybox) and a file in its root.
            hooks.startContainer = [Hook(path: "/bin/sh", args: ["sh", "-c", "cat > /startContainer.json; hostname > /startContainer.hostname"],
                                         env: ["PATH=/bin"])]
            hooks.poststart = [hostHook("cat > \(out)/poststart.json")]
            hooks.poststop = [hostHook("cat > \(out)/poststop.json")]
            spec.hooks = hooks
        }
        func hookState(_ path: String) throws -> OpsHookState {
            guard let text = readText(path) else { throw TestError("the hook wrote no \(path)") }
            do {
                return try JSONDecoder().decode(OpsHookState.self, from: Data(text.utf8))
            } catch {
                throw TestError("\(path) is not a state: \(text.debugDescription): \(error)")
            }
        }

        let id = sandbox.newID("hooks")
        let pidFile = sandbox.directory + "/hooks.pid"
        let create = try await sandbox.run(["create", "--bundle", bundle.path, "--pid-file", pidFile, id])
        try #require(create.status == 0, "\(create)")
        let pid = try #require(readText(pidFile).flatMap { pid_t($0.trimmed) }, "no pid file")
        sandbox.track(pid: pid)

        for kind in ["prestart", "createRuntime", "createContainer"] {
            let state = try hookState(out + "/\(kind).json")
            #expect(state.id == id, "\(kind): \(state)")
            // "created", as crun sends it and the conformance suite's hooks_stdin expects.
            #expect(state.status == "created", "\(kind): \(state)")
            #expect(state.pid == pid, "\(kind): pid \(String(describing: state.pid)), the container's is \(pid)")
            #expect(state.bundle == bundle.path, "\(kind): \(state)")
        }
        // createContainer runs in the container's namespaces (host paths still visible to it).
        let containerUTS = opsReadlink("/proc/\(pid)/ns/uts")
        let hookUTS = readText(out + "/createContainer.uts")?.trimmed
        #expect(containerUTS != nil && hookUTS == containerUTS, "createContainer hook uts \(String(describing: hookUTS)), container \(String(describing: containerUTS)); host \(String(describing: opsReadlink("/proc/self/ns/uts")))")
        let containerMnt = opsReadlink("/proc/\(pid)/ns/mnt")
        let hookMnt = readText(out + "/createContainer.mnt")?.trimmed
        #expect(containerMnt != nil && hookMnt == containerMnt, "createContainer hook mnt \(String(describing: hookMnt)), container \(String(describing: containerMnt))")
        #expect(!exists(bundle.rootfs + "/startContainer.json"), "startContainer ran at create")
        #expect(!exists(out + "/poststart.json"), "poststart ran at create")

        let start = try await sandbox.run(["start", id])
        try #require(start.status == 0, "\(start)")
        // startContainer ran inside the container's root: its file is in the rootfs.
        let started = try hookState(bundle.rootfs + "/startContainer.json")
        #expect(started.id == id && started.status == "created" && started.pid == pid && started.bundle == bundle.path, "\(started)")
        #expect(readText(bundle.rootfs + "/startContainer.hostname")?.trimmed == "bh-hooks", "startContainer is not in the container's uts namespace")
        #expect(try await opsWaitForFile(out + "/poststart.json"), "no poststart output")
        let poststart = try hookState(out + "/poststart.json")
        #expect(poststart.id == id && poststart.status == "running" && poststart.pid == pid && poststart.bundle == bundle.path, "\(poststart)")
        #expect(!exists(out + "/poststop.json"), "poststop ran before delete")

        let kill = try await sandbox.run(["kill", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        #expect(try await sandbox.waitForStatus(id, "stopped")?.status == "stopped")
        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status == 0, "\(delete)")
        #expect(try await opsWaitForFile(out + "/poststop.json"), "no poststop output")
        let poststop = try hookState(out + "/poststop.json")
        #expect(poststop.id == id && poststop.status == "stopped" && poststop.bundle == bundle.path, "\(poststop)")
    }

    @Test("a createRuntime hook exiting 3 fails create naming the hook and leaves no state, cgroup or process")
    func failingCreateRuntimeHook() async throws {
        let sandbox = try Sandbox("hookfail")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            var hooks = Hooks()
            hooks.createRuntime = [Hook(path: "/bin/sh", args: ["sh", "-c", "exit 3"])]
            spec.hooks = hooks
        }
        // Several rounds: the hook may exit before the runtime has written the state to it.
        for _ in 1...10 {
            let id = sandbox.newID("hookfail")
            let create = try await sandbox.run(["create", "--bundle", bundle.path, id])
            #expect(create.status != 0, "\(create)")
            #expect(create.stderr.contains("createRuntime"), "the error does not name the hook: \(create)")
            #expect(create.stderr.contains("3"), "the error does not give the exit status: \(create)")
            opsExpectNothingLeft(sandbox, id, create)
            if !create.stderr.contains("createRuntime") { break }
        }
    }

    @Test("a prestart hook sleeping past timeout 1 is killed and fails create, naming the timeout")
    func hookTimeout() async throws {
        let sandbox = try Sandbox("hooktimeout")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            var hooks = Hooks()
            hooks.prestart = [Hook(path: "/bin/sh", args: ["sh", "-c", "exec sleep 60"], timeout: 1)]
            spec.hooks = hooks
        }
        let id = sandbox.newID("hooktimeout")
        // Far below the hook's 60 s: create must not wait for the hook to end by itself.
        let create = try await sandbox.run(["create", "--bundle", bundle.path, id], timeout: .seconds(40))
        #expect(create.status != 0, "\(create)")
        let error = create.stderr.lowercased()
        #expect(error.contains("prestart"), "\(create)")
        #expect(error.contains("timed out") || error.contains("timeout"), "the error does not name the timeout: \(create)")
        opsExpectNothingLeft(sandbox, id, create)
    }

    /// Both a hook that ignores its stdin and one that reads it: the state written to a hook that
    /// has already exited must not kill the runtime (SIGPIPE).
    @Test("a failing poststart hook is a warning: start succeeds and the container runs",
          arguments: ["exit 5", "cat > /dev/null; exit 5"])
    func failingPoststartIsAWarning(script: String) async throws {
        let sandbox = try Sandbox("poststart")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            var hooks = Hooks()
            hooks.poststart = [Hook(path: "/bin/sh", args: ["sh", "-c", script])]
            spec.hooks = hooks
        }
        // Several rounds: whether the hook exits before the runtime wrote the state is a race.
        for _ in 1...10 {
            let id = sandbox.newID("poststart")
            let create = try await sandbox.run(["create", "--bundle", bundle.path, id])
            try #require(create.status == 0, "\(create)")
            _ = try await sandbox.state(id)
            let start = try await sandbox.run(["start", id])
            #expect(start.status == 0, "\(start)")
            #expect(start.stderr.contains("poststart"), "no warning about the failed hook: \(start)")
            #expect(try await sandbox.state(id).0?.status == "running")
            let delete = try await sandbox.run(["delete", "--force", id])
            #expect(delete.status == 0, "\(delete)")
            if start.status != 0 { break }
        }
    }

    @Test("a hook gets the whole state on stdin, also when it is larger than a pipe buffer (100 KB of annotations)")
    func hookGetsLargeState() async throws {
        let sandbox = try Sandbox("hookbig")
        defer { sandbox.cleanup() }
        let out = sandbox.directory + "/big-state.json"
        let big = String(repeating: "0123456789abcdef", count: 100 * 1024 / 16)
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            spec.annotations = ["org.bulkhead.test.big": big]
            var hooks = Hooks()
            hooks.createRuntime = [Hook(path: "/bin/sh", args: ["sh", "-c", "sleep 0.2; cat > \(out)"], env: ["PATH=/usr/bin:/bin"])]
            spec.hooks = hooks
        }
        let id = sandbox.newID("hookbig")
        let create = try await sandbox.run(["create", "--bundle", bundle.path, id])
        #expect(create.status == 0, "\(create)")
        let text = readText(out) ?? ""
        struct Annotated: Decodable {
            var id: String
            var annotations: [String: String]?
        }
        let decoded = try? JSONDecoder().decode(Annotated.self, from: Data(text.utf8))
        #expect(decoded?.id == id, "the hook got \(text.utf8.count) bytes of state, not valid JSON (ends \(String(text.suffix(40)).debugDescription))")
        #expect(decoded?.annotations?["org.bulkhead.test.big"] == big)
        if create.status == 0 {
            let delete = try await sandbox.run(["delete", "--force", id])
            #expect(delete.status == 0, "\(delete)")
        }
    }

    // MARK: exec

    @Test("exec: output and exit code, a new pid in the container's uts namespace, --user, --env, --cwd, --process")
    func execBasics() async throws {
        let sandbox = try Sandbox("exec")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in spec.hostname = "bh-exec" }
        let id = sandbox.newID("exec")
        _ = try await opsStartDetached(sandbox, bundle, id)

        let output = try await sandbox.run(["exec", id, "sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"])
        #expect(output.status == 4, "\(output)")
        #expect(lines(output.stdout) == ["exec-out"], "\(output)")
        #expect(output.stderr.contains("exec-err"), "\(output)")

        let pidAndHost = try await sandbox.run(["exec", id, "sh", "-c", "echo $$; hostname"])
        #expect(pidAndHost.status == 0, "\(pidAndHost)")
        let out = lines(pidAndHost.stdout)
        #expect(out.count == 2 && out.first != "1" && Int(out.first ?? "") != nil, "\(pidAndHost)")
        #expect(out.last == "bh-exec", "\(pidAndHost)")

        let user = try await sandbox.run(["exec", "--user", "1000:1000", id, "id"])
        #expect(user.status == 0, "\(user)")
        #expect(user.stdout.contains("uid=1000") && user.stdout.contains("gid=1000"), "\(user)")

        let env = try await sandbox.run(["exec", "--env", "BH_FOO=bar-value", id, "sh", "-c", "echo $BH_FOO"])
        #expect(env.status == 0 && lines(env.stdout) == ["bar-value"], "\(env)")

        let cwd = try await sandbox.run(["exec", "--cwd", "/etc", id, "pwd"])
        #expect(cwd.status == 0 && lines(cwd.stdout) == ["/etc"], "\(cwd)")

        let processFile = sandbox.directory + "/process.json"
        try writeFile(processFile, """
            {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo from-process-json; pwd; echo $BH_P"],
             "env": ["PATH=/bin", "BH_P=p-env"], "cwd": "/tmp"}
            """)
        let process = try await sandbox.run(["exec", "--process", processFile, id])
        #expect(process.status == 0, "\(process)")
        #expect(lines(process.stdout) == ["from-process-json", "/tmp", "p-env"], "\(process)")

        let missing = try await sandbox.run(["exec", id, "/nonexistent-binary"])
        #expect(missing.status != 0, "\(missing)")
        #expect(missing.stderr.contains("/nonexistent-binary"), "the error does not name the binary: \(missing)")
        // The container is unharmed by all of this.
        #expect(try await sandbox.state(id).0?.status == "running")

        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    @Test("exec --detach --pid-file: the process is alive, in the container's cgroups and ps; exec in a stopped container fails")
    func execDetached() async throws {
        let sandbox = try Sandbox("execd")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"])
        let id = sandbox.newID("execd")
        let state = try await opsStartDetached(sandbox, bundle, id)

        let pidFile = sandbox.directory + "/exec.pid"
        let exec = try await sandbox.run(["exec", "--detach", "--pid-file", pidFile, id, "sleep", "300"])
        try #require(exec.status == 0, "\(exec)")
        let pid = try #require(readText(pidFile).flatMap { pid_t($0.trimmed) }, "no pid file: \(exec)")
        sandbox.track(pid: pid)
        #expect(pid != state.pid)
        #expect(isAlive(pid), "the exec'd process \(pid) is not alive")
        let procs = lines(readText("/sys/fs/cgroup/pids/bulkhead/\(id)/cgroup.procs") ?? "")
        #expect(procs.contains("\(pid)"), "\(pid) not in the pids cgroup.procs \(procs)")
        let memoryProcs = lines(readText("/sys/fs/cgroup/memory/bulkhead/\(id)/cgroup.procs") ?? "")
        #expect(memoryProcs.contains("\(pid)"), "\(pid) not in the memory cgroup.procs \(memoryProcs)")
        let cgroup = readText("/proc/\(pid)/cgroup") ?? ""
        #expect(cgroup.contains("/bulkhead/\(id)"), "/proc/\(pid)/cgroup: \(cgroup)")
        for ns in ["pid", "mnt", "uts", "ipc", "net"] {
            #expect(opsReadlink("/proc/\(pid)/ns/\(ns)") == opsReadlink("/proc/\(state.pid)/ns/\(ns)"), "exec'd process not in the container's \(ns) namespace")
        }

        let ps = try await sandbox.run(["ps", "--format", "json", id])
        #expect(ps.status == 0, "\(ps)")
        let pids = (try? JSONDecoder().decode([Int32].self, from: Data(ps.stdout.utf8))) ?? []
        #expect(pids.contains(state.pid) && pids.contains(pid), "ps --format json: \(ps)")

        let kill = try await sandbox.run(["kill", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        // The exec'd process was orphaned to us (the subreaper): the pid namespace's init cannot
        // finish exiting until we reap it, as a shim would.
        reapIfChild(pid, timeoutMs: 5000)
        #expect(try await sandbox.waitForStatus(id, "stopped")?.status == "stopped")
        let stopped = try await sandbox.run(["exec", id, "true"])
        #expect(stopped.status != 0, "exec into a stopped container succeeded: \(stopped)")
        #expect(stopped.stderr.contains("stopped") || stopped.stderr.contains("not running"), "\(stopped)")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    @Test("exec --tty --console-socket: the pty master comes through the socket and the process runs on a pts")
    func execTTY() async throws {
        let sandbox = try Sandbox("exectty")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"])
        let id = sandbox.newID("exectty")
        _ = try await opsStartDetached(sandbox, bundle, id)
        let socketPath = sandbox.directory + "/exec-console.sock"
        let listener = try listenUnix(socketPath)
        defer { close(listener) }
        let exec = try sandbox.start(["exec", "--tty", "--console-socket", socketPath, id, "sh", "-c", "tty; echo tty-ok"])

        var connection: Int32 = -1
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while connection < 0 && clock.now < deadline {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) > 0 { connection = acceptCloexec(listener) }
            if connection < 0 && !isAlive(exec.pid) && poll(&p, 1, 0) <= 0 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        guard connection >= 0 else {
            let result = try await exec.wait(timeout: .seconds(30))
            Issue.record("exec --tty never connected to the console socket: \(result)")
            return
        }
        defer { close(connection) }
        let master = try receiveDescriptor(connection)
        defer { close(master) }
        #expect(isatty(master) == 1)
        let output = try await readUntil(master) { $0.contains("tty-ok") }
        let result = try await exec.wait(timeout: .seconds(30))
        #expect(result.status == 0, "\(result)")
        let out = lines(output)
        #expect(out.contains("tty-ok"), "pty output: \(output.debugDescription)")
        #expect(out.contains { $0.hasPrefix("/dev/pts/") }, "pty output: \(output.debugDescription)")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    @Test("an exec'd process is under the container's seccomp filter: mkdir is denied")
    func execUnderSeccomp() async throws {
        let sandbox = try Sandbox("execsec")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            spec.root?.readonly = false
            spec.linux?.seccomp = try JSONDecoder().decode(Seccomp.self, from: Data("""
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
                """.utf8))
        }
        let id = sandbox.newID("execsec")
        _ = try await opsStartDetached(sandbox, bundle, id)
        let touch = try await sandbox.run(["exec", id, "touch", "/tmp/allowed"])
        #expect(touch.status == 0, "\(touch)")
        #expect(exists(bundle.rootfs + "/tmp/allowed"))
        let mkdir = try await sandbox.run(["exec", id, "mkdir", "/tmp/x"])
        #expect(mkdir.status != 0, "mkdir succeeded in an exec'd process: \(mkdir)")
        #expect(mkdir.stderr.contains("Operation not permitted"), "\(mkdir)")
        #expect(!exists(bundle.rootfs + "/tmp/x"))

        let pidFile = sandbox.directory + "/sec.pid"
        let detached = try await sandbox.run(["exec", "--detach", "--pid-file", pidFile, id, "sleep", "300"])
        try #require(detached.status == 0, "\(detached)")
        let pid = try #require(readText(pidFile).flatMap { pid_t($0.trimmed) })
        sandbox.track(pid: pid)
        let status = readText("/proc/\(pid)/status") ?? ""
        #expect(lines(status).contains { $0.hasPrefix("Seccomp:") && $0.hasSuffix("2") }, "no seccomp filter on \(pid): \(status)")
        kill(pid, SIGKILL)
        reapIfChild(pid, timeoutMs: 5000)
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    // MARK: pause, resume

    @Test("pause freezes a counter loop (paused, unchanged), resume lets it advance; resume of running and pause of stopped fail")
    func pauseResume() async throws {
        let sandbox = try Sandbox("pause")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/counter.tmp; mv /dev/shm/counter.tmp /dev/shm/counter; usleep 10000; done"]) { _ in }
        // mv and usleep are not among the default applets.
        for applet in ["mv", "usleep"] where symlink("busybox", bundle.rootfs + "/bin/" + applet) != 0 && errno != EEXIST {
            throw TestError("symlink \(applet): errno \(errno)")
        }
        let id = sandbox.newID("pause")
        let state = try await opsStartDetached(sandbox, bundle, id)
        let counterPath = "/proc/\(state.pid)/root/dev/shm/counter"
        func counter() -> Int? { readText(counterPath).flatMap { Int($0.trimmed) } }
        func waitForAdvance(beyond value: Int) async throws -> Int? {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(20)
            while clock.now < deadline {
                if let c = counter(), c > value { return c }
                try await Task.sleep(for: .milliseconds(20))
            }
            return counter()
        }
        let first = try await waitForAdvance(beyond: 0)
        try #require((first ?? 0) > 0, "the counter never advanced")

        let resumeRunning = try await sandbox.run(["resume", id])
        #expect(resumeRunning.status != 0, "resume of a running container succeeded: \(resumeRunning)")

        let pause = try await sandbox.run(["pause", id])
        try #require(pause.status == 0, "\(pause)")
        #expect(try await sandbox.state(id).0?.status == "paused")
        #expect(opsCgroupValue(id, "freezer", "freezer.state") == "FROZEN")
        let before = counter()
        try await Task.sleep(for: .milliseconds(300))
        let after = counter()
        #expect(before != nil && before == after, "the counter moved while paused: \(String(describing: before)) -> \(String(describing: after))")

        let resume = try await sandbox.run(["resume", id])
        #expect(resume.status == 0, "\(resume)")
        #expect(try await sandbox.state(id).0?.status == "running")
        let advanced = try await waitForAdvance(beyond: after ?? 0)
        #expect((advanced ?? 0) > (after ?? 0), "the counter did not advance after resume: \(String(describing: after)) -> \(String(describing: advanced))")

        let kill = try await sandbox.run(["kill", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        #expect(try await sandbox.waitForStatus(id, "stopped")?.status == "stopped")
        let pauseStopped = try await sandbox.run(["pause", id])
        #expect(pauseStopped.status != 0, "pause of a stopped container succeeded: \(pauseStopped)")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    // MARK: update

    @Test("update: memory, pids and cpu values read back; --resources - from stdin; invalid values error and change nothing")
    func updateReadsBack() async throws {
        let sandbox = try Sandbox("update")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            spec.linux?.resources?.memory = Resources.Memory(limit: 64 * 1024 * 1024)
            spec.linux?.resources?.pids = Resources.Pids(limit: 20)
        }
        let id = sandbox.newID("update")
        _ = try await opsStartDetached(sandbox, bundle, id)
        #expect(opsCgroupValue(id, "memory", "memory.limit_in_bytes") == "67108864")

        let update = try await sandbox.run(["update", "--memory", "128m", "--pids-limit", "50", "--cpu-quota", "20000",
                                            "--cpu-period", "100000", "--cpu-share", "256", "--cpuset-cpus", "0", id])
        #expect(update.status == 0, "\(update)")
        #expect(opsCgroupValue(id, "memory", "memory.limit_in_bytes") == "134217728")
        #expect(opsCgroupValue(id, "pids", "pids.max") == "50")
        #expect(opsCgroupValue(id, "cpu", "cpu.cfs_quota_us") == "20000")
        #expect(opsCgroupValue(id, "cpu", "cpu.cfs_period_us") == "100000")
        #expect(opsCgroupValue(id, "cpu", "cpu.shares") == "256")
        #expect(opsCgroupValue(id, "cpuset", "cpuset.cpus") == "0")

        let resources = sandbox.directory + "/resources.json"
        try writeFile(resources, #"{"memory": {"limit": 100663296}, "pids": {"limit": 40}}"#)
        let stdin = open(resources, O_RDONLY | O_CLOEXEC)
        try #require(stdin >= 0)
        let fromStdin = try await sandbox.run(["update", "--resources", "-", id], stdin: stdin)
        close(stdin)
        #expect(fromStdin.status == 0, "\(fromStdin)")
        #expect(opsCgroupValue(id, "memory", "memory.limit_in_bytes") == "100663296")
        #expect(opsCgroupValue(id, "pids", "pids.max") == "40")

        for bad in [["--memory", "abc"], ["--pids-limit", "x"], ["--cpu-share", "-3"]] {
            let invalid = try await sandbox.run(["update"] + bad + [id])
            #expect(invalid.status != 0, "update \(bad) succeeded: \(invalid)")
            #expect(invalid.stderr.contains(bad[0]), "the error does not name \(bad[0]): \(invalid)")
        }
        #expect(opsCgroupValue(id, "memory", "memory.limit_in_bytes") == "100663296")
        #expect(opsCgroupValue(id, "pids", "pids.max") == "40")
        #expect(opsCgroupValue(id, "cpu", "cpu.shares") == "256")

        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    @Test("update to a memory limit below the usage is refused by the kernel: an error, and the old limit stays")
    func updateRefusedKeepsOldLimit() async throws {
        let sandbox = try Sandbox("updbusy")
        defer { sandbox.cleanup() }
        // The shell keeps ~200 KB of anonymous memory (no swap here): it cannot be reclaimed.
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "x=$(seq 1 40000); echo ready; sleep 600"]) { spec in
            spec.linux?.resources?.memory = Resources.Memory(limit: 64 * 1024 * 1024)
        }
        let id = sandbox.newID("updbusy")
        let state = try await opsStartDetached(sandbox, bundle, id)
        try await Task.sleep(for: .milliseconds(300))
        let usage = opsCgroupValue(id, "memory", "memory.usage_in_bytes").flatMap { Int($0) } ?? 0
        #expect(usage > 4096, "usage \(usage)")
        let refused = try await sandbox.run(["update", "--memory", "1k", id])
        #expect(refused.status != 0, "a limit of 1k below the usage \(usage) was accepted: \(refused)")
        #expect(!refused.stderr.isEmpty, "\(refused)")
        #expect(opsCgroupValue(id, "memory", "memory.limit_in_bytes") == "67108864", "the old limit did not stay")
        #expect(isAlive(state.pid), "the container died")
        #expect(try await sandbox.state(id).0?.status == "running")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    // MARK: events, ps

    @Test("events --stats is one JSON line with pids.current >= 1 and the configured memory and pids limits; --interval repeats until the container stops")
    func eventsStats() async throws {
        let sandbox = try Sandbox("events")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "600"]) { spec in
            spec.linux?.resources?.memory = Resources.Memory(limit: 64 * 1024 * 1024)
            spec.linux?.resources?.pids = Resources.Pids(limit: 20)
        }
        let id = sandbox.newID("events")
        let state = try await opsStartDetached(sandbox, bundle, id)

        let stats = try await sandbox.run(["events", "--stats", id])
        #expect(stats.status == 0, "\(stats)")
        let statLines = lines(stats.stdout)
        #expect(statLines.count == 1, "\(stats)")
        let event = try JSONDecoder().decode(OpsStatsEvent.self, from: Data((statLines.first ?? "").utf8))
        #expect(event.type == "stats" && event.id == id, "\(stats)")
        #expect((event.data.pids?.current ?? 0) >= 1, "\(stats)")
        #expect(event.data.pids?.limit == 20, "\(stats)")
        #expect(event.data.memory?.usage.limit == 64 * 1024 * 1024, "\(stats)")
        #expect((event.data.memory?.usage.usage ?? 0) > 0, "\(stats)")
        #expect(event.data.cpu != nil, "\(stats)")

        let ps = try await sandbox.run(["ps", "--format", "json", id])
        #expect(ps.status == 0, "\(ps)")
        let pids = (try? JSONDecoder().decode([Int32].self, from: Data(ps.stdout.utf8))) ?? []
        #expect(pids == [state.pid], "ps --format json: \(ps)")

        let events = try sandbox.start(["events", "--interval", "1s", id])
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline, lines(events.stdout).count < 2, isAlive(events.pid) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let repeated = lines(events.stdout)
        #expect(repeated.count >= 2, "events --interval 1s: \(repeated)")
        for line in repeated {
            let decoded = try? JSONDecoder().decode(OpsStatsEvent.self, from: Data(line.utf8))
            #expect(decoded?.id == id, "not a stats line: \(line)")
        }
        let kill = try await sandbox.run(["kill", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        let ended = try await events.wait(timeout: .seconds(30))
        #expect(ended.status == 0, "events --interval after the container stopped: \(ended)")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
    }

    // MARK: masked and read-only paths

    @Test("masked paths read empty (files) or are empty and read-only (directories); readonlyPaths refuse writes")
    func maskedAndReadonlyPaths() async throws {
        let sandbox = try Sandbox("maskedp")
        defer { sandbox.cleanup() }
        let script = """
            if [ -e /proc/kcore ]; then echo kcore=$(head -c 16 /proc/kcore | wc -c); else echo kcore=absent; fi; \
            echo secretfile=$(cat /secretfile | wc -c); \
            echo secretdir=$(ls -A /secretdir | wc -l); \
            if touch /secretdir/new; then echo secretdir=writable; else echo secretdir=readonly; fi; \
            echo rodir=$(ls /rodir); \
            if touch /rodir/new; then echo rodir=writable; else echo rodir=readonly; fi; \
            if echo bh > /proc/sys/kernel/domainname; then echo domainname=written; else echo domainname=refused; fi
            """
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", script]) { spec in
            spec.root?.readonly = false
            let masked = (spec.linux?.maskedPaths ?? []) + ["/secretfile", "/secretdir"]
            let readonly = (spec.linux?.readonlyPaths ?? []) + ["/rodir"]
            spec.linux?.maskedPaths = masked
            spec.linux?.readonlyPaths = readonly
        }
        try writeFile(bundle.rootfs + "/secretfile", "SECRET\n")
        try makeDirectory(bundle.rootfs + "/secretdir")
        try writeFile(bundle.rootfs + "/secretdir/inner", "SECRET\n")
        try makeDirectory(bundle.rootfs + "/rodir")
        try writeFile(bundle.rootfs + "/rodir/file", "visible\n")
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("maskedp")])
        #expect(result.status == 0, "\(result)")
        let out = Set(lines(result.stdout))
        #expect(out.contains("kcore=absent") || out.contains("kcore=0"), "\(result)")
        #expect(out.contains("secretfile=0"), "\(result)")
        #expect(out.contains("secretdir=0"), "\(result)")
        #expect(out.contains("secretdir=readonly"), "\(result)")
        #expect(out.contains("rodir=file"), "\(result)")
        #expect(out.contains("rodir=readonly"), "\(result)")
        #expect(out.contains("domainname=refused"), "\(result)")
        #expect(result.stderr.contains("Read-only file system"), "\(result)")
        #expect(!exists(bundle.rootfs + "/secretdir/new") && !exists(bundle.rootfs + "/rodir/new"))
        #expect(readText(bundle.rootfs + "/secretfile") == "SECRET\n")
    }
}
