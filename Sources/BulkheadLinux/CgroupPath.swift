/// The cgroup path of a container inside every hierarchy, from the spec's linux.cgroupsPath.
public enum CgroupPath {
    /// Absolute paths are used as they are below each hierarchy root; relative paths are taken
    /// relative to each hierarchy root (as runc does on cgroup v2); no path gives
    /// "/bulkhead/<id>". The result is absolute and normalised ("/a/b"), never the root itself.
    public static func resolve(cgroupsPath: String?, containerID: String) throws(CgroupError) -> String {
        let field = "linux.cgroupsPath"
        guard let cgroupsPath, !cgroupsPath.isEmpty else {
            if containerID.isEmpty || containerID.contains("/") || containerID == "." || containerID == ".." {
                throw CgroupError(operation: "container id", message: "\"\(containerID)\" cannot name a cgroup")
            }
            return "/bulkhead/\(containerID)"
        }
        // systemd's "slice:prefix:name" needs the systemd cgroup driver (D-Bus), which is not built.
        if !cgroupsPath.hasPrefix("/") && cgroupsPath.split(separator: ":", omittingEmptySubsequences: false).count == 3 {
            throw CgroupError(operation: field,
                              message: "\"\(cgroupsPath)\" is systemd's slice:prefix:name syntax; the systemd cgroup driver is not supported yet, give a path")
        }
        var components: [Substring] = []
        for component in cgroupsPath.split(separator: "/") where component != "." {
            if component == ".." {
                throw CgroupError(operation: field, message: "\"\(cgroupsPath)\" contains \"..\"; it must stay below the hierarchy root")
            }
            components.append(component)
        }
        if components.isEmpty {
            throw CgroupError(operation: field, message: "\"\(cgroupsPath)\" names the root cgroup, which a container cannot own")
        }
        return "/" + components.joined(separator: "/")
    }
}
