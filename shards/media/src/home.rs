//! [`StreamHome`]: the home of one live stream, as a sans-io state machine.
//!
//! A publisher connects to any shard; its ingest shard demuxes the RTMP messages and forwards
//! codec configurations and samples to the stream's home shard, which runs one [`StreamHome`].
//! The home, not the ingest shard, packages the stream, so that a backup publisher on another
//! shard can take over with continuous segment numbering and media time:
//!
//! - it decides which publisher is active: a primary, or a backup when the primary stalls for
//!   [`HomeConfig::failover_ms`] (and back to the primary when it returns), switching at the
//!   new publisher's next keyframe;
//! - it re-bases the new publisher's timestamps so media time keeps increasing across a
//!   switch, and marks the switch as a discontinuity;
//! - it re-bases a publisher whose own timestamps jump (back, or forward by more than a
//!   segment may last) the same way, so the stream goes on instead of freezing or holding a
//!   sample hours long;
//! - it gives a keyframe whose in-band parameter sets describe another picture (a size change
//!   without a new sequence header) a configuration of its own;
//! - it owns the source [`Segmenter`] and turns its output into [`IndexEvent`]s for every
//!   shard's index;
//! - it measures the frame rate when the SPS does not give it;
//! - it hands placed samples to a transcode worker and, when the stream ends, waits for the
//!   worker's flush before announcing the end.
//!
//! Nothing in here reads a clock, logs, or sends: times come in as arguments, and what
//! happened comes out as [`HomeEvent`]s that the caller routes (to every shard, to the
//! transcode worker, to its log and counters).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use crate::codec::{estimate_frame_rate, inband_config, FrameRate, VIDEO_TIMESCALE};
use crate::index::{
    index_event, manifest_rate, rendition_meta, IndexEvent, PartTiming, RungInfo, StreamInfo,
};
use crate::manifest::RenditionKind;
use crate::{
    ms_to_ticks, ticks_to_ms, Event, Sample, Segmenter, SegmenterConfig, SegmenterError,
    SegmenterStats, TrackConfig, TrackKind,
};

/// The rendition name of the source video in the index.
pub const VIDEO_RENDITION: &str = "source";

/// The rendition name of the source audio in the index.
pub const AUDIO_RENDITION: &str = "audio";

/// The usual [`HomeConfig::publishers_max`]: a primary, a backup, and room for a returning
/// primary while the old connection has not timed out yet.
pub const PUBLISHERS_MAX_DEFAULT: usize = 4;

/// The usual [`HomeConfig::stall_check_ms`].
pub const STALL_CHECK_MS_DEFAULT: u64 = 100;

/// The usual [`HomeConfig::transcode_end_wait_ms`].
pub const TRANSCODE_END_WAIT_MS_DEFAULT: u64 = 5000;

/// Video samples whose decode times measure the frame rate when the SPS does not say it: three
/// seconds at 30 fps, long enough to tell 29.97 from 30 (see [`estimate_frame_rate`]).
pub const FPS_SAMPLES: usize = 90;

const _: () = assert!(FPS_SAMPLES >= 2, "a rate needs two decode times");

/// Where a new publisher's first sample lands after the last one emitted: one 30 fps frame at
/// 90 kHz for video, one AAC frame for audio.
const SWITCH_GAP_TICKS: [u64; 2] = [3000, 1024];

/// The audio timescale assumed for a publisher that has not sent its audio configuration yet,
/// when converting a video offset to audio ticks.
const AUDIO_TIMESCALE_FALLBACK: u32 = 48_000;

/// How a home packages its stream.
///
/// # Memory
///
/// One home holds at most:
///
/// - `publishers_max` publishers, each with its two codec configurations (sequence headers,
///   bounded by the RTMP message size cap) and its remote address;
/// - [`FPS_SAMPLES`] − 1 video decode times (`8 × 89` bytes) while it measures a frame rate;
/// - the source segmenter, bounded as [`SegmenterConfig`] describes;
/// - the event queue, which the caller drains after every call: one call adds at most five
///   events per sample the segmenter places (it places at most the samples it queued, see
///   [`SegmenterConfig::interleave_max_samples`]) and at most seven of its own (a switch,
///   refusals, a measured frame rate);
/// - the stream facts, whose rungs are what the transcode worker last reported (one per rung
///   of the ladder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeConfig {
    /// How the source is cut into segments and parts.
    pub segmenter: SegmenterConfig,
    /// LL-HLS is on: [`IndexEvent::Started`] announces the part target.
    pub ll_hls: bool,
    /// A publisher that sent no sample for this long is stalled: the freshest other publisher
    /// takes over at its next keyframe.
    pub failover_ms: u64,
    /// Publishers of one stream at most (primaries and backups); more are refused with
    /// [`Refusal::TooManyPublishers`].
    pub publishers_max: usize,
    /// How often the active publisher is checked for a stall, and how often an ended home
    /// checks whether it is done; 0 is taken as 1.
    pub stall_check_ms: u64,
    /// The transcode ladder is non-empty: the segmenter reports placed video samples, and the
    /// home emits [`HomeEvent::Transcode`] for them.
    pub transcode_video: bool,
    /// Which source audio the transcode worker takes: the segmenter reports placed audio
    /// samples when any, and the home emits [`HomeEvent::Transcode`] for the source's audio
    /// when its codec is one of them.
    pub transcode_audio: AudioTranscode,
    /// How long an ended stream waits for its transcode worker's flush
    /// ([`StreamHome::handle_rung_ended`]) before it ends without the rungs' last segments.
    pub transcode_end_wait_ms: u64,
}

/// Which source audio codecs go to the transcode worker, each for a rendition in the other
/// codec (an Opus rendition of AAC for WebRTC, an AAC rendition of a WHIP publisher's Opus).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AudioTranscode {
    pub from_aac: bool,
    pub from_opus: bool,
}

impl AudioTranscode {
    /// Every source audio codec.
    pub const ALL: AudioTranscode = AudioTranscode {
        from_aac: true,
        from_opus: true,
    };

    /// Some source audio is taken.
    pub fn any(self) -> bool {
        self.from_aac || self.from_opus
    }

    /// Audio configured as `config` is taken.
    pub fn takes(self, config: &TrackConfig) -> bool {
        match config {
            TrackConfig::Aac(_) => self.from_aac,
            TrackConfig::Opus(_) => self.from_opus,
            TrackConfig::Avc(_) | TrackConfig::Hevc(_) => false,
        }
    }
}

/// What a publisher asked to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The main encoder. At most one primary is active; a returning primary takes back from
    /// a backup.
    Primary,
    /// A standby encoder: packaged only when the active publisher stalls or leaves.
    Backup,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
        })
    }
}

/// Why a publish was refused. The display text is what the RTMP error says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The stream already has [`HomeConfig::publishers_max`] publishers.
    #[error("too many publishers for this stream")]
    TooManyPublishers {
        /// `publishers_max`, which the stream has reached.
        limit: usize,
    },
    /// A primary asked to publish while another primary is active and sending (it sent a
    /// sample within [`HomeConfig::failover_ms`]).
    #[error("stream already has a primary publisher")]
    PrimaryTaken,
}

impl Refusal {
    /// The reason as a static string, for an RTMP `_error` description.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooManyPublishers { .. } => "too many publishers for this stream",
            Refusal::PrimaryTaken => "stream already has a primary publisher",
        }
    }
}

/// What a [`StreamHome`] reports. `P` is the caller's publisher identity.
#[derive(Clone, Debug)]
pub enum HomeEvent<P> {
    /// An update of the stream for every shard's index, the home's own (the source's
    /// headers, parts and segments, and the stream's facts). Apply `Index` and
    /// [`RungIndex`](HomeEvent::RungIndex) events in the order they come out.
    Index(IndexEvent),
    /// An update for every shard's index that the transcode worker produced (a rung's header,
    /// part or segment), passed on by [`StreamHome::handle_rung_event`] because it belongs to
    /// the current epoch. Separate from `Index` so that a caller can count the source's parts
    /// and segments apart from the rungs'.
    RungIndex(IndexEvent),
    /// A message for the stream's transcode worker. The caller picks a worker at the first
    /// [`TranscodeEvent::Start`] of an epoch and sends it every later event of that epoch.
    Transcode(TranscodeEvent),
    /// The active publisher changed, at a keyframe of the new one (a failover or a takeback).
    Switched {
        /// The publisher now packaged.
        to: P,
        /// Its role.
        role: Role,
        /// Its remote address, as given to [`StreamHome::handle_publish`].
        remote: Arc<str>,
    },
    /// A new primary took over from a stalled primary (see
    /// [`StreamHome::handle_publish`]): the old one is no longer a publisher of the stream.
    /// Tell it (an RTMP error) and close it; whatever it sends now is not packaged, and its
    /// unpublish is not needed.
    Replaced {
        /// The publisher that was replaced.
        publisher: P,
        /// Its remote address.
        remote: Arc<str>,
    },
    /// The active publisher sent nothing for `stalled_for_ms` (at least
    /// [`HomeConfig::failover_ms`]); the freshest other publisher takes over at its next
    /// keyframe.
    Stalled {
        /// Since the active publisher's last sample.
        stalled_for_ms: u64,
    },
    /// The frame rate was measured from [`FPS_SAMPLES`] decode times because the SPS did not
    /// give it (an [`IndexEvent::Meta`] and an [`IndexEvent::Info`] follow).
    FrameRateMeasured {
        /// Frames per second.
        fps: f64,
    },
    /// The segmenter refused a configuration or a sample of the active publisher, which was
    /// dropped; the stream goes on.
    Rejected {
        /// Why.
        error: SegmenterError,
    },
    /// The transcode worker did not finish within [`HomeConfig::transcode_end_wait_ms`]: the
    /// stream ends without the rungs' last segments ([`IndexEvent::Ended`] follows).
    EndedWithoutRungs,
    /// The active publisher's video has B-frames (a sample came before its predecessor in
    /// presentation order): once per publish session, before that sample's other events.
    Reordered,
    /// The active publisher's timestamps on `track` jumped by `step_ms` (negative: back); the
    /// track was re-based, and a discontinuity starts at the next keyframe.
    TimestampJump {
        /// The track that jumped.
        track: TrackKind,
        /// The jump, in milliseconds.
        step_ms: i64,
    },
    /// A keyframe's in-band parameter sets describe another picture than the configuration:
    /// it becomes the configuration (a new header, a discontinuity).
    InbandConfig {
        /// The new picture size.
        width: u32,
        /// The new picture size.
        height: u32,
    },
    /// With [`StreamHome::set_forward`] on: a sample of the active publisher as packaged (its
    /// decode time on the stream's timeline), for consumers that take samples rather than
    /// parts (WebRTC sessions). Comes before the sample's own index events.
    Forward {
        /// The sample's track.
        track: TrackKind,
        /// The sample; its bytes are shared, not copied.
        sample: Sample,
    },
    /// With [`StreamHome::set_forward`] on: the configuration the forwarded samples of its
    /// track follow from now on (the active publisher's new one, or the one switched to).
    ForwardConfig(TrackConfig),
}

/// A message for the stream's transcode worker.
#[derive(Clone, Debug)]
pub enum TranscodeEvent {
    /// Transcode session `epoch` from this source configuration (again whenever it changes).
    Start {
        /// The publish session.
        epoch: u64,
        /// The source track's configuration.
        config: TrackConfig,
    },
    /// A source sample as the source's segmenter placed it: video for the ladder, audio for
    /// the Opus rendition.
    Sample {
        /// The publish session.
        epoch: u64,
        /// The track.
        track: TrackKind,
        /// The sample, on the source's timeline.
        sample: Sample,
        /// The segment it went into.
        msn: u64,
        /// It starts that segment.
        segment_start: bool,
        /// That segment starts a new timeline section.
        discontinuity: bool,
        /// When the newest sample handed to the home had been received, in milliseconds since
        /// the Unix epoch: this sample's own arrival, or a little later when the segmenter
        /// held it back to interleave it with the other track.
        wall_ms: u64,
    },
    /// The stream ended: flush session `epoch` and answer with
    /// [`StreamHome::handle_rung_ended`].
    End {
        /// The publish session.
        epoch: u64,
    },
}

/// The home of one live stream: which publisher is packaged, the source segmenter, and the
/// hand-off to a transcode worker.
///
/// # Call order
///
/// 1. [`new`](Self::new) when a stream's first publish arrives, then
///    [`handle_publish`](Self::handle_publish) with it, and with every later publisher.
/// 2. [`handle_config`](Self::handle_config), [`handle_sample`](Self::handle_sample) and
///    [`handle_unpublish`](Self::handle_unpublish) as each publisher's messages arrive, in the
///    order that publisher sent them.
/// 3. [`handle_rung_event`](Self::handle_rung_event),
///    [`handle_rung_stats`](Self::handle_rung_stats) and
///    [`handle_rung_ended`](Self::handle_rung_ended) as the transcode worker's messages
///    arrive, with the epoch they carry; those of an earlier epoch are dropped.
/// 4. After every `handle_*` call, drain [`poll_event`](Self::poll_event) until `None`, then
///    read [`poll_timeout`](Self::poll_timeout) again, and call
///    [`handle_timeout`](Self::handle_timeout) when the monotonic clock reaches it (earlier
///    calls do nothing).
/// 5. Drop the home once [`is_finished`](Self::is_finished): no publisher is left, the end
///    was announced, and a timer tick has passed since (until then a new publish resumes the
///    same home in a new epoch).
///
/// Every input is a message from another thread and may be stale: a configuration or a sample
/// of a publisher that is not (or no longer) publishing, a second unpublish, a worker's
/// message of an old epoch. Such inputs are ignored; no sequence of calls panics.
///
/// # Clocks
///
/// `now_ms` arguments are the caller's monotonic clock in milliseconds (stall detection, the
/// end wait, [`poll_timeout`](Self::poll_timeout)); `wall_ms` and `received_wall_ms` are
/// milliseconds since the Unix epoch (the stream's start, program date times).
///
/// # Epochs
///
/// Each publish session (from a start to the end of the last publisher) has an epoch, from 0,
/// bumped when a publish restarts an ended stream on the same home. Transcode events carry it,
/// and the worker's answers must carry it back.
#[derive(Debug)]
pub struct StreamHome<P> {
    config: HomeConfig,
    segmenter: Segmenter,
    /// At most `config.publishers_max`, in publish order.
    publishers: Vec<Publisher<P>>,
    /// Index into `publishers` of the one being packaged.
    active: Option<usize>,
    /// Switch to this publisher at its next keyframe.
    switch_to: Option<usize>,
    /// Last decode time emitted per track (video, audio), in ticks, after offsets.
    last_dts: [Option<u64>; 2],
    phase: Phase,
    info: Arc<StreamInfo>,
    /// Decode times of the first video samples, to measure the frame rate when the SPS does
    /// not say; fewer than `FPS_SAMPLES`.
    video_dts: Vec<u64>,
    fps_known: bool,
    epoch: u64,
    /// A [`TranscodeEvent::Start`] went out in this epoch and no `End` yet: the caller has a
    /// worker for it.
    transcoding: bool,
    /// The source's audio (as last configured) goes to the worker.
    audio_transcoded: bool,
    /// The presentation time of the active publisher's last video sample, and whether one
    /// came before its predecessor in this publish session.
    last_video_pts: Option<i64>,
    reordered: bool,
    /// The stream ended and its worker is flushing; `Ended` goes out when it is done (or after
    /// `transcode_end_wait_ms`).
    ending_since_ms: Option<u64>,
    /// The next stall check, on the caller's monotonic clock.
    next_check_ms: Option<u64>,
    /// The `received_wall_ms` of the newest sample handed to the segmenter.
    last_received_wall_ms: u64,
    /// Timestamp jumps re-based since the home was made.
    timestamp_jumps: u64,
    /// The index's names of the source renditions, video then audio.
    rendition_names: [Arc<str>; 2],
    /// Whether samples and configurations are forwarded as events too.
    forward: bool,
    events: VecDeque<HomeEvent<P>>,
}

/// Where a home is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No publish was accepted yet.
    Fresh,
    /// Started; publishers may have left since, and the end may be pending.
    Running,
    /// A timer tick found no publisher and nothing pending: the caller may drop the home.
    Finished,
}

#[derive(Debug)]
struct Publisher<P> {
    id: P,
    role: Role,
    remote: Arc<str>,
    video: Option<TrackConfig>,
    audio: Option<TrackConfig>,
    /// On the caller's monotonic clock: the publish, then each sample.
    last_sample_ms: u64,
    /// Added to this publisher's decode times so media time continues across a switch or a
    /// timestamp jump.
    offset_ticks: [i64; 2],
    /// The offset a track takes when its timestamps jump too, after the other track's jumped
    /// (see `StreamHome::rebase`): both then move by the same media time, and stay in sync.
    jump_offset_ticks: [Option<i64>; 2],
}

impl<P: Copy + Eq + Debug> StreamHome<P> {
    /// A home with no publisher yet.
    ///
    /// # Panics
    ///
    /// If `config.segmenter` fails [`SegmenterConfig::validate`]; configuration loading
    /// should have refused it.
    pub fn new(config: HomeConfig) -> Self {
        StreamHome {
            segmenter: source_segmenter(&config),
            publishers: Vec::with_capacity(config.publishers_max),
            active: None,
            switch_to: None,
            last_dts: [None, None],
            phase: Phase::Fresh,
            info: Arc::new(StreamInfo::default()),
            video_dts: Vec::with_capacity(FPS_SAMPLES),
            fps_known: false,
            epoch: 0,
            transcoding: false,
            audio_transcoded: false,
            last_video_pts: None,
            reordered: false,
            ending_since_ms: None,
            next_check_ms: None,
            last_received_wall_ms: 0,
            timestamp_jumps: 0,
            rendition_names: [Arc::from(VIDEO_RENDITION), Arc::from(AUDIO_RENDITION)],
            forward: false,
            events: VecDeque::new(),
            config,
        }
    }

    /// A publisher asks to publish, at `now_ms` (monotonic) and `wall_ms` (Unix).
    ///
    /// Refused when the stream has `publishers_max` publishers, or when a primary asks while
    /// a primary is active and sending. Accepted otherwise:
    ///
    /// - the first publisher of a stream (or of an ended one: a new epoch with a fresh
    ///   segmenter) becomes active, and [`IndexEvent::Started`] goes out;
    /// - a primary while a backup is active takes back at its next keyframe;
    /// - a primary while the active primary has sent nothing for `failover_ms` takes over at
    ///   its next keyframe: an encoder restarted after its host or network died, whose old
    ///   connection the server still holds (no FIN came) until `rtmp.idle_timeout_ms`. At
    ///   that keyframe the old one is removed ([`HomeEvent::Replaced`]): if it wakes, it is
    ///   no longer a publisher of the stream;
    /// - a backup stands by.
    pub fn handle_publish(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        publisher: P,
        role: Role,
        remote: Arc<str>,
    ) -> Result<(), Refusal> {
        if self.publishers.len() >= self.config.publishers_max {
            return Err(Refusal::TooManyPublishers {
                limit: self.config.publishers_max,
            });
        }
        let active_primary_sending = self.active.is_some_and(|i| {
            let active = &self.publishers[i];
            active.role == Role::Primary
                && now_ms.saturating_sub(active.last_sample_ms) < self.config.failover_ms
        });
        if role == Role::Primary && active_primary_sending {
            return Err(Refusal::PrimaryTaken);
        }
        let created = self.phase == Phase::Fresh;
        // A home with no publisher left has ended its last publish (its segmenter is done).
        let was_idle = self.publishers.is_empty();
        self.publishers.push(Publisher {
            id: publisher,
            role,
            remote,
            video: None,
            audio: None,
            last_sample_ms: now_ms,
            offset_ticks: [0, 0],
            jump_offset_ticks: [None, None],
        });
        let index = self.publishers.len() - 1;
        let mut started = false;
        match self.active {
            None if self.switch_to.is_none() => {
                self.active = Some(index);
                started = created || was_idle;
            }
            None => {}
            // A returning primary takes back from a backup, and a new one takes over from a
            // stalled primary, at its next keyframe.
            Some(_) if role == Role::Primary => self.switch_to = Some(index),
            Some(_) => {}
        }
        if started {
            if !created {
                self.restart();
            }
            self.phase = Phase::Running;
            let part_target_ms = self
                .config
                .ll_hls
                .then_some(self.config.segmenter.part_target_ms);
            self.events.push_back(HomeEvent::Index(IndexEvent::Started {
                started_ms: wall_ms,
                part_target_ms,
                info: self.info.clone(),
            }));
            self.next_check_ms = Some(now_ms.saturating_add(self.stall_check_ms()));
        }
        self.check_invariants();
        Ok(())
    }

    /// A codec configuration from `publisher`. Kept for a later switch to it; packaged at once
    /// when it is the active publisher.
    pub fn handle_config(&mut self, publisher: P, config: TrackConfig) {
        let Some(index) = self.find(publisher) else {
            return;
        };
        let slot = match config.kind() {
            TrackKind::Video => &mut self.publishers[index].video,
            TrackKind::Audio => &mut self.publishers[index].audio,
        };
        *slot = Some(config.clone());
        if self.active == Some(index) {
            self.update_info(&config);
            // As the home has always done: any configuration of the active publisher, audio
            // included, restarts the frame rate measurement unless it is a video one whose
            // SPS gives the rate.
            self.fps_known = config.video().is_some_and(|v| v.frame_rate.is_some());
            self.video_dts.clear();
            if self.forward {
                self.events
                    .push_back(HomeEvent::ForwardConfig(config.clone()));
            }
            if let Err(error) = self.segmenter.handle_config(config) {
                self.events.push_back(HomeEvent::Rejected { error });
            }
            self.drain_segmenter();
            let info = self.info.clone();
            self.events
                .push_back(HomeEvent::Index(IndexEvent::Info(info)));
        }
        self.check_invariants();
    }

    /// A sample from `publisher`, received by its ingest shard at `received_wall_ms`, arriving
    /// here at `now_ms`.
    ///
    /// Any sample keeps its publisher fresh. A sample of the publisher waiting to take over
    /// switches to it when it is a video keyframe (any audio frame for a publisher without
    /// video). Samples of the active publisher are re-based and packaged; the others are
    /// dropped.
    ///
    /// Re-basing follows the publisher's timestamps when they jump: a decode time further
    /// back than the segmenter absorbs ([`SegmenterConfig::dts_backwards_max_ms`]), or further
    /// ahead of the stream's newest one than a segment may last
    /// ([`SegmenterConfig::segment_max_ms`]), is moved to one frame after its track's last,
    /// the other track follows by the same media time when it jumps too, and the next
    /// segment starts a discontinuity (see [`timestamp_jumps`](Self::timestamp_jumps)). A
    /// video keyframe of the active publisher whose in-band SPS describes another picture
    /// than its configuration becomes a configuration change (see [`inband_config`]).
    pub fn handle_sample(
        &mut self,
        now_ms: u64,
        publisher: P,
        track: TrackKind,
        mut sample: Sample,
        received_wall_ms: u64,
    ) {
        let Some(mut index) = self.find(publisher) else {
            return;
        };
        self.publishers[index].last_sample_ms = now_ms;
        // A primary sending again while a backup is active takes back at its next keyframe.
        if self.active != Some(index)
            && self.publishers[index].role == Role::Primary
            && self.switch_to.is_none()
            && self
                .active
                .is_some_and(|active| self.publishers[active].role == Role::Backup)
        {
            self.switch_to = Some(index);
        }
        let audio_only = self.publishers[index].video.is_none();
        let at_switch_point = (track == TrackKind::Video && sample.keyframe)
            || (audio_only && track == TrackKind::Audio);
        if self.switch_to == Some(index) && at_switch_point {
            // A primary taking over from a primary replaces it (the old one had stalled when
            // the new one was accepted): there is one primary per stream.
            let replaced = self.active.filter(|&old| {
                self.publishers[old].role == Role::Primary
                    && self.publishers[index].role == Role::Primary
            });
            self.switch(index, track, sample.dts);
            if let Some(old) = replaced {
                let gone = &self.publishers[old];
                self.events.push_back(HomeEvent::Replaced {
                    publisher: gone.id,
                    remote: gone.remote.clone(),
                });
                self.remove(old);
                index = self.active.expect("the switch made it active");
            }
        }
        if self.active != Some(index) {
            self.check_invariants();
            return;
        }
        if track == TrackKind::Video && sample.keyframe {
            self.follow_inband_config(index, &sample);
        }
        let t = track_index(track);
        sample.dts = self.rebase(index, track, sample.dts);
        self.last_dts[t] = Some(sample.dts);
        let measured = if track == TrackKind::Video && !self.fps_known {
            self.measure_frame_rate(sample.dts)
        } else {
            None
        };
        self.last_received_wall_ms = received_wall_ms;
        if track == TrackKind::Video && !self.reordered {
            let pts = sample.pts();
            if self.last_video_pts.is_some_and(|last| pts < last) {
                self.reordered = true;
                self.events.push_back(HomeEvent::Reordered);
            }
            self.last_video_pts = Some(pts);
        }
        if self.forward {
            let sample = sample.clone();
            self.events.push_back(HomeEvent::Forward { track, sample });
        }
        if let Err(error) = self
            .segmenter
            .handle_sample(track, sample, received_wall_ms)
        {
            self.events.push_back(HomeEvent::Rejected { error });
        }
        let meta = measured.and_then(|rate| {
            let config = self.segmenter.track_config(TrackKind::Video)?;
            let mut meta = rendition_meta(config, self.rendition_names[0].clone());
            if let RenditionKind::Video { frame_rate, .. } = &mut meta.kind {
                *frame_rate = manifest_rate(rate);
            }
            Some(meta)
        });
        self.drain_segmenter();
        if let Some(meta) = meta {
            self.events
                .push_back(HomeEvent::FrameRateMeasured { fps: self.info.fps });
            self.events.push_back(HomeEvent::Index(IndexEvent::Meta {
                rendition: Arc::new(meta),
            }));
            let info = self.info.clone();
            self.events
                .push_back(HomeEvent::Index(IndexEvent::Info(info)));
        }
        self.check_invariants();
    }

    /// `publisher` stopped (or its connection closed), at `now_ms`.
    ///
    /// When it was active and another publisher is waiting to take over, that one does at its
    /// next keyframe; when nobody is, the oldest remaining publisher is asked to. When it was
    /// the last, the stream ends: the segmenter flushes, and [`IndexEvent::Ended`] goes out at
    /// once, or after the transcode worker's flush when one is transcoding this epoch.
    pub fn handle_unpublish(&mut self, now_ms: u64, publisher: P) {
        let Some(index) = self.find(publisher) else {
            return;
        };
        self.remove(index);
        if self.active.is_some() || self.switch_to.is_some() {
            self.check_invariants();
            return;
        }
        // Nobody else can take over: prefer any remaining publisher, else the stream ends.
        if !self.publishers.is_empty() {
            self.switch_to = Some(0);
            self.check_invariants();
            return;
        }
        self.segmenter.handle_end();
        self.drain_segmenter();
        if self.transcoding {
            // The rungs' last parts and segments come from the worker; then `Ended`.
            self.transcoding = false;
            self.ending_since_ms = Some(now_ms);
            self.events
                .push_back(HomeEvent::Transcode(TranscodeEvent::End {
                    epoch: self.epoch,
                }));
        } else {
            self.events.push_back(HomeEvent::Index(IndexEvent::Ended));
        }
        self.check_invariants();
    }

    /// A rung's header, part or segment from the transcode worker of session `epoch`: passed
    /// on as [`HomeEvent::RungIndex`] when `epoch` is the current one.
    pub fn handle_rung_event(&mut self, epoch: u64, event: IndexEvent) {
        if epoch == self.epoch {
            self.events.push_back(HomeEvent::RungIndex(event));
        }
    }

    /// The rungs' facts from the transcode worker of session `epoch`: they replace the
    /// stream's, and an [`IndexEvent::Info`] goes out, when `epoch` is the current one.
    pub fn handle_rung_stats(&mut self, epoch: u64, rungs: Vec<RungInfo>) {
        if epoch != self.epoch {
            return;
        }
        let mut info = (*self.info).clone();
        info.rungs = rungs;
        self.info = Arc::new(info);
        let info = self.info.clone();
        self.events
            .push_back(HomeEvent::Index(IndexEvent::Info(info)));
    }

    /// The transcode worker of session `epoch` has sent everything: when the stream of that
    /// epoch has ended and waits for it, [`IndexEvent::Ended`] goes out.
    pub fn handle_rung_ended(&mut self, epoch: u64) {
        if epoch == self.epoch && self.publishers.is_empty() && self.ending_since_ms.is_some() {
            self.ending_since_ms = None;
            self.events.push_back(HomeEvent::Index(IndexEvent::Ended));
        }
    }

    /// The deadline of [`poll_timeout`](Self::poll_timeout) passed (calls before it do
    /// nothing).
    ///
    /// With publishers: when the active one has sent nothing for `failover_ms` and nobody is
    /// waiting to take over, the freshest other publisher that is not stalled itself is asked
    /// to, at its next keyframe ([`HomeEvent::Stalled`]). Without publishers: the end is
    /// announced if the transcode worker has not answered within `transcode_end_wait_ms`
    /// ([`HomeEvent::EndedWithoutRungs`]), and the home is [finished](Self::is_finished) once
    /// nothing is pending.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let Some(due_ms) = self.next_check_ms else {
            return;
        };
        if now_ms < due_ms {
            return;
        }
        self.next_check_ms = None;
        if self.publishers.is_empty() {
            if let Some(since_ms) = self.ending_since_ms {
                if now_ms.saturating_sub(since_ms) < self.config.transcode_end_wait_ms {
                    self.next_check_ms = Some(now_ms.saturating_add(self.stall_check_ms()));
                    return;
                }
                self.ending_since_ms = None;
                self.events.push_back(HomeEvent::EndedWithoutRungs);
                self.events.push_back(HomeEvent::Index(IndexEvent::Ended));
            }
            // Ended: kept (with its numbering) until now for a publisher that comes right back.
            self.phase = Phase::Finished;
            self.check_invariants();
            return;
        }
        self.check_stall(now_ms);
        self.next_check_ms = Some(now_ms.saturating_add(self.stall_check_ms()));
        self.check_invariants();
    }

    /// The next thing that happened, if any. Drain after every `handle_*` call.
    pub fn poll_event(&mut self) -> Option<HomeEvent<P>> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout), in milliseconds on the caller's
    /// monotonic clock; `None` when no timer is needed (not started, or finished).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_check_ms
    }

    /// No publisher is left, the end was announced, and a timer tick has passed since: the
    /// caller may drop the home. Also true for a home that never accepted a publish.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Fresh | Phase::Finished)
    }

    /// The current publish session (see the type's documentation).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// How many timestamp jumps of the active publishers were re-based (see
    /// [`handle_sample`](Self::handle_sample)).
    pub fn timestamp_jumps(&self) -> u64 {
        self.timestamp_jumps
    }

    /// Names the stream for people (`/api/v1/streams`, the stream list). When it changes, an
    /// [`IndexEvent::Info`] goes out (or the next [`IndexEvent::Started`] carries it).
    /// What people call the stream: the publisher's `?title=` (empty: none given).
    pub fn title(&self) -> &str {
        &self.info.title
    }

    /// Sets what people call the stream.
    pub fn set_title(&mut self, title: &str) {
        if self.info.title != title {
            self.change_info(|info| info.title = title.to_string());
        }
    }

    /// Whether the publisher sends VP8 ([`StreamInfo::vp8`]).
    pub fn set_vp8(&mut self, vp8: bool) {
        if self.info.vp8 != vp8 {
            self.change_info(|info| info.vp8 = vp8);
        }
    }

    /// A co-hosted program's hosts on stage now, for every shard's index.
    pub fn set_hosts(&mut self, hosts: Vec<crate::index::StageHost>) {
        if self.info.hosts != hosts {
            self.change_info(|info| info.hosts = hosts);
        }
    }

    /// Changes the stream's facts; a running stream's go to every shard's index.
    fn change_info(&mut self, change: impl FnOnce(&mut StreamInfo)) {
        let mut info = (*self.info).clone();
        change(&mut info);
        self.info = Arc::new(info);
        if self.phase == Phase::Running {
            let info = self.info.clone();
            self.events
                .push_back(HomeEvent::Index(IndexEvent::Info(info)));
        }
    }

    /// The stream's facts, as last sent in an [`IndexEvent::Info`] or
    /// [`IndexEvent::Started`].
    pub fn info(&self) -> &Arc<StreamInfo> {
        &self.info
    }

    /// The offset (90 kHz ticks) that places `publisher`'s video timestamps on the stream's
    /// timeline, while it is the active publisher: for its media that reaches viewers beside
    /// the packaged samples (a VP8 publisher's frames as they came), so that they keep the
    /// timeline across a failover or a restart as the packaged ones do.
    pub fn video_offset(&self, publisher: P) -> Option<i64> {
        let active = &self.publishers[self.active?];
        (active.id == publisher).then(|| active.offset_ticks[track_index(TrackKind::Video)])
    }

    /// The publisher being packaged, if any.
    pub fn active(&self) -> Option<(P, Role)> {
        self.active
            .map(|i| (self.publishers[i].id, self.publishers[i].role))
    }

    /// Turns forwarding of samples and configurations ([`HomeEvent::Forward`],
    /// [`HomeEvent::ForwardConfig`]) on or off. Off by default: each forwarded sample costs an
    /// event. A consumer that joins later gets the current configurations from
    /// [`forward_configs`](Self::forward_configs).
    pub fn set_forward(&mut self, on: bool) {
        self.forward = on;
    }

    /// The configurations forwarded samples follow now (video, audio): the active
    /// publisher's.
    pub fn forward_configs(&self) -> [Option<&TrackConfig>; 2] {
        let active = self.active.map(|i| &self.publishers[i]);
        [
            active.and_then(|p| p.video.as_ref()),
            active.and_then(|p| p.audio.as_ref()),
        ]
    }

    /// How many publishers the stream has.
    pub fn publisher_count(&self) -> usize {
        self.publishers.len()
    }

    /// The source segmenter's counters.
    pub fn segmenter_stats(&self) -> SegmenterStats {
        self.segmenter.stats()
    }

    /// The configuration.
    pub fn config(&self) -> &HomeConfig {
        &self.config
    }

    fn stall_check_ms(&self) -> u64 {
        self.config.stall_check_ms.max(1)
    }

    fn find(&self, publisher: P) -> Option<usize> {
        self.publishers.iter().position(|p| p.id == publisher)
    }

    /// A publish restarts an ended stream: a fresh segmenter, and shards start a fresh index.
    fn restart(&mut self) {
        self.segmenter = source_segmenter(&self.config);
        self.last_dts = [None, None];
        if self.transcoding {
            self.transcoding = false;
            self.events
                .push_back(HomeEvent::Transcode(TranscodeEvent::End {
                    epoch: self.epoch,
                }));
        }
        self.epoch += 1;
        self.ending_since_ms = None;
        self.last_video_pts = None;
        self.reordered = false;
    }

    /// Removes publisher `index`, keeping `active` and `switch_to` on the same publishers.
    fn remove(&mut self, index: usize) {
        self.publishers.remove(index);
        let fix = |i: Option<usize>| match i {
            Some(i) if i == index => None,
            Some(i) if i > index => Some(i - 1),
            other => other,
        };
        self.active = fix(self.active);
        self.switch_to = fix(self.switch_to);
    }

    /// Makes `index` the active publisher: its timestamps are offset so they continue just
    /// after the last emitted ones, its configurations go to the segmenter, and the next
    /// segment starts with a discontinuity.
    fn switch(&mut self, index: usize, track: TrackKind, first_dts: u64) {
        let t = track_index(track);
        let target =
            self.last_dts[t].map_or(first_dts, |last| last.saturating_add(SWITCH_GAP_TICKS[t]));
        let offset = saturate_i64(i128::from(target) - i128::from(first_dts));
        // The other track follows the same media-time shift, converted to its timescale.
        let audio_scale = self.publishers[index]
            .audio
            .as_ref()
            .map_or(AUDIO_TIMESCALE_FALLBACK, TrackConfig::timescale);
        let (from_scale, to_scale) = match track {
            TrackKind::Video => (VIDEO_TIMESCALE, audio_scale),
            TrackKind::Audio => (audio_scale, VIDEO_TIMESCALE),
        };
        let other_offset =
            saturate_i64(i128::from(offset) * i128::from(to_scale) / i128::from(from_scale.max(1)));
        let publisher = &mut self.publishers[index];
        publisher.offset_ticks[t] = offset;
        publisher.offset_ticks[1 - t] = other_offset;
        publisher.jump_offset_ticks = [None, None];
        self.active = Some(index);
        self.switch_to = None;
        self.segmenter.handle_discontinuity();
        let publisher = &self.publishers[index];
        for config in [publisher.video.clone(), publisher.audio.clone()]
            .into_iter()
            .flatten()
        {
            if self.forward {
                self.events
                    .push_back(HomeEvent::ForwardConfig(config.clone()));
            }
            if let Err(error) = self.segmenter.handle_config(config) {
                self.events.push_back(HomeEvent::Rejected { error });
            }
        }
        let publisher = &self.publishers[index];
        self.events.push_back(HomeEvent::Switched {
            to: publisher.id,
            role: publisher.role,
            remote: publisher.remote.clone(),
        });
    }

    /// The decode time on the stream's timeline of a sample of the active publisher `index`
    /// stamped `dts`: `dts` plus the publisher's offset, unless that is a timestamp jump (see
    /// [`is_jump`](Self::is_jump)). A jump takes the offset the other track's jump left for
    /// this one when that lands it in place (both tracks then move by the same media time);
    /// otherwise it is a jump of its own: the sample goes one frame after its track's last
    /// decode time, the other track is left the same shift for when it jumps too, and the
    /// segmenter starts a discontinuity at the next keyframe.
    fn rebase(&mut self, index: usize, track: TrackKind, dts: u64) -> u64 {
        let t = track_index(track);
        let offset = self.publishers[index].offset_ticks[t];
        let placed = dts.saturating_add_signed(offset);
        let Some(last) = self.last_dts[t].filter(|_| self.is_jump(index, track, placed)) else {
            return placed;
        };
        if let Some(pending) = self.publishers[index].jump_offset_ticks[t].take() {
            let shifted = dts.saturating_add_signed(pending);
            if !self.is_jump(index, track, shifted) {
                self.publishers[index].offset_ticks[t] = pending;
                return shifted;
            }
        }
        let target = last.saturating_add(SWITCH_GAP_TICKS[t]);
        let new_offset = saturate_i64(i128::from(target) - i128::from(dts));
        let shift = i128::from(new_offset) - i128::from(offset);
        let scales = self.timescales(index);
        let other_shift = shift * i128::from(scales[1 - t]) / i128::from(scales[t].max(1));
        let publisher = &mut self.publishers[index];
        publisher.offset_ticks[t] = new_offset;
        publisher.jump_offset_ticks[1 - t] = Some(saturate_i64(
            i128::from(publisher.offset_ticks[1 - t]) + other_shift,
        ));
        self.segmenter.handle_discontinuity();
        self.timestamp_jumps += 1;
        let step = i128::from(dts) + i128::from(offset) - i128::from(last);
        let step_ms = saturate_i64(step * 1000 / i128::from(scales[t].max(1)));
        self.events
            .push_back(HomeEvent::TimestampJump { track, step_ms });
        target
    }

    /// Whether decode time `dts` of `track` (on the stream's timeline) is a timestamp jump of
    /// the active publisher `index`: further behind its track's last decode time than the
    /// segmenter absorbs, or further ahead of the newest decode time of any track than a
    /// segment may last (a gap that long cannot be packaged: its last sample would outlast
    /// a segment). A track's first sample is never a jump, nor is a track catching up with
    /// the other after a pause of its own.
    fn is_jump(&self, index: usize, track: TrackKind, dts: u64) -> bool {
        let t = track_index(track);
        let Some(last) = self.last_dts[t] else {
            return false;
        };
        let segmenter = &self.config.segmenter;
        let scales = self.timescales(index);
        let back_ticks = ms_to_ticks(u64::from(segmenter.dts_backwards_max_ms), scales[t]);
        if dts.saturating_add(back_ticks) < last {
            return true;
        }
        let newest_ms = (0..2)
            .filter_map(|k| Some(ticks_to_ms(self.last_dts[k]?, scales[k])))
            .max()
            .unwrap_or(0);
        ticks_to_ms(dts, scales[t]).saturating_sub(newest_ms) > u64::from(segmenter.segment_max_ms)
    }

    /// The timescales of publisher `index`'s tracks, video then audio.
    fn timescales(&self, index: usize) -> [u32; 2] {
        let audio = self.publishers[index]
            .audio
            .as_ref()
            .map_or(AUDIO_TIMESCALE_FALLBACK, TrackConfig::timescale);
        [VIDEO_TIMESCALE, audio]
    }

    /// A keyframe of the active publisher `index`: when its in-band parameter sets describe
    /// another picture than the publisher's video configuration, the configuration they call
    /// for takes effect with it. Parameter sets that cannot be read leave the configuration
    /// as it is (the sample is packaged as sent, as before).
    fn follow_inband_config(&mut self, index: usize, sample: &Sample) {
        let Some(current) = &self.publishers[index].video else {
            return;
        };
        if let Ok(Some(config)) = inband_config(current, &sample.data) {
            let id = self.publishers[index].id;
            let (width, height) = config.video().map_or((0, 0), |v| (v.width, v.height));
            self.handle_config(id, config);
            self.events
                .push_back(HomeEvent::InbandConfig { width, height });
        }
    }

    /// The stall check of a timer tick.
    fn check_stall(&mut self, now_ms: u64) {
        let Some(active) = self.active else {
            return;
        };
        let failover_ms = self.config.failover_ms;
        let stalled_for_ms = now_ms.saturating_sub(self.publishers[active].last_sample_ms);
        if stalled_for_ms < failover_ms || self.switch_to.is_some() {
            return;
        }
        // The freshest other publisher that is not stalled itself takes over.
        let candidate = (0..self.publishers.len())
            .filter(|&i| i != active)
            .filter(|&i| now_ms.saturating_sub(self.publishers[i].last_sample_ms) < failover_ms)
            .max_by_key(|&i| self.publishers[i].last_sample_ms);
        if let Some(candidate) = candidate {
            self.events.push_back(HomeEvent::Stalled { stalled_for_ms });
            self.switch_to = Some(candidate);
        }
    }

    /// Adds a video decode time to the measurement window; the rate once the window is full
    /// (the stream's facts are updated with it).
    fn measure_frame_rate(&mut self, dts: u64) -> Option<FrameRate> {
        self.video_dts.push(dts);
        if self.video_dts.len() < FPS_SAMPLES {
            return None;
        }
        self.fps_known = true;
        self.video_dts.sort_unstable();
        let rate = estimate_frame_rate(&self.video_dts, VIDEO_TIMESCALE);
        self.video_dts.clear();
        let rate = rate?;
        let mut info = (*self.info).clone();
        info.fps = rate.as_f64();
        self.info = Arc::new(info);
        Some(rate)
    }

    fn update_info(&mut self, config: &TrackConfig) {
        let mut info = (*self.info).clone();
        if let Some(video) = config.video() {
            info.video_codec = config.codec_string();
            info.width = video.width;
            info.height = video.height;
            info.fps = video.frame_rate.map_or(0.0, |f| f.as_f64());
        } else {
            info.audio_codec = config.codec_string();
        }
        self.info = Arc::new(info);
    }

    /// Turns every segmenter event into index updates for every shard and, for placed
    /// samples and new headers, transcode events.
    fn drain_segmenter(&mut self) {
        while let Some(event) = self.segmenter.poll_event() {
            let track = match &event {
                Event::InitReady { track, .. }
                | Event::PartReady { track, .. }
                | Event::SegmentReady { track, .. }
                | Event::Placed { track, .. } => *track,
            };
            if let Event::Placed {
                track,
                sample,
                msn,
                segment_start,
                discontinuity,
            } = event
            {
                if self.transcoding && (track == TrackKind::Video || self.audio_transcoded) {
                    self.events
                        .push_back(HomeEvent::Transcode(TranscodeEvent::Sample {
                            epoch: self.epoch,
                            track,
                            sample,
                            msn,
                            segment_start,
                            discontinuity,
                            wall_ms: self.last_received_wall_ms,
                        }));
                }
                continue;
            }
            let config = match &event {
                Event::InitReady { .. } => self.segmenter.track_config(track).cloned(),
                _ => None,
            };
            // A (new) header of the source: its transcode worker (re)starts from it.
            if let Some(config) = &config {
                let wanted = match track {
                    TrackKind::Video => self.config.transcode_video,
                    TrackKind::Audio => {
                        self.audio_transcoded = self.config.transcode_audio.takes(config);
                        self.audio_transcoded
                    }
                };
                if wanted {
                    self.transcoding = true;
                    self.events
                        .push_back(HomeEvent::Transcode(TranscodeEvent::Start {
                            epoch: self.epoch,
                            config: config.clone(),
                        }));
                }
            }
            let name = self.rendition_names[track_index(track)].clone();
            if let Some(event) = index_event(event, name, config.as_ref(), PartTiming::Received) {
                self.events.push_back(HomeEvent::Index(event));
            }
        }
    }

    /// The invariants every `handle_*` call leaves behind.
    fn check_invariants(&self) {
        let len = self.publishers.len();
        debug_assert!(len <= self.config.publishers_max);
        debug_assert!(self.active.is_none_or(|i| i < len));
        debug_assert!(self.switch_to.is_none_or(|i| i < len));
        debug_assert!(self.active.is_none() || self.active != self.switch_to);
        debug_assert!(self.video_dts.len() < FPS_SAMPLES);
        debug_assert!(!self.transcoding || self.ending_since_ms.is_none());
        debug_assert!(self.phase != Phase::Finished || len == 0);
    }
}

/// The source's segmenter: it reports placed samples of the tracks that are transcoded.
fn source_segmenter(config: &HomeConfig) -> Segmenter {
    let mut segmenter = Segmenter::new(config.segmenter);
    segmenter.set_report_placed_video(config.transcode_video);
    segmenter.set_report_placed_audio(config.transcode_audio.any());
    segmenter
}

fn track_index(track: TrackKind) -> usize {
    match track {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

/// `value` clamped into `i64`: offsets of absurd timestamps saturate instead of wrapping.
fn saturate_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}
