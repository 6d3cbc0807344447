/// x86-64 direct boot of a Linux kernel at its 64-bit entry (boot protocol, "64-bit boot protocol"):
/// long mode with identity-mapped pages covering the kernel, zero page and command line, a flat
/// __BOOT_CS/__BOOT_DS GDT, interrupts off, RSI = address of struct boot_params.
public enum LinuxBoot {
    /// Writes the boot structures: command line, zero page (with `e820`, the optional initrd and a
    /// bzImage's setup header), GDT, empty IDT and page tables.
    public static func writeBootStructures(memory: GuestMemory, commandLine: String, e820: [E820Entry],
                                           ramdisk: (address: UInt64, size: UInt64)? = nil,
                                           setupHeader: [UInt8]? = nil) throws(VMMError) {
        let cmdline = Array(commandLine.utf8) + [0]
        guard !commandLine.utf8.contains(0) else {
            throw .invalidConfiguration("command line contains a NUL byte")
        }
        guard UInt64(cmdline.count) <= BootLayout.commandLineMaxSize else {
            throw .invalidConfiguration("command line of \(cmdline.count - 1) bytes is longer than \(BootLayout.commandLineMaxSize - 1)")
        }
        try memory.write(cmdline, at: BootLayout.commandLineAddress)
        let zeroPage = try ZeroPage(e820: e820, commandLineAddress: BootLayout.commandLineAddress,
                                    commandLineSize: UInt32(BootLayout.commandLineMaxSize), ramdisk: ramdisk,
                                    setupHeader: setupHeader)
        try memory.write(zeroPage.bytes, at: BootLayout.zeroPageAddress)
        try memory.write(BootGDT.bytes, at: BootLayout.gdtAddress)
        try memory.fill(0, at: BootLayout.idtAddress, count: 8)
        try IdentityPageTables().write(to: memory)
    }

    /// The MSR values Linux expects from firmware (Firecracker's boot MSRs): syscall/sysenter MSRs
    /// cleared, fast strings on, MTRRs enabled with write-back default.
    public static let bootMSRs: [(index: UInt32, value: UInt64)] = [
        (0x174, 0), (0x175, 0), (0x176, 0),  // IA32_SYSENTER_CS/ESP/EIP
        (0xc000_0081, 0), (0xc000_0082, 0), (0xc000_0083, 0), (0xc000_0084, 0),  // STAR, LSTAR, CSTAR, SFMASK
        (0xc000_0102, 0),  // KERNEL_GS_BASE
        (0x10, 0),  // TSC
        (0x1a0, 1),  // IA32_MISC_ENABLE: fast strings
        (0x2ff, (1 << 11) | 6),  // MTRRdefType: enabled, write-back
    ]

    static let cr0ProtectionEnable: UInt64 = 1 << 0
    static let cr0Paging: UInt64 = 1 << 31
    static let cr4PAE: UInt64 = 1 << 5
    static let eferLME: UInt64 = 1 << 8
    static let eferLMA: UInt64 = 1 << 10

    /// Puts `sregs` in 64-bit long mode on the boot GDT and identity page tables.
    public static func longModeSpecialRegisters(_ sregs: SpecialRegisters) -> SpecialRegisters {
        var s = sregs
        s.gdt = DescriptorTable(base: BootLayout.gdtAddress, limit: UInt16(BootGDT.entries.count * 8 - 1))
        s.idt = DescriptorTable(base: BootLayout.idtAddress, limit: 7)
        let code = SegmentRegister(descriptor: BootGDT.code, index: BootGDT.codeIndex)
        let data = SegmentRegister(descriptor: BootGDT.data, index: BootGDT.dataIndex)
        s.cs = code
        s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
        s.tr = SegmentRegister(descriptor: BootGDT.tss, index: BootGDT.tssIndex)
        s.cr3 = BootLayout.pml4Address
        s.cr4 |= cr4PAE
        s.cr0 |= cr0ProtectionEnable | cr0Paging
        s.efer |= eferLME | eferLMA
        return s
    }

    /// Registers at the 64-bit entry: RIP = entry, RSI = zero page, a small stack, RFLAGS with only
    /// the always-one bit 1 (interrupts off).
    public static func entryRegisters(entry: UInt64) -> GeneralRegisters {
        var r = GeneralRegisters()
        r.rflags = 0x2
        r.rip = entry
        r.rsp = BootLayout.bootStackPointer
        r.rbp = BootLayout.bootStackPointer
        r.rsi = BootLayout.zeroPageAddress
        return r
    }

    /// Sets up the boot vCPU: CPUID, boot MSRs, long-mode registers at `entry`, FPU, LAPIC LINT pins.
    public static func configureBootVCPU(_ vcpu: VCPU, entry: UInt64, cpuid: [CPUIDEntry]) throws(KVMError) {
        try vcpu.setCPUID(cpuid)
        try vcpu.setMSRs(bootMSRs)
        try vcpu.setSpecialRegisters(longModeSpecialRegisters(try vcpu.specialRegisters()))
        try vcpu.setRegisters(entryRegisters(entry: entry))
        try vcpu.resetFPU()
        try vcpu.setLocalInterruptLines()
    }

    /// Sets up another vCPU: CPUID, boot MSRs and LINT pins only. Its registers need nothing: KVM
    /// holds it until the guest's INIT/SIPI, which resets them and starts it in real mode at the
    /// SIPI vector (Linux's trampoline).
    public static func configureApplicationProcessor(_ vcpu: VCPU, cpuid: [CPUIDEntry]) throws(KVMError) {
        try vcpu.setCPUID(cpuid)
        try vcpu.setMSRs(bootMSRs)
        try vcpu.setLocalInterruptLines()
    }
}
