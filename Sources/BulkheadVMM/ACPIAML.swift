/// A small encoder for the ACPI Machine Language (ACPI 6.5 §20) a microVM's DSDT needs: scopes,
/// devices, named objects holding integers, strings, EISA ids, packages and resource templates.
/// Each function returns the encoded bytes of one term, so a table is built by nesting calls the
/// way ASL nests blocks. There are no methods or operation regions: a microVM describes fixed
/// hardware, and everything Linux reads from it is static data.
public enum AML {
    // Opcodes (§20.2).
    static let zeroOp: UInt8 = 0x00
    static let oneOp: UInt8 = 0x01
    static let onesOp: UInt8 = 0xff
    static let nameOp: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0a
    static let wordPrefix: UInt8 = 0x0b
    static let dwordPrefix: UInt8 = 0x0c
    static let stringPrefix: UInt8 = 0x0d
    static let qwordPrefix: UInt8 = 0x0e
    static let scopeOp: UInt8 = 0x10
    static let bufferOp: UInt8 = 0x11
    static let packageOp: UInt8 = 0x12
    static let extOpPrefix: UInt8 = 0x5b
    static let deviceOp: UInt8 = 0x82
    static let rootChar: UInt8 = 0x5c  // '\'
    static let dualNamePrefix: UInt8 = 0x2e
    static let multiNamePrefix: UInt8 = 0x2f

    /// PkgLength (§20.2.4) of a body of `bodyLength` bytes. The encoded length counts itself, so
    /// the number of PkgLength bytes is chosen first: 1 byte up to 63, then 2, 3 or 4 bytes with
    /// the low nibble in the lead byte and the rest in following bytes.
    public static func packageLength(_ bodyLength: Int) -> [UInt8] {
        for extra in 0...3 {
            let total = bodyLength + 1 + extra
            if extra == 0 {
                if total < 0x40 { return [UInt8(total)] }
                continue
            }
            guard total < 1 << (4 + 8 * extra) else { continue }
            var bytes = [UInt8(extra << 6) | UInt8(total & 0xf)]
            for i in 0..<extra { bytes.append(UInt8(truncatingIfNeeded: total >> (4 + 8 * i))) }
            return bytes
        }
        preconditionFailure("AML package of \(bodyLength) bytes exceeds the 2^28 limit")
    }

    /// A NameString (§20.2.2): an optional `\` root prefix and dot-separated 4-character segments,
    /// short segments padded with '_' ("COM1", "\_SB", "\_SB.VR00").
    public static func nameString(_ path: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = Substring(path)
        if rest.hasPrefix("\\") { bytes.append(rootChar); rest = rest.dropFirst() }
        let segments = rest.split(separator: ".").map { segment -> [UInt8] in
            let chars = Array(segment.utf8)
            precondition((1...4).contains(chars.count), "AML name segment '\(segment)' must be 1-4 characters")
            return chars + [UInt8](repeating: UInt8(ascii: "_"), count: 4 - chars.count)
        }
        switch segments.count {
        case 0: bytes.append(0)  // NullName: the root alone
        case 1: break
        case 2: bytes.append(dualNamePrefix)
        default: bytes += [multiNamePrefix, UInt8(segments.count)]
        }
        for s in segments { bytes += s }
        return bytes
    }

    /// The shortest integer encoding (§20.2.3): Zero, One, Ones, or a 1/2/4/8-byte constant.
    public static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [zeroOp]
        case 1: return [oneOp]
        case ...0xff: return [bytePrefix, UInt8(value)]
        case ...0xffff: return [wordPrefix] + littleEndian(UInt16(value))
        case ...0xffff_ffff: return [dwordPrefix] + littleEndian(UInt32(value))
        default: return [qwordPrefix] + littleEndian(value)
        }
    }

    /// A String constant: ASCII, NUL-terminated.
    public static func string(_ text: String) -> [UInt8] {
        precondition(text.utf8.allSatisfy { $0 != 0 && $0 < 0x80 }, "AML strings are ASCII without NUL")
        return [stringPrefix] + Array(text.utf8) + [0]
    }

    /// EISAID("PNP0501"): three letters packed 5 bits each, four hex digits, as a DWord integer
    /// (what _HID holds for PNP and ACPI device ids).
    public static func eisaID(_ id: String) -> [UInt8] {
        let c = Array(id.utf8)
        precondition(c.count == 7, "an EISA id is 3 letters and 4 hex digits")
        let letters = (UInt32(c[0] - 0x40) << 10) | (UInt32(c[1] - 0x40) << 5) | UInt32(c[2] - 0x40)
        let digits = UInt32(String(decoding: c[3...], as: UTF8.self), radix: 16)!
        // Stored big-endian: the letter word, then the product number.
        let value = (letters >> 8) | ((letters & 0xff) << 8) | ((digits >> 8) << 16) | ((digits & 0xff) << 24)
        return [dwordPrefix] + littleEndian(value)
    }

    /// Name(NAME, object).
    public static func name(_ path: String, _ object: [UInt8]) -> [UInt8] {
        [nameOp] + nameString(path) + object
    }

    /// Package() { elements } — each element an already-encoded data object.
    public static func package(_ elements: [[UInt8]]) -> [UInt8] {
        precondition(elements.count <= 255, "a Package holds at most 255 elements")
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [packageOp] + packageLength(body.count) + body
    }

    /// Buffer() { bytes }.
    public static func buffer(_ bytes: [UInt8]) -> [UInt8] {
        let body = integer(UInt64(bytes.count)) + bytes
        return [bufferOp] + packageLength(body.count) + body
    }

    /// Scope(path) { terms }.
    public static func scope(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameString(path) + terms.flatMap { $0 }
        return [scopeOp] + packageLength(body.count) + body
    }

    /// Device(NAME) { terms }.
    public static func device(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameString(path) + terms.flatMap { $0 }
        return [extOpPrefix, deviceOp] + packageLength(body.count) + body
    }

    /// ResourceTemplate() { descriptors }: a Buffer of resource descriptors closed by an End Tag
    /// whose checksum byte 0 means "no checksum" (§6.4.2.9).
    public static func resourceTemplate(_ descriptors: [[UInt8]]) -> [UInt8] {
        buffer(descriptors.flatMap { $0 } + [0x79, 0x00])
    }

    /// IO(Decode16, base, base, alignment, length): small I/O port descriptor (§6.4.2.5).
    public static func ioPort(base: UInt16, length: UInt8, alignment: UInt8 = 1) -> [UInt8] {
        [0x47, 0x01] + littleEndian(base) + littleEndian(base) + [alignment, length]
    }

    /// IRQNoFlags() {irq}: small IRQ descriptor (§6.4.2.1), ISA semantics (edge, active high).
    public static func irqNoFlags(_ irq: UInt8) -> [UInt8] {
        precondition(irq < 16, "a small IRQ descriptor holds ISA IRQs 0-15")
        return [0x22] + littleEndian(UInt16(1) << irq)
    }

    /// Memory32Fixed(ReadWrite or ReadOnly, base, length): large descriptor 0x86 (§6.4.3.4).
    public static func memory32Fixed(base: UInt32, length: UInt32, writable: Bool = true) -> [UInt8] {
        [0x86, 9, 0, writable ? 1 : 0] + littleEndian(base) + littleEndian(length)
    }

    /// Interrupt(ResourceConsumer, Edge or Level, ActiveHigh or ActiveLow, Exclusive or Shared) {gsi}:
    /// the Extended Interrupt descriptor 0x89 (§6.4.3.6), which holds any GSI.
    public static func extendedInterrupt(_ gsi: UInt32, edgeTriggered: Bool, activeLow: Bool = false,
                                         shared: Bool = false) -> [UInt8] {
        var flags: UInt8 = 0x01  // consumer
        if edgeTriggered { flags |= 0x02 }
        if activeLow { flags |= 0x04 }
        if shared { flags |= 0x08 }
        return [0x89, 6, 0, flags, 1] + littleEndian(gsi)
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(value)
        return bytes
    }
}
