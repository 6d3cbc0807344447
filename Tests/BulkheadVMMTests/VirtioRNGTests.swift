import Testing
@testable import BulkheadVMM

/// virtio-rng through the transport, driven by the Swift test driver (no KVM).
@Suite("virtio-rng")
struct VirtioRNGTests {
    typealias R = VirtioMMIOTransport.Register

    @Test func identifiesAsAnEntropyDeviceWithOneQueue() throws {
        let driver = try TestVirtioDriver(device: VirtioRNG())
        #expect(driver.reg(R.deviceID) == 4)
        #expect(driver.reg(R.queueNumMax) == 256)
        driver.set(R.queueSelect, 1)
        #expect(driver.reg(R.queueNumMax) == 0)  // one queue only
        #expect(driver.initialise() & Virtio.Status.driverOK != 0)
        #expect(driver.transport.read(offset: R.configuration, size: 4) == 0)  // no configuration space
    }

    @Test func fillsWritableBuffersWithRandomBytes() throws {
        let rng = VirtioRNG()
        let driver = try TestVirtioDriver(device: rng)
        driver.initialise()
        // One chain of two buffers, then a second request.
        try driver.descriptor(0, address: 0x4000, length: 16, writable: true, next: 1)
        try driver.descriptor(1, address: 0x4100, length: 48, writable: true)
        try driver.submit(head: 0)
        #expect(driver.usedIndex == 1)
        #expect(try driver.usedElement(0) == (id: 0, length: 64))
        let first = try driver.memory.read(at: 0x4000, count: 16) + driver.memory.read(at: 0x4100, count: 48)
        try driver.descriptor(2, address: 0x5000, length: 64, writable: true)
        try driver.submit(head: 2)
        #expect(try driver.usedElement(1) == (id: 2, length: 64))
        let second = try driver.memory.read(at: 0x5000, count: 64)
        #expect(first != second)
        #expect(first.contains { $0 != 0 } && second.contains { $0 != 0 })
        #expect(try driver.memory.read(at: 0x4010, count: 16).allSatisfy { $0 == 0 })  // nothing outside the buffers
        #expect(rng.bytesProvided == 128)
        #expect(driver.interrupt.count == 2)
    }

    @Test func aHugeRequestIsFilledOnlyUpToTheLimit() throws {
        let driver = try TestVirtioDriver(device: VirtioRNG(), memorySize: 1 << 20)
        driver.initialise()
        try driver.descriptor(0, address: 0x10000, length: 0x80000, writable: true)
        try driver.submit(head: 0)
        #expect(try driver.usedElement(0).length == VirtioRNG.maximumRequestBytes)
        #expect(try driver.memory.read(at: 0x10000 + UInt64(VirtioRNG.maximumRequestBytes), count: 4096).allSatisfy { $0 == 0 })
    }

    @Test func zeroLengthBufferGetsNothing() throws {
        let driver = try TestVirtioDriver(device: VirtioRNG())
        driver.initialise()
        try driver.descriptor(0, address: 0x4000, length: 0, writable: true)
        try driver.submit(head: 0)
        #expect(try driver.usedElement(0) == (id: 0, length: 0))
        #expect(driver.transport.failure == nil)
    }

    @Test func deviceReadableBufferIsAMalformedQueue() throws {
        let driver = try TestVirtioDriver(device: VirtioRNG())
        driver.initialise()
        try driver.memory.write([UInt8](repeating: 7, count: 64), at: 0x4000)
        try driver.descriptor(0, address: 0x4000, length: 64)
        try driver.submit(head: 0)
        #expect(driver.transport.failure?.contains("device-readable") == true)
        #expect(driver.reg(R.status) & Virtio.Status.deviceNeedsReset != 0)
        #expect(driver.usedIndex == 0)
        #expect(try driver.memory.read(at: 0x4000, count: 64) == [UInt8](repeating: 7, count: 64))
        // A reset brings it back.
        #expect(try driver.restart() & Virtio.Status.driverOK != 0)
        try driver.descriptor(0, address: 0x4000, length: 8, writable: true)
        try driver.submit(head: 0)
        #expect(try driver.usedElement(0).length == 8)
    }

    @Test func bufferOutsideGuestMemoryAndLoopsAreRefused() throws {
        let driver = try TestVirtioDriver(device: VirtioRNG())
        driver.initialise()
        try driver.descriptor(0, address: (1 << 20) - 8, length: 64, writable: true)
        try driver.submit(head: 0)
        #expect(driver.transport.failure?.contains("outside guest memory") == true)
        try driver.restart()
        try driver.descriptor(0, address: 0x4000, length: 8, writable: true, next: 1)
        try driver.descriptor(1, address: 0x4100, length: 8, writable: true, next: 0)
        try driver.submit(head: 0)
        #expect(driver.transport.failure?.contains("loop") == true)
    }
}

@Suite("virtio-rng driven by a guest",
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guest"))
struct VirtioRNGGuestTests {
    @Test func guestReadsTwoDifferentRandomBlocks() throws {
        let vm = try MicroVM(MicroVMConfiguration(
            memorySize: 32 << 20, kernel: try buildGuest("virtio_rng_guest.c"), commandLine: "", entropy: true))
        #expect(try vm.run(timeoutSeconds: 120) == .reset)
        let lines = vm.serial.outputText.split(separator: "\n").map(String.init)
        #expect(lines.first == "DEVICE id=4 features-ok=1 queue-max=256 ready=1")
        #expect(lines.contains("READ len-a=64 len-b=64 a-nonzero=1 b-nonzero=1 differ=1"), "\(lines)")
        #expect(lines.contains("HOSTILE needs-reset=1 used=2"), "\(lines)")
        #expect(lines.contains("AFTER-RESET status=15 len=32 tail-zero=1"), "\(lines)")
        #expect(lines.last == "DONE")
        #expect(vm.virtioDevices[0].failure == nil)
        #expect(vm.statistics.unclaimedAccesses == 0)
    }

    @Test func entropyDeviceFollowsTheDisks() throws {
        let disk = try TestDisk(sectors: 4)
        defer { disk.remove() }
        let vm = try MicroVM(MicroVMConfiguration(
            memorySize: 32 << 20, kernel: try buildGuest("virtio_rng_guest.c"), commandLine: "",
            blockDevices: [BlockDeviceConfiguration(path: disk.path)], entropy: true))
        #expect(vm.virtioDevices.map(\.device.deviceType) == [2, 4])
        #expect(vm.virtioDescriptions.map(\.gsi) == [5, 6])
        #expect(try vm.run(timeoutSeconds: 120) == .reset)
        #expect(vm.serial.outputText.split(separator: "\n").last == "DONE")
    }
}
