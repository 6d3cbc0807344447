// Validation of linux.resources, one rule per test, asserting the field named.

import Testing
@testable import BulkheadOCI

@Suite struct ResourcesValidationTests {
    @Test func memoryValues() {
        expectInvalid(field: "linux.resources.memory.limit") { $0.linux?.resources?.memory = .init(limit: -2) }
        expectInvalid(field: "linux.resources.memory.reservation") { $0.linux?.resources?.memory = .init(reservation: -5) }
        expectValid { $0.linux?.resources?.memory = .init(limit: -1, reservation: 0, swap: -1) }
    }

    @Test func swapNotBelowLimit() {
        expectInvalid(field: "linux.resources.memory.swap") {
            $0.linux?.resources?.memory = .init(limit: 1 << 30, swap: 1 << 20)
        }
        expectValid { $0.linux?.resources?.memory = .init(limit: 1 << 30, swap: 2 << 30) }
        expectValid { $0.linux?.resources?.memory = .init(limit: 1 << 30, swap: -1) }
    }

    @Test func swappinessRange() {
        expectInvalid(field: "linux.resources.memory.swappiness") {
            var m = Resources.Memory()
            m.swappiness = 101
            $0.linux?.resources?.memory = m
        }
    }

    @Test func cpuPeriodWithQuota() {
        expectInvalid(field: "linux.resources.cpu.period") { $0.linux?.resources?.cpu = .init(quota: 50000, period: 0) }
        expectValid { $0.linux?.resources?.cpu = .init(quota: 50000, period: 100000) }
    }

    @Test func cpusetSyntax() {
        for bad in ["0-", "a", "3-1", "0,,1", "-1", " 0"] {
            expectInvalid(field: "linux.resources.cpu.cpus") { $0.linux?.resources?.cpu = .init(cpus: bad) }
        }
        expectInvalid(field: "linux.resources.cpu.mems") { $0.linux?.resources?.cpu = .init(mems: "0-1,x") }
        expectValid { $0.linux?.resources?.cpu = .init(cpus: "0-3,5", mems: "0") }
    }

    @Test func cpuIdle() {
        expectInvalid(field: "linux.resources.cpu.idle") {
            var c = Resources.CPU()
            c.idle = 2
            $0.linux?.resources?.cpu = c
        }
    }

    @Test func pidsLimit() {
        expectInvalid(field: "linux.resources.pids.limit") { $0.linux?.resources?.pids = .init(limit: -2) }
        expectValid { $0.linux?.resources?.pids = .init(limit: -1) }
    }

    @Test func hugepagePageSize() {
        for bad in ["2M", "2mb", "MB", "0MB", "2 MB"] {
            expectInvalid(field: "linux.resources.hugepageLimits[0].pageSize") {
                $0.linux?.resources?.hugepageLimits = [.init(pageSize: bad, limit: 1)]
            }
        }
        expectValid {
            $0.linux?.resources?.hugepageLimits = [.init(pageSize: "2MB", limit: 1), .init(pageSize: "1GB", limit: 0), .init(pageSize: "64KB", limit: 0)]
        }
    }

    @Test func blockIOWeight() {
        expectInvalid(field: "linux.resources.blockIO.weight") {
            var b = Resources.BlockIO()
            b.weight = 5
            $0.linux?.resources?.blockIO = b
        }
        expectInvalid(field: "linux.resources.blockIO.weightDevice[0].weight") {
            var b = Resources.BlockIO()
            b.weightDevice = [.init(major: 8, minor: 0, weight: 1001)]
            $0.linux?.resources?.blockIO = b
        }
    }

    @Test func deviceRules() {
        expectInvalid(field: "linux.resources.devices[1].access") {
            $0.linux?.resources?.devices?.append(.init(allow: true, type: "c", major: 1, minor: 3, access: "rwx"))
        }
        expectInvalid(field: "linux.resources.devices[1].type") {
            $0.linux?.resources?.devices?.append(.init(allow: true, type: "p", access: "r"))
        }
    }

    @Test func unifiedKeys() {
        expectInvalid(field: #"linux.resources.unified["../memory.max"]"#) {
            $0.linux?.resources?.unified = ["../memory.max": "1"]
        }
        expectValid { $0.linux?.resources?.unified = ["memory.high": "1G"] }
    }
}
