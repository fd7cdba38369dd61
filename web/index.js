// `/`: the live streams, refreshed every few seconds, with thumbnails and viewer counts.
import { compact, el, getJson, playbackQuery } from './common.js';

const REFRESH_MS = 5000;
const THUMB_REFRESH_MS = 15000;

const grid = document.getElementById('streams');
const status = document.getElementById('status');
const cards = new Map();

function card(stream) {
  const name = stream.stream;
  const thumb = el('div', { class: 'thumb' }, el('span', { class: 'live' }, 'LIVE'), el('span', { class: 'viewers' }));
  const node = el('a', { class: 'card', href: `/watch/${encodeURIComponent(name)}${playbackQuery()}`, 'data-stream': name },
    thumb,
    el('div', { class: 'meta' }, el('div', { class: 'title' }), el('div', { class: 'sub' })));
  return { node, thumb, thumbAt: 0 };
}

function describe(stream) {
  const parts = [];
  if (stream.width && stream.height) parts.push(`${stream.height}p`);
  if (stream.fps) parts.push(`${Math.round(stream.fps)} fps`);
  if (stream.video_codec) parts.push(stream.video_codec);
  const minutes = Math.floor(stream.uptime_s / 60);
  parts.push(minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`);
  return parts.join(' · ');
}

function update(stream, now) {
  const name = stream.stream;
  let entry = cards.get(name);
  if (!entry) {
    entry = card(stream);
    cards.set(name, entry);
    grid.append(entry.node);
  }
  entry.node.querySelector('.title').textContent = stream.title || name;
  entry.node.querySelector('.sub').textContent = describe(stream);
  entry.node.querySelector('.viewers').textContent = `${compact(stream.viewer_estimate)} watching`;
  if (now - entry.thumbAt >= THUMB_REFRESH_MS) {
    entry.thumbAt = now;
    const sep = playbackQuery() ? '&' : '?';
    const url = `/live/${encodeURIComponent(name)}/thumb.jpg${playbackQuery()}${sep}t=${now}`;
    const probe = new Image();
    probe.onload = () => { entry.thumb.style.backgroundImage = `url("${url}")`; };
    probe.src = url;
  }
}

async function refresh() {
  try {
    const { streams } = await getJson('/api/v1/streams');
    const live = streams.filter((s) => s.live).sort((a, b) => b.viewer_estimate - a.viewer_estimate || a.stream.localeCompare(b.stream));
    const now = Date.now();
    const names = new Set(live.map((s) => s.stream));
    for (const [name, entry] of cards) {
      if (!names.has(name)) {
        entry.node.remove();
        cards.delete(name);
      }
    }
    live.forEach((s) => update(s, now));
    // Keep the order the list gives (most watched first).
    live.forEach((s) => grid.append(cards.get(s.stream).node));
    status.textContent = live.length ? '' : 'Nobody is live right now. Go live from the publish page.';
    status.className = 'muted';
  } catch (error) {
    status.textContent = error.status === 401 || error.status === 403
      ? 'The stream list is private on this server.'
      : `Cannot load the streams (${error.message}); retrying.`;
    status.className = 'error';
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
