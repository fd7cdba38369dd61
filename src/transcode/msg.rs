//! What a stream's home shard sends its transcode worker. The worker answers with
//! `MediaMsg::{RungEvent, RungStats, RungEnded}` (see `media::msg`).

use shardcast_media::{Sample, TrackConfig, TrackKind};
use std::sync::Arc;

/// Largest transcode message, in bytes (asserted below).
pub const TRANSCODE_MSG_MAX_BYTES: usize = 40;
const _: () = assert!(std::mem::size_of::<TranscodeMsg>() <= TRANSCODE_MSG_MAX_BYTES);

/// Home → transcode worker.
pub enum TranscodeMsg {
    /// Transcode `stream` (session `epoch`) from this source configuration (again when it
    /// changes): video feeds the ladder, audio the Opus rendition.
    Start {
        stream: Arc<str>,
        epoch: u64,
        config: Box<TrackConfig>,
    },
    /// A source sample as the source's segmenter placed it.
    Sample(Box<PlacedSample>),
    /// The stream ended: flush and answer with `RungEnded`.
    End { stream: Arc<str>, epoch: u64 },
    /// For the stream's WebRTC viewers: forward an H.264 rung to the home, or stop.
    Rtc(Box<RtcAsk>),
    /// For co-hosted `program`'s stage (see `transcode::stage`).
    Stage { program: Arc<str>, op: Box<StageOp> },
    /// From a WHIP publisher's shard: its VP8 video, to be made H.264 (`transcode::convert`).
    Convert(Box<ConvertMsg>),
}

/// A WHIP publisher's VP8 video on its way to be made H.264. The worker sends what it makes
/// back to the publisher's shard (`MediaMsg::Converted`), which sends it home as the
/// publisher's video: the stream's home never sees VP8.
pub struct ConvertMsg {
    pub stream: Arc<str>,
    /// The WHIP publisher (its key and serial in the shard's WebRTC table).
    pub publisher: (u32, u32),
    pub op: ConvertOp,
}

/// What a [`ConvertMsg`] brings.
pub enum ConvertOp {
    /// A VP8 frame on the stream's timeline (90 kHz); a keyframe's picture size; when it
    /// arrived, in milliseconds since the Unix epoch.
    Frame {
        sample: Sample,
        size: Option<(u32, u32)>,
        wall_ms: u64,
    },
    /// The publisher stopped: what the encoder holds goes out, and the conversion ends.
    End,
}

/// What a co-hosted program's stage is told ([`TranscodeMsg::Stage`]).
pub enum StageOp {
    /// From the program's home: the live hosts' slots (bit `n`: `{program}~n`); the first
    /// starts the stage.
    Slots(u16),
    /// From a host's feed home: a configuration or sample of the feed in `slot`.
    Input { slot: u8, media: FeedMedia },
    /// From the program's home: a viewer needs a keyframe.
    Keyframe,
    /// From the program's home: no host left.
    End,
}

/// A host's feed on its way to the stage: as its publisher sent it.
pub enum FeedMedia {
    /// The configuration the track's next samples follow.
    Config(TrackConfig),
    /// A sample; its bytes are shared.
    Sample { track: TrackKind, sample: Sample },
}

/// A home's [`TranscodeMsg::Rtc`]: what its WebRTC viewers want of a rung of session
/// `epoch`. `rung` names one viewers pinned; None is the largest, which stands in for a
/// source with B-frames (WebRTC players do not reorder frames).
pub struct RtcAsk {
    pub stream: Arc<str>,
    pub epoch: u64,
    pub rung: Option<Arc<str>>,
    pub want: RtcWant,
}

/// What the home wants of a rung for WebRTC viewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcWant {
    /// Forward it (from a keyframe, with its configuration) and make its next picture a
    /// keyframe: a viewer joined or lost one. At most one forced keyframe per
    /// `RTC_KEYFRAME_GAP`; a want sooner waits for the gap.
    Keyframe,
    /// No viewers left: stop forwarding.
    Stop,
}

/// A source sample and where the source's segmenter put it.
pub struct PlacedSample {
    pub stream: Arc<str>,
    pub epoch: u64,
    pub track: TrackKind,
    pub sample: Sample,
    /// The source segment it went into.
    pub msn: u64,
    /// It started that segment.
    pub segment_start: bool,
    /// That segment follows a discontinuity.
    pub discontinuity: bool,
    /// When it reached the server, in milliseconds since the Unix epoch.
    pub wall_ms: u64,
}
