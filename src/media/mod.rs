//! Live media on a shard: RTMP publishers accepted here ([`ingest`]), the streams whose home
//! is this shard ([`home`]), and this shard's copy of every stream's segment index, served
//! over HTTP ([`serve`], with LL-HLS requests that wait in [`waiters`]). It owns those and
//! nothing else; it never blocks, and FFmpeg never runs here (transcode workers do that).
//!
//! A publisher connects to any shard. That shard runs the RTMP session and the FLV demuxer and
//! forwards codec configurations and samples to the stream's **home** shard
//! (`hash(stream) % shards`), whose `StreamHome` (`shardcast_media::home`, sans-io) owns the
//! segmenter. The home, not the ingest shard, packages the stream so that a backup publisher
//! on another shard can take over with continuous segment numbering and media time. Every
//! init, part and segment the home produces goes to every shard over the mesh as `Bytes`;
//! each shard serves playlists, MPDs and media from its own index.

mod api;
pub mod edge;
#[cfg(test)]
mod edge_tests;
mod home;
mod ingest;
pub mod msg;
pub mod names;
mod recording;
mod rtc;
mod serve;
pub mod settings;
mod stage;
#[cfg(test)]
mod tests;
mod waiters;
pub mod whip;

use crate::common::counters::{bump, set};
use crate::common::live::{LiveSet, Liveness};
use crate::common::log_budget::LogBudget;
use crate::common::strikes::Strikes;
use crate::common::table::Table;
use crate::control::msg::ControlReply;
use crate::edge::msg::OriginMapMsg;
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use bytes::Bytes;
use home::StreamSlot;
use ingest::RtmpConn;
use msg::MediaMsg;
use rtc::LayersChange;
use settings::{MediaCounters, MediaSettings};
use shardcast_engine::{ConnId, Ctx, ShardId, TimerId};
use shardcast_media::{IndexEvent, MediaIndex};
use std::sync::Arc;
use waiters::Waiters;

/// A response the HTTP layer sends for the media routes.
#[derive(Debug)]
pub enum MediaResponse {
    /// 200 (or 206 with the range applied by the caller) with these chunks.
    Body {
        content_type: &'static str,
        cache_control: &'static str,
        chunks: Vec<Bytes>,
    },
    /// An error status with a short text.
    Status(u16, &'static str),
    /// The request waits; the caller must stop reading this connection until the router
    /// hands it the answer (from [`Media::take_ready`]).
    Waiting,
    /// The head of a 200 sent with chunked transfer, and its first chunks: a segment still
    /// being made. Unless `done`, the request stays parked: more follows from
    /// [`Media::take_ready`] as [`MediaResponse::StreamMore`].
    StreamStart {
        cache_control: &'static str,
        chunks: Vec<Bytes>,
        done: bool,
    },
    /// More chunks of a response begun with [`MediaResponse::StreamStart`]; `done`: the last.
    StreamMore { chunks: Vec<Bytes>, done: bool },
    /// A response begun with [`MediaResponse::StreamStart`] cannot be finished (the stream
    /// stopped): the connection must close, so the client sees the body cut short.
    StreamAbort,
    /// 201 with an SDP answer and the WebRTC session's resource (a WHIP publish accepted).
    Created { location: String, sdp: String },
}

/// How a segment still being made may be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Only whole: the request waits until the segment is complete (HEAD, a byte range,
    /// HTTP/1.0).
    Whole,
    /// As it is made, part by part, with chunked transfer (low-latency DASH).
    AsMade,
}

/// The media state of one shard.
/// Addresses whose refused publish credentials one shard tracks at once.
const PUBLISH_FAILURE_ADDRESSES_MAX: usize = 4096;

pub struct Media {
    settings: Arc<MediaSettings>,
    shard: ShardId,
    shards: usize,
    /// RTMP connections, by connection slot.
    conns: Vec<Option<RtmpConn>>,
    open_rtmp: u64,
    /// Webhook calls made, for matching their answers.
    webhooks_sent: u64,
    /// Streams whose home is this shard.
    homes: Table<Arc<str>, StreamSlot>,
    /// This shard's copy of every stream's index.
    index: MediaIndex,
    waiters: Waiters,
    /// The timer that retires ended streams from the index, and when it fires.
    retire: Option<(TimerId, u64)>,
    log_budget: LogBudget,
    /// The streams live now, kept from the index for the shard's other services.
    live: LiveSet,
    /// Refused publish credentials per source address.
    guesses: Strikes,
    /// Edge mode: `/live/…` from origins instead of this shard's index.
    edge: Option<edge::EdgeShard>,
    /// WHEP sessions on this shard's UDP socket (`[webrtc]`).
    webrtc: Option<crate::webrtc::Webrtc>,
    /// The sessions were touched since their timer was last armed ([`Media::poll_webrtc`]).
    webrtc_unsettled: bool,
    /// Of the streams homed here (or to be): the shards with WebRTC sessions of each, which
    /// get its samples.
    rtc_watchers: std::collections::HashMap<Arc<str>, Vec<ShardId>>,
    /// Of the streams homed here: their watched pinned-rung feeds (`{stream}/{rung}`), which
    /// get the stream's sound too.
    rtc_pins: std::collections::HashMap<Arc<str>, Vec<Arc<str>>>,
    /// Co-hosted programs homed here.
    stages: std::collections::HashMap<Arc<str>, stage::Stage>,
    /// Stage notices for danmaku rooms homed on this shard (see `take_for_danmaku`).
    for_danmaku: Vec<crate::danmaku::msg::DanmakuMsg>,
    /// This shard's WHIP publishers of VP8 (by key and serial): the transcode worker that
    /// makes their video H.264.
    vp8_workers: std::collections::HashMap<(u32, u32), ShardId>,
}

impl Media {
    pub fn new(
        settings: Arc<MediaSettings>,
        shard: ShardId,
        shards: usize,
        capacity: usize,
        live: LiveSet,
    ) -> Self {
        let index = MediaIndex::new(settings.index);
        let settings_edge = settings.edge.clone().map(edge::EdgeShard::new);
        let webrtc = settings.webrtc.clone().map(crate::webrtc::Webrtc::new);
        let guesses = Strikes::new(
            settings.rtmp_limits.publish_failures_per_minute,
            60_000,
            PUBLISH_FAILURE_ADDRESSES_MAX,
        );
        Media {
            settings,
            shard,
            shards,
            conns: (0..capacity).map(|_| None).collect(),
            open_rtmp: 0,
            webhooks_sent: 0,
            homes: Table::default(),
            index,
            webrtc_unsettled: false,
            waiters: Waiters::default(),
            retire: None,
            log_budget: LogBudget::default(),
            guesses,
            live,
            edge: settings_edge,
            webrtc,
            rtc_watchers: std::collections::HashMap::new(),
            rtc_pins: std::collections::HashMap::new(),
            stages: std::collections::HashMap::new(),
            for_danmaku: Vec::new(),
            vp8_workers: std::collections::HashMap::new(),
        }
    }

    /// This shard's counters.
    pub fn counters(&self) -> &MediaCounters {
        &self.settings.counters[self.shard.index()]
    }

    /// This shard's index.
    pub fn index(&self) -> &MediaIndex {
        &self.index
    }

    /// Streams homed here.
    pub fn streams_homed(&self) -> usize {
        self.homes.len()
    }

    /// Sends `msg` to shard `to` over the mesh, or handles it here when `to` is this shard.
    fn send_to(&mut self, cx: &mut Ctx<ShardMsg>, to: ShardId, msg: MediaMsg) {
        if to == self.shard {
            self.on_mesh(cx, to, msg);
        } else {
            cx.mesh_send(to, msg.into());
        }
    }

    /// A media message from another shard, a transcode worker, or this shard.
    pub fn on_mesh(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: MediaMsg) {
        match msg {
            MediaMsg::Publish {
                stream,
                conn,
                role,
                from: who,
            } => self.home_publish(cx, from, stream, conn, role, *who),
            MediaMsg::PublishDecision { conn, decision } => match conn {
                msg::PublisherId::Rtmp(conn) => self.publish_decision(cx, conn, decision),
                msg::PublisherId::Whip { key, serial } => {
                    self.whip_decision(cx, key, serial, decision)
                }
                msg::PublisherId::Stage => {}
            },
            MediaMsg::StageJoin { feed, name } => {
                self.stage_member(cx, (feed, name), stage::Presence::Joined)
            }
            MediaMsg::StageLeave { feed } => {
                self.stage_member(cx, (feed, None), stage::Presence::Left)
            }
            MediaMsg::StageWatch { feed, worker } => self.stage_watch(cx, feed, worker),
            MediaMsg::StageMuted {
                program,
                slot,
                muted,
            } => self.stage_muted(cx, &program, slot, muted),
            MediaMsg::Config {
                stream,
                conn,
                config,
            } => self.home_config(cx, &stream, from, conn, *config),
            MediaMsg::Sample(sample) => self.home_sample(cx, from, *sample),
            MediaMsg::Converted(msg) => self.vp8_converted(cx, *msg),
            MediaMsg::Vp8(sample) => self.rtc_vp8(cx, from, *sample),
            MediaMsg::Unpublish { stream, conn } => self.home_unpublish(cx, &stream, from, conn),
            MediaMsg::Index { stream, event } => self.apply_index(cx, &stream, *event),
            MediaMsg::RungEvent {
                stream,
                epoch,
                event,
            } => self.home_rung_event(cx, &stream, epoch, *event),
            MediaMsg::RungStats {
                stream,
                epoch,
                rungs,
            } => self.home_rung_stats(cx, &stream, epoch, rungs),
            MediaMsg::RungEnded { stream, epoch } => self.home_rung_ended(cx, &stream, epoch),
            MediaMsg::RecordingAnswer(answer) => self.recording_answer(*answer),
            MediaMsg::WhepDelete { id, conn } => {
                let found = self.whep_delete_here(cx, &id);
                self.send_to(cx, from, MediaMsg::WhepDeleted { conn, found });
            }
            MediaMsg::WhepDeleted { conn, found } => {
                let response = if found {
                    MediaResponse::Status(200, "session ended")
                } else {
                    MediaResponse::Status(404, "no such session")
                };
                self.waiters.push_ready(conn, response);
            }
            MediaMsg::RtcWatch { feed, watching } => self.rtc_watch(cx, from, feed, watching),
            MediaMsg::RtcMedia { feed, media } => self.rtc_media(cx, &feed, *media),
            MediaMsg::KeyframeWanted { feed } => self.rtc_keyframe_wanted(cx, &feed),
            MediaMsg::WhipKeyframe { key, serial } => {
                if let Some(webrtc) = self.webrtc.as_mut() {
                    webrtc.publisher_keyframe(cx, key, serial);
                }
            }
            MediaMsg::RtcTranscoded {
                stream,
                epoch,
                rung,
                media,
            } => self.rtc_transcoded(cx, &stream, (epoch, rung), *media),
        }
    }

    /// A message this shard cannot act on: counted and logged.
    pub fn mesh_error(&mut self, cx: &Ctx<ShardMsg>, from: ShardId, what: &str) {
        bump(&self.counters().mesh_errors, 1);
        if self.log_budget.allow(cx.now_ms()) {
            log::warn!("shard {}: {what} from thread {}", self.shard.0, from.0);
        }
    }

    /// Sends an index update of `stream` to every shard (this one included).
    fn broadcast(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>, event: IndexEvent) {
        for shard in (0..self.shards).map(|s| ShardId(s as u16)) {
            if shard != self.shard {
                let msg = MediaMsg::Index {
                    stream: stream.clone(),
                    event: Box::new(event.clone()),
                };
                cx.mesh_send(shard, msg.into());
            }
        }
        self.record(cx, stream, &event);
        if let Some(relay) = self.settings.origin_map {
            let msg = match &event {
                IndexEvent::Started { .. } => Some(OriginMapMsg::Live(stream.clone())),
                IndexEvent::Ended => Some(OriginMapMsg::Ended(stream.clone())),
                _ => None,
            };
            if let Some(msg) = msg {
                cx.mesh_send(relay, ShardMsg::OriginMap(msg));
            }
        }
        self.apply_index(cx, stream, event);
    }

    /// Applies an index update to this shard's copy, and wakes the requests it satisfies.
    fn apply_index(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>, event: IndexEvent) {
        // Whether the publisher shown sends VP8, before new facts (WebRTC viewers follow a
        // change of it).
        let vp8 = |index: &MediaIndex| index.stream(stream).map(|s| s.info.vp8);
        let new_facts = matches!(event, IndexEvent::Info(_) | IndexEvent::Started { .. });
        let vp8_before = if new_facts { vp8(&self.index) } else { None };
        if matches!(event, IndexEvent::Started { .. }) {
            // A new publish session starts a fresh index.
            self.index.remove(stream);
        }
        let part_received_ms = match &event {
            IndexEvent::Part {
                last_received_ms, ..
            } => *last_received_ms,
            _ => None,
        };
        // Only a start or an end changes whether the stream is live (parts and segments, the
        // bulk of the events, do not touch the set).
        let liveness = match &event {
            IndexEvent::Started { .. } => Some(Liveness::Live),
            IndexEvent::Ended => Some(Liveness::Ended),
            _ => None,
        };
        // A new header (a rung appeared) or a whole segment (the rates measured again)
        // changes the layers adaptive WebRTC viewers move between.
        let layers = match &event {
            IndexEvent::Init { .. } => Some(LayersChange::Header),
            IndexEvent::Segment { .. } => Some(LayersChange::Rates),
            _ => None,
        };
        let streams_before = self.index.totals().streams;
        let applied = self.index.apply(stream, event, cx.now_ms());
        if let Some(change) = layers.filter(|_| applied) {
            self.rtc_layers_changed(stream, change);
        }
        if applied && new_facts && vp8(&self.index) != vp8_before {
            self.rtc_vp8_changed(cx, stream);
        }
        if let Some(live) = liveness {
            let indexed = self.index.stream(stream).is_some();
            self.live
                .set(stream, if indexed { live } else { Liveness::Ended });
            // Room made for a new stream by forgetting ended ones.
            let retired = (streams_before + 1).saturating_sub(self.index.totals().streams);
            if matches!(live, Liveness::Live) && retired > 0 {
                bump(&self.counters().streams_retired, retired as u64);
            }
            self.arm_retire(cx);
        }
        self.set_index_gauges();
        if applied {
            if let Some(received_ms) = part_received_ms {
                let latency_ms = cx.wall_ms().saturating_sub(received_ms);
                self.settings.part_latency[self.shard.index()].record_us(latency_ms * 1000);
            }
        } else if self.log_budget.allow(cx.now_ms()) {
            log::warn!(
                "shard {}: index full; stream {stream} not indexed",
                self.shard.0
            );
        }
        self.wake_waiters(stream);
    }

    /// Arms the retirement timer for the next ended stream due to go, if any and if it is not
    /// armed for that time already.
    fn arm_retire(&mut self, cx: &mut Ctx<ShardMsg>) {
        let Some(due_ms) = self.index.next_retirement_ms() else {
            return;
        };
        if self.retire.is_some_and(|(_, at)| at <= due_ms) {
            return;
        }
        if let Some((timer, _)) = self.retire.take() {
            cx.timer_cancel(timer);
        }
        let after = due_ms.saturating_sub(cx.now_ms()).max(1);
        // The wheel holds a place for this timer (`shard::timer::other_timers`).
        if let Some(timer) = cx.timer_after(after, TimerKey::Retire.into()) {
            self.retire = Some((timer, due_ms));
        }
    }

    /// The retirement timer fired: ended streams past `media.ended_keep_s` are forgotten.
    pub fn on_retire_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId) {
        if self.retire.is_none_or(|(t, _)| t != id) {
            return;
        }
        self.retire = None;
        let retired = self.index.retire_ended(cx.now_ms());
        if retired > 0 {
            bump(&self.counters().streams_retired, retired as u64);
            log::debug!(
                "shard {}: {retired} ended stream(s) retired from the index",
                self.shard.0
            );
        }
        self.set_index_gauges();
        self.arm_retire(cx);
    }

    fn set_index_gauges(&self) {
        let totals = self.index.totals();
        let counters = self.counters();
        set(&counters.streams_indexed, totals.streams as u64);
        set(&counters.streams_indexed_ended, totals.ended as u64);
        set(&counters.index_bytes, totals.bytes as u64);
    }

    /// The control thread answered a webhook.
    pub fn on_control_reply(&mut self, cx: &mut Ctx<ShardMsg>, reply: ControlReply) {
        let ControlReply::Webhook {
            token,
            verdict,
            detail,
        } = reply;
        self.webhook_answered(cx, token, verdict, &detail);
    }

    /// Closes publishers (and answers waiting requests) when the shard drains.
    pub fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        for rc in self.conns.iter().flatten() {
            cx.close(rc.conn);
        }
        self.waiters.drain_all();
    }

    /// Responses for waiting connections that became ready; the router hands them to HTTP.
    pub fn take_ready(&mut self) -> Vec<(ConnId, MediaResponse)> {
        let mut ready = self.waiters.take_ready();
        if let Some(edge) = self.edge.as_mut() {
            ready.extend(edge.take_ready());
        }
        ready
    }

    /// This shard's edge, in edge mode.
    pub fn edge(&self) -> Option<&edge::EdgeShard> {
        self.edge.as_ref()
    }
}
