// linux.seccomp in the container plan, and the message a seccomp agent receives.

import BulkheadLinux
import BulkheadOCI
import FoundationEssentials
import Testing
@testable import BulkheadContainer

@Suite struct SeccompPlanTests {
    func seccomp(_ json: String) throws -> Seccomp {
        try JSONDecoder().decode(Seccomp.self, from: Data(json.utf8))
    }

    @Test func planCarriesTheCompiledFilter() throws {
        let bundle = try TemporaryBundle()
        let config = try seccomp(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#)
        let p = try plan(spec { $0.linux?.seccomp = config }, bundle: bundle)
        #expect(p.seccomp == (try SeccompFilter(config)))
        let none = try plan(spec(), bundle: bundle)
        #expect(none.seccomp == nil)
    }

    @Test func planErrorNamesTheField() throws {
        let bundle = try TemporaryBundle()
        let config = try seccomp(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "nosuchcall"], "action": "SCMP_ACT_ERRNO"}]}"#)
        #expect(throws: RuntimeError.self) { try plan(spec { $0.linux?.seccomp = config }, bundle: bundle) }
        do {
            _ = try plan(spec { $0.linux?.seccomp = config }, bundle: bundle)
        } catch {
            #expect(error.description == #"config.json: linux.seccomp.syscalls[0].names: unknown syscall "nosuchcall""#)
        }
    }

    @Test func agentMessageIsSplitAroundThePid() throws {
        let pieces = SeccompNotifyState.payload(id: "c1", bundle: "/b", annotations: ["k": "v"], metadata: "m")
        #expect(pieces.count == 3)
        let json = pieces.joined(separator: "4242")
        struct Message: Decodable {
            struct State: Decodable { var ociVersion, id, status, bundle: String; var pid: Int; var annotations: [String: String] }
            var ociVersion: String
            var fds: [String]
            var pid: Int
            var metadata: String
            var state: State
        }
        let m = try JSONDecoder().decode(Message.self, from: Data(json.utf8))
        #expect(m.fds == ["seccompFd"])
        #expect(m.pid == 4242 && m.state.pid == 4242)
        #expect(m.metadata == "m")
        #expect(m.state.id == "c1" && m.state.bundle == "/b" && m.state.status == "created" && m.state.annotations == ["k": "v"])
        #expect(m.ociVersion == Spec.version)
    }
}
