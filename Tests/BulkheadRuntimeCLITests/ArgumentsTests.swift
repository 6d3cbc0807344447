import Testing
@testable import BulkheadRuntimeCLI

@Suite struct ArgumentsTests {
    let flags: [Arguments.Flag] = [.init("bundle", "b", value: true), .init("detach", "d"), .init("pid-file", value: true)]

    @Test func flagsInEveryStyleRuncAccepts() throws {
        let a = try Arguments.parse(["--bundle=/b", "-d", "-pid-file", "/p", "id"], flags: flags)
        #expect(a["bundle"] == "/b")
        #expect(a["pid-file"] == "/p")
        #expect(a.has("detach"))
        #expect(a.positional == ["id"])
        let short = try Arguments.parse(["-b", "/x", "id"], flags: flags)
        #expect(short["bundle"] == "/x")
    }

    @Test func flagsStopAtTheFirstPositionalArgument() throws {
        // `kill ID -9`-style trailing words and global flags before a subcommand stay unparsed.
        let a = try Arguments.parse(["--root", "/r", "create", "--bundle", "/b", "id"],
                                    flags: RuntimeCommandLine.globalFlags)
        #expect(a["root"] == "/r")
        #expect(a.positional == ["create", "--bundle", "/b", "id"])
    }

    @Test func booleanFlagSetToFalse() throws {
        let a = try Arguments.parse(["--detach", "--detach=false", "id"], flags: flags)
        #expect(!a.has("detach"))
    }

    @Test func unknownFlagAndMissingValueAreErrors() {
        #expect(throws: Arguments.UsageError.self) { try Arguments.parse(["--bogus", "id"], flags: flags) }
        do {
            _ = try Arguments.parse(["--bundle"], flags: flags)
            Issue.record("a flag without its value was accepted")
        } catch {
            #expect("\(error)".contains("-bundle"))
        }
    }

    @Test func doubleDashEndsFlags() throws {
        let a = try Arguments.parse(["--", "-d"], flags: flags, stopAtPositional: false)
        #expect(a.positional == ["-d"])
        #expect(!a.has("detach"))
    }

    @Test func tableColumnsAreAligned() {
        let text = RuntimeCommandLine.table([["ID", "PID"], ["long-name", "1"]])
        #expect(text == "ID          PID\nlong-name   1\n")
    }

    @Test func featuresListWhatTheRuntimeDoes() {
        let f = RuntimeCommandLine.features()
        #expect(f.linux?.namespaces?.contains("user") == true)
        #expect(f.linux?.namespaces?.count == 8)
        #expect(f.linux?.capabilities?.contains("CAP_SYS_ADMIN") == true)
        #expect(f.linux?.cgroup?.v1 == true && f.linux?.cgroup?.v2 == true && f.linux?.cgroup?.systemd == false)
        #expect(f.mountOptions?.contains("rbind") == true)
    }
}
