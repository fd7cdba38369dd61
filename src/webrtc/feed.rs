//! A stream's media on a shard with WebRTC sessions of it: the configurations and samples its
//! home forwards (`MediaMsg::RtcMedia`), made into RTP payloads once per shard and shared by
//! every session of the stream (`Arc<[u8]>`, which str0m's RTP mode takes as is): each
//! session adds only its header, its encryption and its send.
//!
//! The payloads are shared further: each session's RTP history (str0m's, for retransmissions
//! when a viewer reports a loss by NACK) holds the same `Arc`s, so a stream's packets are
//! held once per shard however many viewers may ask for them again.
//!
//! H.264 arrives as in MP4 (length-prefixed NAL units, parameter sets out of band) and leaves
//! as RFC 6184 packetization mode 1: a NAL unit that fits is one payload, a larger one is cut
//! into FU-A fragments, and the SPS and PPS go in front of every keyframe, so that a viewer
//! that joins or loses packets can decode from the next keyframe on.

use bytes::Bytes;
use shardcast_media::{Sample, TrackConfig, TrackKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far a sample's media time may stray from the clock before the feed re-anchors its
/// wallclock (a restarted publish, a timestamp jump).
const ANCHOR_DRIFT_MAX: Duration = Duration::from_secs(3);

/// Largest RTP payload: str0m's datagram target (1,150 bytes) less the RTP header, its
/// extensions and the SRTP tag.
pub const PAYLOAD_MAX: usize = 1_100;

/// FU-A (RFC 6184 §5.8): the NAL unit type of a fragment's indicator.
const FU_A: u8 = 28;

/// The rung name of a stream's VP8 feed (`{stream}/vp8`): a VP8 WHIP publisher's video as
/// it came, for WebRTC viewers that take VP8.
pub const VP8_RUNG: &str = "vp8";

/// A WebRTC feed's stream and, for a viewer pinned to a rung (`/whep/live/{stream}/{rung}`),
/// the rung: sessions of a shard share a feed per `{stream}` or `{stream}/{rung}`.
pub fn rtc_feed(feed: &str) -> (&str, Option<&str>) {
    match feed.split_once('/') {
        Some((stream, rung)) => (stream, Some(rung)),
        None => (feed, None),
    }
}

/// Whether `feed` (`{stream}` or `{stream}/{rung}`) is a stream's VP8 feed.
pub fn is_vp8_feed(feed: &str) -> bool {
    rtc_feed(feed).1 == Some(VP8_RUNG)
}

/// A video frame ready for the sessions: its RTP payloads, in order (the last carries the
/// marker).
#[derive(Clone, Debug)]
pub struct VideoFrame {
    /// Single NAL unit and FU-A payloads, the parameter sets first when `keyframe`.
    pub payloads: Vec<Arc<[u8]>>,
    pub keyframe: bool,
    /// Presentation time, 90 kHz (the RTP clock of video).
    pub rtp_time: u64,
    /// H.264, or VP8 (a stream's VP8 feed).
    pub codec: str0m::format::Codec,
}

/// Why a forwarded sample was not made into a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("no H.264 configuration yet")]
    NoConfig,
    #[error("the stream's video is not H.264")]
    NotAvc,
    #[error("a NAL unit's length runs past the sample")]
    Malformed,
    #[error("waiting for a keyframe of the new configuration")]
    AwaitingKeyframe,
}

/// One stream's forwarded media on this shard.
#[derive(Default)]
pub struct Feed {
    /// VP8 as a publisher sent it (a stream's `{stream}/vp8` feed), not H.264.
    vp8: bool,
    video: Option<TrackConfig>,
    audio: Option<TrackConfig>,
    /// The instant media time `.1` (µs on the stream's timeline) is taken to have been
    /// captured: both tracks' wallclocks (RTCP sender reports, hence lip sync) come from their
    /// media time through it, not from when each arrived.
    anchor: Option<(Instant, u64)>,
    /// When a keyframe was last asked for on behalf of this stream's viewers here.
    pub last_keyframe_ask: Option<Instant>,
    /// The video configuration changed and no keyframe of the new one came yet: frames
    /// before it cannot be decoded with the parameter sets viewers will have.
    awaiting_keyframe: bool,
    /// Whether a source with B-frames was seen (their frames go out in decode order, which
    /// WebRTC players do not reorder); logged once.
    pub b_frames_seen: bool,
}

impl Feed {
    /// A feed of VP8 frames (RFC 6386), as a WHIP publisher sent them: no configuration,
    /// each frame cut into RFC 7741 payloads.
    pub fn vp8() -> Feed {
        Feed {
            vp8: true,
            ..Feed::default()
        }
    }

    /// The configuration the track's next samples follow.
    pub fn set_config(&mut self, config: TrackConfig) {
        match config.kind() {
            TrackKind::Video => {
                self.awaiting_keyframe |= self.video.as_ref().is_some_and(|v| *v != config);
                self.video = Some(config);
            }
            TrackKind::Audio => self.audio = Some(config),
        }
    }

    /// The audio configuration, if any.
    pub fn audio(&self) -> Option<&TrackConfig> {
        self.audio.as_ref()
    }

    /// The capture instant of media time `ticks` at `rate` Hz, arriving at `now`: never after
    /// `now` (str0m's sender reports need a wallclock in the past), so a sample that comes
    /// sooner after its predecessors than they did moves the anchor back.
    pub fn wallclock(&mut self, now: Instant, ticks: u64, rate: u32) -> Instant {
        let us = (u128::from(ticks) * 1_000_000 / u128::from(rate.max(1))) as u64;
        let at = |(base, base_us): (Instant, u64)| {
            if us >= base_us {
                base.checked_add(Duration::from_micros(us - base_us))
            } else {
                base.checked_sub(Duration::from_micros(base_us - us))
            }
        };
        let fits = |t: Instant| t <= now + ANCHOR_DRIFT_MAX && now <= t + ANCHOR_DRIFT_MAX;
        match self.anchor.and_then(at).filter(|&t| fits(t)) {
            Some(t) if t <= now => t,
            Some(t) => {
                let (base, base_us) = self.anchor.expect("an anchor gave t");
                self.anchor = Some((base.checked_sub(t - now).unwrap_or(base), base_us));
                now
            }
            None => {
                self.anchor = Some((now, us));
                now
            }
        }
    }

    /// A forwarded video sample as a frame for the writers.
    pub fn video_frame(&mut self, sample: &Sample) -> Result<VideoFrame, FeedError> {
        if self.vp8 {
            return Ok(VideoFrame {
                payloads: vp8_payloads(&sample.data, PAYLOAD_MAX),
                keyframe: sample.keyframe,
                rtp_time: sample.dts,
                codec: str0m::format::Codec::Vp8,
            });
        }
        let avc = match &self.video {
            Some(TrackConfig::Avc(avc)) => avc,
            Some(_) => return Err(FeedError::NotAvc),
            None => return Err(FeedError::NoConfig),
        };
        if sample.composition_offset != 0 && sample.dts as i64 != sample.pts() {
            self.b_frames_seen = true;
        }
        if self.awaiting_keyframe && !sample.keyframe {
            return Err(FeedError::AwaitingKeyframe);
        }
        self.awaiting_keyframe = false;
        let sets: Vec<&Bytes> = match sample.keyframe {
            true => avc.sps.iter().chain(&avc.pps).collect(),
            false => Vec::new(),
        };
        let payloads = packetize(avc.nal_length_size, &sets, &sample.data, PAYLOAD_MAX)
            .ok_or(FeedError::Malformed)?;
        Ok(VideoFrame {
            payloads,
            keyframe: sample.keyframe,
            rtp_time: sample.pts().max(0) as u64,
            codec: str0m::format::Codec::H264,
        })
    }
}

/// The NAL units `first` (parameter sets), then those of `sample` (with
/// `nal_length_size`-byte lengths), as RTP payloads of at most `max` bytes. None when a length
/// runs past the end or is zero.
pub fn packetize(
    nal_length_size: u8,
    first: &[&Bytes],
    sample: &[u8],
    max: usize,
) -> Option<Vec<Arc<[u8]>>> {
    let size = usize::from(nal_length_size);
    if !(1..=4).contains(&size) || max < 3 {
        return None;
    }
    let mut payloads = Vec::with_capacity(sample.len() / max + first.len() + 1);
    for nal in first {
        payload_nal(nal, max, &mut payloads);
    }
    let mut rest = sample;
    while !rest.is_empty() {
        let (prefix, tail) = rest.split_at_checked(size)?;
        let len = prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let (nal, tail) = tail.split_at_checked(len).filter(|_| len > 0)?;
        payload_nal(nal, max, &mut payloads);
        rest = tail;
    }
    Some(payloads)
}

/// A VP8 frame as RFC 7741 payloads of at most `max` bytes: each a one-byte descriptor (S
/// set on the first, partition index 0) and the next piece of the frame.
pub fn vp8_payloads(frame: &[u8], max: usize) -> Vec<Arc<[u8]>> {
    let chunk = max.saturating_sub(1).max(1);
    (frame.chunks(chunk).enumerate())
        .map(|(i, piece)| {
            let mut payload = Vec::with_capacity(piece.len() + 1);
            payload.push(if i == 0 { 0x10 } else { 0x00 });
            payload.extend_from_slice(piece);
            Arc::from(payload)
        })
        .collect()
}

/// One NAL unit as a single payload, or as FU-A fragments when it is longer than `max`.
fn payload_nal(nal: &[u8], max: usize, out: &mut Vec<Arc<[u8]>>) {
    if nal.len() <= max {
        out.push(Arc::from(nal));
        return;
    }
    let indicator = (nal[0] & 0xe0) | FU_A;
    let kind = nal[0] & 0x1f;
    let chunks: Vec<&[u8]> = nal[1..].chunks(max - 2).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let start = if i == 0 { 0x80 } else { 0 };
        let end = if i + 1 == chunks.len() { 0x40 } else { 0 };
        let mut payload = Vec::with_capacity(chunk.len() + 2);
        payload.extend_from_slice(&[indicator, start | end | kind]);
        payload.extend_from_slice(chunk);
        out.push(Arc::from(payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardcast_media::codec::AvcConfig;

    fn avc() -> AvcConfig {
        // A 320x240 Baseline record from x264 (SPS, PPS).
        let record = [
            0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01,
            0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
            0xf1, 0x42, 0xa4, 0x80, 0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
        ];
        shardcast_media::codec::parse_avcc(&Bytes::copy_from_slice(&record)).unwrap()
    }

    /// Undoes `packetize`: the NAL units, in order.
    fn depacketize(payloads: &[Arc<[u8]>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fragment: Option<Vec<u8>> = None;
        for p in payloads {
            if p[0] & 0x1f != FU_A {
                assert!(fragment.is_none(), "a fragment left unfinished");
                nals.push(p.to_vec());
                continue;
            }
            assert!(p.len() <= PAYLOAD_MAX);
            let (start, end) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
            if start {
                fragment = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
            }
            fragment
                .as_mut()
                .expect("starts first")
                .extend_from_slice(&p[2..]);
            if end {
                nals.push(fragment.take().unwrap());
            }
        }
        nals
    }

    #[test]
    fn frames_become_rtp_payloads_with_parameter_sets_before_keyframes() {
        let avc = avc();
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000).map(|i| i as u8))
            .collect();
        let mut sample = (big.len() as u32).to_be_bytes().to_vec();
        sample.extend_from_slice(&big);
        sample.extend_from_slice(&[0, 0, 0, 2, 0x06, 0x05]);
        let sets = [&avc.sps[0], &avc.pps[0]];
        let payloads = packetize(4, &sets, &sample, PAYLOAD_MAX).unwrap();
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_MAX));
        assert_eq!(payloads.len(), 2 + 5001_usize.div_ceil(PAYLOAD_MAX - 2) + 1);
        assert_eq!(
            depacketize(&payloads),
            [
                avc.sps[0].to_vec(),
                avc.pps[0].to_vec(),
                big,
                vec![0x06, 0x05]
            ]
        );
        // The fragments keep the NAL unit's NRI bits in their indicator.
        assert_eq!(payloads[2][0], 0x60 | FU_A);
        let delta = packetize(4, &[], &[0, 0, 0, 2, 0x41, 0x9a], PAYLOAD_MAX).unwrap();
        assert_eq!(depacketize(&delta), [vec![0x41, 0x9a]]);
    }

    #[test]
    fn random_samples_packetize_within_bounds_or_are_refused() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let len = (next() % 4000) as usize;
            let sample: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let size = (next() % 5) as u8;
            if let Some(payloads) = packetize(size, &[], &sample, PAYLOAD_MAX) {
                assert!(payloads
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= PAYLOAD_MAX));
            }
        }
    }

    #[test]
    fn lengths_past_the_end_or_zero_are_refused() {
        for bad in [&[0, 0, 0, 3, 0x65, 0xaa][..], &[0, 0, 0], &[0, 0, 0, 0]] {
            assert_eq!(packetize(4, &[], bad, PAYLOAD_MAX), None, "{bad:?}");
        }
        assert_eq!(packetize(4, &[], &[], PAYLOAD_MAX), Some(Vec::new()));
        let two = packetize(2, &[], &[0, 1, 9], PAYLOAD_MAX).unwrap();
        assert_eq!(&*two[0], &[9]);
        assert_eq!(
            packetize(5, &[], &[], PAYLOAD_MAX),
            None,
            "no such length size"
        );
    }

    #[test]
    fn wallclocks_follow_media_time_and_are_never_ahead_of_now() {
        let mut feed = Feed::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            feed.wallclock(t0, 90_000, 90_000),
            t0,
            "the first sample anchors"
        );
        // Audio of the same media time arriving 40 ms later has the same capture instant.
        assert_eq!(feed.wallclock(t0 + ms(40), 48_000, 48_000), t0);
        // A video frame 33 ms later in media time, arriving late.
        assert_eq!(feed.wallclock(t0 + ms(50), 92_970, 90_000), t0 + ms(33));
        // One arriving early (sooner than its media time) is clamped to now, and moves the
        // anchor back: the next frame is placed from the new anchor.
        assert_eq!(feed.wallclock(t0 + ms(60), 99_000, 90_000), t0 + ms(60));
        assert_eq!(feed.wallclock(t0 + ms(200), 108_000, 90_000), t0 + ms(160));
        // A jump of the timeline (a new publish) re-anchors at now.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(feed.wallclock(later, 0, 90_000), later);
        assert_eq!(feed.wallclock(later + ms(40), 2970, 90_000), later + ms(33));
    }

    #[test]
    fn a_feed_needs_an_h264_configuration() {
        let mut feed = Feed::default();
        let sample = Sample {
            dts: 9000,
            composition_offset: 0,
            duration: 0,
            keyframe: true,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        };
        assert_eq!(feed.video_frame(&sample).unwrap_err(), FeedError::NoConfig);
        feed.set_config(TrackConfig::Avc(avc()));
        let frame = feed.video_frame(&sample).unwrap();
        assert!(frame.keyframe);
        assert_eq!(frame.rtp_time, 9000);
        assert!(!feed.b_frames_seen);
    }

    #[test]
    fn a_new_video_configuration_waits_for_its_keyframe() {
        let mut feed = Feed::default();
        let frame = |keyframe: bool| Sample {
            dts: 9000,
            composition_offset: 0,
            duration: 0,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
        };
        feed.set_config(TrackConfig::Avc(avc()));
        assert!(
            feed.video_frame(&frame(false)).is_ok(),
            "the first needs none"
        );
        feed.set_config(TrackConfig::Avc(avc()));
        assert!(
            feed.video_frame(&frame(false)).is_ok(),
            "the same one again"
        );
        // Another picture size (a rung standing in for the source, a new publisher's).
        let mut other = avc();
        other.sps_info.video.width = 640;
        feed.set_config(TrackConfig::Avc(other));
        let waiting = feed.video_frame(&frame(false)).unwrap_err();
        assert_eq!(waiting, FeedError::AwaitingKeyframe);
        assert!(feed.video_frame(&frame(true)).unwrap().keyframe);
        assert!(
            feed.video_frame(&frame(false)).is_ok(),
            "decodable from there"
        );
    }

    #[test]
    fn a_vp8_frame_is_cut_into_payloads_with_the_start_bit_on_the_first() {
        let frame: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let payloads = vp8_payloads(&frame, 1000);
        assert_eq!(payloads.len(), 3);
        assert_eq!(payloads[0][0], 0x10);
        assert!(payloads[1..].iter().all(|p| p[0] == 0));
        assert!(payloads.iter().all(|p| p.len() <= 1000));
        let joined: Vec<u8> = payloads.iter().flat_map(|p| p[1..].to_vec()).collect();
        assert_eq!(joined, frame);
        // A VP8 feed needs no configuration.
        let sample = Sample {
            dts: 9000,
            composition_offset: 0,
            duration: 0,
            keyframe: true,
            data: Bytes::from(frame),
        };
        let made = Feed::vp8().video_frame(&sample).unwrap();
        assert_eq!(
            (made.rtp_time, made.keyframe, made.payloads.len()),
            (9000, true, 3)
        );
    }
}
