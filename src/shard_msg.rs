//! Everything that travels on the mesh between shards and the control thread.

use crate::control::{ControlReply, ControlRequest};
use crate::danmaku_service::DanmakuMsg;

/// A mesh message.
pub enum ShardMsg {
    /// Danmaku: viewer shard ↔ room home shard.
    Danmaku(DanmakuMsg),
    /// Shard → control thread: blocking work.
    Control(ControlRequest),
    /// Control thread → shard: the answer.
    ControlReply(ControlReply),
}
