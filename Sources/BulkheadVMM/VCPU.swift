import CBulkhead
import Glibc

/// A virtual CPU: its fd and the kvm_run area shared with the kernel.
public final class VCPU {
    public let id: UInt32
    public let fd: Int32
    let run: UnsafeMutablePointer<kvm_run>
    private let runSize: Int
    /// The vCPU fd is only valid while its VM is: keep the VM alive.
    private let vm: VirtualMachine

    init(id: UInt32, fd: Int32, run: UnsafeMutableRawPointer, runSize: Int, vm: VirtualMachine) {
        self.id = id
        self.fd = fd
        self.run = run.bindMemory(to: kvm_run.self, capacity: 1)
        self.runSize = runSize
        self.vm = vm
    }

    deinit {
        munmap(run, runSize)
        close(fd)
    }

    public func registers() throws(KVMError) -> GeneralRegisters {
        var r = kvm_regs()
        try check("KVM_GET_REGS", bh_kvm_ioctl(fd, BH_KVM_GET_REGS, &r))
        return GeneralRegisters(r)
    }

    public func setRegisters(_ registers: GeneralRegisters) throws(KVMError) {
        var r = registers.raw
        try check("KVM_SET_REGS", bh_kvm_ioctl(fd, BH_KVM_SET_REGS, &r))
    }

    public func specialRegisters() throws(KVMError) -> SpecialRegisters {
        var s = kvm_sregs()
        try check("KVM_GET_SREGS", bh_kvm_ioctl(fd, BH_KVM_GET_SREGS, &s))
        return SpecialRegisters(s)
    }

    public func setSpecialRegisters(_ registers: SpecialRegisters) throws(KVMError) {
        var s = registers.raw
        try check("KVM_SET_SREGS", bh_kvm_ioctl(fd, BH_KVM_SET_SREGS, &s))
    }

    /// KVM_SET_CPUID2: what CPUID returns inside the guest.
    public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        let size = BH_KVM_CPUID2_HEADER_SIZE + entries.count * MemoryLayout<kvm_cpuid_entry2>.stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        let cpuid = buffer.assumingMemoryBound(to: kvm_cpuid2.self)
        cpuid.pointee.nent = UInt32(entries.count)
        let slots = bh_kvm_cpuid2_entries(cpuid)!
        for (i, e) in entries.enumerated() { slots[i] = e.kvmEntry }
        try check("KVM_SET_CPUID2", bh_kvm_ioctl(fd, BH_KVM_SET_CPUID2, buffer))
    }

    /// KVM_SET_MSRS for (index, value) pairs; throws naming the first MSR KVM refused.
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(KVMError) {
        guard msrs.count <= 32 else { throw KVMError("KVM_SET_MSRS with \(msrs.count) MSRs (at most 32)", errno: E2BIG) }
        let indices = msrs.map(\.index), values = msrs.map(\.value)
        let set = try check("KVM_SET_MSRS", bh_kvm_set_msrs(fd, indices, values, UInt32(msrs.count)))
        if Int(set) < msrs.count {
            throw KVMError("KVM_SET_MSRS refused MSR 0x\(String(indices[Int(set)], radix: 16))", errno: EINVAL)
        }
    }

    /// KVM_SET_FPU with the x87/SSE state after FNINIT (FCW 0x37f, MXCSR 0x1f80), as Linux expects.
    public func resetFPU() throws(KVMError) {
        var fpu = kvm_fpu()
        fpu.fcw = 0x37f
        fpu.mxcsr = 0x1f80
        try check("KVM_SET_FPU", bh_kvm_ioctl(fd, BH_KVM_SET_FPU, &fpu))
    }

    /// Programs the LAPIC's LINT0 as ExtINT and LINT1 as NMI (needs the in-kernel irqchip).
    public func setLocalInterruptLines() throws(KVMError) {
        try check("KVM_GET_LAPIC/KVM_SET_LAPIC (LINT0/LINT1)", bh_kvm_set_lint(fd))
    }

    /// One KVM_RUN: returns when the guest exits to user space (or with EINTR when kicked).
    func runOnce() -> Int32 { bh_kvm_ioctl_value(fd, BH_KVM_RUN, 0) }
}
