import CBulkhead
import Glibc

/// The KVM subsystem: an open /dev/kvm. Creates VMs and answers what the host's KVM supports.
public final class KVMSystem {
    public let fd: Int32

    /// Opens /dev/kvm read-write and checks the API version (12 is the only stable one).
    public init(path: String = "/dev/kvm") throws(KVMError) {
        fd = try check("open \(path)", open(path, O_RDWR | O_CLOEXEC))
        let version = bh_kvm_ioctl_value(fd, BH_KVM_GET_API_VERSION, 0)
        guard version == BH_KVM_API_VERSION else {
            let code = version < 0 ? errno : EINVAL
            close(fd)
            throw KVMError("KVM_GET_API_VERSION returned \(version), want \(BH_KVM_API_VERSION)", errno: code)
        }
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION: 0 when the capability is missing, else a capability-specific positive value.
    public func checkExtension(_ capability: KVMCapability) -> Int32 {
        max(0, bh_kvm_ioctl_value(fd, BH_KVM_CHECK_EXTENSION, UInt(capability.rawValue)))
    }

    /// Size of the shared kvm_run area each vCPU maps.
    public func vcpuMmapSize() throws(KVMError) -> Int {
        Int(try check("KVM_GET_VCPU_MMAP_SIZE", bh_kvm_ioctl_value(fd, BH_KVM_GET_VCPU_MMAP_SIZE, 0)))
    }

    /// KVM_GET_SUPPORTED_CPUID: every CPUID leaf KVM can present to a guest on this host.
    public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        // The kernel fails with E2BIG when the buffer is too small; 256 entries covers today's CPUs,
        // grow once more to be safe.
        var capacity = 256
        while true {
            let size = BH_KVM_CPUID2_HEADER_SIZE + capacity * MemoryLayout<kvm_cpuid_entry2>.stride
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            let cpuid = buffer.assumingMemoryBound(to: kvm_cpuid2.self)
            cpuid.pointee.nent = UInt32(capacity)
            if bh_kvm_ioctl(fd, BH_KVM_GET_SUPPORTED_CPUID, buffer) < 0 {
                if errno == E2BIG && capacity < 4096 { capacity *= 4; continue }
                throw KVMError("KVM_GET_SUPPORTED_CPUID", errno: errno)
            }
            let entries = bh_kvm_cpuid2_entries(cpuid)!
            return (0..<Int(cpuid.pointee.nent)).map { CPUIDEntry(entries[$0]) }
        }
    }

    /// KVM_CREATE_VM.
    public func createVM() throws(KVMError) -> VirtualMachine {
        let vmFD = try check("KVM_CREATE_VM", bh_kvm_ioctl_value(fd, BH_KVM_CREATE_VM, 0))
        return VirtualMachine(fd: vmFD, vcpuMmapSize: try vcpuMmapSize())
    }
}

/// A KVM_CAP_* number for KVMSystem.checkExtension.
public struct KVMCapability: Sendable, Equatable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let irqchip = KVMCapability(rawValue: BH_KVM_CAP_IRQCHIP)
    public static let pit2 = KVMCapability(rawValue: BH_KVM_CAP_PIT2)
    public static let userMemory = KVMCapability(rawValue: BH_KVM_CAP_USER_MEMORY)
    public static let extendedCPUID = KVMCapability(rawValue: BH_KVM_CAP_EXT_CPUID)
    public static let irqfd = KVMCapability(rawValue: BH_KVM_CAP_IRQFD)
}
