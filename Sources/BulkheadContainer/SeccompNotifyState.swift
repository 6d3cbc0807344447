import BulkheadOCI
import FoundationEssentials

/// The message a seccomp agent receives with the notify fd (runtime-spec config-linux.md,
/// "The Container Process State"): containerProcessState JSON with the container's state.
///
/// The child sends it, without allocating, right after it loads the filter; only the pid is not
/// known before clone, so the JSON is prepared here around a placeholder and split into three
/// pieces, between which the child writes the pid. Choices:
/// - `status` is "created": the filter is loaded after `start` opened the exec fifo (or before,
///   without no_new_privs), and the user's program has not run yet;
/// - `pid` (top level and in `state`) is the container process as the runtime sees it.
enum SeccompNotifyState {
    struct ContainerProcessState: Encodable {
        var ociVersion: String
        var fds: [String]
        var pid: Int64
        var metadata: String?
        var state: State
    }

    struct State: Encodable {
        var ociVersion: String
        var id: String
        var status: String
        var pid: Int64
        var bundle: String
        var annotations: [String: String]?
    }

    /// Outside the range of pids: cannot collide with the container's own text.
    static let placeholder: Int64 = -9_123_456_789_012_345

    static func payload(id: String, bundle: String, annotations: [String: String]?, metadata: String?) -> [String] {
        let message = ContainerProcessState(
            ociVersion: Spec.version, fds: ["seccompFd"], pid: placeholder, metadata: metadata,
            state: State(ociVersion: Spec.version, id: id, status: "created", pid: placeholder, bundle: bundle,
                         annotations: annotations))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = (try? encoder.encode(message)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let pieces = text.split(separator: "\(placeholder)", omittingEmptySubsequences: false).map(String.init)
        return pieces.count == 3 ? pieces : []
    }
}
