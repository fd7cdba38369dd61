//! One shard's index of live streams: per rendition, the init segments, the window of complete
//! segments and the LL-HLS parts, as shared `Bytes`. Every shard keeps its own copy
//! ([`MediaIndex`]), filled from the stream's home shard over the mesh, and answers playlist,
//! MPD, init, segment and part requests from it without asking anyone.
//!
//! The home produces the updates ([`IndexEvent`]) with [`StreamHome`](crate::home::StreamHome),
//! a transcode worker produces those of its rungs with [`index_event`], and every shard applies
//! them in order with [`MediaIndex::apply`]. This module lives in the media crate so that all
//! three share one definition; it is sans-io like the rest of the crate (the caller carries the
//! events between threads).
//!
//! Bounds: a rendition keeps at most `window_ms` of segments (default 600 s), and a stream at
//! most `stream_max_bytes` (oldest segments go first, whichever rendition they belong to). The
//! bytes themselves are shared with every other shard's index (one copy per process).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::cmaf::STYP;
use crate::codec::{FrameRate as CodecFrameRate, TrackConfig, VideoInfo, OPUS_SAMPLE_RATE};
use crate::manifest::{
    FrameRate, OpenSegment, PartRef, PartView, Progress, RenditionInfo, RenditionKind,
    RenditionView, SegmentView, Slices, StreamFacts,
};
use crate::Event;

/// What the home shard publishes about a stream, in order, to every shard.
#[derive(Clone, Debug)]
pub enum IndexEvent {
    /// A stream began (or a new publisher took over: `restart`).
    Started {
        started_ms: u64,
        part_target_ms: Option<u32>,
        /// Facts for `/api/v1/streams`.
        info: Arc<StreamInfo>,
    },
    /// A rendition's CMAF header, first or after a codec change.
    Init {
        rendition: Arc<RenditionMeta>,
        init: Bytes,
        discontinuity: bool,
    },
    /// One LL-HLS part.
    Part {
        rendition: Arc<str>,
        msn: u64,
        part_index: u32,
        start_ticks: u64,
        duration_ticks: u64,
        independent: bool,
        program_date_time_ms: u64,
        bytes: Bytes,
        /// When the part's last sample reached the server (its ingest shard), in
        /// milliseconds since the Unix epoch, for the part-ready latency; `None` for parts
        /// that are not timed (transcoded rungs).
        last_received_ms: Option<u64>,
    },
    /// A segment is complete (all its parts were sent before).
    Segment {
        rendition: Arc<str>,
        msn: u64,
        start_ticks: u64,
        duration_ticks: u64,
        bytes: usize,
        discontinuity: bool,
        program_date_time_ms: u64,
    },
    /// New facts about a rendition (a measured frame rate) without a new header.
    Meta { rendition: Arc<RenditionMeta> },
    /// New facts for `/api/v1/streams`.
    Info(Arc<StreamInfo>),
    /// A new thumbnail of the stream: a JPEG made at `made_ms` (Unix milliseconds).
    Thumbnail { jpeg: Bytes, made_ms: u64 },
    /// The publisher went away; playlists end.
    Ended,
}

/// The fixed facts of a rendition.
#[derive(Clone, Debug)]
pub struct RenditionMeta {
    pub name: Arc<str>,
    pub kind: RenditionKind,
    pub codecs: String,
    pub timescale: u32,
}

/// A host on a co-hosted program's stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageHost {
    /// The feed's slot (`{stream}~{slot}`; 0: the owner).
    pub slot: u8,
    /// No sound from them for a while.
    pub muted: bool,
    /// Their name: their feed's `?title=` (None: "The host", "Guest N").
    pub name: Option<Arc<str>>,
}

/// What `/api/v1/streams` shows about a stream.
#[derive(Clone, Debug, Default)]
pub struct StreamInfo {
    /// A co-hosted program's hosts on stage now, by slot (empty: not co-hosted).
    pub hosts: Vec<StageHost>,
    /// What people call the stream (the publisher's `?title=`); empty: none given.
    pub title: String,
    /// The publisher sends VP8 (a WHIP publisher without H.264): the stream is packaged from
    /// an H.264 encoding of it, and WebRTC viewers that take VP8 get the VP8 as it came.
    pub vp8: bool,
    pub video_codec: String,
    pub audio_codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub publisher: String,
    /// The transcoded rungs, as their worker last reported them.
    pub rungs: Vec<RungInfo>,
}

/// One transcoded rung, for `/api/v1/streams` and `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct RungInfo {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
    /// The FFmpeg encoder.
    pub encoder: String,
    /// Pictures encoded per second over the last second.
    pub fps: f64,
    /// Media time transcoded per second of wall time since the stream started (1.0 keeps
    /// up with a live source).
    pub speed: f64,
    /// Access units waiting on the worker.
    pub queue: usize,
    /// Pictures encoded.
    pub frames: u64,
    /// Source access units skipped to catch up.
    pub skipped: u64,
    /// The transcode worker's index.
    pub worker: usize,
}

/// Index limits.
#[derive(Clone, Copy, Debug)]
pub struct IndexLimits {
    pub window_ms: u64,
    pub stream_max_bytes: usize,
    /// Init versions kept per rendition (players holding an old playlist may still ask).
    pub inits_kept: usize,
    /// Streams one shard indexes at most.
    pub streams_max: usize,
    /// How long an ended stream stays servable (players finishing its playlist) before
    /// [`MediaIndex::retire_ended`] forgets it.
    pub ended_keep_ms: u64,
}

/// The index of one stream.
pub struct StreamIndex {
    pub name: Arc<str>,
    pub started_ms: u64,
    /// The publisher went away (read it with [`is_ended`](Self::is_ended); the index keeps
    /// count of ended streams).
    ended: bool,
    /// When it ended (the caller's clock), while `ended`.
    ended_at_ms: u64,
    pub part_target_ms: Option<u32>,
    pub target_duration_s: u32,
    pub info: Arc<StreamInfo>,
    renditions: Vec<RenditionIndex>,
    /// The newest thumbnail (a JPEG) and when it was made (Unix milliseconds).
    pub thumbnail: Option<(Bytes, u64)>,
    bytes_held: usize,
    /// Requests served from this shard's copy (segments, parts, playlists).
    pub served_segments: u64,
    pub served_playlists: u64,
}

struct RenditionIndex {
    meta: Arc<RenditionMeta>,
    inits: VecDeque<(u32, Bytes)>,
    init_version: u32,
    segments: VecDeque<SegmentView>,
    segment_bytes: VecDeque<usize>,
    parts: VecDeque<PartView>,
    part_bytes: VecDeque<Bytes>,
    open: Option<OpenSegment>,
    next_discontinuity: bool,
    discontinuity_sequence: u64,
    /// Media time of the first segment ever seen (DASH epoch).
    epoch_ticks: Option<u64>,
}

/// What a shard's index holds, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexTotals {
    pub streams: usize,
    pub ended: usize,
    pub bytes: usize,
}

/// How a request for a part or segment resolves.
pub enum Fetch {
    /// The bytes, in order (a segment is `styp` followed by its parts).
    Ready(Vec<Bytes>),
    /// Not there yet but expected soon: wait for it (LL-HLS preload hints).
    Soon,
    /// Not in the window, or never will be.
    Missing,
}

/// What there is of a segment for a response sent while the segment is made (low-latency
/// DASH: the open segment goes out part by part, with chunked transfer).
#[derive(Debug)]
pub enum Progressive {
    /// The parts from the one asked for on, in order, `next_part` the index of the part after
    /// them, and whether the segment is complete (no part follows these). `chunks` may be
    /// empty while the segment is open. The segment's bytes are [`STYP`] followed by every
    /// part, so a response that sends `STYP` first and then each of these in turn sends
    /// exactly the segment.
    Parts {
        chunks: Vec<Bytes>,
        next_part: u32,
        complete: bool,
    },
    /// Not begun yet but due next: wait for it.
    Soon,
    /// Not in the window, or never will be (the stream ended first).
    Missing,
}

/// Every stream this shard indexes.
pub struct MediaIndex {
    limits: IndexLimits,
    streams: HashMap<Arc<str>, StreamIndex>,
    /// Kept as streams change, so [`totals`](Self::totals) costs nothing.
    ended: usize,
    bytes: usize,
}

impl MediaIndex {
    pub fn new(limits: IndexLimits) -> Self {
        MediaIndex {
            limits,
            streams: HashMap::new(),
            ended: 0,
            bytes: 0,
        }
    }

    /// Applies one event of `stream`, at `now_ms` on the caller's monotonic clock (it times
    /// when an ended stream retires). Returns false when it was refused (too many streams).
    pub fn apply(&mut self, stream: &Arc<str>, event: IndexEvent, now_ms: u64) -> bool {
        if let IndexEvent::Started {
            started_ms,
            part_target_ms,
            info,
        } = &event
        {
            if !self.streams.contains_key(stream) && self.streams.len() >= self.limits.streams_max {
                self.evict_ended();
                if self.streams.len() >= self.limits.streams_max {
                    return false;
                }
            }
            let entry = self
                .streams
                .entry(stream.clone())
                .or_insert_with(|| StreamIndex {
                    name: stream.clone(),
                    started_ms: *started_ms,
                    ended: false,
                    ended_at_ms: 0,
                    part_target_ms: *part_target_ms,
                    target_duration_s: 1,
                    info: info.clone(),
                    renditions: Vec::new(),
                    thumbnail: None,
                    bytes_held: 0,
                    served_segments: 0,
                    served_playlists: 0,
                });
            // A stream that restarts keeps its window: numbering continues at the home, and the
            // next segments carry a discontinuity.
            if entry.ended {
                entry.ended = false;
                self.ended -= 1;
            }
            entry.info = info.clone();
            entry.part_target_ms = *part_target_ms;
            return true;
        }
        let limits = self.limits;
        let Some(index) = self.streams.get_mut(stream) else {
            return false;
        };
        let (was_ended, bytes_before) = (index.ended, index.bytes_held);
        index.apply(event, &limits);
        if index.ended && !was_ended {
            index.ended_at_ms = now_ms;
            self.ended += 1;
        }
        self.bytes = self.bytes - bytes_before + index.bytes_held;
        true
    }

    /// Makes room for a new stream: every ended stream goes, however recently it ended.
    fn evict_ended(&mut self) {
        self.retire_where(|_| true);
    }

    /// Forgets the streams that ended `ended_keep_ms` or more before `now_ms`, and returns
    /// how many went. The caller runs it at [`next_retirement_ms`](Self::next_retirement_ms).
    pub fn retire_ended(&mut self, now_ms: u64) -> usize {
        let keep_ms = self.limits.ended_keep_ms;
        self.retire_where(|s| now_ms >= s.ended_at_ms.saturating_add(keep_ms))
    }

    /// Forgets the ended streams for which `due` holds; returns how many.
    fn retire_where(&mut self, due: impl Fn(&StreamIndex) -> bool) -> usize {
        let (mut retired, mut bytes) = (0, 0);
        self.streams.retain(|_, s| {
            let go = s.ended && due(s);
            if go {
                retired += 1;
                bytes += s.bytes_held;
            }
            !go
        });
        self.ended -= retired;
        self.bytes -= bytes;
        retired
    }

    /// When the next ended stream is due to retire, if any has ended.
    pub fn next_retirement_ms(&self) -> Option<u64> {
        self.streams
            .values()
            .filter(|s| s.ended)
            .map(|s| s.ended_at_ms.saturating_add(self.limits.ended_keep_ms))
            .min()
    }

    /// How many streams are indexed, how many of them have ended, and the media bytes they
    /// hold (shared with every other shard's index: one copy per process).
    pub fn totals(&self) -> IndexTotals {
        IndexTotals {
            streams: self.streams.len(),
            ended: self.ended,
            bytes: self.bytes,
        }
    }

    /// Forgets a stream (a new publish starts a fresh index).
    pub fn remove(&mut self, name: &str) {
        if let Some(s) = self.streams.remove(name) {
            self.ended -= usize::from(s.ended);
            self.bytes -= s.bytes_held;
        }
    }

    /// A stream's index.
    pub fn stream(&self, name: &str) -> Option<&StreamIndex> {
        self.streams.get(name)
    }

    /// A stream's index, mutable (for counters).
    pub fn stream_mut(&mut self, name: &str) -> Option<&mut StreamIndex> {
        self.streams.get_mut(name)
    }

    /// Every indexed stream.
    pub fn streams(&self) -> impl Iterator<Item = &StreamIndex> {
        self.streams.values()
    }
}

impl StreamIndex {
    /// The publisher went away; the playlists have ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn apply(&mut self, event: IndexEvent, limits: &IndexLimits) {
        match event {
            // `MediaIndex::apply` handles `Started` and returns before calling this.
            IndexEvent::Started { .. } => unreachable!("handled by MediaIndex"),
            IndexEvent::Ended => {
                self.ended = true;
                for r in &mut self.renditions {
                    // Parts of an unfinished segment will never complete: drop them.
                    let open = r.open.take();
                    if let Some(open) = open {
                        while r.parts.back().is_some_and(|p| p.msn >= open.msn) {
                            r.parts.pop_back();
                            let bytes = r.part_bytes.pop_back().map_or(0, |b| b.len());
                            self.bytes_held -= bytes;
                        }
                    }
                }
            }
            IndexEvent::Info(info) => self.info = info,
            IndexEvent::Thumbnail { jpeg, made_ms } => {
                let before = self.thumbnail.as_ref().map_or(0, |(j, _)| j.len());
                self.bytes_held = self.bytes_held - before + jpeg.len();
                self.thumbnail = Some((jpeg, made_ms));
            }
            IndexEvent::Meta { rendition } => {
                if let Some(i) = self.rendition_index(&rendition.name) {
                    self.renditions[i].meta = rendition;
                }
            }
            IndexEvent::Init {
                rendition,
                init,
                discontinuity,
            } => {
                let r = match self.rendition_index(&rendition.name) {
                    Some(i) => &mut self.renditions[i],
                    None => {
                        self.renditions.push(RenditionIndex {
                            meta: rendition.clone(),
                            inits: VecDeque::new(),
                            init_version: 0,
                            segments: VecDeque::new(),
                            segment_bytes: VecDeque::new(),
                            parts: VecDeque::new(),
                            part_bytes: VecDeque::new(),
                            open: None,
                            next_discontinuity: false,
                            discontinuity_sequence: 0,
                            epoch_ticks: None,
                        });
                        self.renditions.last_mut().expect("just pushed")
                    }
                };
                let version = if r.inits.is_empty() {
                    0
                } else {
                    r.init_version + 1
                };
                r.meta = rendition;
                r.init_version = version;
                r.inits.push_back((version, init));
                while r.inits.len() > limits.inits_kept.max(1) {
                    r.inits.pop_front();
                }
                r.next_discontinuity |= discontinuity;
            }
            IndexEvent::Part {
                rendition,
                msn,
                part_index,
                start_ticks: _,
                duration_ticks,
                independent,
                program_date_time_ms,
                bytes,
                last_received_ms: _,
            } => {
                let Some(i) = self.rendition_index(&rendition) else {
                    return;
                };
                let r = &mut self.renditions[i];
                if r.open.is_none_or(|o| o.msn != msn) {
                    r.open = Some(OpenSegment {
                        msn,
                        discontinuity: r.next_discontinuity,
                        init_version: r.init_version,
                        program_date_time_ms: Some(program_date_time_ms),
                    });
                }
                self.bytes_held += bytes.len();
                r.parts.push_back(PartView {
                    msn,
                    index: part_index,
                    duration_ticks,
                    independent,
                });
                r.part_bytes.push_back(bytes);
            }
            IndexEvent::Segment {
                rendition,
                msn,
                start_ticks,
                duration_ticks,
                bytes,
                discontinuity,
                program_date_time_ms,
            } => {
                let Some(i) = self.rendition_index(&rendition) else {
                    return;
                };
                let r = &mut self.renditions[i];
                let discontinuity = discontinuity || r.next_discontinuity;
                r.next_discontinuity = false;
                r.epoch_ticks.get_or_insert(start_ticks);
                r.segments.push_back(SegmentView {
                    msn,
                    start_ticks,
                    duration_ticks,
                    program_date_time_ms: Some(program_date_time_ms),
                    discontinuity,
                    gap: false,
                    init_version: r.init_version,
                });
                r.segment_bytes.push_back(bytes);
                r.open = None;
                // EXT-X-TARGETDURATION: every EXTINF rounded to the nearest second is at most it.
                let timescale = r.meta.timescale.max(1) as u64;
                let seconds = (duration_ticks + timescale / 2) / timescale;
                self.target_duration_s = self.target_duration_s.max(seconds.max(1) as u32);
                self.trim(limits);
            }
        }
    }

    fn rendition_index(&self, name: &str) -> Option<usize> {
        self.renditions.iter().position(|r| &*r.meta.name == name)
    }

    /// Drops segments past the window (by time) and, oldest first, past the byte cap.
    fn trim(&mut self, limits: &IndexLimits) {
        for r in &mut self.renditions {
            let timescale = r.meta.timescale.max(1) as u64;
            let window_ticks = limits.window_ms * timescale / 1000;
            let total: u64 = r.segments.iter().map(|s| s.duration_ticks).sum();
            let mut excess = total.saturating_sub(window_ticks);
            while r.segments.len() > 1 && excess > 0 {
                let gone = r.segments.front().expect("non-empty").duration_ticks;
                self.bytes_held -= drop_oldest_segment(r);
                excess = excess.saturating_sub(gone);
            }
        }
        while self.bytes_held > limits.stream_max_bytes {
            // The rendition whose oldest segment is oldest gives it up.
            let victim = self
                .renditions
                .iter()
                .enumerate()
                .filter(|(_, r)| r.segments.len() > 1)
                .min_by_key(|(_, r)| r.segments.front().map(|s| s.msn))
                .map(|(i, _)| i);
            let Some(i) = victim else {
                break;
            };
            self.bytes_held -= drop_oldest_segment(&mut self.renditions[i]);
        }
    }

    /// Bytes of media held.
    pub fn bytes_held(&self) -> usize {
        self.bytes_held
    }

    /// Rendition names, video first.
    pub fn rendition_names(&self) -> impl Iterator<Item = &str> {
        self.renditions.iter().map(|r| &*r.meta.name)
    }

    /// Facts for the writers.
    pub fn facts(&self) -> StreamFacts {
        StreamFacts {
            target_duration_s: self.target_duration_s,
            part_target_ms: self.part_target_ms,
            ended: self.ended,
        }
    }

    /// Whether the source's video may still come: its rendition (the first video one) has
    /// no segment or part yet, or there is none and no rendition has a whole segment yet (a
    /// publisher's sound often comes before its first keyframe; a stream with sound alone
    /// shows it by its first segment). A multivariant playlist or MPD written now would list
    /// the audio alone, and a player that loads it once (hls.js does) would never show a
    /// picture.
    pub fn video_pending(&self) -> bool {
        let video = (self.renditions.iter())
            .find(|r| matches!(r.meta.kind, crate::manifest::RenditionKind::Video { .. }));
        match video {
            Some(r) => r.segments.is_empty() && r.parts.is_empty(),
            None => self.renditions.iter().all(|r| r.segments.is_empty()),
        }
    }

    /// Views of every rendition that has at least one segment or part.
    pub fn views(&self) -> Vec<RenditionView<'_>> {
        self.renditions
            .iter()
            .filter(|r| !r.segments.is_empty() || !r.parts.is_empty())
            .map(|r| r.view())
            .collect()
    }

    /// The init segment of `rendition`, version `version`.
    pub fn init(&self, rendition: &str, version: u32) -> Option<Bytes> {
        let r = &self.renditions[self.rendition_index(rendition)?];
        r.inits
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    /// What `rendition` is (its kind and codecs), when it exists.
    pub fn rendition_meta(&self, rendition: &str) -> Option<&RenditionMeta> {
        Some(&self.renditions[self.rendition_index(rendition)?].meta)
    }

    /// The average bit rate of `rendition`'s segments held (bit/s); None before its first
    /// segment.
    pub fn average_bps(&self, rendition: &str) -> Option<u64> {
        let r = &self.renditions[self.rendition_index(rendition)?];
        (!r.segments.is_empty()).then(|| r.average_bps())
    }

    /// Whether `rendition` exists.
    pub fn has_rendition(&self, rendition: &str) -> bool {
        self.rendition_index(rendition).is_some()
    }

    /// The bytes of segment `msn` of `rendition`.
    pub fn segment(&self, rendition: &str, msn: u64) -> Fetch {
        let Some(i) = self.rendition_index(rendition) else {
            return Fetch::Missing;
        };
        let r = &self.renditions[i];
        let complete = r.segments.back().map(|s| s.msn);
        if complete.is_some_and(|last| msn <= last) {
            if r.segments.front().is_some_and(|first| msn < first.msn) {
                return Fetch::Missing;
            }
            let mut chunks = vec![Bytes::from_static(STYP)];
            chunks.extend(r.parts_of(msn).map(|(_, b)| b.clone()));
            return Fetch::Ready(chunks);
        }
        // The segment being built, or the next one: a player asks a little ahead.
        let next = complete.map_or(0, |m| m + 1);
        if !self.ended && msn <= next + 1 && (complete.is_some() || !r.parts.is_empty()) {
            Fetch::Soon
        } else {
            Fetch::Missing
        }
    }

    /// Segment `msn` of `rendition` from part `from_part` on, complete or still being made.
    pub fn segment_from(&self, rendition: &str, msn: u64, from_part: u32) -> Progressive {
        let Some(i) = self.rendition_index(rendition) else {
            return Progressive::Missing;
        };
        let r = &self.renditions[i];
        let complete = r.segments.back().map(|s| s.msn);
        let is_complete = complete.is_some_and(|last| msn <= last);
        if is_complete && r.segments.front().is_some_and(|first| msn < first.msn) {
            return Progressive::Missing;
        }
        let next = complete.map_or(0, |m| m + 1);
        let begun = complete.is_some() || !r.parts.is_empty();
        if !is_complete && (self.ended || msn > next + 1 || !begun) {
            return Progressive::Missing;
        }
        let mut next_part = from_part;
        let chunks: Vec<Bytes> = r
            .parts_of(msn)
            .filter(|(p, _)| p.index >= from_part)
            .map(|(p, b)| {
                next_part = p.index + 1;
                b.clone()
            })
            .collect();
        if !is_complete && next_part == 0 {
            return Progressive::Soon;
        }
        Progressive::Parts {
            chunks,
            next_part,
            complete: is_complete,
        }
    }

    /// The bytes of part `part_index` of segment `msn` of `rendition`.
    pub fn part(&self, rendition: &str, msn: u64, part_index: u32) -> Fetch {
        let Some(i) = self.rendition_index(rendition) else {
            return Fetch::Missing;
        };
        let r = &self.renditions[i];
        if let Some((_, bytes)) = r.parts_of(msn).find(|(p, _)| p.index == part_index) {
            return Fetch::Ready(vec![bytes.clone()]);
        }
        let Some(last) = r.parts.back() else {
            return if self.ended {
                Fetch::Missing
            } else {
                Fetch::Soon
            };
        };
        let ahead = PartRef { msn, part_index }
            > PartRef {
                msn: last.msn,
                part_index: last.index,
            };
        // The preload hint names the next part; allow a couple of parts of slack.
        let near = msn <= last.msn + 1;
        if ahead && near && !self.ended {
            Fetch::Soon
        } else {
            Fetch::Missing
        }
    }

    /// The latest part and complete segment of `rendition`, for blocking reloads.
    pub fn progress(&self, rendition: &str) -> Option<Progress> {
        let r = &self.renditions[self.rendition_index(rendition)?];
        Some(r.view().progress(self.ended))
    }
}

fn drop_oldest_segment(r: &mut RenditionIndex) -> usize {
    let Some(segment) = r.segments.pop_front() else {
        return 0;
    };
    r.segment_bytes.pop_front();
    if segment.discontinuity {
        // The playlist's EXT-X-DISCONTINUITY-SEQUENCE counts discontinuities that left.
        r.discontinuity_sequence += 1;
    }
    let mut freed = 0;
    while r.parts.front().is_some_and(|p| p.msn <= segment.msn) {
        r.parts.pop_front();
        freed += r.part_bytes.pop_front().map_or(0, |b| b.len());
    }
    freed
}

impl RenditionIndex {
    fn view(&self) -> RenditionView<'_> {
        let (sh, st) = self.segments.as_slices();
        let (ph, pt) = self.parts.as_slices();
        RenditionView {
            info: RenditionInfo {
                name: &self.meta.name,
                kind: self.meta.kind,
                codecs: &self.meta.codecs,
                bandwidth_bps: self.peak_bps(),
                average_bandwidth_bps: self.average_bps(),
                timescale: self.meta.timescale,
                epoch_ticks: self.epoch_ticks.unwrap_or(0),
            },
            segments: Slices::new(sh, st),
            parts: Slices::new(ph, pt),
            open_segment: self.open,
            discontinuity_sequence: self.discontinuity_sequence,
        }
    }

    fn parts_of(&self, msn: u64) -> impl Iterator<Item = (&PartView, &Bytes)> {
        // Parts are ordered by (msn, index): find the first of `msn` by binary search.
        let start = self.parts.partition_point(|p| p.msn < msn);
        self.parts
            .range(start..)
            .zip(self.part_bytes.range(start..))
            .take_while(move |(p, _)| p.msn == msn)
    }

    fn peak_bps(&self) -> u64 {
        self.segments
            .iter()
            .zip(&self.segment_bytes)
            .map(|(s, b)| bits_per_second(*b, s.duration_ticks, self.meta.timescale))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    fn average_bps(&self) -> u64 {
        let ticks: u64 = self.segments.iter().map(|s| s.duration_ticks).sum();
        let bytes: usize = self.segment_bytes.iter().sum();
        bits_per_second(bytes, ticks, self.meta.timescale).max(1)
    }
}

fn bits_per_second(bytes: usize, ticks: u64, timescale: u32) -> u64 {
    if ticks == 0 {
        return 0;
    }
    (bytes as u128 * 8 * timescale as u128 / ticks as u128) as u64
}

/// Whether a part's [`IndexEvent::Part::last_received_ms`] is filled in by [`index_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartTiming {
    /// The part is the source's: its last sample's arrival time is the start of the
    /// part-ready latency, so it is passed on.
    Received,
    /// The part is a transcoded rung's: its samples' arrival says nothing about the rung's
    /// latency (that is the transcode's), so it is left out.
    Untimed,
}

/// A rendition's facts from its track configuration, under `name`.
///
/// A video rendition whose SPS has no frame rate is announced at 30 fps; the home corrects it
/// with an [`IndexEvent::Meta`] once it has measured the rate.
pub fn rendition_meta(config: &TrackConfig, name: Arc<str>) -> RenditionMeta {
    // Every variant is matched, so a new kind of track configuration is a compile error here
    // rather than a panic on a publisher's input.
    let kind = match config {
        TrackConfig::Avc(avc) => video_kind(&avc.sps_info.video),
        TrackConfig::Hevc(hevc) => video_kind(&hevc.sps_info.video),
        // What `TrackConfig::audio_format` says, without its `Option`.
        TrackConfig::Aac(aac) => RenditionKind::Audio {
            sample_rate_hz: aac.sample_rate,
            channels: aac.channel_config.max(1),
        },
        TrackConfig::Opus(opus) => RenditionKind::Audio {
            sample_rate_hz: OPUS_SAMPLE_RATE,
            channels: opus.channels,
        },
    };
    RenditionMeta {
        name,
        kind,
        codecs: config.codec_string(),
        timescale: config.timescale(),
    }
}

fn video_kind(video: &VideoInfo) -> RenditionKind {
    let rate = video.frame_rate.map_or(FrameRate::fps(30), manifest_rate);
    RenditionKind::Video {
        width: video.width,
        height: video.height,
        frame_rate: rate,
    }
}

/// The manifest's spelling of a codec frame rate.
pub(crate) fn manifest_rate(rate: CodecFrameRate) -> FrameRate {
    FrameRate {
        num: rate.numerator,
        den: rate.denominator,
    }
}

/// The index update for a segmenter's header, part or segment event, for rendition `name`.
///
/// `config` is the track's configuration, needed for a header: an [`Event::InitReady`] without
/// one gives `None`. Parts carry their last sample's arrival only with
/// [`PartTiming::Received`]. [`Event::Placed`] gives `None`: it is for a transcoder, not for
/// the index.
pub fn index_event(
    event: Event,
    name: Arc<str>,
    config: Option<&TrackConfig>,
    timing: PartTiming,
) -> Option<IndexEvent> {
    Some(match event {
        Event::InitReady {
            init,
            discontinuity,
            ..
        } => IndexEvent::Init {
            rendition: Arc::new(rendition_meta(config?, name)),
            init,
            discontinuity,
        },
        Event::PartReady {
            msn,
            part_index,
            start_dts,
            duration_ticks,
            independent,
            program_date_time_ms,
            last_received_ms,
            bytes,
            ..
        } => IndexEvent::Part {
            rendition: name,
            msn,
            part_index,
            start_ticks: start_dts,
            duration_ticks,
            independent,
            program_date_time_ms,
            bytes,
            last_received_ms: (timing == PartTiming::Received).then_some(last_received_ms),
        },
        Event::SegmentReady {
            msn,
            start_dts,
            duration_ticks,
            bytes,
            discontinuity,
            program_date_time_ms,
            ..
        } => IndexEvent::Segment {
            rendition: name,
            msn,
            start_ticks: start_dts,
            duration_ticks,
            bytes,
            discontinuity,
            program_date_time_ms,
        },
        Event::Placed { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> IndexLimits {
        IndexLimits {
            window_ms: 10_000,
            stream_max_bytes: 1 << 30,
            inits_kept: 2,
            streams_max: 4,
            ended_keep_ms: 60_000,
        }
    }

    fn meta(name: &str) -> Arc<RenditionMeta> {
        Arc::new(RenditionMeta {
            name: Arc::from(name),
            kind: RenditionKind::Audio {
                sample_rate_hz: 48_000,
                channels: 2,
            },
            codecs: "mp4a.40.2".into(),
            timescale: 1000,
        })
    }

    fn feed_segment(
        index: &mut MediaIndex,
        stream: &Arc<str>,
        msn: u64,
        parts: u32,
        part_bytes: usize,
    ) {
        for p in 0..parts {
            feed_part(index, stream, msn, p, part_bytes);
        }
        index.apply(
            stream,
            IndexEvent::Segment {
                rendition: Arc::from("audio"),
                msn,
                start_ticks: msn * 2000,
                duration_ticks: 500 * parts as u64,
                bytes: part_bytes * parts as usize + STYP.len(),
                discontinuity: false,
                program_date_time_ms: 0,
            },
            0,
        );
    }

    fn started(index: &mut MediaIndex, stream: &Arc<str>) {
        assert!(index.apply(
            stream,
            IndexEvent::Started {
                started_ms: 0,
                part_target_ms: Some(500),
                info: Arc::new(StreamInfo::default()),
            },
            0,
        ));
        index.apply(
            stream,
            IndexEvent::Init {
                rendition: meta("audio"),
                init: Bytes::from_static(b"init"),
                discontinuity: false,
            },
            0,
        );
    }

    fn feed_part(index: &mut MediaIndex, stream: &Arc<str>, msn: u64, p: u32, size: usize) {
        index.apply(
            stream,
            IndexEvent::Part {
                rendition: Arc::from("audio"),
                msn,
                part_index: p,
                start_ticks: msn * 2000 + p as u64 * 500,
                duration_ticks: 500,
                independent: true,
                program_date_time_ms: 0,
                bytes: Bytes::from(vec![p as u8; size]),
                last_received_ms: None,
            },
            0,
        );
    }

    fn parts(progress: Progressive) -> (Vec<u8>, u32, bool) {
        match progress {
            Progressive::Parts {
                chunks,
                next_part,
                complete,
            } => (chunks.iter().map(|c| c[0]).collect(), next_part, complete),
            other => panic!("parts expected, got {other:?}"),
        }
    }

    #[test]
    fn an_open_segment_is_given_part_by_part_then_complete() {
        let mut index = MediaIndex::new(limits());
        let stream: Arc<str> = Arc::from("s");
        started(&mut index, &stream);
        let s = |index: &MediaIndex| index.stream("s").unwrap().segment_from("audio", 1, 0);
        assert!(matches!(s(&index), Progressive::Missing), "nothing begun");
        feed_segment(&mut index, &stream, 0, 4, 10);
        // Segment 1 is due next, segment 2 after it, segment 3 is too far ahead.
        assert!(matches!(s(&index), Progressive::Soon));
        let from = |index: &MediaIndex, msn, part| {
            index.stream("s").unwrap().segment_from("audio", msn, part)
        };
        assert!(matches!(from(&index, 2, 0), Progressive::Soon));
        assert!(matches!(from(&index, 3, 0), Progressive::Missing));
        feed_part(&mut index, &stream, 1, 0, 10);
        feed_part(&mut index, &stream, 1, 1, 10);
        assert_eq!(parts(from(&index, 1, 0)), (vec![0, 1], 2, false));
        assert_eq!(parts(from(&index, 1, 2)), (vec![], 2, false));
        feed_part(&mut index, &stream, 1, 2, 10);
        feed_part(&mut index, &stream, 1, 3, 10);
        index.apply(
            &stream,
            IndexEvent::Segment {
                rendition: Arc::from("audio"),
                msn: 1,
                start_ticks: 2000,
                duration_ticks: 2000,
                bytes: 40 + STYP.len(),
                discontinuity: false,
                program_date_time_ms: 0,
            },
            0,
        );
        assert_eq!(parts(from(&index, 1, 2)), (vec![2, 3], 4, true));
        assert_eq!(parts(from(&index, 0, 0)), (vec![0, 1, 2, 3], 4, true));
        // A stream that ended leaves nothing to wait for.
        feed_part(&mut index, &stream, 2, 0, 10);
        index.apply(&stream, IndexEvent::Ended, 0);
        assert!(matches!(from(&index, 2, 1), Progressive::Missing));
        assert!(matches!(from(&index, 3, 0), Progressive::Missing));
    }

    #[test]
    fn video_is_pending_while_only_the_audio_has_parts() {
        let mut index = MediaIndex::new(limits());
        let stream: Arc<str> = Arc::from("s");
        started(&mut index, &stream);
        let pending = |index: &MediaIndex| index.stream("s").unwrap().video_pending();
        // Sound alone, before its first segment: the picture may still come.
        feed_part(&mut index, &stream, 0, 0, 10);
        assert!(pending(&index), "no video yet, no whole segment yet");
        let video = Arc::new(RenditionMeta {
            name: Arc::from("source"),
            kind: RenditionKind::Video {
                width: 640,
                height: 360,
                frame_rate: FrameRate::fps(30),
            },
            codecs: "avc1.64001e".into(),
            timescale: 90_000,
        });
        let init = IndexEvent::Init {
            rendition: video,
            init: Bytes::from_static(b"init"),
            discontinuity: false,
        };
        index.apply(&stream, init, 0);
        assert!(pending(&index), "the audio has a part, the video none");
        let part = IndexEvent::Part {
            rendition: Arc::from("source"),
            msn: 0,
            part_index: 0,
            start_ticks: 0,
            duration_ticks: 45_000,
            independent: true,
            program_date_time_ms: 0,
            bytes: Bytes::from_static(b"part"),
            last_received_ms: None,
        };
        index.apply(&stream, part, 0);
        assert!(!pending(&index));
        // A stream with sound alone is shown from its first whole segment on.
        let mut index = MediaIndex::new(limits());
        started(&mut index, &stream);
        feed_segment(&mut index, &stream, 0, 4, 100);
        assert!(!pending(&index), "sound alone, a whole segment");
    }

    #[test]
    fn segments_are_styp_then_their_parts_and_the_window_slides() {
        let mut index = MediaIndex::new(limits());
        let stream: Arc<str> = Arc::from("s");
        started(&mut index, &stream);
        for msn in 0..10 {
            feed_segment(&mut index, &stream, msn, 4, 100);
        }
        let s = index.stream("s").unwrap();
        // 10 s window of 2 s segments: 5 kept.
        assert_eq!(s.views()[0].segments.len(), 5);
        assert!(matches!(s.segment("audio", 4), Fetch::Missing));
        match s.segment("audio", 7) {
            Fetch::Ready(chunks) => {
                assert_eq!(chunks.len(), 5);
                assert_eq!(&chunks[0][..], STYP);
                assert_eq!(
                    chunks[1..].iter().map(|c| c[0]).collect::<Vec<_>>(),
                    vec![0, 1, 2, 3]
                );
            }
            _ => panic!("segment 7 ready"),
        }
        assert!(matches!(s.part("audio", 9, 3), Fetch::Ready(_)));
        assert!(matches!(s.part("audio", 10, 0), Fetch::Soon));
        assert!(matches!(s.part("audio", 12, 0), Fetch::Missing));
        assert!(matches!(s.segment("audio", 10), Fetch::Soon));
        assert_eq!(s.target_duration_s, 2);
        assert_eq!(s.bytes_held(), 5 * 4 * 100);
        assert_eq!(s.init("audio", 0).as_deref(), Some(&b"init"[..]));
    }

    #[test]
    fn the_byte_cap_drops_oldest_segments() {
        let mut index = MediaIndex::new(IndexLimits {
            stream_max_bytes: 2_000,
            ..limits()
        });
        let stream: Arc<str> = Arc::from("s");
        started(&mut index, &stream);
        for msn in 0..4 {
            feed_segment(&mut index, &stream, msn, 4, 200);
        }
        let s = index.stream("s").unwrap();
        assert!(s.bytes_held() <= 2_000);
        assert_eq!(s.views()[0].segments.first().unwrap().msn, 2);
    }

    #[test]
    fn ending_drops_unfinished_parts_and_stops_waiting() {
        let mut index = MediaIndex::new(limits());
        let stream: Arc<str> = Arc::from("s");
        started(&mut index, &stream);
        feed_segment(&mut index, &stream, 0, 4, 10);
        index.apply(
            &stream,
            IndexEvent::Part {
                rendition: Arc::from("audio"),
                msn: 1,
                part_index: 0,
                start_ticks: 2000,
                duration_ticks: 500,
                independent: true,
                program_date_time_ms: 0,
                bytes: Bytes::from_static(b"p"),
                last_received_ms: None,
            },
            0,
        );
        index.apply(&stream, IndexEvent::Ended, 0);
        let s = index.stream("s").unwrap();
        assert!(s.ended);
        assert!(matches!(s.part("audio", 1, 0), Fetch::Missing));
        assert!(matches!(s.segment("audio", 1), Fetch::Missing));
        assert_eq!(s.bytes_held(), 40);
    }

    fn avc() -> TrackConfig {
        let record = Bytes::from_static(include_bytes!(
            "../tests/fixtures/avc_1080p25_baseline.avcc"
        ));
        TrackConfig::Avc(crate::codec::parse_avcc(&record).unwrap())
    }

    #[test]
    fn rendition_meta_covers_every_kind_of_track() {
        let video = rendition_meta(&avc(), Arc::from("source"));
        assert!(matches!(
            video.kind,
            RenditionKind::Video {
                width: 1920,
                height: 1080,
                frame_rate: FrameRate { num: 25, den: 1 }
            }
        ));
        assert_eq!((&*video.name, video.timescale), ("source", 90_000));
        let TrackConfig::Avc(mut no_rate) = avc() else {
            unreachable!()
        };
        no_rate.sps_info.video.frame_rate = None;
        let fallback = rendition_meta(&TrackConfig::Avc(no_rate), Arc::from("source"));
        assert!(matches!(
            fallback.kind,
            RenditionKind::Video {
                frame_rate: FrameRate { num: 30, den: 1 },
                ..
            }
        ));
        let aac = TrackConfig::Aac(
            crate::codec::parse_audio_specific_config(&Bytes::from_static(&[0x11, 0x90])).unwrap(),
        );
        let opus = TrackConfig::Opus(crate::codec::OpusConfig {
            channels: 2,
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: 0,
            record: Bytes::new(),
        });
        for audio in [aac, opus] {
            let meta = rendition_meta(&audio, Arc::from("audio"));
            let (sample_rate_hz, channels) = audio.audio_format().unwrap();
            assert!(
                matches!(meta.kind, RenditionKind::Audio { sample_rate_hz: r, channels: c }
                    if (r, c) == (sample_rate_hz, channels)),
                "{meta:?}"
            );
            assert_eq!(meta.codecs, audio.codec_string());
            assert_eq!(meta.timescale, audio.timescale());
        }
    }

    #[test]
    fn index_events_from_segmenter_events() {
        let init = Event::InitReady {
            track: crate::TrackKind::Video,
            init: Bytes::from_static(b"init"),
            discontinuity: true,
        };
        // A header needs its configuration.
        assert!(index_event(init.clone(), Arc::from("v"), None, PartTiming::Received).is_none());
        let config = avc();
        assert!(matches!(
            index_event(init, Arc::from("v"), Some(&config), PartTiming::Received),
            Some(IndexEvent::Init { rendition, discontinuity: true, .. }) if &*rendition.name == "v"
        ));
        let part = Event::PartReady {
            track: crate::TrackKind::Video,
            msn: 3,
            part_index: 1,
            start_dts: 9000,
            duration_ticks: 3000,
            timescale: 90_000,
            duration_ms: 33,
            independent: false,
            program_date_time_ms: 7,
            last_received_ms: 42,
            bytes: Bytes::from_static(b"moof"),
        };
        let timed = index_event(part.clone(), Arc::from("v"), None, PartTiming::Received);
        assert!(matches!(
            timed,
            Some(IndexEvent::Part {
                msn: 3,
                part_index: 1,
                start_ticks: 9000,
                last_received_ms: Some(42),
                ..
            })
        ));
        let untimed = index_event(part, Arc::from("v"), None, PartTiming::Untimed);
        assert!(matches!(
            untimed,
            Some(IndexEvent::Part {
                last_received_ms: None,
                ..
            })
        ));
        let placed = Event::Placed {
            track: crate::TrackKind::Video,
            sample: crate::Sample {
                dts: 0,
                composition_offset: 0,
                duration: 0,
                keyframe: true,
                data: Bytes::new(),
            },
            msn: 0,
            segment_start: true,
            discontinuity: false,
        };
        assert!(index_event(placed, Arc::from("v"), Some(&config), PartTiming::Received).is_none());
    }

    #[test]
    fn stream_count_is_capped_and_ended_streams_make_room() {
        let mut index = MediaIndex::new(IndexLimits {
            streams_max: 1,
            ..limits()
        });
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        started(&mut index, &a);
        let info = Arc::new(StreamInfo::default());
        let start = IndexEvent::Started {
            started_ms: 0,
            part_target_ms: None,
            info,
        };
        assert!(!index.apply(&b, start.clone(), 0));
        index.apply(&a, IndexEvent::Ended, 0);
        assert!(index.apply(&b, start, 0));
    }

    #[test]
    fn ended_streams_retire_after_the_keep_time_and_a_restart_keeps_them() {
        let mut index = MediaIndex::new(limits());
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        started(&mut index, &a);
        started(&mut index, &b);
        feed_segment(&mut index, &a, 0, 4, 100);
        feed_segment(&mut index, &b, 0, 4, 100);
        assert_eq!(index.next_retirement_ms(), None);
        let held = index.totals().bytes;
        assert_eq!(
            index.totals(),
            IndexTotals {
                streams: 2,
                ended: 0,
                bytes: held
            }
        );

        index.apply(&a, IndexEvent::Ended, 1_000);
        // A second Ended (a repeated message) does not push the retirement back.
        index.apply(&a, IndexEvent::Ended, 5_000);
        index.apply(&b, IndexEvent::Ended, 2_000);
        assert_eq!(index.totals().ended, 2);
        assert_eq!(index.next_retirement_ms(), Some(61_000));
        // Still servable until then.
        assert_eq!(index.retire_ended(60_999), 0);
        assert!(matches!(
            index.stream("a").unwrap().segment("audio", 0),
            Fetch::Ready(_)
        ));
        assert_eq!(index.retire_ended(61_000), 1);
        assert!(index.stream("a").is_none());
        assert_eq!(index.totals().bytes, held / 2);
        assert_eq!(index.next_retirement_ms(), Some(62_000));

        // b publishes again before its time: it is live and stays.
        let restart = IndexEvent::Started {
            started_ms: 3_000,
            part_target_ms: Some(500),
            info: Arc::new(StreamInfo::default()),
        };
        assert!(index.apply(&b, restart, 3_000));
        assert_eq!(index.next_retirement_ms(), None);
        assert_eq!(index.retire_ended(1_000_000), 0);
        assert_eq!(index.totals().streams, 1);
        assert_eq!(index.totals().ended, 0);
        index.apply(&b, IndexEvent::Ended, 2_000_000);
        assert_eq!(index.retire_ended(2_060_000), 1);
        assert_eq!(index.totals(), IndexTotals::default());
    }
}
