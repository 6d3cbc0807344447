/// One ACPI system description table (ACPI 6.5 §5.2.6): the 36-byte header followed by the table's
/// own fields, with the length and checksum filled in by `bytes`. Fields are appended little-endian
/// in the order the specification lists them, so a table reads like its definition.
public struct ACPITable {
    /// "BHVMM " — who built the tables (the OEM ID every table carries).
    public static let oemID = Array("BHVMM ".utf8)
    public static let creatorID = Array("BHVM".utf8)
    public static let headerSize = 36
    /// Offsets inside the header.
    static let lengthOffset = 4
    static let checksumOffset = 9

    public let signature: String
    private var storage: [UInt8]

    /// A table with `signature` (4 ASCII characters), `revision` and an 8-character OEM table id.
    public init(signature: String, revision: UInt8, oemTableID: String) {
        precondition(signature.utf8.count == 4, "ACPI signature must be 4 characters")
        self.signature = signature
        storage = Array(signature.utf8)
        storage += [0, 0, 0, 0]  // length, set in `bytes`
        storage.append(revision)
        storage.append(0)  // checksum, set in `bytes`
        storage += ACPITable.oemID
        storage += ACPITable.padded(oemTableID, to: 8)
        storage.appendLittleEndian(UInt32(1))  // OEM revision
        storage += ACPITable.creatorID
        storage.appendLittleEndian(UInt32(1))  // creator revision
    }

    /// Bytes appended so far, header included.
    public var count: Int { storage.count }

    public mutating func append<T: FixedWidthInteger>(_ value: T) { storage.appendLittleEndian(value) }
    public mutating func append(bytes: [UInt8]) { storage += bytes }
    /// Overwrites `value` at `offset` (from the start of the table), for fields known only later.
    public mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { storage[offset + i] = b } }
    }

    public mutating func set(bytes: [UInt8], at offset: Int) {
        storage.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    }

    /// The finished table: length set, checksum making the byte sum 0 mod 256.
    public var bytes: [UInt8] {
        var b = storage
        withUnsafeBytes(of: UInt32(b.count).littleEndian) { for (i, v) in $0.enumerated() { b[Self.lengthOffset + i] = v } }
        b[Self.checksumOffset] = ACPITable.checksum(of: b)
        return b
    }

    /// The value that makes the sum of `bytes` (with the checksum byte counted as 0 or already
    /// included) zero mod 256: ACPI's checksum rule for every table and for the RSDP.
    public static func checksum<C: Collection>(of bytes: C) -> UInt8 where C.Element == UInt8 {
        0 &- bytes.reduce(0, &+)
    }

    /// True when the bytes sum to zero mod 256.
    public static func checksumIsValid<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.reduce(0, &+) == 0
    }

    /// `text` as ASCII, cut or space-padded to `count` bytes (OEM ids are fixed-width, space-padded).
    static func padded(_ text: String, to count: Int) -> [UInt8] {
        Array((Array(text.utf8) + [UInt8](repeating: 0x20, count: count)).prefix(count))
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
