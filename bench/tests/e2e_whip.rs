//! WHIP ingest against the real binary: a publisher built on str0m posts its offer, completes
//! ICE and DTLS, and sends H.264 and Opus as a browser would; the stream is then an ordinary
//! one (LL-HLS, WHEP viewers who get its packets as they came). Keys and tokens are checked as
//! for RTMP; a publisher that sends no keyframe is asked for one.

mod common;

use common::rtc::{
    decode, decode_h264, delete, post_offer, publish_offer, publish_offer_from, receive,
    send_media, wait_live, whep_viewer, whep_viewer_from, whip_publisher, whip_publisher_from,
    Sent, TestMedia,
};
use common::{segments_of, Server};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const CONFIG: &str = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nenabled = false\n";

/// A publisher's `Rtc` that offers VP8 and Opus only (a browser without an H.264 encoder).
fn vp8_only() -> str0m::RtcConfig {
    str0m::Rtc::builder()
        .clear_codecs()
        .enable_vp8(true)
        .enable_opus(true, false)
}

/// A viewer's `Rtc` that takes H.264 and Opus only.
fn h264_only() -> str0m::RtcConfig {
    str0m::Rtc::builder()
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true, false)
}

/// A WHEP viewer made by `viewer` gets 3 s of `stream`: at least 45 H.264 frames, all
/// decoding to 640x360, and 100 Opus packets.
fn whep_plays_3_s_of_640x360(server: &Server, stream: &str, viewer: str0m::RtcConfig) {
    let (mut viewer, viewer_socket, _, _) = whep_viewer_from(viewer, server, stream);
    let got = receive(&mut viewer, &viewer_socket, Duration::from_secs(3));
    assert!(got.video.len() >= 45, "{} frames", got.video.len());
    assert!(got.opus.len() >= 100, "{} Opus packets", got.opus.len());
    let sizes = decode_h264(&got.video);
    println!(
        "WHEP of {stream}: {} frames, {} Opus packets, {} decoded",
        got.video.len(),
        got.opus.len(),
        sizes.len()
    );
    assert_eq!(sizes.len(), got.video.len());
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
}

#[test]
fn a_whip_publisher_goes_live_for_hls_and_whep_viewers_get_its_packets() {
    let media = TestMedia::make(8);
    let server = Server::start("uring", 2, CONFIG);
    let (mut publisher, socket, location) = whip_publisher(&server, "cam", "");
    let sender = std::thread::spawn(move || {
        let sent = send_media(&mut publisher, &socket, &media, Duration::from_secs(12));
        (sent, publisher, socket)
    });
    wait_live(&server, "cam");
    // A WHEP viewer of the WHIP stream: the same H.264 and Opus, never re-encoded.
    whep_plays_3_s_of_640x360(&server, "cam", str0m::Rtc::builder());
    // Its publisher sends H.264: there is no VP8 feed to pin.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_, sdp, _) = common::rtc::offer(socket.local_addr().unwrap());
    let pinned = common::rtc::request(
        &server,
        "POST",
        "/whep/live/cam/vp8",
        "application/sdp",
        &sdp,
    );
    let body = String::from_utf8_lossy(&pinned.body).to_string();
    assert_eq!(pinned.status, 404, "{body}");
    assert!(body.contains("has no VP8"), "{body}");
    let (sent, _publisher, _socket): (Sent, _, _) = sender.join().unwrap();
    assert_eq!(sent.video_frames, 240, "{sent:?}");
    // Its keyframes come every second, so the server asked for one only for the viewer who
    // joined (a new WHEP viewer of a WHIP stream gets a keyframe at once).
    assert!(sent.keyframe_requests >= 1, "{sent:?}");
    // The stream became an ordinary one: LL-HLS with segments of both tracks.
    let master = String::from_utf8(server.get("/live/cam/index.m3u8").body).unwrap();
    assert!(master.contains("avc1.42"), "{master}");
    assert!(master.to_lowercase().contains("opus"), "{master}");
    let media_playlist = String::from_utf8(server.get("/live/cam/source/index.m3u8").body).unwrap();
    let segments = media_playlist.matches("#EXTINF").count();
    println!("{master}\n{media_playlist}");
    assert!(segments >= 2, "{media_playlist}");
    // Ending the session ends the stream.
    assert_eq!(delete(&server, &location), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let playlist = String::from_utf8(server.get("/live/cam/source/index.m3u8").body).unwrap();
        if playlist.contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(Instant::now() < deadline, "never ended:\n{playlist}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_whip_streams_opus_gets_an_aac_rendition_for_hls() {
    let media = TestMedia::make(6);
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n";
    let server = Server::start("uring", 2, config);
    let (mut publisher, socket, location) = whip_publisher(&server, "aac", "");
    let sent = send_media(&mut publisher, &socket, &media, Duration::from_secs(10));
    assert!(sent.opus_packets >= 300, "{sent:?}");
    assert_eq!(delete(&server, &location), 200);
    let ended = |rendition: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = format!("/live/aac/{rendition}/index.m3u8");
            let playlist = String::from_utf8(server.get(&path).body).unwrap();
            if playlist.contains("#EXT-X-ENDLIST") {
                return segments_of(&playlist);
            }
            assert!(
                Instant::now() < deadline,
                "{rendition} never ended:\n{playlist}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (opus, aac) = (ended("audio"), ended("audio-aac"));
    // The AAC rendition follows the source's audio segments: same numbers, same lengths
    // (within an AAC frame).
    let numbers = |s: &[(u64, String, String, bool)]| s.iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(numbers(&aac), numbers(&opus));
    for (o, a) in opus.iter().zip(&aac) {
        let (o, a): (f64, f64) = (o.1.parse().unwrap(), a.1.parse().unwrap());
        assert!((o - a).abs() <= 0.045, "segment durations {o} and {a}");
    }
    let master = String::from_utf8(server.get("/live/aac/index.m3u8").body).unwrap();
    // AAC first: it plays everywhere.
    assert!(
        master.contains("GROUP-ID=\"audio\",NAME=\"audio-aac\""),
        "{master}"
    );
    let variants: Vec<&str> = (master.lines())
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
        .collect();
    assert!(variants[0].contains(",mp4a.40.2\""), "{master}");
    assert!(variants[1].contains(",opus\""), "{master}");
    // Every AAC frame of the rendition, read by ffprobe: about 6 s at 48 kHz, 1024 samples
    // a frame (281), less what the publisher's first and last moments left out.
    let mut file = server.get("/live/aac/audio-aac/init.mp4").body;
    for segment in &aac {
        file.extend(
            server
                .get(&format!("/live/aac/audio-aac/{}", segment.2))
                .body,
        );
    }
    let dir = common::TempDir::new("whip-aac");
    let path = dir.0.join("aac.mp4");
    std::fs::write(&path, file).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,sample_rate,channels,nb_read_packets",
            "-of",
            "default=nw=1",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let probe = String::from_utf8_lossy(&out.stdout);
    assert!(probe.contains("codec_name=aac"), "{probe}");
    assert!(probe.contains("sample_rate=48000"), "{probe}");
    let packets: u64 = (probe.lines())
        .find_map(|l| l.strip_prefix("nb_read_packets="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((250..=285).contains(&packets), "{probe}");
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}

#[test]
fn a_vp8_publisher_is_made_h264_for_hls_and_whep_viewers() {
    // 8 s of VP8 with a keyframe every second, from a publisher that offers VP8 alone.
    let media = TestMedia::vp8(8, 30);
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n";
    let server = Server::start("uring", 2, config);
    let (mut publisher, socket, location) = whip_publisher_from(vp8_only(), &server, "vp8", "");
    let sender = std::thread::spawn(move || {
        let sent = send_media(&mut publisher, &socket, &media, Duration::from_secs(12));
        (sent, publisher, socket)
    });
    wait_live(&server, "vp8");
    // A WHEP viewer that takes VP8 gets the VP8 as it came: every frame decodes. (Its answer
    // has H.264 too, for a backup publisher that sends H.264.)
    let (mut viewer, viewer_socket, _, answer) = whep_viewer(&server, "vp8");
    assert!(answer.contains("VP8/90000"), "{answer}");
    let got = receive(&mut viewer, &viewer_socket, Duration::from_secs(3));
    assert_eq!(got.video_codec, Some(str0m::format::Codec::Vp8));
    assert!(got.video.len() >= 45, "{} VP8 frames", got.video.len());
    assert!(got.opus.len() >= 100, "{} Opus packets", got.opus.len());
    let sizes = decode(&got.video, shardcast_native::CodecId::Vp8);
    assert_eq!(sizes.len(), got.video.len());
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
    // One that takes H.264 only gets the H.264 the transcode thread made, at the VP8's size.
    whep_plays_3_s_of_640x360(&server, "vp8", h264_only());
    let (sent, _publisher, _socket): (Sent, _, _) = sender.join().unwrap();
    assert_eq!(sent.video_frames, 240, "{sent:?}");
    assert_eq!(delete(&server, &location), 200);
    // LL-HLS: H.264 and Opus; every VP8 frame became one H.264 picture, none dropped.
    let deadline = Instant::now() + Duration::from_secs(10);
    let playlist = loop {
        let playlist = String::from_utf8(server.get("/live/vp8/source/index.m3u8").body).unwrap();
        if playlist.contains("#EXT-X-ENDLIST") {
            break playlist;
        }
        assert!(Instant::now() < deadline, "never ended:\n{playlist}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let master = String::from_utf8(server.get("/live/vp8/index.m3u8").body).unwrap();
    assert!(
        master.contains("avc1.") && !master.contains("vp08"),
        "{master}"
    );
    let mut file = server.get("/live/vp8/source/init.mp4").body;
    for segment in segments_of(&playlist) {
        file.extend(server.get(&format!("/live/vp8/source/{}", segment.2)).body);
    }
    let dir = common::TempDir::new("whip-vp8");
    let path = dir.0.join("vp8.mp4");
    std::fs::write(&path, file).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames,has_b_frames",
            "-of",
            "default=nw=1",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let probe = String::from_utf8_lossy(&out.stdout);
    println!("{probe}");
    assert!(probe.contains("codec_name=h264"), "{probe}");
    assert!(
        probe.contains("width=640") && probe.contains("height=360"),
        "{probe}"
    );
    assert!(probe.contains("has_b_frames=0"), "{probe}");
    let frames: u64 = (probe.lines())
        .find_map(|l| l.strip_prefix("nb_read_frames="))
        .unwrap()
        .parse()
        .unwrap();
    let converted = server.metric("shardcast_transcode_vp8_frames_total");
    let dropped = server.metric("shardcast_transcode_vp8_dropped_total");
    println!("{frames} frames in the segments; {converted} converted, {dropped} dropped");
    assert_eq!(dropped, 0);
    assert!((230..=240).contains(&converted), "{converted}");
    assert_eq!(
        frames, converted,
        "every converted picture is in the segments"
    );
    assert_eq!(server.metric("shardcast_ffmpeg_live_owners"), 0);
}

#[test]
fn a_vp8_publisher_s_viewers_move_to_the_h264_of_a_backup_that_takes_over_and_back() {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n\
                  [media]\nfailover_ms = 800\n";
    let server = Server::start("uring", 2, config);
    // The primary sends 5 s of VP8 and then nothing for 5 s (its session stays up): it
    // stalls. Then it sends again.
    let (mut primary, socket, _) = whip_publisher_from(vp8_only(), &server, "fo", "");
    let primary = std::thread::spawn(move || {
        let nothing = TestMedia {
            video: Vec::new(),
            opus: Vec::new(),
        };
        send_media(
            &mut primary,
            &socket,
            &TestMedia::vp8(5, 30),
            Duration::from_secs(5),
        );
        send_media(&mut primary, &socket, &nothing, Duration::from_secs(5));
        let again = TestMedia::vp8(8, 30);
        send_media(&mut primary, &socket, &again, Duration::from_secs(8));
    });
    wait_live(&server, "fo");
    // A backup standing by sends H.264.
    let (mut backup, socket, _) = whip_publisher(&server, "fo?role=backup", "");
    let media = TestMedia::make(18);
    let backup = std::thread::spawn(move || {
        send_media(&mut backup, &socket, &media, Duration::from_secs(18));
    });
    // A viewer whose offer has VP8 and H.264 gets the VP8 feed, and is answered both.
    let (mut viewer, viewer_socket, _, answer) = whep_viewer(&server, "fo");
    assert!(
        answer.contains("VP8/90000") && answer.contains("H264/90000"),
        "{answer}"
    );
    let mut got = receive(&mut viewer, &viewer_socket, Duration::from_secs(2));
    assert_eq!(got.video_codecs.first(), Some(&str0m::format::Codec::Vp8));
    // The primary stalls, the backup takes over: the viewer gets its H.264, from a keyframe.
    let deadline = Instant::now() + Duration::from_secs(12);
    let h264 = |got: &common::rtc::Received| {
        (got.video_codecs.iter())
            .filter(|&&c| c == str0m::format::Codec::H264)
            .count()
    };
    while h264(&got) < 60 && Instant::now() < deadline {
        let more = receive(&mut viewer, &viewer_socket, Duration::from_millis(500));
        got.video.extend(more.video);
        got.video_codecs.extend(more.video_codecs);
    }
    let log = server.log();
    assert!(
        log.contains("switched to the backup publisher"),
        "no failover"
    );
    assert!(
        log.contains("1 viewers of fo moved to its H.264"),
        "the viewer was not moved"
    );
    let switch = (got.video_codecs.iter())
        .position(|&c| c == str0m::format::Codec::H264)
        .expect("H.264 after the failover");
    let (vp8, h264_frames) = got.video.split_at(switch);
    assert!(
        got.video_codecs[switch..]
            .iter()
            .all(|&c| c == str0m::format::Codec::H264),
        "one switch, to H.264"
    );
    println!("{} VP8 frames, then {} H.264", vp8.len(), h264_frames.len());
    let sizes = decode(vp8, shardcast_native::CodecId::Vp8);
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
    assert!(
        h264_frames.len() >= 60,
        "{} H.264 frames",
        h264_frames.len()
    );
    assert!(common::rtc::is_keyframe(&h264_frames[0]), "from a keyframe");
    let sizes = decode_h264(h264_frames);
    assert_eq!(sizes.len(), h264_frames.len(), "every H.264 frame decodes");
    assert!(sizes.iter().all(|&s| s == (640, 360)), "{sizes:?}");
    // The primary sends again and takes back at its keyframe: the viewer moves back to VP8.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut back = Vec::new();
    while back.len() < 30 && Instant::now() < deadline {
        let more = receive(&mut viewer, &viewer_socket, Duration::from_millis(500));
        let vp8 = (more.video.into_iter().zip(more.video_codecs))
            .skip_while(|(_, c)| *c == str0m::format::Codec::H264)
            .map(|(frame, c)| {
                assert_eq!(c, str0m::format::Codec::Vp8, "one switch back");
                frame
            });
        back.extend(vp8);
    }
    let log = server.log();
    assert!(
        log.contains("switched to the primary publisher"),
        "no take-back"
    );
    assert!(log.contains("1 viewers of fo moved to its VP8 feed"));
    assert!(
        back.len() >= 30,
        "{} VP8 frames after the take-back",
        back.len()
    );
    let sizes = decode(&back, shardcast_native::CodecId::Vp8);
    assert_eq!(sizes.len(), back.len(), "every VP8 frame decodes");
    primary.join().unwrap();
    backup.join().unwrap();
}

#[test]
fn a_vp8_keyframe_larger_than_the_limit_ends_the_publish() {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n\
                  [media]\nmax_width = 1280\nmax_height = 720\n";
    let server = Server::start("epoll", 1, config);
    let (mut publisher, socket, location) = whip_publisher_from(vp8_only(), &server, "big", "");
    // A keyframe header that claims 4000x3000 (RFC 6386 §9.1), then some bytes.
    let mut forged = vec![0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a];
    forged.extend_from_slice(&4000u16.to_le_bytes());
    forged.extend_from_slice(&3000u16.to_le_bytes());
    forged.extend_from_slice(&[0x55; 200]);
    let media = TestMedia {
        video: vec![forged; 30],
        opus: TestMedia::make(1).opus,
    };
    send_media(&mut publisher, &socket, &media, Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("VP8 4000x3000 outside 1x1..1280x720") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The session is gone, and no frame reached a transcode thread.
    assert_eq!(delete(&server, &location), 404);
    // (Its sound came first and was packaged; no picture ever was.)
    assert_eq!(server.get("/live/big/source/index.m3u8").status, 404);
    assert_eq!(server.metric("shardcast_transcode_vp8_frames_total"), 0);
}

#[test]
fn an_offer_with_h264_and_vp8_is_answered_h264_and_vp8_alone_needs_a_transcode_thread() {
    let with_transcode = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n";
    let server = Server::start("epoll", 1, with_transcode);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // str0m offers VP8 before H.264, as Chromium does.
    let (_, sdp, _) = publish_offer(socket.local_addr().unwrap());
    assert!(sdp.find("VP8/90000") < sdp.find("H264/90000"), "{sdp}");
    let response = post_offer(&server, "both", "", &sdp);
    let answer = String::from_utf8_lossy(&response.body).to_string();
    assert_eq!(response.status, 201, "{answer}");
    assert!(
        answer.contains("H264/90000") && !answer.contains("VP8"),
        "{answer}"
    );
    let (_, sdp, _) = publish_offer_from(vp8_only(), socket.local_addr().unwrap());
    let response = post_offer(&server, "vp8", "", &sdp);
    let answer = String::from_utf8_lossy(&response.body).to_string();
    assert_eq!(response.status, 201, "{answer}");
    assert!(
        answer.contains("VP8/90000") && !answer.contains("H264"),
        "{answer}"
    );
    drop(server);
    // Without a transcode thread nothing would make VP8 into H.264: the offer is refused
    // (rather than going live without its picture).
    let server = Server::start("epoll", 1, CONFIG);
    let (_, sdp, _) = publish_offer_from(vp8_only(), socket.local_addr().unwrap());
    let response = post_offer(&server, "vp8", "", &sdp);
    let answer = String::from_utf8_lossy(&response.body).to_string();
    assert_eq!(response.status, 406, "{answer}");
    assert!(answer.contains("VP8 needs transcoding on"), "{answer}");
}

#[test]
fn a_publisher_that_sends_no_keyframe_is_asked_for_one() {
    // One keyframe in 10 s: the server asks for another once a segment target (2 s) passes.
    let media = TestMedia::with_gop(6, 300);
    let server = Server::start("epoll", 1, CONFIG);
    let (mut publisher, socket, _) = whip_publisher(&server, "quiet", "");
    let sent = send_media(&mut publisher, &socket, &media, Duration::from_secs(8));
    println!("{sent:?}");
    assert!(sent.keyframe_requests >= 2, "{sent:?}");
    // At most one request per 500 ms.
    assert!(sent.keyframe_requests <= 12, "{sent:?}");
}

#[test]
fn whip_takes_the_stream_key_as_bearer_and_refuses_a_second_primary() {
    let config = format!(
        "[media]\npublish_open = false\npublish_keys = [{{ stream = \"keyed\", key = \"k3y\" }}]\n{CONFIG}"
    );
    let server = Server::start("epoll", 1, &config);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_publisher, sdp, _) = publish_offer(socket.local_addr().unwrap());
    assert_eq!(post_offer(&server, "keyed", "", &sdp).status, 401);
    assert_eq!(
        post_offer(&server, "keyed", "Authorization: Bearer nope\r\n", &sdp).status,
        403
    );
    let (mut publisher, socket, _) =
        whip_publisher(&server, "keyed", "Authorization: Bearer k3y\r\n");
    // Live, a second primary is refused by the stream's home, with its reason.
    let media = TestMedia::make(3);
    let sender = std::thread::spawn(move || {
        send_media(&mut publisher, &socket, &media, Duration::from_secs(4))
    });
    wait_live(&server, "keyed");
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_second, sdp, _) = publish_offer(other.local_addr().unwrap());
    let refused = post_offer(&server, "keyed", "Authorization: Bearer k3y\r\n", &sdp);
    assert_eq!(
        refused.status,
        409,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    sender.join().unwrap();
    // Bad requests.
    assert_eq!(
        post_offer(
            &server,
            "keyed",
            "Authorization: Bearer k3y\r\n",
            "v=0\r\nnot sdp"
        )
        .status,
        400
    );
}

#[test]
fn chromium_goes_live_from_the_publish_page_and_another_page_plays_it_over_whep() {
    let server = Server::start("uring", 2, CONFIG);
    let base = format!("http://{}", server.addr);
    let report =
        common::browser::run_script(&server, "whip.mjs", &base, "whip", &["--stream", "browser"]);
    println!("chromium WHIP → WHEP: {report}");
    // The browser's stream is an ordinary one: its LL-HLS playlist lists segments.
    let playlist = server.get("/live/browser/source/index.m3u8");
    assert_eq!(playlist.status, 200);
}

#[test]
fn chromium_publishes_vp8_over_whip_and_another_page_plays_it_as_it_came() {
    let config = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n[transcode]\nladder = []\n";
    let server = Server::start("uring", 2, config);
    let base = format!("http://{}", server.addr);
    let args = ["--stream", "vp8live", "--codec", "vp8"];
    let report = common::browser::run_script(&server, "whip.mjs", &base, "whip-vp8", &args);
    println!("chromium VP8 WHIP → WHEP: {report}");
    assert_eq!(report["sending"]["codec"], "video/VP8", "{report}");
    // The viewer page takes VP8 too: it got the publisher's VP8 as it came.
    assert_eq!(report["seen"]["codec"], "video/VP8", "{report}");
    assert!(server.metric("shardcast_transcode_vp8_frames_total") >= 60);
    let master = String::from_utf8(server.get("/live/vp8live/index.m3u8").body).unwrap();
    assert!(master.contains("avc1."), "{master}");
}

#[test]
fn chromium_goes_live_and_watches_over_ice_tcp_when_udp_is_blocked() {
    let server = Server::start("uring", 2, CONFIG);
    let base = format!("http://{}", server.addr);
    let args = ["--stream", "tcplive", "--udp", "off"];
    let report = common::browser::run_script(&server, "whip.mjs", &base, "whip-tcp", &args);
    println!("chromium WHIP → WHEP over TCP: {}", report["seen"]);
    // The publisher's session and the viewer's, each reached over TCP.
    let log = server.log();
    let over_tcp = log
        .matches("a peer of tcplive reached its session over TCP")
        .count();
    assert_eq!(over_tcp, 2, "publisher and viewer over TCP");
    assert_eq!(server.get("/live/tcplive/source/index.m3u8").status, 200);
}

#[test]
fn the_on_publish_webhook_decides_whip_publishes_and_hears_their_end() {
    // Allows stream "yes", refuses the rest; records every call.
    let (hook, seen) = common::webhook_server("yes", 3);
    let config = format!("[media]\non_publish = \"{hook}\"\non_unpublish = \"{hook}\"\n{CONFIG}");
    let server = Server::start("epoll", 2, &config);
    let (_publisher, _socket, location) = whip_publisher(&server, "yes", "");
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_refused, sdp, _) = publish_offer(other.local_addr().unwrap());
    let refused = post_offer(&server, "no", "", &sdp);
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(delete(&server, &location), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "webhooks: {:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = seen.lock().unwrap();
    let publishes: Vec<&String> = seen
        .iter()
        .filter(|r| r.contains("\"action\":\"publish\""))
        .collect();
    assert_eq!(publishes.len(), 2, "{seen:?}");
    assert!(publishes
        .iter()
        .all(|r| r.contains("\"protocol\":\"whip\"")));
    let unpublishes = seen
        .iter()
        .filter(|r| r.contains("\"action\":\"unpublish\""))
        .count();
    assert_eq!(
        unpublishes, 1,
        "only the accepted publisher's end: {seen:?}"
    );
}
