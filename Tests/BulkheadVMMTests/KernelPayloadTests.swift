import Testing
@testable import BulkheadVMM

@Suite("The vmlinux inside a bzImage")
struct KernelPayloadTests {
    /// An LZ4 legacy frame of `blocks`, with the uncompressed size appended as the kernel's build does.
    static func frame(_ blocks: [[UInt8]], size: Int) -> [UInt8] {
        var b: [UInt8] = [0x02, 0x21, 0x4c, 0x18]
        for block in blocks {
            b.appendLittleEndian(UInt32(block.count))
            b += block
        }
        b.appendLittleEndian(UInt32(size))
        return b
    }

    @Test func literalsAndOverlappingMatches() throws {
        // "abc", then a 9-byte match at offset 3 (it overlaps what it writes: abcabcabc), then "!".
        let block: [UInt8] = [0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x21]
        let out = try KernelPayload.decompressLZ4Legacy(Self.frame([block], size: 13)[...])
        #expect(String(decoding: out, as: UTF8.self) == "abcabcabcabc!")
    }

    @Test func longLengthsSpanExtraBytesAndBlocksAndFramesChain() throws {
        // 20 literal 'x' (15 + 5), then a run of offset 1 and length 4 + 15 + 255 + 1 = 275 ('x').
        var block: [UInt8] = [0xff, 5] + [UInt8](repeating: 0x78, count: 20) + [0x01, 0x00, 255, 1]
        block += [0x10, 0x79]  // last sequence: one literal 'y'
        let second: [UInt8] = [0x20, 0x7a, 0x7a]  // "zz"
        var bytes = Self.frame([block], size: 0)
        bytes.removeLast(4)
        bytes += [0x02, 0x21, 0x4c, 0x18]  // a new frame's magic between blocks is skipped
        bytes.appendLittleEndian(UInt32(second.count))
        bytes += second
        bytes.appendLittleEndian(UInt32(20 + 275 + 1 + 2))
        let out = try KernelPayload.decompressLZ4Legacy(bytes[...])
        #expect(out == [UInt8](repeating: 0x78, count: 295) + [0x79, 0x7a, 0x7a])
    }

    @Test func malformedPayloadsAreRefusedNotCrashes() {
        let ok: [UInt8] = [0x30, 0x61, 0x62, 0x63]
        #expect(throws: VMMError.self) { try KernelPayload.decompressLZ4Legacy(Self.frame([ok], size: 4)[...]) }  // trailer lies
        #expect(throws: VMMError.self) { try KernelPayload.decompressLZ4Legacy(Self.frame([[0x30, 0x61]], size: 3)[...]) }  // short literals
        #expect(throws: VMMError.self) {  // offset 9 before any output
            try KernelPayload.decompressLZ4Legacy(Self.frame([[0x10, 0x61, 0x09, 0x00]], size: 5)[...])
        }
        #expect(throws: VMMError.self) { try KernelPayload.decompressLZ4Legacy([0x1f, 0x8b, 0, 0, 0, 0, 0, 0][...]) }  // not LZ4
        var long = Self.frame([ok], size: 3)
        long[4] = 0xff  // block length past the data
        #expect(throws: VMMError.self) { try KernelPayload.decompressLZ4Legacy(long[...]) }
    }

    /// A bzImage-shaped file: setup header (boot protocol 2.15, one setup sector) and a payload
    /// 0x40 bytes into the protected-mode part.
    static func bzImage(payload: [UInt8], version: UInt16 = 0x020f) -> [UInt8] {
        var image = [UInt8](repeating: 0, count: 2 * 512 + 0x40)
        image[BzImage.Field.setupSects] = 1
        image[0x1fe] = 0x55; image[0x1ff] = 0xaa
        image.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        image.replaceSubrange(0x206..<0x208, with: [UInt8(version & 0xff), UInt8(version >> 8)])
        image.replaceSubrange(0x248..<0x24c, with: [0x40, 0, 0, 0])
        let n = UInt32(payload.count)
        image.replaceSubrange(0x24c..<0x250, with: [UInt8(n & 0xff), UInt8(n >> 8 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 24)])
        return image + payload + [0xee]  // something after the payload that is not part of it
    }

    @Test func theSetupHeaderLocatesThePayloadAndItsMagicNamesTheCompression() throws {
        let lz4 = Self.frame([[0x30, 0x61, 0x62, 0x63]], size: 3)
        let found = try KernelPayload.compressed(in: Self.bzImage(payload: lz4))
        #expect(found.compression == .lz4Legacy)
        #expect(Array(found.bytes) == lz4)
        #expect(try KernelPayload.decompressLZ4Legacy(found.bytes) == Array("abc".utf8))
        #expect(try KernelPayload.compressed(in: Self.bzImage(payload: [0x1f, 0x8b, 8, 0])).compression == .gzip)
        #expect(try KernelPayload.compressed(in: Self.bzImage(payload: [0x28, 0xb5, 0x2f, 0xfd])).compression == .zstd)
        #expect(throws: VMMError.self) { try KernelPayload.compressed(in: Self.bzImage(payload: [1, 2, 3, 4])) }
        #expect(throws: VMMError.self) { try KernelPayload.compressed(in: Self.bzImage(payload: lz4, version: 0x0207)) }
        var truncated = Self.bzImage(payload: lz4)
        truncated.removeLast(8)
        #expect(throws: VMMError.self) { try KernelPayload.compressed(in: truncated) }
        #expect(throws: VMMError.self) { try KernelPayload.compressed(in: [0x7f, 0x45, 0x4c, 0x46]) }
    }
}
