//! Stream names and where a stream lives.

use crate::common::placement::{home_shard, Kind};
use shardcast_engine::ShardId;

/// Stream names: letters, digits, `-`, `_`, `.`; at most this long.
pub const STREAM_NAME_MAX_BYTES: usize = 64;

/// True for names made of letters, digits, `-`, `_` and `.` (not starting with `.`), at most
/// [`STREAM_NAME_MAX_BYTES`] long, and for a co-hosting stage's feeds (`{name}~{digit}`, see
/// [`stage_feed`]).
pub fn is_valid_stream_name(name: &str) -> bool {
    let base = stage_feed(name).map_or(name, |(program, _)| program);
    !base.is_empty()
        && name.len() <= STREAM_NAME_MAX_BYTES
        && !base.starts_with('.')
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A co-hosting stage's feed, `{program}~{slot}` with one digit of slot (0: the program's
/// owner): the program's name and the slot. Each host publishes a feed; the program is their
/// composition.
pub fn stage_feed(name: &str) -> Option<(&str, u8)> {
    let (program, slot) = name.rsplit_once('~')?;
    match slot.as_bytes() {
        [digit @ b'0'..=b'9'] if !program.contains('~') => Some((program, digit - b'0')),
        _ => None,
    }
}

pub use crate::webrtc::feed::{is_vp8_feed, rtc_feed, VP8_RUNG};

/// A publish's `?title=` as kept: trimmed, at most [`super::msg::TITLE_MAX_CHARS`]
/// characters, no control characters; None when empty or not so. A co-host's feed's title is
/// the host's name on the stage.
pub fn publish_title(raw: &str) -> Option<String> {
    let title = raw.trim();
    let fits = title.chars().count() <= super::msg::TITLE_MAX_CHARS;
    (!title.is_empty() && fits && !title.chars().any(char::is_control)).then(|| title.to_string())
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
        for ok in [
            "a",
            "live-1",
            "Cam_2.main",
            &"x".repeat(64),
            "show~0",
            "show~3",
        ] {
            assert!(is_valid_stream_name(ok), "{ok}");
        }
        assert_eq!(stage_feed("show~3"), Some(("show", 3)));
        assert_eq!(stage_feed("show"), None);
        assert_eq!(rtc_feed("show"), ("show", None));
        assert_eq!(rtc_feed("show/360p"), ("show", Some("360p")));
        for bad in ["~1", "a~", "a~12", "a~x", "a~1~2", ".a~1", "a/b~1"] {
            assert!(!is_valid_stream_name(bad), "{bad}");
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
