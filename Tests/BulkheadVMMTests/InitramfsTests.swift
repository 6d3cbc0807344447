import Glibc
import Testing
@testable import BulkheadVMM

/// Debian's cpio and gzip read back what the initramfs writer produces.
let cpioAvailable = findInPath("cpio") != nil
let gzipAvailable = findInPath("gzip") != nil

/// Runs `sh -c script` and returns its standard output (the script's own redirections apply).
func shellOutput(_ script: String) throws -> String {
    let directory = try makeTemporaryDirectory()
    defer { removeTree(directory) }
    try runTool(["sh", "-c", "(\(script)) > \(directory)/out"])
    return String(decoding: try readFile("\(directory)/out"), as: UTF8.self)
}

func sampleArchive() throws -> Initramfs {
    var a = Initramfs()
    try a.addFile("init", text: "#!/bin/sh\necho hi\n", permissions: 0o755)
    try a.addFile("etc/motd", text: "hello", permissions: 0o600)           // 5 bytes: data padding
    try a.addFile("lib/modules/6.1/kernel/a/b/empty.ko", contents: [])    // parents added, empty file
    try a.addSymlink("bin/sh", target: "busybox")
    try a.addDirectory("tmp", permissions: 0o1777)
    try a.addCharacterDevice("dev/console", major: 5, minor: 1)
    // A file larger than one stored deflate block (65535 bytes).
    try a.addFile("big", contents: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
    return a
}

@Suite struct InitramfsTests {
    @Test func newcHeaderLayout() throws {
        var a = Initramfs()
        try a.addFile("x", text: "abc")
        let bytes = a.cpio()
        let text = String(decoding: bytes.prefix(110), as: UTF8.self)
        #expect(text.hasPrefix("070701"))
        // mode 0100644, filesize 3, namesize 2 ("x" + NUL)
        #expect(text.dropFirst(14).prefix(8) == "000081A4")
        #expect(text.dropFirst(54).prefix(8) == "00000003")
        #expect(text.dropFirst(94).prefix(8) == "00000002")
        // 110 + 2 -> 112 (aligned), data 3 -> 116, then the trailer record
        #expect(Array(bytes[110..<112]) == [UInt8(ascii: "x"), 0])
        #expect(Array(bytes[112..<116]) == [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "c"), 0])
        #expect(String(decoding: bytes[116..<122], as: UTF8.self) == "070701")
        #expect(String(decoding: bytes[(116 + 110)..<(116 + 120)], as: UTF8.self) == "TRAILER!!!")
        #expect(bytes.count % 4 == 0)
    }

    @Test func parentsAreAddedOnceAndPathsAreNormalized() throws {
        var a = Initramfs()
        try a.addFile("/a/b/c", text: "1")
        try a.addFile("a/./b/d", text: "2")
        #expect(a.entries.map(\.path) == ["a", "a/b", "a/b/c", "a/b/d"])
        #expect(throws: Initramfs.PathError.self) { try a.addFile("a/../etc", text: "") }
    }

    @Test func crc32MatchesKnownValues() {
        #expect(Initramfs.crc32([]) == 0)
        #expect(Initramfs.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test(.enabled(if: cpioAvailable, "needs Debian's cpio (apt-get install cpio) to read the archive back"))
    func cpioListsNamesAndModes() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        try sampleArchive().write(to: "\(directory)/a.cpio")
        let names = try shellOutput("cpio -it --quiet < \(directory)/a.cpio").split(separator: "\n").map(String.init)
        #expect(names == ["init", "etc", "etc/motd", "lib", "lib/modules", "lib/modules/6.1", "lib/modules/6.1/kernel",
                          "lib/modules/6.1/kernel/a", "lib/modules/6.1/kernel/a/b", "lib/modules/6.1/kernel/a/b/empty.ko",
                          "bin", "bin/sh", "tmp", "dev", "dev/console", "big"])
        let long = try shellOutput("cpio -itv --quiet < \(directory)/a.cpio")
        let modes = Dictionary(uniqueKeysWithValues: long.split(separator: "\n").map { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            return (String(f[f.count - 1] == "busybox" ? f[f.count - 3] : f[f.count - 1]), String(f[0]))
        })
        #expect(modes["init"] == "-rwxr-xr-x")
        #expect(modes["etc/motd"] == "-rw-------")
        #expect(modes["bin/sh"] == "lrwxrwxrwx")
        #expect(modes["tmp"] == "drwxrwxrwt")
        #expect(modes["dev/console"] == "crw-------")
        #expect(long.contains("bin/sh -> busybox"))
    }

    @Test(.enabled(if: cpioAvailable, "needs Debian's cpio (apt-get install cpio) to extract the archive"))
    func cpioExtractsContents() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        var a = try sampleArchive()
        // Extraction as a user cannot mknod: leave the device out of this one.
        a = Initramfs(entries: a.entries.filter { $0.path != "dev/console" })
        try a.write(to: "\(directory)/a.cpio")
        try runTool(["sh", "-c", "mkdir \(directory)/x && cd \(directory)/x && cpio -id --quiet < ../a.cpio"])
        #expect(try readFile("\(directory)/x/init") == Array("#!/bin/sh\necho hi\n".utf8))
        #expect(try readFile("\(directory)/x/etc/motd") == Array("hello".utf8))
        #expect(try readFile("\(directory)/x/lib/modules/6.1/kernel/a/b/empty.ko") == [])
        guard case .file(let big) = a.entries.first(where: { $0.path == "big" })!.kind else { Issue.record("big"); return }
        #expect(try readFile("\(directory)/x/big") == big)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("\(directory)/x/bin/sh", &buffer, 63)
        #expect(n == 7 && String(cString: buffer) == "busybox")
    }

    @Test(.enabled(if: cpioAvailable && gzipAvailable, "needs Debian's gzip and cpio to read the archive back"))
    func gzipWithStoredBlocksIsValid() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let a = try sampleArchive()
        try a.write(to: "\(directory)/a.cpio.gz", gzip: true)
        try runTool(["gzip", "-t", "\(directory)/a.cpio.gz"])
        try runTool(["sh", "-c", "gzip -dc \(directory)/a.cpio.gz > \(directory)/plain"])
        #expect(try readFile("\(directory)/plain") == a.cpio())
        // Empty input: one final stored block of length 0.
        try writeFile("\(directory)/empty.gz", Initramfs.gzipStored([]))
        try runTool(["gzip", "-t", "\(directory)/empty.gz"])
    }
}

@Suite struct GuestKernelTests {
    @Test func moduleNames() {
        #expect(GuestKernel.moduleName(ofPath: "kernel/arch/x86/kvm/kvm-amd.ko") == "kvm_amd")
        #expect(GuestKernel.moduleName(ofPath: "kernel/fs/overlayfs/overlay.ko.xz") == "overlay")
    }

    @Test func modinfoDependsField() {
        let blob = Array("\0license=GPL\0depends=virtio,virtio_ring,net-failover\0retpoline=Y\0".utf8)
        #expect(GuestKernel.modinfoDepends(blob) == ["virtio", "virtio_ring", "net_failover"])
        #expect(GuestKernel.modinfoDepends(Array("\0depends=\0".utf8)) == [])
        #expect(GuestKernel.modinfoDepends(Array("nothing".utf8)) == [])
    }

    @Test func loadOrderPutsDependenciesFirstAndSkipsBuiltins() throws {
        let dep = GuestKernel.parseModulesDep("""
            kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
            kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
            kernel/drivers/virtio/virtio_ring.ko:
            kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko
            """)
        let deps = dep.mapValues { $0.dependencies.map { GuestKernel.moduleName(ofPath: $0) } }
        #expect(try GuestKernel.loadOrder(["virtio_blk", "ext4"], dependencies: deps, builtin: ["ext4"])
                == ["virtio_ring", "virtio", "virtio_blk"])
        #expect(throws: HostError.self) { try GuestKernel.loadOrder(["ext4"], dependencies: deps, builtin: []) }
    }
}

/// The kernel cache the nested-boot test fills (BULKHEAD_KERNEL_CACHE or /var/tmp/bulkhead-kernels).
let kernelCacheDirectory = getenv("BULKHEAD_KERNEL_CACHE").map { String(cString: $0) } ?? "/var/tmp/bulkhead-kernels"
let kernelPackageCached: Bool = {
    guard let dir = opendir(kernelCacheDirectory + "/debs") else { return false }
    defer { closedir(dir) }
    while let e = readdir(dir) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.hasPrefix("linux-image-") && name.hasSuffix(".deb") { return true }
    }
    return false
}()

@Suite struct GuestKernelCacheTests {
    @Test(.enabled(if: kernelPackageCached, "needs a kernel .deb in \(kernelCacheDirectory)/debs (bulkhead-vmm fetch-kernel puts it there)"))
    func fetchStagesModulesInLoadOrderAndReusesTheCache() throws {
        var lines: [String] = []
        let kernel = try GuestKernel.fetch(cacheDirectory: kernelCacheDirectory) { lines.append($0) }
        #expect(access(kernel.vmlinuz, R_OK) == 0)
        let paths = try kernel.modulePaths(["virtio_blk", "virtio_mmio"])
        let names = paths.map { GuestKernel.moduleName(ofPath: $0) }
        #expect(names.contains("virtio_mmio") && names.contains("virtio_blk"))
        // Dependencies before their users.
        if let ring = names.firstIndex(of: "virtio_ring"), let blk = names.firstIndex(of: "virtio_blk") { #expect(ring < blk) }
        for p in paths { #expect(access(kernel.modulesDirectory + "/" + p, R_OK) == 0, "\(p) staged") }
        // The ELF inside vmlinuz, which bulkhead-vmm boots like any vmlinux: startup_64 at 16 MiB.
        let vmlinux = try ELFKernel(image: try readFile(kernel.vmlinux), memorySize: 256 << 20)
        #expect(vmlinux.entry == 0x100_0000)
        lines.removeAll()
        let again = try GuestKernel.fetch(cacheDirectory: kernelCacheDirectory) { lines.append($0) }
        #expect(again == kernel)
        #expect(lines.count == 1 && lines[0].hasPrefix("up to date"), "second fetch: \(lines)")
    }

    @Test func fetchKernelCommandNeedsADirectory() {
        #expect(FetchKernelCommand.main([]) == 2)
        #expect(FetchKernelCommand.main(["--dir"]) == 2)
        #expect(FetchKernelCommand.main(["--bogus"]) == 2)
    }
}

@Suite("Host files")
struct HostFilesTests {
    @Test func readWholeFileReadsRegularFilesExactlyAndProcFilesThatClaimSizeZero() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let bytes = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try writeWholeFile(directory + "/f", bytes)
        #expect(try readWholeFile(directory + "/f") == bytes)
        try writeWholeFile(directory + "/empty", [])
        #expect(try readWholeFile(directory + "/empty") == [])
        // fstat says 0 bytes for /proc files: the content comes from the chunked reads after it.
        let status = String(decoding: try readWholeFile("/proc/self/status"), as: UTF8.self)
        #expect(status.hasPrefix("Name:") && status.contains("\nPid:"))
        #expect(throws: HostError.self) { try readWholeFile(directory + "/missing") }
    }
}
