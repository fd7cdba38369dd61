// Drives the watch page in Debian's Chromium (playwright-core, never a downloaded browser):
//
//   node watch.mjs --base http://127.0.0.1:PORT --stream x --out DIR [--token T] [--gift ID]
//                  [--chats N] [--width 1280] [--insecure 1]
//
// With an https:// base the pages play over HTTPS and chat over WSS; `--insecure 1` accepts
// the server's self-signed certificate.
//
// Page one opens /watch/{stream} as a visitor and must play: currentTime advancing and
// videoWidth as given. Page two opens the same page (with `#token=T`, or as a guest when no
// token is given) and sends N chats through the page's own input, in different modes and
// colours, then (with --gift) clicks that gift's button and waits for the new balance. Page
// one must render every chat as a bullet in its overlay, in order and exactly once (seen by
// a MutationObserver on the overlay's DOM), bullets of one lane must not overlap, and with
// --gift the gift's animation must show the sender. Screenshots of both pages go to DIR.
//
// Prints one JSON line with what it saw; exits 1 on the first check that fails.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const base = args.base;
const stream = args.stream || 'x';
const out = args.out || '.';
const chats = Number(args.chats || 5);
const width = Number(args.width || 1280);
const giftId = args.gift ? Number(args.gift) : null;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

mkdirSync(out, { recursive: true });
const result = { ok: false, screenshots: [] };
const fail = (why) => { throw new Error(why); };

// Records every bullet and gift animation added to the overlay, in the order they appear.
function recordOverlay() {
  window.__seen = { bullets: [], gifts: [], overlaps: 0, samples: 0 };
  const start = () => {
    const overlay = document.getElementById('overlay');
    const stage = document.getElementById('stage');
    if (!overlay || !stage) return setTimeout(start, 20);
    new MutationObserver((records) => {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.classList && node.classList.contains('bullet')) {
            window.__seen.bullets.push({
              text: node.textContent, seq: Number(node.dataset.seq), mode: node.dataset.mode,
              lane: Number(node.dataset.lane), color: getComputedStyle(node).color,
            });
          }
        }
      }
    }).observe(overlay, { childList: true });
    new MutationObserver((records) => {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.classList && node.classList.contains('gift-burst')) window.__seen.gifts.push(node.textContent);
        }
      }
    }).observe(stage, { childList: true });
    // Bullets sharing a lane must never overlap on screen.
    setInterval(() => {
      const byLane = new Map();
      for (const node of overlay.querySelectorAll('.bullet.scroll')) {
        const list = byLane.get(node.dataset.lane) || [];
        const r = node.getBoundingClientRect();
        list.push({ left: r.left, right: r.right, seq: node.dataset.seq });
        byLane.set(node.dataset.lane, list);
      }
      for (const [lane, rects] of byLane) {
        rects.sort((a, b) => a.left - b.left);
        for (let i = 1; i < rects.length; i += 1) {
          const by = rects[i - 1].right - rects[i].left;
          if (by > 0.5) {
            window.__seen.overlaps += 1;
            // What overlapped and by how much, for the report.
            window.__seen.overlapSeen ||= { lane, seqs: [rects[i - 1].seq, rects[i].seq], px: Math.round(by) };
          }
        }
      }
      window.__seen.samples += 1;
    }, 50);
  };
  start();
}

async function waitFor(page, what, fn, arg, timeoutMs) {
  try {
    await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
  } catch {
    const state = await page.evaluate(() => JSON.stringify({
      watch: window.shardcastWatch && { ...window.shardcastWatch, bullets: window.shardcastWatch.bullets?.length },
      seen: window.__seen,
      chat: document.getElementById('chat-status')?.textContent,
      player: document.getElementById('player-status')?.textContent,
    })).catch(() => '(page gone)');
    fail(`timed out waiting for ${what}: ${state}`);
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
  try {
    const viewport = { width: 1400, height: 900 };
    const contextOptions = { viewport, ignoreHTTPSErrors: args.insecure === '1' };
    const one = await (await browser.newContext(contextOptions)).newPage();
    const two = await (await browser.newContext(contextOptions)).newPage();
    for (const [name, page] of [['one', one], ['two', two]]) {
      page.on('pageerror', (e) => { (result.pageErrors ||= []).push(`${name}: ${e.message}`); });
    }
    await one.addInitScript(recordOverlay);
    const watch = `${base}/watch/${encodeURIComponent(stream)}`;
    await one.goto(watch);

    // Page one plays: the picture is the source's size and time moves on.
    await waitFor(one, 'page one to play', (w) => {
      const v = document.getElementById('video');
      return v && v.videoWidth === w && v.currentTime > 1 && !v.paused;
    }, width, 30000);
    const t0 = await one.evaluate(() => document.getElementById('video').currentTime);
    await one.waitForTimeout(1500);
    const t1 = await one.evaluate(() => document.getElementById('video').currentTime);
    if (!(t1 > t0 + 0.5)) fail(`currentTime did not advance: ${t0} -> ${t1}`);
    result.video = await one.evaluate(() => {
      const v = document.getElementById('video');
      return { width: v.videoWidth, height: v.videoHeight, currentTime: v.currentTime, firstFrameMs: window.shardcastWatch.firstFrameMs };
    });
    await waitFor(one, 'page one in the room', () => window.shardcastWatch.connected, null, 10000);

    // Page two joins with the token (or as a guest) and sends chats through the page.
    await two.goto(args.token ? `${watch}#token=${encodeURIComponent(args.token)}` : watch);
    await waitFor(two, 'page two to be able to chat', () => window.shardcastWatch && window.shardcastWatch.connected
      && window.shardcastWatch.user !== '' && !document.getElementById('chat-text').disabled, null, 15000);
    result.sender = await two.evaluate(() => window.shardcastWatch.user);
    const modes = ['scroll', 'scroll', 'top', 'scroll', 'bottom'];
    const texts = [];
    for (let i = 0; i < chats; i += 1) {
      const text = `bullet ${i + 1} 弹幕 ${Date.now() % 100000}`;
      texts.push(text);
      await two.selectOption('#chat-mode', modes[i % modes.length]);
      await two.click(`#swatches .swatch:nth-child(${(i % 8) + 1})`);
      await two.fill('#chat-text', text);
      await two.click('#chat-send');
      // The server allows a burst of 3 chats and 1 a second after it.
      await two.waitForTimeout(i >= 2 ? 1100 : 150);
    }
    result.sent = texts;

    await waitFor(one, `all ${chats} bullets on page one`, (n) => window.__seen.bullets.length >= n, chats, 20000);
    const seen = await one.evaluate(() => window.__seen);
    result.bullets = seen.bullets;
    const shown = seen.bullets.map((b) => b.text);
    if (JSON.stringify(shown) !== JSON.stringify(texts)) fail(`bullets not in order or not exactly once: ${JSON.stringify(shown)}`);
    const seqs = seen.bullets.map((b) => b.seq);
    if (seqs.some((s, i) => i > 0 && s <= seqs[i - 1])) fail(`bullet seqs not increasing: ${seqs}`);
    const wantModes = texts.map((_, i) => modes[i % modes.length]);
    if (JSON.stringify(seen.bullets.map((b) => b.mode)) !== JSON.stringify(wantModes)) fail(`modes: ${JSON.stringify(seen.bullets.map((b) => b.mode))}`);
    const colours = new Set(seen.bullets.map((b) => b.color));
    if (colours.size < Math.min(chats, 3)) fail(`bullets should show their colours, saw ${[...colours]}`);

    if (giftId !== null) {
      await two.click(`#gifts button[data-gift="${giftId}"]`);
      await waitFor(two, 'the gift acknowledged with a balance', () => document.getElementById('balance').textContent !== '–', null, 10000);
      result.balance = await two.evaluate(() => document.getElementById('balance').textContent);
      await waitFor(one, 'the gift animation on page one', () => window.__seen.gifts.length >= 1, null, 10000);
      result.gifts = await one.evaluate(() => window.__seen.gifts);
      if (!result.gifts[0].includes(result.sender)) fail(`gift animation does not name ${result.sender}: ${result.gifts[0]}`);
      await waitFor(one, 'the leaderboard to list the sender', (u) =>
        [...document.querySelectorAll('#leaderboard li span')].some((s) => s.textContent === u), result.sender, 10000);
    }

    result.screenshots.push(join(out, 'watch-page-one.png'), join(out, 'watch-page-two.png'));
    await one.screenshot({ path: result.screenshots[0] });
    await two.screenshot({ path: result.screenshots[1] });
    const final = await one.evaluate(() => window.__seen);
    result.overlapSamples = final.samples;
    if (final.overlaps > 0) fail(`bullets in one lane overlapped in ${final.overlaps} samples, first ${JSON.stringify(final.overlapSeen)}`);
    if (result.pageErrors) fail(`page errors: ${result.pageErrors.join('; ')}`);
    result.ok = true;
  } finally {
    await browser.close();
  }
}

main().then(() => {
  console.log(JSON.stringify(result));
}, (error) => {
  result.error = error.message;
  console.log(JSON.stringify(result));
  process.exit(1);
});
