//! Everything that travels on the mesh between shards and the control thread.

use crate::control::{ControlReply, ControlRequest};
use crate::danmaku_service::DanmakuMsg;
use crate::media_service::MediaMsg;

/// A mesh message.
pub enum ShardMsg {
    /// Danmaku: viewer shard ↔ room home shard.
    Danmaku(DanmakuMsg),
    /// Live media: ingest shard ↔ stream home shard, and index updates to every shard.
    Media(MediaMsg),
    /// Shard → control thread: blocking work.
    Control(ControlRequest),
    /// Control thread → shard: the answer.
    ControlReply(ControlReply),
}
