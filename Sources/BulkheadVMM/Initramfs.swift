import Glibc

/// An initramfs as the kernel unpacks it: a "newc" cpio archive (the format of
/// Documentation/driver-api/early-userspace/buffer-format.rst), optionally wrapped in gzip.
///
/// Entries are kept in insertion order; parent directories are added on demand, so
/// `addFile("lib/modules/x.ko", ...)` is enough. Every entry is owned by root with mtime 0, so the
/// same inputs give the same bytes. Device nodes need no privilege here (they are only headers),
/// which is why the builder can give init a /dev/console without root or mknod.
///
/// Output format, chosen for boot time: the default is the plain cpio, which the kernel accepts
/// without a decompressor and unpacks fastest (guest CPU time is the scarce thing in a microVM,
/// and under nested virtualization or PVM it is very scarce); the VMM copies it into guest RAM, so
/// a smaller file saves nothing at boot. `gzipped()` wraps the same bytes in a gzip member with
/// stored (uncompressed) deflate blocks, for tools that insist on a .gz: valid gzip, accepted by
/// the kernel's inflate, and simple enough to have no compressor to get wrong.
public struct Initramfs: Sendable {
    public enum Kind: Equatable, Sendable {
        case directory
        case file([UInt8])
        case symlink(target: String)
        case characterDevice(major: UInt32, minor: UInt32)
    }

    public struct Entry: Equatable, Sendable {
        /// Relative path without a leading "/" (as `cpio -t` prints it).
        public var path: String
        /// Permission bits (the file type comes from `kind`).
        public var permissions: UInt32
        public var kind: Kind
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// An archive of these entries, in this order (paths as `entries` holds them).
    public init(entries: [Entry]) {
        for e in entries {
            if let i = index[e.path] { self.entries[i] = e } else { index[e.path] = self.entries.count; self.entries.append(e) }
        }
    }

    public struct PathError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    static func normalize(_ path: String) throws(PathError) -> String {
        let parts = path.split(separator: "/").filter { $0 != "." }
        guard !parts.isEmpty else { throw PathError(description: "initramfs: empty path \"\(path)\"") }
        guard !parts.contains("..") else { throw PathError(description: "initramfs: \"..\" in path \"\(path)\"") }
        return parts.joined(separator: "/")
    }

    private mutating func add(_ path: String, _ permissions: UInt32, _ kind: Kind) throws(PathError) {
        let p = try Self.normalize(path)
        if let slash = p.lastIndex(of: "/") { try addDirectory(String(p[..<slash])) }
        let entry = Entry(path: p, permissions: permissions & 0o7777, kind: kind)
        if let i = index[p] {
            // A directory may be named twice (parents); anything else replaces the old entry.
            if kind == .directory, entries[i].kind == .directory { return }
            entries[i] = entry
        } else {
            index[p] = entries.count
            entries.append(entry)
        }
    }

    /// A directory and its missing parents (0755).
    public mutating func addDirectory(_ path: String, permissions: UInt32 = 0o755) throws(PathError) {
        try add(path, permissions, .directory)
    }

    public mutating func addFile(_ path: String, contents: [UInt8], permissions: UInt32 = 0o644) throws(PathError) {
        try add(path, permissions, .file(contents))
    }

    public mutating func addFile(_ path: String, text: String, permissions: UInt32 = 0o644) throws(PathError) {
        try add(path, permissions, .file(Array(text.utf8)))
    }

    public mutating func addSymlink(_ path: String, target: String) throws(PathError) {
        try add(path, 0o777, .symlink(target: target))
    }

    public mutating func addCharacterDevice(_ path: String, major: UInt32, minor: UInt32, permissions: UInt32 = 0o600) throws(PathError) {
        try add(path, permissions, .characterDevice(major: major, minor: minor))
    }

    /// Copies a host file (contents and permission bits) into the archive at `path`.
    public mutating func addHostFile(_ path: String, from hostPath: String) throws(HostError) {
        var st = stat()
        guard stat(hostPath, &st) == 0 else { throw HostError("stat \(hostPath)", errno: errno) }
        let bytes = try readWholeFile(hostPath)
        do { try addFile(path, contents: bytes, permissions: UInt32(st.st_mode) & 0o7777) } catch {
            throw HostError(error.description)
        }
    }

    // MARK: - newc cpio

    static let fileTypeDirectory: UInt32 = 0o040000
    static let fileTypeRegular: UInt32 = 0o100000
    static let fileTypeSymlink: UInt32 = 0o120000
    static let fileTypeCharacter: UInt32 = 0o020000

    /// The archive: one newc record per entry, then the "TRAILER!!!" record. Each header and name
    /// is padded to a multiple of 4 bytes, and so is each file's data.
    public func cpio() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.reduce(512) { total, e in
            if case .file(let b) = e.kind { return total + b.count + 128 + e.path.utf8.count }
            return total + 128 + e.path.utf8.count
        })
        var inode: UInt32 = 1
        for e in entries {
            var data: [UInt8] = []
            var mode = e.permissions
            var nlink: UInt32 = 1
            var rdev: (UInt32, UInt32) = (0, 0)
            switch e.kind {
            case .directory: mode |= Self.fileTypeDirectory; nlink = 2
            case .file(let bytes): mode |= Self.fileTypeRegular; data = bytes
            case .symlink(let target): mode |= Self.fileTypeSymlink; data = Array(target.utf8)
            case .characterDevice(let major, let minor): mode |= Self.fileTypeCharacter; rdev = (major, minor)
            }
            Self.appendRecord(&out, name: e.path, inode: inode, mode: mode, nlink: nlink, rdev: rdev, data: data)
            inode += 1
        }
        Self.appendRecord(&out, name: "TRAILER!!!", inode: 0, mode: 0, nlink: 1, rdev: (0, 0), data: [])
        return out
    }

    static func appendRecord(_ out: inout [UInt8], name: String, inode: UInt32, mode: UInt32, nlink: UInt32,
                             rdev: (UInt32, UInt32), data: [UInt8]) {
        let nameBytes = Array(name.utf8) + [0]
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize, check
        let fields: [UInt32] = [inode, mode, 0, 0, nlink, 0, UInt32(data.count), 0, 0, rdev.0, rdev.1,
                                UInt32(nameBytes.count), 0]
        out += Array("070701".utf8)
        for f in fields { appendHex8(&out, f) }
        out += nameBytes
        pad4(&out)
        out += data
        pad4(&out)
    }

    static func appendHex8(_ out: inout [UInt8], _ value: UInt32) {
        let digits = Array("0123456789ABCDEF".utf8)
        for shift in stride(from: 28, through: 0, by: -4) { out.append(digits[Int((value >> UInt32(shift)) & 0xf)]) }
    }

    static func pad4(_ out: inout [UInt8]) {
        while out.count % 4 != 0 { out.append(0) }
    }

    // MARK: - gzip (stored deflate blocks)

    /// The cpio archive in a gzip member whose deflate stream is made of stored blocks.
    public func gzipped() -> [UInt8] { Self.gzipStored(cpio()) }

    /// RFC 1952 member: header (no name, mtime 0, OS Unix), RFC 1951 stored blocks of at most
    /// 65535 bytes (BFINAL on the last), then CRC-32 and ISIZE, little-endian.
    public static func gzipStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]
        out.reserveCapacity(data.count + data.count / 65535 * 5 + 32)
        var offset = 0
        repeat {
            let n = min(65535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out.append(final)  // BTYPE 00 (stored): the rest of the byte is padding
            out += [UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
            out += data[offset..<offset + n]
            offset += n
        } while offset < data.count
        let crc = crc32(data)
        let size = UInt32(truncatingIfNeeded: data.count)
        for v in [crc, size] { out += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)] }
        return out
    }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO-HDLC, as gzip and zlib use).
    public static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xffff_ffff
        crcTable.withUnsafeBufferPointer { table in
            for b in data { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        }
        return c ^ 0xffff_ffff
    }

    /// Writes the archive (`gzip`: stored-block gzip, else plain cpio) to `path`.
    public func write(to path: String, gzip: Bool = false) throws(HostError) {
        try writeWholeFile(path, gzip ? gzipped() : cpio())
    }
}
