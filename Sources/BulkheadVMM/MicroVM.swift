/// A disk: a host file behind a virtio-blk device.
public struct BlockDeviceConfiguration: Sendable, Equatable {
    public var path: String
    public var readOnly: Bool
    /// What VIRTIO_BLK_T_GET_ID answers (at most 20 bytes); Linux shows it as /sys/block/vdX/serial.
    public var serial: String

    public init(path: String, readOnly: Bool = false, serial: String = "") {
        self.path = path
        self.readOnly = readOnly
        self.serial = serial
    }
}

/// What to boot: RAM size, a kernel (an ELF64 vmlinux or test guest, or a bzImage), its command
/// line, an initrd, and disks.
public struct MicroVMConfiguration: Sendable {
    public var memorySize: UInt64
    public var kernel: [UInt8]
    public var commandLine: String
    public var initrd: [UInt8]?
    public var blockDevices: [BlockDeviceConfiguration]

    public init(memorySize: UInt64, kernel: [UInt8], commandLine: String, initrd: [UInt8]? = nil,
                blockDevices: [BlockDeviceConfiguration] = []) {
        self.memorySize = memorySize
        self.kernel = kernel
        self.commandLine = commandLine
        self.initrd = initrd
        self.blockDevices = blockDevices
    }
}

/// A one-vCPU microVM booted directly at a kernel's 64-bit entry, with COM1, the i8042 (reset line, Ctrl-Alt-Del on IRQ 1),
/// and virtio-blk disks on virtio-mmio, all described to the guest in ACPI tables.
///
/// Everything that can be checked without KVM (memory size, the kernel image, the command line) is
/// checked before /dev/kvm is touched, so a bad guest is refused before anything runs.
public final class MicroVM {
    public let configuration: MicroVMConfiguration
    public let memory: GuestMemory
    public let kernel: KernelImage
    public let e820: [E820Entry]
    /// Where the initrd was put in guest memory, if there is one.
    public let initrd: (address: UInt64, size: UInt64)?
    public let serial = Serial8250()
    public let i8042 = I8042()
    public let vm: VirtualMachine
    public let vcpu: VCPU
    public let runLoop: VCPURunLoop
    /// The virtio-mmio transports, in configuration order (disks first).
    public let virtioDevices: [VirtioMMIOTransport]
    /// What the ACPI tables tell the guest about each transport.
    public let virtioDescriptions: [VirtioMMIODeviceDescription]

    public init(_ configuration: MicroVMConfiguration, kvm: KVMSystem? = nil) throws {
        let size = configuration.memorySize
        guard size % 4096 == 0, size > 2 * BootLayout.highMemoryStart, size <= BootLayout.mmioGapStart else {
            throw VMMError.invalidConfiguration(
                "memory size \(size) must be a multiple of 4096 between 2 MiB and 3 GiB (RAM ends below the MMIO gap)")
        }
        guard configuration.blockDevices.count <= BootLayout.virtioGSIs.count else {
            throw VMMError.invalidConfiguration(
                "\(configuration.blockDevices.count) virtio devices, at most \(BootLayout.virtioGSIs.count) (one GSI each)")
        }
        self.configuration = configuration
        // Disks open before KVM is touched, so a missing file is refused first.
        let disks = try configuration.blockDevices.map {
            try VirtioBlock(path: $0.path, readOnly: $0.readOnly, serial: $0.serial)
        }
        let descriptions = disks.indices.map { i in
            VirtioMMIODeviceDescription(
                baseAddress: UInt32(BootLayout.virtioMMIOStart) + UInt32(i) * VirtioMMIOTransport.windowSize,
                gsi: BootLayout.virtioGSIs.lowerBound + UInt32(i))
        }
        virtioDescriptions = descriptions
        kernel = try KernelImage(image: configuration.kernel, memorySize: size)
        if case let .bzImage(k) = kernel, k.protocolVersion >= 0x0206,
           configuration.commandLine.utf8.count > Int(k.commandLineSize) {
            throw VMMError.invalidConfiguration(
                "command line of \(configuration.commandLine.utf8.count) bytes is longer than the kernel's cmdline_size \(k.commandLineSize)")
        }
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
                                          e820: e820, ramdisk: ramdisk, setupHeader: kernel.setupHeader)
        try ACPITables(vcpuCount: 1, virtioDevices: descriptions).write(to: memory)

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

        // The keyboard's ISA IRQ 1, for Ctrl-Alt-Del.
        i8042.interrupt = try IRQFDInterrupt(vm: vm, gsi: 1)
        // COM1's THR-empty interrupt on ISA IRQ 4, which the DSDT gives COM1.
        serial.interrupt = try IRQFDInterrupt(vm: vm, gsi: UInt32(ACPITables.com1IRQ))
        let ports = PortIOBus()
        ports.register(serial, ports: serial.ports)
        ports.register(i8042, ports: I8042.dataPort...I8042.dataPort)
        ports.register(i8042, ports: I8042.commandPort...I8042.commandPort)
        let mmio = MMIOBus()
        var transports: [VirtioMMIOTransport] = []
        for (disk, d) in zip(disks, descriptions) {
            let transport = VirtioMMIOTransport(device: disk, memory: memory,
                                                interrupt: try IRQFDInterrupt(vm: vm, gsi: d.gsi))
            try mmio.register(transport, base: UInt64(d.baseAddress), length: UInt64(d.windowSize))
            transports.append(transport)
        }
        virtioDevices = transports
        runLoop = VCPURunLoop(vcpu: vcpu, ports: ports, mmio: mmio)
    }

    /// Runs the boot vCPU on the calling thread until the guest stops.
    public func run() -> VMExit { runLoop.run() }

    /// Like `run()`, but returns `.stopped` after `timeoutSeconds` if the guest has not stopped by then.
    public func run(timeoutSeconds: Double) throws(KVMError) -> VMExit {
        try RunWatchdog.run(runLoop, seconds: timeoutSeconds)
    }
}
