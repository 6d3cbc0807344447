// Spec.defaultSpec equals what runc 1.1.5 writes (fixtures captured with `runc spec` and
// `runc spec --rootless` as root), and runc's configs survive a decode/encode/decode round trip.

import FoundationEssentials
import Testing
@testable import BulkheadOCI

@Suite struct DefaultSpecTests {
    /// Our default with runc's version string, so that == compares everything else.
    private func ours(rootless: Bool) -> Spec {
        var spec = Spec.defaultSpec(rootless: rootless)
        spec.ociVersion = "1.0.2-dev"
        return spec
    }

    @Test func equalsRuncSpec() throws {
        let runc = try Fixture.spec("runc-spec.json")
        #expect(ours(rootless: false) == runc)
        // Field by field too, so a failure says where they differ.
        #expect(ours(rootless: false).process == runc.process)
        #expect(ours(rootless: false).mounts == runc.mounts)
        #expect(ours(rootless: false).linux == runc.linux)
    }

    @Test func equalsRuncSpecRootless() throws {
        let runc = try Fixture.spec("runc-spec-rootless.json")
        #expect(ours(rootless: true) == runc)
        #expect(ours(rootless: true).mounts == runc.mounts)
        #expect(ours(rootless: true).linux == runc.linux)
    }

    @Test func encodedDefaultDecodesToRuncSpec() throws {
        let encoded = try JSONEncoder().encode(ours(rootless: false))
        #expect(try Spec.decode([UInt8](encoded)) == Fixture.spec("runc-spec.json"))
    }

    @Test func defaultCarriesArgsAndHostIDs() {
        let spec = Spec.defaultSpec(args: ["/bin/echo", "hi"], rootless: true, hostUID: 1000, hostGID: 1001)
        #expect(spec.process?.args == ["/bin/echo", "hi"])
        #expect(spec.linux?.uidMappings == [IDMapping(containerID: 0, hostID: 1000, size: 1)])
        #expect(spec.linux?.gidMappings == [IDMapping(containerID: 0, hostID: 1001, size: 1)])
        #expect(Spec.defaultSpec().ociVersion == Spec.version)
    }

    @Test(arguments: ["runc-spec.json", "runc-spec-rootless.json"])
    func runcConfigRoundTrips(name: String) throws {
        let decoded = try Fixture.spec(name)
        let again = try Spec.decode([UInt8](JSONEncoder().encode(decoded)))
        #expect(again == decoded)
    }
}
