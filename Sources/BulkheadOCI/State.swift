// The state of a container as the runtime spec defines it: what `state` prints and what hooks
// read on stdin.

public enum ContainerStatus: String, Codable, Sendable, Equatable {
    case creating, created, running, stopped, paused
}

public struct State: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: ContainerStatus
    public var pid: Int32?
    public var bundle: String
    public var annotations: [String: String]?

    public init(ociVersion: String = Spec.version, id: String, status: ContainerStatus, pid: Int32?,
                bundle: String, annotations: [String: String]?) {
        self.ociVersion = ociVersion
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.annotations = annotations
    }
}
