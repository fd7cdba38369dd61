//! The rungs the worker forwards to the stream's home for WebRTC viewers. The ladder's
//! rungs have no B-frames, so any H.264 rung can go to a WebRTC player as it is:
//!
//! - the largest stands in for a source with B-frames (WebRTC players do not reorder frames);
//! - viewers may pin a rung (`/whep/live/{stream}/{rung}`).
//!
//! When the home asks (`TranscodeMsg::Rtc`), the worker sends it the rung's configuration,
//! then its samples from a keyframe on. Because that encoder is ours, a viewer that joins or
//! loses a frame gets a keyframe at the rung's next picture (at most one per
//! [`RTC_KEYFRAME_GAP`] per rung, whatever the viewers ask); the rung's segments still start
//! only where the source's keyframes are.

use super::worker::Worker;
use super::{Job, RungOut, Sink};
use crate::media::msg::{MediaMsg, RtcMedia};
use crate::transcode::msg::{RtcAsk, RtcWant};
use shardcast_engine::ShardId;
use shardcast_media::{Sample, TrackConfig, TrackKind};
use shardcast_native::{CodecId, Ladder};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The least time between two keyframes forced for WebRTC viewers: a flood of loss reports
/// (or of joins) costs the rung at most one keyframe this often.
pub const RTC_KEYFRAME_GAP: Duration = Duration::from_millis(300);

/// A stream's rungs forwarded for WebRTC viewers.
#[derive(Default)]
pub(super) struct RtcRungs {
    /// The largest rung, standing in for a source with B-frames.
    standin: RtcRung,
    /// The rungs viewers pinned, by name (each a rung of the ladder).
    pinned: Vec<(Arc<str>, RtcRung)>,
}

/// The forwarding of one rung.
#[derive(Default)]
struct RtcRung {
    /// The home wants the rung (it has WebRTC viewers).
    forwarding: bool,
    /// The rung (spec index) and encoder generation whose configuration went home last.
    sent: Option<(usize, u32)>,
    /// A keyframe of that rung went out since its configuration did.
    started: bool,
    /// When a keyframe was last forced.
    forced_at: Option<Instant>,
    /// A keyframe is wanted and waits for the gap (or for the ladder to open).
    pending: bool,
}

impl Worker {
    /// The home's want for a WebRTC rung of one of its streams.
    pub(super) fn rtc(&mut self, ask: RtcAsk) {
        let RtcAsk {
            stream,
            epoch,
            rung,
            want,
        } = ask;
        let Some(job) = self.jobs.get_mut(&stream).filter(|j| j.epoch == epoch) else {
            return;
        };
        let rtc = &mut job.rtc;
        let forward = match (rung, want) {
            (None, _) => &mut rtc.standin,
            (Some(name), RtcWant::Stop) => {
                rtc.pinned.retain(|(n, _)| *n != name);
                return;
            }
            (Some(name), RtcWant::Keyframe) => {
                if !job.rungs.iter().any(|r| r.name == name) {
                    return; // not a rung of this ladder (the offer checked; a new session may differ)
                }
                let at = match rtc.pinned.iter().position(|(n, _)| *n == name) {
                    Some(at) => at,
                    None => {
                        rtc.pinned.push((name, RtcRung::default()));
                        rtc.pinned.len() - 1
                    }
                };
                &mut rtc.pinned[at].1
            }
        };
        match want {
            RtcWant::Keyframe => {
                forward.forwarding = true;
                forward.pending = true;
                force_due(job, Instant::now());
            }
            RtcWant::Stop => *forward = RtcRung::default(),
        }
    }
}

/// The rung that stands in for a source with B-frames: the largest active one, when the
/// rungs are H.264.
pub(super) fn rtc_spec(ladder: &Ladder) -> Option<usize> {
    if ladder.codec() != CodecId::H264 {
        return None;
    }
    (ladder.rungs())
        .max_by_key(|r| {
            (
                u64::from(r.width) * u64::from(r.height),
                usize::MAX - r.spec,
            )
        })
        .map(|r| r.spec)
}

/// Forces the wanted keyframes whose gap since the last has passed; before each picture.
pub(super) fn force_due(job: &mut Job, now: Instant) {
    let Some(ladder) = job.ladder.as_mut() else {
        return;
    };
    let standin = rtc_spec(ladder);
    let rungs = &job.rungs;
    let pinned = (job.rtc.pinned.iter_mut())
        .map(|(name, rung)| (rungs.iter().position(|r| r.name == *name), rung));
    for (spec, rung) in std::iter::once((standin, &mut job.rtc.standin)).chain(pinned) {
        let due = rung
            .forced_at
            .is_none_or(|at| now.saturating_duration_since(at) >= RTC_KEYFRAME_GAP);
        if let (true, true, Some(spec)) = (rung.pending, due, spec) {
            ladder.force_keyframe(spec);
            rung.forced_at = Some(now);
            rung.pending = false;
        }
    }
}

impl RtcRungs {
    /// A packet of rung `(spec, generation)`, as packaged: what of it the home gets for the
    /// WebRTC viewers, through `send` (with the pinned rung's name, or None for the
    /// stand-in, rung `standin`): the rung's header when new, then its samples from a
    /// keyframe on.
    pub(super) fn forward(
        &mut self,
        (rungs, standin): (&[RungOut], Option<usize>),
        (spec, generation): (usize, u32),
        sample: &Sample,
        mut send: impl FnMut(Option<&Arc<str>>, RtcMedia),
    ) {
        let Some(out) = rungs.get(spec) else {
            return;
        };
        let config = out.segmenter.track_config(TrackKind::Video);
        if standin == Some(spec) {
            (self.standin).forward(config, (spec, generation), sample, |m| send(None, m));
        }
        for (name, rung) in &mut self.pinned {
            if *name == out.name {
                rung.forward(config, (spec, generation), sample, |m| send(Some(name), m));
            }
        }
    }
}

impl RtcRung {
    /// A packet of this rung `(spec, generation)`, whose header is `config`: the header when
    /// new, then the samples from a keyframe on, through `send`, while the home wants them.
    fn forward(
        &mut self,
        config: Option<&TrackConfig>,
        (spec, generation): (usize, u32),
        sample: &Sample,
        mut send: impl FnMut(RtcMedia),
    ) {
        if !self.forwarding {
            return;
        }
        if self.sent != Some((spec, generation)) {
            let Some(config) = config else {
                return;
            };
            send(RtcMedia::Config(config.clone()));
            self.sent = Some((spec, generation));
            self.started = false;
        }
        if !self.started && !sample.keyframe {
            // Viewers decode from a keyframe: one now rather than at the source's next.
            self.pending = true;
            return;
        }
        self.started = true;
        send(RtcMedia::Sample {
            track: TrackKind::Video,
            sample: sample.clone(),
        });
    }
}

/// Sends `media` to the stream's home for its WebRTC viewers.
pub(super) fn send_home(
    endpoint: &mut dyn Sink,
    (stream, home, epoch): (&Arc<str>, ShardId, u64),
    rung: Option<&Arc<str>>,
    media: RtcMedia,
) {
    let msg = MediaMsg::RtcTranscoded {
        stream: stream.clone(),
        epoch,
        rung: rung.cloned(),
        media: Box::new(media),
    };
    endpoint.send(home, msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// What `forward` sent: "config", "key" or "frame", in order.
    fn run(
        rtc: &mut RtcRung,
        config: &TrackConfig,
        packets: &[(usize, u32, bool)],
    ) -> Vec<&'static str> {
        let mut sent = Vec::new();
        for (n, &(spec, generation, keyframe)) in packets.iter().enumerate() {
            let s = Sample {
                dts: n as u64 * 3000,
                composition_offset: 0,
                duration: 0,
                keyframe,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            };
            rtc.forward(Some(config), (spec, generation), &s, |media| {
                sent.push(match media {
                    RtcMedia::Config(_) => "config",
                    RtcMedia::Sample { sample, .. } if sample.keyframe => "key",
                    _ => "frame",
                })
            });
        }
        sent
    }

    #[test]
    fn the_rung_goes_home_with_its_header_from_a_keyframe_and_only_when_wanted() {
        // Any header will do: it is passed on as it is.
        let config = TrackConfig::Opus(
            shardcast_media::codec::parse_opus_head(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0")
                .unwrap(),
        );
        let mut rtc = RtcRung::default();
        assert!(
            run(&mut rtc, &config, &[(0, 0, true)]).is_empty(),
            "not wanted"
        );
        rtc.forwarding = true;
        rtc.pending = false;
        // Mid-GOP: the header, then nothing until a keyframe (asked for at once).
        assert_eq!(run(&mut rtc, &config, &[(0, 0, false)]), ["config"]);
        assert!(rtc.pending, "a keyframe is asked for");
        let sent = run(&mut rtc, &config, &[(0, 0, true), (0, 0, false)]);
        assert_eq!(sent, ["key", "frame"]);
        // A new encoder generation (the source changed size): its header, then its keyframe.
        let sent = run(&mut rtc, &config, &[(0, 1, false), (0, 1, true)]);
        assert_eq!(sent, ["config", "key"]);
        rtc = RtcRung::default();
        assert!(
            run(&mut rtc, &config, &[(0, 1, true)]).is_empty(),
            "stopped"
        );
    }
}
