//! End-to-end tests of publishers that do unusual but legal things, against the real binary
//! with a real ffmpeg (Debian's 5.1, and the static build of the imageio-ffmpeg wheel) or,
//! where ffmpeg cannot be made to do the odd thing, a recorded FLV file replayed over RTMP
//! (`shardcast_rtmp::ClientSession`) with timestamps the test chooses.
//!
//! Each test asserts what a player gets (playlists that cover what was published, segments
//! that fetch) or the refusal a publisher gets, and stops every process it starts.

mod common;

use bytes::Bytes;
use common::{Server, TempDir};
use shardcast_media::flv::{FileTag, TagKind};
use shardcast_rtmp::{ClientConfig, ClientEvent, ClientSession};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server that packages the source alone: the cases here are about ingest, and two cores
/// are better spent on publishers than on a ladder.
const NO_TRANSCODE: &str = "[transcode]\nenabled = false\n";

/// Three hours, in milliseconds: the size of the timestamp jumps below.
const THREE_HOURS_MS: u32 = 3 * 3600 * 1000;

/// Seconds published across the wrap.
const PUBLISH_SECONDS: u64 = 14;

/// ffmpeg's first timestamp: 4294961 s, 6.3 s before 2^32 ms. Its FLV muxer keeps 31 bits
/// of each timestamp (the top byte masked with 0x7F), so what it sends over RTMP starts at
/// 2147477352 ms and wraps to 0 at the same instant, 6.3 s in.
const TS_OFFSET_SECONDS: &str = "4294961";

/// A publish whose timestamps wrap 6.3 s in is served whole: the playlists cover the 14 s,
/// and the segments after the wrap are there.
#[test]
fn a_publish_across_the_timestamp_wrap_is_served_whole() {
    let server = Server::start("uring", 1, NO_TRANSCODE);
    let url = format!("rtmp://{}/live/wrap", server.rtmp_addr);
    let mut publisher = Publisher(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &PUBLISH_SECONDS.to_string()])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "60"])
            .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])
            .args(["-output_ts_offset", TS_OFFSET_SECONDS])
            .args(["-f", "flv", "-rw_timeout", "15000000", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffmpeg"),
    );
    let (ok, stderr) = publisher.wait(Duration::from_secs(PUBLISH_SECONDS + 15));
    assert!(ok, "ffmpeg failed: {stderr}\n{}", server.log());

    for rendition in ["source", "audio"] {
        let playlist = wait_for_end(&server, &format!("/live/wrap/{rendition}/index.m3u8"));
        let served: f64 = playlist
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        assert!(
            served >= PUBLISH_SECONDS as f64 - 2.0,
            "{rendition}: {served:.3} s of {PUBLISH_SECONDS} s served:\n{playlist}\n{}",
            server.log()
        );
        // Every segment is there, the ones after the wrap (from 6.3 s) included.
        let uris: Vec<&str> = playlist
            .lines()
            .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
            .collect();
        assert!(uris.len() >= 6, "{rendition}:\n{playlist}");
        for uri in uris {
            let response = server.get(&format!("/live/wrap/{rendition}/{uri}"));
            assert_eq!(response.status, 200, "{rendition}/{uri}");
            assert_eq!(&response.body[4..8], b"styp", "{rendition}/{uri}");
        }
    }
    assert!(
        !server.log().contains("decode time went back"),
        "{}",
        server.log()
    );
}

/// A publisher whose timestamps jump back by three hours mid-stream (an encoder that restarts
/// its clock, two recordings glued together) is served whole: the media after the jump is
/// re-based to follow the media before it, with one discontinuity, instead of being refused
/// sample by sample.
#[test]
fn timestamps_that_jump_back_by_hours_are_rebased_at_a_discontinuity() {
    let server = Server::start("uring", 1, NO_TRANSCODE);
    let tags = fixture_tags();
    let period = replay_ms(&tags);
    let starts = [THREE_HOURS_MS, THREE_HOURS_MS + period, 0, period];
    let mut publisher = TagPublisher::publish(&server, "back").expect("publish accepted");
    for start in starts {
        publisher.replay(&tags, start).expect("replay");
    }
    publisher.finish().expect("unpublish");
    check_served_whole(&server, "back", f64::from(4 * period) / 1000.0, 1);
    // Said, and counted: a jump is never silent.
    assert!(
        server.log().contains("timestamps jumped -"),
        "{}",
        server.log()
    );
    assert!(server.metric("shardcast_media_timestamp_jumps_total") >= 1);
}

/// The same with a jump forward by three hours: no segment (and no sample) spans the jump.
#[test]
fn timestamps_that_jump_forward_by_hours_are_rebased_at_a_discontinuity() {
    let server = Server::start("uring", 1, NO_TRANSCODE);
    let tags = fixture_tags();
    let period = replay_ms(&tags);
    let starts = [0, period, THREE_HOURS_MS, THREE_HOURS_MS + period];
    let mut publisher = TagPublisher::publish(&server, "fwd").expect("publish accepted");
    for start in starts {
        publisher.replay(&tags, start).expect("replay");
    }
    publisher.finish().expect("unpublish");
    check_served_whole(&server, "fwd", f64::from(4 * period) / 1000.0, 1);
}

/// An audio-only publish (`ffmpeg -vn`) is served: the audio rendition, its playlist and
/// segments, and a multivariant playlist and MPD that name it.
#[test]
fn an_audio_only_publish_is_served() {
    let server = Server::start("uring", 1, NO_TRANSCODE);
    let url = format!("rtmp://{}/live/radio", server.rtmp_addr);
    let mut publisher = Publisher::spawn(
        "ffmpeg",
        &[
            &["-re"],
            AUDIO_INPUT,
            &["-t", "6", "-vn"],
            AAC,
            &["-f", "flv", &url],
        ],
    );
    let (ok, stderr) = publisher.wait(Duration::from_secs(20));
    assert!(ok, "ffmpeg failed: {stderr}\n{}", server.log());
    let playlist = wait_for_end(&server, "/live/radio/audio/index.m3u8");
    let served: f64 = extinfs(&playlist).iter().sum();
    assert!(
        (5.0..=6.6).contains(&served),
        "{served:.3} s of 6 s:\n{playlist}"
    );
    fetch_segments(&server, "/live/radio/audio", &playlist);
    let multivariant = server.get("/live/radio/index.m3u8");
    let multivariant = String::from_utf8(multivariant.body).unwrap();
    assert!(
        multivariant.contains("mp4a.40.2") && multivariant.contains("audio/index.m3u8"),
        "{multivariant}"
    );
    let mpd = server.get("/live/radio/manifest.mpd");
    assert_eq!(mpd.status, 200);
    let mpd = String::from_utf8(mpd.body).unwrap();
    assert!(mpd.contains("audio/mp4"), "{mpd}");
    assert_eq!(server.get("/live/radio/source/index.m3u8").status, 404);
}

/// A publisher whose audio starts 3 s after its video (`-itsoffset 3` on the audio input,
/// the static ffmpeg) is served: the video from the start, the audio from 3 s on, in sync.
#[test]
fn audio_that_starts_three_seconds_after_the_video_is_served_in_sync() {
    let server = Server::start("uring", 1, NO_TRANSCODE);
    let url = format!("rtmp://{}/live/late", server.rtmp_addr);
    let ffmpeg = common::modern_ffmpeg();
    let mut publisher = Publisher::spawn(
        &ffmpeg,
        &[
            &["-re"],
            VIDEO_INPUT,
            &["-itsoffset", "3"],
            AUDIO_INPUT,
            &["-t", "7"],
            H264,
            AAC,
            &["-f", "flv", &url],
        ],
    );
    let (ok, stderr) = publisher.wait(Duration::from_secs(25));
    assert!(ok, "ffmpeg failed: {stderr}\n{}", server.log());
    let video = wait_for_end(&server, "/live/late/source/index.m3u8");
    let audio = wait_for_end(&server, "/live/late/audio/index.m3u8");
    let video_s: f64 = extinfs(&video).iter().sum();
    let audio_s: f64 = extinfs(&audio).iter().sum();
    assert!(
        (6.0..=7.6).contains(&video_s),
        "video {video_s:.3} s:\n{video}"
    );
    assert!(
        (3.0..=4.6).contains(&audio_s),
        "audio {audio_s:.3} s:\n{audio}"
    );
    let video_segments = fetch_segments(&server, "/live/late/source", &video);
    let audio_segments = fetch_segments(&server, "/live/late/audio", &audio);
    // In sync: the first audio frame is presented about 3 s after the first picture.
    let video_start = first_tfdt(&video_segments[0]) as f64 / 90_000.0;
    let audio_start = first_tfdt(&audio_segments[0]) as f64 / 48_000.0;
    let lag = audio_start - video_start;
    assert!(
        (2.8..=3.2).contains(&lag),
        "audio starts {lag:.3} s after video"
    );
    assert!(!server.log().contains("sample dropped"), "{}", server.log());
}

/// A picture size change without a new sequence header: the publisher announces 320x180,
/// then its keyframes carry the parameter sets of a 640x360 picture in band (what encoders
/// that repeat SPS and PPS at every IDR send when they resize). The server packages the new
/// pictures under a new header, after a discontinuity, so a player decodes both sizes.
///
/// The other form, a new size with no parameter set anywhere, cannot be told from the
/// bytes without decoding slices: the server packages the pictures under the header it was
/// given (checked here too: the stream is served whole and the server stays up).
#[test]
fn a_size_change_without_a_sequence_header_is_served() {
    let server = Server::start("uring", 1, NO_TRANSCODE);
    let dir = TempDir::new("resize");
    let small = fixture_tags();
    let period = replay_ms(&small);
    let large = flv_tags(&recorded_flv(&dir, "640x360", 2));

    let mut publisher = TagPublisher::publish(&server, "inband").expect("publish accepted");
    publisher.replay(&small, 0).expect("replay");
    let large_inband = with_inband_parameter_sets(&large);
    publisher.replay(&large_inband, period).expect("replay");
    publisher.finish().expect("unpublish");

    let playlist = wait_for_end(&server, "/live/inband/source/index.m3u8");
    let served: f64 = extinfs(&playlist).iter().sum();
    assert!(served >= 3.6, "{served:.3} s served:\n{playlist}");
    let maps: Vec<&str> = playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MAP:"))
        .collect();
    assert_eq!(maps.len(), 2, "a new header at the change:\n{playlist}");
    assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    let segments = fetch_segments(&server, "/live/inband/source", &playlist);
    let sizes: Vec<String> = [(maps[0], &segments[0]), (maps[1], segments.last().unwrap())]
        .iter()
        .enumerate()
        .map(|(i, (map, segment))| {
            let uri = map.split('"').nth(1).unwrap();
            let init = server.get(&format!("/live/inband/source/{uri}"));
            assert_eq!(init.status, 200, "{uri}");
            probe_size(&dir, &format!("inband-{i}.mp4"), &init.body, segment)
        })
        .collect();
    assert_eq!(sizes, ["320x180", "640x360"], "{playlist}");

    // No parameter set anywhere: 1080p announced, 320x180 sent. Served as announced.
    let mut publisher = TagPublisher::publish(&server, "blind").expect("publish accepted");
    let announced = Bytes::from(std::fs::read(fixture_path("avc_1080p25_baseline.avcc")).unwrap());
    publisher
        .send_video(0, &[&[0x17, 0, 0, 0, 0][..], &announced].concat())
        .expect("sequence header");
    publisher
        .replay(&without_video_header(&small), 0)
        .expect("replay");
    publisher.finish().expect("unpublish");
    let playlist = wait_for_end(&server, "/live/blind/source/index.m3u8");
    fetch_segments(&server, "/live/blind/source", &playlist);
    assert_eq!(server.get("/healthz").status, 200);
}

/// A publisher ten times faster than real time (`-readrate 10`, the static ffmpeg) is served,
/// and what the server holds stays within the window: with `media.window_s = 10`, 60 s of
/// media leave 10 s or so in the playlist, the oldest segments are gone, and the server's
/// resident memory grows by little.
#[test]
fn a_publisher_ten_times_faster_than_real_time_is_served_within_the_window() {
    let server = Server::start(
        "uring",
        1,
        "[media]\nwindow_s = 10\n[transcode]\nenabled = false\n",
    );
    let rss_before_kib = server.rss_kib();
    let url = format!("rtmp://{}/live/fast", server.rtmp_addr);
    let ffmpeg = common::modern_ffmpeg();
    let started = Instant::now();
    let mut publisher = Publisher::spawn(
        &ffmpeg,
        &[
            &["-readrate", "10"],
            VIDEO_INPUT,
            &["-readrate", "10"],
            AUDIO_INPUT,
            &["-t", "60"],
            H264,
            AAC,
            &["-f", "flv", &url],
        ],
    );
    let (ok, stderr) = publisher.wait(Duration::from_secs(30));
    assert!(ok, "ffmpeg failed: {stderr}\n{}", server.log());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not faster than real time: {:?}",
        started.elapsed()
    );
    for rendition in ["source", "audio"] {
        let playlist = wait_for_end(&server, &format!("/live/fast/{rendition}/index.m3u8"));
        let served: f64 = extinfs(&playlist).iter().sum();
        assert!(
            (7.0..=14.0).contains(&served),
            "{rendition}: {served:.3} s in a 10 s window:\n{playlist}"
        );
        let first: u64 = playlist
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(first >= 20, "{rendition}: the window slid:\n{playlist}");
        let gone = server.get(&format!("/live/fast/{rendition}/0.m4s"));
        assert_eq!(gone.status, 404, "{rendition}: segment 0 left the window");
        fetch_segments(&server, &format!("/live/fast/{rendition}"), &playlist);
    }
    let grown_kib = server.rss_kib().saturating_sub(rss_before_kib);
    assert!(
        grown_kib < 64 * 1024,
        "resident memory grew by {grown_kib} KiB"
    );
    assert!(!server.log().contains("sample dropped"), "{}", server.log());
    assert!(
        server.log().contains("faster than real time"),
        "the pace is said: {}",
        server.log()
    );
}

/// A publisher killed with SIGKILL (its connection closed by the kernel, no unpublish) is
/// replaced within a second by a new ffmpeg publishing the same stream: the new publish is
/// accepted at once and served.
#[test]
fn a_killed_publisher_is_replaced_within_a_second() {
    let server = Server::start("uring", 2, NO_TRANSCODE);
    let url = format!("rtmp://{}/live/again", server.rtmp_addr);
    let publish = |seconds: &str| {
        Publisher::spawn(
            "ffmpeg",
            &[
                &["-re"],
                VIDEO_INPUT,
                AUDIO_INPUT,
                &["-t", seconds],
                H264,
                AAC,
                &["-f", "flv", &url],
            ],
        )
    };
    let mut first = publish("30");
    wait_for_segments(&server, "/live/again/source/index.m3u8", 2);
    first.kill();
    let killed = Instant::now();
    let mut second = publish("5");
    assert!(killed.elapsed() < Duration::from_secs(1));
    let (ok, stderr) = second.wait(Duration::from_secs(20));
    assert!(ok, "the new publish failed: {stderr}\n{}", server.log());
    let playlist = wait_for_end(&server, "/live/again/source/index.m3u8");
    let served: f64 = extinfs(&playlist).iter().sum();
    assert!(
        served >= 4.0,
        "{served:.3} s served:\n{playlist}\n{}",
        server.log()
    );
    fetch_segments(&server, "/live/again/source", &playlist);
    assert_eq!(server.metric("shardcast_media_publishes_refused_total"), 0);
}

/// A publisher that freezes (SIGSTOP: its connection stays open and silent, as when its host
/// or network dies and no FIN comes) holds the stream only while it may still be sending:
/// a new primary within `media.failover_ms` of its last sample is refused with an RTMP error
/// that says why, and one after it is accepted, takes over at its first keyframe and is
/// served (before: refused until `rtmp.idle_timeout_ms`, 30 s). The frozen one is replaced at
/// that keyframe: the stream ends with the new publisher, and when the frozen one wakes it
/// is told why and closed.
#[test]
fn a_frozen_publisher_is_replaced_once_it_has_stalled() {
    let server = Server::start("uring", 2, NO_TRANSCODE);
    let url = format!("rtmp://{}/live/frozen", server.rtmp_addr);
    let publish = |seconds: &str| {
        Publisher::spawn(
            "ffmpeg",
            &[
                &["-re"],
                VIDEO_INPUT,
                AUDIO_INPUT,
                &["-t", seconds],
                H264,
                AAC,
                &["-f", "flv", &url],
            ],
        )
    };
    let mut first = publish("30");
    wait_for_segments(&server, "/live/frozen/source/index.m3u8", 2);
    common::signal(first.0.id() as i32, libc::SIGSTOP);
    let frozen = Instant::now();
    let refusal = TagPublisher::publish(&server, "frozen").err();
    assert!(frozen.elapsed() < Duration::from_millis(900));
    assert_eq!(
        refusal.as_deref(),
        Some("NetStream.Publish.BadName: stream already has a primary publisher")
    );
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(frozen.elapsed()));
    let (ok, stderr) = publish("5").wait(Duration::from_secs(20));
    assert!(ok, "the new publish failed: {stderr}\n{}", server.log());
    assert!(
        server.log().contains("switched to the primary publisher"),
        "{}",
        server.log()
    );
    // The frozen one was replaced: the stream ended with the new publisher.
    let playlist = wait_for_end(&server, "/live/frozen/source/index.m3u8");
    let served: f64 = extinfs(&playlist).iter().sum();
    assert!(served >= 7.0, "{served:.3} s served:\n{playlist}");
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    fetch_segments(&server, "/live/frozen/source", &playlist);
    assert!(
        server.log().contains("was replaced by a new one"),
        "{}",
        server.log()
    );
    // The frozen one wakes to the RTMP error and exits.
    common::signal(first.0.id() as i32, libc::SIGCONT);
    let (ok, stderr) = first.wait(Duration::from_secs(15));
    assert!(!ok, "the replaced publisher kept going");
    assert!(
        stderr.contains("replaced by a new primary publisher of this stream"),
        "ffmpeg's stderr: {stderr}\n{}",
        server.log()
    );
}

/// An ffmpeg child, killed if the test ends before it does.
struct Publisher(Child);

impl Publisher {
    /// Starts `binary` (an ffmpeg) with the argument groups `args`, quiet but for errors.
    fn spawn(binary: &str, args: &[&[&str]]) -> Publisher {
        Publisher(
            Command::new(binary)
                .args(["-hide_banner", "-loglevel", "error"])
                .args(args.concat())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ffmpeg"),
        )
    }

    /// SIGKILL: the kernel closes its connection; ffmpeg says nothing.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    /// Waits (bounded) for ffmpeg to finish on its own; returns (success, stderr).
    fn wait(&mut self, within: Duration) -> (bool, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.0.stderr.take() {
                    pipe.read_to_string(&mut stderr).unwrap();
                }
                return (status.success(), stderr);
            }
            assert!(
                Instant::now() < deadline,
                "ffmpeg still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until the playlist at `path` ends (`#EXT-X-ENDLIST`) and returns it.
fn wait_for_end(server: &Server, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = server.get(path);
        let playlist = String::from_utf8(response.body).unwrap();
        if response.status == 200 && playlist.contains("#EXT-X-ENDLIST") {
            return playlist;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: no ENDLIST ({}):\n{playlist}\n{}",
            response.status,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Debian's lavfi test pattern, small: 320x240 at 30 fps.
const VIDEO_INPUT: &[&str] = &["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"];

/// A 440 Hz tone at 48 kHz.
const AUDIO_INPUT: &[&str] = &["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"];

/// Cheap H.264 with a keyframe every second (2 s segments).
const H264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "30",
    "-pix_fmt",
    "yuv420p",
];

const AAC: &[&str] = &["-c:a", "aac", "-b:a", "64k"];

/// Checks what a player gets of `stream` once it ended: on both renditions, `seconds` of
/// media (within half a second), segments no longer than a GOP pair, `discontinuities`
/// discontinuities, every segment fetchable and on one increasing timeline; and nothing was
/// dropped.
fn check_served_whole(server: &Server, stream: &str, seconds: f64, discontinuities: usize) {
    for (rendition, timescale) in [("source", 90_000.0), ("audio", 48_000.0)] {
        let playlist = wait_for_end(server, &format!("/live/{stream}/{rendition}/index.m3u8"));
        let durations = extinfs(&playlist);
        let served: f64 = durations.iter().sum();
        assert!(
            (served - seconds).abs() <= 0.5,
            "{rendition}: {served:.3} s of {seconds:.3} s served:\n{playlist}\n{}",
            server.log()
        );
        assert!(
            durations.iter().all(|&d| d <= 3.0),
            "{rendition}: a segment spans the jump:\n{playlist}"
        );
        assert_eq!(
            playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
            discontinuities,
            "{rendition}:\n{playlist}"
        );
        let segments = fetch_segments(server, &format!("/live/{stream}/{rendition}"), &playlist);
        let starts: Vec<f64> = segments
            .iter()
            .map(|s| first_tfdt(s) as f64 / timescale)
            .collect();
        for (pair, duration) in starts.windows(2).zip(&durations) {
            let step = pair[1] - pair[0];
            assert!(
                (step - duration).abs() < 0.1,
                "{rendition}: segments at {starts:?} s, durations {durations:?}"
            );
        }
    }
    assert!(!server.log().contains("sample dropped"), "{}", server.log());
}

/// The `#EXTINF` durations of a media playlist.
fn extinfs(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.trim_end_matches(',').parse().unwrap())
        .collect()
}

/// Fetches every segment `playlist` lists under `base` (`/live/{stream}/{rendition}`):
/// each answers 200 with a CMAF segment (`styp` first). Returns their bytes, in order.
fn fetch_segments(server: &Server, base: &str, playlist: &str) -> Vec<Vec<u8>> {
    let uris: Vec<&str> = playlist
        .lines()
        .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .collect();
    assert!(!uris.is_empty(), "{base}: no segment:\n{playlist}");
    uris.into_iter()
        .map(|uri| {
            let response = server.get(&format!("{base}/{uri}"));
            assert_eq!(response.status, 200, "{base}/{uri}");
            assert_eq!(&response.body[4..8], b"styp", "{base}/{uri}");
            response.body
        })
        .collect()
}

/// Waits (bounded) until the playlist at `path` lists at least `segments` segments.
fn wait_for_segments(server: &Server, path: &str, segments: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = server.get(path);
        let playlist = String::from_utf8(response.body).unwrap();
        if response.status == 200 && extinfs(&playlist).len() >= segments {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: not {segments} segments ({}):\n{playlist}\n{}",
            response.status,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `baseMediaDecodeTime` of a segment's first fragment (its first `tfdt` box).
fn first_tfdt(segment: &[u8]) -> u64 {
    let at = segment
        .windows(4)
        .position(|w| w == b"tfdt")
        .expect("a tfdt box");
    let version = segment[at + 4];
    let body = &segment[at + 8..];
    if version == 1 {
        u64::from_be_bytes(body[..8].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(body[..4].try_into().unwrap()))
    }
}

/// The picture size (`WxH`) ffprobe reads from `init` + `segment`.
fn probe_size(dir: &TempDir, name: &str, init: &[u8], segment: &[u8]) -> String {
    let path = dir.0.join(name);
    std::fs::write(&path, [init, segment].concat()).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0:s=x"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A file of `shardcast-media`'s test fixtures.
fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shards/media/tests/fixtures")
        .join(name)
}

/// The recorded fixture: 2 s of 320x180 H.264 (a keyframe every second, B-frames) and
/// 48 kHz AAC, with their sequence headers.
fn fixture_tags() -> Vec<FileTag> {
    flv_tags(&fixture_path("avc_aac.flv"))
}

/// The audio and video tags of an FLV file.
fn flv_tags(path: &std::path::Path) -> Vec<FileTag> {
    let file = Bytes::from(std::fs::read(path).unwrap());
    shardcast_media::flv::read_file(&file)
        .expect("an FLV file")
        .into_iter()
        .filter(|tag| matches!(tag.kind, TagKind::Audio | TagKind::Video))
        .collect()
}

/// Records `seconds` of a `size` test pattern (a keyframe every second, no B-frames) and a
/// 48 kHz mono tone as an FLV file, with Debian's ffmpeg.
fn recorded_flv(dir: &TempDir, size: &str, seconds: u32) -> std::path::PathBuf {
    let path = dir.0.join(format!("{size}.flv"));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=30")])
        .args(AUDIO_INPUT)
        .args(["-t", &seconds.to_string()])
        .args(H264)
        .args(["-bf", "0", "-c:a", "aac", "-ac", "1", "-b:a", "32k"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// How long one replay of `tags` lasts: its last video timestamp and one 30 fps frame.
fn replay_ms(tags: &[FileTag]) -> u32 {
    let last = tags
        .iter()
        .filter(|tag| tag.kind == TagKind::Video)
        .map(|tag| tag.timestamp_ms)
        .max()
        .expect("video tags");
    last + 33
}

/// Whether a tag is an AVC sequence header (legacy FLV: codec 7, packet type 0).
fn is_avc_sequence_header(tag: &FileTag) -> bool {
    tag.kind == TagKind::Video && tag.body.len() > 5 && tag.body[0] & 0x0F == 7 && tag.body[1] == 0
}

/// `tags` without the video sequence header.
fn without_video_header(tags: &[FileTag]) -> Vec<FileTag> {
    tags.iter()
        .filter(|tag| !is_avc_sequence_header(tag))
        .cloned()
        .collect()
}

/// `tags` without the video sequence header, its SPS and PPS carried in band instead, at
/// the front of every keyframe (4-byte NAL lengths, as the file's `avcC` says).
fn with_inband_parameter_sets(tags: &[FileTag]) -> Vec<FileTag> {
    let header = tags
        .iter()
        .find(|tag| is_avc_sequence_header(tag))
        .expect("an AVC sequence header");
    let config = shardcast_media::codec::parse_avcc(&header.body.slice(5..)).expect("avcC");
    assert_eq!(config.nal_length_size, 4);
    let mut parameter_sets = Vec::new();
    for nal in config.sps.iter().chain(&config.pps) {
        parameter_sets.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        parameter_sets.extend_from_slice(nal);
    }
    without_video_header(tags)
        .into_iter()
        .map(|mut tag| {
            let keyframe = tag.kind == TagKind::Video && tag.body[0] >> 4 == 1 && tag.body[1] == 1;
            if keyframe {
                let body = [&tag.body[..5], &parameter_sets, &tag.body[5..]].concat();
                tag.body = Bytes::from(body);
            }
            tag
        })
        .collect()
}

/// An RTMP publisher that replays recorded FLV tags with the timestamps the test gives them,
/// as fast as the connection takes them: for what ffmpeg cannot be made to send.
struct TagPublisher {
    tcp: TcpStream,
    client: ClientSession,
    buf: Vec<u8>,
}

impl TagPublisher {
    /// Connects and publishes `stream`; `Err` with the server's description when refused.
    fn publish(server: &Server, stream: &str) -> Result<TagPublisher, String> {
        let tcp = TcpStream::connect(server.rtmp_addr).map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut publisher = TagPublisher {
            tcp,
            client: ClientSession::new(ClientConfig::new("live", stream)),
            buf: vec![0; 65536],
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !publisher.client.is_publishing() {
            publisher.pump()?;
            assert!(Instant::now() < deadline, "no answer to publish");
        }
        Ok(publisher)
    }

    /// Sends every tag of `tags`, its timestamp moved by `start_ms`.
    fn replay(&mut self, tags: &[FileTag], start_ms: u32) -> Result<(), String> {
        for (i, tag) in tags.iter().enumerate() {
            let at = start_ms.wrapping_add(tag.timestamp_ms);
            match tag.kind {
                TagKind::Audio => self.client.send_audio(at, &tag.body),
                TagKind::Video => self.client.send_video(at, &tag.body),
                TagKind::Script | TagKind::Other(_) => continue,
            }
            .map_err(|e| e.to_string())?;
            self.write()?;
            if i % 64 == 0 {
                self.pump()?;
            }
        }
        Ok(())
    }

    /// Sends one video message.
    fn send_video(&mut self, timestamp_ms: u32, body: &[u8]) -> Result<(), String> {
        self.client
            .send_video(timestamp_ms, body)
            .map_err(|e| e.to_string())?;
        self.write()
    }

    /// Unpublishes and reads the server's last words.
    fn finish(mut self) -> Result<(), String> {
        self.client.unpublish();
        for _ in 0..20 {
            self.pump()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<(), String> {
        while let Some(out) = self.client.poll_transmit() {
            self.tcp.write_all(&out).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Writes what is queued and reads what the server said (5 ms at most): `Err` on an
    /// error status (its code and description) or a closed connection.
    fn pump(&mut self) -> Result<(), String> {
        self.write()?;
        match self.tcp.read(&mut self.buf) {
            Ok(0) => return Err("the server closed the connection".to_string()),
            Ok(n) => self
                .client
                .handle_input(&self.buf[..n])
                .map_err(|e| e.to_string())?,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
        while let Some(event) = self.client.poll_event() {
            if let ClientEvent::Status {
                level,
                code,
                description,
            } = event
            {
                if level == "error" {
                    return Err(format!("{code}: {description}"));
                }
            }
        }
        Ok(())
    }
}

/// An in-band size change past `media.max_width` × `media.max_height` is refused with an RTMP
/// error that says so, like a sequence header of that size would be.
#[test]
fn an_inband_size_change_past_the_limits_is_refused_by_name() {
    let config = format!("{NO_TRANSCODE}[media]\nmax_width = 400\nmax_height = 300\n");
    let server = Server::start("uring", 1, &config);
    let dir = TempDir::new("resize-cap");
    let small = fixture_tags();
    let period = replay_ms(&small);
    let large = with_inband_parameter_sets(&flv_tags(&recorded_flv(&dir, "640x360", 2)));
    let mut publisher = TagPublisher::publish(&server, "capped").expect("publish accepted");
    publisher
        .replay(&small, 0)
        .expect("the 320x180 part is taken");
    let refused = publisher
        .replay(&large, period)
        .and_then(|()| publisher.finish());
    let error = refused.expect_err("640x360 in band was taken");
    assert!(
        error.contains("640x360") || server.log().contains("640x360"),
        "{error}\n{}",
        server.log()
    );
}
