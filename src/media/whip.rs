//! WHIP ingest on the media service: a browser's (or OBS's) offer at `POST /whip/live/{stream}`
//! is checked like an RTMP publish (the stream key or a publish token as `Bearer`, the
//! refused-credential strikes per address), its session made on this shard's UDP socket, and
//! the stream claimed from its home. What the publisher sends then goes home as every ingest
//! path's does (`MediaMsg::Config`, `MediaMsg::Sample`), so the stream is an ordinary one:
//! ladder, LL-HLS/DASH, WHEP, thumbnails, recordings.

use super::msg::{MediaMsg, PublishFrom, PublishRole, PublisherId, SampleMsg};
use super::{names, Media, MediaResponse};
use crate::common::counters::bump;
use crate::common::query::Query;
use crate::control::msg::Verdict;
use crate::shard::msg::ShardMsg;
use crate::transcode::msg::{ConvertMsg, ConvertOp, TranscodeMsg};
use crate::webrtc::publish::IngestEvent;
use crate::webrtc::whip::Ingested;
use shardcast_engine::{ConnId, Ctx};
use std::sync::Arc;

/// What a WHIP request carries besides its offer.
/// The bit that marks an `on_publish` webhook token as a WHIP publisher's (its low bits are
/// the publisher's place in the WebRTC table; an RTMP token's are a connection slot, below it).
pub const WHIP_WEBHOOK: u64 = 1 << 31;

/// The reason a WHIP publisher refused by the `on_publish` webhook is given (403).
const REFUSED_BY_WEBHOOK: &str = "refused by on_publish";

pub struct WhipRequest<'a> {
    pub stream: &'a str,
    /// The `Authorization: Bearer` value (a stream key or a publish token), or `?key=`.
    pub credential: Option<&'a str>,
    pub role: PublishRole,
    /// `?title=`, checked ([`names::publish_title`]): a co-host's name on the stage.
    pub title: Option<&'a str>,
}

impl Media {
    /// Whether a WHIP publish of `stream` may go ahead, before its offer is read: 401/403 for
    /// a missing or refused credential (a strike against the address, as over RTMP), 404
    /// when WebRTC is off.
    pub fn whip_allowed(
        &mut self,
        cx: &Ctx<ShardMsg>,
        http: ConnId,
        request: &WhipRequest<'_>,
    ) -> Result<(), (u16, &'static str)> {
        if self.webrtc.is_none() {
            return Err((404, "WebRTC is off here (webrtc.udp_listen)"));
        }
        if !names::is_valid_stream_name(request.stream) {
            return Err((400, "invalid stream name"));
        }
        let now = cx.now_ms();
        let ip = cx.peer_ip(http);
        if ip.is_some_and(|ip| self.guesses.is_blocked(ip, now)) {
            bump(&self.counters().publish_guesses_blocked, 1);
            return Err((429, "too many refused credentials from your address"));
        }
        let query = match request.credential {
            Some(credential) => {
                let credential = crate::common::query::encode(credential);
                format!("key={credential}&token={credential}")
            }
            None => String::new(),
        };
        if self
            .publish_allowed(cx, request.stream, Query::new(&query))
            .is_ok()
        {
            return Ok(());
        }
        bump(&self.counters().publishes_refused, 1);
        if let Some(ip) = ip {
            self.guesses.strike(ip, now);
        }
        match request.credential {
            None => Err((401, "a stream key is required (Authorization: Bearer KEY)")),
            Some(_) => Err((403, "bad stream key")),
        }
    }

    /// A whole WHIP offer, after [`Media::whip_allowed`]: the session is made and the stream
    /// claimed from its home. Ok: the request waits for the home's answer (from
    /// [`Media::take_ready`]); else the HTTP status and why.
    pub fn whip_offer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        http: ConnId,
        request: &WhipRequest<'_>,
        sdp: &str,
    ) -> Result<(), (u16, String)> {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return Err((404, "WebRTC is off here (webrtc.udp_listen)".into()));
        };
        let stream: Arc<str> = Arc::from(request.stream);
        let id = webrtc.offer_publish(cx, &stream, sdp, http);
        self.webrtc_settle(cx);
        let id = id?;
        let remote: Arc<str> = match cx.peer_ip(http) {
            Some(ip) => Arc::from(format!("{ip} (WHIP)")),
            None => Arc::from("WHIP"),
        };
        let vp8 = match (self.webrtc.as_ref(), id) {
            (Some(webrtc), PublisherId::Whip { key, .. }) => webrtc.sends_vp8(key),
            _ => false,
        };
        let from = PublishFrom {
            remote,
            title: request.title.map(String::from),
            vp8,
        };
        if let (Some(url), PublisherId::Whip { key, .. }) = (self.settings.on_publish.clone(), id) {
            // The webhook decides first; the claim follows its answer.
            self.webhooks_sent += 1;
            let token = self.webhooks_sent << 32 | WHIP_WEBHOOK | u64::from(key);
            if let Some(webrtc) = self.webrtc.as_mut() {
                webrtc.await_webhook(key, (token, request.role, from));
            }
            let body = serde_json::json!({
                "action": "publish",
                "app": self.settings.app,
                "stream": request.stream,
                "role": match request.role {
                    PublishRole::Backup => "backup",
                    PublishRole::Primary => "primary",
                },
                "query": {},
                "protocol": "whip",
            })
            .to_string();
            self.send_webhook(cx, url, body, token);
            return Ok(());
        }
        self.whip_claim(cx, &stream, id, (request.role, from));
        Ok(())
    }

    /// Asks the stream's home to let WHIP publisher `id` (of `role`, `from` its peer)
    /// publish.
    fn whip_claim(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: &Arc<str>,
        id: PublisherId,
        (role, from): (PublishRole, PublishFrom),
    ) {
        let msg = MediaMsg::Publish {
            stream: stream.clone(),
            conn: id,
            role,
            from: Box::new(from),
        };
        let home = names::home_of(stream, self.shards);
        self.send_to(cx, home, msg);
    }

    /// The `on_publish` webhook answered for a WHIP publisher: its claim goes on, or it is
    /// refused (403) and its session dropped.
    pub(super) fn whip_webhook_answered(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        token: u64,
        verdict: Verdict,
        detail: &str,
    ) {
        let key = (token & (WHIP_WEBHOOK - 1)) as u32;
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        let Some((stream, id, role, from)) = webrtc.webhook_answered(key, token) else {
            return; // the session is gone, or a stale answer
        };
        let PublisherId::Whip { key, serial } = id else {
            return;
        };
        if verdict == Verdict::Allowed {
            return self.whip_claim(cx, &stream, id, (role, from));
        }
        log::info!("whip: publish {stream} refused by on_publish: {detail}");
        self.whip_decision(cx, key, serial, Err(REFUSED_BY_WEBHOOK));
    }

    /// The home answered a WHIP publisher's claim (or ended its publish).
    pub(super) fn whip_decision(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        key: u32,
        serial: u32,
        decision: Result<(), &'static str>,
    ) {
        let Some(webrtc) = self.webrtc.as_mut() else {
            return;
        };
        if let Some(claim) = webrtc.publish_decision(key, serial, decision) {
            let response = match claim.answer {
                Ok((sdp, id)) => {
                    bump(&self.counters().publishes, 1);
                    MediaResponse::Created {
                        location: format!("/whip/session/{id}"),
                        sdp,
                    }
                }
                Err(reason) => {
                    bump(&self.counters().publishes_refused, 1);
                    let status = if reason == REFUSED_BY_WEBHOOK {
                        403
                    } else {
                        409
                    };
                    MediaResponse::Status(status, reason)
                }
            };
            self.waiters.push_ready(claim.http, response);
        }
        self.webrtc_settle(cx);
    }

    /// Sends what WHIP publishers produced to their streams' homes.
    pub(super) fn whip_ingest(&mut self, cx: &mut Ctx<ShardMsg>, events: Vec<IngestEvent>) {
        for event in events {
            match event {
                IngestEvent::Media { stream, id, item } => self.whip_media(cx, stream, id, item),
                IngestEvent::Ended {
                    stream,
                    id,
                    published,
                } => {
                    if published {
                        self.notify_unpublish(cx, &stream, "unpublished");
                    }
                    self.vp8_end(cx, &stream, id);
                    let home = names::home_of(&stream, self.shards);
                    self.send_to(cx, home, MediaMsg::Unpublish { stream, conn: id });
                }
            }
        }
    }

    fn whip_media(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: Arc<str>,
        id: PublisherId,
        item: Ingested,
    ) {
        let home = names::home_of(&stream, self.shards);
        let msg = match item {
            Ingested::Config(config) => {
                if let Err(why) = self.check_config(&config) {
                    log::info!("whip: stream {stream}: refused: {why}");
                    if let PublisherId::Whip { key, serial } = id {
                        self.whip_decision(cx, key, serial, Err("format refused"));
                    }
                    return;
                }
                let config = Box::new(config);
                MediaMsg::Config {
                    stream,
                    conn: id,
                    config,
                }
            }
            Ingested::Vp8 { sample, size } => return self.vp8(cx, stream, id, (sample, size)),
            Ingested::Sample { track, sample } => {
                bump(&self.counters().ingest_bytes, sample.data.len() as u64);
                MediaMsg::Sample(Box::new(SampleMsg {
                    stream,
                    conn: id,
                    track,
                    sample,
                    received_wall_ms: cx.wall_ms(),
                }))
            }
        };
        self.send_to(cx, home, msg);
    }

    /// A VP8 frame of WHIP publisher `id`: to the transcode worker that makes the publisher's
    /// video H.264 (picked at its first frame, a keyframe), which sends it home. A keyframe
    /// larger than `media.max_width` x `media.max_height` ends the publish.
    fn vp8(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        stream: Arc<str>,
        id: PublisherId,
        (sample, size): (shardcast_media::Sample, Option<(u32, u32)>),
    ) {
        let PublisherId::Whip { key, serial } = id else {
            return;
        };
        let (max_width, max_height) = (self.settings.max_width, self.settings.max_height);
        if let Some((width, height)) = size {
            if width == 0 || height == 0 || width > max_width || height > max_height {
                log::info!(
                    "whip: stream {stream}: refused: VP8 {width}x{height} outside \
                     1x1..{max_width}x{max_height}"
                );
                return self.whip_decision(cx, key, serial, Err("format refused"));
            }
        }
        let Some(transcode) = self.settings.transcode.as_ref() else {
            return; // never offered: VP8 is answered only with a transcode worker
        };
        let shards = self.shards;
        let worker = *self
            .vp8_workers
            .entry((key, serial))
            .or_insert_with(|| transcode.least_loaded_worker(shards));
        // As it came, for the viewers of the stream's VP8 feed.
        let msg = SampleMsg {
            stream: stream.clone(),
            conn: id,
            track: shardcast_media::TrackKind::Video,
            sample: sample.clone(),
            received_wall_ms: cx.wall_ms(),
        };
        self.send_to(
            cx,
            names::home_of(&stream, shards),
            MediaMsg::Vp8(Box::new(msg)),
        );
        let op = ConvertOp::Frame {
            sample,
            size,
            wall_ms: cx.wall_ms(),
        };
        let msg = ConvertMsg {
            stream,
            publisher: (key, serial),
            op,
        };
        cx.mesh_send(worker, TranscodeMsg::Convert(Box::new(msg)).into());
    }

    /// WHIP publisher `id` of `stream` ended: its VP8 conversion, if any, ends too.
    fn vp8_end(&mut self, cx: &mut Ctx<ShardMsg>, stream: &Arc<str>, id: PublisherId) {
        let PublisherId::Whip { key, serial } = id else {
            return;
        };
        if let Some(worker) = self.vp8_workers.remove(&(key, serial)) {
            let msg = ConvertMsg {
                stream: stream.clone(),
                publisher: (key, serial),
                op: ConvertOp::End,
            };
            cx.mesh_send(worker, TranscodeMsg::Convert(Box::new(msg)).into());
        }
    }

    /// A transcode worker made a configuration or sample of WHIP publisher `msg`'s video
    /// from its VP8: it goes to the stream's home as this shard's (the home ignores it when
    /// the publisher is gone).
    pub(super) fn vp8_converted(&mut self, cx: &mut Ctx<ShardMsg>, msg: MediaMsg) {
        let stream = match &msg {
            MediaMsg::Config { stream, .. } => stream,
            MediaMsg::Sample(sample) => &sample.stream,
            _ => return,
        };
        if let MediaMsg::Sample(sample) = &msg {
            bump(
                &self.counters().ingest_bytes,
                sample.sample.data.len() as u64,
            );
        }
        let home = names::home_of(stream, self.shards);
        self.send_to(cx, home, msg);
    }
}
