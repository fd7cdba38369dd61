//! Which shard owns a thing: a room's or a stream's *home*. Every thread computes the same
//! answer without asking anyone.

use shardcast_engine::ShardId;
use std::hash::{Hash, Hasher};

/// What is being placed: a room and a stream of the same name have separate homes.
#[derive(Clone, Copy, Debug, Hash)]
pub enum Kind {
    /// A danmaku room.
    Room,
    /// A live stream.
    Stream,
}

/// The home shard of `name`: SipHash with fixed keys (the same on every thread and every run),
/// modulo the number of shards.
pub fn home_shard(kind: Kind, name: &str, shards: usize) -> ShardId {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let tag = match kind {
        Kind::Room => "room",
        Kind::Stream => "stream",
    };
    (tag, name).hash(&mut hasher);
    ShardId((hasher.finish() % shards.max(1) as u64) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_stable_and_spread() {
        assert_eq!(
            home_shard(Kind::Room, "lobby", 4),
            home_shard(Kind::Room, "lobby", 4)
        );
        let used: std::collections::HashSet<u16> = (0..64)
            .map(|i| home_shard(Kind::Stream, &format!("s{i}"), 4).0)
            .collect();
        assert_eq!(used.len(), 4, "64 names land on every one of 4 shards");
        assert_eq!(home_shard(Kind::Room, "x", 1), ShardId(0));
    }
}
