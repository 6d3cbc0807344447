/// The boot GDT: null, 64-bit code, data, TSS — Firecracker's, which is what Linux's 64-bit entry
/// needs (it loads its own GDT immediately, but the segment caches must be valid until then).
public enum BootGDT {
    /// A GDT descriptor from access/flags bits (`flags` = byte 5 | flags nibble << 12), base and limit.
    public static func descriptor(flags: UInt16, base: UInt32, limit: UInt32) -> UInt64 {
        let b = UInt64(base), l = UInt64(limit), f = UInt64(flags)
        return ((b & 0xff00_0000) << 32) | ((f & 0xf0ff) << 40) | ((l & 0x000f_0000) << 32)
            | ((b & 0x00ff_ffff) << 16) | (l & 0xffff)
    }

    /// Index 1: code, present, DPL0, execute/read, accessed, L=1 (64-bit), G=1.
    public static let code = descriptor(flags: 0xa09b, base: 0, limit: 0xfffff)
    /// Index 2: data, present, DPL0, read/write, accessed, D/B=1, G=1.
    public static let data = descriptor(flags: 0xc093, base: 0, limit: 0xfffff)
    /// Index 3: 64-bit TSS (busy); KVM requires a usable TR to enter the guest.
    public static let tss = descriptor(flags: 0x808b, base: 0, limit: 0xfffff)

    public static let entries: [UInt64] = [0, code, data, tss]
    public static let codeIndex: UInt16 = 1
    public static let dataIndex: UInt16 = 2
    public static let tssIndex: UInt16 = 3

    public static var bytes: [UInt8] { IdentityPageTables.littleEndianBytes(entries) }
}
