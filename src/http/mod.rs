//! The HTTP front door on every shard: it decodes requests, answers its own routes (health,
//! metrics, the info API, static files), hands `/live/` to media and `GET /ws` over to
//! danmaku once upgraded. It owns the HTTP connections of its shard and nothing else; it
//! never blocks and never talks to another shard.
//!
//! Requests are answered in order as they are decoded, so pipelined responses leave in request
//! order. Input is parsed straight from the engine's pooled receive buffer; only an
//! incomplete head (or pipelined input held back while responses are queued) is copied into
//! the connection's tail buffer. A media request that must wait (an LL-HLS blocking reload)
//! parks the connection: later pipelined requests wait behind it until the router hands the
//! answer back ([`Http::answer_waiting`]).
//!
//! Timeouts use one lazily re-armed timer per connection: activity only updates timestamps,
//! and the timer, when it fires, compares them with the deadlines and re-arms if needed.

mod admin;
pub mod metrics;
mod respond;
mod routes;
pub mod settings;
pub mod static_files;
#[cfg(test)]
mod tests;
pub mod web;
mod whep;

use crate::media::{Media, MediaResponse};
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use bytes::BytesMut;
use respond::Reply;
use settings::{HttpCounters, HttpSettings};
use shardcast_engine::{CloseReason, ConnId, Ctx, RuntimeInfo, ShardCounters, ShardInfo, TimerId};
use shardcast_http::{Decoded, HttpDate, HttpDateCache, RequestDecoder};
use std::sync::Arc;

/// Size of the per-shard buffer response heads are written into (split off per response).
const OUT_BUFFER_BYTES: usize = 64 * 1024;

/// What became of a connection's input.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Still HTTP (or closing).
    Http,
    /// Upgraded to a WebSocket: the 101 is queued and HTTP has let the connection go. The
    /// bytes after the upgrade request (a client may send its first frame at once) belong to
    /// the WebSocket.
    Upgraded { leftover: Vec<u8> },
}

/// One HTTP connection's state, by slot.
#[derive(Default)]
struct HttpConn {
    /// The connection in this slot while it speaks HTTP.
    conn: Option<ConnId>,
    decoder: Option<RequestDecoder>,
    /// Unconsumed input: an incomplete head, or pipelined requests held back.
    tail: Vec<u8>,
    /// When the current request head began arriving (`None`: between requests).
    head_started_ms: Option<u64>,
    last_activity_ms: u64,
    /// Bytes queued at the last timer check: the same again (and not 0) means the client
    /// read nothing in between.
    stalled_queue_bytes: usize,
    timer: Option<TimerId>,
    /// Responses queued since the send queue was last empty.
    responses_queued: usize,
    phase: Phase,
    /// Any byte received yet.
    received_any: bool,
}

/// Where a connection is in its life.
#[derive(Default)]
enum Phase {
    /// Reading and answering requests.
    #[default]
    Open,
    /// A media request waits for the index; later pipelined requests wait behind it.
    Waiting(Box<Waiting>),
    /// An admin API request's body is being read.
    Body(Box<admin::BodyRead>),
    /// An admin API request waits for the ledger thread; later requests wait behind it.
    Ledger(Reply),
    /// A final response is queued: further input is ignored.
    Finished,
    /// Upgraded to a WebSocket.
    Upgraded,
}

/// What a waiting media request needs to be answered later.
struct Waiting {
    reply: Reply,
    range: Option<String>,
}

/// Whether a closed connection had a request parked in media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parked {
    Yes,
    No,
}

/// The HTTP front door of one shard.
pub struct Http {
    settings: Arc<HttpSettings>,
    info: Arc<RuntimeInfo>,
    shard: usize,
    conns: Vec<HttpConn>,
    out: BytesMut,
    dates: HttpDateCache,
    /// Guest tokens issued here, and the per-address limit on them.
    guests: web::Guests,
}

impl Http {
    /// The front door of one shard.
    pub fn new(settings: Arc<HttpSettings>, shard: &ShardInfo, wall_s: u64) -> Self {
        let capacity = shard.runtime.engine.max_connections as usize;
        Http {
            info: shard.runtime.clone(),
            shard: shard.shard.index(),
            conns: (0..capacity).map(|_| HttpConn::default()).collect(),
            out: BytesMut::with_capacity(OUT_BUFFER_BYTES),
            dates: HttpDateCache::new(wall_s),
            guests: web::Guests::new(&settings.web),
            settings,
        }
    }

    fn counters(&self) -> &HttpCounters {
        &self.settings.counters[self.shard]
    }

    fn date(&mut self, cx: &Ctx<ShardMsg>) -> HttpDate {
        *self.dates.at(cx.wall_ms() / 1000)
    }

    /// A connection arrived whose source address holds `http.max_connections_per_address`
    /// already: 503 and close.
    pub fn open_refused(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let state = &mut self.conns[conn.slot()];
        *state = HttpConn {
            conn: Some(conn),
            last_activity_ms: cx.now_ms(),
            ..HttpConn::default()
        };
        ShardCounters::bump(&self.counters().rejected_per_address, 1);
        let body = b"too many connections from your address\n";
        self.respond_text(cx, conn, 503, body, Reply::closing());
    }

    /// A connection arrived on an HTTP listener.
    pub fn open(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let now = cx.now_ms();
        let state = &mut self.conns[conn.slot()];
        debug_assert!(state.conn.is_none(), "slot handed out twice");
        *state = HttpConn {
            conn: Some(conn),
            decoder: Some(RequestDecoder::new(self.settings.limits)),
            last_activity_ms: now,
            ..HttpConn::default()
        };
        if cx.open_connections() > self.settings.max_connections_per_shard {
            ShardCounters::bump(&self.counters().rejected_over_capacity, 1);
            self.respond_text(
                cx,
                conn,
                503,
                b"server at connection capacity\n",
                Reply::closing(),
            );
            return;
        }
        self.arm_timer(cx, conn);
        if self.conns[conn.slot()].timer.is_none() {
            // The wheel is sized so this cannot happen while the limits hold; a connection
            // is never run without its header timeout.
            ShardCounters::bump(&self.counters().rejected_over_capacity, 1);
            let body = b"server busy: no timer free\n";
            self.respond_text(cx, conn, 503, body, Reply::closing());
        }
    }

    /// Bytes arrived on an HTTP connection.
    pub fn on_recv(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        data: &[u8],
        media: &mut Media,
    ) -> Input {
        let slot = conn.slot();
        let state = &mut self.conns[slot];
        if matches!(state.phase, Phase::Finished | Phase::Upgraded) {
            return Input::Http;
        }
        state.last_activity_ms = cx.now_ms();
        state.received_any = true;
        let mut input = std::mem::take(&mut state.tail);
        let consumed = if input.is_empty() {
            let consumed = self.process(cx, conn, data, media);
            input.extend_from_slice(&data[consumed..]);
            0
        } else {
            input.extend_from_slice(data);
            self.process(cx, conn, &input, media)
        };
        input.drain(..consumed);
        self.keep_tail(cx, conn, input)
    }

    /// Keeps unconsumed input for later, within its cap; hands it over after an upgrade.
    fn keep_tail(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, mut tail: Vec<u8>) -> Input {
        let state = &mut self.conns[conn.slot()];
        match state.phase {
            Phase::Upgraded => {
                // The connection is danmaku's now: nothing of it stays here.
                *state = HttpConn::default();
                return Input::Upgraded { leftover: tail };
            }
            Phase::Finished => return Input::Http,
            Phase::Open | Phase::Waiting(_) | Phase::Body(_) | Phase::Ledger(_) => {}
        }
        let cap = self
            .settings
            .pipeline_buffer_max_bytes
            .max(self.settings.limits.head_max_bytes);
        if tail.len() > cap {
            log::debug!(
                "shard {}: pipelined input over the buffer cap; closing",
                self.shard
            );
            state.phase = Phase::Finished;
            cx.close(conn);
            return Input::Http;
        }
        if tail.is_empty() && tail.capacity() > 4096 {
            tail = Vec::new();
        }
        state.tail = tail;
        Input::Http
    }

    /// Decodes and answers requests from `buf`; returns how many bytes were consumed. Stops
    /// at a waiting request, a final response, an upgrade, or the pipeline cap.
    fn process(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        buf: &[u8],
        media: &mut Media,
    ) -> usize {
        let slot = conn.slot();
        let mut pos = 0;
        while matches!(self.conns[slot].phase, Phase::Open | Phase::Body(_))
            && self.conns[slot].responses_queued < self.settings.pipeline_max_responses
        {
            let Some(decoder) = self.conns[slot].decoder.as_mut() else {
                // Open connections always have a decoder; nothing to decode without one.
                break;
            };
            match decoder.decode(&buf[pos..]) {
                Ok(Decoded::Head { head, consumed }) => {
                    pos += consumed;
                    self.conns[slot].head_started_ms = None;
                    self.answer(cx, conn, &head, media);
                }
                Ok(Decoded::Body {
                    data,
                    consumed,
                    last,
                }) => {
                    pos += consumed;
                    self.admin_body(conn, data);
                    if last {
                        self.admin_body_end(cx, conn, media);
                    }
                }
                Ok(Decoded::NeedMore) => {
                    if pos < buf.len() && self.conns[slot].head_started_ms.is_none() {
                        self.conns[slot].head_started_ms = Some(cx.now_ms());
                    }
                    break;
                }
                Err(error) => {
                    log::debug!("shard {}: bad request: {error}", self.shard);
                    ShardCounters::bump(&self.counters().bad_requests, 1);
                    let body = format!("{error}\n");
                    self.respond_text(cx, conn, error.status(), body.as_bytes(), Reply::closing());
                    return buf.len();
                }
            }
        }
        pos
    }

    /// Everything queued on an HTTP connection was written: requests held back behind the
    /// pipeline cap go on.
    pub fn on_sent(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, media: &mut Media) -> Input {
        let state = &mut self.conns[conn.slot()];
        state.responses_queued = 0;
        state.last_activity_ms = cx.now_ms();
        if !matches!(state.phase, Phase::Open) {
            return Input::Http;
        }
        if cx.is_draining() && state.tail.is_empty() && state.head_started_ms.is_none() {
            state.phase = Phase::Finished;
            cx.close(conn);
            return Input::Http;
        }
        self.resume(cx, conn, media)
    }

    /// Answers the request a connection was waiting on, then goes on with what was pipelined
    /// behind it.
    pub fn answer_waiting(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        response: MediaResponse,
        media: &mut Media,
    ) -> Input {
        let state = &mut self.conns[conn.slot()];
        if state.conn != Some(conn) || !cx.is_open(conn) {
            return Input::Http;
        }
        let Phase::Waiting(waiting) = std::mem::take(&mut state.phase) else {
            return Input::Http;
        };
        let reply = waiting.reply.while_draining(cx);
        if matches!(
            response,
            MediaResponse::StreamStart { .. }
                | MediaResponse::StreamMore { .. }
                | MediaResponse::StreamAbort
        ) {
            return match self.send_stream(cx, conn, response, reply) {
                respond::Streamed::More => {
                    self.conns[conn.slot()].phase = Phase::Waiting(waiting);
                    Input::Http
                }
                respond::Streamed::Done => self.resume(cx, conn, media),
                respond::Streamed::Closed => Input::Http,
            };
        }
        self.send_media(cx, conn, response, waiting.range.as_deref(), reply);
        self.resume(cx, conn, media)
    }

    /// Processes input held in the tail.
    fn resume(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, media: &mut Media) -> Input {
        let state = &mut self.conns[conn.slot()];
        if state.tail.is_empty() || !matches!(state.phase, Phase::Open) {
            return Input::Http;
        }
        let mut tail = std::mem::take(&mut state.tail);
        let consumed = self.process(cx, conn, &tail, media);
        tail.drain(..consumed);
        self.keep_tail(cx, conn, tail)
    }

    /// The engine closed an HTTP connection.
    /// A connection closed. Returns [`Parked::Yes`] when it had a request waiting in media
    /// (which must then forget it).
    pub fn on_close(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        reason: CloseReason,
    ) -> Parked {
        let state = &mut self.conns[conn.slot()];
        let parked = if matches!(state.phase, Phase::Waiting(_)) {
            Parked::Yes
        } else {
            Parked::No
        };
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
        parked
    }

    /// Lets an upgraded connection go: its timer and decoder are dropped.
    fn release(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let state = &mut self.conns[conn.slot()];
        if let Some(timer) = state.timer.take() {
            cx.timer_cancel(timer);
        }
        *state = HttpConn {
            phase: Phase::Upgraded,
            ..HttpConn::default()
        };
    }

    fn arm_timer(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let state = &mut self.conns[conn.slot()];
        let deadline = match state.head_started_ms {
            Some(started) => started + self.settings.header_timeout_ms,
            None if !state.received_any => state.last_activity_ms + self.settings.header_timeout_ms,
            None => state.last_activity_ms + self.settings.idle_timeout_ms,
        };
        let key = TimerKey::Conn {
            slot: conn.slot() as u32,
        };
        state.timer = cx.timer_after(deadline.saturating_sub(cx.now_ms()), key.into());
    }

    /// A connection's timer fired: a header timeout (408), an idle close, or a re-arm.
    pub fn on_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, slot: usize) {
        let state = &mut self.conns[slot];
        if state.timer != Some(id) {
            return;
        }
        state.timer = None;
        let Some(conn) = state.conn.filter(|c| cx.is_open(*c)) else {
            return;
        };
        let now = cx.now_ms();
        let queued = cx.queued_bytes(conn);
        match state.phase {
            Phase::Upgraded => return,
            // Closing once the last response is written: only a reader that stalls matters.
            Phase::Finished if queued == 0 => return,
            Phase::Finished
            | Phase::Open
            | Phase::Waiting(_)
            | Phase::Body(_)
            | Phase::Ledger(_) => {}
        }
        if queued > 0 && queued == state.stalled_queue_bytes {
            // Nothing of the queue went out since the last check: a client that does not
            // read holds its slot no longer than the idle timeout.
            if now >= state.last_activity_ms + self.settings.idle_timeout_ms {
                state.phase = Phase::Finished;
                cx.close(conn);
                ShardCounters::bump(&self.counters().send_stalls, 1);
                return;
            }
            return self.arm_timer(cx, conn);
        }
        state.stalled_queue_bytes = queued;
        if matches!(state.phase, Phase::Finished) {
            state.last_activity_ms = now;
            return self.arm_timer(cx, conn);
        }
        if let Some(started) = state.head_started_ms {
            if now >= started + self.settings.header_timeout_ms {
                ShardCounters::bump(&self.counters().header_timeouts, 1);
                self.respond_text(cx, conn, 408, b"request header timeout\n", Reply::closing());
                return;
            }
        } else if cx.queued_bytes(conn) == 0 {
            let limit = if state.received_any {
                self.settings.idle_timeout_ms
            } else {
                self.settings.header_timeout_ms
            };
            if now >= state.last_activity_ms + limit {
                state.phase = Phase::Finished;
                cx.close(conn);
                ShardCounters::bump(&self.counters().idle_timeouts, 1);
                return;
            }
        } else {
            // Output still draining counts as activity.
            state.last_activity_ms = now;
        }
        self.arm_timer(cx, conn);
    }

    /// A drain began: idle connections close now, busy ones once their response is written.
    pub fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        for state in &mut self.conns {
            let Some(conn) = state.conn.filter(|c| cx.is_open(*c)) else {
                continue;
            };
            if !matches!(state.phase, Phase::Open) {
                continue;
            }
            let idle = state.tail.is_empty() && state.head_started_ms.is_none();
            if idle && cx.queued_bytes(conn) == 0 {
                state.phase = Phase::Finished;
                cx.close(conn);
            } else if idle {
                // A response is still being written: close once it is.
                state.phase = Phase::Finished;
                cx.close_after_flush(conn);
            }
        }
    }
}
