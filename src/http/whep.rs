//! WHEP (draft-ietf-wish-whep) and WHIP (RFC 9725):
//!
//! - `POST /whep/live/{stream}` with an SDP offer is answered 201 with the SDP answer and a
//!   `Location` (`/whep/session/{id}`); the playback token, when signed playback URLs are on,
//!   is `Authorization: Bearer` (or `?token=`). `POST /whep/live/{stream}/{rung}` pins an
//!   H.264 rung of the ladder (`360p`, …) instead of the source's video.
//! - `POST /whip/live/{stream}` publishes: the stream key or a publish token is
//!   `Authorization: Bearer` (or `?key=`), `?role=backup` stands by as a backup publisher.
//!   It is answered 201 (`Location: /whip/session/{id}`) once the stream's home accepts the
//!   publisher, 409 with the reason when it refuses (a primary is live).
//! - `DELETE` on a session's resource ends it. `OPTIONS` answers a CORS preflight, so pages on
//!   other origins can play and publish. `PATCH` (trickle ICE) is 405: the server is ICE-lite
//!   and names its candidates (its UDP port, and the same port over TCP) in the answer, so
//!   there is nothing to trickle.

use super::admin::{BodyFor, BodyRead};
use super::respond::{Body, Reply};
use super::{Http, Phase};
use crate::media::msg::PublishRole;
use crate::media::whip::WhipRequest;
use crate::media::{Media, MediaResponse};
use crate::shard::msg::ShardMsg;
use shardcast_engine::{ConnId, Ctx};
use shardcast_http::{Method, RequestHead};
use std::sync::Arc;

/// Largest SDP offer read (a browser's is 3-8 KiB).
pub const SDP_MAX_BYTES: usize = 64 * 1024;

/// What a WHIP request's body is read for.
pub(super) struct WhipBody {
    stream: Arc<str>,
    credential: Option<String>,
    role: PublishRole,
    title: Option<String>,
}

const CORS: [(&str, &str); 4] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS"),
    (
        "Access-Control-Allow-Headers",
        "content-type, authorization",
    ),
    ("Access-Control-Expose-Headers", "location"),
];

impl Http {
    /// Answers `/whep/…`; false for any other path.
    pub(super) fn whep(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        media: &mut Media,
    ) -> bool {
        let path = head.path();
        let reply = Reply::for_request(head, cx);
        if let Some(stream) = path.strip_prefix("/whep/live/") {
            match head.method() {
                Method::Post => self.whep_post(cx, conn, head, stream, media),
                Method::Options => self.cors_preflight(cx, conn, reply),
                _ => self.whep_refuse(cx, conn, 405, "POST, OPTIONS", reply),
            }
            return true;
        }
        if let Some(stream) = path.strip_prefix("/whip/live/") {
            match head.method() {
                Method::Post => self.whip_post(cx, conn, head, stream, media),
                Method::Options => self.cors_preflight(cx, conn, reply),
                _ => self.whep_refuse(cx, conn, 405, "POST, OPTIONS", reply),
            }
            return true;
        }
        let session =
            (path.strip_prefix("/whep/session/")).or_else(|| path.strip_prefix("/whip/session/"));
        if let Some(id) = session {
            match head.method() {
                Method::Delete => {
                    let response = media.whep_delete(cx, conn, id);
                    self.await_media(cx, conn, head, response);
                }
                Method::Options => self.cors_preflight(cx, conn, reply),
                _ => self.whep_refuse(cx, conn, 405, "DELETE, OPTIONS", reply),
            }
            return true;
        }
        if path.starts_with("/whep/") || path.starts_with("/whip/") {
            self.whep_text(cx, conn, 404, "not found", reply);
            return true;
        }
        false
    }

    /// The offer's body follows; [`Http::whep_offer`] answers it once read.
    fn whep_post(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        stream: &str,
        media: &Media,
    ) {
        let reply = Reply::for_request(head, cx);
        // The playback token (signed playback URLs): `Authorization: Bearer`, or `?token=`.
        let bearer = head
            .header_str("authorization")
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let query = crate::common::query::Query::new(head.query().unwrap_or(""));
        let token = bearer.or_else(|| query.get("token").map(|t| t.into_owned()));
        // `{stream}/{rung}` pins a rung; the token is the stream's.
        let (base, _) = crate::media::names::rtc_feed(stream);
        if let Err(MediaResponse::Status(status, why)) =
            media.verify_playback(cx, base, token.as_deref())
        {
            let reply = reply.and_close();
            return self.whep_text(cx, conn, status, why, reply);
        }
        let offer = BodyFor::Whep {
            stream: Arc::from(stream),
        };
        self.read_offer(cx, conn, head, offer);
    }

    /// Reads an offer's body for `purpose` (answered once read), or refuses a request that is
    /// not `application/sdp` of 1 byte to [`SDP_MAX_BYTES`].
    fn read_offer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        purpose: BodyFor,
    ) {
        let reply = Reply::for_request(head, cx);
        let sdp = head
            .header_str("content-type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"));
        if !sdp {
            // The body (if any) still follows; the connection closes after the answer.
            return self.whep_text(
                cx,
                conn,
                415,
                "the offer must be application/sdp",
                reply.and_close(),
            );
        }
        let expected = head.content_length().unwrap_or(0) as usize;
        if expected == 0 || expected > SDP_MAX_BYTES {
            let status = if expected == 0 { 400 } else { 413 };
            let why = "an SDP offer of 1 byte to 64 KiB is required";
            return self.whep_text(cx, conn, status, why, reply.and_close());
        }
        let state = &mut self.conns[conn.slot()];
        // The header timeout bounds the body too.
        state.head_started_ms = Some(cx.now_ms());
        state.phase = Phase::Body(Box::new(BodyRead::new(reply, purpose, expected)));
    }

    /// A WHIP publish: the credential is checked now, the offer's body follows
    /// ([`Http::whip_offer`]).
    fn whip_post(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        stream: &str,
        media: &mut Media,
    ) {
        let reply = Reply::for_request(head, cx);
        let query = crate::common::query::Query::new(head.query().unwrap_or(""));
        let bearer = head
            .header_str("authorization")
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let credential = bearer.or_else(|| query.get("key").map(|k| k.into_owned()));
        let role = match query.get("role").as_deref() {
            Some("backup") => PublishRole::Backup,
            _ => PublishRole::Primary,
        };
        let title = (query.get("title")).and_then(|t| crate::media::names::publish_title(&t));
        let request = WhipRequest {
            stream,
            credential: credential.as_deref(),
            role,
            title: title.as_deref(),
        };
        if let Err((status, why)) = media.whip_allowed(cx, conn, &request) {
            return self.whep_text(cx, conn, status, why, reply.and_close());
        }
        let whip = WhipBody {
            stream: Arc::from(stream),
            credential,
            role,
            title,
        };
        self.read_offer(cx, conn, head, BodyFor::Whip(Box::new(whip)));
    }

    /// A whole WHIP offer: the session is made and the stream claimed; the request waits for
    /// the home's answer.
    pub(super) fn whip_offer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        reply: Reply,
        (whip, body): (WhipBody, Vec<u8>),
        media: &mut Media,
    ) {
        let Ok(sdp) = String::from_utf8(body) else {
            return self.whep_text(cx, conn, 400, "the offer is not UTF-8", reply);
        };
        let request = WhipRequest {
            stream: &whip.stream,
            credential: whip.credential.as_deref(),
            role: whip.role,
            title: whip.title.as_deref(),
        };
        match media.whip_offer(cx, conn, &request, &sdp) {
            Ok(()) => {
                let waiting = super::Waiting { reply, range: None };
                self.conns[conn.slot()].phase = Phase::Waiting(Box::new(waiting));
            }
            Err((status, why)) => self.whep_text(cx, conn, status, &why, reply),
        }
    }

    /// 201 with an SDP answer and the session's resource.
    pub(super) fn sdp_created(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        location: &str,
        sdp: String,
        reply: Reply,
    ) {
        let mut headers = vec![("Content-Type", "application/sdp"), ("Location", location)];
        headers.extend_from_slice(&CORS);
        self.respond(cx, conn, 201, &headers, Body::Shared(sdp.into()), reply);
    }

    /// A whole offer: the session's answer, or why not.
    pub(super) fn whep_offer(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        reply: Reply,
        (stream, body): (Arc<str>, Vec<u8>),
        media: &mut Media,
    ) {
        let Ok(sdp) = String::from_utf8(body) else {
            return self.whep_text(cx, conn, 400, "the offer is not UTF-8", reply);
        };
        match media.whep_offer(cx, &stream, &sdp) {
            Ok((answer, id)) => {
                let location = format!("/whep/session/{id}");
                self.sdp_created(cx, conn, &location, answer, reply);
            }
            Err((status, why)) => {
                let body = format!("{why}\n");
                let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
                if status == 503 {
                    headers.push(("Retry-After", "5"));
                }
                headers.extend_from_slice(&CORS);
                self.respond(cx, conn, status, &headers, Body::Shared(body.into()), reply);
            }
        }
    }

    fn cors_preflight(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, reply: Reply) {
        let mut headers = CORS.to_vec();
        headers.push(("Access-Control-Max-Age", "86400"));
        self.respond(cx, conn, 204, &headers, Body::None, reply);
    }

    fn whep_refuse(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        allow: &str,
        reply: Reply,
    ) {
        let mut headers = vec![
            ("Allow", allow),
            ("Content-Type", "text/plain; charset=utf-8"),
        ];
        headers.extend_from_slice(&CORS);
        let body = Body::Inline(b"method not allowed (the server is ICE-lite: no trickle ICE)\n");
        self.respond(cx, conn, status, &headers, body, reply);
    }

    fn whep_text(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        status: u16,
        why: &str,
        reply: Reply,
    ) {
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
        headers.extend_from_slice(&CORS);
        let body = format!("{why}\n");
        self.respond(cx, conn, status, &headers, Body::Shared(body.into()), reply);
    }
}
