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

use super::msg::{MediaMsg, PublisherId, RtcMedia, SampleMsg, Watching};
use super::{names, Media, MediaResponse};
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use crate::transcode::msg::{RtcAsk, RtcWant, TranscodeMsg};
use shardcast_engine::{ConnId, Ctx, ShardId};
use shardcast_media::TrackKind;
use std::sync::Arc;
use str0m::format::Codec;

impl Media {
    /// A WHEP offer for `feed` (`{stream}`, or `{stream}/{rung}` to pin an H.264 rung of
    /// the ladder), live here: the answer and the session's id, or a status and why.
    pub fn whep_offer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        feed: &str,
        sdp: &str,
    ) -> Result<(String, String), (u16, String)> {
        let (stream, rung) = names::rtc_feed(feed);
        let index = self.index.stream(stream).filter(|s| !s.is_ended());
        let Some(webrtc) = self.webrtc.as_mut() else {
            return Err((404, "WebRTC is off here (webrtc.udp_listen)".into()));
        };
        let Some(index) = index.filter(|_| names::is_valid_stream_name(stream)) else {
            return Err((404, "no such live stream".into()));
        };
        if index.video_pending() {
            // As for the playlists: a session made now would start without its picture's
            // layers. WHEP players retry.
            return Err((
                404,
                "the stream's video has no part yet; try again in a moment".into(),
            ));
        }
        // A VP8 publisher's viewers that take VP8 get it as it came.
        let takes_vp8 = crate::webrtc::sdp::offers_codec(sdp, str0m::format::Codec::Vp8);
        let vp8_feed;
        let rung = match rung {
            None if index.info.vp8 && takes_vp8 => Some(names::VP8_RUNG),
            Some(names::VP8_RUNG) if !index.info.vp8 => {
                return Err((
                    404,
                    format!("stream {stream} has no VP8: its publisher sends H.264"),
                ));
            }
            Some(names::VP8_RUNG) if !takes_vp8 => {
                return Err((406, "the offer does not receive VP8".into()));
            }
            other => other,
        };
        let transcode = self.settings.transcode.as_deref();
        // `/source` pins the source as `/240p` pins that rung; only the stream's own URL
        // moves between layers.
        let layers = match rung {
            None => rtc_layers(stream, index),
            Some(_) => Vec::new(),
        };
        // One layer, and no rung coming: a plain viewer. An adaptive one is paced packet by
        // packet (no segmented sends) and probes for bandwidth, at two to three times the
        // CPU, with no layer to move to.
        let layers = match layers.len() >= 2 || rung_coming(transcode, &index.info) {
            true => layers,
            false => Vec::new(),
        };
        let feed = match rung {
            None | Some("source") => stream,
            Some(names::VP8_RUNG) => {
                vp8_feed = format!("{stream}/{}", names::VP8_RUNG);
                &vp8_feed
            }
            Some(rung) => match index.rendition_meta(rung) {
                Some(meta) if meta.codecs.starts_with("avc1") && is_video(meta) => feed,
                Some(_) => return Err((406, format!("rendition {rung} is not H.264 video"))),
                None => return Err((404, format!("stream {stream} has no rendition {rung}"))),
            },
        };
        let answer = webrtc.offer(cx, &Arc::from(feed), sdp, layers);
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

    /// A TCP connection on the WebRTC listener (ICE over TCP): it has
    /// [`crate::webrtc::tcp::CLAIM_TIMEOUT`] to name its session.
    pub fn rtc_tcp_open(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let (Some(webrtc), Some(ip)) = (self.webrtc.as_mut(), cx.peer_ip(conn)) else {
            return cx.close(conn);
        };
        webrtc.tcp_open(conn, ip);
        let after = crate::webrtc::tcp::CLAIM_TIMEOUT.as_millis() as u64;
        let key = crate::shard::timer::TimerKey::Conn {
            slot: conn.slot() as u32,
        };
        if cx.timer_after(after, key.into()).is_none() {
            cx.close(conn); // no timer to bound it with: refused rather than unbounded
        }
    }

    /// Bytes on a WebRTC TCP connection.
    pub fn rtc_tcp_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return cx.close(conn);
        };
        if webrtc.tcp_recv(cx, conn, data) == crate::webrtc::tcp::TcpVerdict::Close {
            bump(&self.counters().webrtc_datagrams_dropped, 1);
            cx.close(conn);
        }
        self.webrtc_settle(cx);
    }

    /// A WebRTC TCP connection's claim timer: closed if it named no session.
    pub fn rtc_tcp_timer(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        if let Some(conn) = self.webrtc.as_ref().and_then(|w| w.tcp_unclaimed(slot)) {
            cx.close(conn);
        }
    }

    /// A WebRTC TCP connection closed: its session (if any) ends.
    pub fn rtc_tcp_closed(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        if let Some(webrtc) = self.webrtc.as_mut() {
            webrtc.tcp_closed(conn);
        }
        self.webrtc_settle(cx);
    }

    /// After the sessions changed: the gauges, the timer, and the homes of streams this shard
    /// started or stopped watching.
    pub(super) fn webrtc_settle(&mut self, cx: &mut Ctx<ShardMsg>) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        webrtc.close_ended_tcp(cx);
        self.webrtc_unsettled = true;
        let sessions = webrtc.sessions();
        let switches = std::mem::take(&mut webrtc.layer_switches);
        let direct = std::mem::take(&mut webrtc.direct_started);
        let resent = std::mem::take(&mut webrtc.packets_resent);
        let changes = webrtc.take_watch_changes();
        let ingest = webrtc.take_ingest();
        let keyframes = webrtc.take_keyframe_wanted();
        set(&self.counters().webrtc_sessions, sessions as u64);
        bump(&self.counters().webrtc_layer_switches, switches);
        bump(&self.counters().webrtc_direct_viewers, direct);
        bump(&self.counters().webrtc_packets_resent, resent);
        // A feed is a stream's or a pinned rung's (`{stream}/{rung}`), both at the stream's
        // home.
        let shards = self.shards;
        let home_of = |feed: &str| names::home_of(names::rtc_feed(feed).0, shards);
        for (feed, watching) in changes {
            let home = home_of(&feed);
            self.send_to(cx, home, MediaMsg::RtcWatch { feed, watching });
        }
        for feed in keyframes {
            let home = home_of(&feed);
            self.send_to(cx, home, MediaMsg::KeyframeWanted { feed });
        }
        if !ingest.is_empty() {
            self.whip_ingest(cx, ingest);
        }
    }

    /// Once per loop iteration: the timer armed for the sessions' earliest deadline, when
    /// they were touched. Finding it walks every session, so it is done here rather than
    /// after each datagram (thousands of viewers' reports a second).
    pub fn poll_webrtc(&mut self, cx: &mut Ctx<ShardMsg>) {
        if !std::mem::take(&mut self.webrtc_unsettled) {
            return;
        }
        if let Some(at) = self.webrtc.as_ref().and_then(|w| w.next_deadline_ms()) {
            self.arm_waiters_timer(cx, at);
        }
    }

    /// This shard's WHEP sessions.
    pub fn webrtc(&self) -> Option<&crate::webrtc::Webrtc> {
        self.webrtc.as_ref()
    }

    /// At the home: shard `from` starts or stops watching `feed` (a stream, or a rung
    /// viewers pinned).
    pub(super) fn rtc_watch(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        feed: Arc<str>,
        watching: Watching,
    ) {
        let watchers = self.rtc_watchers.entry(feed.clone()).or_default();
        watchers.retain(|&s| s != from);
        if watching == Watching::Yes {
            watchers.push(from);
        }
        let watched = match watchers.is_empty() {
            true => Watching::No,
            false => Watching::Yes,
        };
        if watched == Watching::No {
            self.rtc_watchers.remove(&feed);
        }
        let (stream, rung) = names::rtc_feed(&feed);
        let stream: Arc<str> = Arc::from(stream);
        if rung.is_some() {
            let pins = self.rtc_pins.entry(stream.clone()).or_default();
            pins.retain(|f| *f != feed);
            if watched == Watching::Yes {
                pins.push(feed.clone());
            }
            if pins.is_empty() {
                self.rtc_pins.remove(&stream);
            }
        }
        let Some(index) = self.homes.find(&stream) else {
            return; // not live: forwarding starts with the publish (`home_publish`)
        };
        let forward = self.rtc_watched(&stream);
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        slot.set_forward(forward);
        let want = match watched {
            Watching::Yes => RtcWant::Keyframe,
            Watching::No => RtcWant::Stop,
        };
        let rung_wanted = match rung {
            // The VP8 feed's keyframes come from its publisher, asked when a viewer's session
            // is connected and waits for one (sooner, the keyframe would come before it).
            Some(names::VP8_RUNG) => None,
            // A new watcher of a pinned rung needs its keyframe; the last one gone stops it.
            Some(rung) => (watching == Watching::Yes || watched == Watching::No)
                .then(|| (Some(Arc::from(rung)), want)),
            None => (watched == Watching::No && slot.rtc_rung()).then_some((None, want)),
        };
        if let (Some((rung, want)), Some(worker)) = (rung_wanted, slot.worker()) {
            self.rtc_to_worker(cx, worker, (&stream, rung), want);
        }
        if watching == Watching::Yes {
            self.rtc_send_configs(cx, index, from, (&feed, rung));
        }
    }

    /// At the home: the configurations a shard that starts watching `feed` needs first.
    fn rtc_send_configs(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        to: ShardId,
        (feed, rung): (&Arc<str>, Option<&str>),
    ) {
        let Some(slot) = self.homes.get(index) else {
            return;
        };
        let [video, audio] = slot.forward_configs();
        let video = match rung {
            None => video,
            Some(rung) => (slot.rtc_video.pinned_configs.iter())
                .find(|(name, _)| **name == *rung)
                .map(|(_, config)| config.clone()),
        };
        for config in [video, audio].into_iter().flatten() {
            let media = Box::new(RtcMedia::Config(config));
            let feed = feed.clone();
            self.send_to(cx, to, MediaMsg::RtcMedia { feed, media });
        }
    }

    /// At the home: a new publish session of `stream` went to transcode worker `worker`; the
    /// rungs viewers pinned are asked of it.
    pub(super) fn rtc_pins_to_worker(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        worker: ShardId,
        stream: &Arc<str>,
    ) {
        let Some(pins) = self.rtc_pins.get(stream) else {
            return;
        };
        let rungs: Vec<Arc<str>> = (pins.iter())
            .filter_map(|feed| names::rtc_feed(feed).1)
            .filter(|&rung| rung != names::VP8_RUNG)
            .map(Arc::from)
            .collect();
        for rung in rungs {
            self.rtc_to_worker(cx, worker, (stream, Some(rung)), RtcWant::Keyframe);
        }
    }

    /// At the home: viewers of `feed` need a keyframe. The worker is asked when the feed is
    /// its rung (pinned, or standing in for a source with B-frames), a WHIP publisher
    /// otherwise; an RTMP publisher's encoder cannot be (its viewers wait for its next
    /// keyframe).
    pub(super) fn rtc_keyframe_wanted(&mut self, cx: &mut Ctx<ShardMsg>, feed: &Arc<str>) {
        let (stream, rung) = names::rtc_feed(feed);
        let slot = self.homes.find(stream).and_then(|i| self.homes.get(i));
        // The VP8 feed is its publisher's frames: only the publisher makes keyframes.
        let worker = slot
            .and_then(|s| s.worker())
            .filter(|_| rung != Some(names::VP8_RUNG));
        let stream: Arc<str> = Arc::from(stream);
        if let (Some(rung), Some(worker)) = (rung, worker) {
            let rung = Some(Arc::from(rung));
            return self.rtc_to_worker(cx, worker, (&stream, rung), RtcWant::Keyframe);
        }
        let standin = rung.is_none() && slot.is_some_and(|s| s.rtc_rung());
        if let Some(worker) = worker.filter(|_| standin) {
            return self.rtc_to_worker(cx, worker, (&stream, None), RtcWant::Keyframe);
        }
        let active = slot.and_then(|slot| slot.active_publisher());
        match active {
            Some((shard, PublisherId::Whip { key, serial })) => {
                self.send_to(cx, shard, MediaMsg::WhipKeyframe { key, serial })
            }
            Some((_, PublisherId::Stage)) => self.stage_keyframe(cx, &stream),
            _ => {}
        }
    }

    /// At the home: a VP8 frame from WHIP publisher `msg.conn` on shard `from`, for the
    /// shards watching the stream's VP8 feed, when that publisher is the active one: placed
    /// on the stream's timeline as the publisher's packaged samples are.
    pub(super) fn rtc_vp8(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: SampleMsg) {
        let feed = (self.rtc_pins.get(&msg.stream))
            .and_then(|pins| pins.iter().find(|f| names::is_vp8_feed(f)))
            .cloned();
        let Some(feed) = feed else {
            return; // nobody watches it
        };
        let slot = self.homes.find(&msg.stream).and_then(|i| self.homes.get(i));
        let Some(offset) = slot.and_then(|slot| slot.video_offset(from, msg.conn)) else {
            return; // a backup's, or a publisher that left
        };
        // On the stream's timeline, as its sound is.
        let mut sample = msg.sample;
        sample.dts = sample.dts.saturating_add_signed(offset);
        let media = RtcMedia::Sample {
            track: TrackKind::Video,
            sample,
        };
        self.rtc_forward_feed(cx, &feed, media);
    }

    /// A rendition of `stream` got a (new) header or a whole segment here: its adaptive
    /// viewers on this shard get the stream's layers now (a rung that appeared after they
    /// joined; the rates measured again, as the picture or the encoder's output changes).
    pub(super) fn rtc_layers_changed(&mut self, stream: &str, change: LayersChange) {
        let webrtc = self.webrtc.as_mut().filter(|w| w.sessions() > 0);
        let (Some(webrtc), Some(index)) = (webrtc, self.index.stream(stream)) else {
            return;
        };
        if !webrtc.has_viewers_of(stream) {
            return;
        }
        let layers = rtc_layers(stream, index);
        let updated = webrtc.update_layers(stream, &layers, std::time::Instant::now());
        if updated > 0 && change == LayersChange::Header {
            log::debug!(
                "webrtc: {updated} adaptive viewers of {stream} now have {} layers",
                layers.len()
            );
        }
    }

    /// Whether `stream`'s publisher shown sends VP8 changed here. When it no longer does (a backup
    /// sending H.264 took over), the viewers of its VP8 feed whose answers have H.264 move to
    /// the stream's H.264; when a VP8 publisher is shown again, they move back.
    pub(super) fn rtc_vp8_changed(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>) {
        let webrtc = self.webrtc.as_mut().filter(|w| w.sessions() > 0);
        let (Some(webrtc), Some(index)) = (webrtc, self.index.stream(stream)) else {
            return;
        };
        let vp8_feed: Arc<str> = Arc::from(format!("{stream}/{}", names::VP8_RUNG));
        let (moved, to) = match index.info.vp8 {
            false => (
                webrtc.move_viewers(cx, (&vp8_feed, stream), Codec::H264),
                "its H.264",
            ),
            true => (
                webrtc.move_viewers(cx, (stream, &vp8_feed), Codec::Vp8),
                "its VP8 feed",
            ),
        };
        if moved > 0 {
            log::info!("webrtc: {moved} viewers of {stream} moved to {to}");
            self.webrtc_settle(cx);
        }
    }

    /// Whether a home made now for `stream` must forward its samples: WebRTC viewers watch
    /// it or a rung of it (whose sound is the stream's).
    pub(super) fn rtc_watched(&self, stream: &str) -> Watching {
        match self.rtc_watchers.contains_key(stream) || self.rtc_pins.contains_key(stream) {
            true => Watching::Yes,
            false => Watching::No,
        }
    }

    /// At the home: a sample or configuration of `stream` for every shard watching it, and
    /// its sound for every shard watching one of its pinned rungs too.
    pub(super) fn rtc_forward(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        media: RtcMedia,
    ) {
        let audio = match &media {
            RtcMedia::Sample { track, .. } => *track == TrackKind::Audio,
            RtcMedia::Config(config) => config.kind() == TrackKind::Audio,
            RtcMedia::Opus(_) => true,
        };
        let pins = self.rtc_pins.get(stream).filter(|_| audio).cloned();
        for pin in pins.iter().flatten() {
            self.rtc_forward_feed(cx, pin, media.clone());
        }
        self.rtc_forward_feed(cx, stream, media);
    }

    /// At the home: a sample or configuration for every shard watching `feed`.
    fn rtc_forward_feed(&mut self, cx: &mut Ctx<ShardMsg>, feed: &Arc<str>, media: RtcMedia) {
        let Some(watchers) = self.rtc_watchers.get(feed) else {
            return;
        };
        let mut here = false;
        for &shard in watchers {
            if shard == self.shard {
                here = true;
                continue;
            }
            let msg = MediaMsg::RtcMedia {
                feed: feed.clone(),
                media: Box::new(media.clone()),
            };
            cx.mesh_send(shard, msg.into());
        }
        if here {
            self.rtc_media(cx, feed, media);
        }
    }

    /// At the home: Opus or a WebRTC rung from the stream's transcode worker, for the
    /// shards watching (of the current publish session only): the rung that stands in for
    /// the source (`rung` None) goes to the stream's feed, a pinned rung to its own.
    pub(super) fn rtc_transcoded(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        (epoch, rung): (u64, Option<Arc<str>>),
        media: RtcMedia,
    ) {
        let index = self.homes.find(stream);
        let Some(slot) = index.and_then(|i| self.homes.get_mut(i)) else {
            return;
        };
        if slot.epoch() != epoch {
            return;
        }
        let Some(rung) = rung else {
            if let RtcMedia::Config(config) = &media {
                slot.rtc_video.rung_config = Some(config.clone());
            }
            return self.rtc_forward(cx, stream, media);
        };
        if let RtcMedia::Config(config) = &media {
            let configs = &mut slot.rtc_video.pinned_configs;
            configs.retain(|(name, _)| *name != rung);
            configs.push((rung.clone(), config.clone()));
        }
        // The feed's name as its watchers keep it (no name made per sample); none: unwatched.
        let pinned = (self.rtc_pins.get(stream))
            .and_then(|pins| pins.iter().find(|f| names::rtc_feed(f).1 == Some(&*rung)))
            .cloned();
        if let Some(feed) = pinned {
            self.rtc_forward_feed(cx, &feed, media);
        }
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
        slot.rtc_video.rung_epoch = Some(slot.epoch());
        slot.rtc_video.rung_config = None;
        if self.rtc_watchers.contains_key(stream) {
            self.rtc_to_worker(cx, worker, (stream, None), RtcWant::Keyframe);
        }
    }

    /// Sends the stream's worker what its WebRTC viewers want of a rung: one they pinned,
    /// or (`rung` None) the one that stands in for the source.
    fn rtc_to_worker(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        worker: ShardId,
        (stream, rung): (&Arc<str>, Option<Arc<str>>),
        want: RtcWant,
    ) {
        let Some(epoch) = (self.homes.find(stream))
            .and_then(|i| self.homes.get(i))
            .map(|slot| slot.epoch())
        else {
            return;
        };
        let ask = RtcAsk {
            stream: stream.clone(),
            epoch,
            rung,
            want,
        };
        cx.mesh_send(worker, TranscodeMsg::Rtc(Box::new(ask)).into());
    }

    /// On a shard with sessions of `feed`: the stream's home forwarded `media`.
    pub(super) fn rtc_media(&mut self, cx: &mut Ctx<ShardMsg>, feed: &str, media: RtcMedia) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        match media {
            RtcMedia::Config(config) => webrtc.on_config(feed, config),
            RtcMedia::Sample { track, sample } => {
                let unusable = webrtc.frames_unusable;
                webrtc.on_sample(cx, feed, track, &sample);
                let unusable = webrtc.frames_unusable - unusable;
                bump(&self.counters().webrtc_frames_unusable, unusable);
            }
            RtcMedia::Opus(sample) => webrtc.on_opus(cx, feed, &sample),
        }
        self.webrtc_settle(cx);
    }
}

fn is_video(meta: &shardcast_media::RenditionMeta) -> bool {
    matches!(
        meta.kind,
        shardcast_media::manifest::RenditionKind::Video { .. }
    )
}

/// Whether the transcode ladder makes H.264 rungs of a stream of `info`'s picture, now or
/// soon (a viewer joining before the first can move to it once it comes): a rung fits the
/// picture (one larger than the source is not made), or the size is not known yet. (A stream
/// started without its ladder, every transcode thread being full, counts as coming.)
fn rung_coming(
    transcode: Option<&crate::transcode::settings::TranscodeSettings>,
    info: &shardcast_media::StreamInfo,
) -> bool {
    let Some(t) = transcode.filter(|t| t.codec == shardcast_native::CodecId::H264) else {
        return false;
    };
    let unknown = info.width == 0 || info.height == 0;
    let fits = |spec| shardcast_native::rung_size(spec, info.width, info.height).is_some();
    unknown || t.ladder.iter().any(fits)
}

/// Why a stream's layers are given to its adaptive viewers again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LayersChange {
    /// A rendition's new header: a rung may have appeared.
    Header,
    /// A whole segment: the rates are measured again.
    Rates,
}

/// The layers an adaptive WHEP viewer of `stream` moves between: the source's video and each
/// H.264 rung, with their rates (measured over the segments held; before the first, a rung's
/// configured rate, and twice the largest of those for the source).
fn rtc_layers(stream: &str, index: &shardcast_media::StreamIndex) -> Vec<crate::webrtc::Layer> {
    let configured = |name: &str| {
        (index.info.rungs.iter())
            .find(|r| r.name == name)
            .map(|r| u64::from(r.bitrate_kbps) * 1000)
    };
    let largest = (index.info.rungs.iter())
        .map(|r| u64::from(r.bitrate_kbps) * 1000)
        .max()
        .unwrap_or(0);
    let h264 = |name: &&str| {
        (index.rendition_meta(name)).is_some_and(|m| m.codecs.starts_with("avc1") && is_video(m))
    };
    (index.rendition_names().filter(h264))
        .map(|name| {
            let feed: Arc<str> = match name {
                "source" => Arc::from(stream),
                rung => Arc::from(format!("{stream}/{rung}")),
            };
            let bps = (index.average_bps(name))
                .or_else(|| configured(name))
                .unwrap_or(largest * 2);
            crate::webrtc::Layer { feed, bps }
        })
        .collect()
}
