//! Wall-clock time for threads that are not shards (boot, the CLI, transcode workers): what
//! leaves the process or must agree across threads, such as program date times, token expiry
//! and the part-ready latency measured across shards. Shard code reads `Ctx::wall_ms` instead,
//! so that its tests run on the engine's virtual clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 before it).
pub fn wall_s() -> u64 {
    wall_ms() / 1000
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
