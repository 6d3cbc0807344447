import Glibc

/// Firecracker's command line for `bulkhead-vmm`: parsing (testable without a process) and the
/// program itself (`main`), so the executable is one line.
public struct FirecrackerCommandLine: Equatable, Sendable {
    public var apiSocket = "/run/firecracker.socket"
    public var configFile: String?
    public var noAPI = false
    public var bootTimer = false
    public var id = "anonymous-instance"
    public var level: VMMLogger.Level = .info
    public var logPath: String?
    public var showVersion = false
    public var showHelp = false
    /// Seccomp filters per thread after setup (ThreadConfinement): kill by default.
    public var seccomp = SeccompPolicy.kill

    public static let usage = """
        bulkhead-vmm: a Firecracker-compatible microVM monitor on /dev/kvm.

        Usage: bulkhead-vmm [--api-sock PATH] [--config-file PATH] [--no-api] [--boot-timer]
                            [--id ID] [--level LEVEL] [--log-path PATH] [--no-seccomp] [--seccomp-log]
                            [--version] [--help]
               bulkhead-vmm fetch-kernel --dir CACHE [--module NAME]...   (see fetch-kernel --help)

          --api-sock PATH     serve Firecracker's REST API on this Unix socket (default /run/firecracker.socket)
          --config-file PATH  configure the microVM from a Firecracker JSON config file and start it
          --no-api            no API socket; needs --config-file (the VM boots at once)
          --boot-timer        log the time from InstanceStart until the guest writes 123 to MMIO 0xc0000000
          --id ID             the instance ID shown by GET / (default anonymous-instance)
          --level LEVEL       log level: Off, Error, Warning, Info, Debug, Trace (default Info)
          --log-path PATH     append the log to this file instead of stderr
          --no-seccomp        do not confine the API, VMM and vCPU threads with seccomp (debugging)
          --seccomp-log       log (kernel audit) instead of killing on a syscall outside a thread's filter
          --version           print the version
          --help              print this text

        The guest's serial console is on stdout. The process exits with status 0 when the guest
        reboots or shuts down, as Firecracker does.
        """

    public struct UsageError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Parses arguments (without the program name). Flags take their value as the next argument
    /// or after "=", as Firecracker's parser does.
    public static func parse(_ arguments: [String]) throws(UsageError) -> FirecrackerCommandLine {
        var options = FirecrackerCommandLine()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            var name = argument, inlineValue: String?
            if argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") {
                name = String(argument[..<eq])
                inlineValue = String(argument[argument.index(after: eq)...])
            }
            func value() throws(UsageError) -> String {
                if let inlineValue { return inlineValue }
                guard let v = rest.popFirst() else { throw UsageError(description: "\(name) needs a value") }
                return v
            }
            switch name {
            case "--api-sock": options.apiSocket = try value()
            case "--config-file": options.configFile = try value()
            case "--no-api": options.noAPI = true
            case "--boot-timer": options.bootTimer = true
            case "--id":
                options.id = try value()
                guard (1...64).contains(options.id.count) else {
                    throw UsageError(description: "--id must be 1 to 64 characters")
                }
            case "--level":
                let text = try value()
                guard let level = VMMLogger.Level(name: text) else {
                    throw UsageError(description: "--level \(text): one of Off, Error, Warning, Info, Debug, Trace")
                }
                options.level = level
            case "--log-path": options.logPath = try value()
            case "--no-seccomp": options.seccomp = .off
            case "--seccomp-log": options.seccomp = .log
            case "--version": options.showVersion = true
            case "--help", "-h": options.showHelp = true
            default: throw UsageError(description: "unknown argument \(argument) (see --help)")
            }
        }
        if options.noAPI && options.configFile == nil && !options.showHelp && !options.showVersion {
            throw UsageError(description: "--no-api needs --config-file: without the API there is no other way to configure the microVM")
        }
        return options
    }

    /// The program: returns only on errors (the exit status); a guest that stops ends the process.
    public static func main(_ arguments: [String]) -> Int32 {
        if arguments.first == "fetch-kernel" { return FetchKernelCommand.main(Array(arguments.dropFirst())) }
        let options: FirecrackerCommandLine
        do {
            options = try parse(arguments)
        } catch {
            printError("\(error)")
            return 2
        }
        if options.showHelp { print(usage); return 0 }
        if options.showVersion { print("\(FirecrackerVMM.appName) v\(FirecrackerVMM.version)"); return 0 }

        // A closed stdout or log pipe must be a failed write, not a killed VMM.
        signal(SIGPIPE, SIG_IGN)
        let logger = VMMLogger(instanceID: options.id, level: options.level)
        do {
            try logger.configure(path: options.logPath, level: nil)
        } catch {
            printError("\(error)")
            return 1
        }
        // The guest's console reads stdin: a terminal there goes raw for the VMM's lifetime.
        let terminal = ConsoleTerminal.enterRawMode(fd: 0)
        // Errors go to the log, and to stderr as well when the log is a file. Every caller then
        // ends the process: the terminal gets its settings back first.
        func fail(_ message: String) {
            terminal?.restore()
            logger.error(message)
            if !logger.writesToStderr || logger.level < .error { printError(message) }
        }
        let vmm = FirecrackerVMM(instanceID: options.id, logger: logger, bootTimer: options.bootTimer)
        vmm.seccomp = options.seccomp
        let socketToRemove = options.noAPI ? nil : options.apiSocket
        vmm.onGuestExit = { exit in
            terminal?.restore()
            // exit() skips deinitializers: remove the socket here so the path can be used again.
            if let socketToRemove { unlink(socketToRemove) }
            // The vsock device's socket too (TAPs go away with the process's file descriptors).
            if let uds = vmm.configuration.vsockConfiguration?.udsPath { unlink(uds) }
            switch exit {
            case .reset, .shutdown:
                logger.info("Guest stopped (\(exit)); exiting with status 0.")
                Glibc.exit(0)
            default:
                logger.error("Guest failed: \(exit)")
                Glibc.exit(1)
            }
        }

        // Bind the socket before booting, so a client can connect as soon as the VM runs.
        var server: UnixSocketHTTPServer?
        if !options.noAPI {
            do {
                server = try UnixSocketHTTPServer(path: options.apiSocket)
            } catch {
                fail(error.faultMessage)
                return 1
            }
        }
        if let path = options.configFile {
            do {
                vmm.configuration = try FirecrackerConfiguration.configFile(
                    try FirecrackerVMM.readFile(path, what: "configuration file (--config-file)"))
                if let l = vmm.configuration.logger {
                    try logger.configure(path: l.logPath, level: l.level.flatMap(VMMLogger.Level.init(name:)))
                }
                // --no-api: this thread becomes the VMM thread (below).
                try vmm.start(supervise: server != nil)
            } catch {
                fail(error.faultMessage)
                return 1
            }
        }
        guard let server else {
            // --no-api: nothing to serve; wait for the guest's end, confined as the VMM thread.
            vmm.superviseGuest()
        }
        logger.info("API server listening on \(options.apiSocket)")
        // The API thread confines itself once the microVM runs: InstanceStart (from the config
        // file or a request) is the end of setup. Before, requests open files and /dev/kvm.
        var confined = false
        func confineOnceStarted() {
            guard !confined, vmm.currentState != .notStarted else { return }
            confined = true
            do {
                try ThreadConfinement.confineCurrentThread(.api, policy: options.seccomp)
            } catch {
                fail(error.faultMessage)
                Glibc.exit(1)
            }
        }
        confineOnceStarted()
        server.serve { request in
            let response = vmm.handle(request)
            confineOnceStarted()
            return response
        }
    }
}

/// One line on stderr (fd 2 directly: the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ message: String) {
    let bytes = Array("bulkhead-vmm: \(message)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
