import BulkheadJSON
import BulkheadLinux
import Glibc

/// One microVM driven the Firecracker way: configured piece by piece (API requests or a config
/// file), then started once. Each vCPU runs on its own thread (VCPUThreads), so the API stays
/// responsive while the guest runs; pause and resume kick the vCPUs out of KVM_RUN and park them.
///
/// The API thread calls everything here; the run state is behind `lock`.
public final class FirecrackerVMM: @unchecked Sendable {
    public enum State: String, Sendable {
        case notStarted = "Not started"
        case running = "Running"
        case paused = "Paused"
    }

    public static let appName = "bulkhead-vmm"
    public static let version = "0.1.0"

    public let instanceID: String
    public let logger: VMMLogger
    public var configuration = FirecrackerConfiguration()
    /// `--boot-timer`: attach the boot-timer device at InstanceStart.
    public let bootTimerEnabled: Bool
    /// Called on the VMM thread when the guest stops for good (reset, shutdown, failure).
    /// Firecracker exits the process then; so does bulkhead-vmm's main.
    public var onGuestExit: (VMExit) -> Void = { _ in }
    /// Where the guest's serial output goes: stdout, byte by byte (the guest pays an exit per byte
    /// anyway, so buffering would only delay console lines).
    public var serialOutput: (UInt8) -> Void = { byte in
        var b = byte
        _ = write(1, &b, 1)
    }

    /// Whether the VMM and vCPU threads confine themselves with seccomp (ThreadConfinement).
    /// The library default is off (tests drive VMs in their own process); bulkhead-vmm kills.
    public var seccomp = SeccompPolicy.off

    public private(set) var microVM: MicroVM?
    /// The vCPU threads, once started.
    private var vcpuThreads: VCPUThreads?
    private var state = State.notStarted
    private var vmmThread = pthread_t()
    private let lock = ThreadLock()
    /// Requests served, reported by FlushMetrics (counted on the API thread only).
    var apiRequests = 0

    public init(instanceID: String, logger: VMMLogger, bootTimer: Bool = false) {
        self.instanceID = instanceID
        self.logger = logger
        bootTimerEnabled = bootTimer
    }

    public var currentState: State { lock.locked { state } }

    /// The MicroVM configuration the Firecracker one stands for; files are read here, so a bad
    /// path is refused before KVM is touched.
    func microVMConfiguration() throws(FirecrackerError) -> MicroVMConfiguration {
        guard let boot = configuration.bootSource else {
            throw FirecrackerError("Cannot start microvm without kernel configuration (PUT /boot-source first).")
        }
        if let unsupported = configuration.unsupportedDevices.first {
            throw FirecrackerError("Cannot start microvm: \(unsupported) is configured, but bulkhead-vmm does not implement that device yet.")
        }
        let kernel = try Self.readFile(boot.kernelImagePath, what: "kernel image (`kernel_image_path`)")
        let initrd = try boot.initrdPath.map { (path: String) throws(FirecrackerError) -> [UInt8] in
            try Self.readFile(path, what: "initrd (`initrd_path`)")
        }
        return MicroVMConfiguration(
            memorySize: configuration.machineConfig.memSizeMib << 20,
            vcpuCount: Int(configuration.machineConfig.vcpuCount), smt: configuration.machineConfig.smt, kernel: kernel,
            commandLine: configuration.kernelCommandLine, initrd: initrd,
            blockDevices: configuration.drives.map {
                // The drive ID doubles as the disk's serial (VIRTIO_BLK_T_GET_ID), as Firecracker does.
                BlockDeviceConfiguration(path: $0.pathOnHost, readOnly: $0.isReadOnly, serial: String($0.driveID.prefix(20)))
            },
            entropy: configuration.entropy != nil,
            networkInterfaces: configuration.networkInterfaceConfigurations,
            vsock: configuration.vsockConfiguration)
    }

    /// InstanceStart: builds the VM (every check happens before the guest runs) and starts the
    /// vCPU thread, and the VMM thread that waits for the guest's end (unless `supervise` is
    /// false: the caller then calls `superviseGuest()` itself, as bulkhead-vmm --no-api does).
    public func start(supervise: Bool = true) throws(FirecrackerError) {
        guard currentState == .notStarted else {
            throw FirecrackerError("The requested operation is not supported after starting the microVM.")
        }
        let startTime = BootTimer.now()
        let vmConfiguration = try microVMConfiguration()
        let vm: MicroVM
        let logger = self.logger, seccomp = self.seccomp
        do {
            // The console reads the VMM's stdin, as Firecracker's does.
            var withConsole = vmConfiguration
            withConsole.consoleInput = 0
            vm = try MicroVM(withConsole) {
                try ThreadConfinement.confineCurrentThread(.vmm, policy: seccomp)
            }
            if bootTimerEnabled {
                try vm.mmio.register(BootTimer(start: startTime) { logger.info($0) },
                                     base: BootTimer.address, length: BootTimer.length)
            }
        } catch {
            throw FirecrackerError("Cannot start microvm: \(error)")
        }
        let output = serialOutput
        vm.serial.onOutput = output
        let threads = VCPUThreads(runLoops: vm.runLoops) { _ in
            // The kick handler first: sigaction is setup, not run time.
            VCPURunLoop.installKickSignalHandler()
            try ThreadConfinement.confineCurrentThread(.vcpu, policy: seccomp)
        }
        do {
            try threads.start()
        } catch {
            throw FirecrackerError("Cannot start microvm: \(error)")
        }
        microVM = vm
        vcpuThreads = threads
        setState(.running)
        if supervise {
            let retained = Unmanaged.passRetained(self)
            let createdVMM = pthread_create(&vmmThread, nil, { raw in
                let vmm = Unmanaged<FirecrackerVMM>.fromOpaque(raw!).takeRetainedValue()
                vmm.superviseGuest()
            }, retained.toOpaque())
            if createdVMM != 0 {
                retained.release()
                // The guest runs, but nobody would end the process when it stops.
                logger.error("pthread_create (VMM thread): \(String(cString: strerror(createdVMM)))")
            }
        }
        logger.info("Started the microVM (InstanceStart), \(vm.vcpus.count) vCPU(s).")
    }

    /// The VMM thread: confines itself, waits until the guest stops for good (its vCPU threads
    /// all ended), then reports it through `onGuestExit` (which ends bulkhead-vmm). Does not return.
    public func superviseGuest() -> Never {
        do {
            try ThreadConfinement.confineCurrentThread(.vmm, policy: seccomp)
        } catch {
            logger.error("\(error)")
            Glibc.exit(1)
        }
        let exit = vcpuThreads?.waitForExit() ?? .failed("the microVM was not started")
        logger.info("Guest stopped: \(exit)")
        onGuestExit(exit)
        // onGuestExit normally ends the process; park otherwise (tests).
        while true { Glibc.pause() }
    }

    /// PATCH /vm {"state": "Paused"}: returns once every vCPU is out of KVM_RUN and parked.
    public func pause() throws(FirecrackerError) {
        guard let vm = microVM, let threads = vcpuThreads else {
            throw FirecrackerError("The requested operation is not supported before starting the microVM.")
        }
        threads.pause()
        vm.eventLoop.setPaused(true)
        setState(.paused)
        logger.info("Paused the microVM.")
    }

    /// PATCH /vm {"state": "Resumed"}.
    public func resume() throws(FirecrackerError) {
        guard let vm = microVM, let threads = vcpuThreads else {
            throw FirecrackerError("The requested operation is not supported before starting the microVM.")
        }
        vm.eventLoop.setPaused(false)
        threads.resume()
        setState(.running)
        logger.info("Resumed the microVM.")
    }

    private func setState(_ value: State) { lock.locked { state = value } }

    /// SendCtrlAltDel: the key presses go to the guest's i8042, which a Linux guest turns into a
    /// reboot, and the reboot (i8042 reset) ends the VMM.
    public func sendCtrlAltDel() throws(FirecrackerError) {
        guard let vm = microVM else {
            throw FirecrackerError("The requested operation is not supported before starting the microVM.")
        }
        guard vm.i8042.sendCtrlAltDel() else {
            throw FirecrackerError("i8042 internal buffer full: the guest is not reading its keyboard.")
        }
    }

    /// FlushMetrics: one JSON line in the metrics file.
    public func flushMetrics() throws(FirecrackerError) {
        guard let path = configuration.metricsPath else {
            throw FirecrackerError("The metrics system is not initialized (PUT /metrics first).")
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let metrics: JSONValue = [
            "api_server": ["requests": .integer(apiRequests)],
            "utc_timestamp_ms": .integer(Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000),
            "vmm": ["state": .string(currentState.rawValue)],
        ]
        let line = metrics.text + "\n"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o644)
        guard fd >= 0 else {
            throw FirecrackerError("Cannot write metrics to `metrics_path` \(path): \(String(cString: strerror(errno))).")
        }
        defer { close(fd) }
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// The whole file. No 1 MiB bounce buffer: measured, glibc then kept 1 MiB of freed heap
    /// resident for the VMM's whole life (a freed mmap-sized chunk raises its trim threshold).
    static func readFile(_ path: String, what: String) throws(FirecrackerError) -> [UInt8] {
        do {
            return try Files.readBytes(path)
        } catch {
            throw FirecrackerError("Cannot \(error.operation) the \(what) \(path): \(String(cString: strerror(error.errno))).")
        }
    }
}
