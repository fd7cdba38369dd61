//! Edge mode on a shard: `/live/…` answered from this shard's cache of objects, or from the
//! edge's fetcher (`crate::edge`), which asks an origin once per object for the whole edge.
//!
//! A miss parks the request on this shard's flight for the object; only the first miss of a
//! flight sends a message to the fetcher. When the origin streams an object (a segment still
//! being made, answered with chunked transfer), waiters that can take it that way get its
//! bytes as they arrive; the others get it whole at the end.

use super::names::is_valid_stream_name;
use super::{Delivery, Media, MediaResponse};
use crate::common::counters::bump;
use crate::common::query::Query;
use crate::edge::cache::{CachedObject, ObjectCache};
use crate::edge::msg::{EdgeReply, EdgeRequest, FetchRequest, ObjectHead, OriginWait};
use crate::shard::msg::ShardMsg;
use bytes::Bytes;
use shardcast_engine::{ConnId, Ctx, ShardId};
use std::collections::HashMap;
use std::sync::Arc;

/// Query parameters that name a different object, and are passed to the origin; any other
/// (a player's cache-buster) is left out of the key, so it cannot multiply origin fetches.
const KEY_PARAMS: [&str; 4] = ["_HLS_msn", "_HLS_part", "_HLS_skip", "v"];
/// Longest key (path and query) an edge fetches.
const KEY_MAX_BYTES: usize = 512;

/// What an edge shard is built with.
#[derive(Debug)]
pub struct EdgeShardSettings {
    /// The fetcher's place on the mesh.
    pub fetcher: ShardId,
    /// Bound of each shard's cache (references to the fetcher's `Bytes`).
    pub cache_max_bytes: u64,
    /// The fetcher's counters (for `/metrics`).
    pub counters: Arc<crate::edge::EdgeCounters>,
    /// Longest silence from the fetcher about an object before its waiters are answered 504
    /// (the fetcher's own bounds, every origin's blocking timeout, plus a margin): a bound
    /// that holds even if the fetcher were gone.
    pub silence_max_ms: u64,
}

/// This shard's edge state.
pub struct EdgeShard {
    settings: Arc<EdgeShardSettings>,
    cache: ObjectCache,
    flights: HashMap<Arc<str>, LocalFlight>,
    ready: Vec<(ConnId, MediaResponse)>,
}

/// An object this shard asked the fetcher for, and the requests waiting on it.
struct LocalFlight {
    waiters: Vec<EdgeWaiter>,
    head: Option<ObjectHead>,
    chunks: Vec<Bytes>,
    /// When the waiters give up unless the fetcher says more.
    deadline_ms: u64,
}

struct EdgeWaiter {
    conn: ConnId,
    delivery: Delivery,
    /// The response began with chunked transfer.
    started: bool,
    /// `token=…` of the viewer, put in place of the edge's own in playlists.
    token_query: Option<String>,
}

impl EdgeShard {
    pub fn new(settings: Arc<EdgeShardSettings>) -> Self {
        EdgeShard {
            cache: ObjectCache::new(settings.cache_max_bytes),
            settings,
            flights: HashMap::new(),
            ready: Vec::new(),
        }
    }

    /// Answers ready for parked connections.
    pub fn take_ready(&mut self) -> Vec<(ConnId, MediaResponse)> {
        std::mem::take(&mut self.ready)
    }

    /// A parked connection closed.
    pub fn unpark(&mut self, conn: ConnId) {
        for flight in self.flights.values_mut() {
            flight.waiters.retain(|w| w.conn != conn);
        }
        self.ready.retain(|(c, _)| *c != conn);
    }

    /// Objects being fetched for this shard (for tests and metrics).
    pub fn flights(&self) -> usize {
        self.flights.len()
    }

    /// Answers the waiters of flights the fetcher went silent on; returns the next deadline.
    pub fn expire(&mut self, now_ms: u64) -> Option<u64> {
        let late: Vec<Arc<str>> = (self.flights.iter())
            .filter(|(_, f)| f.deadline_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(key) = late.first() {
            log::warn!(
                "edge: {} fetch(es) ({key}, ...) had no word from the fetcher in time; answering 504",
                late.len()
            );
        }
        for key in late {
            for waiter in self.flights.remove(&key).map_or(Vec::new(), |f| f.waiters) {
                let response = if waiter.started {
                    MediaResponse::StreamAbort
                } else {
                    MediaResponse::Status(504, "the origin did not answer in time")
                };
                self.ready.push((waiter.conn, response));
            }
        }
        self.flights.values().map(|f| f.deadline_ms).min()
    }
}

impl Media {
    /// `/live/…` on an edge. `path` is after `/live/`.
    pub(super) fn edge_request(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        path: &str,
        query: Query<'_>,
        delivery: Delivery,
    ) -> MediaResponse {
        let stream = path.split('/').next().unwrap_or("");
        if !is_valid_stream_name(stream) || path.split('/').any(|s| s.is_empty() || s == "..") {
            return MediaResponse::Status(404, "no such stream");
        }
        let token_query = match self.check_token(cx, stream, query) {
            Ok(q) => q,
            Err(status) => return status,
        };
        let Some(key) = object_key(path, query) else {
            return MediaResponse::Status(414, "request too long");
        };
        let cache_control = self.media_cache_control();
        let now = cx.now_ms();
        let counters = &self.settings.counters[self.shard.index()];
        let Some(edge) = self.edge.as_mut() else {
            return MediaResponse::Status(500, "not an edge");
        };
        if let Some((object, _)) = edge.cache.get(&key, now) {
            bump(&counters.edge_hits, 1);
            return whole(object, cache_control, token_query.as_deref());
        }
        bump(&counters.edge_misses, 1);
        let key: Arc<str> = Arc::from(key);
        let mut waiter = EdgeWaiter {
            conn,
            delivery,
            started: false,
            token_query,
        };
        if let Some(flight) = edge.flights.get_mut(&key) {
            let response = match flight.head {
                Some(head) if streams(&head, delivery) => {
                    waiter.started = true;
                    MediaResponse::StreamStart {
                        cache_control,
                        chunks: flight.chunks.clone(),
                        done: false,
                    }
                }
                _ => MediaResponse::Waiting,
            };
            flight.waiters.push(waiter);
            return response;
        }
        let deadline_ms = now + edge.settings.silence_max_ms;
        let flight = LocalFlight {
            waiters: vec![waiter],
            head: None,
            chunks: Vec::new(),
            deadline_ms,
        };
        edge.flights.insert(key.clone(), flight);
        let wait = origin_wait(&key);
        let request = FetchRequest {
            key,
            stream: Arc::from(stream),
            wait,
        };
        cx.mesh_send(
            edge.settings.fetcher,
            EdgeRequest::Fetch(Box::new(request)).into(),
        );
        self.arm_waiters_timer(cx, deadline_ms);
        MediaResponse::Waiting
    }

    /// What the fetcher says about an object this shard asked for.
    pub fn on_edge_reply(&mut self, cx: &mut Ctx<ShardMsg>, reply: EdgeReply) {
        let cache_control = self.media_cache_control();
        let now = cx.now_ms();
        let Some(edge) = self.edge.as_mut() else {
            debug_assert!(false, "an edge reply on a shard that is not an edge");
            return;
        };
        let silence_max_ms = edge.settings.silence_max_ms;
        match reply {
            EdgeReply::Head { key, head } => {
                edge.heard(&key, now + silence_max_ms);
                edge.head(&key, head, cache_control);
            }
            EdgeReply::Body { key, bytes } => {
                edge.heard(&key, now + silence_max_ms);
                edge.body(&key, bytes);
            }
            EdgeReply::End { key, outcome } => edge.end(key, outcome, now, cache_control),
            EdgeReply::Failed {
                key,
                status,
                reason,
            } => {
                for waiter in edge.flights.remove(&key).map_or(Vec::new(), |f| f.waiters) {
                    edge.ready
                        .push((waiter.conn, MediaResponse::Status(status, reason)));
                }
            }
        }
    }
}

impl EdgeShard {
    /// The fetcher said something about `key`: its waiters wait until `deadline_ms` more.
    fn heard(&mut self, key: &str, deadline_ms: u64) {
        if let Some(flight) = self.flights.get_mut(key) {
            flight.deadline_ms = deadline_ms;
        }
    }

    fn head(&mut self, key: &str, head: ObjectHead, cache_control: &'static str) {
        let Some(flight) = self.flights.get_mut(key) else {
            return;
        };
        flight.head = Some(head);
        for waiter in &mut flight.waiters {
            if streams(&head, waiter.delivery) {
                waiter.started = true;
                let start = MediaResponse::StreamStart {
                    cache_control,
                    chunks: Vec::new(),
                    done: false,
                };
                self.ready.push((waiter.conn, start));
            }
        }
    }

    fn body(&mut self, key: &str, bytes: Bytes) {
        let Some(flight) = self.flights.get_mut(key) else {
            return;
        };
        for waiter in flight.waiters.iter().filter(|w| w.started) {
            let more = MediaResponse::StreamMore {
                chunks: vec![bytes.clone()],
                done: false,
            };
            self.ready.push((waiter.conn, more));
        }
        flight.chunks.push(bytes);
    }

    fn end(
        &mut self,
        key: Arc<str>,
        outcome: Result<u64, &'static str>,
        now: u64,
        cache_control: &'static str,
    ) {
        let Some(flight) = self.flights.remove(&key) else {
            return;
        };
        let (keep_ms, head) = match (outcome, flight.head) {
            (Ok(keep_ms), Some(head)) => (keep_ms, head),
            _ => {
                for waiter in flight.waiters {
                    let response = if waiter.started {
                        MediaResponse::StreamAbort
                    } else {
                        MediaResponse::Status(502, "the origin's answer was cut short")
                    };
                    self.ready.push((waiter.conn, response));
                }
                return;
            }
        };
        let object = CachedObject {
            head,
            bytes: flight.chunks.iter().map(|c| c.len() as u64).sum(),
            chunks: flight.chunks,
        };
        for waiter in flight.waiters {
            let response = if waiter.started {
                MediaResponse::StreamMore {
                    chunks: Vec::new(),
                    done: true,
                }
            } else {
                whole(&object, cache_control, waiter.token_query.as_deref())
            };
            self.ready.push((waiter.conn, response));
        }
        if keep_ms > 0 {
            self.cache.insert(key, object, now + keep_ms);
        }
    }
}

/// Whether a waiter gets this object's bytes as they arrive: a media object of unknown
/// length (being made) for a request that can take chunked transfer.
fn streams(head: &ObjectHead, delivery: Delivery) -> bool {
    head.status == 200
        && head.length.is_none()
        && head.content_type == "video/mp4"
        && delivery == Delivery::AsMade
}

/// The answer with a whole object: its body (playlists with the viewer's token in place of
/// the edge's), or its status.
fn whole(object: &CachedObject, cache_control: &'static str, token: Option<&str>) -> MediaResponse {
    let head = &object.head;
    if head.status != 200 {
        return MediaResponse::Status(head.status, status_text(head.status));
    }
    let playlist = matches!(
        head.content_type,
        "application/vnd.apple.mpegurl" | "application/dash+xml"
    );
    let chunks = match token {
        Some(token) if playlist => vec![replace_tokens(&object.chunks, token)],
        _ => object.chunks.clone(),
    };
    MediaResponse::Body {
        content_type: head.content_type,
        cache_control: if head.content_type == "video/mp4" {
            cache_control
        } else {
            "no-cache"
        },
        chunks,
    }
}

/// A short text for an origin's error status passed on.
fn status_text(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "playback token required",
        403 => "forbidden",
        404 => "not found",
        410 => "gone",
        414 => "request too long",
        416 => "range not satisfiable",
        _ => "the origin refused",
    }
}

/// The playlist with every `token=VALUE` made `token_query` (`token=…` of the viewer).
fn replace_tokens(chunks: &[Bytes], token_query: &str) -> Bytes {
    let body: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let mut out = Vec::with_capacity(body.len() + 256);
    let mut rest = &body[..];
    const NAME: &[u8] = b"token=";
    while let Some(at) = rest.windows(NAME.len()).position(|w| w == NAME) {
        let starts_param = at == 0 || matches!(rest[at - 1], b'?' | b'&' | b';');
        out.extend_from_slice(&rest[..at]);
        rest = &rest[at + NAME.len()..];
        if !starts_param {
            out.extend_from_slice(NAME);
            continue;
        }
        let end = rest
            .iter()
            .position(|&b| {
                !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'%' | b'~'))
            })
            .unwrap_or(rest.len());
        out.extend_from_slice(token_query.as_bytes());
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

/// `/live/{path}` and the query parameters that name the object, in the order given.
fn object_key(path: &str, query: Query<'_>) -> Option<String> {
    let mut key = String::with_capacity(64);
    key.push_str("/live/");
    key.push_str(path);
    let mut separator = '?';
    for (name, value) in query.pairs() {
        if KEY_PARAMS.contains(&name.as_ref()) {
            key.push(separator);
            key.push_str(&name);
            key.push('=');
            key.push_str(&crate::common::query::encode(&value));
            separator = '&';
        }
    }
    (key.len() <= KEY_MAX_BYTES).then_some(key)
}

/// Whether an origin may hold the request until media exists: a blocking reload, or a part
/// or segment (which may be announced and not yet made).
fn origin_wait(key: &str) -> OriginWait {
    let (path, query) = key.split_once('?').unwrap_or((key, ""));
    if path.ends_with(".m4s") || query.contains("_HLS_msn=") {
        OriginWait::Blocking
    } else {
        OriginWait::Immediate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_what_names_the_object_and_drop_the_rest() {
        let q = Query::new("_HLS_msn=5&cb=123&token=abc&_HLS_part=2");
        assert_eq!(
            object_key("s/v0/index.m3u8", q).unwrap(),
            "/live/s/v0/index.m3u8?_HLS_msn=5&_HLS_part=2"
        );
        assert_eq!(
            object_key("s/v0/3.m4s", Query::new("")).unwrap(),
            "/live/s/v0/3.m4s"
        );
        let long = "x".repeat(600);
        assert!(object_key(&long, Query::new("")).is_none());
        assert_eq!(origin_wait("/live/s/v0/3.2.m4s"), OriginWait::Blocking);
        assert_eq!(
            origin_wait("/live/s/v0/index.m3u8?_HLS_msn=3"),
            OriginWait::Blocking
        );
        assert_eq!(origin_wait("/live/s/v0/index.m3u8"), OriginWait::Immediate);
        assert_eq!(
            origin_wait("/live/s/v0/init.mp4?v=1"),
            OriginWait::Immediate
        );
    }

    #[test]
    fn playlists_carry_the_viewer_s_token_not_the_edge_s() {
        let body = Bytes::from_static(
            b"#EXTM3U\n0.m4s?token=EDGE.x-1\n#EXT-X-PART:URI=\"0.1.m4s?a=1&token=EDGE\"\nmytoken=keep\n",
        );
        let out = replace_tokens(&[body], "token=VIEWER");
        assert_eq!(
            &out[..],
            b"#EXTM3U\n0.m4s?token=VIEWER\n#EXT-X-PART:URI=\"0.1.m4s?a=1&token=VIEWER\"\nmytoken=keep\n"
        );
    }
}
