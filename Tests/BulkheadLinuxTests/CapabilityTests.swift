// The capability table agrees with the kernel's numbering, both ways.

import FoundationEssentials
import Testing
@testable import BulkheadLinux

@Suite struct CapabilityTests {
    @Test func tableIsDenseAndOrdered() {
        #expect(Capability.all.count == 41)
        for (i, entry) in Capability.all.enumerated() {
            #expect(entry.number == Int32(i))
            #expect(entry.name.hasPrefix("CAP_"))
        }
        #expect(Set(Capability.all.map(\.name)).count == Capability.all.count)
    }

    @Test func lookups() {
        #expect(Capability.number(named: "CAP_CHOWN") == 0)
        #expect(Capability.number(named: "CAP_NET_BIND_SERVICE") == 10)
        #expect(Capability.number(named: "CAP_SYS_ADMIN") == 21)
        #expect(Capability.number(named: "CAP_CHECKPOINT_RESTORE") == 40)
        #expect(Capability.number(named: "cap_chown") == nil)
        #expect(Capability.number(named: "CHOWN") == nil)
        #expect(Capability.name(of: 29) == "CAP_AUDIT_WRITE")
        #expect(Capability.name(of: 41) == nil)
        #expect(Capability.name(of: -1) == nil)
        for (name, number) in Capability.all {
            #expect(Capability.name(of: number) == name)
            #expect(Capability.number(named: name) == number)
        }
    }

    /// Cross-checks against the installed kernel header, when there is one (linux-libc-dev).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/include/linux/capability.h")))
    func matchesKernelHeader() throws {
        let header = String(decoding: try Data(contentsOf: URL(fileURLWithPath: "/usr/include/linux/capability.h")), as: UTF8.self)
        var fromHeader: [String: Int32] = [:]
        for line in header.split(separator: "\n") where line.hasPrefix("#define CAP_") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count >= 3, let n = Int32(words[2]) { fromHeader[String(words[1])] = n }
        }
        #expect(fromHeader.count >= 41)
        for (name, number) in Capability.all {
            #expect(fromHeader[name] == number, "\(name)")
        }
    }
}
