# Test 4: HTTP slowloris: request line + Host, then one header byte every 5 s; time until the server closes (cap 90 s).
import socket, time

HOST, PORT, CAP, STEP = "127.0.0.1", 18935, 90.0, 5.0
s = socket.create_connection((HOST, PORT))
t0 = time.monotonic()
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
hdr = b"X-Slow-Header-" + b"a" * 1000  # never terminated
i, sent, resp = 0, 0, b""
result = None
while time.monotonic() - t0 < CAP:
    # wait up to STEP seconds for data/EOF from server
    s.settimeout(max(0.01, min(STEP, CAP - (time.monotonic() - t0))))
    try:
        d = s.recv(65536)
        if not d:
            result = ("eof", time.monotonic() - t0); break
        resp += d
        continue
    except socket.timeout:
        pass
    except ConnectionResetError:
        result = ("reset", time.monotonic() - t0); break
    if time.monotonic() - t0 >= CAP:
        break
    try:
        s.send(hdr[i:i + 1]); i += 1; sent += 1
    except OSError as e:
        result = ("send-error %s" % e.__class__.__name__, time.monotonic() - t0); break
if result:
    print("slowloris: the server closed (%s) at %.1f s after request start; header bytes dribbled: %d" % (result[0], result[1], sent))
else:
    print("slowloris: still open at %.0f s; header bytes dribbled: %d" % (CAP, sent))
print("response bytes: %d %r" % (len(resp), resp[:200]))
s.close()
