/// What to boot: RAM size, an ELF64 kernel (vmlinux or a test guest), its command line, an initrd.
public struct MicroVMConfiguration: Sendable {
    public var memorySize: UInt64
    public var kernel: [UInt8]
    public var commandLine: String
    public var initrd: [UInt8]?

    public init(memorySize: UInt64, kernel: [UInt8], commandLine: String, initrd: [UInt8]? = nil) {
        self.memorySize = memorySize
        self.kernel = kernel
        self.commandLine = commandLine
        self.initrd = initrd
    }
}

/// A one-vCPU microVM booted directly at a kernel's 64-bit entry, with COM1 and the i8042 reset line.
///
/// Everything that can be checked without KVM (memory size, the kernel ELF, the command line) is
/// checked before /dev/kvm is touched, so a bad guest is refused before anything runs.
public final class MicroVM {
    public let configuration: MicroVMConfiguration
    public let memory: GuestMemory
    public let kernel: ELFKernel
    public let e820: [E820Entry]
    /// Where the initrd was put in guest memory, if there is one.
    public let initrd: (address: UInt64, size: UInt64)?
    public let serial = Serial8250()
    public let i8042 = I8042()
    public let vm: VirtualMachine
    public let vcpu: VCPU
    public let runLoop: VCPURunLoop

    public init(_ configuration: MicroVMConfiguration, kvm: KVMSystem? = nil) throws {
        let size = configuration.memorySize
        guard size % 4096 == 0, size > 2 * BootLayout.highMemoryStart, size <= BootLayout.mmioGapStart else {
            throw VMMError.invalidConfiguration(
                "memory size \(size) must be a multiple of 4096 between 2 MiB and 3 GiB (RAM ends below the MMIO gap)")
        }
        self.configuration = configuration
        kernel = try ELFKernel(image: configuration.kernel, memorySize: size)
        e820 = E820Entry.memoryMap(memorySize: size)
        memory = try GuestMemory(size: size)

        var ramdisk: (address: UInt64, size: UInt64)?
        if let initrd = configuration.initrd {
            // Highest page-aligned spot in RAM, as boot loaders do, so the kernel can grow below it.
            let address = (size - UInt64(initrd.count)) & ~0xfff
            guard UInt64(initrd.count) < size, address >= kernel.end else {
                throw VMMError.invalidConfiguration("initrd of \(initrd.count) bytes does not fit above the kernel")
            }
            try memory.write(initrd, at: address)
            ramdisk = (address, UInt64(initrd.count))
        }
        initrd = ramdisk
        try kernel.load(into: memory)
        try LinuxBoot.writeBootStructures(memory: memory, commandLine: configuration.commandLine,
                                          e820: e820, ramdisk: ramdisk)

        let kvm = try kvm ?? KVMSystem()
        vm = try kvm.createVM()
        try vm.setTSSAddress()
        try vm.setIdentityMapAddress()
        try vm.createIRQChip()
        try vm.createPIT()
        try vm.addMemory(memory)
        vcpu = try vm.createVCPU(id: 0)
        let cpuid = GuestCPUID.forVCPU(try kvm.supportedCPUID(), vcpuID: 0, vcpuCount: 1)
        try LinuxBoot.configureBootVCPU(vcpu, entry: kernel.entry, cpuid: cpuid)

        let ports = PortIOBus()
        ports.register(serial, ports: serial.ports)
        ports.register(i8042, ports: I8042.dataPort...I8042.dataPort)
        ports.register(i8042, ports: I8042.commandPort...I8042.commandPort)
        runLoop = VCPURunLoop(vcpu: vcpu, ports: ports)
    }

    /// Runs the boot vCPU on the calling thread until the guest stops.
    public func run() -> VMExit { runLoop.run() }

    /// Like `run()`, but returns `.stopped` after `timeoutSeconds` if the guest has not stopped by then.
    public func run(timeoutSeconds: Double) throws(KVMError) -> VMExit {
        try RunWatchdog.run(runLoop, seconds: timeoutSeconds)
    }
}
