// Validation of the linux object: namespaces and what depends on them, devices, sysctl, seccomp.

import Testing
@testable import BulkheadOCI

@Suite struct NamespaceValidationTests {
    @Test func typeKnown() {
        expectInvalid(field: "linux.namespaces[5].type") { $0.linux?.namespaces?.append(Namespace(type: "net")) }
    }

    @Test func noDuplicates() {
        expectInvalid(field: "linux.namespaces[5].type") { $0.linux?.namespaces?.append(Namespace(type: "pid")) }
    }

    @Test func pathAbsolute() {
        expectInvalid(field: "linux.namespaces[0].path") { $0.linux?.namespaces?[0].path = "proc/1/ns/pid" }
        expectValid { $0.linux?.namespaces?[0].path = "/proc/1/ns/pid" }
    }

    @Test func idMappingsNeedUserNamespace() {
        expectInvalid(field: "linux.uidMappings") {
            $0.linux?.uidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
        }
        expectInvalid(field: "linux.gidMappings") {
            $0.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
        }
    }

    @Test func idMappingSizeNonZero() {
        var spec = Spec.defaultSpec(rootless: true)
        spec.linux?.gidMappings = [IDMapping(containerID: 0, hostID: 0, size: 1), IDMapping(containerID: 1, hostID: 100000, size: 0)]
        expectInvalid(spec, field: "linux.gidMappings[1].size")
    }

    @Test func newUserNamespaceNeedsMappings() {
        var spec = Spec.defaultSpec(rootless: true)
        spec.linux?.uidMappings = nil
        expectInvalid(spec, field: "linux.uidMappings")
    }

    @Test func timeOffsetKeys() {
        expectInvalid(field: "linux.timeOffsets.realtime") {
            $0.linux?.namespaces?.append(Namespace(type: "time"))
            $0.linux?.timeOffsets = ["realtime": TimeOffset(secs: 10, nanosecs: 0)]
        }
    }

    @Test func timeOffsetsNeedTimeNamespace() {
        expectInvalid(field: "linux.timeOffsets") {
            $0.linux?.timeOffsets = ["monotonic": TimeOffset(secs: 10, nanosecs: 0)]
        }
        expectValid {
            $0.linux?.namespaces?.append(Namespace(type: "time"))
            $0.linux?.timeOffsets = ["monotonic": TimeOffset(secs: 10, nanosecs: 0), "boottime": TimeOffset(secs: 1)]
        }
    }
}

@Suite struct SysctlValidationTests {
    @Test func netNeedsNetworkNamespace() {
        var spec = Spec.defaultSpec(rootless: true)
        spec.linux?.sysctl = ["net.ipv4.ip_forward": "1"]
        expectInvalid(spec, field: #"linux.sysctl["net.ipv4.ip_forward"]"#)
        expectValid { $0.linux?.sysctl = ["net.ipv4.ip_forward": "1"] }
    }

    @Test func ipcSysctlNeedsIPCNamespace() {
        expectInvalid(field: #"linux.sysctl["kernel.shmmax"]"#) {
            $0.linux?.namespaces?.removeAll { $0.type == "ipc" }
            $0.linux?.sysctl = ["kernel.shmmax": "1000"]
        }
        expectValid { $0.linux?.sysctl = ["kernel.shmmax": "1000", "fs.mqueue.msg_max": "10"] }
    }

    @Test func hostnameAndDomainnameForbidden() {
        expectInvalid(field: #"linux.sysctl["kernel.hostname"]"#) { $0.linux?.sysctl = ["kernel.hostname": "x"] }
        expectInvalid(field: #"linux.sysctl["kernel.domainname"]"#) { $0.linux?.sysctl = ["kernel.domainname": "x"] }
    }

    @Test func keysAreDottedNames() {
        for bad in ["ipforward", "net..ipv4", ".net.ipv4", "net.ipv4 .x", "net.ipv4."] {
            expectInvalid(field: JSONPath.append("linux.sysctl", key: bad)) { $0.linux?.sysctl = [bad: "1"] }
        }
    }

    @Test func hostOnlySysctlRejected() {
        expectInvalid(field: #"linux.sysctl["vm.swappiness"]"#) { $0.linux?.sysctl = ["vm.swappiness": "10"] }
    }
}

@Suite struct DeviceAndMiscValidationTests {
    @Test func deviceType() {
        expectInvalid(field: "linux.devices[0].type") {
            $0.linux?.devices = [Device(type: "x", path: "/dev/null", major: 1, minor: 3)]
        }
    }

    @Test func deviceNeedsMajorMinor() {
        expectInvalid(field: "linux.devices[0].major") {
            $0.linux?.devices = [Device(type: "c", path: "/dev/null", major: nil, minor: 3)]
        }
        expectInvalid(field: "linux.devices[1].minor") {
            $0.linux?.devices = [Device(type: "p", path: "/dev/fifo", major: nil, minor: nil),
                                 Device(type: "b", path: "/dev/sda", major: 8, minor: nil)]
        }
    }

    @Test func devicePathAbsolute() {
        expectInvalid(field: "linux.devices[0].path") {
            $0.linux?.devices = [Device(type: "c", path: "dev/null", major: 1, minor: 3)]
        }
    }

    @Test func rootfsPropagation() {
        expectInvalid(field: "linux.rootfsPropagation") { $0.linux?.rootfsPropagation = "rshare" }
        expectValid { $0.linux?.rootfsPropagation = "rslave" }
    }

    @Test func cgroupsPathNoDotDot() {
        expectInvalid(field: "linux.cgroupsPath") { $0.linux?.cgroupsPath = "/bulkhead/../../escape" }
        expectValid { $0.linux?.cgroupsPath = "system.slice:bulkhead:abc" }
    }

    @Test func seccompActions() throws {
        let json = #"""
        {"ociVersion":"1.0.0","root":{"path":"rootfs"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO",
         "syscalls":[{"names":["mount"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_FOO"}]}]}}}
        """#
        expectInvalid(try Spec.decode(Array(json.utf8)), field: "linux.seccomp.syscalls[0].args[0].op", forCreate: false)
        expectInvalid(try Spec.decode(Array(json.replacingOccurrences("SCMP_ACT_ERRNO", "SCMP_ACT_NOPE").utf8)),
                      field: "linux.seccomp.defaultAction", forCreate: false)
        expectInvalid(try Spec.decode(Array(json.replacingOccurrences("SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY").utf8)),
                      field: "linux.seccomp.syscalls[0].args[0].op", forCreate: false)
        let notify = json.replacingOccurrences("SCMP_CMP_FOO", "SCMP_CMP_EQ").replacingOccurrences("SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY")
        expectInvalid(try Spec.decode(Array(notify.utf8)), field: "linux.seccomp.listenerPath", forCreate: false)
    }
}

extension String {
    /// FoundationEssentials has no replacingOccurrences(of:with:); the stdlib's replacing does.
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        replacing(target, with: replacement)
    }
}
