//! `/live/…` requests, answered from this shard's index: the multivariant playlist, the MPD,
//! media playlists (LL-HLS blocking reloads wait in [`super::waiters`]), init segments,
//! segments and parts. Signed playback URLs are checked here.

use super::names::is_valid_stream_name;
use super::waiters::{Waiter, Wanted};
use super::{Delivery, Media, MediaResponse};
use crate::common::auth::Audience;
use crate::common::counters::bump;
use crate::common::query::{self, Query};
use crate::shard::msg::ShardMsg;
use bytes::Bytes;
use shardcast_engine::{ConnId, Ctx};
use shardcast_media::manifest;
use shardcast_media::{Fetch, StreamIndex};
use std::sync::Arc;

/// Cache-Control of segments, parts and init segments (immutable once published).
const MEDIA_CACHE_CONTROL: &str = "public, max-age=600, immutable";
/// The same when playback needs a token: shared caches must not serve them to anyone else.
const MEDIA_CACHE_CONTROL_PRIVATE: &str = "private, max-age=600, immutable";

/// Why a stream's multivariant playlist or MPD is not served yet: its audio has parts and its
/// video none (at the very start), and a player that loaded the audio alone would never show
/// a picture. Players retry a 404 for the manifest.
const VIDEO_PENDING: &str = "the stream's video has no part yet; try again in a moment";

impl Media {
    /// Answers a `/live/...` request. `path` is after `/live/`.
    pub fn http_request(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        path: &str,
        query: Query<'_>,
        delivery: Delivery,
    ) -> MediaResponse {
        if self.edge.is_some() {
            return self.edge_request(cx, conn, path, query, delivery);
        }
        let mut parts = path.splitn(3, '/');
        let stream = parts.next().unwrap_or("");
        let (second, third) = (parts.next(), parts.next());
        if !is_valid_stream_name(stream) {
            return MediaResponse::Status(404, "no such stream");
        }
        let token_query = match self.check_token(cx, stream, query) {
            Ok(q) => q,
            Err(status) => return status,
        };
        if self.index.stream(stream).is_none() {
            return MediaResponse::Status(404, "no such stream");
        }
        match (second, third) {
            (Some("index.m3u8"), None) => self.multivariant(stream, token_query.as_deref()),
            (Some("manifest.mpd"), None) => self.mpd(cx, stream, token_query.as_deref()),
            (Some("thumb.jpg"), None) => self.thumbnail(stream),
            (Some("stage.json"), None) => self.stage_json(stream),
            (Some(rendition), Some(file)) => {
                let request = RenditionRequest {
                    stream,
                    rendition,
                    file,
                    query,
                    token_query,
                    delivery,
                };
                self.rendition_file(cx, conn, request)
            }
            _ => MediaResponse::Status(404, "not found"),
        }
    }

    /// `/live/{stream}/stage.json`: a co-hosted program's hosts on stage now (none: not
    /// co-hosted), each with the WHEP URL of their feed.
    fn stage_json(&self, stream: &str) -> MediaResponse {
        let Some(index) = self.index.stream(stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        let hosts: Vec<serde_json::Value> = (index.info.hosts.iter())
            .map(|host| {
                serde_json::json!({
                    "slot": host.slot,
                    "name": host.name.as_deref().map_or_else(
                        || super::stage::default_host_name(host.slot),
                        String::from,
                    ),
                    "muted": host.muted,
                    "whep": format!("/whep/live/{stream}~{}", host.slot),
                })
            })
            .collect();
        let text = serde_json::json!({ "stream": stream, "hosts": hosts }).to_string();
        playlist(text, "application/json")
    }

    fn multivariant(&mut self, stream: &str, token_query: Option<&str>) -> MediaResponse {
        let Some(index) = self.index.stream(stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        if index.video_pending() {
            return MediaResponse::Status(404, VIDEO_PENDING);
        }
        let mut text = String::with_capacity(1024);
        let views = index.views();
        let infos: Vec<_> = views.iter().map(|v| v.info).collect();
        let uri_query = token_query.and_then(|q| manifest::UriQuery::new(q).ok());
        manifest::write_multivariant_playlist(&mut text, &infos, uri_query);
        self.count_playlist(stream);
        playlist(text, "application/vnd.apple.mpegurl")
    }

    fn mpd(
        &mut self,
        cx: &Ctx<ShardMsg>,
        stream: &str,
        token_query: Option<&str>,
    ) -> MediaResponse {
        let Some(index) = self.index.stream(stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        if index.video_pending() {
            return MediaResponse::Status(404, VIDEO_PENDING);
        }
        let mut text = String::with_capacity(4096);
        let views = index.views();
        let now = cx.wall_ms();
        let clock = manifest::MpdClock {
            availability_start_ms: manifest::availability_start_ms(&views, index.started_ms),
            publish_time_ms: now,
            now_ms: now,
        };
        let uri_query = token_query.and_then(|q| manifest::UriQuery::new(q).ok());
        manifest::write_mpd(&mut text, &index.facts(), &clock, &views, uri_query);
        self.count_playlist(stream);
        playlist(text, "application/dash+xml")
    }

    /// `/live/{stream}/{rendition}/{file}`: a media playlist, `init.mp4`, `{n}.m4s` or
    /// `{n}.{p}.m4s`.
    fn rendition_file(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        request: RenditionRequest<'_>,
    ) -> MediaResponse {
        let Some(index) = self.index.stream(request.stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        if !index.has_rendition(request.rendition) {
            return MediaResponse::Status(404, "no such rendition");
        }
        if request.file == "index.m3u8" {
            return self.media_playlist_request(cx, conn, request);
        }
        if request.file == "init.mp4" {
            let version = request
                .query
                .get("v")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return match index.init(request.rendition, version) {
                Some(init) => self.media_body(vec![init]),
                None => MediaResponse::Status(404, "no such init segment"),
            };
        }
        self.segment_or_part(cx, conn, request)
    }

    /// A media playlist now, or once the index has what `_HLS_msn`/`_HLS_part` ask for.
    fn media_playlist_request(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        request: RenditionRequest<'_>,
    ) -> MediaResponse {
        let Some(index) = self.index.stream(request.stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        let Some(progress) = index.progress(request.rendition) else {
            return MediaResponse::Status(404, "no such rendition");
        };
        let reload = match manifest::parse_blocking_reload(
            request.query.as_str(),
            &progress,
            index.part_target_ms,
        ) {
            Ok(reload) => reload,
            Err(_) => return MediaResponse::Status(400, "bad blocking reload request"),
        };
        if let Some(reload) = reload.filter(|r| !r.is_satisfied(&progress)) {
            let timeout = manifest::blocking_reload_timeout_ms(index.target_duration_s);
            let waiter = Waiter {
                conn,
                stream: index.name.clone(),
                wanted: Wanted::Playlist {
                    rendition: Arc::from(request.rendition),
                    reload,
                    query: request.token_query,
                },
                deadline_ms: cx.now_ms() + timeout,
            };
            return self.park(cx, waiter);
        }
        let rendition = request.rendition;
        let response = media_playlist(index, rendition, request.token_query.as_deref());
        self.count_playlist(request.stream);
        response
    }

    /// `{n}.m4s` or `{n}.{p}.m4s`: the bytes now, a wait for one that is about to exist
    /// (LL-HLS preload hints), or 404.
    fn segment_or_part(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        request: RenditionRequest<'_>,
    ) -> MediaResponse {
        let Some(index) = self.index.stream(request.stream) else {
            return MediaResponse::Status(404, "no such stream");
        };
        let Some(wanted) = parse_media_file(request.rendition, request.file) else {
            return MediaResponse::Status(404, "not found");
        };
        match wanted.fetch(index) {
            Fetch::Ready(chunks) => {
                if let Some(s) = self.index.stream_mut(request.stream) {
                    s.served_segments += 1;
                }
                self.media_body(chunks)
            }
            Fetch::Missing => MediaResponse::Status(404, "not in the window"),
            Fetch::Soon => {
                let timeout = manifest::blocking_reload_timeout_ms(index.target_duration_s);
                let wanted = match wanted {
                    Wanted::Segment { rendition, msn } if request.delivery == Delivery::AsMade => {
                        let stream = index.name.clone();
                        return self.stream_segment(cx, conn, stream, rendition, msn);
                    }
                    wanted => wanted,
                };
                let waiter = Waiter {
                    conn,
                    stream: index.name.clone(),
                    wanted,
                    deadline_ms: cx.now_ms() + timeout,
                };
                self.park(cx, waiter)
            }
        }
    }

    /// `thumb.jpg`: the stream's newest thumbnail, cached for about one thumbnail interval.
    fn thumbnail(&self, stream: &str) -> MediaResponse {
        let Some((jpeg, _)) = self.index.stream(stream).and_then(|s| s.thumbnail.as_ref()) else {
            return MediaResponse::Status(404, "no thumbnail yet");
        };
        let every_s = (self.settings.transcode.as_ref())
            .and_then(|t| t.thumbnails)
            .map_or(5, |(_, every)| every.as_secs());
        let cache_control = match (self.settings.playback_tokens.is_some(), every_s) {
            (true, _) => "private, max-age=5",
            (false, 0..=2) => "public, max-age=2",
            (false, 3..=5) => "public, max-age=5",
            (false, 6..=15) => "public, max-age=15",
            (false, _) => "public, max-age=60",
        };
        MediaResponse::Body {
            content_type: "image/jpeg",
            cache_control,
            chunks: vec![jpeg.clone()],
        }
    }

    fn count_playlist(&mut self, stream: &str) {
        bump(&self.counters().playlists_served, 1);
        if let Some(s) = self.index.stream_mut(stream) {
            s.served_playlists += 1;
        }
    }

    fn media_body(&mut self, chunks: Vec<Bytes>) -> MediaResponse {
        let response = media_body(chunks, self.media_cache_control());
        self.count_served(&response);
        response
    }

    /// Counts a media or playlist answer in the served counters.
    pub(super) fn count_served(&self, response: &MediaResponse) {
        let MediaResponse::Body {
            chunks,
            content_type,
            ..
        } = response
        else {
            return;
        };
        if *content_type == "video/mp4" {
            let bytes: usize = chunks.iter().map(Bytes::len).sum();
            bump(&self.counters().media_served, 1);
            bump(&self.counters().media_bytes_served, bytes as u64);
        } else {
            bump(&self.counters().playlists_served, 1);
        }
    }

    /// Checks `?token=` when signed playback URLs are on; returns the query to propagate
    /// on every URI of a playlist.
    pub(super) fn check_token(
        &self,
        cx: &Ctx<ShardMsg>,
        stream: &str,
        query: Query<'_>,
    ) -> Result<Option<String>, MediaResponse> {
        if self.settings.playback_tokens.is_none() {
            return Ok(None);
        }
        let token = query.get("token");
        self.verify_playback(cx, stream, token.as_deref())?;
        Ok(token.map(|token| format!("token={}", query::encode(&token))))
    }

    /// When signed playback URLs are on: whether `token` lets its bearer play `stream` (401
    /// without one, 403 for a bad or expired one, each counted).
    pub fn verify_playback(
        &self,
        cx: &Ctx<ShardMsg>,
        stream: &str,
        token: Option<&str>,
    ) -> Result<(), MediaResponse> {
        let Some(key) = &self.settings.playback_tokens else {
            return Ok(());
        };
        let Some(token) = token else {
            bump(&self.counters().token_refusals, 1);
            return Err(MediaResponse::Status(401, "playback token required"));
        };
        match key.verify_for(token, cx.wall_ms() / 1000, Audience::Play) {
            Ok(claims) if claims.allows_room(stream) => Ok(()),
            _ => {
                bump(&self.counters().token_refusals, 1);
                Err(MediaResponse::Status(403, "bad or expired playback token"))
            }
        }
    }
}

/// What a request under a rendition names.
struct RenditionRequest<'a> {
    stream: &'a str,
    rendition: &'a str,
    file: &'a str,
    query: Query<'a>,
    /// `token=…` to carry on every URI of a playlist (signed playback URLs).
    token_query: Option<String>,
    delivery: Delivery,
}

/// `{n}.m4s` or `{n}.{p}.m4s` of `rendition`.
fn parse_media_file(rendition: &str, file: &str) -> Option<Wanted> {
    let name = file.strip_suffix(".m4s")?;
    let rendition: Arc<str> = Arc::from(rendition);
    Some(match name.split_once('.') {
        Some((msn, part)) => Wanted::Part {
            rendition,
            msn: msn.parse().ok()?,
            part: part.parse().ok()?,
        },
        None => Wanted::Segment {
            rendition,
            msn: name.parse().ok()?,
        },
    })
}

/// A media playlist of `rendition` from `index`.
pub(super) fn media_playlist(
    index: &StreamIndex,
    rendition: &str,
    token_query: Option<&str>,
) -> MediaResponse {
    let views = index.views();
    let Some(view) = views.iter().find(|v| v.info.name == rendition) else {
        return MediaResponse::Status(404, "no segments yet");
    };
    let mut text = String::with_capacity(2048);
    let uri_query = token_query.and_then(|q| manifest::UriQuery::new(q).ok());
    manifest::write_media_playlist(&mut text, &index.facts(), view, &views, uri_query);
    playlist(text, "application/vnd.apple.mpegurl")
}

fn playlist(text: String, content_type: &'static str) -> MediaResponse {
    MediaResponse::Body {
        content_type,
        cache_control: "no-cache",
        chunks: vec![Bytes::from(text)],
    }
}

/// Segment, part or init bytes.
pub(super) fn media_body(chunks: Vec<Bytes>, cache_control: &'static str) -> MediaResponse {
    MediaResponse::Body {
        content_type: "video/mp4",
        cache_control,
        chunks,
    }
}

impl Media {
    /// Cache-Control of media bytes: private when playback needs a token.
    pub(super) fn media_cache_control(&self) -> &'static str {
        if self.settings.playback_tokens.is_some() {
            MEDIA_CACHE_CONTROL_PRIVATE
        } else {
            MEDIA_CACHE_CONTROL
        }
    }
}
