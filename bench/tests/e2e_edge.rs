//! Edges in front of origins, as separate processes on their own loopback addresses: two
//! origins, two edges (two shards each), ffmpeg publishing into one origin. Hundreds of HLS
//! and LL-HLS viewers on the edges, and every segment, part and init segment is asked of the
//! origins exactly once per edge (counted on the origins); an edge restarted under a crowd
//! refills with one origin request per object; an origin killed with -9 while a backup
//! publisher goes on into the other origin costs players one jump and no 5xx past the
//! failover window.

mod common;

use common::hls_viewer::{self, Mode, Seen};
use common::viewer::Viewer;
use common::{Publish, Server, TempDir, H264};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FFMPEG: &str = "ffmpeg";
const ORIGIN: &str = "[transcode]\nenabled = false\n";
const MEDIA_SERVED: &str = "shardcast_media_media_served_total";

fn origin(ip: &str) -> Server {
    Server::start_at(
        TempDir::new("origin"),
        "uring",
        1,
        ORIGIN,
        &format!("{ip}:0"),
    )
}

fn edge_config(origins: &[&Server], extra: &str) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("\"{}\"", o.addr)).collect();
    format!(
        "[edge]\norigins = [{}]\n{extra}[transcode]\nenabled = false\n",
        list.join(", ")
    )
}

fn edge_at(origins: &[&Server], http: &str, extra: &str) -> Server {
    let config = edge_config(origins, extra);
    Server::start_at(TempDir::new("edge"), "uring", 2, &config, http)
}

fn rtmp_url(server: &Server, stream: &str) -> String {
    format!("rtmp://{}/live/{stream}", server.rtmp_addr)
}

/// Waits until `server` lists at least `segments` segments of `stream`'s source.
fn wait_segments(server: &Server, stream: &str, segments: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let path = format!("/live/{stream}/source/index.m3u8");
    while Instant::now() < deadline {
        let response = server.get(&path);
        if response.status == 200 {
            let text = String::from_utf8_lossy(&response.body).to_string();
            if text
                .lines()
                .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
                .count()
                >= segments
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{stream} never had {segments} segments on {}", server.addr);
}

/// `hls` HLS viewers and `ll` LL-HLS viewers of `stream` on `addr`, for `seconds`.
fn crowd(
    addr: SocketAddr,
    stream: &str,
    hls: usize,
    ll: usize,
    seconds: u64,
) -> Vec<std::thread::JoinHandle<(Mode, Seen)>> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let base = format!("/live/{stream}/source/");
    let modes =
        std::iter::repeat_n(Mode::Hls, hls).chain(std::iter::repeat_n(Mode::LowLatency, ll));
    modes
        .map(|mode| {
            let base = base.clone();
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || (mode, hls_viewer::watch(addr, &base, mode, until)))
                .unwrap()
        })
        .collect()
}

fn media_served(origins: &[&Server]) -> u64 {
    origins.iter().map(|o| o.metric(MEDIA_SERVED)).sum()
}

/// The media objects a crowd got, checking each viewer got enough and no 5xx.
fn objects(
    crowd: Vec<std::thread::JoinHandle<(Mode, Seen)>>,
    edge: &str,
    server: &Server,
) -> BTreeSet<String> {
    let log = || -> String {
        (server.log().lines())
            .filter(|l| !l.contains("DEBUG"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut all = BTreeSet::new();
    for viewer in crowd {
        let (mode, seen) = viewer.join().expect("viewer thread");
        let errors: Vec<u16> = (seen.statuses.iter())
            .map(|&(_, s)| s)
            .filter(|&s| s == 0 || s >= 500)
            .collect();
        assert!(
            errors.is_empty(),
            "{edge}: a {mode:?} viewer saw {errors:?}: {:?}\n{}",
            seen.errors,
            log()
        );
        let least = match mode {
            Mode::Hls => 3,
            Mode::LowLatency => 15,
        };
        assert!(
            seen.media.len() >= least,
            "{edge}: a {mode:?} viewer got only {:?}",
            seen.media
        );
        all.extend(seen.media);
    }
    all
}

#[test]
fn each_object_is_fetched_once_per_edge_however_many_viewers_and_after_a_restart() {
    let a = origin("127.0.0.2");
    let b = origin("127.0.0.3");
    let e1 = edge_at(&[&a, &b], "127.0.0.4:0", "");
    let e2 = edge_at(&[&a, &b], "127.0.0.5:0", "");
    let _publisher = Publish::start(FFMPEG, &rtmp_url(&a, "edgecast"), 45, &H264);
    wait_segments(&a, "edgecast", 1);

    let before = media_served(&[&a, &b]);
    let viewers_1 = crowd(e1.addr, "edgecast", 150, 50, 12);
    let viewers_2 = crowd(e2.addr, "edgecast", 150, 50, 12);
    let seen_1 = objects(viewers_1, "edge 1", &e1);
    let seen_2 = objects(viewers_2, "edge 2", &e2);
    let fetched = media_served(&[&a, &b]) - before;
    assert_eq!(
        fetched,
        (seen_1.len() + seen_2.len()) as u64,
        "origin answers for {} objects on edge 1 and {} on edge 2",
        seen_1.len(),
        seen_2.len()
    );
    for edge in [&e1, &e2] {
        assert!(
            edge.metric("shardcast_edge_coalesced_total") > 0,
            "no miss ever waited on another's fetch"
        );
        assert_eq!(edge.metric("shardcast_edge_origin_failures_total"), 0);
    }

    // A restart empties edge 1's cache; a crowd arriving at once costs the origin one
    // request per object again, not one per viewer.
    let addr = e1.addr.to_string();
    drop(e1);
    let e1 = edge_at(&[&a, &b], &addr, "");
    let before = media_served(&[&a, &b]);
    let seen = objects(
        crowd(e1.addr, "edgecast", 100, 20, 5),
        "edge 1 restarted",
        &e1,
    );
    let fetched = media_served(&[&a, &b]) - before;
    assert_eq!(fetched, seen.len() as u64, "objects {seen:?}");
}

/// Changes of `#EXT-X-MEDIA-SEQUENCE` a player could not follow as one stream: backwards, or
/// forwards by more than the segments one poll can miss.
fn jumps(sequences: &[u64]) -> usize {
    sequences
        .windows(2)
        .filter(|w| w[1] < w[0] || w[1] > w[0] + 3)
        .count()
}

#[test]
fn edges_fail_over_when_an_origin_dies_and_its_backup_publisher_goes_on_in_the_other() {
    let a = origin("127.0.0.2");
    let b = origin("127.0.0.3");
    let edge = edge_at(&[&a, &b], "127.0.0.4:0", "");
    // The same stream in both origins: the encoder's two outputs.
    let _primary = Publish::start(FFMPEG, &rtmp_url(&a, "fo"), 40, &H264);
    let _backup = Publish::start(FFMPEG, &rtmp_url(&b, "fo"), 40, &H264);
    wait_segments(&a, "fo", 1);
    wait_segments(&b, "fo", 1);

    let (before_a, before_b) = (a.metric(MEDIA_SERVED), b.metric(MEDIA_SERVED));
    let viewers = crowd(edge.addr, "fo", 20, 10, 22);
    std::thread::sleep(Duration::from_secs(6));
    // Kill whichever origin the edge is using (with -9: no goodbye to anyone).
    let used_a = a.metric(MEDIA_SERVED) > before_a;
    let used_b = b.metric(MEDIA_SERVED) > before_b;
    assert!(
        used_a != used_b,
        "the edge used one origin for the stream (a {used_a}, b {used_b})"
    );
    let (dead, alive) = if used_a { (a, b) } else { (b, a) };
    let alive_before = alive.metric(MEDIA_SERVED);
    let killed_at = Instant::now();
    let _dir = dead.crash();
    let window = Duration::from_secs(5);

    for viewer in viewers {
        let (mode, seen) = viewer.join().unwrap();
        let late: Vec<u16> = (seen.statuses.iter())
            .filter(|(at, s)| *at > killed_at + window && (*s == 0 || *s >= 500))
            .map(|&(_, s)| s)
            .collect();
        assert!(
            late.is_empty(),
            "a {mode:?} viewer saw {late:?} after the failover window: {:?}\n{}",
            seen.errors,
            (edge.log().lines())
                .filter(|l| l.contains("WARN"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let early: Vec<u16> = (seen.statuses.iter())
            .filter(|(at, s)| *at < killed_at && (*s == 0 || *s >= 500))
            .map(|&(_, s)| s)
            .collect();
        assert!(
            early.is_empty(),
            "a {mode:?} viewer saw {early:?} before the kill"
        );
        let after = (seen.statuses.iter())
            .filter(|(at, s)| *at > killed_at + window && *s == 200)
            .count();
        assert!(
            after >= 5,
            "a {mode:?} viewer got {after} answers after the failover"
        );
        assert!(
            jumps(&seen.sequences) <= 1,
            "a {mode:?} viewer's sequences {:?}",
            seen.sequences
        );
    }
    assert!(
        alive.metric(MEDIA_SERVED) > alive_before,
        "the other origin served the edge"
    );
    assert!(edge.metric("shardcast_edge_origin_failures_total") > 0);
}

/// A port free on `ip` now (bound and released).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An origin on `ip` that registers its live streams in `redis` under its HTTP address.
fn mapped_origin(ip: &str, redis: &common::redis_server::RedisServer) -> Server {
    let http = format!("{ip}:{}", free_port(ip));
    let config = format!(
        "[auth]\nsecret = \"{SECRET}\"\n[state]\nredis = \"{}\"\norigin_advertise = \"{http}\"\n{ORIGIN}",
        redis.url()
    );
    Server::start_at(TempDir::new("origin"), "uring", 1, &config, &http)
}

const PLAYLISTS_SERVED: &str = "shardcast_media_playlists_served_total";
const SECRET: &str = "edge-e2e-secret-0123456789abcdef0123";

/// The edge's answer for `stream`'s media playlist, retried while the map catches up.
fn edge_playlist(edge: &Server, stream: &str, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    let path = format!("/live/{stream}/source/index.m3u8");
    loop {
        let status = edge.get(&path).status;
        if status == 200 || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn edges_find_streams_in_the_origin_map_and_follow_one_that_moves() {
    let redis = common::redis_server::RedisServer::start("edge-map");
    let a = mapped_origin("127.0.0.2", &redis);
    let b = mapped_origin("127.0.0.3", &redis);
    // No origins configured: the map alone says where streams are.
    let config = format!(
        "[auth]\nsecret = \"{SECRET}\"\n[state]\nredis = \"{}\"\n[edge]\norigin_map = true\n\
         [transcode]\nenabled = false\n",
        redis.url()
    );
    let edge = Server::start_at(TempDir::new("edge"), "uring", 2, &config, "127.0.0.4:0");

    // Danmaku on an edge is a room across hosts like any other (through the same Redis).
    let token = |user: &str| {
        common::mint_token(&[
            "--user", user, "--room", "moving", "--role", "viewer", "--secret", SECRET,
        ])
    };
    let mut on_edge = Viewer::join(&edge, "moving", &token("e"), 0);
    let mut on_origin = Viewer::join(&b, "moving", &token("o"), 0);
    on_edge.chat("from the edge");
    on_origin.read_until(Duration::from_secs(10), |s| !s.chats.is_empty());
    let heard: Vec<&str> = on_origin
        .seen
        .chats
        .iter()
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(heard, ["from the edge"], "{}", on_origin.summary());

    let on_b = Publish::start(FFMPEG, &rtmp_url(&b, "moving"), 30, &H264);
    wait_segments(&b, "moving", 1);
    assert_eq!(edge_playlist(&edge, "moving", Duration::from_secs(5)), 200);
    assert!(
        b.metric(PLAYLISTS_SERVED) > 1,
        "the edge asked the origin the map names"
    );
    let a_before = a.metric(PLAYLISTS_SERVED);
    assert_eq!(a_before, 0, "and nobody else");

    // The stream moves: it ends on b and starts on a, which takes the map's entry.
    drop(on_b);
    let _on_a = Publish::start(FFMPEG, &rtmp_url(&a, "moving"), 30, &H264);
    wait_segments(&a, "moving", 1);
    std::thread::sleep(Duration::from_millis(1200)); // the edge's answer from the map ages out
    assert_eq!(edge_playlist(&edge, "moving", Duration::from_secs(5)), 200);
    assert!(
        a.metric(PLAYLISTS_SERVED) > a_before,
        "the edge followed the stream to a"
    );
    assert_eq!(edge.metric("shardcast_edge_origin_failures_total"), 0);
}

#[test]
fn signed_playback_urls_are_checked_at_the_edge_and_carry_the_viewer_s_token() {
    let tokens = format!("[auth]\nsecret = \"{SECRET}\"\n[media]\nplayback_tokens = true\n");
    let a = Server::start_at(
        TempDir::new("origin"),
        "uring",
        1,
        &format!("{tokens}{ORIGIN}"),
        "127.0.0.2:0",
    );
    let edge = edge_at(&[&a], "127.0.0.4:0", &tokens);
    let _publisher = Publish::start(FFMPEG, &rtmp_url(&a, "signed"), 20, &H264);
    let token = common::mint_token(&[
        "--play", "--user", "v", "--stream", "signed", "--secret", SECRET,
    ]);
    let query = format!("token={token}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let playlist = loop {
        let response = edge.get(&format!("/live/signed/source/index.m3u8?{query}"));
        let text = String::from_utf8_lossy(&response.body).to_string();
        let segments = text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains(".m4s"));
        if response.status == 200 && segments {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no playlist through the edge: {} {text}",
            response.status
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        edge.get("/live/signed/source/index.m3u8").status,
        401,
        "no token"
    );
    assert_eq!(
        edge.get("/live/signed/source/index.m3u8?token=forged")
            .status,
        403,
        "a bad token"
    );
    // Every URI of the playlist carries the viewer's token (not the edge's own), and works.
    let uris: Vec<&str> = (playlist.lines())
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(!uris.is_empty(), "{playlist}");
    for uri in &uris {
        assert!(uri.ends_with(&query), "{uri} in {playlist}");
    }
    let parts = playlist.lines().filter(|l| l.starts_with("#EXT-X-PART:"));
    for part in parts {
        assert!(part.contains(&format!("?{query}\"")), "{part}");
    }
    let segment = edge.get(&format!("/live/signed/source/{}", uris[0]));
    assert_eq!(segment.status, 200);
    assert!(segment
        .header("cache-control")
        .unwrap_or("")
        .starts_with("private"));
}

#[test]
fn a_hung_origin_times_out_and_after_three_failures_is_skipped() {
    // An origin that takes connections and never answers (the kernel accepts for it).
    let hung = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let real = origin("127.0.0.3");
    let config = format!(
        "[edge]\norigins = [\"{}\", \"{}\"]\norigin_timeout_ms = 300\n\
         origin_timeout_min_ms = 100\nbreaker_open_ms = 60000\n[transcode]\nenabled = false\n",
        hung.local_addr().unwrap(),
        real.addr
    );
    let edge = Server::start_at(TempDir::new("edge"), "uring", 1, &config, "127.0.0.4:0");
    // Streams nobody has: each is asked of both origins (a 404 sends the edge on to the next),
    // so each costs the hung one a timeout.
    for i in 0..3 {
        let asked = Instant::now();
        let status = edge.get(&format!("/live/nope{i}/index.m3u8")).status;
        let took = asked.elapsed();
        assert_eq!(status, 404);
        assert!(
            took >= Duration::from_millis(280),
            "answered in {took:?}, before the timeout"
        );
        assert!(took < Duration::from_secs(2), "answered in {took:?}");
    }
    assert_eq!(edge.metric("shardcast_edge_origin_timeouts_total"), 3);
    assert_eq!(edge.metric("shardcast_edge_breaker_trips_total"), 1);
    // The breaker is open: the hung origin is not asked any more.
    let asked = Instant::now();
    assert_eq!(edge.get("/live/nope3/index.m3u8").status, 404);
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(edge.metric("shardcast_edge_origin_timeouts_total"), 3);
    drop(hung);
}
