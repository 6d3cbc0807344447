import Glibc
import Testing
@testable import BulkheadVMM

/// Multi-vCPU microVMs: every vCPU on its own thread, the MADT listing each LAPIC, and the
/// application processors started by the guest with INIT/SIPI, as Linux starts them.
@Suite("vCPUs brought up by the guest",
       .enabled(if: kvmAvailable, "needs read-write /dev/kvm (CI runs as root with KVM)"),
       .enabled(if: gccAvailable, "needs gcc and ld in PATH to compile the freestanding test guest"))
struct SMPGuestTests {
    static func ids(_ range: Range<Int>) -> String { range.map(String.init).joined(separator: ",") }

    @Test(arguments: [1, 2, 4, 32])
    func guestStartsEveryVCPUTheMADTLists(vcpus: Int) throws {
        let vm = try MicroVM(MicroVMConfiguration(memorySize: 32 << 20, vcpuCount: vcpus,
                                                  kernel: try buildGuest("smp_guest.c", extraSources: ["smp_trampoline.S"]),
                                                  commandLine: "console=ttyS0"))
        #expect(vm.vcpus.map(\.id) == (0..<UInt32(vcpus)).map { $0 })
        #expect(try vm.run(timeoutSeconds: 120) == .reset)
        // Each AP read its own LAPIC id after reaching long mode through the trampoline.
        #expect(vm.serial.outputText == "SMP boot=0 madt=\(Self.ids(0..<vcpus)) started=\(Self.ids(1..<vcpus))\n")
        #expect(vm.statistics.unclaimedAccesses == 0)
    }

    @Test func vCPUsTheGuestNeverStartsDoNotKeepTheVMAlive() throws {
        // The boot guest ignores its APs, which stay in KVM_RUN waiting for a SIPI; the reset
        // from vCPU 0 must still end the VM and every vCPU thread.
        let vm = try MicroVM(MicroVMConfiguration(memorySize: 32 << 20, vcpuCount: 3, kernel: try buildBootGuest(),
                                                  commandLine: "x"))
        #expect(try vm.run(timeoutSeconds: 60) == .reset)
        #expect(vm.serial.outputText.hasPrefix("E820 n=2"))
    }

    @Test(arguments: [(0, false), (33, false), (3, true)])
    func vCPUCountsOutsideTheRangeAreRefused(vcpus: Int, smt: Bool) throws {
        #expect {
            _ = try MicroVM(MicroVMConfiguration(memorySize: 32 << 20, vcpuCount: vcpus, smt: smt,
                                                 kernel: makeELF(entry: 0x100000, segments: [(0x100000, [0xf4], 1)]),
                                                 commandLine: ""))
        } throws: { error in
            "\(error)".contains("\(vcpus) vCPUs")
        }
    }
}

@Suite("CPUID topology per vCPU")
struct CPUIDTopologyTests {
    /// Leaves as KVM_GET_SUPPORTED_CPUID reports them on an Intel host (values trimmed to what matters).
    static let intel: [CPUIDEntry] = [
        CPUIDEntry(function: 1, ebx: 0x0010_0800, ecx: 0, edx: 0),
        CPUIDEntry(function: 4, index: 0, flags: 1, eax: 0x1c00_4121),  // L1d, host: 8 cores
        CPUIDEntry(function: 4, index: 2, flags: 1, eax: 0x1c00_4143),  // L2
        CPUIDEntry(function: 4, index: 3, flags: 1, eax: 0x1c03_c163),  // L3 shared by 16
        CPUIDEntry(function: 4, index: 4, flags: 1, eax: 0),            // no more caches
        CPUIDEntry(function: 0xb, index: 0, flags: 1), CPUIDEntry(function: 0xb, index: 1, flags: 1),
        CPUIDEntry(function: 0xb, index: 2, flags: 1),
        CPUIDEntry(function: 0x8000_0008, eax: 0x3030, ecx: 0x0000_f00f),
    ]

    func leaf(_ entries: [CPUIDEntry], _ function: UInt32, _ index: UInt32 = 0) -> CPUIDEntry {
        entries.first { $0.function == function && $0.index == index }!
    }

    @Test func fourVCPUsWithoutSMT() {
        let cpu2 = GuestCPUID.forVCPU(Self.intel, vcpuID: 2, vcpuCount: 4)
        let l1 = leaf(cpu2, 1)
        #expect(l1.ebx >> 24 == 2)                 // initial APIC id
        #expect((l1.ebx >> 16) & 0xff == 4)        // addressable logical processors
        #expect(l1.edx & (1 << 28) != 0)           // HTT
        #expect(l1.ecx & (1 << 31) != 0)           // hypervisor
        #expect(leaf(cpu2, 4, 0).eax >> 26 == 3)   // 4 cores
        #expect((leaf(cpu2, 4, 0).eax >> 14) & 0xfff == 0)  // L1 per core
        #expect((leaf(cpu2, 4, 3).eax >> 14) & 0xfff == 3)  // L3 shared by the package
        #expect(leaf(cpu2, 4, 0).eax & 0x3fff == 0x0121)    // cache type and level kept
        #expect(leaf(cpu2, 4, 4).eax == 0)
        let smtLevel = leaf(cpu2, 0xb, 0), coreLevel = leaf(cpu2, 0xb, 1), none = leaf(cpu2, 0xb, 2)
        #expect([smtLevel.eax, smtLevel.ebx, smtLevel.ecx, smtLevel.edx] == [0, 1, 0x100, 2])
        #expect([coreLevel.eax, coreLevel.ebx, coreLevel.ecx, coreLevel.edx] == [2, 4, 0x201, 2])
        #expect([none.eax, none.ebx, none.ecx] == [0, 0, 2])
        #expect(leaf(cpu2, 0x8000_0008).ecx == 0x0000_2003)  // 2 APIC id bits, 4 logical processors
    }

    @Test func sixVCPUsWithSMT() {
        let cpu5 = GuestCPUID.forVCPU(Self.intel, vcpuID: 5, vcpuCount: 6, threadsPerCore: 2)
        #expect((leaf(cpu5, 1).ebx >> 16) & 0xff == 8)      // a power of two at least 6
        #expect(leaf(cpu5, 4, 0).eax >> 26 == 3)            // 3 cores, addressed with 2 bits
        #expect((leaf(cpu5, 4, 0).eax >> 14) & 0xfff == 1)  // L1 shared by a core's 2 threads
        let smtLevel = leaf(cpu5, 0xb, 0), coreLevel = leaf(cpu5, 0xb, 1)
        #expect([smtLevel.eax, smtLevel.ebx] == [1, 2])
        #expect([coreLevel.eax, coreLevel.ebx, coreLevel.edx] == [3, 6, 5])
    }

    @Test func powerManagementButARATAndThePMUAreHidden() {
        let host = [CPUIDEntry(function: 6, eax: 0x77, ebx: 2, ecx: 9, edx: 1),
                    CPUIDEntry(function: 0xa, eax: 0x0730_0805, ebx: 0, ecx: 0, edx: 0x603)]
        let guest = GuestCPUID.forVCPU(host, vcpuID: 0, vcpuCount: 1)
        let power = leaf(guest, 6), pmu = leaf(guest, 0xa)
        #expect([power.eax, power.ebx, power.ecx, power.edx] == [0x4, 0, 0, 0])
        #expect([pmu.eax, pmu.ebx, pmu.ecx, pmu.edx] == [0, 0, 0, 0])
    }

    @Test func oneVCPUHasNoHyperthreadingBit() {
        let cpu0 = GuestCPUID.forVCPU([CPUIDEntry(function: 1, edx: 1 << 28)], vcpuID: 0, vcpuCount: 1)
        #expect(leaf(cpu0, 1).edx & (1 << 28) == 0)
        #expect((leaf(cpu0, 1).ebx >> 16) & 0xff == 1)
    }
}
