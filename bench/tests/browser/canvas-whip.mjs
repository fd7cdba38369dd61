// A publisher for glass-to-glass measurements over WebRTC: a Chromium page paints a moving
// 1280x720 picture with the wall clock written into its top 16 rows as a barcode (the format
// `latency.mjs` reads: milliseconds mod 2^32, 20 px per bit, least significant first, white
// for 1), captures the canvas at 30 fps with a tone, and publishes it over WHIP:
//
//   node canvas-whip.mjs --whip URL --seconds 60 [--key KEY] [--codec vp8]
//
// `--codec vp8` offers VP8 alone (a browser without H.264); by default H.264 comes first.
// URL is the WHIP endpoint (`http://host/whip/live/{stream}`); the page is loaded from the
// same origin (its `/`), and the WHIP client is the page's own code (no library). The code
// painted is the time the frame was painted, so capture, encoding, the network, the server,
// decoding and display all count. Runs until SECONDS pass, then prints one JSON line.
import { chromium } from 'playwright-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const seconds = Number(args.seconds || 60);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Runs in the page: paint, capture, publish. Resolves once the server answered.
async function publish({ whip, key, codec }) {
  const canvas = document.createElement('canvas');
  canvas.width = 1280;
  canvas.height = 720;
  document.body.append(canvas);
  const ctx = canvas.getContext('2d');
  let n = 0;
  const paint = () => {
    n += 1;
    ctx.fillStyle = `hsl(${(n * 3) % 360}, 60%, 35%)`;
    ctx.fillRect(0, 0, 1280, 720);
    ctx.fillStyle = '#ddd';
    ctx.fillRect((n * 8) % 1280, 200, 120, 320);
    const code = Math.floor(performance.timeOrigin + performance.now()) % 2 ** 32;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 1280, 16);
    ctx.fillStyle = '#fff';
    for (let bit = 0; bit < 32; bit += 1) {
      if (Math.floor(code / 2 ** bit) % 2 === 1) ctx.fillRect(bit * 20, 0, 20, 16);
    }
    requestAnimationFrame(paint);
  };
  paint();
  const media = canvas.captureStream(30);
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const out = audio.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  media.addTrack(out.stream.getAudioTracks()[0]);
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video') {
      const caps = RTCRtpSender.getCapabilities('video').codecs;
      const first = codec === 'vp8' ? 'video/VP8' : 'video/H264';
      t.setCodecPreferences(codec === 'vp8'
        ? caps.filter((c) => c.mimeType === first)
        : [...caps.filter((c) => c.mimeType === first), ...caps.filter((c) => c.mimeType !== first)]);
      const params = t.sender.getParameters();
      params.degradationPreference = 'maintain-resolution';
      if (params.encodings && params.encodings[0]) params.encodings[0].maxBitrate = 2500000;
      await t.sender.setParameters(params).catch(() => {});
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  // A server that does not do trickle ICE needs the candidates in the offer.
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
      setTimeout(resolve, 2000);
    });
  }
  const headers = { 'Content-Type': 'application/sdp' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(whip, { method: 'POST', headers, body: pc.localDescription.sdp });
  if (!response.ok) throw new Error(`WHIP ${response.status}: ${await response.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  window.benchPublisher = pc;
  return response.status;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      '--allow-loopback-in-peer-connection'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 760 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(new URL('/', args.whip).href);
    const status = await page.evaluate(publish, {
      whip: args.whip, key: args.key || '', codec: args.codec || 'h264',
    });
    await page.waitForTimeout(seconds * 1000);
    const sent = await page.evaluate(async () => {
      for (const s of (await window.benchPublisher.getStats()).values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          return { frames: s.framesEncoded, width: s.frameWidth, height: s.frameHeight, fps: s.framesPerSecond, encoder: s.encoderImplementation };
        }
      }
      return null;
    });
    console.log(JSON.stringify({ status, sent, state: await page.evaluate(() => window.benchPublisher.connectionState), errors }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ error: e.message }));
  process.exit(1);
});
