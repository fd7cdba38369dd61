"""Interop check with an independent WebSocket client (the `websockets` package).

Usage: ws_python.py URL HELLO_HEX [CA_FILE]
A wss:// URL is checked against CA_FILE (a self-signed certificate, say). Connects offering the shardcast.v1 subprotocol, sends the given Hello (binary), reads the
answer, pings, sends a second binary message, then checks the close handshake from both sides.
Prints one JSON object with what it saw; the Rust test decides pass or fail.
"""

import asyncio
import json
import ssl
import sys

import websockets


async def main(url: str, hello: bytes, ca_file: str | None) -> dict:
    seen = {}
    tls = ssl.create_default_context(cafile=ca_file) if url.startswith("wss:") else None
    options = {"ssl": tls} if tls else {}
    async with websockets.connect(
        url, subprotocols=["shardcast.v1"], max_size=2**20, **options
    ) as ws:
        seen["subprotocol"] = ws.subprotocol
        await ws.send(hello)
        first = await asyncio.wait_for(ws.recv(), 5)
        seen["first_is_binary"] = isinstance(first, bytes)
        seen["first_hex"] = first.hex() if isinstance(first, bytes) else None
        pong_waiter = await ws.ping(b"interop")
        latency = await asyncio.wait_for(pong_waiter, 5)
        seen["pong"] = latency >= 0
        await ws.close(code=1000, reason="bye")
        seen["close_code"] = ws.close_code
    # A text message is not part of the protocol: the server must close with 1003.
    async with websockets.connect(url, subprotocols=["shardcast.v1"], **options) as ws:
        await ws.send("text is not accepted")
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as closed:
            seen["text_close_code"] = closed.rcvd.code if closed.rcvd else None
    return seen


if __name__ == "__main__":
    ca = sys.argv[3] if len(sys.argv) > 3 else None
    result = asyncio.run(main(sys.argv[1], bytes.fromhex(sys.argv[2]), ca))
    print(json.dumps(result))
