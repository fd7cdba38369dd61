//! Length-prefixed NAL units, the sample format of `avc1` and `hvc1` tracks (and of FLV).
//!
//! Samples are packaged exactly as they arrive: in-band parameter sets, SEI and access unit
//! delimiters stay inside them. For `avc1`, ISO/IEC 14496-15 allows parameter sets in samples
//! alongside the ones in the sample entry. For `hvc1`, a strict reading of its
//! `array_completeness = 1` wants them in the sample entry only; the copies encoders repeat
//! at keyframes are identical to it, and Safari, MSE players and FFmpeg decode them, so they
//! are kept too. Leaving the bytes alone is what lets a sample travel from the RTMP message to
//! the CMAF part without being rewritten; if a validator ever insists on stripping, this
//! iterator is where the filter goes, at the cost of one copy per keyframe. The scan here only
//! validates the framing and finds keyframes.

use super::VideoCodec;
use crate::MediaError;

/// The NAL units of one sample, each without its length prefix.
///
/// Yields an error (and then nothing) when a length prefix runs past the end of the data or a
/// NAL unit is empty.
#[derive(Clone, Debug)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    length_size: usize,
}

impl<'a> NalUnits<'a> {
    /// Iterates `data` with `length_size`-byte big-endian length prefixes (1, 2 or 4).
    ///
    /// # Panics
    ///
    /// If `length_size` is not 1, 2 or 4: the codec configuration parsers never produce
    /// another value.
    pub fn new(data: &'a [u8], length_size: u8) -> Self {
        assert!(
            matches!(length_size, 1 | 2 | 4),
            "NAL length size {length_size} is not 1, 2 or 4"
        );
        Self {
            data,
            length_size: usize::from(length_size),
        }
    }
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = Result<&'a [u8], MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let fail = |units: &mut Self, what| {
            units.data = &[];
            Some(Err(MediaError::Truncated { what }))
        };
        if self.data.len() < self.length_size {
            return fail(self, "NAL unit length prefix");
        }
        let (prefix, rest) = self.data.split_at(self.length_size);
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len == 0 {
            self.data = &[];
            return Some(Err(MediaError::Invalid {
                what: "empty NAL unit",
            }));
        }
        if rest.len() < len {
            return fail(self, "NAL unit");
        }
        let (nal, tail) = rest.split_at(len);
        self.data = tail;
        Some(Ok(nal))
    }
}

/// The `nal_unit_type` of an H.264 NAL unit (5 is an IDR slice, 7 SPS, 8 PPS, 9 AUD).
pub fn avc_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

/// The `nal_unit_type` of an H.265 NAL unit (16–23 IRAP, 32 VPS, 33 SPS, 34 PPS, 35 AUD).
pub fn hevc_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3F)
}

/// Whether a NAL unit type starts a random access point: an IDR slice in H.264; an IRAP
/// picture (BLA, IDR or CRA, types 16 to 23) in H.265.
pub fn is_random_access(codec: VideoCodec, nal: &[u8]) -> bool {
    match codec {
        VideoCodec::Avc => avc_nal_type(nal) == 5,
        VideoCodec::Hevc => (16..=23).contains(&hevc_nal_type(nal)),
    }
}

/// Validates the framing of a sample and reports whether it is a sync sample (contains a
/// random access picture, see [`is_random_access`]).
///
/// This, not the FLV frame type, decides the `sync` flag and where segments may start: some
/// encoders flag recovery-point I frames as keyframes, which cannot start a segment.
pub fn scan_sample(codec: VideoCodec, data: &[u8], length_size: u8) -> Result<bool, MediaError> {
    let mut sync = false;
    for nal in NalUnits::new(data, length_size) {
        sync |= is_random_access(codec, nal?);
    }
    Ok(sync)
}
