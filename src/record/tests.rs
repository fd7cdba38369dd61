//! The recorder on its own: index events in, files out, read back, listed and retired.

use super::files;
use super::{RecordSettings, Recorder};
use crate::media::MediaResponse;
use crate::record::msg::ReadWhat;
use bytes::Bytes;
use shardcast_media::cmaf::STYP;
use shardcast_media::manifest::RenditionKind;
use shardcast_media::{IndexEvent, RenditionMeta, StreamInfo};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const T0: u64 = 1_796_600_000_000;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shardcast-rec-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn settings(root: &Path) -> Arc<RecordSettings> {
    Arc::new(RecordSettings {
        dir: root.to_owned(),
        all: true,
        streams: Vec::new(),
        queue_max_bytes: 1 << 20,
        queued: Default::default(),
        keep_s: 3600,
        max_bytes: 0,
        counters: Default::default(),
    })
}

fn audio_meta() -> Arc<RenditionMeta> {
    Arc::new(RenditionMeta {
        name: Arc::from("audio"),
        kind: RenditionKind::Audio {
            sample_rate_hz: 48_000,
            channels: 2,
        },
        codecs: "mp4a.40.2".into(),
        timescale: 1000,
    })
}

fn part(msn: u64, index: u32, fill: u8) -> IndexEvent {
    IndexEvent::Part {
        rendition: Arc::from("audio"),
        msn,
        part_index: index,
        start_ticks: msn * 2000 + u64::from(index) * 500,
        duration_ticks: 500,
        independent: true,
        program_date_time_ms: T0 + msn * 2000,
        bytes: Bytes::from(vec![fill; 100]),
        last_received_ms: None,
    }
}

fn segment(msn: u64) -> IndexEvent {
    IndexEvent::Segment {
        rendition: Arc::from("audio"),
        msn,
        start_ticks: msn * 2000,
        duration_ticks: 2000,
        bytes: STYP.len() + 4 * 100,
        discontinuity: false,
        program_date_time_ms: T0 + msn * 2000,
    }
}

fn record_stream(recorder: &mut Recorder, stream: &Arc<str>, segments: u64, lose: Option<u64>) {
    let started = IndexEvent::Started {
        started_ms: T0,
        part_target_ms: Some(500),
        info: Arc::new(StreamInfo::default()),
    };
    recorder.on_event(stream, started, T0);
    let init = IndexEvent::Init {
        rendition: audio_meta(),
        init: Bytes::from_static(b"init-bytes"),
        discontinuity: false,
    };
    recorder.on_event(stream, init, T0);
    for msn in 0..segments {
        for p in 0..4 {
            if lose == Some(msn) && p == 2 {
                recorder.on_lost(stream, "audio", msn);
                continue;
            }
            recorder.on_event(stream, part(msn, p, p as u8), T0);
        }
        recorder.on_event(stream, segment(msn), T0);
    }
    recorder.on_event(stream, IndexEvent::Ended, T0 + segments * 2000);
}

fn body(response: MediaResponse) -> Vec<u8> {
    match response {
        MediaResponse::Body { chunks, .. } => chunks.concat(),
        MediaResponse::Status(status, why) => panic!("{status} {why}"),
        _ => panic!("not a body"),
    }
}

#[test]
fn a_stream_is_written_as_it_is_made_and_read_back_as_vod() {
    let root = dir("whole");
    let mut recorder = Recorder::new(settings(&root));
    let stream: Arc<str> = Arc::from("show");
    record_stream(&mut recorder, &stream, 3, None);

    let list: serde_json::Value =
        serde_json::from_slice(&body(recorder.read(&ReadWhat::List))).unwrap();
    let entry = &list["recordings"][0];
    assert_eq!(entry["stream"], "show");
    assert_eq!(entry["complete"], true);
    assert_eq!(entry["duration_s"], 6.0);
    assert_eq!(entry["lost_segments"], 0);
    let start = entry["start"].as_str().unwrap().to_string();
    assert_eq!(start, "20261206T233320Z");
    assert_eq!(entry["hls"], format!("/vod/show/{start}/index.m3u8"));

    let read = |path: &str| {
        body(recorder.read(&ReadWhat::File {
            stream: "show".into(),
            start: start.clone(),
            path: path.into(),
            token_query: None,
        }))
    };
    let playlist = String::from_utf8(read("audio/index.m3u8")).unwrap();
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    assert!(
        playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""),
        "{playlist}"
    );
    assert_eq!(playlist.matches("#EXTINF:2.000,").count(), 3, "{playlist}");
    assert!(
        !playlist.contains("EXT-X-PART"),
        "VOD has no parts: {playlist}"
    );
    let top = String::from_utf8(read("index.m3u8")).unwrap();
    assert!(top.contains("audio/index.m3u8"), "{top}");
    let mpd = String::from_utf8(read("manifest.mpd")).unwrap();
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    assert!(
        !root
            .join("show")
            .join(&start)
            .join("manifest.mpd.so-far")
            .exists(),
        "the MPD so far goes once the MPD is written"
    );
    assert_eq!(read("audio/init.mp4"), b"init-bytes");
    // A segment is styp and its parts, in order.
    let seg = read("audio/1.m4s");
    assert_eq!(&seg[..STYP.len()], STYP);
    let parts: Vec<u8> = seg[STYP.len()..].chunks(100).map(|c| c[0]).collect();
    assert_eq!(parts, vec![0, 1, 2, 3]);
    // Nothing outside the recording.
    for bad in [
        "../x/index.m3u8",
        "audio/../../etc",
        ".hidden",
        "audio/1.m4s.part",
        "a/b/c.m4s",
    ] {
        let r = recorder.read(&ReadWhat::File {
            stream: "show".into(),
            start: start.clone(),
            path: bad.into(),
            token_query: None,
        });
        assert!(matches!(r, MediaResponse::Status(404, _)), "{bad}");
    }
    assert_eq!(
        recorder
            .settings
            .counters
            .segments_written
            .load(Ordering::Relaxed),
        3
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_lost_part_makes_its_segment_a_gap_and_nothing_else() {
    let root = dir("lost");
    let mut recorder = Recorder::new(settings(&root));
    let stream: Arc<str> = Arc::from("lossy");
    record_stream(&mut recorder, &stream, 3, Some(1));
    let list: serde_json::Value =
        serde_json::from_slice(&body(recorder.read(&ReadWhat::List))).unwrap();
    let entry = &list["recordings"][0];
    assert_eq!(entry["lost_segments"], 1);
    let start = entry["start"].as_str().unwrap().to_string();
    let base = root.join("lossy").join(&start).join("audio");
    assert!(base.join("0.m4s").is_file() && base.join("2.m4s").is_file());
    assert!(!base.join("1.m4s").exists() && !base.join("1.m4s.part").exists());
    let playlist = std::fs::read_to_string(base.join("index.m3u8")).unwrap();
    assert!(playlist.contains("#EXT-X-GAP"), "{playlist}");
    assert_eq!(
        recorder
            .settings
            .counters
            .segments_lost
            .load(Ordering::Relaxed),
        1
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn retention_deletes_by_age_then_by_size_oldest_first_and_never_an_active_one() {
    let root = dir("retain");
    let mut recorder = Recorder::new(settings(&root));
    for name in ["a", "b", "c"] {
        record_stream(&mut recorder, &Arc::from(name), 2, None);
    }
    let count = || files::list_json(&root);
    let n = |r: MediaResponse| {
        serde_json::from_slice::<serde_json::Value>(&body(r)).unwrap()["recordings"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(n(count()), 3);
    // Each is 2 segments of 420 bytes: a cap of 1000 bytes keeps one.
    assert_eq!(files::retain(&root, &[], 0, 1000), 2);
    assert_eq!(n(count()), 1);
    // Past the keep time it goes too, unless it is being written.
    let list: serde_json::Value = serde_json::from_slice(&body(count())).unwrap();
    let kept = &list["recordings"][0];
    let left = root
        .join(kept["stream"].as_str().unwrap())
        .join(kept["start"].as_str().unwrap());
    assert_eq!(files::retain(&root, &[left], u64::MAX, 0), 0);
    assert_eq!(files::retain(&root, &[], u64::MAX, 0), 1);
    assert_eq!(n(count()), 0);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn replays_carry_the_playback_token_on_every_uri() {
    let root = dir("token");
    let mut recorder = Recorder::new(settings(&root));
    record_stream(&mut recorder, &Arc::from("paid"), 2, None);
    let list: serde_json::Value =
        serde_json::from_slice(&body(recorder.read(&ReadWhat::List))).unwrap();
    let start = list["recordings"][0]["start"].as_str().unwrap().to_string();
    let read = |path: &str| {
        String::from_utf8(body(recorder.read(&ReadWhat::File {
            stream: "paid".into(),
            start: start.clone(),
            path: path.into(),
            token_query: Some("token=abc.def".into()),
        })))
        .unwrap()
    };
    let media = read("audio/index.m3u8");
    assert!(
        media.contains("#EXT-X-MAP:URI=\"init.mp4?token=abc.def\""),
        "{media}"
    );
    assert!(media.lines().any(|l| l == "0.m4s?token=abc.def"), "{media}");
    assert!(media
        .lines()
        .filter(|l| !l.starts_with('#'))
        .all(|l| l.ends_with("token=abc.def")));
    let top = read("index.m3u8");
    assert!(top.contains("audio/index.m3u8?token=abc.def"), "{top}");
    let mpd = read("manifest.mpd");
    assert!(
        mpd.contains("media=\"$RepresentationID$/$Number$.m4s?token=abc.def\""),
        "{mpd}"
    );
    assert!(
        mpd.contains("initialization=\"$RepresentationID$/init.mp4?token=abc.def\""),
        "{mpd}"
    );
    // Media bytes are not touched.
    let seg = body(recorder.read(&ReadWhat::File {
        stream: "paid".into(),
        start: start.clone(),
        path: "audio/0.m4s".into(),
        token_query: Some("token=abc.def".into()),
    }));
    assert_eq!(&seg[..STYP.len()], STYP);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_recording_cut_by_a_stop_is_closed_at_the_next_start() {
    let root = dir("cut");
    {
        let mut recorder = Recorder::new(settings(&root));
        let stream: Arc<str> = Arc::from("cut");
        let started = IndexEvent::Started {
            started_ms: T0,
            part_target_ms: Some(500),
            info: Arc::new(StreamInfo::default()),
        };
        recorder.on_event(&stream, started, T0);
        let init = IndexEvent::Init {
            rendition: audio_meta(),
            init: Bytes::from_static(b"init-bytes"),
            discontinuity: false,
        };
        recorder.on_event(&stream, init, T0);
        for msn in 0..2 {
            for p in 0..4 {
                recorder.on_event(&stream, part(msn, p, 1), T0);
            }
            recorder.on_event(&stream, segment(msn), T0);
        }
        // A part of the next segment, then the process dies (no Ended, no finish).
        recorder.on_event(&stream, part(2, 0, 1), T0);
    }
    assert_eq!(files::repair(&root), 1);
    assert_eq!(files::repair(&root), 0, "once is enough");
    let list: serde_json::Value = serde_json::from_slice(&body(files::list_json(&root))).unwrap();
    let entry = &list["recordings"][0];
    assert_eq!(entry["complete"], true);
    assert_eq!(entry["interrupted"], true);
    let dir = root.join("cut").join(entry["start"].as_str().unwrap());
    let playlist = std::fs::read_to_string(dir.join("audio/index.m3u8")).unwrap();
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    assert_eq!(playlist.matches("#EXTINF").count(), 2);
    assert!(
        dir.join("index.m3u8").is_file(),
        "the multivariant playlist is written early"
    );
    assert!(!dir.join("audio/2.m4s.part").exists());
    // The MPD of the two segments recorded before the stop, a static one.
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    assert!(mpd.contains("r=\"1\"/>"), "two equal segments: {mpd}");
    assert!(!dir.join("manifest.mpd.so-far").exists());
    std::fs::remove_dir_all(&root).unwrap();
}
