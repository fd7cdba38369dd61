"""The peer of `just bench-webrtc`'s glass-to-glass rows: a WHIP-in, WHEP-out relay in Python on
aiortc, the way aiortc relays media (`MediaRelay`: the publisher's frames are decoded once and
every viewer's sender encodes them again).

    python aiortc_relay.py --port 18201

POST /whip/live/{stream} with an SDP offer publishes (201 with the answer); POST
/whep/live/{stream} plays (201 with the answer); GET /player.html is a bare WHEP player with a
<video id="video">, for bench/tests/browser/latency.mjs. Candidates are gathered before
answering (no trickle ICE), as shardcast's answers carry theirs.
"""

import argparse
import asyncio
import logging
from pathlib import Path

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

relay = MediaRelay()
published = {}  # stream -> {kind: track}
peers = set()

PLAYER = (Path(__file__).parent / "player.html").read_text()


async def answer(pc, offer_sdp):
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


def track_pc():
    pc = RTCPeerConnection()
    peers.add(pc)

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState in ("failed", "closed"):
            await pc.close()
            peers.discard(pc)

    return pc


async def whip(request):
    stream = request.match_info["stream"]
    pc = track_pc()
    tracks = published.setdefault(stream, {})

    @pc.on("track")
    def on_track(track):
        tracks[track.kind] = track

    sdp = await answer(pc, await request.text())
    return web.Response(status=201, text=sdp, content_type="application/sdp",
                        headers={"Location": f"/whip/session/{id(pc)}"})


async def whep(request):
    stream = request.match_info["stream"]
    tracks = published.get(stream)
    if not tracks:
        return web.Response(status=404, text="no such stream\n")
    pc = track_pc()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
    for transceiver in pc.getTransceivers():
        track = tracks.get(transceiver.kind)
        if track is not None:
            transceiver.direction = "sendonly"
            transceiver.sender.replaceTrack(relay.subscribe(track))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.Response(status=201, text=pc.localDescription.sdp, content_type="application/sdp",
                        headers={"Location": f"/whep/session/{id(pc)}",
                                 "Access-Control-Allow-Origin": "*"})


async def player(_request):
    return web.Response(text=PLAYER, content_type="text/html")


async def index(_request):
    return web.Response(text="aiortc relay\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18201)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/player.html", player)
    app.router.add_post("/whip/live/{stream}", whip)
    app.router.add_post("/whep/live/{stream}", whep)

    async def close_all(_app):
        await asyncio.gather(*(pc.close() for pc in list(peers)))

    app.on_shutdown.append(close_all)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
