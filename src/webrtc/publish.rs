//! The publishers' side of a shard's WebRTC table (WHIP ingest).
//!
//! A WHIP offer makes a session at once, and the caller asks the stream's home to let it
//! publish (as an RTMP publish does). The HTTP request waits for that answer: 201 with the
//! SDP answer when the home accepts, the home's reason when it refuses (the session is then
//! dropped). From then on, each datagram's frames go through [`WhipIngest`] into codec
//! configurations and samples for the home ([`IngestEvent`]), the publisher is asked for a
//! keyframe whenever it has sent none for `keyframe_interval_ms`, and the session's end (a
//! DELETE, ICE consent lost) ends the publish.

use super::session::{Incoming, PeerRole};
use super::shard::Webrtc;
use super::whip::{Ingested, WhipIngest};
use crate::media::msg::{PublishFrom, PublishRole, PublisherId};
use shardcast_engine::{ConnId, Ctx};
use shardcast_media::TrackKind;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::Codec;

/// Keyframe requests to one publisher are at least this far apart.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);

/// What publishers produced, for the caller to send their streams' homes.
#[derive(Debug)]
pub enum IngestEvent {
    /// A configuration or a sample of publisher `id` of `stream`.
    Media {
        stream: Arc<str>,
        id: PublisherId,
        item: Ingested,
    },
    /// Publisher `id` of `stream` stopped (its session ended); `published`: the home had
    /// accepted it (the `on_unpublish` webhook is told only then).
    Ended {
        stream: Arc<str>,
        id: PublisherId,
        published: bool,
    },
}

/// Where a publisher is.
enum Phase {
    /// Waiting for the home's answer; the HTTP request `http` waits for it with `answer`.
    Claiming {
        http: ConnId,
        answer: String,
    },
    Publishing,
}

/// A WHIP publisher's state beside its session.
pub struct Publisher {
    id: PublisherId,
    phase: Phase,
    /// The `on_publish` webhook call this publisher waits for, before its claim, and the
    /// claim's role and peer (for after the answer).
    webhook: Option<(u64, PublishRole, PublishFrom)>,
    /// Whether the home accepted it.
    published: bool,
    ingest: WhipIngest,
    last_keyframe: Option<Instant>,
    last_request: Option<Instant>,
}

/// The home's answer to a publisher's claim, for the HTTP request that waits.
pub struct ClaimAnswer {
    pub http: ConnId,
    /// The SDP answer and the resource's id, or why not.
    pub answer: Result<(String, String), &'static str>,
}

impl Webrtc {
    /// A WHIP offer for `stream` from HTTP request `http`: the publisher's id for the claim
    /// the caller sends the home, or the HTTP status and why.
    pub fn offer_publish<M: Send>(
        &mut self,
        cx: &mut Ctx<M>,
        stream: &Arc<str>,
        sdp: &str,
        http: ConnId,
    ) -> Result<PublisherId, (u16, String)> {
        let (key, answer, _) = self.open(cx, stream, sdp, (PeerRole::Publisher, None))?;
        let id = PublisherId::Whip {
            key: key as u32,
            serial: self.serial as u32,
        };
        self.sessions[key].publisher = Some(Box::new(Publisher {
            id,
            phase: Phase::Claiming { http, answer },
            webhook: None,
            published: false,
            ingest: WhipIngest::default(),
            last_keyframe: None,
            last_request: None,
        }));
        Ok(id)
    }

    /// Whether publisher `key`'s session takes its video as VP8.
    pub fn sends_vp8(&self, key: u32) -> bool {
        (self.sessions.get(key as usize)).is_some_and(|e| e.session.video_codec() == Codec::Vp8)
    }

    /// The home answered publisher `(key, serial)`: for a claim, the answer for its HTTP
    /// request (a refused claim's session is dropped); a publisher that was publishing and is
    /// refused now (replaced by a new primary) is ended.
    pub fn publish_decision(
        &mut self,
        key: u32,
        serial: u32,
        decision: Result<(), &'static str>,
    ) -> Option<ClaimAnswer> {
        let key = key as usize;
        let entry = self.sessions.get_mut(key)?;
        let publisher = entry.publisher.as_mut()?;
        if publisher.id
            != (PublisherId::Whip {
                key: key as u32,
                serial,
            })
        {
            return None;
        }
        let phase = std::mem::replace(&mut publisher.phase, Phase::Publishing);
        let answer = match (phase, decision) {
            (Phase::Claiming { http, answer }, Ok(())) => {
                log::info!("whip: publishing stream {}", entry.stream);
                publisher.published = true;
                let id = entry.id.clone();
                return Some(ClaimAnswer {
                    http,
                    answer: Ok((answer, id)),
                });
            }
            (Phase::Claiming { http, .. }, Err(reason)) => Some(ClaimAnswer {
                http,
                answer: Err(reason),
            }),
            (Phase::Publishing, Ok(())) => return None,
            (Phase::Publishing, Err(reason)) => {
                log::info!("whip: stream {}: {reason}; ending", entry.stream);
                None
            }
        };
        entry.session.close();
        self.remove(key);
        answer
    }

    /// Takes what publisher `key` sent: configurations and samples for its home, and a
    /// keyframe request when one is due.
    pub(super) fn ingest_frames(&mut self, key: usize, now: Instant) {
        let interval = Duration::from_millis(self.settings.keyframe_interval_ms);
        let entry = &mut self.sessions[key];
        let frames = entry.session.take_incoming();
        let Some(publisher) = entry.publisher.as_mut() else {
            return;
        };
        let publishing = matches!(publisher.phase, Phase::Publishing);
        let mut out = Vec::new();
        for Incoming {
            codec,
            rtp,
            at,
            data,
        } in frames
        {
            if !publishing {
                continue; // before the home's answer: dropped (the next keyframe starts it)
            }
            let before = out.len();
            let video = match codec {
                Codec::H264 => publisher.ingest.video(at, rtp, &data, &mut out),
                Codec::Vp8 => publisher.ingest.vp8(at, rtp, &data, &mut out),
                Codec::Opus => {
                    publisher.ingest.opus(at, rtp, &data, &mut out);
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = video {
                log::debug!("whip: {}: {e}", entry.stream);
            }
            let keyframe = out[before..].iter().any(|i| match i {
                Ingested::Sample { track, sample } => *track == TrackKind::Video && sample.keyframe,
                Ingested::Vp8 { sample, .. } => sample.keyframe,
                Ingested::Config(_) => false,
            });
            if keyframe {
                publisher.last_keyframe = Some(now);
            }
        }
        let due = publishing
            && publisher
                .last_keyframe
                .is_none_or(|at| now.saturating_duration_since(at) >= interval)
            && publisher
                .last_request
                .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_REQUEST_GAP);
        if due {
            publisher.last_request = Some(now);
            entry.session.request_keyframe(&mut self.out);
        }
        let (stream, id) = (entry.stream.clone(), publisher.id);
        self.ingest
            .extend(out.into_iter().map(|item| IngestEvent::Media {
                stream: stream.clone(),
                id,
                item,
            }));
    }

    /// A publisher's session is gone: its publish ends. (For a refused claim the home knows
    /// no such publisher and ignores it; for a claim still out, the end follows the claim.)
    pub(super) fn publisher_gone(&mut self, stream: &Arc<str>, publisher: &Publisher) {
        log::info!("whip: a publisher of {stream} left");
        self.ingest.push(IngestEvent::Ended {
            stream: stream.clone(),
            id: publisher.id,
            published: publisher.published,
        });
    }

    /// The stream's viewers need a keyframe: asks WHIP publisher `(key, serial)` for one (a
    /// PLI), at most once per [`KEYFRAME_REQUEST_GAP`].
    pub fn publisher_keyframe<M: Send>(&mut self, cx: &mut Ctx<M>, key: u32, serial: u32) {
        let now = self.now(cx);
        let Some(entry) = self.sessions.get_mut(key as usize) else {
            return;
        };
        let Some(publisher) = entry.publisher.as_mut() else {
            return;
        };
        let due = publisher.id == (PublisherId::Whip { key, serial })
            && matches!(publisher.phase, Phase::Publishing)
            && (publisher.last_request)
                .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_REQUEST_GAP);
        if due {
            publisher.last_request = Some(now);
            entry.session.request_keyframe(&mut self.out);
            self.send(cx);
        }
    }

    /// Marks publisher `key` as waiting for the `on_publish` webhook call `token` before
    /// its claim of `role`, from `remote`.
    pub fn await_webhook(
        &mut self,
        key: u32,
        (token, role, from): (u64, PublishRole, PublishFrom),
    ) {
        let publisher = (self.sessions.get_mut(key as usize)).and_then(|e| e.publisher.as_mut());
        if let Some(publisher) = publisher {
            publisher.webhook = Some((token, role, from));
        }
    }

    /// The `on_publish` webhook call `token` answered: the claim that waited for it (stream,
    /// publisher, role, peer), if its session is still there.
    pub fn webhook_answered(
        &mut self,
        key: u32,
        token: u64,
    ) -> Option<(Arc<str>, PublisherId, PublishRole, PublishFrom)> {
        let entry = self.sessions.get_mut(key as usize)?;
        let publisher = entry.publisher.as_mut()?;
        if publisher.webhook.as_ref().map(|w| w.0) != Some(token) {
            return None;
        }
        let (_, role, from) = publisher.webhook.take()?;
        Some((entry.stream.clone(), publisher.id, role, from))
    }

    /// What publishers produced since the last call.
    pub fn take_ingest(&mut self) -> Vec<IngestEvent> {
        std::mem::take(&mut self.ingest)
    }
}
