# Supplementary to test 3: same idea but with a message length nginx-rtmp accepts
# (mlen = 1048576 = default max_message; the check is mlen > max_message), left 128 bytes short of complete.
# usage: t3b_maxmsg.py MASTER_PID NCONN NCSID   (csids 3..3+NCSID-1, max_streams default 32 -> csid <= 31)
import os, socket, sys, threading, time
from common import *

MASTER, NCONN, NCSID = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
MLEN, CH, DUR, HOLD = 1048576, 128, 60.0, 3.0

def worker_pid():
    kids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open("/proc/%s/stat" % p).read()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == MASTER:
                kids.append(int(p))
    # shardcast has no worker processes: the process itself.
    return kids[0] if len(kids) == 1 else MASTER

def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

WPID = worker_pid()
rss_before = rss_kb(WPID)
peak = [rss_before]
stop = threading.Event()
def sampler():
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kb(WPID)); time.sleep(0.1)

def msg_bytes(csid):
    nchunks = MLEN // CH - 1  # all but the last 128-byte chunk
    hdr = bytes([csid]) + b"\x00\x00\x00" + MLEN.to_bytes(3, "big") + b"\x14" + b"\x00" * 4
    return hdr + b"\x00" * CH + (bytes([0xC0 | csid]) + b"\x00" * CH) * (nchunks - 1), nchunks * CH

res = [None] * NCONN
t_start = time.monotonic()
holding = threading.Barrier(NCONN + 1)

def one(i):
    s = socket.create_connection((HOST, RTMP_PORT))
    rtmp_handshake(s)
    s.settimeout(DUR)
    payload, how = 0, "open"
    try:
        for k in range(NCSID):
            data, pl = msg_bytes(3 + k)
            s.sendall(data); payload += pl
    except (OSError, socket.timeout) as e:
        how = e.__class__.__name__
    res[i] = [payload, how, time.monotonic() - t_start]
    holding.wait()          # everyone done sending; main thread samples RSS
    holding.wait()          # released after the sample
    s.settimeout(0.3)       # did the server close us meanwhile?
    try:
        d = s.recv(65536)
        if not d: res[i][1] = "EOF"
    except socket.timeout:
        pass
    except ConnectionResetError:
        res[i][1] = "RST"
    s.close()

smp = threading.Thread(target=sampler); smp.start()
th = [threading.Thread(target=one, args=(i,)) for i in range(NCONN)]
for t in th: t.start()
holding.wait()
time.sleep(HOLD)
rss_hold = rss_kb(WPID)
holding.wait()
for t in th: t.join()
time.sleep(1.0)
stop.set(); smp.join()
rss_after = rss_kb(WPID)
for i, (pl, how, t) in enumerate(res):
    print("conn %d: %d csids x partial 1 MiB msg, payload sent=%.2f MiB in %.1f s, state=%s" % (i, NCSID, pl / 2**20, t, how))
tot = sum(r[0] for r in res)
print("total unfinished payload held: %.1f MiB" % (tot / 2**20))
print("worker VmRSS before=%d kB, holding=%d kB (+%.1f MiB), peak=%d kB, 1 s after close=%d kB" % (
    rss_before, rss_hold, (rss_hold - rss_before) / 1024, peak[0], rss_after))
