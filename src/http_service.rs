//! The HTTP front door on every shard: health, metrics, the info API and static files.
//!
//! Requests are answered in order as they are decoded, so pipelined responses leave in request
//! order. Input is parsed straight from the engine's pooled receive buffer; only an
//! incomplete head (or pipelined input held back while responses are queued) is copied into
//! the connection's tail buffer.
//!
//! Timeouts use one lazily re-armed timer per connection: activity only updates timestamps,
//! and the timer, when it fires, compares them with the deadlines and re-arms if needed.

use crate::danmaku_service::{Danmaku, DanmakuSettings, ROOM_TIMER_BIT};
use crate::media_service::{Media, MediaResponse, MediaSettings, MEDIA_TIMER_BIT};
use crate::metrics;
use crate::shard_msg::ShardMsg;
use crate::static_files::StaticFiles;
use bytes::{Bytes, BytesMut};
use shardcast_engine::{CloseReason, ConnId, Ctx, ListenerId, Service, ShardInfo, TimerId};
use shardcast_http::{
    etag_matches, parse_range, ContentRange, Decoded, HttpDate, HttpDateCache, HttpError, Limits,
    Method, RangeOutcome, RequestDecoder, RequestHead, ResponseHead,
};
use std::sync::Arc;
use std::time::SystemTime;

/// Bodies at or under this size are copied next to their head so the response is one chunk
/// (one send); larger bodies are queued as a shared `Bytes` (no copy).
const INLINE_BODY_MAX_BYTES: usize = 4096;
/// Size of the per-shard buffer response heads are written into (split off per response).
const OUT_BUFFER_BYTES: usize = 64 * 1024;

/// Settings shared by every shard's HTTP service.
pub struct HttpSettings {
    pub limits: Limits,
    pub max_connections_per_shard: usize,
    pub header_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub pipeline_max_responses: usize,
    pub pipeline_buffer_max_bytes: usize,
    pub static_files: Arc<StaticFiles>,
    /// Every shard's HTTP counters, indexed by shard.
    pub counters: Arc<Vec<HttpCounters>>,
    /// Danmaku (WebSocket) settings, shared with the metrics page.
    pub danmaku: Arc<DanmakuSettings>,
    /// Live media settings, shared with the metrics page.
    pub media: Arc<MediaSettings>,
    pub started: SystemTime,
}

crate::service_counters! {
    /// Per-shard HTTP counters (single writer: the shard).
    pub struct HttpCounters {
        /// HTTP requests decoded.
        requests: "counter",
        /// HTTP responses with a 2xx status.
        responses_2xx: "counter",
        /// HTTP responses with a 3xx status.
        responses_3xx: "counter",
        /// HTTP responses with a 4xx status.
        responses_4xx: "counter",
        /// HTTP responses with a 5xx status.
        responses_5xx: "counter",
        /// Connections answered 503 because the shard was at http.max_connections_per_shard.
        rejected_over_capacity: "counter",
        /// Requests refused as malformed or over a cap.
        bad_requests: "counter",
        /// Connections answered 408 (request head too slow).
        header_timeouts: "counter",
        /// Idle connections closed.
        idle_timeouts: "counter",
    }
}

#[derive(Default)]
struct HttpConn {
    in_use: bool,
    /// The engine's id for the connection in this slot.
    conn: Option<ConnId>,
    decoder: Option<RequestDecoder>,
    /// Unconsumed input: an incomplete head, or pipelined requests held back.
    tail: Vec<u8>,
    /// When the current request head began arriving (None: between requests).
    head_started_ms: Option<u64>,
    last_activity_ms: u64,
    timer: Option<TimerId>,
    /// Responses queued since the send queue was last empty.
    responses_queued: usize,
    /// A final response was queued: ignore further input.
    finished: bool,
    /// Any byte received yet.
    received_any: bool,
    /// A media request waits for the index; later pipelined requests wait behind it.
    waiting: Option<Box<WaitingRequest>>,
}

/// What a waiting media request needs to be answered later.
struct WaitingRequest {
    range: Option<String>,
    version_minor: u8,
}

/// The service one shard runs.
pub struct HttpService {
    settings: Arc<HttpSettings>,
    info: Arc<shardcast_engine::RuntimeInfo>,
    shard: usize,
    conns: Vec<HttpConn>,
    out: BytesMut,
    dates: HttpDateCache,
    date_second: u64,
    danmaku: Danmaku,
    media: Media,
}

/// The listener index of the RTMP port (the HTTP port is 0).
pub const RTMP_LISTENER: u16 = 1;

impl HttpService {
    /// Builds the service for one shard.
    pub fn new(settings: Arc<HttpSettings>, shard: &ShardInfo) -> Self {
        // FFmpeg runs on transcode threads only: any attempt from this shard panics.
        shardcast_native::forbid_ffmpeg_on_this_thread();
        let capacity = shard.runtime.engine.max_connections as usize;
        let now = crate::clock::wall_s();
        HttpService {
            settings: settings.clone(),
            info: shard.runtime.clone(),
            shard: shard.shard.index(),
            conns: (0..capacity).map(|_| HttpConn::default()).collect(),
            out: BytesMut::with_capacity(OUT_BUFFER_BYTES),
            dates: HttpDateCache::new(now),
            date_second: now,
            danmaku: Danmaku::new(
                settings.danmaku.clone(),
                shard.shard,
                shard.runtime.shards(),
                capacity,
            ),
            media: Media::new(
                settings.media.clone(),
                shard.shard,
                shard.runtime.shards(),
                capacity,
            ),
        }
    }

    fn counters(&self) -> &HttpCounters {
        &self.settings.counters[self.shard]
    }

    fn date(&mut self) -> HttpDate {
        let now = crate::clock::wall_s();
        self.date_second = now;
        *self.dates.at(now)
    }

    /// Decodes and answers requests from `buf`; returns how many bytes were consumed.
    fn process(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, buf: &[u8]) -> usize {
        let slot = conn.slot();
        let mut pos = 0;
        while !self.conns[slot].finished && self.conns[slot].waiting.is_none() {
            if self.conns[slot].responses_queued >= self.settings.pipeline_max_responses {
                break;
            }
            let decoder = self.conns[slot]
                .decoder
                .as_mut()
                .expect("decoder for open conn");
            match decoder.decode(&buf[pos..]) {
                Ok(Decoded::Head { head, consumed }) => {
                    pos += consumed;
                    self.conns[slot].head_started_ms = None;
                    self.answer(cx, conn, &head);
                    if self.danmaku.is_ws(slot) {
                        // Upgraded: what follows belongs to the WebSocket stream.
                        break;
                    }
                }
                Ok(Decoded::Body { consumed, .. }) => pos += consumed,
                Ok(Decoded::NeedMore) => {
                    if pos < buf.len() && self.conns[slot].head_started_ms.is_none() {
                        self.conns[slot].head_started_ms = Some(cx.now_ms());
                    }
                    break;
                }
                Err(error) => {
                    self.refuse(cx, conn, &error);
                    return buf.len();
                }
            }
        }
        pos
    }

    fn refuse(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, error: &HttpError) {
        log::debug!("shard {}: bad request: {error}", self.shard);
        shardcast_engine::ShardCounters::bump(&self.counters().bad_requests, 1);
        let body = format!("{error}\n");
        self.respond_simple(
            cx,
            conn,
            error.status(),
            "text/plain; charset=utf-8",
            body.as_bytes(),
            false,
            true,
        );
    }

    /// Routes one request and queues its response.
    fn answer(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, head: &RequestHead<'_>) {
        shardcast_engine::ShardCounters::bump(&self.counters().requests, 1);
        let keep_alive = head.keep_alive() && !cx.is_draining();
        let is_head = head.method() == Method::Head;
        if !matches!(head.method(), Method::Get | Method::Head) {
            let date = self.date();
            self.queue_response(
                cx,
                conn,
                ResponseHead::new(405, &date)
                    .for_request(head)
                    .keep_alive(keep_alive)
                    .headers(&[
                        ("Allow", "GET, HEAD"),
                        ("Content-Type", "text/plain; charset=utf-8"),
                    ]),
                Body::Inline(b"method not allowed\n"),
                is_head,
            );
            return;
        }
        match head.path() {
            "/ws" => self.upgrade(cx, conn, head),
            "/healthz" => {
                let date = self.date();
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(200, &date)
                        .for_request(head)
                        .keep_alive(keep_alive)
                        .headers(&[
                            ("Content-Type", "text/plain; charset=utf-8"),
                            ("Cache-Control", "no-store"),
                        ]),
                    Body::Inline(b"ok\n"),
                    is_head,
                );
            }
            "/metrics" => {
                let text = metrics::render(&self.info, &self.settings, &self.media.rungs());
                let date = self.date();
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(200, &date)
                        .for_request(head)
                        .keep_alive(keep_alive)
                        .headers(&[
                            ("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                            ("Cache-Control", "no-store"),
                        ]),
                    Body::Shared(Bytes::from(text)),
                    is_head,
                );
            }
            "/api/v1/streams" => {
                let mut json = self.media.streams_json().to_string();
                json.push('\n');
                self.respond_json(cx, conn, head, keep_alive, is_head, json);
            }
            path if path.starts_with("/live/") => {
                let rest = &path["/live/".len()..];
                let response =
                    self.media
                        .http_request(cx, conn, rest, head.query(), keep_alive, is_head);
                match response {
                    MediaResponse::Waiting => {
                        self.conns[conn.slot()].waiting = Some(Box::new(WaitingRequest {
                            range: head.range().map(str::to_string),
                            version_minor: head.version_minor(),
                        }));
                    }
                    response => self.send_media(
                        cx,
                        conn,
                        response,
                        head.range(),
                        head.version_minor(),
                        keep_alive,
                        is_head,
                    ),
                }
            }
            "/api/v1/info" => {
                let json = metrics::info_json(&self.info, &self.settings);
                self.respond_json(cx, conn, head, keep_alive, is_head, json);
            }
            path => match path.strip_prefix("/static/") {
                Some(name) => self.serve_static(cx, conn, head, name, keep_alive),
                None => self.respond_simple(
                    cx,
                    conn,
                    404,
                    "text/plain; charset=utf-8",
                    b"not found\n",
                    is_head,
                    !keep_alive,
                ),
            },
        }
    }

    /// Sends a media response (playlist, MPD, init, segment or part), applying a byte range
    /// to media bodies.
    #[allow(clippy::too_many_arguments)]
    fn send_media(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        response: MediaResponse,
        range: Option<&str>,
        version_minor: u8,
        keep_alive: bool,
        is_head: bool,
    ) {
        let date = self.date();
        match response {
            MediaResponse::Waiting => unreachable!("waiting responses are parked"),
            MediaResponse::Status(status, text) => {
                let body = format!("{text}\n");
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(status, &date)
                        .request_version_minor(version_minor)
                        .keep_alive(keep_alive)
                        .headers(&[
                            ("Content-Type", "text/plain; charset=utf-8"),
                            ("Cache-Control", "no-cache"),
                            ("Access-Control-Allow-Origin", "*"),
                        ]),
                    Body::Inline(body.as_bytes()),
                    is_head,
                );
            }
            MediaResponse::Body {
                content_type,
                cache_control,
                chunks,
            } => {
                let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
                let is_media = content_type == "video/mp4";
                let outcome = match range {
                    Some(r) if is_media => parse_range(r, len),
                    _ => RangeOutcome::Full,
                };
                let (status, body, content_range) = match outcome {
                    RangeOutcome::Full => (200, chunks, None),
                    RangeOutcome::Partial {
                        start,
                        end_inclusive,
                    } => (
                        206,
                        slice_chunks(&chunks, start, end_inclusive),
                        Some(ContentRange::bytes(start, end_inclusive, len)),
                    ),
                    RangeOutcome::Unsatisfiable => {
                        (416, Vec::new(), Some(ContentRange::unsatisfied(len)))
                    }
                };
                let body_len: u64 = body.iter().map(|c| c.len() as u64).sum();
                let mut headers = vec![
                    ("Content-Type", content_type),
                    ("Cache-Control", cache_control),
                    ("Access-Control-Allow-Origin", "*"),
                ];
                if is_media {
                    headers.push(("Accept-Ranges", "bytes"));
                }
                let content_range_text = content_range.as_ref().map(|c| c.as_str().to_string());
                if let Some(text) = content_range_text.as_deref() {
                    headers.push(("Content-Range", text));
                }
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(status, &date)
                        .request_version_minor(version_minor)
                        .keep_alive(keep_alive)
                        .content_length(body_len)
                        .headers(&headers),
                    Body::Chunks(body),
                    is_head,
                );
            }
        }
    }

    /// Answers `GET /ws`: 101 and a switch to the WebSocket codec, or the refusal.
    fn upgrade(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, head: &RequestHead<'_>) {
        if !head.is_websocket_upgrade() {
            let date = self.date();
            self.queue_response(
                cx,
                conn,
                ResponseHead::new(426, &date)
                    .for_request(head)
                    .keep_alive(false)
                    .headers(&[
                        ("Upgrade", "websocket"),
                        ("Sec-WebSocket-Version", "13"),
                        ("Content-Type", "text/plain; charset=utf-8"),
                    ]),
                Body::Inline(b"websocket upgrade required\n"),
                head.method() == Method::Head,
            );
            return;
        }
        match shardcast_ws::accept(head, shardcast_wire::SUBPROTOCOL) {
            Ok(accept) => {
                let date = self.date();
                if self.out.capacity() - self.out.len() < 1024 {
                    self.out = BytesMut::with_capacity(OUT_BUFFER_BYTES);
                }
                accept.write_response(&mut self.out, &date);
                cx.send(conn, self.out.split().freeze());
                let state = &mut self.conns[conn.slot()];
                state.decoder = None;
                state.head_started_ms = None;
                if let Some(timer) = state.timer.take() {
                    cx.timer_cancel(timer);
                }
                self.danmaku.open(cx, conn);
            }
            Err(error) => {
                shardcast_engine::ShardCounters::bump(&self.counters().bad_requests, 1);
                let body = format!("{error}\n");
                let date = self.date();
                let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
                if error.status() == 426 {
                    headers.push(("Sec-WebSocket-Version", "13"));
                }
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(error.status(), &date)
                        .for_request(head)
                        .keep_alive(false)
                        .headers(&headers),
                    Body::Inline(body.as_bytes()),
                    false,
                );
            }
        }
    }

    fn serve_static(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        name: &str,
        keep_alive: bool,
    ) {
        let is_head = head.method() == Method::Head;
        let files = self.settings.static_files.clone();
        let Some(file) = files
            .get(name)
            .filter(|_| !name.split('/').any(|s| s == ".."))
        else {
            self.respond_simple(
                cx,
                conn,
                404,
                "text/plain; charset=utf-8",
                b"not found\n",
                is_head,
                !keep_alive,
            );
            return;
        };
        let date = self.date();
        let cache = "public, max-age=3600";
        if head
            .if_none_match()
            .is_some_and(|v| etag_matches(v, &file.etag))
        {
            self.queue_response(
                cx,
                conn,
                ResponseHead::new(304, &date)
                    .for_request(head)
                    .keep_alive(keep_alive)
                    .headers(&[("ETag", &file.etag), ("Cache-Control", cache)]),
                Body::None,
                true,
            );
            return;
        }
        let len = file.body.len() as u64;
        let range = head
            .range()
            .map_or(RangeOutcome::Full, |r| parse_range(r, len));
        match range {
            RangeOutcome::Full => self.queue_response(
                cx,
                conn,
                ResponseHead::new(200, &date)
                    .for_request(head)
                    .keep_alive(keep_alive)
                    .content_length(len)
                    .headers(&[
                        ("Content-Type", file.content_type),
                        ("ETag", &file.etag),
                        ("Cache-Control", cache),
                        ("Accept-Ranges", "bytes"),
                    ]),
                Body::Shared(file.body.clone()),
                is_head,
            ),
            RangeOutcome::Partial {
                start,
                end_inclusive,
            } => {
                let content_range = ContentRange::bytes(start, end_inclusive, len);
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(206, &date)
                        .for_request(head)
                        .keep_alive(keep_alive)
                        .content_length(end_inclusive - start + 1)
                        .headers(&[
                            ("Content-Type", file.content_type),
                            ("ETag", &file.etag),
                            ("Cache-Control", cache),
                            ("Content-Range", content_range.as_str()),
                        ]),
                    Body::Shared(file.body.slice(start as usize..=end_inclusive as usize)),
                    is_head,
                );
            }
            RangeOutcome::Unsatisfiable => {
                let content_range = ContentRange::unsatisfied(len);
                self.queue_response(
                    cx,
                    conn,
                    ResponseHead::new(416, &date)
                        .for_request(head)
                        .keep_alive(keep_alive)
                        .content_length(0)
                        .headers(&[("Content-Range", content_range.as_str())]),
                    Body::None,
                    true,
                );
            }
        }
    }

    /// Queues a 200 JSON answer of the API (not cached, readable from any origin).
    fn respond_json(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        request: &RequestHead<'_>,
        keep_alive: bool,
        is_head: bool,
        json: String,
    ) {
        let date = self.date();
        self.queue_response(
            cx,
            conn,
            ResponseHead::new(200, &date)
                .for_request(request)
                .keep_alive(keep_alive)
                .headers(&[
                    ("Content-Type", "application/json"),
                    ("Cache-Control", "no-store"),
                    ("Access-Control-Allow-Origin", "*"),
                ]),
            Body::Shared(Bytes::from(json)),
            is_head,
        );
    }

    /// Queues a small response with a body (omitted for HEAD) and optionally closes after.
    #[allow(clippy::too_many_arguments)]
    fn respond_simple(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        content_type: &str,
        body: &[u8],
        is_head: bool,
        close: bool,
    ) {
        let date = self.date();
        let headers = [("Content-Type", content_type)];
        self.queue_response(
            cx,
            conn,
            ResponseHead::new(status, &date)
                .keep_alive(!close)
                .headers(&headers),
            Body::Inline(body),
            is_head,
        );
    }

    /// Writes the head (and a small body) into the shard's output buffer and queues it; a
    /// large body follows as its own shared chunk. Sets Content-Length from the body unless
    /// the head already has one. Closes after flushing when the head says so.
    fn queue_response(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: ResponseHead<'_>,
        body: Body<'_>,
        omit_body: bool,
    ) {
        let status = head.status();
        let keep_alive = head.is_keep_alive();
        let body_len = body.len();
        let head = if head.has_content_length() || matches!(status, 204 | 304) || status < 200 {
            head
        } else {
            head.content_length(body_len as u64)
        };
        if self.out.capacity() - self.out.len() < 1024 + INLINE_BODY_MAX_BYTES {
            self.out = BytesMut::with_capacity(OUT_BUFFER_BYTES);
        }
        head.write_to(&mut self.out);
        let mut shared = Vec::new();
        if !omit_body {
            match body {
                Body::None => {}
                Body::Inline(bytes) => self.out.extend_from_slice(bytes),
                Body::Shared(bytes) if bytes.len() <= INLINE_BODY_MAX_BYTES => {
                    self.out.extend_from_slice(&bytes)
                }
                Body::Shared(bytes) => shared.push(bytes),
                Body::Chunks(chunks) => shared = chunks,
            }
        }
        let chunk = self.out.split().freeze();
        cx.send(conn, chunk);
        for bytes in shared {
            cx.send(conn, bytes);
        }
        let counters = self.counters();
        let counter = match status {
            200..=299 => &counters.responses_2xx,
            300..=399 => &counters.responses_3xx,
            400..=499 => &counters.responses_4xx,
            _ => &counters.responses_5xx,
        };
        shardcast_engine::ShardCounters::bump(counter, 1);
        let state = &mut self.conns[conn.slot()];
        state.responses_queued += 1;
        if !keep_alive {
            state.finished = true;
            cx.close_after_flush(conn);
        }
    }

    fn arm_timer(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let state = &mut self.conns[conn.slot()];
        let deadline = match state.head_started_ms {
            Some(started) => started + self.settings.header_timeout_ms,
            None if !state.received_any => state.last_activity_ms + self.settings.header_timeout_ms,
            None => state.last_activity_ms + self.settings.idle_timeout_ms,
        };
        let key = conn_key(conn);
        state.timer = cx.timer_after(deadline.saturating_sub(cx.now_ms()), key);
    }
}

enum Body<'a> {
    None,
    Inline(&'a [u8]),
    Shared(Bytes),
    /// Several shared chunks sent one after another (a segment: `styp` and its parts).
    Chunks(Vec<Bytes>),
}

impl Body<'_> {
    fn len(&self) -> usize {
        match self {
            Body::None => 0,
            Body::Inline(b) => b.len(),
            Body::Shared(b) => b.len(),
            Body::Chunks(chunks) => chunks.iter().map(Bytes::len).sum(),
        }
    }
}

/// The bytes `start..=end_inclusive` of the concatenation of `chunks`, without copying.
fn slice_chunks(chunks: &[Bytes], start: u64, end_inclusive: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for chunk in chunks {
        let len = chunk.len() as u64;
        let (lo, hi) = (start.max(offset), (end_inclusive + 1).min(offset + len));
        if lo < hi {
            out.push(chunk.slice((lo - offset) as usize..(hi - offset) as usize));
        }
        offset += len;
    }
    out
}

fn conn_key(conn: ConnId) -> u64 {
    // The slot identifies the connection; the stored timer id guards against stale fires.
    conn.slot() as u64
}

impl Service for HttpService {
    type Msg = ShardMsg;

    fn on_accept(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, listener: ListenerId) {
        if listener.0 == RTMP_LISTENER {
            return self.media.rtmp_open(cx, conn);
        }
        let now = cx.now_ms();
        let state = &mut self.conns[conn.slot()];
        debug_assert!(!state.in_use);
        *state = HttpConn {
            in_use: true,
            conn: Some(conn),
            decoder: Some(RequestDecoder::new(self.settings.limits)),
            last_activity_ms: now,
            ..HttpConn::default()
        };
        if cx.open_connections() > self.settings.max_connections_per_shard {
            shardcast_engine::ShardCounters::bump(&self.counters().rejected_over_capacity, 1);
            self.respond_simple(
                cx,
                conn,
                503,
                "text/plain; charset=utf-8",
                b"server at connection capacity\n",
                false,
                true,
            );
            return;
        }
        self.arm_timer(cx, conn);
    }

    fn on_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        let slot = conn.slot();
        if self.danmaku.is_ws(slot) {
            return self.danmaku.on_recv(cx, conn, data);
        }
        if self.media.is_rtmp(slot) {
            return self.media.rtmp_recv(cx, conn, data);
        }
        let state = &mut self.conns[slot];
        if state.finished {
            return;
        }
        state.last_activity_ms = cx.now_ms();
        state.received_any = true;
        if state.tail.is_empty() {
            let consumed = self.process(cx, conn, data);
            if self.danmaku.is_ws(slot) {
                if consumed < data.len() {
                    self.danmaku.on_recv(cx, conn, &data[consumed..]);
                }
                return;
            }
            if consumed < data.len() && !self.conns[slot].finished {
                self.conns[slot].tail.extend_from_slice(&data[consumed..]);
            }
        } else {
            let mut tail = std::mem::take(&mut self.conns[slot].tail);
            tail.extend_from_slice(data);
            let consumed = self.process(cx, conn, &tail);
            if self.danmaku.is_ws(slot) {
                if consumed < tail.len() {
                    self.danmaku.on_recv(cx, conn, &tail[consumed..]);
                }
                return;
            }
            tail.drain(..consumed);
            self.conns[slot].tail = tail;
        }
        let state = &mut self.conns[slot];
        if state.tail.len()
            > self
                .settings
                .pipeline_buffer_max_bytes
                .max(self.settings.limits.head_max_bytes)
        {
            log::debug!(
                "shard {}: pipelined input over the buffer cap; closing",
                self.shard
            );
            state.finished = true;
            cx.close(conn);
        } else if state.tail.is_empty() && state.tail.capacity() > 4096 {
            state.tail = Vec::new();
        }
    }

    fn on_sent(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let slot = conn.slot();
        if self.danmaku.is_ws(slot) {
            return self.danmaku.on_sent(conn);
        }
        let state = &mut self.conns[slot];
        state.responses_queued = 0;
        state.last_activity_ms = cx.now_ms();
        if cx.is_draining() && state.tail.is_empty() && state.head_started_ms.is_none() {
            state.finished = true;
            cx.close(conn);
            return;
        }
        if !state.tail.is_empty() && !state.finished {
            let tail = std::mem::take(&mut state.tail);
            let consumed = self.process(cx, conn, &tail);
            let mut tail = tail;
            tail.drain(..consumed);
            self.conns[slot].tail = tail;
        }
    }

    fn on_close(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, reason: CloseReason) {
        self.danmaku.on_close(cx, conn);
        self.media.rtmp_closed(cx, conn);
        let state = &mut self.conns[conn.slot()];
        if let Some(timer) = state.timer.take() {
            cx.timer_cancel(timer);
        }
        if let CloseReason::Error(errno) = reason {
            log::debug!(
                "shard {}: connection error: {}",
                self.shard,
                std::io::Error::from_raw_os_error(errno)
            );
        }
        *state = HttpConn::default();
    }

    fn on_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, key: u64) {
        if key & ROOM_TIMER_BIT != 0 {
            return self
                .danmaku
                .on_room_timer(cx, id, (key & !ROOM_TIMER_BIT) as u32);
        }
        if key & MEDIA_TIMER_BIT != 0 {
            return self.media.on_timer(cx, id, key);
        }
        let slot = key as usize;
        if self.danmaku.is_ws(slot) {
            return self.danmaku.on_conn_timer(cx, id, slot);
        }
        if self.media.is_rtmp(slot) {
            return self.media.rtmp_timer(cx, id, slot);
        }
        let state = &mut self.conns[slot];
        if !state.in_use || state.timer != Some(id) {
            return;
        }
        state.timer = None;
        let Some(conn) = state.conn.filter(|c| cx.is_open(*c)) else {
            return;
        };
        let now = cx.now_ms();
        let state = &mut self.conns[slot];
        if state.finished {
            return;
        }
        if let Some(started) = state.head_started_ms {
            if now >= started + self.settings.header_timeout_ms {
                shardcast_engine::ShardCounters::bump(&self.counters().header_timeouts, 1);
                self.respond_simple(
                    cx,
                    conn,
                    408,
                    "text/plain; charset=utf-8",
                    b"request header timeout\n",
                    false,
                    true,
                );
                return;
            }
        } else if cx.queued_bytes(conn) == 0 {
            let limit = if state.received_any {
                self.settings.idle_timeout_ms
            } else {
                self.settings.header_timeout_ms
            };
            if now >= state.last_activity_ms + limit {
                state.finished = true;
                cx.close(conn);
                shardcast_engine::ShardCounters::bump(&self.counters().idle_timeouts, 1);
                return;
            }
        } else {
            // Output still draining counts as activity.
            state.last_activity_ms = now;
        }
        self.arm_timer(cx, conn);
    }

    fn on_mesh(&mut self, cx: &mut Ctx<ShardMsg>, from: shardcast_engine::ShardId, msg: ShardMsg) {
        match msg {
            ShardMsg::Danmaku(msg) => self.danmaku.on_mesh(cx, from, msg),
            ShardMsg::Media(msg) => self.media.on_mesh(cx, from, msg),
            ShardMsg::ControlReply(reply) => self.media.on_control_reply(cx, reply),
            ShardMsg::Control(_) => log::warn!("a shard got a control request"),
        }
    }

    fn poll(&mut self, cx: &mut Ctx<ShardMsg>) {
        for (waiter, response) in self.media.take_ready() {
            let conn = waiter.conn;
            let slot = conn.slot();
            let state = &mut self.conns[slot];
            if !cx.is_open(conn) || state.conn != Some(conn) {
                continue;
            }
            let Some(waiting) = state.waiting.take() else {
                continue;
            };
            self.media.count_served(&response);
            self.send_media(
                cx,
                conn,
                response,
                waiting.range.as_deref(),
                waiting.version_minor,
                waiter.keep_alive && !cx.is_draining(),
                waiter.head_only,
            );
            // Requests pipelined behind the one that waited go on now.
            let state = &mut self.conns[slot];
            if !state.tail.is_empty() && !state.finished {
                let tail = std::mem::take(&mut state.tail);
                let consumed = self.process(cx, conn, &tail);
                let mut tail = tail;
                tail.drain(..consumed);
                self.conns[slot].tail = tail;
            }
        }
    }

    fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        self.danmaku.on_drain(cx);
        self.media.on_drain(cx);
        for slot in 0..self.conns.len() {
            let state = &mut self.conns[slot];
            if !state.in_use
                || state.finished
                || self.danmaku.is_ws(slot)
                || self.media.is_rtmp(slot)
            {
                continue;
            }
            let Some(conn) = state.conn.filter(|c| cx.is_open(*c)) else {
                continue;
            };
            let idle = state.tail.is_empty() && state.head_started_ms.is_none();
            if idle && cx.queued_bytes(conn) == 0 {
                state.finished = true;
                cx.close(conn);
            } else if idle {
                // A response is still being written: close once it is.
                state.finished = true;
                cx.close_after_flush(conn);
            }
        }
    }
}
