import BulkheadOCI
import CBulkhead
import CSeccomp
import Glibc

/// config.json's `linux.seccomp`, compiled to a BPF program with libseccomp (as runc, crun and
/// youki do) in the runtime, before clone. The container child only hands the program to
/// seccomp(2): it cannot allocate, and libseccomp does.
public struct SeccompFilter: Sendable, Equatable {
    /// The program as the kernel reads it: `struct sock_filter[]`, 8 bytes an instruction.
    public var program: [UInt8]
    /// SECCOMP_FILTER_FLAG_* for seccomp(2), NEW_LISTENER included when a rule notifies.
    public var flags: UInt32
    /// The seccomp agent's socket, when a rule is SCMP_ACT_NOTIFY.
    public var listenerPath: String?
    /// Passed to the agent untouched, in the containerProcessState.
    public var listenerMetadata: String?

    public var instructionCount: Int { program.count / 8 }

    /// The kernel's limit on one filter (BPF_MAXINSNS).
    public static let maxInstructions = 4096

    // Kernel flags (<linux/seccomp.h>): macros with a cast, which Swift does not import.
    static let flagTsync: UInt32 = 1 << 0
    static let flagLog: UInt32 = 1 << 1
    static let flagSpecAllow: UInt32 = 1 << 2
    static let flagNewListener: UInt32 = 1 << 3
    static let flagWaitKillableRecv: UInt32 = 1 << 5

    /// The flags config.json may name, and their bits. TSYNC is accepted and dropped: the
    /// container child has one thread.
    public static let knownFlags: [(name: String, bit: UInt32)] = [
        ("SECCOMP_FILTER_FLAG_TSYNC", 0),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", flagSpecAllow),
        ("SECCOMP_FILTER_FLAG_LOG", flagLog),
        ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", flagWaitKillableRecv),
    ]

    /// Actions of the spec and the libseccomp API level (seccomp_api_get) each needs.
    static let actionAPILevels: [(name: String, level: UInt32)] = [
        ("SCMP_ACT_KILL", 1), ("SCMP_ACT_KILL_PROCESS", 3), ("SCMP_ACT_KILL_THREAD", 1), ("SCMP_ACT_TRAP", 1),
        ("SCMP_ACT_ERRNO", 1), ("SCMP_ACT_TRACE", 1), ("SCMP_ACT_ALLOW", 1), ("SCMP_ACT_LOG", 3),
        ("SCMP_ACT_NOTIFY", 5),
    ]

    public static let operators: [(name: String, op: scmp_compare)] = [
        ("SCMP_CMP_NE", SCMP_CMP_NE), ("SCMP_CMP_LT", SCMP_CMP_LT), ("SCMP_CMP_LE", SCMP_CMP_LE),
        ("SCMP_CMP_EQ", SCMP_CMP_EQ), ("SCMP_CMP_GE", SCMP_CMP_GE), ("SCMP_CMP_GT", SCMP_CMP_GT),
        ("SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ),
    ]

    /// Architecture names of the runtime spec. libseccomp's name is the rest, in lower case
    /// (SCMP_ARCH_X86_64 -> "x86_64"); which ones this libseccomp knows is asked at run time.
    public static let specArchitectures = [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ]

    /// Compiles `seccomp`. Every error names the field of config.json it comes from.
    public init(_ seccomp: Seccomp) throws(ConfigError) {
        let base = "linux.seccomp"
        let defaultAction = try Self.action(seccomp.defaultAction, errnoRet: seccomp.defaultErrnoRet,
                                            field: "\(base).defaultAction")
        guard let ctx = seccomp_init(defaultAction) else {
            throw ConfigError(field: "\(base).defaultAction",
                              message: "libseccomp refused \"\(seccomp.defaultAction)\" as the default action (not supported by this kernel or libseccomp)")
        }
        defer { seccomp_release(ctx) }

        for (i, name) in (seccomp.architectures ?? []).enumerated() {
            let token = try Self.architecture(name, field: "\(base).architectures[\(i)]")
            let rc = seccomp_arch_add(ctx, token)
            // The native architecture is in every new filter already.
            if rc < 0 && rc != -EEXIST {
                throw ConfigError(field: "\(base).architectures[\(i)]", message: "libseccomp: seccomp_arch_add \(name): \(errnoText(-rc))")
            }
        }

        var notifies = false
        for (i, rule) in (seccomp.syscalls ?? []).enumerated() {
            let field = "\(base).syscalls[\(i)]"
            let action = try Self.action(rule.action, errnoRet: rule.errnoRet, field: "\(field).action")
            var conditions: [scmp_arg_cmp] = []
            for (j, arg) in (rule.args ?? []).enumerated() {
                conditions.append(try Self.condition(arg, field: "\(field).args[\(j)]"))
            }
            // libseccomp ANDs the conditions of one rule and takes one per argument: several on
            // the same argument become one rule each (OR), as runc does.
            let indices = conditions.map(\.arg)
            let conditionSets = Set(indices).count == indices.count ? [conditions] : conditions.map { [$0] }
            for name in rule.names {
                let number = seccomp_syscall_resolve_name(name)
                guard number != __NR_SCMP_ERROR else {
                    throw ConfigError(field: "\(field).names", message: "unknown syscall \"\(name)\"")
                }
                // libseccomp refuses a rule whose action is the default one; it would change nothing.
                if action == defaultAction { continue }
                notifies = notifies || rule.action == "SCMP_ACT_NOTIFY"
                for set in conditionSets {
                    let rc = set.withUnsafeBufferPointer {
                        seccomp_rule_add_array(ctx, action, number, UInt32($0.count), $0.baseAddress)
                    }
                    if rc < 0 {
                        throw ConfigError(field: field, message: "libseccomp: cannot add the rule for \"\(name)\": \(errnoText(-rc))")
                    }
                }
            }
        }

        var flags: UInt32 = 0
        for (i, name) in (seccomp.flags ?? []).enumerated() {
            guard let known = Self.knownFlags.first(where: { $0.name == name }) else {
                throw ConfigError(field: "\(base).flags[\(i)]",
                                  message: "unknown flag \"\(name)\"; expected one of \(Self.knownFlags.map(\.name).joined(separator: ", "))")
            }
            if known.bit == Self.flagWaitKillableRecv && !notifies {
                throw ConfigError(field: "\(base).flags[\(i)]", message: "\(name) needs a SCMP_ACT_NOTIFY rule (it changes how notifications wait)")
            }
            flags |= known.bit
        }
        if notifies { flags |= Self.flagNewListener }
        if flags != 0 && bh_seccomp_flags_supported(flags) != 1 {
            throw ConfigError(field: "\(base).flags", message: "this kernel does not take seccomp filter flags \(Self.flagNames(flags))")
        }
        if notifies, (seccomp.listenerPath ?? "").isEmpty {
            throw ConfigError(field: "\(base).listenerPath", message: "expected the path of the seccomp agent's socket: SCMP_ACT_NOTIFY is used")
        }

        let program = try Self.export(ctx, field: base)
        guard program.count / 8 <= Self.maxInstructions else {
            throw ConfigError(field: base, message: "the filter compiles to \(program.count / 8) BPF instructions; the kernel takes at most \(Self.maxInstructions)")
        }
        self.program = program
        self.flags = flags
        listenerPath = notifies ? seccomp.listenerPath : nil
        listenerMetadata = seccomp.listenerMetadata
    }

    /// libseccomp's action value for a spec action. ERRNO and TRACE carry errnoRet (EPERM when
    /// absent, as runc).
    static func action(_ name: String, errnoRet: UInt32?, field: String) throws(ConfigError) -> UInt32 {
        let data = UInt32(errnoRet ?? UInt32(EPERM)) & 0xffff
        switch name {
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return SCMP_ACT_KILL_THREAD
        case "SCMP_ACT_KILL_PROCESS": return SCMP_ACT_KILL_PROCESS
        case "SCMP_ACT_TRAP": return SCMP_ACT_TRAP
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | data  // SCMP_ACT_ERRNO(x), a macro
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | data  // SCMP_ACT_TRACE(x)
        case "SCMP_ACT_ALLOW": return SCMP_ACT_ALLOW
        case "SCMP_ACT_LOG": return SCMP_ACT_LOG
        case "SCMP_ACT_NOTIFY": return SCMP_ACT_NOTIFY
        default:
            throw ConfigError(field: field, message: "unknown action \"\(name)\"; expected one of \(actionAPILevels.map(\.name).joined(separator: ", "))")
        }
    }

    static func architecture(_ name: String, field: String) throws(ConfigError) -> UInt32 {
        let token: UInt32 = name.hasPrefix("SCMP_ARCH_") ? seccomp_arch_resolve_name(String(name.dropFirst(10)).lowercased()) : 0
        guard token != 0 else {
            throw ConfigError(field: field, message: "unknown architecture \"\(name)\"; expected one of \(supportedArchitectures().joined(separator: ", "))")
        }
        return token
    }

    static func condition(_ arg: Seccomp.Arg, field: String) throws(ConfigError) -> scmp_arg_cmp {
        guard let op = operators.first(where: { $0.name == arg.op })?.op else {
            throw ConfigError(field: "\(field).op", message: "unknown operator \"\(arg.op)\"; expected one of \(operators.map(\.name).joined(separator: ", "))")
        }
        guard arg.index < 6 else {
            throw ConfigError(field: "\(field).index", message: "a syscall has arguments 0 to 5, got \(arg.index)")
        }
        // MASKED_EQ: value is the mask, valueTwo what the masked argument must equal.
        return scmp_arg_cmp(arg: arg.index, op: op, datum_a: arg.value, datum_b: arg.valueTwo ?? 0)
    }

    /// The program, read back from a memfd: libseccomp 2.5 exports only into a descriptor
    /// (seccomp_export_bpf_mem came in 2.6).
    static func export(_ ctx: scmp_filter_ctx, field: String) throws(ConfigError) -> [UInt8] {
        let fd = bh_memfd("bulkhead-seccomp")
        guard fd >= 0 else { throw ConfigError(field: field, message: "\(SystemError("memfd_create"))") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        guard rc == 0 else { throw ConfigError(field: field, message: "libseccomp: seccomp_export_bpf: \(errnoText(-rc))") }
        let size = Int(lseek(fd, 0, SEEK_END))
        var program = [UInt8](repeating: 0, count: size)
        let read = program.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard read == size else { throw ConfigError(field: field, message: "\(SystemError("read the exported seccomp filter"))") }
        return program
    }

    static func flagNames(_ flags: UInt32) -> String {
        var names = knownFlags.filter { $0.bit != 0 && flags & $0.bit != 0 }.map(\.name)
        if flags & flagNewListener != 0 { names.append("SECCOMP_FILTER_FLAG_NEW_LISTENER (for SCMP_ACT_NOTIFY)") }
        return names.joined(separator: " | ")
    }

    // MARK: what this build supports (the `features` command)

    /// Actions libseccomp and this kernel support (libseccomp's API level probes the kernel).
    public static func supportedActions() -> [String] {
        let level = seccomp_api_get()
        return actionAPILevels.filter { $0.level <= level }.map(\.name)
    }

    /// Architectures of the spec this libseccomp knows.
    public static func supportedArchitectures() -> [String] {
        specArchitectures.filter { seccomp_arch_resolve_name(String($0.dropFirst(10)).lowercased()) != 0 }
    }

    /// Flags of `knownFlags` this kernel accepts.
    public static func supportedFlags() -> [String] {
        knownFlags.filter { flag in
            switch flag.bit {
            case 0: return true  // TSYNC: nothing to do for one thread
            case flagWaitKillableRecv: return bh_seccomp_flags_supported(flag.bit | flagNewListener) == 1
            default: return bh_seccomp_flags_supported(flag.bit) == 1
            }
        }.map(\.name)
    }
}

// MARK: allow-lists for Bulkhead's own threads

extension SeccompFilter {
    /// A filter that allows exactly `syscalls` (names as libseccomp knows them) on the native
    /// architecture and answers every other syscall with `defaultAction` (a spec action name, e.g.
    /// SCMP_ACT_KILL_PROCESS, or SCMP_ACT_ERRNO with `defaultErrnoRet`). For bulkhead-vmm's
    /// threads, which confine themselves; `flags` are SECCOMP_FILTER_FLAG_* bits (LOG: `flagLog`).
    /// `restricted` allows a syscall only when one argument's low 32 bits equal one of the values
    /// (e.g. ioctl with argument 1 KVM_RUN); such a syscall must not be in `syscalls` as well.
    public init(allowing syscalls: [String], restricted: [ArgumentRule] = [], defaultAction: String,
                defaultErrnoRet: UInt32? = nil, flags: UInt32 = 0) throws(ConfigError) {
        let field = "allow-list"
        let action = try Self.action(defaultAction, errnoRet: defaultErrnoRet, field: "\(field).defaultAction")
        guard let ctx = seccomp_init(action) else {
            throw ConfigError(field: field, message: "libseccomp refused \"\(defaultAction)\" as the default action")
        }
        defer { seccomp_release(ctx) }
        for name in Set(syscalls).sorted() {
            let number = seccomp_syscall_resolve_name(name)
            guard number != __NR_SCMP_ERROR else { throw ConfigError(field: field, message: "unknown syscall \"\(name)\"") }
            let rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, 0, nil)
            if rc < 0 { throw ConfigError(field: field, message: "libseccomp: cannot allow \"\(name)\": \(errnoText(-rc))") }
        }
        for rule in restricted {
            let number = seccomp_syscall_resolve_name(rule.syscall)
            guard number != __NR_SCMP_ERROR, rule.argument < 6, !syscalls.contains(rule.syscall) else {
                throw ConfigError(field: field, message: "bad argument rule for \"\(rule.syscall)\"")
            }
            for value in rule.values {
                // MASKED_EQ on the low 32 bits: an int argument may reach the kernel sign-extended.
                var condition = scmp_arg_cmp(arg: rule.argument, op: SCMP_CMP_MASKED_EQ, datum_a: 0xffff_ffff, datum_b: value & 0xffff_ffff)
                let rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, 1, &condition)
                if rc < 0 { throw ConfigError(field: field, message: "libseccomp: cannot allow \"\(rule.syscall)\" with 0x\(String(value, radix: 16)): \(errnoText(-rc))") }
            }
        }
        let program = try Self.export(ctx, field: field)
        guard program.count / 8 <= Self.maxInstructions else {
            throw ConfigError(field: field, message: "the filter compiles to \(program.count / 8) BPF instructions")
        }
        self.program = program
        self.flags = flags
        listenerPath = nil
        listenerMetadata = nil
    }

    /// A syscall allowed only with given values of one argument.
    public struct ArgumentRule: Sendable, Equatable {
        public var syscall: String
        public var argument: UInt32
        public var values: [UInt64]
        public init(_ syscall: String, argument: UInt32, values: [UInt64]) {
            self.syscall = syscall
            self.argument = argument
            self.values = values
        }
    }

    /// SECCOMP_FILTER_FLAG_LOG: the kernel logs every action but ALLOW (for finding a missing syscall).
    public static var logFlag: UInt32 { flagLog }

    /// The syscall number of `name` on this architecture, or nil.
    public static func syscallNumber(_ name: String) -> Int32? {
        let n = seccomp_syscall_resolve_name(name)
        return n == __NR_SCMP_ERROR ? nil : n
    }

    /// Sets no_new_privs and loads the filter on the calling thread only (TSYNC is never set, so
    /// each thread keeps the filter it installed itself). Irreversible for that thread.
    public func loadOnCurrentThread() throws(SystemError) {
        let rc = program.withUnsafeBytes { bh_seccomp_load_thread_filter($0.baseAddress, Int32(instructionCount), flags & ~Self.flagTsync) }
        if rc != 0 { throw SystemError("seccomp(SECCOMP_SET_MODE_FILTER)") }
    }

    /// The constants the program compares the syscall number with (BPF_JMP|BPF_JEQ|BPF_K), i.e.
    /// the syscalls an allow-list filter without argument rules lets through.
    public var comparedConstants: Set<UInt32> {
        var constants = Set<UInt32>()
        var i = 0
        while i + 8 <= program.count {
            let code = UInt16(program[i]) | UInt16(program[i + 1]) << 8
            let k = UInt32(program[i + 4]) | UInt32(program[i + 5]) << 8 | UInt32(program[i + 6]) << 16 | UInt32(program[i + 7]) << 24
            if code == 0x15 { constants.insert(k) }  // BPF_JMP | BPF_JEQ | BPF_K
            i += 8
        }
        return constants
    }
}
