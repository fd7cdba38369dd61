//! [`Segmenter`]: the samples of one stream in, CMAF headers, LL-HLS parts and segments out.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::cmaf::{self, STYP};
use crate::codec::TrackConfig;
use crate::sample::{ms_to_ticks, ticks_to_ms};
use crate::{ConfigError, Sample, SegmenterError, TrackKind};

/// The largest [`SegmenterConfig::segment_max_bytes`]: 256 MiB, far below the 4 GiB an `mdat`
/// size can express.
pub const SEGMENT_MAX_BYTES_CEILING: usize = 256 << 20;

/// The largest [`SegmenterConfig::part_max_samples`].
pub const PART_MAX_SAMPLES_CEILING: usize = 4096;

/// The largest [`SegmenterConfig::interleave_max_samples`].
pub const INTERLEAVE_MAX_SAMPLES_CEILING: usize = 8192;

const _: () = assert!(SEGMENT_MAX_BYTES_CEILING < u32::MAX as usize);

/// How a stream is cut, and the caps that bound the segmenter's memory.
///
/// Memory held inside a [`Segmenter`], per stream, at most:
///
/// - the interleaving queues: `2 × (interleave_max_samples + 1)` samples, which are
///   references to the RTMP message buffers (no copies), so their bytes are bounded by the
///   RTMP layer's message size cap times that count;
/// - the part being built: at most `part_max_samples` samples per track, whose bytes stay
///   below `segment_max_bytes` per track;
/// - one part's bytes while it is being written (the output [`Bytes`], handed to the caller).
///
/// Segments themselves are never held: their bytes leave as parts as soon as each part is
/// complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// The shortest segment, in milliseconds. A segment ends at the first video keyframe
    /// (the first audio frame for audio-only streams) at least this long after it started,
    /// less half a frame so that millisecond rounding cannot push a cut to the next GOP. With
    /// keyframes every 2 s and the default 2000, every segment is one GOP.
    pub segment_target_ms: u32,
    /// The LL-HLS part target, in milliseconds. A part ends before the sample that would make
    /// it longer than this (plus 1 ms of rounding), so parts meet the `PART-TARGET` rule and
    /// are at least 85 % of it whenever frames are shorter than 15 % of it. Every part is one
    /// `moof` + `mdat`.
    pub part_target_ms: u32,
    /// The longest segment, in milliseconds. When keyframes are further apart than this (OBS
    /// defaults to a keyframe every 250 frames), a segment is cut anyway at the next sample,
    /// and the new segment does not start with a keyframe: it is reported as not
    /// `independent`, and players can only start at the next independent one.
    pub segment_max_ms: u32,
    /// The largest segment, in bytes (`styp`, fragment headers and sample data). A sample
    /// that would push its track's segment over this forces a cut before it, with the same
    /// consequences as `segment_max_ms`; a single sample larger than this is refused with
    /// [`SegmenterError::SampleTooLarge`]. This bounds what the segment index holds per
    /// segment and track.
    pub segment_max_bytes: usize,
    /// The most samples in one part of one track. A track that reaches it forces a part cut
    /// (for every track, at that sample's time). Bounds the samples held while a part is
    /// built and the size of a `trun` (16 bytes a video sample).
    pub part_max_samples: usize,
    /// How long, in milliseconds of media time, one track may run ahead while another
    /// configured track has sent nothing. Samples are placed in decode-time order across
    /// tracks so that audio is cut at the same instant as video; when a track goes quiet for
    /// longer than this, the others proceed without it (it is "stalled") until it sends again.
    pub interleave_max_ms: u32,
    /// The most samples one track may queue while waiting for another, with the same effect
    /// as `interleave_max_ms` when exceeded.
    pub interleave_max_samples: usize,
    /// How far back, in milliseconds, a track's decode time may step before the sample is
    /// refused with [`SegmenterError::DtsBackwards`]. Smaller steps back (and repeats) are
    /// absorbed: the sample's decode time is moved to one tick after the previous one and its
    /// composition offset reduced by as much, so its presentation time is unchanged. A
    /// [`StreamHome`](crate::StreamHome) never gets that far: it re-bases a publisher whose
    /// timestamps step back further (a timestamp jump) before its samples reach here.
    pub dts_backwards_max_ms: u32,
}

impl SegmenterConfig {
    /// 2 s segments of 500 ms parts, at most 10 s or 16 MiB a segment, 256 samples a part,
    /// tracks kept within 1 s or 512 samples of each other, 500 ms of backward jitter.
    pub const DEFAULT: SegmenterConfig = SegmenterConfig {
        segment_target_ms: 2000,
        part_target_ms: 500,
        segment_max_ms: 10_000,
        segment_max_bytes: 16 << 20,
        part_max_samples: 256,
        interleave_max_ms: 1000,
        interleave_max_samples: 512,
        dts_backwards_max_ms: 500,
    };

    /// Checks the fields and their relations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("segment_target_ms", self.segment_target_ms as usize),
            ("part_target_ms", self.part_target_ms as usize),
            ("segment_max_ms", self.segment_max_ms as usize),
            ("segment_max_bytes", self.segment_max_bytes),
            ("part_max_samples", self.part_max_samples),
            ("interleave_max_ms", self.interleave_max_ms as usize),
            ("interleave_max_samples", self.interleave_max_samples),
        ];
        for (field, value) in nonzero {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        let order = [
            (
                "part_target_ms",
                self.part_target_ms,
                "segment_target_ms",
                self.segment_target_ms,
            ),
            (
                "segment_target_ms",
                self.segment_target_ms,
                "segment_max_ms",
                self.segment_max_ms,
            ),
        ];
        for (smaller, smaller_value, larger, larger_value) in order {
            if smaller_value > larger_value {
                return Err(ConfigError::Order {
                    smaller,
                    smaller_value: u64::from(smaller_value),
                    larger,
                    larger_value: u64::from(larger_value),
                });
            }
        }
        let ceilings = [
            (
                "segment_max_bytes",
                self.segment_max_bytes,
                SEGMENT_MAX_BYTES_CEILING,
            ),
            (
                "part_max_samples",
                self.part_max_samples,
                PART_MAX_SAMPLES_CEILING,
            ),
            (
                "interleave_max_samples",
                self.interleave_max_samples,
                INTERLEAVE_MAX_SAMPLES_CEILING,
            ),
        ];
        for (field, value, ceiling) in ceilings {
            if value > ceiling {
                return Err(ConfigError::OverCeiling {
                    field,
                    value: value as u64,
                    ceiling: ceiling as u64,
                });
            }
        }
        Ok(())
    }
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const _: () =
    assert!(SegmenterConfig::DEFAULT.part_target_ms <= SegmenterConfig::DEFAULT.segment_target_ms);
const _: () =
    assert!(SegmenterConfig::DEFAULT.segment_target_ms <= SegmenterConfig::DEFAULT.segment_max_ms);
const _: () = assert!(SegmenterConfig::DEFAULT.segment_max_bytes <= SEGMENT_MAX_BYTES_CEILING);

/// What the segmenter produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A track's CMAF header (`init.mp4`), on its first configuration and again whenever its
    /// codec configuration changes.
    InitReady {
        /// The track.
        track: TrackKind,
        /// The header.
        init: Bytes,
        /// Set when this replaces an earlier header: the track's next segment starts a new
        /// timeline section (`EXT-X-DISCONTINUITY`, a new DASH period) and must be fetched
        /// with this header.
        discontinuity: bool,
    },
    /// One LL-HLS part of a track: a `moof` + `mdat`, complete and immutable.
    PartReady {
        /// The track.
        track: TrackKind,
        /// The media sequence number of the segment this part belongs to.
        msn: u64,
        /// The part's index within its segment, from 0, without gaps.
        part_index: u32,
        /// The decode time of its first sample (the `tfdt`), in the track's timescale.
        start_dts: u64,
        /// The sum of its sample durations, in the track's timescale.
        duration_ticks: u64,
        /// The track's timescale.
        timescale: u32,
        /// The duration in milliseconds, rounded.
        duration_ms: u64,
        /// Whether it starts with a sync sample (`INDEPENDENT=YES`). Every audio part is.
        independent: bool,
        /// The wall-clock time of its first sample, in milliseconds since the Unix epoch.
        program_date_time_ms: u64,
        /// When its last sample was received: the `wall_clock_ms` passed with it.
        last_received_ms: u64,
        /// The part's bytes.
        bytes: Bytes,
    },
    /// A sample was placed (only for tracks asked for with
    /// [`Segmenter::set_report_placed_video`] / [`Segmenter::set_report_placed_audio`]): what a
    /// transcoder needs to encode renditions whose segments start exactly where this stream's
    /// do.
    Placed {
        /// The track.
        track: TrackKind,
        /// The sample as packaged: decode time on this segmenter's timeline (a video
        /// keyframe's decode time equals its presentation time), composition offset, keyframe
        /// flag, data.
        sample: Sample,
        /// The media sequence number of the segment it went into.
        msn: u64,
        /// It starts that segment (of its track).
        segment_start: bool,
        /// That segment starts a new timeline section.
        discontinuity: bool,
    },
    /// A track's segment is complete: every one of its parts has been reported.
    ///
    /// The segment's bytes are exactly [`cmaf::STYP`] followed by its parts' bytes in
    /// order, so serving a segment is writing those `Bytes` one after another (a gathered
    /// send); no second copy of the media is made.
    SegmentReady {
        /// The track.
        track: TrackKind,
        /// Its media sequence number. Numbers are shared by all tracks of the stream: the
        /// video and audio segments with the same `msn` cover the same media time. A track
        /// that had no sample during a segment (a stalled track) has no segment with that
        /// number.
        msn: u64,
        /// The decode time of its first sample, in the track's timescale.
        start_dts: u64,
        /// The sum of its sample durations, in the track's timescale.
        duration_ticks: u64,
        /// The track's timescale.
        timescale: u32,
        /// The duration in milliseconds, rounded.
        duration_ms: u64,
        /// How many parts it has.
        parts: u32,
        /// Its size in bytes, `styp` included.
        bytes: usize,
        /// Whether it starts with a sync sample. Only segments cut by a cap
        /// (`segment_max_ms`, `segment_max_bytes`) may not.
        independent: bool,
        /// Whether it is the first segment after a codec change (after an
        /// [`Event::InitReady`] with `discontinuity`).
        discontinuity: bool,
        /// The wall-clock time of its first sample, in milliseconds since the Unix epoch.
        program_date_time_ms: u64,
    },
}

/// Counters for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    /// Samples dropped because they could not start a stream or follow a codec change:
    /// video before its first keyframe, audio before the stream's first keyframe.
    pub samples_dropped: u64,
    /// Samples whose decode time was moved forward (see
    /// [`SegmenterConfig::dts_backwards_max_ms`]).
    pub dts_adjusted: u64,
    /// Part cuts forced by `part_max_samples`.
    pub forced_part_cuts: u64,
    /// Parts closed right after the sample that filled them (see the part target).
    pub early_part_cuts: u64,
    /// Follower segments whose requested number was not ahead of the current one.
    pub follower_misaligned: u64,
    /// Segment cuts forced by `segment_max_ms` or `segment_max_bytes`.
    pub forced_segment_cuts: u64,
    /// Times a track was declared stalled and the others went on without it.
    pub stalls: u64,
}

/// Cuts the samples of one stream into CMAF segments and LL-HLS parts.
///
/// # Call order
///
/// 1. [`handle_config`](Self::handle_config) with each track's codec configuration before its
///    first sample, and again whenever it changes (repeats of the same one are ignored).
/// 2. [`handle_sample`](Self::handle_sample) with every sample, per track in decode order,
///    with the wall-clock time it was received. Tracks may be interleaved in any order.
/// 3. After each `handle_*` call, drain [`poll_event`](Self::poll_event) until `None`. Events
///    come out in the order a player needs them: a track's `InitReady` before its parts, a
///    segment's parts before its `SegmentReady`.
/// 4. [`handle_end`](Self::handle_end) when the publish ends: the last parts and segments are
///    flushed. Inputs after it are refused.
///
/// # Timing
///
/// Samples are in their track's timescale (video 90 kHz, audio its sampling rate). Video
/// decode times are shifted once, at the first keyframe, by that keyframe's composition
/// offset: the keyframe then has offset 0, B-frames may have negative offsets (`trun`
/// version 1), presentation times are unchanged, and every segment's `tfdt` equals its first
/// keyframe's presentation time. That is what `cmf2` asks for in place of an edit list, and it
/// puts the audio and video cuts at the same presentation instant.
///
/// Samples of all tracks are placed in decode-time order (see
/// [`SegmenterConfig::interleave_max_ms`]), so a cut decided on a video keyframe at time `T`
/// puts every audio frame before `T` in the old segment and every frame from `T` on in the new
/// one: audio segments start at most one audio frame after their video segment.
///
/// The stream starts at the first video keyframe (or first audio frame for audio-only
/// streams); earlier samples are dropped and counted in [`stats`](Self::stats). A sample's
/// duration is the distance to the next sample of its track; the last sample of a part whose
/// successor has not arrived (end of stream, stalled track) takes its
/// [`Sample::duration`], or the track's previous duration.
///
/// The program date time is anchored at the first sample to the wall clock passed with it,
/// and advances with media time from there (so it is smooth, and ingest jitter does not show
/// in playlists). An encoder's first frames often arrive late (its connection and start-up
/// delay them, then it catches up): so at each new segment the anchor moves to the master
/// track's sample that arrived earliest for its media time, if that is earlier than the anchor. A
/// segment's parts all share one anchor; the anchor only ever moves earlier.
///
/// # Events
///
/// Each call produces a bounded number of events (at most five per sample placed, and a call
/// places at most the samples queued), and the caller must drain them: the segmenter does not
/// hold media for a caller that does not.
#[derive(Debug)]
pub struct Segmenter {
    config: SegmenterConfig,
    tracks: [Track; 2],
    events: VecDeque<Event>,
    msn: u64,
    started: bool,
    segment_start_ns: u64,
    part_start_ns: u64,
    anchor: Option<(u64, u64)>,
    /// The sample that arrived earliest for its media time: (wall ms, media ns).
    earliest: Option<(u64, u64)>,
    ended: bool,
    stats: SegmenterStats,
    /// A discontinuity was asked for: cut at the next master keyframe and flag it.
    discontinuity_requested: bool,
    /// The master track's part was closed early (see `close_full_part`): the other tracks'
    /// parts close before the master's next sample, as they would have at a regular cut.
    others_cut_pending: bool,
    /// Report every placed video sample as [`Event::Placed`].
    report_placed_video: bool,
    /// Report every placed audio sample as [`Event::Placed`].
    report_placed_audio: bool,
    /// Segments start only where [`Segmenter::start_segment`] says (and at the caps).
    follower: bool,
    /// The segment to start at the next master keyframe: (msn, discontinuity).
    forced_segment: Option<(u64, bool)>,
}

#[derive(Debug)]
struct Track {
    kind: TrackKind,
    /// The most recent configuration passed in (queued or active).
    announced: Option<TrackConfig>,
    /// The configuration of the samples being placed.
    active: Option<TrackConfig>,
    /// A configuration that reached the head of the queue, applied with the next sample.
    pending: Option<TrackConfig>,
    queue: VecDeque<Queued>,
    queued_samples: usize,
    stalled: bool,
    /// Video: ticks added to every decode time (see the type's documentation).
    decode_shift: Option<u64>,
    last_input_dts: Option<u64>,
    awaiting_keyframe: bool,
    part: Vec<Sample>,
    part_bytes: usize,
    segment: Option<SegmentProgress>,
    fragment_sequence: u32,
    last_duration: u32,
    discontinuity_next: bool,
    /// Where the last closed part ends when its last sample's duration was estimated: the
    /// next sample's decode time is moved there when it is that close, so parts stay
    /// contiguous (see `snap_to_part_end`).
    part_end_dts: Option<u64>,
    /// The `wall_clock_ms` of the newest sample in `part`.
    part_last_received_ms: u64,
}

#[derive(Debug)]
enum Queued {
    Config(TrackConfig),
    /// A sample and the wall-clock time it was received.
    Sample(Sample, u64),
}

#[derive(Debug)]
struct SegmentProgress {
    msn: u64,
    start_dts: u64,
    duration_ticks: u64,
    parts: u32,
    bytes: usize,
    independent: bool,
    discontinuity: bool,
    program_date_time_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    None,
    Part,
    Segment,
}

impl Track {
    fn new(kind: TrackKind) -> Self {
        Self {
            kind,
            announced: None,
            active: None,
            pending: None,
            queue: VecDeque::new(),
            queued_samples: 0,
            stalled: false,
            decode_shift: None,
            last_input_dts: None,
            awaiting_keyframe: kind == TrackKind::Video,
            part: Vec::new(),
            part_bytes: 0,
            segment: None,
            fragment_sequence: 1,
            last_duration: 0,
            discontinuity_next: false,
            part_end_dts: None,
            part_last_received_ms: 0,
        }
    }

    fn timescale(&self) -> u32 {
        let config = self.active.as_ref().or(self.announced.as_ref());
        config.map_or(1000, TrackConfig::timescale)
    }

    fn head_sample(&self) -> Option<&Sample> {
        match self.queue.front() {
            Some(Queued::Sample(sample, _)) => Some(sample),
            _ => None,
        }
    }

    fn any_queued_sample(&self) -> bool {
        self.queued_samples > 0
    }

    /// The media time spanned by the queued samples, in nanoseconds.
    fn queued_span_ns(&self) -> u64 {
        let timescale = self.timescale();
        let first = self.queue.iter().find_map(sample_dts);
        let last = self.queue.iter().rev().find_map(sample_dts);
        match (first, last) {
            (Some(first), Some(last)) => {
                ticks_to_ns(last, timescale).saturating_sub(ticks_to_ns(first, timescale))
            }
            _ => 0,
        }
    }

    /// A duration to assume for a sample whose successor is unknown.
    fn fallback_duration(&self, hint: u32) -> u32 {
        if hint > 0 {
            hint
        } else if self.last_duration > 0 {
            self.last_duration
        } else {
            match self.kind {
                TrackKind::Video => self.timescale() / 30,
                TrackKind::Audio => 1024,
            }
            .max(1)
        }
    }
}

fn sample_dts(item: &Queued) -> Option<u64> {
    match item {
        Queued::Sample(sample, _) => Some(sample.dts),
        Queued::Config(_) => None,
    }
}

fn ticks_to_ns(ticks: u64, timescale: u32) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(timescale.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

const NS_PER_MS: u64 = 1_000_000;

fn index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

impl Segmenter {
    /// A segmenter for a new stream.
    ///
    /// # Panics
    ///
    /// If `config` fails [`SegmenterConfig::validate`]; configuration loading should have
    /// refused it.
    pub fn new(config: SegmenterConfig) -> Self {
        if let Err(error) = config.validate() {
            panic!("invalid segmenter configuration: {error}");
        }
        Self {
            config,
            tracks: [Track::new(TrackKind::Video), Track::new(TrackKind::Audio)],
            events: VecDeque::new(),
            msn: 0,
            started: false,
            segment_start_ns: 0,
            part_start_ns: 0,
            anchor: None,
            earliest: None,
            ended: false,
            discontinuity_requested: false,
            others_cut_pending: false,
            report_placed_video: false,
            report_placed_audio: false,
            follower: false,
            forced_segment: None,
            stats: SegmenterStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SegmenterConfig {
        &self.config
    }

    /// Counters since the start.
    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }

    /// The codec configuration of the samples currently being packaged on `track`.
    pub fn track_config(&self, track: TrackKind) -> Option<&TrackConfig> {
        self.tracks[index(track)].active.as_ref()
    }

    /// The media sequence number of the segment being built.
    pub fn msn(&self) -> u64 {
        self.msn
    }

    /// Sets or changes a track's codec configuration.
    ///
    /// The first configuration of a track produces [`Event::InitReady`] at once. A different
    /// one later takes effect with the track's next sample: the stream is cut there (a new
    /// segment for every track), the track gets a new header with `discontinuity`, and video
    /// waits for a keyframe. An identical one is ignored.
    pub fn handle_config(&mut self, config: TrackConfig) -> Result<(), SegmenterError> {
        if self.ended {
            return Err(SegmenterError::Ended);
        }
        let track = &mut self.tracks[index(config.kind())];
        if track.announced.as_ref() == Some(&config) {
            return Ok(());
        }
        if let (Some(old), Some(last)) = (&track.announced, track.last_input_dts) {
            if old.timescale() != config.timescale() {
                // Later decode times count in the new timescale; the check against going
                // backwards carries over in it.
                let converted =
                    u128::from(last) * u128::from(config.timescale()) / u128::from(old.timescale());
                track.last_input_dts = Some(u64::try_from(converted).unwrap_or(u64::MAX));
            }
        }
        track.announced = Some(config.clone());
        if track.active.is_none() && track.pending.is_none() && track.queue.is_empty() {
            let kind = track.kind;
            track.active = Some(config.clone());
            self.events.push_back(Event::InitReady {
                track: kind,
                init: cmaf::init_segment(&config),
                discontinuity: false,
            });
        } else {
            track.queue.push_back(Queued::Config(config));
        }
        Ok(())
    }

    /// Starts a new segment, flagged as a discontinuity in every track, at the stream's next
    /// keyframe (video, or the next audio frame of an audio-only stream). For a new encoder
    /// taking over the same stream — a backup publisher — whose timeline and encoding differ
    /// even when its configuration is identical. Decode times must keep increasing across it
    /// (the caller re-bases the new encoder's timestamps).
    /// Reports every video sample as it is placed ([`Event::Placed`]), with the segment it
    /// went into: what a transcoder follows so that its rungs cut where this stream cuts.
    pub fn set_report_placed_video(&mut self, on: bool) {
        self.report_placed_video = on;
    }

    /// Reports every audio sample as it is placed ([`Event::Placed`]).
    pub fn set_report_placed_audio(&mut self, on: bool) {
        self.report_placed_audio = on;
    }

    /// Makes this a follower: segments no longer start at keyframes on their own, only where
    /// [`Segmenter::start_segment`] says (and where `segment_max_ms` / `segment_max_bytes`
    /// force a cut). Parts are still cut by the part target. For the rungs of a ladder, whose
    /// segments must carry the same numbers and start at the same instants as the source's.
    pub fn set_follower(&mut self) {
        self.follower = true;
    }

    /// In follower mode: the next master keyframe starts segment `msn` (a discontinuity when
    /// `discontinuity`). Segment numbers never go back: an `msn` at or below the current one
    /// (after a forced cut) starts the next number instead, counted in
    /// [`SegmenterStats::follower_misaligned`].
    pub fn start_segment(&mut self, msn: u64, discontinuity: bool) {
        self.forced_segment = Some((msn, discontinuity));
    }

    pub fn handle_discontinuity(&mut self) {
        if !self.ended && self.started {
            self.discontinuity_requested = true;
        }
    }

    /// Adds a sample of `track`, received at `wall_clock_ms` (milliseconds since the Unix
    /// epoch).
    ///
    /// Refused (and dropped, with nothing else changed) when the track has no configuration,
    /// the sample is larger than a segment may be, or its decode time is further back than
    /// [`SegmenterConfig::dts_backwards_max_ms`]. Video samples before the first keyframe are
    /// dropped silently (counted in [`stats`](Self::stats)).
    pub fn handle_sample(
        &mut self,
        track: TrackKind,
        mut sample: Sample,
        wall_clock_ms: u64,
    ) -> Result<(), SegmenterError> {
        if self.ended {
            return Err(SegmenterError::Ended);
        }
        let config = self.config;
        let state = &mut self.tracks[index(track)];
        if state.announced.is_none() {
            return Err(SegmenterError::NoConfig { track });
        }
        let limit = config.segment_max_bytes - STYP.len() - cmaf::fragment_overhead(track, 1);
        if sample.data.len() > limit {
            return Err(SegmenterError::SampleTooLarge {
                track,
                limit,
                seen: sample.data.len(),
            });
        }
        if track == TrackKind::Video {
            let shift = match state.decode_shift {
                Some(shift) => shift,
                None if sample.keyframe => {
                    let shift = sample.composition_offset.max(0) as u64;
                    state.decode_shift = Some(shift);
                    shift
                }
                None => {
                    self.stats.samples_dropped += 1;
                    return Ok(());
                }
            };
            sample.dts = sample.dts.saturating_add(shift);
            // The shift came from an i32, so it fits.
            sample.composition_offset = sample.composition_offset.saturating_sub(shift as i32);
        }
        if let Some(previous) = state.last_input_dts {
            if sample.dts <= previous {
                let tolerance =
                    ms_to_ticks(u64::from(config.dts_backwards_max_ms), state.timescale());
                // At the end of the 64-bit timeline nothing can follow: refused as well,
                // rather than given a zero duration.
                if previous - sample.dts > tolerance || previous == u64::MAX {
                    return Err(SegmenterError::DtsBackwards {
                        track,
                        previous,
                        dts: sample.dts,
                    });
                }
                let adjusted = previous.saturating_add(1);
                let moved = adjusted - sample.dts;
                sample.composition_offset = sample
                    .composition_offset
                    .saturating_sub(i32::try_from(moved).unwrap_or(i32::MAX));
                sample.dts = adjusted;
                self.stats.dts_adjusted += 1;
            }
        }
        state.last_input_dts = Some(sample.dts);
        state.stalled = false;
        state.queue.push_back(Queued::Sample(sample, wall_clock_ms));
        state.queued_samples += 1;
        self.drain(false);
        Ok(())
    }

    /// Ends the stream: places every queued sample, writes the last parts and reports the
    /// last segments.
    pub fn handle_end(&mut self) {
        if self.ended {
            return;
        }
        self.drain(true);
        for k in 0..2 {
            if !self.tracks[k].part.is_empty() {
                self.close_part(k, None);
            }
        }
        self.close_segments();
        self.ended = true;
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The track whose keyframes decide the cuts: video when the stream has video.
    fn master(&self) -> usize {
        if self.tracks[0].announced.is_some() {
            0
        } else {
            1
        }
    }

    /// Places queued samples in decode-time order while every waited-for track has one.
    fn drain(&mut self, flush: bool) {
        loop {
            let blocked: Vec<usize> = (0..2)
                .filter(|&k| {
                    let t = &self.tracks[k];
                    t.announced.is_some() && !t.stalled && !t.any_queued_sample()
                })
                .collect();
            if !blocked.is_empty() && !flush {
                let over = self.tracks.iter().any(|t| {
                    t.queued_samples > self.config.interleave_max_samples
                        || t.queued_span_ns() > u64::from(self.config.interleave_max_ms) * NS_PER_MS
                });
                if !over {
                    return;
                }
                for k in blocked {
                    self.tracks[k].stalled = true;
                    self.stats.stalls += 1;
                }
            }
            for track in &mut self.tracks {
                while let Some(Queued::Config(_)) = track.queue.front() {
                    if let Some(Queued::Config(config)) = track.queue.pop_front() {
                        track.pending = Some(config);
                    }
                }
            }
            let master = self.master();
            let next = (0..2)
                .filter_map(|k| {
                    let t = &self.tracks[k];
                    t.head_sample()
                        .map(|s| (ticks_to_ns(s.dts, t.timescale()), k != master, k))
                })
                .min();
            let Some((_, _, k)) = next else {
                return;
            };
            let Some(Queued::Sample(sample, wall_clock_ms)) = self.tracks[k].queue.pop_front()
            else {
                unreachable!("the head was a sample");
            };
            self.tracks[k].queued_samples -= 1;
            self.place(k, sample, wall_clock_ms);
        }
    }

    fn place(&mut self, k: usize, mut sample: Sample, wall_clock_ms: u64) {
        let timescale_before = self.tracks[k].timescale();
        if let Some(config) = self.tracks[k].pending.take() {
            if self.tracks[k].active.as_ref() != Some(&config) {
                self.apply_config_change(k, config, &sample, timescale_before);
            }
        }
        self.snap_to_part_end(k, &mut sample);
        let track = &mut self.tracks[k];
        if let Some(last) = track.part.last() {
            // handle_sample keeps each track's decode times increasing; this only matters
            // when configurations with different timescales were replaced before any of their
            // samples arrived, and keeps every sample duration above zero regardless.
            if sample.dts <= last.dts {
                let Some(adjusted) = last.dts.checked_add(1) else {
                    // The end of the 64-bit timeline: a zero duration cannot be written.
                    self.stats.samples_dropped += 1;
                    return;
                };
                let moved = i32::try_from(adjusted - sample.dts).unwrap_or(i32::MAX);
                sample.composition_offset = sample.composition_offset.saturating_sub(moved);
                sample.dts = adjusted;
                self.stats.dts_adjusted += 1;
            }
        }
        if track.awaiting_keyframe {
            if !sample.keyframe {
                self.stats.samples_dropped += 1;
                return;
            }
            track.awaiting_keyframe = false;
        }
        let ns = ticks_to_ns(sample.dts, track.timescale());
        let forced = if self.follower && k == self.master() && sample.keyframe {
            self.forced_segment.take()
        } else {
            None
        };
        if !self.started {
            if k != self.master() {
                self.stats.samples_dropped += 1;
                return;
            }
            self.started = true;
            self.segment_start_ns = ns;
            self.part_start_ns = ns;
            self.anchor = Some((wall_clock_ms, ns));
            self.earliest = self.anchor;
            if let Some((msn, _)) = forced {
                self.msn = self.msn.max(msn);
            }
        } else if let Some((msn, discontinuity)) = forced {
            self.cut(k, sample.dts, ns, true);
            if discontinuity {
                for track in &mut self.tracks {
                    track.discontinuity_next = true;
                }
            }
            if msn >= self.msn {
                self.msn = msn;
            } else {
                self.stats.follower_misaligned += 1;
            }
        } else if self.discontinuity_requested
            && k == self.master()
            && (sample.keyframe || self.tracks[k].kind == TrackKind::Audio)
        {
            self.discontinuity_requested = false;
            self.cut(k, sample.dts, ns, true);
            for track in &mut self.tracks {
                track.discontinuity_next = true;
            }
        } else {
            match self.decide_cut(k, &sample, ns) {
                Cut::None if k == self.master() && self.others_cut_pending => {
                    self.close_other_parts(k);
                }
                Cut::None => {}
                Cut::Part => self.cut(k, sample.dts, ns, false),
                Cut::Segment => self.cut(k, sample.dts, ns, true),
            }
        }
        if k == self.master() {
            self.others_cut_pending = false;
        }
        if k == self.master() {
            self.note_arrival(wall_clock_ms, ns);
        }
        let pdt = self.program_date_time_ms(ns);
        let msn = self.msn;
        let track = &mut self.tracks[k];
        if track.segment.is_none() {
            track.segment = Some(SegmentProgress {
                msn,
                start_dts: sample.dts,
                duration_ticks: 0,
                parts: 0,
                bytes: STYP.len(),
                independent: sample.keyframe,
                discontinuity: std::mem::take(&mut track.discontinuity_next),
                program_date_time_ms: pdt,
            });
        }
        track.part_bytes += sample.data.len();
        track.part_last_received_ms = wall_clock_ms;
        let report = match track.kind {
            TrackKind::Video => self.report_placed_video,
            TrackKind::Audio => self.report_placed_audio,
        };
        if report {
            let segment = track.segment.as_ref().expect("opened above");
            self.events.push_back(Event::Placed {
                track: track.kind,
                sample: sample.clone(),
                msn: segment.msn,
                segment_start: segment.parts == 0 && track.part.is_empty(),
                discontinuity: segment.discontinuity,
            });
        }
        let duration_ns = ticks_to_ns(
            u64::from(track.fallback_duration(sample.duration)),
            track.timescale(),
        );
        track.part.push(sample);
        self.close_full_part(k, ns.saturating_add(duration_ns), duration_ns);
    }

    /// Closes the parts now when the master track's part is full: when one more sample of the
    /// same duration would take it past the part target, which is when the next sample would
    /// cut it anyway. Closing after the sample that fills a part, rather than when the next one
    /// arrives, makes the part servable a frame interval sooner. The part's last sample lasts
    /// as long as the one before it; a segment still ends only when the next keyframe arrives.
    fn close_full_part(&mut self, k: usize, end_ns: u64, duration_ns: u64) {
        if k != self.master() {
            return;
        }
        if self.part_overflows(end_ns.saturating_sub(self.part_start_ns), duration_ns) {
            self.stats.early_part_cuts += 1;
            self.close_part(k, None);
            self.part_start_ns = end_ns;
            self.others_cut_pending = true;
        }
    }

    /// Whether a sample of `duration_ns` after `part_elapsed` ns of the current part would take
    /// the part past its target (with 1 ms for rounding).
    fn part_overflows(&self, part_elapsed: u64, duration_ns: u64) -> bool {
        part_elapsed.saturating_add(duration_ns)
            > u64::from(self.config.part_target_ms) * NS_PER_MS + NS_PER_MS
    }

    /// Moves a sample's decode time to where the track's last part ended, when that part's
    /// last duration was estimated and the sample is within half that duration of it: the
    /// parts then tile the timeline with no gap or overlap. Video keeps its presentation time
    /// (the composition offset absorbs the move); audio moves by at most half a frame, less
    /// than the millisecond rounding of RTMP timestamps.
    fn snap_to_part_end(&mut self, k: usize, sample: &mut Sample) {
        let track = &mut self.tracks[k];
        let Some(end) = track.part_end_dts.take() else {
            return;
        };
        if !track.part.is_empty() || sample.dts == end {
            return;
        }
        let tolerance = u64::from(track.last_duration / 2);
        if sample.dts.abs_diff(end) > tolerance {
            return;
        }
        if track.kind == TrackKind::Video {
            let moved = end as i64 - sample.dts as i64;
            let Ok(moved) = i32::try_from(moved) else {
                return;
            };
            sample.composition_offset = sample.composition_offset.saturating_sub(moved);
        }
        sample.dts = end;
    }

    fn apply_config_change(
        &mut self,
        k: usize,
        config: TrackConfig,
        sample: &Sample,
        timescale_before: u32,
    ) {
        let changed = self.tracks[k].active.is_some();
        if changed && self.started {
            let ns = ticks_to_ns(sample.dts, config.timescale());
            // The cut happens before the sample; parts of this track close with what is known.
            let next_dts = (timescale_before == config.timescale()).then_some(sample.dts);
            self.cut_with_next(k, next_dts, ns, true);
            self.tracks[k].discontinuity_next = true;
        }
        let track = &mut self.tracks[k];
        track.awaiting_keyframe = track.kind == TrackKind::Video;
        track.last_duration = 0;
        track.part_end_dts = None;
        self.events.push_back(Event::InitReady {
            track: track.kind,
            init: cmaf::init_segment(&config),
            discontinuity: changed,
        });
        track.active = Some(config);
    }

    fn decide_cut(&mut self, k: usize, sample: &Sample, ns: u64) -> Cut {
        let config = self.config;
        let track = &self.tracks[k];
        let duration_ns = ticks_to_ns(
            u64::from(track.fallback_duration(sample.duration)),
            track.timescale(),
        );
        let segment_elapsed = ns.saturating_sub(self.segment_start_ns);
        let part_elapsed = ns.saturating_sub(self.part_start_ns);
        let mut cut = Cut::None;
        if k == self.master() {
            let target = u64::from(config.segment_target_ms) * NS_PER_MS;
            if !self.follower
                && sample.keyframe
                && segment_elapsed.saturating_add(duration_ns / 2) >= target
            {
                cut = Cut::Segment;
            } else if self.part_overflows(part_elapsed, duration_ns) {
                cut = Cut::Part;
            }
        }
        if cut == Cut::Segment {
            return cut;
        }
        let segment_bytes = track.segment.as_ref().map_or(STYP.len(), |s| s.bytes)
            + track.part_bytes
            + sample.data.len()
            + cmaf::fragment_overhead(track.kind, track.part.len() + 1);
        if segment_elapsed.saturating_add(duration_ns)
            > u64::from(config.segment_max_ms) * NS_PER_MS
            || segment_bytes > config.segment_max_bytes
        {
            self.stats.forced_segment_cuts += 1;
            return Cut::Segment;
        }
        if cut == Cut::None && track.part.len() >= config.part_max_samples {
            self.stats.forced_part_cuts += 1;
            return Cut::Part;
        }
        cut
    }

    /// Cuts every track at `ns`, before the sample of track `k` with decode time `dts`.
    fn cut(&mut self, k: usize, dts: u64, ns: u64, segment: bool) {
        self.cut_with_next(k, Some(dts), ns, segment);
    }

    /// Closes the parts of the tracks other than `k` (after `k`'s part closed early).
    fn close_other_parts(&mut self, k: usize) {
        for other in 0..2 {
            if other != k && !self.tracks[other].part.is_empty() {
                let next = self.tracks[other].head_sample().map(|s| s.dts);
                self.close_part(other, next);
            }
        }
    }

    fn cut_with_next(&mut self, k: usize, next_dts: Option<u64>, ns: u64, segment: bool) {
        for other in 0..2 {
            if self.tracks[other].part.is_empty() {
                continue;
            }
            let next = if other == k {
                next_dts
            } else {
                self.tracks[other].head_sample().map(|s| s.dts)
            };
            self.close_part(other, next);
        }
        // Cutting where no segment is open (a configuration change right before a forced
        // start) numbers nothing.
        if segment {
            if self.close_segments() {
                self.msn += 1;
            }
            self.segment_start_ns = ns;
            self.anchor = self.earliest;
        }
        self.part_start_ns = ns;
    }

    /// Remembers a sample's arrival when it came earlier for its media time than any before.
    fn note_arrival(&mut self, wall_ms: u64, ns: u64) {
        let lead = |(wall, at_ns): (u64, u64)| i128::from(wall) * 1_000_000 - i128::from(at_ns);
        if self.earliest.is_none_or(|e| lead((wall_ms, ns)) < lead(e)) {
            self.earliest = Some((wall_ms, ns));
        }
    }

    fn close_part(&mut self, k: usize, next_dts: Option<u64>) {
        let track = &mut self.tracks[k];
        assert!(!track.part.is_empty(), "closing an empty part");
        let count = track.part.len();
        for i in 0..count - 1 {
            let step = track.part[i + 1].dts - track.part[i].dts;
            track.part[i].duration = u32::try_from(step).unwrap_or(u32::MAX);
        }
        let last = &track.part[count - 1];
        // The track's usual step, for estimating the durations of samples whose successor has
        // not come: the last step inside this part, else the one known before. A gap (a step
        // more than twice the usual, as when an encoder drops frames) lasts as long as it
        // does, but is never taken as the usual step: the next parts would close after every
        // sample with that estimate, each overlapping the next.
        let usual = match count {
            2.. => (last.dts - track.part[count - 2].dts) as u32,
            _ => track.last_duration,
        };
        let (last_duration, estimated) = match next_dts {
            Some(next) if next > last.dts => {
                (u32::try_from(next - last.dts).unwrap_or(u32::MAX), false)
            }
            // Unknown: the sample's own duration if the input gave one, else the part's mean
            // step (steadier than the last step under RTMP's millisecond timestamps), else the
            // last duration known.
            _ if last.duration == 0 && count >= 2 => {
                let mean = (last.dts - track.part[0].dts) / (count as u64 - 1);
                (u32::try_from(mean).unwrap_or(u32::MAX).max(1), true)
            }
            _ => (track.fallback_duration(last.duration), true),
        };
        track.part_end_dts = estimated.then(|| last.dts.saturating_add(u64::from(last_duration)));
        track.part[count - 1].duration = last_duration;
        track.last_duration = match usual {
            usual if usual > 0 && last_duration > usual.saturating_mul(2) => usual,
            _ => last_duration,
        };

        let bytes = cmaf::write_fragment(track.kind, track.fragment_sequence, &track.part);
        track.fragment_sequence = track.fragment_sequence.wrapping_add(1).max(1);
        let start_dts = track.part[0].dts;
        let independent = track.part[0].keyframe;
        let duration_ticks: u64 = track.part.iter().map(|s| u64::from(s.duration)).sum();
        let timescale = track.timescale();
        let segment = track
            .segment
            .as_mut()
            .expect("a part belongs to an open segment");
        let part_index = segment.parts;
        segment.parts += 1;
        segment.duration_ticks += duration_ticks;
        segment.bytes += bytes.len();
        let msn = segment.msn;
        let kind = track.kind;
        let last_received_ms = track.part_last_received_ms;
        track.part.clear();
        track.part_bytes = 0;
        let pdt = self.program_date_time_ms(ticks_to_ns(start_dts, timescale));
        self.events.push_back(Event::PartReady {
            track: kind,
            msn,
            part_index,
            start_dts,
            duration_ticks,
            timescale,
            duration_ms: ticks_to_ms(duration_ticks, timescale),
            independent,
            program_date_time_ms: pdt,
            last_received_ms,
            bytes,
        });
    }

    /// Reports every open segment; true when there was one (the next gets a new number).
    fn close_segments(&mut self) -> bool {
        let mut closed = false;
        for track in &mut self.tracks {
            let Some(segment) = track.segment.take() else {
                continue;
            };
            debug_assert!(track.part.is_empty(), "segment closed before its last part");
            if segment.parts == 0 {
                continue;
            }
            closed = true;
            let timescale = track.timescale();
            self.events.push_back(Event::SegmentReady {
                track: track.kind,
                msn: segment.msn,
                start_dts: segment.start_dts,
                duration_ticks: segment.duration_ticks,
                timescale,
                duration_ms: ticks_to_ms(segment.duration_ticks, timescale),
                parts: segment.parts,
                bytes: segment.bytes,
                independent: segment.independent,
                discontinuity: segment.discontinuity,
                program_date_time_ms: segment.program_date_time_ms,
            });
        }
        closed
    }

    fn program_date_time_ms(&self, ns: u64) -> u64 {
        match self.anchor {
            Some((wall, anchor_ns)) => {
                let offset_ms = (i128::from(ns) - i128::from(anchor_ns)) / i128::from(NS_PER_MS);
                (i128::from(wall) + offset_ms).max(0) as u64
            }
            None => 0,
        }
    }
}
