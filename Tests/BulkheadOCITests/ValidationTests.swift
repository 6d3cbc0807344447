// Every validation rule, each fed a config broken in one place, asserting the exact field named.

import Testing
@testable import BulkheadOCI

@Suite struct TopLevelValidationTests {
    @Test func runcDefaultValidates() throws {
        try Fixture.spec("runc-spec.json").validate(forCreate: true)
        try Fixture.spec("runc-spec-rootless.json").validate(forCreate: true)
        try Spec.defaultSpec().validate(forCreate: true)
        try Spec.defaultSpec(rootless: true, hostUID: 1000, hostGID: 1000).validate(forCreate: true)
    }

    @Test func ociVersionMustBeOneXY() {
        for bad in ["2.0.0", "1.0", "1.a.0", "", "v1.0.0", "1.0.0.0"] {
            expectInvalid(field: "ociVersion") { $0.ociVersion = bad }
        }
        for good in ["1.0.0", "1.2.0", "1.0.2-dev", "1.1.0-rc.1", "1.3.0+build"] {
            expectValid { $0.ociVersion = good }
        }
    }

    @Test func rootRequired() {
        expectInvalid(field: "root") { $0.root = nil }
        expectInvalid(field: "root.path") { $0.root = Root(path: "") }
    }

    @Test func processRequiredOnlyForCreate() throws {
        var spec = goodSpec()
        spec.process = nil
        expectInvalid(spec, field: "process")
        try spec.validate(forCreate: false)
    }

    @Test func hostnameNeedsAUTSNamespaceOfTheContainer() {
        expectInvalid(field: "hostname") { $0.linux?.namespaces?.removeAll { $0.type == "uts" } }
        // A joined one is the container's too (the spec allows it; runc and crun accept it).
        expectValid { spec in
            let joined = spec.linux?.namespaces?.map { $0.type == "uts" ? Namespace(type: "uts", path: "/proc/1/ns/uts") : $0 }
            spec.linux?.namespaces = joined
        }
        expectValid { $0.linux?.namespaces?.removeAll { $0.type == "uts" }; $0.hostname = nil }
    }

    @Test func domainnameNeedsNewUTSNamespace() {
        expectInvalid(field: "domainname") {
            $0.hostname = nil
            $0.domainname = "example.org"
            $0.linux?.namespaces?.removeAll { $0.type == "uts" }
        }
    }

    @Test func hookPathMustBeAbsolute() {
        expectInvalid(field: "hooks.createRuntime[1].path") {
            var hooks = Hooks()
            hooks.createRuntime = [Hook(path: "/bin/true"), Hook(path: "true")]
            $0.hooks = hooks
        }
    }

    @Test func hookTimeoutPositive() {
        expectInvalid(field: "hooks.poststop[0].timeout") {
            var hooks = Hooks()
            hooks.poststop = [Hook(path: "/bin/true", timeout: 0)]
            $0.hooks = hooks
        }
    }

    @Test func errorDescriptionFormat() {
        var spec = goodSpec()
        spec.process?.cwd = "tmp"
        do { try spec.validate(forCreate: true) } catch {
            #expect(error.description == "config.json: process.cwd: expected an absolute path, got \"tmp\"")
        }
    }
}

@Suite struct ProcessValidationTests {
    @Test func argsNonEmpty() {
        expectInvalid(field: "process.args") { $0.process?.args = [] }
        expectInvalid(field: "process.args") { $0.process?.args = nil }
        expectInvalid(field: "process.args[0]") { $0.process?.args = [""] }
    }

    @Test func cwdAbsolute() {
        expectInvalid(field: "process.cwd") { $0.process?.cwd = "home" }
        expectInvalid(field: "process.cwd") { $0.process?.cwd = "" }
    }

    @Test func envEntriesHaveNameAndEquals() {
        expectInvalid(field: "process.env[2]") { $0.process?.env?.append("NOEQUALS") }
        expectInvalid(field: "process.env[2]") { $0.process?.env?.append("=value") }
        expectValid { $0.process?.env?.append("EMPTY=") }
    }

    @Test func umaskRange() {
        expectInvalid(field: "process.user.umask") { $0.process?.user.umask = 0o1000 }
        expectValid { $0.process?.user.umask = 0o022 }
    }

    @Test func oomScoreAdjRange() {
        expectInvalid(field: "process.oomScoreAdj") { $0.process?.oomScoreAdj = 1001 }
    }

    @Test func rlimitTypeKnown() {
        expectInvalid(field: "process.rlimits[1].type") {
            $0.process?.rlimits?.append(Rlimit(type: "RLIMIT_BOGUS", hard: 1, soft: 1))
        }
    }

    @Test func rlimitNoDuplicates() {
        expectInvalid(field: "process.rlimits[1].type") {
            $0.process?.rlimits?.append(Rlimit(type: "RLIMIT_NOFILE", hard: 10, soft: 10))
        }
    }

    @Test func rlimitSoftNotAboveHard() {
        expectInvalid(field: "process.rlimits[0].soft") {
            $0.process?.rlimits = [Rlimit(type: "RLIMIT_NOFILE", hard: 10, soft: 11)]
        }
    }

    @Test func ioPriorityClass() {
        expectInvalid(field: "process.ioPriority.class") {
            $0.process?.ioPriority = IOPriority(class: "IOPRIO_CLASS_FAST", priority: 0)
        }
        expectInvalid(field: "process.ioPriority.priority") {
            $0.process?.ioPriority = IOPriority(class: "IOPRIO_CLASS_BE", priority: 8)
        }
    }

    @Test func schedulerPolicy() {
        expectInvalid(field: "process.scheduler.policy") {
            $0.process?.scheduler = Scheduler(policy: "SCHED_FAST")
        }
        expectInvalid(field: "process.scheduler.nice") {
            $0.process?.scheduler = Scheduler(policy: "SCHED_OTHER", nice: 20)
        }
    }
}

@Suite struct MountValidationTests {
    @Test func destinationNonEmpty() {
        expectInvalid(field: "mounts[2].destination") { $0.mounts?[2].destination = "" }
    }

    @Test func relativeDestinationAllowed() {
        expectValid { $0.mounts?.append(Mount(destination: "data", type: "tmpfs", source: "tmpfs")) }
    }

    @Test func bindNeedsSource() {
        expectInvalid(field: "mounts[7].source") {
            $0.mounts?.append(Mount(destination: "/data", type: "bind", options: ["rbind"]))
        }
        expectInvalid(field: "mounts[7].source") {
            $0.mounts?.append(Mount(destination: "/data", options: ["bind", "ro"]))
        }
        expectValid { $0.mounts?.append(Mount(destination: "/data", source: "/srv", options: ["rbind"])) }
    }

    @Test func nonBindNeedsType() {
        expectInvalid(field: "mounts[7].type") { $0.mounts?.append(Mount(destination: "/data", source: "/dev/sda1")) }
    }

    @Test func blockFilesystemNeedsSource() {
        expectInvalid(field: "mounts[7].source") { $0.mounts?.append(Mount(destination: "/data", type: "ext4")) }
        expectValid { $0.mounts?.append(Mount(destination: "/tmp", type: "tmpfs")) }
    }

    @Test func idmappedMountNeedsBothMappings() {
        expectInvalid(field: "mounts[7].gidMappings") {
            var m = Mount(destination: "/data", source: "/srv", options: ["rbind"])
            m.uidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
            $0.mounts?.append(m)
        }
        expectInvalid(field: "mounts[7].uidMappings[0].size") {
            var m = Mount(destination: "/data", source: "/srv", options: ["rbind"])
            m.uidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 0)]
            m.gidMappings = [IDMapping(containerID: 0, hostID: 1000, size: 1)]
            $0.mounts?.append(m)
        }
    }
}
