import Glibc
import Testing
@testable import BulkheadVMM

/// Boots the freestanding test guest (Guests/) through the same path a vmlinux will take: ELF
/// loader, zero page, page tables, long-mode vCPU at the 64-bit entry, COM1, i8042 reset.
@Suite("Boot the test guest on /dev/kvm",
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guest"))
struct BootGuestTests {
    @Test func guestReadsE820AndCommandLineThenResets() throws {
        let memorySize: UInt64 = 256 << 20
        let commandLine = "console=ttyS0 bulkhead=1"
        let vm = try MicroVM(MicroVMConfiguration(memorySize: memorySize, kernel: try buildBootGuest(), commandLine: commandLine))
        #expect(vm.kernel.entry == 0x100000)
        // The guest is tiny; 60 s only bounds a broken boot (kernel mode is very slow under PVM).
        let exit = try vm.run(timeoutSeconds: 60)

        let ram = vm.e820.filter { $0.kind == .ram }.reduce(UInt64(0)) { $0 + $1.size }
        #expect(ram == 0x9fc00 + memorySize - 0x100000)
        #expect(vm.serial.outputText == "E820 n=\(vm.e820.count) ram=\(ram)\nCMDLINE \(commandLine)\n")
        // 0x9fc00 below the EBDA + 255 MiB from 1 MiB up.
        #expect(vm.serial.outputText == "E820 n=2 ram=268041216\nCMDLINE console=ttyS0 bulkhead=1\n")
        #expect(exit == .reset)
        // One exit per output byte (plus polls of LSR) and the reset; nothing unclaimed.
        #expect(vm.statistics.unclaimedAccesses == 0)
    }

    @Test func guestFindsTheInitrd() throws {
        let memorySize: UInt64 = 64 << 20
        let initrd = Array("BULKHEAD-INITRD".utf8) + [0] + [UInt8](repeating: 0x42, count: 5000)
        let vm = try MicroVM(MicroVMConfiguration(memorySize: memorySize, kernel: try buildBootGuest(),
                                                  commandLine: "x", initrd: initrd))
        // The highest page-aligned place in RAM.
        let address = (memorySize - UInt64(initrd.count)) & ~0xfff
        #expect(vm.initrd?.address == address && vm.initrd?.size == UInt64(initrd.count))
        #expect(try vm.run(timeoutSeconds: 60) == .reset)
        #expect(vm.serial.outputText == """
            E820 n=2 ram=\(0x9fc00 + memorySize - 0x100000)
            CMDLINE x
            INITRD addr=\(address) size=\(initrd.count) data=BULKHEAD-INITRD

            """)
    }

    @Test func truncatedGuestIsRefusedBeforeRunning() throws {
        let image = try buildBootGuest()
        #expect {
            try MicroVM(MicroVMConfiguration(memorySize: 64 << 20, kernel: Array(image[0..<(image.count / 2)]),
                                             commandLine: "console=ttyS0"))
        } throws: { error in
            guard case let .invalidELF(reason)? = error as? VMMError else { return false }
            return reason.contains("runs past the end")
        }
    }

    @Test func kvmReportsWhatTheVMMNeeds() throws {
        let kvm = try KVMSystem()
        for capability in [KVMCapability.irqchip, .pit2, .userMemory, .extendedCPUID, .irqfd] {
            #expect(kvm.checkExtension(capability) > 0, "KVM_CAP \(capability.rawValue)")
        }
        #expect(try kvm.vcpuMmapSize() >= 4096)
        let cpuid = try kvm.supportedCPUID()
        #expect(cpuid.contains { $0.function == 0 })
        let guest = GuestCPUID.forVCPU(cpuid, vcpuID: 0, vcpuCount: 1)
        #expect(guest.first { $0.function == 1 }.map { $0.ecx & (1 << 31) != 0 } == true)
    }

    @Test func watchdogStopsASpinningGuest() throws {
        // `jmp .` at the entry: the guest never exits on its own.
        let image = makeELF(entry: 0x100000, segments: [(0x100000, [0xeb, 0xfe], 2)])
        let vm = try MicroVM(MicroVMConfiguration(memorySize: 16 << 20, kernel: image, commandLine: ""))
        #expect(try vm.run(timeoutSeconds: 0.5) == .stopped)
    }
}

/// Hand-assembled guests, a few instructions each (kernel-mode code is slow under PVM).
@Suite("Run loop exits on /dev/kvm", .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"))
struct RunLoopExitTests {
    func boot(_ code: [UInt8]) throws -> MicroVM {
        try MicroVM(MicroVMConfiguration(memorySize: 16 << 20, kernel: makeELF(entry: 0x100000, segments: [
            (0x100000, code, UInt64(code.count)),
        ]), commandLine: ""))
    }

    static let serialOutAL: [UInt8] = [0x66, 0xba, 0xf8, 0x03, 0xee]  // mov dx, 0x3f8; out dx, al
    static let resetViaI8042: [UInt8] = [0xb0, 0xfe, 0xe6, 0x64, 0xeb, 0xfe]  // mov al, 0xfe; out 0x64, al; jmp .

    @Test func unclaimedMMIOAndPortReadsReturnAllOnes() throws {
        var code: [UInt8] = [0xbb, 0x00, 0x00, 0x00, 0xd0, 0x8b, 0x03]  // mov ebx, 0xd0000000; mov eax, [rbx] (no RAM, no device)
        for _ in 0..<4 { code += Self.serialOutAL + [0xc1, 0xe8, 0x08] }  // out al; shr eax, 8
        code += [0xe4, 0x80] + Self.serialOutAL  // in al, 0x80 (no device); out al
        code += Self.resetViaI8042
        let vm = try boot(code)
        #expect(try vm.run(timeoutSeconds: 60) == .reset)
        #expect(vm.serial.output == [0xff, 0xff, 0xff, 0xff, 0xff])
        #expect(vm.statistics.mmioExits == 1)
        #expect(vm.statistics.unclaimedAccesses == 2)
    }

    @Test func faultWithoutIDTEndsAsTripleFault() throws {
        let vm = try boot([0x0f, 0x0b])  // ud2 with an empty IDT: #UD -> #DF -> triple fault
        let exit = try vm.run(timeoutSeconds: 60)
        #expect(exit == .tripleFault)
    }
}
