//! What edge shards and the edge's fetcher thread send each other.
//!
//! A shard asks for an object by its key (the path and the query an origin is asked with);
//! the fetcher answers every shard that asked with the object's head, its bytes as they
//! arrive, and its end, or with a status when no origin could answer. Bytes travel as shared
//! `Bytes`: one copy per edge, whatever the number of shards and viewers.

use bytes::Bytes;
use std::sync::Arc;

/// Shard → fetcher.
pub enum EdgeRequest {
    /// The object at `key`, for this shard. Exactly one [`EdgeReply::End`] or
    /// [`EdgeReply::Failed`] answers it.
    Fetch(Box<FetchRequest>),
}

/// One object asked for.
pub struct FetchRequest {
    /// `/live/{stream}/…` with the query the origin must see (`_HLS_msn`, `_HLS_part`, `v`).
    pub key: Arc<str>,
    /// The stream it belongs to (which origin holds it).
    pub stream: Arc<str>,
    /// Whether an origin may hold the request until the media exists.
    pub wait: OriginWait,
}

/// How long an origin may take to begin an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginWait {
    /// At once (a playlist without `_HLS_msn`, an init segment, an MPD): the dynamic origin
    /// timeout applies.
    Immediate,
    /// Maybe after media is made (a blocking reload, a part or segment not yet complete):
    /// `edge.blocking_timeout_ms` applies.
    Blocking,
}

/// Fetcher → shard.
pub enum EdgeReply {
    /// The answer's head; [`EdgeReply::Body`] and then [`EdgeReply::End`] follow.
    Head { key: Arc<str>, head: ObjectHead },
    /// The next bytes of the body, in order.
    Body { key: Arc<str>, bytes: Bytes },
    /// The body is complete (`Ok`: how much longer, in milliseconds, it may be served from a
    /// cache) or was cut short (`Err`, why): what was sent is not whole.
    End {
        key: Arc<str>,
        outcome: Result<u64, &'static str>,
    },
    /// No answer from any origin: answer the viewer with this status.
    Failed {
        key: Arc<str>,
        status: u16,
        reason: &'static str,
    },
}

/// What a shard needs to answer viewers with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    /// The origin's status (200, or an error status passed on).
    pub status: u16,
    pub content_type: &'static str,
    /// The body's length when the origin said it (else it comes as it is made).
    pub length: Option<u64>,
    /// The origin's `Cache-Control: max-age`, in milliseconds (none: `no-cache`, or not said).
    pub max_age_ms: Option<u64>,
}

/// Home shard → relay thread, on an origin that registers its streams in Redis
/// (`state.origin_advertise`): a stream went live here, or ended.
pub enum OriginMapMsg {
    Live(Arc<str>),
    Ended(Arc<str>),
}
