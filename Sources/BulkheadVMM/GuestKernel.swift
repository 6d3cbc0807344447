import Glibc

/// A guest kernel staged in a cache directory: Debian's cloud kernel (a bzImage) and the modules a
/// microVM guest loads from its initramfs, decompressed, with their dependencies.
///
/// Cache layout (`fetch` fills it, and reuses what is there):
///
///     CACHE/debs/linux-image-<release>_<version>_amd64.deb       apt-get download
///     CACHE/<release>/vmlinuz                                      boot/vmlinuz-<release>
///     CACHE/<release>/vmlinux                                      the ELF inside vmlinuz (KernelPayload)
///     CACHE/<release>/config                                       boot/config-<release>
///     CACHE/<release>/lib/modules/<release>/kernel/...ko           the staged modules
///     CACHE/<release>/lib/modules/<release>/modules.dep            depmod's format, staged modules only
///     CACHE/<release>/lib/modules/<release>/modules.builtin
///     CACHE/<release>/staged                                       module names staged (the stamp)
public struct GuestKernel: Equatable, Sendable {
    /// uname -r of the kernel, e.g. 6.1.0-57-cloud-amd64.
    public var release: String
    /// CACHE/<release>.
    public var directory: String
    public var vmlinuz: String { directory + "/vmlinuz" }
    /// The same kernel as `vmlinuz`, decompressed: the ELF vmlinux a VMM boots without the guest
    /// decompressing itself first (Firecracker's way).
    public var vmlinux: String { directory + "/vmlinux" }
    /// CACHE/<release>/lib/modules/<release>: copy it to /lib/modules/<release> in an initramfs.
    public var modulesDirectory: String { directory + "/lib/modules/" + release }

    /// The meta-package whose dependency is the versioned kernel package.
    public static let metaPackage = "linux-image-cloud-amd64"

    /// What a Bulkhead guest loads: virtio-mmio transport (ACPI LNRO0005), block, net, vsock,
    /// overlayfs for container roots, ext4 for block images. Dependencies are added.
    public static let guestModules = [
        "virtio_mmio", "virtio_blk", "virtio_net", "vsock", "vmw_vsock_virtio_transport", "overlay", "ext4",
    ]

    /// The module name as the kernel spells it: file name without .ko[.xz|.zst|.gz], '-' as '_'.
    static func moduleName(ofPath path: String) -> String {
        var name = String(path.split(separator: "/").last ?? "")
        for suffix in [".xz", ".zst", ".gz", ".ko"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        return String(name.map { $0 == "-" ? "_" : $0 })
    }

    // MARK: - Module dependencies

    /// Parsed depmod-format lines: "kernel/a/b.ko: kernel/c.ko kernel/d.ko".
    static func parseModulesDep(_ text: String) -> [String: (path: String, dependencies: [String])] {
        var result: [String: (path: String, dependencies: [String])] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon])
            let deps = line[line.index(after: colon)...].split(separator: " ").map(String.init)
            result[moduleName(ofPath: path)] = (path, deps)
        }
        return result
    }

    /// The `depends=` field of a module's .modinfo section: the names of the modules it needs
    /// (what depmod writes to modules.dep, minus the paths).
    static func modinfoDepends(_ module: [UInt8]) -> [String] {
        let key = Array("depends=".utf8)
        var i = 0
        while i + key.count <= module.count {
            if module[i] == key[0], i == 0 || module[i - 1] == 0, Array(module[i..<i + key.count]) == key {
                var j = i + key.count
                while j < module.count, module[j] != 0 { j += 1 }
                let value = String(decoding: module[(i + key.count)..<j], as: UTF8.self)
                return value.split(separator: ",").map { String($0.map { $0 == "-" ? "_" : $0 }) }
            }
            i += 1
        }
        return []
    }

    /// `names` and everything they depend on, dependencies first (the order to insmod them).
    /// Built-in modules are skipped; an unknown name is an error.
    static func loadOrder(_ names: [String], dependencies: [String: [String]], builtin: Set<String>) throws(HostError) -> [String] {
        var order: [String] = []
        var seen: Set<String> = []
        func visit(_ n: String, _ chain: [String]) throws(HostError) {
            let name = String(n.map { $0 == "-" ? "_" : $0 })
            if seen.contains(name) || builtin.contains(name) { return }
            guard let deps = dependencies[name] else {
                throw HostError("kernel module \(name) not found\(chain.isEmpty ? "" : " (needed by \(chain.joined(separator: " <- ")))")")
            }
            seen.insert(name)
            for d in deps { try visit(d, [name] + chain) }
            order.append(name)
        }
        for n in names { try visit(n, []) }
        return order
    }

    /// Module names from a modules.builtin file.
    static func builtinNames(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").map { moduleName(ofPath: String($0)) })
    }

    /// The staged modules.dep of this kernel.
    func stagedDependencies() throws(HostError) -> [String: (path: String, dependencies: [String])] {
        Self.parseModulesDep(String(decoding: try readWholeFile(modulesDirectory + "/modules.dep"), as: UTF8.self))
    }

    /// Paths relative to `modulesDirectory` of `names` and their dependencies, in load order.
    public func modulePaths(_ names: [String]) throws(HostError) -> [String] {
        let staged = try stagedDependencies()
        let builtin = Self.builtinNames(String(decoding: (try? readWholeFile(modulesDirectory + "/modules.builtin")) ?? [], as: UTF8.self))
        let deps = staged.mapValues { $0.dependencies.map { Self.moduleName(ofPath: $0) } }
        return try Self.loadOrder(names, dependencies: deps, builtin: builtin).map { staged[$0]!.path }
    }

    // MARK: - Fetch

    /// Finds the versioned kernel package behind `linux-image-cloud-amd64` with apt-cache (after
    /// one `apt-get update` if apt knows none), downloads it into CACHE/debs unless a .deb of it is
    /// there, extracts it with dpkg-deb into a scratch directory, and stages vmlinuz and `modules`
    /// with their dependencies. Nothing is installed on the host. Idempotent: a kernel whose
    /// staged set already holds `modules` is returned as it is. `log` gets one line per step.
    public static func fetch(cacheDirectory: String, modules: [String] = guestModules,
                             log: (String) -> Void = { _ in }) throws(HostError) -> GuestKernel {
        try makeDirectories(cacheDirectory + "/debs")
        // One fetch at a time per cache, across processes and threads (flock on an open file
        // description is per open, so two threads of one process exclude each other too).
        let lockFD = open(cacheDirectory + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw HostError("open \(cacheDirectory)/.lock", errno: errno) }
        defer { close(lockFD) }
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw HostError("flock \(cacheDirectory)/.lock", errno: errno) }
        }
        // Under the lock, scratch directories are leftovers of a fetch that was killed.
        for name in try directoryEntries(cacheDirectory) where name.hasPrefix(".extract-") || name.hasPrefix(".stage-") {
            _ = try? runProgram(["rm", "-rf", cacheDirectory + "/" + name])
        }
        let deb = try findOrDownloadPackage(debDirectory: cacheDirectory + "/debs", log: log)
        // linux-image-6.1.0-57-cloud-amd64_6.1.192-3_amd64.deb -> 6.1.0-57-cloud-amd64
        let file = String(deb.split(separator: "/").last!)
        let package = String(file.prefix { $0 != "_" })
        let release = String(package.dropFirst("linux-image-".count))
        var kernel = GuestKernel(release: release, directory: cacheDirectory + "/" + release)
        let wanted = Set(modules.map { String($0.map { $0 == "-" ? "_" : $0 }) })
        let stamp = kernel.directory + "/staged"
        var staged: Set<String> = []
        if let text = try? readWholeFile(stamp), fileExists(kernel.vmlinuz) {
            staged = Set(String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init))
            if wanted.isSubset(of: staged) {
                try kernel.extractVmlinux(log: log)
                log("up to date: \(kernel.directory)")
                return kernel
            }
        }
        kernel = try stage(deb: deb, release: release, into: kernel.directory, modules: staged.union(wanted).sorted(), log: log)
        try kernel.extractVmlinux(log: log)
        return kernel
    }

    /// Writes `vmlinux` from `vmlinuz` unless it is there (caches staged before it existed get it
    /// on their next fetch). Through a temporary file, so a killed fetch leaves no half ELF.
    func extractVmlinux(log: (String) -> Void) throws(HostError) {
        guard !fileExists(vmlinux) else { return }
        let image = try readWholeFile(vmlinuz)
        let payload: (compression: KernelPayload.Compression, bytes: ArraySlice<UInt8>)
        do { payload = try KernelPayload.compressed(in: image) } catch { throw HostError("\(vmlinuz): \(error)") }
        let scratch = directory + "/.vmlinux-\(getpid())"
        defer { _ = try? runProgram(["rm", "-f", scratch, scratch + ".compressed"]) }
        if payload.compression == .lz4Legacy {
            let elf: [UInt8]
            do { elf = try KernelPayload.decompressLZ4Legacy(payload.bytes) } catch { throw HostError("\(vmlinuz): \(error)") }
            try writeWholeFile(scratch, elf)
        } else {
            try writeWholeFile(scratch + ".compressed", Array(payload.bytes))
            let tool = payload.compression.decompressCommand.joined(separator: " ")
            // The kernel appends the uncompressed size to the payload, which some tools call trailing garbage.
            _ = try? runProgram(["sh", "-c", "\(tool) < '\(scratch).compressed' > '\(scratch)'"])
        }
        guard let head = try? readWholeFile(scratch).prefix(4), head.elementsEqual([0x7f, 0x45, 0x4c, 0x46]) else {
            throw HostError("\(vmlinuz): its \(payload.compression.rawValue) payload did not decompress to an ELF vmlinux")
        }
        guard rename(scratch, vmlinux) == 0 else { throw HostError("rename \(scratch) to \(vmlinux)", errno: errno) }
        log("extracted \(vmlinux) from the \(payload.compression.rawValue) payload of \(vmlinuz)")
    }

    static func findOrDownloadPackage(debDirectory: String, log: (String) -> Void) throws(HostError) -> String {
        func cached(_ package: String?) -> String? {
            let debs = ((try? directoryEntries(debDirectory)) ?? []).filter {
                $0.hasPrefix("linux-image-") && $0.hasSuffix(".deb") && (package == nil || $0.hasPrefix(package! + "_"))
            }
            return debs.last.map { debDirectory + "/" + $0 }
        }
        var package = try? resolvePackage()
        if package == nil {
            if let deb = cached(nil) {
                log("apt-cache knows no \(metaPackage) dependency; using the cached \(deb)")
                return deb
            }
            log("apt-cache knows no \(metaPackage) dependency; running apt-get update")
            try runChecked(["apt-get", "update", "-qq"], captureOutput: false)
            package = try resolvePackage()
        }
        guard let package else { throw HostError("cannot resolve the package behind \(metaPackage)") }
        if let deb = cached(package) { return deb }
        log("apt-get download \(package) into \(debDirectory)")
        // apt drops privileges to _apt, which may not write here; download in a fresh 0755
        // scratch directory the way apt-get download does, then move the file into the cache.
        let scratch = debDirectory + "/.download-\(getpid())"
        _ = try? runProgram(["rm", "-rf", scratch])
        try makeDirectories(scratch)
        defer { _ = try? runProgram(["rm", "-rf", scratch]) }
        try runInDirectory(scratch, ["apt-get", "download", "-q", package])
        let files = try directoryEntries(scratch).filter { $0.hasSuffix(".deb") }
        guard let file = files.first else { throw HostError("apt-get download \(package) left no .deb") }
        guard rename(scratch + "/" + file, debDirectory + "/" + file) == 0 else {
            throw HostError("rename \(file) into \(debDirectory)", errno: errno)
        }
        return debDirectory + "/" + file
    }

    /// The versioned dependency of the meta-package (apt-cache depends), or nil.
    static func resolvePackage() throws(HostError) -> String? {
        let (status, output) = try runProgram(["apt-cache", "depends", metaPackage])
        guard status == 0 else { return nil }
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2, words[0] == "Depends:", words[1].hasPrefix("linux-image-"),
               words[1].hasSuffix("-cloud-amd64"), words[1].dropFirst("linux-image-".count).first?.isNumber == true {
                return String(words[1])
            }
        }
        return nil
    }

    /// `sh -c 'cd DIR && exec ARGV'` with stdout to our stderr.
    static func runInDirectory(_ directory: String, _ argv: [String]) throws(HostError) {
        let quoted = argv.map { "'" + $0.replacingOccurrences("'", "'\\''") + "'" }.joined(separator: " ")
        try runChecked(["sh", "-c", "cd '\(directory)' && exec \(quoted)"], captureOutput: false)
    }

    static func stage(deb: String, release: String, into directory: String, modules: [String],
                      log: (String) -> Void) throws(HostError) -> GuestKernel {
        let parent = String(directory[..<directory.lastIndex(of: "/")!])
        let scratch = parent + "/.extract-\(getpid())"
        _ = try? runProgram(["rm", "-rf", scratch])
        defer { _ = try? runProgram(["rm", "-rf", scratch]) }
        log("dpkg-deb -x \(deb)")
        try runChecked(["dpkg-deb", "-x", deb, scratch])
        let source = scratch + "/lib/modules/" + release
        guard isDirectory(source), fileExists(scratch + "/boot/vmlinuz-" + release) else {
            throw HostError("\(deb) holds no boot/vmlinuz-\(release) and lib/modules/\(release)")
        }
        // Dependencies: the package's modules.dep if it ships one (Debian's does not: its postinst
        // runs depmod), else each module's modinfo depends= field, which is what depmod reads.
        var paths: [String: String] = [:]
        var deps: [String: [String]] = [:]
        if let text = try? readWholeFile(source + "/modules.dep") {
            for (name, entry) in parseModulesDep(String(decoding: text, as: UTF8.self)) {
                paths[name] = entry.path
                deps[name] = entry.dependencies.map { moduleName(ofPath: $0) }
            }
        } else {
            for path in try filesUnder(source + "/kernel") where path.contains(".ko") {
                paths[moduleName(ofPath: path)] = "kernel/" + path
            }
        }
        let builtin = builtinNames(String(decoding: (try? readWholeFile(source + "/modules.builtin")) ?? [], as: UTF8.self))
        // Resolve lazily: read a module's modinfo only when it is needed.
        var contents: [String: [UInt8]] = [:]
        func moduleBytes(_ name: String) throws(HostError) -> [UInt8] {
            if let b = contents[name] { return b }
            let path = paths[name]!
            let full = source + "/" + path
            let bytes: [UInt8]
            if path.hasSuffix(".ko") { bytes = try readWholeFile(full) }
            else {
                let tool = path.hasSuffix(".xz") ? "xz" : path.hasSuffix(".zst") ? "zstd" : "gzip"
                let out = scratch + "/decompressed.ko"
                try runChecked(["sh", "-c", "\(tool) -dc '\(full)' > '\(out)'"])
                bytes = try readWholeFile(out)
            }
            contents[name] = bytes
            return bytes
        }
        var pending = modules.map { String($0.map { $0 == "-" ? "_" : $0 }) }
        var needed: [String] = []
        var seenNames: Set<String> = []
        while let name = pending.popLast() {
            if seenNames.contains(name) || builtin.contains(name) { continue }
            seenNames.insert(name)
            guard paths[name] != nil else { throw HostError("kernel module \(name) is neither in \(deb) nor built in") }
            if deps[name] == nil { deps[name] = modinfoDepends(try moduleBytes(name)) }
            needed.append(name)
            pending += deps[name]!
        }
        // Stage into a fresh directory, then swap it in, so a failure leaves the old one intact.
        let fresh = parent + "/.stage-\(getpid())"
        _ = try? runProgram(["rm", "-rf", fresh])
        let modulesOut = fresh + "/lib/modules/" + release
        try makeDirectories(modulesOut)
        var depLines: [String] = []
        for name in needed.sorted() {
            var path = paths[name]!
            for suffix in [".xz", ".zst", ".gz"] where path.hasSuffix(suffix) { path.removeLast(suffix.count) }
            let slash = path.lastIndex(of: "/")!
            try makeDirectories(modulesOut + "/" + path[..<slash])
            try writeWholeFile(modulesOut + "/" + path, try moduleBytes(name))
            let depPaths = deps[name]!.filter { !builtin.contains($0) }.map { d -> String in
                var p = paths[d]!
                for suffix in [".xz", ".zst", ".gz"] where p.hasSuffix(suffix) { p.removeLast(suffix.count) }
                return p
            }
            depLines.append("\(path): \(depPaths.joined(separator: " "))")
        }
        try writeWholeFile(modulesOut + "/modules.dep", Array((depLines.joined(separator: "\n") + "\n").utf8))
        if let b = try? readWholeFile(source + "/modules.builtin") { try writeWholeFile(modulesOut + "/modules.builtin", b) }
        try writeWholeFile(fresh + "/vmlinuz", try readWholeFile(scratch + "/boot/vmlinuz-" + release))
        if let b = try? readWholeFile(scratch + "/boot/config-" + release) { try writeWholeFile(fresh + "/config", b) }
        try writeWholeFile(fresh + "/staged", Array((modules.joined(separator: "\n") + "\n").utf8))
        _ = try? runProgram(["rm", "-rf", directory])
        guard rename(fresh, directory) == 0 else { throw HostError("rename \(fresh) to \(directory)", errno: errno) }
        log("staged \(release) in \(directory): vmlinuz + \(needed.count) modules")
        return GuestKernel(release: release, directory: directory)
    }
}

extension String {
    func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
