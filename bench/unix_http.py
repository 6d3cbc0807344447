"""HTTP/1.1 over a Unix socket, for the bench scripts that drive bulkhead-vmm's Firecracker API.

As a program: unix_http.py SOCKET METHOD PATH [BODY] prints the status and the body, and exits 0
for a 2xx answer. As a module: request(...) returns (status, body); it raises OSError while nothing
listens on the socket yet.
"""
import socket
import sys


def request(sock_path, method, path, body=None, timeout=5.0):
    data = body.encode() if body else b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    fields = head.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise OSError(f"not an HTTP answer: {answer[:80]!r}")
    return int(fields[1]), rest.decode(errors="replace")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: unix_http.py SOCKET METHOD PATH [BODY]")
    status, text = request(*sys.argv[1:])
    print(status, text)
    sys.exit(0 if 200 <= status < 300 else 1)
