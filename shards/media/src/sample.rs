//! The access unit model: [`Sample`], and the clocks that turn RTMP's 32-bit millisecond
//! timestamps into 64-bit track ticks ([`TimestampUnwrapper`], [`AudioClock`]).
//!
//! Timescales: video runs at 90 kHz ([`VIDEO_TIMESCALE`](crate::codec::VIDEO_TIMESCALE)),
//! audio at its sampling rate. Every time in a [`Sample`] is in its track's ticks.

use bytes::Bytes;

/// One access unit of one track, in decode order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in the track's timescale, extended to 64 bits.
    pub dts: u64,
    /// Presentation time minus decode time, in ticks. Signed: B-frames are written with
    /// `trun` version 1, whose composition offsets are signed.
    pub composition_offset: i32,
    /// Duration in ticks when known in advance (an AAC frame is 1024), otherwise 0.
    ///
    /// The segmenter derives every duration from the next sample's decode time; this value is
    /// used only for a sample whose successor has not arrived when its part must be written
    /// (the end of the stream, a stalled track).
    pub duration: u32,
    /// Whether the sample is a sync sample: an IDR (H.264) or IRAP (H.265) picture, or any
    /// audio frame.
    pub keyframe: bool,
    /// The sample's bytes: length-prefixed NAL units for video, one raw AAC frame for audio.
    pub data: Bytes,
}

impl Sample {
    /// The presentation time in ticks (may be negative for a stream that starts with
    /// negative composition offsets; saturating at the ends of the range, which only
    /// hostile timestamps reach).
    pub fn pts(&self) -> i64 {
        let dts = i64::try_from(self.dts).unwrap_or(i64::MAX);
        dts.saturating_add(i64::from(self.composition_offset))
    }
}

/// Converts milliseconds to ticks of `timescale`, rounding to nearest.
pub fn ms_to_ticks(ms: u64, timescale: u32) -> u64 {
    ((u128::from(ms) * u128::from(timescale) + 500) / 1000) as u64
}

/// Converts ticks of `timescale` to milliseconds, rounding to nearest.
///
/// # Panics
///
/// If `timescale` is zero.
pub fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    assert!(timescale > 0, "a timescale is never zero");
    ((u128::from(ticks) * 1000 + u128::from(timescale) / 2) / u128::from(timescale)) as u64
}

/// Extends RTMP's millisecond timestamps to 64 bits across wraps.
///
/// Two wraps happen in practice. The RTMP timestamp is 32 bits and wraps at 2^32 ms (49.7
/// days). But publishers that build their RTMP messages from FLV tags (ffmpeg's FLV muxer,
/// OBS's FLV muxer, then librtmp or ffmpeg's RTMP writer) write the tag timestamp's top byte
/// masked with 0x7F, so their timestamps are 31 bits and wrap at 2^31 ms (24.8 days): ffmpeg
/// sends 2147483645 (0x7FFFFFFD) and then 4, in a type 0 header.
///
/// The rule: the first timestamp is taken as it is. Each later one is read as a step from the
/// previous timestamp received, both modulo 2^32 and modulo 2^31, each as the step of smallest
/// magnitude in its modulus (forward when less than half the modulus ahead, backward
/// otherwise), and the smaller of the two readings wins (the 2^32 one on a tie). Steps under
/// 2^30 ms (12.4 days) read the same either way; the two readings differ only at a wrap. So
/// 4294967290 followed by 5 is 11 ms forward (4294967301), 2147483645 followed by 4 is 7 ms
/// forward (2147483652), and 1000 followed by 990 is 10 ms back. Backward steps are returned as
/// they are (clamped at zero), because they happen for real: audio and video share one
/// timestamp line but arrive on separate chunk streams, so their interleaving jitters by a few
/// milliseconds, across a wrap too. Use one unwrapper for all tracks of a stream;
/// [`Segmenter`](crate::Segmenter) decides what a step back within a track means.
#[derive(Clone, Debug, Default)]
pub struct TimestampUnwrapper {
    /// The last timestamp received and its extended value, before clamping at zero.
    last: Option<(u32, i64)>,
}

impl TimestampUnwrapper {
    /// An unwrapper that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The 64-bit value of `timestamp_ms`; see the type's documentation for the rule.
    pub fn unwrap(&mut self, timestamp_ms: u32) -> u64 {
        let extended = match self.last {
            None => i64::from(timestamp_ms),
            Some((previous, extended)) => {
                extended.saturating_add(shortest_step(previous, timestamp_ms))
            }
        };
        self.last = Some((timestamp_ms, extended));
        clamp_at_zero(extended)
    }

    /// The last value returned, if any.
    pub fn last(&self) -> Option<u64> {
        self.last.map(|(_, extended)| clamp_at_zero(extended))
    }
}

/// The step from timestamp `from` to timestamp `to`, in milliseconds: the shorter of the
/// readings modulo 2^32 and modulo 2^31 (see [`TimestampUnwrapper`]).
fn shortest_step(from: u32, to: u32) -> i64 {
    let difference = to.wrapping_sub(from);
    let modulo_32 = i64::from(difference as i32);
    // Sign-extend the low 31 bits: the step modulo 2^31, in -2^30..2^30.
    let modulo_31 = i64::from(((difference << 1) as i32) >> 1);
    if modulo_31.abs() < modulo_32.abs() {
        modulo_31
    } else {
        modulo_32
    }
}

/// An extended value as returned: a stream that starts with steps back stays at zero.
fn clamp_at_zero(extended: i64) -> u64 {
    u64::try_from(extended).unwrap_or(0)
}

/// Rebuilds exact audio decode times from the frame count.
///
/// RTMP timestamps are whole milliseconds, and an AAC frame at 48 kHz lasts 21.333 ms, so
/// converting each timestamp on its own gives durations that alternate between 1008 and 1056
/// ticks. Instead each frame is placed `frame_samples` ticks after the previous one, and the
/// RTMP timestamp is only used to re-anchor: when it disagrees with the expected time by more
/// than half a frame plus one millisecond of rounding, the encoder skipped or repeated audio
/// and the measured time wins. Rounding never triggers a re-anchor; a single lost frame
/// always does.
#[derive(Clone, Debug)]
pub struct AudioClock {
    sample_rate: u32,
    frame_samples: u32,
    next_dts: Option<u64>,
}

impl AudioClock {
    /// A clock for a track at `sample_rate` Hz with `frame_samples` ticks per frame.
    ///
    /// # Panics
    ///
    /// If either is zero (the AAC parser never produces that).
    pub fn new(sample_rate: u32, frame_samples: u32) -> Self {
        assert!(sample_rate > 0 && frame_samples > 0);
        Self {
            sample_rate,
            frame_samples,
            next_dts: None,
        }
    }

    /// The decode time, in ticks, of the frame stamped `timestamp_ms` (already unwrapped).
    pub fn dts(&mut self, timestamp_ms: u64) -> u64 {
        let measured = ms_to_ticks(timestamp_ms, self.sample_rate);
        let tolerance = u64::from(self.frame_samples / 2) + u64::from(self.sample_rate / 1000);
        let dts = match self.next_dts {
            Some(expected) if expected.abs_diff(measured) <= tolerance => expected,
            _ => measured,
        };
        self.next_dts = Some(dts + u64::from(self.frame_samples));
        dts
    }

    /// Ticks per frame.
    pub fn frame_samples(&self) -> u32 {
        self.frame_samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_extends_across_the_wrap() {
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(u32::MAX - 20), u64::from(u32::MAX) - 20);
        assert_eq!(u.unwrap(u32::MAX), u64::from(u32::MAX));
        assert_eq!(u.unwrap(5), (1u64 << 32) + 5);
        // A small step back across the wrap goes back, not forward by 49 days.
        assert_eq!(u.unwrap(u32::MAX - 2), u64::from(u32::MAX) - 2);
        assert_eq!(u.unwrap(40), (1u64 << 32) + 40);
        // Second wrap.
        let mut u = TimestampUnwrapper::new();
        let mut ts = 0u32;
        let mut expected = 0u64;
        for _ in 0..5 {
            ts = ts.wrapping_add(1 << 30);
            expected += 1 << 30;
            assert_eq!(u.unwrap(ts), expected);
        }
        assert_eq!(expected, 5 << 30);
    }

    #[test]
    fn unwrap_tolerates_small_backward_steps() {
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(1000), 1000);
        assert_eq!(u.unwrap(990), 990);
        assert_eq!(u.unwrap(1010), 1010);
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(3), 3);
        assert_eq!(u.unwrap(u32::MAX), 0, "clamped at zero");
    }

    /// What ffmpeg 5.1 sent at the wrap of `-output_ts_offset 4294961` (captured from the
    /// chunk stream): its FLV muxer keeps 31 bits, so 2147483645 is followed by 4, in a type 0
    /// header, on the video chunk stream then the audio one.
    #[test]
    fn unwrap_follows_the_31_bit_wrap_of_flv_publishers() {
        const WRAP: u64 = 1 << 31;
        let sent: [u32; 12] = [
            2147483581, 2147483585, 2147483603, 2147483619, 2147483624, 2147483645, 4, 19, 37, 40,
            61, 71,
        ];
        let mut u = TimestampUnwrapper::new();
        let got: Vec<u64> = sent.iter().map(|&ts| u.unwrap(ts)).collect();
        let expected: Vec<u64> = sent
            .iter()
            .map(|&ts| u64::from(ts) + if ts < 1000 { WRAP } else { 0 })
            .collect();
        assert_eq!(got, expected);
        // Interleaving jitter across that wrap: a late audio frame from before it goes back a
        // few milliseconds, not forward by 24.8 days.
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(2147483645), WRAP - 3);
        assert_eq!(u.unwrap(4), WRAP + 4);
        assert_eq!(u.unwrap(2147483640), WRAP - 8);
        assert_eq!(u.unwrap(19), WRAP + 19);
        // And the next 31-bit wrap, 24.8 days later, goes forward again.
        for step in 1..=8u32 {
            u.unwrap(19u32.wrapping_add(step << 28) & 0x7FFF_FFFF);
        }
        assert_eq!(u.last(), Some(2 * WRAP + 19));
    }

    #[test]
    fn audio_clock_is_exact_and_reanchors_on_gaps() {
        let mut clock = AudioClock::new(48_000, 1024);
        let ms = |n: u64| (n * 1024 * 1000) / 48_000; // what an encoder stamps, truncated
        for n in 0..100 {
            assert_eq!(clock.dts(ms(n)), n * 1024);
        }
        // Frame 100 is lost: frame 101 arrives and is placed by its timestamp.
        let dts = clock.dts(ms(101));
        assert!(dts.abs_diff(101 * 1024) < 48, "{dts}");
    }
}
