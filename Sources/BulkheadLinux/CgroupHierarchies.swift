import Glibc

/// How a host mounts cgroups. Decided at run time from /proc/self/mountinfo, never assumed.
public enum CgroupLayout: String, Sendable, Equatable {
    /// Only cgroup2 holds controllers (named v1 hierarchies may still exist beside it).
    case unified
    /// Only v1 hierarchies.
    case legacy
    /// v1 hierarchies for most controllers plus a cgroup2 mount (systemd's hybrid mode).
    case hybrid
}

public enum CgroupVersion: String, Sendable, Equatable {
    case v1, v2
}

/// One v1 hierarchy: a mount of filesystem type "cgroup" and the controllers bound to it.
/// Named hierarchies without controllers appear as "name=<name>" (e.g. "name=systemd").
public struct CgroupV1Hierarchy: Sendable, Equatable {
    public var mountPoint: String
    public var controllers: [String]

    public init(mountPoint: String, controllers: [String]) {
        self.mountPoint = mountPoint
        self.controllers = controllers
    }
}

/// The cgroup2 mount and the controllers its root offers (its cgroup.controllers). Controllers
/// bound to a v1 hierarchy are absent from that list: the kernel gives each to one version only.
public struct CgroupV2Mount: Sendable, Equatable {
    public var mountPoint: String
    public var controllers: [String]

    public init(mountPoint: String, controllers: [String]) {
        self.mountPoint = mountPoint
        self.controllers = controllers
    }
}

/// One line of /proc/<pid>/mountinfo, the fields the cgroup layer needs.
public struct MountInfoEntry: Sendable, Equatable {
    public var root: String
    public var mountPoint: String
    public var fsType: String
    public var superOptions: [String]
}

/// Where every cgroup controller lives on this host.
public struct CgroupHierarchies: Sendable, Equatable {
    public var v1: [CgroupV1Hierarchy]
    public var v2: CgroupV2Mount?

    public init(v1: [CgroupV1Hierarchy], v2: CgroupV2Mount?) {
        self.v1 = v1
        self.v2 = v2
    }

    public var layout: CgroupLayout {
        let v1HasControllers = v1.contains { $0.controllers.contains { !$0.hasPrefix("name=") } }
        if v2 == nil { return .legacy }
        return v1HasControllers ? .hybrid : .unified
    }

    /// Reads the mount table (by default /proc/self/mountinfo) and each cgroup2 mount's
    /// cgroup.controllers through `readFile` (tests pass fixtures for both).
    public static func detect(
        mountinfo: String? = nil,
        readFile: ((String) -> String?)? = nil
    ) throws(CgroupError) -> CgroupHierarchies {
        let readFile = readFile ?? { CgroupFiles.readIfPresent($0) }
        let text: String
        if let mountinfo { text = mountinfo } else { text = try CgroupFiles.read("/proc/self/mountinfo", operation: "detect cgroups") }
        var v1: [CgroupV1Hierarchy] = []
        var v2: CgroupV2Mount?
        for entry in parseMountInfo(text, fsTypes: ["cgroup", "cgroup2"]) {
            switch entry.fsType {
            case "cgroup":
                let controllers = entry.superOptions.filter(isControllerOption)
                // The same hierarchy may be mounted twice (bind mounts); the first mount serves.
                if controllers.isEmpty || v1.contains(where: { $0.controllers == controllers }) { continue }
                v1.append(CgroupV1Hierarchy(mountPoint: entry.mountPoint, controllers: controllers))
            case "cgroup2":
                if v2 != nil { continue }
                let list = readFile(entry.mountPoint + "/cgroup.controllers") ?? ""
                v2 = CgroupV2Mount(mountPoint: entry.mountPoint,
                                   controllers: list.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            default:
                continue
            }
        }
        if v1.isEmpty && v2 == nil {
            throw CgroupError(operation: "detect cgroups", message: "no cgroup or cgroup2 filesystem is mounted")
        }
        return CgroupHierarchies(v1: v1, v2: v2)
    }

    /// The version that serves `controller` here, or nil when the host lacks it.
    /// A controller bound to a v1 hierarchy cannot be used through cgroup2, so v1 is asked first.
    public func version(of controller: String) -> CgroupVersion? {
        if v1.contains(where: { $0.controllers.contains(controller) }) { return .v1 }
        if let v2, v2.controllers.contains(controller) { return .v2 }
        return nil
    }

    /// The mount point that holds `controller` in the given version.
    public func mountPoint(of controller: String, version: CgroupVersion) -> String? {
        switch version {
        case .v1: return v1.first(where: { $0.controllers.contains(controller) })?.mountPoint
        case .v2: return v2?.mountPoint
        }
    }

    /// Every hierarchy root a container's cgroup gets a directory under: each v1 mount, then cgroup2.
    public var allMountPoints: [String] {
        v1.map(\.mountPoint) + (v2.map { [$0.mountPoint] } ?? [])
    }

    /// Super options of a v1 mount that are flags, not controllers.
    static let v1MountFlags: Set<String> = [
        "rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods", "none",
    ]

    static func isControllerOption(_ option: String) -> Bool {
        if option.hasPrefix("name=") { return true }
        return !option.contains("=") && !v1MountFlags.contains(option)
    }

    /// Parses mountinfo text (proc(5)): "id parent maj:min root mountpoint options [optional…] -
    /// fstype source superoptions". Malformed lines are skipped.
    /// Entries of /proc/self/mountinfo; with `fsTypes`, only mounts of those types. Works on
    /// bytes: every container command reads this file, and Character-wise splitting of a few
    /// hundred lines cost more than the rest of `delete` (measured with callgrind).
    public static func parseMountInfo(_ text: String, fsTypes: [String]? = nil) -> [MountInfoEntry] {
        let bytes = Array(text.utf8)
        let wanted = fsTypes?.map { Array($0.utf8) }
        var entries: [MountInfoEntry] = []
        var fields: [Range<Int>] = []
        fields.reserveCapacity(16)
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0a { lineEnd += 1 }
            fields.removeAll(keepingCapacity: true)
            var i = lineStart
            while i < lineEnd {
                while i < lineEnd && bytes[i] == 0x20 { i += 1 }
                let start = i
                while i < lineEnd && bytes[i] != 0x20 { i += 1 }
                if i > start { fields.append(start..<i) }
            }
            lineStart = lineEnd + 1
            // Optional fields vary in number; the separator "-" ends them.
            guard let dash = fields.indices.dropFirst(6).first(where: { fields[$0].count == 1 && bytes[fields[$0].lowerBound] == 0x2d }),
                  dash + 2 < fields.count else { continue }
            let fsType = bytes[fields[dash + 1]]
            if let wanted, !wanted.contains(where: { $0.elementsEqual(fsType) }) { continue }
            func text(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }
            let superOptions = dash + 3 < fields.count
                ? bytes[fields[dash + 3]].split(separator: 0x2c).map { String(decoding: $0, as: UTF8.self) } : []
            entries.append(MountInfoEntry(root: unescapeOctal(text(fields[3])), mountPoint: unescapeOctal(text(fields[4])),
                                          fsType: text(fields[dash + 1]), superOptions: superOptions))
        }
        return entries
    }

    /// mountinfo writes space, tab, newline and backslash in paths as \040, \011, \012, \134.
    static func unescapeOctal(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        let source = Array(field.utf8)
        var index = 0
        while index < source.count {
            if source[index] == UInt8(ascii: "\\"), index + 4 <= source.count,
               let value = UInt8(String(decoding: source[(index + 1)..<(index + 4)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
