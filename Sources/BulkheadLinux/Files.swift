import Glibc

/// Whole-file reads and writes with errors that name the file: state, config, cgroup and /proc
/// files, and the VMM's kernels and initrds.
public enum Files {
    public static func readBytes(_ path: String) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError("open", path: path) }
        defer { close(fd) }
        return try readAll(fd, path: path)
    }

    /// Everything `fd` gives until end of file; `path` names it in errors. Reads straight into
    /// the result's uninitialized storage: no bounce buffer and no zero-filling first (filling an
    /// 8 MB kernel element by element took bulkhead-vmm's debug build tens of seconds under
    /// nested emulation, measured). A regular file's size is the first guess (one byte more, so
    /// that a read sees the end without regrowing); kernel files report size 0 and start from a
    /// page.
    public static func readAll(_ fd: Int32, path: String) throws(SystemError) -> [UInt8] {
        var st = stat()
        var capacity = fstat(fd, &st) == 0 && st.st_size > 0 ? Int(st.st_size) + 1 : 4096
        var result: [UInt8] = []
        while true {
            var failure: Int32 = 0
            var ended = false
            let previous = result
            result = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                previous.withUnsafeBufferPointer { old in
                    if let from = old.baseAddress { buffer.baseAddress!.initialize(from: from, count: old.count) }
                }
                count = previous.count
                while count < capacity {
                    let n = read(fd, buffer.baseAddress! + count, capacity - count)
                    if n < 0 {
                        if errno == EINTR { continue }
                        failure = errno
                        return
                    }
                    if n == 0 {
                        ended = true
                        return
                    }
                    count += n
                }
            }
            if failure != 0 { throw SystemError("read", path: path, errno: failure) }
            if ended { return result }
            capacity *= 2  // full: the file was larger than its size said, or it has none
        }
    }

    /// Writes all of `bytes` to `fd`, going on after partial writes; `path` names it in errors.
    /// Empty bytes are one empty write: kernel interface files see it.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SystemError) {
        var offset = 0
        repeat {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + offset }, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", path: path)
            }
            // A write that takes nothing of a non-empty rest would never end.
            if n == 0 && offset < bytes.count { throw SystemError("write", path: path, errno: EIO) }
            offset += n
        } while offset < bytes.count
    }

    public static func readString(_ path: String) throws(SystemError) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// Writes `bytes` into an existing file (or creates it), as one write: kernel interface files
    /// (cgroup, /proc) take a value per write call.
    public static func write(_ path: String, _ bytes: [UInt8], create: Bool = false, mode: mode_t = 0o644) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), mode)
        if fd < 0 { throw SystemError("open", path: path) }
        defer { close(fd) }
        try writeAll(fd, bytes, path: path)
    }

    public static func write(_ path: String, _ text: String, create: Bool = false) throws(SystemError) {
        try write(path, Array(text.utf8), create: create)
    }

    /// Replaces `path` with `bytes` so that readers see the old or the new content, never a part.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let temporary = path + ".tmp"
        try write(temporary, bytes, create: true, mode: mode)
        if rename(temporary, path) != 0 {
            let error = SystemError("rename", path: path)
            unlink(temporary)
            throw error
        }
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if isDirectory(path) { return }
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0 && errno != EEXIST {
                throw SystemError("mkdir", path: prefix)
            }
        }
    }

    /// Names in a directory, without "." and "..".
    public static func list(_ path: String) throws(SystemError) -> [String] {
        guard let dir = opendir(path) else { throw SystemError("opendir", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// rm -r of a tree this program made (state directories): does not cross into mounts it finds.
    public static func removeTree(_ path: String) throws(SystemError) {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw SystemError("stat", path: path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw SystemError("rmdir", path: path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SystemError("unlink", path: path)
        }
    }

    /// An absolute, normalized form of `path` ("." and ".." folded lexically), relative to `base`.
    public static func absolute(_ path: String, relativeTo base: String) -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(cString: buffer)
    }
}
