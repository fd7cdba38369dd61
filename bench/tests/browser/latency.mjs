// Plays one live output in Debian's Chromium for a while and measures what a viewer sees:
//
//   node latency.mjs --url URL --seconds 60 [--label NAME]
//
// URL is a page with a <video id="video"> that plays the stream by itself: shardcast's watch
// page, or bench/tests/browser/player.html for the peers. Prints one JSON line:
//
// - firstFrameMs: navigation start to the first picture on screen (requestVideoFrameCallback),
//   in a browser that is already up, as a viewer's is: the page opens `BROWSER_SETTLE_MS`
//   after the browser started (on this 2-core machine a cold start of Chromium, its GPU and
//   network processes, added 0.2-0.3 s to every page's first frame, peers' alike);
//   firstFrames: the same over `FIRST_FRAME_LOADS` loads in fresh contexts (no cache) before
//   the timed run, firstFrameLoads each of them;
// - g2g: glass-to-glass latency samples, ms: the wall-clock time at which each sampled frame
//   is shown, minus the wall-clock time at which the publisher made it. The publisher writes
//   that time into the picture as a 32-bit barcode (milliseconds mod 2^32, 20 px per bit,
//   least significant first, on the top 16 rows; see bench/scripts/bench-latency.sh), and the
//   page reads it back from the decoded frame through a canvas. Publisher and browser run on
//   the same machine, so they share the clock;
// - pdt: latency from the player's PROGRAM-DATE-TIME (hls.js `playingDate`), when there is one;
// - playerLatency: what the player itself reports (hls.js `latency`, dash.js
//   `getCurrentLiveLatency()`);
// - stalls / stallMs / stallsAt: `waiting` events after the first frame (not while seeking),
//   their total length, and when each began (ms after the first frame); seeks: jumps the
//   player made (shardcast's page jumps hls.js to its target).
import { chromium } from 'playwright-core';

/** How long the browser runs before the first page opens (see firstFrameMs above). */
const BROWSER_SETTLE_MS = 2000;
/** Page loads measured for first frames alone, before the timed run. */
const FIRST_FRAME_LOADS = 7;
/** A load that shows no picture in this long counts as none. */
const FIRST_FRAME_WAIT_MS = 10000;

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const seconds = Number(args.seconds || 60);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Runs in the page before its own scripts.
function instrument() {
  const m = { firstFrameMs: null, g2g: [], pdt: [], playerLatency: [], stalls: 0, stallsAt: [], stallMs: 0, seeks: 0, badCodes: 0, errors: [] };
  window.__latency = m;
  const canvas = document.createElement('canvas');
  canvas.width = 640;
  canvas.height = 16;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let stalledAt = null;
  let frames = 0;
  const attach = (video) => {
    const onFrame = (now, meta) => {
      if (m.firstFrameMs === null) m.firstFrameMs = Math.round(performance.now());
      frames += 1;
      if (frames % 3 === 0 && video.videoWidth >= 640) {
        ctx.drawImage(video, 0, 0, 640, 16, 0, 0, 640, 16);
        const row = ctx.getImageData(0, 0, 640, 16).data;
        let code = 0;
        for (let bit = 0; bit < 32; bit += 1) {
          let sum = 0;
          for (let dx = 6; dx <= 14; dx += 4) {
            for (const y of [5, 8, 11]) {
              const i = (y * 640 + bit * 20 + dx) * 4;
              sum += row[i] * 0.299 + row[i + 1] * 0.587 + row[i + 2] * 0.114;
            }
          }
          if (sum / 9 > 128) code += 2 ** bit;
        }
        const shownAt = performance.timeOrigin + (meta.expectedDisplayTime || now);
        // The clock mod 2^32 ms wraps every 49.7 days: unwrap against the current time.
        const wrap = 2 ** 32;
        let made = Math.floor(shownAt / wrap) * wrap + code;
        if (made > shownAt + wrap / 2) made -= wrap;
        const latency = shownAt - made;
        if (latency > 0 && latency < 60000) m.g2g.push(Math.round(latency));
        else m.badCodes += 1;
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    // A seek within what is buffered (a player jumping to its target) is not a stall.
    video.addEventListener('seeking', () => { m.seeks += 1; });
    video.addEventListener('waiting', () => {
      if (m.firstFrameMs !== null && stalledAt === null && !video.seeking) {
        stalledAt = performance.now();
        m.stalls += 1;
        m.stallsAt.push(Math.round(stalledAt - m.firstFrameMs));
      }
    });
    video.addEventListener('playing', () => {
      if (stalledAt !== null) {
        m.stallMs += performance.now() - stalledAt;
        stalledAt = null;
      }
    });
    setInterval(() => {
      if (video.paused || m.firstFrameMs === null) return;
      const hls = window.shardcastHls || window.benchHls;
      const dash = window.shardcastDash || window.benchDash;
      if (hls) {
        if (hls.playingDate) m.pdt.push(Math.round(Date.now() - hls.playingDate.getTime()));
        if (hls.latency) m.playerLatency.push(Math.round(hls.latency * 1000));
      } else if (dash) {
        const l = dash.getCurrentLiveLatency();
        if (l > 0) m.playerLatency.push(Math.round(l * 1000));
      }
    }, 250);
  };
  const find = () => {
    const video = document.getElementById('video');
    if (video) attach(video);
    else setTimeout(find, 5);
  };
  find();
}

function stats(samples) {
  if (!samples.length) return null;
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { n: s.length, median: at(0.5), p95: at(0.95), min: s[0], max: s[s.length - 1] };
}

/**
 * First frames of `FIRST_FRAME_LOADS` page loads, each in a new browser context (its own
 * empty cache) of the running browser: one load is too noisy on this machine to stand alone.
 */
async function firstFrames(browser) {
  const frames = [];
  for (let i = 0; i < FIRST_FRAME_LOADS; i++) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      await page.addInitScript(instrument);
      await page.goto(args.url);
      await page.waitForFunction(() => window.__latency.firstFrameMs !== null, null, { timeout: FIRST_FRAME_WAIT_MS });
      frames.push(await page.evaluate(() => window.__latency.firstFrameMs));
    } catch {
      frames.push(null);
    } finally {
      await context.close();
    }
  }
  return frames;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
  try {
    const warmup = await browser.newPage();
    await warmup.goto('about:blank');
    await warmup.waitForTimeout(BROWSER_SETTLE_MS);
    const loads = await firstFrames(browser);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(instrument);
    await page.goto(args.url);
    await page.waitForTimeout(seconds * 1000);
    const m = await page.evaluate(() => window.__latency);
    // The first 5 s are the player settling (catching up to its target): reported apart.
    const settle = Math.min(m.g2g.length, Math.round(m.g2g.length * (5 / seconds)));
    console.log(JSON.stringify({
      label: args.label || args.url,
      url: args.url,
      seconds,
      firstFrameMs: m.firstFrameMs,
      firstFrames: stats(loads.filter((f) => f !== null)),
      firstFrameLoads: loads,
      g2g: stats(m.g2g.slice(settle)),
      g2gAll: stats(m.g2g),
      pdt: stats(m.pdt),
      playerLatency: stats(m.playerLatency),
      stalls: m.stalls,
      stallMs: Math.round(m.stallMs),
      stallsAt: m.stallsAt,
      seeks: m.seeks,
      badCodes: m.badCodes,
      errors,
    }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ label: args.label, error: e.message }));
  process.exit(1);
});
