// Plays a stream over WebRTC (WHEP) in Debian's Chromium, through the watch page's own player
// (`/watch/{stream}?player=webrtc`):
//
//   node whep.mjs --base http://127.0.0.1:PORT --stream x --out DIR [--width 640] [--height 360]
//                 [--udp off] [--rung R]
//
// `--udp off` takes the UDP candidate out of the server's answer before the page sees it (as
// if a firewall blocked the server's UDP port): the page must then connect over TCP.
// `--rung R` opens the page with `&rung=R` (a pinned rung).
//
// The page must connect, come to show the picture size given (the source's; an adaptive
// viewer may start smaller and move up), and keep decoding: at least 60 video frames and 100
// audio packets within the deadline, with the video's currentTime moving. `sizes` in the
// report lists the picture sizes shown, in order.
// Prints one JSON line with what it saw (the receiver's stats included); exits 1 on the first
// check that fails.
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
const width = Number(args.width || 640);
const height = Number(args.height || 360);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const noUdp = args.udp === 'off';
const DEADLINE_MS = 30000;

mkdirSync(out, { recursive: true });
const result = { ok: false, screenshots: [] };

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      '--allow-loopback-in-peer-connection'],
  });
  try {
    const page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    page.on('pageerror', (e) => { (result.pageErrors ||= []).push(e.message); });
    if (noUdp) await dropUdpCandidates(page);
    const rung = args.rung ? `&rung=${encodeURIComponent(args.rung)}` : '';
    await page.goto(`${base}/watch/${encodeURIComponent(stream)}?player=webrtc${rung}`);
    const started = Date.now();
    let seen = null;
    let timeAt5 = null;
    result.sizes = [];
    while (Date.now() - started < DEADLINE_MS) {
      seen = await observe(page);
      const size = `${seen.width}x${seen.height}`;
      if (seen.width > 0 && result.sizes[result.sizes.length - 1] !== size) result.sizes.push(size);
      if (timeAt5 === null && seen.framesDecoded >= 5) timeAt5 = seen.currentTime;
      const playing = timeAt5 !== null && seen.currentTime > timeAt5 + 1;
      const sized = seen.width === width && seen.height === height;
      if (seen.framesDecoded >= 60 && seen.audioPackets >= 100 && playing && sized) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    result.seen = seen;
    result.firstFrameMs = await page.evaluate(() => window.shardcastWatch.firstFrameMs);
    const shot = join(out, 'whep.png');
    await page.screenshot({ path: shot });
    result.screenshots.push(shot);
    if (seen.state !== 'connected') throw new Error(`not connected: ${seen.state}`);
    if (noUdp && seen.transport !== 'tcp') throw new Error(`over ${seen.transport}, not TCP`);
    if (seen.width !== width || seen.height !== height) {
      throw new Error(`picture ${seen.width}x${seen.height}, expected ${width}x${height}`);
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
