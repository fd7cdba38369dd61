//! Edge mode: `/live/…` served from a cache filled from origins.
//!
//! Two halves. On each shard (`crate::media::edge`) a viewer's request is answered from the
//! shard's own cache of objects, or waits on the shard's flight for that object; the first
//! miss on a shard asks the fetcher. The **fetcher** (this module, one thread per edge, on
//! the mesh like the ledger) is the single point every miss of every shard goes through:
//!
//! - a hit in its cache is answered at once;
//! - a miss joins the flight for the object if one is out (single-flight across shards), or
//!   starts one: one request to an origin, whose bytes go to every shard that asked as they
//!   arrive, and into the cache when complete;
//! - the origin is the one the origin map in Redis names ([`map`], with `edge.origin_map`),
//!   else the one that last answered for the stream, else the stream's place on a
//!   consistent-hash ring ([`ring`]); the next ones on the ring are its failover, tried on a
//!   refused connection, a timeout, a 5xx, or a 404 (the stream may live on another origin);
//! - an origin's timeout follows it (p95 of its recent answers + 20 %, [`origins`]), and 3
//!   failures in a row open its breaker for `edge.breaker_open_ms`.
//!
//! LL-HLS blocking reloads and preload hints are objects like any other (their key keeps
//! `_HLS_msn` and `_HLS_part`), so there is one outstanding origin request per (playlist,
//! msn, part) however many viewers wait on it. Playlists are kept no longer than
//! `edge.playlist_cache_ms` and their part duration.
//!
//! The fetcher sleeps in epoll (mio) on its sockets and its mesh doorbell. It uses no async
//! runtime; its origin connections are plain HTTP/1.1 with keep-alive (origins are on the
//! operator's network).

pub mod cache;
mod conn;
mod fetcher;
pub mod map;
pub mod msg;
pub mod origins;
pub mod ring;

pub use fetcher::run_fetcher;

use crate::common::auth::TokenKey;
use bytes::Bytes;
use msg::ObjectHead;
use std::net::SocketAddr;

/// How long the fetcher remembers which origin answered for a stream.
pub const PREFERRED_ORIGIN_MS: u64 = 10_000;

/// What the fetcher runs with (`[edge]`).
pub struct EdgeOptions {
    /// Origins' addresses and their names as configured.
    pub origins: Vec<(SocketAddr, String)>,
    pub virtual_nodes: u32,
    pub cache_window_ms: u64,
    pub cache_max_bytes: u64,
    pub object_max_bytes: u64,
    pub playlist_cache_ms: u64,
    pub origin_timeout_ms: u64,
    pub origin_timeout_min_ms: u64,
    pub blocking_timeout_ms: u64,
    pub breaker_open_ms: u64,
    pub origin_connections: usize,
    pub fetches_max: usize,
    /// With signed playback URLs: the key the edge signs its own requests to origins with.
    pub playback_tokens: Option<TokenKey>,
    /// `edge.origin_map`: where streams' origins are registered.
    pub origin_map: Option<map::OriginMapOptions>,
    pub counters: std::sync::Arc<EdgeCounters>,
}

crate::service_counters! {
    /// The edge fetcher's counters.
    pub struct EdgeCounters {
        /// Requests sent to origins.
        origin_requests: "counter",
        /// Origin requests that failed (refused, reset, timed out, 5xx, cut short).
        origin_failures: "counter",
        /// Origin requests that timed out.
        origin_timeouts: "counter",
        /// Times an origin's breaker opened (3 failures in a row).
        breaker_trips: "counter",
        /// Misses of shards answered from the fetcher's cache.
        fetcher_hits: "counter",
        /// Misses of shards that joined an object already being fetched.
        coalesced: "counter",
        /// Misses refused because edge.fetches_max objects were being fetched.
        fetches_refused: "counter",
        /// Bytes received from origins (bodies).
        origin_bytes: "counter",
        /// Bytes in the fetcher's cache.
        cache_bytes: "gauge",
        /// Objects in the fetcher's cache.
        cache_objects: "gauge",
        /// Objects being fetched.
        flights: "gauge",
    }
}

/// The origin-map entry of `stream` in Redis: the `ADDR:PORT` of the origin it is live on.
pub fn origin_key(prefix: &str, stream: &str) -> String {
    format!("{prefix}origin:{stream}")
}

/// The content types an edge passes on (anything else becomes `application/octet-stream`).
pub fn content_type(origin: Option<&str>) -> &'static str {
    let essence = origin
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    [
        "video/mp4",
        "application/vnd.apple.mpegurl",
        "application/dash+xml",
        "image/jpeg",
        "text/plain",
    ]
    .into_iter()
    .find(|known| known.eq_ignore_ascii_case(essence))
    .map_or("application/octet-stream", |known| {
        if known == "text/plain" {
            "text/plain; charset=utf-8"
        } else {
            known
        }
    })
}

/// `max-age` of a `Cache-Control` value, in milliseconds (`no-cache`/`no-store`: none).
pub fn max_age_ms(cache_control: Option<&str>) -> Option<u64> {
    let value = cache_control?;
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return None;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds.parse::<u64>().ok().map(|s| s.saturating_mul(1000));
        }
    }
    max_age
}

/// How long a complete object may be served from a cache: what the origin's `max-age` says
/// within the window; a playlist (no max-age) for `playlist_cache_ms` and never longer than
/// its `PART-TARGET`; an error status not at all.
pub fn keep_ms(head: &ObjectHead, chunks: &[Bytes], window_ms: u64, playlist_cache_ms: u64) -> u64 {
    if head.status != 200 {
        return 0;
    }
    if let Some(ms) = head.max_age_ms {
        return ms.min(window_ms);
    }
    match head.content_type {
        "application/vnd.apple.mpegurl" => {
            let part_ms = part_target_ms(chunks).unwrap_or(u64::MAX);
            playlist_cache_ms.min(part_ms)
        }
        "application/dash+xml" => playlist_cache_ms,
        _ => 0,
    }
}

/// `#EXT-X-PART-INF:PART-TARGET=…` of a media playlist, in milliseconds.
fn part_target_ms(chunks: &[Bytes]) -> Option<u64> {
    const TAG: &[u8] = b"#EXT-X-PART-INF:PART-TARGET=";
    let body: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let at = body.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let end = body[at..]
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b'.'))
        .map_or(body.len(), |n| at + n);
    let seconds: f64 = std::str::from_utf8(&body[at..end]).ok()?.parse().ok()?;
    Some((seconds * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(content_type: &'static str, max_age_ms: Option<u64>) -> ObjectHead {
        ObjectHead {
            status: 200,
            content_type,
            length: None,
            max_age_ms,
        }
    }

    #[test]
    fn objects_are_kept_as_their_origin_says_within_the_window() {
        let media = head(
            "video/mp4",
            max_age_ms(Some("public, max-age=600, immutable")),
        );
        assert_eq!(keep_ms(&media, &[], 60_000, 500), 60_000);
        assert_eq!(keep_ms(&media, &[], 900_000, 500), 600_000);
        let playlist = head(
            "application/vnd.apple.mpegurl",
            max_age_ms(Some("no-cache")),
        );
        let body = Bytes::from_static(b"#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.334\n#EXT-X-X\n");
        assert_eq!(
            keep_ms(&playlist, std::slice::from_ref(&body), 600_000, 500),
            334
        );
        assert_eq!(keep_ms(&playlist, &[body], 600_000, 200), 200);
        assert_eq!(
            keep_ms(&playlist, &[Bytes::from_static(b"#EXTM3U\n")], 1, 500),
            500
        );
        let mpd = head("application/dash+xml", None);
        assert_eq!(keep_ms(&mpd, &[], 600_000, 500), 500);
        let missing = ObjectHead {
            status: 404,
            ..media
        };
        assert_eq!(keep_ms(&missing, &[], 600_000, 500), 0);
    }

    #[test]
    fn content_types_are_known_ones_or_octet_stream() {
        assert_eq!(content_type(Some("video/mp4")), "video/mp4");
        assert_eq!(
            content_type(Some("Application/VND.apple.mpegurl; charset=x")),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type(Some("text/html")), "application/octet-stream");
        assert_eq!(content_type(None), "application/octet-stream");
    }
}
