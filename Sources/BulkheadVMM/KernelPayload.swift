/// The vmlinux inside a bzImage, as the kernel's scripts/extract-vmlinux gets it: the setup header
/// locates the compressed payload (payload_offset and payload_length, boot protocol 2.08), whose
/// magic names the compression. Decompressed, it is the kernel's ELF vmlinux (stripped, with the
/// PVH entry note), which a VMM boots directly, as Firecracker does, so the guest skips its own
/// decompression. LZ4 (what Debian's kernel uses) is decoded here; the others need their tool.
public enum KernelPayload {
    public enum Compression: String, Equatable, Sendable {
        /// lz4 -l: the legacy frame the kernel's build writes (magic 0x184c2102, 8 MiB blocks).
        case lz4Legacy = "lz4"
        case gzip, xz, zstd, bzip2, lzma, lzo

        /// The command that decompresses stdin to stdout, for those not decoded here.
        public var decompressCommand: [String] {
            switch self {
            case .lz4Legacy: ["lz4", "-dc"]
            case .gzip: ["gzip", "-dc"]
            case .xz, .lzma: ["xz", "-dc"]
            case .zstd: ["zstd", "-qdc"]
            case .bzip2: ["bzip2", "-dc"]
            case .lzo: ["lzop", "-dc"]
            }
        }
    }

    /// payload_offset (from the start of the protected-mode kernel) and payload_length.
    static let payloadOffsetField = 0x248
    static let payloadLengthField = 0x24c
    static let minimumProtocol: UInt16 = 0x0208

    /// The compressed vmlinux in `image` and how it is compressed.
    public static func compressed(in image: [UInt8]) throws(VMMError) -> (compression: Compression, bytes: ArraySlice<UInt8>) {
        func fail(_ reason: String) -> VMMError { .invalidBzImage(reason) }
        guard BzImage.hasSetupHeader(image), image.count >= payloadLengthField + 4 else {
            throw fail("no setup header, so no payload to extract")
        }
        let r = LittleEndianReader(bytes: image)
        let version = r.u16(BzImage.Field.version)
        guard version >= minimumProtocol else {
            throw fail("boot protocol \(version >> 8).\(version & 0xff) has no payload_offset (2.08 added it)")
        }
        let sects = Int(image[BzImage.Field.setupSects])
        let start = ((sects == 0 ? BzImage.defaultSetupSects : sects) + 1) * 512
            + Int(r.u32(payloadOffsetField))
        let length = Int(r.u32(payloadLengthField))
        guard length >= 4, start + length <= image.count else {
            throw fail("payload of \(length) bytes at \(start) lies outside the \(image.count)-byte file")
        }
        let bytes = image[start..<start + length]
        let magic = Array(bytes.prefix(6))
        let compression: Compression
        switch magic {
        case _ where magic.starts(with: [0x02, 0x21, 0x4c, 0x18]): compression = .lz4Legacy
        case _ where magic.starts(with: [0x1f, 0x8b]): compression = .gzip
        case _ where magic.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]): compression = .xz
        case _ where magic.starts(with: [0x28, 0xb5, 0x2f, 0xfd]): compression = .zstd
        case _ where magic.starts(with: [0x42, 0x5a, 0x68]): compression = .bzip2
        case _ where magic.starts(with: [0x5d, 0x00, 0x00]): compression = .lzma
        case _ where magic.starts(with: [0x89, 0x4c, 0x5a, 0x4f]): compression = .lzo
        default:
            throw fail("payload magic \(magic.map { String($0, radix: 16) }) is no compression the kernel uses")
        }
        return (compression, bytes)
    }

    static let lz4LegacyMagic: UInt32 = 0x184c_2102
    /// The kernel's build appends the uncompressed size (4 bytes, little-endian) after the frame.
    static let sizeTrailer = 4

    /// Decodes an LZ4 legacy frame as the kernel's lib/decompress_unlz4.c does: after the magic,
    /// blocks of (4-byte compressed length, LZ4 block), another magic may start a new frame, and
    /// the trailing size word ends it. The output is exactly the size the trailer says.
    public static func decompressLZ4Legacy(_ input: ArraySlice<UInt8>) throws(VMMError) -> [UInt8] {
        func fail(_ reason: String) -> VMMError { .invalidBzImage("LZ4 payload: \(reason)") }
        let bytes = Array(input)
        guard bytes.count >= 4 + sizeTrailer else { throw fail("\(bytes.count) bytes is too short") }
        let r = LittleEndianReader(bytes: bytes)
        guard r.u32(0) == lz4LegacyMagic else { throw fail("no legacy frame magic") }
        let outputSize = Int(r.u32(bytes.count - sizeTrailer))
        let dataEnd = bytes.count - sizeTrailer
        var output = [UInt8](repeating: 0, count: outputSize)
        var written = 0
        try output.withUnsafeMutableBufferPointer { (out: inout UnsafeMutableBufferPointer<UInt8>) throws(VMMError) in
            var i = 4
            while i + 4 <= dataEnd {
                let length = Int(r.u32(i))
                i += 4
                if length == Int(lz4LegacyMagic) { continue }
                guard length <= dataEnd - i else { throw fail("block of \(length) bytes at \(i - 4) runs past the data") }
                written = try decodeBlock(bytes, from: i, to: i + length, into: out, at: written)
                i += length
            }
            guard i == dataEnd else { throw fail("\(dataEnd - i) stray bytes before the size trailer") }
        }
        guard written == outputSize else { throw fail("decoded \(written) bytes, the trailer says \(outputSize)") }
        return output
    }

    /// One LZ4 block (sequences of literals and back-references) into `out` from `at`; returns
    /// the new end of output. Every read and write is bounds-checked.
    static func decodeBlock(_ input: [UInt8], from start: Int, to end: Int,
                            into out: UnsafeMutableBufferPointer<UInt8>, at position: Int) throws(VMMError) -> Int {
        func fail(_ reason: String) -> VMMError { .invalidBzImage("LZ4 block at \(start): \(reason)") }
        var i = start, o = position
        func length(_ initial: Int) throws(VMMError) -> Int {
            var n = initial
            guard initial == 15 else { return n }
            while true {
                guard i < end else { throw fail("length runs past the block") }
                let b = Int(input[i]); i += 1
                n += b
                if b != 255 { return n }
            }
        }
        while i < end {
            let token = Int(input[i]); i += 1
            let literals = try length(token >> 4)
            guard literals <= end - i, literals <= out.count - o else { throw fail("literals run past the block or the output") }
            input.withUnsafeBufferPointer { src in
                out.baseAddress!.advanced(by: o).update(from: src.baseAddress!.advanced(by: i), count: literals)
            }
            i += literals; o += literals
            if i == end { break }  // the last sequence has literals only
            guard i + 2 <= end else { throw fail("offset runs past the block") }
            let offset = Int(input[i]) | Int(input[i + 1]) << 8
            i += 2
            let match = try length(token & 15) + 4
            guard offset > 0, offset <= o else { throw fail("offset \(offset) points before the output") }
            guard match <= out.count - o else { throw fail("match runs past the output") }
            // Byte by byte: a match may overlap the bytes it produces (offset < length repeats them).
            for k in 0..<match { out[o + k] = out[o + k - offset] }
            o += match
        }
        return o
    }
}
