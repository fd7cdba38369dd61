import os, socket, struct, time

HOST = "127.0.0.1"
RTMP_PORT = 19935
HTTP_PORT = 18935


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError("EOF after %d/%d bytes" % (len(buf), n))
        buf += d
    return buf


def rtmp_handshake(s):
    """Plain RTMP handshake: C0+C1, read S0+S1+S2, send C2 = echo of S1."""
    c1 = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + b"\x00" * 4 + os.urandom(1528)
    s.sendall(b"\x03" + c1)
    resp = recv_exact(s, 1 + 1536 + 1536)
    assert resp[0] == 3, "S0 != 3: %r" % resp[0]
    s1 = resp[1:1537]
    s.sendall(s1)  # C2
    return resp


def wait_close(s, t0, cap):
    """Wait (reading/draining) until the peer closes; returns (how, t_close or None, bytes_received, recv_log)."""
    got = 0
    log = []
    while True:
        left = cap - (time.monotonic() - t0)
        if left <= 0:
            return ("open", None, got, log)
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return ("open", None, got, log)
        except ConnectionResetError:
            return ("reset", time.monotonic() - t0, got, log)
        except OSError as e:
            return ("error:%s" % e.__class__.__name__, time.monotonic() - t0, got, log)
        if not d:
            return ("eof", time.monotonic() - t0, got, log)
        got += len(d)
        log.append((round(time.monotonic() - t0, 1), len(d), d[:32].hex()))
