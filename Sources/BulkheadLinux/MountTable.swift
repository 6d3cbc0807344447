import Glibc

/// The runtime's own mount namespace as /proc/self/mountinfo shows it.
public enum MountTable {
    /// Mount points at `path` or below it, deepest first.
    public static func mountPoints(under path: String) -> [String] {
        guard let text = try? Files.readString("/proc/self/mountinfo") else { return [] }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        return CgroupHierarchies.parseMountInfo(text).map(\.mountPoint)
            .filter { $0 == path || $0.hasPrefix(prefix) }
            .sorted { $0.count > $1.count }
    }

    /// Detaches every mount at or below `path` (a container that shared the runtime's mount
    /// namespace made them); returns the first error, after trying all.
    public static func unmountAll(under path: String) throws(SystemError) {
        var firstError: SystemError?
        for point in mountPoints(under: path) where umount2(point, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            if firstError == nil { firstError = SystemError("umount", path: point) }
        }
        if let firstError { throw firstError }
    }
}
