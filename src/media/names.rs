//! Stream names and where a stream lives.

use crate::common::placement::{home_shard, Kind};
use shardcast_engine::ShardId;

/// Stream names: letters, digits, `-`, `_`, `.`; at most this long.
pub const STREAM_NAME_MAX_BYTES: usize = 64;

/// True for names made of letters, digits, `-`, `_` and `.` (not starting with `.`), at most
/// [`STREAM_NAME_MAX_BYTES`] long.
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= STREAM_NAME_MAX_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The home shard of `stream`.
pub fn home_of(stream: &str, shards: usize) -> ShardId {
    home_shard(Kind::Stream, stream, shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_safe_path_components() {
        for ok in ["a", "live-1", "Cam_2.main", &"x".repeat(64)] {
            assert!(is_valid_stream_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a b",
            "é",
            "..",
            &"x".repeat(65),
            "a?b",
        ] {
            assert!(!is_valid_stream_name(bad), "{bad}");
        }
    }
}
