# Test 1: 20 TCP connections to the RTMP port, send nothing; time until the server closes each (cap 150 s).
import socket, threading, time
from common import *

N, CAP = 20, 150.0
res = [None] * N

def one(i):
    s = socket.create_connection((HOST, RTMP_PORT))
    t0 = time.monotonic()
    res[i] = wait_close(s, t0, CAP)
    s.close()

th = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for t in th: t.start()
for t in th: t.join()
for i, (how, t, got, log) in enumerate(res):
    print("conn %2d: %s %s bytes_from_server=%d" % (i, how, ("%.1f s" % t) if t is not None else "still open at %.0f s" % CAP, got))
times = [r[1] for r in res if r[1] is not None]
if times:
    print("closed %d/%d, min %.1f s, max %.1f s" % (len(times), N, min(times), max(times)))
else:
    print("closed 0/%d, all still open at %.0f s" % (N, CAP))
