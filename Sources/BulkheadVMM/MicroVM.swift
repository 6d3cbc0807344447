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

/// A network interface: a virtio-net device on a TAP device of the VMM's network namespace.
public struct NetworkInterfaceConfiguration: Sendable, Equatable {
    /// Firecracker's iface_id, for messages.
    public var id: String
    /// The TAP device (host_dev_name): created if absent, removed when the VM ends unless it was persistent.
    public var tapName: String
    /// The guest's MAC address (guest_mac); a locally administered one derived from the id if nil.
    public var mac: [UInt8]?

    public init(id: String, tapName: String, mac: [UInt8]? = nil) {
        self.id = id
        self.tapName = tapName
        self.mac = mac
    }

    /// 02:xx:... (locally administered, unicast) from a hash of the id, stable across runs.
    var effectiveMAC: [UInt8] {
        if let mac { return mac }
        var h: UInt32 = 2_166_136_261
        for b in id.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return [0x02, 0x42, UInt8(truncatingIfNeeded: h >> 24), UInt8(truncatingIfNeeded: h >> 16),
                UInt8(truncatingIfNeeded: h >> 8), UInt8(truncatingIfNeeded: h)]
    }
}

/// A vsock device (virtio-vsock) with Firecracker's host side: Unix sockets at `udsPath`.
public struct VsockConfiguration: Sendable, Equatable {
    public var guestCID: UInt64
    public var udsPath: String
    public init(guestCID: UInt64, udsPath: String) {
        self.guestCID = guestCID
        self.udsPath = udsPath
    }
}

/// What to boot: RAM size, vCPUs, a kernel (an ELF64 vmlinux or test guest, or a bzImage), its
/// command line, an initrd, and disks.
public struct MicroVMConfiguration: Sendable {
    public var memorySize: UInt64
    /// 1-32 vCPUs (Firecracker's range), each on its own thread.
    public var vcpuCount: Int
    /// Two hyperthreads per core in the CPUID topology (Firecracker's `smt`); needs an even count.
    public var smt: Bool
    public var kernel: [UInt8]
    public var commandLine: String
    public var initrd: [UInt8]?
    public var blockDevices: [BlockDeviceConfiguration]
    /// A virtio-rng device (Firecracker's `entropy`), after the disks.
    public var entropy: Bool
    /// virtio-net devices on TAPs, after the entropy device.
    public var networkInterfaces: [NetworkInterfaceConfiguration]
    /// A virtio-vsock device, last.
    public var vsock: VsockConfiguration?
    /// What the guest's console (COM1) reads: a host descriptor (bulkhead-vmm's stdin), or none.
    public var consoleInput: Int32?

    public init(memorySize: UInt64, vcpuCount: Int = 1, smt: Bool = false, kernel: [UInt8], commandLine: String,
                initrd: [UInt8]? = nil, blockDevices: [BlockDeviceConfiguration] = [], entropy: Bool = false,
                networkInterfaces: [NetworkInterfaceConfiguration] = [], vsock: VsockConfiguration? = nil) {
        self.vcpuCount = vcpuCount
        self.smt = smt
        self.vsock = vsock
        self.networkInterfaces = networkInterfaces
        self.memorySize = memorySize
        self.kernel = kernel
        self.commandLine = commandLine
        self.initrd = initrd
        self.blockDevices = blockDevices
        self.entropy = entropy
    }
}

/// A microVM booted directly at a kernel's 64-bit entry, with 1-32 vCPUs, COM1, the i8042 (reset
/// line, Ctrl-Alt-Del on IRQ 1), and virtio devices on virtio-mmio, all described to the guest in
/// ACPI tables. vCPU 0 starts at the kernel's entry; the others wait for the guest's INIT/SIPI.
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
    public let vcpus: [VCPU]
    /// One run loop per vCPU; they share the port and MMIO buses (devices lock their own state).
    public let runLoops: [VCPURunLoop]
    /// The MMIO bus of every vCPU (bulkhead-vmm adds the boot-timer device to it before start).
    public let mmio: MMIOBus
    /// The virtio-mmio transports, in configuration order: disks, the entropy device, network interfaces, vsock.
    public let virtioDevices: [VirtioMMIOTransport]
    /// The thread that moves host input (TAP frames, vsock streams, console input) into the devices.
    let eventLoop: DeviceEventLoop
    /// What the ACPI tables tell the guest about each transport.
    public let virtioDescriptions: [VirtioMMIODeviceDescription]

    /// `prepareEventThread` runs first on the device event thread (bulkhead-vmm confines it there).
    public init(_ configuration: MicroVMConfiguration, kvm: KVMSystem? = nil,
                prepareEventThread: @escaping () throws -> Void = {}) throws {
        let size = configuration.memorySize
        guard size % 4096 == 0, size > 2 * BootLayout.highMemoryStart, size <= BootLayout.mmioGapStart else {
            throw VMMError.invalidConfiguration(
                "memory size \(size) must be a multiple of 4096 between 2 MiB and 3 GiB (RAM ends below the MMIO gap)")
        }
        guard (1...32).contains(configuration.vcpuCount) else {
            throw VMMError.invalidConfiguration("\(configuration.vcpuCount) vCPUs: a microVM has 1 to 32")
        }
        guard !configuration.smt || configuration.vcpuCount == 1 || configuration.vcpuCount % 2 == 0 else {
            throw VMMError.invalidConfiguration(
                "\(configuration.vcpuCount) vCPUs with SMT: two threads per core need an even number (or 1)")
        }
        let deviceCount = configuration.blockDevices.count + (configuration.entropy ? 1 : 0)
            + configuration.networkInterfaces.count + (configuration.vsock == nil ? 0 : 1)
        guard deviceCount <= BootLayout.virtioGSIs.count else {
            throw VMMError.invalidConfiguration(
                "\(deviceCount) virtio devices, at most \(BootLayout.virtioGSIs.count) (one GSI each)")
        }
        self.configuration = configuration
        // Disks open before KVM is touched, so a missing file is refused first.
        var devices: [VirtioDevice] = try configuration.blockDevices.map {
            try VirtioBlock(path: $0.path, readOnly: $0.readOnly, serial: $0.serial)
        }
        if configuration.entropy { devices.append(VirtioRNG()) }
        // TAPs too: one that cannot be created is refused, by name, before KVM is touched.
        for n in configuration.networkInterfaces {
            do { devices.append(try VirtioNet(tapName: n.tapName, mac: n.effectiveMAC)) } catch {
                throw VMMError.invalidConfiguration("network interface '\(n.id)': \(error)")
            }
        }
        if let v = configuration.vsock {
            do { devices.append(try VirtioVsock(guestCID: v.guestCID, udsPath: v.udsPath)) } catch {
                throw VMMError.invalidConfiguration("vsock: \(error)")
            }
        }
        let descriptions = devices.indices.map { i in
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
        try ACPITables(vcpuCount: configuration.vcpuCount, virtioDevices: descriptions).write(to: memory)

        let kvm = try kvm ?? KVMSystem()
        vm = try kvm.createVM()
        try vm.setTSSAddress()
        try vm.setIdentityMapAddress()
        try vm.createIRQChip()
        try vm.createPIT()
        try vm.addMemory(memory)
        let supportedCPUID = try kvm.supportedCPUID()
        var vcpus: [VCPU] = []
        for id in 0..<UInt32(configuration.vcpuCount) {
            let vcpu = try vm.createVCPU(id: id)
            let cpuid = GuestCPUID.forVCPU(supportedCPUID, vcpuID: id, vcpuCount: UInt32(configuration.vcpuCount),
                                           threadsPerCore: configuration.smt && configuration.vcpuCount > 1 ? 2 : 1)
            if id == 0 {
                try LinuxBoot.configureBootVCPU(vcpu, entry: kernel.entry, cpuid: cpuid)
            } else {
                try LinuxBoot.configureApplicationProcessor(vcpu, cpuid: cpuid)
            }
            vcpus.append(vcpu)
        }
        self.vcpus = vcpus

        // The keyboard's ISA IRQ 1, for Ctrl-Alt-Del, which the DSDT gives the i8042.
        i8042.interrupt = try IRQFDInterrupt(vm: vm, gsi: UInt32(ACPITables.i8042IRQ))
        // COM1's THR-empty interrupt on ISA IRQ 4, which the DSDT gives COM1.
        serial.interrupt = try IRQFDInterrupt(vm: vm, gsi: UInt32(ACPITables.com1IRQ))
        let ports = PortIOBus()
        ports.register(serial, ports: serial.ports)
        ports.register(i8042, ports: I8042.dataPort...I8042.dataPort)
        ports.register(i8042, ports: I8042.commandPort...I8042.commandPort)
        let mmio = MMIOBus()
        self.mmio = mmio
        var transports: [VirtioMMIOTransport] = []
        for (device, d) in zip(devices, descriptions) {
            let transport = VirtioMMIOTransport(device: device, memory: memory,
                                                interrupt: try IRQFDInterrupt(vm: vm, gsi: d.gsi))
            try mmio.register(transport, base: UInt64(d.baseAddress), length: UInt64(d.windowSize))
            transports.append(transport)
        }
        virtioDevices = transports
        var hostEventSources: [HostEventSource] = transports.filter { $0.device is VirtioHostEventDevice }
        if let input = configuration.consoleInput {
            serial.input = input
            hostEventSources.append(serial)
        }
        eventLoop = try DeviceEventLoop(sources: hostEventSources, prepareThread: prepareEventThread)
        try eventLoop.start()
        runLoops = vcpus.map { VCPURunLoop(vcpu: $0, ports: ports, mmio: mmio) }
    }

    deinit { eventLoop.stop() }

    /// What the run loops of all vCPUs did, added up.
    public var statistics: RunStatistics {
        runLoops.reduce(into: RunStatistics()) { sum, loop in
            let s = loop.statistics
            sum.exits += s.exits
            sum.portIOExits += s.portIOExits
            sum.mmioExits += s.mmioExits
            sum.unclaimedAccesses += s.unclaimedAccesses
        }
    }

    /// Runs every vCPU on its own thread until the guest stops, and returns how it stopped; or
    /// `.stopped` after `timeoutSeconds` (a guest spinning in kernel mode never exits by itself,
    /// and tests must not hang on one).
    public func run(timeoutSeconds: Double? = nil) throws(KVMError) -> VMExit {
        let threads = VCPUThreads(runLoops: runLoops)
        try threads.start()
        return threads.waitForExit(timeoutSeconds: timeoutSeconds)
    }
}
