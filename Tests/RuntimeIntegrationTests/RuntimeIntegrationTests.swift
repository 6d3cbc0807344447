// Integration tests of bulkhead-runtime: the real binary, real namespaces, cgroups and mounts.
// Each test builds its own bundle (busybox rootfs) and state root under /var/tmp, uses unique
// container ids, and deletes everything it made in `defer`, also when it fails.
//
// The suite is serialized (its containers share the cgroup hierarchies and the /bulkhead parent);
// the concurrency test runs its 20 lifecycles in parallel on purpose.

import BulkheadOCI
import FoundationEssentials
import Glibc
import Testing

@Suite(
    "bulkhead-runtime integration",
    .serialized,
    .enabled(if: isRoot, "needs root: creates namespaces, cgroups and mounts"),
    .enabled(if: haveBusybox, "needs /bin/busybox (busybox-static) for the container rootfs"),
    .enabled(if: haveRuntime, "needs the bulkhead-runtime binary next to the test bundle (swift build --build-tests)")
)
struct RuntimeIntegrationTests {

    // MARK: run, output, exit codes

    @Test("run prints the container's stdout and stderr and exits 0")
    func runPrintsOutput() async throws {
        let sandbox = try Sandbox("output")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "echo hello from the container; echo to-stderr >&2"])
        let id = sandbox.newID("output")
        let result = try await sandbox.run(["run", "--bundle", bundle.path, id])
        #expect(result.status == 0, "\(result)")
        #expect(lines(result.stdout) == ["hello from the container"], "\(result)")
        #expect(lines(result.stderr).contains("to-stderr"), "\(result)")
        // A foreground run deletes the container.
        #expect(!exists(sandbox.root + "/" + id))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    @Test("run returns the container's exit code")
    func exitCodePropagated() async throws {
        let sandbox = try Sandbox("exit")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "exit 7"])
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("exit")])
        #expect(result.status == 7, "\(result)")
    }

    @Test("run returns 128+9 when the container is killed with SIGKILL")
    func signalKilledExitCode() async throws {
        let sandbox = try Sandbox("sigkill")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"])
        let id = sandbox.newID("sigkill")
        let running = try sandbox.start(["run", "--bundle", bundle.path, id])
        let state = try await sandbox.waitForStatus(id, "running")
        #expect(state?.status == "running")
        let kill = try await sandbox.run(["kill", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        let result = try await running.wait(timeout: .seconds(30))
        #expect(result.status == 128 + 9, "\(result)")
    }

    // MARK: namespaces

    @Test("hostname is the config's and the process is pid 1 of its pid namespace")
    func hostnameAndPidNamespace() async throws {
        let sandbox = try Sandbox("uts")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "hostname; echo $$"]) { spec in
            spec.hostname = "bh-it-host"
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("uts")])
        #expect(result.status == 0, "\(result)")
        #expect(lines(result.stdout) == ["bh-it-host", "1"], "\(result)")
    }

    @Test("a user namespace has the configured uid_map and the process is uid 0 inside")
    func userNamespaceMapping() async throws {
        let sandbox = try Sandbox("userns")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; id -g"]) { spec in
            spec.linux?.namespaces?.append(Namespace(type: "user"))
            spec.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
            spec.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 100000, size: 65536)]
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("userns")])
        #expect(result.status == 0, "\(result)")
        let out = lines(result.stdout).map { $0.split(separator: " ").map(String.init) }
        #expect(out.count == 4, "\(result)")
        if out.count == 4 {
            #expect(out[0] == ["0", "100000", "65536"], "uid_map: \(result)")
            #expect(out[1] == ["0", "100000", "65536"], "gid_map: \(result)")
            #expect(out[2] == ["0"], "id -u: \(result)")
            #expect(out[3] == ["0"], "id -g: \(result)")
        }
    }

    @Test("a container joins another container's uts namespace by path")
    func joinNamespaceByPath() async throws {
        let sandbox = try Sandbox("join")
        defer { sandbox.cleanup() }
        let first = try sandbox.makeBundle("first", args: ["sleep", "60"]) { spec in
            spec.hostname = "first"
        }
        let firstID = sandbox.newID("first")
        let detached = try await sandbox.run(["run", "--detach", "--bundle", first.path, firstID])
        try #require(detached.status == 0, "\(detached)")
        let state = try #require(try await sandbox.state(firstID).0)
        #expect(state.status == "running")
        try #require(state.pid > 0)

        let second = try sandbox.makeBundle("second", args: ["hostname"]) { spec in
            spec.hostname = nil
            let namespaces = spec.linux?.namespaces ?? []
            spec.linux?.namespaces = namespaces.map { ns in
                ns.type == "uts" ? Namespace(type: "uts", path: "/proc/\(state.pid)/ns/uts") : ns
            }
        }
        let result = try await sandbox.run(["run", "--bundle", second.path, sandbox.newID("second")])
        #expect(result.status == 0, "\(result)")
        #expect(lines(result.stdout) == ["first"], "\(result)")
    }

    // MARK: cgroups

    @Test("memory and pids limits are written to the container's v1 cgroups (relative cgroupsPath)")
    func resourceLimitsReadBack() async throws {
        let sandbox = try Sandbox("limits")
        defer { sandbox.cleanup() }
        let id = sandbox.newID("limits")
        let parent = "bh-it-\(getpid())"
        let cgroupsPath = "\(parent)/\(id)"
        let parentExisted = !existingCgroups(parent).isEmpty
        sandbox.track(cgroup: cgroupsPath)
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"]) { spec in
            spec.linux?.cgroupsPath = cgroupsPath
            spec.linux?.resources?.memory = Resources.Memory(limit: 64 * 1024 * 1024)
            spec.linux?.resources?.pids = Resources.Pids(limit: 10)
        }
        let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
        try #require(run.status == 0, "\(run)")
        let state = try #require(try await sandbox.state(id).0)
        #expect(state.status == "running")

        let memory = readText("/sys/fs/cgroup/memory/\(cgroupsPath)/memory.limit_in_bytes")?.trimmed
        #expect(memory == "67108864")
        let pidsMax = readText("/sys/fs/cgroup/pids/\(cgroupsPath)/pids.max")?.trimmed
        #expect(pidsMax == "10")
        let procs = lines(readText("/sys/fs/cgroup/pids/\(cgroupsPath)/cgroup.procs") ?? "")
        #expect(procs.contains("\(state.pid)"), "container pid \(state.pid) not in pids cgroup.procs \(procs)")
        let memoryProcs = lines(readText("/sys/fs/cgroup/memory/\(cgroupsPath)/cgroup.procs") ?? "")
        #expect(memoryProcs.contains("\(state.pid)"), "container pid \(state.pid) not in memory cgroup.procs \(memoryProcs)")

        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
        #expect(existingCgroups(cgroupsPath).isEmpty, "left behind: \(existingCgroups(cgroupsPath))")
        if !parentExisted {
            #expect(existingCgroups(parent).isEmpty, "parent made by create left behind: \(existingCgroups(parent))")
        }
    }

    @Test("pids.limit 10 makes forks fail and pids.current stays within it")
    func pidsLimitEnforced() async throws {
        let sandbox = try Sandbox("pids")
        defer { sandbox.cleanup() }
        let id = sandbox.newID("pids")
        // The inner shell forks until it cannot (ash exits on a failed fork); its sleeps stay,
        // and the outer shell execs a sleep (no fork) so the cgroup stays full for a while.
        let forks = (1...30).map(String.init).joined(separator: " ")
        let script = "sh -c 'for i in \(forks); do sleep 4 & echo started $i; done'; echo inner=$?; exec sleep 2"
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", script]) { spec in
            spec.linux?.resources?.pids = Resources.Pids(limit: 10)
        }
        let running = try sandbox.start(["run", "--bundle", bundle.path, id])
        var samples: [Int] = []
        let pidsDirectory = "/sys/fs/cgroup/pids/bulkhead/\(id)"
        var pidsMax: String?
        var exitStatus: Int32?
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            if let text = readText(pidsDirectory + "/pids.current"), let n = Int(text.trimmed) { samples.append(n) }
            if pidsMax == nil { pidsMax = readText(pidsDirectory + "/pids.max")?.trimmed }
            var status: Int32 = 0
            if waitpid(running.pid, &status, WNOHANG) == running.pid {
                exitStatus = shellStatus(status)
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        if exitStatus == nil { kill(running.pid, SIGKILL); exitStatus = waitBlocking(running.pid) }
        let result = running.finish(exitStatus!)

        #expect(pidsMax == "10", "\(result)")
        #expect(samples.contains { $0 > 1 }, "never saw the container's processes in \(pidsDirectory): \(samples)")
        #expect(samples.allSatisfy { $0 <= 10 }, "pids.current above the limit: \(samples)")
        let started = lines(result.stdout).compactMap { line -> Int? in
            line.hasPrefix("started ") ? Int(line.dropFirst("started ".count)) : nil
        }
        #expect(!started.isEmpty, "\(result)")
        #expect((started.max() ?? 30) < 30, "all 30 forks succeeded: \(result)")
        #expect((started.max() ?? 30) <= 10, "more forks than the limit allows: \(result)")
        let inner = lines(result.stdout).first { $0.hasPrefix("inner=") }
        #expect(inner != nil && inner != "inner=0", "the forking shell did not fail: \(result)")
        #expect(result.stderr.contains("fork"), "no fork failure reported: \(result)")
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    // MARK: root filesystem and mounts

    @Test("a read-only root refuses writes and nothing is created in the rootfs")
    func readOnlyRoot() async throws {
        let sandbox = try Sandbox("roroot")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["touch", "/x"]) { spec in
            spec.root?.readonly = true
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("roroot")])
        #expect(result.status != 0, "\(result)")
        #expect(result.stderr.lowercased().contains("read-only"), "\(result)")
        #expect(!exists(bundle.rootfs + "/x"))
    }

    @Test("bind mounts: a host directory is visible, writable when rw, refused when ro")
    func bindMounts() async throws {
        let sandbox = try Sandbox("bind")
        defer { sandbox.cleanup() }
        let rwDir = sandbox.directory + "/host-rw"
        let roDir = sandbox.directory + "/host-ro"
        try makeDirectory(rwDir, mode: 0o777)
        try makeDirectory(roDir, mode: 0o777)
        try writeFile(rwDir + "/marker", "rw-marker\n")
        try writeFile(roDir + "/marker", "ro-marker\n")
        let script = """
            cat /data/marker; echo written > /data/new && echo rw-write-ok; cat /rodata/marker; \
            if echo x > /rodata/fail; then echo ro-write-succeeded; else echo ro-write-refused; fi
            """
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", script]) { spec in
            spec.mounts?.append(Mount(destination: "/data", type: "bind", source: rwDir, options: ["rbind", "rw"]))
            spec.mounts?.append(Mount(destination: "/rodata", type: "bind", source: roDir, options: ["rbind", "ro"]))
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("bind")])
        #expect(result.status == 0, "\(result)")
        #expect(lines(result.stdout) == ["rw-marker", "rw-write-ok", "ro-marker", "ro-write-refused"], "\(result)")
        #expect(readText(rwDir + "/new") == "written\n")
        #expect(!exists(roDir + "/fail"))
    }

    @Test("run --no-pivot works and the host's root is not visible")
    func noPivot() async throws {
        let sandbox = try Sandbox("nopivot")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "echo pivot-ok; ls /"])
        let result = try await sandbox.run(["run", "--no-pivot", "--bundle", bundle.path, sandbox.newID("nopivot")])
        #expect(result.status == 0, "\(result)")
        let out = lines(result.stdout)
        #expect(out.first == "pivot-ok", "\(result)")
        let entries = Set(out.dropFirst().flatMap { $0.split(separator: " ").map(String.init) })
        #expect(entries.contains("bin"), "\(result)")
        #expect(!entries.contains("opt") && !entries.contains("work") && !entries.contains("var"), "host root visible: \(result)")
    }

    // MARK: lifecycle

    @Test("create, state, start, kill, delete: statuses, pid file, and nothing left behind")
    func lifecycle() async throws {
        let sandbox = try Sandbox("life")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"]) { spec in
            spec.annotations = ["org.bulkhead.test": "lifecycle"]
        }
        let id = sandbox.newID("life")
        let pidFile = sandbox.directory + "/container.pid"
        let create = try await sandbox.run(["create", "--bundle", bundle.path, "--pid-file", pidFile, id])
        try #require(create.status == 0, "\(create)")
        let pid = try #require(readText(pidFile).flatMap { pid_t($0.trimmed) }, "no pid file")
        sandbox.track(pid: pid)

        let created = try #require(try await sandbox.state(id).0)
        #expect(created.status == "created")
        #expect(created.pid == pid)
        #expect(created.id == id)
        #expect(created.bundle == bundle.path)
        #expect(created.annotations?["org.bulkhead.test"] == "lifecycle")
        #expect(!created.ociVersion.isEmpty)
        #expect(isAlive(pid), "the created container's process \(pid) is not alive")
        #expect(!existingCgroups("bulkhead/\(id)").isEmpty, "no cgroup /bulkhead/\(id)")
        #expect(exists("/sys/fs/cgroup/pids/bulkhead/\(id)"))

        let start = try await sandbox.run(["start", id])
        #expect(start.status == 0, "\(start)")
        let running = try await sandbox.state(id).0
        #expect(running?.status == "running")
        #expect(running?.pid == pid)

        let ps = try await sandbox.run(["ps", "--format", "json", id])
        #expect(ps.status == 0, "\(ps)")
        let psPids = (try? JSONDecoder().decode([Int32].self, from: Data(ps.stdout.utf8))) ?? []
        #expect(psPids.contains(pid), "\(ps)")

        let kill = try await sandbox.run(["kill", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        let stopped = try await sandbox.waitForStatus(id, "stopped")
        #expect(stopped?.status == "stopped")
        #expect(!isAlive(pid))

        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status == 0, "\(delete)")
        let after = try await sandbox.state(id)
        #expect(after.0 == nil && after.1.status != 0, "state after delete: \(after.1)")
        #expect(!exists(sandbox.root + "/" + id), "state directory left behind")
        #expect(!exists("/sys/fs/cgroup/pids/bulkhead/\(id)"))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty, "cgroups left behind: \(existingCgroups("bulkhead/\(id)"))")
    }

    @Test("kill takes signal names and numbers, rejects unknown ones; delete without --force refuses a running container")
    func killSignalsAndDeleteRunning() async throws {
        let sandbox = try Sandbox("kill")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "trap 'echo got-term' TERM; echo ready; while true; do sleep 1 & wait; done"])
        let id = sandbox.newID("kill")
        let detached = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
        try #require(detached.status == 0, "\(detached)")
        let state = try #require(try await sandbox.state(id).0)
        #expect(state.status == "running")
        // The container's stdout is the file `run --detach` had as stdout.
        let runOutputPath = try #require(detached.stdoutPath)
        func waitFor(_ word: String, count wanted: Int) async throws -> Int {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            var n = 0
            while clock.now < deadline {
                n = lines(readText(runOutputPath) ?? "").filter { $0 == word }.count
                if n >= wanted { return n }
                try await Task.sleep(for: .milliseconds(20))
            }
            return n
        }
        #expect(try await waitFor("ready", count: 1) == 1)

        for (i, signal) in ["TERM", "SIGTERM", "15"].enumerated() {
            let kill = try await sandbox.run(["kill", id, signal])
            #expect(kill.status == 0, "\(kill)")
            #expect(try await waitFor("got-term", count: i + 1) == i + 1, "kill \(signal) was not delivered")
        }

        let unknown = try await sandbox.run(["kill", id, "NOSUCHSIGNAL"])
        #expect(unknown.status != 0, "\(unknown)")
        #expect(unknown.stderr.contains("NOSUCHSIGNAL"), "\(unknown)")

        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status != 0, "delete of a running container without --force succeeded: \(delete)")
        let still = try await sandbox.state(id).0
        #expect(still?.status == "running")
        #expect(isAlive(state.pid))
        #expect(exists(sandbox.root + "/" + id))

        let kill = try await sandbox.run(["kill", id, "9"])
        #expect(kill.status == 0, "\(kill)")
        #expect(try await sandbox.waitForStatus(id, "stopped")?.status == "stopped")
        let finalDelete = try await sandbox.run(["delete", id])
        #expect(finalDelete.status == 0, "\(finalDelete)")
        #expect(!exists(sandbox.root + "/" + id))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    @Test("list shows the containers with their status, as a table and as JSON")
    func listContainers() async throws {
        let sandbox = try Sandbox("list")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"])
        let createdID = sandbox.newID("list-created")
        let runningID = sandbox.newID("list-running")
        let create = try await sandbox.run(["create", "--bundle", bundle.path, createdID])
        try #require(create.status == 0, "\(create)")
        let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, runningID])
        try #require(run.status == 0, "\(run)")
        let createdState = try #require(try await sandbox.state(createdID).0)
        let runningState = try #require(try await sandbox.state(runningID).0)

        let table = try await sandbox.run(["list"])
        #expect(table.status == 0, "\(table)")
        let rows = lines(table.stdout).map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first?.prefix(3) == ["ID", "PID", "STATUS"], "\(table)")
        let createdRow = rows.first { $0.first == createdID }
        let runningRow = rows.first { $0.first == runningID }
        #expect(createdRow?.count ?? 0 >= 3 && createdRow?[1] == "\(createdState.pid)" && createdRow?[2] == "created", "\(table)")
        #expect(runningRow?.count ?? 0 >= 3 && runningRow?[1] == "\(runningState.pid)" && runningRow?[2] == "running", "\(table)")
        #expect(rows.count == 3, "\(table)")

        let json = try await sandbox.run(["list", "--format", "json"])
        #expect(json.status == 0, "\(json)")
        let states = try JSONDecoder().decode([ContainerStateJSON].self, from: Data(json.stdout.utf8))
        #expect(Set(states.map(\.id)) == [createdID, runningID], "\(json)")
        #expect(states.first { $0.id == createdID }?.status == "created")
        #expect(states.first { $0.id == runningID }?.status == "running")
        #expect(states.first { $0.id == runningID }?.pid == runningState.pid)

        let quiet = try await sandbox.run(["list", "-q"])
        #expect(quiet.status == 0, "\(quiet)")
        #expect(Set(lines(quiet.stdout)) == [createdID, runningID], "\(quiet)")
    }

    // MARK: errors

    @Test("empty process.args: create fails naming the field, logs a JSON error, leaves nothing")
    func emptyArgsError() async throws {
        let sandbox = try Sandbox("noargs")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: [])
        let id = sandbox.newID("noargs")
        let create = try await sandbox.run(["create", "--bundle", bundle.path, id])
        #expect(create.status != 0, "\(create)")
        #expect(create.stderr.contains("process.args"), "\(create)")
        #expect(create.stderr.contains("config.json"), "\(create)")

        let logID = sandbox.newID("noargs-log")
        let logPath = sandbox.directory + "/runtime.log"
        let logged = try await sandbox.run(["create", "--bundle", bundle.path, logID], log: (logPath, "json"))
        #expect(logged.status != 0, "\(logged)")
        let lastLine = try #require(lines(readText(logPath) ?? "").last, "empty log file")
        struct LogLine: Decodable { var level: String; var msg: String; var time: String }
        let entry = try? JSONDecoder().decode(LogLine.self, from: Data(lastLine.utf8))
        #expect(entry?.level == "error", "last log line: \(lastLine)")
        #expect(entry?.msg.contains("process.args") == true, "last log line: \(lastLine)")
        #expect(entry?.time.isEmpty == false, "last log line: \(lastLine)")

        for id in [id, logID] {
            #expect(!exists(sandbox.root + "/" + id), "state directory of \(id) left behind")
            #expect(existingCgroups("bulkhead/\(id)").isEmpty, "cgroup of \(id) left behind")
            let state = try await sandbox.state(id)
            #expect(state.1.status != 0, "state of a failed create: \(state.1)")
        }
    }

    @Test("a type error in config.json names the field (process.user.uid)")
    func typeErrorNamesField() async throws {
        let sandbox = try Sandbox("uid")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["true"])
        let text = try #require(readText(bundle.config))
        let pattern = "\"uid\" : 0"
        let parts = text.split(separator: pattern, omittingEmptySubsequences: false)
        try #require(parts.count == 2, "expected one \(pattern) in \(text)")
        try writeFile(bundle.config, parts.joined(separator: "\"uid\" : \"root\""))
        let id = sandbox.newID("uid")
        let create = try await sandbox.run(["create", "--bundle", bundle.path, id])
        #expect(create.status != 0, "\(create)")
        #expect(create.stderr.contains("process.user.uid"), "\(create)")
        #expect(!exists(sandbox.root + "/" + id))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    @Test("a missing executable fails at create and leaves no state, cgroup or process")
    func missingExecutable() async throws {
        let sandbox = try Sandbox("noexec")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["/nonexistent"])
        let id = sandbox.newID("noexec")
        let create = try await sandbox.run(["create", "--bundle", bundle.path, id])
        #expect(create.status != 0, "create of a missing executable succeeded: \(create)")
        #expect(create.stderr.contains("/nonexistent"), "\(create)")
        #expect(!exists(sandbox.root + "/" + id), "state directory left behind")
        #expect(existingCgroups("bulkhead/\(id)").isEmpty, "cgroups left behind: \(existingCgroups("bulkhead/\(id)"))")
        #expect(processesInCgroup(containing: "/bulkhead/\(id)").isEmpty, "processes left: \(processesInCgroup(containing: "/bulkhead/\(id)"))")
        // Live processes the runtime cloned and left (zombies orphaned to us, the subreaper, are
        // reaped: they have exited, and a subreaper is there to reap them).
        let leftovers = processesHolding(sandbox.directory).filter { $0 != getpid() && isAlive($0) }
        #expect(leftovers.isEmpty, "processes left alive holding files of this bundle or state: \(leftovers)")
        let zombies = reapRuntimeZombies()
        if !zombies.isEmpty { print("missingExecutable: reaped zombie children \(zombies) orphaned by the failed create") }
        // Also the case the runtime does not catch at create: start must then fail or the
        // container stop; but create must have failed already (runc does).
        if create.status == 0 {
            _ = try await sandbox.run(["delete", "--force", id])
        }
    }

    @Test("a duplicate container id fails and leaves the first container intact")
    func duplicateID() async throws {
        let sandbox = try Sandbox("dup")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"])
        let id = sandbox.newID("dup")
        let first = try await sandbox.run(["create", "--bundle", bundle.path, id])
        try #require(first.status == 0, "\(first)")
        let before = try #require(try await sandbox.state(id).0)
        let second = try await sandbox.run(["create", "--bundle", bundle.path, id])
        #expect(second.status != 0, "\(second)")
        #expect(second.stderr.contains(id), "\(second)")
        #expect(second.stderr.contains("exists"), "\(second)")
        let after = try await sandbox.state(id).0
        #expect(after?.status == "created")
        #expect(after?.pid == before.pid)
        #expect(isAlive(before.pid))
        #expect(exists("/sys/fs/cgroup/pids/bulkhead/\(id)"))
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    // MARK: stdio: console socket, preserved descriptors

    @Test("--console-socket receives the pty master and the container's output comes through it")
    func consoleSocket() async throws {
        let sandbox = try Sandbox("console")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "tty; echo hi"]) { spec in
            spec.process?.terminal = true
        }
        let socketPath = sandbox.directory + "/console.sock"
        let listener = try listenUnix(socketPath)
        defer { close(listener) }
        let id = sandbox.newID("console")
        let create = try sandbox.start(["create", "--bundle", bundle.path, "--console-socket", socketPath, id])

        // Accept while create runs (it may wait for us), until it exits.
        var connection: Int32 = -1
        var createStatus: Int32?
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if connection < 0, poll(&p, 1, 0) > 0 {
                connection = acceptCloexec(listener)
            }
            var status: Int32 = 0
            if waitpid(create.pid, &status, WNOHANG) == create.pid {
                createStatus = shellStatus(status)
                if connection < 0, poll(&p, 1, 0) > 0 {
                    connection = acceptCloexec(listener)
                }
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        if createStatus == nil { kill(create.pid, SIGKILL); createStatus = waitBlocking(create.pid) }
        let createResult = create.finish(createStatus!)
        try #require(createResult.status == 0, "\(createResult)")
        try #require(connection >= 0, "the runtime never connected to the console socket")
        defer { close(connection) }
        let master = try receiveDescriptor(connection)
        defer { close(master) }
        #expect(isatty(master) == 1, "the received descriptor is not a terminal")

        let start = try await sandbox.run(["start", id])
        #expect(start.status == 0, "\(start)")
        let output = try await readUntil(master) { $0.contains("hi\r\n") || $0.contains("hi\n") }
        let out = lines(output)
        #expect(out.contains("hi"), "pty output: \(output.debugDescription)")
        #expect(out.contains { $0 == "/dev/console" || $0.hasPrefix("/dev/pts/") }, "pty output: \(output.debugDescription)")
        #expect(try await sandbox.waitForStatus(id, "stopped")?.status == "stopped")
        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status == 0, "\(delete)")
    }

    @Test("--preserve-fds 1 passes fd 3 to the container")
    func preserveFds() async throws {
        let sandbox = try Sandbox("fds")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "echo via3 >&3"])
        let pipe = try makePipe()
        defer { close(pipe.read) }
        let running: RunningCommand
        do {
            defer { close(pipe.write) }
            running = try sandbox.start(["run", "--preserve-fds", "1", "--bundle", bundle.path, sandbox.newID("fds")],
                                        extra: [FdMapping(from: pipe.write, to: 3)])
        }
        let output = try await readUntil(pipe.read, timeout: .seconds(30))
        let result = try await running.wait()
        #expect(result.status == 0, "\(result)")
        #expect(output == "via3\n", "fd 3 got \(output.debugDescription); \(result)")
    }

    // MARK: concurrency

    @Test("20 concurrent lifecycles (create, start, wait, delete) all succeed and leave nothing")
    func concurrentLifecycles() async throws {
        let sandbox = try Sandbox("many")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "echo lifecycle-ok"])
        let ids = (0..<20).map { sandbox.newID("many\($0)") }

        let failures = await withTaskGroup(of: String?.self) { group in
            for id in ids {
                group.addTask {
                    do {
                        let pidFile = sandbox.directory + "/\(id).pid"
                        let create = try await sandbox.run(["create", "--bundle", bundle.path, "--pid-file", pidFile, id])
                        guard create.status == 0 else { return "create \(id): \(create)" }
                        guard let pid = readText(pidFile).flatMap({ pid_t($0.trimmed) }) else { return "create \(id): no pid file" }
                        sandbox.track(pid: pid)
                        let outputPath = create.stdoutPath ?? ""
                        let start = try await sandbox.run(["start", id])
                        guard start.status == 0 else { return "start \(id): \(start)" }
                        let stopped = try await sandbox.waitForStatus(id, "stopped", timeout: .seconds(60))
                        guard stopped?.status == "stopped" else { return "\(id) did not stop: \(String(describing: stopped))" }
                        let output = readText(outputPath) ?? ""
                        guard lines(output) == ["lifecycle-ok"] else { return "\(id) printed \(output.debugDescription)" }
                        let delete = try await sandbox.run(["delete", id])
                        guard delete.status == 0 else { return "delete \(id): \(delete)" }
                        return nil
                    } catch {
                        return "\(id): \(error)"
                    }
                }
            }
            var failures: [String] = []
            for await failure in group { if let failure { failures.append(failure) } }
            return failures
        }
        #expect(failures.isEmpty, "\(failures.count) of 20 failed:\n\(failures.joined(separator: "\n"))")
        for id in ids {
            #expect(!exists(sandbox.root + "/" + id), "state directory of \(id) left behind")
            #expect(existingCgroups("bulkhead/\(id)").isEmpty, "cgroup of \(id) left behind")
        }
        let list = try await sandbox.run(["list", "-q"])
        #expect(list.status == 0 && lines(list.stdout).isEmpty, "\(list)")
    }
}

extension RuntimeIntegrationTests {
    @Test("create --no-pivot under parallel load: 6 x 40 create/delete all succeed and leave nothing")
    func parallelNoPivotCreates() async throws {
        let sandbox = try Sandbox("race")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["true"])
        let failures = await withTaskGroup(of: [String].self) { group in
            for worker in 0..<6 {
                group.addTask {
                    var failures: [String] = []
                    for i in 0..<40 {
                        let id = sandbox.newID("race\(worker)-\(i)")
                        do {
                            let create = try await sandbox.run(["create", "--no-pivot", "--bundle", bundle.path, id])
                            if create.status != 0 { failures.append("\(create)") }
                            let delete = try await sandbox.run(["delete", "--force", id])
                            if delete.status != 0 && create.status == 0 { failures.append("\(delete)") }
                        } catch {
                            failures.append("\(id): \(error)")
                        }
                    }
                    return failures
                }
            }
            var all: [String] = []
            for await f in group { all += f }
            return all
        }
        #expect(failures.isEmpty, "\(failures.count) of 240 failed:\n\(failures.prefix(5).joined(separator: "\n"))")
        // cleanup() checks that no process and no cgroup outlived delete --force.
    }
}

// MARK: - helpers used above

/// Pids whose /proc/<pid>/cgroup mentions `fragment` (zombies included).
func processesInCgroup(containing fragment: String) -> [pid_t] {
    var result: [pid_t] = []
    guard let dir = opendir("/proc") else { return [] }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let pid = pid_t(name), let text = readText("/proc/\(pid)/cgroup") else { continue }
        if text.contains(fragment + "\n") || text.contains(fragment + "/") { result.append(pid) }
    }
    return result
}

/// accept4 is not exported without _GNU_SOURCE.
func acceptCloexec(_ listener: Int32) -> Int32 {
    let fd = accept(listener, nil, nil)
    if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return fd
}

/// A listening unix stream socket at `path` (close-on-exec).
func listenUnix(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    if fd < 0 { throw TestError("socket: errno \(errno)") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(fd); throw TestError("socket path too long: \(path)") }
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        for (i, b) in bytes.enumerated() { buffer[i] = b }
        buffer[bytes.count] = 0
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if bound != 0 || listen(fd, 8) != 0 {
        let code = errno
        close(fd)
        throw TestError("bind/listen \(path): errno \(code)")
    }
    return fd
}

/// Receives one descriptor sent with SCM_RIGHTS on `socket` (recvmsg; close-on-exec).
/// struct cmsghdr is { size_t len; int level; int type; } followed by the data at offset 16.
func receiveDescriptor(_ socket: Int32) throws -> Int32 {
    var data = [UInt8](repeating: 0, count: 4096)
    var control = [UInt64](repeating: 0, count: 8)  // 64 bytes, aligned for cmsghdr
    let received: Int = data.withUnsafeMutableBytes { dataBuffer in
        control.withUnsafeMutableBytes { controlBuffer in
            var iov = iovec(iov_base: dataBuffer.baseAddress, iov_len: dataBuffer.count)
            return withUnsafeMutablePointer(to: &iov) { iovPointer in
                var message = msghdr()
                message.msg_iov = iovPointer
                message.msg_iovlen = 1
                message.msg_control = controlBuffer.baseAddress
                message.msg_controllen = controlBuffer.count
                var n: Int
                repeat { n = recvmsg(socket, &message, Int32(MSG_CMSG_CLOEXEC)) } while n < 0 && errno == EINTR
                return n < 0 ? -1 : Int(message.msg_controllen)
            }
        }
    }
    if received < 0 { throw TestError("recvmsg: errno \(errno)") }
    guard received >= 20 else { throw TestError("recvmsg: no control message (controllen \(received))") }
    return try control.withUnsafeBytes { buffer in
        let length = buffer.load(fromByteOffset: 0, as: Int.self)
        let level = buffer.load(fromByteOffset: 8, as: Int32.self)
        let type = buffer.load(fromByteOffset: 12, as: Int32.self)
        guard level == SOL_SOCKET, type == Int32(SCM_RIGHTS), length >= 20 else {
            throw TestError("unexpected control message level \(level) type \(type) len \(length)")
        }
        return buffer.load(fromByteOffset: 16, as: Int32.self)
    }
}
