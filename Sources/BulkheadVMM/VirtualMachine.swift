import CBulkhead
import Glibc

/// A KVM VM (the fd from KVM_CREATE_VM): memory slots, the in-kernel interrupt controllers, vCPUs.
public final class VirtualMachine {
    public let fd: Int32
    let vcpuMmapSize: Int
    /// Memory registered with KVM must outlive the VM: keep a reference.
    private var memory: [GuestMemory] = []

    init(fd: Int32, vcpuMmapSize: Int) {
        self.fd = fd
        self.vcpuMmapSize = vcpuMmapSize
    }

    deinit { close(fd) }

    /// KVM_SET_TSS_ADDR: Intel VMX needs three pages of guest physical space for real-mode emulation;
    /// put them just below the 4 GiB boundary, out of RAM's way (Firecracker's choice).
    public func setTSSAddress(_ address: UInt64 = 0xfffb_d000) throws(KVMError) {
        try check("KVM_SET_TSS_ADDR", bh_kvm_ioctl_value(fd, BH_KVM_SET_TSS_ADDR, UInt(address)))
    }

    /// KVM_SET_IDENTITY_MAP_ADDR: one page for VMX's identity-mapped page table, next to the TSS.
    public func setIdentityMapAddress(_ address: UInt64 = 0xfffb_c000) throws(KVMError) {
        var a = address
        try check("KVM_SET_IDENTITY_MAP_ADDR", bh_kvm_ioctl(fd, BH_KVM_SET_IDENTITY_MAP_ADDR, &a))
    }

    /// KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and per-vCPU LAPICs. Call before creating vCPUs.
    public func createIRQChip() throws(KVMError) {
        try check("KVM_CREATE_IRQCHIP", bh_kvm_ioctl_value(fd, BH_KVM_CREATE_IRQCHIP, 0))
    }

    /// KVM_CREATE_PIT2: in-kernel i8254 timer (Linux calibrates against it). The speaker port 0x61
    /// is left to a dummy so it does not exit to us.
    public func createPIT() throws(KVMError) {
        var config = kvm_pit_config()
        config.flags = BH_KVM_PIT_SPEAKER_DUMMY
        try check("KVM_CREATE_PIT2", bh_kvm_ioctl(fd, BH_KVM_CREATE_PIT2, &config))
    }

    /// KVM_SET_USER_MEMORY_REGION: maps `memory` at `guestPhysicalAddress` in memory slot `slot`.
    public func addMemory(_ memory: GuestMemory, slot: UInt32 = 0, guestPhysicalAddress: UInt64 = 0) throws(KVMError) {
        var region = kvm_userspace_memory_region()
        region.slot = slot
        region.guest_phys_addr = guestPhysicalAddress
        region.memory_size = memory.size
        region.userspace_addr = UInt64(UInt(bitPattern: memory.hostAddress))
        try check("KVM_SET_USER_MEMORY_REGION slot \(slot)", bh_kvm_ioctl(fd, BH_KVM_SET_USER_MEMORY_REGION, &region))
        self.memory.append(memory)
    }

    /// KVM_CREATE_VCPU with APIC id `id`, and its mapped kvm_run area.
    public func createVCPU(id: UInt32) throws(KVMError) -> VCPU {
        let vcpuFD = try check("KVM_CREATE_VCPU \(id)", bh_kvm_ioctl_value(fd, BH_KVM_CREATE_VCPU, UInt(id)))
        let run = mmap(nil, vcpuMmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, vcpuFD, 0)
        guard let run, run != MAP_FAILED else {
            let e = errno
            close(vcpuFD)
            throw KVMError("mmap kvm_run of vCPU \(id)", errno: e)
        }
        return VCPU(id: id, fd: vcpuFD, run: run, runSize: vcpuMmapSize, vm: self)
    }
}
