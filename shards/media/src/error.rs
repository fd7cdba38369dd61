//! The errors of this layer: what a publisher's bytes got wrong, what a caller fed out of order,
//! and what a configuration got wrong.

use std::fmt;

use crate::TrackKind;

/// How a codec was named on the wire, for log lines and RTMP error descriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecTag {
    /// A legacy FLV `CodecID` (video) or `SoundFormat` (audio) nibble.
    Legacy(u8),
    /// An Enhanced RTMP FourCC.
    FourCc([u8; 4]),
}

impl fmt::Display for CodecTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecTag::Legacy(id) => write!(f, "FLV codec id {id}"),
            CodecTag::FourCc(code) => {
                f.write_str("FourCC '")?;
                for &byte in code {
                    if byte.is_ascii_graphic() || byte == b' ' {
                        write!(f, "{}", byte as char)?;
                    } else {
                        write!(f, "\\x{byte:02x}")?;
                    }
                }
                f.write_str("'")
            }
        }
    }
}

/// Why a tag body or a codec configuration was refused.
///
/// Every variant is the publisher's fault (or its encoder's). None of them is fatal to the
/// process; whether one is fatal to the stream is the caller's choice: an
/// [`UnsupportedCodec`](MediaError::UnsupportedCodec) should end the publish with an RTMP error
/// naming the codec, while a single [`Truncated`](MediaError::Truncated) frame may be dropped
/// and logged. Tag bodies arrive whole inside RTMP messages, so "truncated" here means bad
/// bytes, never "wait for more".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The data ended inside a field that must be there.
    #[error("{what} is truncated")]
    Truncated {
        /// The structure being read.
        what: &'static str,
    },
    /// A field holds a value its specification forbids.
    #[error("invalid {what}")]
    Invalid {
        /// The field or structure.
        what: &'static str,
    },
    /// The codec is recognised but not packaged by shardcast.
    #[error("unsupported {kind} codec {name} ({tag})")]
    UnsupportedCodec {
        /// Whether it is a video or an audio codec.
        kind: TrackKind,
        /// A human-readable codec name, for the log line and the RTMP error.
        name: &'static str,
        /// How the codec was named on the wire.
        tag: CodecTag,
    },
    /// A valid feature of the container or codec that shardcast does not handle (an Enhanced
    /// RTMP multitrack message, an MPEG-2 TS sequence start, a 3-byte NAL length …).
    #[error("unsupported {what}")]
    Unsupported {
        /// The feature.
        what: &'static str,
    },
    /// A value is larger than shardcast accepts (a picture dimension, a list length).
    #[error("{what} of {seen} exceeds the limit of {limit}")]
    TooLarge {
        /// The quantity.
        what: &'static str,
        /// The largest value accepted.
        limit: u64,
        /// The value seen.
        seen: u64,
    },
    /// A coded frame arrived before any sequence header of its track, so it cannot be decoded.
    #[error("{kind} frame before its sequence header")]
    MissingSequenceHeader {
        /// The track.
        kind: TrackKind,
    },
    /// A coded frame names a different codec than the track's sequence header.
    #[error("{kind} frame codec does not match its sequence header")]
    CodecMismatch {
        /// The track.
        kind: TrackKind,
    },
}

/// Why the [`Segmenter`](crate::Segmenter) refused an input.
///
/// The segmenter stays usable after any of these: the refused input is dropped and nothing
/// else changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SegmenterError {
    /// A sample arrived for a track that has no codec configuration yet.
    #[error("{track} sample before the track's codec configuration")]
    NoConfig {
        /// The track.
        track: TrackKind,
    },
    /// A sample is larger than a whole segment may be.
    #[error("{track} sample of {seen} bytes exceeds segment_max_bytes of {limit}")]
    SampleTooLarge {
        /// The track.
        track: TrackKind,
        /// `segment_max_bytes` less the fragment headers.
        limit: usize,
        /// The sample's size.
        seen: usize,
    },
    /// A sample's decode time is further behind the track's previous one than
    /// [`SegmenterConfig::dts_backwards_max_ms`](crate::SegmenterConfig::dts_backwards_max_ms).
    /// Smaller steps back are absorbed (see [`Segmenter::handle_sample`](crate::Segmenter::handle_sample)).
    #[error("{track} decode time went back from {previous} to {dts} ticks")]
    DtsBackwards {
        /// The track.
        track: TrackKind,
        /// The previous sample's decode time, in the track's timescale.
        previous: u64,
        /// This sample's decode time, in the track's timescale.
        dts: u64,
    },
    /// An input arrived after [`Segmenter::handle_end`](crate::Segmenter::handle_end).
    #[error("input after the end of the stream")]
    Ended,
}

/// Why a [`SegmenterConfig`](crate::SegmenterConfig) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field that must admit something is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// Two fields are in the wrong order (for example a part target above the segment target).
    #[error("{smaller} ({smaller_value}) must not exceed {larger} ({larger_value})")]
    Order {
        /// The field that must be the smaller.
        smaller: &'static str,
        /// Its value.
        smaller_value: u64,
        /// The field that must be the larger.
        larger: &'static str,
        /// Its value.
        larger_value: u64,
    },
    /// A field is above its ceiling.
    #[error("{field} ({value}) exceeds the ceiling of {ceiling}")]
    OverCeiling {
        /// The field's name.
        field: &'static str,
        /// The configured value.
        value: u64,
        /// The ceiling.
        ceiling: u64,
    },
}
