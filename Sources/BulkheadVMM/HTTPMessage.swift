import BulkheadJSON

/// The little of HTTP/1.1 the Firecracker API needs: requests with an optional Content-Length
/// body, keep-alive, and responses with a JSON body or none. Parsing works on whatever bytes have
/// arrived so far, so a slow or vanished client never blocks the server.
public struct HTTPRequest: Equatable, Sendable {
    public var method: String
    /// The request target without a query string, e.g. "/drives/rootfs".
    public var path: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// False for "Connection: close" (and HTTP/1.0 without keep-alive).
    public var keepAlive: Bool

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.path == b.path && a.body == b.body && a.keepAlive == b.keepAlive
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    /// Bounds that keep a hostile client from making the server buffer without end.
    public static let maxHeaderBytes = 8192
    /// Firecracker's micro_http takes payloads up to 51200 bytes.
    public static let maxBodyBytes = 51200

    public enum ParseResult: Equatable, Sendable {
        /// More bytes are needed.
        case incomplete
        /// The headers are in and ask for "Expect: 100-continue" before the client sends the body
        /// (curl does for bodies over 1 KiB); the server answers 100 Continue once, then waits.
        case expectsContinue
        /// A request, and how many bytes of the buffer it used.
        case request(HTTPRequest, consumed: Int)
        /// Not HTTP we can answer; the server replies 400 with the reason and closes.
        case invalid(String)
    }

    /// Parses the first request in `buffer`.
    public static func parse(_ buffer: [UInt8]) -> ParseResult {
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard let headerEnd = firstIndex(of: terminator, in: buffer, limit: maxHeaderBytes + 4) else {
            return buffer.count > maxHeaderBytes ? .invalid("Request headers are larger than \(maxHeaderBytes) bytes.") : .incomplete
        }
        guard let head = String(validating: buffer[0..<headerEnd], as: UTF8.self) else {
            return .invalid("Request headers are not valid UTF-8.")
        }
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[1].hasPrefix("/") else {
            return .invalid("Invalid HTTP request line.")
        }
        let version = requestLine[2]
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .invalid("Unsupported HTTP version \(version.prefix(16)).")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return .invalid("Invalid HTTP header line.") }
            let name = line[..<colon].trimmingSpaces, value = line[line.index(after: colon)...].trimmingSpaces
            guard !name.isEmpty, !name.contains(" ") else { return .invalid("Invalid HTTP header name.") }
            headers.append((name, value))
        }
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name }?.value
        }
        if header("transfer-encoding") != nil {
            return .invalid("Transfer-Encoding is not supported; send a Content-Length.")
        }
        var length = 0
        if let text = header("content-length") {
            guard let n = Int(text), n >= 0 else { return .invalid("Invalid Content-Length \"\(text.prefix(20))\".") }
            guard n <= maxBodyBytes else {
                return .invalid("Content-Length \(n) is larger than the maximum payload of \(maxBodyBytes) bytes.")
            }
            length = n
        }
        let bodyStart = headerEnd + 4
        guard buffer.count >= bodyStart + length else {
            return header("expect")?.lowercased() == "100-continue" ? .expectsContinue : .incomplete
        }
        let connection = header("connection")?.lowercased()
        let keepAlive = version == "HTTP/1.1" ? connection != "close" : connection == "keep-alive"
        var target = String(requestLine[1])
        if let q = target.firstIndex(of: "?") { target = String(target[..<q]) }
        let request = HTTPRequest(method: String(requestLine[0]), path: target, headers: headers,
                                  body: Array(buffer[bodyStart..<bodyStart + length]), keepAlive: keepAlive)
        return .request(request, consumed: bodyStart + length)
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], limit: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...min(haystack.count - needle.count, limit) where haystack[i] == needle[0] {
            if haystack[i..<i + needle.count].elementsEqual(needle) { return i }
        }
        return nil
    }
}

public struct HTTPResponse: Equatable, Sendable {
    public var status: Int
    public var body: String?

    public init(status: Int, body: String? = nil) {
        self.status = status
        self.body = body
    }

    /// 204: what Firecracker answers to every successful PUT and PATCH.
    public static let noContent = HTTPResponse(status: 204)
    public static func json(_ value: JSONValue, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, body: value.text)
    }
    /// Firecracker's error body: {"fault_message": "..."}.
    public static func fault(_ message: String, status: Int = 400) -> HTTPResponse {
        .json(["fault_message": .string(message)], status: status)
    }

    static let reasons = [200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
                          405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"]

    public func serialized(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Status")\r\nServer: bulkhead-vmm\r\n"
        head += "Connection: \(keepAlive ? "keep-alive" : "close")\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            head += "\r\n"
        }
        return Array(head.utf8)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
