import BulkheadContainer
import BulkheadLinux
import BulkheadOCI
import FoundationEssentials
import Glibc

/// `bulkhead-runtime`: runc's command line over the container engine, so that podman,
/// containerd, CRI-O and Docker use it unchanged.
public enum RuntimeCommandLine {
    public static let version = "0.1.0"

    static let globalFlags: [Arguments.Flag] = [
        .init("root", value: true), .init("log", value: true), .init("log-format", value: true),
        .init("debug"), .init("systemd-cgroup"), .init("criu", value: true), .init("rootless", value: true),
        .init("help", "h"), .init("version", "v"),
    ]
    static let createFlags: [Arguments.Flag] = [
        .init("bundle", "b", value: true), .init("pid-file", value: true), .init("console-socket", value: true),
        .init("no-pivot"), .init("no-new-keyring"), .init("preserve-fds", value: true), .init("pidfd-socket", value: true),
    ]

    static let usage = """
        usage: bulkhead-runtime [global flags] COMMAND [flags] ARGS

        An OCI runtime with runc's command line.

        Commands:
          spec      [--bundle DIR] [--rootless]          write a default config.json
          create    [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
          start     ID                                   run the user's program of a created container
          run       [create flags] [--detach] [--keep] ID  create and start; in the foreground, wait and delete
          state     ID                                   print the container's state as JSON
          kill      [--all] ID [SIGNAL]                  signal the container (default SIGTERM)
          delete    [--force] ID                         remove a stopped (or, with --force, any) container
          list      [--format table|json] [--quiet]      list containers
          ps        [--format table|json] ID [PS ARGS]   processes in the container
          exec      [--tty] [--detach] [--pid-file F] [--console-socket S] [--cwd D] [--env K=V]... [--user U[:G]]
                    [--cap CAP]... [--process FILE] [--preserve-fds N] ID [COMMAND ARGS...]
                                                         run another process in a running container
          pause     ID / resume ID                       freeze / thaw every process of the container
          update    [--resources FILE|-] [--memory 64m] [--pids-limit N] [--cpu-quota N] ... ID
                                                         new cgroup limits (linux.resources JSON or runc's flags)
          events    [--stats] [--interval 5s] ID         cgroup statistics as JSON lines
          features                                       what this runtime supports, as JSON

        Global flags:
          --root DIR               state directory (default /run/bulkhead; $XDG_RUNTIME_DIR/bulkhead for a user)
          --log FILE               log file (default stderr)
          --log-format text|json   log format (default text)
          --debug                  log debug messages
          --systemd-cgroup         use the systemd cgroup driver (not supported: an error on create)
        """

    /// Runs one command line (without the program name); returns the exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        var log = Log(path: nil, format: .text, debug: false)
        do {
            let global = try Arguments.parse(arguments, flags: globalFlags)
            guard let format = Log.Format(rawValue: global["log-format"] ?? "text") else {
                throw RuntimeError("--log-format: \"\(global["log-format"]!)\" is not one of text, json")
            }
            log = Log(path: global["log"], format: format, debug: global.has("debug"))
            if global.has("version") {
                output("bulkhead-runtime version \(version)\nspec: \(Spec.version)")
                return 0
            }
            guard let command = global.positional.first, !global.has("help") else {
                output(usage)
                return global.has("help") ? 0 : 1
            }
            let rest = Array(global.positional.dropFirst())
            var runtime = ContainerRuntime(root: global["root"] ?? StateStore.defaultRoot())
            let warnings = log
            runtime.warn = { warnings.warning($0) }
            return try dispatch(command, rest, runtime: runtime, global: global)
        } catch let error as Arguments.UsageError {
            log.error("\(error)")
            return 1
        } catch {
            log.error("\(error)")
            return 1
        }
    }

    static func dispatch(_ command: String, _ args: [String], runtime: ContainerRuntime, global: Arguments) throws -> Int32 {
        switch command {
        case "spec":
            let a = try Arguments.parse(args, flags: [.init("bundle", "b", value: true), .init("rootless")])
            try writeSpec(bundle: a["bundle"] ?? ".", rootless: a.has("rootless"))
        case "create":
            let a = try Arguments.parse(args, flags: createFlags)
            try refuseSystemd(global)
            try runtime.create(createRequest(a, id: try oneID(a, command)))
        case "run":
            let a = try Arguments.parse(args, flags: createFlags + [.init("detach", "d"), .init("keep"), .init("no-subreaper")])
            try refuseSystemd(global)
            let request = try createRequest(a, id: try oneID(a, command))
            return try runtime.run(request, detach: a.has("detach"), keep: a.has("keep"))
        case "start":
            try runtime.start(try oneID(try Arguments.parse(args, flags: []), command))
        case "state":
            let state = try runtime.state(try oneID(try Arguments.parse(args, flags: []), command))
            output(try json(state, pretty: true))
        case "kill":
            let a = try Arguments.parse(args, flags: [.init("all", "a")])
            guard (1...2).contains(a.positional.count) else { throw RuntimeError("kill: expected ID [SIGNAL]") }
            let name = a.positional.count == 2 ? a.positional[1] : "SIGTERM"
            guard let signal = Signals.parse(name) else {
                throw RuntimeError("kill: unknown signal \"\(name)\": expected a name like KILL or SIGTERM, or a number 1-64")
            }
            try runtime.kill(a.positional[0], signal: signal, all: a.has("all"))
        case "delete":
            let a = try Arguments.parse(args, flags: [.init("force", "f")])
            try runtime.delete(try oneID(a, command), force: a.has("force"))
        case "list":
            let a = try Arguments.parse(args, flags: [.init("format", "f", value: true), .init("quiet", "q")])
            try list(runtime.list(), format: a["format"] ?? "table", quiet: a.has("quiet"))
        case "ps":
            let a = try Arguments.parse(args, flags: [.init("format", "f", value: true)])
            guard let id = a.positional.first else { throw RuntimeError("ps: expected ID [PS ARGS]") }
            return try ps(runtime, id: id, format: a["format"] ?? "table", psArgs: Array(a.positional.dropFirst()))
        case "exec":
            return try ExecCommand.run(args, runtime: runtime)
        case "pause":
            try runtime.pause(try oneID(try Arguments.parse(args, flags: []), command))
        case "resume":
            try runtime.resume(try oneID(try Arguments.parse(args, flags: []), command))
        case "update":
            let a = try Arguments.parse(args, flags: UpdateCommand.flags)
            let id = try oneID(a, command)
            try runtime.update(id, resources: try UpdateCommand.resources(a))
        case "events":
            let a = try Arguments.parse(args, flags: [.init("stats"), .init("interval", value: true)])
            let id = try oneID(a, command)
            guard let interval = EventsCommand.parseInterval(a["interval"] ?? "5s") else {
                throw RuntimeError("events: --interval \"\(a["interval"]!)\" is not a duration like 5s or 500ms")
            }
            repeat {
                output(try json(EventsCommand.event(id: id, try runtime.stats(id)), pretty: false))
                if a.has("stats") { break }
                usleep(UInt32(min(interval * 1_000_000, Double(UInt32.max))))
            } while (try? runtime.state(id).status).map { $0 != .stopped } ?? false
        case "features":
            _ = try Arguments.parse(args, flags: [])
            output(try json(features(), pretty: true))
        default:
            throw RuntimeError("unknown command \"\(command)\"; see bulkhead-runtime --help")
        }
        return 0
    }

    static func oneID(_ a: Arguments, _ command: String) throws(RuntimeError) -> String {
        guard a.positional.count == 1 else {
            throw RuntimeError("\(command): expected exactly one container ID, got \(a.positional.count) arguments")
        }
        return a.positional[0]
    }

    static func refuseSystemd(_ global: Arguments) throws(RuntimeError) {
        if global.has("systemd-cgroup") {
            throw RuntimeError("--systemd-cgroup: the systemd cgroup driver is not supported yet; use the cgroupfs driver (drop the flag, or cgroup_manager = \"cgroupfs\" in the engine)")
        }
    }

    static func createRequest(_ a: Arguments, id: String) throws(RuntimeError) -> CreateRequest {
        var preserve: Int32 = 0
        if let text = a["preserve-fds"] {
            guard let n = Int32(text), n >= 0 else { throw RuntimeError("--preserve-fds: \"\(text)\" is not a count of descriptors") }
            preserve = n
        }
        return CreateRequest(id: id, bundle: a["bundle"] ?? ".", pidFile: a["pid-file"], consoleSocket: a["console-socket"],
                             noPivot: a.has("no-pivot"), noNewKeyring: a.has("no-new-keyring"), preserveFds: preserve)
    }

    static func json(_ value: some Encodable, pretty: Bool) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .withoutEscapingSlashes] : [.withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func writeSpec(bundle: String, rootless: Bool) throws {
        let path = bundle + "/config.json"
        if Files.exists(path) { throw RuntimeError("spec: \(path) exists; remove it first") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        let data = try encoder.encode(Spec.defaultSpec(rootless: rootless, hostUID: getuid(), hostGID: getgid()))
        try Files.write(path, Array(data) + [0x0a], create: true)
    }

    static func list(_ states: [ContainerState], format: String, quiet: Bool) throws {
        if quiet {
            for s in states { output(s.id) }
            return
        }
        switch format {
        case "json":
            output(try json(states, pretty: false))
        case "table":
            let rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
                + states.map { [$0.id, "\($0.pid)", $0.status.rawValue, $0.bundle, $0.created, $0.owner] }
            output(table(rows), newline: false)
        default:
            throw RuntimeError("list: --format \"\(format)\" is not one of table, json")
        }
    }

    /// Columns padded to their widest cell, as runc's tabwriter prints them.
    static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.first?.count ?? 0)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 3)
            }.joined() + "\n"
        }.joined()
    }

    /// `ps`: json prints the pids; table runs ps(1) and keeps its header and the container's lines.
    static func ps(_ runtime: ContainerRuntime, id: String, format: String, psArgs: [String]) throws -> Int32 {
        let pids = try runtime.pids(id)
        switch format {
        case "json":
            output(try json(pids, pretty: false))
            return 0
        case "table":
            let psOutput = try Subprocess.output(["ps"] + (psArgs.isEmpty ? ["-ef"] : psArgs))
            var lines = psOutput.split(separator: "\n", omittingEmptySubsequences: false)
            guard let header = lines.first else { return 0 }
            guard let pidColumn = header.split(separator: " ").firstIndex(of: "PID") else {
                throw RuntimeError("ps: the ps output has no PID column")
            }
            output(header)
            lines.removeFirst()
            let wanted = Set(pids)
            for line in lines {
                let fields = line.split(separator: " ")
                if fields.count > pidColumn, let pid = Int32(fields[pidColumn]), wanted.contains(pid) { output(line) }
            }
            return 0
        default:
            throw RuntimeError("ps: --format \"\(format)\" is not one of table, json")
        }
    }

    static func features() -> Features {
        Features(
            ociVersionMin: "1.0.0", ociVersionMax: Spec.version,
            hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
            mountOptions: MountOptions.knownOptions,
            linux: .init(
                namespaces: NamespaceKind.cloneFlags.keys.sorted(),
                capabilities: Capability.all.map(\.name),
                cgroup: .init(v1: true, v2: true, systemd: false, systemdUser: false, rdma: false),
                seccomp: .init(
                    enabled: true, actions: SeccompFilter.supportedActions(),
                    operators: SeccompFilter.operators.map(\.name), archs: SeccompFilter.supportedArchitectures(),
                    knownFlags: SeccompFilter.knownFlags.map(\.name), supportedFlags: SeccompFilter.supportedFlags()),
                apparmor: .init(enabled: SecurityModules.appArmorEnabled),
                selinux: .init(enabled: SecurityModules.seLinuxEnabled),
                intelRdt: .init(enabled: false),
                mountExtensions: .init(idmap: .init(enabled: false))))
    }
}
