import Glibc

/// Why the KVM tests may not run: they need a read-write /dev/kvm.
let kvmAvailable = access("/dev/kvm", R_OK | W_OK) == 0
/// The ACPI tests disassemble the tables with ACPICA's iasl (Debian package acpica-tools).
let iaslAvailable = findInPath("iasl") != nil
/// The test guest is compiled at run time.
let gccAvailable = findInPath("gcc") != nil && findInPath("ld") != nil

func findInPath(_ tool: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(tool)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

struct ToolFailure: Error, CustomStringConvertible {
    let description: String
}

/// Runs a program (looked up in PATH) and waits; its output goes to the test log.
func runTool(_ argv: [String]) throws {
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let spawned = posix_spawnp(&pid, argv[0], nil, nil, cArgs, environ)
    guard spawned == 0 else { throw ToolFailure(description: "posix_spawnp \(argv[0]): errno \(spawned)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED && WEXITSTATUS == 0, spelled out: Swift cannot call the macros.
    guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
        throw ToolFailure(description: "\(argv.joined(separator: " ")) failed with wait status \(status)")
    }
}

/// Runs a program (looked up in PATH) and returns what it printed on stdout.
func toolOutput(_ argv: [String]) throws -> String {
    let directory = try makeTemporaryDirectory()
    defer { removeTree(directory) }
    try runTool(["sh", "-c", #"out=$1; shift; exec "$@" > "$out""#, "sh", directory + "/out"] + argv)
    return String(decoding: try readFile(directory + "/out"), as: UTF8.self)
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw ToolFailure(description: "fopen \(path): errno \(errno)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let f = fopen(path, "wb") else { throw ToolFailure(description: "fopen \(path): errno \(errno)") }
    defer { fclose(f) }
    guard fwrite(bytes, 1, bytes.count, f) == bytes.count else {
        throw ToolFailure(description: "fwrite \(path): errno \(errno)")
    }
}

/// A fresh directory under /tmp; the caller removes it with `removeTree`.
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/bulkhead-vmm-test-XXXXXX".utf8CString)
    guard let dir = mkdtemp(&template) else { throw ToolFailure(description: "mkdtemp: errno \(errno)") }
    return String(cString: dir)
}

func removeTree(_ path: String) { try? runTool(["rm", "-rf", path]) }

/// Directory of the guest sources, next to this file.
let guestSourceDirectory: String = {
    let file = #filePath
    return String(file[..<file.lastIndex(of: "/")!]) + "/Guests"
}()

/// Compiles the boot test guest (Guests/boot_entry.S + boot_guest.c, linked at 1 MiB like a
/// vmlinux) into an ELF in a fresh temporary directory and returns its bytes.
func buildBootGuest() throws -> [UInt8] { try buildGuest("boot_guest.c") }

/// Compiles Guests/boot_entry.S + Guests/`source` (which defines guest_main) the same way, with
/// `extraSources` (more files of Guests/) linked in.
func buildGuest(_ source: String, extraSources: [String] = []) throws -> [UInt8] {
    try buildGuest(source, linkerScript: "boot_guest.ld", extraSources: extraSources)
}

/// Compiles Guests/boot_entry.S + Guests/`source` as a bzImage's protected-mode kernel: a flat
/// binary for 1 MiB with the 64-bit entry at +0x200 (Guests/bzimage_guest.ld).
func buildFlatGuest(_ source: String) throws -> [UInt8] {
    let directory = try makeTemporaryDirectory()
    defer { removeTree(directory) }
    try writeFile("\(directory)/guest.elf", try buildGuest(source, linkerScript: "bzimage_guest.ld"))
    try runTool(["objcopy", "-O", "binary", "\(directory)/guest.elf", "\(directory)/guest.bin"])
    return try readFile("\(directory)/guest.bin")
}

/// Guests/build-guest.sh has the compiler flags; the benches build their guests with it too.
func buildGuest(_ source: String, linkerScript: String, extraSources: [String] = []) throws -> [UInt8] {
    let directory = try makeTemporaryDirectory()
    defer { removeTree(directory) }
    let elf = "\(directory)/guest.elf"
    try runTool(["sh", "\(guestSourceDirectory)/build-guest.sh", source, elf, linkerScript] + extraSources)
    return try readFile(elf)
}
