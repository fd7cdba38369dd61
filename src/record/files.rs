//! A recording on disk: writing it as the stream is made, reading it back, listing and
//! deleting recordings. Runs on the recorder thread only.

use super::settings::RecordCounters;
use crate::common::counters::bump;
use crate::media::MediaResponse;
use bytes::Bytes;
use serde_json::json;
use shardcast_media::cmaf::STYP;
use shardcast_media::manifest::{
    self, Iso8601Ms, MpdClock, RenditionInfo, RenditionView, SegmentView, Slices, StreamFacts,
};
use shardcast_media::{IndexEvent, RenditionMeta};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest file read back for `/vod/` (a segment is at most `media.stream_max_bytes` anyway).
const READ_MAX_BYTES: u64 = 64 << 20;

/// Recordings listed at most by `GET /api/v1/recordings` (newest first).
const LIST_MAX: usize = 1000;

/// Whether a recording is still being written (its playlists have no end yet).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Recording,
    Ended,
}

/// One rendition being recorded.
struct Rendition {
    meta: Arc<RenditionMeta>,
    /// Inits written (the current one is `inits - 1`).
    inits: u32,
    segments: Vec<SegmentView>,
    /// The segment being written: its number, file, bytes so far, and whether it lost a part.
    open: Option<OpenSegment>,
    epoch_ticks: Option<u64>,
    bytes: u64,
}

struct OpenSegment {
    msn: u64,
    /// `None` once a part of it is known lost: nothing more is written.
    file: Option<File>,
    written: usize,
}

/// One recording being written.
pub struct Session {
    stream: Arc<str>,
    dir: PathBuf,
    started_ms: u64,
    renditions: Vec<Rendition>,
    lost_segments: u64,
    thumbnail: bool,
}

impl Session {
    /// Makes `{dir}/{stream}/{start}/` for a stream that started at `started_ms`.
    pub fn create(root: &Path, stream: &Arc<str>, started_ms: u64) -> std::io::Result<Session> {
        let base = root.join(&**stream);
        let name = start_name(started_ms);
        let mut dir = base.join(&name);
        let mut n = 2;
        while dir.exists() {
            dir = base.join(format!("{name}-{n}"));
            n += 1;
        }
        std::fs::create_dir_all(&dir)?;
        let session = Session {
            stream: stream.clone(),
            dir,
            started_ms,
            renditions: Vec::new(),
            lost_segments: 0,
            thumbnail: false,
        };
        session.write_meta(None)?;
        Ok(session)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn rendition(&mut self, name: &str) -> Option<&mut Rendition> {
        self.renditions.iter_mut().find(|r| &*r.meta.name == name)
    }

    /// Applies one index event (not `Started` or `Ended`).
    pub fn apply(&mut self, event: IndexEvent, counters: &RecordCounters) {
        let result = match event {
            IndexEvent::Init {
                rendition, init, ..
            } => self.init(rendition, &init, counters),
            IndexEvent::Part {
                rendition,
                msn,
                bytes,
                ..
            } => self.part(&rendition, msn, &bytes, counters),
            IndexEvent::Segment {
                rendition,
                msn,
                start_ticks,
                duration_ticks,
                bytes,
                discontinuity,
                program_date_time_ms,
            } => {
                let view = SegmentView {
                    msn,
                    start_ticks,
                    duration_ticks,
                    program_date_time_ms: Some(program_date_time_ms),
                    discontinuity,
                    gap: false,
                    init_version: 0,
                };
                self.segment(&rendition, view, bytes, counters)
            }
            IndexEvent::Meta { rendition } => {
                if let Some(r) = self.rendition(&rendition.name.clone()) {
                    r.meta = rendition;
                }
                Ok(())
            }
            IndexEvent::Thumbnail { jpeg, .. } if !self.thumbnail => {
                self.thumbnail = true;
                write_atomic(&self.dir.join("thumb.jpg"), &jpeg)
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            bump(&counters.write_errors, 1);
            log::warn!("recording {}: {error}", self.dir.display());
        }
    }

    fn init(
        &mut self,
        meta: Arc<RenditionMeta>,
        init: &Bytes,
        counters: &RecordCounters,
    ) -> std::io::Result<()> {
        let dir = self.dir.join(&*meta.name);
        let version = match self.rendition(&meta.name.clone()) {
            Some(r) => {
                r.meta = meta;
                r.inits += 1;
                r.inits - 1
            }
            None => {
                std::fs::create_dir_all(&dir)?;
                self.renditions.push(Rendition {
                    meta,
                    inits: 1,
                    segments: Vec::new(),
                    open: None,
                    epoch_ticks: None,
                    bytes: 0,
                });
                0
            }
        };
        let name = match version {
            0 => "init.mp4".to_string(),
            v => format!("init-{v}.mp4"),
        };
        write_atomic(&dir.join(name), init)?;
        bump(&counters.bytes_written, init.len() as u64);
        Ok(())
    }

    fn part(
        &mut self,
        rendition: &str,
        msn: u64,
        bytes: &Bytes,
        counters: &RecordCounters,
    ) -> std::io::Result<()> {
        let dir = self.dir.join(rendition);
        let Some(r) = self.rendition(rendition) else {
            return Ok(());
        };
        if r.open.as_ref().is_none_or(|o| o.msn != msn) {
            // A segment whose end never came (the publisher switched mid-way) is dropped.
            if let Some(stale) = r.open.take() {
                let _ = std::fs::remove_file(dir.join(format!("{}.m4s.part", stale.msn)));
            }
            let mut file = File::create(dir.join(format!("{msn}.m4s.part")))?;
            file.write_all(STYP)?;
            r.open = Some(OpenSegment {
                msn,
                file: Some(file),
                written: STYP.len(),
            });
        }
        let open = r.open.as_mut().expect("opened above");
        let Some(file) = open.file.as_mut() else {
            return Ok(());
        };
        if let Err(error) = file.write_all(bytes) {
            open.file = None;
            return Err(error);
        }
        open.written += bytes.len();
        bump(&counters.bytes_written, bytes.len() as u64);
        Ok(())
    }

    /// Segment `view.msn` is complete: its file is kept when every part of it was written
    /// (`bytes` in all), else it becomes a gap.
    fn segment(
        &mut self,
        rendition: &str,
        mut view: SegmentView,
        bytes: usize,
        counters: &RecordCounters,
    ) -> std::io::Result<()> {
        let dir = self.dir.join(rendition);
        let Some(r) = self.rendition(rendition) else {
            return Ok(());
        };
        view.init_version = r.inits.saturating_sub(1);
        r.epoch_ticks.get_or_insert(view.start_ticks);
        let open = r.open.take().filter(|o| o.msn == view.msn);
        let part = dir.join(format!("{}.m4s.part", view.msn));
        let whole = match open {
            Some(OpenSegment {
                file: Some(file),
                written,
                ..
            }) if written == bytes => {
                file.sync_data().ok();
                std::fs::rename(&part, dir.join(format!("{}.m4s", view.msn)))?;
                r.bytes += bytes as u64;
                true
            }
            _ => {
                let _ = std::fs::remove_file(&part);
                false
            }
        };
        view.gap = !whole;
        let ticks_per_s = u64::from(r.meta.timescale.max(1));
        let started_ms = self.started_ms;
        let end_ms = view.program_date_time_ms.unwrap_or(started_ms)
            + view.duration_ticks * 1000 / ticks_per_s;
        let r = self.rendition(rendition).expect("found above");
        r.segments.push(view);
        let first_of_rendition = r.segments.len() == 1;
        if whole {
            bump(&counters.segments_written, 1);
        } else {
            bump(&counters.segments_lost, 1);
            self.lost_segments += 1;
            log::warn!(
                "recording {}: segment {} of {rendition} left out (a part was lost)",
                self.dir.display(),
                view.msn
            );
        }
        self.write_media_playlist(rendition, State::Recording)?;
        if first_of_rendition {
            // Written again at the end; early, so a recording cut by a crash has one.
            self.write_multivariant()?;
        }
        // The MPD of what is recorded so far, for a recording cut by a crash (`repair`); a few
        // KiB however long the recording is (`SegmentTimeline` folds equal segments). Once per
        // segment time, when the last rendition's segment is in, not once per rendition.
        let last_rendition = self
            .renditions
            .last()
            .is_some_and(|r| *r.meta.name == *rendition);
        if last_rendition {
            self.write_mpd(MPD_SO_FAR, end_ms)?;
        }
        self.write_meta(None)
    }

    /// A part of segment `msn` of `rendition` never reached the recorder.
    pub fn lose(&mut self, rendition: &str, msn: u64) {
        let dir = self.dir.join(rendition);
        let Some(r) = self.rendition(rendition) else {
            return;
        };
        match r.open.as_mut() {
            Some(open) if open.msn == msn => open.file = None,
            Some(open) if open.msn > msn => {}
            _ => {
                // The segment's first part was the one lost: it is open, and lost.
                if let Some(stale) = r.open.take() {
                    let _ = std::fs::remove_file(dir.join(format!("{}.m4s.part", stale.msn)));
                }
                r.open = Some(OpenSegment {
                    msn,
                    file: None,
                    written: 0,
                });
            }
        }
    }

    /// The stream ended (or the server stops): final playlists, MPD and metadata.
    pub fn finish(&mut self, now_ms: u64, counters: &RecordCounters) {
        let names: Vec<Arc<str>> = self
            .renditions
            .iter()
            .map(|r| r.meta.name.clone())
            .collect();
        let mut result = Ok(());
        for name in &names {
            if let Some(r) = self.rendition(name) {
                if let Some(open) = r.open.take() {
                    let _ = std::fs::remove_file(
                        self.dir
                            .join(&**name)
                            .join(format!("{}.m4s.part", open.msn)),
                    );
                }
            }
            result = result.and(self.write_media_playlist(name, State::Ended));
        }
        result = result
            .and_then(|()| self.write_top(now_ms))
            .and_then(|()| self.write_meta(Some(now_ms)));
        if let Err(error) = result {
            bump(&counters.write_errors, 1);
            log::warn!("recording {}: {error}", self.dir.display());
        }
        log::info!(
            "recording of stream {} complete: {} ({} segments left out)",
            self.stream,
            self.dir.display(),
            self.lost_segments
        );
    }

    fn facts(&self, state: State) -> StreamFacts {
        let longest_ms = self
            .renditions
            .iter()
            .flat_map(|r| {
                r.segments
                    .iter()
                    .map(|s| s.duration_ticks * 1000 / u64::from(r.meta.timescale.max(1)))
            })
            .max()
            .unwrap_or(1000);
        StreamFacts {
            target_duration_s: longest_ms.div_ceil(1000).max(1) as u32,
            part_target_ms: None,
            ended: state == State::Ended,
        }
    }

    fn views(&self) -> Vec<RenditionView<'_>> {
        self.renditions
            .iter()
            .filter(|r| !r.segments.is_empty())
            .map(|r| {
                let seconds = r.segments.iter().map(|s| s.duration_ticks).sum::<u64>()
                    / u64::from(r.meta.timescale.max(1));
                let average = (r.bytes * 8).checked_div(seconds).unwrap_or(0);
                RenditionView {
                    info: RenditionInfo {
                        name: &r.meta.name,
                        kind: r.meta.kind,
                        codecs: &r.meta.codecs,
                        bandwidth_bps: average + average / 4,
                        average_bandwidth_bps: average,
                        timescale: r.meta.timescale,
                        epoch_ticks: r.epoch_ticks.unwrap_or(0),
                    },
                    segments: Slices::from(&r.segments),
                    parts: Slices::default(),
                    open_segment: None,
                    discontinuity_sequence: 0,
                }
            })
            .collect()
    }

    fn write_media_playlist(&self, rendition: &str, state: State) -> std::io::Result<()> {
        let views = self.views();
        let Some(view) = views.iter().find(|v| v.info.name == rendition) else {
            return Ok(());
        };
        let mut text = String::with_capacity(4096);
        manifest::write_media_playlist(&mut text, &self.facts(state), view, &views, None);
        write_atomic(
            &self.dir.join(rendition).join("index.m3u8"),
            text.as_bytes(),
        )
    }

    fn write_multivariant(&self) -> std::io::Result<()> {
        let views = self.views();
        let infos: Vec<_> = views.iter().map(|v| v.info).collect();
        let mut text = String::with_capacity(2048);
        manifest::write_multivariant_playlist(&mut text, &infos, None);
        write_atomic(&self.dir.join("index.m3u8"), text.as_bytes())
    }

    fn write_top(&self, now_ms: u64) -> std::io::Result<()> {
        self.write_multivariant()?;
        self.write_mpd(MPD, now_ms)?;
        let _ = std::fs::remove_file(self.dir.join(MPD_SO_FAR));
        Ok(())
    }

    /// A static MPD of the segments recorded, as `name`.
    fn write_mpd(&self, name: &str, now_ms: u64) -> std::io::Result<()> {
        let views = self.views();
        let clock = MpdClock {
            availability_start_ms: manifest::availability_start_ms(&views, self.started_ms),
            publish_time_ms: now_ms,
            now_ms,
        };
        let mut mpd = String::with_capacity(4096);
        manifest::write_mpd(&mut mpd, &self.facts(State::Ended), &clock, &views, None);
        write_atomic(&self.dir.join(name), mpd.as_bytes())
    }

    fn write_meta(&self, ended_ms: Option<u64>) -> std::io::Result<()> {
        let duration_ms = self
            .renditions
            .iter()
            .map(|r| {
                r.segments.iter().map(|s| s.duration_ticks).sum::<u64>() * 1000
                    / u64::from(r.meta.timescale.max(1))
            })
            .max()
            .unwrap_or(0);
        let meta = json!({
            "stream": &*self.stream,
            "start": self.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
            "started_ms": self.started_ms,
            "ended_ms": ended_ms,
            "complete": ended_ms.is_some(),
            "duration_s": duration_ms as f64 / 1000.0,
            "bytes": self.renditions.iter().map(|r| r.bytes).sum::<u64>(),
            "renditions": self.renditions.iter().map(|r| &*r.meta.name).collect::<Vec<_>>(),
            "lost_segments": self.lost_segments,
        });
        write_atomic(
            &self.dir.join("recording.json"),
            meta.to_string().as_bytes(),
        )
    }
}

/// Finishes recordings a stopped process left unfinished (`complete: false`): their media
/// playlists get `EXT-X-ENDLIST`, unfinished segments go, the MPD of what was recorded
/// (rewritten at each segment) becomes the recording's MPD, and `recording.json` says
/// `complete` and `interrupted`. Returns how many were repaired.
pub fn repair(root: &Path) -> u64 {
    let mut repaired = 0;
    for (dir, mut meta) in recordings(root) {
        if meta["complete"] == true {
            continue;
        }
        let mut last_ms = meta["started_ms"].as_u64().unwrap_or(0);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let rendition = entry.path();
            for file in std::fs::read_dir(&rendition)
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "part" || e == "tmp") {
                    let _ = std::fs::remove_file(&path);
                } else if let Ok(modified) = file.metadata().and_then(|m| m.modified()) {
                    let ms = modified
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    last_ms = last_ms.max(ms);
                }
            }
            let playlist = rendition.join("index.m3u8");
            if let Ok(text) = std::fs::read_to_string(&playlist) {
                if !text.contains("#EXT-X-ENDLIST") {
                    let _ = write_atomic(&playlist, (text + "#EXT-X-ENDLIST\n").as_bytes());
                }
            }
        }
        if dir.join(MPD_SO_FAR).is_file() {
            let _ = std::fs::rename(dir.join(MPD_SO_FAR), dir.join(MPD));
        }
        meta["complete"] = json!(true);
        meta["interrupted"] = json!(true);
        meta["ended_ms"] = json!(last_ms);
        if write_atomic(&dir.join("recording.json"), meta.to_string().as_bytes()).is_ok() {
            log::warn!(
                "recording {} was cut short (the server stopped); its playlists are closed",
                dir.display()
            );
            repaired += 1;
        }
    }
    repaired
}

/// A recording's MPD, written at its end.
const MPD: &str = "manifest.mpd";
/// The MPD of what a recording holds so far, rewritten at each segment; it becomes the MPD of
/// a recording cut short by a crash.
const MPD_SO_FAR: &str = "manifest.mpd.so-far";

/// `YYYYMMDDTHHMMSSZ` of a Unix millisecond time.
fn start_name(ms: u64) -> String {
    let iso = Iso8601Ms(ms).to_string(); // 2026-12-06T23:34:12.345Z
    iso[..19].replace(['-', ':'], "") + "Z"
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// A name that may be a path component of a recording: no separators, no dot files.
fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A file of a recording for `/vod/{stream}/{start}/{path}`. With `token_query` (signed
/// playback URLs), every URI of a playlist or MPD carries it, as live playlists do.
pub fn read_file(
    root: &Path,
    stream: &str,
    start: &str,
    path: &str,
    token_query: Option<&str>,
) -> MediaResponse {
    let parts: Vec<&str> = path.split('/').collect();
    if !safe_component(stream)
        || !safe_component(start)
        || parts.len() > 2
        || !parts.iter().all(|p| safe_component(p))
    {
        return MediaResponse::Status(404, "not found");
    }
    let name = parts.last().copied().unwrap_or("");
    let (content_type, cache_control) = match name.rsplit_once('.').map(|(_, e)| e) {
        Some("m3u8") => ("application/vnd.apple.mpegurl", "no-cache"),
        Some("mpd") => ("application/dash+xml", "no-cache"),
        Some("m4s") | Some("mp4") => ("video/mp4", "public, max-age=86400, immutable"),
        Some("jpg") => ("image/jpeg", "public, max-age=3600"),
        _ => return MediaResponse::Status(404, "not found"),
    };
    let file = root.join(stream).join(start).join(path);
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() && m.len() <= READ_MAX_BYTES => {}
        Ok(_) => return MediaResponse::Status(404, "not found"),
        Err(_) => return MediaResponse::Status(404, "no such recording or file"),
    }
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(_) => return MediaResponse::Status(500, "cannot read the recording"),
    };
    let bytes = match (token_query, String::from_utf8(bytes)) {
        (Some(query), Ok(text)) if name.ends_with(".m3u8") => {
            with_query_m3u8(&text, query).into_bytes()
        }
        (Some(query), Ok(text)) if name.ends_with(".mpd") => {
            with_query_mpd(&text, query).into_bytes()
        }
        (_, Ok(text)) => text.into_bytes(),
        (_, Err(e)) => e.into_bytes(),
    };
    MediaResponse::Body {
        content_type,
        cache_control,
        chunks: vec![Bytes::from(bytes)],
    }
}

/// Appends `query` to a URI (`?` or `&`).
fn with_query(uri: &str, query: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

/// Every URI of a playlist with `query`: the URI lines and the `URI="…"` attributes.
fn with_query_m3u8(text: &str, query: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str(&with_query(line, query));
        } else if let Some((before, rest)) = line.split_once("URI=\"") {
            let (uri, after) = rest.split_once('"').unwrap_or((rest, ""));
            out.push_str(&format!(
                "{before}URI=\"{}\"{after}",
                with_query(uri, query)
            ));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The MPD's segment template URIs with `query` (a literal `$` doubled, `&` escaped).
fn with_query_mpd(text: &str, query: &str) -> String {
    let escaped = query.replace('$', "$$").replace('&', "&amp;");
    let mut out = text.to_string();
    for attribute in ["initialization=\"", "media=\""] {
        let mut result = String::with_capacity(out.len() + 64);
        let mut rest = out.as_str();
        while let Some(at) = rest.find(attribute) {
            let start = at + attribute.len();
            result.push_str(&rest[..start]);
            let end = rest[start..].find('"').map_or(rest.len(), |e| start + e);
            let uri = &rest[start..end];
            let sep = if uri.contains('?') { "&amp;" } else { "?" };
            result.push_str(&format!("{uri}{sep}{escaped}"));
            rest = &rest[end..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Every recording's `recording.json` under `root`, with its directory.
fn recordings(root: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let mut out = Vec::new();
    let Ok(streams) = std::fs::read_dir(root) else {
        return out;
    };
    for stream in streams.flatten() {
        let Ok(starts) = std::fs::read_dir(stream.path()) else {
            continue;
        };
        for start in starts.flatten() {
            let dir = start.path();
            if let Some(meta) = std::fs::read(dir.join("recording.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                out.push((dir, meta));
            }
        }
    }
    out
}

/// `GET /api/v1/recordings`: newest first.
pub fn list_json(root: &Path) -> MediaResponse {
    let mut all = recordings(root);
    all.sort_by_key(|(_, m)| std::cmp::Reverse(m["started_ms"].as_u64().unwrap_or(0)));
    let list: Vec<serde_json::Value> = all
        .into_iter()
        .take(LIST_MAX)
        .map(|(_, mut m)| {
            let base = format!(
                "/vod/{}/{}",
                m["stream"].as_str().unwrap_or(""),
                m["start"].as_str().unwrap_or("")
            );
            m["hls"] = json!(format!("{base}/index.m3u8"));
            m["dash"] = json!(format!("{base}/manifest.mpd"));
            m
        })
        .collect();
    MediaResponse::Body {
        content_type: "application/json",
        cache_control: "no-store",
        chunks: vec![Bytes::from(
            json!({ "recordings": list }).to_string() + "\n",
        )],
    }
}

/// Deletes recordings (not in `active`) that ended before `keep_after_ms`, then the oldest
/// while the total is over `max_bytes` (0: no cap). Returns how many went.
pub fn retain(root: &Path, active: &[PathBuf], keep_after_ms: u64, max_bytes: u64) -> u64 {
    let mut all: Vec<(PathBuf, u64, u64)> = recordings(root)
        .into_iter()
        .filter(|(dir, _)| !active.contains(dir))
        .map(|(dir, m)| {
            let end = m["ended_ms"]
                .as_u64()
                .or(m["started_ms"].as_u64())
                .unwrap_or(0);
            let bytes = m["bytes"].as_u64().unwrap_or(0);
            (dir, end, bytes)
        })
        .collect();
    all.sort_by_key(|(_, end, _)| *end);
    let mut total: u64 = all.iter().map(|(_, _, b)| b).sum();
    let mut deleted = 0;
    for (dir, end, bytes) in all {
        let too_old = end < keep_after_ms;
        let too_big = max_bytes > 0 && total > max_bytes;
        if !too_old && !too_big {
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                total -= bytes;
                deleted += 1;
                log::info!(
                    "recording {} deleted ({})",
                    dir.display(),
                    if too_old {
                        "media.record_keep_s"
                    } else {
                        "media.record_max_bytes"
                    }
                );
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::remove_dir(parent); // only when it is empty
                }
            }
            Err(error) => log::warn!("cannot delete recording {}: {error}", dir.display()),
        }
    }
    deleted
}
