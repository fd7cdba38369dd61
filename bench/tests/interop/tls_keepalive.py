"""One HTTPS keep-alive connection across a certificate reload.

Usage: tls_keepalive.py HOST PORT
Connects over TLS (the certificate is not checked: the test reloads it), sends GET /healthz,
prints "ready <status>", waits for a line on stdin, sends GET /healthz again on the same
connection and prints "again <status>". A dropped connection prints "dropped <error>".
"""

import socket
import ssl
import sys


def get(tls: ssl.SSLSocket) -> str:
    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"ok\n"):
        chunk = tls.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data.split(b" ", 2)[1].decode()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            print("ready", get(tls), flush=True)
            sys.stdin.readline()
            try:
                print("again", get(tls), flush=True)
            except (OSError, ConnectionError) as error:
                print("dropped", error, flush=True)


if __name__ == "__main__":
    main()
