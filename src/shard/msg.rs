//! Everything that travels on the mesh: the one enum that names every service's messages.
//!
//! Each service declares what it receives in its own `msg.rs`, which depends on nothing else
//! in this crate; services send with `cx.mesh_send(to, msg.into())` through the `From`
//! conversions below, so no service imports another service's code to talk to it.

use crate::control::msg::{ControlReply, ControlRequest};
use crate::danmaku::msg::DanmakuMsg;
use crate::edge::msg::{EdgeReply, EdgeRequest, OriginMapMsg};
use crate::media::msg::MediaMsg;
use crate::record::msg::RecordMsg;
use crate::state::msg::{RelayReply, RelayRequest, StateReply, StateRequest};
use crate::transcode::msg::TranscodeMsg;
use shardcast_engine::mesh::Envelope;

/// A mesh message.
pub enum ShardMsg {
    /// Danmaku: viewer shard ↔ room home shard.
    Danmaku(DanmakuMsg),
    /// Live media: ingest shard ↔ stream home shard, index updates to every shard, and rungs
    /// from transcode workers.
    Media(MediaMsg),
    /// Home shard → transcode worker.
    Transcode(TranscodeMsg),
    /// Shard → control thread: blocking work.
    Control(ControlRequest),
    /// Control thread → shard: the answer.
    ControlReply(ControlReply),
    /// Shard → ledger thread.
    State(StateRequest),
    /// Ledger thread → shard: the answer.
    StateReply(StateReply),
    /// Home shard → relay thread (rooms across hosts).
    Relay(Box<RelayRequest>),
    /// Relay thread → shard.
    RelayReply(RelayReply),
    /// Home shard or HTTP shard → recorder thread.
    Record(RecordMsg),
    /// Edge shard → the edge's fetcher thread.
    Edge(EdgeRequest),
    /// Fetcher → edge shard.
    EdgeReply(Box<EdgeReply>),
    /// Home shard → relay thread: a stream to register in (or remove from) the origin map.
    OriginMap(OriginMapMsg),
}

/// Bytes one mesh ring slot takes: one message in its envelope. Every ring allocates
/// `engine.mesh_ring_capacity` slots of this size at start (the `engine.mesh_ring_capacity`
/// doc states it; this assertion keeps the doc true).
pub const MESH_SLOT_BYTES: usize = 64;
const _: () = assert!(std::mem::size_of::<Envelope<ShardMsg>>() <= MESH_SLOT_BYTES);

impl From<DanmakuMsg> for ShardMsg {
    fn from(msg: DanmakuMsg) -> Self {
        ShardMsg::Danmaku(msg)
    }
}

impl From<MediaMsg> for ShardMsg {
    fn from(msg: MediaMsg) -> Self {
        ShardMsg::Media(msg)
    }
}

impl From<TranscodeMsg> for ShardMsg {
    fn from(msg: TranscodeMsg) -> Self {
        ShardMsg::Transcode(msg)
    }
}

impl From<RecordMsg> for ShardMsg {
    fn from(msg: RecordMsg) -> Self {
        ShardMsg::Record(msg)
    }
}

impl From<ControlRequest> for ShardMsg {
    fn from(msg: ControlRequest) -> Self {
        ShardMsg::Control(msg)
    }
}

impl From<StateRequest> for ShardMsg {
    fn from(msg: StateRequest) -> Self {
        ShardMsg::State(msg)
    }
}

impl From<RelayRequest> for ShardMsg {
    fn from(msg: RelayRequest) -> Self {
        ShardMsg::Relay(Box::new(msg))
    }
}

impl From<EdgeRequest> for ShardMsg {
    fn from(msg: EdgeRequest) -> Self {
        ShardMsg::Edge(msg)
    }
}

impl From<ControlReply> for ShardMsg {
    fn from(msg: ControlReply) -> Self {
        ShardMsg::ControlReply(msg)
    }
}
