//! The route table: which path is answered by whom.
//!
//! | path | answered by |
//! |---|---|
//! | `/healthz`, `/metrics`, `/api/v1/info`, `/static/…` | here |
//! | `/api/v1/streams`, `/live/…` | media (this shard's index) |
//! | `/ws` | here (the 101), then danmaku owns the connection |
//! | `/api/v1/wallets/…`, `/api/v1/rooms/…` | the ledger thread ([`super::admin`]) |
//!
//! Only GET and HEAD are served (and POST on the admin API); anything else is 405. `/metrics` and `/api/v1/streams`
//! name every live stream, so `http.api_token` guards them (and they are closed when playback
//! needs tokens and no api token is set).

use super::respond::{Body, Reply, Streamed};
use super::settings::ApiAccess;
use super::{metrics, Http, Phase, Waiting};
use crate::common::auth::constant_time_eq;
use crate::common::query::Query;
use crate::media::{Delivery, Media, MediaResponse};
use crate::shard::msg::ShardMsg;
use shardcast_engine::{ConnId, Ctx, ShardCounters};
use shardcast_http::{Method, RequestHead};

/// How long browsers may cache static files.
const STATIC_CACHE_CONTROL: &str = "public, max-age=3600";

impl Http {
    /// Routes one request and queues its response (or parks it, or upgrades).
    pub(super) fn answer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        media: &mut Media,
    ) {
        ShardCounters::bump(&self.counters().requests, 1);
        if self.answered_elsewhere(cx, conn, head, media) {
            return;
        }
        let reply = Reply::for_request(head, cx);
        if !matches!(head.method(), Method::Get | Method::Head) {
            let headers = [
                ("Allow", "GET, HEAD"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ];
            let body = Body::Inline(b"method not allowed\n");
            return self.respond(cx, conn, 405, &headers, body, reply);
        }
        let query = Query::new(head.query().unwrap_or(""));
        match head.path() {
            "/ws" => self.upgrade(cx, conn, head),
            "/healthz" => {
                let headers = [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Cache-Control", "no-store"),
                ];
                self.respond(cx, conn, 200, &headers, Body::Inline(b"ok\n"), reply);
            }
            "/api/v1/time" => {
                // The clock players sync to (DASH UTCTiming http-iso): ISO 8601, UTC, ms.
                let now = shardcast_media::manifest::Iso8601Ms(cx.wall_ms()).to_string();
                let headers = [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Cache-Control", "no-store"),
                    ("Access-Control-Allow-Origin", "*"),
                ];
                self.respond(cx, conn, 200, &headers, Body::Shared(now.into()), reply);
            }
            "/metrics" | "/api/v1/streams" | "/api/v1/recordings" if !self.api_allowed(head) => {
                let body = Body::Inline(b"a bearer token (http.api_token) is required\n");
                let headers = [
                    ("WWW-Authenticate", "Bearer"),
                    ("Content-Type", "text/plain; charset=utf-8"),
                ];
                let status = match self.settings.api_access {
                    ApiAccess::Closed => 403,
                    ApiAccess::Open | ApiAccess::Bearer(_) => 401,
                };
                self.respond(cx, conn, status, &headers, body, reply);
            }
            "/metrics" => {
                let text = metrics::render(&self.info, &self.settings, &media.rungs());
                let headers = [
                    ("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                    ("Cache-Control", "no-store"),
                ];
                let body = Body::Shared(bytes::Bytes::from(text));
                self.respond(cx, conn, 200, &headers, body, reply);
            }
            "/api/v1/info" => {
                let json = metrics::info_json(&self.info, &self.settings);
                self.respond_json(cx, conn, json, reply);
            }
            "/api/v1/streams" => {
                let mut json = media.streams_json(cx.wall_ms()).to_string();
                json.push('\n');
                self.respond_json(cx, conn, json, reply);
            }
            "/api/v1/recordings" => {
                let response = media.list_recordings(cx, conn);
                self.await_media(cx, conn, head, response);
            }
            path => match (path.strip_prefix("/live/"), path.strip_prefix("/static/")) {
                (Some(rest), _) => self.live(cx, conn, head, rest, query, media),
                (_, Some(name)) => self.serve_static(cx, conn, head, name, reply),
                _ => match path.strip_prefix("/vod/") {
                    Some(rest) => {
                        let response = media.vod_request(cx, conn, rest, query);
                        self.await_media(cx, conn, head, response);
                    }
                    None => self.respond_text(cx, conn, 404, b"not found\n", reply),
                },
            },
        }
    }

    /// True when `head` may read the pages that name streams (`http.api_token`).
    fn api_allowed(&self, head: &RequestHead<'_>) -> bool {
        match &self.settings.api_access {
            ApiAccess::Open => true,
            ApiAccess::Closed => false,
            ApiAccess::Bearer(token) => head
                .header_str("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes())),
        }
    }

    /// The admin API, the web pages and WHEP, which take other methods than GET and HEAD.
    fn answered_elsewhere(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        media: &mut Media,
    ) -> bool {
        self.admin(cx, conn, head) || self.web(cx, conn, head) || self.whep(cx, conn, head, media)
    }

    /// `/live/…`: media answers now, or the request waits for the index.
    fn live(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        rest: &str,
        query: Query<'_>,
        media: &mut Media,
    ) {
        // A segment still being made goes out as it is made where chunked transfer can carry
        // it: a whole GET over HTTP/1.1.
        let delivery = if head.method() == Method::Get
            && head.range().is_none()
            && head.version_minor() >= 1
        {
            Delivery::AsMade
        } else {
            Delivery::Whole
        };
        // One line per media request at trace level (`SHARDCAST_LOG=trace`): how bench-edge
        // counts the requests an origin gets per object.
        log::trace!("live request: {}", head.target());
        let response = media.http_request(cx, conn, rest, query, delivery);
        self.await_media(cx, conn, head, response);
    }

    /// Sends a media answer now, or parks the connection until the rest of it (or all of it)
    /// comes from media ([`Http::answer_waiting`]).
    pub(super) fn await_media(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        response: MediaResponse,
    ) {
        let reply = Reply::for_request(head, cx);
        let wait = |reply| {
            Phase::Waiting(Box::new(Waiting {
                reply,
                range: head.range().map(str::to_string),
            }))
        };
        match response {
            MediaResponse::Waiting => self.conns[conn.slot()].phase = wait(reply),
            response @ MediaResponse::StreamStart { .. } => {
                if self.send_stream(cx, conn, response, reply) == Streamed::More {
                    self.conns[conn.slot()].phase = wait(reply);
                }
            }
            response => self.send_media(cx, conn, response, head.range(), reply),
        }
    }

    /// `GET /ws`: 101 and a switch to the WebSocket codec, or the refusal.
    fn upgrade(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, head: &RequestHead<'_>) {
        let reply = Reply::for_request(head, cx).and_close();
        if !head.is_websocket_upgrade() {
            let headers = [
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ];
            let body = Body::Inline(b"websocket upgrade required\n");
            return self.respond(cx, conn, 426, &headers, body, reply);
        }
        match shardcast_ws::accept(head, shardcast_wire::SUBPROTOCOL) {
            Ok(accept) => {
                let date = self.date(cx);
                self.queue_raw(cx, conn, |out| accept.write_response(out, &date));
                self.release(cx, conn);
            }
            Err(error) => {
                ShardCounters::bump(&self.counters().bad_requests, 1);
                let body = format!("{error}\n");
                let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
                if error.status() == 426 {
                    headers.push(("Sec-WebSocket-Version", "13"));
                }
                let reply = Reply {
                    body: super::respond::BodyMode::Send,
                    ..reply
                };
                let body = Body::Inline(body.as_bytes());
                self.respond(cx, conn, error.status(), &headers, body, reply);
            }
        }
    }

    /// `/static/{name}`: a file loaded at start, with ETag, `If-None-Match` and one `Range`.
    fn serve_static(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        name: &str,
        reply: Reply,
    ) {
        let files = self.settings.static_files.clone();
        match files
            .get(name)
            .filter(|_| !name.split('/').any(|s| s == ".."))
        {
            Some(file) => self.serve_file(cx, conn, head, file, STATIC_CACHE_CONTROL, reply),
            None => self.respond_text(cx, conn, 404, b"not found\n", reply),
        }
    }
}
