//! Co-hosting against the real binary: two hosts publish their feeds (`show~0`, `show~1`)
//! over WHIP from str0m clients; each sees the other over WHEP as it was sent (forwarded, not
//! re-encoded); the transcode thread composes the program `show` (a grid with mixed sound),
//! which the audience gets as an ordinary stream. The program goes on when a host leaves and
//! ends with the last. Guests need a token of role `cohost`; the owner's slot takes none.

mod common;

use common::rtc::{
    decode_h264, delete, post_offer, publish_offer, receive, send_media, whep_viewer,
    whip_publisher, TestMedia,
};
use common::viewer::Viewer;
use common::{segments_of, Server, TempDir};
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIG: &str = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\n\
                      preset = \"ultrafast\"\nladder = []\n";

/// Waits for `path` to answer 200 with `needle` in it.
fn wait_for(server: &Server, path: &str, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let response = server.get(path);
        let body = String::from_utf8_lossy(&response.body).to_string();
        if response.status == 200 && body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: no {needle:?} ({}):\n{body}\n{}",
            response.status,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A rendition of a program (init and every listed segment) as one file.
fn rendition_file(
    server: &Server,
    dir: &TempDir,
    program: &str,
    rendition: &str,
) -> std::path::PathBuf {
    let base = format!("/live/{program}/{rendition}");
    let playlist = String::from_utf8(server.get(&format!("{base}/index.m3u8")).body).unwrap();
    let mut file = server.get(&format!("{base}/init.mp4")).body;
    for segment in segments_of(&playlist) {
        file.extend(server.get(&format!("{base}/{}", segment.2)).body);
    }
    let path = dir.0.join(format!("{rendition}.mp4"));
    std::fs::write(&path, file).unwrap();
    path
}

/// Mean luma of the program's picture at `at` seconds in three bands: the top (rows 0..180,
/// the letterbox above two hosts side by side), and the middle's left and right halves.
fn bands(path: &std::path::Path, at: &str) -> [f64; 3] {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-ss", at, "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    let luma = &out.stdout;
    assert_eq!(
        luma.len(),
        1280 * 720,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mean = |rows: std::ops::Range<usize>, columns: std::ops::Range<usize>| {
        let count = rows.len() * columns.len();
        let sum: u64 = (rows.flat_map(|y| columns.clone().map(move |x| y * 1280 + x)))
            .map(|i| u64::from(luma[i]))
            .sum();
        sum as f64 / count as f64
    };
    [
        mean(0..170, 0..1280),
        mean(190..530, 0..640),
        mean(190..530, 640..1280),
    ]
}

#[test]
fn two_hosts_see_each_other_and_the_audience_gets_the_composed_program() {
    let media = TestMedia::make(12);
    let server = Server::start("uring", 2, CONFIG);
    let (mut owner, owner_socket, owner_location) = whip_publisher(&server, "show~0", "");
    // The guest names themselves with their feed's title; the owner gives none.
    let (mut guest, guest_socket, guest_location) =
        whip_publisher(&server, "show~1?title=Alice%20B", "");
    let owner_media = TestMedia {
        video: media.video.clone(),
        opus: media.opus.clone(),
    };
    let owner_thread = std::thread::spawn(move || {
        send_media(
            &mut owner,
            &owner_socket,
            &owner_media,
            Duration::from_secs(12),
        );
        (owner, owner_socket)
    });
    // The guest's sound stops after 2 s (a muted microphone), the picture goes on; the
    // guest leaves after 6 s.
    let guest_media = TestMedia {
        video: media.video[..180].to_vec(),
        opus: media.opus[..100].to_vec(),
    };
    let guest_thread = std::thread::spawn(move || {
        send_media(
            &mut guest,
            &guest_socket,
            &guest_media,
            Duration::from_secs(6),
        );
        (guest, guest_socket)
    });
    // The owner sees the guest's feed as the guest sent it: 640x360, never re-encoded.
    wait_for(
        &server,
        "/live/show~1/index.m3u8",
        "STREAM-INF",
        Duration::from_secs(10),
    );
    let (mut viewer, viewer_socket, _, _) = whep_viewer(&server, "show~1");
    let got = receive(&mut viewer, &viewer_socket, Duration::from_secs(2));
    let sizes = decode_h264(&got.video);
    assert!(sizes.len() >= 30, "{} pictures of the guest", sizes.len());
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
    // The audience's program: 1280x720 H.264 with AAC, live while a host is.
    let master = wait_for(
        &server,
        "/live/show/index.m3u8",
        "mp4a.40.2",
        Duration::from_secs(10),
    );
    assert!(master.contains("RESOLUTION=1280x720"), "{master}");
    // The audience's danmaku room (open while the program is live) hears who goes quiet
    // and who leaves the stage.
    let mut room = Viewer::join(&server, "show", "", 0);
    // Who is on stage, with their feeds' WHEP URLs; the guest goes quiet.
    let within = Duration::from_secs(6);
    let stage = wait_for(&server, "/live/show/stage.json", "\"muted\":true", within);
    let stage: serde_json::Value = serde_json::from_str(&stage).unwrap();
    let hosts = stage["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{stage}");
    assert_eq!(hosts[0]["whep"], "/whep/live/show~0");
    let names = (hosts[0]["name"].as_str(), hosts[1]["name"].as_str());
    assert_eq!(names, (Some("The host"), Some("Alice B")), "{stage}");
    let muted = (hosts[0]["muted"].as_bool(), hosts[1]["muted"].as_bool());
    assert_eq!(muted, (Some(false), Some(true)), "{stage}");
    let (guest, _) = guest_thread.join().unwrap();
    assert_eq!(delete(&server, &guest_location), 200);
    drop(guest);
    let (owner, _) = owner_thread.join().unwrap();
    assert_eq!(delete(&server, &owner_location), 200);
    drop(owner);
    // The last host left: the program ends.
    wait_for(
        &server,
        "/live/show/source/index.m3u8",
        "#EXT-X-ENDLIST",
        Duration::from_secs(15),
    );
    let dir = TempDir::new("cohost");
    let probe = |path: &std::path::Path| {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_packets", "-show_entries"])
            .args(["stream=codec_name,width,height,sample_rate,nb_read_packets"])
            .args(["-of", "default=nw=1"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let path = rendition_file(&server, &dir, "show", "source");
    let video = probe(&path);
    assert!(
        video.contains("codec_name=h264") && video.contains("width=1280"),
        "{video}"
    );
    let sound = probe(&rendition_file(&server, &dir, "show", "audio"));
    assert!(
        sound.contains("codec_name=aac") && sound.contains("sample_rate=48000"),
        "{sound}"
    );
    println!("program:\n{video}{sound}");
    // Both hosts side by side (letterboxed) while both were on; the owner alone on the whole
    // canvas after the guest left.
    let [top, left, right] = bands(&path, "3");
    println!("two hosts: top {top:.0}, left {left:.0}, right {right:.0}");
    assert!(
        top < 25.0 && left > 40.0 && right > 40.0,
        "{top} {left} {right}"
    );
    let [top, left, right] = bands(&path, "9");
    println!("one host: top {top:.0}, left {left:.0}, right {right:.0}");
    assert!(
        top > 40.0 && left > 40.0 && right > 40.0,
        "{top} {left} {right}"
    );
    let log = server.log();
    assert!(log.contains("show~1 left; 1 host(s) on stage"), "{log}");
    room.read_until(Duration::from_secs(5), |seen| seen.notices.len() >= 3);
    assert_eq!(
        room.seen.notices,
        [
            "Alice B is muted",
            "Alice B left the stage: 1 host live",
            "The host left the stage: 0 hosts live",
        ],
        "in order, once each"
    );
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}

#[test]
fn a_guest_needs_a_cohost_token_and_cannot_take_the_owners_slot() {
    let config = format!(
        "{CONFIG}[media]\npublish_tokens = true\npublish_keys = [{{ stream = \"show\", key = \"owner-key\" }}]\n\
         [auth]\nsecret = \"stage-secret\"\n"
    );
    let server = Server::start("epoll", 1, &config);
    let token = common::mint_token(&[
        "--user",
        "guest",
        "--secret",
        "stage-secret",
        "--publish",
        "--stream",
        "show",
        "--role",
        "cohost",
    ]);
    let offer = |stream: &str, auth: &str| {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (_publisher, sdp, _pending) = publish_offer(socket.local_addr().unwrap());
        post_offer(&server, stream, auth, &sdp).status
    };
    let bearer = |credential: &str| format!("Authorization: Bearer {credential}\r\n");
    assert_eq!(offer("show~1", ""), 401, "no credential");
    assert_eq!(offer("show~1", &bearer("wrong")), 403);
    assert_eq!(
        offer("show~0", &bearer(&token)),
        403,
        "a guest is never the owner"
    );
    assert_eq!(offer("show", &bearer(&token)), 403, "nor the program");
    assert_eq!(
        offer("show~9", &bearer(&token)),
        403,
        "past webrtc.max_cohosts"
    );
    assert_eq!(offer("show~1", &bearer(&token)), 201);
    assert_eq!(
        offer("show~2", &bearer("owner-key")),
        201,
        "the owner's key opens any slot"
    );
}

#[test]
fn two_chromium_pages_co_host_and_a_third_watches_the_program_over_ll_hls() {
    let server = Server::start("uring", 2, CONFIG);
    let base = format!("http://{}", server.addr);
    let report = common::browser::run_script(
        &server,
        "cohost.mjs",
        &base,
        "cohost",
        &["--program", "duo"],
    );
    println!("chromium co-hosting: {report}");
    for line in server.log().lines() {
        if line.contains("stage") || line.contains("fps measured") {
            println!("{line}");
        }
    }
    // The program is an ordinary stream: LL-HLS with segments, composed on the stage.
    let playlist = String::from_utf8(server.get("/live/duo/source/index.m3u8").body).unwrap();
    assert!(playlist.contains("#EXTINF"), "{playlist}");
    assert!(server
        .log()
        .contains("stage duo: duo~1 joined; 2 host(s) on stage"));
}

#[test]
fn an_rtmp_host_with_b_frames_and_aac_is_composed_too() {
    let server = Server::start("epoll", 1, CONFIG);
    let url = format!("rtmp://{}/live/solo~0", server.rtmp_addr);
    let video = [
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60", "-pix_fmt", "yuv420p",
    ];
    let publisher = common::Publish::start("ffmpeg", &url, 6, &video);
    wait_for(
        &server,
        "/live/solo/index.m3u8",
        "mp4a.40.2",
        Duration::from_secs(10),
    );
    let (ok, err) = publisher.wait();
    assert!(ok, "{err}");
    wait_for(
        &server,
        "/live/solo/source/index.m3u8",
        "#EXT-X-ENDLIST",
        Duration::from_secs(15),
    );
    let dir = TempDir::new("cohost-rtmp");
    let count = |rendition: &str| {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
            ])
            .args(["-of", "csv=p=0"])
            .arg(rendition_file(&server, &dir, "solo", rendition))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (text.trim().trim_end_matches(',').parse::<u64>())
            .unwrap_or_else(|_| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    };
    // About 6 s of program: 30 fps and 48 kHz AAC frames, the host's sound decoded from AAC.
    let (pictures, frames) = (count("source"), count("audio"));
    println!("RTMP host: {pictures} pictures, {frames} AAC frames");
    assert!((150..=230).contains(&pictures), "{pictures}");
    assert!((240..=330).contains(&frames), "{frames}");
    let [_, left, right] = bands(&rendition_file(&server, &dir, "solo", "source"), "3");
    assert!(
        left > 40.0 && right > 40.0,
        "the host's picture fills the canvas: {left} {right}"
    );
}

#[test]
fn a_stream_live_from_its_own_publisher_takes_no_stage() {
    // The owner publishes `direct` itself; a guest's feed then goes live but is not composed
    // into it (the program would have two primaries), and the log says why.
    let server = Server::start("epoll", 1, CONFIG);
    let url = format!("rtmp://{}/live/direct", server.rtmp_addr);
    let _owner = common::Publish::start("ffmpeg", &url, 8, &common::H264);
    wait_for(
        &server,
        "/live/direct/index.m3u8",
        "STREAM-INF",
        Duration::from_secs(10),
    );
    let (mut guest, socket, _) = whip_publisher(&server, "direct~1", "");
    let media = TestMedia::make(2);
    send_media(&mut guest, &socket, &media, Duration::from_secs(2));
    let log = server.log();
    assert!(
        log.contains("direct is live from its own publisher, so direct~1 is not composed"),
        "{log}"
    );
    assert!(!log.contains("stage direct: composed by"), "{log}");
    let stage = String::from_utf8(server.get("/live/direct/stage.json").body).unwrap();
    assert!(stage.contains("\"hosts\":[]"), "{stage}");
}
