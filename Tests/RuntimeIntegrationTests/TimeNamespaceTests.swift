import BulkheadOCI
import Glibc
import Testing

/// linux.timeOffsets in a new time namespace: the container's boot clock runs a day ahead.
@Suite(.serialized, .enabled(if: isRoot && haveBusybox && haveRuntime, "needs root, busybox and the built runtime"))
struct TimeNamespaceTests {
    @Test("a time namespace with a boottime offset of a day: /proc/uptime inside is a day ahead")
    func boottimeOffset() async throws {
        let sandbox = try Sandbox("timens")
        defer { sandbox.cleanup() }
        let bundle = try sandbox.makeBundle(args: ["sh", "-c", "cut -d ' ' -f 1 /proc/uptime; readlink /proc/self/ns/time"]) { spec in
            spec.linux?.namespaces?.append(Namespace(type: "time"))
            spec.linux?.timeOffsets = ["boottime": TimeOffset(secs: 86_400, nanosecs: 0)]
        }
        let hostUptime = Double(readText("/proc/uptime")?.split(separator: " ").first ?? "") ?? 0
        let result = try await sandbox.run(["run", "--bundle", bundle.path, sandbox.newID("timens")])
        #expect(result.status == 0, "\(result)")
        let out = lines(result.stdout)
        let inside = Double(out.first ?? "") ?? 0
        // A day ahead of the host's uptime read just before (plus the seconds the run took).
        #expect(inside >= hostUptime + 86_400 && inside < hostUptime + 86_400 + 600, "inside \(inside), host \(hostUptime)")
        #expect(out.dropFirst().first != (try? String(decoding: Array(readlinkBytes("/proc/self/ns/time")), as: UTF8.self)))
    }

    func readlinkBytes(_ path: String) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = readlink(path, &buffer, buffer.count)
        guard n > 0 else { throw TestError("readlink \(path): errno \(errno)") }
        return Array(buffer[0..<n])
    }
}
