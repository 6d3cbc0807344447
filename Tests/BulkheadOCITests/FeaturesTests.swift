// The Features document decodes what runc 1.1.5's `runc features` prints and round-trips.

import FoundationEssentials
import Testing
@testable import BulkheadOCI

@Suite struct FeaturesTests {
    @Test func decodesRuncFeatures() throws {
        let features = try JSONDecoder().decode(Features.self, from: Data(Fixture.bytes("runc-features.json")))
        #expect(features.ociVersionMin == "1.0.0")
        #expect(features.hooks?.contains("createRuntime") == true)
        #expect(features.mountOptions?.contains("rbind") == true)
        #expect(features.linux?.namespaces?.contains("cgroup") == true)
        #expect(features.linux?.capabilities?.contains("CAP_SYS_ADMIN") == true)
        #expect(features.linux?.cgroup?.v1 == true)
        #expect(features.linux?.seccomp?.actions?.contains("SCMP_ACT_NOTIFY") == true)
        #expect(features.linux?.seccomp?.operators?.count == 7)
        #expect(features.annotations?["org.opencontainers.runc.version"] == "1.1.5+ds1")
        let again = try JSONDecoder().decode(Features.self, from: JSONEncoder().encode(features))
        #expect(again == features)
    }

    @Test func runtimeSpec12FieldsRoundTrip() throws {
        let features = Features(
            hooks: ["prestart"],
            linux: .init(namespaces: ["time"], cgroup: .init(v2: true, systemd: true, systemdUser: false, rdma: true),
                         seccomp: .init(enabled: true, knownFlags: ["SECCOMP_FILTER_FLAG_LOG"], supportedFlags: []),
                         apparmor: .init(enabled: false), selinux: .init(enabled: false), intelRdt: .init(enabled: true),
                         mountExtensions: .init(idmap: .init(enabled: true))),
            potentiallyUnsafeConfigAnnotations: ["bulkhead.isolation"])
        let json = String(decoding: try JSONEncoder().encode(features), as: UTF8.self)
        #expect(json.contains(#""mountExtensions":{"idmap":{"enabled":true}}"#))
        #expect(json.contains(#""ociVersionMax":"1.2.0""#))
        #expect(try JSONDecoder().decode(Features.self, from: Data(json.utf8)) == features)
    }
}
