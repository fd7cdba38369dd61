//! RTMP publishers connected to this shard: the session (`shardcast-rtmp`, sans-io), publish
//! auth (stream keys, publish tokens, the `on_publish` webhook), the FLV demuxer, checks at
//! the door (codec, picture size), and the samples forwarded to the stream's home.

use super::msg::{MediaMsg, PublishRole, PublisherId, SampleMsg};
use super::names::home_of;
use super::Media;
use crate::common::counters::{bump, set};
use crate::control::msg::{ControlRequest, Webhook};
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use bytes::Bytes;
use shardcast_engine::{ConnId, Ctx, ShardId, TimerId};
use shardcast_media::{Demuxed, Demuxer, TrackConfig, TrackKind};
use shardcast_rtmp::{Event as RtmpEvent, ServerSession};
use std::sync::Arc;

mod publish;

/// Where a publisher is in its life.
#[derive(Debug)]
enum Ingest {
    /// Handshake and connect.
    Connecting,
    /// Connected; no publish yet.
    Connected,
    /// Waiting for the on_publish webhook answer carrying `token`.
    Authorizing { request: PublishRequest, token: u64 },
    /// Waiting for the home's decision.
    Claiming { stream: Arc<str>, stream_id: u32 },
    /// Publishing: media goes to the home.
    Publishing { stream: Arc<str>, home: ShardId },
    /// A fatal answer was queued; closing after it is written.
    Closing,
    /// A new primary replaced this (stalled) publisher, and the error saying so was queued.
    /// The connection stays open until the peer sends again, so that a frozen encoder that
    /// wakes reads the error instead of a reset; then it closes like `Closing`. Bounded by
    /// `rtmp.idle_timeout_ms` from the peer's last bytes.
    Replaced,
}

/// A publish the session asked for.
#[derive(Clone, Debug)]
struct PublishRequest {
    stream: Arc<str>,
    /// The RTMP message stream it was asked on (the answer goes there).
    stream_id: u32,
    role: PublishRole,
    /// `?title=`, checked.
    title: Option<String>,
}

/// One RTMP connection.
pub(super) struct RtmpConn {
    pub conn: ConnId,
    session: ServerSession,
    state: Ingest,
    demuxer: Demuxer,
    timer: Option<TimerId>,
    remote: Arc<str>,
    saw_keyframe: bool,
    /// When the connection arrived (the publish deadline counts from here).
    opened_ms: u64,
    /// When bytes last arrived (the idle deadline counts from here).
    last_rx_ms: u64,
    /// Set by a close after flush: past it the connection is dropped unflushed (a peer that
    /// does not read cannot hold its slot).
    flush_deadline_ms: Option<u64>,
    /// How the publisher's media time runs against the clock.
    pace: Pace,
    /// The video configuration that passed the door last (in-band changes are checked too).
    video_config: Option<TrackConfig>,
}

/// A publisher this far ahead of real time is logged (once per connection).
const AHEAD_OF_REAL_TIME_WARN_MS: u64 = 10_000;

/// The first media timestamp of a publish and when it arrived: media time ahead of the time
/// passed since is a publisher faster than real time.
#[derive(Default)]
struct Pace {
    first: Option<(u32, u64)>,
    warned: bool,
}

impl Pace {
    /// How far the publisher's media time at `timestamp_ms` is ahead of the clock.
    fn ahead_ms(&mut self, now_ms: u64, timestamp_ms: u32) -> u64 {
        let (first_ts, first_at) = *self.first.get_or_insert((timestamp_ms, now_ms));
        let media = u64::from(timestamp_ms.wrapping_sub(first_ts));
        // A jump (or a wrap) reads as hours ahead; the home re-bases those and says so.
        if media > 3_600_000 {
            return 0;
        }
        media.saturating_sub(now_ms - first_at)
    }
}

/// How long a closing RTMP connection may take to read its last message.
const CLOSE_FLUSH_MS: u64 = 5000;

impl Media {
    /// An RTMP connection whose source address holds `rtmp.max_connections_per_address`
    /// already: closed at once (RTMP has nothing to say before the handshake).
    pub fn rtmp_refused(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        bump(&self.counters().rtmp_refused, 1);
        if self.log_budget.allow(cx.now_ms()) {
            log::warn!(
                "shard {}: refusing an RTMP connection from {}: \
                 rtmp.max_connections_per_address reached",
                self.shard.0,
                cx.peer_ip(conn)
                    .map_or_else(|| "?".to_string(), |ip| ip.to_string())
            );
        }
        cx.close(conn);
    }

    /// A connection arrived on an RTMP listener.
    pub fn rtmp_open(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        if self.open_rtmp >= u64::from(self.settings.rtmp_limits.max_connections_per_shard) {
            // RTMP has nothing to say before the handshake: the connection is closed.
            bump(&self.counters().rtmp_refused, 1);
            if self.log_budget.allow(cx.now_ms()) {
                log::warn!(
                    "shard {}: refusing an RTMP connection: rtmp.max_connections_per_shard ({}) \
                     reached",
                    self.shard.0,
                    self.settings.rtmp_limits.max_connections_per_shard
                );
            }
            return cx.close(conn);
        }
        let now = cx.now_ms();
        self.conns[conn.slot()] = Some(RtmpConn {
            conn,
            session: ServerSession::new(self.settings.rtmp, cx.now_ms()),
            state: Ingest::Connecting,
            demuxer: Demuxer::new(),
            timer: None,
            remote: Arc::from(format!("shard {} conn {}", self.shard.0, conn.slot())),
            saw_keyframe: false,
            opened_ms: now,
            last_rx_ms: now,
            flush_deadline_ms: None,
            pace: Pace::default(),
            video_config: None,
        });
        self.open_rtmp += 1;
        set(&self.counters().rtmp_connections, self.open_rtmp);
        self.arm_rtmp_timer(cx, conn.slot());
    }

    /// Bytes arrived on an RTMP connection.
    pub fn rtmp_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        let slot = conn.slot();
        let Some(rc) = self.conns[slot].as_mut().filter(|rc| rc.conn == conn) else {
            return;
        };
        match rc.state {
            Ingest::Closing => return,
            // The replaced publisher woke: it has the error to read; close behind it.
            Ingest::Replaced => {
                rc.state = Ingest::Closing;
                return self.close_rtmp_after_flush(cx, slot);
            }
            _ => {}
        }
        rc.last_rx_ms = cx.now_ms();
        let result = rc.session.handle_input(cx.now_ms(), data);
        self.pump(cx, slot);
        if let Err(error) = result {
            bump(&self.counters().rtmp_errors, 1);
            if self.log_budget.allow(cx.now_ms()) {
                log::info!("rtmp {}: closing: {error}", self.describe(slot));
            }
            self.close_rtmp(cx, slot);
        }
    }

    fn describe(&self, slot: usize) -> String {
        match self.conns[slot].as_ref().map(|rc| &rc.state) {
            Some(Ingest::Publishing { stream, .. })
            | Some(Ingest::Claiming { stream, .. })
            | Some(Ingest::Authorizing {
                request: PublishRequest { stream, .. },
                ..
            }) => format!("stream {stream} (conn {slot})"),
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
            .is_some_and(|rc| rc.session.is_finished() && !matches!(rc.state, Ingest::Replaced));
        if finished {
            // The session ended itself (a refusal, an error it answered): its last message
            // goes out first. (A replaced publisher's closes when it sends again.)
            self.close_rtmp_after_flush(cx, slot);
        }
    }

    fn rtmp_event(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize, event: RtmpEvent) {
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
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
            } => self.publish_requested(cx, slot, stream_id, &name),
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
                    let (stream, home, conn) = (stream.clone(), *home, rc.conn);
                    rc.state = Ingest::Connected;
                    log::info!("rtmp conn {slot}: stream {stream} unpublished");
                    self.notify_unpublish(cx, &stream, "unpublished");
                    self.rtmp_unpublish(cx, home, stream, conn);
                }
            }
        }
    }

    /// An audio or video message of a publishing connection: demuxed, checked, forwarded home.
    fn media_message(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        slot: usize,
        track: TrackKind,
        timestamp_ms: u32,
        payload: Bytes,
    ) {
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        let Ingest::Publishing { stream, home } = &rc.state else {
            return;
        };
        let (stream, home, conn) = (stream.clone(), *home, rc.conn);
        let now_ms = cx.now_ms();
        if rc.pace.ahead_ms(now_ms, timestamp_ms) > AHEAD_OF_REAL_TIME_WARN_MS && !rc.pace.warned {
            rc.pace.warned = true;
            log::warn!(
                "rtmp conn {slot}: stream {stream}: the publisher sends faster than real time \
                 ({} s ahead); its media is served as it comes, and the window \
                 (media.window_s) bounds what is kept",
                rc.pace.ahead_ms(now_ms, timestamp_ms) / 1000
            );
        }
        let demuxed = match track {
            TrackKind::Video => rc.demuxer.handle_video(timestamp_ms, &payload),
            TrackKind::Audio => rc.demuxer.handle_audio(timestamp_ms, &payload),
        };
        bump(&self.counters().ingest_bytes, payload.len() as u64);
        let demuxed = match demuxed {
            Ok(demuxed) => demuxed,
            Err(error) => {
                if matches!(error, shardcast_media::MediaError::UnsupportedCodec { .. }) {
                    bump(&self.counters().unsupported_codecs, 1);
                }
                return self.refuse_media(cx, slot, &error.to_string());
            }
        };
        match demuxed {
            Demuxed::Nothing => {}
            Demuxed::Config(config) => {
                if let Err(why) = self.check_config(&config) {
                    return self.refuse_media(cx, slot, &why);
                }
                if let (Some(rc), TrackKind::Video) = (self.conns[slot].as_mut(), config.kind()) {
                    rc.video_config = Some(config.clone());
                }
                let config = Box::new(config);
                self.send_to(
                    cx,
                    home,
                    MediaMsg::Config {
                        stream,
                        conn: PublisherId::Rtmp(conn),
                        config,
                    },
                );
            }
            Demuxed::Sample { track, sample } => {
                if track == TrackKind::Video && sample.keyframe {
                    if let Err(why) = self.check_inband(slot, &sample) {
                        return self.refuse_media(cx, slot, &why);
                    }
                }
                if let Some(rc) = self.conns[slot].as_mut() {
                    if track == TrackKind::Video && sample.keyframe && !rc.saw_keyframe {
                        rc.saw_keyframe = true;
                        log::info!("rtmp conn {slot}: stream {stream}: first keyframe");
                    }
                }
                let sample = SampleMsg {
                    stream,
                    conn: PublisherId::Rtmp(conn),
                    track,
                    sample,
                    received_wall_ms: cx.wall_ms(),
                };
                self.send_to(cx, home, MediaMsg::Sample(Box::new(sample)));
            }
        }
    }

    /// A keyframe whose in-band parameter sets describe another picture than the sequence
    /// header (a size change the encoder did not announce): the new size is checked like a
    /// new sequence header.
    fn check_inband(
        &mut self,
        slot: usize,
        sample: &shardcast_media::Sample,
    ) -> Result<(), String> {
        let Some(current) = self.conns[slot]
            .as_ref()
            .and_then(|rc| rc.video_config.clone())
        else {
            return Ok(());
        };
        let Ok(Some(config)) = shardcast_media::codec::inband_config(&current, &sample.data) else {
            return Ok(());
        };
        self.check_config(&config)?;
        if let Some(rc) = self.conns[slot].as_mut() {
            rc.video_config = Some(config);
        }
        Ok(())
    }

    /// Tells `stream`'s home that RTMP connection `conn` stopped publishing it.
    pub(super) fn rtmp_unpublish(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        home: ShardId,
        stream: Arc<str>,
        conn: ConnId,
    ) {
        let conn = PublisherId::Rtmp(conn);
        self.send_to(cx, home, MediaMsg::Unpublish { stream, conn });
    }

    /// Checks a configuration at the door: the picture size within `media.max_width` ×
    /// `media.max_height`.
    pub(super) fn check_config(&self, config: &TrackConfig) -> Result<(), String> {
        let Some(video) = config.video() else {
            return Ok(());
        };
        let (max_width, max_height) = (self.settings.max_width, self.settings.max_height);
        if video.width == 0
            || video.height == 0
            || video.width > max_width
            || video.height > max_height
        {
            return Err(format!(
                "video {}x{} outside 1x1..{max_width}x{max_height}",
                video.width, video.height
            ));
        }
        Ok(())
    }

    /// The home replaced this publisher (a new primary took over while it was stalled): an
    /// RTMP error naming why, queued for when the peer wakes (see [`Ingest::Replaced`]).
    fn replaced(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize, why: &str) {
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        let Ingest::Publishing { stream, .. } = &rc.state else {
            return;
        };
        log::info!("rtmp conn {slot}: stream {stream}: {why}; closing when it sends again");
        rc.session.error_and_close(why);
        rc.state = Ingest::Replaced;
        self.pump(cx, slot);
        self.arm_rtmp_timer(cx, slot);
    }

    /// Ends a publish whose media cannot be taken: an RTMP error naming why, the home told,
    /// and the connection closed once the error is written.
    fn refuse_media(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize, why: &str) {
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        let Ingest::Publishing { stream, home } = &rc.state else {
            return;
        };
        let (stream, home, conn) = (stream.clone(), *home, rc.conn);
        log::warn!("rtmp conn {slot}: stream {stream}: {why}; closing");
        rc.session.error_and_close(why);
        rc.state = Ingest::Closing;
        self.rtmp_unpublish(cx, home, stream, conn);
        self.pump(cx, slot);
        self.close_rtmp_after_flush(cx, slot);
    }

    /// Tells `media.on_unpublish` (if set) that `stream` stopped; the answer is not awaited.
    pub(super) fn notify_unpublish(&self, cx: &mut Ctx<ShardMsg>, stream: &str, reason: &str) {
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
        let webhook = Webhook {
            url: url.clone(),
            body,
            timeout_ms: self.settings.webhook_timeout_ms,
            token: None,
        };
        cx.mesh_send_control(ControlRequest::Webhook(Box::new(webhook)).into());
    }

    fn close_rtmp(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        if let Some(rc) = self.conns[slot].as_ref() {
            cx.close(rc.conn);
        }
    }

    fn close_rtmp_after_flush(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        let now = cx.now_ms();
        if let Some(rc) = self.conns[slot].as_mut() {
            cx.close_after_flush(rc.conn);
            rc.flush_deadline_ms = Some(now + CLOSE_FLUSH_MS);
        }
        self.arm_rtmp_timer(cx, slot);
    }

    /// The engine closed an RTMP connection.
    pub fn rtmp_closed(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let slot = conn.slot();
        if self.conns[slot].as_ref().is_none_or(|rc| rc.conn != conn) {
            return;
        }
        let Some(rc) = self.conns[slot].take() else {
            return;
        };
        if let Some(timer) = rc.timer {
            cx.timer_cancel(timer);
        }
        self.open_rtmp -= 1;
        set(&self.counters().rtmp_connections, self.open_rtmp);
        match rc.state {
            Ingest::Publishing { stream, home } => {
                log::info!("rtmp conn {slot}: stream {stream}: publisher disconnected");
                self.notify_unpublish(cx, &stream, "disconnected");
                self.rtmp_unpublish(cx, home, stream, conn);
            }
            Ingest::Claiming { stream, .. } => {
                let home = home_of(&stream, self.shards);
                self.rtmp_unpublish(cx, home, stream, conn);
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
        let limits = self.settings.rtmp_limits;
        let deadline = match (rc.flush_deadline_ms, &rc.state) {
            (Some(flush), _) => flush,
            (None, Ingest::Closing) => return,
            (None, state) => {
                let own = match state {
                    Ingest::Publishing { .. } | Ingest::Replaced => {
                        rc.last_rx_ms + limits.idle_timeout_ms
                    }
                    _ => rc.opened_ms + limits.publish_timeout_ms,
                };
                rc.session.poll_timeout().map_or(own, |d| d.min(own))
            }
        };
        {
            let key = TimerKey::Conn { slot: slot as u32 };
            rc.timer = cx.timer_after(deadline.saturating_sub(now).max(1), key.into());
            if rc.timer.is_none() {
                // The wheel is sized so this cannot happen while the limits hold; an RTMP
                // session is never run without its timeouts.
                let conn = rc.conn;
                bump(&self.counters().rtmp_errors, 1);
                cx.close(conn);
            }
        }
    }

    /// An RTMP connection's timer fired (the handshake timeout).
    pub fn rtmp_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, slot: usize) {
        let now = cx.now_ms();
        let Some(rc) = self.conns[slot].as_mut() else {
            return;
        };
        if rc.timer != Some(id) {
            return;
        }
        rc.timer = None;
        if rc.flush_deadline_ms.is_some_and(|d| now >= d) {
            bump(&self.counters().rtmp_timeouts, 1);
            log::info!("rtmp conn {slot}: its last message was not read in time; dropping it");
            self.close_rtmp(cx, slot);
            return;
        }
        if rc.flush_deadline_ms.is_some() {
            return self.arm_rtmp_timer(cx, slot);
        }
        if let Err(error) = rc.session.handle_timeout(now) {
            // The handshake (through `connect`) did not finish within
            // rtmp.handshake_timeout_ms: a timeout, like the publish and idle ones.
            let counter = if matches!(error, shardcast_rtmp::RtmpError::HandshakeTimeout { .. }) {
                &self.counters().rtmp_timeouts
            } else {
                &self.counters().rtmp_errors
            };
            bump(counter, 1);
            if self.log_budget.allow(now) {
                log::info!("rtmp conn {slot}: {error}; closing");
            }
            self.close_rtmp(cx, slot);
            return;
        }
        let limits = self.settings.rtmp_limits;
        let expired = match rc.state {
            Ingest::Publishing { .. } | Ingest::Replaced
                if now >= rc.last_rx_ms + limits.idle_timeout_ms =>
            {
                Some("sent nothing for rtmp.idle_timeout_ms")
            }
            Ingest::Replaced => None,
            Ingest::Publishing { .. } | Ingest::Closing => None,
            _ if now >= rc.opened_ms + limits.publish_timeout_ms => {
                Some("no publish accepted within rtmp.publish_timeout_ms")
            }
            _ => None,
        };
        if let Some(why) = expired {
            bump(&self.counters().rtmp_timeouts, 1);
            if self.log_budget.allow(now) {
                log::info!("rtmp {}: {why}; closing", self.describe(slot));
            }
            self.close_rtmp(cx, slot);
            return;
        }
        self.pump(cx, slot);
        self.arm_rtmp_timer(cx, slot);
    }
}
