import BulkheadContainer
import BulkheadLinux
import BulkheadOCI
import FoundationEssentials
import Glibc

/// `update`: new limits from `--resources FILE` (linux.resources JSON; `-` reads stdin) and/or
/// runc's single-value flags, which override the file's fields.
enum UpdateCommand {
    static let flags: [Arguments.Flag] = [
        .init("resources", "r", value: true), .init("blkio-weight", value: true), .init("cpu-period", value: true),
        .init("cpu-quota", value: true), .init("cpu-share", value: true), .init("cpu-rt-period", value: true),
        .init("cpu-rt-runtime", value: true), .init("cpuset-cpus", value: true), .init("cpuset-mems", value: true),
        .init("memory", value: true), .init("memory-reservation", value: true), .init("memory-swap", value: true),
        .init("pids-limit", value: true),
    ]

    static func resources(_ a: Arguments) throws -> Resources {
        var r = Resources()
        if let source = a["resources"] {
            let bytes: [UInt8]
            do {
                bytes = source == "-" ? try Files.readAll(0, path: "stdin") : try Files.readBytes(source)
            } catch {
                throw RuntimeError("update: --resources: \(error)")
            }
            do {
                r = try FastJSON.decode(Resources.self, from: bytes)
            } catch {
                throw RuntimeError("update: --resources: \(Spec.translate(error))")
            }
        }
        func number<T: FixedWidthInteger>(_ flag: String, _ type: T.Type) throws -> T? {
            guard let text = a[flag] else { return nil }
            guard let n = T(text) else { throw RuntimeError("update: --\(flag): \"\(text)\" is not a valid \(T.isSigned ? "integer" : "non-negative integer")") }
            return n
        }
        func bytes(_ flag: String) throws -> Int64? {
            guard let text = a[flag] else { return nil }
            guard let n = parseBytes(text) else { throw RuntimeError("update: --\(flag): \"\(text)\" is not a size (a number of bytes, optionally with k, m, g or t; -1 for no limit)") }
            return n
        }
        if let w = try number("blkio-weight", UInt16.self) { r.blockIO = r.blockIO ?? .init(); r.blockIO?.weight = w }
        var cpu = r.cpu ?? .init()
        if let v = try number("cpu-period", UInt64.self) { cpu.period = v }
        if let v = try number("cpu-quota", Int64.self) { cpu.quota = v }
        if let v = try number("cpu-share", UInt64.self) { cpu.shares = v }
        if let v = try number("cpu-rt-period", UInt64.self) { cpu.realtimePeriod = v }
        if let v = try number("cpu-rt-runtime", Int64.self) { cpu.realtimeRuntime = v }
        if let v = a["cpuset-cpus"] { cpu.cpus = v }
        if let v = a["cpuset-mems"] { cpu.mems = v }
        if cpu != Resources.CPU() { r.cpu = cpu }
        var memory = r.memory ?? .init()
        if let v = try bytes("memory") { memory.limit = v }
        if let v = try bytes("memory-reservation") { memory.reservation = v }
        if let v = try bytes("memory-swap") { memory.swap = v }
        if memory != Resources.Memory() { r.memory = memory }
        if let v = try number("pids-limit", Int64.self) { r.pids = .init(limit: v) }
        // The same rules as config.json's linux.resources.
        var probe = Spec.defaultSpec()
        probe.linux?.resources = r
        do {
            try probe.validate(forCreate: false)
        } catch {
            throw RuntimeError("update: \(error.description.replacing("config.json: linux.resources.", with: ""))")
        }
        return r
    }

    /// "64m", "1G", "512" (bytes), "-1" (no limit): runc's sizes.
    static func parseBytes(_ text: String) -> Int64? {
        if text == "-1" { return -1 }
        let lower = text.lowercased()
        let units: [(String, Int64)] = [("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10),
                                        ("t", 1 << 40), ("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10), ("b", 1)]
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            guard let n = Int64(lower.dropLast(suffix.count)), n >= 0 else { return nil }
            let (v, overflow) = n.multipliedReportingOverflow(by: factor)
            return overflow ? nil : v
        }
        guard let n = Int64(lower), n >= 0 else { return nil }
        return n
    }
}

/// `events`: the container's statistics as runc prints them, once (`--stats`) or every
/// `--interval` until the container stops.
enum EventsCommand {
    struct Event: Encodable {
        var type = "stats"
        var id: String
        var data: Data
    }

    struct Data: Encodable {
        struct CPU: Encodable { struct Usage: Encodable { var total: UInt64? }; var usage: Usage }
        struct Memory: Encodable { struct Usage: Encodable { var usage: UInt64?; var max: UInt64?; var limit: UInt64? }; var usage: Usage }
        struct Pids: Encodable { var current: UInt64?; var limit: UInt64? }
        var cpu: CPU
        var memory: Memory
        var pids: Pids
    }

    static func event(id: String, _ s: Cgroup.Stats) -> Event {
        Event(id: id, data: Data(cpu: .init(usage: .init(total: s.cpuUsageNanoseconds)),
                                 memory: .init(usage: .init(usage: s.memoryUsage, max: s.memoryMaxUsage, limit: s.memoryLimit)),
                                 pids: .init(current: s.pidsCurrent, limit: s.pidsLimit)))
    }

    /// "5s", "500ms", "1m", or plain seconds.
    static func parseInterval(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let v = Double(text.dropLast(suffix.count)), v > 0 else { return nil }
            return v * factor
        }
        return Double(text).flatMap { $0 > 0 ? $0 : nil }
    }
}
