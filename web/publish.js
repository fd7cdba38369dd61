// `/publish`: how to publish to this server from OBS and ffmpeg, filled in with its address
// and, for whoever shows the publish key or an admin token, the key; and going live from
// this browser's camera over WebRTC (WHIP).
import { getJson, webSettings } from './common.js';
import { playWhep, publishWhip } from './whip.js';

/** The key WHIP sends as its Bearer token (the server key, or what the user entered). */
let whipKey = '';

const $ = (id) => document.getElementById(id);

function status(text, isError = false) {
  $('status').textContent = text;
  $('status').className = `status ${isError ? 'error' : 'muted'}`;
}

function fill(settings, stream, key) {
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  // A page read over HTTPS offers RTMPS when the server has it: the key is then encrypted too.
  const secure = location.protocol === 'https:' && settings.rtmps_port;
  const scheme = secure ? 'rtmps' : 'rtmp';
  const port = secure ? settings.rtmps_port : settings.rtmp_port || 1935;
  const server = `${scheme}://${host}:${port}/${settings.rtmp_app}`;
  const streamKey = key ? `${stream}?key=${key}` : `${stream}?key=KEY`;
  $('obs-server').textContent = server;
  $('obs-key').textContent = streamKey;
  const target = `"${server}/${streamKey}"`;
  const x264 = '-c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 -b:v 3000k -maxrate 3000k -bufsize 3000k -c:a aac -b:a 128k -ar 48000';
  $('ffmpeg-file').textContent = `ffmpeg -re -stream_loop -1 -i input.mp4 ${x264} -f flv ${target}`;
  $('ffmpeg-test').textContent = 'ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 '
    + `${x264} -pix_fmt yuv420p -f flv ${target}`;
  const page = `${location.origin}/watch/${encodeURIComponent(stream)}`;
  $('watch-link').href = page;
  $('watch-link').textContent = page;
  $('hls-url').textContent = `${location.origin}/live/${encodeURIComponent(stream)}/index.m3u8`;
  $('dash-url').textContent = `${location.origin}/live/${encodeURIComponent(stream)}/manifest.mpd`;
  $('whep-url').textContent = `${location.origin}/whep/live/${encodeURIComponent(stream)}`;
  $('whip-url').textContent = `${location.origin}/whip/live/${encodeURIComponent(stream)}`;
  whipKey = key;
}

function liveStatus(text, isError = false) {
  $('live-status').textContent = text;
  $('live-status').className = `status ${isError ? 'error' : 'muted'}`;
}

/**
 * Co-hosting: while this page publishes feed `{program}~{slot}`, it plays every other host on
 * the stage over WHEP (their feeds as they sent them), following `/live/{program}/stage.json`.
 */
function watchCohosts(feed, key) {
  const match = /^(.+)~(\d)$/.exec(feed);
  if (!match) return () => {};
  const [, program, mine] = match;
  const playing = new Map(); // slot → { box, session }
  const refresh = async () => {
    let hosts = [];
    try {
      ({ hosts } = await getJson(`/live/${encodeURIComponent(program)}/stage.json`));
    } catch {
      return; // the program is not live yet
    }
    const others = hosts.filter((h) => String(h.slot) !== mine);
    for (const host of others) {
      if (playing.has(host.slot)) {
        playing.get(host.slot).label.textContent = `${host.name}${host.muted ? ' (muted)' : ''}`;
        continue;
      }
      const video = document.createElement('video');
      Object.assign(video, { muted: true, autoplay: true, playsInline: true });
      video.dataset.slot = host.slot;
      const label = document.createElement('span');
      label.textContent = host.name;
      const box = document.createElement('figure');
      box.append(video, label);
      $('cohosts').append(box);
      const entry = { box, label, session: null };
      playing.set(host.slot, entry);
      playWhep({ endpoint: host.whep, video, token: key })
        .then((session) => { entry.session = session; })
        .catch(() => { box.remove(); playing.delete(host.slot); });
    }
    for (const [slot, entry] of playing) {
      if (others.some((h) => h.slot === slot)) continue;
      if (entry.session) entry.session.stop();
      entry.box.remove();
      playing.delete(slot);
    }
  };
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => {
    clearInterval(timer);
    for (const entry of playing.values()) {
      if (entry.session) entry.session.stop();
      entry.box.remove();
    }
    playing.clear();
  };
}

/** "Go live from this browser": the camera and microphone, published over WHIP. */
function setUpBrowserPublishing() {
  let session = null;
  let stopCohosts = () => {};
  $('go-live').addEventListener('click', async () => {
    const stream = $('stream').value.trim() || 'mystream';
    $('go-live').disabled = true;
    try {
      liveStatus('Asking for the camera…');
      const media = await navigator.mediaDevices.getUserMedia({
        video: { width: 1280, height: 720, frameRate: 30 }, audio: true,
      });
      $('preview').srcObject = media;
      liveStatus('Connecting…');
      const key = whipKey || $('cred').value.trim();
      session = await publishWhip({
        stream, key, media, title: $('title').value.trim(),
        onState: (state) => {
          window.shardcastPublish = { state, stream };
          liveStatus(state === 'connected' ? `Live as ${stream}` : state, state === 'failed');
        },
      });
      window.shardcastPublishSession = session;
      stopCohosts = watchCohosts(stream, key);
      $('stop-live').disabled = false;
    } catch (error) {
      liveStatus(`Cannot go live: ${error.message}`, true);
      $('go-live').disabled = false;
    }
  });
  $('stop-live').addEventListener('click', async () => {
    if (session) await session.stop();
    session = null;
    stopCohosts();
    const media = $('preview').srcObject;
    if (media) media.getTracks().forEach((t) => t.stop());
    $('preview').srcObject = null;
    $('stop-live').disabled = true;
    $('go-live').disabled = false;
    liveStatus('Stopped.');
  });
}

async function show(settings) {
  const stream = $('stream').value.trim() || 'mystream';
  const cred = $('cred').value.trim();
  if (!cred) {
    fill(settings, stream, '');
    status('Enter the publish key or an admin token to fill in the key.');
    return;
  }
  try {
    const info = await getJson('/api/v1/publish-info', { headers: { Authorization: `Bearer ${cred}` } });
    sessionStorage.setItem('shardcast.publish', cred);
    if (info.mode === 'server_key') {
      fill(settings, stream, info.key);
      status('The server key publishes any stream name.');
    } else if (info.mode === 'open') {
      fill(settings, stream, '');
      $('obs-key').textContent = stream;
      status('Publishing is open on this server (media.publish_open): no key needed.');
    } else {
      fill(settings, stream, '');
      status('This server uses per-stream keys or publish tokens (media.publish_keys, media.publish_tokens): use the one you were given in place of KEY, or ?token=.');
    }
  } catch (error) {
    fill(settings, stream, '');
    status(error.status === 403 ? 'That is neither the publish key nor an admin token.' : `Cannot check it: ${error.message}`, true);
  }
}

async function main() {
  // "Go live" works from the first moment: it needs none of the settings fetched below (a
  // click before they came used to do nothing).
  setUpBrowserPublishing();
  let settings = { rtmp_port: 1935, rtmp_app: 'live' };
  try {
    settings = await webSettings();
  } catch (error) {
    status(`Cannot load the page settings: ${error.message}`, true);
  }
  if (!settings.rtmp_port) status('RTMP ingest is off on this server (rtmp.listen).', true);
  $('cred').value = sessionStorage.getItem('shardcast.publish') || '';
  $('cred-form').addEventListener('submit', (e) => {
    e.preventDefault();
    show(settings);
  });
  show(settings);
}

main();
