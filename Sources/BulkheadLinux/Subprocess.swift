import Glibc
import CBulkhead

/// Runs a program (posix_spawn: no Swift code in a forked child) and collects what it prints.
public enum Subprocess {
    public struct Failure: Error, CustomStringConvertible {
        public var command: [String]
        public var status: Int32
        public var description: String { "\(command.joined(separator: " ")) exited with status \(status)" }
    }

    /// Stdout of `argv` (PATH searched); throws when it cannot start or exits non-zero.
    public static func output(_ argv: [String]) throws -> String {
        var pipeFds: [Int32] = [0, 0]
        guard pipe(&pipeFds) == 0 else { throw SystemError("pipe2") }
        _ = bh_set_cloexec(pipeFds[0], 1)
        _ = bh_set_cloexec(pipeFds[1], 1)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 1)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        let r = posix_spawnp(&pid, argv[0], &actions, nil, cArgs, environ)
        close(pipeFds[1])
        defer { close(pipeFds[0]) }
        if r != 0 { throw SystemError("spawn", path: argv[0], errno: r) }
        // Read to the end before waiting: a child blocked on a full pipe would never exit.
        let bytes = (try? Files.readAll(pipeFds[0], path: argv[0])) ?? []
        var status: Int32 = 0
        _ = retryingEINTR { waitpid(pid, &status, 0) }
        if status != 0 { throw Failure(command: argv, status: status) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
