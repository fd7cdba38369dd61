//! Segmenter scenarios on synthetic streams, checked through the events and by parsing every
//! part with the crate's box reader.

mod common;

use bytes::Bytes;
use shardcast_media::cmaf::inspect;
use shardcast_media::codec::{parse_audio_specific_config, parse_avcc};
use shardcast_media::{
    Demuxed, Demuxer, Event, Sample, Segmenter, SegmenterConfig, SegmenterError, TrackConfig,
    TrackKind,
};

const WALL_START_MS: u64 = 1_700_000_000_000;
const FRAME_TICKS: u64 = 3000; // 30 fps at 90 kHz
const AAC_FRAME: u64 = 1024;

fn avc_config(fixture: &str) -> TrackConfig {
    TrackConfig::Avc(parse_avcc(&common::fixture(fixture)).unwrap())
}

fn aac_config() -> TrackConfig {
    TrackConfig::Aac(parse_audio_specific_config(&Bytes::from_static(&[0x11, 0x90])).unwrap())
}

/// Decode order of a 60-frame GOP with two B-frames: I0 P3 B1 B2 P6 B4 B5 … P57 B55 B56 P59
/// B58, as display indices.
fn gop_decode_order() -> Vec<u64> {
    let mut order = vec![0];
    for p in (3..=57).step_by(3) {
        order.extend([p, p - 2, p - 1]);
    }
    order.extend([59, 58]);
    assert_eq!(order.len(), 60);
    order
}

/// `gops` GOPs of 30 fps video with B-frames: decode times from `start_ticks`, presentation
/// two frames later than display order so that every composition offset is positive.
fn video_stream(gops: u64, start_ticks: u64, rng: &mut common::XorShift) -> Vec<Sample> {
    let order = gop_decode_order();
    let mut samples = Vec::new();
    for gop in 0..gops {
        for (decode_index, &display) in order.iter().enumerate() {
            let n = gop * 60 + decode_index as u64;
            let dts = start_ticks + n * FRAME_TICKS;
            let pts = start_ticks + (gop * 60 + display + 2) * FRAME_TICKS;
            let size = 200 + rng.below(800) as usize;
            samples.push(Sample {
                dts,
                composition_offset: (pts - dts) as i32,
                duration: 0,
                keyframe: decode_index == 0,
                data: Bytes::from(vec![n as u8; size]),
            });
        }
    }
    samples
}

fn audio_stream(duration_ticks_90k: u64, start_ticks_48k: u64) -> Vec<Sample> {
    let frames = duration_ticks_90k * 48_000 / 90_000 / AAC_FRAME;
    (0..frames)
        .map(|n| Sample {
            dts: start_ticks_48k + n * AAC_FRAME,
            composition_offset: 0,
            duration: AAC_FRAME as u32,
            keyframe: true,
            data: Bytes::from(vec![0xA0 | (n % 16) as u8; 100]),
        })
        .collect()
}

/// Merges the two tracks into one arrival order, audio arriving `audio_early_ms` ahead of the
/// video with the same timestamp (as encoders send it).
fn interleave(
    video: Vec<Sample>,
    audio: Vec<Sample>,
    audio_early_ms: u64,
) -> Vec<(TrackKind, Sample)> {
    let mut all: Vec<(u64, TrackKind, Sample)> = video
        .into_iter()
        .map(|s| (s.dts * 1000 / 90, TrackKind::Video, s))
        .chain(audio.into_iter().map(|s| {
            let us = s.dts * 1_000_000 / 48_000;
            (
                us.saturating_sub(audio_early_ms * 1000),
                TrackKind::Audio,
                s,
            )
        }))
        .collect();
    all.sort_by_key(|(us, kind, _)| (*us, *kind == TrackKind::Video));
    all.into_iter().map(|(_, kind, s)| (kind, s)).collect()
}

fn run(
    config: SegmenterConfig,
    configs: &[TrackConfig],
    input: Vec<(TrackKind, Sample)>,
) -> (Vec<Event>, Segmenter) {
    let mut segmenter = Segmenter::new(config);
    let mut events = Vec::new();
    for c in configs {
        segmenter.handle_config(c.clone()).unwrap();
    }
    for (kind, sample) in input {
        let wall = WALL_START_MS + sample.dts * 1000 / 90_000 + (sample.dts % 7);
        segmenter.handle_sample(kind, sample, wall).unwrap();
        while let Some(event) = segmenter.poll_event() {
            events.push(event);
        }
    }
    segmenter.handle_end();
    while let Some(event) = segmenter.poll_event() {
        events.push(event);
    }
    (events, segmenter)
}

#[derive(Debug)]
struct PartSeen {
    msn: u64,
    part_index: u32,
    start_dts: u64,
    duration_ticks: u64,
    independent: bool,
    bytes: Bytes,
}

#[derive(Debug, Clone, Copy)]
struct SegmentSeen {
    msn: u64,
    start_dts: u64,
    duration_ticks: u64,
    parts: u32,
    bytes: usize,
    independent: bool,
    discontinuity: bool,
    program_date_time_ms: u64,
}

fn collect(events: &[Event], track: TrackKind) -> (Vec<PartSeen>, Vec<SegmentSeen>) {
    let mut parts = Vec::new();
    let mut segments = Vec::new();
    for event in events {
        match event {
            Event::PartReady {
                track: t,
                msn,
                part_index,
                start_dts,
                duration_ticks,
                independent,
                bytes,
                ..
            } if *t == track => {
                // Parts arrive in order, and a segment's parts before the segment.
                assert!(segments.iter().all(|s: &SegmentSeen| s.msn < *msn));
                parts.push(PartSeen {
                    msn: *msn,
                    part_index: *part_index,
                    start_dts: *start_dts,
                    duration_ticks: *duration_ticks,
                    independent: *independent,
                    bytes: bytes.clone(),
                });
            }
            Event::SegmentReady {
                track: t,
                msn,
                start_dts,
                duration_ticks,
                parts: count,
                bytes,
                independent,
                discontinuity,
                program_date_time_ms,
                ..
            } if *t == track => segments.push(SegmentSeen {
                msn: *msn,
                start_dts: *start_dts,
                duration_ticks: *duration_ticks,
                parts: *count,
                bytes: *bytes,
                independent: *independent,
                discontinuity: *discontinuity,
                program_date_time_ms: *program_date_time_ms,
            }),
            _ => {}
        }
    }
    (parts, segments)
}

/// Checks what must hold for any track: parts contiguous in time and numbering, each part a
/// valid fragment whose samples match the event, segments made of their parts.
fn check_track(parts: &[PartSeen], segments: &[SegmentSeen], kind: TrackKind) {
    let mut next_dts = None;
    let mut sequence = 0;
    for part in parts {
        let fragments = inspect::parse_fragments(&part.bytes).unwrap();
        assert_eq!(fragments.len(), 1);
        let f = &fragments[0];
        assert_eq!(f.base_media_decode_time, part.start_dts);
        assert!(
            f.sequence_number > sequence,
            "mfhd sequence numbers increase"
        );
        sequence = f.sequence_number;
        let sum: u64 = f
            .samples
            .iter()
            .map(|s| u64::from(s.duration.unwrap()))
            .sum();
        assert_eq!(sum, part.duration_ticks);
        let first_sync = match kind {
            TrackKind::Video => f.samples[0].flags == Some(0x0200_0000),
            TrackKind::Audio => true,
        };
        assert_eq!(first_sync, part.independent);
        if let Some(expected) = next_dts {
            assert_eq!(part.start_dts, expected, "parts are contiguous");
        }
        next_dts = Some(part.start_dts + part.duration_ticks);
    }
    for segment in segments {
        let own: Vec<&PartSeen> = parts.iter().filter(|p| p.msn == segment.msn).collect();
        assert_eq!(own.len() as u32, segment.parts);
        assert!(own
            .iter()
            .enumerate()
            .all(|(i, p)| p.part_index == i as u32));
        assert_eq!(own[0].start_dts, segment.start_dts);
        assert_eq!(
            own.iter().map(|p| p.duration_ticks).sum::<u64>(),
            segment.duration_ticks
        );
        assert_eq!(own[0].independent, segment.independent);
        // A segment is styp + its parts, byte for byte.
        let mut bytes = shardcast_media::cmaf::STYP.to_vec();
        for part in &own {
            bytes.extend_from_slice(&part.bytes);
        }
        assert_eq!(bytes.len(), segment.bytes);
        let fragments = inspect::parse_fragments(&bytes).unwrap();
        assert_eq!(fragments.len(), own.len());
    }
}

#[test]
fn thirty_fps_with_b_frames_and_aac() {
    let mut rng = common::XorShift(7);
    let video = video_stream(5, 0, &mut rng);
    let video_span = 5 * 60 * FRAME_TICKS;
    let audio = audio_stream(video_span + 9000, 0);
    let last_audio_dts = audio.last().unwrap().dts;
    let input = interleave(video, audio, 120);
    let (events, segmenter) = run(
        SegmenterConfig::DEFAULT,
        &[avc_config("avc_1080p25_baseline.avcc"), aac_config()],
        input,
    );

    // Both headers first.
    assert!(matches!(
        events[0],
        Event::InitReady {
            track: TrackKind::Video,
            discontinuity: false,
            ..
        }
    ));
    assert!(matches!(
        events[1],
        Event::InitReady {
            track: TrackKind::Audio,
            discontinuity: false,
            ..
        }
    ));

    let (video_parts, video_segments) = collect(&events, TrackKind::Video);
    let (audio_parts, audio_segments) = collect(&events, TrackKind::Audio);
    check_track(&video_parts, &video_segments, TrackKind::Video);
    check_track(&audio_parts, &audio_segments, TrackKind::Audio);

    // The first keyframe's composition offset (2 frames) shifts the decode timeline.
    let shift = 2 * FRAME_TICKS;
    assert_eq!(video_segments.len(), 5);
    for (i, segment) in video_segments.iter().enumerate() {
        assert_eq!(segment.msn, i as u64);
        assert_eq!(segment.start_dts, shift + i as u64 * 60 * FRAME_TICKS);
        assert_eq!(segment.duration_ticks, 60 * FRAME_TICKS, "2 s segments");
        assert_eq!(segment.parts, 4);
        assert!(segment.independent && !segment.discontinuity);
        // The anchor moves only earlier, to the sample that came soonest (the feed's
        // arrival jitter is under 7 ms).
        let behind =
            video_segments[0].program_date_time_ms + 2000 * i as u64 - segment.program_date_time_ms;
        assert!(behind < 7, "segment {i}: {behind} ms");
    }
    // Parts: 15 frames (500 ms) each, independent exactly when they start with a keyframe.
    assert_eq!(video_parts.len(), 20);
    for part in &video_parts {
        assert_eq!(part.duration_ticks, 15 * FRAME_TICKS);
        assert_eq!(part.independent, part.part_index == 0);
    }
    // The keyframe has composition offset 0 after the shift; B-frames are negative.
    let first = &inspect::parse_fragments(&video_parts[0].bytes).unwrap()[0];
    let offsets: Vec<i64> = first.samples[..4]
        .iter()
        .map(|s| s.composition_offset.unwrap())
        .collect();
    assert_eq!(offsets, [0, 6000, -3000, -3000]);
    // Video durations sum to the input span.
    let video_total: u64 = video_segments.iter().map(|s| s.duration_ticks).sum();
    assert_eq!(video_total, video_span);

    // Audio segments carry the same numbers and start within one AAC frame after the video
    // segment with the same number.
    assert_eq!(audio_segments.len(), video_segments.len());
    for (a, v) in audio_segments.iter().zip(&video_segments) {
        assert_eq!(a.msn, v.msn);
        let video_ns = u128::from(v.start_dts) * 1_000_000_000 / 90_000;
        let audio_ns = u128::from(a.start_dts) * 1_000_000_000 / 48_000;
        assert!(
            audio_ns >= video_ns,
            "msn {}: audio starts before video",
            a.msn
        );
        assert!(
            audio_ns - video_ns < 1024 * 1_000_000_000 / 48_000,
            "msn {}",
            a.msn
        );
        assert!(a.independent);
    }
    // Audio parts align with video parts the same way.
    assert_eq!(audio_parts.len(), video_parts.len());
    // Audio durations sum to the span from its first kept frame to the end of its last.
    let audio_total: u64 = audio_segments.iter().map(|s| s.duration_ticks).sum();
    assert_eq!(
        audio_total,
        last_audio_dts + AAC_FRAME - audio_segments[0].start_dts
    );
    // Audio before the first keyframe (at 66.7 ms) was dropped: frames 0 to 3.
    assert_eq!(audio_segments[0].start_dts, 4 * AAC_FRAME);
    assert_eq!(segmenter.stats().samples_dropped, 4);
}

#[test]
fn program_date_time_follows_the_earliest_arrival_after_a_late_start() {
    // An encoder whose first frames arrive 700 ms late, catching up over the first second
    // (as ffmpeg does after connecting), then steady: each segment's date moves to the
    // earliest arrival seen, never later, and settles at the steady offset.
    let mut rng = common::XorShift(7);
    let video = video_stream(5, 0, &mut rng);
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut segments = Vec::new();
    for sample in video {
        let media_ms = sample.dts * 1000 / 90_000;
        let late = 700u64.saturating_sub(media_ms * 7 / 10);
        let wall = WALL_START_MS + media_ms + late;
        segmenter
            .handle_sample(TrackKind::Video, sample, wall)
            .unwrap();
        while let Some(event) = segmenter.poll_event() {
            if let Event::SegmentReady {
                program_date_time_ms,
                ..
            } = event
            {
                segments.push(program_date_time_ms);
            }
        }
    }
    assert!(segments.len() >= 3, "{segments:?}");
    // The first segment's date is its first sample's late arrival.
    assert_eq!(segments[0], WALL_START_MS + 700);
    // Later segments are dated by the steady arrivals: media time on the wall clock.
    let offsets: Vec<i64> = segments
        .iter()
        .enumerate()
        .map(|(i, pdt)| *pdt as i64 - (WALL_START_MS + 2000 * i as u64) as i64)
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[1] <= w[0]),
        "never later: {offsets:?}"
    );
    assert!(
        offsets[2].abs() <= 40,
        "settled near the true offset: {offsets:?}"
    );
}

#[test]
fn audio_only_and_video_only_streams() {
    let audio = audio_stream(10 * 90_000, 0);
    let frames = audio.len() as u64;
    let input = audio.into_iter().map(|s| (TrackKind::Audio, s)).collect();
    let (events, _) = run(SegmenterConfig::DEFAULT, &[aac_config()], input);
    let (parts, segments) = collect(&events, TrackKind::Audio);
    check_track(&parts, &segments, TrackKind::Audio);
    assert!(segments.len() >= 4);
    for segment in &segments[..segments.len() - 1] {
        let ms = segment.duration_ticks * 1000 / 48_000;
        assert!((1990..2030).contains(&ms), "{ms} ms");
    }
    for part in &parts {
        assert!(part.duration_ticks * 1000 / 48_000 <= 501);
    }
    let total: u64 = segments.iter().map(|s| s.duration_ticks).sum();
    assert_eq!(total, frames * AAC_FRAME);

    let mut rng = common::XorShift(3);
    let video = video_stream(3, 0, &mut rng);
    let input = video.into_iter().map(|s| (TrackKind::Video, s)).collect();
    let (events, _) = run(
        SegmenterConfig::DEFAULT,
        &[avc_config("avc_1080p25_baseline.avcc")],
        input,
    );
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    assert_eq!(segments.len(), 3);
    assert!(segments
        .iter()
        .all(|s| s.duration_ticks == 180_000 && s.parts == 4));
}

#[test]
fn codec_change_starts_a_discontinuity() {
    let mut rng = common::XorShift(11);
    let video = video_stream(4, 0, &mut rng);
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut events = Vec::new();
    for (i, sample) in video.into_iter().enumerate() {
        if i == 90 {
            // A new resolution mid-GOP: takes effect at the next keyframe the encoder sends
            // (frame 120); frames until then are dropped.
            segmenter
                .handle_config(avc_config("avc_576p_high10.avcc"))
                .unwrap();
        }
        segmenter
            .handle_sample(TrackKind::Video, sample, WALL_START_MS)
            .unwrap();
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));

    let inits: Vec<bool> = events
        .iter()
        .filter_map(|e| match e {
            Event::InitReady { discontinuity, .. } => Some(*discontinuity),
            _ => None,
        })
        .collect();
    assert_eq!(inits, [false, true]);
    let (parts, segments) = collect(&events, TrackKind::Video);
    // The timeline is contiguous on each side of the discontinuity (dropped frames between).
    let split = parts.iter().position(|p| p.msn == 2).unwrap();
    check_track(&parts[..split], &segments[..2], TrackKind::Video);
    check_track(&parts[split..], &segments[2..], TrackKind::Video);
    let flags: Vec<(u64, bool, bool)> = segments
        .iter()
        .map(|s| (s.msn, s.discontinuity, s.independent))
        .collect();
    // Segment 1 ends at the change (frame 90, a short segment), segment 2 starts the new
    // configuration at frame 120 with a discontinuity.
    assert_eq!(
        flags,
        [
            (0, false, true),
            (1, false, true),
            (2, true, true),
            (3, false, true)
        ]
    );
    assert_eq!(segments[1].duration_ticks, 30 * FRAME_TICKS);
    assert_eq!(segments[2].start_dts, (120 + 2) * FRAME_TICKS);
    assert_eq!(segmenter.stats().samples_dropped, 30);
    // The new header says the new size.
    let init = events
        .iter()
        .filter_map(|e| match e {
            Event::InitReady { init, .. } => Some(init.clone()),
            _ => None,
        })
        .nth(1)
        .unwrap();
    let tkhd = inspect::find(&init, &["moov", "trak", "tkhd"]).unwrap();
    assert_eq!(&tkhd.body[76..84], &[0x02, 0xD0, 0, 0, 0x02, 0x40, 0, 0]);
}

#[test]
fn a_requested_discontinuity_cuts_at_the_next_keyframe_without_a_new_header() {
    let mut rng = common::XorShift(12);
    // Keyframes every 60 frames (2 s at 30 fps).
    let video = video_stream(4, 0, &mut rng);
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut events = Vec::new();
    for (i, sample) in video.into_iter().enumerate() {
        if i == 70 {
            // A backup encoder takes over: same configuration, another timeline.
            segmenter.handle_discontinuity();
        }
        segmenter
            .handle_sample(TrackKind::Video, sample, WALL_START_MS)
            .unwrap();
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    let inits = events
        .iter()
        .filter(|e| matches!(e, Event::InitReady { .. }))
        .count();
    assert_eq!(inits, 1, "no new header for the same configuration");
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    let flags: Vec<(u64, bool)> = segments.iter().map(|s| (s.msn, s.discontinuity)).collect();
    // The request at frame 70 takes effect at the keyframe at frame 120: segment 2 starts
    // there with the flag; nothing is dropped.
    assert_eq!(flags[..3], [(0, false), (1, false), (2, true)]);
    assert!(flags[3..].iter().all(|(_, d)| !d));
    assert_eq!(segmenter.stats().samples_dropped, 0);
}

#[test]
fn caps_force_cuts() {
    // Keyframes every 12 s: segment_max_ms (default 10 s) forces a cut that is not
    // independent.
    let mut rng = common::XorShift(5);
    let mut video = video_stream(6, 0, &mut rng);
    for (i, sample) in video.iter_mut().enumerate() {
        sample.keyframe = i % 360 == 0;
    }
    let input = video.into_iter().map(|s| (TrackKind::Video, s)).collect();
    let (events, segmenter) = run(
        SegmenterConfig::DEFAULT,
        &[avc_config("avc_1080p25_baseline.avcc")],
        input,
    );
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    assert!(segments.iter().all(|s| s.duration_ticks <= 10 * 90_000));
    assert!(!segments[1].independent);
    assert!(segmenter.stats().forced_segment_cuts >= 1);

    // segment_max_bytes: 20 KiB segments of ~600-byte frames.
    let config = SegmenterConfig {
        segment_max_bytes: 20 << 10,
        part_max_samples: 4,
        ..SegmenterConfig::DEFAULT
    };
    let video = video_stream(2, 0, &mut rng);
    let input = video.into_iter().map(|s| (TrackKind::Video, s)).collect();
    let (events, segmenter) = run(config, &[avc_config("avc_1080p25_baseline.avcc")], input);
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    assert!(segments.iter().all(|s| s.bytes <= 20 << 10));
    assert!(parts
        .iter()
        .all(|p| inspect::parse_fragments(&p.bytes).unwrap()[0].samples.len() <= 4));
    let stats = segmenter.stats();
    assert!(
        stats.forced_segment_cuts > 0 && stats.forced_part_cuts > 0,
        "{stats:?}"
    );
}

#[test]
fn a_silent_audio_track_stalls_without_holding_video() {
    let mut rng = common::XorShift(9);
    let video = video_stream(2, 0, &mut rng);
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    segmenter.handle_config(aac_config()).unwrap();
    let mut parts = 0;
    for sample in video {
        segmenter
            .handle_sample(TrackKind::Video, sample, 0)
            .unwrap();
        while let Some(event) = segmenter.poll_event() {
            parts += usize::from(matches!(event, Event::PartReady { .. }));
        }
    }
    // Without handle_end, video still came out: audio was declared stalled after 1 s.
    assert!(parts >= 5, "{parts}");
    assert_eq!(segmenter.stats().stalls, 1);
}

#[test]
fn refused_inputs() {
    let mut segmenter = Segmenter::new(SegmenterConfig {
        segment_max_bytes: 4096,
        ..SegmenterConfig::DEFAULT
    });
    let sample = |dts: u64, size: usize| Sample {
        dts,
        composition_offset: 0,
        duration: 1024,
        keyframe: true,
        data: Bytes::from(vec![0; size]),
    };
    assert_eq!(
        segmenter.handle_sample(TrackKind::Audio, sample(0, 10), 0),
        Err(SegmenterError::NoConfig {
            track: TrackKind::Audio
        })
    );
    segmenter.handle_config(aac_config()).unwrap();
    assert!(matches!(
        segmenter.handle_sample(TrackKind::Audio, sample(0, 5000), 0),
        Err(SegmenterError::SampleTooLarge { .. })
    ));
    segmenter
        .handle_sample(TrackKind::Audio, sample(48_000, 10), 0)
        .unwrap();
    // 10 ms back: absorbed. 1 s back: refused.
    segmenter
        .handle_sample(TrackKind::Audio, sample(47_520, 10), 0)
        .unwrap();
    assert_eq!(segmenter.stats().dts_adjusted, 1);
    assert!(matches!(
        segmenter.handle_sample(TrackKind::Audio, sample(0, 10), 0),
        Err(SegmenterError::DtsBackwards { .. })
    ));
    segmenter.handle_end();
    assert_eq!(
        segmenter.handle_sample(TrackKind::Audio, sample(96_000, 10), 0),
        Err(SegmenterError::Ended)
    );
    assert_eq!(
        segmenter.handle_config(aac_config()),
        Err(SegmenterError::Ended)
    );
    let events: Vec<Event> = std::iter::from_fn(|| segmenter.poll_event()).collect();
    let (parts, segments) = collect(&events, TrackKind::Audio);
    check_track(&parts, &segments, TrackKind::Audio);
    assert_eq!(segments.len(), 1);
}

#[test]
fn invalid_configs_are_refused() {
    let base = SegmenterConfig::DEFAULT;
    let bad = [
        SegmenterConfig {
            part_target_ms: 0,
            ..base
        },
        SegmenterConfig {
            part_target_ms: 3000,
            ..base
        },
        SegmenterConfig {
            segment_max_ms: 1000,
            ..base
        },
        SegmenterConfig {
            segment_max_bytes: 1 << 30,
            ..base
        },
        SegmenterConfig {
            part_max_samples: 0,
            ..base
        },
    ];
    for config in bad {
        assert!(config.validate().is_err(), "{config:?}");
    }
    assert_eq!(base.validate(), Ok(()));
}

/// RTMP timestamps that wrap past 2^32 ms, through the demuxer into the segmenter: decode
/// times keep increasing and the parts stay contiguous across the wrap.
#[test]
fn timestamps_unwrap_across_two_to_the_32() {
    let record = common::fixture("avc_1080p25_baseline.avcc");
    let mut demuxer = Demuxer::new();
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    let Demuxed::Config(config) = demuxer
        .handle_video(0, &common::legacy_avc_sequence_header(&record))
        .unwrap()
    else {
        panic!("no config");
    };
    segmenter.handle_config(config).unwrap();
    let start_ms: u32 = u32::MAX - 2500;
    let mut events = Vec::new();
    for n in 0..180u32 {
        let keyframe = n % 60 == 0;
        let nal_type = if keyframe { 0x65 } else { 0x41 };
        let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.extend_from_slice(&[0, 0, 0, 4, nal_type, 0x88, 0x84, n as u8]);
        let timestamp_ms = start_ms.wrapping_add(n * 100 / 3);
        match demuxer
            .handle_video(timestamp_ms, &Bytes::from(body))
            .unwrap()
        {
            Demuxed::Sample { track, sample } => {
                assert_eq!(sample.keyframe, keyframe);
                segmenter.handle_sample(track, sample, 0).unwrap();
            }
            other => panic!("{other:?}"),
        }
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[0].start_dts, u64::from(start_ms) * 90);
    let end = segments[2].start_dts + segments[2].duration_ticks;
    assert!(end > (1u64 << 32) * 90, "past the wrap");
    // The last sample's duration is estimated (no sample follows it) from steps of 33 or
    // 34 ms: the span is 180 frames to within the 1 ms precision of RTMP timestamps.
    let span = end - segments[0].start_dts;
    assert!(span.abs_diff(180 * 3000) <= 90, "span {span}");
}

/// What ffmpeg 5.1 publishes with `-output_ts_offset 4294961` (seen on the wire): its FLV
/// muxer keeps 31 bits of each timestamp, so 6.3 s in, both tracks wrap from 2147483645 ms
/// to a few milliseconds (2^31 ms, not RTMP's 2^32). Audio and video, through the demuxer into
/// the segmenter: nothing is refused after the wrap and both tracks cover the whole 14 s.
#[test]
fn ffmpeg_timestamps_unwrap_across_two_to_the_31() {
    const OFFSET_MS: u64 = 4_294_961_000;
    // ffmpeg's FLV muxer: `avio_wb24(ts & 0xFFFFFF); avio_w8((ts >> 24) & 0x7F)`.
    let flv_ms = |ms: u64| (ms & 0x7FFF_FFFF) as u32;
    let record = common::fixture("avc_1080p25_baseline.avcc");
    let mut demuxer = Demuxer::new();
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    for config in [
        demuxer.handle_video(0, &common::legacy_avc_sequence_header(&record)),
        demuxer.handle_audio(0, &Bytes::from_static(&[0xAF, 0, 0x11, 0x90])),
    ] {
        let Ok(Demuxed::Config(config)) = config else {
            panic!("{config:?}");
        };
        segmenter.handle_config(config).unwrap();
    }
    // 14 s: 30 fps video with a keyframe every 2 s, AAC frames of 1024 samples at 48 kHz
    // (the first one primed 1024 samples early), in ffmpeg's interleaving (by decode time).
    let mut messages: Vec<(u64, TrackKind, Bytes)> = Vec::new();
    for n in 0..420u64 {
        let keyframe = n % 60 == 0;
        let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.extend_from_slice(&[0, 0, 0, 4, if keyframe { 0x65 } else { 0x41 }, 0x88, 0x84]);
        body.push(n as u8);
        let ms = OFFSET_MS + (n * 1000 + 15) / 30;
        messages.push((ms, TrackKind::Video, Bytes::from(body)));
    }
    for n in 0..657u64 {
        let ms = OFFSET_MS + (n * 1024 * 1000 + 24_000) / 48_000 - 21;
        let body = Bytes::from(vec![0xAF, 1, 0x21, n as u8]);
        messages.push((ms, TrackKind::Audio, body));
    }
    messages.sort_by_key(|(ms, track, _)| (*ms, *track == TrackKind::Video));
    assert!(messages.iter().any(|(ms, ..)| flv_ms(*ms) < 100), "wraps");
    let mut events = Vec::new();
    for (ms, track, body) in messages {
        let demuxed = match track {
            TrackKind::Video => demuxer.handle_video(flv_ms(ms), &body),
            TrackKind::Audio => demuxer.handle_audio(flv_ms(ms), &body),
        };
        let Ok(Demuxed::Sample { track, sample }) = demuxed else {
            panic!("{demuxed:?}");
        };
        if let Err(error) = segmenter.handle_sample(track, sample, WALL_START_MS + ms) {
            panic!("{track} at {} ms (sent as {}): {error}", ms, flv_ms(ms));
        }
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    for (track, timescale) in [(TrackKind::Video, 90_000), (TrackKind::Audio, 48_000)] {
        let (parts, segments) = collect(&events, track);
        check_track(&parts, &segments, track);
        let first = segments.first().unwrap();
        let last = segments.last().unwrap();
        let span_ms = (last.start_dts + last.duration_ticks - first.start_dts) * 1000 / timescale;
        assert!(span_ms.abs_diff(14_000) <= 50, "{track}: {span_ms} ms");
        assert_eq!(segments.len(), 7, "{track}: {segments:?}");
    }
}

/// A part is closed right after the sample that fills it, not when the next sample arrives.
#[test]
fn a_full_part_closes_after_its_last_sample() {
    let mut rng = common::XorShift(11);
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut events = Vec::new();
    let mut parts_before = 0;
    for (n, sample) in video_stream(2, 0, &mut rng).into_iter().enumerate() {
        segmenter
            .handle_sample(TrackKind::Video, sample, 0)
            .unwrap();
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
        let parts = events
            .iter()
            .filter(|e| matches!(e, Event::PartReady { .. }))
            .count();
        if (n + 1) % 15 == 0 {
            assert_eq!(parts, (n + 1) / 15, "frame {n} fills a part: it is out");
        } else {
            assert_eq!(parts, parts_before, "frame {n} closes nothing");
        }
        parts_before = parts;
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    assert_eq!(parts.len(), 8);
    assert!(parts.iter().all(|p| p.duration_ticks == 15 * FRAME_TICKS));
    assert_eq!(segments.len(), 2);
    assert_eq!(segmenter.stats().early_part_cuts, 8);
}

/// With decode times jittered by up to ±2 ms (a publisher's clock in RTMP's milliseconds),
/// parts closed early still tile the timeline (the next sample is moved to where the estimate
/// ended, its presentation time kept), and most parts still close on their last sample.
#[test]
fn early_parts_stay_contiguous_under_jitter() {
    let mut rng = common::XorShift(12);
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut events = Vec::new();
    let mut presentation = Vec::new();
    for (n, mut sample) in video_stream(4, 0, &mut rng).into_iter().enumerate() {
        let pts = sample.dts as i64 + i64::from(sample.composition_offset);
        if n > 0 {
            sample.dts = (sample.dts as i64 + rng.below(360) as i64 - 180) as u64;
            sample.composition_offset = (pts - sample.dts as i64) as i32;
        }
        presentation.push(pts);
        segmenter
            .handle_sample(TrackKind::Video, sample, 0)
            .unwrap();
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    assert_eq!(segments.len(), 4);
    assert!(
        segmenter.stats().early_part_cuts >= 12,
        "{:?}",
        segmenter.stats()
    );
    // Every frame keeps its presentation time (the decode shift is constant).
    let mut seen = Vec::new();
    for part in &parts {
        for f in inspect::parse_fragments(&part.bytes).unwrap() {
            let mut dts = f.base_media_decode_time as i64;
            for s in f.samples {
                seen.push(dts + s.composition_offset.unwrap());
                dts += i64::from(s.duration.unwrap());
            }
        }
    }
    let shift = seen[0] - presentation[0];
    let shifted: Vec<i64> = presentation.iter().map(|p| p + shift).collect();
    assert_eq!(seen, shifted);
}

#[test]
fn a_gap_in_the_frames_does_not_become_the_usual_frame_duration() {
    // 30 fps without B-frames, a keyframe every 2 s, and 7 frames missing once (a dropped
    // burst, or a transcode thread that skipped ahead): the gap lasts 233 ms in its part, and
    // the parts after it hold as many frames as before, contiguous, in 2 s segments.
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut events = Vec::new();
    let mut frame = 0u64;
    for n in 0..300u64 {
        if n == 70 {
            frame += 7;
        }
        let sample = Sample {
            dts: frame * FRAME_TICKS,
            composition_offset: 0,
            duration: 0,
            keyframe: frame.is_multiple_of(60),
            data: Bytes::from(vec![n as u8; 300]),
        };
        let wall = WALL_START_MS + frame * 1000 / 30;
        segmenter
            .handle_sample(TrackKind::Video, sample, wall)
            .unwrap();
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
        frame += 1;
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    let (parts, segments) = collect(&events, TrackKind::Video);
    check_track(&parts, &segments, TrackKind::Video);
    let last = parts.last().unwrap();
    assert_eq!(
        last.start_dts + last.duration_ticks,
        frame * FRAME_TICKS,
        "no overlap"
    );
    // Parts of the first segment (before the gap) set how many frames a part holds.
    let usual = parts[0].duration_ticks / FRAME_TICKS;
    assert!(usual > 1, "{parts:?}");
    let after_gap: Vec<u64> = (parts.iter())
        .filter(|p| p.start_dts >= 120 * FRAME_TICKS)
        .map(|p| p.duration_ticks / FRAME_TICKS)
        .collect();
    let whole = &after_gap[..after_gap.len() - 1];
    assert!(whole.iter().all(|&f| f == usual), "{usual}: {after_gap:?}");
    for s in &segments[..segments.len() - 1] {
        assert_eq!(s.duration_ticks, 60 * FRAME_TICKS, "{segments:?}");
    }
}

/// A follower (a transcoded rung) fed from the source's placed video samples cuts its segments
/// where the source did, with the same numbers and the same start times, even when its input
/// has no B-frames and its own keyframes would not have chosen those cuts.
#[test]
fn a_follower_cuts_where_the_source_cut() {
    let mut rng = common::XorShift(21);
    let mut source = Segmenter::new(SegmenterConfig::DEFAULT);
    source.set_report_placed_video(true);
    source
        .handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut source_events = Vec::new();
    for sample in video_stream(4, 0, &mut rng) {
        source
            .handle_sample(TrackKind::Video, sample, WALL_START_MS)
            .unwrap();
        source_events.extend(std::iter::from_fn(|| source.poll_event()));
    }
    source.handle_end();
    source_events.extend(std::iter::from_fn(|| source.poll_event()));

    let placed: Vec<(Sample, u64, bool, bool)> = source_events
        .iter()
        .filter_map(|e| match e {
            Event::Placed {
                track: TrackKind::Video,
                sample,
                msn,
                segment_start,
                discontinuity,
            } => Some((sample.clone(), *msn, *segment_start, *discontinuity)),
            _ => None,
        })
        .collect();
    assert_eq!(placed.len(), 4 * 60);
    let starts: Vec<(u64, u64)> = placed
        .iter()
        .filter(|p| p.2)
        .map(|p| (p.1, p.0.dts))
        .collect();
    let (_, source_segments) = collect(&source_events, TrackKind::Video);
    assert_eq!(
        starts,
        source_segments
            .iter()
            .map(|s| (s.msn, s.start_dts))
            .collect::<Vec<_>>(),
        "segment starts are reported on the samples that start them"
    );
    assert!(
        placed.iter().all(|p| !p.2 || p.0.keyframe),
        "segments start on keyframes"
    );

    // The rung: the same pictures in presentation order without B-frames, a keyframe on every
    // source keyframe, and a keyframe every 20 frames more that must not cut a segment.
    let mut rung = Segmenter::new(SegmenterConfig::DEFAULT);
    rung.set_follower();
    rung.handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let mut pictures: Vec<(u64, bool, Option<u64>)> = placed
        .iter()
        .map(|(s, msn, start, _)| {
            let pts = (s.dts as i64 + i64::from(s.composition_offset)) as u64;
            (pts, s.keyframe, start.then_some(*msn))
        })
        .collect();
    pictures.sort_by_key(|p| p.0);
    let mut rung_events = Vec::new();
    for (n, (pts, keyframe, start)) in pictures.into_iter().enumerate() {
        if let Some(msn) = start {
            rung.start_segment(msn, false);
        }
        let sample = Sample {
            dts: pts,
            composition_offset: 0,
            duration: 0,
            keyframe: keyframe || n % 20 == 0,
            data: Bytes::from(vec![n as u8; 300]),
        };
        rung.handle_sample(TrackKind::Video, sample, WALL_START_MS)
            .unwrap();
        rung_events.extend(std::iter::from_fn(|| rung.poll_event()));
    }
    rung.handle_end();
    rung_events.extend(std::iter::from_fn(|| rung.poll_event()));
    let (rung_parts, rung_segments) = collect(&rung_events, TrackKind::Video);
    check_track(&rung_parts, &rung_segments, TrackKind::Video);
    let shape = |segments: &[SegmentSeen]| -> Vec<(u64, u64, u64)> {
        segments
            .iter()
            .map(|s| (s.msn, s.start_dts, s.duration_ticks))
            .collect()
    };
    assert_eq!(shape(&rung_segments), shape(&source_segments));
    assert_eq!(rung.stats().follower_misaligned, 0);
}

/// A follower whose header changes right where a segment is forced to start numbers that
/// segment as asked: the change's own cut and the forced start are one cut, not two.
#[test]
fn a_follower_header_change_at_a_forced_start_keeps_the_numbering() {
    let mut rung = Segmenter::new(SegmenterConfig::DEFAULT);
    rung.set_follower();
    rung.handle_config(avc_config("avc_1080p25_baseline.avcc"))
        .unwrap();
    let frame = |n: u64, keyframe: bool| Sample {
        dts: n * FRAME_TICKS,
        composition_offset: 0,
        duration: 0,
        keyframe,
        data: Bytes::from(vec![n as u8; 200]),
    };
    let mut events = Vec::new();
    for n in 0..120 {
        if n % 60 == 0 {
            rung.start_segment(n / 60, false);
        }
        if n == 60 {
            // A new encoder (another header) for the second segment.
            rung.handle_config(avc_config("avc_360p_high444.avcc"))
                .unwrap();
        }
        rung.handle_sample(TrackKind::Video, frame(n, n % 60 == 0), WALL_START_MS)
            .unwrap();
        events.extend(std::iter::from_fn(|| rung.poll_event()));
    }
    rung.handle_end();
    events.extend(std::iter::from_fn(|| rung.poll_event()));
    let (_, segments) = collect(&events, TrackKind::Video);
    let numbers: Vec<(u64, bool)> = segments.iter().map(|s| (s.msn, s.discontinuity)).collect();
    assert_eq!(numbers, [(0, false), (1, true)]);
    assert_eq!(rung.stats().follower_misaligned, 0);
}

#[test]
fn the_end_of_the_64_bit_timeline_is_refused_not_given_zero_durations() {
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    segmenter.handle_config(aac_config()).unwrap();
    let frame = |dts: u64| Sample {
        dts,
        composition_offset: 0,
        duration: AAC_FRAME as u32,
        keyframe: true,
        data: Bytes::from_static(&[0xA0; 8]),
    };
    segmenter
        .handle_sample(TrackKind::Audio, frame(u64::MAX - 1), WALL_START_MS)
        .unwrap();
    segmenter
        .handle_sample(TrackKind::Audio, frame(u64::MAX), WALL_START_MS)
        .unwrap();
    // Nothing can follow the last tick: not even the same decode time moved forward.
    assert_eq!(
        segmenter.handle_sample(TrackKind::Audio, frame(u64::MAX), WALL_START_MS),
        Err(SegmenterError::DtsBackwards {
            track: TrackKind::Audio,
            previous: u64::MAX,
            dts: u64::MAX,
        })
    );
    segmenter.handle_end();
    let mut parts = 0;
    while let Some(event) = segmenter.poll_event() {
        if let Event::PartReady { bytes, .. } = event {
            let fragments = inspect::parse_fragments(&bytes).unwrap();
            assert!(fragments[0].samples.iter().all(|s| s.duration.unwrap() > 0));
            parts += 1;
        }
    }
    assert_eq!(parts, 1);
}
