import Testing
@testable import BulkheadVMM

/// The freestanding virtio-blk driver (Guests/virtio_blk_guest.c) against the VMM's virtio-mmio
/// transport and virtio-blk device, through real MMIO exits and a real irqfd.
@Suite("virtio-blk driven by a guest",
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guest"))
struct VirtioBlockGuestTests {
    static let sector0Text = Array("BULKHEAD-DISK-SECTOR-0".utf8)

    /// 16 sectors: sector 0 holds a text then 0xa5 bytes (not printable, so the guest's text ends
    /// there); the others hold their own number.
    func makeDisk() throws -> TestDisk {
        let disk = try TestDisk(sectors: 16)
        var bytes = try readFile(disk.path)
        bytes.replaceSubrange(0..<512, with: Self.sector0Text + [UInt8](repeating: 0xa5, count: 512 - Self.sector0Text.count))
        try writeFile(disk.path, bytes)
        return disk
    }

    func run(readOnly: Bool, disk: TestDisk) throws -> MicroVM {
        let vm = try MicroVM(MicroVMConfiguration(
            memorySize: 32 << 20, kernel: try buildGuest("virtio_blk_guest.c"), commandLine: "",
            blockDevices: [BlockDeviceConfiguration(path: disk.path, readOnly: readOnly, serial: "bulkhead-test-disk")]))
        #expect(try vm.run(timeoutSeconds: 120) == .reset)
        return vm
    }

    @Test func guestReadsWritesFlushesAndGetsTheID() throws {
        let disk = try makeDisk()
        defer { disk.remove() }
        let before = try readFile(disk.path)
        let sum = before[0..<512].reduce(0) { $0 + Int($1) }
        let vm = try run(readOnly: false, disk: disk)
        // lapic-irr: vector 64 was not pending before the requests and is after them — the
        // irqfd pulsed IOAPIC pin 5, which the guest routed to that vector.
        #expect(vm.serial.outputText == """
            DEVICE 0xd0000000 gsi=5 magic=0x74726976 version=2 id=2
            ROUTE vector=64 lapic-irr=0
            FEATURES version1=1 ro=0 flush=1 features-ok=1
            QUEUE max=256 ready=1 capacity=16
            READ status=0 text=BULKHEAD-DISK-SECTOR-0 sum=\(sum)
            WRITE status=0
            FLUSH status=0
            ID status=0 id=bulkhead-test-disk
            PAST-END status=1
            USED idx=5 first-len=513
            INTERRUPT status=1 after-ack=0 lapic-irr=1
            LOOP needs-reset=1 interrupt-status=2
            AFTER-RESET status=15 read=0 byte=2
            DONE

            """)
        // Sector 1 now holds what the guest wrote; everything else is unchanged.
        let after = try readFile(disk.path)
        let written = Array("WRITTEN BY THE GUEST".utf8)
        var expected = (0..<512).map { UInt8(truncatingIfNeeded: $0) }
        expected.replaceSubrange(0..<written.count, with: written)
        #expect(Array(after[512..<1024]) == expected)
        #expect(Array(after[0..<512]) == Array(before[0..<512]))
        #expect(Array(after[1024...]) == Array(before[1024...]))
        // The loop was refused, and the reset that followed cleared the failure.
        #expect(vm.virtioDevices[0].failure == nil)
        #expect(vm.statistics.unclaimedAccesses == 0)
    }

    @Test func readOnlyDiskRefusesTheGuestsWrite() throws {
        let disk = try makeDisk()
        defer { disk.remove() }
        let before = try readFile(disk.path)
        let vm = try run(readOnly: true, disk: disk)
        let lines = vm.serial.outputText.split(separator: "\n")
        #expect(lines.contains("FEATURES version1=1 ro=1 flush=1 features-ok=1"))
        #expect(lines.contains("WRITE status=1"))
        #expect(lines.contains("ID status=0 id=bulkhead-test-disk"))
        #expect(lines.last == "DONE")
        #expect(try readFile(disk.path) == before)
    }
}
