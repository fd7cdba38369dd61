// Goes live from one Chromium page over WebRTC (WHIP) and watches it from another (WHEP), in
// Debian's Chromium with its fake camera and microphone:
//
//   node whip.mjs --base http://127.0.0.1:PORT --stream x --out DIR [--udp off] [--codec vp8]
//
// Page one opens /publish, names the stream and clicks "Go live from this browser"; its
// connection must reach "connected" and its encoder send the camera's full picture (the page
// asks to keep the resolution). Page two opens /watch/{stream}?player=webrtc and must play
// that picture at its size: at least 60 frames decoded and 100 audio packets, with
// currentTime moving. Prints one JSON line with what it saw; exits 1 on the first check
// that fails. `--udp off` takes the UDP candidates out of both pages' answers (as if a
// firewall blocked the server's UDP ports): both must then go over TCP. `--codec vp8` makes
// page one offer VP8 alone (as a browser without H.264 would): it must send VP8, and page two
// still gets the picture (made H.264 by the server).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dropUdpCandidates, observe } from './rtc.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const base = args.base;
const stream = args.stream || 'x';
const out = args.out || '.';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 30000;

mkdirSync(out, { recursive: true });
const result = { ok: false, screenshots: [] };

async function waitFor(page, what, predicate, timeoutMs) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await page.evaluate(predicate)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  // What the page showed then, for the report.
  const shown = await page.evaluate(() => {
    const status = document.getElementById('live-status') || document.getElementById('status');
    return { status: status && status.textContent, publish: window.shardcastPublish || null };
  }).catch(() => null);
  throw new Error(`timed out waiting for ${what} (page: ${JSON.stringify(shown)})`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      '--allow-loopback-in-peer-connection', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream'],
  });
  try {
    const context = await browser.newContext({
      viewport: { width: 1200, height: 900 }, permissions: ['camera', 'microphone'],
    });
    const one = await context.newPage();
    const two = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    for (const [name, page] of [['one', one], ['two', two]]) {
      page.on('pageerror', (e) => { (result.pageErrors ||= []).push(`${name}: ${e.message}`); });
      if (args.udp === 'off') await dropUdpCandidates(page);
    }
    if (args.codec === 'vp8') {
      await one.addInitScript(() => {
        const add = RTCPeerConnection.prototype.addTransceiver;
        RTCPeerConnection.prototype.addTransceiver = function (...rest) {
          const t = add.apply(this, rest);
          if (t.sender.track && t.sender.track.kind === 'video') {
            const vp8 = RTCRtpSender.getCapabilities('video').codecs
              .filter((c) => c.mimeType === 'video/VP8');
            t.setCodecPreferences(vp8);
            t.setCodecPreferences = () => {};
          }
          return t;
        };
      });
    }
    await one.goto(`${base}/publish`);
    await one.fill('#stream', stream);
    await one.click('#go-live');
    await waitFor(one, 'the publisher to connect',
      () => window.shardcastPublish && window.shardcastPublish.state === 'connected', 20000);
    const camera = await one.evaluate(() => {
      const v = document.getElementById('preview');
      return { width: v.videoWidth, height: v.videoHeight };
    });
    result.camera = camera;
    // What the publisher's encoder sends now.
    const sending = () => one.evaluate(async () => {
      const stats = await window.shardcastPublishSession.pc.getStats();
      for (const s of stats.values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          const codec = s.codecId && stats.get(s.codecId);
          return {
            width: s.frameWidth || 0, height: s.frameHeight || 0, codec: codec && codec.mimeType,
          };
        }
      }
      return { width: 0, height: 0 };
    });

    // Page two plays the stream over WHEP once the home has it.
    const started = Date.now();
    await two.goto(`${base}/watch/${encodeURIComponent(stream)}?player=webrtc`);
    let seen = null;
    let timeAt5 = null;
    let size = null;
    while (Date.now() - started < DEADLINE_MS) {
      seen = await observe(two);
      size = await sending();
      if (timeAt5 === null && seen.framesDecoded >= 5) timeAt5 = seen.currentTime;
      const playing = timeAt5 !== null && seen.currentTime > timeAt5 + 1;
      const sameSize = seen.width === size.width && seen.height === size.height;
      if (seen.framesDecoded >= 60 && seen.audioPackets >= 100 && playing && sameSize) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    result.seen = seen;
    result.sending = size;
    for (const [name, page] of [['publish', one], ['watch', two]]) {
      const shot = join(out, `${name}.png`);
      await page.screenshot({ path: shot });
      result.screenshots.push(shot);
    }
    if (seen.state !== 'connected') throw new Error(`viewer not connected: ${seen.state}`);
    if (args.codec === 'vp8' && size.codec !== 'video/VP8') throw new Error(`publisher sends ${size.codec}`);
    if (args.udp === 'off' && seen.transport !== 'tcp') throw new Error(`viewer over ${seen.transport}`);
    if (size.width !== camera.width || size.height !== camera.height) {
      throw new Error(`the encoder sends ${size.width}x${size.height} of a ${camera.width}x${camera.height} camera`);
    }
    if (seen.width !== size.width || seen.height !== size.height) {
      throw new Error(`picture ${seen.width}x${seen.height}, sent ${size.width}x${size.height}`);
    }
    if (seen.framesDecoded < 60) throw new Error(`only ${seen.framesDecoded} frames decoded`);
    if (seen.audioPackets < 100) throw new Error(`only ${seen.audioPackets} audio packets`);
    if (!(seen.currentTime > timeAt5 + 1)) throw new Error(`currentTime stuck at ${seen.currentTime}`);
    result.ok = true;
  } catch (e) {
    result.error = e.message;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main();
