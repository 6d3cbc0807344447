import BulkheadJSON

/// Firecracker's REST API over a FirecrackerVMM: the same paths, methods, JSON bodies, 204 on
/// success and 400 with {"fault_message": ...} on failure (parsed_request.rs in Firecracker).
extension FirecrackerVMM {
    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        apiRequests += 1
        do {
            let response = try route(request)
            if response.status >= 400 { logger.warning("\(request.method) \(request.path): \(response.body ?? "")") }
            return response
        } catch {
            logger.warning("\(request.method) \(request.path): \(error.faultMessage)")
            return .fault(error.faultMessage)
        }
    }

    private func route(_ request: HTTPRequest) throws(FirecrackerError) -> HTTPResponse {
        // "/drives/rootfs" -> ["drives", "rootfs"]; a trailing slash is ignored as Firecracker does.
        let tokens = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let resource = tokens.first ?? ""
        let id = tokens.count > 1 ? tokens[1] : nil
        let hasBody = !request.body.isEmpty
        func body() throws(FirecrackerError) -> JSONValue { try JSONValue.parseRequest(request.body) }

        switch (request.method, resource) {
        case ("GET", _) where hasBody:
            throw FirecrackerError("GET request cannot have a body.")
        case ("PUT", _) where !hasBody:
            throw FirecrackerError("Empty PUT request.")
        case ("PATCH", _) where !hasBody:
            throw FirecrackerError("Empty PATCH request.")
        case ("GET", ""):
            return .json(["app_name": .string(Self.appName), "id": .string(instanceID),
                          "state": .string(currentState.rawValue), "vmm_version": .string(Self.version)])
        case ("GET", "version"):
            return .json(["firecracker_version": .string(Self.version)])
        case ("GET", "machine-config"):
            return .json(configuration.machineConfigJSON)
        case ("GET", "vm") where id == "config":
            return .json(configuration.json)
        case ("PUT", "actions"):
            return try action(try body())
        case ("PUT", "boot-source"):
            try requireNotStarted()
            configuration.bootSource = try FirecrackerConfiguration.bootSource(try body())
        case ("PUT", "drives"):
            try requireNotStarted()
            guard let id else { throw FirecrackerError("Missing the drive ID in the path (PUT /drives/{drive_id}).") }
            try FirecrackerConfiguration.checkID(id, field: "drive_id")
            let drive = try FirecrackerConfiguration.drive(try body())
            guard drive.driveID == id else {
                throw FirecrackerError("The id from the path does not match the id from the body! (`drive_id` \"\(drive.driveID)\", path \"\(id)\")")
            }
            try configuration.putDrive(drive)
        case ("PUT", "machine-config"):
            try requireNotStarted()
            configuration.machineConfig = try FirecrackerConfiguration.machineConfig(try body())
        case ("PATCH", "machine-config"):
            // A partial update: the fields sent over the current ones, checked as a whole.
            try requireNotStarted()
            guard case let .object(update) = try body() else {
                throw FirecrackerError("An error occurred when deserializing the json body of a request: machine-config must be a JSON object.")
            }
            var merged = configuration.machineConfigJSON
            for field in update { merged[field.key] = field.value }
            configuration.machineConfig = try FirecrackerConfiguration.machineConfig(merged)
        case ("PUT", "network-interfaces"):
            try requireNotStarted()
            guard let id else { throw FirecrackerError("Missing the interface ID in the path (PUT /network-interfaces/{iface_id}).") }
            let (bodyID, json) = try FirecrackerConfiguration.networkInterface(try body())
            guard bodyID == id else {
                throw FirecrackerError("The id from the path does not match the id from the body! (`iface_id` \"\(bodyID)\", path \"\(id)\")")
            }
            configuration.networkInterfaces.removeAll { $0["iface_id"] == .string(id) }
            configuration.networkInterfaces.append(json)
        case ("PUT", "vsock"):
            try requireNotStarted()
            configuration.vsock = try FirecrackerConfiguration.vsock(try body())
        case ("PUT", "entropy"):
            try requireNotStarted()
            configuration.entropy = try FirecrackerConfiguration.entropy(try body())
        case ("PUT", "logger"):
            let logger = try FirecrackerConfiguration.logger(try body())
            try self.logger.configure(path: logger.logPath, level: logger.level.flatMap(VMMLogger.Level.init(name:)))
            configuration.logger = logger
        case ("PUT", "metrics"):
            configuration.metricsPath = try FirecrackerConfiguration.metricsPath(try body())
        case ("PATCH", "vm"):
            var r = try JSONObjectReader(try body(), context: "vm")
            let wanted = try r.string("state")
            try r.finish()
            switch wanted {
            case "Paused": try pause()
            case "Resumed": try resume()
            default: throw FirecrackerError("Invalid value for `state`: \"\(wanted)\" (Paused or Resumed).")
            }
        default:
            throw FirecrackerError("Invalid request method and/or path: \(request.method) \(request.path).")
        }
        return .noContent
    }

    private func action(_ json: JSONValue) throws(FirecrackerError) -> HTTPResponse {
        var r = try JSONObjectReader(json, context: "actions")
        let type = try r.string("action_type")
        try r.finish()
        switch type {
        case "InstanceStart": try start()
        case "SendCtrlAltDel": try sendCtrlAltDel()
        case "FlushMetrics": try flushMetrics()
        default:
            throw FirecrackerError("Invalid value for `action_type`: \"\(type)\" (InstanceStart, SendCtrlAltDel or FlushMetrics).")
        }
        return .noContent
    }

    private func requireNotStarted() throws(FirecrackerError) {
        guard currentState == .notStarted else {
            throw FirecrackerError("The requested operation is not supported after starting the microVM.")
        }
    }
}
