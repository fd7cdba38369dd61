//! End-to-end tests of live media: real publishers (`ffmpeg -re` over RTMP), real readers
//! (`ffprobe`, `ffmpeg` reading HLS and DASH), the real binary on two shards.

mod common;

use common::{read_response, segments_of, Publish, Server, TempDir, H264};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's ffmpeg (H.264/AAC over legacy FLV).
const FFMPEG: &str = "ffmpeg";

const H264_BFRAMES: [&str; 10] = [
    "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60", "-pix_fmt", "yuv420p",
];

fn rtmp_url(server: &Server, stream: &str) -> String {
    format!("rtmp://{}/live/{stream}", server.rtmp_addr)
}

fn http(server: &Server, path: &str) -> (u16, Vec<u8>, String) {
    let mut s = server.connect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    let headers = r
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect::<String>();
    (r.status, r.body, headers)
}

fn text(server: &Server, path: &str) -> String {
    let (status, body, _) = http(server, path);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

/// Waits until the media playlist of `stream` lists at least `segments` segments.
fn wait_for_segments(server: &Server, stream: &str, rendition: &str, segments: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = http(server, &format!("/live/{stream}/{rendition}/index.m3u8"));
        if status == 200 {
            let playlist = String::from_utf8(body).unwrap();
            if playlist.matches("#EXTINF").count() >= segments {
                return playlist;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {segments} segments:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) until a media playlist ends (`#EXT-X-ENDLIST`) and returns it. The end
/// comes once the stream's transcode worker has flushed its rungs.
fn wait_for_end(server: &Server, stream: &str, rendition: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = text(server, &format!("/live/{stream}/{rendition}/index.m3u8"));
        if p.contains("#EXT-X-ENDLIST") {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no ENDLIST:\n{p}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn extinfs(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.trim_end_matches(',').parse().unwrap())
        .collect()
}

/// Counts the video frames ffmpeg decodes from `url`.
fn frames_read(url: &str) -> u64 {
    let out = Command::new("timeout")
        .args([
            "60",
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            url,
        ])
        .args(["-map", "0:v:0", "-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("frame="))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn ffprobe(path: &std::path::Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", entries])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn check_h264_publish(bframes: bool) {
    let server = Server::start("uring", 2, "");
    let stream = if bframes { "bframes" } else { "plain" };
    let video: &[&str] = if bframes { &H264_BFRAMES } else { &H264 };
    let publisher = Publish::start(FFMPEG, &rtmp_url(&server, stream), 7, video);
    wait_for_segments(&server, stream, "source", 1);

    // The multivariant playlist names both renditions with codecs and resolution.
    let master = text(&server, &format!("/live/{stream}/index.m3u8"));
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    assert!(master.contains("CODECS=\"avc1."), "{master}");
    assert!(master.contains("mp4a.40.2"), "{master}");
    assert!(master.contains("TYPE=AUDIO"), "{master}");

    let (ok, err) = publisher.wait();
    assert!(ok, "publisher failed: {err}");
    // After unpublish the playlists end.
    let playlist = wait_for_end(&server, stream, "source");
    // Every segment but the last is within 5 % of the 2 s target.
    let durations = extinfs(&playlist);
    assert!(durations.len() >= 3, "{playlist}");
    for d in &durations[..durations.len() - 1] {
        assert!((d - 2.0).abs() <= 0.1, "segment of {d} s:\n{playlist}");
    }

    // ffprobe reads the init segment plus a media segment.
    let dir = TempDir::new("probe");
    let init = http(&server, &format!("/live/{stream}/source/init.mp4")).1;
    let seg = http(&server, &format!("/live/{stream}/source/1.m4s")).1;
    let path = dir.0.join("s1.mp4");
    std::fs::write(&path, [init, seg].concat()).unwrap();
    let probe = ffprobe(&path, "stream=codec_name,width,height,nb_read_frames");
    assert!(probe.contains("codec_name=h264"), "{probe}");
    assert!(
        probe.contains("width=640") && probe.contains("height=360"),
        "{probe}"
    );
    assert!(probe.contains("nb_read_frames=60"), "{probe}");
    let ainit = http(&server, &format!("/live/{stream}/audio/init.mp4")).1;
    let aseg = http(&server, &format!("/live/{stream}/audio/1.m4s")).1;
    let apath = dir.0.join("a1.mp4");
    std::fs::write(&apath, [ainit, aseg].concat()).unwrap();
    let aprobe = ffprobe(&apath, "stream=codec_name,sample_rate");
    assert!(
        aprobe.contains("codec_name=aac") && aprobe.contains("sample_rate=48000"),
        "{aprobe}"
    );

    // ffmpeg reads the whole stream through HLS and through DASH: 7 s at 30 fps.
    let hls = frames_read(&format!("http://{}/live/{stream}/index.m3u8", server.addr));
    assert!((205..=210).contains(&hls), "HLS frames: {hls}");
    let dash = frames_read(&format!(
        "http://{}/live/{stream}/manifest.mpd",
        server.addr
    ));
    assert!((205..=210).contains(&dash), "DASH frames: {dash}");

    // Segments answer Range, with CORS.
    let mut s = server.connect();
    write!(
        s,
        "GET /live/{stream}/source/1.m4s HTTP/1.1\r\nHost: t\r\nRange: bytes=0-7\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(&r.body[4..8], b"styp");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    let (_, _, playlist_headers) = http(&server, &format!("/live/{stream}/source/index.m3u8"));
    assert!(
        playlist_headers
            .to_lowercase()
            .contains("cache-control: no-cache"),
        "{playlist_headers}"
    );
    let streams: serde_json::Value =
        serde_json::from_slice(&http(&server, "/api/v1/streams").1).unwrap();
    let entry = &streams["streams"][0];
    assert_eq!(entry["stream"], stream);
    assert_eq!(entry["width"], 640);
    assert!(entry["video_codec"].as_str().unwrap().starts_with("avc1."));
    assert!(server.metric("shardcast_media_segments_total") >= 6);
    // Each part (video and audio) is timed once on every shard, from its last sample's
    // arrival to being servable there.
    let parts = server.metric("shardcast_media_parts_total");
    assert!(parts >= 2 * 4 * 3, "parts: {parts}");
    assert_eq!(
        server.metric("shardcast_media_part_ready_latency_seconds_count"),
        parts * server.metric("shardcast_shards")
    );
}

#[test]
fn h264_aac_without_b_frames_is_playable_over_hls_and_dash() {
    check_h264_publish(false);
}

#[test]
fn h264_aac_with_b_frames_is_playable_over_hls_and_dash() {
    check_h264_publish(true);
}

#[test]
fn hevc_over_enhanced_rtmp_is_packaged_as_hvc1() {
    let server = Server::start("uring", 2, "");
    let ffmpeg = common::modern_ffmpeg();
    let video = [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "keyint=60:log-level=error",
    ];
    let publisher = Publish::start(&ffmpeg, &rtmp_url(&server, "hevc"), 5, &video);
    let (ok, err) = publisher.wait();
    assert!(ok, "{err}");
    let master = text(&server, "/live/hevc/index.m3u8");
    assert!(master.contains("CODECS=\"hvc1."), "{master}");
    let dir = TempDir::new("hevc");
    let init = http(&server, "/live/hevc/source/init.mp4").1;
    let seg = http(&server, "/live/hevc/source/0.m4s").1;
    let path = dir.0.join("h.mp4");
    std::fs::write(&path, [init, seg].concat()).unwrap();
    let probe = ffprobe(&path, "stream=codec_name,codec_tag_string,width,height");
    assert!(probe.contains("codec_name=hevc"), "{probe}");
    assert!(probe.contains("codec_tag_string=hvc1"), "{probe}");
    assert!(probe.contains("width=640"), "{probe}");
    let frames = frames_read(&format!("http://{}/live/hevc/index.m3u8", server.addr));
    assert!((145..=150).contains(&frames), "HEVC frames: {frames}");
}

#[test]
fn ll_hls_blocking_reload_returns_the_part_it_asked_for() {
    let server = Server::start("uring", 2, "");
    let _publisher = Publish::start(FFMPEG, &rtmp_url(&server, "ll"), 12, &H264);
    let playlist = wait_for_segments(&server, "ll", "source", 1);
    assert!(playlist.contains("CAN-BLOCK-RELOAD=YES"), "{playlist}");
    assert!(
        playlist.contains("#EXT-X-PART-INF:PART-TARGET="),
        "{playlist}"
    );
    // The preload hint names the next part: ask for a playlist that contains it.
    let hint = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .expect("preload hint")
        .trim_end_matches('"')
        .to_string();
    let (msn, part) = hint.trim_end_matches(".m4s").split_once('.').unwrap();
    let started = Instant::now();
    let query = format!("/live/ll/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
    let blocked = text(&server, &query);
    let waited = started.elapsed();
    assert!(blocked.contains(&format!("URI=\"{hint}\"")), "{blocked}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The hinted part itself, asked before it exists, is answered once it does.
    let (msn, part): (u64, u32) = (msn.parse().unwrap(), part.parse().unwrap());
    let next_hint = blocked
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let (status, body, _) = http(&server, &format!("/live/ll/source/{next_hint}"));
    assert_eq!(status, 200);
    assert_eq!(&body[4..8], b"moof", "a part is a moof + mdat");
    let (status, _, _) = http(&server, &format!("/live/ll/source/{msn}.{part}.m4s"));
    assert_eq!(status, 200);
    // Malformed directives are 400.
    let (status, _, _) = http(&server, "/live/ll/source/index.m3u8?_HLS_part=1");
    assert_eq!(status, 400);
    let (status, _, _) = http(&server, "/live/ll/source/index.m3u8?_HLS_msn=999999");
    assert_eq!(status, 400);
    assert!(server.metric("shardcast_media_blocked_requests_total") >= 2);
}

/// The number of the newest complete segment of `stream`'s `rendition`.
fn last_complete_msn(server: &Server, stream: &str, rendition: &str) -> u64 {
    let playlist = text(server, &format!("/live/{stream}/{rendition}/index.m3u8"));
    playlist
        .lines()
        .filter_map(|l| l.strip_suffix(".m4s")?.parse::<u64>().ok())
        .max()
        .unwrap_or_else(|| panic!("no complete segment:\n{playlist}"))
}

#[test]
fn a_segment_being_made_goes_out_part_by_part_with_chunked_transfer() {
    let config = "[media]\nsegment_target_ms = 1000\npart_target_ms = 200\n";
    let server = Server::start("uring", 2, config);
    let gop_1s = [
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p",
    ];
    let _publisher = Publish::start(FFMPEG, &rtmp_url(&server, "lld"), 14, &gop_1s);
    wait_for_segments(&server, "lld", "source", 1);
    let mpd = text(&server, "/live/lld/manifest.mpd");
    assert!(mpd.contains("availabilityTimeComplete=\"false\""), "{mpd}");

    // One keep-alive connection asks for each segment as soon as the previous one is
    // complete, for video and audio in turn: every answer is chunked, comes part by part
    // while the segment is made, and is byte for byte the segment served whole afterwards.
    let mut conn = server.connect();
    let mut spread_out = 0;
    for round in 0..6 {
        let rendition = if round % 2 == 0 { "source" } else { "audio" };
        let msn = last_complete_msn(&server, "lld", rendition) + 1;
        let path = format!("/live/lld/{rendition}/{msn}.m4s");
        write!(conn, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let (response, chunks) = common::read_response_timed(&mut conn).expect("an answer");
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("transfer-encoding"),
            Some("chunked"),
            "{path}"
        );
        let (whole_status, whole, headers) = http(&server, &path);
        assert_eq!(whole_status, 200);
        assert!(headers.contains("Content-Length"), "{headers}");
        assert_eq!(
            response.body, whole,
            "{path}: streamed bytes differ from the segment"
        );
        assert_eq!(&response.body[4..8], b"styp");
        let first = chunks.first().unwrap().0;
        let last = chunks.last().unwrap().0;
        if chunks.len() >= 3 && last.duration_since(first) >= Duration::from_millis(400) {
            spread_out += 1;
        }
    }
    assert!(
        spread_out >= 4,
        "segments should arrive as they are made: {spread_out}/6"
    );

    // A byte range, HEAD and HTTP/1.0 wait for the whole segment instead.
    let msn = last_complete_msn(&server, "lld", "source") + 1;
    let mut s = server.connect();
    write!(
        s,
        "GET /live/lld/source/{msn}.m4s HTTP/1.1\r\nHost: t\r\nRange: bytes=0-99\r\n\r\n"
    )
    .unwrap();
    let ranged = read_response(&mut s).unwrap();
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body.len(), 100);
    let mut s = server.connect();
    write!(s, "GET /live/lld/source/{}.m4s HTTP/1.0\r\n\r\n", msn + 1).unwrap();
    let old = read_response(&mut s).unwrap();
    assert_eq!(old.status, 200);
    assert!(old.header("transfer-encoding").is_none() && old.header("content-length").is_some());
    assert!(server.metric("shardcast_media_blocked_requests_total") >= 6);
}

#[test]
fn a_backup_takes_over_from_a_stalled_primary_and_the_primary_takes_back() {
    let server = Server::start("uring", 2, "[media]\nfailover_ms = 800\n");
    let primary = Publish::start(FFMPEG, &rtmp_url(&server, "fo"), 40, &H264);
    wait_for_segments(&server, "fo", "source", 2);
    let backup_url = format!("{}?role=backup", rtmp_url(&server, "fo"));
    let backup = Publish::start(FFMPEG, &backup_url, 40, &H264);
    std::thread::sleep(Duration::from_secs(2));
    // The primary stalls (stops sending, connection open): the backup takes over.
    primary.signal(libc::SIGSTOP);
    let segments_after = |needle: &str, more: usize| {
        let before = extinfs(&text(&server, "/live/fo/source/index.m3u8")).len();
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            let p = text(&server, "/live/fo/source/index.m3u8");
            if server.log().contains(needle) && extinfs(&p).len() >= before + more {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?}:\n{p}\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let playlist = segments_after("switched to the backup publisher", 3);
    assert!(playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
    // The primary comes back: it takes over again at its next keyframe.
    primary.signal(libc::SIGCONT);
    let playlist = segments_after("switched to the primary publisher", 2);
    assert!(!playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    // Numbering never skips, and media time never goes back (DASH keeps one timeline).
    let uris: Vec<u64> = playlist
        .lines()
        .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .map(|l| l.trim_end_matches(".m4s").parse().unwrap())
        .collect();
    for w in uris.windows(2) {
        assert_eq!(w[1], w[0] + 1, "segment numbers continue: {uris:?}");
    }
    let mpd = text(&server, "/live/fo/manifest.mpd");
    assert!(mpd.contains("<S t="), "{mpd}");
    assert!(server.metric("shardcast_media_failovers_total") >= 2);
    // The transcoded rung follows: the same segments, discontinuities where the source has
    // them (it may trail the source by a segment while the worker finishes one).
    let source = segments_of(&playlist);
    let rung = segments_of(&text(&server, "/live/fo/360p/index.m3u8"));
    assert!(rung.len() + 1 >= source.len(), "{rung:?}\n{source:?}");
    assert!(rung.iter().any(|r| r.3), "{rung:?}");
    for r in &rung {
        let s = source
            .iter()
            .find(|s| s.0 == r.0)
            .unwrap_or_else(|| panic!("rung segment {} not in the source: {source:?}", r.0));
        assert_eq!((&r.1, r.3), (&s.1, s.3), "segment {}", r.0);
    }
    // The backup disconnecting while the primary is active changes nothing for viewers.
    drop(backup);
    std::thread::sleep(Duration::from_secs(1));
    let playlist = text(&server, "/live/fo/source/index.m3u8");
    assert!(!playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    drop(primary);
}

#[test]
fn refused_publishes_get_an_rtmp_error() {
    let dir = TempDir::new("keys");
    let config = "[auth]\nsecret = \"media-secret\"\n[media]\npublish_tokens = true\n\
                  [[media.publish_keys]]\nstream = \"keyed\"\nkey = \"k3y\"\n";
    let server = Server::start_in(dir, "uring", 1, config);
    // No key: refused.
    let (ok, err) = Publish::start(FFMPEG, &rtmp_url(&server, "keyed"), 2, &H264).wait();
    assert!(!ok, "published without a key");
    assert!(
        err.to_lowercase().contains("key") || err.contains("Denied"),
        "{err}"
    );
    // The right key: accepted.
    let (ok, err) = Publish::start(
        FFMPEG,
        &format!("{}?key=k3y", rtmp_url(&server, "keyed")),
        2,
        &H264,
    )
    .wait();
    assert!(ok, "{err}");
    // A publish token for this stream: accepted; a viewer token: refused.
    let token = |extra: &[&str]| {
        let out = Command::new(common::binary())
            .args(["token", "--user", "enc", "--secret", "media-secret"])
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let publish = token(&["--publish", "--stream", "tok"]);
    let url = format!("{}?token={publish}", rtmp_url(&server, "tok"));
    let (ok, err) = Publish::start(FFMPEG, &url, 2, &H264).wait();
    assert!(ok, "{err}");
    let viewer = token(&["--room", "tok"]);
    let url = format!("{}?token={viewer}", rtmp_url(&server, "tok"));
    let (ok, _) = Publish::start(FFMPEG, &url, 2, &H264).wait();
    assert!(!ok, "a viewer token published");
    // An unsupported codec (Sorenson H.263) is refused by name.
    let video = ["-c:v", "flv1"];
    let url = format!("{}?key=k3y", rtmp_url(&server, "keyed"));
    let (ok, _) = Publish::start(FFMPEG, &url, 2, &video).wait();
    assert!(!ok, "flv1 was accepted");
    // ffmpeg only reads server messages between writes, so whether it prints the RTMP error
    // or just the closed socket varies; the server's side is checked here.
    assert!(
        server
            .log()
            .contains("unsupported video codec Sorenson H.263"),
        "{}",
        server.log()
    );
    assert!(server.metric("shardcast_media_unsupported_codecs_total") >= 1);
    assert!(server.metric("shardcast_media_publishes_refused_total") >= 2);
}

#[test]
fn the_on_publish_webhook_decides() {
    // Allows stream "yes", refuses the rest; records every call.
    let (hook, seen) = common::webhook_server("yes", 3);
    let config = format!("[media]\non_publish = \"{hook}\"\non_unpublish = \"{hook}\"\n");
    let server = Server::start("epoll", 2, &config);
    let (ok, err) = Publish::start(FFMPEG, &rtmp_url(&server, "yes"), 2, &H264).wait();
    assert!(ok, "{err}");
    let (ok, _) = Publish::start(FFMPEG, &rtmp_url(&server, "no"), 2, &H264).wait();
    assert!(!ok, "the webhook's 403 was ignored");
    // publish "yes", unpublish "yes", publish "no" (refused, so no unpublish).
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "webhooks seen: {:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = seen.lock().unwrap();
    assert!(seen[0].starts_with("POST /hook HTTP/1.1"));
    assert!(seen[0].contains("\"action\":\"publish\""), "{}", seen[0]);
    let unpublish = seen
        .iter()
        .filter(|r| r.contains("\"action\":\"unpublish\""))
        .count();
    assert_eq!(unpublish, 1, "{seen:?}");
}

#[test]
fn signed_playback_urls_are_enforced_and_propagated() {
    let server = Server::start(
        "uring",
        1,
        "[auth]\nsecret = \"play-secret\"\n[media]\nplayback_tokens = true\n",
    );
    let (ok, err) = Publish::start(FFMPEG, &rtmp_url(&server, "paid"), 3, &H264).wait();
    assert!(ok, "{err}");
    assert_eq!(http(&server, "/live/paid/index.m3u8").0, 401);
    assert_eq!(http(&server, "/live/paid/index.m3u8?token=forged").0, 403);
    let out = Command::new(common::binary())
        .args([
            "token",
            "--user",
            "v",
            "--play",
            "--stream",
            "paid",
            "--secret",
            "play-secret",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // A chat token for the same room is not a playback token.
    let out = Command::new(common::binary())
        .args([
            "token",
            "--user",
            "v",
            "--room",
            "paid",
            "--secret",
            "play-secret",
        ])
        .output()
        .unwrap();
    let chat = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        http(&server, &format!("/live/paid/index.m3u8?token={chat}")).0,
        403
    );
    let master = text(&server, &format!("/live/paid/index.m3u8?token={token}"));
    assert!(
        master.contains(&format!("source/index.m3u8?token={token}")),
        "{master}"
    );
    let media = text(
        &server,
        &format!("/live/paid/source/index.m3u8?token={token}"),
    );
    assert!(media.contains(&format!("0.m4s?token={token}")), "{media}");
    let (status, _, headers) = http(&server, &format!("/live/paid/source/0.m4s?token={token}"));
    assert_eq!(status, 200);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("cache-control: private"),
        "a segment behind a token is not for shared caches: {headers}"
    );
    assert_eq!(http(&server, "/live/paid/source/0.m4s").0, 401);
    // The stream list would name it: closed without http.api_token.
    assert_eq!(http(&server, "/api/v1/streams").0, 403);
}

#[test]
fn a_replay_behind_playback_tokens_plays_with_its_token() {
    let server = Server::start(
        "uring",
        1,
        "[auth]\nsecret = \"play-secret\"\n[http]\napi_token = \"ops\"\n\
         [media]\nplayback_tokens = true\nrecord = true\n[transcode]\nenabled = false\n",
    );
    let (ok, err) = Publish::start(FFMPEG, &rtmp_url(&server, "paid"), 4, &H264).wait();
    assert!(ok, "{err}");
    let token = common::mint_token(&[
        "--user",
        "v",
        "--play",
        "--stream",
        "paid",
        "--secret",
        "play-secret",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let entry = loop {
        let mut s = server.connect();
        write!(
            s,
            "GET /api/v1/recordings HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ops\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let list: serde_json::Value =
            serde_json::from_slice(&read_response(&mut s).unwrap().body).unwrap();
        if list["recordings"][0]["complete"] == true {
            break list["recordings"][0].clone();
        }
        assert!(Instant::now() < deadline, "no complete recording: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let hls = entry["hls"].as_str().unwrap();
    assert_eq!(http(&server, hls).0, 401, "a replay needs the token too");
    let url = format!("http://{}{hls}?token={token}", server.addr);
    let frames = frames_read(&url);
    assert!((115..=122).contains(&frames), "replayed frames: {frames}");
}

#[test]
fn malformed_rtmp_closes_only_that_connection() {
    let server = Server::start(
        "uring",
        1,
        "[rtmp]\nhandshake_timeout_ms = 1000\nmessage_max_bytes = 1048576\n",
    );
    let publisher = Publish::start(FFMPEG, &rtmp_url(&server, "steady"), 8, &H264);
    wait_for_segments(&server, "steady", "source", 1);
    let closed = |bytes: &[u8]| {
        let mut s = TcpStream::connect(server.rtmp_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        let mut buf = vec![0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    };
    // A bad version byte.
    assert!(closed(&[0x06; 1537]));
    // A handshake that never completes (timeout).
    assert!(closed(&[0x03]));
    // A valid C0+C1, then garbage chunks with an oversized message length.
    let mut bytes = vec![0x03];
    bytes.extend(vec![0u8; 1536]);
    bytes.extend(vec![0u8; 1536]); // C2
    bytes.extend([0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0]);
    bytes.extend(vec![0xab; 4096]);
    assert!(closed(&bytes));
    // Pseudo-random byte soup after a valid handshake, many times.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut soup = vec![0x03];
        soup.extend(vec![0u8; 3072]);
        for _ in 0..2048 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            soup.push(seed as u8);
        }
        assert!(closed(&soup));
    }
    // The real publisher was never disturbed.
    let (ok, err) = publisher.wait();
    assert!(ok, "{err}");
    let playlist = wait_for_end(&server, "steady", "source");
    assert!(extinfs(&playlist).len() >= 3, "{playlist}");
    assert!(server.metric("shardcast_media_rtmp_errors_total") >= 20);
}

// ---------------------------------------------------------------------------- transcoding
//
// The transcoding tests count pictures, so they give each stream a deep queue
// (`queue_max_ms = 30000`): on a loaded machine a worker may run slower than real time for a
// while, and skipping to keyframes is the subject of its own test.

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

/// (pts_time, keyframe) of the first packet ffprobe reads from `init` + `segment`.
fn first_packet(dir: &TempDir, name: &str, init: &[u8], segment: &[u8]) -> (String, bool) {
    let path = dir.0.join(name);
    std::fs::write(&path, [init, segment].concat()).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args([
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
            "-read_intervals",
            "%+#1",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().next().unwrap_or_default();
    let (pts, flags) = line.split_once(',').unwrap_or((line, ""));
    (pts.to_string(), flags.starts_with('K'))
}

#[test]
fn a_1080p_source_yields_every_rung_aligned_with_the_source() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 30000\n",
    );
    let stream = "ladder";
    let publisher = Publish::start_sized(
        FFMPEG,
        &rtmp_url(&server, stream),
        7,
        "1920x1080",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    wait_for_segments(&server, stream, "360p", 1);
    let master = text(&server, &format!("/live/{stream}/index.m3u8"));
    for (rendition, resolution) in [
        ("source", "1920x1080"),
        ("720p", "1280x720"),
        ("480p", "854x480"),
        ("360p", "640x360"),
    ] {
        let variant = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, uri)| *uri == format!("{rendition}/index.m3u8"))
            .map(|(inf, _)| inf)
            .unwrap_or_else(|| panic!("no variant {rendition}:\n{master}"));
        assert!(
            variant.contains(&format!("RESOLUTION={resolution}")),
            "{variant}"
        );
        assert!(variant.contains("CODECS=\"avc1."), "{variant}");
        assert!(variant.contains("BANDWIDTH="), "{variant}");
    }
    let mpd = text(&server, &format!("/live/{stream}/manifest.mpd"));
    for rung in ["720p", "480p", "360p"] {
        assert!(mpd.contains(&format!("id=\"{rung}\"")), "{mpd}");
    }
    // While live, every rung's facts (reported every second by its worker) are in /metrics
    // and /api/v1/streams.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let m = text(&server, "/metrics");
        if m.contains("shardcast_rung_fps{stream=\"ladder\",rung=\"360p\"}") {
            break m;
        }
        assert!(Instant::now() < deadline, "no rung metrics:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for series in ["fps", "speed", "queue_depth", "skipped"] {
        for rung in ["720p", "480p", "360p"] {
            let name = format!("shardcast_rung_{series}{{stream=\"ladder\",rung=\"{rung}\"}} ");
            assert!(metrics.contains(&name), "{name}");
        }
    }
    assert!(
        metrics.contains(
            "shardcast_rung_info{stream=\"ladder\",rung=\"720p\",encoder=\"libx264\",\
             width=\"1280\",height=\"720\""
        ),
        "{metrics}"
    );
    let streams: serde_json::Value =
        serde_json::from_slice(&http(&server, "/api/v1/streams").1).unwrap();
    let renditions = streams["streams"][0]["renditions"].as_array().unwrap();
    let rung = renditions.iter().find(|r| r["name"] == "480p").unwrap();
    assert_eq!(rung["transcode"]["encoder"], "libx264");
    assert_eq!(rung["transcode"]["width"], 854);
    assert!(rung["transcode"]["fps"].as_f64().unwrap() > 0.0, "{rung}");
    let (ok, err) = publisher.wait();
    assert!(ok, "publisher failed: {err}");

    let source = segments_of(&wait_for_end(&server, stream, "source"));
    assert!(source.len() >= 3, "{source:?}");
    let dir = TempDir::new("ladder");
    for (rung, width, height, kbps) in [
        ("720p", 1280, 720, 2500.0),
        ("480p", 854, 480, 1200.0),
        ("360p", 640, 360, 600.0),
    ] {
        // Same segments as the source: numbers, durations and (below) first pictures.
        let segments = segments_of(&wait_for_end(&server, stream, rung));
        let shape = |s: &[(u64, String, String, bool)]| -> Vec<(u64, String)> {
            s.iter().map(|(n, d, _, _)| (*n, d.clone())).collect()
        };
        assert_eq!(shape(&segments), shape(&source), "{rung}");
        let init = http(&server, &format!("/live/{stream}/{rung}/init.mp4")).1;
        let mut bytes = 0usize;
        let mut seconds = 0.0;
        for (i, (n, duration, uri, _)) in segments.iter().enumerate() {
            let body = http(&server, &format!("/live/{stream}/{rung}/{uri}")).1;
            let source_body = http(&server, &format!("/live/{stream}/source/{}", source[i].2)).1;
            let (_, key) = first_packet(&dir, &format!("{rung}-{n}.mp4"), &init, &body);
            assert!(key, "{rung} segment {n} starts with a keyframe");
            // Both start with the keyframe, whose decode time is its presentation time.
            assert_eq!(
                first_tfdt(&body),
                first_tfdt(&source_body),
                "{rung} segment {n} starts where the source's does"
            );
            if i + 1 < segments.len() {
                bytes += body.len();
                seconds += duration.parse::<f64>().unwrap();
            }
            if i == 1 {
                let path = dir.0.join(format!("{rung}-probe.mp4"));
                std::fs::write(&path, [&init[..], &body].concat()).unwrap();
                let probe = ffprobe(&path, "stream=codec_name,width,height,nb_read_frames");
                assert!(probe.contains("codec_name=h264"), "{probe}");
                assert!(probe.contains(&format!("width={width}")), "{probe}");
                assert!(probe.contains(&format!("height={height}")), "{probe}");
                assert!(probe.contains("nb_read_frames=60"), "{rung}: {probe}");
            }
        }
        let measured_kbps = bytes as f64 * 8.0 / seconds / 1000.0;
        assert!(
            (measured_kbps - kbps).abs() <= 0.15 * kbps,
            "{rung}: {measured_kbps:.0} kb/s for a {kbps} kb/s target"
        );
    }
    // The whole ladder reads to the end through HLS: 7 s at 30 fps on the lowest rung.
    let frames = frames_read(&format!(
        "http://{}/live/{stream}/360p/index.m3u8",
        server.addr
    ));
    assert!((205..=210).contains(&frames), "360p frames: {frames}");
    assert_eq!(
        server.metric("shardcast_transcode_samples_skipped_total"),
        0
    );
    assert!(server.metric("shardcast_transcode_frames_encoded_total") >= 3 * 205);
    // Every FFmpeg object of the stream was freed when it ended.
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
    // No GPU here: the probe says why each hardware encoder was passed over.
    let log = server.log();
    for encoder in ["h264_nvenc", "h264_qsv", "h264_vaapi"] {
        assert!(
            log.contains(&format!("transcode: {encoder} not used: ")),
            "{log}"
        );
    }
    assert!(log.contains("transcode: libx264 opens"), "{log}");
}

/// Generates `seconds` of a `size` test pattern with a tone as an FLV file (keyframes every
/// 2 s).
fn flv_file(dir: &TempDir, name: &str, size: &str, seconds: u32) -> std::path::PathBuf {
    let path = dir.0.join(name);
    let out = Command::new(FFMPEG)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
        .args([
            "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
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

/// The FLV tags of a file: (type, timestamp ms, body).
fn flv_tags(path: &std::path::Path) -> Vec<(u8, u32, Vec<u8>)> {
    use shardcast_media::flv::TagKind;
    let data = bytes::Bytes::from(std::fs::read(path).unwrap());
    shardcast_media::flv::read_file(&data)
        .expect("an FLV file")
        .into_iter()
        .map(|tag| {
            let kind = match tag.kind {
                TagKind::Audio => 8,
                TagKind::Video => 9,
                TagKind::Script => 18,
                TagKind::Other(kind) => kind,
            };
            (kind, tag.timestamp_ms, tag.body.to_vec())
        })
        .collect()
}

/// Publishes the tags of `files` one after the other on one RTMP session, each file's
/// timestamps following the previous file's; at real-time pace when `paced`, else as fast as
/// the connection takes them.
fn publish_flv_files(server: &Server, stream: &str, files: &[std::path::PathBuf], paced: bool) {
    use shardcast_rtmp::{ClientConfig, ClientSession};
    let mut tcp = TcpStream::connect(server.rtmp_addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut client = ClientSession::new(ClientConfig::new("live", stream));
    let mut buf = vec![0u8; 65536];
    let mut pump = |client: &mut ClientSession, tcp: &mut TcpStream| {
        while let Some(out) = client.poll_transmit() {
            tcp.write_all(&out).unwrap();
        }
        match tcp.read(&mut buf) {
            Ok(0) => panic!("server closed the publishing connection"),
            Ok(n) => client.handle_input(&buf[..n]).unwrap(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_publishing() {
        assert!(Instant::now() < deadline, "publish not accepted");
        pump(&mut client, &mut tcp);
    }
    let start = Instant::now();
    let mut offset = 0u32;
    for file in files {
        let tags = flv_tags(file);
        let mut last = 0;
        for (kind, ts, body) in tags {
            let at = offset + ts;
            last = last.max(ts);
            while paced && start.elapsed() < Duration::from_millis(u64::from(at)) {
                pump(&mut client, &mut tcp);
            }
            match kind {
                8 => client.send_audio(at, &body).unwrap(),
                9 => client.send_video(at, &body).unwrap(),
                _ => {}
            }
        }
        offset += last + 34;
    }
    client.unpublish();
    for _ in 0..20 {
        pump(&mut client, &mut tcp);
    }
}

#[test]
fn a_recorded_stream_is_replayed_whole_over_hls_and_dash_and_listed() {
    let server = Server::start(
        "uring",
        2,
        "[media]\nrecord_streams = [\"rec*\"]\n[transcode]\nenabled = false\n",
    );
    let publisher = Publish::start(FFMPEG, &rtmp_url(&server, "rec1"), 7, &H264);
    let other = Publish::start(FFMPEG, &rtmp_url(&server, "live1"), 3, &H264);
    let (ok, err) = publisher.wait();
    assert!(ok, "{err}");
    assert!(other.wait().0);
    wait_for_end(&server, "rec1", "source");
    // Only the stream the rule names is recorded, and it is complete once its end is in.
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let list: serde_json::Value =
            serde_json::from_str(&text(&server, "/api/v1/recordings")).unwrap();
        let recordings = list["recordings"].as_array().unwrap().clone();
        assert!(recordings.iter().all(|r| r["stream"] == "rec1"), "{list}");
        if let Some(done) = recordings.iter().find(|r| r["complete"] == true) {
            break done.clone();
        }
        assert!(Instant::now() < deadline, "no complete recording: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(entry["lost_segments"], 0, "{entry}");
    let duration = entry["duration_s"].as_f64().unwrap();
    assert!((6.0..=7.5).contains(&duration), "{entry}");
    let hls_path = entry["hls"].as_str().unwrap();
    let hls = format!("http://{}{hls_path}", server.addr);
    let dash = format!("http://{}{}", server.addr, entry["dash"].as_str().unwrap());
    // The whole recording plays back: 7 s at 30 fps, from either manifest.
    let frames = frames_read(&hls);
    assert!((200..=212).contains(&frames), "HLS replay frames: {frames}");
    let frames = frames_read(&dash);
    assert!(
        (200..=212).contains(&frames),
        "DASH replay frames: {frames}"
    );
    let media = text(
        &server,
        &hls_path.replace("index.m3u8", "source/index.m3u8"),
    );
    assert!(media.contains("#EXT-X-ENDLIST"), "{media}");
    assert_eq!(http(&server, "/vod/rec1/nope/index.m3u8").0, 404);
    assert_eq!(http(&server, "/vod/rec1/../x").0, 404);
    assert!(server.metric("shardcast_record_segments_written_total") >= 6);
}

/// The (width, height) in a baseline JPEG's SOF0 segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let at = jpeg.windows(2).position(|w| w == [0xFF, 0xC0])?;
    let h = u32::from(jpeg[at + 5]) << 8 | u32::from(jpeg[at + 6]);
    let w = u32::from(jpeg[at + 7]) << 8 | u32::from(jpeg[at + 8]);
    Some((w, h))
}

#[test]
fn the_transcode_thread_keeps_a_fresh_thumbnail_of_each_stream() {
    let server = Server::start(
        "uring",
        2,
        "[media]\nthumbnail_interval_ms = 1000\nthumbnail_width = 320\n\
         [transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 30000\nladder = [\n  \
         { name = \"144p\", height = 144, bitrate_kbps = 200 },\n]\n",
    );
    let _publisher = Publish::start(FFMPEG, &rtmp_url(&server, "thumbs"), 12, &H264);
    let deadline = Instant::now() + Duration::from_secs(30);
    let fetch = || http(&server, "/live/thumbs/thumb.jpg");
    let first = loop {
        let (status, body, headers) = fetch();
        if status == 200 {
            assert!(headers.contains("Content-Type: image/jpeg"), "{headers}");
            assert!(
                headers.contains("Cache-Control: public, max-age=2"),
                "{headers}"
            );
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no thumbnail: {status}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(&first[..2], &[0xFF, 0xD8], "a JPEG");
    assert_eq!(&first[first.len() - 2..], &[0xFF, 0xD9]);
    // 640x360 at 320 wide keeps the aspect.
    assert_eq!(jpeg_size(&first), Some((320, 180)));
    // The test picture moves: a newer thumbnail differs.
    let newer = loop {
        std::thread::sleep(Duration::from_millis(500));
        let (_, body, _) = fetch();
        if body != first {
            break body;
        }
        assert!(Instant::now() < deadline, "the thumbnail never changed");
    };
    assert_eq!(jpeg_size(&newer), Some((320, 180)));
    assert!(server.metric("shardcast_transcode_thumbnails_total") >= 2);
    // A stream that is not there has none.
    assert_eq!(http(&server, "/live/nothing/thumb.jpg").0, 404);
}

#[test]
fn without_transcoding_a_keyframe_per_interval_is_decoded_for_the_thumbnail() {
    let server = Server::start(
        "uring",
        2,
        "[media]\nthumbnail_interval_ms = 1000\n[transcode]\nenabled = false\n",
    );
    // Keyframes every second (-g 30) for 8 s.
    let gop_1s = [
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p",
    ];
    let url = format!(
        "{}?title=Morning%20show%20%E2%98%80",
        rtmp_url(&server, "plain")
    );
    let publisher = Publish::start(FFMPEG, &url, 8, &gop_1s);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = http(&server, "/live/plain/thumb.jpg");
        if status == 200 {
            assert_eq!(jpeg_size(&body), Some((320, 180)));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no thumbnail: {status}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The publisher's ?title= names the stream for the stream list.
    let streams: serde_json::Value =
        serde_json::from_str(&text(&server, "/api/v1/streams")).unwrap();
    assert_eq!(
        streams["streams"][0]["title"], "Morning show ☀",
        "{streams}"
    );
    assert!(publisher.wait().0);
    // The source is served as published (no rungs), and only keyframes were decoded: about
    // one a second of the 240 pictures.
    let playlist = text(&server, "/live/plain/index.m3u8");
    assert!(
        !playlist.contains("360p") && !playlist.contains("144p"),
        "{playlist}"
    );
    let decoded = server.metric("shardcast_transcode_frames_decoded_total");
    assert!((2..=12).contains(&decoded), "decoded {decoded} pictures");
    assert_eq!(server.metric("shardcast_transcode_frames_encoded_total"), 0);
}

#[test]
fn a_mid_stream_resolution_change_survives_in_every_rung() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 30000\nladder = [\n  \
         { name = \"180p\", height = 180, bitrate_kbps = 300 },\n  \
         { name = \"144p\", height = 144, bitrate_kbps = 200 },\n]\n",
    );
    let dir = TempDir::new("resize");
    // 16:9 then 4:3: every rung changes size.
    let files = [
        flv_file(&dir, "first.flv", "640x360", 4),
        flv_file(&dir, "second.flv", "320x240", 4),
    ];
    let stream = "resize";
    publish_flv_files(&server, stream, &files, true);

    let source = segments_of(&wait_for_end(&server, stream, "source"));
    assert!(
        source.iter().filter(|s| s.3).count() == 1,
        "one discontinuity at the change: {source:?}"
    );
    for (rung, sizes) in [
        ("180p", ["320x180", "240x180"]),
        ("144p", ["256x144", "192x144"]),
    ] {
        let playlist = wait_for_end(&server, stream, rung);
        let segments = segments_of(&playlist);
        let shape = |s: &[(u64, String, String, bool)]| -> Vec<(u64, String, bool)> {
            s.iter()
                .map(|(n, d, _, disc)| (*n, d.clone(), *disc))
                .collect()
        };
        assert_eq!(shape(&segments), shape(&source), "{rung}:\n{playlist}");
        // The first and the last segment, each with the header the playlist names for it (a
        // new one when the new encoder's differs).
        let map_of = |uri: &str| -> String {
            let mut map = String::new();
            for line in playlist.lines() {
                if let Some(m) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
                    map = m.trim_end_matches('"').to_string();
                } else if line == uri {
                    return map;
                }
            }
            panic!("{uri} not in\n{playlist}");
        };
        let ends = [&segments[0], segments.last().unwrap()];
        for (i, segment) in ends.into_iter().enumerate() {
            let map = map_of(&segment.2);
            let init = http(&server, &format!("/live/{stream}/{rung}/{map}")).1;
            let body = http(&server, &format!("/live/{stream}/{rung}/{}", segment.2)).1;
            let path = dir.0.join(format!("{rung}-{i}.mp4"));
            std::fs::write(&path, [init, body].concat()).unwrap();
            let probe = ffprobe(&path, "stream=width,height");
            let (w, h) = sizes[i].split_once('x').unwrap();
            assert!(
                probe.contains(&format!("width={w}")) && probe.contains(&format!("height={h}")),
                "{rung} segment {i}: {probe}"
            );
        }
        // A player reads the rung across the change to the end: 8 s at 30 fps.
        let frames = frames_read(&format!(
            "http://{}/live/{stream}/{rung}/index.m3u8",
            server.addr
        ));
        assert!((235..=242).contains(&frames), "{rung} frames: {frames}");
    }
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}

/// A publisher far ahead of real time (a burst of 12 s of media) puts the stream's worker
/// behind: it skips to keyframes, counted, and every rung still has every segment, numbered
/// like the source's, while the source itself loses nothing.
#[test]
fn a_worker_behind_real_time_skips_to_keyframes() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 300\nladder = [\n  \
         { name = \"180p\", height = 180, bitrate_kbps = 300 },\n]\n",
    );
    let dir = TempDir::new("burst");
    let file = flv_file(&dir, "burst.flv", "640x360", 12);
    publish_flv_files(&server, "burst", &[file], false);
    let source = segments_of(&wait_for_end(&server, "burst", "source"));
    let rung = segments_of(&wait_for_end(&server, "burst", "180p"));
    let numbers = |s: &[(u64, String, String, bool)]| s.iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(numbers(&rung), numbers(&source));
    assert_eq!(source.len(), 6);
    let skipped = server.metric("shardcast_transcode_samples_skipped_total");
    assert!(skipped > 0, "the worker never fell behind");
    assert!(
        server.log().contains("skipping to keyframes"),
        "{}",
        server.log()
    );
    // The source kept every picture: 12 s at 30 fps.
    let frames = frames_read(&format!(
        "http://{}/live/burst/source/index.m3u8",
        server.addr
    ));
    assert!((355..=361).contains(&frames), "source frames: {frames}");
    // The rung kept at least every keyframe, and fewer pictures than the source.
    let rung_frames = frames_read(&format!(
        "http://{}/live/burst/180p/index.m3u8",
        server.addr
    ));
    assert!(
        rung_frames >= 6 && rung_frames < frames,
        "rung frames: {rung_frames}"
    );
    assert_eq!(
        server.metric("shardcast_transcode_samples_in_total"),
        360,
        "every source picture reached the worker"
    );
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}

/// The luma of the first picture of `init` + `segment` at (x, y), and the picture's width.
fn luma_at(dir: &TempDir, name: &str, init: &[u8], segment: &[u8], x: usize, y: usize) -> u8 {
    let path = dir.0.join(name);
    std::fs::write(&path, [init, segment].concat()).unwrap();
    let width: usize = ffprobe(&path, "stream=width")
        .trim()
        .trim_start_matches("width=")
        .parse()
        .unwrap();
    let out = Command::new(FFMPEG)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout[y * width + x]
}

/// A configured watermark is drawn on the rungs of the streams it names, not on the source
/// (passed through) and not on other streams.
#[test]
fn watermarks_mark_the_rungs_of_the_streams_they_name() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 30000\nladder = [\n  \
         { name = \"180p\", height = 180, bitrate_kbps = 300 },\n]\nwatermarks = [\n  \
         { stream = \"marked\", filter = \"drawbox=x=0:y=0:w=96:h=96:color=white:t=fill\" },\n  \
         { stream = \"other\", text = \"shardcast: live\" },\n]\n",
    );
    let log = server.log();
    assert!(log.contains("stream \"marked\" watermarked"), "{log}");
    let dir = TempDir::new("watermark");
    let file = flv_file(&dir, "wm.flv", "640x360", 3);
    for stream in ["marked", "plain"] {
        publish_flv_files(&server, stream, std::slice::from_ref(&file), true);
    }
    for (stream, rendition, expect_white) in [
        ("marked", "180p", true),
        ("marked", "source", false),
        ("plain", "180p", false),
    ] {
        let playlist = segments_of(&wait_for_end(&server, stream, rendition));
        let init = http(&server, &format!("/live/{stream}/{rendition}/init.mp4")).1;
        let body = http(
            &server,
            &format!("/live/{stream}/{rendition}/{}", playlist[0].2),
        )
        .1;
        let luma = luma_at(
            &dir,
            &format!("{stream}-{rendition}.mp4"),
            &init,
            &body,
            10,
            10,
        );
        assert_eq!(
            luma > 200,
            expect_white,
            "{stream}/{rendition}: luma {luma}"
        );
    }
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}

/// A watermark that cannot be built (a missing image) stops the start with the reason.
#[test]
fn a_broken_watermark_refuses_to_start() {
    let dir = TempDir::new("badwm");
    let config = dir.0.join("shardcast.toml");
    std::fs::write(
        &config,
        "[transcode]\nwatermarks = [{ stream = \"*\", image = \"/nonexistent/logo.png\" }]\n",
    )
    .unwrap();
    let out = Command::new(common::binary())
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--rtmp",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("transcode.watermarks") && err.contains("logo.png"),
        "{err}"
    );
}

/// `transcode.codec = "hevc"`: the rungs are H.265 (`hvc1`, an hvcC built from the encoder's
/// parameter sets), aligned with an H.264 source like H.264 rungs are.
#[test]
fn hevc_rungs_from_an_h264_source() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\ncodec = \"hevc\"\npreset = \"ultrafast\"\nqueue_max_ms = 30000\nladder = [\n  \
         { name = \"180p\", height = 180, bitrate_kbps = 250 },\n]\n",
    );
    assert!(
        server.log().contains("transcode: libx265 opens"),
        "{}",
        server.log()
    );
    let dir = TempDir::new("hevcrungs");
    let file = flv_file(&dir, "h264.flv", "640x360", 5);
    publish_flv_files(&server, "hevcr", &[file], true);
    let source = segments_of(&wait_for_end(&server, "hevcr", "source"));
    let rung = segments_of(&wait_for_end(&server, "hevcr", "180p"));
    let shape = |s: &[(u64, String, String, bool)]| -> Vec<(u64, String)> {
        s.iter().map(|(n, d, _, _)| (*n, d.clone())).collect()
    };
    assert_eq!(shape(&rung), shape(&source));
    let master = text(&server, "/live/hevcr/index.m3u8");
    assert!(master.contains("CODECS=\"hvc1."), "{master}");
    assert!(master.contains("RESOLUTION=320x180"), "{master}");
    let init = http(&server, "/live/hevcr/180p/init.mp4").1;
    let body = http(&server, &format!("/live/hevcr/180p/{}", rung[0].2)).1;
    let path = dir.0.join("rung.mp4");
    std::fs::write(&path, [init, body].concat()).unwrap();
    let probe = ffprobe(
        &path,
        "stream=codec_name,codec_tag_string,width,height,nb_read_frames",
    );
    assert!(probe.contains("codec_name=hevc"), "{probe}");
    assert!(probe.contains("codec_tag_string=hvc1"), "{probe}");
    assert!(
        probe.contains("width=320") && probe.contains("height=180"),
        "{probe}"
    );
    assert!(probe.contains("nb_read_frames=60"), "{probe}");
    let frames = frames_read(&format!(
        "http://{}/live/hevcr/180p/index.m3u8",
        server.addr
    ));
    assert!((148..=151).contains(&frames), "frames: {frames}");
}

/// `transcode.opus_kbps`: an Opus rendition encoded from the source's AAC, in its own HLS audio
/// group and DASH adaptation set, with the source audio's segment numbers.
#[test]
fn an_opus_rendition_follows_the_source_audio() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 30000\nopus_kbps = 64\nladder = [\n  \
         { name = \"180p\", height = 180, bitrate_kbps = 250 },\n]\n",
    );
    let dir = TempDir::new("opus");
    let file = flv_file(&dir, "tone.flv", "640x360", 5);
    publish_flv_files(&server, "opus", &[file], true);
    let aac = segments_of(&wait_for_end(&server, "opus", "audio"));
    let opus = segments_of(&wait_for_end(&server, "opus", "audio-opus"));
    let numbers = |s: &[(u64, String, String, bool)]| s.iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(numbers(&opus), numbers(&aac));
    for (a, o) in aac.iter().zip(&opus) {
        let (a, o): (f64, f64) = (a.1.parse().unwrap(), o.1.parse().unwrap());
        assert!((a - o).abs() <= 0.045, "segment durations {a} and {o}");
    }
    let master = text(&server, "/live/opus/index.m3u8");
    assert!(
        master.contains("GROUP-ID=\"audio-opus\",NAME=\"audio-opus\""),
        "{master}"
    );
    assert!(master.contains("CODECS=\"avc1.42c00d,opus\""), "{master}");
    assert!(
        master.contains("CODECS=\"avc1.42c00d,mp4a.40.2\""),
        "{master}"
    );
    let mpd = text(&server, "/live/opus/manifest.mpd");
    assert!(mpd.contains("codecs=\"opus\""), "{mpd}");
    // Every Opus packet of the rendition, read by ffprobe: 5 s in 20 ms packets.
    let mut file = http(&server, "/live/opus/audio-opus/init.mp4").1;
    for segment in &opus {
        file.extend(http(&server, &format!("/live/opus/audio-opus/{}", segment.2)).1);
    }
    let path = dir.0.join("opus.mp4");
    std::fs::write(&path, file).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,sample_rate,nb_read_packets",
            "-of",
            "default=nw=1",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let probe = String::from_utf8_lossy(&out.stdout);
    assert!(probe.contains("codec_name=opus"), "{probe}");
    assert!(probe.contains("sample_rate=48000"), "{probe}");
    let packets: u64 = probe
        .lines()
        .find_map(|l| l.strip_prefix("nb_read_packets="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((245..=252).contains(&packets), "{probe}");
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}
