//! The streams whose home is this shard: the glue between the mesh and each stream's
//! `StreamHome` (`shardcast_media::home`, sans-io). Publishers' messages go in; index
//! updates go to every shard, transcode messages to the stream's worker, and what happened to
//! the log and counters. The home's deadline becomes one timer.

use super::msg::{MediaMsg, PublishFrom, PublishRole, PublisherId, RtcMedia, SampleMsg, Watching};
use super::Media;
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use crate::transcode::msg::{PlacedSample, TranscodeMsg};
use shardcast_engine::{Ctx, ShardId, TimerId};
use shardcast_media::home::{
    PUBLISHERS_MAX_DEFAULT, STALL_CHECK_MS_DEFAULT, TRANSCODE_END_WAIT_MS_DEFAULT,
};
use shardcast_media::{
    AudioTranscode, HomeConfig, HomeEvent, IndexEvent, RungInfo, StreamHome, TrackConfig,
    TranscodeEvent,
};
use std::sync::Arc;

/// A publisher as the home knows it: its ingest shard and its id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Publisher {
    shard: ShardId,
    conn: PublisherId,
}

/// A stream homed here.
pub(super) struct StreamSlot {
    home: StreamHome<Publisher>,
    /// The transcode worker of the current epoch, from its first Start to its End.
    worker: Option<ShardId>,
    /// The armed timer and its deadline.
    timer: Option<(TimerId, u64)>,
    /// Thumbnails without a ladder: when the last keyframe went to the worker (wall ms).
    thumbnail_keyframe_ms: Option<u64>,
    /// WebRTC viewers' video: the source's, or (for a source with B-frames) the worker's
    /// largest rung.
    pub(super) rtc_video: RtcVideo,
    /// A co-hosting feed's stage, which gets its configurations and samples.
    pub(super) stage: Option<super::stage::StageTarget>,
    /// Its publishers that send VP8 (WHIP): the stream's `vp8` fact follows whether the
    /// active publisher is one.
    vp8_publishers: Vec<Publisher>,
}

/// Where a stream's WebRTC viewers get their video from, in one publish session.
#[derive(Default)]
pub(super) struct RtcVideo {
    /// The epoch whose video comes from the worker's rung (its source reorders frames).
    pub rung_epoch: Option<u64>,
    /// The rung's configuration, for shards that start watching.
    pub rung_config: Option<TrackConfig>,
    /// The configurations of the rungs viewers pinned, by rung, for shards that start
    /// watching one.
    pub pinned_configs: Vec<(Arc<str>, TrackConfig)>,
}

impl StreamSlot {
    /// Forwards the active publisher's samples (for WebRTC sessions, and a feed's stage) or
    /// stops.
    pub(super) fn set_forward(&mut self, watched: Watching) {
        self.home
            .set_forward(watched == Watching::Yes || self.stage.is_some());
    }

    /// A co-hosted program's hosts now.
    pub(super) fn set_hosts(&mut self, hosts: Vec<shardcast_media::StageHost>) {
        self.home.set_hosts(hosts);
    }

    /// What people call the stream (its publisher's `?title=`; empty: none given).
    pub(super) fn title(&self) -> &str {
        self.home.title()
    }

    /// The configurations of the active publisher's samples.
    pub(super) fn source_configs(&self) -> [Option<TrackConfig>; 2] {
        self.home.forward_configs().map(|c| c.cloned())
    }

    /// The active publisher: its ingest shard and its id there.
    pub(super) fn active_publisher(&self) -> Option<(ShardId, PublisherId)> {
        self.home.active().map(|(p, _)| (p.shard, p.conn))
    }

    /// The video timestamp offset of publisher `conn` on `shard`, when it is the active one
    /// (see `StreamHome::video_offset`).
    pub(super) fn video_offset(&self, shard: ShardId, conn: PublisherId) -> Option<i64> {
        self.home.video_offset(Publisher { shard, conn })
    }

    /// The publish session.
    pub(super) fn epoch(&self) -> u64 {
        self.home.epoch()
    }

    /// The transcode worker of the current epoch.
    pub(super) fn worker(&self) -> Option<ShardId> {
        self.worker
    }

    /// The configurations forwarded samples follow now.
    pub(super) fn forward_configs(&self) -> [Option<TrackConfig>; 2] {
        let [video, audio] = self.home.forward_configs().map(|c| c.cloned());
        match self.rtc_rung() {
            true => [self.rtc_video.rung_config.clone(), audio],
            false => [video, audio],
        }
    }

    /// WebRTC viewers get the worker's rung in this publish session.
    pub(super) fn rtc_rung(&self) -> bool {
        self.rtc_video.rung_epoch == Some(self.epoch())
    }
}

impl Media {
    /// The home of a new stream: with the ladder when a transcode worker has room for it.
    fn stream_home_config(&self, stream: &str) -> HomeConfig {
        let settings = &self.settings;
        let mut transcode = settings.transcode.as_deref();
        if super::names::stage_feed(stream).is_some() {
            // A co-hosting feed is for its stage and for the other hosts over WHEP: the
            // program gets the ladder.
            transcode = None;
        }
        if transcode.is_some_and(|t| !t.has_room()) {
            transcode = None;
            bump(&self.counters().untranscoded_streams, 1);
            log::warn!(
                "stream {stream}: every transcode thread runs transcode.streams_per_worker \
                 streams; served without the ladder"
            );
        }
        HomeConfig {
            segmenter: settings.segmenter,
            ll_hls: settings.ll_hls,
            failover_ms: settings.failover_ms,
            publishers_max: PUBLISHERS_MAX_DEFAULT,
            stall_check_ms: STALL_CHECK_MS_DEFAULT,
            transcode_video: transcode
                .is_some_and(|t| !t.ladder.is_empty() || t.thumbnails.is_some()),
            transcode_audio: AudioTranscode {
                from_aac: transcode.is_some_and(|t| t.opus_bps > 0 || t.webrtc_opus_bps > 0),
                from_opus: transcode.is_some_and(|t| t.aac_bps > 0),
            },
            transcode_end_wait_ms: TRANSCODE_END_WAIT_MS_DEFAULT,
        }
    }

    /// True when a new stream would pass `media.streams_max`: counted here (homes, bounding
    /// this shard's timers) and in the index (live streams of every shard, as far as this
    /// shard has heard).
    fn streams_full(&self) -> bool {
        let max = self.settings.index.streams_max;
        self.homes.len() >= max || {
            let t = self.index.totals();
            t.streams - t.ended >= max
        }
    }

    /// A publisher on shard `from` asks to publish `stream`.
    pub(super) fn home_publish(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        stream: Arc<str>,
        conn: PublisherId,
        role: PublishRole,
        who: PublishFrom,
    ) {
        let index = match self.homes.find(&stream) {
            Some(index) => index,
            None if self.streams_full() => {
                // `media.streams_max` bounds the live streams of the server (every shard
                // indexes each) and so the streams homed here (each holds a timer and, with a
                // ladder, a transcode).
                let decision = Err("too many streams on this server (media.streams_max)");
                return self.send_to(cx, from, MediaMsg::PublishDecision { conn, decision });
            }
            None => {
                let mut slot = StreamSlot {
                    home: StreamHome::new(self.stream_home_config(&stream)),
                    worker: None,
                    timer: None,
                    thumbnail_keyframe_ms: None,
                    rtc_video: RtcVideo::default(),
                    stage: None,
                    vp8_publishers: Vec::new(),
                };
                slot.set_forward(self.rtc_watched(&stream));
                let index = self.homes.insert(stream.clone(), slot);
                set(&self.counters().streams_home, self.homes.len() as u64);
                index
            }
        };
        let role = match role {
            PublishRole::Primary => shardcast_media::Role::Primary,
            PublishRole::Backup => shardcast_media::Role::Backup,
        };
        let (now_ms, wall_ms) = (cx.now_ms(), cx.wall_ms());
        let publisher = Publisher { shard: from, conn };
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        let decision = slot
            .home
            .handle_publish(now_ms, wall_ms, publisher, role, who.remote)
            .map_err(|refusal| refusal.reason());
        if let (Ok(()), Some(title)) = (&decision, who.title) {
            slot.home.set_title(&title);
        }
        if decision.is_ok() {
            if who.vp8 {
                slot.vp8_publishers.push(publisher);
            }
            // A backup standing by changes nothing until it is switched to.
            if slot
                .home
                .active()
                .is_some_and(|(active, _)| active == publisher)
            {
                slot.home.set_vp8(who.vp8);
            }
        }
        let live = decision.is_ok();
        match conn {
            // A stage publishes from its transcode thread, which takes no answers.
            PublisherId::Stage => {
                if let Err(why) = decision {
                    log::warn!("stage {stream}: the program cannot be published: {why}");
                }
            }
            _ => self.send_to(cx, from, MediaMsg::PublishDecision { conn, decision }),
        }
        if live {
            self.stage_feed_changed(cx, &stream, super::stage::Presence::Joined);
        }
        self.drive(cx, index);
    }

    /// Applies `event` to the home of `stream`, then drives it. Returns false (and changes
    /// nothing) when the stream is not homed here.
    fn with_home(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &str,
        event: impl FnOnce(&mut StreamHome<Publisher>, u64),
    ) -> bool {
        let Some(index) = self.homes.find(stream) else {
            return false;
        };
        let now_ms = cx.now_ms();
        if let Some(slot) = self.homes.get_mut(index) {
            event(&mut slot.home, now_ms);
        }
        self.drive(cx, index);
        true
    }

    pub(super) fn home_config(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        from: ShardId,
        conn: PublisherId,
        config: TrackConfig,
    ) {
        let publisher = Publisher { shard: from, conn };
        if !self.with_home(cx, stream, |home, _| home.handle_config(publisher, config)) {
            self.mesh_error(
                cx,
                from,
                "a codec configuration for a stream not homed here",
            );
        }
    }

    pub(super) fn home_sample(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: SampleMsg) {
        let publisher = Publisher {
            shard: from,
            conn: msg.conn,
        };
        let found = self.with_home(cx, &msg.stream, |home, now_ms| {
            home.handle_sample(
                now_ms,
                publisher,
                msg.track,
                msg.sample,
                msg.received_wall_ms,
            );
        });
        if !found {
            self.mesh_error(cx, from, "a sample for a stream not homed here");
        }
    }

    /// A publisher stopped. (For a stream no longer homed here this is a publisher whose
    /// claim was refused or that never got to publish: nothing to do.)
    pub(super) fn home_unpublish(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        from: ShardId,
        conn: PublisherId,
    ) {
        let publisher = Publisher { shard: from, conn };
        if let Some(slot) = self.homes.find(stream).and_then(|i| self.homes.get_mut(i)) {
            slot.vp8_publishers.retain(|&p| p != publisher);
        }
        self.with_home(cx, stream, |home, now_ms| {
            home.handle_unpublish(now_ms, publisher);
        });
    }

    /// A transcode worker's rung header, part or segment. (A stream gone from here means a
    /// late answer of an ended session: dropped, as are the stats and end below.)
    pub(super) fn home_rung_event(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        epoch: u64,
        event: IndexEvent,
    ) {
        self.with_home(cx, stream, |home, _| home.handle_rung_event(epoch, event));
    }

    pub(super) fn home_rung_stats(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        epoch: u64,
        rungs: Vec<RungInfo>,
    ) {
        self.with_home(cx, stream, |home, _| home.handle_rung_stats(epoch, rungs));
    }

    pub(super) fn home_rung_ended(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        epoch: u64,
    ) {
        self.with_home(cx, stream, |home, _| home.handle_rung_ended(epoch));
    }

    /// A stream home's timer fired.
    pub fn on_stream_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, index: usize) {
        let now_ms = cx.now_ms();
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        if slot.timer.is_none_or(|(timer, _)| timer != id) {
            return;
        }
        slot.timer = None;
        slot.home.handle_timeout(now_ms);
        self.drive(cx, index);
    }

    /// Routes everything home `index` reported, re-arms its timer, and drops it once it is
    /// finished. Source parts and segments are counted here; the rungs' (`RungIndex`) are the
    /// workers'.
    pub(super) fn drive(&mut self, cx: &mut Ctx<ShardMsg>, index: usize) {
        let Some((stream, _)) = self.homes.entry(index) else {
            return;
        };
        let stream = stream.clone();
        loop {
            let Some(event) = self.homes.get_mut(index).and_then(|s| s.home.poll_event()) else {
                break;
            };
            self.home_event(cx, index, &stream, event);
        }
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        if slot.home.is_finished() {
            if let Some((timer, _)) = slot.timer.take() {
                cx.timer_cancel(timer);
            }
            self.homes.remove(index);
            set(&self.counters().streams_home, self.homes.len() as u64);
            return;
        }
        let deadline = slot.home.poll_timeout();
        if slot.timer.map(|(_, at)| at) == deadline {
            return;
        }
        if let Some((timer, _)) = slot.timer.take() {
            cx.timer_cancel(timer);
        }
        if let Some(at) = deadline {
            let key = TimerKey::Stream {
                index: index as u32,
            };
            let timer = cx.timer_after(at.saturating_sub(cx.now_ms()), key.into());
            slot.timer = timer.map(|timer| (timer, at));
        }
    }

    fn home_event(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        stream: &Arc<str>,
        event: HomeEvent<Publisher>,
    ) {
        match event {
            HomeEvent::Index(event) => {
                match &event {
                    IndexEvent::Part { .. } => bump(&self.counters().parts, 1),
                    IndexEvent::Segment { .. } => bump(&self.counters().segments, 1),
                    IndexEvent::Ended => {
                        log::info!("stream {stream}: ended");
                        self.stage_feed_changed(cx, stream, super::stage::Presence::Left);
                    }
                    _ => {}
                }
                self.broadcast(cx, stream, event);
            }
            HomeEvent::RungIndex(event) => self.broadcast(cx, stream, event),
            HomeEvent::Transcode(event) => self.send_to_worker(cx, index, stream, event),
            HomeEvent::Switched { to, role, remote } => {
                if let Some(slot) = self.homes.get_mut(index) {
                    let vp8 = slot.vp8_publishers.contains(&to);
                    slot.home.set_vp8(vp8);
                }
                bump(&self.counters().failovers, 1);
                log::info!("stream {stream}: switched to the {role} publisher ({remote}) at a keyframe");
            }
            HomeEvent::Replaced { publisher, remote } => {
                log::info!(
                    "stream {stream}: the stalled primary publisher ({remote}) was replaced by \
                     a new one; closing it"
                );
                let decision = Err("replaced by a new primary publisher of this stream");
                let msg = MediaMsg::PublishDecision {
                    conn: publisher.conn,
                    decision,
                };
                self.send_to(cx, publisher.shard, msg);
            }
            HomeEvent::Stalled { stalled_for_ms } => log::warn!(
                "stream {stream}: active publisher stalled for {stalled_for_ms} ms; switching at the next keyframe"
            ),
            HomeEvent::FrameRateMeasured { fps } => {
                log::info!("stream {stream}: {fps:.3} fps measured")
            }
            HomeEvent::Rejected { error } => {
                // Dropped media must be visible: counted, and logged within the budget.
                bump(&self.counters().samples_rejected, 1);
                if self.log_budget.allow(cx.now_ms()) {
                    log::warn!("stream {stream}: sample dropped: {error}");
                }
            }
            HomeEvent::TimestampJump { track, step_ms } => {
                bump(&self.counters().timestamp_jumps, 1);
                if self.log_budget.allow(cx.now_ms()) {
                    log::warn!(
                        "stream {stream}: {track:?} timestamps jumped {step_ms} ms; re-based, \
                         discontinuity at the next keyframe"
                    );
                }
            }
            HomeEvent::InbandConfig { width, height } => log::info!(
                "stream {stream}: the picture changed to {width}x{height} (in-band parameter \
                 sets); new header"
            ),
            HomeEvent::Forward { track, sample } => {
                let media = RtcMedia::Sample { track, sample };
                self.stage_forward(cx, index, &media);
                self.rtc_forward_source(cx, index, stream, media)
            }
            HomeEvent::ForwardConfig(config) => {
                let media = RtcMedia::Config(config);
                self.stage_forward(cx, index, &media);
                self.rtc_forward_source(cx, index, stream, media)
            }
            HomeEvent::Reordered => self.rtc_reordered(cx, index, stream),
            HomeEvent::EndedWithoutRungs => log::warn!(
                "stream {stream}: the transcode worker did not finish in time; ending without \
                 the rungs' last segments"
            ),
        }
    }

    /// Sends a transcode event to the stream's worker, picking the least loaded one at the
    /// first Start of an epoch.
    fn send_to_worker(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        stream: &Arc<str>,
        event: TranscodeEvent,
    ) {
        let Some(transcode) = self.settings.transcode.clone() else {
            return;
        };
        let shards = self.shards;
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        let pinned = self.rtc_pins.contains_key(stream).then(|| stream.clone());
        let stream = stream.clone();
        let msg = match event {
            TranscodeEvent::Start { epoch, config } => {
                let worker = *slot
                    .worker
                    .get_or_insert_with(|| transcode.least_loaded_worker(shards));
                log::debug!(
                    "stream {stream}: transcoded by transcode {}",
                    crate::transcode::settings::TranscodeSettings::worker_index(worker, shards)
                );
                let config = Box::new(config);
                TranscodeMsg::Start {
                    stream,
                    epoch,
                    config,
                }
            }
            TranscodeEvent::Sample {
                epoch,
                track,
                sample,
                msn,
                segment_start,
                discontinuity,
                wall_ms,
            } => {
                // Without a ladder the worker only makes thumbnails from the video: a
                // keyframe per interval is all it decodes. (Audio goes to it whole, for Opus.)
                let video = track == shardcast_media::TrackKind::Video;
                if let (true, true, Some((_, every))) =
                    (video, transcode.ladder.is_empty(), transcode.thumbnails)
                {
                    let due = slot
                        .thumbnail_keyframe_ms
                        .is_none_or(|at| wall_ms >= at + every.as_millis() as u64);
                    if !sample.keyframe || !due {
                        return;
                    }
                    slot.thumbnail_keyframe_ms = Some(wall_ms);
                }
                TranscodeMsg::Sample(Box::new(PlacedSample {
                    stream,
                    epoch,
                    track,
                    sample,
                    msn,
                    segment_start,
                    discontinuity,
                    wall_ms,
                }))
            }
            TranscodeEvent::End { epoch } => {
                let Some(worker) = slot.worker.take() else {
                    return;
                };
                cx.mesh_send(worker, TranscodeMsg::End { stream, epoch }.into());
                return;
            }
        };
        let start = matches!(msg, TranscodeMsg::Start { .. });
        if let Some(worker) = slot.worker {
            cx.mesh_send(worker, msg.into());
            if let (true, Some(stream)) = (start, pinned) {
                self.rtc_pins_to_worker(cx, worker, &stream);
            }
        }
    }
}
