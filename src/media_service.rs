//! Live media on a shard: RTMP publishers accepted here, the streams whose home is this shard,
//! and this shard's copy of every stream's segment index, served over HTTP.
//!
//! A publisher connects to any shard. That shard runs the RTMP session and the FLV demuxer and
//! forwards codec configurations and samples to the stream's **home** shard
//! (`hash(stream) % shards`), which owns the segmenter. The home, not the ingest shard, packages
//! the stream so that a backup publisher on another shard can take over with continuous segment
//! numbering and media time: the home decides which publisher is active, switches at the new
//! one's next keyframe, and re-bases its timestamps so media time keeps increasing (players see
//! a discontinuity, not a jump back). Every init, part and segment the home produces goes to
//! every shard over the mesh as `Bytes`; each shard serves playlists, MPDs and media from its
//! own index, and LL-HLS blocking requests wait on the shard that received them.

use crate::auth::TokenKey;
use crate::clock::wall_ms;
use crate::control::{ControlReply, ControlRequest};
use crate::counters::{bump, LatencyHistogram};
use crate::media_index::RungInfo;
use crate::media_index::{Fetch, IndexEvent, IndexLimits, MediaIndex, RenditionMeta, StreamInfo};
use crate::shard_msg::ShardMsg;
use crate::transcode::TranscodeSettings;
use bytes::Bytes;
use shardcast_engine::{ConnId, Ctx, ShardId, TimerId};
use shardcast_media::manifest::{self, FrameRate, RenditionKind};
use shardcast_media::{
    Demuxed, Demuxer, Sample, Segmenter, SegmenterConfig, TrackConfig, TrackKind,
};
use shardcast_rtmp::{Event as RtmpEvent, ServerSession, SessionConfig};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Timer keys with this bit are media timers (home stream checks and waiting requests).
pub const MEDIA_TIMER_BIT: u64 = 1 << 62;
/// The media timer key of the waiting-request sweep.
const WAITERS_TIMER: u64 = MEDIA_TIMER_BIT | (1 << 40);
/// Stream names: letters, digits, `-`, `_`, `.`; at most this long.
pub const STREAM_NAME_MAX_BYTES: usize = 64;
/// How often a home checks its active publisher for a stall.
const STALL_CHECK_MS: u64 = 100;

/// Settings shared by every shard.
pub struct MediaSettings {
    pub rtmp: SessionConfig,
    /// The RTMP application publishers use (`rtmp://host/{app}/{stream}`).
    pub app: String,
    pub segmenter: SegmenterConfig,
    pub ll_hls: bool,
    pub index: IndexLimits,
    pub failover_ms: u64,
    pub publish_keys: HashMap<String, String>,
    /// Publish tokens (`shardcast token --publish`) verify with this key.
    pub publish_tokens: Option<TokenKey>,
    pub on_publish: Option<String>,
    pub on_unpublish: Option<String>,
    pub webhook_timeout_ms: u64,
    /// Signed playback URLs: `?token=` required on every /live/ request.
    pub playback_tokens: Option<TokenKey>,
    pub max_width: u32,
    pub max_height: u32,
    pub counters: Arc<Vec<MediaCounters>>,
    /// Per shard: time from a part's last sample reaching the server to the part being
    /// servable on that shard.
    pub part_latency: Arc<Vec<LatencyHistogram>>,
    /// The ladder and its workers; `None` when transcoding is off.
    pub transcode: Option<Arc<TranscodeSettings>>,
}

crate::service_counters! {
    /// Per-shard media counters.
    pub struct MediaCounters {
        /// RTMP connections open on this shard.
        rtmp_connections: "gauge",
        /// RTMP connections closed for a protocol error or a cap.
        rtmp_errors: "counter",
        /// Publishes accepted.
        publishes: "counter",
        /// Publishes refused (auth, webhook, busy stream, bad input).
        publishes_refused: "counter",
        /// Publishes refused for an unsupported codec.
        unsupported_codecs: "counter",
        /// Failovers from one publisher to another.
        failovers: "counter",
        /// Streams whose home is this shard.
        streams_home: "gauge",
        /// Media bytes received from publishers.
        ingest_bytes: "counter",
        /// Parts produced by streams homed here.
        parts: "counter",
        /// Segments produced by streams homed here.
        segments: "counter",
        /// Playlists and MPDs served.
        playlists_served: "counter",
        /// Segments, parts and init segments served.
        media_served: "counter",
        /// Media bytes served.
        media_bytes_served: "counter",
        /// Requests that waited (blocking reloads, preload hints).
        blocked_requests: "counter",
        /// Waiting requests that timed out.
        blocked_timeouts: "counter",
        /// Requests refused for a missing or bad playback token.
        token_refusals: "counter",
    }
}

/// Media messages between shards.
pub enum MediaMsg {
    /// Ingest → home: a publisher asks to publish.
    Publish {
        stream: Arc<str>,
        conn: ConnId,
        backup: bool,
        remote: Arc<str>,
    },
    /// Home → ingest: the answer.
    PublishDecision {
        conn: ConnId,
        accepted: bool,
        reason: &'static str,
    },
    /// Ingest → home: a codec configuration from `conn`.
    Config {
        stream: Arc<str>,
        conn: ConnId,
        config: TrackConfig,
    },
    /// Ingest → home: a sample from `conn`.
    Sample {
        stream: Arc<str>,
        conn: ConnId,
        track: TrackKind,
        sample: Sample,
        wall_ms: u64,
    },
    /// Ingest → home: `conn` stopped publishing.
    Unpublish { stream: Arc<str>, conn: ConnId },
    /// Home → every shard: an index update.
    Index { stream: Arc<str>, event: IndexEvent },
    /// Home → transcode worker: transcode `stream` (session `epoch`) from this source video
    /// configuration (again when it changes).
    TranscodeStart {
        stream: Arc<str>,
        epoch: u64,
        config: TrackConfig,
    },
    /// Home → transcode worker: a source sample as the source's segmenter placed it (video
    /// for the ladder, audio for the Opus rendition).
    TranscodeSample {
        stream: Arc<str>,
        epoch: u64,
        track: TrackKind,
        sample: Sample,
        msn: u64,
        segment_start: bool,
        discontinuity: bool,
        wall_ms: u64,
    },
    /// Home → transcode worker: the stream ended; flush and answer with `RungEnded`.
    TranscodeEnd { stream: Arc<str>, epoch: u64 },
    /// Transcode worker → home: a rung's header, part or segment.
    RungEvent {
        stream: Arc<str>,
        epoch: u64,
        event: IndexEvent,
    },
    /// Transcode worker → home: the rungs' facts (every second).
    RungStats {
        stream: Arc<str>,
        epoch: u64,
        rungs: Vec<RungInfo>,
    },
    /// Transcode worker → home: everything of session `epoch` has been sent.
    RungEnded { stream: Arc<str>, epoch: u64 },
}

/// The home of `stream`.
pub fn home_of(stream: &str, shards: usize) -> ShardId {
    crate::shard_msg::home_shard("stream", stream, shards)
}

/// True for names made of letters, digits, `-`, `_` and `.` (not starting with `.`).
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= STREAM_NAME_MAX_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Debug)]
enum Ingest {
    /// Handshake and connect.
    Connecting,
    /// Connected; no publish yet.
    Connected,
    /// Waiting for the on_publish webhook.
    Authorizing {
        stream: Arc<str>,
        stream_id: u32,
        backup: bool,
    },
    /// Waiting for the home's decision.
    Claiming { stream: Arc<str>, stream_id: u32 },
    /// Publishing: media goes to the home.
    Publishing { stream: Arc<str>, home: ShardId },
    /// A fatal answer was queued; closing after it is written.
    Closing,
}

struct RtmpConn {
    conn: ConnId,
    session: ServerSession,
    state: Ingest,
    demuxer: Demuxer,
    timer: Option<TimerId>,
    remote: Arc<str>,
    saw_keyframe: bool,
}

struct Publisher {
    shard: ShardId,
    conn: ConnId,
    backup: bool,
    remote: Arc<str>,
    video: Option<TrackConfig>,
    audio: Option<TrackConfig>,
    last_sample_ms: u64,
    /// Added to this publisher's decode times so media time continues across a switch.
    offset_ticks: [i64; 2],
}

/// A stream whose home is this shard.
struct StreamHome {
    segmenter: Segmenter,
    publishers: Vec<Publisher>,
    /// Index into `publishers` of the one being packaged.
    active: Option<usize>,
    /// Switch to this publisher at its next keyframe.
    switch_to: Option<usize>,
    /// Last decode time emitted per track (video, audio), in ticks, after offsets.
    last_dts: [Option<u64>; 2],

    timer: Option<TimerId>,
    info: Arc<StreamInfo>,
    /// Decode times of the first video samples, to measure the frame rate when the SPS
    /// does not say.
    video_dts: Vec<u64>,
    fps_known: bool,
    /// The publish session (bumped at each start), so a worker's late output of an earlier
    /// session is recognised and dropped.
    epoch: u64,
    /// The transcode worker of this session.
    transcode: Option<ShardId>,
    /// The stream ended and its worker is flushing; `Ended` goes out when it is done (or
    /// after `TRANSCODE_END_WAIT_MS`).
    ending_since_ms: Option<u64>,
}

/// How long an ended stream waits for its transcode worker to flush the rungs.
const TRANSCODE_END_WAIT_MS: u64 = 5000;

/// Video samples used to measure a frame rate.
const FPS_SAMPLES: usize = 90;

fn track_index(track: TrackKind) -> usize {
    match track {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

/// What a waiting request waits for.
enum Wanted {
    Playlist {
        rendition: Arc<str>,
        reload: manifest::BlockingReload,
        query: Option<String>,
    },
    Part {
        rendition: Arc<str>,
        msn: u64,
        part: u32,
    },
    Segment {
        rendition: Arc<str>,
        msn: u64,
    },
}

/// A request parked until the index has what it asks for, or its deadline.
pub struct Waiter {
    pub conn: ConnId,
    stream: Arc<str>,
    wanted: Wanted,
    deadline_ms: u64,
    pub keep_alive: bool,
    pub head_only: bool,
}

/// A response the HTTP layer sends for the media routes.
pub enum MediaResponse {
    /// 200 (or 206 with the range applied by the caller) with these chunks.
    Body {
        content_type: &'static str,
        cache_control: &'static str,
        chunks: Vec<Bytes>,
    },
    /// An error status with a short text.
    Status(u16, &'static str),
    /// The request waits; the caller must stop reading this connection until it is answered.
    Waiting,
}

/// The media state of one shard.
pub struct Media {
    settings: Arc<MediaSettings>,
    shard: ShardId,
    shards: usize,
    conns: Vec<Option<RtmpConn>>,
    homes: HashMap<Arc<str>, StreamHome>,
    home_timer_keys: Vec<Option<Arc<str>>>,
    index: MediaIndex,
    waiters: Vec<Waiter>,
    waiters_timer: Option<(TimerId, u64)>,
    /// Responses ready for waiting connections, taken by the HTTP layer.
    ready: Vec<(Waiter, MediaResponse)>,
    open_rtmp: u64,
}

impl Media {
    pub fn new(
        settings: Arc<MediaSettings>,
        shard: ShardId,
        shards: usize,
        capacity: usize,
    ) -> Self {
        let index = MediaIndex::new(settings.index);
        Media {
            settings,
            shard,
            shards,
            conns: (0..capacity).map(|_| None).collect(),
            homes: HashMap::new(),
            home_timer_keys: Vec::new(),
            index,
            waiters: Vec::new(),
            waiters_timer: None,
            ready: Vec::new(),
            open_rtmp: 0,
        }
    }

    fn counters(&self) -> &MediaCounters {
        &self.settings.counters[self.shard.index()]
    }

    /// True when `slot` holds an RTMP connection.
    pub fn is_rtmp(&self, slot: usize) -> bool {
        self.conns[slot].is_some()
    }

    /// This shard's index (for `/api/v1/streams`).
    pub fn index(&self) -> &MediaIndex {
        &self.index
    }

    // ------------------------------------------------------------------ RTMP ingest

    /// A connection arrived on the RTMP listener.
    pub fn rtmp_open(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let now = cx.now_ms();
        self.conns[conn.slot()] = Some(RtmpConn {
            conn,
            session: ServerSession::new(self.settings.rtmp, now),
            state: Ingest::Connecting,
            demuxer: Demuxer::new(),
            timer: None,
            remote: Arc::from(format!("shard {} conn {}", self.shard.0, conn.slot())),
            saw_keyframe: false,
        });
        self.open_rtmp += 1;
        crate::counters::set(&self.counters().rtmp_connections, self.open_rtmp);
        self.arm_rtmp_timer(cx, conn.slot());
    }

    /// Bytes arrived on an RTMP connection.
    pub fn rtmp_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        let slot = conn.slot();
        let now = cx.now_ms();
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        if matches!(rc.state, Ingest::Closing) {
            return;
        }
        let result = rc.session.handle_input(now, data);
        self.pump(cx, slot);
        if let Err(error) = result {
            bump(&self.counters().rtmp_errors, 1);
            log::info!("rtmp {}: closing: {error}", self.describe(slot));
            self.close_rtmp(cx, slot);
        }
    }

    fn describe(&self, slot: usize) -> String {
        match self.conns[slot].as_ref().map(|rc| &rc.state) {
            Some(Ingest::Publishing { stream, .. })
            | Some(Ingest::Claiming { stream, .. })
            | Some(Ingest::Authorizing { stream, .. }) => format!("stream {stream} (conn {slot})"),
            _ => format!("conn {slot}"),
        }
    }

    /// Sends what the session queued and handles what it reported.
    fn pump(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        loop {
            let Some(rc) = self.conns[slot].as_mut() else {
                return;
            };
            while let Some(bytes) = rc.session.poll_transmit() {
                cx.send(rc.conn, bytes);
            }
            let Some(event) = rc.session.poll_event() else {
                break;
            };
            self.rtmp_event(cx, slot, event);
        }
        let finished = self.conns[slot]
            .as_ref()
            .is_some_and(|rc| rc.session.is_finished());
        if finished {
            self.close_rtmp(cx, slot);
        }
    }

    fn rtmp_event(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize, event: RtmpEvent) {
        let rc = self.conns[slot].as_mut().expect("rtmp conn");
        match event {
            RtmpEvent::Connected { app, flash_ver, .. } => {
                let app_name = app.split('?').next().unwrap_or("");
                if app_name != self.settings.app {
                    log::info!(
                        "rtmp conn {slot}: unknown application {app:?} (expected {:?})",
                        self.settings.app
                    );
                    rc.session.error_and_close("unknown application");
                    rc.state = Ingest::Closing;
                    return;
                }
                log::debug!("rtmp conn {slot}: connected ({flash_ver})");
                rc.state = Ingest::Connected;
            }
            RtmpEvent::PublishRequested {
                stream_id, name, ..
            } => {
                self.publish_requested(cx, slot, stream_id, &name);
            }
            RtmpEvent::Metadata { .. } => {}
            RtmpEvent::Video {
                timestamp_ms,
                payload,
                ..
            } => self.media_message(cx, slot, TrackKind::Video, timestamp_ms, payload),
            RtmpEvent::Audio {
                timestamp_ms,
                payload,
                ..
            } => self.media_message(cx, slot, TrackKind::Audio, timestamp_ms, payload),
            RtmpEvent::Unpublished { .. } => {
                if let Ingest::Publishing { stream, home } = &rc.state {
                    let (stream, home) = (stream.clone(), *home);
                    rc.state = Ingest::Connected;
                    let conn = rc.conn;
                    log::info!("rtmp conn {slot}: stream {stream} unpublished");
                    self.notify_unpublish(cx, &stream, "unpublished");
                    self.send_to(cx, home, MediaMsg::Unpublish { stream, conn });
                }
            }
        }
    }

    fn publish_requested(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        stream_id: u32,
        name: &str,
    ) {
        let settings = self.settings.clone();
        let rc = self.conns[slot].as_mut().expect("rtmp conn");
        if !matches!(rc.state, Ingest::Connected) {
            let _ = rc.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "already publishing",
            );
            return;
        }
        let (stream, query) = name.split_once('?').unwrap_or((name, ""));
        let param = |key: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        };
        let backup = param("role").as_deref() == Some("backup");
        let refuse = |rc: &mut RtmpConn, code: &str, why: &str| {
            log::info!("rtmp conn {slot}: publish {stream:?} refused: {why}");
            let _ = rc.session.reject_publish(stream_id, code, why);
            rc.state = Ingest::Closing;
        };
        if !is_valid_stream_name(stream) {
            bump(&settings.counters[self.shard.index()].publishes_refused, 1);
            return refuse(rc, "NetStream.Publish.BadName", "invalid stream name");
        }
        let open = settings.publish_keys.is_empty() && settings.publish_tokens.is_none();
        if !open {
            let key_ok =
                param("key").is_some_and(|k| settings.publish_keys.get(stream) == Some(&k));
            let token_ok = match (&settings.publish_tokens, param("token")) {
                (Some(key), Some(token)) => {
                    let now = wall_ms() / 1000;
                    key.verify(&token, now)
                        .is_ok_and(|c| c.publish && c.allows_room(stream))
                }
                _ => false,
            };
            if !key_ok && !token_ok {
                bump(&settings.counters[self.shard.index()].publishes_refused, 1);
                return refuse(rc, "NetStream.Publish.Denied", "bad or missing stream key");
            }
        }
        let stream: Arc<str> = Arc::from(stream);
        match &settings.on_publish {
            Some(url) => {
                rc.state = Ingest::Authorizing {
                    stream: stream.clone(),
                    stream_id,
                    backup,
                };
                let body = serde_json::json!({
                    "action": "publish",
                    "app": settings.app,
                    "stream": &*stream,
                    "role": if backup { "backup" } else { "primary" },
                    "query": query,
                })
                .to_string();
                let token = webhook_token(rc.conn);
                cx.mesh_send_control(ShardMsg::Control(ControlRequest::Webhook {
                    url: url.clone(),
                    body,
                    timeout_ms: settings.webhook_timeout_ms,
                    token,
                }));
            }
            None => self.claim(cx, slot, stream, stream_id, backup),
        }
    }

    fn claim(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        stream: Arc<str>,
        stream_id: u32,
        backup: bool,
    ) {
        let rc = self.conns[slot].as_mut().expect("rtmp conn");
        rc.state = Ingest::Claiming {
            stream: stream.clone(),
            stream_id,
        };
        let (conn, remote) = (rc.conn, rc.remote.clone());
        let home = home_of(&stream, self.shards);
        self.send_to(
            cx,
            home,
            MediaMsg::Publish {
                stream,
                conn,
                backup,
                remote,
            },
        );
    }

    /// The control thread answered a webhook.
    pub fn on_control_reply(&mut self, cx: &mut Ctx<ShardMsg>, reply: ControlReply) {
        let ControlReply::Webhook {
            token,
            allowed,
            detail,
        } = reply;
        let slot = (token & 0xffff_ffff) as usize;
        let Some(rc) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if webhook_token(rc.conn) != token {
            return;
        }
        let Ingest::Authorizing {
            stream,
            stream_id,
            backup,
        } = &rc.state
        else {
            return;
        };
        let (stream, stream_id, backup) = (stream.clone(), *stream_id, *backup);
        if allowed {
            self.claim(cx, slot, stream, stream_id, backup);
        } else {
            log::info!("rtmp conn {slot}: publish {stream} refused by on_publish: {detail}");
            bump(&self.counters().publishes_refused, 1);
            let rc = self.conns[slot].as_mut().expect("rtmp conn");
            let _ = rc.session.reject_publish(
                stream_id,
                "NetStream.Publish.Denied",
                "refused by on_publish",
            );
            rc.state = Ingest::Closing;
            self.pump(cx, slot);
            self.close_rtmp_after_flush(cx, slot);
        }
    }

    fn media_message(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        track: TrackKind,
        timestamp_ms: u32,
        payload: Bytes,
    ) {
        let settings = self.settings.clone();
        let rc = self.conns[slot].as_mut().expect("rtmp conn");
        let Ingest::Publishing { stream, home } = &rc.state else {
            return;
        };
        let (stream, home, conn) = (stream.clone(), *home, rc.conn);
        bump(
            &settings.counters[self.shard.index()].ingest_bytes,
            payload.len() as u64,
        );
        let demuxed = match track {
            TrackKind::Video => rc.demuxer.handle_video(timestamp_ms, &payload),
            TrackKind::Audio => rc.demuxer.handle_audio(timestamp_ms, &payload),
        };
        let demuxed = match demuxed {
            Ok(d) => d,
            Err(error) => {
                let unsupported =
                    matches!(error, shardcast_media::MediaError::UnsupportedCodec { .. });
                if unsupported {
                    bump(&settings.counters[self.shard.index()].unsupported_codecs, 1);
                }
                log::warn!("rtmp conn {slot}: stream {stream}: {error}; closing");
                rc.session.error_and_close(&error.to_string());
                rc.state = Ingest::Closing;
                self.send_to(cx, home, MediaMsg::Unpublish { stream, conn });
                self.pump(cx, slot);
                self.close_rtmp_after_flush(cx, slot);
                return;
            }
        };
        match demuxed {
            Demuxed::Nothing => {}
            Demuxed::Config(config) => {
                if let Some(video) = config.video() {
                    if video.width == 0
                        || video.height == 0
                        || video.width > settings.max_width
                        || video.height > settings.max_height
                    {
                        let why = format!(
                            "video {}x{} outside 1x1..{}x{}",
                            video.width, video.height, settings.max_width, settings.max_height
                        );
                        log::warn!("rtmp conn {slot}: stream {stream}: {why}; closing");
                        rc.session.error_and_close(&why);
                        rc.state = Ingest::Closing;
                        self.send_to(cx, home, MediaMsg::Unpublish { stream, conn });
                        self.pump(cx, slot);
                        self.close_rtmp_after_flush(cx, slot);
                        return;
                    }
                }
                self.send_to(
                    cx,
                    home,
                    MediaMsg::Config {
                        stream,
                        conn,
                        config,
                    },
                );
            }
            Demuxed::Sample { track, sample } => {
                if track == TrackKind::Video && sample.keyframe && !rc.saw_keyframe {
                    rc.saw_keyframe = true;
                    log::info!("rtmp conn {slot}: stream {stream}: first keyframe");
                }
                self.send_to(
                    cx,
                    home,
                    MediaMsg::Sample {
                        stream,
                        conn,
                        track,
                        sample,
                        wall_ms: wall_ms(),
                    },
                );
            }
        }
    }

    /// Tells `media.on_unpublish` (if set) that `stream` stopped; the answer is not awaited.
    fn notify_unpublish(&self, cx: &mut Ctx<ShardMsg>, stream: &str, reason: &str) {
        let Some(url) = &self.settings.on_unpublish else {
            return;
        };
        let body = serde_json::json!({
            "action": "unpublish",
            "app": self.settings.app,
            "stream": stream,
            "reason": reason,
        })
        .to_string();
        cx.mesh_send_control(ShardMsg::Control(ControlRequest::Webhook {
            url: url.clone(),
            body,
            timeout_ms: self.settings.webhook_timeout_ms,
            token: 0,
        }));
    }

    fn close_rtmp(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        if let Some(rc) = self.conns[slot].as_ref() {
            cx.close(rc.conn);
        }
    }

    fn close_rtmp_after_flush(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        if let Some(rc) = self.conns[slot].as_ref() {
            cx.close_after_flush(rc.conn);
        }
    }

    /// The engine closed an RTMP connection.
    pub fn rtmp_closed(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let slot = conn.slot();
        let Some(rc) = self.conns[slot].take() else {
            return;
        };
        if let Some(timer) = rc.timer {
            cx.timer_cancel(timer);
        }
        self.open_rtmp -= 1;
        crate::counters::set(&self.counters().rtmp_connections, self.open_rtmp);
        match rc.state {
            Ingest::Publishing { stream, home } => {
                log::info!("rtmp conn {slot}: stream {stream}: publisher disconnected");
                self.notify_unpublish(cx, &stream, "disconnected");
                self.send_to(cx, home, MediaMsg::Unpublish { stream, conn });
            }
            Ingest::Claiming { stream, .. } => {
                let home = home_of(&stream, self.shards);
                self.send_to(cx, home, MediaMsg::Unpublish { stream, conn });
            }
            _ => {}
        }
    }

    fn arm_rtmp_timer(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        let now = cx.now_ms();
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        if let Some(timer) = rc.timer.take() {
            cx.timer_cancel(timer);
        }
        if let Some(deadline) = rc.session.poll_timeout() {
            rc.timer = cx.timer_after(deadline.saturating_sub(now).max(1), slot as u64);
        }
    }

    /// An RTMP connection's timer fired (handshake timeout).
    pub fn rtmp_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, slot: usize) {
        let now = cx.now_ms();
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        if rc.timer != Some(id) {
            return;
        }
        rc.timer = None;
        if let Err(error) = rc.session.handle_timeout(now) {
            bump(&self.counters().rtmp_errors, 1);
            log::info!("rtmp conn {slot}: {error}; closing");
            self.close_rtmp(cx, slot);
            return;
        }
        self.pump(cx, slot);
        self.arm_rtmp_timer(cx, slot);
    }

    // ------------------------------------------------------------------ mesh

    fn send_to(&mut self, cx: &mut Ctx<ShardMsg>, to: ShardId, msg: MediaMsg) {
        if to == self.shard {
            self.on_mesh(cx, to, msg);
        } else {
            cx.mesh_send(to, ShardMsg::Media(msg));
        }
    }

    fn broadcast(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>, event: IndexEvent) {
        for shard in 0..self.shards {
            let shard = ShardId(shard as u16);
            if shard != self.shard {
                cx.mesh_send(
                    shard,
                    ShardMsg::Media(MediaMsg::Index {
                        stream: stream.clone(),
                        event: event.clone(),
                    }),
                );
            }
        }
        self.apply_index(stream, event);
    }

    /// A media message from another shard (or this one).
    pub fn on_mesh(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: MediaMsg) {
        match msg {
            MediaMsg::Publish {
                stream,
                conn,
                backup,
                remote,
            } => self.home_publish(cx, from, stream, conn, backup, remote),
            MediaMsg::PublishDecision {
                conn,
                accepted,
                reason,
            } => self.publish_decision(cx, conn, accepted, reason),
            MediaMsg::Config {
                stream,
                conn,
                config,
            } => self.home_config(cx, &stream, from, conn, config),
            MediaMsg::Sample {
                stream,
                conn,
                track,
                sample,
                wall_ms,
            } => self.home_sample(cx, &stream, from, conn, track, sample, wall_ms),
            MediaMsg::Unpublish { stream, conn } => self.home_unpublish(cx, &stream, from, conn),
            MediaMsg::Index { stream, event } => self.apply_index(&stream, event),
            msg @ (MediaMsg::RungEvent { .. }
            | MediaMsg::RungStats { .. }
            | MediaMsg::RungEnded { .. }) => self.home_rung_message(cx, msg),
            // Worker-bound messages never reach a shard.
            MediaMsg::TranscodeStart { .. }
            | MediaMsg::TranscodeSample { .. }
            | MediaMsg::TranscodeEnd { .. } => {}
        }
    }

    fn publish_decision(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        accepted: bool,
        reason: &str,
    ) {
        let slot = conn.slot();
        let Some(rc) = self.conns[slot].as_mut().filter(|rc| rc.conn == conn) else {
            return;
        };
        let Ingest::Claiming { stream, stream_id } = &rc.state else {
            return;
        };
        let (stream, stream_id) = (stream.clone(), *stream_id);
        if accepted {
            let _ = rc.session.accept_publish(stream_id);
            rc.state = Ingest::Publishing {
                home: home_of(&stream, self.shards),
                stream: stream.clone(),
            };
            bump(&self.counters().publishes, 1);
            log::info!("rtmp conn {slot}: publishing stream {stream}");
        } else {
            let _ = rc
                .session
                .reject_publish(stream_id, "NetStream.Publish.BadName", reason);
            rc.state = Ingest::Closing;
            bump(&self.counters().publishes_refused, 1);
            log::info!("rtmp conn {slot}: publish {stream} refused: {reason}");
            self.pump(cx, slot);
            self.close_rtmp_after_flush(cx, slot);
            return;
        }
        self.pump(cx, slot);
    }

    // ------------------------------------------------------------------ stream homes

    fn home_publish(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        stream: Arc<str>,
        conn: ConnId,
        backup: bool,
        remote: Arc<str>,
    ) {
        let now = cx.now_ms();
        let settings = self.settings.clone();
        let created = !self.homes.contains_key(&stream);
        let home = self
            .homes
            .entry(stream.clone())
            .or_insert_with(|| StreamHome {
                segmenter: source_segmenter(&settings),
                publishers: Vec::new(),
                active: None,
                switch_to: None,
                last_dts: [None, None],

                timer: None,
                info: Arc::new(StreamInfo::default()),
                video_dts: Vec::new(),
                fps_known: false,
                epoch: 0,
                transcode: None,
                ending_since_ms: None,
            });
        let publisher = Publisher {
            shard: from,
            conn,
            backup,
            remote,
            video: None,
            audio: None,
            last_sample_ms: now,
            offset_ticks: [0, 0],
        };
        let active_is_primary = home
            .active
            .map(|i| !home.publishers[i].backup)
            .unwrap_or(false);
        let decision = if home.publishers.len() >= 4 {
            Err("too many publishers for this stream")
        } else if !backup && active_is_primary {
            Err("stream already has a primary publisher")
        } else {
            Ok(())
        };
        if let Err(reason) = decision {
            return self.send_to(
                cx,
                from,
                MediaMsg::PublishDecision {
                    conn,
                    accepted: false,
                    reason,
                },
            );
        }
        // A home with no publisher left has ended its last publish (its segmenter is done).
        let was_idle = home.publishers.is_empty();
        home.publishers.push(publisher);
        let index = home.publishers.len() - 1;
        let mut started = false;
        match home.active {
            None if home.switch_to.is_none() => {
                home.active = Some(index);
                started = created || was_idle;
            }
            None => {}
            Some(_) if !backup => {
                // A returning primary takes back at its next keyframe.
                home.switch_to = Some(index);
            }
            Some(_) => {}
        }
        if started && !created {
            // The previous publish ended: a fresh segmenter, and shards start a fresh index.
            home.segmenter = source_segmenter(&settings);
            home.last_dts = [None, None];
            home.epoch += 1;
            home.ending_since_ms = None;
            if let Some(worker) = home.transcode.take() {
                let epoch = home.epoch - 1;
                let stream = stream.clone();
                self.send_to(cx, worker, MediaMsg::TranscodeEnd { stream, epoch });
            }
        }
        self.send_to(
            cx,
            from,
            MediaMsg::PublishDecision {
                conn,
                accepted: true,
                reason: "",
            },
        );
        if started {
            crate::counters::set(&self.counters().streams_home, self.homes.len() as u64);
            let part_target_ms = settings.ll_hls.then_some(settings.segmenter.part_target_ms);
            let info = self.homes[&stream].info.clone();
            self.broadcast(
                cx,
                &stream,
                IndexEvent::Started {
                    started_ms: wall_ms(),
                    part_target_ms,
                    info,
                },
            );
            self.arm_home_timer(cx, &stream);
        }
    }

    fn home_config(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        from: ShardId,
        conn: ConnId,
        config: TrackConfig,
    ) {
        let Some(home) = self.homes.get_mut(stream) else {
            return;
        };
        let Some(index) = home.find(from, conn) else {
            return;
        };
        let slot = match config.kind() {
            TrackKind::Video => &mut home.publishers[index].video,
            TrackKind::Audio => &mut home.publishers[index].audio,
        };
        *slot = Some(config.clone());
        if home.active == Some(index) {
            home.update_info(&config);
            home.fps_known = config.video().is_some_and(|v| v.frame_rate.is_some());
            home.video_dts.clear();
            let info = home.info.clone();
            if let Err(error) = home.segmenter.handle_config(config) {
                log::warn!("stream {stream}: {error}");
            }
            self.drain_segmenter(cx, stream);
            self.broadcast(cx, stream, IndexEvent::Info(info));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn home_sample(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        from: ShardId,
        conn: ConnId,
        track: TrackKind,
        mut sample: Sample,
        wall: u64,
    ) {
        let now = cx.now_ms();
        let Some(home) = self.homes.get_mut(stream) else {
            return;
        };
        let Some(index) = home.find(from, conn) else {
            return;
        };
        home.publishers[index].last_sample_ms = now;
        // A primary sending again while a backup is active takes back at its next keyframe.
        if home.active != Some(index) && !home.publishers[index].backup && home.switch_to.is_none()
        {
            if let Some(active) = home.active {
                if home.publishers[active].backup {
                    home.switch_to = Some(index);
                }
            }
        }
        let switching_here = home.switch_to == Some(index);
        let audio_only = home.publishers[index].video.is_none();
        if switching_here
            && ((track == TrackKind::Video && sample.keyframe)
                || (audio_only && track == TrackKind::Audio))
        {
            home.switch(index, track, sample.dts);
            bump(&self.settings.counters[self.shard.index()].failovers, 1);
            log::info!(
                "stream {stream}: switched to the {} publisher ({}) at a keyframe",
                if home.publishers[index].backup {
                    "backup"
                } else {
                    "primary"
                },
                home.publishers[index].remote
            );
        }
        if home.active != Some(index) {
            return;
        }
        let t = track_index(track);
        let offset = home.publishers[index].offset_ticks[t];
        sample.dts = (sample.dts as i64 + offset).max(0) as u64;
        home.last_dts[t] = Some(sample.dts);
        let mut measured = None;
        if track == TrackKind::Video && !home.fps_known {
            home.video_dts.push(sample.dts);
            if home.video_dts.len() >= FPS_SAMPLES {
                home.fps_known = true;
                let mut sorted = std::mem::take(&mut home.video_dts);
                sorted.sort_unstable();
                if let Some(rate) = shardcast_media::codec::estimate_frame_rate(&sorted, 90_000) {
                    let mut info = (*home.info).clone();
                    info.fps = rate.as_f64();
                    home.info = Arc::new(info);
                    measured = Some(rate);
                }
            }
        }
        if let Err(error) = home.segmenter.handle_sample(track, sample, wall) {
            log::debug!("stream {stream}: sample refused: {error}");
        }
        let meta = measured.and_then(|rate| {
            let config = home.segmenter.track_config(TrackKind::Video)?;
            let mut meta = rendition_meta(config);
            if let RenditionKind::Video { frame_rate, .. } = &mut meta.kind {
                *frame_rate = FrameRate {
                    num: rate.numerator,
                    den: rate.denominator,
                };
            }
            Some((meta, home.info.clone()))
        });
        self.drain_segmenter(cx, stream);

        if let Some((meta, info)) = meta {
            log::info!("stream {stream}: {:.3} fps measured", info.fps);
            self.broadcast(
                cx,
                stream,
                IndexEvent::Meta {
                    rendition: Arc::new(meta),
                },
            );
            self.broadcast(cx, stream, IndexEvent::Info(info));
        }
    }

    fn home_unpublish(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        from: ShardId,
        conn: ConnId,
    ) {
        let Some(home) = self.homes.get_mut(stream) else {
            return;
        };
        let Some(index) = home.find(from, conn) else {
            return;
        };
        home.remove(index);
        if home.active.is_some() || home.switch_to.is_some() {
            return;
        }
        // Nobody else can take over: prefer any remaining publisher, else the stream ends.
        if !home.publishers.is_empty() {
            home.switch_to = Some(0);
            return;
        }
        home.segmenter.handle_end();
        self.drain_segmenter(cx, stream);
        log::info!("stream {stream}: ended");
        let Some(home) = self.homes.get_mut(stream) else {
            return;
        };
        if let Some(worker) = home.transcode.take() {
            // The rungs' last parts and segments come from the worker; then `Ended`.
            home.ending_since_ms = Some(cx.now_ms());
            let epoch = home.epoch;
            let stream = stream.clone();
            self.send_to(cx, worker, MediaMsg::TranscodeEnd { stream, epoch });
        } else {
            self.broadcast(cx, stream, IndexEvent::Ended);
        }
    }

    /// A transcode worker's message about a stream homed here.
    fn home_rung_message(&mut self, cx: &mut Ctx<ShardMsg>, msg: MediaMsg) {
        let (stream, epoch) = match &msg {
            MediaMsg::RungEvent { stream, epoch, .. }
            | MediaMsg::RungStats { stream, epoch, .. }
            | MediaMsg::RungEnded { stream, epoch } => (stream.clone(), *epoch),
            _ => return,
        };
        let Some(home) = self.homes.get_mut(&stream) else {
            return;
        };
        if home.epoch != epoch {
            return;
        }
        match msg {
            MediaMsg::RungEvent { event, .. } => self.broadcast(cx, &stream, event),
            MediaMsg::RungStats { rungs, .. } => {
                let mut info = (*home.info).clone();
                info.rungs = rungs;
                home.info = Arc::new(info);
                let info = home.info.clone();
                self.broadcast(cx, &stream, IndexEvent::Info(info));
            }
            MediaMsg::RungEnded { .. }
                if home.publishers.is_empty() && home.ending_since_ms.is_some() =>
            {
                home.ending_since_ms = None;
                self.broadcast(cx, &stream, IndexEvent::Ended);
            }
            _ => {}
        }
    }

    /// Sends every segmenter event of `stream` to every shard, and the video to its transcode
    /// worker.
    fn drain_segmenter(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>) {
        let mut events = Vec::new();
        let mut to_worker = Vec::new();
        let transcode = self.settings.transcode.clone();
        let shards = self.shards;
        let Some(home) = self.homes.get_mut(stream) else {
            return;
        };
        while let Some(event) = home.segmenter.poll_event() {
            let event = match event {
                shardcast_media::Event::Placed {
                    track,
                    sample,
                    msn,
                    segment_start,
                    discontinuity,
                } => {
                    if home.transcode.is_some() {
                        to_worker.push(MediaMsg::TranscodeSample {
                            stream: stream.clone(),
                            epoch: home.epoch,
                            track,
                            sample,
                            msn,
                            segment_start,
                            discontinuity,
                            wall_ms: wall_ms(),
                        });
                    }
                    continue;
                }
                other => other,
            };
            let counters = &self.settings.counters[self.shard.index()];
            let (track, config) = match &event {
                shardcast_media::Event::InitReady { track, .. } => {
                    (*track, home.segmenter.track_config(*track).cloned())
                }
                shardcast_media::Event::PartReady { track, .. } => {
                    bump(&counters.parts, 1);
                    (*track, None)
                }
                shardcast_media::Event::SegmentReady { track, .. } => {
                    bump(&counters.segments, 1);
                    (*track, None)
                }
                shardcast_media::Event::Placed { .. } => unreachable!("handled above"),
            };
            // A (new) header of the source: its transcode worker (re)starts from it.
            if let (Some(config), Some(transcode)) = (&config, &transcode) {
                let wanted = match track {
                    TrackKind::Video => !transcode.ladder.is_empty(),
                    TrackKind::Audio => transcode.opus_bps > 0,
                };
                if wanted {
                    let worker = *home.transcode.get_or_insert_with(|| {
                        ShardId((shards + 1 + transcode.least_loaded()) as u16)
                    });
                    log::debug!("stream {stream}: transcoded by worker {}", worker.0);
                    to_worker.push(MediaMsg::TranscodeStart {
                        stream: stream.clone(),
                        epoch: home.epoch,
                        config: config.clone(),
                    });
                }
            }
            if let Some(event) = index_event(event, rendition_name(track), config.as_ref(), true) {
                events.push(event);
            }
        }
        let worker = self.homes.get(stream).and_then(|h| h.transcode);
        if let Some(worker) = worker {
            for msg in to_worker {
                cx.mesh_send(worker, ShardMsg::Media(msg));
            }
        }
        for event in events {
            self.broadcast(cx, stream, event);
        }
    }

    fn arm_home_timer(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>) {
        let key = match self
            .home_timer_keys
            .iter()
            .position(|k| k.as_ref() == Some(stream))
        {
            Some(i) => i,
            None => match self.home_timer_keys.iter().position(Option::is_none) {
                Some(i) => {
                    self.home_timer_keys[i] = Some(stream.clone());
                    i
                }
                None => {
                    self.home_timer_keys.push(Some(stream.clone()));
                    self.home_timer_keys.len() - 1
                }
            },
        };
        if let Some(home) = self.homes.get_mut(stream) {
            if let Some(timer) = home.timer.take() {
                cx.timer_cancel(timer);
            }
            home.timer = cx.timer_after(STALL_CHECK_MS, MEDIA_TIMER_BIT | key as u64);
        }
    }

    /// A media timer fired.
    pub fn on_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, key: u64) {
        if key == WAITERS_TIMER {
            if self.waiters_timer.is_some_and(|(t, _)| t == id) {
                self.waiters_timer = None;
                self.expire_waiters(cx);
            }
            return;
        }
        let index = (key & !MEDIA_TIMER_BIT) as usize;
        let Some(stream) = self.home_timer_keys.get(index).cloned().flatten() else {
            return;
        };
        let now = cx.now_ms();
        let failover_ms = self.settings.failover_ms;
        let Some(home) = self.homes.get_mut(&stream) else {
            self.home_timer_keys[index] = None;
            return;
        };
        if home.timer != Some(id) {
            return;
        }
        home.timer = None;
        if home.publishers.is_empty() {
            if let Some(since) = home.ending_since_ms {
                if now.saturating_sub(since) < TRANSCODE_END_WAIT_MS {
                    return self.arm_home_timer(cx, &stream);
                }
                log::warn!(
                    "stream {stream}: the transcode worker did not finish in {TRANSCODE_END_WAIT_MS} ms; \
                     ending without the rungs' last segments"
                );
                home.ending_since_ms = None;
                self.broadcast(cx, &stream, IndexEvent::Ended);
            }
            // Ended: keep the home (and its numbering) only while shards may still serve it.
            self.homes.remove(&stream);
            self.home_timer_keys[index] = None;
            crate::counters::set(&self.counters().streams_home, self.homes.len() as u64);
            return;
        }
        // The active publisher stalled: the freshest other publisher takes over at its next
        // keyframe.
        if let Some(active) = home.active {
            let stalled = now.saturating_sub(home.publishers[active].last_sample_ms) >= failover_ms;
            if stalled && home.switch_to.is_none() {
                let candidate = (0..home.publishers.len())
                    .filter(|&i| i != active)
                    .filter(|&i| {
                        now.saturating_sub(home.publishers[i].last_sample_ms) < failover_ms
                    })
                    .max_by_key(|&i| home.publishers[i].last_sample_ms);
                if let Some(candidate) = candidate {
                    log::warn!(
                        "stream {stream}: active publisher stalled for {} ms; switching at the next keyframe",
                        now - home.publishers[active].last_sample_ms
                    );
                    home.switch_to = Some(candidate);
                }
            }
        }
        self.arm_home_timer(cx, &stream);
    }

    // ------------------------------------------------------------------ the index and HTTP

    fn apply_index(&mut self, stream: &Arc<str>, event: IndexEvent) {
        let restart = matches!(event, IndexEvent::Started { .. });
        if restart {
            self.index.remove(stream);
        }
        let part_received_ms = match &event {
            IndexEvent::Part {
                last_received_ms, ..
            } => *last_received_ms,
            _ => None,
        };
        if self.index.apply(stream, event) {
            if let Some(received_ms) = part_received_ms {
                let latency_ms = wall_ms().saturating_sub(received_ms);
                self.settings.part_latency[self.shard.index()].record_us(latency_ms * 1000);
            }
        } else {
            log::warn!(
                "shard {}: index full; stream {stream} not indexed",
                self.shard.0
            );
        }
        self.wake_waiters(stream);
    }

    /// Answers a `/live/...` request. `path` is after `/live/`.
    pub fn http_request(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        path: &str,
        query: Option<&str>,
        keep_alive: bool,
        head_only: bool,
    ) -> MediaResponse {
        let mut parts = path.splitn(3, '/');
        let stream = parts.next().unwrap_or("");
        let second = parts.next();
        let third = parts.next();
        if !is_valid_stream_name(stream) {
            return MediaResponse::Status(404, "no such stream");
        }
        let token_query = match self.check_token(stream, query) {
            Ok(q) => q,
            Err(status) => return status,
        };
        let Some(index) = self.index.stream(stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        let stream_arc = index.name.clone();
        match (second, third) {
            (Some("index.m3u8"), None) => {
                let mut text = String::with_capacity(1024);
                let views = index.views();
                let infos: Vec<_> = views.iter().map(|v| v.info).collect();
                let uri_query = token_query
                    .as_deref()
                    .and_then(|q| manifest::UriQuery::new(q).ok());
                manifest::write_multivariant_playlist(&mut text, &infos, uri_query);
                self.count_playlist(stream);
                playlist(text, "application/vnd.apple.mpegurl")
            }
            (Some("manifest.mpd"), None) => {
                let mut text = String::with_capacity(4096);
                let views = index.views();
                let now = wall_ms();
                let clock = manifest::MpdClock {
                    availability_start_ms: index.started_ms,
                    publish_time_ms: now,
                    now_ms: now,
                };
                let uri_query = token_query
                    .as_deref()
                    .and_then(|q| manifest::UriQuery::new(q).ok());
                manifest::write_mpd(&mut text, &index.facts(), &clock, &views, uri_query);
                self.count_playlist(stream);
                playlist(text, "application/dash+xml")
            }
            (Some(rendition), Some(file)) => {
                if !index.has_rendition(rendition) {
                    return MediaResponse::Status(404, "no such rendition");
                }
                let rendition: Arc<str> = Arc::from(rendition);
                if file == "index.m3u8" {
                    let Some(progress) = index.progress(&rendition) else {
                        return MediaResponse::Status(404, "no such rendition");
                    };
                    let reload = match manifest::parse_blocking_reload(
                        query.unwrap_or(""),
                        &progress,
                        index.part_target_ms,
                    ) {
                        Ok(reload) => reload,
                        Err(_) => return MediaResponse::Status(400, "bad blocking reload request"),
                    };
                    if let Some(reload) = reload.filter(|r| !r.is_satisfied(&progress)) {
                        let timeout = manifest::blocking_reload_timeout_ms(index.target_duration_s);
                        self.park(
                            cx,
                            Waiter {
                                conn,
                                stream: stream_arc,
                                wanted: Wanted::Playlist {
                                    rendition,
                                    reload,
                                    query: token_query,
                                },
                                deadline_ms: cx.now_ms() + timeout,
                                keep_alive,
                                head_only,
                            },
                        );
                        return MediaResponse::Waiting;
                    }
                    let response = self.media_playlist(stream, &rendition, token_query.as_deref());
                    self.count_playlist(stream);
                    return response;
                }
                if file == "init.mp4" {
                    let version = query
                        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("v=")))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    return match index.init(&rendition, version) {
                        Some(init) => self.media_body(vec![init]),
                        None => MediaResponse::Status(404, "no such init segment"),
                    };
                }
                let Some(name) = file.strip_suffix(".m4s") else {
                    return MediaResponse::Status(404, "not found");
                };
                let (fetch, wanted) = match name.split_once('.') {
                    Some((msn, part)) => {
                        let (Ok(msn), Ok(part)) = (msn.parse::<u64>(), part.parse::<u32>()) else {
                            return MediaResponse::Status(404, "not found");
                        };
                        (
                            index.part(&rendition, msn, part),
                            Wanted::Part {
                                rendition: rendition.clone(),
                                msn,
                                part,
                            },
                        )
                    }
                    None => {
                        let Ok(msn) = name.parse::<u64>() else {
                            return MediaResponse::Status(404, "not found");
                        };
                        (
                            index.segment(&rendition, msn),
                            Wanted::Segment {
                                rendition: rendition.clone(),
                                msn,
                            },
                        )
                    }
                };
                match fetch {
                    Fetch::Ready(chunks) => {
                        if let Some(s) = self.index.stream_mut(stream) {
                            s.served_segments += 1;
                        }
                        self.media_body(chunks)
                    }
                    Fetch::Missing => MediaResponse::Status(404, "not in the window"),
                    Fetch::Soon => {
                        let timeout = manifest::blocking_reload_timeout_ms(index.target_duration_s);
                        self.park(
                            cx,
                            Waiter {
                                conn,
                                stream: stream_arc,
                                wanted,
                                deadline_ms: cx.now_ms() + timeout,
                                keep_alive,
                                head_only,
                            },
                        );
                        MediaResponse::Waiting
                    }
                }
            }
            _ => MediaResponse::Status(404, "not found"),
        }
    }

    fn count_playlist(&mut self, stream: &str) {
        bump(&self.counters().playlists_served, 1);
        if let Some(s) = self.index.stream_mut(stream) {
            s.served_playlists += 1;
        }
    }

    fn media_body(&mut self, chunks: Vec<Bytes>) -> MediaResponse {
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        bump(&self.counters().media_served, 1);
        bump(&self.counters().media_bytes_served, bytes as u64);
        MediaResponse::Body {
            content_type: "video/mp4",
            cache_control: "public, max-age=600, immutable",
            chunks,
        }
    }

    fn media_playlist(
        &self,
        stream: &str,
        rendition: &str,
        token_query: Option<&str>,
    ) -> MediaResponse {
        let Some(index) = self.index.stream(stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        let views = index.views();
        let Some(view) = views.iter().find(|v| v.info.name == rendition) else {
            return MediaResponse::Status(404, "no segments yet");
        };
        let mut text = String::with_capacity(2048);
        let uri_query = token_query.and_then(|q| manifest::UriQuery::new(q).ok());
        manifest::write_media_playlist(&mut text, &index.facts(), view, &views, uri_query);
        playlist(text, "application/vnd.apple.mpegurl")
    }

    /// Checks `?token=` when signed playback URLs are on; returns the query to propagate.
    fn check_token(
        &self,
        stream: &str,
        query: Option<&str>,
    ) -> Result<Option<String>, MediaResponse> {
        let Some(key) = &self.settings.playback_tokens else {
            return Ok(None);
        };
        let token = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
        let Some(token) = token else {
            bump(&self.counters().token_refusals, 1);
            return Err(MediaResponse::Status(401, "playback token required"));
        };
        match key.verify(token, wall_ms() / 1000) {
            Ok(claims) if claims.allows_room(stream) && !claims.publish => {
                Ok(Some(format!("token={token}")))
            }
            _ => {
                bump(&self.counters().token_refusals, 1);
                Err(MediaResponse::Status(403, "bad or expired playback token"))
            }
        }
    }

    fn park(&mut self, cx: &mut Ctx<ShardMsg>, waiter: Waiter) {
        bump(&self.counters().blocked_requests, 1);
        let deadline = waiter.deadline_ms;
        self.waiters.push(waiter);
        if self.waiters_timer.is_none_or(|(_, at)| deadline < at) {
            if let Some((timer, _)) = self.waiters_timer.take() {
                cx.timer_cancel(timer);
            }
            let now = cx.now_ms();
            if let Some(timer) = cx.timer_after(deadline.saturating_sub(now).max(1), WAITERS_TIMER)
            {
                self.waiters_timer = Some((timer, deadline));
            }
        }
    }

    fn wake_waiters(&mut self, stream: &Arc<str>) {
        if self.waiters.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.waiters.len() {
            if &self.waiters[i].stream != stream {
                i += 1;
                continue;
            }
            if let Some(response) = self.try_answer(&self.waiters[i]) {
                let waiter = self.waiters.swap_remove(i);
                self.ready.push((waiter, response));
            } else {
                i += 1;
            }
        }
    }

    /// The answer for a waiter if it can be given now.
    fn try_answer(&self, waiter: &Waiter) -> Option<MediaResponse> {
        let Some(index) = self.index.stream(&waiter.stream) else {
            return Some(MediaResponse::Status(404, "stream gone"));
        };
        match &waiter.wanted {
            Wanted::Playlist {
                rendition,
                reload,
                query,
            } => {
                let progress = index.progress(rendition)?;
                (reload.is_satisfied(&progress) || index.ended)
                    .then(|| self.media_playlist(&waiter.stream, rendition, query.as_deref()))
            }
            Wanted::Part {
                rendition,
                msn,
                part,
            } => match index.part(rendition, *msn, *part) {
                Fetch::Ready(chunks) => Some(media_body_static(chunks)),
                Fetch::Missing => Some(MediaResponse::Status(404, "not in the window")),
                Fetch::Soon => None,
            },
            Wanted::Segment { rendition, msn } => match index.segment(rendition, *msn) {
                Fetch::Ready(chunks) => Some(media_body_static(chunks)),
                Fetch::Missing => Some(MediaResponse::Status(404, "not in the window")),
                Fetch::Soon => None,
            },
        }
    }

    fn expire_waiters(&mut self, cx: &mut Ctx<ShardMsg>) {
        let now = cx.now_ms();
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].deadline_ms <= now {
                let waiter = self.waiters.swap_remove(i);
                bump(&self.counters().blocked_timeouts, 1);
                self.ready
                    .push((waiter, MediaResponse::Status(503, "not available in time")));
            } else {
                next = Some(next.map_or(self.waiters[i].deadline_ms, |n| {
                    n.min(self.waiters[i].deadline_ms)
                }));
                i += 1;
            }
        }
        if let Some(deadline) = next {
            if let Some(timer) = cx.timer_after(deadline.saturating_sub(now).max(1), WAITERS_TIMER)
            {
                self.waiters_timer = Some((timer, deadline));
            }
        }
    }

    /// Responses for waiting connections that became ready; the HTTP layer sends them.
    pub fn take_ready(&mut self) -> Vec<(Waiter, MediaResponse)> {
        std::mem::take(&mut self.ready)
    }

    /// Counts media served for responses built outside `http_request` (waiters).
    pub fn count_served(&self, response: &MediaResponse) {
        if let MediaResponse::Body {
            chunks,
            content_type,
            ..
        } = response
        {
            if *content_type == "video/mp4" {
                let bytes: usize = chunks.iter().map(Bytes::len).sum();
                bump(&self.counters().media_served, 1);
                bump(&self.counters().media_bytes_served, bytes as u64);
            } else {
                bump(&self.counters().playlists_served, 1);
            }
        }
    }

    /// Closes publishers (and answers waiting requests) when the shard drains.
    pub fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        for slot in 0..self.conns.len() {
            if let Some(rc) = self.conns[slot].as_ref() {
                cx.close(rc.conn);
            }
        }
        for waiter in std::mem::take(&mut self.waiters) {
            self.ready
                .push((waiter, MediaResponse::Status(503, "shutting down")));
        }
    }

    /// `/api/v1/streams` as JSON, from this shard's index.
    /// Every transcoded rung of the streams this shard indexes: (stream, rung).
    pub fn rungs(&self) -> Vec<(Arc<str>, RungInfo)> {
        self.index
            .streams()
            .filter(|s| !s.ended)
            .flat_map(|s| s.info.rungs.iter().map(|r| (s.name.clone(), r.clone())))
            .collect()
    }

    pub fn streams_json(&self) -> serde_json::Value {
        let now = wall_ms();
        let streams: Vec<serde_json::Value> = self
            .index
            .streams()
            .map(|s| {
                let views = s.views();
                let renditions: Vec<serde_json::Value> = views
                    .iter()
                    .map(|v| {
                        let mut rendition = serde_json::json!({
                            "name": v.info.name,
                            "codecs": v.info.codecs,
                            "bandwidth_bps": v.info.bandwidth_bps,
                            "average_bandwidth_bps": v.info.average_bandwidth_bps,
                            "segments": v.segments.len(),
                        });
                        if let Some(rung) = s.info.rungs.iter().find(|r| r.name == v.info.name) {
                            rendition["transcode"] = serde_json::to_value(rung).unwrap_or_default();
                        }
                        rendition
                    })
                    .collect();
                // What the publisher sends: the source video and the audio, not the rungs.
                let bitrate_in: u64 = views
                    .iter()
                    .filter(|v| matches!(v.info.name, "source" | "audio"))
                    .map(|v| v.info.average_bandwidth_bps)
                    .sum();
                // Viewers: playlist requests on this shard per target duration, times shards,
                // since the start (a rough estimate; players reload once per target duration).
                let uptime_s = now.saturating_sub(s.started_ms) / 1000;
                let viewers =
                    (s.served_playlists * s.target_duration_s as u64 * self.shards as u64)
                        .checked_div(uptime_s)
                        .unwrap_or(0);
                serde_json::json!({
                    "stream": &*s.name,
                    "live": !s.ended,
                    "video_codec": s.info.video_codec,
                    "audio_codec": s.info.audio_codec,
                    "width": s.info.width,
                    "height": s.info.height,
                    "fps": s.info.fps,
                    "bitrate_in_bps": bitrate_in,
                    "uptime_s": uptime_s,
                    "target_duration_s": s.target_duration_s,
                    "renditions": renditions,
                    "segments_served_this_shard": s.served_segments,
                    "playlists_served_this_shard": s.served_playlists,
                    "viewer_estimate": viewers,
                    "bytes_held": s.bytes_held(),
                })
            })
            .collect();
        serde_json::json!({ "streams": streams })
    }
}

fn playlist(text: String, content_type: &'static str) -> MediaResponse {
    MediaResponse::Body {
        content_type,
        cache_control: "no-cache",
        chunks: vec![Bytes::from(text)],
    }
}

fn media_body_static(chunks: Vec<Bytes>) -> MediaResponse {
    MediaResponse::Body {
        content_type: "video/mp4",
        cache_control: "public, max-age=600, immutable",
        chunks,
    }
}

fn webhook_token(conn: ConnId) -> u64 {
    // The slot and a marker of this connection's identity: a stale reply for a reused slot
    // finds another token.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    conn.hash(&mut hasher);
    (hasher.finish() & !0xffff_ffff) | conn.slot() as u64
}

fn rendition_name(track: TrackKind) -> Arc<str> {
    match track {
        TrackKind::Video => Arc::from("source"),
        TrackKind::Audio => Arc::from("audio"),
    }
}

fn rendition_meta(config: &TrackConfig) -> RenditionMeta {
    rendition_meta_named(config, rendition_name(config.kind()))
}

/// A rendition's facts from its track configuration, under `name`.
pub(crate) fn rendition_meta_named(config: &TrackConfig, name: Arc<str>) -> RenditionMeta {
    let kind = match (config.video(), config.audio_format()) {
        (Some(video), _) => {
            let rate = video
                .frame_rate
                .map(|f| FrameRate {
                    num: f.numerator,
                    den: f.denominator,
                })
                .unwrap_or(FrameRate { num: 30, den: 1 });
            RenditionKind::Video {
                width: video.width,
                height: video.height,
                frame_rate: rate,
            }
        }
        (None, Some((sample_rate_hz, channels))) => RenditionKind::Audio {
            sample_rate_hz,
            channels,
        },
        (None, None) => unreachable!("a track config is video or audio"),
    };
    RenditionMeta {
        name,
        kind,
        codecs: config.codec_string(),
        timescale: config.timescale(),
    }
}

impl StreamHome {
    fn find(&self, shard: ShardId, conn: ConnId) -> Option<usize> {
        self.publishers
            .iter()
            .position(|p| p.shard == shard && p.conn == conn)
    }

    fn remove(&mut self, index: usize) {
        self.publishers.remove(index);
        let fix = |i: Option<usize>| match i {
            Some(i) if i == index => None,
            Some(i) if i > index => Some(i - 1),
            other => other,
        };
        self.active = fix(self.active);
        self.switch_to = fix(self.switch_to);
    }

    /// Makes `index` the active publisher: its timestamps are offset so they continue just after
    /// the last emitted ones, its configurations go to the segmenter, and the next segment
    /// starts with a discontinuity.
    fn switch(&mut self, index: usize, track: TrackKind, first_dts: u64) {
        let t = track_index(track);
        let frame_ticks: u64 = match track {
            TrackKind::Video => 3000,
            TrackKind::Audio => 1024,
        };
        let target = self.last_dts[t].map_or(first_dts, |last| last + frame_ticks);
        let offset = target as i64 - first_dts as i64;
        let publisher = &mut self.publishers[index];
        publisher.offset_ticks[t] = offset;
        // The other track follows the same media-time shift, converted to its timescale.
        let other = 1 - t;
        let (from_scale, to_scale) = match track {
            TrackKind::Video => (90_000i64, self.audio_scale(index)),
            TrackKind::Audio => (self.audio_scale(index), 90_000i64),
        };
        self.publishers[index].offset_ticks[other] = offset * to_scale / from_scale.max(1);
        self.active = Some(index);
        self.switch_to = None;
        self.segmenter.handle_discontinuity();
        let publisher = &self.publishers[index];
        for config in [publisher.video.clone(), publisher.audio.clone()]
            .into_iter()
            .flatten()
        {
            let _ = self.segmenter.handle_config(config);
        }
    }

    fn audio_scale(&self, index: usize) -> i64 {
        self.publishers[index]
            .audio
            .as_ref()
            .map_or(48_000, |c| c.timescale() as i64)
    }

    fn update_info(&mut self, config: &TrackConfig) {
        let mut info = (*self.info).clone();
        if let Some(video) = config.video() {
            info.video_codec = config.codec_string();
            info.width = video.width;
            info.height = video.height;
            info.fps = video.frame_rate.map_or(0.0, |f| f.as_f64());
        } else {
            info.audio_codec = config.codec_string();
        }
        self.info = Arc::new(info);
    }
}

/// The index update for a segmenter's header, part or segment event, for rendition `name`
/// (`config`: the track's configuration, needed for a header). Parts carry their last
/// sample's arrival when `timed` (the source's; a transcoded rung's latency is the
/// transcode's). `None` for the other events.
pub(crate) fn index_event(
    event: shardcast_media::Event,
    name: Arc<str>,
    config: Option<&TrackConfig>,
    timed: bool,
) -> Option<IndexEvent> {
    Some(match event {
        shardcast_media::Event::InitReady {
            init,
            discontinuity,
            ..
        } => IndexEvent::Init {
            rendition: Arc::new(rendition_meta_named(config?, name)),
            init,
            discontinuity,
        },
        shardcast_media::Event::PartReady {
            msn,
            part_index,
            start_dts,
            duration_ticks,
            independent,
            program_date_time_ms,
            last_received_ms,
            bytes,
            ..
        } => IndexEvent::Part {
            rendition: name,
            msn,
            part_index,
            start_ticks: start_dts,
            duration_ticks,
            independent,
            program_date_time_ms,
            bytes,
            last_received_ms: timed.then_some(last_received_ms),
        },
        shardcast_media::Event::SegmentReady {
            msn,
            start_dts,
            duration_ticks,
            bytes,
            discontinuity,
            program_date_time_ms,
            ..
        } => IndexEvent::Segment {
            rendition: name,
            msn,
            start_ticks: start_dts,
            duration_ticks,
            bytes,
            discontinuity,
            program_date_time_ms,
        },
        shardcast_media::Event::Placed { .. } => return None,
    })
}

/// The source's segmenter: it reports placed video samples when a ladder is configured.
fn source_segmenter(settings: &MediaSettings) -> Segmenter {
    let mut segmenter = Segmenter::new(settings.segmenter);
    if let Some(transcode) = &settings.transcode {
        segmenter.set_report_placed_video(!transcode.ladder.is_empty());
        segmenter.set_report_placed_audio(transcode.opus_bps > 0);
    }
    segmenter
}
