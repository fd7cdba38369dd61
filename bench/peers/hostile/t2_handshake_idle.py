# Test 2: full RTMP handshake then silence; time until the server closes (cap 150 s). Logs what the server sends meanwhile.
import socket, sys, time
from common import *

# optional args (supplementary run only): PORT CAP
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else RTMP_PORT
CAP = float(sys.argv[2]) if len(sys.argv) > 2 else 150.0
s = socket.create_connection((HOST, PORT))
rtmp_handshake(s)
t0 = time.monotonic()  # measured from the moment C2 is sent
how, t, got, log = wait_close(s, t0, CAP)
print("handshake+idle: %s %s" % (how, ("%.1f s after C2" % t) if t is not None else "still open at %.0f s" % CAP))
print("bytes received from the server after handshake: %d" % got)
for ts, n, hx in log:
    print("  t=%5.1f s  %d bytes  %s" % (ts, n, hx))
s.close()
