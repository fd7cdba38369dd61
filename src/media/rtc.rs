//! The media service's side of WebRTC: WHEP offers and deletes from HTTP, datagrams from the
//! shard's UDP socket, and the samples a stream's home forwards to the shards with sessions
//! of it.
//!
//! A shard whose first session of a stream is made tells the stream's home
//! (`MediaMsg::RtcWatch`); the home then turns its `StreamHome`'s forwarding on and sends
//! that shard the active publisher's configurations, then every sample on the stream's
//! timeline (`MediaMsg::RtcMedia`, the sample's bytes shared). When the shard's last session
//! of the stream ends, it tells the home to stop. The watchers outlive a publish: a viewer
//! waiting through a restart of the stream gets the new one.

use super::home::RtcVideo;
use super::msg::{MediaMsg, PublisherId, RtcMedia, Watching};
use super::{names, Media, MediaResponse};
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use crate::transcode::msg::{RtcWant, TranscodeMsg};
use shardcast_engine::{ConnId, Ctx, ShardId};
use shardcast_media::TrackKind;
use std::sync::Arc;

impl Media {
    /// A WHEP offer for `stream`, live here: the answer and the session's id, or a status
    /// and why.
    pub fn whep_offer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &str,
        sdp: &str,
    ) -> Result<(String, String), (u16, String)> {
        let live = self.index.stream(stream).is_some_and(|s| !s.is_ended());
        let Some(webrtc) = self.webrtc.as_mut() else {
            return Err((404, "WebRTC is off here (webrtc.udp_listen)".into()));
        };
        if !names::is_valid_stream_name(stream) || !live {
            return Err((404, "no such live stream".into()));
        }
        let answer = webrtc.offer(cx, &Arc::from(stream), sdp);
        self.webrtc_settle(cx);
        answer
    }

    /// Ends WHEP session `id` (`{shard}-{token}`): here, or on the shard that holds it (the
    /// request waits for its answer).
    pub fn whep_delete(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, id: &str) -> MediaResponse {
        let owner = id
            .split_once('-')
            .and_then(|(shard, _)| shard.parse::<u16>().ok())
            .filter(|&shard| usize::from(shard) < self.shards);
        match owner {
            Some(shard) if shard != self.shard.0 => {
                let msg = MediaMsg::WhepDelete {
                    id: Box::from(id),
                    conn,
                };
                cx.mesh_send(ShardId(shard), msg.into());
                MediaResponse::Waiting
            }
            Some(_) if self.whep_delete_here(cx, id) => MediaResponse::Status(200, "session ended"),
            _ => MediaResponse::Status(404, "no such session"),
        }
    }

    /// Ends session `id` of this shard; false when there is none.
    pub(super) fn whep_delete_here(&mut self, cx: &mut Ctx<ShardMsg>, id: &str) -> bool {
        let found = self.webrtc.as_mut().is_some_and(|w| w.delete(id));
        self.webrtc_settle(cx);
        found
    }

    /// A datagram on a UDP socket (WebRTC's).
    pub fn on_datagram(&mut self, cx: &mut Ctx<ShardMsg>, from: std::net::SocketAddr, data: &[u8]) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        let dropped = webrtc.dropped();
        webrtc.on_datagram(cx, from, data);
        let dropped = webrtc.dropped() - dropped;
        bump(&self.counters().webrtc_datagrams_dropped, dropped);
        self.webrtc_settle(cx);
    }

    /// After the sessions changed: the gauges, the timer, and the homes of streams this shard
    /// started or stopped watching.
    pub(super) fn webrtc_settle(&mut self, cx: &mut Ctx<ShardMsg>) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        let (next, sessions) = (webrtc.next_deadline_ms(), webrtc.sessions());
        let changes = webrtc.take_watch_changes();
        let ingest = webrtc.take_ingest();
        let keyframes = webrtc.take_keyframe_wanted();
        set(&self.counters().webrtc_sessions, sessions as u64);
        if let Some(at) = next {
            self.arm_waiters_timer(cx, at);
        }
        for (stream, watching) in changes {
            let home = names::home_of(&stream, self.shards);
            self.send_to(cx, home, MediaMsg::RtcWatch { stream, watching });
        }
        for stream in keyframes {
            let home = names::home_of(&stream, self.shards);
            self.send_to(cx, home, MediaMsg::KeyframeWanted { stream });
        }
        if !ingest.is_empty() {
            self.whip_ingest(cx, ingest);
        }
    }

    /// This shard's WHEP sessions.
    pub fn webrtc(&self) -> Option<&crate::webrtc::Webrtc> {
        self.webrtc.as_ref()
    }

    /// At the home: shard `from` starts or stops watching `stream`.
    pub(super) fn rtc_watch(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        stream: Arc<str>,
        watching: Watching,
    ) {
        let watchers = self.rtc_watchers.entry(stream.clone()).or_default();
        watchers.retain(|&s| s != from);
        if watching == Watching::Yes {
            watchers.push(from);
        }
        let watched = match watchers.is_empty() {
            true => Watching::No,
            false => Watching::Yes,
        };
        if watched == Watching::No {
            self.rtc_watchers.remove(&stream);
        }
        let Some(index) = self.homes.find(&stream) else {
            return; // not live: forwarding starts with the publish (`rtc_forward_on`)
        };
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        slot.set_forward(watched);
        let worker = slot.worker().filter(|_| slot.rtc_rung());
        if let (Watching::No, Some(worker)) = (watched, worker) {
            self.rtc_to_worker(cx, worker, &stream, RtcWant::Stop);
        }
        if watching == Watching::No {
            return;
        }
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        let configs: Vec<_> = slot.forward_configs().into_iter().flatten().collect();
        for config in configs {
            let media = Box::new(RtcMedia::Config(config));
            let stream = stream.clone();
            self.send_to(cx, from, MediaMsg::RtcMedia { stream, media });
        }
    }

    /// At the home: viewers of `stream` need a keyframe. A WHIP publisher is asked for one;
    /// an RTMP publisher's encoder cannot be (its viewers wait for its next keyframe).
    pub(super) fn rtc_keyframe_wanted(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>) {
        let slot = self.homes.find(stream).and_then(|i| self.homes.get(i));
        if let Some(worker) = slot.filter(|s| s.rtc_rung()).and_then(|s| s.worker()) {
            return self.rtc_to_worker(cx, worker, stream, RtcWant::Keyframe);
        }
        let active = slot.and_then(|slot| slot.active_publisher());
        match active {
            Some((shard, PublisherId::Whip { key, serial })) => {
                self.send_to(cx, shard, MediaMsg::WhipKeyframe { key, serial })
            }
            Some((_, PublisherId::Stage)) => self.stage_keyframe(cx, stream),
            _ => {}
        }
    }

    /// Whether a home made now for `stream` must forward its samples.
    pub(super) fn rtc_watched(&self, stream: &str) -> Watching {
        match self.rtc_watchers.contains_key(stream) {
            true => Watching::Yes,
            false => Watching::No,
        }
    }

    /// At the home: a sample or configuration for every shard watching `stream`.
    pub(super) fn rtc_forward(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        media: RtcMedia,
    ) {
        let Some(watchers) = self.rtc_watchers.get(stream) else {
            return;
        };
        let mut here = false;
        for &shard in watchers {
            if shard == self.shard {
                here = true;
                continue;
            }
            let msg = MediaMsg::RtcMedia {
                stream: stream.clone(),
                media: Box::new(media.clone()),
            };
            cx.mesh_send(shard, msg.into());
        }
        if here {
            self.rtc_media(cx, stream, media);
        }
    }

    /// At the home: Opus or the WebRTC rung from the stream's transcode worker, for the
    /// shards watching (of the current publish session only).
    pub(super) fn rtc_transcoded(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        epoch: u64,
        media: RtcMedia,
    ) {
        let index = self.homes.find(stream);
        let Some(slot) = index.and_then(|i| self.homes.get_mut(i)) else {
            return;
        };
        if slot.epoch() != epoch {
            return;
        }
        if let RtcMedia::Config(config) = &media {
            slot.rtc_video.rung_config = Some(config.clone());
        }
        self.rtc_forward(cx, stream, media);
    }

    /// At the home: the active publisher's sample or configuration, for the shards watching.
    /// Its video goes as it is unless the worker's rung stands in (`rtc_reordered`).
    pub(super) fn rtc_forward_source(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        stream: &Arc<str>,
        media: RtcMedia,
    ) {
        let video = match &media {
            RtcMedia::Sample { track, .. } => *track == TrackKind::Video,
            RtcMedia::Config(config) => config.kind() == TrackKind::Video,
            RtcMedia::Opus(_) => false,
        };
        if video && self.homes.get(index).is_some_and(|slot| slot.rtc_rung()) {
            return;
        }
        self.rtc_forward(cx, stream, media);
    }

    /// At the home: the active publisher's video has B-frames, which WebRTC players do not
    /// reorder. When the stream has an H.264 ladder, its largest rung stands in for the
    /// source's video over WebRTC from here on, in this publish session.
    pub(super) fn rtc_reordered(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        stream: &Arc<str>,
    ) {
        let has_rung = (self.settings.transcode.as_deref())
            .is_some_and(|t| !t.ladder.is_empty() && t.codec == shardcast_native::CodecId::H264);
        let Some(slot) = self.homes.get_mut(index).filter(|_| has_rung) else {
            return;
        };
        let Some(worker) = slot.worker() else {
            return;
        };
        log::info!(
            "stream {stream}: the source has B-frames; its WebRTC viewers get the largest rung \
             instead, with keyframes on request"
        );
        slot.rtc_video = RtcVideo {
            rung_epoch: Some(slot.epoch()),
            rung_config: None,
        };
        if self.rtc_watchers.contains_key(stream) {
            self.rtc_to_worker(cx, worker, stream, RtcWant::Keyframe);
        }
    }

    /// Sends the stream's worker what its WebRTC viewers want of the rung.
    fn rtc_to_worker(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        worker: ShardId,
        stream: &Arc<str>,
        want: RtcWant,
    ) {
        let Some(epoch) = (self.homes.find(stream))
            .and_then(|i| self.homes.get(i))
            .map(|slot| slot.epoch())
        else {
            return;
        };
        let stream = stream.clone();
        cx.mesh_send(
            worker,
            TranscodeMsg::Rtc {
                stream,
                epoch,
                want,
            }
            .into(),
        );
    }

    /// On a shard with sessions of `stream`: its home forwarded `media`.
    pub(super) fn rtc_media(&mut self, cx: &mut Ctx<ShardMsg>, stream: &str, media: RtcMedia) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        match media {
            RtcMedia::Config(config) => webrtc.on_config(stream, config),
            RtcMedia::Sample { track, sample } => {
                let unusable = webrtc.frames_unusable;
                webrtc.on_sample(cx, stream, track, &sample);
                let unusable = webrtc.frames_unusable - unusable;
                bump(&self.counters().webrtc_frames_unusable, unusable);
            }
            RtcMedia::Opus(sample) => webrtc.on_opus(cx, stream, &sample),
        }
        self.webrtc_settle(cx);
    }
}
