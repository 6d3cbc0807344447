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

/// The CPUID a vCPU gets: KVM's supported set with the per-vCPU fields a guest kernel relies on,
/// normalised as Firecracker does: its APIC id (the vCPU index), the hypervisor bit, and one
/// consistent topology — `vcpuCount` logical processors in one package, `threadsPerCore` (1, or 2
/// with SMT) to a core — in every leaf that describes it (1, Intel's 4, 0xB and 0x1F, AMD's
/// 0x80000008 and 0x8000001E). Linux builds its sibling and core maps from these; leaves that
/// disagree give warnings or a wrong scheduler topology. Power management (leaf 6, but ARAT) and
/// the performance-monitoring unit (leaf 0xA) are hidden.
public enum GuestCPUID {
    public static func forVCPU(_ supported: [CPUIDEntry], vcpuID: UInt32, vcpuCount: UInt32,
                               threadsPerCore: UInt32 = 1) -> [CPUIDEntry] {
        let count = max(vcpuCount, 1)
        let threads = max(threadsPerCore, 1)
        let cores = max(count / threads, 1)
        // APIC ids are the vCPU indices: the thread in the low bit(s), then the core.
        let threadBits = bitWidth(threads), packageBits = bitWidth(count)
        return supported.map { entry in
            var e = entry
            switch e.function {
            case 1:
                // EBX: initial APIC id [31:24], addressable logical processors [23:16], CLFLUSH size 8 qwords [15:8].
                e.ebx = (e.ebx & 0xff) | (vcpuID << 24) | (min(1 << packageBits, 255) << 16) | (8 << 8)
                e.ecx |= 1 << 31  // running under a hypervisor
                if count > 1 { e.edx |= 1 << 28 } else { e.edx &= ~(1 << 28) }  // HTT: the count field is valid
            case 4 where e.eax & 0x1f != 0:
                // Deterministic cache parameters: [31:26] addressable cores - 1, [25:14] logical
                // processors sharing the cache - 1: a core's threads for L1/L2, the package for L3.
                let level = (e.eax >> 5) & 0x7
                let sharing: UInt32 = level >= 3 ? (1 << packageBits) : (1 << threadBits)
                e.eax = (e.eax & 0x3fff) | ((sharing - 1) << 14) | (((1 << bitWidth(cores)) - 1) << 26)
            case 0xb, 0x1f:
                // Extended topology: subleaf 0 the SMT level, 1 the core level, then none.
                switch e.index {
                case 0: e.eax = threadBits; e.ebx = threads; e.ecx = (1 << 8) | 0
                case 1: e.eax = packageBits; e.ebx = count; e.ecx = (2 << 8) | 1
                default: e.eax = 0; e.ebx = 0; e.ecx = e.index
                }
                e.edx = vcpuID  // x2APIC id
            case 6:
                // Thermal and power management: a vCPU has no sensors, turbo or energy hints to
                // control; only "the APIC timer always runs" (ARAT, EAX bit 2) stays, so Linux
                // does not fall back to a broadcast timer in idle. (Firecracker clears these too.)
                e.eax &= 1 << 2
                e.ebx = 0; e.ecx = 0; e.edx = 0
            case 0xa:
                // Architectural performance monitoring: none. The host's PMU is not the guest's to
                // program, and a counted guest is a side channel (Firecracker hides it as well).
                e.eax = 0; e.ebx = 0; e.ecx = 0; e.edx = 0
            case 0x8000_0008:
                // AMD: [15:12] APIC id bits for the core, [7:0] logical processors - 1.
                e.ecx = (e.ecx & ~0xf0ff) | (packageBits << 12) | (count - 1)
            case 0x8000_001e:
                // AMD: extended APIC id; core id and threads per core - 1; node 0.
                e.eax = vcpuID
                e.ebx = (e.ebx & ~0xffff) | ((threads - 1) << 8) | (vcpuID / threads)
                e.ecx = e.ecx & ~0x7ff
            default:
                break
            }
            return e
        }
    }

    /// Bits needed to number `n` things (0 for 1, 1 for 2, 2 for 3-4, ...).
    static func bitWidth(_ n: UInt32) -> UInt32 {
        n <= 1 ? 0 : UInt32(32 - (n - 1).leadingZeroBitCount)
    }
}
