// What the browser WebRTC scripts share.

/** The page's player state and its receiver's stats. */
export async function observe(page) {
  return page.evaluate(async () => {
    const v = document.getElementById('video');
    const seen = {
      state: window.shardcastWatch && window.shardcastWatch.webrtcState,
      errors: window.shardcastWatch ? window.shardcastWatch.errors : [],
      width: v ? v.videoWidth : 0,
      height: v ? v.videoHeight : 0,
      currentTime: v ? v.currentTime : 0,
      framesDecoded: 0,
      audioPackets: 0,
      jitterBufferMs: null,
    };
    const pc = window.shardcastWebrtc;
    if (pc) {
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        // The transport the media goes over: the selected pair's local candidate's.
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const local = stats.get(s.localCandidateId);
          if (local) seen.transport = local.protocol;
        }
        if (s.type !== 'inbound-rtp') continue;
        if (s.kind === 'video') {
          seen.framesDecoded = s.framesDecoded || 0;
          const codec = s.codecId && stats.get(s.codecId);
          if (codec) seen.codec = codec.mimeType;
          seen.packetsLost = s.packetsLost;
          if (s.jitterBufferEmittedCount) {
            seen.jitterBufferMs = Math.round(1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount);
          }
        }
        if (s.kind === 'audio') seen.audioPackets = s.packetsReceived || 0;
      }
    }
    return seen;
  });
}

/** Takes the UDP candidates out of the server's answers to `page`'s WHEP and WHIP offers (as
 *  if a firewall blocked the server's UDP ports): the page can only connect over TCP. */
export async function dropUdpCandidates(page) {
  for (const pattern of ['**/whep/live/**', '**/whip/live/**']) {
    await page.route(pattern, async (route) => {
      const response = await route.fetch();
      const sdp = await response.text();
      const body = sdp.split('\r\n')
        .filter((l) => !(l.startsWith('a=candidate') && / udp /i.test(l))).join('\r\n');
      await route.fulfill({ response, body });
    });
  }
}
