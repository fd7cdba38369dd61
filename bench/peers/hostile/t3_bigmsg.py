# Test 3: after handshake, start a 0xFFFFFF-byte message (fmt0, csid 3, type 0x14) and keep feeding
# 128-byte continuation chunks (0xC3 + 128 bytes) on 10 connections for up to 20 s / 64 MiB each.
# Records the server's VmRSS (nginx: its worker) before/peak/after and when/whether the server closed each connection.
import os, socket, sys, threading, time
from common import *

MASTER = int(sys.argv[1])
NCONN, DUR, LIMIT = 10, 20.0, 64 * 1024 * 1024

def worker_pid():
    kids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = open("/proc/%s/stat" % p).read()
            except OSError:
                continue
            ppid = int(st.rsplit(")", 1)[1].split()[1])
            if ppid == MASTER:
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
stop_sampler = threading.Event()

def sampler():
    while not stop_sampler.is_set():
        peak[0] = max(peak[0], rss_kb(WPID))
        time.sleep(0.1)

header = bytes([0x03]) + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x14" + b"\x00\x00\x00\x00"
first = header + b"\x00" * 128
cont = (b"\xc3" + b"\x00" * 128) * 256  # 33 024 bytes per batch
res = [None] * NCONN
barrier = threading.Barrier(NCONN)

def one(i):
    s = socket.create_connection((HOST, RTMP_PORT))
    rtmp_handshake(s)
    barrier.wait()
    t0 = time.monotonic()
    sent, how, tclose = 0, "still open", None
    buf = first
    try:
        while time.monotonic() - t0 < DUR and sent < LIMIT:
            s.settimeout(0.5)
            try:
                n = s.send(buf)
            except socket.timeout:
                continue
            sent += n
            buf = buf[n:] if n < len(buf) else cont
    except (BrokenPipeError, ConnectionResetError) as e:
        how, tclose = e.__class__.__name__, time.monotonic() - t0
    if how == "still open":
        # check whether the server already closed (EOF/RST pending)
        s.settimeout(0.2)
        try:
            d = s.recv(65536)
            while d:
                d = s.recv(65536)
            how = "EOF seen at end"
        except socket.timeout:
            pass
        except ConnectionResetError:
            how = "RST seen at end"
    res[i] = (sent, how, tclose, time.monotonic() - t0)
    s.close()

smp = threading.Thread(target=sampler); smp.start()
th = [threading.Thread(target=one, args=(i,)) for i in range(NCONN)]
for t in th: t.start()
for t in th: t.join()
time.sleep(1.0)
stop_sampler.set(); smp.join()
rss_after = rss_kb(WPID)
for i, (sent, how, tclose, dur) in enumerate(res):
    print("conn %d: bytes accepted by client kernel=%d (%.1f KiB), result=%s%s, ran %.1f s" % (
        i, sent, sent / 1024, how, (" at %.3f s" % tclose) if tclose is not None else "", dur))
print("worker pid %d VmRSS before=%d kB peak=%d kB after=%d kB" % (WPID, rss_before, peak[0], rss_after))
