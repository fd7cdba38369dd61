//! Edges in front of origins, as separate processes on their own loopback addresses: two
//! origins, two edges (two shards each), ffmpeg publishing into one origin. Hundreds of HLS
//! and LL-HLS viewers on the edges, and every segment, part and init segment is asked of the
//! origins exactly once per edge (counted on the origins); an edge restarted under a crowd
//! refills with one origin request per object; an origin killed with -9 while a backup
//! publisher goes on into the other origin costs players one jump and no 5xx past the
//! failover window.

mod common;

use common::hls_viewer::{self, Mode, Seen};
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
