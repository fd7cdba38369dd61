//! A shard's WebRTC sessions: created by a WHEP or WHIP offer over HTTP on this shard, reached
//! by datagrams on this shard's UDP socket, driven by its timer. Each session is
//! [`super::session::Session`]; this file is the table, the demultiplexing of datagrams to
//! sessions, the bounds, and the viewers' side (the streams' feeds); `publish.rs` is the
//! publishers' side.

use super::abr::{Abr, Layer};
use super::feed::{Feed, FeedError};
use super::publish::{IngestEvent, Publisher};
use super::session::{PeerRole, Session, SessionState};
use crate::media::msg::Watching;
use shardcast_engine::{Ctx, UdpId};
use shardcast_media::{Sample, TrackConfig, TrackKind};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::Codec;
use str0m::net::Protocol;

/// The RTP clock of video, and the media time of forwarded video samples.
const VIDEO_RATE: u32 = 90_000;
/// The RTP clock of Opus, and the media time of its packets.
const OPUS_RATE: u32 = 48_000;

/// What a shard's WebRTC runs with (`[webrtc]`).
#[derive(Debug, Clone)]
pub struct WebrtcSettings {
    /// The engine's UDP socket for WebRTC.
    pub socket: UdpId,
    /// The address viewers are told to send to, when the socket is bound to all addresses (or
    /// behind NAT): `webrtc.public_ip`.
    pub public_ip: Option<IpAddr>,
    /// Sessions a shard holds at once; an offer past it is answered 503.
    pub max_sessions_per_shard: usize,
    /// Sessions the server holds at once, every shard's together.
    pub max_sessions: usize,
    /// Sessions open now on every shard (each shard adds and takes away its own).
    pub sessions_total: Arc<AtomicUsize>,
    /// How often a WHIP publisher is asked for a keyframe when it sends none (browsers send
    /// one only when asked): the segment target, so that segments can be cut.
    pub keyframe_interval_ms: u64,
    /// Adaptive viewers' starting estimate (`webrtc.abr_start_kbps`); None: off, or no H.264
    /// ladder to make layers.
    pub abr_start_bps: Option<u64>,
    /// The listener for ICE over TCP (`webrtc.tcp`), one port per shard; None: off.
    pub tcp_listener: Option<shardcast_engine::ListenerId>,
    /// The video codecs a WHIP publisher may send, best first: H.264, and VP8 when a
    /// transcode worker can make it H.264.
    pub publish_video: &'static [str0m::format::Codec],
}

/// One session in the table. A datagram from an address no session has claimed yet must be a
/// STUN check naming a waiting session's username fragment (one lookup), and pass that
/// session's own check (`Session::accepts`: its credentials); after that the peer's address
/// finds the session at once. Anything else is dropped at the cost of a hash lookup.
pub(super) struct Entry {
    pub(super) session: Session,
    /// The resource's id in its Location (`/whep/session/{id}`): the shard's index, `-`, and
    /// 128 unguessable bits, so that only who created the session can end it.
    pub(super) id: String,
    pub(super) stream: Arc<str>,
    peer: Option<SocketAddr>,
    /// A WHIP publisher's side; None for a viewer.
    pub(super) publisher: Option<Box<Publisher>>,
    /// An adaptive viewer's layers; None for one that gets one feed.
    pub(super) abr: Option<Box<Abr>>,
    /// The TCP connection its peer reached it on (ICE over TCP), if that is how.
    pub(super) tcp: Option<shardcast_engine::ConnId>,
}

/// This shard's sessions.
pub struct Webrtc {
    pub(super) settings: Arc<WebrtcSettings>,
    base: Instant,
    pub(super) sessions: slab::Slab<Entry>,
    by_peer: HashMap<SocketAddr, usize>,
    /// Sessions still without a peer, by their ICE username fragment: a datagram from an
    /// unknown address finds its session in one lookup, or is dropped.
    by_ufrag: HashMap<String, usize>,
    /// Datagrams dropped: from no session's peer and not a STUN check for a session.
    dropped: u64,
    ids: RandomState,
    pub(super) serial: u64,
    pub(super) out: super::session::Outbox,
    /// The streams with sessions here: their media, and the sessions to write it to.
    feeds: HashMap<Arc<str>, (Feed, Vec<usize>)>,
    /// Streams that gained their first session here or lost their last since
    /// [`Webrtc::take_watch_changes`]: the caller tells their homes.
    watch_changes: Vec<(Arc<str>, Watching)>,
    /// Forwarded samples that could not be made into frames.
    pub frames_unusable: u64,
    /// What publishers sent (and their ends), for the caller to hand their streams' homes.
    pub(super) ingest: Vec<IngestEvent>,
    /// Streams whose viewers here need a keyframe (a new viewer, a PLI), for the caller to
    /// ask the streams' homes (which ask a WHIP publisher; an RTMP one cannot be asked).
    keyframe_wanted: Vec<Arc<str>>,
    /// Adaptive viewers' switches between layers since the caller last took them.
    pub layer_switches: u64,
    /// Viewers whose media took their own send path (`direct.rs`), and packets it sent
    /// again on their NACKs, since the caller last took them.
    pub direct_started: u64,
    pub packets_resent: u64,
    /// Peers on TCP connections (ICE over TCP).
    pub(super) tcp: super::tcp::TcpPeers,
}

/// What the sessions' outbox holds at most while a frame is written to each viewer: past it,
/// it goes to the engine's outbound queue (which sends when full). A keyframe to a thousand
/// viewers is tens of megabytes.
const OUT_FLUSH_BYTES: usize = 1 << 20;

/// Hands what `out` holds to the engine: datagrams to the UDP socket, or framed to a peer
/// on TCP (ICE over TCP).
fn send_out<M: Send>(
    out: &mut super::session::Outbox,
    tcp: &super::tcp::TcpPeers,
    socket: UdpId,
    cx: &mut Ctx<M>,
) {
    out.drain(|proto, to, data| match proto {
        Protocol::Tcp => super::tcp::send_framed(tcp, cx, to, data),
        _ => {
            cx.send_datagram(socket, to, data);
        }
    });
}

/// Keyframes asked for one stream's viewers on a shard are at least this far apart.
const KEYFRAME_ASK_GAP: Duration = Duration::from_millis(300);

impl Webrtc {
    pub fn new(settings: Arc<WebrtcSettings>) -> Self {
        Webrtc {
            settings,
            base: Instant::now(),
            sessions: slab::Slab::new(),
            by_peer: HashMap::new(),
            by_ufrag: HashMap::new(),
            dropped: 0,
            ids: RandomState::new(),
            serial: 0,
            out: Default::default(),
            feeds: HashMap::new(),
            watch_changes: Vec::new(),
            frames_unusable: 0,
            ingest: Vec::new(),
            keyframe_wanted: Vec::new(),
            layer_switches: 0,
            direct_started: 0,
            packets_resent: 0,
            tcp: Default::default(),
        }
    }

    /// Sessions open on this shard.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    pub(super) fn now<M: Send>(&self, cx: &Ctx<M>) -> Instant {
        self.base + Duration::from_millis(cx.now_ms())
    }

    /// A WHEP offer for `feed` (a stream, or `{stream}/{rung}`): the answer's SDP and the
    /// session's id, or the HTTP status and why. With `layers` (and
    /// `webrtc.abr_start_kbps` with an H.264 ladder), the viewer is adaptive: it starts on a
    /// layer and moves between them as they come ([`super::abr`]).
    pub fn offer<M: Send>(
        &mut self,
        cx: &mut Ctx<M>,
        feed: &Arc<str>,
        sdp: &str,
        layers: Vec<Layer>,
    ) -> Result<(String, String), (u16, String)> {
        let now = self.now(cx);
        // Adaptive whenever the caller gives layers: `abr_start_bps` is set only with an
        // H.264 ladder, and the caller gives a lone source only when a rung of it is coming
        // (`update_layers` gives it to the viewer then).
        let abr = (self.settings.abr_start_bps)
            .filter(|_| !layers.is_empty())
            .map(|start| (Box::new(Abr::new(layers, start, now)), start));
        let feed = abr
            .as_ref()
            .map_or(feed, |(abr, _)| abr.current_feed())
            .clone();
        let bwe = abr.as_ref().map(|&(_, start)| start);
        let (key, answer, id) = self.open(cx, &feed, sdp, (PeerRole::Viewer, bwe))?;
        if let Some((abr, _)) = abr {
            let entry = &mut self.sessions[key];
            entry.session.set_bitrates(abr.bitrates());
            entry.abr = Some(abr);
        }
        self.subscribe(key, &feed);
        Ok((answer, id))
    }

    /// Session `key` gets `feed`'s media from now on (the first session of a feed here asks
    /// its home for it).
    pub(super) fn subscribe(&mut self, key: usize, feed: &Arc<str>) {
        let (_, keys) = self.feeds.entry(feed.clone()).or_insert_with(|| {
            self.watch_changes.push((feed.clone(), Watching::Yes));
            match super::feed::is_vp8_feed(feed) {
                true => (Feed::vp8(), Vec::new()),
                false => (Feed::default(), Vec::new()),
            }
        });
        keys.push(key);
    }

    /// Moves the viewers of feed `from` whose answer has `codec` to feed `to` (a VP8
    /// publisher's viewers to the stream's H.264 when a backup that sends H.264 takes over,
    /// and back): each starts again from a keyframe of `to`, asked for at once. Adaptive
    /// viewers stay. Returns how many moved.
    pub fn move_viewers<M: Send>(
        &mut self,
        cx: &Ctx<M>,
        (from, to): (&str, &Arc<str>),
        codec: Codec,
    ) -> usize {
        let Some((from, (_, keys))) = self.feeds.get_key_value(from) else {
            return 0;
        };
        let from = from.clone();
        let movers: Vec<usize> = (keys.iter().copied())
            .filter(|&key| {
                let entry = &self.sessions[key];
                entry.abr.is_none() && entry.session.takes(codec)
            })
            .collect();
        for &key in &movers {
            self.unsubscribe(key, &from);
            self.subscribe(key, to);
            let entry = &mut self.sessions[key];
            entry.stream = to.clone();
            entry.session.restart_video();
        }
        if !movers.is_empty() {
            let now = self.now(cx);
            self.want_keyframe(to, now);
        }
        movers.len()
    }

    /// The sessions of each feed here of `stream` (its source and its rungs).
    pub(super) fn feeds_of<'a>(&'a self, stream: &'a str) -> impl Iterator<Item = &'a [usize]> {
        (self.feeds.iter())
            .filter(move |(feed, _)| super::feed::rtc_feed(feed).0 == stream)
            .map(|(_, (_, keys))| keys.as_slice())
    }

    /// Session `key` no longer gets `feed`'s media (the last session of a feed here tells
    /// its home to stop).
    pub(super) fn unsubscribe(&mut self, key: usize, feed: &Arc<str>) {
        if let Some((_, keys)) = self.feeds.get_mut(feed) {
            keys.retain(|&k| k != key);
            if keys.is_empty() {
                self.feeds.remove(feed);
                self.watch_changes.push((feed.clone(), Watching::No));
            }
        }
    }

    /// A session for a peer in `role`: its key, the answer's SDP and the resource's id.
    pub(super) fn open<M: Send>(
        &mut self,
        cx: &mut Ctx<M>,
        stream: &Arc<str>,
        sdp: &str,
        (role, bwe_start): (PeerRole, Option<u64>),
    ) -> Result<(usize, String, String), (u16, String)> {
        if self.sessions.len() >= self.settings.max_sessions_per_shard {
            return Err((
                503,
                "too many WebRTC sessions (webrtc.max_sessions_per_shard)".into(),
            ));
        }
        // Two shards may both take the last place: the bound is exceeded by at most the
        // number of shards less one.
        if self.settings.sessions_total.load(Ordering::Relaxed) >= self.settings.max_sessions {
            return Err((503, "too many WebRTC sessions (webrtc.max_sessions)".into()));
        }
        let Some(mut local) = cx.udp_local_addr(self.settings.socket) else {
            return Err((503, "WebRTC is not listening".into()));
        };
        if let Some(ip) = self.settings.public_ip {
            local.set_ip(ip);
        }
        // ICE over TCP: the shard's own TCP port, at the address the UDP candidate names.
        let tcp_local = (self.settings.tcp_listener)
            .and_then(|l| cx.listener_local_addr(l))
            .map(|tcp| SocketAddr::new(local.ip(), tcp.port()));
        let now = self.now(cx);
        let video: &[Codec] = match role {
            // A VP8 feed's viewer can be moved to the stream's H.264 (a backup that sends
            // H.264 takes over), if its offer has it.
            PeerRole::Viewer if super::feed::is_vp8_feed(stream) => &[Codec::Vp8, Codec::H264],
            PeerRole::Viewer => &[Codec::H264],
            PeerRole::Publisher => self.settings.publish_video,
        };
        let (session, answer) =
            Session::answer(now, sdp, (local, tcp_local), (role, bwe_start), video)
                .map_err(|e| (e.status(), e.to_string()))?;
        self.serial += 1;
        let id = format!(
            "{}-{:016x}{:016x}",
            cx.shard().0,
            self.ids.hash_one(self.serial),
            self.ids.hash_one(!self.serial)
        );
        let ufrag = session.ufrag().to_string();
        let key = self.sessions.insert(Entry {
            session,
            id: id.clone(),
            stream: stream.clone(),
            peer: None,
            publisher: None,
            abr: None,
            tcp: None,
        });
        self.settings.sessions_total.fetch_add(1, Ordering::Relaxed);
        self.by_ufrag.insert(ufrag, key);
        Ok((key, answer, id))
    }

    /// Ends the session `id` (a DELETE of its resource); false when there is none.
    pub fn delete(&mut self, id: &str) -> bool {
        let Some(key) = self
            .sessions
            .iter()
            .find(|(_, e)| e.id == id)
            .map(|(k, _)| k)
        else {
            return false;
        };
        self.sessions[key].session.close();
        self.remove(key);
        true
    }

    /// A datagram on the WebRTC socket: to the session it belongs to, or dropped.
    pub fn on_datagram<M: Send>(&mut self, cx: &mut Ctx<M>, from: SocketAddr, data: &[u8]) {
        let now = self.now(cx);
        let key = match self.by_peer.get(&from) {
            Some(&key) => key,
            None => {
                let Some(key) = self.claim(now, (Protocol::Udp, from), data) else {
                    self.dropped += 1;
                    return;
                };
                self.by_peer.insert(from, key);
                self.sessions[key].peer = Some(from);
                key
            }
        };
        self.datagram_to(key, now, (Protocol::Udp, from), data);
        self.after_input(cx, key, now);
    }

    /// A datagram from its peer to session `key` (over UDP, or unframed from its ICE-TCP
    /// connection), counting what its own send path started and sent again.
    pub(super) fn datagram_to(
        &mut self,
        key: usize,
        now: Instant,
        from: (Protocol, SocketAddr),
        data: &[u8],
    ) {
        let session = &mut self.sessions[key].session;
        let (was_direct, resent) = (session.is_direct(), session.resent());
        session.handle_datagram(now, from, data, &mut self.out);
        self.direct_started += u64::from(!was_direct && session.is_direct());
        self.packets_resent += session.resent() - resent;
    }

    /// The session waiting for its peer that a first packet from `from` is for: a STUN check
    /// naming its username fragment with its credentials. It waits no longer.
    pub(super) fn claim(
        &mut self,
        now: Instant,
        from: (Protocol, SocketAddr),
        data: &[u8],
    ) -> Option<usize> {
        let key = super::session::stun_local_ufrag(data)
            .and_then(|ufrag| self.by_ufrag.get(ufrag).copied())
            .filter(|&key| self.sessions[key].session.accepts(now, from, data))?;
        self.by_ufrag.remove(self.sessions[key].session.ufrag());
        Some(key)
    }

    /// After session `key` took a packet: a publisher's frames go on, a viewer's wants are
    /// acted on, what it has to send is sent, and a session that ended is removed.
    pub(super) fn after_input<M: Send>(&mut self, cx: &mut Ctx<M>, key: usize, now: Instant) {
        let entry = &mut self.sessions[key];
        if entry.publisher.is_some() {
            self.ingest_frames(key, now);
        } else {
            if entry.session.wants_keyframe() {
                let stream = entry.stream.clone();
                self.want_keyframe(&stream, now);
            }
            self.adapt(key, now);
        }
        self.send(cx);
        if self.sessions[key].session.state() == SessionState::Closed {
            self.remove(key);
        }
    }

    /// Drives every session whose time came; returns the next deadline (shard ms).
    pub fn on_timer<M: Send>(&mut self, cx: &mut Ctx<M>) -> Option<u64> {
        let now = self.now(cx);
        let due: Vec<usize> = (self.sessions.iter())
            .filter(|(_, e)| e.session.next_timeout() <= now)
            .map(|(k, _)| k)
            .collect();
        for key in due {
            self.sessions[key]
                .session
                .handle_timeout(now, &mut self.out);
            self.adapt(key, now);
            self.send(cx);
            if self.sessions[key].session.state() == SessionState::Closed {
                log::debug!("webrtc: a peer of {} left", self.sessions[key].stream);
                self.remove(key);
            }
        }
        self.next_deadline_ms()
    }

    /// The earliest session deadline, in shard ms.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        (self.sessions.iter())
            .map(|(_, e)| e.session.next_timeout())
            .min()
            .map(|at| at.saturating_duration_since(self.base).as_millis() as u64)
    }

    pub(super) fn send<M: Send>(&mut self, cx: &mut Ctx<M>) {
        send_out(&mut self.out, &self.tcp, self.settings.socket, cx);
        for conn in self.tcp.closing.drain(..) {
            cx.close(conn);
        }
    }

    pub(super) fn remove(&mut self, key: usize) {
        let entry = self.sessions.remove(key);
        self.settings.sessions_total.fetch_sub(1, Ordering::Relaxed);
        if let Some(publisher) = &entry.publisher {
            self.publisher_gone(&entry.stream, publisher);
        }
        if let Some(peer) = entry.peer {
            self.by_peer.remove(&peer);
        }
        if let Some(conn) = entry.tcp {
            self.tcp.closing.push(conn);
        }
        if self.by_ufrag.get(entry.session.ufrag()) == Some(&key) {
            self.by_ufrag.remove(entry.session.ufrag());
        }
        if let Some(pending) = entry.abr.as_ref().and_then(|abr| abr.pending_feed()) {
            self.unsubscribe(key, pending);
        }
        self.unsubscribe(key, &entry.stream);
    }

    /// Asks for a keyframe of `stream` on behalf of its viewers here, at most once per
    /// [`KEYFRAME_ASK_GAP`].
    pub(super) fn want_keyframe(&mut self, stream: &Arc<str>, now: Instant) {
        let Some((feed, _)) = self.feeds.get_mut(stream) else {
            return;
        };
        let due = (feed.last_keyframe_ask)
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_ASK_GAP);
        if due {
            feed.last_keyframe_ask = Some(now);
            self.keyframe_wanted.push(stream.clone());
        }
    }

    /// Streams whose viewers here need a keyframe, since the last call.
    pub fn take_keyframe_wanted(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.keyframe_wanted)
    }

    /// Streams that gained their first session or lost their last since the last call.
    pub fn take_watch_changes(&mut self) -> Vec<(Arc<str>, Watching)> {
        std::mem::take(&mut self.watch_changes)
    }

    /// The configuration `stream`'s next samples of its track follow.
    pub fn on_config(&mut self, stream: &str, config: TrackConfig) {
        if let Some((feed, _)) = self.feeds.get_mut(stream) {
            feed.set_config(config);
        }
    }

    /// An Opus packet of `stream` (48 kHz ticks): written to each session of the stream here.
    pub fn on_opus<M: Send>(&mut self, cx: &mut Ctx<M>, stream: &str, sample: &Sample) {
        let now = self.now(cx);
        let Some((feed, keys)) = self.feeds.get_mut(stream) else {
            return;
        };
        let wallclock = feed.wallclock(now, sample.dts, OPUS_RATE);
        let data: Arc<[u8]> = Arc::from(&sample.data[..]);
        let mut closed = Vec::new();
        for &key in keys.iter() {
            let entry = &mut self.sessions[key];
            if *entry.stream != *stream {
                continue; // an adaptive viewer waiting for this layer: its sound is the other's
            }
            let session = &mut entry.session;
            session.write_audio(wallclock, sample.dts, &data, &mut self.out);
            if session.state() == SessionState::Closed {
                closed.push(key);
            }
            if self.out.bytes() >= OUT_FLUSH_BYTES {
                send_out(&mut self.out, &self.tcp, self.settings.socket, cx);
            }
        }
        self.send(cx);
        for key in closed {
            self.remove(key);
        }
    }

    /// A sample of `stream` from its home: made ready once, written to each session of the
    /// stream here.
    pub fn on_sample<M: Send>(
        &mut self,
        cx: &mut Ctx<M>,
        stream: &str,
        track: TrackKind,
        sample: &Sample,
    ) {
        let now = self.now(cx);
        let Some((feed, keys)) = self.feeds.get_mut(stream) else {
            return;
        };
        if track == TrackKind::Audio {
            // A WHIP publisher's Opus goes out as it came; AAC has no WebRTC payload (its Opus
            // comes from the transcode thread, `on_opus`).
            if matches!(feed.audio(), Some(TrackConfig::Opus(_))) {
                self.on_opus(cx, stream, sample);
            }
            return;
        }
        let b_frames_before = feed.b_frames_seen;
        let frame = feed.video_frame(sample);
        if feed.b_frames_seen && !b_frames_before {
            log::warn!(
                "webrtc: {stream} has B-frames and no H.264 rung to stand in; WebRTC viewers \
                 get them in decode order and may stutter (publish without B-frames, or \
                 transcode with an H.264 ladder)"
            );
        }
        let frame = match frame {
            Ok(frame) => Arc::new(frame),
            Err(FeedError::NoConfig | FeedError::AwaitingKeyframe) => return,
            Err(e) => {
                self.frames_unusable += 1;
                log::debug!("webrtc: a frame of {stream} dropped: {e}");
                return;
            }
        };
        let wallclock = feed.wallclock(now, frame.rtp_time, VIDEO_RATE);
        let (mut closed, mut wanted, mut switched) = (Vec::new(), false, Vec::new());
        for &key in keys.iter() {
            let entry = &mut self.sessions[key];
            if *entry.stream != *stream {
                // An adaptive viewer waiting for this layer: it moves over at a keyframe.
                if !frame.keyframe {
                    continue;
                }
                entry.session.layer_switched();
                switched.push(key);
            }
            let session = &mut entry.session;
            session.write_video(wallclock, &frame, &mut self.out);
            wanted |= session.wants_keyframe();
            if session.state() == SessionState::Closed {
                closed.push(key);
            }
            if self.out.bytes() >= OUT_FLUSH_BYTES {
                send_out(&mut self.out, &self.tcp, self.settings.socket, cx);
            }
        }
        self.send(cx);
        if wanted || !switched.is_empty() {
            let stream = Arc::clone(self.feeds.get_key_value(stream).expect("fed above").0);
            if wanted {
                self.want_keyframe(&stream, now);
            }
            for key in switched {
                self.complete_switch(key, &stream, now);
            }
        }
        for key in closed {
            self.remove(key);
        }
    }

    /// Datagrams dropped so far: from an unknown address and not a STUN check naming a
    /// session waiting for its peer.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
