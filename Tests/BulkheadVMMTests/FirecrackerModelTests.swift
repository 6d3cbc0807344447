import Glibc
import Testing
@testable import BulkheadVMM

@Suite("HTTP/1.1 request parsing")
struct HTTPRequestTests {
    func parse(_ text: String) -> HTTPRequest.ParseResult { HTTPRequest.parse(Array(text.utf8)) }

    @Test func requestWithBodyAndKeepAlive() {
        let text = "PUT /drives/rootfs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n\r\n"
        guard case let .request(r, consumed) = parse(text) else { Issue.record("not parsed"); return }
        #expect(r.method == "PUT" && r.path == "/drives/rootfs" && r.body == Array("{}".utf8) && r.keepAlive)
        // The next request starts right after the body.
        guard case let .request(next, _) = HTTPRequest.parse(Array(Array(text.utf8)[consumed...])) else {
            Issue.record("second request not parsed"); return
        }
        #expect(next.method == "GET" && next.path == "/" && next.body.isEmpty)
    }

    @Test func partialRequestsWaitForMoreBytes() {
        #expect(parse("GET / HTTP/1.1\r\nHost") == .incomplete)
        #expect(parse("PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\"") == .incomplete)
    }

    @Test func expectContinueIsReportedUntilTheBodyArrives() {
        let head = "PUT /drives/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        #expect(parse(head) == .expectsContinue)
        guard case .request = parse(head + "{}") else { Issue.record("not parsed"); return }
    }

    @Test func connectionCloseAndHTTP10() {
        guard case let .request(r, _) = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
              case let .request(r10, _) = parse("GET / HTTP/1.0\r\n\r\n") else { Issue.record("not parsed"); return }
        #expect(!r.keepAlive && !r10.keepAlive)
    }

    @Test(arguments: [
        "garbage\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\n\r\n",
        "PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "PUT / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ])
    func malformedRequestsAreInvalid(_ text: String) {
        guard case .invalid = parse(text) else { Issue.record("accepted: \(text.debugDescription)"); return }
    }

    @Test func endlessHeadersAreCutOff() {
        let text = "GET / HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 2000)
        guard case .invalid = parse(text) else { Issue.record("not refused"); return }
    }

    @Test func responsesCarryJSONAndLength() {
        let bytes = HTTPResponse.fault("bad `x`").serialized(keepAlive: true)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.hasSuffix("\r\n\r\n{\"fault_message\":\"bad `x`\"}"))
        #expect(text.contains("Content-Length: 27\r\n"))
        #expect(String(decoding: HTTPResponse.noContent.serialized(keepAlive: true), as: UTF8.self).hasPrefix("HTTP/1.1 204 No Content\r\n"))
    }
}

@Suite("Firecracker configuration and API model")
struct FirecrackerModelTests {
    func configFile(_ text: String) throws(FirecrackerError) -> FirecrackerConfiguration {
        try FirecrackerConfiguration.configFile(Array(text.utf8))
    }

    @Test func configFileWithFirecrackersKeys() throws {
        let config = try configFile("""
            {"boot-source": {"kernel_image_path": "/k", "boot_args": "console=ttyS0"},
             "drives": [{"drive_id": "data", "path_on_host": "/d", "is_root_device": false},
                        {"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true, "is_read_only": true}],
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 256, "smt": false},
             "logger": {"log_path": "/l", "level": "Debug"}, "metrics": {"metrics_path": "/m"}}
            """)
        #expect(config.bootSource?.kernelImagePath == "/k")
        #expect(config.drives.map(\.driveID) == ["rootfs", "data"])  // the root device first: /dev/vda
        #expect(config.machineConfig.memSizeMib == 256)
        #expect(config.kernelCommandLine == "console=ttyS0 root=/dev/vda ro")
        #expect(config.metricsPath == "/m" && config.logger?.level == "Debug")
        // GET /vm/config prints the config-file format back; it parses to the same configuration.
        #expect(try configFile(config.json.text) == config)
    }

    /// Without boot_args the guest gets Firecracker's defaults, minus i8042.nopnp: on our
    /// hardware-reduced ACPI platform the i8042 driver finds its IRQ only through PNP.
    @Test func defaultCommandLineLetsTheI8042FindItsIRQThroughPNP() throws {
        let config = try configFile(#"{"boot-source": {"kernel_image_path": "/k"}}"#)
        #expect(config.kernelCommandLine == FirecrackerConfiguration.defaultBootArgs)
        #expect(config.kernelCommandLine.contains("reboot=k") && config.kernelCommandLine.contains("i8042.dumbkbd"))
        #expect(!config.kernelCommandLine.contains("i8042.nopnp"))
    }

    @Test(arguments: [
        (#"{"boot-source": {"boot_args": "x"}}"#, "missing field `kernel_image_path`"),
        (#"{"machine-config": {"vcpu_count": 1, "mem_size_mib": "big"}}"#, "`mem_size_mib` must be a non-negative integer"),
        (#"{"machine-config": {"vcpu_count": 33, "mem_size_mib": 128}}"#, "`vcpu_count` 33, allowed 1-32"),
        (#"{"machine-config": {"vcpu_count": 0, "mem_size_mib": 128}}"#, "`vcpu_count` 0, allowed 1-32"),
        (#"{"machine-config": {"vcpu_count": 3, "mem_size_mib": 128, "smt": true}}"#, "an even number when SMT is enabled"),
        (#"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 4096}}"#, "`mem_size_mib` 4096"),
        (#"{"drives": [{"drive_id": "a", "path_on_host": "/x"}]}"#, "missing field `is_root_device`"),
        (#"{"drives": [{"drive_id": "a b", "path_on_host": "/x", "is_root_device": false}]}"#, "`drive_id`"),
        (#"{"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": true},{"drive_id": "b", "path_on_host": "/y", "is_root_device": true}]}"#,
         "A root block device already exists"),
        (#"{"boot-source": {"kernel_image_path": "/k"}, "frobnicate": 1}"#, "unknown field `frobnicate`"),
        (#"{"balloon": {"amount_mib": 1}}"#, "`balloon`"),
        (#"{"logger": {"level": "Loud"}}"#, "`level`"),
        (#"[1, 2]"#, "must be a JSON object"),
        (#"{"#, "not valid JSON (expected a string key or '}' in object at line 1, column 2)"),
        (#"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 1.5}}"#, "`mem_size_mib` must be a non-negative integer, not 1.5"),
        (#"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "smt": 0}}"#, "`smt` must be a boolean, not a number"),
    ])
    func badConfigFilesNameTheField(_ text: String, _ expected: String) {
        do {
            _ = try configFile(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.faultMessage.contains(expected), "\(error.faultMessage)")
        }
    }

    @Test func networkVsockAndEntropyBecomeMicroVMDevices() throws {
        let config = try configFile("""
            {"boot-source": {"kernel_image_path": "/nonexistent"},
             "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02"}],
             "vsock": {"guest_cid": 3, "uds_path": "/v.sock"}, "entropy": {}}
            """)
        #expect(config.entropy == .object([]))
        #expect(config.networkInterfaceConfigurations == [NetworkInterfaceConfiguration(id: "eth0", tapName: "tap0", mac: [6, 0, 0xac, 0x10, 0, 2])])
        #expect(config.vsockConfiguration == VsockConfiguration(guestCID: 3, udsPath: "/v.sock"))
        #expect(config.unsupportedDevices.isEmpty)
    }

    @Test func badMACAndReservedCIDAreRefused() {
        for (text, expected) in [
            (#"{"network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00"}]}"#, "guest_mac"),
            (#"{"vsock": {"guest_cid": 2, "uds_path": "/v.sock"}}"#, "guest_cid"),
        ] {
            do {
                _ = try configFile(text)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.faultMessage.contains(expected), "\(error.faultMessage)")
            }
        }
    }

    func call(_ vmm: FirecrackerVMM, _ method: String, _ path: String, _ body: String = "") -> HTTPResponse {
        vmm.handle(HTTPRequest(method: method, path: path, headers: [], body: Array(body.utf8), keepAlive: true))
    }

    @Test func apiRoutesWithoutAVM() {
        let vmm = FirecrackerVMM(instanceID: "model", logger: VMMLogger(instanceID: "model", level: .off))
        #expect(call(vmm, "GET", "/").body == #"{"app_name":"bulkhead-vmm","id":"model","state":"Not started","vmm_version":"0.1.0"}"#)
        #expect(call(vmm, "PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 64, "track_dirty_pages": true}"#).status == 204)
        #expect(call(vmm, "GET", "/machine-config").body == #"{"mem_size_mib":64,"smt":false,"track_dirty_pages":true,"vcpu_count":1}"#)
        #expect(call(vmm, "PATCH", "/machine-config", #"{"mem_size_mib": 96}"#).status == 204)
        #expect(call(vmm, "GET", "/machine-config").body == #"{"mem_size_mib":96,"smt":false,"track_dirty_pages":true,"vcpu_count":1}"#)
        #expect(call(vmm, "PATCH", "/machine-config", #"{"mem_size_mib": 96, "colour": 1}"#).body?.contains("unknown field `colour`") == true)
        #expect(call(vmm, "PUT", "/drives/rootfs", #"{"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true}"#).status == 204)
        #expect(call(vmm, "PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0"}"#).status == 204)
        #expect(call(vmm, "PUT", "/entropy", "{}").status == 204)
        let bad = call(vmm, "PUT", "/drives/other", #"{"drive_id": "rootfs", "path_on_host": "/r", "is_root_device": true}"#)
        #expect(bad.status == 400 && bad.body?.contains("does not match") == true)
        #expect(call(vmm, "GET", "/nope").body == #"{"fault_message":"Invalid request method and/or path: GET /nope."}"#)
        #expect(call(vmm, "DELETE", "/").status == 400)
        #expect(call(vmm, "PUT", "/boot-source").body?.contains("Empty PUT request") == true)
        #expect(call(vmm, "PUT", "/actions", #"{"action_type": "Explode"}"#).body?.contains("`action_type`") == true)
        #expect(call(vmm, "PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).body?.contains("before starting") == true)
        #expect(call(vmm, "PATCH", "/vm", #"{"state": "Paused"}"#).body?.contains("before starting") == true)
        #expect(call(vmm, "PUT", "/actions", #"{"action_type": "FlushMetrics"}"#).body?.contains("not initialized") == true)
        // Sections kept as sent are echoed with their fields in the order they came.
        #expect(call(vmm, "GET", "/vm/config").body?.contains(#""network-interfaces":[{"iface_id":"eth0","host_dev_name":"tap0"}]"#) == true)
    }

    @Test func flushMetricsAppendsALine() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let vmm = FirecrackerVMM(instanceID: "m", logger: VMMLogger(instanceID: "m", level: .off))
        #expect(call(vmm, "PUT", "/metrics", #"{"metrics_path": "\#(directory)/metrics"}"#).status == 204)
        #expect(call(vmm, "PUT", "/actions", #"{"action_type": "FlushMetrics"}"#).status == 204)
        let text = String(decoding: try readFile(directory + "/metrics"), as: UTF8.self)
        #expect(text.hasPrefix("{\"api_server\":{\"requests\":2}") && text.hasSuffix("}\n"))
    }
}

@Suite("bulkhead-vmm command line")
struct FirecrackerCommandLineTests {
    @Test func flags() throws {
        let o = try FirecrackerCommandLine.parse(["--api-sock", "/s", "--config-file=/c", "--boot-timer", "--id", "vm1",
                                                  "--level", "Debug", "--log-path", "/l"])
        #expect(o.apiSocket == "/s" && o.configFile == "/c" && o.bootTimer && o.id == "vm1" && o.level == .debug && o.logPath == "/l")
        #expect(try FirecrackerCommandLine.parse(["--no-api", "--config-file", "/c"]).noAPI)
        #expect(try FirecrackerCommandLine.parse(["--version"]).showVersion)
    }

    @Test(arguments: [["--no-api"], ["--level", "Loud"], ["--api-sock"], ["--frob"], ["--id", ""]])
    func badFlagsAreRefused(_ arguments: [String]) {
        #expect(throws: FirecrackerCommandLine.UsageError.self) { try FirecrackerCommandLine.parse(arguments) }
    }
}
