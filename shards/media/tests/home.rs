//! Stream home scenarios on a virtual clock: publishers come and go, stall and return, and the
//! home's events are checked (and applied to a shard's index, which must accept them).

mod common;

use std::sync::Arc;

use bytes::Bytes;
use shardcast_media::codec::{parse_audio_specific_config, parse_avcc};
use shardcast_media::home::{
    AUDIO_RENDITION, FPS_SAMPLES, PUBLISHERS_MAX_DEFAULT, STALL_CHECK_MS_DEFAULT,
    TRANSCODE_END_WAIT_MS_DEFAULT, VIDEO_RENDITION,
};
use shardcast_media::manifest::{FrameRate, RenditionKind};
use shardcast_media::{
    AudioTranscode, HomeConfig, HomeEvent, IndexEvent, IndexLimits, MediaIndex, Refusal, Role,
    RungInfo, Sample, SegmenterConfig, StreamHome, TrackConfig, TrackKind, TranscodeEvent,
};

/// The Unix time at virtual time 0.
const WALL_START_MS: u64 = 1_700_000_000_000;
/// Mesh delay between a sample's arrival on its ingest shard and at the home.
const MESH_DELAY_MS: u64 = 2;
const FAILOVER_MS: u64 = 1000;
const AAC_FRAME: u64 = 1024;

type Event = HomeEvent<u32>;

fn config() -> HomeConfig {
    HomeConfig {
        segmenter: SegmenterConfig::DEFAULT,
        ll_hls: true,
        failover_ms: FAILOVER_MS,
        publishers_max: PUBLISHERS_MAX_DEFAULT,
        stall_check_ms: STALL_CHECK_MS_DEFAULT,
        transcode_video: false,
        transcode_audio: AudioTranscode::default(),
        transcode_end_wait_ms: TRANSCODE_END_WAIT_MS_DEFAULT,
    }
}

fn transcoding() -> HomeConfig {
    HomeConfig {
        transcode_video: true,
        ..config()
    }
}

/// The fixture's H.264 configuration: 320x180, 30 fps in the SPS.
fn avc() -> TrackConfig {
    let tags = common::read_flv(&common::fixture("avc_aac.flv"));
    TrackConfig::Avc(parse_avcc(&common::first_video_sequence_header(&tags)).unwrap())
}

/// The same without a frame rate in the SPS.
fn avc_without_rate() -> TrackConfig {
    let TrackConfig::Avc(mut avc) = avc() else {
        unreachable!()
    };
    avc.sps_info.video.frame_rate = None;
    TrackConfig::Avc(avc)
}

/// AAC-LC, 48 kHz, stereo.
fn aac() -> TrackConfig {
    TrackConfig::Aac(parse_audio_specific_config(&Bytes::from_static(&[0x11, 0x90])).unwrap())
}

/// A home on a virtual clock, with one shard's index fed from it.
struct Harness {
    home: StreamHome<u32>,
    now_ms: u64,
    events: Vec<Event>,
    index: MediaIndex,
    stream: Arc<str>,
    /// Every `received_wall_ms` passed in, in order.
    received: Vec<u64>,
}

impl Harness {
    fn new(config: HomeConfig) -> Self {
        Harness {
            home: StreamHome::new(config),
            now_ms: 0,
            events: Vec::new(),
            index: MediaIndex::new(IndexLimits {
                window_ms: 60_000,
                stream_max_bytes: 1 << 30,
                inits_kept: 4,
                streams_max: 4,
                ended_keep_ms: 60_000,
            }),
            stream: Arc::from("live"),
            received: Vec::new(),
        }
    }

    /// Drains the home; index updates go to the index as a shard would apply them.
    fn pump(&mut self) {
        while let Some(event) = self.home.poll_event() {
            if let HomeEvent::Index(update) | HomeEvent::RungIndex(update) = &event {
                if matches!(update, IndexEvent::Started { .. }) {
                    self.index.remove(&self.stream);
                }
                self.index.apply(&self.stream, update.clone(), self.now_ms);
            }
            self.events.push(event);
        }
    }

    /// Moves the clock to `ms`, firing every timer due on the way.
    fn advance_to(&mut self, ms: u64) {
        while let Some(due) = self.home.poll_timeout().filter(|&due| due <= ms) {
            self.now_ms = self.now_ms.max(due);
            self.home.handle_timeout(self.now_ms);
            self.pump();
        }
        self.now_ms = self.now_ms.max(ms);
    }

    fn publish(&mut self, id: u32, role: Role) -> Result<(), Refusal> {
        let remote: Arc<str> = Arc::from(format!("10.0.0.{id}:1935"));
        let result =
            self.home
                .handle_publish(self.now_ms, WALL_START_MS + self.now_ms, id, role, remote);
        self.pump();
        result
    }

    fn configs(&mut self, id: u32, configs: &[TrackConfig]) {
        for config in configs {
            self.home.handle_config(id, config.clone());
            self.pump();
        }
    }

    fn sample(&mut self, id: u32, track: TrackKind, sample: Sample) {
        let received = WALL_START_MS + self.now_ms - MESH_DELAY_MS.min(self.now_ms);
        self.received.push(received);
        self.home
            .handle_sample(self.now_ms, id, track, sample, received);
        self.pump();
    }

    fn unpublish(&mut self, id: u32) {
        self.home.handle_unpublish(self.now_ms, id);
        self.pump();
    }

    /// Runs the clock to `until_ms` one millisecond at a time, every source sending what is
    /// due.
    fn run(&mut self, sources: &mut [&mut Source], until_ms: u64) {
        while self.now_ms < until_ms {
            self.advance_to(self.now_ms + 1);
            for source in sources.iter_mut() {
                for (track, sample) in source.due(self.now_ms) {
                    self.sample(source.id, track, sample);
                }
            }
        }
    }

    fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

/// A synthetic encoder: video at `fps` with a keyframe every second, 48 kHz AAC, on its own
/// timeline that starts at `base_ms` when the encoder starts at `start_ms` of the clock.
struct Source {
    id: u32,
    start_ms: u64,
    base_ms: u64,
    fps: u64,
    video: bool,
    /// A silent source keeps its timeline running but sends nothing.
    sending: bool,
    /// A muted source keeps sending video but no audio.
    audio_muted: bool,
    video_n: u64,
    audio_n: u64,
}

impl Source {
    fn new(id: u32, start_ms: u64, base_ms: u64) -> Self {
        Source {
            id,
            start_ms,
            base_ms,
            fps: 30,
            video: true,
            sending: true,
            audio_muted: false,
            video_n: 0,
            audio_n: 0,
        }
    }

    fn frame_ticks(&self) -> u64 {
        90_000 / self.fps
    }

    /// The samples due by `now_ms`, in arrival order.
    fn due(&mut self, now_ms: u64) -> Vec<(TrackKind, Sample)> {
        let mut out = Vec::new();
        let Some(elapsed_ms) = now_ms.checked_sub(self.start_ms) else {
            return out;
        };
        while self.audio_n * AAC_FRAME * 1000 / 48_000 <= elapsed_ms {
            let n = self.audio_n;
            self.audio_n += 1;
            if self.audio_muted {
                continue;
            }
            out.push((
                TrackKind::Audio,
                Sample {
                    dts: self.base_ms * 48 + n * AAC_FRAME,
                    composition_offset: 0,
                    duration: AAC_FRAME as u32,
                    keyframe: true,
                    data: Bytes::from(vec![0xA0 | (n % 16) as u8; 60]),
                },
            ));
        }
        while self.video && self.video_n * 1000 / self.fps <= elapsed_ms {
            let n = self.video_n;
            self.video_n += 1;
            out.push((
                TrackKind::Video,
                Sample {
                    dts: self.base_ms * 90 + n * self.frame_ticks(),
                    composition_offset: 0,
                    duration: 0,
                    keyframe: n.is_multiple_of(self.fps),
                    data: Bytes::from(vec![n as u8; 300]),
                },
            ));
        }
        if !self.sending {
            out.clear();
        }
        out
    }
}

/// A part as the index sees it.
#[derive(Clone, Debug)]
struct PartSeen {
    rendition: Arc<str>,
    msn: u64,
    start_ticks: u64,
    duration_ticks: u64,
    last_received_ms: Option<u64>,
}

fn parts(events: &[Event], rendition: &str) -> Vec<PartSeen> {
    events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Index(IndexEvent::Part {
                rendition: r,
                msn,
                start_ticks,
                duration_ticks,
                last_received_ms,
                ..
            }) if &**r == rendition => Some(PartSeen {
                rendition: r.clone(),
                msn: *msn,
                start_ticks: *start_ticks,
                duration_ticks: *duration_ticks,
                last_received_ms: *last_received_ms,
            }),
            _ => None,
        })
        .collect()
}

/// (msn, start_ticks, discontinuity) of every segment of `rendition`.
fn segments(events: &[Event], rendition: &str) -> Vec<(u64, u64, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Index(IndexEvent::Segment {
                rendition: r,
                msn,
                start_ticks,
                discontinuity,
                ..
            }) if &**r == rendition => Some((*msn, *start_ticks, *discontinuity)),
            _ => None,
        })
        .collect()
}

fn position(events: &[Event], what: impl Fn(&Event) -> bool) -> Option<usize> {
    events.iter().position(what)
}

/// Video parts tile the timeline: each starts where the previous ended.
fn assert_contiguous(parts: &[PartSeen]) {
    assert!(!parts.is_empty());
    for pair in parts.windows(2) {
        assert_eq!(
            pair[1].start_ticks,
            pair[0].start_ticks + pair[0].duration_ticks,
            "{:?}",
            pair
        );
    }
}

/// Audio parts move forward by about their durations (the switch may add or take up to a
/// frame or two).
fn assert_increasing(parts: &[PartSeen]) {
    assert!(!parts.is_empty());
    for pair in parts.windows(2) {
        let end = pair[0].start_ticks + pair[0].duration_ticks;
        assert!(pair[1].start_ticks > pair[0].start_ticks, "{pair:?}");
        assert!(
            pair[1].start_ticks.abs_diff(end) <= 2 * AAC_FRAME,
            "{pair:?}"
        );
    }
}

fn switched_to(events: &[Event]) -> Vec<(u32, Role)> {
    events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Switched { to, role, .. } => Some((*to, *role)),
            _ => None,
        })
        .collect()
}

fn count(events: &[Event], what: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

fn is_ended(event: &Event) -> bool {
    matches!(event, HomeEvent::Index(IndexEvent::Ended))
}

/// A primary on its own for `until_ms`, configured with video and audio.
fn live_primary(config: HomeConfig, until_ms: u64) -> (Harness, Source) {
    let mut h = Harness::new(config);
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    let mut primary = Source::new(1, 0, 0);
    h.run(&mut [&mut primary], until_ms);
    (h, primary)
}

#[test]
fn a_publish_starts_the_stream_and_samples_become_parts_and_segments() {
    let mut h = Harness::new(config());
    assert!(h.home.is_finished(), "nothing to keep before a publish");
    assert_eq!(h.home.poll_timeout(), None);
    h.advance_to(5);
    h.publish(1, Role::Primary).unwrap();
    let events = h.take();
    assert!(matches!(
        events[..],
        [HomeEvent::Index(IndexEvent::Started {
            started_ms,
            part_target_ms: Some(500),
            ..
        })] if started_ms == WALL_START_MS + 5
    ));
    assert_eq!(h.home.poll_timeout(), Some(5 + STALL_CHECK_MS_DEFAULT));
    assert!(!h.home.is_finished());
    assert_eq!(h.home.active(), Some((1, Role::Primary)));

    h.configs(1, &[avc(), aac()]);
    let events = h.take();
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            HomeEvent::Index(IndexEvent::Init { rendition, .. }) => {
                format!("init {}", rendition.name)
            }
            HomeEvent::Index(IndexEvent::Info(_)) => "info".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["init source", "info", "init audio", "info"]);
    assert_eq!(h.home.info().width, 320);
    assert_eq!(h.home.info().audio_codec, "mp4a.40.2");
    assert_eq!(h.home.info().fps, 30.0);

    let mut source = Source::new(1, 5, 0);
    h.run(&mut [&mut source], 5_000);
    let events = h.take();
    let video = parts(&events, VIDEO_RENDITION);
    let audio = parts(&events, AUDIO_RENDITION);
    assert!(video.len() >= 8, "{}", video.len());
    assert_contiguous(&video);
    assert_increasing(&audio);
    assert!(video
        .iter()
        .chain(&audio)
        .all(|p| p.last_received_ms.is_some_and(|ms| ms >= WALL_START_MS)));
    let video_segments = segments(&events, VIDEO_RENDITION);
    assert_eq!(
        video_segments.iter().map(|s| s.0).collect::<Vec<_>>(),
        [0, 1],
        "2 s segments"
    );
    assert!(video_segments.iter().all(|s| !s.2));
    assert_eq!(segments(&events, AUDIO_RENDITION).len(), 2);
    assert!(video.iter().all(|p| &*p.rendition == VIDEO_RENDITION));
    assert_eq!(count(&events, |e| matches!(e, HomeEvent::Transcode(_))), 0);
    assert_eq!(
        count(&events, |e| matches!(e, HomeEvent::Stalled { .. })),
        0
    );
    assert_eq!(
        count(&events, |e| matches!(e, HomeEvent::Rejected { .. })),
        0
    );
    // The shard's index serves what the home produced.
    let index = h.index.stream("live").unwrap();
    assert_eq!(index.views().len(), 2);
    assert!(index.init("source", 0).is_some());
}

#[test]
fn a_second_primary_is_refused_while_a_primary_is_active() {
    let mut h = Harness::new(HomeConfig {
        publishers_max: 3,
        ..config()
    });
    h.publish(1, Role::Primary).unwrap();
    assert_eq!(h.publish(2, Role::Primary), Err(Refusal::PrimaryTaken));
    assert_eq!(
        Refusal::PrimaryTaken.to_string(),
        "stream already has a primary publisher"
    );
    h.publish(3, Role::Backup).unwrap();
    h.publish(4, Role::Backup).unwrap();
    let refusal = h.publish(5, Role::Backup).unwrap_err();
    assert_eq!(refusal, Refusal::TooManyPublishers { limit: 3 });
    assert_eq!(refusal.to_string(), "too many publishers for this stream");
    assert_eq!(refusal.reason(), refusal.to_string());
    assert_eq!(h.home.publisher_count(), 3);
    // One Started, for the first publish only.
    let events = h.take();
    assert_eq!(events.len(), 1);
    assert_eq!(h.home.active(), Some((1, Role::Primary)));
    // A refused publisher is unknown to the home.
    h.configs(2, &[avc()]);
    h.unpublish(2);
    assert!(h.take().is_empty());
}

/// A primary and a backup on different timelines; the primary goes silent at 3 s.
fn failover() -> (Harness, Source, Source) {
    let mut h = Harness::new(transcoding());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    h.publish(2, Role::Backup).unwrap();
    h.configs(2, &[avc(), aac()]);
    // The backup's encoder started ten minutes earlier.
    let mut primary = Source::new(1, 0, 0);
    let mut backup = Source::new(2, 0, 600_000);
    h.run(&mut [&mut primary, &mut backup], 3_000);
    primary.sending = false;
    h.run(&mut [&mut primary, &mut backup], 7_000);
    (h, primary, backup)
}

#[test]
fn a_backup_takes_over_a_stalled_primary_at_its_next_keyframe() {
    let (mut h, _primary, _backup) = failover();
    let events = h.take();
    let stalled = position(&events, |e| matches!(e, HomeEvent::Stalled { .. })).unwrap();
    let HomeEvent::Stalled { stalled_for_ms } = events[stalled] else {
        unreachable!()
    };
    assert!((FAILOVER_MS..FAILOVER_MS + 2 * STALL_CHECK_MS_DEFAULT).contains(&stalled_for_ms));
    assert_eq!(switched_to(&events), [(2, Role::Backup)]);
    let switched = position(&events, |e| matches!(e, HomeEvent::Switched { .. })).unwrap();
    assert!(stalled < switched);
    assert_eq!(h.home.active(), Some((2, Role::Backup)));
    // Media the backup sends beside its packaged samples is placed by the same offset: its
    // clock is ten minutes ahead of the stream's timeline. The primary has none now.
    assert_eq!(h.home.video_offset(1), None);
    let offset = h.home.video_offset(2).expect("the active publisher's");
    assert!(
        (-600 * 90_000 - 20 * 90_000..-590 * 90_000).contains(&offset),
        "{offset}"
    );
    let HomeEvent::Switched { ref remote, .. } = events[switched] else {
        unreachable!()
    };
    assert_eq!(&**remote, "10.0.0.2:1935");

    // Media time continues where the primary stopped: no jump to the backup's timeline, no
    // step back.
    let video = parts(&events, VIDEO_RENDITION);
    assert_contiguous(&video);
    assert_increasing(&parts(&events, AUDIO_RENDITION));
    let last = video.last().unwrap();
    assert!(last.start_ticks < 8 * 90_000, "{last:?}");
    // The first segment after the switch is a discontinuity, in both tracks.
    for rendition in [VIDEO_RENDITION, AUDIO_RENDITION] {
        let flagged: Vec<_> = segments(&events, rendition)
            .into_iter()
            .filter(|s| s.2)
            .collect();
        assert_eq!(flagged.len(), 1, "{rendition}");
    }
    // No new header: the backup's configuration is the same.
    assert_eq!(
        count(&events, |e| matches!(
            e,
            HomeEvent::Index(IndexEvent::Init { .. })
        )),
        2
    );

    // The transcode worker follows: decode times keep increasing, the switch starts a
    // discontinuous segment, and each sample carries a received wall time.
    let samples: Vec<(u64, u64, bool, bool, u64)> = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Transcode(TranscodeEvent::Sample {
                epoch: 0,
                track: TrackKind::Video,
                sample,
                msn,
                segment_start,
                discontinuity,
                wall_ms,
            }) => Some((sample.dts, *msn, *segment_start, *discontinuity, *wall_ms)),
            _ => None,
        })
        .collect();
    assert!(samples.windows(2).all(|w| w[1].0 > w[0].0));
    let first_discontinuous = samples.iter().position(|s| s.3).unwrap();
    assert!(samples[first_discontinuous].2, "it starts a segment");
    assert_eq!(
        samples[first_discontinuous].0,
        samples[first_discontinuous - 1].0 + 3000,
        "one frame after the primary's last"
    );
    assert!(samples.iter().all(|s| h.received.contains(&s.4)));
    assert!(samples.windows(2).all(|w| w[1].4 >= w[0].4));
}

#[test]
fn a_returning_primary_takes_back_at_its_next_keyframe() {
    let (mut h, mut primary, mut backup) = failover();
    h.take();
    // The primary's encoder comes back; its timeline ran on meanwhile.
    primary.sending = true;
    h.run(&mut [&mut primary, &mut backup], 10_500);
    let events = h.take();
    assert_eq!(switched_to(&events), [(1, Role::Primary)]);
    assert_eq!(h.home.active(), Some((1, Role::Primary)));
    let switched = position(&events, |e| matches!(e, HomeEvent::Switched { .. })).unwrap();
    // At the primary's next keyframe: within a second of its return.
    let before = parts(&events[..switched], VIDEO_RENDITION);
    assert!(before.len() <= 3, "{}", before.len());
    let video = parts(&events, VIDEO_RENDITION);
    assert_contiguous(&video);
    assert!(video.last().unwrap().start_ticks < 11 * 90_000);
    assert_eq!(
        segments(&events, VIDEO_RENDITION)
            .iter()
            .filter(|s| s.2)
            .count(),
        1
    );

    // The backup keeps standing by; a new primary after the old one left also takes back.
    h.unpublish(1);
    assert!(h.take().iter().all(|e| !is_ended(e)));
    h.run(&mut [&mut backup], 11_200);
    assert_eq!(
        switched_to(&h.take()),
        [(2, Role::Backup)],
        "the backup was asked"
    );
    h.publish(3, Role::Primary).unwrap();
    h.configs(3, &[avc(), aac()]);
    let mut third = Source::new(3, h.now_ms, 42_000);
    h.run(&mut [&mut backup, &mut third], 13_000);
    let events = h.take();
    assert_eq!(switched_to(&events), [(3, Role::Primary)]);
    assert_contiguous(&parts(&events, VIDEO_RENDITION));
}

#[test]
fn unpublishing_the_last_publisher_ends_the_stream() {
    let (mut h, _) = live_primary(config(), 3_000);
    h.take();
    h.unpublish(1);
    let events = h.take();
    // The segmenter flushed its last parts and segments, then the end.
    assert!(is_ended(events.last().unwrap()), "{events:?}");
    assert!(!parts(&events, VIDEO_RENDITION).is_empty());
    assert_eq!(segments(&events, VIDEO_RENDITION).len(), 1);
    assert!(h.index.stream("live").unwrap().is_ended());
    // Kept until the next tick, for a publisher that comes right back.
    assert!(!h.home.is_finished());
    let tick = h.home.poll_timeout().unwrap();
    assert!(tick <= h.now_ms + STALL_CHECK_MS_DEFAULT);
    h.advance_to(tick);
    assert!(h.home.is_finished());
    assert_eq!(h.home.poll_timeout(), None);
    // A second unpublish, and late messages, change nothing.
    h.unpublish(1);
    h.sample(
        1,
        TrackKind::Audio,
        Source::new(1, 0, 0).due(0)[0].1.clone(),
    );
    h.advance_to(h.now_ms + 10_000);
    assert!(h.take().is_empty());
}

#[test]
fn the_active_publisher_leaving_hands_over_to_one_standing_by() {
    let mut h = Harness::new(config());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    h.publish(2, Role::Backup).unwrap();
    h.configs(2, &[avc(), aac()]);
    let mut primary = Source::new(1, 0, 0);
    let mut backup = Source::new(2, 0, 1_000);
    h.run(&mut [&mut primary, &mut backup], 2_500);
    h.unpublish(1);
    h.run(&mut [&mut backup], 5_000);
    let events = h.take();
    assert_eq!(switched_to(&events), [(2, Role::Backup)]);
    assert!(!events.iter().any(is_ended));
    assert_eq!(
        count(&events, |e| matches!(e, HomeEvent::Stalled { .. })),
        0
    );
    assert_contiguous(&parts(&events, VIDEO_RENDITION));
}

#[test]
fn b_frames_are_reported_once_per_publish_session() {
    let mut h = Harness::new(config());
    let video = |dts: u64, pts: u64, keyframe: bool| Sample {
        dts,
        composition_offset: (pts - dts) as i32,
        duration: 0,
        keyframe,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
    };
    let reordered = |events: &[HomeEvent<u32>]| {
        (events.iter())
            .filter(|e| matches!(e, HomeEvent::Reordered))
            .count()
    };
    for session in 0..2 {
        h.publish(1, Role::Primary).unwrap();
        h.configs(1, &[avc()]);
        let base = session * 900_000;
        // In presentation order: nothing.
        for n in 0..3u64 {
            let at = base + n * 3000;
            h.sample(1, TrackKind::Video, video(at, at + 6000, n == 0));
        }
        assert_eq!(reordered(&h.take()), 0);
        // I P B B (decode order) with presentation 0, 9000, 3000, 6000, ahead of the dts.
        for (n, pts) in [(3u64, 18_000u64), (4, 27_000), (5, 21_000), (6, 24_000)] {
            h.sample(
                1,
                TrackKind::Video,
                video(base + n * 3000, base + pts + 6000, false),
            );
        }
        assert_eq!(reordered(&h.take()), 1, "session {session}: once");
        h.unpublish(1);
        h.take();
    }
}

#[test]
fn audio_goes_to_the_worker_only_in_a_codec_it_takes() {
    // A rendition of Opus in AAC only (a WHIP source's): an RTMP source's AAC stays home.
    let mut h = Harness::new(HomeConfig {
        transcode_audio: AudioTranscode {
            from_aac: false,
            from_opus: true,
        },
        ..transcoding()
    });
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    let mut source = Source::new(1, 0, 0);
    h.run(&mut [&mut source], 2_000);
    let events = h.take();
    let (mut starts, mut samples) = ([0u32; 2], [0u32; 2]);
    for event in &events {
        match event {
            HomeEvent::Transcode(TranscodeEvent::Start { config, .. }) => {
                starts[config.kind() as usize] += 1
            }
            HomeEvent::Transcode(TranscodeEvent::Sample { track, .. }) => {
                samples[*track as usize] += 1
            }
            _ => {}
        }
    }
    let (video, audio) = (TrackKind::Video as usize, TrackKind::Audio as usize);
    assert_eq!((starts[video], starts[audio]), (1, 0));
    assert!(samples[video] > 50, "{samples:?}");
    assert_eq!(
        samples[audio], 0,
        "no AAC for a worker that takes Opus only"
    );
}

#[test]
fn a_transcode_worker_gets_the_source_and_the_end_waits_for_its_flush() {
    let mut h = Harness::new(HomeConfig {
        transcode_audio: AudioTranscode::ALL,
        ..transcoding()
    });
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    let events = h.take();
    // The worker starts from each header before shards see it.
    let starts: Vec<TrackKind> = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Transcode(TranscodeEvent::Start { epoch: 0, config }) => Some(config.kind()),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [TrackKind::Video, TrackKind::Audio]);
    let start = position(&events, |e| {
        matches!(e, HomeEvent::Transcode(TranscodeEvent::Start { .. }))
    });
    let init = position(&events, |e| {
        matches!(e, HomeEvent::Index(IndexEvent::Init { .. }))
    });
    assert!(start < init);

    let mut source = Source::new(1, 0, 0);
    h.run(&mut [&mut source], 3_000);
    let events = h.take();
    let placed: Vec<(TrackKind, bool, u64)> = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Transcode(TranscodeEvent::Sample {
                track,
                segment_start,
                msn,
                ..
            }) => Some((*track, *segment_start, *msn)),
            _ => None,
        })
        .collect();
    assert_eq!(placed[0], (TrackKind::Video, true, 0));
    assert!(placed.iter().any(|p| p.0 == TrackKind::Audio));
    assert!(
        placed.iter().any(|p| p.1 && p.2 == 1),
        "the second segment starts"
    );

    // A rung's output of this epoch passes through; its facts replace the stream's.
    let rung_part = IndexEvent::Part {
        rendition: Arc::from("360p"),
        msn: 0,
        part_index: 0,
        start_ticks: 0,
        duration_ticks: 45_000,
        independent: true,
        program_date_time_ms: WALL_START_MS,
        bytes: Bytes::from_static(b"moof"),
        last_received_ms: None,
    };
    h.home.handle_rung_event(0, rung_part);
    h.home.handle_rung_stats(
        0,
        vec![RungInfo {
            name: "360p".into(),
            width: 640,
            height: 360,
            ..RungInfo::default()
        }],
    );
    h.pump();
    let events = h.take();
    assert!(matches!(
        events[..],
        [
            HomeEvent::RungIndex(IndexEvent::Part { .. }),
            HomeEvent::Index(IndexEvent::Info(ref info))
        ] if info.rungs.len() == 1 && info.width == 320
    ));
    assert_eq!(h.home.info().rungs[0].name, "360p");

    h.unpublish(1);
    let events = h.take();
    assert!(matches!(
        events.last(),
        Some(HomeEvent::Transcode(TranscodeEvent::End { epoch: 0 }))
    ));
    assert!(!events.iter().any(is_ended), "waits for the worker");
    // The flush's placed samples went to the worker before the end.
    assert!(matches!(
        events[events.len() - 2],
        HomeEvent::Index(_) | HomeEvent::Transcode(TranscodeEvent::Sample { .. })
    ));
    h.advance_to(h.now_ms + 1_000);
    h.home.handle_rung_event(0, IndexEvent::Ended);
    h.home.handle_rung_ended(0);
    h.pump();
    let events = h.take();
    assert!(matches!(
        events[..],
        [
            HomeEvent::RungIndex(IndexEvent::Ended),
            HomeEvent::Index(IndexEvent::Ended)
        ]
    ));
    assert!(!h.home.is_finished());
    h.advance_to(h.now_ms + STALL_CHECK_MS_DEFAULT);
    assert!(h.home.is_finished());
    // A second answer is ignored.
    h.home.handle_rung_ended(0);
    h.pump();
    assert!(h.take().is_empty());
}

#[test]
fn without_the_workers_flush_the_stream_ends_after_the_wait() {
    let (mut h, _) = live_primary(transcoding(), 2_000);
    h.unpublish(1);
    let unpublished_ms = h.now_ms;
    h.take();
    h.advance_to(unpublished_ms + TRANSCODE_END_WAIT_MS_DEFAULT - 1);
    assert!(h.take().is_empty());
    assert!(!h.home.is_finished());
    h.advance_to(unpublished_ms + TRANSCODE_END_WAIT_MS_DEFAULT + STALL_CHECK_MS_DEFAULT);
    let events = h.take();
    assert!(matches!(
        events[..],
        [
            HomeEvent::EndedWithoutRungs,
            HomeEvent::Index(IndexEvent::Ended)
        ]
    ));
    // The same tick finds nothing left to wait for.
    assert!(h.home.is_finished());
    assert_eq!(h.home.poll_timeout(), None);
    // The worker's late answer changes nothing.
    h.home.handle_rung_ended(0);
    h.pump();
    assert!(h.take().is_empty());
}

#[test]
fn a_publish_after_the_end_starts_a_new_epoch_and_old_rung_messages_are_dropped() {
    let (mut h, _) = live_primary(transcoding(), 2_500);
    h.unpublish(1);
    h.take();
    assert_eq!(h.home.epoch(), 0);
    // Back before the worker answered.
    h.advance_to(h.now_ms + 300);
    h.publish(7, Role::Primary).unwrap();
    assert_eq!(h.home.epoch(), 1);
    h.configs(7, &[avc(), aac()]);
    let events = h.take();
    assert!(matches!(
        events[0],
        HomeEvent::Index(IndexEvent::Started { .. })
    ));
    // A fresh segmenter: a first header again, not a discontinuity.
    assert!(events.iter().any(|e| matches!(
        e,
        HomeEvent::Transcode(TranscodeEvent::Start { epoch: 1, .. })
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        HomeEvent::Index(IndexEvent::Init {
            discontinuity: false,
            ..
        })
    )));
    // The old session's worker is too late: dropped.
    h.home.handle_rung_event(0, IndexEvent::Ended);
    h.home.handle_rung_stats(0, vec![RungInfo::default()]);
    h.home.handle_rung_ended(0);
    h.pump();
    assert!(h.take().is_empty());
    let mut source = Source::new(7, h.now_ms, 50);
    let restart_ms = h.now_ms;
    h.run(&mut [&mut source], restart_ms + 3_000);
    let events = h.take();
    // Numbering and media time start over.
    assert_eq!(parts(&events, VIDEO_RENDITION)[0].msn, 0);
    assert_eq!(parts(&events, VIDEO_RENDITION)[0].start_ticks, 50 * 90);
    assert!(events.iter().all(|e| match e {
        HomeEvent::Transcode(TranscodeEvent::Sample { epoch, .. }) => *epoch == 1,
        _ => true,
    }));
    // The pending end of epoch 0 never comes.
    h.advance_to(h.now_ms + TRANSCODE_END_WAIT_MS_DEFAULT * 2);
    assert!(!h
        .take()
        .iter()
        .any(|e| is_ended(e) || matches!(e, HomeEvent::EndedWithoutRungs)));
    // This epoch's worker is heard.
    h.home.handle_rung_event(1, IndexEvent::Ended);
    h.pump();
    assert_eq!(h.take().len(), 1);
}

#[test]
fn a_finished_home_that_is_kept_restarts_like_a_new_one() {
    let (mut h, _) = live_primary(config(), 2_500);
    h.unpublish(1);
    h.advance_to(h.now_ms + STALL_CHECK_MS_DEFAULT);
    assert!(h.home.is_finished());
    h.take();
    h.publish(1, Role::Primary).unwrap();
    assert!(!h.home.is_finished());
    assert_eq!(h.home.epoch(), 1);
    assert!(h.home.poll_timeout().is_some());
    let events = h.take();
    assert!(matches!(
        events[..],
        [HomeEvent::Index(IndexEvent::Started { .. })]
    ));
}

#[test]
fn the_frame_rate_is_measured_when_the_sps_has_none() {
    let mut h = Harness::new(config());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc_without_rate(), aac()]);
    assert_eq!(h.home.info().fps, 0.0);
    let mut source = Source::new(1, 0, 0);
    source.fps = 25;
    let frames_ms = (FPS_SAMPLES as u64 - 1) * 40;
    h.run(&mut [&mut source], frames_ms - 1);
    assert!(h
        .take()
        .iter()
        .all(|e| !matches!(e, HomeEvent::FrameRateMeasured { .. })));
    h.run(&mut [&mut source], frames_ms + 2_000);
    let events = h.take();
    let measured = position(
        &events,
        |e| matches!(e, HomeEvent::FrameRateMeasured { fps } if *fps == 25.0),
    )
    .expect("measured once the window is full");
    assert!(matches!(
        &events[measured + 1],
        HomeEvent::Index(IndexEvent::Meta { rendition }) if matches!(
            rendition.kind,
            RenditionKind::Video { frame_rate: FrameRate { num: 25, den: 1 }, width: 320, .. }
        ) && &*rendition.name == VIDEO_RENDITION
    ));
    assert!(matches!(
        &events[measured + 2],
        HomeEvent::Index(IndexEvent::Info(info)) if info.fps == 25.0
    ));
    assert_eq!(
        count(&events, |e| matches!(
            e,
            HomeEvent::FrameRateMeasured { .. }
        )),
        1
    );
    assert_eq!(h.home.info().fps, 25.0);
}

#[test]
fn the_frame_rate_of_the_sps_is_kept() {
    // Video only: an audio configuration restarts the measurement (see `handle_config`).
    let mut h = Harness::new(config());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc()]);
    let mut source = Source::new(1, 0, 0);
    source.fps = 25;
    h.run(&mut [&mut source], 6_000);
    let events = h.take();
    assert_eq!(
        count(&events, |e| matches!(
            e,
            HomeEvent::FrameRateMeasured { .. }
        )),
        0
    );
    assert_eq!(h.home.info().fps, 30.0, "what the SPS says");
}

#[test]
fn an_audio_only_backup_switches_at_any_audio_frame() {
    let mut h = Harness::new(config());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[aac()]);
    h.publish(2, Role::Backup).unwrap();
    h.configs(2, &[aac()]);
    let mut primary = Source::new(1, 0, 0);
    primary.video = false;
    let mut backup = Source::new(2, 0, 77_000);
    backup.video = false;
    h.run(&mut [&mut primary, &mut backup], 2_000);
    primary.sending = false;
    h.run(&mut [&mut primary, &mut backup], 5_000);
    let events = h.take();
    assert_eq!(switched_to(&events), [(2, Role::Backup)]);
    assert_increasing(&parts(&events, AUDIO_RENDITION));
}

#[test]
fn inputs_of_unknown_or_standing_by_publishers_change_nothing() {
    let (mut h, _) = live_primary(config(), 1_000);
    h.take();
    h.configs(9, &[avc()]);
    h.sample(
        9,
        TrackKind::Video,
        Source::new(9, 0, 0).due(0)[1].1.clone(),
    );
    h.unpublish(9);
    h.home.handle_rung_event(3, IndexEvent::Ended);
    h.home.handle_timeout(0);
    h.pump();
    assert!(h.take().is_empty());
    // A backup's configuration and samples are kept for later, not packaged.
    h.publish(2, Role::Backup).unwrap();
    h.configs(2, &[avc(), aac()]);
    let mut backup = Source::new(2, h.now_ms, 0);
    let until = h.now_ms + 500;
    h.run(&mut [&mut backup], until);
    assert!(h.take().is_empty());
}

/// A primary whose timestamps jump by `jump_ms` (both tracks, as an encoder that restarts
/// its clock or plays a second recording) at 3 s of a 7 s run.
fn jumping_primary(jump_ms: i64) -> Vec<Event> {
    let mut h = Harness::new(config());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    // An encoder clock 4 h in, so that it can jump back.
    let mut primary = Source::new(1, 0, 4 * 3600 * 1000);
    h.run(&mut [&mut primary], 3_000);
    primary.base_ms = primary.base_ms.checked_add_signed(jump_ms).unwrap();
    h.run(&mut [&mut primary], 7_000);
    h.unpublish(1);
    assert_eq!(h.home.timestamp_jumps(), 1);
    h.take()
}

/// What a player gets of a stream whose timestamps jumped: every sample, on one timeline
/// that goes on across the jump, audio and video still in sync, and one discontinuity.
fn assert_rebased(events: &[Event]) {
    assert_eq!(
        count(events, |e| matches!(e, HomeEvent::Rejected { .. })),
        0
    );
    assert_contiguous(&parts(events, VIDEO_RENDITION));
    assert_increasing(&parts(events, AUDIO_RENDITION));
    let video = segments(events, VIDEO_RENDITION);
    let audio = segments(events, AUDIO_RENDITION);
    let flagged: Vec<_> = video.iter().filter(|s| s.2).collect();
    assert_eq!(flagged.len(), 1, "{video:?}");
    // The jump is at 3 s: its segment starts there, one frame after the last one before.
    assert_eq!(flagged[0].1 - video[0].1, 3 * 90_000, "{video:?}");
    assert_eq!(audio.iter().filter(|s| s.2).count(), 1, "{audio:?}");
    // Seven seconds in all, no segment longer than a GOP pair.
    let ended = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Index(IndexEvent::Segment {
                rendition,
                duration_ticks,
                ..
            }) if &**rendition == VIDEO_RENDITION => Some(*duration_ticks),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(ended.iter().all(|&d| d <= 2 * 90_000), "{ended:?}");
    assert!(
        ended.iter().sum::<u64>().abs_diff(7 * 90_000) <= 3000,
        "{ended:?}"
    );
    for (v, a) in video.iter().zip(&audio) {
        assert_eq!(v.0, a.0);
        let lag_ms = (a.1 * 1000 / 48_000) as i64 - (v.1 * 1000 / 90_000) as i64;
        assert!(
            (0..=22).contains(&lag_ms),
            "segment {}: audio {lag_ms} ms late",
            v.0
        );
    }
}

#[test]
fn timestamps_that_jump_back_are_rebased_with_a_discontinuity() {
    // Three hours back, then forty seconds back: neither is refused.
    assert_rebased(&jumping_primary(-3 * 3600 * 1000));
    assert_rebased(&jumping_primary(-40_000));
}

#[test]
fn timestamps_that_jump_forward_past_a_segment_are_rebased_with_a_discontinuity() {
    assert_rebased(&jumping_primary(3 * 3600 * 1000));
    assert_rebased(&jumping_primary(
        i64::from(SegmenterConfig::DEFAULT.segment_max_ms) + 500,
    ));
}

/// Small steps are what they always were: a gap shorter than a segment stays a gap, and a
/// track that pauses on its own (muted audio) resumes where the stream is, not where it left.
#[test]
fn gaps_and_a_track_pausing_on_its_own_are_not_jumps() {
    let (mut h, mut primary) = live_primary(config(), 3_000);
    primary.base_ms += 2_000;
    h.run(&mut [&mut primary], 5_000);
    primary.audio_muted = true;
    h.run(&mut [&mut primary], 18_000);
    primary.audio_muted = false;
    h.run(&mut [&mut primary], 21_000);
    assert_eq!(h.home.timestamp_jumps(), 0);
    let events = h.take();
    assert!(segments(&events, VIDEO_RENDITION).iter().all(|s| !s.2));
    let audio = parts(&events, AUDIO_RENDITION);
    let resumed = audio
        .windows(2)
        .find(|w| w[1].start_ticks > w[0].start_ticks + w[0].duration_ticks + 48_000)
        .expect("the pause");
    // Resumed at 18 s of the clock, 20 s of the encoder's timeline.
    let at_ms = resumed[1].start_ticks * 1000 / 48_000;
    assert!(at_ms.abs_diff(20_000) <= 50, "{at_ms}");
}

/// A primary that stopped sending (its host froze: the server still holds its connection)
/// is taken over by a new primary once it has been silent for `failover_ms`; before that a
/// new primary is refused. At the switch the frozen one is replaced: it is told, and if it
/// wakes, what it sends is not packaged.
#[test]
fn a_new_primary_takes_over_a_stalled_primary() {
    let (mut h, mut primary) = live_primary(config(), 3_000);
    primary.sending = false;
    h.run(&mut [&mut primary], 3_500);
    assert_eq!(h.publish(2, Role::Primary), Err(Refusal::PrimaryTaken));
    h.run(&mut [&mut primary], 3_000 + FAILOVER_MS + 100);
    h.publish(2, Role::Primary).unwrap();
    h.configs(2, &[avc(), aac()]);
    let mut second = Source::new(2, h.now_ms, 0);
    h.run(&mut [&mut primary, &mut second], 7_000);
    let events = h.take();
    assert_eq!(switched_to(&events), [(2, Role::Primary)]);
    assert_eq!(h.home.active(), Some((2, Role::Primary)));
    let replaced: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Replaced { publisher, .. } => Some(*publisher),
            _ => None,
        })
        .collect();
    assert_eq!(replaced, [1], "the frozen primary is told it was replaced");
    let replaced_at = position(&events, |e| matches!(e, HomeEvent::Replaced { .. })).unwrap();
    let switched_at = position(&events, |e| matches!(e, HomeEvent::Switched { .. })).unwrap();
    assert!(replaced_at > switched_at);
    assert_eq!(
        h.home.publisher_count(),
        1,
        "the frozen one is no longer listed"
    );
    let mut parts_before = parts(&events, VIDEO_RENDITION);
    let flagged = segments(&events, VIDEO_RENDITION)
        .into_iter()
        .filter(|s| s.2)
        .count();
    assert_eq!(flagged, 1);
    // The frozen one wakes: its samples are not packaged, nor does it take back.
    primary.sending = true;
    h.run(&mut [&mut primary, &mut second], 9_000);
    let events = h.take();
    assert!(switched_to(&events).is_empty());
    assert_eq!(h.home.active(), Some((2, Role::Primary)));
    parts_before.extend(parts(&events, VIDEO_RENDITION));
    assert_contiguous(&parts_before);
    // Its unpublish (the server closed it) changes nothing; the stream ends with the last.
    h.unpublish(1);
    assert!(!h.take().iter().any(is_ended));
    h.unpublish(2);
    assert!(h.take().iter().any(is_ended));
}

/// A keyframe whose in-band SPS and PPS describe another picture than the sequence header
/// (an encoder that resized without sending one) starts a new header, after a discontinuity;
/// the same parameter sets repeated at later keyframes change nothing more.
#[test]
fn in_band_parameter_sets_of_another_picture_start_a_new_header() {
    let (mut h, mut primary) = live_primary(config(), 2_000);
    h.take();
    let record = common::fixture("avc_360p_high444.avcc");
    let larger = parse_avcc(&record).unwrap();
    let prefixed = |nal: &[u8]| [&(nal.len() as u32).to_be_bytes()[..], nal].concat();
    for n in 0..60u64 {
        h.advance_to(2_000 + n * 1000 / 30);
        let keyframe = n % 30 == 0;
        let mut data = Vec::new();
        if keyframe {
            data.extend(prefixed(&larger.sps[0]));
            data.extend(prefixed(&larger.pps[0]));
        }
        data.extend(prefixed(&[
            if keyframe { 0x65 } else { 0x41 },
            0x88,
            n as u8,
        ]));
        let sample = Sample {
            dts: (2_000 * 90) + n * 3000,
            composition_offset: 0,
            duration: 0,
            keyframe,
            data: Bytes::from(data),
        };
        h.sample(1, TrackKind::Video, sample);
        for (track, sample) in primary.due(h.now_ms) {
            if track == TrackKind::Audio {
                h.sample(1, track, sample);
            }
        }
    }
    h.unpublish(1);
    let events = h.take();
    let inits: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Index(IndexEvent::Init {
                rendition,
                discontinuity,
                ..
            }) => Some((rendition.name.clone(), *discontinuity)),
            _ => None,
        })
        .collect();
    assert_eq!(inits, [(Arc::from(VIDEO_RENDITION), true)]);
    assert_eq!((h.home.info().width, h.home.info().height), (640, 360));
    let video = segments(&events, VIDEO_RENDITION);
    assert_eq!(video.iter().filter(|s| s.2).count(), 1, "{video:?}");
    assert_eq!(
        count(&events, |e| matches!(e, HomeEvent::Rejected { .. })),
        0
    );
}

#[test]
fn the_flv_fixture_plays_through_the_home() {
    let mut h = Harness::new(transcoding());
    h.publish(1, Role::Primary).unwrap();
    let mut demuxer = shardcast_media::Demuxer::new();
    for tag in common::read_flv(&common::fixture("avc_aac.flv")) {
        h.advance_to(u64::from(tag.timestamp_ms));
        let demuxed = match tag.kind {
            common::TagKind::Video => demuxer.handle_video(tag.timestamp_ms, &tag.body),
            common::TagKind::Audio => demuxer.handle_audio(tag.timestamp_ms, &tag.body),
            _ => continue,
        };
        match demuxed.unwrap() {
            shardcast_media::Demuxed::Config(config) => h.configs(1, &[config]),
            shardcast_media::Demuxed::Sample { track, sample } => h.sample(1, track, sample),
            shardcast_media::Demuxed::Nothing => {}
        }
    }
    h.unpublish(1);
    let events = h.take();
    assert_eq!(
        count(&events, |e| matches!(e, HomeEvent::Rejected { .. })),
        0
    );
    assert_contiguous(&parts(&events, VIDEO_RENDITION));
    assert_eq!(
        segments(&events, VIDEO_RENDITION).len(),
        1,
        "2 s: one segment"
    );
    assert_eq!(segments(&events, AUDIO_RENDITION).len(), 1);
    let placed = count(&events, |e| {
        matches!(e, HomeEvent::Transcode(TranscodeEvent::Sample { .. }))
    });
    assert_eq!(placed, 60, "every frame reached the worker");
    assert!(matches!(
        events.last(),
        Some(HomeEvent::Transcode(TranscodeEvent::End { epoch: 0 }))
    ));
}

/// Random calls in random order, with stale and nonsensical inputs: the home never panics
/// (its invariants are checked in debug builds after every call), and the index accepts
/// whatever it emits.
#[test]
fn random_call_sequences_never_panic() {
    let configs = [avc(), avc_without_rate(), aac()];
    let aac_44k =
        TrackConfig::Aac(parse_audio_specific_config(&Bytes::from_static(&[0x12, 0x10])).unwrap());
    // Another seed can be tried with HOME_FUZZ_SEED; the default keeps the test deterministic.
    let seed = std::env::var("HOME_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut rng = common::XorShift(seed.unwrap_or(0x4011_E5EED));
    // Switches, stalls, parts, ends, transcode samples, measured rates, refusals, ends
    // without the rungs: how often each was reached.
    let mut seen = [0u32; 8];
    for round in 0..300 {
        let mut h = Harness::new(HomeConfig {
            publishers_max: 1 + rng.below(4) as usize,
            failover_ms: rng.below(2_000),
            stall_check_ms: rng.below(200),
            transcode_video: rng.below(2) == 0,
            transcode_audio: AudioTranscode {
                from_aac: rng.below(2) == 0,
                from_opus: rng.below(2) == 0,
            },
            transcode_end_wait_ms: rng.below(1_000),
            ll_hls: round % 2 == 0,
            ..config()
        });
        let mut dts = [[0u64; 2]; 6];
        for _ in 0..2_000 {
            let id = rng.below(6) as u32;
            match rng.below(100) {
                0..=2 => {
                    let role = if rng.below(2) == 0 {
                        Role::Primary
                    } else {
                        Role::Backup
                    };
                    let _ = h.publish(id, role);
                }
                3..=5 => {
                    let config = match rng.below(4) {
                        3 => aac_44k.clone(),
                        n => configs[n as usize].clone(),
                    };
                    h.configs(id, &[config]);
                }
                6 => h.unpublish(id),
                7 => {
                    let epoch = rng.below(3);
                    match rng.below(3) {
                        0 => h.home.handle_rung_event(epoch, IndexEvent::Ended),
                        1 => h.home.handle_rung_stats(epoch, vec![RungInfo::default()]),
                        _ => h.home.handle_rung_ended(epoch),
                    }
                    h.pump();
                }
                8..=12 => {
                    // The clock jumps, sometimes backwards (a caller's bug must not panic).
                    let to = match rng.below(4) {
                        0 => h.now_ms.saturating_sub(rng.below(500)),
                        _ => h.now_ms + rng.below(3_000),
                    };
                    h.now_ms = to;
                    h.home.handle_timeout(to);
                    h.pump();
                }
                _ => {
                    let track = if rng.below(3) == 0 {
                        TrackKind::Audio
                    } else {
                        TrackKind::Video
                    };
                    let k = usize::from(track == TrackKind::Audio);
                    let step = match rng.below(20) {
                        0 => u64::MAX / 2,
                        1 => rng.below(1 << 40),
                        2 => 0,
                        _ => rng.below(4_000),
                    };
                    let slot = &mut dts[id as usize][k];
                    *slot = if rng.below(15) == 0 {
                        slot.saturating_sub(rng.below(100_000))
                    } else {
                        slot.saturating_add(step)
                    };
                    let sample = Sample {
                        dts: *slot,
                        composition_offset: rng.below(20_000) as i32 - 10_000,
                        duration: rng.below(2) as u32 * 1024,
                        keyframe: rng.below(10) == 0,
                        data: Bytes::from(vec![0u8; rng.below(2_000) as usize]),
                    };
                    h.now_ms += rng.below(30);
                    h.sample(id, track, sample);
                }
            }
            assert!(h.home.publisher_count() <= h.home.config().publishers_max);
            if h.home.is_finished() {
                assert_eq!(h.home.publisher_count(), 0);
            }
            for event in h.events.drain(..) {
                let k = match event {
                    HomeEvent::Switched { .. } => 0,
                    HomeEvent::Stalled { .. } => 1,
                    HomeEvent::Index(IndexEvent::Part { .. }) => 2,
                    HomeEvent::Index(IndexEvent::Ended) => 3,
                    HomeEvent::Transcode(TranscodeEvent::Sample { .. }) => 4,
                    HomeEvent::FrameRateMeasured { .. } => 5,
                    HomeEvent::Rejected { .. } => 6,
                    HomeEvent::EndedWithoutRungs => 7,
                    _ => continue,
                };
                seen[k] += 1;
            }
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}

#[test]
fn forwarded_samples_follow_the_active_publisher_on_the_stream_s_timeline() {
    let mut h = Harness::new(config());
    h.publish(1, Role::Primary).unwrap();
    h.configs(1, &[avc(), aac()]);
    h.publish(2, Role::Backup).unwrap();
    h.configs(2, &[avc(), aac()]);
    let mut primary = Source::new(1, 0, 0);
    let mut backup = Source::new(2, 0, 600_000);
    h.run(&mut [&mut primary, &mut backup], 1_000);
    let forwarded = |events: &[Event]| count(events, |e| matches!(e, HomeEvent::Forward { .. }));
    assert_eq!(forwarded(&h.take()), 0, "off by default");
    assert!(matches!(
        h.home.forward_configs(),
        [Some(TrackConfig::Avc(_)), Some(TrackConfig::Aac(_))]
    ));

    h.home.set_forward(true);
    h.run(&mut [&mut primary, &mut backup], 3_000);
    primary.sending = false;
    h.run(&mut [&mut primary, &mut backup], 6_000);
    let events = h.take();
    // Every sample of the active publisher, and only those: two seconds of the primary, then
    // the backup from its first keyframe after the stall.
    let video: Vec<&Sample> = events
        .iter()
        .filter_map(|e| match e {
            HomeEvent::Forward {
                track: TrackKind::Video,
                sample,
            } => Some(sample),
            _ => None,
        })
        .collect();
    assert!(
        video.windows(2).all(|w| w[1].dts == w[0].dts + 3000),
        "continuous"
    );
    let switched = position(&events, |e| matches!(e, HomeEvent::Switched { .. })).unwrap();
    let configs = position(&events, |e| matches!(e, HomeEvent::ForwardConfig(_))).unwrap();
    assert!(
        configs < switched,
        "the configurations come before the switch"
    );
    let first_after = events[switched..]
        .iter()
        .find_map(|e| match e {
            HomeEvent::Forward {
                track: TrackKind::Video,
                sample,
            } => Some(sample),
            _ => None,
        })
        .unwrap();
    assert!(first_after.keyframe, "the backup starts at a keyframe");
    assert_eq!(
        count(&events, |e| matches!(e, HomeEvent::ForwardConfig(_))),
        2,
        "video and audio of the backup"
    );

    h.home.set_forward(false);
    h.run(&mut [&mut primary, &mut backup], 7_000);
    assert_eq!(forwarded(&h.take()), 0);
}
