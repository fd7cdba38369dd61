//! End-to-end tests of publishers that do unusual but legal things, against the real binary
//! with a real ffmpeg.

mod common;

use common::Server;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds published.
const PUBLISH_SECONDS: u64 = 14;

/// ffmpeg's first timestamp: 4294961 s, 6.3 s before 2^32 ms. Its FLV muxer keeps 31 bits
/// of each timestamp (the top byte masked with 0x7F), so what it sends over RTMP starts at
/// 2147477352 ms and wraps to 0 at the same instant, 6.3 s in.
const TS_OFFSET_SECONDS: &str = "4294961";

/// A publish whose timestamps wrap 6.3 s in is served whole: the playlists cover the 14 s,
/// and the segments after the wrap are there.
#[test]
fn a_publish_across_the_timestamp_wrap_is_served_whole() {
    let server = Server::start("uring", 1, "[transcode]\nenabled = false\n");
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

/// An ffmpeg child, killed if the test ends before it does.
struct Publisher(Child);

impl Publisher {
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
