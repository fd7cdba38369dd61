// What every page shares: the server's page settings, tokens, small DOM helpers.

/** GET a JSON document; throws with the server's reason on a non-2xx answer. */
export async function getJson(path, init = {}) {
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    const why = body && body.error ? body.error : text.trim() || response.statusText;
    const error = new Error(`${response.status}: ${why}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

let settings = null;
/** `/api/v1/web`, fetched once. */
export async function webSettings() {
  if (!settings) settings = await getJson('/api/v1/web');
  return settings;
}

/** An element with attributes and children (strings become text, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A chat token: `#token=` in the page's address (kept), else one stored, else none. */
export function storedToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    localStorage.setItem('shardcast.token', JSON.stringify({ token: fromHash, expires: 0 }));
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  try {
    const saved = JSON.parse(localStorage.getItem('shardcast.token') || 'null');
    if (saved && saved.token && (!saved.expires || saved.expires * 1000 > Date.now() + 60_000)) {
      return saved.token;
    }
  } catch { /* a damaged entry is ignored */ }
  return '';
}

/** Forgets the stored token (the server refused it). */
export function forgetToken() {
  localStorage.removeItem('shardcast.token');
}

/** A guest token from the server, stored; `null` when guests are off or refused. */
export async function guestToken() {
  try {
    const guest = await getJson('/api/v1/guest', { method: 'POST' });
    localStorage.setItem('shardcast.token', JSON.stringify({ token: guest.token, expires: guest.expires_unix_s }));
    return guest;
  } catch (error) {
    console.warn('no guest token:', error.message);
    return null;
  }
}

/** `1234567` → `1.2M`. */
export function compact(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return String(n);
}

/** `/live/` URLs carry the page's `?token=` when playback needs one. */
export function playbackQuery() {
  const token = new URLSearchParams(location.search).get('token');
  return token ? `?token=${encodeURIComponent(token)}` : '';
}
