"""Opens N keep-alive connections to a shardcast HTTP or HTTPS port, sends one GET /healthz on
each, prints "open N" and holds them for HOLD seconds. For perf/tls-memory.sh.

Usage: hold_connections.py HOST PORT N plain|tls [HOLD]
"""
import asyncio, ssl, sys, time, os
host, port, n, tls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "tls"
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
conns = []
async def one(i):
    r, w = await asyncio.open_connection(host, port, ssl=ctx if tls else None)
    w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); await w.drain()
    await r.readuntil(b"ok\n")
    conns.append((r, w))
async def main():
    sem = asyncio.Semaphore(100)
    async def guarded(i):
        async with sem: await one(i)
    await asyncio.gather(*(guarded(i) for i in range(n)))
    print("open", len(conns), flush=True)
    await asyncio.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 6)
asyncio.run(main())
