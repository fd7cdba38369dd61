//! WebRTC playback (WHEP) against the real binary: a viewer built on str0m posts its offer,
//! gets an ICE-lite answer naming the shard's UDP port, and completes ICE and DTLS with it
//! over loopback; DELETE ends the session. Bad offers, wrong methods and CORS preflights get
//! their answers.

mod common;

use common::rtc::{
    decode_h264, is_keyframe, offer, receive, request, send_media, wait_live, whep_viewer,
    whip_publisher, TestMedia,
};
use common::{Publish, Server, H264};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use str0m::media::{Direction, MediaKind};
use str0m::Rtc;

const CONFIG: &str = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nenabled = false\n";

/// A server on `io` with `shards` shards and a stream `stream` live on it.
fn live_server(io: &str, shards: usize, stream: &str) -> (Server, Publish) {
    let server = Server::start(io, shards, CONFIG);
    let publisher = publish_live(&server, stream, 20);
    (server, publisher)
}

/// ffmpeg publishing `stream` to `server` for `seconds` over RTMP, once it is live.
fn publish_live(server: &Server, stream: &str, seconds: u32) -> Publish {
    let url = format!("rtmp://{}/live/{stream}", server.rtmp_addr);
    let publisher = Publish::start("ffmpeg", &url, seconds, &H264);
    wait_live(server, stream);
    publisher
}

#[test]
fn a_whep_viewer_connects_over_ice_and_dtls_and_delete_ends_it() {
    let (server, _publisher) = live_server("uring", 2, "rtc");
    let (_viewer, _socket, location, answer) = whep_viewer(&server, "rtc");
    assert!(location.starts_with("/whep/session/"), "{location}");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains("127.0.0.1"),
        "the candidate is the shard's UDP socket: {answer}"
    );
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        404,
        "gone"
    );
}

#[test]
fn a_whep_viewer_gets_the_rtmp_publisher_s_h264_and_it_decodes() {
    // Two shards: the viewer's session is on either one, the stream's home on one of them,
    // so samples cross the mesh at least for some runs of the hash, and always on io_uring.
    let (server, _publisher) = live_server("uring", 2, "watch");
    let (mut viewer, socket, location, _) = whep_viewer(&server, "watch");
    let frames = receive(&mut viewer, &socket, Duration::from_secs(4)).video;
    // 30 fps for 4 s, from the next keyframe (every 2 s): at least 2 s of frames.
    assert!(frames.len() >= 59, "{} frames", frames.len());
    assert!(
        frames[0]
            .windows(5)
            .any(|w| w == [0, 0, 0, 1, 0x67] || w[1..] == [0, 0, 1, 0x67]),
        "the first frame carries the SPS"
    );
    let sizes = decode_h264(&frames);
    eprintln!("{} frames received, {} decoded", frames.len(), sizes.len());
    assert_eq!(
        sizes.len(),
        frames.len(),
        "every frame decodes to a picture"
    );
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
    // A plain viewer: its packets were built and encrypted by shardcast's own send path.
    assert_eq!(server.metric(DIRECT_VIEWERS), 1);
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
    assert_eq!(
        server.metric("shardcast_media_webrtc_frames_unusable_total"),
        0
    );
}

/// A server with a 240p H.264 rung, and `stream` live on it for 20 s from ffmpeg with
/// `b_frames` B-frames and a keyframe only every 10 s; returns once the rung has a part.
fn rare_keyframes_with_a_240p_rung(stream: &str, b_frames: &str) -> (Server, Publish) {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\npreset = \"ultrafast\"\n\
                  ladder = [{ name = \"240p\", height = 240, bitrate_kbps = 300 }]\n";
    let server = Server::start("uring", 2, config);
    let url = format!("rtmp://{}/live/{stream}", server.rtmp_addr);
    let video = [
        "-c:v", "libx264", "-preset", "veryfast", "-bf", b_frames, "-g", "300", "-pix_fmt",
        "yuv420p",
    ];
    let publisher = Publish::start("ffmpeg", &url, 20, &video);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8(server.get(&format!("/live/{stream}/240p/index.m3u8")).body)
        .unwrap()
        .contains("#EXT-X-PART:")
    {
        assert!(Instant::now() < deadline, "no part of the rung");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, publisher)
}

/// A WHEP viewer of `feed` for 3 s, whose video is the 240p rung: it starts with a keyframe
/// forced for the viewer (long before the source's next), and every frame decodes at 426x240.
fn watch_the_240p_rung(
    server: &Server,
    feed: &str,
) -> (Rtc, UdpSocket, String, common::rtc::Received) {
    let (mut viewer, socket, location, _) = whep_viewer(server, feed);
    let got = receive(&mut viewer, &socket, Duration::from_secs(3));
    assert!(
        got.video.len() >= 60,
        "{} frames; the log:\n{}",
        got.video.len(),
        server.log()
    );
    assert!(is_keyframe(&got.video[0]), "it starts at a keyframe");
    let sizes = decode_h264(&got.video);
    assert_eq!(sizes.len(), got.video.len(), "every frame decodes");
    assert!(sizes.iter().all(|&s| s == (426, 240)), "{sizes:?}");
    (viewer, socket, location, got)
}

#[test]
fn a_source_with_b_frames_reaches_whep_viewers_as_a_rung_with_keyframes_on_request() {
    // B-frames and a keyframe only every 10 s: passed through, a viewer would wait for the
    // next keyframe and then get frames out of order.
    // The viewer joins a second in, between the source's keyframes.
    let (server, _publisher) = rare_keyframes_with_a_240p_rung("bframes", "2");
    let (mut viewer, socket, location, got) = watch_the_240p_rung(&server, "bframes");
    // In presentation order, 30 fps: every frame one frame time (33 or 34 ms of RTMP's
    // milliseconds, at 90 kHz) after the one before.
    let times: Vec<u64> = got.video_times.iter().map(|t| t.1).collect();
    assert!(
        (times.windows(2)).all(|w| (2970..=3060).contains(&(w[1].wrapping_sub(w[0])))),
        "RTP times not one frame apart: {times:?}"
    );
    // A PLI: the rung's encoder makes the very next picture a keyframe.
    let mid = got.video_mid.expect("video");
    let asked = Instant::now();
    (viewer.writer(mid).unwrap())
        .request_keyframe(None, str0m::media::KeyframeRequestKind::Pli)
        .unwrap();
    let after = receive(&mut viewer, &socket, Duration::from_secs(1));
    let keyframe = (after.video.iter().zip(&after.video_times))
        .find(|(frame, _)| is_keyframe(frame))
        .map(|(_, (at, _))| at.duration_since(asked));
    println!("PLI answered by a keyframe after {keyframe:?}");
    let keyframe = keyframe.expect("a keyframe after the PLI");
    assert!(keyframe < Duration::from_millis(400), "{keyframe:?}");
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
    assert_eq!(
        server.metric("shardcast_media_webrtc_frames_unusable_total"),
        0
    );
}

#[test]
fn a_whep_viewer_pins_a_rung_and_gets_it_from_a_keyframe_with_the_stream_s_sound() {
    // A source keyframe only every 10 s: a pinned viewer starts at once only because the
    // rung's encoder makes it a keyframe.
    let (server, _publisher) = rare_keyframes_with_a_240p_rung("pins", "0");
    // What cannot be pinned, and why.
    let (_, sdp, _) = offer("127.0.0.1:9".parse().unwrap());
    let status = |path: &str| request(&server, "POST", path, "application/sdp", &sdp).status;
    assert_eq!(status("/whep/live/pins/1080p"), 404, "no such rung");
    assert_eq!(status("/whep/live/pins/audio"), 406, "not video");
    assert_eq!(status("/whep/live/nothing/240p"), 404, "no such stream");

    let (mut viewer, socket, location, got) = watch_the_240p_rung(&server, "pins/240p");
    // The stream's sound comes along: 20 ms Opus packets, none lost.
    assert!(got.opus.len() >= 100, "{} Opus packets", got.opus.len());
    assert!(got.opus.windows(2).all(|w| w[1].0 == w[0].0 + 960));
    // A PLI is answered by a keyframe of the rung.
    let mid = got.video_mid.expect("video");
    (viewer.writer(mid).unwrap())
        .request_keyframe(None, str0m::media::KeyframeRequestKind::Pli)
        .unwrap();
    let after = receive(&mut viewer, &socket, Duration::from_secs(1));
    assert!(
        after.video.iter().any(|f| is_keyframe(f)),
        "a keyframe after the PLI"
    );
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
    // Pinned to the source, the same stream is the source's 640x360 alone, from the source's
    // next keyframe (10 s into the publish), whatever its viewer's estimate.
    let (mut viewer, socket, _, _) = whep_viewer(&server, "pins/source");
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut video = Vec::new();
    while video.len() < 10 && Instant::now() < deadline {
        video.extend(receive(&mut viewer, &socket, Duration::from_millis(500)).video);
    }
    let sizes = decode_h264(&video);
    assert!(
        !sizes.is_empty() && sizes.iter().all(|&s| s == (640, 360)),
        "{sizes:?}"
    );
    assert_eq!(
        server.metric("shardcast_media_webrtc_frames_unusable_total"),
        0
    );
}

#[test]
fn a_whep_viewer_gets_the_stream_s_aac_as_opus_encoded_once_on_the_transcode_thread() {
    // Transcoding on with no ladder: the transcode thread only makes the Opus for WebRTC.
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n";
    let server = Server::start("epoll", 2, config);
    let url = format!("rtmp://{}/live/sound", server.rtmp_addr);
    let _publisher = Publish::start("ffmpeg", &url, 20, &H264);
    wait_live(&server, "sound");
    let (mut viewer, socket, _, _) = whep_viewer(&server, "sound");
    let got = receive(&mut viewer, &socket, Duration::from_secs(4));
    // 20 ms packets for 4 s: 200, less the time the first takes through the transcoder.
    assert!(
        got.opus.len() >= 150,
        "{} Opus packets; the log:\n{}",
        got.opus.len(),
        server.log()
    );
    assert!(
        got.opus.windows(2).all(|w| w[1].0 == w[0].0 + 960),
        "consecutive 20 ms packets, none lost"
    );
    assert!(got.video.len() >= 59, "and the video: {}", got.video.len());
    // Each packet decodes to 20 ms of 48 kHz audio.
    use shardcast_native::{CodecContext, Error, Frame, Packet};
    let mut decoder = CodecContext::decoder_by_name("opus").unwrap();
    decoder.open(None).unwrap();
    let mut pcm = Frame::new().unwrap();
    let mut samples = 0;
    for (_, packet) in &got.opus {
        decoder
            .send_packet(&Packet::copy_from(packet).unwrap())
            .unwrap();
        loop {
            match decoder.receive_frame(&mut pcm) {
                Ok(()) => samples += pcm.samples(),
                Err(Error::Again) => break,
                Err(e) => panic!("decoding Opus: {e}"),
            }
        }
    }
    assert_eq!(samples, got.opus.len() * 960);
}

#[test]
fn whep_behind_playback_tokens_takes_the_token_as_bearer() {
    let config =
        format!("[auth]\nsecret = \"rtc-secret\"\n[media]\nplayback_tokens = true\n{CONFIG}");
    let server = Server::start("epoll", 1, &config);
    let url = format!("rtmp://{}/live/paid", server.rtmp_addr);
    let _publisher = Publish::start("ffmpeg", &url, 20, &H264);
    let token = common::mint_token(&[
        "--user",
        "v",
        "--play",
        "--stream",
        "paid",
        "--secret",
        "rtc-secret",
    ]);
    let other = common::mint_token(&[
        "--user",
        "v",
        "--play",
        "--stream",
        "other",
        "--secret",
        "rtc-secret",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .get(&format!("/live/paid/index.m3u8?token={token}"))
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "never went live");
        std::thread::sleep(Duration::from_millis(200));
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_viewer, sdp, _) = offer(socket.local_addr().unwrap());
    let post = |auth: &str| {
        let mut stream = server.connect();
        write!(
            stream,
            "POST /whep/live/paid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
        .unwrap();
        common::read_response(&mut stream)
            .expect("a response")
            .status
    };
    assert_eq!(post(""), 401, "no token");
    assert_eq!(post("Authorization: Bearer forged\r\n"), 403);
    assert_eq!(
        post(&format!("Authorization: Bearer {other}\r\n")),
        403,
        "another stream's token"
    );
    assert_eq!(post(&format!("Authorization: Bearer {token}\r\n")), 201);
}

/// A server with transcoding on for WebRTC's Opus only (no ladder), and `stream` live on it
/// for 60 s.
fn live_with_opus(stream: &str) -> (Server, Publish) {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n";
    let server = Server::start("uring", 2, config);
    let publisher = publish_live(&server, stream, 60);
    (server, publisher)
}

#[test]
fn chromium_plays_an_rtmp_stream_over_whep_on_the_watch_page() {
    let (server, _publisher) = live_with_opus("web");
    let base = format!("http://{}", server.addr);
    let report =
        common::browser::run_script(&server, "whep.mjs", &base, "whep", &["--stream", "web"]);
    println!("chromium over WHEP: {}", report["seen"]);
    // Chromium took the packets of shardcast's own send path (its SRTP, its sender reports).
    assert_eq!(server.metric(DIRECT_VIEWERS), 1);
}

/// Viewers whose media went out on shardcast's own send path rather than str0m's.
const DIRECT_VIEWERS: &str = "shardcast_media_webrtc_direct_viewers_total";

#[test]
fn chromium_as_an_adaptive_viewer_starts_on_the_rung_and_moves_up_to_the_source() {
    let (server, _publisher) = two_layers("adapt", 150);
    let base = format!("http://{}", server.addr);
    let args = ["--stream", "adapt", "--width", "640", "--height", "360"];
    let report = common::browser::run_script(&server, "whep.mjs", &base, "whep-abr", &args);
    println!("chromium, adaptive: {} {}", report["sizes"], report["seen"]);
    // Chromium's own congestion feedback takes it up, at a keyframe of the source.
    assert_eq!(report["sizes"][0], "426x240", "{report}");
    assert_eq!(
        report["sizes"].as_array().unwrap().last().unwrap(),
        "640x360"
    );
    assert!(server.metric("shardcast_media_webrtc_layer_switches_total") >= 1);
    assert_eq!(
        server.metric(DIRECT_VIEWERS),
        0,
        "an adaptive viewer is str0m's"
    );
}

#[test]
fn the_server_s_session_bound_holds_across_shards_and_frees_with_a_delete() {
    let config =
        "[webrtc]\nudp_listen = \"127.0.0.1:0\"\nmax_sessions = 2\n[transcode]\nenabled = false\n";
    let server = Server::start("uring", 2, config);
    let url = format!("rtmp://{}/live/full", server.rtmp_addr);
    let _publisher = Publish::start("ffmpeg", &url, 20, &H264);
    wait_live(&server, "full");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_viewer, sdp, _) = offer(socket.local_addr().unwrap());
    let post = || request(&server, "POST", "/whep/live/full", "application/sdp", &sdp);
    // Connections land on either shard: the bound counts both.
    let (first, second) = (post(), post());
    assert_eq!((first.status, second.status), (201, 201));
    let third = post();
    assert_eq!(
        third.status,
        503,
        "{}",
        String::from_utf8_lossy(&third.body)
    );
    assert_eq!(third.header("retry-after"), Some("5"));
    assert!(String::from_utf8_lossy(&third.body).contains("webrtc.max_sessions"));
    let location = first.header("location").unwrap().to_string();
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
    assert_eq!(post().status, 201, "a deleted session frees its place");
}

#[test]
fn bad_whep_requests_get_clear_answers() {
    let server = Server::start("epoll", 1, CONFIG);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_viewer, sdp, _) = offer(socket.local_addr().unwrap());
    let no_stream = request(
        &server,
        "POST",
        "/whep/live/nobody",
        "application/sdp",
        &sdp,
    );
    assert_eq!(no_stream.status, 404);
    let wrong_type = request(&server, "POST", "/whep/live/nobody", "text/plain", &sdp);
    assert_eq!(wrong_type.status, 415);
    let patch = request(
        &server,
        "PATCH",
        "/whep/session/x",
        "application/trickle-ice-sdpfrag",
        "a=x",
    );
    assert_eq!(patch.status, 405);
    assert!(patch.header("allow").unwrap_or("").contains("DELETE"));
    let preflight = request(&server, "OPTIONS", "/whep/live/nobody", "text/plain", "");
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(preflight
        .header("access-control-allow-methods")
        .unwrap_or("")
        .contains("POST"));

    let _publisher = Publish::start(
        "ffmpeg",
        &format!("rtmp://{}/live/rtc2", server.rtmp_addr),
        10,
        &H264,
    );
    wait_live(&server, "rtc2");
    let garbage = request(
        &server,
        "POST",
        "/whep/live/rtc2",
        "application/sdp",
        "v=0\r\nnot sdp\r\n",
    );
    assert_eq!(
        garbage.status,
        400,
        "{}",
        String::from_utf8_lossy(&garbage.body)
    );
    let mut publisher = Rtc::builder().build(Instant::now());
    let mut change = publisher.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (send_only, _) = change.apply().unwrap();
    let nothing = request(
        &server,
        "POST",
        "/whep/live/rtc2",
        "application/sdp",
        &send_only.to_sdp_string(),
    );
    assert_eq!(
        nothing.status,
        406,
        "{}",
        String::from_utf8_lossy(&nothing.body)
    );
}

/// The first shard's WebRTC UDP address, from the start-up log.
fn udp_addr(server: &Server) -> SocketAddr {
    let log = server.log();
    let line = log
        .lines()
        .find_map(|l| l.split("webrtc udp on ").nth(1))
        .expect("the WebRTC UDP address in the log");
    line.split([',', ' ']).next().unwrap().parse().unwrap()
}

#[test]
fn garbage_and_stun_floods_are_dropped_cheaply_and_a_viewer_still_connects() {
    let (server, _publisher) = live_server("uring", 1, "flood");
    let target = udp_addr(&server);
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Garbage of every size, and STUN Binding requests naming a username nobody has.
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[9; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
    stun.extend_from_slice(b"nope:xyz");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 1 + (seed % 1400) as usize;
        let garbage: Vec<u8> = (0..len).map(|j| (seed >> (j % 8 * 8)) as u8).collect();
        let _ = attacker.send_to(if i % 4 == 0 { &stun } else { &garbage }, target);
        if i % 250 == 249 {
            // Bursts the socket's receive buffer holds even while the machine is busy: the
            // count below is of what the server read and dropped, not of what the kernel lost.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // A viewer connects through it.
    let (_viewer, socket, location, _) = whep_viewer(&server, "flood");
    let dropped = server.metric("shardcast_media_webrtc_datagrams_dropped_total");
    assert!(dropped >= 19_000, "dropped {dropped} of 20000");
    // Garbage from the viewer's own address reaches its session, which ignores it.
    for i in 0..1000u32 {
        let _ = socket.send_to(&i.to_be_bytes().repeat(20), target);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.metric("shardcast_media_webrtc_sessions"),
        1,
        "the session lives on"
    );
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
}

/// A server with a 200 kbit/s 240p rung whose adaptive WHEP viewers start at `start_kbps`,
/// and `stream` live on it for 30 s at 1.2 Mbit/s (640x360, a keyframe every 2 s); returns
/// once both layers have a segment (their rates are measured).
fn two_layers(stream: &str, start_kbps: u32) -> (Server, Publish) {
    let config = format!(
        "[webrtc]\nudp_listen = \"127.0.0.1:0\"\nabr_start_kbps = {start_kbps}\n[transcode]\n\
         preset = \"ultrafast\"\nladder = [{{ name = \"240p\", height = 240, bitrate_kbps = 200 }}]\n"
    );
    let server = Server::start("uring", 2, &config);
    let url = format!("rtmp://{}/live/{stream}", server.rtmp_addr);
    let video = [
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "60", "-b:v", "1200k",
        "-maxrate", "1200k", "-bufsize", "600k", "-pix_fmt", "yuv420p",
    ];
    let publisher = Publish::start("ffmpeg", &url, 30, &video);
    let deadline = Instant::now() + Duration::from_secs(20);
    for rendition in ["source", "240p"] {
        let path = format!("/live/{stream}/{rendition}/index.m3u8");
        while !String::from_utf8(server.get(&path).body)
            .unwrap()
            .contains("#EXTINF")
        {
            assert!(Instant::now() < deadline, "no segment of {rendition}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (server, publisher)
}

/// The picture size of the sequence parameter set a keyframe (Annex B) carries.
fn sps_size(frame: &[u8]) -> Option<(u32, u32)> {
    let units = shardcast_media::codec::nal_units(frame);
    let sps = units.iter().find(|u| u[0] & 0x1f == 7)?;
    let video = shardcast_media::codec::parse_avc_sps(sps).ok()?.video;
    Some((video.width, video.height))
}

/// Receives (losing every `drop_every()`th datagram, 0: none) until a keyframe of another picture size
/// than the first (another layer) and a second after it, or `within` passes: the frames,
/// each with the picture size of the layer it came from (its last keyframe's). Nothing is
/// decoded meanwhile: a viewer that stops reading for a while looks like a congested link to
/// the server's estimator.
fn frames_until_a_switch(
    (viewer, socket): (&mut Rtc, &UdpSocket),
    drop_every: &dyn Fn() -> u32,
    within: Duration,
) -> Vec<(Vec<u8>, (u32, u32))> {
    let deadline = Instant::now() + within;
    let mut frames: Vec<(Vec<u8>, (u32, u32))> = Vec::new();
    let mut switched_at = None;
    while Instant::now() < deadline && switched_at.is_none_or(|at| at > Instant::now()) {
        let wait = Duration::from_millis(200);
        let got = common::rtc::receive_dropping(viewer, socket, wait, drop_every());
        for frame in got.video {
            let size = sps_size(&frame)
                .or(frames.last().map(|f| f.1))
                .unwrap_or_default();
            if switched_at.is_none() && frames.first().is_some_and(|f| f.1 != size) {
                switched_at = Some(Instant::now() + Duration::from_secs(1));
            }
            frames.push((frame, size));
        }
    }
    frames
}

#[test]
fn an_adaptive_whep_viewer_moves_up_to_the_source_when_its_estimate_allows() {
    let (server, _publisher) = two_layers("up", 150);
    let (mut viewer, socket, _, _) = whep_viewer(&server, "up");
    let frames = frames_until_a_switch((&mut viewer, &socket), &|| 0, Duration::from_secs(20));
    // It starts on the rung (within 150 kbit/s there is nothing, so the lowest layer), and
    // moves to the source once its estimate clears 1.2 Mbit/s with headroom, at a keyframe:
    // every frame decodes, the rung's up to the switch and the source's after it.
    let layers: Vec<(u32, u32)> = frames.iter().map(|f| f.1).collect();
    let switch = layers.iter().position(|&s| s == (640, 360));
    let log = server.log();
    let moves: Vec<&str> = log.lines().filter(|l| l.contains("moves to")).collect();
    println!(
        "{} frames, the source from frame {switch:?}: {moves:?}",
        frames.len()
    );
    let switch = switch.expect("it moved up to the source");
    assert!(switch >= 30, "it started on the rung: {layers:?}");
    assert!(
        layers[..switch].iter().all(|&s| s == (426, 240)),
        "{layers:?}"
    );
    assert!(
        layers[switch..].iter().all(|&s| s == (640, 360)),
        "{layers:?}"
    );
    assert!(
        is_keyframe(&frames[switch].0),
        "the switch is at a keyframe"
    );
    let frames: Vec<Vec<u8>> = frames.into_iter().map(|f| f.0).collect();
    assert_eq!(
        decode_h264(&frames),
        layers,
        "every frame decodes, at its layer's size"
    );
    assert_eq!(
        server.metric("shardcast_media_webrtc_layer_switches_total"),
        1
    );
}

#[test]
fn an_adaptive_whep_viewer_on_a_lossy_link_moves_down_to_the_rung() {
    let (server, _publisher) = two_layers("down", 1000);
    let (mut viewer, socket, _, _) = whep_viewer(&server, "down");
    let got = receive(&mut viewer, &socket, Duration::from_secs(2));
    let sizes = decode_h264(&got.video);
    assert!(
        !sizes.is_empty() && sizes.iter().all(|&s| s == (640, 360)),
        "it starts on the source: {sizes:?}"
    );
    // A third of the datagrams lost: the estimate falls, and the viewer moves to the rung at
    // a keyframe the rung's encoder makes for it. Once the server has moved it, the link is
    // clean again, so that the keyframe comes through whole.
    let moved = || server.log().contains("moves to down/240p");
    let lossy = || if moved() { 0 } else { 3 };
    let frames = frames_until_a_switch((&mut viewer, &socket), &lossy, Duration::from_secs(20));
    let layers: Vec<(u32, u32)> = frames.iter().map(|f| f.1).collect();
    let switch = layers.iter().position(|&s| s == (426, 240));
    println!("{} frames, the rung from frame {switch:?}", frames.len());
    let switch = switch.unwrap_or_else(|| {
        let log = server.log();
        let about: Vec<&str> = (log.lines())
            .filter(|l| l.contains("webrtc") || l.contains("down/"))
            .collect();
        let tail = about[about.len().saturating_sub(40)..].join("\n");
        panic!(
            "it did not move down to the rung (moved: {}); the server said:\n{tail}",
            moved()
        )
    });
    assert!(
        layers[switch..].iter().all(|&s| s == (426, 240)),
        "{layers:?}"
    );
    assert!(
        is_keyframe(&frames[switch].0),
        "the switch is at a keyframe"
    );
    assert!(server.metric("shardcast_media_webrtc_layer_switches_total") >= 1);
}

#[test]
fn a_viewer_of_a_stream_with_no_rung_of_its_size_is_plain_and_stays_on_the_source() {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\nabr_start_kbps = 1000\n[transcode]\n\
                  preset = \"ultrafast\"\nladder = [{ name = \"240p\", height = 240, bitrate_kbps = 50 }]\n";
    let server = Server::start("uring", 2, config);
    // 3 s of 160x120 (smaller than the rung: no rung is made), then 640x360, whose rung
    // comes then.
    let (small, large) = (
        TestMedia::sized(3, 30, "160x120"),
        TestMedia::sized(16, 30, "640x360"),
    );
    let media = TestMedia {
        video: [small.video, large.video].concat(),
        opus: large.opus,
    };
    let (mut publisher, socket, _) = whip_publisher(&server, "small", "");
    let sender = std::thread::spawn(move || {
        send_media(&mut publisher, &socket, &media, Duration::from_secs(12));
    });
    wait_live(&server, "small");
    // Joined with one layer and no rung coming: a plain viewer (an adaptive one would be
    // paced packet by packet and probe, for no layer to move to). On a link that loses a
    // third of its packets it stays on the source, through the growth and after the rung
    // appears.
    let (mut viewer, viewer_socket, _, _) = whep_viewer(&server, "small");
    let mut sizes: Vec<(u32, u32)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let wait = Duration::from_millis(200);
        let got = common::rtc::receive_dropping(&mut viewer, &viewer_socket, wait, 3);
        sizes.extend(got.video.iter().filter_map(|f| sps_size(f)));
    }
    sizes.dedup();
    println!("keyframe sizes seen: {sizes:?}");
    assert_eq!(
        server.get("/live/small/240p/index.m3u8").status,
        200,
        "the rung came"
    );
    assert_eq!(sizes.last(), Some(&(640, 360)), "on the source: {sizes:?}");
    assert!(!sizes.contains(&(426, 240)), "{sizes:?}");
    let log = server.log();
    assert!(!log.contains("moves to"), "a plain viewer does not move");
    assert!(!log.contains("adaptive viewers of small"));
    // The packets it lost were asked for again (NACK) and sent again from the frames kept.
    assert_eq!(server.metric(DIRECT_VIEWERS), 1);
    assert!(server.metric("shardcast_media_webrtc_packets_resent_total") > 0);
    sender.join().unwrap();
}

/// The passive TCP candidate an answer names.
fn tcp_candidate(answer: &str) -> SocketAddr {
    let line = (answer.lines())
        .find(|l| l.starts_with("a=candidate") && l.contains(" tcp ") && l.contains("passive"))
        .unwrap_or_else(|| panic!("no passive TCP candidate: {answer}"));
    let fields: Vec<&str> = line.split(' ').collect();
    format!("{}:{}", fields[4], fields[5]).parse().unwrap()
}

/// Runs a viewer over one TCP connection (RFC 4571 framing) for `within`, as a peer whose
/// UDP is blocked: its H.264 frames.
fn receive_over_tcp(
    viewer: &mut Rtc,
    (stream, server, local): (&mut std::net::TcpStream, SocketAddr, SocketAddr),
    within: Duration,
) -> Vec<Vec<u8>> {
    use std::io::Read;
    let deadline = Instant::now() + within;
    let (mut frames, mut pending) = (Vec::new(), Vec::new());
    stream
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    while Instant::now() < deadline {
        loop {
            match viewer.poll_output().unwrap() {
                str0m::Output::Timeout(_) => break,
                str0m::Output::Transmit(t) => {
                    assert_eq!(t.proto, str0m::net::Protocol::Tcp, "nothing over UDP");
                    let mut frame = (t.contents.len() as u16).to_be_bytes().to_vec();
                    frame.extend_from_slice(&t.contents);
                    stream.write_all(&frame).unwrap();
                }
                str0m::Output::Event(str0m::Event::MediaData(data)) => {
                    if data.params.spec().codec == str0m::format::Codec::H264 {
                        frames.push(data.data.to_vec());
                    }
                }
                str0m::Output::Event(_) => {}
            }
        }
        let mut buf = [0u8; 65536];
        match stream.read(&mut buf) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        let now = Instant::now();
        while pending.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
            if pending.len() < 2 + len {
                break;
            }
            let packet: Vec<u8> = pending.drain(..2 + len).skip(2).collect();
            let proto = str0m::net::Protocol::Tcp;
            let receive = str0m::net::Receive::new(proto, server, local, &packet).unwrap();
            viewer
                .handle_input(str0m::Input::Receive(now, receive))
                .unwrap();
        }
        viewer.handle_input(str0m::Input::Timeout(now)).unwrap();
    }
    frames
}

#[test]
fn a_viewer_whose_udp_is_blocked_plays_over_ice_tcp() {
    let (server, _publisher) = live_server("uring", 2, "tcp");
    // A peer with one candidate, active TCP (port 9, as browsers write it).
    let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut viewer = Rtc::builder().build(Instant::now());
    let candidate = str0m::Candidate::builder().tcp().host(local);
    let candidate = candidate
        .tcptype(str0m::net::TcpType::Active)
        .build()
        .unwrap();
    viewer.add_local_candidate(candidate);
    let mut change = viewer.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let response = request(
        &server,
        "POST",
        "/whep/live/tcp",
        "application/sdp",
        &offer.to_sdp_string(),
    );
    let answer = String::from_utf8(response.body.clone()).unwrap();
    assert_eq!(response.status, 201, "{answer}");
    let at = tcp_candidate(&answer);
    let sdp = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
    viewer.sdp_api().accept_answer(pending, sdp).unwrap();
    let mut stream = std::net::TcpStream::connect(at).unwrap();
    let frames = receive_over_tcp(
        &mut viewer,
        (&mut stream, at, local),
        Duration::from_secs(5),
    );
    // 30 fps from the next keyframe (every 2 s): at least 2 s of frames, all decoding.
    assert!(frames.len() >= 59, "{} frames over TCP", frames.len());
    let sizes = decode_h264(&frames);
    assert_eq!(sizes.len(), frames.len(), "every frame decodes");
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
    // Its packets came from shardcast's own send path, framed on the connection.
    assert_eq!(server.metric(DIRECT_VIEWERS), 1);
    // DELETE ends the session, and the server closes the connection.
    let location = response.header("location").unwrap().to_string();
    assert_eq!(
        request(&server, "DELETE", &location, "text/plain", "").status,
        200
    );
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    assert!(
        stream.read_to_end(&mut rest).is_ok(),
        "closed by the server"
    );
}

#[test]
fn the_watch_page_pins_a_rung_with_its_rung_parameter() {
    // Adaptive viewers would start on the source (within 5 Mbit/s); the page pins 240p.
    let (server, _publisher) = two_layers("pinned", 5000);
    let base = format!("http://{}", server.addr);
    let args = [
        "--stream", "pinned", "--rung", "240p", "--width", "426", "--height", "240",
    ];
    let report = common::browser::run_script(&server, "whep.mjs", &base, "whep-rung", &args);
    println!("chromium, pinned: {} {}", report["sizes"], report["seen"]);
    assert_eq!(
        report["sizes"],
        serde_json::json!(["426x240"]),
        "only the rung"
    );
}

#[test]
fn chromium_without_udp_plays_over_ice_tcp() {
    // The page gets the answer without its UDP candidate (as if a firewall blocked the
    // server's UDP port), so Chromium can only connect to the TCP one.
    let (server, _publisher) = live_with_opus("firewalled");
    let base = format!("http://{}", server.addr);
    let args = ["--stream", "firewalled", "--udp", "off"];
    let report = common::browser::run_script(&server, "whep.mjs", &base, "whep-tcp", &args);
    println!("chromium over ICE-TCP: {}", report["seen"]);
    assert!(
        (server.log()).contains("a peer of firewalled reached its session over TCP"),
        "over TCP"
    );
}

#[test]
fn a_tcp_connection_that_is_not_ice_is_closed() {
    let (server, _publisher) = live_server("epoll", 1, "notice");
    let (_, sdp, _) = offer("127.0.0.1:9".parse().unwrap());
    let response = request(
        &server,
        "POST",
        "/whep/live/notice",
        "application/sdp",
        &sdp,
    );
    let at = tcp_candidate(&String::from_utf8(response.body).unwrap());
    use std::io::Read;
    // A frame that is not a STUN check for a waiting session, then one over 2 KiB.
    for garbage in [&[0u8, 4, 1, 2, 3, 4][..], &[0xff, 0xff, 0, 0][..]] {
        let mut stream = std::net::TcpStream::connect(at).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let mut rest = Vec::new();
        assert!(
            stream.read_to_end(&mut rest).is_ok() && rest.is_empty(),
            "closed"
        );
    }
}

#[test]
fn ice_tcp_connections_per_address_are_bounded() {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\ntcp_connections_per_address = 2\n\
                  [transcode]\nenabled = false\n";
    let server = Server::start("epoll", 1, config);
    let _publisher = publish_live(&server, "bounded", 20);
    let (_, sdp, _) = offer("127.0.0.1:9".parse().unwrap());
    let response = request(
        &server,
        "POST",
        "/whep/live/bounded",
        "application/sdp",
        &sdp,
    );
    let at = tcp_candidate(&String::from_utf8(response.body).unwrap());
    use std::io::Read;
    // Two silent connections are held (each has 10 s to name a session); a third is closed
    // at once.
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(at).unwrap())
        .collect();
    let mut third = std::net::TcpStream::connect(at).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut rest = Vec::new();
    assert!(third.read_to_end(&mut rest).is_ok(), "the third is closed");
    for mut stream in held {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let err = stream
            .read(&mut [0u8; 16])
            .expect_err("still open, nothing to read");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err}"
        );
    }
}
