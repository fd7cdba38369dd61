//! What live media sends between shards: ingest shard ↔ a stream's home shard, home → every
//! shard (index updates), and transcode worker → home (the rungs).
//!
//! Media payloads (samples, parts, init segments) travel as shared `Bytes`: publishing a part
//! to every shard copies a pointer per shard, never the bytes. Large variants are boxed so
//! that the mesh ring's slot stays small (see `shard::msg`).

use shardcast_engine::{ConnId, ShardId};
use shardcast_media::{IndexEvent, RungInfo, Sample, TrackConfig, TrackKind};
use std::sync::Arc;

/// Largest media message, in bytes (asserted below).
pub const MEDIA_MSG_MAX_BYTES: usize = 56;
const _: () = assert!(std::mem::size_of::<MediaMsg>() <= MEDIA_MSG_MAX_BYTES);

/// Media messages between shards (and from transcode workers).
pub enum MediaMsg {
    /// Ingest → home: a publisher asks to publish.
    Publish {
        stream: Arc<str>,
        conn: PublisherId,
        role: PublishRole,
        from: Box<PublishFrom>,
    },
    /// Home → ingest: the answer to `Publish`; or, to a connection that is publishing, an
    /// error that ends its publish (a new primary replaced it).
    PublishDecision {
        conn: PublisherId,
        decision: Result<(), &'static str>,
    },
    /// Ingest → home: a codec configuration from `conn`.
    Config {
        stream: Arc<str>,
        conn: PublisherId,
        config: Box<TrackConfig>,
    },
    /// Ingest → home: a sample from `conn`.
    Sample(Box<SampleMsg>),
    /// Ingest → home: `conn` stopped publishing.
    Unpublish { stream: Arc<str>, conn: PublisherId },
    /// WHIP ingest → home: a VP8 frame of `conn` (video track), for the stream's VP8 feed
    /// (`{stream}/vp8`) if WebRTC viewers watch it.
    Vp8(Box<SampleMsg>),
    /// Transcode worker → a WHIP publisher's shard: a `Config` or `Sample` of the publisher's
    /// video, made H.264 from its VP8, which the shard sends on to the home as its own.
    Converted(Box<MediaMsg>),
    /// Home → every shard: an index update.
    Index {
        stream: Arc<str>,
        event: Box<IndexEvent>,
    },
    /// Transcode worker → home: a rung's header, part or segment.
    RungEvent {
        stream: Arc<str>,
        epoch: u64,
        event: Box<IndexEvent>,
    },
    /// Transcode worker → home: the rungs' facts (every second).
    RungStats {
        stream: Arc<str>,
        epoch: u64,
        rungs: Vec<RungInfo>,
    },
    /// Transcode worker → home: everything of session `epoch` has been sent.
    RungEnded { stream: Arc<str>, epoch: u64 },
    /// Recorder thread → HTTP shard: the answer to a read of a recording (or the list) for a
    /// connection that waits for it.
    RecordingAnswer(Box<RecordingAnswer>),
    /// HTTP shard → the shard holding a WHEP session: end it (a DELETE of its resource).
    WhepDelete { id: Box<str>, conn: ConnId },
    /// Back to the HTTP shard: whether there was such a session.
    WhepDeleted { conn: ConnId, found: bool },
    /// A shard with WebRTC sessions of `feed` (a stream, or `{stream}/{rung}` for viewers
    /// pinned to a rung) → the stream's home: send the feed's samples here (`watching`), or
    /// stop (its last session of the feed ended).
    RtcWatch { feed: Arc<str>, watching: Watching },
    /// Transcode worker → home: for the stream's WebRTC viewers, of session `epoch`, an Opus
    /// packet (of an AAC source), the rung that stands in for a source with B-frames (`rung`
    /// None) or a rung viewers pinned (`rung`): its configuration, then its samples from a
    /// keyframe on, on the stream's timeline.
    RtcTranscoded {
        stream: Arc<str>,
        epoch: u64,
        rung: Option<Arc<str>>,
        media: Box<RtcMedia>,
    },
    /// A shard whose WebRTC viewers of `feed` need a keyframe (a new viewer, a PLI) → the
    /// stream's home, which asks its publisher when it can be asked (WHIP), or the worker
    /// whose rung the feed is.
    KeyframeWanted { feed: Arc<str> },
    /// Home → the ingest shard of WHIP publisher `(key, serial)`: ask it for a keyframe.
    WhipKeyframe { key: u32, serial: u32 },
    /// A co-hosting feed's home → its program's home: the feed went live (a host joined the
    /// stage).
    StageJoin {
        feed: Arc<str>,
        /// The host's name: the feed's `?title=`.
        name: Option<Arc<str>>,
    },
    /// … or ended (the host left).
    StageLeave { feed: Arc<str> },
    /// Program home → a feed's home: send the feed's configurations and samples to the
    /// stage's transcode thread `worker`, or stop (None).
    StageWatch {
        feed: Arc<str>,
        worker: Option<ShardId>,
    },
    /// A stage's transcode thread → the program's home: the host in `slot` went quiet (no
    /// sound for a while) or is heard again.
    StageMuted {
        program: Arc<str>,
        slot: u8,
        muted: Muted,
    },
    /// Home → each shard watching `feed`: a sample or a configuration of the active
    /// publisher (or of the feed's rung), on the stream's timeline.
    RtcMedia {
        feed: Arc<str>,
        media: Box<RtcMedia>,
    },
}

/// Whether a host is heard on the stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Muted {
    Yes,
    No,
}

/// Whether a shard has WebRTC sessions of a stream (and wants its samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watching {
    Yes,
    No,
}

/// What a home forwards to shards with WebRTC sessions.
#[derive(Clone)]
pub enum RtcMedia {
    /// The configuration the track's next samples follow.
    Config(TrackConfig),
    /// A sample; its bytes are shared.
    Sample { track: TrackKind, sample: Sample },
    /// An Opus packet (48 kHz ticks on the stream's timeline) from the transcode worker.
    Opus(Sample),
}

/// The recorder's answer for a connection: a body with its type and caching, or a status and
/// a short reason.
pub struct RecordingAnswer {
    pub conn: ConnId,
    pub answer: Result<RecordingBody, (u16, &'static str)>,
}

/// A file of a recording, or the list of them.
pub struct RecordingBody {
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: bytes::Bytes,
}

/// A publisher on its ingest shard: an RTMP connection, or a WHIP session (its place in the
/// shard's WebRTC table, and a serial that tells it from a later session in the same place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublisherId {
    Rtmp(ConnId),
    Whip {
        key: u32,
        serial: u32,
    },
    /// A co-hosted program's stage, on its transcode thread.
    Stage,
}

/// Who publishes, as the ingest shard saw it.
pub struct PublishFrom {
    /// The peer's address.
    pub remote: Arc<str>,
    /// `?title=` of the publish, checked (at most [`TITLE_MAX_CHARS`] characters, no control
    /// characters).
    pub title: Option<String>,
    /// A WHIP publisher that sends VP8 (its video reaches the home made H.264; WebRTC
    /// viewers can get the VP8 itself, `MediaMsg::Vp8`).
    pub vp8: bool,
}

/// Longest stream title.
pub const TITLE_MAX_CHARS: usize = 100;

/// Which role a publisher asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishRole {
    /// The stream's encoder.
    Primary,
    /// A stand-by that takes over when the active publisher stalls.
    Backup,
}

/// A sample on its way home.
pub struct SampleMsg {
    pub stream: Arc<str>,
    pub conn: PublisherId,
    pub track: TrackKind,
    pub sample: Sample,
    /// When the RTMP message carrying it was read, in milliseconds since the Unix epoch.
    pub received_wall_ms: u64,
}
