// The fan-out peer of `just bench-webrtc`: a WHIP-in, WHEP-out SFU on werift (a WebRTC stack
// in TypeScript), the way werift forwards media: every RTP packet the publisher sends is
// handed to each viewer's sender (`sendRtp`, which rewrites SSRC, payload type and sequence
// numbers and encrypts per viewer). Nothing is decoded or encoded.
//
//   node sfu.mjs --port 18202
//
// POST /whip/live/{stream} with an SDP offer publishes (201 with the answer); POST
// /whep/live/{stream} plays (201 with the answer); DELETE on the Location ends the session.
// Answers carry their candidates (gathering completes first; no trickle ICE), on loopback.
// A viewer's PLI is passed to the publisher.
import http from 'node:http';
import {
  RTCPeerConnection, RTCRtpCodecParameters, useNACK, usePLI, useTransportWideCC,
} from 'werift';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const port = Number(args.port || 18202);

const codecs = () => ({
  video: [new RTCRtpCodecParameters({
    mimeType: 'video/H264', clockRate: 90000,
    rtcpFeedback: [useNACK(), usePLI(), useTransportWideCC()],
    parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  })],
  audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
});

const config = () => ({
  codecs: codecs(),
  iceUseIpv6: false,
  iceAdditionalHostAddresses: ['127.0.0.1'],
  iceInterfaceAddresses: { udp4: '127.0.0.1' },
});

// stream -> { publisher, tracks: { video, audio }, viewers: Set<{ pc, senders: { kind: sender } }> }
const streams = new Map();
const sessions = new Map(); // id -> () => void (ends it)
let nextId = 1;

function stream(name) {
  if (!streams.has(name)) streams.set(name, { publisher: null, tracks: {}, viewers: new Set() });
  return streams.get(name);
}

async function answer(pc, offer) {
  await pc.setRemoteDescription({ type: 'offer', sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      pc.iceGatheringStateChange.subscribe((state) => { if (state === 'complete') resolve(); });
    });
  }
  return pc.localDescription.sdp;
}

async function whip(name, offer) {
  const s = stream(name);
  const pc = new RTCPeerConnection(config());
  pc.onTrack.subscribe((track) => {
    s.tracks[track.kind] = track;
    track.onReceiveRtp.subscribe((rtp) => {
      for (const viewer of s.viewers) {
        const sender = viewer.senders[track.kind];
        if (sender) sender.sendRtp(rtp).catch(() => {});
      }
    });
  });
  const sdp = await answer(pc, offer);
  s.publisher = pc;
  return { pc, sdp, end: () => { if (s.publisher === pc) s.publisher = null; pc.close(); } };
}

async function whep(name, offer) {
  const s = stream(name);
  const pc = new RTCPeerConnection(config());
  const viewer = { pc, senders: {} };
  for (const kind of ['video', 'audio']) {
    const transceiver = pc.addTransceiver(kind, { direction: 'sendonly' });
    viewer.senders[kind] = transceiver.sender;
    if (kind === 'video') {
      transceiver.sender.onPictureLossIndication.subscribe(() => {
        const track = s.tracks.video;
        const receiver = s.publisher && s.publisher.getTransceivers()
          .find((t) => t.receiver.track === track)?.receiver;
        if (receiver && track && track.ssrc) receiver.sendRtcpPLI(track.ssrc).catch(() => {});
      });
    }
  }
  const sdp = await answer(pc, offer);
  s.viewers.add(viewer);
  pc.connectionStateChange.subscribe((state) => {
    if (state === 'failed' || state === 'closed') s.viewers.delete(viewer);
  });
  return { pc, sdp, end: () => { s.viewers.delete(viewer); pc.close(); } };
}

const server = http.createServer(async (req, res) => {
  const body = await new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
  const match = req.url.match(/^\/(whip|whep)\/live\/([^/?]+)/);
  try {
    if (req.method === 'POST' && match) {
      const session = await (match[1] === 'whip' ? whip : whep)(match[2], body);
      const id = String(nextId++);
      sessions.set(id, session.end);
      res.writeHead(201, {
        'Content-Type': 'application/sdp',
        'Content-Length': Buffer.byteLength(session.sdp),
        Location: `/${match[1]}/session/${id}`,
      });
      res.end(session.sdp);
      return;
    }
    const ended = req.url.match(/^\/(whip|whep)\/session\/(\d+)$/);
    if (req.method === 'DELETE' && ended && sessions.has(ended[2])) {
      sessions.get(ended[2])();
      sessions.delete(ended[2]);
      res.writeHead(200).end();
      return;
    }
    res.writeHead(404).end('not found');
  } catch (e) {
    console.error(`${req.method} ${req.url}: ${e && e.stack}`);
    res.writeHead(400).end(String(e && e.message));
  }
});
server.listen(port, '127.0.0.1', () => console.log(`werift SFU on 127.0.0.1:${port}`));
