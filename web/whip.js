// Publishing from the browser over WebRTC (WHIP, RFC 9725): the page's camera and microphone
// (or any MediaStream) go to `POST /whip/live/{stream}` as H.264 (VP8 when the browser has no
// H.264 encoder) and Opus, with the stream
// key as a Bearer token. The server answers once the stream's home has accepted the
// publisher; from then on the stream is an ordinary one (LL-HLS, DASH, WHEP).

/** Puts H.264 first among a video transceiver's codecs (the server takes H.264 as it comes;
 *  VP8 it must make H.264 on a transcode thread). */
function preferH264(transceiver) {
  const caps = RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities('video');
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType === 'video/H264');
  const rest = caps.codecs.filter((c) => c.mimeType !== 'video/H264');
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rest]);
}

/**
 * Publishes `media` as `stream`. Resolves to `{ pc, location, stop }` once the server has
 * answered; rejects with the server's reason when it refuses (401/403: the key, 409: a
 * publisher is live). `onState` gets the connection's state as it changes; `maxVideoBps`
 * caps the video's bit rate.
 */
export async function publishWhip({
  stream, key, media, title = '', onState = () => {}, maxVideoBps = 2500000,
}) {
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video') preferH264(transceiver);
  }
  // A broadcast keeps its picture size and gives up frame rate when the bandwidth estimate
  // is low (the browser's default for cameras halves the size instead, and raises it again
  // only step by step): every viewer and rung gets the full picture from the start.
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const params = sender.getParameters();
    params.degradationPreference = 'maintain-resolution';
    if (params.encodings && params.encodings[0]) params.encodings[0].maxBitrate = maxVideoBps;
    await sender.setParameters(params).catch(() => {});
  }
  pc.onconnectionstatechange = () => onState(pc.connectionState);
  await pc.setLocalDescription(await pc.createOffer());
  const headers = { 'Content-Type': 'application/sdp' };
  if (key) headers.Authorization = `Bearer ${key}`;
  // `?title=` names the stream (a co-host's feed: the host's name on the stage).
  const query = title ? `?title=${encodeURIComponent(title)}` : '';
  const response = await fetch(`/whip/live/${encodeURIComponent(stream)}${query}`, {
    method: 'POST', headers, body: pc.localDescription.sdp,
  });
  if (!response.ok) {
    pc.close();
    const why = (await response.text()).trim();
    throw new Error(`${response.status}: ${why}`);
  }
  const location = new URL(response.headers.get('Location'), window.location.href).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  const stop = async () => {
    pc.close();
    await fetch(location, { method: 'DELETE' }).catch(() => {});
  };
  addEventListener('pagehide', () => {
    if (pc.connectionState !== 'closed') fetch(location, { method: 'DELETE', keepalive: true }).catch(() => {});
  });
  return { pc, location, stop };
}

/**
 * Plays `endpoint` (`/whep/live/{stream}`) over WebRTC (WHEP) into `video`, with `token` as
 * the Bearer token when given. Resolves to `{ pc, stop }` once the server has answered;
 * rejects with its reason (404: not live).
 */
export async function playWhep({ endpoint, video, token }) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const media = new MediaStream();
  pc.ontrack = (e) => {
    media.addTrack(e.track);
    video.srcObject = media;
    video.play().catch(() => {});
  };
  await pc.setLocalDescription(await pc.createOffer());
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(endpoint, { method: 'POST', headers, body: pc.localDescription.sdp });
  if (!response.ok) {
    pc.close();
    throw new Error(`${response.status}: ${(await response.text()).trim()}`);
  }
  const location = new URL(response.headers.get('Location'), window.location.href).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  const stop = () => {
    pc.close();
    fetch(location, { method: 'DELETE', keepalive: true }).catch(() => {});
  };
  addEventListener('pagehide', stop);
  return { pc, stop };
}
