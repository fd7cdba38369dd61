// Two Chromium pages co-host a stream and a third watches the program, in Debian's Chromium
// with its fake camera and microphone:
//
//   node cohost.mjs --base http://127.0.0.1:PORT --program duo --out DIR
//
// Pages one and two open /publish and go live as PROGRAM~0 (the owner) and PROGRAM~1 (a
// guest). Each must then play the other's feed over WHEP in its co-host area (a picture that
// moves). Page three opens /watch/PROGRAM with the default player (LL-HLS) and must play the
// composed program: a 1280x720 picture with currentTime moving, and "On stage: The host,
// Bo" under it (the guest gives their name in the page's title field; the owner none). Prints one JSON line with what it saw; exits 1 on the first check
// that fails.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const base = args.base;
const program = args.program || 'duo';
const out = args.out || '.';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 40000;

mkdirSync(out, { recursive: true });
const result = { ok: false, screenshots: [] };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(page, what, predicate, arg, timeoutMs) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await page.evaluate(predicate, arg)) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A video element's picture and play position. */
const videoState = (selector) => {
  const v = document.querySelector(selector);
  return v ? { width: v.videoWidth, height: v.videoHeight, time: v.currentTime } : null;
};

/** Waits until the video at `selector` has a picture and plays on for a second. */
async function plays(page, what, selector) {
  const started = Date.now();
  let first = null;
  while (Date.now() - started < DEADLINE_MS) {
    const now = await page.evaluate(videoState, selector);
    if (now && now.width > 0 && now.time > 0) {
      if (!first) first = now;
      else if (now.time > first.time + 1) return now;
    }
    await sleep(250);
  }
  result.diagnosis = await page.evaluate(diagnose, selector).catch((e) => e.message);
  throw new Error(`${what} does not play`);
}

/** What a video that does not play shows: its element's state, the player's errors and the
 *  playlists it was given (in the page, so with the page's own requests). */
const diagnose = async (selector) => {
  const v = document.querySelector(selector);
  const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
  const out = v ? {
    readyState: v.readyState, networkState: v.networkState, paused: v.paused,
    error: v.error && v.error.message, time: v.currentTime, buffered: ranges(v.buffered),
  } : {};
  const watch = window.shardcastWatch;
  if (watch) Object.assign(out, { errors: watch.errors, stalls: watch.stalls, firstFrameMs: watch.firstFrameMs });
  const hls = window.shardcastHls;
  if (hls) {
    out.levels = hls.levels.length;
    out.level = hls.currentLevel;
    out.liveSyncPosition = hls.liveSyncPosition;
    if (hls.url) {
      const text = await (await fetch(hls.url)).text();
      out.multivariant = text.slice(0, 1500);
      const media = text.split('\n').find((l) => l && !l.startsWith('#'));
      if (media) {
        const playlist = await (await fetch(new URL(media, hls.url))).text();
        out.media = playlist.slice(-1500);
      }
    }
  }
  return out;
};

async function goLive(page, feed, title = '') {
  await page.goto(`${base}/publish`);
  await page.fill('#stream', feed);
  await page.fill('#title', title);
  await page.click('#go-live');
  await waitFor(page, `${feed} to connect`,
    () => window.shardcastPublish && window.shardcastPublish.state === 'connected', null, 20000);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      '--allow-loopback-in-peer-connection', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream'],
  });
  try {
    const camera = { viewport: { width: 1200, height: 1000 }, permissions: ['camera', 'microphone'] };
    const one = await (await browser.newContext(camera)).newPage();
    const two = await (await browser.newContext(camera)).newPage();
    const three = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
    for (const [name, page] of [['one', one], ['two', two], ['three', three]]) {
      page.on('pageerror', (e) => { (result.pageErrors ||= []).push(`${name}: ${e.message}`); });
    }
    await goLive(one, `${program}~0`);
    await goLive(two, `${program}~1`, 'Bo');
    // Each host sees the other, forwarded as sent.
    result.oneSeesTwo = await plays(one, 'the guest on the owner\'s page', '#cohosts video[data-slot="1"]');
    result.twoSeesOne = await plays(two, 'the owner on the guest\'s page', '#cohosts video[data-slot="0"]');
    // The audience gets the program over LL-HLS.
    await three.goto(`${base}/watch/${encodeURIComponent(program)}`);
    result.program = await plays(three, 'the program', '#video');
    await waitFor(three, 'the stage line', () => document.getElementById('on-stage').textContent
      === 'On stage: The host, Bo', null, 15000);
    result.onStage = await three.evaluate(() => document.getElementById('on-stage').textContent);
    for (const [name, page] of [['owner', one], ['guest', two], ['audience', three]]) {
      const shot = join(out, `${name}.png`);
      await page.screenshot({ path: shot });
      result.screenshots.push(shot);
    }
    if (result.program.width !== 1280 || result.program.height !== 720) {
      throw new Error(`the program is ${result.program.width}x${result.program.height}`);
    }
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
