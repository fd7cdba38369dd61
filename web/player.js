// The watch page's player: hls.js in low-latency mode, dash.js with `?player=dash`, or the
// browser's own WebRTC with `?player=webrtc` (WHEP: one offer posted to
// `/whep/live/{stream}`, under half a second behind live; `&rung=360p` pins a rung of the
// ladder instead of following the bandwidth estimate).
//
// A classic script at the top of the page's head, not a module: it starts fetching the
// playlists and loads its player library itself (the page preloads hls.js, the default)
// before the rest of the page is parsed, and starts the player once it is. The danmaku
// (`watch.js` and its modules) is loaded once the first frame is up, or after
// `DANMAKU_AFTER_MS`: the first frame is the measure of a watch page, and every request and
// script before the first playlist request shows in it (a browser also opens only six
// connections to a host, and the blocking playlist requests hold two).
//
// `window.shardcastWatch` holds what the player measured and showed (first frame, latency
// samples, stalls, catch-ups, errors); `watch.js` adds the room's side (bullets, gifts) to
// the same object. The browser tests and `just bench-latency` read it.
(() => {
  const params = new URLSearchParams(location.search);
  const stream = decodeURIComponent(location.pathname.replace(/^\/watch\//, '').replace(/\/$/, ''));
  const $ = (id) => document.getElementById(id);
  /** The page's `<video>`, once the page is parsed. */
  let video = null;

  const state = {
    stream,
    player: ['dash', 'webrtc'].includes(params.get('player')) ? params.get('player') : 'hls',
    firstFrameMs: null,
    latencySamples: [],
    stalls: 0,
    stallMs: 0,
    catchups: 0,
    errors: [],
  };
  window.shardcastWatch = state;

  function playerStatus(text, isError = false) {
    $('player-status').textContent = text;
    $('player-status').className = `status ${isError ? 'error' : 'muted'}`;
  }

  /** `?token=` of the page, passed on to the playlists and segments. */
  function playbackQuery() {
    const token = params.get('token');
    return token ? `?token=${encodeURIComponent(token)}` : '';
  }

  function watchVideo() {
    const firstFrame = () => {
      if (state.firstFrameMs === null) {
        state.firstFrameMs = Math.round(performance.now());
        playerStatus('');
      }
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(firstFrame);
    else video.addEventListener('playing', firstFrame, { once: true });
    let stalledAt = null;
    video.addEventListener('waiting', () => {
      if (state.firstFrameMs !== null && stalledAt === null) {
        stalledAt = performance.now();
        state.stalls += 1;
      }
    });
    video.addEventListener('playing', () => {
      if (stalledAt !== null) {
        state.stallMs += performance.now() - stalledAt;
        stalledAt = null;
      }
    });
    $('unmute').addEventListener('click', () => {
      video.muted = !video.muted;
      $('unmute').textContent = video.muted ? '🔇' : '🔊';
    });
  }

  function showLatency(seconds) {
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600) return;
    state.latencySamples.push(Math.round(seconds * 1000));
    if (state.latencySamples.length > 10000) state.latencySamples.shift();
    $('latency').textContent = `latency ${seconds.toFixed(2)} s`;
  }

  // ------------------------------------------------------------------------------- prefetch

  /** At most this many media playlists are fetched ahead (every variant and audio group). */
  const PREFETCH_PLAYLISTS_MAX = 8;
  /** Absolute URL → promise of the playlist's text (null when the fetch failed). */
  const prefetched = new Map();

  /** Fetches `url` as text, once and up to the limit; `then` gets the text. */
  function prefetchText(url, then) {
    if (prefetched.has(url) || prefetched.size > PREFETCH_PLAYLISTS_MAX) return;
    const text = fetch(url).then((r) => (r.ok ? r.text() : null)).catch(() => null);
    prefetched.set(url, text);
    text.then((t) => { if (t !== null && then) then(t); });
  }

  /**
   * The absolute URIs a playlist names: `media`, the variants' and renditions' playlists (of a
   * master playlist); `map`, the init segments (of a media playlist).
   */
  function uris(playlist, base) {
    const found = { media: [], map: [] };
    const lines = playlist.split('\n').map((l) => l.trim());
    lines.forEach((line, i) => {
      const attr = /URI="([^"]+)"/.exec(line);
      if (line.startsWith('#EXT-X-MEDIA:') && attr) found.media.push(attr[1]);
      else if (line.startsWith('#EXT-X-MAP:') && attr) found.map.push(attr[1]);
      else if (line.startsWith('#EXT-X-STREAM-INF') && lines[i + 1] && !lines[i + 1].startsWith('#')) {
        found.media.push(lines[i + 1]);
      }
    });
    const resolve = (u) => new URL(u, base).href;
    return { media: found.media.map(resolve), map: found.map.map(resolve) };
  }

  /**
   * Fetches what hls.js asks for first while hls.js itself loads and compiles (about 0.1 s
   * here): the master playlist, then every media playlist it names, and their init segments
   * (cacheable, so a plain fetch puts them in the browser's cache). hls.js takes each playlist
   * from here once, through `prefetchLoader`; anything else, or a fetch that failed, goes to
   * the network as usual.
   */
  function prefetchHls(src) {
    const master = new URL(src, location.href).href;
    prefetchText(master, (text) => {
      for (const media of uris(text, master).media) {
        prefetchText(media, (mediaText) => {
          for (const init of uris(mediaText, media).map) fetch(init).catch(() => {});
        });
      }
    });
  }

  /** hls.js's own loader, but a prefetched playlist answers its first request for that URL. */
  function prefetchLoader(Base) {
    return class PrefetchLoader extends Base {
      loadInternal() {
        const { context } = this;
        const url = context && !context.rangeEnd && new URL(context.url, location.href).href;
        const text = url && prefetched.get(url);
        if (!text) {
          super.loadInternal();
          return;
        }
        prefetched.delete(url);
        const network = () => super.loadInternal();
        text.then((data) => {
          if (this.context !== context || !this.stats || this.stats.aborted) return;
          if (data === null) {
            network();
            return;
          }
          const { stats } = this;
          const now = performance.now();
          stats.loading.first = Math.max(now, stats.loading.start);
          stats.loading.end = stats.loading.first;
          stats.loaded = data.length;
          stats.total = data.length;
          this.callbacks.onSuccess({ url, data, code: 200 }, stats, context, null);
        });
      }
    };
  }

  // ---------------------------------------------------------------------------------- hls.js

  function startHls(src) {
    if (!window.Hls.isSupported()) {
      video.src = src; // Safari plays HLS natively
      return;
    }
    // The target latency is the playlist's PART-HOLD-BACK; a player that fell behind catches
    // up at up to 1.1x (setting liveSyncDuration here would override the server's hold-back).
    // No worker: the segments are fMP4, which hls.js passes through without transmuxing, and a
    // worker costs a second parse of hls.js before the first append (~140 ms measured).
    const hls = new window.Hls({
      lowLatencyMode: true,
      backBufferLength: 30,
      maxLiveSyncPlaybackRate: 1.1,
      enableWorker: false,
      loader: prefetchLoader(window.Hls.DefaultConfig.loader),
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, (_, data) => {
      const select = $('quality');
      data.levels.forEach((level, i) => {
        const label = level.height ? `${level.height}p` : level.name || `#${i}`;
        const option = document.createElement('option');
        option.value = i;
        option.textContent = `${label} · ${Math.round(level.bitrate / 1000)} kb/s`;
        select.append(option);
      });
      select.addEventListener('change', () => { hls.currentLevel = Number(select.value); });
      video.play().catch(() => {});
    });
    hls.on(window.Hls.Events.LEVEL_SWITCHED, (_, data) => {
      const level = hls.levels[data.level];
      $('rendition').textContent = level && level.height ? `${level.height}p` : `#${data.level}`;
    });
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      state.errors.push(`hls: ${data.details}`);
      playerStatus(data.response && data.response.code === 404
        ? 'This stream is not live. Waiting for it…'
        : `Playback error (${data.details}); retrying…`, true);
      setTimeout(() => {
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
        else hls.loadSource(src);
      }, 2000);
    });
    setInterval(() => {
      const date = hls.playingDate;
      if (date && !video.paused) showLatency((Date.now() - date.getTime()) / 1000);
    }, 250);
    // hls.js speeds up to its target only while it holds more than a second of buffer, so a
    // player that started late stays about a second behind. When what it has buffered already
    // reaches the target position, jump there (`?catchup=0` turns this off).
    if (params.get('catchup') !== '0') {
      setInterval(() => {
        const target = hls.liveSyncPosition;
        if (video.paused || target === null || target === undefined) return;
        const behind = target - video.currentTime;
        const end = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
        if (behind > 0.3 && end - target > 0.1) {
          video.currentTime = target;
          state.catchups += 1;
        }
      }, 1000);
    }
    window.shardcastHls = hls;
  }

  function startDash(src) {
    const player = window.dashjs.MediaPlayer().create();
    // The MPD's ServiceDescription sets the latency target; `?delay=S` overrides it.
    const streaming = { liveCatchup: { enabled: true, maxDrift: 0, playbackRate: { min: -0.3, max: 0.3 } } };
    if (params.get('delay')) streaming.delay = { liveDelay: Number(params.get('delay')) };
    player.updateSettings({ streaming });
    player.initialize(video, src, true);
    player.on(window.dashjs.MediaPlayer.events.QUALITY_CHANGE_RENDERED, (e) => {
      const info = player.getCurrentRepresentationForType ? player.getCurrentRepresentationForType(e.mediaType) : null;
      if (info && info.height) $('rendition').textContent = `${info.height}p`;
    });
    player.on(window.dashjs.MediaPlayer.events.ERROR, (e) => {
      state.errors.push(`dash: ${JSON.stringify(e.error && e.error.message)}`);
      playerStatus('Playback error; retrying…', true);
    });
    setInterval(() => {
      if (!video.paused) showLatency(player.getCurrentLiveLatency());
    }, 250);
    window.shardcastDash = player;
  }

  // ---------------------------------------------------------------------------------- WHEP

  /**
   * Plays over WebRTC: an offer to receive video and audio goes to the WHEP endpoint (with the
   * page's `?token=` as a Bearer token), the answer comes back with the session's Location,
   * and leaving the page ends the session (DELETE). A failed or lost connection retries.
   */
  async function startWebrtc(endpoint) {
    const pc = new RTCPeerConnection();
    window.shardcastWebrtc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    pc.ontrack = (e) => {
      media.addTrack(e.track);
      video.srcObject = media;
      video.play().catch(() => {});
    };
    let location = null;
    const retry = (why) => {
      state.errors.push(`webrtc: ${why}`);
      playerStatus(`WebRTC: ${why}; retrying…`, true);
      pc.close();
      setTimeout(() => startWebrtc(endpoint), 2000);
    };
    pc.onconnectionstatechange = () => {
      state.webrtcState = pc.connectionState;
      if (pc.connectionState === 'failed') retry('the connection failed');
    };
    addEventListener('pagehide', () => {
      if (location) fetch(location, { method: 'DELETE', keepalive: true }).catch(() => {});
    });
    await pc.setLocalDescription(await pc.createOffer());
    const headers = { 'Content-Type': 'application/sdp' };
    if (params.get('token')) headers.Authorization = `Bearer ${params.get('token')}`;
    let answer;
    try {
      answer = await fetch(endpoint, { method: 'POST', headers, body: pc.localDescription.sdp });
    } catch (e) {
      return retry(`the offer was not answered (${e.message})`);
    }
    if (!answer.ok) {
      const why = (await answer.text()).trim();
      return retry(answer.status === 404 ? 'this stream is not live' : `${answer.status} ${why}`);
    }
    location = new URL(answer.headers.get('Location'), window.location.href).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await answer.text() });
    $('rendition').textContent = 'WebRTC';
    setInterval(async () => {
      // The receiver's jitter buffer is what the page adds to the network's delay.
      for (const stat of (await pc.getStats()).values()) {
        if (stat.type === 'inbound-rtp' && stat.kind === 'video' && stat.jitterBufferEmittedCount) {
          const buffer = stat.jitterBufferDelay / stat.jitterBufferEmittedCount;
          $('latency').textContent = `WebRTC buffer ${(buffer * 1000).toFixed(0)} ms`;
        }
      }
    }, 1000);
  }

  /** Loads a player library, then starts it; a build without it says so. */
  function load(file, start) {
    const script = document.createElement('script');
    script.src = `/web/vendor/${file}`;
    script.onload = start;
    script.onerror = () => {
      playerStatus(`The player (${file}) is missing from this build: run scripts/web.sh and rebuild.`, true);
    };
    document.head.append(script);
  }

  const DANMAKU_AFTER_MS = 1500;

  /** Loads the danmaku modules at the first frame, or after `DANMAKU_AFTER_MS`. */
  function loadDanmakuSoon() {
    let loaded = false;
    const loadOnce = () => {
      if (loaded) return;
      loaded = true;
      const script = document.createElement('script');
      script.type = 'module';
      script.src = '/web/watch.js';
      document.head.append(script);
    };
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(loadOnce);
    else video.addEventListener('playing', loadOnce, { once: true });
    setTimeout(loadOnce, DANMAKU_AFTER_MS);
  }

  // The prefetch and the player library start now, from the page's head; the player starts
  // once both the library and the page's elements are there.
  const parsed = new Promise((resolve) => {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', resolve, { once: true });
    else resolve();
  });
  parsed.then(() => {
    video = $('video');
    watchVideo();
    loadDanmakuSoon();
    playerStatus('Loading…');
    if (state.player !== 'hls') $('quality').disabled = true;
    // Another player reloads the page with its `?player=`.
    $('player').value = state.player;
    $('player').addEventListener('change', () => {
      const next = new URLSearchParams(location.search);
      next.set('player', $('player').value);
      location.search = next.toString();
    });
  });
  const base = `/live/${encodeURIComponent(stream)}`;
  if (state.player === 'webrtc') {
    const rung = params.get('rung') ? `/${encodeURIComponent(params.get('rung'))}` : '';
    parsed.then(() => startWebrtc(`/whep/live/${encodeURIComponent(stream)}${rung}`));
  } else if (state.player === 'dash') {
    load('dash.mediaplayer.min.js', () => parsed.then(() => startDash(`${base}/manifest.mpd${playbackQuery()}`)));
  } else {
    const src = `${base}/index.m3u8${playbackQuery()}`;
    if (params.get('prefetch') !== '0') prefetchHls(src);
    load('hls.min.js', () => parsed.then(() => startHls(src)));
  }
})();
