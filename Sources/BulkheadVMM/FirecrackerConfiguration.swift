import BulkheadJSON

/// The microVM configuration in Firecracker's terms: what the API's PUT requests set and what
/// `--config-file` holds, with Firecracker's JSON field names. GET /vm/config prints it back in the
/// config-file format, so a configuration can be saved and replayed.
///
/// Every device section Firecracker's clients send (drives, network-interfaces, vsock, entropy)
/// becomes a device; `unsupportedDevices` is where one that is accepted but not built would be
/// named for InstanceStart to refuse (none at present).
public struct FirecrackerConfiguration: Equatable, Sendable {
    public struct BootSource: Equatable, Sendable {
        public var kernelImagePath: String
        public var bootArgs: String?
        public var initrdPath: String?
    }

    public struct Drive: Equatable, Sendable {
        public var driveID: String
        public var pathOnHost: String
        public var isRootDevice: Bool
        public var isReadOnly: Bool
        public var partUUID: String?
        /// cache_type, io_engine, rate_limiter: accepted and echoed back, not acted on.
        public var ignored: [JSONMember] = []
    }

    public struct MachineConfig: Equatable, Sendable {
        public var vcpuCount: UInt64 = 1
        public var memSizeMib: UInt64 = 128
        public var smt = false
        public var trackDirtyPages = false
        /// cpu_template, huge_pages: accepted and echoed back, not acted on.
        public var ignored: [JSONMember] = []
    }

    public struct Logger: Equatable, Sendable {
        public var logPath: String?
        public var level: String?
        public var showLevel: Bool?
        public var showLogOrigin: Bool?
        public var module: String?
    }

    public var bootSource: BootSource?
    public var drives: [Drive] = []
    public var machineConfig = MachineConfig()
    /// virtio-net devices on TAPs, as sent (iface_id, host_dev_name, guest_mac; rate limiters
    /// are accepted and not acted on). See `networkInterfaceConfigurations`.
    public var networkInterfaces: [JSONValue] = []
    /// The vsock device (virtio-vsock: guest_cid, uds_path), as sent. See `vsockConfiguration`.
    public var vsock: JSONValue?
    /// The entropy device (virtio-rng), as sent; its rate_limiter is accepted and not acted on.
    public var entropy: JSONValue?
    public var logger: Logger?
    public var metricsPath: String?

    public init() {}

    /// Firecracker's default command line when boot_args is absent: reboot through the i8042
    /// (so a guest reboot ends the VMM), no serial ports probed, a dumb keyboard controller.
    /// Without i8042.nopnp, as Firecracker since its ACPI tables: the i8042 driver gets its IRQ
    /// from the DSDT through PNP (see `ACPITables.dsdt`), with nopnp its probe fails.
    public static let defaultBootArgs = "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd"

    /// IDs in paths and bodies: alphanumeric and '_' (Firecracker's checked_id).
    static func checkID(_ id: String, field: String) throws(FirecrackerError) {
        guard !id.isEmpty else { throw FirecrackerError("The ID cannot be empty (`\(field)`).") }
        guard id.unicodeScalars.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }) else {
            throw FirecrackerError("API Resource IDs can only contain alphanumeric characters and underscores (`\(field)` is \"\(id)\").")
        }
    }

    // MARK: - Parsing, one section at a time (PUT bodies and config-file sections alike)

    public static func bootSource(_ json: JSONValue) throws(FirecrackerError) -> BootSource {
        var r = try JSONObjectReader(json, context: "boot-source")
        let source = BootSource(kernelImagePath: try r.string("kernel_image_path"),
                                bootArgs: try r.optionalString("boot_args"),
                                initrdPath: try r.optionalString("initrd_path"))
        try r.finish()
        guard !source.kernelImagePath.isEmpty else { throw FirecrackerError("`kernel_image_path` is empty.") }
        return source
    }

    public static func drive(_ json: JSONValue) throws(FirecrackerError) -> Drive {
        var r = try JSONObjectReader(json, context: "drive")
        var drive = Drive(driveID: try r.string("drive_id"), pathOnHost: try r.string("path_on_host"),
                          isRootDevice: try r.bool("is_root_device"), isReadOnly: try r.optionalBool("is_read_only") ?? false,
                          partUUID: try r.optionalString("partuuid"))
        for key in ["cache_type", "io_engine", "rate_limiter"] {
            if let v = r.raw(key) { drive.ignored.append(JSONMember(key: key, value: v)) }
        }
        try r.finish()
        try checkID(drive.driveID, field: "drive_id")
        return drive
    }

    public static func machineConfig(_ json: JSONValue) throws(FirecrackerError) -> MachineConfig {
        var r = try JSONObjectReader(json, context: "machine-config")
        var config = MachineConfig(vcpuCount: try r.uint("vcpu_count"), memSizeMib: try r.uint("mem_size_mib"),
                                   smt: try r.optionalBool("smt") ?? false,
                                   trackDirtyPages: try r.optionalBool("track_dirty_pages") ?? false)
        for key in ["cpu_template", "huge_pages"] {
            if let v = r.raw(key) { config.ignored.append(JSONMember(key: key, value: v)) }
        }
        try r.finish()
        // Firecracker's limits: 1-32 vCPUs, and with SMT (two threads per core) 1 or an even number.
        guard (1...32).contains(config.vcpuCount), !config.smt || config.vcpuCount == 1 || config.vcpuCount % 2 == 0 else {
            throw FirecrackerError("The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled (`vcpu_count` \(config.vcpuCount), allowed 1-32).")
        }
        guard config.memSizeMib > 2, config.memSizeMib <= 3072 else {
            throw FirecrackerError("The memory size (MiB) is invalid (`mem_size_mib` \(config.memSizeMib)): bulkhead-vmm takes 3 to 3072 MiB (RAM ends below the 32-bit MMIO gap).")
        }
        return config
    }

    public static func logger(_ json: JSONValue) throws(FirecrackerError) -> Logger {
        var r = try JSONObjectReader(json, context: "logger")
        let logger = Logger(logPath: try r.optionalString("log_path"), level: try r.optionalString("level"),
                            showLevel: try r.optionalBool("show_level"), showLogOrigin: try r.optionalBool("show_log_origin"),
                            module: try r.optionalString("module"))
        try r.finish()
        if let level = logger.level, VMMLogger.Level(name: level) == nil {
            throw FirecrackerError("Invalid value for `level`: \"\(level)\" (one of Off, Error, Warning, Info, Debug, Trace).")
        }
        return logger
    }

    public static func metricsPath(_ json: JSONValue) throws(FirecrackerError) -> String {
        var r = try JSONObjectReader(json, context: "metrics")
        let path = try r.string("metrics_path")
        try r.finish()
        return path
    }

    /// Network interfaces, vsock and entropy are checked for their ID fields only: they are kept,
    /// not used (see the type's comment).
    public static func networkInterface(_ json: JSONValue) throws(FirecrackerError) -> (id: String, json: JSONValue) {
        var r = try JSONObjectReader(json, context: "network-interface")
        let id = try r.string("iface_id")
        _ = try r.string("host_dev_name")
        try checkID(id, field: "iface_id")
        if let mac = json["guest_mac"] {
            guard case let .string(text) = mac, VirtioNet.parseMAC(text) != nil else {
                throw FirecrackerError("Invalid `guest_mac` of network interface \(id): want six hex bytes like \"06:00:ac:10:00:02\".")
            }
        }
        return (id, json)
    }

    public static func vsock(_ json: JSONValue) throws(FirecrackerError) -> JSONValue {
        var r = try JSONObjectReader(json, context: "vsock")
        let cid = try r.uint("guest_cid")
        _ = try r.string("uds_path")
        guard cid > 2, cid < 0xffff_ffff else {
            throw FirecrackerError("Invalid `guest_cid` \(cid): CIDs 0, 1, 2 and 2^32-1 are reserved.")
        }
        return json
    }

    /// The vsock device as the MicroVM takes it (checked when it was set).
    public var vsockConfiguration: VsockConfiguration? {
        guard case let .string(path)? = vsock?["uds_path"], let cid = vsock?["guest_cid"]?.integer(as: UInt64.self) else {
            return nil
        }
        return VsockConfiguration(guestCID: cid, udsPath: path)
    }

    public static func entropy(_ json: JSONValue) throws(FirecrackerError) -> JSONValue {
        _ = try JSONObjectReader(json, context: "entropy")
        return json
    }

    /// Adds or replaces a drive (PUT /drives/{id}); one root device at most, and it goes first
    /// (it becomes /dev/vda, which the root= argument names).
    public mutating func putDrive(_ drive: Drive) throws(FirecrackerError) {
        if drive.isRootDevice, drives.contains(where: { $0.isRootDevice && $0.driveID != drive.driveID }) {
            throw FirecrackerError("A root block device already exists! (`is_root_device` of drive \(drive.driveID))")
        }
        if let i = drives.firstIndex(where: { $0.driveID == drive.driveID }) {
            drives[i] = drive
        } else {
            drives.append(drive)
        }
        drives.sort { $0.isRootDevice && !$1.isRootDevice }
    }

    // MARK: - The config file

    /// Parses a `--config-file` document (Firecracker's VmConfig keys).
    public static func configFile(_ bytes: [UInt8]) throws(FirecrackerError) -> FirecrackerConfiguration {
        var r = try JSONObjectReader(JSONValue.parseRequest(bytes), context: "the configuration file")
        var config = FirecrackerConfiguration()
        if let v = r.raw("boot-source") { config.bootSource = try bootSource(v) }
        if let v = r.raw("drives") {
            guard case let .array(items) = v else { throw FirecrackerError("`drives` must be an array.") }
            for item in items { try config.putDrive(try drive(item)) }
        }
        if let v = r.raw("machine-config") { config.machineConfig = try machineConfig(v) }
        if let v = r.raw("network-interfaces") {
            guard case let .array(items) = v else { throw FirecrackerError("`network-interfaces` must be an array.") }
            for item in items { config.networkInterfaces.append(try networkInterface(item).json) }
        }
        if let v = r.raw("vsock") { config.vsock = try vsock(v) }
        if let v = r.raw("entropy") { config.entropy = try entropy(v) }
        if let v = r.raw("logger") { config.logger = try logger(v) }
        if let v = r.raw("metrics") { config.metricsPath = try metricsPath(v) }
        // Sections of Firecracker's config file this VMM has no device for are refused by name.
        for key in ["balloon", "mmds-config", "cpu-config", "pmem", "memory-hotplug", "serial"] {
            if r.raw(key) != nil {
                throw FirecrackerError("`\(key)` in the configuration file is not supported by bulkhead-vmm.")
            }
        }
        try r.finish()
        return config
    }

    // MARK: - Output

    // Objects are written with their keys in alphabetical order, then the accepted-but-ignored
    // fields: what clients and saved configurations have seen from this VMM so far.

    public var machineConfigJSON: JSONValue {
        let o: JSONValue = [
            "mem_size_mib": .integer(machineConfig.memSizeMib),
            "smt": .bool(machineConfig.smt),
            "track_dirty_pages": .bool(machineConfig.trackDirtyPages),
            "vcpu_count": .integer(machineConfig.vcpuCount),
        ]
        return o.appending(machineConfig.ignored)
    }

    /// The whole configuration as Firecracker's GET /vm/config (the config-file format).
    public var json: JSONValue {
        func optional(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        let boot: JSONValue = bootSource.map {
            ["boot_args": optional($0.bootArgs), "initrd_path": optional($0.initrdPath),
             "kernel_image_path": .string($0.kernelImagePath)]
        } ?? .null
        let drivesJSON: [JSONValue] = drives.map { d in
            let o: JSONValue = ["drive_id": .string(d.driveID), "is_read_only": .bool(d.isReadOnly),
                                "is_root_device": .bool(d.isRootDevice), "partuuid": optional(d.partUUID),
                                "path_on_host": .string(d.pathOnHost)]
            return o.appending(d.ignored)
        }
        let loggerJSON: JSONValue = logger.map {
            ["level": optional($0.level), "log_path": optional($0.logPath), "module": optional($0.module),
             "show_level": $0.showLevel.map { .bool($0) } ?? .null,
             "show_log_origin": $0.showLogOrigin.map { .bool($0) } ?? .null]
        } ?? .null
        return [
            "balloon": .null,
            "boot-source": boot,
            "cpu-config": .null,
            "drives": .array(drivesJSON),
            "entropy": entropy ?? .null,
            "logger": loggerJSON,
            "machine-config": machineConfigJSON,
            "metrics": metricsPath.map { ["metrics_path": .string($0)] } ?? .null,
            "mmds-config": .null,
            "network-interfaces": .array(networkInterfaces),
            "vsock": vsock ?? .null,
        ]
    }

    /// Devices that are configured but that InstanceStart cannot build yet, named for the fault message.
    public var unsupportedDevices: [String] {
        []
    }

    /// The network interfaces as the MicroVM takes them (checked when they were added).
    public var networkInterfaceConfigurations: [NetworkInterfaceConfiguration] {
        networkInterfaces.compactMap { json in
            guard case let .string(id)? = json["iface_id"], case let .string(tap)? = json["host_dev_name"] else { return nil }
            var mac: [UInt8]?
            if case let .string(text)? = json["guest_mac"] { mac = VirtioNet.parseMAC(text) }
            return NetworkInterfaceConfiguration(id: id, tapName: tap, mac: mac)
        }
    }

    /// The command line the guest gets: boot_args (or the default) plus root= for a root drive.
    public var kernelCommandLine: String {
        var line = bootSource?.bootArgs ?? Self.defaultBootArgs
        if let root = drives.first(where: \.isRootDevice) {
            let device = root.partUUID.map { "PARTUUID=\($0)" } ?? "/dev/vda"
            line += " root=\(device) \(root.isReadOnly ? "ro" : "rw")"
        }
        return line
    }
}

private extension JSONValue {
    /// This object with `members` added after its own (a key it has already keeps its value).
    func appending(_ members: [JSONMember]) -> JSONValue {
        var o = self
        for m in members where o[m.key] == nil { o[m.key] = m.value }
        return o
    }
}
