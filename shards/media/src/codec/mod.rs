//! Codec configurations: what the decoder configuration records and parameter sets say, how
//! they are named in `CODECS` strings, and how samples are framed.
//!
//! - [`parse_avcc`] / [`parse_avc_sps`]: H.264 `avcC` and SPS.
//! - [`parse_hvcc`] / [`parse_hevc_sps`]: H.265 `hvcC` and SPS.
//! - [`parse_audio_specific_config`]: AAC `AudioSpecificConfig`.
//! - [`NalUnits`] and [`scan_sample`]: length-prefixed NAL units and keyframe detection.
//! - [`inband_config`]: the configuration a keyframe's in-band parameter sets call for when
//!   they describe another picture than the track's.
//! - [`BitReader`]: exp-Golomb codes over NAL payloads with emulation prevention removed.
//! - [`estimate_frame_rate`]: the frame rate from decode times, for streams whose SPS has no
//!   timing information.

mod aac;
mod annexb;
mod avc;
mod hevc;
mod inband;
mod nal;
mod opus;

pub use crate::bits::BitReader;
pub use aac::{parse_audio_specific_config, AacConfig};
pub use annexb::{avcc_from_annexb, hvcc_from_annexb, nal_units, to_length_prefixed};
pub use avc::{parse_avc_sps, parse_avcc, AvcConfig, AvcSps};
pub use hevc::{parse_hevc_sps, parse_hvcc, HevcConfig, HevcSps, ProfileTierLevel};
pub use inband::inband_config;
pub use nal::{avc_nal_type, hevc_nal_type, is_random_access, scan_sample, NalUnits};
pub use opus::{parse_opus_head, OpusConfig, OPUS_SAMPLE_RATE};

use bytes::Bytes;

use crate::{MediaError, TrackKind};

/// The largest picture width or height accepted, in pixels. Level 6.2 of both codecs tops out
/// at 8192 × 4320; twice that leaves room without letting a forged SPS claim 4-billion-pixel
/// pictures that later arithmetic would have to survive.
pub const DIMENSION_MAX: u32 = 16384;

/// The video codecs shardcast packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264/AVC, packaged as `avc1`.
    Avc,
    /// H.265/HEVC, packaged as `hvc1` (parameter sets in the sample entry).
    Hevc,
}

/// What a sequence parameter set says about the pictures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoInfo {
    /// Displayed width in pixels, after cropping (conformance window).
    pub width: u32,
    /// Displayed height in pixels, after cropping; for interlaced H.264, the frame height.
    pub height: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8, 10 …).
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Field coding (H.264 `frame_mbs_only_flag` clear, H.265 `field_seq_flag` set).
    pub interlaced: bool,
    /// The frame rate from VUI timing information, when the encoder wrote it. Without it the
    /// caller measures the rate with [`estimate_frame_rate`].
    pub frame_rate: Option<FrameRate>,
    /// The sample (pixel) aspect ratio from the VUI, when given.
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// Colour description from the VUI, when given.
    pub colour: Option<Colour>,
}

/// Colour properties from the VUI (ISO/IEC 23091-2 code points), written to the `colr` box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour {
    /// `colour_primaries` (1 BT.709, 9 BT.2020; 2 unspecified).
    pub primaries: u8,
    /// `transfer_characteristics` (1 BT.709, 16 PQ, 18 HLG; 2 unspecified).
    pub transfer: u8,
    /// `matrix_coeffs` (1 BT.709, 9 BT.2020 NCL; 2 unspecified).
    pub matrix: u8,
    /// `video_full_range_flag`.
    pub full_range: bool,
}

/// A frame rate as an exact fraction of frames per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    /// Frames …
    pub numerator: u32,
    /// … per this many seconds. Never zero.
    pub denominator: u32,
}

impl FrameRate {
    /// The rate `time_scale / ticks_per_frame`, reduced; `None` when either is zero or the
    /// rate is outside 1 to 1000 frames per second (VUI values outside it are encoder noise).
    pub fn from_ticks(time_scale: u32, ticks_per_frame: u32) -> Option<FrameRate> {
        if time_scale == 0 || ticks_per_frame == 0 {
            return None;
        }
        let divisor = gcd(u64::from(time_scale), u64::from(ticks_per_frame)) as u32;
        let rate = FrameRate {
            numerator: time_scale / divisor,
            denominator: ticks_per_frame / divisor,
        };
        (1.0..=1000.0).contains(&rate.as_f64()).then_some(rate)
    }

    /// Frames per second as a float, for logs and validation.
    pub fn as_f64(&self) -> f64 {
        f64::from(self.numerator) / f64::from(self.denominator)
    }
}

/// Broadcast and camera rates that a measured rate snaps to.
const COMMON_FRAME_RATES: [(u32, u32); 17] = [
    (10, 1),
    (12, 1),
    (15, 1),
    (20, 1),
    (24000, 1001),
    (24, 1),
    (25, 1),
    (30000, 1001),
    (30, 1),
    (48, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
    (90, 1),
    (100, 1),
    (120, 1),
    (144, 1),
];

/// Estimates the frame rate from the decode times of consecutive frames (at least two,
/// strictly increasing, in `timescale` ticks per second).
///
/// The mean interval over the window is used, so millisecond rounding of RTMP timestamps
/// averages out: over a 2-second window the error is at most 0.05 %. A result within 0.2 % of
/// a common rate (24000/1001, 25, 30000/1001, 60 …) snaps to it; the nearest common rate wins,
/// which tells 29.97 from 30 once the window spans a second or more. Anything else comes back
/// to a thousandth of a frame per second. `None` if the window is too short, not increasing,
/// or gives a rate outside 1 to 1000 frames per second.
pub fn estimate_frame_rate(dts: &[u64], timescale: u32) -> Option<FrameRate> {
    let (&first, &last) = (dts.first()?, dts.last()?);
    if dts.len() < 2 || last <= first || timescale == 0 {
        return None;
    }
    let frames = (dts.len() - 1) as f64;
    let fps = frames * f64::from(timescale) / (last - first) as f64;
    let nearest = COMMON_FRAME_RATES
        .iter()
        .map(|&(n, d)| (n, d, (fps / (f64::from(n) / f64::from(d)) - 1.0).abs()))
        .min_by(|a, b| a.2.total_cmp(&b.2))?;
    if nearest.2 <= 0.002 {
        return Some(FrameRate {
            numerator: nearest.0,
            denominator: nearest.1,
        });
    }
    let milli_fps = (fps * 1000.0).round();
    if !(1000.0..=1_000_000.0).contains(&milli_fps) {
        return None;
    }
    FrameRate::from_ticks(milli_fps as u32, 1000)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Checks a derived picture dimension: present (cropping did not exceed the coded size),
/// non-zero and at most [`DIMENSION_MAX`].
fn check_dimension(value: Option<u64>, what: &'static str) -> Result<u32, MediaError> {
    match value {
        None | Some(0) => Err(MediaError::Invalid { what }),
        Some(v) if v > u64::from(DIMENSION_MAX) => Err(MediaError::TooLarge {
            what,
            limit: u64::from(DIMENSION_MAX),
            seen: v,
        }),
        Some(v) => Ok(v as u32),
    }
}

/// The codec configuration of one track: what its CMAF header is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackConfig {
    /// H.264 video.
    Avc(AvcConfig),
    /// H.265 video.
    Hevc(HevcConfig),
    /// AAC audio.
    Aac(AacConfig),
    /// Opus audio (transcoded renditions).
    Opus(OpusConfig),
}

/// The timescale of every video track, in ticks per second: 90 kHz, so that millisecond RTMP
/// timestamps (90 ticks each) and common frame durations (3000 at 30 fps, 3003 at 29.97,
/// 3600 at 25, 1500 at 60) are exact.
pub const VIDEO_TIMESCALE: u32 = 90_000;

impl TrackConfig {
    /// Whether this is the video or the audio track.
    pub fn kind(&self) -> TrackKind {
        match self {
            TrackConfig::Avc(_) | TrackConfig::Hevc(_) => TrackKind::Video,
            TrackConfig::Aac(_) | TrackConfig::Opus(_) => TrackKind::Audio,
        }
    }

    /// The track's timescale: [`VIDEO_TIMESCALE`] for video, the sampling rate for audio
    /// (so that one AAC frame is exactly 1024 ticks).
    pub fn timescale(&self) -> u32 {
        match self {
            TrackConfig::Avc(_) | TrackConfig::Hevc(_) => VIDEO_TIMESCALE,
            TrackConfig::Aac(aac) => aac.sample_rate,
            TrackConfig::Opus(_) => OPUS_SAMPLE_RATE,
        }
    }

    /// The RFC 6381 `CODECS` value for playlists and MPDs.
    pub fn codec_string(&self) -> String {
        match self {
            TrackConfig::Avc(avc) => avc.codec_string(),
            TrackConfig::Hevc(hevc) => hevc.codec_string(),
            TrackConfig::Aac(aac) => aac.codec_string(),
            TrackConfig::Opus(opus) => opus.codec_string(),
        }
    }

    /// The decoder configuration record exactly as received.
    pub fn record(&self) -> &Bytes {
        match self {
            TrackConfig::Avc(avc) => &avc.record,
            TrackConfig::Hevc(hevc) => &hevc.record,
            TrackConfig::Aac(aac) => &aac.record,
            TrackConfig::Opus(opus) => &opus.record,
        }
    }

    /// The picture properties, for video.
    pub fn video(&self) -> Option<&VideoInfo> {
        match self {
            TrackConfig::Avc(avc) => Some(&avc.sps_info.video),
            TrackConfig::Hevc(hevc) => Some(&hevc.sps_info.video),
            TrackConfig::Aac(_) | TrackConfig::Opus(_) => None,
        }
    }

    /// The video codec and NAL length size, for video.
    pub fn video_codec(&self) -> Option<(VideoCodec, u8)> {
        match self {
            TrackConfig::Avc(avc) => Some((VideoCodec::Avc, avc.nal_length_size)),
            TrackConfig::Hevc(hevc) => Some((VideoCodec::Hevc, hevc.nal_length_size)),
            TrackConfig::Aac(_) | TrackConfig::Opus(_) => None,
        }
    }

    /// The AAC configuration, for AAC audio.
    pub fn audio(&self) -> Option<&AacConfig> {
        match self {
            TrackConfig::Aac(aac) => Some(aac),
            _ => None,
        }
    }

    /// The output sample rate and channel count, for audio.
    pub fn audio_format(&self) -> Option<(u32, u8)> {
        match self {
            TrackConfig::Aac(aac) => Some((aac.sample_rate, aac.channel_config.max(1))),
            TrackConfig::Opus(opus) => Some((OPUS_SAMPLE_RATE, opus.channels)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rate_estimates_snap_to_common_rates() {
        let at_ms = |ms: &[u64]| ms.iter().map(|m| m * 90).collect::<Vec<_>>();
        // 30 fps in rounded milliseconds.
        let thirty: Vec<u64> = (0..61).map(|i| (i * 1000 + 15) / 30).collect();
        assert_eq!(
            estimate_frame_rate(&at_ms(&thirty), 90_000),
            Some(FrameRate {
                numerator: 30,
                denominator: 1
            })
        );
        // 29.97 fps over two seconds.
        let ntsc: Vec<u64> = (0..61).map(|i| i * 3003).collect();
        assert_eq!(
            estimate_frame_rate(&ntsc, 90_000),
            Some(FrameRate {
                numerator: 30000,
                denominator: 1001
            })
        );
        // An odd rate comes back to a thousandth.
        let odd: Vec<u64> = (0..11).map(|i| i * 4000).collect();
        assert_eq!(
            estimate_frame_rate(&odd, 90_000),
            Some(FrameRate {
                numerator: 45,
                denominator: 2
            })
        );
        assert_eq!(estimate_frame_rate(&[5], 90_000), None);
        assert_eq!(estimate_frame_rate(&[5, 5], 90_000), None);
    }

    #[test]
    fn vui_frame_rates_reduce() {
        assert_eq!(
            FrameRate::from_ticks(60, 2),
            Some(FrameRate {
                numerator: 30,
                denominator: 1
            })
        );
        assert_eq!(FrameRate::from_ticks(0, 2), None);
        assert_eq!(FrameRate::from_ticks(1, 1_000_000), None);
    }
}
