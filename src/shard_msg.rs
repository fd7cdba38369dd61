//! Everything that travels on the mesh between shards and the control thread.

use crate::control::{ControlReply, ControlRequest};
use crate::danmaku_service::DanmakuMsg;
use crate::media_service::MediaMsg;

/// The home shard of the thing `kind` named `name` (a room, a stream): SipHash with fixed
/// keys, so every thread maps it to the same shard; `kind` keeps a room and a stream of the
/// same name apart.
pub fn home_shard(kind: &str, name: &str, shards: usize) -> shardcast_engine::ShardId {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (kind, name).hash(&mut hasher);
    shardcast_engine::ShardId((hasher.finish() % shards as u64) as u16)
}

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
