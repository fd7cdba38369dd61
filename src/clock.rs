//! Wall-clock time, for what leaves the process or must agree across threads: program date
//! times, token expiry, webhook bodies, the part-ready latency measured across shards.

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
