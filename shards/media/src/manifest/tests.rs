//! Golden text and structural checks for the writers, over small hand-built indexes.

use super::*;

const VIDEO_TIMESCALE: u32 = 90_000;
const AUDIO_TIMESCALE: u32 = 48_000;
const T0_MS: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

/// An index for one rendition, owning what a view borrows.
struct Index {
    info: RenditionInfo<'static>,
    segments: Vec<SegmentView>,
    parts: Vec<PartView>,
    open: Option<OpenSegment>,
    discontinuity_sequence: u64,
}

impl Index {
    fn view(&self) -> RenditionView<'_> {
        RenditionView {
            info: self.info,
            segments: Slices::from(&self.segments),
            parts: Slices::from(&self.parts),
            open_segment: self.open,
            discontinuity_sequence: self.discontinuity_sequence,
        }
    }
}

fn video(
    name: &'static str,
    width: u32,
    height: u32,
    bandwidth_bps: u64,
) -> RenditionInfo<'static> {
    RenditionInfo {
        name,
        kind: RenditionKind::Video {
            width,
            height,
            frame_rate: FrameRate::fps(30),
        },
        codecs: "avc1.64001f",
        bandwidth_bps,
        average_bandwidth_bps: bandwidth_bps * 4 / 5,
        timescale: VIDEO_TIMESCALE,
        epoch_ticks: 0,
    }
}

fn audio(name: &'static str) -> RenditionInfo<'static> {
    RenditionInfo {
        name,
        kind: RenditionKind::Audio {
            sample_rate_hz: 48_000,
            channels: 2,
        },
        codecs: "mp4a.40.2",
        bandwidth_bps: 132_000,
        average_bandwidth_bps: 128_000,
        timescale: AUDIO_TIMESCALE,
        epoch_ticks: 0,
    }
}

/// `count` back-to-back segments from `first_msn`, each `duration_ticks` long, starting at
/// media time `first_msn * duration_ticks`, with wall times from `T0_MS` at msn 0.
fn segments(first_msn: u64, count: u64, duration_ticks: u64, timescale: u32) -> Vec<SegmentView> {
    (first_msn..first_msn + count)
        .map(|msn| SegmentView {
            msn,
            start_ticks: msn * duration_ticks,
            duration_ticks,
            program_date_time_ms: Some(T0_MS + msn * duration_ticks * 1000 / u64::from(timescale)),
            discontinuity: false,
            gap: false,
            init_version: 0,
        })
        .collect()
}

/// `per_segment` equal parts for each msn in `msns`, the first of each independent.
fn parts(msns: std::ops::Range<u64>, per_segment: u32, duration_ticks: u64) -> Vec<PartView> {
    msns.flat_map(|msn| {
        (0..per_segment).map(move |index| PartView {
            msn,
            index,
            duration_ticks,
            independent: index == 0,
        })
    })
    .collect()
}

fn live(part_target_ms: Option<u32>) -> StreamFacts {
    StreamFacts {
        target_duration_s: 2,
        part_target_ms,
        ended: false,
    }
}

fn media_playlist(
    stream: &StreamFacts,
    index: &Index,
    all: &[RenditionView<'_>],
    query: Option<&str>,
) -> String {
    let mut out = String::new();
    let query = query.map(|q| UriQuery::new(q).expect("test query is valid"));
    write_media_playlist(&mut out, stream, &index.view(), all, query);
    out
}

#[test]
fn plain_hls_golden() {
    let mut segs = segments(10, 3, 180_000, VIDEO_TIMESCALE);
    segs[2].duration_ticks = 180_180;
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: segs,
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    let got = media_playlist(&live(None), &index, &[], None);
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:40.000Z
#EXTINF:2.000,
10.m4s
#EXTINF:2.000,
11.m4s
#EXTINF:2.002,
12.m4s
";
    assert_eq!(got, want);
    check_media_structure(&got);
}

/// Video `source` with segments 10..=13 and the open segment 14 (two parts published), audio
/// one part further along; parts are kept from segment 11 on.
fn ll_indexes() -> (Index, Index) {
    let source = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: segments(10, 4, 180_000, VIDEO_TIMESCALE),
        parts: parts(11..15, 4, 45_000)
            .into_iter()
            .filter(|p| p.msn < 14 || p.index < 2)
            .collect(),
        open: Some(OpenSegment {
            msn: 14,
            discontinuity: false,
            init_version: 0,
            program_date_time_ms: Some(T0_MS + 28_000),
        }),
        discontinuity_sequence: 0,
    };
    let sound = Index {
        info: audio("audio"),
        segments: segments(10, 4, 96_000, AUDIO_TIMESCALE),
        parts: parts(11..15, 4, 24_000)
            .into_iter()
            .filter(|p| p.msn < 14 || p.index < 3)
            .collect(),
        open: Some(OpenSegment {
            msn: 14,
            discontinuity: false,
            init_version: 0,
            program_date_time_ms: Some(T0_MS + 28_000),
        }),
        discontinuity_sequence: 0,
    };
    (source, sound)
}

#[test]
fn ll_hls_golden() {
    let (source, sound) = ll_indexes();
    let all = [source.view(), sound.view()];
    let got = media_playlist(&live(Some(500)), &source, &all, Some("token=abc"));
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,HOLD-BACK=6.000
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4?token=abc\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:40.000Z
#EXTINF:2.000,
10.m4s?token=abc
#EXTINF:2.000,
11.m4s?token=abc
#EXT-X-PART:DURATION=0.500,URI=\"12.0.m4s?token=abc\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"12.1.m4s?token=abc\"
#EXT-X-PART:DURATION=0.500,URI=\"12.2.m4s?token=abc\"
#EXT-X-PART:DURATION=0.500,URI=\"12.3.m4s?token=abc\"
#EXTINF:2.000,
12.m4s?token=abc
#EXT-X-PART:DURATION=0.500,URI=\"13.0.m4s?token=abc\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"13.1.m4s?token=abc\"
#EXT-X-PART:DURATION=0.500,URI=\"13.2.m4s?token=abc\"
#EXT-X-PART:DURATION=0.500,URI=\"13.3.m4s?token=abc\"
#EXTINF:2.000,
13.m4s?token=abc
#EXT-X-PART:DURATION=0.500,URI=\"14.0.m4s?token=abc\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"14.1.m4s?token=abc\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.2.m4s?token=abc\"
#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8?token=abc\",LAST-MSN=14,LAST-PART=2
";
    assert_eq!(got, want);
    check_media_structure(&got);
}

#[test]
fn ll_hls_preload_hint_for_a_segment_without_parts_yet() {
    let (mut source, _) = ll_indexes();
    source.parts.retain(|p| p.msn < 14);
    source.open = None;
    let got = media_playlist(&live(Some(500)), &source, &[], None);
    assert!(
        got.ends_with("13.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.m4s\"\n"),
        "{got}"
    );
    check_media_structure(&got);
}

#[test]
fn ended_with_discontinuity_gap_and_date_golden() {
    let mut segs = segments(20, 4, 180_000, VIDEO_TIMESCALE);
    // A failover at 21: new init, wall clock 10 s later, media time rebased to continue.
    segs[1].discontinuity = true;
    segs[1].program_date_time_ms = Some(T0_MS + 52_000);
    for s in &mut segs[1..] {
        s.init_version = 1;
    }
    segs[2].gap = true;
    // The first listed segment's own discontinuity is only counted, not written.
    segs[0].discontinuity = true;
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: segs,
        parts: parts(22..24, 4, 45_000),
        open: Some(OpenSegment {
            msn: 24,
            discontinuity: false,
            init_version: 1,
            program_date_time_ms: None,
        }),
        discontinuity_sequence: 3,
    };
    let stream = StreamFacts {
        ended: true,
        ..live(Some(500))
    };
    let got = media_playlist(&stream, &index, &[], None);
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,HOLD-BACK=6.000
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:20
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:14:00.000Z
#EXTINF:2.000,
20.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init.mp4?v=1\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:14:12.000Z
#EXTINF:2.000,
21.m4s
#EXT-X-GAP
#EXTINF:2.000,
22.m4s
#EXT-X-PART:DURATION=0.500,URI=\"23.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI=\"23.1.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"23.2.m4s\"
#EXT-X-PART:DURATION=0.500,URI=\"23.3.m4s\"
#EXTINF:2.000,
23.m4s
#EXT-X-ENDLIST
";
    assert_eq!(got, want);
    check_media_structure(&got);
}

#[test]
fn open_segment_after_a_discontinuity_opens_with_its_tags() {
    let (mut source, _) = ll_indexes();
    source.open = Some(OpenSegment {
        msn: 14,
        discontinuity: true,
        init_version: 2,
        program_date_time_ms: Some(T0_MS + 99_000),
    });
    let got = media_playlist(&live(Some(500)), &source, &[], None);
    assert!(
        got.contains(
            "13.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4?v=2\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:14:59.000Z\n\
             #EXT-X-PART:DURATION=0.500,URI=\"14.0.m4s\",INDEPENDENT=YES\n"
        ),
        "{got}"
    );
    check_media_structure(&got);
}

#[test]
fn init_query_and_token_combine() {
    let mut segs = segments(0, 1, 180_000, VIDEO_TIMESCALE);
    segs[0].init_version = 7;
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: segs,
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    let got = media_playlist(&live(None), &index, &[], Some("?token=a$b"));
    assert!(
        got.contains("#EXT-X-MAP:URI=\"init.mp4?v=7&token=a$b\"\n"),
        "{got}"
    );
}

#[test]
fn empty_window_is_still_a_valid_playlist() {
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: Vec::new(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    let got = media_playlist(&live(Some(500)), &index, &[], None);
    assert!(got.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{got}");
    assert!(
        got.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"0.0.m4s\"\n"),
        "{got}"
    );
    check_media_structure(&got);
}

/// A long window of variable GOPs (1.5 s to 2.4 s) with parts everywhere, rolled forward.
#[test]
fn structure_over_a_long_variable_window() {
    let stream = StreamFacts {
        target_duration_s: 3,
        part_target_ms: Some(500),
        ended: false,
    };
    let mut segs = Vec::new();
    let mut all_parts = Vec::new();
    let mut start = 0;
    for msn in 500..800u64 {
        let part_count = 3 + (msn % 3) as u32; // 3..=5 parts of 0.48 s, the last shorter
        let mut duration = 0;
        for index in 0..part_count {
            let d = if index + 1 == part_count {
                21_600
            } else {
                43_200
            };
            all_parts.push(PartView {
                msn,
                index,
                duration_ticks: d,
                independent: index == 0,
            });
            duration += d;
        }
        segs.push(SegmentView {
            msn,
            start_ticks: start,
            duration_ticks: duration,
            program_date_time_ms: Some(T0_MS + start / 90),
            discontinuity: msn % 97 == 0,
            gap: false,
            init_version: 0,
        });
        start += duration;
    }
    all_parts.push(PartView {
        msn: 800,
        index: 0,
        duration_ticks: 43_200,
        independent: true,
    });
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: segs,
        parts: all_parts,
        open: Some(OpenSegment {
            msn: 800,
            discontinuity: false,
            init_version: 0,
            program_date_time_ms: None,
        }),
        discontinuity_sequence: 5,
    };
    let got = media_playlist(&stream, &index, &[], Some("token=t"));
    let summary = check_media_structure(&got);
    assert_eq!(summary.media_sequence, 500);
    assert_eq!(summary.segments, 300);
    assert!(summary.parts_listed > 0);
}

/// What [`check_media_structure`] counted.
struct Summary {
    media_sequence: u64,
    segments: u64,
    parts_listed: u64,
}

/// Structural rules every media playlist must keep, read back from the text:
/// TARGETDURATION ≥ every EXTINF rounded; PART-HOLD-BACK ≥ 3 × PART-TARGET; HOLD-BACK ≥ 3 ×
/// TARGETDURATION; parts only within the last 3 target durations; part durations ≤ the part
/// target; MEDIA-SEQUENCE is the first segment's msn and msns follow on.
fn check_media_structure(text: &str) -> Summary {
    fn attr<'t>(line: &'t str, name: &str) -> Option<&'t str> {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
    fn ms(decimal: &str) -> u64 {
        let (whole, frac) = decimal.split_once('.').unwrap_or((decimal, "0"));
        let frac = format!("{frac:0<3}");
        whole.parse::<u64>().unwrap() * 1000 + frac[..3].parse::<u64>().unwrap()
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"#EXTM3U"));
    assert!(text.ends_with('\n'));
    for line in &lines {
        assert!(!line.is_empty() && !line.contains('\r'), "line {line:?}");
    }
    let value = |tag: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(tag).and_then(|r| r.strip_prefix(':')))
    };
    let target_ms = value("#EXT-X-TARGETDURATION")
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1000;
    let media_sequence: u64 = value("#EXT-X-MEDIA-SEQUENCE").unwrap().parse().unwrap();
    let part_target_ms = value("#EXT-X-PART-INF").map(|v| ms(attr(v, "PART-TARGET").unwrap()));
    if let Some(part_target_ms) = part_target_ms {
        let control = value("#EXT-X-SERVER-CONTROL").unwrap();
        assert!(ms(attr(control, "PART-HOLD-BACK").unwrap()) >= 3 * part_target_ms);
        assert!(ms(attr(control, "HOLD-BACK").unwrap()) >= 3 * target_ms);
        assert!(!control.contains("CAN-SKIP-UNTIL"));
    }

    // Walk the body, keeping the playlist offset at which each listed part starts.
    let mut msn = media_sequence;
    let mut segments = 0;
    let mut segment_start_ms = 0;
    let mut part_cursor_ms = 0;
    let mut part_starts_ms = Vec::new();
    let mut pending_duration = None;
    for line in &lines {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = ms(rest.strip_suffix(',').unwrap());
            assert!(
                (d + 500) / 1000 * 1000 <= target_ms,
                "EXTINF {d} ms > target {target_ms} ms"
            );
            pending_duration = Some(d);
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let d = ms(attr(rest, "DURATION").unwrap());
            assert!(d <= part_target_ms.unwrap(), "part {d} ms over target");
            part_starts_ms.push(part_cursor_ms);
            part_cursor_ms += d;
        } else if !line.starts_with('#') {
            let d = pending_duration.take().expect("URI after EXTINF");
            let name = line.split('?').next().unwrap();
            assert_eq!(name, format!("{msn}.m4s"));
            msn += 1;
            segments += 1;
            segment_start_ms += d;
            part_cursor_ms = segment_start_ms;
        }
    }
    let end_ms = segment_start_ms.max(part_cursor_ms);
    for start in &part_starts_ms {
        assert!(
            end_ms - start <= 3 * target_ms,
            "a part starts {} ms from the end, over 3 target durations",
            end_ms - start
        );
    }
    Summary {
        media_sequence,
        segments,
        parts_listed: part_starts_ms.len() as u64,
    }
}

#[test]
fn multivariant_with_audio_and_rungs_golden() {
    let infos = [
        video("480p", 854, 480, 1_500_000),
        audio("audio"),
        RenditionInfo {
            kind: RenditionKind::Video {
                width: 1920,
                height: 1080,
                frame_rate: FrameRate {
                    num: 30_000,
                    den: 1001,
                },
            },
            codecs: "hvc1.1.6.L120.B0",
            ..video("source", 1920, 1080, 6_000_000)
        },
        video("720p", 1280, 720, 3_000_000),
    ];
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &infos, Some(UriQuery::new("token=abc").unwrap()));
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8?token=abc\"
#EXT-X-STREAM-INF:BANDWIDTH=6132000,AVERAGE-BANDWIDTH=4928000,CODECS=\"hvc1.1.6.L120.B0,mp4a.40.2\",RESOLUTION=1920x1080,FRAME-RATE=29.970,AUDIO=\"audio\"
source/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=3132000,AVERAGE-BANDWIDTH=2528000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"
720p/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=1632000,AVERAGE-BANDWIDTH=1328000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=854x480,FRAME-RATE=30.000,AUDIO=\"audio\"
480p/index.m3u8?token=abc
";
    assert_eq!(got, want);
}

#[test]
fn an_opus_rendition_gets_its_own_group_and_variants() {
    let infos = [
        video("source", 1280, 720, 3_000_000),
        audio("audio"),
        RenditionInfo {
            codecs: "opus",
            bandwidth_bps: 66_000,
            average_bandwidth_bps: 64_000,
            ..audio("audio-opus")
        },
        video("360p", 640, 360, 700_000),
    ];
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &infos, None);
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-opus\",NAME=\"audio-opus\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-opus/index.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=3132000,AVERAGE-BANDWIDTH=2528000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"
source/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=832000,AVERAGE-BANDWIDTH=688000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"audio\"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3066000,AVERAGE-BANDWIDTH=2464000,CODECS=\"avc1.64001f,opus\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio-opus\"
source/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=766000,AVERAGE-BANDWIDTH=624000,CODECS=\"avc1.64001f,opus\",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"audio-opus\"
360p/index.m3u8
";
    assert_eq!(got, want);
}

#[test]
fn an_aac_rendition_of_opus_audio_comes_first() {
    // A WHIP stream: its source audio is Opus, its AAC a transcoded rendition.
    let infos = [
        video("source", 640, 360, 700_000),
        RenditionInfo {
            codecs: "opus",
            bandwidth_bps: 66_000,
            average_bandwidth_bps: 64_000,
            ..audio("audio")
        },
        audio("audio-aac"),
    ];
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &infos, None);
    let lines: Vec<&str> = got.lines().filter(|l| l.starts_with("#EXT-X-")).collect();
    assert!(
        lines[2].contains("GROUP-ID=\"audio\",NAME=\"audio-aac\""),
        "{got}"
    );
    assert!(
        lines[3].contains("GROUP-ID=\"audio-opus\",NAME=\"audio\""),
        "{got}"
    );
    assert!(lines[4].contains("mp4a.40.2\"") && lines[4].ends_with("AUDIO=\"audio\""));
    assert!(lines[5].contains(",opus\"") && lines[5].ends_with("AUDIO=\"audio-opus\""));
}

#[test]
fn multivariant_without_audio_golden() {
    let infos = [video("source", 1280, 720, 3_000_000)];
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &infos, None);
    let want = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2400000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,FRAME-RATE=30.000
source/index.m3u8
";
    assert_eq!(got, want);
}

#[test]
fn multivariant_audio_only_and_equal_bandwidth_ties() {
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &[audio("audio")], None);
    assert_eq!(
        got,
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH=132000,AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\n\
         audio/index.m3u8\n"
    );
    let infos = [
        video("b", 640, 360, 800_000),
        video("a", 640, 360, 800_000),
        video("c", 1280, 720, 900_000),
    ];
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &infos, None);
    let order: Vec<&str> = got.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(order, ["c/index.m3u8", "b/index.m3u8", "a/index.m3u8"]);
}

fn mpd(stream: &StreamFacts, views: &[RenditionView<'_>], query: Option<&str>) -> String {
    let clock = MpdClock {
        availability_start_ms: T0_MS,
        publish_time_ms: T0_MS + 28_000,
        now_ms: T0_MS + 28_500,
    };
    let mut out = String::new();
    let query = query.map(|q| UriQuery::new(q).unwrap());
    write_mpd(&mut out, stream, &clock, views, query);
    out
}

#[test]
fn mpd_golden() {
    let (source, sound) = ll_indexes();
    let mut rung = Index {
        info: video("720p", 1280, 720, 3_000_000),
        segments: source.segments.clone(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    rung.info.kind = RenditionKind::Video {
        width: 1280,
        height: 720,
        frame_rate: FrameRate {
            num: 30_000,
            den: 1001,
        },
    };
    let mut source = source;
    source.info = video("source", 1920, 1080, 6_000_000);
    // Variable GOPs: 13 is longer, 12 shorter.
    source.segments[2].duration_ticks = 171_000;
    source.segments[3].start_ticks -= 9_000;
    source.segments[3].duration_ticks = 189_000;
    rung.segments = source.segments.clone();
    let got = mpd(
        &live(None),
        &[source.view(), rung.view(), sound.view()],
        Some("token=a&b$c"),
    );
    let want = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" availabilityStartTime="2023-11-14T22:13:20.000Z" publishTime="2023-11-14T22:13:48.000Z" minimumUpdatePeriod="PT2.1S" minBufferTime="PT2S" timeShiftBufferDepth="PT8S" suggestedPresentationDelay="PT6S" maxSegmentDuration="PT2S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="90000" initialization="$RepresentationID$/init.mp4?token=a&amp;b$$c" media="$RepresentationID$/$Number$.m4s?token=a&amp;b$$c" startNumber="10">
        <SegmentTimeline>
          <S t="1800000" d="180000" r="1"/>
          <S d="171000"/>
          <S d="189000"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="source" bandwidth="6000000" width="1920" height="1080" frameRate="30" codecs="avc1.64001f"/>
      <Representation id="720p" bandwidth="3000000" width="1280" height="720" frameRate="30000/1001" codecs="avc1.64001f"/>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="48000" initialization="$RepresentationID$/init.mp4?token=a&amp;b$$c" media="$RepresentationID$/$Number$.m4s?token=a&amp;b$$c" startNumber="10">
        <SegmentTimeline>
          <S t="960000" d="96000" r="3"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="audio" bandwidth="132000" audioSamplingRate="48000" codecs="mp4a.40.2">
        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
      </Representation>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/api/v1/time"/>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2023-11-14T22:13:48.500Z"/>
</MPD>
"#;
    assert_eq!(got, want);
    check_xml(&got);
}

#[test]
fn a_live_mpd_with_parts_is_low_latency_and_lists_the_segments_being_made() {
    let (source, sound) = ll_indexes();
    let got = mpd(&live(Some(200)), &[source.view(), sound.view()], None);
    check_xml(&got);
    // 0.6 s of latency asked for (three 200 ms parts), between 0.3 s and 1.8 s.
    assert!(
        got.contains(" suggestedPresentationDelay=\"PT0.6S\""),
        "{got}"
    );
    assert!(got.contains("<ServiceDescription id=\"0\">"), "{got}");
    assert!(
        got.contains("<Latency referenceId=\"0\" target=\"600\" min=\"300\" max=\"1800\"/>"),
        "{got}"
    );
    assert!(got.find("<ServiceDescription").unwrap() < got.find("<Period").unwrap());
    // Video: four complete 2 s segments (90 kHz) and the two being made, announced once
    // their first part is due (2 s - 0.2 s).
    assert!(got.contains("startNumber=\"10\" availabilityTimeOffset=\"1.800\" availabilityTimeComplete=\"false\">"), "{got}");
    assert!(
        got.contains("<S t=\"1800000\" d=\"180000\" r=\"5\"/>"),
        "{got}"
    );
    // Audio (48 kHz) alike.
    assert!(
        got.contains("<S t=\"960000\" d=\"96000\" r=\"5\"/>"),
        "{got}"
    );

    // Once the stream ends, nothing is ahead and nothing is low-latency.
    let mut ended = live(Some(200));
    ended.ended = true;
    let got = mpd(&ended, &[source.view(), sound.view()], None);
    assert!(!got.contains("availabilityTimeOffset") && !got.contains("ServiceDescription"));
    assert!(
        got.contains("<S t=\"960000\" d=\"96000\" r=\"3\"/>"),
        "{got}"
    );
}

/// A GOP cut short by the encoder makes one segment long (2.9 s against 2 s); the segments
/// listed ahead stay at the usual 2 s, so a player asks for them on time (or early, which the
/// server holds), never a GOP late.
#[test]
fn a_long_segment_does_not_stretch_the_segments_expected_after_it() {
    let (mut source, sound) = ll_indexes();
    let long = source.segments.last_mut().expect("four segments");
    long.duration_ticks = 261_000;
    let got = mpd(&live(Some(200)), &[source.view(), sound.view()], None);
    check_xml(&got);
    // Segments 10..=12 of 2 s, 13 of 2.9 s, then 14 and 15 expected at 2 s again.
    assert!(
        got.contains(
            "<S t=\"1800000\" d=\"180000\" r=\"2\"/>\n          <S d=\"261000\"/>\n          <S d=\"180000\" r=\"1\"/>"
        ),
        "{got}"
    );
    assert!(
        got.contains("startNumber=\"10\" availabilityTimeOffset=\"1.800\""),
        "{got}"
    );

    // Only recent segments count: after six long ones, the long duration is expected.
    let mut source = ll_indexes().0;
    source.segments = segments(10, 6, 261_000, VIDEO_TIMESCALE);
    source.parts.clear();
    source.open.as_mut().expect("open").msn = 16;
    let got = mpd(&live(Some(200)), &[source.view()], None);
    assert!(
        got.contains("<S t=\"2610000\" d=\"261000\" r=\"7\"/>"),
        "{got}"
    );
    assert!(got.contains("availabilityTimeOffset=\"2.700\""), "{got}");
}

#[test]
fn mpd_puts_each_audio_codec_family_in_its_own_adaptation_set() {
    let (source, sound) = ll_indexes();
    let mut opus = Index {
        info: sound.info,
        segments: sound.segments.clone(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    opus.info.name = "audio-opus";
    opus.info.codecs = "opus";
    let got = mpd(
        &live(Some(500)),
        &[source.view(), sound.view(), opus.view()],
        None,
    );
    check_xml(&got);
    let sets: Vec<&str> = got
        .lines()
        .filter(|l| l.contains("<AdaptationSet") || l.contains("<Representation"))
        .map(str::trim)
        .collect();
    assert_eq!(sets.len(), 6, "{got}");
    assert!(sets[2].starts_with("<AdaptationSet id=\"1\" contentType=\"audio\""));
    assert!(sets[3].contains("id=\"audio\"") && sets[3].contains("mp4a.40.2"));
    assert!(sets[4].starts_with("<AdaptationSet id=\"2\" contentType=\"audio\""));
    assert!(sets[5].contains("id=\"audio-opus\"") && sets[5].contains("codecs=\"opus\""));
}

#[test]
fn mpd_splits_video_of_different_codec_families() {
    let (source, sound) = ll_indexes();
    let mut hevc = Index {
        info: video("source", 1920, 1080, 6_000_000),
        segments: source.segments.clone(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    hevc.info.codecs = "hvc1.1.6.L120.B0";
    let mut rung = Index {
        info: video("720p", 1280, 720, 3_000_000),
        segments: source.segments.clone(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    rung.info.codecs = "avc1.64001f";
    let got = mpd(
        &live(Some(500)),
        &[hevc.view(), rung.view(), sound.view()],
        None,
    );
    check_xml(&got);
    let sets: Vec<&str> = got
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("<AdaptationSet") || l.starts_with("<Representation"))
        .collect();
    assert_eq!(sets.len(), 6, "{got}");
    assert!(sets[0].contains("id=\"0\" contentType=\"video\""));
    assert!(sets[1].contains("id=\"source\"") && sets[1].contains("hvc1"));
    assert!(sets[2].contains("id=\"1\" contentType=\"video\""));
    assert!(sets[3].contains("id=\"720p\"") && sets[3].contains("avc1"));
    assert!(sets[4].contains("id=\"2\" contentType=\"audio\""));
}

#[test]
fn mpd_unaligned_rungs_get_their_own_templates_and_the_end_is_final() {
    let (source, _) = ll_indexes();
    let mut rung = Index {
        info: video("720p", 1280, 720, 3_000_000),
        segments: segments(11, 3, 180_000, VIDEO_TIMESCALE),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    rung.info.epoch_ticks = 90_000;
    for s in &mut rung.segments {
        s.start_ticks += 90_000;
    }
    // A jump in media time inside the rung's window: a new S with an explicit t.
    rung.segments[2].start_ticks += 18_000;
    let stream = StreamFacts {
        ended: true,
        ..live(None)
    };
    let got = mpd(&stream, &[source.view(), rung.view()], None);
    assert!(
        got.contains(" mediaPresentationDuration=\"PT28.2S\""),
        "{got}"
    );
    assert!(!got.contains("minimumUpdatePeriod"), "{got}");
    assert!(!got.contains("timeShiftBufferDepth"), "{got}");
    assert!(got.contains("type=\"static\""), "{got}");
    let want_rung = r#"      <Representation id="720p" bandwidth="3000000" width="1280" height="720" frameRate="30" codecs="avc1.64001f">
        <SegmentTemplate timescale="90000" presentationTimeOffset="90000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="11">
          <SegmentTimeline>
            <S t="2070000" d="180000" r="1"/>
            <S t="2448000" d="180000"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
"#;
    assert!(got.contains(want_rung), "{got}");
    assert!(!got.contains("audio"), "{got}");
    check_xml(&got);
}

#[test]
fn mpd_restarts_the_timeline_at_an_init_change() {
    let mut segs = segments(20, 4, 180_000, VIDEO_TIMESCALE);
    segs[2].discontinuity = true;
    segs[2].init_version = 1;
    segs[3].init_version = 1;
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: segs,
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    let got = mpd(&live(None), &[index.view()], None);
    assert!(
        got.contains("initialization=\"$RepresentationID$/init.mp4?v=1\""),
        "{got}"
    );
    assert!(got.contains("startNumber=\"22\""), "{got}");
    assert!(
        got.contains("<S t=\"3960000\" d=\"180000\" r=\"1\"/>"),
        "{got}"
    );
    assert!(got.contains("timeShiftBufferDepth=\"PT4S\""), "{got}");
    check_xml(&got);
}

#[test]
fn mpd_without_segments_is_well_formed() {
    let index = Index {
        info: audio("audio"),
        segments: Vec::new(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    let got = mpd(&live(None), &[index.view()], None);
    assert!(!got.contains("AdaptationSet"), "{got}");
    check_xml(&got);
}

#[test]
fn views_read_a_ring_without_copying() {
    use std::collections::VecDeque;
    let mut ring: VecDeque<SegmentView> = segments(0, 6, 180_000, VIDEO_TIMESCALE).into();
    // Rotate so the ring wraps: its window is two slices.
    for _ in 0..4 {
        let front = ring.pop_front().unwrap();
        ring.push_back(SegmentView {
            msn: front.msn + 6,
            start_ticks: front.start_ticks + 6 * 180_000,
            ..front
        });
    }
    ring.pop_front();
    let slices = Slices::from(&ring);
    assert_eq!(slices.len(), 5);
    assert_eq!(slices.first().map(|s| s.msn), Some(5));
    assert_eq!(slices.last().map(|s| s.msn), Some(9));
    assert_eq!(slices.get(3).map(|s| s.msn), Some(8));
    assert_eq!(slices.skip_to(2).first().map(|s| s.msn), Some(7));
    assert_eq!(slices.partition_point(|s| s.msn < 8), 3);
    let index = Index {
        info: video("source", 1280, 720, 3_000_000),
        segments: Vec::new(),
        parts: Vec::new(),
        open: None,
        discontinuity_sequence: 0,
    };
    let view = RenditionView {
        segments: slices,
        ..index.view()
    };
    let mut out = String::new();
    write_media_playlist(&mut out, &live(None), &view, &[], None);
    assert!(out.contains("#EXT-X-MEDIA-SEQUENCE:5\n"));
    let uris: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(uris, ["5.m4s", "6.m4s", "7.m4s", "8.m4s", "9.m4s"]);
}

#[test]
fn progress_and_preload_come_from_the_view() {
    let (source, sound) = ll_indexes();
    let p = source.view().progress(false);
    assert_eq!(p.last_msn, Some(13));
    assert_eq!(
        p.last_part,
        Some(PartRef {
            msn: 14,
            part_index: 1
        })
    );
    assert_eq!(
        sound.view().preload_hint(),
        PartRef {
            msn: 14,
            part_index: 3
        }
    );
    let request = parse_blocking_reload("_HLS_msn=14&_HLS_part=2", &p, Some(500))
        .unwrap()
        .unwrap();
    assert!(!request.is_satisfied(&p));
    assert!(request.is_satisfied(&sound.view().progress(false)));
}

/// A small well-formedness check: balanced, properly nested elements, quoted attributes with
/// no raw `<` or stray `&`, one root. Also parsed by Python's `xml.etree` when available.
fn check_xml(text: &str) {
    let body = text
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        assert!(
            rest[..open].trim().is_empty(),
            "text content {:?}",
            &rest[..open]
        );
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()));
        while !attrs.trim().is_empty() {
            let (key, after) = attrs.trim_start().split_once("=\"").expect("attribute");
            assert!(
                key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':'),
                "{key}"
            );
            let end = after.find('"').expect("closing quote");
            let value = &after[..end];
            assert!(!value.contains('<') && !value.contains('\n'), "{value}");
            for (i, _) in value.match_indices('&') {
                let entity = &value[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e)),
                    "raw & in {value}"
                );
            }
            attrs = &after[end + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(rest.trim().is_empty());
    assert!(stack.is_empty(), "unclosed {stack:?}");
    assert_eq!(roots, 1);
    python_check(
        "import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.buffer.read())",
        text,
        "xml.etree",
    );
}

/// Runs `script` with `input` on stdin under `python3`, failing the test if it fails. When
/// `python3` or the module cannot be loaded, says so on stderr instead of passing silently.
fn python_check(script: &str, input: &str, what: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let module = what.split('.').next().unwrap_or(what);
    let probe = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status();
    match probe {
        Err(e) => {
            eprintln!("note: {what} check not run: python3 unavailable ({e})");
            return;
        }
        Ok(status) if !status.success() => {
            eprintln!("note: {what} check not run: python3 has no `{module}` module");
            return;
        }
        Ok(_) => {}
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 ran a moment ago");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} rejected the output:\n{}\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn playlists_parse_with_python_m3u8() {
    // Reads the playlists back with the `m3u8` package and checks what it understood.
    let (source, sound) = ll_indexes();
    let all = [source.view(), sound.view()];
    let media = media_playlist(&live(Some(500)), &source, &all, Some("token=abc"));
    python_check(
        "import sys, m3u8\n\
         p = m3u8.loads(sys.stdin.read())\n\
         assert p.media_sequence == 10, p.media_sequence\n\
         assert p.target_duration == 2\n\
         assert [s.uri for s in p.segments] == ['%d.m4s?token=abc' % n for n in range(10, 14)] + [None]\n\
         assert p.server_control.can_block_reload == 'YES'\n\
         assert abs(p.part_inf.part_target - 0.5) < 1e-9\n\
         assert p.preload_hint.uri == '14.2.m4s?token=abc'\n\
         assert len(p.rendition_reports) == 1 and p.rendition_reports[0].last_part == 2\n\
         assert [len(s.parts) for s in p.segments] == [0, 0, 4, 4, 2]\n\
         assert p.segments[-1].parts[0].independent == 'YES'\n",
        &media,
        "m3u8",
    );
    let mut multivariant = String::new();
    let infos = [source.info, sound.info];
    write_multivariant_playlist(&mut multivariant, &infos, None);
    python_check(
        "import sys, m3u8\n\
         p = m3u8.loads(sys.stdin.read())\n\
         assert p.is_variant\n\
         assert [v.uri for v in p.playlists] == ['source/index.m3u8']\n\
         assert p.playlists[0].stream_info.resolution == (1280, 720)\n\
         assert p.media[0].uri == 'audio/index.m3u8' and p.media[0].group_id == 'audio'\n",
        &multivariant,
        "m3u8",
    );
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "invalid rendition name")]
fn a_bad_name_is_a_bug_in_debug_builds() {
    let infos = [video("a\"b", 640, 360, 800_000)];
    write_multivariant_playlist(&mut String::new(), &infos, None);
}

#[test]
#[cfg(not(debug_assertions))]
fn a_bad_name_is_sanitized_in_release_builds() {
    let mut info = video("a\"b\nc", 640, 360, 800_000);
    info.codecs = "avc1\",x";
    let mut got = String::new();
    write_multivariant_playlist(&mut got, &[info], None);
    assert!(got.contains("CODECS=\"avc1__x\""), "{got}");
    assert!(got.ends_with("\na_b_c/index.m3u8\n"), "{got}");
}

#[test]
fn the_mpd_clock_follows_the_playlists_dates() {
    let (source, sound) = ll_indexes();
    let views = [source.view(), sound.view()];
    let newest = source.segments.last().unwrap();
    let since_epoch = newest.start_ticks - source.info.epoch_ticks;
    let want = newest.program_date_time_ms.unwrap() - since_epoch * 1000 / 90_000;
    assert_eq!(availability_start_ms(&views, 1), want);
    // Nothing dated: the fallback.
    let (mut undated, _) = ll_indexes();
    for s in &mut undated.segments {
        s.program_date_time_ms = None;
    }
    assert_eq!(availability_start_ms(&[undated.view()], 42), 42);
}
