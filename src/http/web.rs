//! The web front end: the pages people open (the stream list, the watch page with its
//! danmaku overlay, how to publish), their assets, and the small public API they use.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the live streams (`web/index.html`) |
//! | `GET /watch/{stream}` | the player and the room's danmaku (`web/watch.html`) |
//! | `GET /publish` | how to publish from OBS and ffmpeg (`web/publish.html`) |
//! | `GET /web/{path}` | the pages' scripts, styles and vendored players |
//! | `GET /api/v1/web` | what the pages need to know: gifts, guests, the RTMP address |
//! | `POST /api/v1/guest` | a chat token for a new guest name, when guests are on |
//! | `GET /api/v1/publish-info` | the server's publish key, for an admin token or that key |
//!
//! The files are embedded in the binary at build time (`build.rs`); nothing is read from disk.
//! Guest tokens are chat tokens of role viewer for any room, signed with the danmaku key, so
//! guests are held to every limit an ordinary viewer is (chat, like and gift rates, kicks);
//! an address may take `web.guest_tokens_per_minute` of them.

use super::respond::{Body, Reply};
use super::static_files::{StaticFile, StaticFiles};
use super::Http;
use crate::common::auth::{constant_time_eq, Audience, Claims, Role};
use crate::common::strikes::{Strike, Strikes};
use crate::media::settings::PublishAccess;
use crate::shard::msg::ShardMsg;
use serde_json::json;
use sha2::{Digest, Sha256};
use shardcast_engine::{ConnId, Ctx};
use shardcast_http::{etag_matches, parse_range, ContentRange, Method, RangeOutcome, RequestHead};

/// Addresses one shard tracks for the guest-token limit (about 48 B each).
const GUEST_ADDRESSES_MAX: usize = 4096;

/// Revalidated on every use (pages and scripts change with the binary; the ETag is cheap).
const WEB_CACHE_CONTROL: &str = "no-cache";
/// The vendored players change only with their pinned version.
const VENDOR_CACHE_CONTROL: &str = "public, max-age=86400";

/// The web front end's settings (`[web]`).
pub struct WebSettings {
    /// Serve the pages at all (`web.enabled`).
    pub enabled: bool,
    /// The embedded files.
    pub files: StaticFiles,
    /// Guests may take chat tokens (`web.guests`, resolved against `auth`).
    pub guests: bool,
    pub guest_token_ttl_s: u64,
    pub guest_tokens_per_minute: u32,
    /// Random bytes made at start: guest names are a hash of them, the shard and a count.
    pub guest_seed: [u8; 16],
    /// The room leaderboard is readable without an admin token.
    pub leaderboard_public: bool,
    /// The gifts viewers may send: (id, name, value).
    pub gifts: Vec<(u32, String, u64)>,
    /// Longest chat text, in characters (for the chat input).
    pub text_max_chars: usize,
}

/// One shard's guest state.
pub(super) struct Guests {
    issued: u64,
    per_address: Strikes,
}

impl Guests {
    pub(super) fn new(settings: &WebSettings) -> Guests {
        Guests {
            issued: 0,
            per_address: Strikes::new(
                settings.guest_tokens_per_minute,
                60_000,
                GUEST_ADDRESSES_MAX,
            ),
        }
    }
}

/// The embedded files: `(path under web/, contents)`.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The embedded web files, indexed.
pub fn embedded_files() -> StaticFiles {
    StaticFiles::from_static(embedded::WEB_FILES)
}

impl Http {
    /// Answers a web page, asset or the web API. False when `head` is none of them.
    pub(super) fn web(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
    ) -> bool {
        if !self.settings.web.enabled {
            return false;
        }
        let path = head.path();
        let reply = Reply::for_request(head, cx);
        if path == "/api/v1/guest" {
            if head.method() != Method::Post {
                self.respond_error(cx, conn, 405, "use POST", "method", reply);
            } else {
                self.guest_token(cx, conn, reply);
            }
            return true;
        }
        if !matches!(head.method(), Method::Get | Method::Head) {
            return false;
        }
        let (name, cache) = match path {
            "/" => ("index.html", WEB_CACHE_CONTROL),
            "/publish" => ("publish.html", WEB_CACHE_CONTROL),
            "/api/v1/web" => {
                let json = self.web_json(cx);
                self.respond_json(cx, conn, json, reply);
                return true;
            }
            "/api/v1/publish-info" => {
                self.publish_info(cx, conn, head, reply);
                return true;
            }
            _ => match (path.strip_prefix("/watch/"), path.strip_prefix("/web/")) {
                (Some(stream), _) if !stream.is_empty() && !stream.contains('/') => {
                    ("watch.html", WEB_CACHE_CONTROL)
                }
                (_, Some(asset)) if asset.starts_with("vendor/") => (asset, VENDOR_CACHE_CONTROL),
                (_, Some(asset)) => (asset, WEB_CACHE_CONTROL),
                _ => return false,
            },
        };
        let settings = self.settings.clone();
        match settings.web.files.get(name) {
            Some(file) => self.serve_file(cx, conn, head, file, cache, reply),
            None => self.respond_text(cx, conn, 404, b"not found\n", reply),
        }
        true
    }

    /// `POST /api/v1/guest`: a chat token for a new guest.
    fn guest_token(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, reply: Reply) {
        let web = &self.settings.web;
        if !web.guests {
            let why = "guest access is off on this server (web.guests); sign in with a token";
            return self.respond_error(cx, conn, 403, why, "guests_off", reply);
        }
        let now_ms = cx.wall_ms();
        if let Some(ip) = cx.peer_ip(conn) {
            if self.guests.per_address.is_blocked(ip, now_ms)
                || self.guests.per_address.strike(ip, now_ms) == Strike::Untracked
            {
                let why = "too many guest tokens from this address (web.guest_tokens_per_minute)";
                return self.respond_error(cx, conn, 429, why, "rate", reply);
            }
        }
        self.guests.issued += 1;
        let mut hash = Sha256::new();
        hash.update(web.guest_seed);
        hash.update((self.shard as u64).to_le_bytes());
        hash.update(self.guests.issued.to_le_bytes());
        let digest = hash.finalize();
        let user: String = std::iter::once("guest-".to_string())
            .chain(digest[..6].iter().map(|b| format!("{b:02x}")))
            .collect();
        let expires_unix_s = now_ms / 1000 + web.guest_token_ttl_s;
        let claims = Claims {
            user: user.clone(),
            room: "*".to_string(),
            role: Role::Viewer,
            expires_unix_s,
            audience: Audience::Chat,
        };
        let token = self.settings.danmaku.tokens.mint(&claims);
        let json = json!({ "user": user, "token": token, "expires_unix_s": expires_unix_s });
        self.respond_json(cx, conn, json.to_string() + "\n", reply);
    }

    /// `GET /api/v1/web`: what the pages need to know.
    fn web_json(&self, cx: &Ctx<ShardMsg>) -> String {
        let web = &self.settings.web;
        let gifts: Vec<_> = web
            .gifts
            .iter()
            .map(|(id, name, value)| json!({ "id": id, "name": name, "value": value }))
            .collect();
        let port_of = |listener: &str| {
            (self.info.listeners.iter())
                .find(|(name, _)| name == listener)
                .map(|(_, addr)| addr.port())
        };
        let (rtmp_port, rtmps_port) = (port_of("rtmp"), port_of("rtmps"));
        let media = &self.settings.media;
        json!({
            "guests": web.guests,
            "gifts": gifts,
            "leaderboard_public": web.leaderboard_public,
            "text_max_chars": web.text_max_chars,
            "rtmp_port": rtmp_port,
            "rtmps_port": rtmps_port,
            "rtmp_app": media.app,
            "playback_tokens": media.playback_tokens.is_some(),
            "ll_hls": media.ll_hls,
            "part_target_ms": media.segmenter.part_target_ms,
            "server_time_ms": cx.wall_ms(),
        })
        .to_string()
            + "\n"
    }

    /// `GET /api/v1/publish-info`: the server's generated publish key, for whoever shows an
    /// admin token or that key itself (`Authorization: Bearer`).
    fn publish_info(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        reply: Reply,
    ) {
        let Some(given) = head
            .header_str("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            let why = "an admin token or the server's publish key is required (Bearer)";
            return self.respond_error(cx, conn, 401, why, "unauthorized", reply);
        };
        let access = self.settings.media.publish_access.clone();
        let is_key = matches!(&access, PublishAccess::ServerKey(key)
            if constant_time_eq(key.as_bytes(), given.as_bytes()));
        let is_admin = (self.settings.danmaku.tokens)
            .verify_for(given, cx.wall_ms() / 1000, Audience::Admin)
            .is_ok();
        if !is_key && !is_admin {
            let why = "not an admin token nor the server's publish key";
            return self.respond_error(cx, conn, 403, why, "unauthorized", reply);
        }
        let (mode, key) = match access {
            PublishAccess::ServerKey(key) => ("server_key", Some(key)),
            PublishAccess::Open => ("open", None),
            PublishAccess::Configured => ("configured", None),
        };
        let json = json!({ "mode": mode, "key": key, "app": self.settings.media.app });
        self.respond_json(cx, conn, json.to_string() + "\n", reply);
    }

    /// Serves one in-memory file with ETag, `If-None-Match` and one `Range`.
    pub(super) fn serve_file(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        head: &RequestHead<'_>,
        file: &StaticFile,
        cache_control: &str,
        reply: Reply,
    ) {
        if head
            .if_none_match()
            .is_some_and(|v| etag_matches(v, &file.etag))
        {
            let headers = [
                ("ETag", file.etag.as_str()),
                ("Cache-Control", cache_control),
            ];
            return self.respond(cx, conn, 304, &headers, Body::None, reply.without_body());
        }
        let len = file.body.len() as u64;
        let range = head
            .range()
            .map_or(RangeOutcome::Full, |r| parse_range(r, len));
        let (status, body, content_range) = match range {
            RangeOutcome::Full => (200, file.body.clone(), None),
            RangeOutcome::Partial {
                start,
                end_inclusive,
            } => (
                206,
                file.body.slice(start as usize..=end_inclusive as usize),
                Some(ContentRange::bytes(start, end_inclusive, len)),
            ),
            RangeOutcome::Unsatisfiable => {
                let content_range = ContentRange::unsatisfied(len);
                let headers = [("Content-Range", content_range.as_str())];
                return self.respond(cx, conn, 416, &headers, Body::None, reply.without_body());
            }
        };
        let mut headers = vec![
            ("Content-Type", file.content_type),
            ("ETag", file.etag.as_str()),
            ("Cache-Control", cache_control),
            ("X-Content-Type-Options", "nosniff"),
        ];
        match content_range.as_ref() {
            Some(content_range) => headers.push(("Content-Range", content_range.as_str())),
            None => headers.push(("Accept-Ranges", "bytes")),
        }
        self.respond(cx, conn, status, &headers, Body::Shared(body), reply);
    }
}
