//! The admin API: wallets, rooms' gift logs and leaderboards, for the platform's own services.
//! Every call is answered by the ledger thread; the request waits for it, and requests
//! pipelined behind it wait too.
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/v1/wallets/{user}/credit` `{"amount": N, "idempotency_key": "K"}` | `{user, entry, balance, duplicate}`: credits the wallet once per key |
//! | `GET /api/v1/wallets/{user}` | `{user, balance}` |
//! | `GET /api/v1/rooms/{room}/gifts?after=ID&limit=N` | `{room, gifts: [{entry, user, gift_id, count, value, time_ms}], next_after}`, oldest first |
//! | `GET /api/v1/rooms/{room}/leaderboard?limit=N` | `{room, top: [{user, value}]}`, largest first |
//!
//! Auth: `Authorization: Bearer TOKEN` with an admin token (`shardcast token --admin`, signed
//! with `auth.secret`); without `auth.secret` no admin token verifies and the API is closed.
//! Errors are JSON `{error, cause}`: 400 a bad body, 401/403 auth, 413 a body over
//! [`BODY_MAX_BYTES`], 503 the ledger cannot write (`store_unavailable`).

use super::respond::{Body, Reply};
use super::{Http, Input, Phase};
use crate::common::auth::Audience;
use crate::common::query::Query;
use crate::media::Media;
use crate::shard::msg::ShardMsg;
use crate::state::msg::{ApiCall, ApiRequest, StateRequest};
use shardcast_engine::{ConnId, Ctx};
use shardcast_http::{Method, RequestHead};

/// Largest request body the admin API reads.
pub const BODY_MAX_BYTES: usize = 4096;

/// Longest user or room name in an admin path.
const NAME_MAX_BYTES: usize = shardcast_ledger::NAME_MAX_BYTES;

/// Rows a gift-log or leaderboard answer holds unless `limit` says fewer.
const ROWS_DEFAULT: usize = 100;

/// A request body being read: a credit's JSON or a WHEP offer.
pub(super) struct BodyRead {
    reply: Reply,
    purpose: BodyFor,
    expected: usize,
    buf: Vec<u8>,
}

/// What a body is read for.
pub(super) enum BodyFor {
    Credit { user: String },
    Whep { stream: std::sync::Arc<str> },
    Whip(Box<super::whep::WhipBody>),
}

impl BodyRead {
    pub(super) fn new(reply: Reply, purpose: BodyFor, expected: usize) -> Self {
        BodyRead {
            reply,
            purpose,
            expected,
            buf: Vec::with_capacity(expected),
        }
    }
}

/// What an admin path asks for, before its body (if any) is read.
enum Route {
    Credit { user: String },
    Call(ApiCall),
}

impl Http {
    /// Answers an admin API request (or starts reading its body). False when `head` is not
    /// an admin path.
    pub(super) fn admin(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
    ) -> bool {
        let path = head.path();
        if !path.starts_with("/api/v1/wallets/") && !path.starts_with("/api/v1/rooms/") {
            return false;
        }
        let reply = Reply::for_request(head, cx);
        let query = Query::new(head.query().unwrap_or(""));
        let route = match route(path, &query) {
            Some(route) => route,
            None => {
                self.respond_error(cx, conn, 404, "not found", "", reply);
                return true;
            }
        };
        let wanted = match route {
            Route::Credit { .. } => Method::Post,
            Route::Call(_) => Method::Get,
        };
        if head.method() != wanted {
            let allow = if wanted == Method::Post {
                "POST"
            } else {
                "GET"
            };
            let headers = [("Allow", allow), ("Content-Type", "application/json")];
            let body = format!("{{\"error\":\"use {allow}\",\"cause\":\"method\"}}\n");
            self.respond(cx, conn, 405, &headers, Body::Shared(body.into()), reply);
            return true;
        }
        let public = self.settings.web.enabled
            && self.settings.web.leaderboard_public
            && matches!(route, Route::Call(ApiCall::Leaderboard { .. }));
        if let Err((status, why)) =
            self.admin_allowed(head, cx)
                .or_else(|e| if public { Ok(()) } else { Err(e) })
        {
            self.respond_error(cx, conn, status, why, "unauthorized", reply);
            return true;
        }
        match route {
            Route::Call(call) => self.ask_ledger(cx, conn, reply, call),
            Route::Credit { user } => {
                let expected = head.content_length().unwrap_or(0) as usize;
                if expected == 0 || expected > BODY_MAX_BYTES {
                    let why = "a JSON body of 1 to 4096 bytes is required";
                    let status = if expected == 0 { 400 } else { 413 };
                    // The body (if any) still follows; the connection closes after the answer.
                    self.respond_error(cx, conn, status, why, "body", reply.and_close());
                    return true;
                }
                let state = &mut self.conns[conn.slot()];
                // The header timeout bounds the body too.
                state.head_started_ms = Some(cx.now_ms());
                state.phase = Phase::Body(Box::new(BodyRead::new(
                    reply,
                    BodyFor::Credit { user },
                    expected,
                )));
            }
        }
        true
    }

    /// Bytes of a credit's body.
    pub(super) fn admin_body(&mut self, conn: ConnId, data: &[u8]) {
        if let Phase::Body(read) = &mut self.conns[conn.slot()].phase {
            let room = read.expected - read.buf.len();
            read.buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    /// A body is complete: a credit goes to the ledger, a WHEP offer is answered.
    pub(super) fn admin_body_end(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        media: &mut Media,
    ) {
        let state = &mut self.conns[conn.slot()];
        if !matches!(state.phase, Phase::Body(_)) {
            return;
        }
        state.head_started_ms = None;
        let Phase::Body(read) = std::mem::take(&mut state.phase) else {
            return;
        };
        let BodyRead {
            reply,
            purpose,
            buf,
            ..
        } = *read;
        let user = match purpose {
            BodyFor::Credit { user } => user,
            BodyFor::Whep { stream } => {
                return self.whep_offer(cx, conn, reply, (stream, buf), media)
            }
            BodyFor::Whip(whip) => return self.whip_offer(cx, conn, reply, (*whip, buf), media),
        };
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Credit {
            amount: u64,
            idempotency_key: String,
        }
        match serde_json::from_slice::<Credit>(&buf) {
            Ok(credit) => {
                let call = ApiCall::Credit {
                    user,
                    amount: credit.amount,
                    key: credit.idempotency_key,
                };
                self.ask_ledger(cx, conn, reply, call);
            }
            Err(error) => {
                let why =
                    format!("expected {{\"amount\": N, \"idempotency_key\": \"K\"}}: {error}");
                self.respond_error(cx, conn, 400, &why, "body", reply);
            }
        }
    }

    /// The ledger answered this connection's admin call.
    pub fn on_api_done(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        json: String,
        media: &mut Media,
    ) -> Input {
        let state = &mut self.conns[conn.slot()];
        if state.conn != Some(conn) || !cx.is_open(conn) {
            return Input::Http;
        }
        let Phase::Ledger(reply) = std::mem::take(&mut state.phase) else {
            return Input::Http;
        };
        let reply = reply.while_draining(cx);
        let headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ];
        self.respond(cx, conn, status, &headers, Body::Shared(json.into()), reply);
        self.resume(cx, conn, media)
    }

    fn ask_ledger(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, reply: Reply, call: ApiCall) {
        self.conns[conn.slot()].phase = Phase::Ledger(reply);
        let request = StateRequest::Api(Box::new(ApiRequest { conn, call }));
        cx.mesh_send(self.settings.danmaku.ledger, request.into());
    }

    /// An admin token in `Authorization: Bearer`, or the status and reason to refuse.
    fn admin_allowed(
        &self,
        head: &RequestHead<'_>,
        cx: &Ctx<ShardMsg>,
    ) -> Result<(), (u16, &'static str)> {
        let token = head
            .header_str("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or((401, "an admin token is required (Authorization: Bearer)"))?;
        self.settings
            .danmaku
            .tokens
            .verify_for(token.trim(), cx.wall_ms() / 1000, Audience::Admin)
            .map(|_| ())
            .map_err(|_| (403, "not a valid admin token"))
    }

    pub(super) fn respond_error(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        why: &str,
        cause: &str,
        reply: Reply,
    ) {
        let body = serde_json::json!({ "error": why, "cause": cause }).to_string() + "\n";
        let mut headers = vec![("Content-Type", "application/json")];
        if status == 401 {
            headers.push(("WWW-Authenticate", "Bearer"));
        }
        self.respond(cx, conn, status, &headers, Body::Shared(body.into()), reply);
    }
}

/// The admin route of `path`, or `None` (404).
fn route(path: &str, query: &Query<'_>) -> Option<Route> {
    let name = |s: &str| {
        (!s.is_empty() && s.len() <= NAME_MAX_BYTES && !s.contains('/')).then(|| s.to_string())
    };
    let limit = query
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(ROWS_DEFAULT);
    if let Some(rest) = path.strip_prefix("/api/v1/wallets/") {
        return match rest.strip_suffix("/credit") {
            Some(user) => Some(Route::Credit { user: name(user)? }),
            None => Some(Route::Call(ApiCall::Wallet { user: name(rest)? })),
        };
    }
    let rest = path.strip_prefix("/api/v1/rooms/")?;
    if let Some(room) = rest.strip_suffix("/gifts") {
        let after = match query.get("after") {
            Some(v) => v.parse().ok()?,
            None => 0,
        };
        return Some(Route::Call(ApiCall::Gifts {
            room: name(room)?,
            after,
            limit,
        }));
    }
    let room = rest.strip_suffix("/leaderboard")?;
    Some(Route::Call(ApiCall::Leaderboard {
        room: name(room)?,
        limit,
    }))
}
