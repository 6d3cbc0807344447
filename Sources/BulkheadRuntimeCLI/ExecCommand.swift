import BulkheadContainer
import BulkheadLinux
import BulkheadOCI

/// `exec`: runc's flags over the process of config.json, or a whole process from `--process`.
enum ExecCommand {
    static let flags: [Arguments.Flag] = [
        .init("process", "p", value: true), .init("tty", "t"), .init("detach", "d"), .init("pid-file", value: true),
        .init("console-socket", value: true), .init("cwd", value: true), .init("env", "e", value: true),
        .init("user", "u", value: true), .init("additional-gids", "g", value: true), .init("cap", "c", value: true),
        .init("preserve-fds", value: true), .init("no-new-privs"), .init("process-label", value: true),
        .init("apparmor", value: true), .init("ignore-paused"), .init("pidfd-socket", value: true),
    ]

    static func run(_ args: [String], runtime: ContainerRuntime) throws -> Int32 {
        let a = try Arguments.parse(args, flags: flags)
        guard let id = a.positional.first else { throw RuntimeError("exec: expected ID [COMMAND ARGS...]") }
        let process = try process(a)
        var preserve: Int32 = 0
        if let text = a["preserve-fds"] {
            guard let n = Int32(text), n >= 0 else { throw RuntimeError("exec: --preserve-fds: \"\(text)\" is not a count of descriptors") }
            preserve = n
        }
        if let label = a["apparmor"], !label.isEmpty {
            throw RuntimeError("exec: --apparmor \(label): AppArmor is not supported by this runtime")
        }
        return try runtime.exec(ExecRequest(id: id, process: process, detach: a.has("detach"), pidFile: a["pid-file"],
                                            consoleSocket: a["console-socket"], preserveFds: preserve))
    }

    static func process(_ a: Arguments) throws -> ExecProcess {
        if let path = a["process"] {
            let bytes: [UInt8]
            do { bytes = try Files.readBytes(path) } catch { throw RuntimeError("exec: --process: \(error)") }
            do {
                return .given(try FastJSON.decode(Process.self, from: bytes))
            } catch {
                throw RuntimeError("exec: --process \(path): \(Spec.translate(error).description.replacing("config.json: ", with: ""))")
            }
        }
        let command = Array(a.positional.dropFirst())
        guard !command.isEmpty else { throw RuntimeError("exec: a command to run is required after the container ID") }
        // Applied by exec to the config.json it reads anyway.
        return .configured { (p: inout Process) throws(RuntimeError) in try applyFlags(a, command: command, to: &p) }
    }

    /// runc's exec flags over config.json's process.
    static func applyFlags(_ a: Arguments, command: [String], to p: inout Process) throws(RuntimeError) {
        p.args = command
        if let cwd = a["cwd"] { p.cwd = cwd }
        p.env = (p.env ?? []) + a.all("env")
        p.terminal = a.has("tty")
        if a.has("no-new-privs") { p.noNewPrivileges = true }
        if let user = a["user"] {
            let parts = user.split(separator: ":", maxSplits: 1)
            guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
                throw RuntimeError("exec: --user \"\(user)\": expected UID or UID:GID (numbers)")
            }
            p.user.uid = uid
            p.user.gid = parts.count == 2 ? UInt32(parts[1])! : 0
        }
        for gid in a.all("additional-gids") {
            guard let g = UInt32(gid) else { throw RuntimeError("exec: --additional-gids \"\(gid)\" is not a number") }
            p.user.additionalGids = (p.user.additionalGids ?? []) + [g]
        }
        for cap in a.all("cap") {
            let name = cap.uppercased().hasPrefix("CAP_") ? cap.uppercased() : "CAP_" + cap.uppercased()
            guard Capability.number(named: name) != nil else { throw RuntimeError("exec: --cap \"\(cap)\": unknown capability") }
            var caps = p.capabilities ?? Capabilities()
            caps.bounding = (caps.bounding ?? []) + [name]
            caps.effective = (caps.effective ?? []) + [name]
            caps.permitted = (caps.permitted ?? []) + [name]
            p.capabilities = caps
        }
    }
}
