import Glibc
import Testing
@testable import BulkheadVMM

/// Counts interrupts instead of raising them.
final class CountingInterrupt: InterruptLine {
    var count = 0
    func trigger() { count += 1 }
}

/// A driver written in Swift against the register interface, with one queue laid out in a small
/// guest memory: descriptor table at 0x1000, available ring at 0x2000, used ring at 0x3000, data
/// from 0x4000. Tests write descriptors by hand, so they can also write hostile ones.
final class TestVirtioDriver {
    static let descriptorTable: UInt64 = 0x1000
    static let availableRing: UInt64 = 0x2000
    static let usedRing: UInt64 = 0x3000
    let memory: GuestMemory
    let transport: VirtioMMIOTransport
    let interrupt = CountingInterrupt()
    let queueSize: UInt16
    private var availableIndex: UInt16 = 0

    init(device: VirtioDevice, memorySize: UInt64 = 1 << 20, queueSize: UInt16 = 8) throws {
        memory = try GuestMemory(size: memorySize)
        transport = VirtioMMIOTransport(device: device, memory: memory, interrupt: interrupt)
        self.queueSize = queueSize
    }

    func reg(_ offset: UInt64) -> UInt32 { UInt32(transport.read(offset: offset, size: 4)) }
    func set(_ offset: UInt64, _ value: UInt32) { transport.write(offset: offset, size: 4, value: UInt64(value)) }

    /// The initialisation sequence of §3.1.1 and §4.2.3.2; returns the status read back.
    @discardableResult
    func initialise(features: UInt64? = nil, descriptorTable: UInt64 = descriptorTable) -> UInt32 {
        typealias R = VirtioMMIOTransport.Register
        set(R.status, 0)
        set(R.status, Virtio.Status.acknowledge)
        set(R.status, Virtio.Status.acknowledge | Virtio.Status.driver)
        set(R.deviceFeaturesSelect, 0)
        var offered = UInt64(reg(R.deviceFeatures))
        set(R.deviceFeaturesSelect, 1)
        offered |= UInt64(reg(R.deviceFeatures)) << 32
        let accepted = features ?? offered
        set(R.driverFeaturesSelect, 0); set(R.driverFeatures, UInt32(truncatingIfNeeded: accepted))
        set(R.driverFeaturesSelect, 1); set(R.driverFeatures, UInt32(truncatingIfNeeded: accepted >> 32))
        set(R.status, Virtio.Status.acknowledge | Virtio.Status.driver | Virtio.Status.featuresOK)
        guard reg(R.status) & Virtio.Status.featuresOK != 0 else { return reg(R.status) }
        setUpQueue(0, size: UInt32(queueSize), descriptorTable: descriptorTable,
                   availableRing: Self.availableRing, usedRing: Self.usedRing)
        set(R.status, Virtio.Status.acknowledge | Virtio.Status.driver | Virtio.Status.featuresOK | Virtio.Status.driverOK)
        return reg(R.status)
    }

    /// Gives queue `index` its size and ring addresses and marks it ready (§4.2.3.2).
    func setUpQueue(_ index: UInt32, size: UInt32, descriptorTable: UInt64, availableRing: UInt64, usedRing: UInt64) {
        typealias R = VirtioMMIOTransport.Register
        set(R.queueSelect, index)
        set(R.queueNum, size)
        for (low, high, address) in [(R.queueDescriptorLow, R.queueDescriptorHigh, descriptorTable),
                                     (R.queueDriverLow, R.queueDriverHigh, availableRing),
                                     (R.queueDeviceLow, R.queueDeviceHigh, usedRing)] {
            set(low, UInt32(truncatingIfNeeded: address))
            set(high, UInt32(truncatingIfNeeded: address >> 32))
        }
        set(R.queueReady, 1)
    }

    /// Writes descriptor `index`.
    func descriptor(_ index: UInt16, address: UInt64, length: UInt32, writable: Bool = false, next: UInt16? = nil,
                    extraFlags: UInt16 = 0) throws {
        let at = Self.descriptorTable + 16 * UInt64(index)
        try memory.store(address, at: at)
        try memory.store(length, at: at + 8)
        try memory.store(UInt16(next == nil ? 0 : 1) | (writable ? 2 : 0) | extraFlags, at: at + 12)
        try memory.store(next ?? 0, at: at + 14)
    }

    /// Resets the device (Status 0 in `initialise`) and starts over with empty rings.
    @discardableResult
    func restart() throws -> UInt32 {
        try memory.fill(0, at: Self.descriptorTable, count: 0x3000)
        availableIndex = 0
        return initialise()
    }

    /// Makes the chain at `head` available and kicks the queue.
    func submit(head: UInt16) throws {
        try memory.store(head, at: Self.availableRing + 4 + 2 * UInt64(availableIndex % queueSize))
        availableIndex &+= 1
        try memory.store(availableIndex, at: Self.availableRing + 2)
        set(VirtioMMIOTransport.Register.queueNotify, 0)
    }

    var usedIndex: UInt16 { (try? memory.load(UInt16.self, at: Self.usedRing + 2)) ?? 0 }
    func usedElement(_ i: UInt16) throws -> (id: UInt32, length: UInt32) {
        let at = Self.usedRing + 4 + 8 * UInt64(i % queueSize)
        return (try memory.load(UInt32.self, at: at), try memory.load(UInt32.self, at: at + 4))
    }

    /// A block request in three descriptors (0: header, 1: data, 2: status) at fixed addresses:
    /// header 0x4000, data 0x5000, status 0x4100.
    func blockRequest(type: UInt32, sector: UInt64, dataLength: UInt32, dataWritable: Bool) throws -> UInt8 {
        try memory.store(type, at: 0x4000)
        try memory.store(UInt32(0), at: 0x4004)
        try memory.store(sector, at: 0x4008)
        try memory.store(UInt8(0xee), at: 0x4100)
        try descriptor(0, address: 0x4000, length: 16, next: dataLength > 0 ? 1 : 2)
        if dataLength > 0 { try descriptor(1, address: 0x5000, length: dataLength, writable: dataWritable, next: 2) }
        try descriptor(2, address: 0x4100, length: 1, writable: true)
        try submit(head: 0)
        return try memory.load(UInt8.self, at: 0x4100)
    }
}

/// A disk image in a temporary directory: `sectors` sectors, sector n filled with byte n.
struct TestDisk {
    let directory: String
    let path: String
    init(sectors: Int) throws {
        directory = try makeTemporaryDirectory()
        path = directory + "/disk.img"
        var bytes: [UInt8] = []
        for s in 0..<sectors { bytes += [UInt8](repeating: UInt8(truncatingIfNeeded: s), count: 512) }
        try writeFile(path, bytes)
    }
    func remove() { removeTree(directory) }
}

@Suite("virtio-mmio transport and virtio-blk")
struct VirtioBlockTests {
    typealias R = VirtioMMIOTransport.Register

    @Test func registersIdentifyAVersion2BlockDevice() throws {
        let disk = try TestDisk(sectors: 4)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: true))
        #expect(driver.reg(R.magicValue) == 0x7472_6976)  // "virt"
        #expect(driver.reg(R.version) == 2)
        #expect(driver.reg(R.deviceID) == 2)
        #expect(driver.reg(R.queueNumMax) == 256)
        driver.set(R.deviceFeaturesSelect, 1)
        #expect(driver.reg(R.deviceFeatures) == 1)  // VIRTIO_F_VERSION_1
        driver.set(R.deviceFeaturesSelect, 0)
        #expect(driver.reg(R.deviceFeatures) & (1 << 5) != 0)  // VIRTIO_BLK_F_RO
        // capacity: 4 sectors, read as two 32-bit halves as Linux does.
        #expect(driver.transport.read(offset: R.configuration, size: 4) == 4)
        #expect(driver.transport.read(offset: R.configuration + 4, size: 4) == 0)
        #expect(driver.transport.read(offset: R.configuration, size: 8) == 4)
    }

    @Test func featuresOKIsRefusedWithoutVersion1OrWithUnofferedFeatures() throws {
        let disk = try TestDisk(sectors: 1)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false))
        #expect(driver.initialise(features: 1 << 9) & Virtio.Status.featuresOK == 0)  // no VERSION_1
        #expect(driver.initialise(features: Virtio.featureVersion1 | (1 << 28)) & Virtio.Status.featuresOK == 0)
        #expect(driver.initialise() & Virtio.Status.driverOK != 0)
    }

    @Test func readWriteFlushAndGetID() throws {
        let disk = try TestDisk(sectors: 8)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false, serial: "bulkhead-disk-0"))
        driver.initialise()
        // Read sectors 2-3.
        #expect(try driver.blockRequest(type: 0, sector: 2, dataLength: 1024, dataWritable: true) == 0)
        #expect(try driver.memory.read(at: 0x5000, count: 1024) == [UInt8](repeating: 2, count: 512) + [UInt8](repeating: 3, count: 512))
        #expect(try driver.usedElement(0).id == 0 && driver.usedElement(0).length == 1025)
        #expect(driver.transport.interruptStatus & Virtio.Interrupt.usedBuffer != 0)
        #expect(driver.interrupt.count == 1)
        // Write sector 5.
        try driver.memory.write([UInt8](repeating: 0xab, count: 512), at: 0x5000)
        #expect(try driver.blockRequest(type: 1, sector: 5, dataLength: 512, dataWritable: false) == 0)
        let file = try readFile(disk.path)
        #expect(Array(file[2560..<3072]) == [UInt8](repeating: 0xab, count: 512))
        #expect(Array(file[3072..<3584]) == [UInt8](repeating: 6, count: 512))
        #expect(try driver.usedElement(1).length == 1)
        // Flush, then the id (NUL-padded to 20 bytes).
        #expect(try driver.blockRequest(type: 4, sector: 0, dataLength: 0, dataWritable: false) == 0)
        #expect(try driver.blockRequest(type: 8, sector: 0, dataLength: 20, dataWritable: true) == 0)
        #expect(try driver.memory.read(at: 0x5000, count: 20) == Array("bulkhead-disk-0".utf8) + [0, 0, 0, 0, 0])
        #expect(try driver.usedElement(3).length == 21)
        // Unknown request types are unsupported, not errors of the queue.
        #expect(try driver.blockRequest(type: 99, sector: 0, dataLength: 0, dataWritable: false) == 2)
        #expect(driver.usedIndex == 5)
        #expect(driver.transport.failure == nil)
    }

    @Test func outOfRangeSectorsAndPartialSectorsAreIOErrors() throws {
        let disk = try TestDisk(sectors: 4)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false))
        driver.initialise()
        #expect(try driver.blockRequest(type: 0, sector: 4, dataLength: 512, dataWritable: true) == 1)
        #expect(try driver.blockRequest(type: 0, sector: 3, dataLength: 1024, dataWritable: true) == 1)
        #expect(try driver.blockRequest(type: 1, sector: UInt64.max, dataLength: 512, dataWritable: false) == 1)
        #expect(try driver.blockRequest(type: 0, sector: 0, dataLength: 100, dataWritable: true) == 1)
        #expect(try driver.blockRequest(type: 0, sector: 3, dataLength: 512, dataWritable: true) == 0)
        #expect(driver.transport.failure == nil)
    }

    @Test func writesToAReadOnlyDiskFailAndLeaveTheFileAlone() throws {
        let disk = try TestDisk(sectors: 2)
        defer { disk.remove() }
        let before = try readFile(disk.path)
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: true))
        driver.initialise()
        try driver.memory.write([UInt8](repeating: 0xcd, count: 512), at: 0x5000)
        #expect(try driver.blockRequest(type: 1, sector: 0, dataLength: 512, dataWritable: false) == 1)
        #expect(try readFile(disk.path) == before)
        #expect(try driver.blockRequest(type: 4, sector: 0, dataLength: 0, dataWritable: false) == 0)
    }

    @Test func missingDiskIsRefusedWithItsPath() {
        #expect { try VirtioBlock(path: "/nonexistent/disk.img", readOnly: true) } throws: { error in
            "\(error)".contains("/nonexistent/disk.img")
        }
    }
}

/// A driver that breaks the rules: every case must end with DEVICE_NEEDS_RESET (or a clean
/// refusal), a reason naming what was wrong, no crash, no hang — and the device must work again
/// after the driver resets it.
@Suite("Hostile virtqueues")
struct HostileVirtqueueTests {
    typealias R = VirtioMMIOTransport.Register

    /// Sets up a device, lets `attack` misbehave, checks the device asked for a reset with a reason
    /// containing `expected`, then resets and checks a good read works again.
    func expectNeedsReset(_ expected: String, _ attack: (TestVirtioDriver) throws -> Void) throws {
        let disk = try TestDisk(sectors: 4)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false))
        driver.initialise()
        try attack(driver)
        #expect(driver.reg(R.status) & Virtio.Status.deviceNeedsReset != 0, "DEVICE_NEEDS_RESET for \(expected)")
        #expect(driver.transport.failure?.contains(expected) == true, "\(driver.transport.failure ?? "no failure")")
        #expect(driver.transport.interruptStatus & Virtio.Interrupt.configurationChange != 0)
        // Further kicks are ignored while the device needs a reset.
        let used = driver.usedIndex
        driver.set(R.queueNotify, 0)
        #expect(driver.usedIndex == used)
        // A reset of the same transport brings it back.
        #expect(try driver.restart() & Virtio.Status.deviceNeedsReset == 0)
        #expect(driver.transport.failure == nil)
        #expect(try driver.blockRequest(type: 0, sector: 1, dataLength: 512, dataWritable: true) == 0)
        #expect(try driver.memory.read(at: 0x5000, count: 512) == [UInt8](repeating: 1, count: 512))
        #expect(driver.usedIndex == 1)
    }

    @Test func bufferOutsideGuestMemory() throws {
        try expectNeedsReset("outside guest memory") { d in
            try d.descriptor(0, address: 0x4000, length: 16, next: 1)
            try d.descriptor(1, address: d.memory.size - 256, length: 512, writable: true, next: 2)
            try d.descriptor(2, address: 0x4100, length: 1, writable: true)
            try d.submit(head: 0)
        }
    }

    @Test func addressThatWrapsAround() throws {
        try expectNeedsReset("outside guest memory") { d in
            try d.descriptor(0, address: UInt64.max - 8, length: 16, next: 1)
            try d.descriptor(1, address: 0x4100, length: 1, writable: true)
            try d.submit(head: 0)
        }
    }

    @Test func absurdLength() throws {
        try expectNeedsReset("outside guest memory") { d in
            try d.descriptor(0, address: 0x4000, length: 16, next: 1)
            try d.descriptor(1, address: 0x5000, length: UInt32.max, writable: true, next: 2)
            try d.descriptor(2, address: 0x4100, length: 1, writable: true)
            try d.submit(head: 0)
        }
    }

    @Test func descriptorLoop() throws {
        try expectNeedsReset("longer than the queue size") { d in
            try d.descriptor(0, address: 0x4000, length: 16, next: 1)
            try d.descriptor(1, address: 0x5000, length: 512, next: 0)
            try d.submit(head: 0)
        }
    }

    @Test func selfLoop() throws {
        try expectNeedsReset("longer than the queue size") { d in
            try d.descriptor(3, address: 0x4000, length: 16, next: 3)
            try d.submit(head: 3)
        }
    }

    @Test func nextIndexOutsideTheQueue() throws {
        try expectNeedsReset("outside the queue") { d in
            try d.descriptor(0, address: 0x4000, length: 16, next: 200)
            try d.submit(head: 0)
        }
    }

    @Test func headIndexOutsideTheQueue() throws {
        try expectNeedsReset("outside the queue") { d in try d.submit(head: 0xffff) }
    }

    @Test func readIntoADeviceReadableBuffer() throws {
        try expectNeedsReset("marked read-only") { d in
            _ = try d.blockRequest(type: 0, sector: 0, dataLength: 512, dataWritable: false)
        }
    }

    @Test func noWritableStatusByte() throws {
        try expectNeedsReset("no device-writable status byte") { d in
            try d.descriptor(0, address: 0x4000, length: 16, next: 1)
            try d.descriptor(1, address: 0x4100, length: 1)
            try d.submit(head: 0)
        }
    }

    @Test func readableAfterWritable() throws {
        try expectNeedsReset("follows a device-writable") { d in
            try d.descriptor(0, address: 0x4000, length: 16, next: 1)
            try d.descriptor(1, address: 0x4100, length: 1, writable: true, next: 2)
            try d.descriptor(2, address: 0x5000, length: 512)
            try d.submit(head: 0)
        }
    }

    @Test func indirectDescriptorNotOffered() throws {
        try expectNeedsReset("indirect") { d in
            try d.descriptor(0, address: 0x4000, length: 16, extraFlags: 4)
            try d.submit(head: 0)
        }
    }

    @Test func shortHeader() throws {
        try expectNeedsReset("want 16") { d in
            try d.descriptor(0, address: 0x4000, length: 8, next: 1)
            try d.descriptor(1, address: 0x4100, length: 1, writable: true)
            try d.submit(head: 0)
        }
    }

    @Test func availableIndexRunsAheadOfTheQueue() throws {
        try expectNeedsReset("more than the queue size") { d in
            try d.memory.store(UInt16(1000), at: TestVirtioDriver.availableRing + 2)
            d.set(R.queueNotify, 0)
        }
    }

    @Test func ringOutsideGuestMemory() throws {
        let disk = try TestDisk(sectors: 1)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false))
        let status = driver.initialise(descriptorTable: 0xffff_0000)
        #expect(status & Virtio.Status.deviceNeedsReset != 0)
        #expect(driver.transport.failure?.contains("descriptor table at 0xffff0000") == true)
        #expect(driver.reg(R.queueReady) == 0)
    }

    @Test func misalignedRingAndBadQueueSize() throws {
        let disk = try TestDisk(sectors: 1)
        defer { disk.remove() }
        let d1 = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false))
        d1.initialise(descriptorTable: 0x1008)
        #expect(d1.transport.failure?.contains("not 16-byte aligned") == true)
        let d2 = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false), queueSize: 6)
        d2.initialise()
        #expect(d2.transport.failure?.contains("not a power of two") == true)
        let d3 = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false), queueSize: 1024)
        d3.initialise()
        #expect(d3.transport.failure?.contains("larger than its maximum 256") == true)
    }

    @Test func accessesOutsideTheRegisterRulesAreIgnored() throws {
        let disk = try TestDisk(sectors: 1)
        defer { disk.remove() }
        let driver = try TestVirtioDriver(device: try VirtioBlock(path: disk.path, readOnly: false))
        // Unaligned and narrow register accesses, a queue that does not exist, config past its end.
        #expect(driver.transport.read(offset: 1, size: 4) == 0)
        #expect(driver.transport.read(offset: 0, size: 1) == 0)
        driver.set(R.queueSelect, 7)
        #expect(driver.reg(R.queueNumMax) == 0)
        driver.set(R.queueReady, 1)
        driver.set(R.queueNotify, 7)
        driver.set(R.queueNotify, 0xffff_ffff)
        #expect(driver.transport.read(offset: R.configuration + 0xe00, size: 4) == 0)
        #expect(driver.transport.failure == nil)
    }
}
