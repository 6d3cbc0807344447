// `features` reports the seccomp support this build really has.

import Testing
@testable import BulkheadRuntimeCLI

@Suite struct FeaturesSeccompTests {
    @Test func seccompSection() throws {
        let seccomp = try #require(RuntimeCommandLine.features().linux?.seccomp)
        #expect(seccomp.enabled == true)
        #expect(seccomp.operators?.count == 7)
        #expect(seccomp.actions?.contains("SCMP_ACT_ERRNO") == true)
        #expect(seccomp.archs?.contains("SCMP_ARCH_X86_64") == true)
        #expect(seccomp.knownFlags == ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG",
                                       "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
        #expect(Set(seccomp.supportedFlags ?? []).isSubset(of: seccomp.knownFlags ?? []))
    }
}
