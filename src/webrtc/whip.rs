//! A WHIP publisher's media made into what every ingest path hands the stream's home: codec
//! configurations and samples on one timeline (`TrackConfig`, `Sample`), as the RTMP demuxer
//! makes them from FLV. Sans-io: frames in, configurations and samples out.
//!
//! - H.264 arrives as Annex B access units (str0m reassembles RTP). The parameter sets of an
//!   access unit become the configuration (again whenever they change); the rest becomes a
//!   length-prefixed sample, a keyframe when it holds an IDR slice. Nothing goes out before
//!   the first keyframe with its parameter sets.
//! - VP8 frames pass as they are (the transcode worker makes them H.264 for the stream, see
//!   `transcode::convert`): a keyframe carries its picture size, and nothing goes out before
//!   the first keyframe.
//! - Opus packets pass as they are, with a configuration of 48 kHz, stereo (RFC 7587 always
//!   signals two channels).
//! - Each track's RTP clock starts at a random value. A track's first frame is placed at the
//!   time it arrived (relative to the session's first frame), and later frames follow their
//!   RTP time from there, unwrapped: audio and video stay as in sync as their first frames'
//!   arrival (a few milliseconds on a LAN).

use bytes::Bytes;
use shardcast_media::codec::{
    avcc_from_annexb, nal_units, parse_avcc, parse_opus_head, to_length_prefixed, VideoCodec,
};
use shardcast_media::{Sample, TrackConfig, TrackKind};
use std::sync::Arc;
use std::time::Instant;

/// The RTP clocks: 90 kHz video, 48 kHz Opus.
const VIDEO_RATE: u64 = 90_000;
const OPUS_RATE: u64 = 48_000;

/// What the ingest hands on.
#[derive(Debug)]
pub enum Ingested {
    Config(TrackConfig),
    Sample {
        track: TrackKind,
        sample: Sample,
    },
    /// A VP8 frame on the stream's timeline; a keyframe's picture size.
    Vp8 {
        sample: Sample,
        size: Option<(u32, u32)>,
    },
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WhipError {
    #[error("the H.264 parameter sets cannot be read")]
    BadParameterSets,
    #[error("no H.264 configuration yet (waiting for a keyframe)")]
    NoConfig,
    #[error("no VP8 keyframe yet")]
    NoKeyframe,
}

/// One track's clock: where its RTP time started and where that is on the stream's timeline.
#[derive(Debug, Clone, Copy)]
struct Clock {
    last_rtp: u32,
    /// Unwrapped RTP ticks since the first frame.
    ticks: u64,
    /// The first frame's place on the timeline, in the track's ticks.
    base: u64,
}

impl Clock {
    fn new(rtp: u32, base: u64) -> Self {
        Clock {
            last_rtp: rtp,
            ticks: 0,
            base,
        }
    }

    /// The timeline time of RTP time `rtp`; None for a step back (of less than half the
    /// 32-bit range: a late, reordered frame), which is dropped.
    fn at(&mut self, rtp: u32) -> Option<u64> {
        let step = rtp.wrapping_sub(self.last_rtp);
        if step >= 1 << 31 {
            return None;
        }
        self.ticks += u64::from(step);
        self.last_rtp = rtp;
        Some(self.base + self.ticks)
    }
}

/// One publisher's ingest.
#[derive(Default)]
pub struct WhipIngest {
    /// When the session's first frame (of either track) arrived.
    start: Option<Instant>,
    video: Option<Clock>,
    audio: Option<Clock>,
    /// The parameter sets the current configuration was made from (Annex B).
    parameter_sets: Vec<u8>,
    configured_video: bool,
    configured_audio: bool,
    /// Video frames dropped while waiting for a keyframe.
    pub waiting_frames: u64,
}

impl WhipIngest {
    /// An H.264 access unit (Annex B) with its RTP time, arrived at `at`.
    pub fn video(
        &mut self,
        at: Instant,
        rtp: u32,
        data: &[u8],
        out: &mut Vec<Ingested>,
    ) -> Result<(), WhipError> {
        let units = nal_units(data);
        let sets: Vec<&[u8]> = (units.iter().copied())
            .filter(|u| matches!(u[0] & 0x1f, 7 | 8))
            .collect();
        let keyframe = units.iter().any(|u| u[0] & 0x1f == 5);
        if !sets.is_empty() {
            let mut annex_b = Vec::new();
            for set in &sets {
                annex_b.extend_from_slice(&[0, 0, 0, 1]);
                annex_b.extend_from_slice(set);
            }
            if annex_b != self.parameter_sets {
                let record = avcc_from_annexb(&annex_b).ok_or(WhipError::BadParameterSets)?;
                let config =
                    parse_avcc(&Bytes::from(record)).map_err(|_| WhipError::BadParameterSets)?;
                self.parameter_sets = annex_b;
                self.configured_video = true;
                out.push(Ingested::Config(TrackConfig::Avc(config)));
            }
        }
        if !self.configured_video || (self.video.is_none() && !keyframe) {
            self.waiting_frames += 1;
            return Err(WhipError::NoConfig);
        }
        let Some(dts) = self.clock(TrackKind::Video, at, rtp) else {
            return Ok(()); // late
        };
        let sample = Sample {
            dts,
            composition_offset: 0,
            duration: 0,
            keyframe,
            data: Bytes::from(to_length_prefixed(data, VideoCodec::Avc)),
        };
        out.push(Ingested::Sample {
            track: TrackKind::Video,
            sample,
        });
        Ok(())
    }

    /// A VP8 frame (RFC 6386, as str0m reassembles it from RFC 7741 packets) with its RTP
    /// time, arrived at `at`.
    pub fn vp8(
        &mut self,
        at: Instant,
        rtp: u32,
        data: &Arc<[u8]>,
        out: &mut Vec<Ingested>,
    ) -> Result<(), WhipError> {
        let size = vp8_keyframe_size(data);
        if self.video.is_none() && size.is_none() {
            self.waiting_frames += 1;
            return Err(WhipError::NoKeyframe);
        }
        let Some(dts) = self.clock(TrackKind::Video, at, rtp) else {
            return Ok(()); // late
        };
        let sample = Sample {
            dts,
            composition_offset: 0,
            duration: 0,
            keyframe: size.is_some(),
            // The frame str0m reassembled, shared rather than copied.
            data: Bytes::from_owner(Arc::clone(data)),
        };
        out.push(Ingested::Vp8 { sample, size });
        Ok(())
    }

    /// An Opus packet with its RTP time, arrived at `at`.
    pub fn opus(&mut self, at: Instant, rtp: u32, data: &[u8], out: &mut Vec<Ingested>) {
        if !self.configured_audio {
            self.configured_audio = true;
            out.push(Ingested::Config(TrackConfig::Opus(opus_config())));
        }
        let Some(dts) = self.clock(TrackKind::Audio, at, rtp) else {
            return; // late
        };
        let sample = Sample {
            dts,
            composition_offset: 0,
            duration: 960,
            keyframe: true,
            data: Bytes::copy_from_slice(data),
        };
        out.push(Ingested::Sample {
            track: TrackKind::Audio,
            sample,
        });
    }

    /// Whether video has started (a keyframe went out).
    pub fn video_started(&self) -> bool {
        self.video.is_some()
    }

    fn clock(&mut self, track: TrackKind, at: Instant, rtp: u32) -> Option<u64> {
        let start = *self.start.get_or_insert(at);
        let (clock, rate) = match track {
            TrackKind::Video => (&mut self.video, VIDEO_RATE),
            TrackKind::Audio => (&mut self.audio, OPUS_RATE),
        };
        let clock = clock.get_or_insert_with(|| {
            let since = at.saturating_duration_since(start);
            Clock::new(rtp, since.as_micros() as u64 * rate / 1_000_000)
        });
        clock.at(rtp)
    }
}

/// The picture size a VP8 keyframe declares (RFC 6386 §9.1: a frame tag whose first bit is
/// clear, the start code 9d 01 2a, then 14-bit width and height); None for an interframe or
/// a keyframe too short or without its start code.
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((u32::from(width), u32::from(height)))
}

/// Opus as RFC 7587 carries it: 48 kHz, signalled as two channels.
fn opus_config() -> shardcast_media::codec::OpusConfig {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(2); // channels
    head.extend_from_slice(&312u16.to_le_bytes()); // pre-skip: libopus's usual
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0); // mapping family 0
    parse_opus_head(&head).expect("a well-formed OpusHead")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// x264's 320x240 Baseline parameter sets and a tiny IDR.
    const SPS: [u8; 24] = [
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: [u8; 5] = [0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn annex_b(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [&[0, 0, 0, 1][..], u].concat())
            .collect()
    }

    fn samples(out: &[Ingested]) -> Vec<(TrackKind, u64, bool)> {
        out.iter()
            .filter_map(|i| match i {
                Ingested::Sample { track, sample } => Some((*track, sample.dts, sample.keyframe)),
                Ingested::Vp8 { sample, .. } => {
                    Some((TrackKind::Video, sample.dts, sample.keyframe))
                }
                Ingested::Config(_) => None,
            })
            .collect()
    }

    #[test]
    fn video_waits_for_a_keyframe_with_parameter_sets_then_follows_rtp_time() {
        let t0 = Instant::now();
        let mut ingest = WhipIngest::default();
        let mut out = Vec::new();
        let delta: &[u8] = &[0x41, 0x9a, 0x01];
        assert_eq!(
            ingest.video(t0, 1000, &annex_b(&[delta]), &mut out),
            Err(WhipError::NoConfig)
        );
        assert!(out.is_empty());
        let idr: &[u8] = &[0x65, 0x88, 0x80];
        ingest
            .video(t0, 4000, &annex_b(&[&SPS, &PPS, idr]), &mut out)
            .unwrap();
        let Ingested::Config(TrackConfig::Avc(avc)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (avc.sps_info.video.width, avc.sps_info.video.height),
            (320, 240)
        );
        let Ingested::Sample { sample, .. } = &out[1] else {
            panic!()
        };
        assert_eq!(&sample.data[..], [&[0, 0, 0, 3][..], idr].concat());
        // Across the RTP clock's wrap: 3000 ticks later.
        let mut out2 = Vec::new();
        ingest
            .video(
                t0,
                4000u32.wrapping_add(3000),
                &annex_b(&[delta]),
                &mut out2,
            )
            .unwrap();
        ingest
            .video(t0, 4000 + 6000, &annex_b(&[delta]), &mut out2)
            .unwrap();
        assert_eq!(
            samples(&out2),
            [
                (TrackKind::Video, 3000, false),
                (TrackKind::Video, 6000, false)
            ]
        );
        // The same parameter sets again are not a new configuration.
        let mut out3 = Vec::new();
        ingest
            .video(t0, 13_000, &annex_b(&[&SPS, &PPS, idr]), &mut out3)
            .unwrap();
        assert_eq!(out3.len(), 1);
    }

    #[test]
    fn the_tracks_start_where_their_first_frames_arrived_and_wrap_cleanly() {
        let t0 = Instant::now();
        let mut ingest = WhipIngest::default();
        let mut out = Vec::new();
        ingest.opus(t0, u32::MAX - 479, &[0xfc], &mut out);
        ingest.opus(t0, 480, &[0xfc], &mut out);
        ingest.opus(t0, 0, &[0xfc], &mut out); // late: dropped
        let idr = annex_b(&[&SPS, &PPS, &[0x65, 0x88]]);
        let later = t0 + Duration::from_millis(40);
        ingest.video(later, 77, &idr, &mut out).unwrap();
        assert!(matches!(out[0], Ingested::Config(TrackConfig::Opus(_))));
        assert_eq!(
            samples(&out),
            [
                (TrackKind::Audio, 0, true),
                (TrackKind::Audio, 960, true),
                (TrackKind::Video, 3600, true),
            ]
        );
    }

    #[test]
    fn garbage_from_a_publisher_never_panics() {
        // A hostile publisher's frames: random bytes, random NAL units, with and without start
        // codes, against a few clocks. Nothing may panic; what comes out must be well formed.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let t0 = Instant::now();
        let mut ingest = WhipIngest::default();
        for round in 0..5_000 {
            let len = (next() % 300) as usize;
            let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 3 == 0 {
                // Something that looks like Annex B: start codes before random units.
                for unit in frame.clone().chunks(20) {
                    frame.extend_from_slice(&[0, 0, 0, 1]);
                    frame.extend_from_slice(unit);
                }
                frame.extend_from_slice(&[0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0, 0, 1, 0x68]);
                frame.extend_from_slice(&[0, 0, 1, 0x65, 0x88]);
            }
            let mut out = Vec::new();
            let at = t0 + std::time::Duration::from_millis(round);
            let _ = ingest.video(at, next() as u32, &frame, &mut out);
            ingest.opus(at, next() as u32, &frame, &mut out);
            for item in out {
                if let Ingested::Sample {
                    track: TrackKind::Video,
                    sample,
                } = item
                {
                    // Length-prefixed units that add up to the sample.
                    let mut rest = &sample.data[..];
                    while rest.len() >= 4 {
                        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                        assert!(n > 0 && n + 4 <= rest.len());
                        rest = &rest[4 + n..];
                    }
                    assert!(rest.is_empty());
                }
            }
        }
    }

    #[test]
    fn unreadable_parameter_sets_are_refused() {
        let mut ingest = WhipIngest::default();
        let bad = annex_b(&[&[0x67, 0x42], &PPS, &[0x65, 0x88]]);
        assert_eq!(
            ingest.video(Instant::now(), 0, &bad, &mut Vec::new()),
            Err(WhipError::BadParameterSets)
        );
    }

    /// A VP8 keyframe header of `width`x`height` (RFC 6386 §9.1) and some bytes.
    fn vp8_keyframe(width: u16, height: u16) -> Arc<[u8]> {
        let mut frame = vec![0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
        frame.extend_from_slice(&width.to_le_bytes());
        frame.extend_from_slice(&height.to_le_bytes());
        frame.extend_from_slice(&[0; 16]);
        Arc::from(frame)
    }

    #[test]
    fn vp8_waits_for_a_keyframe_and_its_keyframes_carry_their_size() {
        let t0 = Instant::now();
        let mut ingest = WhipIngest::default();
        let mut out = Vec::new();
        let inter: Arc<[u8]> = Arc::from(&[0x31, 0x02, 0x00, 0x11, 0x22][..]);
        assert_eq!(
            ingest.vp8(t0, 100, &inter, &mut out),
            Err(WhipError::NoKeyframe)
        );
        assert_eq!(ingest.waiting_frames, 1);
        // The scale bits (top two of each 16-bit field) are not part of the size.
        ingest
            .vp8(t0, 1000, &vp8_keyframe(0x4280, 360), &mut out)
            .unwrap();
        ingest.vp8(t0, 4000, &inter, &mut out).unwrap();
        ingest.vp8(t0, 2000, &inter, &mut out).unwrap(); // late: dropped
        ingest
            .vp8(t0, 7000, &vp8_keyframe(320, 180), &mut out)
            .unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|i| match i {
                Ingested::Vp8 { sample, size } => (sample.dts, sample.keyframe, *size),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, true, Some((640, 360))),
                (3000, false, None),
                (6000, true, Some((320, 180)))
            ]
        );
        // A keyframe bit without the start code is not a keyframe.
        assert_eq!(
            vp8_keyframe_size(&[0x50, 0x42, 0, 1, 2, 3, 0, 0, 0, 0]),
            None
        );
        assert_eq!(vp8_keyframe_size(&[0x50, 0x42]), None);
    }
}
