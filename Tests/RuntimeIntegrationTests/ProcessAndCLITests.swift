// More integration tests of bulkhead-runtime, in the same serialized suite: the process's
// attributes (user, env, cwd, capabilities, rlimits, no_new_privs, oom score, umask), the
// default mounts and masks, CPU cgroup settings, signal forwarding of a foreground run, and
// command-line behaviours (delete of a created container, kill --all, state of a missing id).

import BulkheadOCI
import FoundationEssentials
import Glibc
import Testing

extension RuntimeIntegrationTests {

    // MARK: the process

    @Test("process.user, env and cwd are applied")
    func userEnvCwd() async throws {
        let sandbox = try Sandbox("user")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "id -u; id -g; id -G; echo $BHIT_VAR; pwd"]) { spec in
            spec.process?.user = User(uid: 1000, gid: 1001, additionalGids: [1002, 1003])
            let env = spec.process?.env ?? []
            spec.process?.env = env + ["BHIT_VAR=hello-env"]
            spec.process?.cwd = "/tmp"
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("user")])
        #expect(result.status == 0, "\(result)")
        let out = lines(result.stdout)
        #expect(out.count == 5, "\(result)")
        if out.count == 5 {
            #expect(out[0] == "1000", "\(result)")
            #expect(out[1] == "1001", "\(result)")
            #expect(Set(out[2].split(separator: " ").map(String.init)) == ["1001", "1002", "1003"], "\(result)")
            #expect(out[3] == "hello-env", "\(result)")
            #expect(out[4] == "/tmp", "\(result)")
        }
    }

    @Test("capabilities, no_new_privs, rlimits, oom_score_adj and umask are applied")
    func processAttributes() async throws {
        let sandbox = try Sandbox("caps")
        defer { sandbox.cleanup() }
        let script = """
            grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status; \
            echo nofile=$(ulimit -n); echo oom=$(cat /proc/self/oom_score_adj); echo umask=$(umask)
            """
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", script]) { spec in
            spec.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 777, soft: 555)]
            // Ambient capabilities must be inheritable too (the kernel refuses them otherwise).
            let caps = spec.process?.capabilities?.bounding
            spec.process?.capabilities?.inheritable = caps
            spec.process?.oomScoreAdj = 123
            spec.process?.user.umask = 0o027
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("caps")])
        #expect(result.status == 0, "\(result)")
        var fields: [String: String] = [:]
        for line in lines(result.stdout) {
            if let colon = line.firstIndex(of: ":") {
                fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmed
            } else if let equals = line.firstIndex(of: "=") {
                fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
        // The default spec grants CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
        let mask = hex16((1 << 29) | (1 << 5) | (1 << 10))
        #expect(fields["CapBnd"] == mask, "\(result)")
        #expect(fields["CapEff"] == mask, "\(result)")
        #expect(fields["CapPrm"] == mask, "\(result)")
        #expect(fields["CapInh"] == mask, "\(result)")
        #expect(fields["CapAmb"] == mask, "\(result)")
        #expect(fields["NoNewPrivs"] == "1", "\(result)")
        #expect(fields["nofile"] == "555", "\(result)")
        #expect(fields["oom"] == "123", "\(result)")
        #expect(fields["umask"] == "0027", "\(result)")
    }

    @Test("default mounts: /proc is the container's, masked and read-only paths, a private network namespace")
    func defaultMountsAndMasks() async throws {
        let sandbox = try Sandbox("masks")
        defer { sandbox.cleanup() }
        let script = """
            echo timer_list=$(wc -c < /proc/timer_list); \
            if echo 1 > /proc/sys/kernel/domainname 2>/dev/null; then echo procsys=writable; else echo procsys=readonly; fi; \
            echo net=$(ls /sys/class/net); \
            echo procs=$(ls /proc | grep -c '^[0-9]'); \
            if [ -c /dev/null ] && [ -c /dev/zero ] && [ -c /dev/urandom ] && [ -c /dev/tty ]; then echo devices=ok; else echo devices=missing; fi; \
            echo x > /dev/null && echo devnull=ok; \
            echo shm > /dev/shm/f && echo shm=$(cat /dev/shm/f)
            """
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", script])
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("masks")])
        #expect(result.status == 0, "\(result)")
        let out = Set(lines(result.stdout))
        // /proc/kcore does not exist on this kernel; /proc/timer_list (masked with /dev/null) does
        // and is not empty on the host.
        #expect(out.contains("timer_list=0"), "masked /proc/timer_list is readable: \(result)")
        #expect(out.contains("procsys=readonly"), "\(result)")
        #expect(out.contains("net=lo"), "network namespace has other interfaces: \(result)")
        // Only the shell, the $(...) subshell and ls/grep: a new pid namespace.
        let procs = lines(result.stdout).first { $0.hasPrefix("procs=") }.flatMap { Int($0.dropFirst(6)) }
        #expect(procs != nil && procs! <= 5, "\(result)")
        #expect(out.contains("devices=ok"), "\(result)")
        #expect(out.contains("devnull=ok"), "\(result)")
        #expect(out.contains("shm=shm"), "\(result)")
    }

    @Test("cpu shares, quota and period are written to the cpu cgroup")
    func cpuLimitsReadBack() async throws {
        let sandbox = try Sandbox("cpu")
        defer { sandbox.cleanup() }
        let id = sandbox.newID("cpu")
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"]) { spec in
            spec.linux?.resources?.cpu = Resources.CPU(shares: 512, quota: 50_000, period: 100_000)
        }
        let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
        try #require(run.status == 0, "\(run)")
        _ = try await sandbox.state(id)
        let directory = "/sys/fs/cgroup/cpu/bulkhead/\(id)"
        #expect(readText(directory + "/cpu.shares")?.trimmed == "512")
        #expect(readText(directory + "/cpu.cfs_quota_us")?.trimmed == "50000")
        #expect(readText(directory + "/cpu.cfs_period_us")?.trimmed == "100000")
        let delete = try await sandbox.run(["delete", "--force", id])
        #expect(delete.status == 0, "\(delete)")
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    // MARK: run in the foreground

    @Test("a foreground run forwards SIGTERM to the container")
    func foregroundRunForwardsSignals() async throws {
        let sandbox = try Sandbox("forward")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 1 & wait; done"])
        let id = sandbox.newID("forward")
        let running = try sandbox.start(["run", "--bundle", bundle.path, id])
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline, !lines(running.stdout).contains("ready") {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(lines(running.stdout).contains("ready"), "the container never started")
        kill(running.pid, SIGTERM)
        let result = try await running.wait(timeout: .seconds(30))
        #expect(result.status == 42, "\(result)")
        #expect(lines(result.stdout).contains("got-term"), "\(result)")
        #expect(!exists(sandbox.root + "/" + id))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    @Test("run --detach --keep leaves a stopped container that delete then removes")
    func detachedContainerStops() async throws {
        let sandbox = try Sandbox("stops")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "echo bye"])
        let id = sandbox.newID("stops")
        let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
        try #require(run.status == 0, "\(run)")
        let stopped = try await sandbox.waitForStatus(id, "stopped")
        #expect(stopped?.status == "stopped")
        #expect(stopped?.pid == 0, "a stopped container reports pid 0 (runc does)")
        #expect(lines(readText(run.stdoutPath ?? "") ?? "") == ["bye"])
        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status == 0, "\(delete)")
        #expect(!exists(sandbox.root + "/" + id))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    // MARK: command line

    @Test("delete of a created (never started) container kills its process and removes it")
    func deleteCreatedContainer() async throws {
        let sandbox = try Sandbox("delcreated")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sleep", "60"])
        let id = sandbox.newID("delcreated")
        let pidFile = sandbox.directory + "/pid"
        let create = try await sandbox.run(["create", "--bundle", bundle.path, "--pid-file", pidFile, id])
        try #require(create.status == 0, "\(create)")
        let pid = try #require(readText(pidFile).flatMap { pid_t($0.trimmed) })
        sandbox.track(pid: pid)
        #expect(isAlive(pid))
        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status == 0, "\(delete)")
        // delete waits for the process: it is gone (or a zombie of ours, the subreaper) now.
        #expect(!isAlive(pid), "process \(pid) of the deleted container still runs")
        #expect(!exists(sandbox.root + "/" + id))
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
        let start = try await sandbox.run(["start", id])
        #expect(start.status != 0, "start of a deleted container: \(start)")
    }

    @Test("kill --all signals every process of the container")
    func killAll() async throws {
        let sandbox = try Sandbox("killall")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "sleep 60 & sleep 60 & echo started; wait"])
        let id = sandbox.newID("killall")
        let run = try await sandbox.run(["run", "--detach", "--bundle", bundle.path, id])
        try #require(run.status == 0, "\(run)")
        let state = try #require(try await sandbox.state(id).0)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        var procs: [String] = []
        while clock.now < deadline {
            procs = lines(readText("/sys/fs/cgroup/pids/bulkhead/\(id)/cgroup.procs") ?? "")
            if procs.count >= 3 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(procs.count == 3, "expected sh and two sleeps in the cgroup: \(procs)")
        let psResult = try await sandbox.run(["ps", "--format", "json", id])
        let psPids = (try? JSONDecoder().decode([Int32].self, from: Data(psResult.stdout.utf8))) ?? []
        #expect(Set(psPids.map { "\($0)" }) == Set(procs), "\(psResult)")
        #expect(psPids.contains(state.pid), "\(psResult)")

        let kill = try await sandbox.run(["kill", "--all", id, "KILL"])
        #expect(kill.status == 0, "\(kill)")
        #expect(try await sandbox.waitForStatus(id, "stopped")?.status == "stopped")
        let delete = try await sandbox.run(["delete", id])
        #expect(delete.status == 0, "\(delete)")
        #expect(existingCgroups("bulkhead/\(id)").isEmpty)
    }

    @Test("state, start, kill and delete of an unknown id fail; invalid ids are refused")
    func unknownAndInvalidIDs() async throws {
        let sandbox = try Sandbox("unknown")
        defer { sandbox.cleanup() }
        for command in [["state"], ["start"], ["kill"], ["delete"]] {
            let result = try await sandbox.run(command + ["bhit-no-such-container"])
            #expect(result.status != 0, "\(result)")
            #expect(result.stderr.contains("bhit-no-such-container"), "\(result)")
        }
        let bundle = try sandbox.makeBundle(args: ["true"])
        for bad in ["../escape", "a/b", ".."] {
            let result = try await sandbox.run(["create", "--bundle", bundle.path, bad])
            #expect(result.status != 0, "\(result)")
        }
        #expect(!exists(sandbox.directory + "/escape"))
        #expect(directoryEntries(sandbox.root).isEmpty, "state root: \(directoryEntries(sandbox.root))")
    }

    @Test("--log FILE --log-format json: a failed kill writes a JSON error line; text format writes level=error")
    func logFormats() async throws {
        let sandbox = try Sandbox("log")
        defer { sandbox.cleanup() }
        let jsonLog = sandbox.directory + "/json.log"
        let failed = try await sandbox.run(["kill", "bhit-missing", "KILL"], log: (jsonLog, "json"))
        #expect(failed.status != 0)
        struct LogLine: Decodable { var level: String; var msg: String; var time: String }
        let last = try #require(lines(readText(jsonLog) ?? "").last)
        let entry = try? JSONDecoder().decode(LogLine.self, from: Data(last.utf8))
        #expect(entry?.level == "error", "\(last)")
        #expect(entry?.msg.contains("bhit-missing") == true, "\(last)")

        let textLog = sandbox.directory + "/text.log"
        let failedText = try await sandbox.run(["kill", "bhit-missing", "KILL"], log: (textLog, "text"))
        #expect(failedText.status != 0)
        let text = readText(textLog) ?? ""
        #expect(text.contains("level=error"), "\(text)")
        #expect(text.contains("bhit-missing"), "\(text)")
    }
}

/// A capability mask as /proc/self/status prints it: 16 hex digits.
func hex16(_ value: UInt64) -> String {
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
}

extension RuntimeIntegrationTests {
    @Test("a foreground run with terminal true proxies a pty: tty is a pts, stdin reaches the container, the exit code comes back")
    func foregroundTerminal() async throws {
        let sandbox = try Sandbox("fgtty")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "tty; read line; echo got:$line; exit 5"]) { spec in
            spec.process?.terminal = true
        }
        let input = try makePipe()
        defer { close(input.write) }
        let running: RunningCommand
        do {
            defer { close(input.read) }
            running = try sandbox.start(["run", "--bundle", bundle.path, sandbox.newID("fgtty")], stdin: input.read)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while clock.now < deadline, !running.stdout.contains("/dev/") {
            try await Task.sleep(for: .milliseconds(10))
        }
        _ = "abc\n".withCString { write(input.write, $0, 4) }
        let result = try await running.wait(timeout: .seconds(30))
        #expect(result.status == 5, "\(result)")
        let out = lines(result.stdout)
        #expect(out.first?.hasPrefix("/dev/pts/") == true || out.first == "/dev/console", "\(result)")
        #expect(out.contains("got:abc"), "\(result)")
    }

    @Test("linux.sysctl is applied inside the container's network namespace only")
    func sysctl() async throws {
        let sandbox = try Sandbox("sysctl")
        defer { sandbox.cleanup() }
        let hostBefore = readText("/proc/sys/net/ipv4/ip_default_ttl")?.trimmed
        let bundle = try sandbox.makeBundle(args: ["cat", "/proc/sys/net/ipv4/ip_default_ttl"]) { spec in
            spec.linux?.sysctl = ["net.ipv4.ip_default_ttl": "42"]
        }
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("sysctl")])
        #expect(result.status == 0, "\(result)")
        #expect(lines(result.stdout) == ["42"], "\(result)")
        #expect(readText("/proc/sys/net/ipv4/ip_default_ttl")?.trimmed == hostBefore, "the host's sysctl changed")
    }

    @Test("spec refuses to overwrite config.json; features is JSON naming namespaces and the spec version")
    func specAndFeatures() async throws {
        let sandbox = try Sandbox("spec")
        defer { sandbox.cleanup() }
        let dir = sandbox.directory + "/specbundle"
        try makeDirectory(dir)
        let first = try await sandbox.run(["spec", "--bundle", dir])
        #expect(first.status == 0, "\(first)")
        let written = try #require(readText(dir + "/config.json"))
        let spec = try JSONDecoder().decode(Spec.self, from: Data(written.utf8))
        #expect(spec.process?.args == ["sh"])
        #expect(spec.root?.path == "rootfs")
        let second = try await sandbox.run(["spec", "--bundle", dir])
        #expect(second.status != 0, "\(second)")
        #expect(readText(dir + "/config.json") == written, "spec overwrote config.json")

        let features = try await sandbox.run(["features"])
        #expect(features.status == 0, "\(features)")
        struct FeaturesJSON: Decodable {
            var ociVersionMin: String
            var ociVersionMax: String
            struct Linux: Decodable { var namespaces: [String]? }
            var linux: Linux?
        }
        let decoded = try JSONDecoder().decode(FeaturesJSON.self, from: Data(features.stdout.utf8))
        #expect(decoded.ociVersionMax == Spec.version)
        let namespaces = Set(decoded.linux?.namespaces ?? [])
        #expect(namespaces.isSuperset(of: ["pid", "network", "ipc", "uts", "mount", "user"]), "\(features)")
    }
}
