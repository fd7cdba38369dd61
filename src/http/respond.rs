//! Writing responses: heads into the shard's output buffer, small bodies copied next to them
//! (one chunk, one send), large bodies queued as shared `Bytes` (no copy), byte ranges cut
//! from shared chunks without copying.

use super::{Http, Phase};
use crate::media::MediaResponse;
use crate::shard::msg::ShardMsg;
use bytes::{Bytes, BytesMut};
use shardcast_engine::{ConnId, Ctx, ShardCounters};
use shardcast_http::{parse_range, ContentRange, Method, RangeOutcome, RequestHead, ResponseHead};

/// Bodies at or under this size are copied next to their head so the response is one chunk
/// (one send); larger bodies are queued as a shared `Bytes` (no copy).
pub(super) const INLINE_BODY_MAX_BYTES: usize = 4096;

/// How a response goes out, from the request it answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reply {
    /// The request's minor version (so an HTTP/1.0 client is told when the connection stays).
    pub version_minor: u8,
    pub connection: Connection,
    pub body: BodyMode,
}

/// Whether the connection stays open after the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Connection {
    KeepAlive,
    Close,
}

/// Whether the body is sent (not for HEAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyMode {
    Send,
    Omit,
}

impl Reply {
    /// The reply to `head`: its version, its keep-alive (none while draining), HEAD omits
    /// bodies.
    pub fn for_request(head: &RequestHead<'_>, cx: &Ctx<ShardMsg>) -> Reply {
        let reply = Reply {
            version_minor: head.version_minor(),
            connection: Connection::KeepAlive,
            body: if head.method() == Method::Head {
                BodyMode::Omit
            } else {
                BodyMode::Send
            },
        };
        let reply = if head.keep_alive() {
            reply
        } else {
            reply.and_close()
        };
        reply.while_draining(cx)
    }

    /// A final answer that closes the connection (an error before or instead of a request).
    pub fn closing() -> Reply {
        Reply {
            version_minor: 1,
            connection: Connection::Close,
            body: BodyMode::Send,
        }
    }

    /// The same reply, closing when the shard drains.
    pub fn while_draining(self, cx: &Ctx<ShardMsg>) -> Reply {
        if cx.is_draining() {
            self.and_close()
        } else {
            self
        }
    }

    /// The same reply, with the body omitted.
    pub fn without_body(mut self) -> Reply {
        self.body = BodyMode::Omit;
        self
    }

    /// The same reply, closing the connection.
    pub fn and_close(mut self) -> Reply {
        self.connection = Connection::Close;
        self
    }

    fn head<'a>(&self, status: u16, date: &'a shardcast_http::HttpDate) -> ResponseHead<'a> {
        ResponseHead::new(status, date)
            .request_version_minor(self.version_minor)
            .keep_alive(self.connection == Connection::KeepAlive)
    }
}

/// A response body.
pub(super) enum Body<'a> {
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

impl Http {
    /// Queues a response with `headers`, under `reply`.
    pub(super) fn respond(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        headers: &[(&str, &str)],
        body: Body<'_>,
        reply: Reply,
    ) {
        let date = self.date(cx);
        let head = reply.head(status, &date).headers(headers);
        self.queue_response(cx, conn, head, body, reply.body);
    }

    /// Queues a plain-text response.
    pub(super) fn respond_text(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        body: &[u8],
        reply: Reply,
    ) {
        let headers = [("Content-Type", "text/plain; charset=utf-8")];
        self.respond(cx, conn, status, &headers, Body::Inline(body), reply);
    }

    /// Queues a JSON answer of the API (not cached, readable from any origin).
    pub(super) fn respond_json(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        json: String,
        reply: Reply,
    ) {
        let headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Access-Control-Allow-Origin", "*"),
        ];
        self.respond(
            cx,
            conn,
            200,
            &headers,
            Body::Shared(Bytes::from(json)),
            reply,
        );
    }

    /// Sends a media response (playlist, MPD, init, segment or part), applying a byte range
    /// to media bodies.
    pub(super) fn send_media(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        response: MediaResponse,
        range: Option<&str>,
        reply: Reply,
    ) {
        match response {
            // The router never hands a waiting response back; answer it as unavailable.
            MediaResponse::Waiting => self.media_status(cx, conn, 503, "not available", reply),
            // Chunked responses go through `send_stream`; one arriving here has lost its
            // place, and only closing keeps the connection's bytes in order.
            MediaResponse::StreamStart { .. }
            | MediaResponse::StreamMore { .. }
            | MediaResponse::StreamAbort => {
                self.conns[conn.slot()].phase = Phase::Finished;
                cx.close(conn);
            }
            MediaResponse::Status(status, text) => self.media_status(cx, conn, status, text, reply),
            MediaResponse::Created { location, sdp } => {
                self.sdp_created(cx, conn, &location, sdp, reply)
            }
            MediaResponse::Body {
                content_type,
                cache_control,
                chunks,
            } => self.media_body(
                cx,
                conn,
                (content_type, cache_control),
                chunks,
                range,
                reply,
            ),
        }
    }

    fn media_status(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        text: &str,
        reply: Reply,
    ) {
        let body = format!("{text}\n");
        let headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("Access-Control-Allow-Origin", "*"),
        ];
        self.respond(
            cx,
            conn,
            status,
            &headers,
            Body::Inline(body.as_bytes()),
            reply,
        );
    }

    fn media_body(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        (content_type, cache_control): (&str, &str),
        chunks: Vec<Bytes>,
        range: Option<&str>,
        reply: Reply,
    ) {
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
            RangeOutcome::Unsatisfiable => (416, Vec::new(), Some(ContentRange::unsatisfied(len))),
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
        if let Some(content_range) = content_range.as_ref() {
            headers.push(("Content-Range", content_range.as_str()));
        }
        let date = self.date(cx);
        let head = reply
            .head(status, &date)
            .content_length(body_len)
            .headers(&headers);
        self.queue_response(cx, conn, head, Body::Chunks(body), reply.body);
    }

    /// Writes the head (and a small body) into the shard's output buffer and queues it; a
    /// large body follows as its own shared chunk. Sets Content-Length from the body unless
    /// the head already has one. Closes after flushing when the head says so.
    pub(super) fn queue_response(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: ResponseHead<'_>,
        body: Body<'_>,
        mode: BodyMode,
    ) {
        let status = head.status();
        let keep_alive = head.is_keep_alive();
        let head = if head.has_content_length() || matches!(status, 204 | 304) || status < 200 {
            head
        } else {
            head.content_length(body.len() as u64)
        };
        if self.out.capacity() - self.out.len() < 1024 + INLINE_BODY_MAX_BYTES {
            self.out = BytesMut::with_capacity(super::OUT_BUFFER_BYTES);
        }
        head.write_to(&mut self.out);
        let mut shared = Vec::new();
        if mode == BodyMode::Send {
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
        cx.send(conn, self.out.split().freeze());
        for bytes in shared {
            cx.send(conn, bytes);
        }
        self.count_status(status);
        let state = &mut self.conns[conn.slot()];
        state.responses_queued += 1;
        if !keep_alive {
            state.phase = Phase::Finished;
            cx.close_after_flush(conn);
        }
    }

    /// Sends (part of) a media response with chunked transfer: the head and the first chunks
    /// ([`MediaResponse::StreamStart`]), more chunks, the last chunk, or an abort (the
    /// connection closes, so the client sees the body end early). Parts larger than
    /// [`INLINE_BODY_MAX_BYTES`] go out as shared `Bytes`, between their chunk framing.
    pub(super) fn send_stream(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        response: MediaResponse,
        reply: Reply,
    ) -> Streamed {
        let (chunks, done) = match response {
            MediaResponse::StreamStart {
                cache_control,
                chunks,
                done,
            } => {
                let headers = [
                    ("Content-Type", "video/mp4"),
                    ("Cache-Control", cache_control),
                    ("Access-Control-Allow-Origin", "*"),
                    ("Transfer-Encoding", "chunked"),
                ];
                let date = self.date(cx);
                let head = reply.head(200, &date).headers(&headers);
                self.reserve_out(cx, conn);
                head.write_to(&mut self.out);
                self.count_status(200);
                self.conns[conn.slot()].responses_queued += 1;
                (chunks, done)
            }
            MediaResponse::StreamMore { chunks, done } => (chunks, done),
            _ => {
                self.conns[conn.slot()].phase = Phase::Finished;
                cx.close(conn);
                return Streamed::Closed;
            }
        };
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            self.reserve_out(cx, conn);
            self.out
                .extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            if chunk.len() <= INLINE_BODY_MAX_BYTES {
                self.out.extend_from_slice(&chunk);
            } else {
                cx.send(conn, self.out.split().freeze());
                cx.send(conn, chunk);
            }
            self.out.extend_from_slice(b"\r\n");
        }
        if done {
            self.reserve_out(cx, conn);
            self.out.extend_from_slice(b"0\r\n\r\n");
        }
        if !self.out.is_empty() {
            cx.send(conn, self.out.split().freeze());
        }
        if !done {
            return Streamed::More;
        }
        if reply.connection == Connection::Close {
            self.conns[conn.slot()].phase = Phase::Finished;
            cx.close_after_flush(conn);
            return Streamed::Closed;
        }
        Streamed::Done
    }

    /// Room in the output buffer for a head or chunk framing (and a small chunk). What the
    /// buffer holds for `conn` and has not sent yet goes out first.
    fn reserve_out(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        if self.out.capacity() - self.out.len() < 1024 + INLINE_BODY_MAX_BYTES {
            if !self.out.is_empty() {
                cx.send(conn, self.out.split().freeze());
            }
            self.out = BytesMut::with_capacity(super::OUT_BUFFER_BYTES);
        }
    }

    /// Queues raw bytes already formatted by a protocol (the WebSocket 101).
    pub(super) fn queue_raw(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        write: impl FnOnce(&mut BytesMut),
    ) {
        if self.out.capacity() - self.out.len() < 1024 {
            self.out = BytesMut::with_capacity(super::OUT_BUFFER_BYTES);
        }
        write(&mut self.out);
        cx.send(conn, self.out.split().freeze());
    }

    fn count_status(&self, status: u16) {
        let counters = self.counters();
        let counter = match status {
            200..=299 => &counters.responses_2xx,
            300..=399 => &counters.responses_3xx,
            400..=499 => &counters.responses_4xx,
            _ => &counters.responses_5xx,
        };
        ShardCounters::bump(counter, 1);
    }
}

/// Where a chunked media response stands after [`Http::send_stream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Streamed {
    /// More chunks follow: the connection keeps waiting.
    More,
    /// The response is complete and the connection reads its next request.
    Done,
    /// The connection is closing.
    Closed,
}

/// The bytes `start..=end_inclusive` of the concatenation of `chunks`, without copying.
pub(super) fn slice_chunks(chunks: &[Bytes], start: u64, end_inclusive: u64) -> Vec<Bytes> {
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
