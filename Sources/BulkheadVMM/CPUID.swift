import CBulkhead

/// One CPUID leaf/subleaf as KVM describes it (struct kvm_cpuid_entry2).
public struct CPUIDEntry: Equatable, Sendable {
    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
                eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function; self.index = index; self.flags = flags
        self.eax = eax; self.ebx = ebx; self.ecx = ecx; self.edx = edx
    }

    init(_ e: kvm_cpuid_entry2) {
        self.init(function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
    }

    var kvmEntry: kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function; e.index = index; e.flags = flags
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }
}

/// The CPUID a vCPU gets: KVM's supported set with the per-vCPU fields a guest kernel relies on
/// (what Firecracker normalises too): its APIC id, the logical CPU count, and the hypervisor bit.
public enum GuestCPUID {
    public static func forVCPU(_ supported: [CPUIDEntry], vcpuID: UInt32, vcpuCount: UInt32) -> [CPUIDEntry] {
        supported.map { entry in
            var e = entry
            switch e.function {
            case 1:
                // EBX: initial APIC id [31:24], logical processors [23:16], CLFLUSH size 8 qwords [15:8].
                e.ebx = (e.ebx & 0xff) | (vcpuID << 24) | (max(vcpuCount, 1) << 16) | (8 << 8)
                e.ecx |= 1 << 31  // running under a hypervisor
                if vcpuCount > 1 { e.edx |= 1 << 28 }  // HTT: the logical count field is valid
            case 0xb, 0x1f:
                e.edx = vcpuID  // x2APIC id
            default:
                break
            }
            return e
        }
    }
}
