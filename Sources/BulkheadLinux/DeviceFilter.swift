import BulkheadOCI
import CBulkhead
import Glibc

/// linux.resources.devices on cgroup v2, which has no devices controller: an eBPF program of type
/// CGROUP_DEVICE that the kernel runs on every open and mknod of a device node in the cgroup.
/// The rules are tried from the last to the first (a later rule overrides an earlier one, as in
/// the spec and the v1 controller); the first that matches decides; no match denies.
public enum DeviceFilter {
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: access_type's low 16
    // bits are the device type (1 block, 2 char), the high 16 bits the access (1 mknod, 2 read, 4 write).
    static let typeBlock: Int32 = 1, typeChar: Int32 = 2

    /// One instruction: opcode, registers, offset, immediate (struct bpf_insn, little-endian).
    struct Instruction {
        var code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, imm: Int32 = 0
        var encoded: UInt64 {
            UInt64(code) | UInt64((src << 4) | dst) << 8 | UInt64(UInt16(bitPattern: offset)) << 16
                | UInt64(UInt32(bitPattern: imm)) << 32
        }
    }

    // Opcodes used (BPF_CLASS | BPF_SIZE/OP | BPF_SRC).
    static let ldxW: UInt8 = 0x61, and64Imm: UInt8 = 0x57, rsh64Imm: UInt8 = 0x77, mov64Imm: UInt8 = 0xb7,
               mov64Reg: UInt8 = 0xbf, jneImm: UInt8 = 0x55, jneReg: UInt8 = 0x5d, exit: UInt8 = 0x95

    /// The program for `rules`, as struct bpf_insn values.
    public static func program(_ rules: [Resources.DeviceCgroupRule]) throws(CgroupError) -> [UInt64] {
        var code: [Instruction] = [
            Instruction(code: ldxW, dst: 2, src: 1, offset: 0),   // r2 = access_type
            Instruction(code: and64Imm, dst: 2, imm: 0xffff),     // r2 = type
            Instruction(code: ldxW, dst: 3, src: 1, offset: 0),   // r3 = access_type
            Instruction(code: rsh64Imm, dst: 3, imm: 16),         // r3 = access
            Instruction(code: ldxW, dst: 4, src: 1, offset: 4),   // r4 = major
            Instruction(code: ldxW, dst: 5, src: 1, offset: 8),   // r5 = minor
        ]
        for (index, rule) in rules.enumerated().reversed() {
            let field = "linux.resources.devices[\(index)]"
            var checks: [Instruction] = []
            switch rule.type ?? "a" {
            case "a": break
            case "b": checks.append(Instruction(code: jneImm, dst: 2, imm: typeBlock))
            case "c", "u": checks.append(Instruction(code: jneImm, dst: 2, imm: typeChar))
            case "p": continue  // fifos are not device nodes: the hook never sees them
            default: throw CgroupError(operation: field + ".type", message: "\"\(rule.type!)\" is not one of a, b, c, u, p")
            }
            var access: Int32 = 0
            for c in rule.access ?? "rwm" {
                switch c {
                case "m": access |= 1
                case "r": access |= 2
                case "w": access |= 4
                default: throw CgroupError(operation: field + ".access", message: "\"\(rule.access!)\" may only hold r, w and m")
                }
            }
            if access != 7 {
                // Matches only when every requested access is in the rule: (access & ~rule) == 0.
                checks.append(Instruction(code: mov64Reg, dst: 1, src: 3))
                checks.append(Instruction(code: and64Imm, dst: 1, imm: ~access & 7))
                checks.append(Instruction(code: jneImm, dst: 1, imm: 0))
            }
            if let major = rule.major, major >= 0 { checks.append(Instruction(code: jneImm, dst: 4, imm: Int32(truncatingIfNeeded: major))) }
            if let minor = rule.minor, minor >= 0 { checks.append(Instruction(code: jneImm, dst: 5, imm: Int32(truncatingIfNeeded: minor))) }
            // Each check jumps past the rest of this rule (its checks, then r0 = verdict; exit).
            let blockLength = checks.count + 2
            for (i, var check) in checks.enumerated() {
                if check.code == jneImm { check.offset = Int16(blockLength - i - 1) }
                code.append(check)
            }
            code.append(Instruction(code: mov64Imm, dst: 0, imm: rule.allow ? 1 : 0))
            code.append(Instruction(code: exit))
            // A rule that matches everything ends the program: the verifier refuses code that
            // cannot be reached.
            if checks.isEmpty { return code.map(\.encoded) }
        }
        code.append(Instruction(code: mov64Imm, dst: 0, imm: 0))
        code.append(Instruction(code: exit))
        return code.map(\.encoded)
    }

    /// Loads the program for `rules` and attaches it to the cgroup v2 directory.
    public static func attach(_ rules: [Resources.DeviceCgroupRule], to directory: String) throws(CgroupError) {
        let insns = try program(rules)
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd < 0 { throw CgroupError(operation: "linux.resources.devices", path: directory, errno: errno, message: "cannot open the cgroup") }
        defer { close(dirfd) }
        var log = [CChar](repeating: 0, count: 4096)
        let prog = insns.withUnsafeBytes { bh_bpf_attach_device_filter(dirfd, $0.baseAddress, Int32(insns.count), &log, UInt32(log.count)) }
        if prog < 0 {
            let verifier = String(cString: log)
            throw CgroupError(operation: "linux.resources.devices", path: directory, errno: errno,
                              message: "cannot load and attach the device filter" + (verifier.isEmpty ? "" : " (verifier: \(verifier))"))
        }
        // The attachment keeps the program alive with the cgroup.
        close(prog)
    }
}
