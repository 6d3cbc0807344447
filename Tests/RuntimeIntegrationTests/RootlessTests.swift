import BulkheadOCI
import FoundationEssentials
import Glibc
import Testing

let haveSetpriv = access("/usr/bin/setpriv", X_OK) == 0
let nobody: uid_t = 65534

/// bulkhead-runtime run by an unprivileged user (nobody, through setpriv): a user namespace that
/// maps only the user's own id, state under its own root, no cgroup (none is delegated to it).
@Suite(.serialized, .enabled(if: isRoot && haveBusybox && haveRuntime && haveSetpriv,
                             "needs root (to become nobody with setpriv), busybox and the built runtime"))
struct RootlessTests {
    func asNobody(_ sandbox: Sandbox, _ args: [String]) throws -> CommandResult {
        let state = sandbox.directory + "/rootless-state"
        if !exists(state) {
            try makeDirectory(state, mode: 0o700)
            chown(state, nobody, nobody)
        }
        let argv = ["/usr/bin/setpriv", "--reuid", "\(nobody)", "--regid", "\(nobody)", "--clear-groups",
                    "/usr/bin/env", "XDG_RUNTIME_DIR=\(sandbox.directory)", runtimeBinary, "--root", state] + args
        let running = try sandbox.spawn(argv, owner: nobody)
        return running.finish(waitBlocking(running.pid))
    }

    func rootlessBundle(_ sandbox: Sandbox, args: [String], configure: (inout Spec) -> Void = { _ in }) throws -> Bundle {
        try sandbox.makeBundle("rootless", args: args) { spec in
            let rootless = Spec.defaultSpec(args: args, rootless: true, hostUID: nobody, hostGID: nobody)
            spec.linux = rootless.linux
            spec.mounts = rootless.mounts
            spec.process?.capabilities = rootless.process?.capabilities
            configure(&spec)
        }
    }

    @Test("a user runs a container as root of its own user namespace, without a cgroup")
    func unprivilegedRun() throws {
        let sandbox = try Sandbox("rootless")
        defer { sandbox.cleanup() }
        let bundle = try rootlessBundle(sandbox, args: ["sh", "-c", "id -u; cat /proc/self/uid_map; echo pid=$$"])
        let id = sandbox.newID("rootless")
        let result = try asNobody(sandbox, ["run", "--bundle", bundle.path, id])
        #expect(result.status == 0, "\(result)")
        let out = lines(result.stdout)
        #expect(out.first == "0")
        #expect(out.dropFirst().first?.split(separator: " ") == ["0", "65534", "1"])
        #expect(out.last == "pid=1")
        // Nothing stays: the foreground run deleted its state, and no cgroup was made for it.
        #expect(directoryEntries(sandbox.directory + "/rootless-state").isEmpty)
        #expect(existingCgroups("bulkhead/" + id).isEmpty)
    }

    @Test("a user asking for a memory limit without a delegated cgroup gets an error and nothing is left")
    func limitsNeedACgroup() throws {
        let sandbox = try Sandbox("rootless-limit")
        defer { sandbox.cleanup() }
        let bundle = try rootlessBundle(sandbox, args: ["true"]) { spec in
            spec.linux?.resources = Resources(memory: .init(limit: 64 << 20))
        }
        let id = sandbox.newID("rootless-limit")
        let result = try asNobody(sandbox, ["create", "--bundle", bundle.path, id])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cgroup"), "\(result)")
        #expect(directoryEntries(sandbox.directory + "/rootless-state").isEmpty)
    }

    @Test("detached rootless lifecycle: create, start, state, kill, delete")
    func unprivilegedLifecycle() throws {
        let sandbox = try Sandbox("rootless-life")
        defer { sandbox.cleanup() }
        let bundle = try rootlessBundle(sandbox, args: ["sleep", "100"])
        let id = sandbox.newID("rootless-life")
        defer { _ = try? asNobody(sandbox, ["delete", "--force", id]) }
        #expect(try asNobody(sandbox, ["create", "--bundle", bundle.path, id]).status == 0)
        #expect(try asNobody(sandbox, ["start", id]).status == 0)
        let state = try asNobody(sandbox, ["state", id])
        #expect(state.stdout.contains("\"running\""), "\(state)")
        let pid = (try? JSONDecoder().decode(ContainerStateJSON.self, from: Data(state.stdout.utf8)))?.pid ?? 0
        #expect(pid > 0)
        #expect(try asNobody(sandbox, ["kill", id, "KILL"]).status == 0)
        reapIfChild(pid)
        var stopped = false
        for _ in 0..<200 where !stopped {
            stopped = try asNobody(sandbox, ["state", id]).stdout.contains("\"stopped\"")
            if !stopped { usleep(10_000) }
        }
        #expect(stopped)
        #expect(try asNobody(sandbox, ["delete", id]).status == 0)
        #expect(directoryEntries(sandbox.directory + "/rootless-state").isEmpty)
    }
}
