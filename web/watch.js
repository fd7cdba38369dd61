// `/watch/{stream}`: the room's danmaku over the generated protocol client, beside the player
// (`player.js`, which runs first). `window.shardcastWatch` holds what the page measured and
// showed: the player's side (first frame, latency samples, stalls) from `player.js`, and the
// room's (bullets, gifts, who this is) added here. The browser tests and `just bench-latency`
// read it.
import {
  SUBPROTOCOL, decodeServer, encodeChat, encodeGift, encodeHeartbeat, encodeHello, encodeLike,
} from './vendor/shardcast-wire.js';
import {
  compact, el, forgetToken, getJson, guestToken, storedToken, webSettings,
} from './common.js';
import { Overlay } from './danmaku.js';

const stream = decodeURIComponent(location.pathname.replace(/^\/watch\//, '').replace(/\/$/, ''));
const $ = (id) => document.getElementById(id);
const overlay = new Overlay($('overlay'));

/** What the page measured and showed; `player.js` made it (or the page has no player). */
const state = Object.assign(window.shardcastWatch || { stream, firstFrameMs: null, errors: [] }, {
  bullets: [],
  gifts: [],
  user: '',
  role: '',
  seq: 0,
  connected: false,
  stage: [],
});
window.shardcastWatch = state;

const COLORS = [0xffffff, 0xfe0302, 0xff7204, 0xffaa02, 0xffd302, 0x00cd00, 0x00a2ff, 0xcc0273];
/** Kept in `state.bullets` / `state.gifts` for the page's drivers; older ones are dropped. */
const RECORD_MAX = 2000;
const LEADERBOARD_MS = 10000;

document.title = `${stream} · shardcast`;
$('title').textContent = stream;

// ---------------------------------------------------------------------------------- danmaku

const chat = {
  socket: null,
  token: '',
  lastSeq: 0,
  epoch: '',
  heartbeat: null,
  retryMs: 1000,
  color: 0xffffff,
  leaderboardTimer: null,
};

function chatStatus(text, isError = false) {
  $('chat-status').textContent = text;
  $('chat-status').className = `status ${isError ? 'error' : 'muted'}`;
}

function logLine(kind, who, text) {
  const log = $('chatlog');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(el('div', { class: `line ${kind}` }, who ? el('span', { class: 'who' }, who) : null, text));
  while (log.childElementCount > 300) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function record(list, item) {
  list.push(item);
  if (list.length > RECORD_MAX) list.shift();
}

function giftName(id) {
  const gift = (chat.gifts || []).find((g) => g.id === id);
  return gift ? gift.name : `gift #${id}`;
}

function onEvent(event) {
  if (event.seq <= chat.lastSeq) return; // a replay overlapping what was shown
  chat.lastSeq = event.seq;
  state.seq = event.seq;
  switch (event.type) {
    case 'chat': {
      const bullet = { seq: event.seq, text: event.text, color: event.color || 0xffffff, mode: event.mode, mine: event.user === state.user };
      record(state.bullets, { seq: event.seq, user: event.user, text: event.text, mode: event.mode, color: bullet.color });
      overlay.add(bullet);
      logLine('chat', event.user, event.text);
      break;
    }
    case 'like':
      $('likes').textContent = compact(event.total);
      break;
    case 'gift': {
      const name = giftName(event.giftId);
      record(state.gifts, { seq: event.seq, user: event.user, giftId: event.giftId, count: event.count, value: event.value });
      const burst = el('div', { class: 'gift-burst', 'data-seq': event.seq }, `🎁 ${event.user} sent ${event.count} × ${name}`);
      $('stage').append(burst);
      burst.addEventListener('animationend', () => burst.remove());
      logLine('gift', event.user, `sent ${event.count} × ${name} (${event.value})`);
      leaderboardSoon();
      break;
    }
    case 'system':
      logLine('system', '', event.text);
      refreshStage();
      break;
    default:
      break;
  }
}

function onMessage(msg) {
  switch (msg.type) {
    case 'welcome':
      state.user = msg.user;
      state.role = msg.role;
      state.connected = true;
      $('online').textContent = compact(msg.online);
      if (!chat.lastSeq || chat.epoch !== msg.epoch) chat.lastSeq = msg.seq;
      chat.epoch = msg.epoch;
      chat.retryMs = 1000;
      chatStatus(chat.token ? `Chatting as ${msg.user}` : 'Reading as a visitor (sign in to chat)');
      setInputs(Boolean(chat.token));
      clearInterval(chat.heartbeat);
      chat.heartbeat = setInterval(() => send(encodeHeartbeat({ clientTimeMs: Date.now() })), msg.heartbeatMs);
      break;
    case 'batch':
    case 'historyReply':
      msg.events.forEach(onEvent);
      break;
    case 'resync':
      // The room's order moved on (or restarted): continue from its sequence.
      chat.lastSeq = msg.seq;
      chat.epoch = msg.epoch;
      overlay.clear();
      logLine('system', '', 'Some comments were skipped to catch up.');
      break;
    case 'roomStats':
      $('online').textContent = compact(msg.online);
      $('heat').textContent = compact(msg.heat);
      $('likes').textContent = compact(msg.likes);
      break;
    case 'giftAck':
      $('balance').textContent = compact(msg.balance);
      $('gift-status').textContent = 'Sent, thank you!';
      break;
    case 'error':
      onError(msg);
      break;
    case 'kick':
      chatStatus(`Removed from the room: ${msg.reason}`, true);
      chat.retryMs = 60000;
      break;
    default:
      break;
  }
}

function onError(msg) {
  state.errors.push(`${msg.code} ${msg.message}`);
  if (msg.code === 401 && chat.token) {
    // The token expired or the server's secret changed: get another one on reconnect.
    forgetToken();
    chat.token = '';
    chat.retryMs = 200;
    return;
  }
  if (msg.code === 402) {
    $('gift-status').textContent = `Not enough balance (${msg.message}).`;
    return;
  }
  if (msg.code === 429) {
    chatStatus('Slow down a little: too many messages.', true);
    return;
  }
  chatStatus(`${msg.message} (${msg.code})`, true);
}

function send(bytes) {
  if (chat.socket && chat.socket.readyState === WebSocket.OPEN) {
    chat.socket.send(bytes);
    return true;
  }
  return false;
}

function setInputs(enabled) {
  for (const id of ['chat-text', 'chat-send', 'chat-mode', 'like']) $(id).disabled = !enabled;
  for (const b of $('gifts').querySelectorAll('button')) b.disabled = !enabled;
}

async function connect() {
  if (!chat.token) {
    chat.token = storedToken();
    if (!chat.token && chat.guests) {
      const guest = await guestToken();
      if (guest) chat.token = guest.token;
    }
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/ws`, SUBPROTOCOL);
  socket.binaryType = 'arraybuffer';
  chat.socket = socket;
  socket.onopen = () => {
    socket.send(encodeHello({
      room: stream, token: chat.token, lastSeq: chat.lastSeq, epoch: chat.epoch, clientVersion: 'web/1',
    }));
  };
  socket.onmessage = (e) => onMessage(decodeServer(new Uint8Array(e.data)));
  socket.onclose = () => {
    state.connected = false;
    clearInterval(chat.heartbeat);
    setInputs(false);
    const wait = chat.retryMs;
    chat.retryMs = Math.min(chat.retryMs * 2, 15000);
    chatStatus(`Disconnected; reconnecting in ${Math.round(wait / 1000)} s…`, true);
    setTimeout(connect, wait);
  };
}

async function refreshLeaderboard() {
  if (!chat.leaderboardPublic) return;
  try {
    const { top } = await getJson(`/api/v1/rooms/${encodeURIComponent(stream)}/leaderboard?limit=10`);
    $('leaderboard').replaceChildren(...top.map((row) =>
      el('li', {}, el('span', {}, row.user), el('b', {}, compact(row.value)))));
  } catch (error) {
    $('leaderboard').replaceChildren(el('li', { class: 'muted' }, `unavailable (${error.message})`));
  }
}

/** After a gift: one refresh shortly, however many gifts arrive meanwhile. */
function leaderboardSoon() {
  if (chat.leaderboardTimer) return;
  chat.leaderboardTimer = setTimeout(() => {
    chat.leaderboardTimer = null;
    refreshLeaderboard();
  }, 1500);
}

function setUpInputs(settings) {
  $('chat-text').maxLength = settings.text_max_chars;
  COLORS.forEach((color, i) => {
    const b = el('button', {
      class: `swatch${i === 0 ? ' on' : ''}`, type: 'button', title: `#${color.toString(16).padStart(6, '0')}`,
      style: { background: `#${color.toString(16).padStart(6, '0')}` },
    });
    b.addEventListener('click', () => {
      chat.color = color;
      $('swatches').querySelectorAll('.swatch').forEach((s) => s.classList.remove('on'));
      b.classList.add('on');
    });
    $('swatches').append(b);
  });
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('chat-text').value.trim();
    if (!text) return;
    if (send(encodeChat({ text, color: chat.color, mode: $('chat-mode').value }))) $('chat-text').value = '';
  });
  $('like').addEventListener('click', () => {
    if (!send(encodeLike({ count: 1 }))) return;
    const pop = el('span', { class: 'pop' }, '❤');
    $('like').append(pop);
    pop.addEventListener('animationend', () => pop.remove());
  });
  for (const gift of settings.gifts) {
    const b = el('button', { type: 'button', 'data-gift': gift.id }, `${gift.name} · ${gift.value}`);
    b.addEventListener('click', () => {
      const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
      if (send(encodeGift({ giftId: gift.id, count: 1, idempotencyKey: key }))) $('gift-status').textContent = 'Sending…';
    });
    $('gifts').append(b);
  }
  $('danmaku-toggle').addEventListener('click', () => {
    overlay.enabled = !overlay.enabled;
    if (!overlay.enabled) overlay.clear();
    $('danmaku-toggle').textContent = overlay.enabled ? '弹 on' : '弹 off';
  });
  setInputs(false);
}

// ------------------------------------------------------------------------------------ stage

/** Who is on a co-hosted stream's stage (`/live/{stream}/stage.json`), under the player; again
 * on every room notice (hosts joining, leaving, muting are notices). */
async function refreshStage() {
  const token = new URLSearchParams(location.search).get('token');
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  try {
    const { hosts } = await getJson(`/live/${encodeURIComponent(stream)}/stage.json${query}`);
    state.stage = hosts.map((h) => ({ slot: h.slot, name: h.name, muted: h.muted }));
    const names = hosts.map((h) => `${h.name}${h.muted ? ' (muted)' : ''}`);
    $('on-stage').textContent = names.length ? `On stage: ${names.join(', ')}` : '';
  } catch {
    // Not live (yet): nothing to show.
  }
}

async function main() {
  let settings = { guests: false, gifts: [], leaderboard_public: false, text_max_chars: 100 };
  try {
    settings = await webSettings();
  } catch (error) {
    chatStatus(`Cannot load the page settings: ${error.message}`, true);
  }
  chat.guests = settings.guests;
  chat.gifts = settings.gifts;
  chat.leaderboardPublic = settings.leaderboard_public;
  setUpInputs(settings);
  connect();
  refreshLeaderboard();
  refreshStage();
  setInterval(() => {
    refreshLeaderboard();
    refreshStage();
  }, LEADERBOARD_MS);
}

main();
