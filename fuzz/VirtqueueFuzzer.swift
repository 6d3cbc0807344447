// libFuzzer entry point for the guest-facing virtio code: split-virtqueue parsing (Virtqueue),
// virtio-blk request handling (VirtioBlock) and the virtio-mmio register interface
// (VirtioMMIOTransport), against guest memory whose whole content the fuzzer controls.
// Built by fuzz/run.sh together with the BulkheadVMM sources it exercises (one module), so it
// reaches internal API. Any Swift trap (overflow, out-of-range index, division by zero), any
// ASan report, or a broken invariant checked below is a crash libFuzzer keeps.
//
// Input layout (little-endian):
//   byte 0        mode: bit 0 clear = drive a Virtqueue directly, set = drive the MMIO transport;
//                 bit 1 = read-only disk
//   byte 1        queue size: bit 7 clear = 1 << (b % 9), set = b & 0x7f as is (may be invalid)
//   bytes 2..<14  descriptor table, available ring, used ring addresses (u32 each)
//   transport mode only: byte 14 = n, then n operations of 6 bytes:
//                 [offset u16 (& 0x1ff)] [size code: 1 << (b & 3)] [write if bit 7] [value u24]
//   the rest      guest memory from guest physical address 0 (64 KiB; the rest zero)
import Glibc

let guestMemorySize: UInt64 = 64 * 1024
let diskSize = 64 * 1024

/// A scratch disk: a deleted temporary file, so pwrite/pread hit a real descriptor.
func makeDisk(readOnly: Bool) -> VirtioBlock {
    var template = Array("/tmp/bulkhead-fuzz-disk-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    precondition(fd >= 0, "mkstemp")
    precondition(ftruncate(fd, off_t(diskSize)) == 0, "ftruncate")
    let path = String(cString: template)
    let disk = try! VirtioBlock(path: path, readOnly: readOnly, serial: "fuzz-disk")
    unlink(path)
    close(fd)
    return disk
}

final class CountingInterrupt: InterruptLine {
    var count = 0
    func trigger() { count += 1 }
}

nonisolated(unsafe) let memory = try! GuestMemory(size: guestMemorySize)
nonisolated(unsafe) let writableDisk = makeDisk(readOnly: false)
nonisolated(unsafe) let readOnlyDisk = makeDisk(readOnly: true)

struct Input {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    mutating func u8() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    var rest: UnsafeRawBufferPointer.SubSequence { bytes[min(at, bytes.count)...] }
}

/// Guest memory = the rest of the input, then zeros.
func loadMemory(_ bytes: UnsafeRawBufferPointer.SubSequence) {
    try! memory.fill(0, at: 0, count: guestMemorySize)
    try! memory.write(bytes.prefix(Int(guestMemorySize)), at: 0)
}

func fuzzQueue(_ input: inout Input, disk: VirtioBlock) {
    let sizeByte = input.u8()
    var queue = Virtqueue()
    queue.size = sizeByte & 0x80 == 0 ? UInt16(1) << (sizeByte % 9) : UInt16(sizeByte & 0x7f)
    queue.descriptorTable = UInt64(input.u32())
    queue.availableRing = UInt64(input.u32())
    queue.usedRing = UInt64(input.u32())
    loadMemory(input.rest)
    do { try queue.validate(memory: memory) } catch { return }
    queue.ready = true
    // Parse every descriptor as a chain head: the parser must answer (chain or error) for all.
    for head in 0..<queue.size {
        if let chain = try? queue.chain(from: head, memory: memory) {
            precondition(!chain.buffers.isEmpty && chain.buffers.count <= Int(queue.size))
            for b in chain.buffers {
                precondition(b.address &+ UInt64(b.length) <= guestMemorySize && b.address <= guestMemorySize,
                             "buffer outside guest memory accepted")
            }
            let firstWritable = chain.buffers.firstIndex(where: \.deviceWritable) ?? chain.buffers.count
            precondition(!chain.buffers[firstWritable...].contains { !$0.deviceWritable }, "readable after writable")
        }
    }
    // Then serve the ring as the device does on a notification, a few times.
    for _ in 0..<3 {
        do {
            guard try disk.processQueue(0, queue: &queue, memory: memory) else { break }
        } catch { break }
    }
}

func fuzzTransport(_ input: inout Input, disk: VirtioBlock) {
    let sizeByte = input.u8()
    let size = sizeByte & 0x80 == 0 ? UInt32(1) << (sizeByte % 9) : UInt32(sizeByte & 0x7f)
    let descriptors = input.u32(), available = input.u32(), used = input.u32()
    let count = Int(input.u8() % 64)
    var operations: [(offset: UInt64, size: Int, write: Bool, value: UInt64)] = []
    for _ in 0..<count {
        let offset = UInt64(input.u16() & 0x1ff), code = input.u8()
        let value = UInt64(input.u16()) | UInt64(input.u8()) << 16
        operations.append((offset, 1 << Int(code & 3), code & 0x80 != 0, value))
    }
    loadMemory(input.rest)
    let interrupt = CountingInterrupt()
    let transport = VirtioMMIOTransport(device: disk, memory: memory, interrupt: interrupt)
    typealias R = VirtioMMIOTransport.Register
    // A well-behaved driver's setup (§3.1.1), with the fuzzer's queue layout, so that the
    // operations start from a running device; they may then reset or reconfigure it.
    let setup: [(UInt64, UInt64)] = [
        (R.status, 0), (R.status, 1), (R.status, 3),
        (R.driverFeaturesSelect, 1), (R.driverFeatures, 1),  // VIRTIO_F_VERSION_1
        (R.driverFeaturesSelect, 0), (R.driverFeatures, UInt64(UInt32(truncatingIfNeeded: disk.offeredFeatures))),
        (R.status, 11), (R.queueSelect, 0), (R.queueNum, UInt64(size)),
        (R.queueDescriptorLow, UInt64(descriptors)), (R.queueDescriptorHigh, 0),
        (R.queueDriverLow, UInt64(available)), (R.queueDriverHigh, 0),
        (R.queueDeviceLow, UInt64(used)), (R.queueDeviceHigh, 0),
        (R.queueReady, 1), (R.status, 15), (R.queueNotify, 0),
    ]
    for (offset, value) in setup { transport.write(offset: offset, size: 4, value: value) }
    for op in operations {
        if op.write {
            transport.write(offset: op.offset, size: op.size, value: op.value)
        } else {
            _ = transport.read(offset: op.offset, size: op.size)
        }
    }
    transport.write(offset: R.queueNotify, size: 4, value: 0)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    guard let data, count > 0 else { return 0 }
    var input = Input(bytes: UnsafeRawBufferPointer(start: data, count: count))
    let mode = input.u8()
    let disk = mode & 2 != 0 ? readOnlyDisk : writableDisk
    if mode & 1 == 0 { fuzzQueue(&input, disk: disk) } else { fuzzTransport(&input, disk: disk) }
    return 0
}
