//! WebRTC clients of the tests' own, on str0m (the sans-io stack shardcast uses): WHEP
//! viewers and WHIP publishers that talk to the real binary over loopback, and FFmpeg to
//! decode what they receive.

use super::{read_response, Response, Server};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// One HTTP request with a body; the response.
pub fn request(
    server: &Server,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Response {
    let mut stream = server.connect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut stream).expect("a response")
}

pub fn wait_live(server: &Server, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.get(&format!("/live/{stream}/index.m3u8")).status != 200 {
        assert!(Instant::now() < deadline, "{stream} never went live");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A viewer's offer to receive video and audio, from `local`.
pub fn offer(local: SocketAddr) -> (Rtc, String, str0m::change::SdpPendingOffer) {
    offer_from(Rtc::builder(), local)
}

/// [`offer`] of an `Rtc` made by `builder` (its codecs).
pub fn offer_from(
    builder: str0m::RtcConfig,
    local: SocketAddr,
) -> (Rtc, String, str0m::change::SdpPendingOffer) {
    let mut rtc = builder.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    (rtc, offer.to_sdp_string(), pending)
}

/// One turn of a client's I/O: sends what `rtc` has to send, hands its events to
/// `on_event`, then waits (at most `max_wait`, at most until its next timeout) for one
/// datagram and feeds it (or the time).
fn step(rtc: &mut Rtc, socket: &UdpSocket, max_wait: Duration, on_event: impl FnMut(Event)) {
    step_dropping(rtc, socket, (max_wait, &mut || false), on_event);
}

/// [`step`], dropping the received datagrams `drop` says to (a lossy link).
fn step_dropping(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    (max_wait, drop): (Duration, &mut dyn FnMut() -> bool),
    mut on_event: impl FnMut(Event),
) {
    let timeout = loop {
        match rtc.poll_output().unwrap() {
            Output::Timeout(at) => break at,
            Output::Transmit(t) => {
                socket.send_to(&t.contents, t.destination).unwrap();
            }
            Output::Event(event) => on_event(event),
        }
    };
    let wait = timeout
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(1), max_wait);
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    let input = match socket.recv_from(&mut buf) {
        Ok(_) if drop() => Input::Timeout(Instant::now()),
        Ok((n, from)) => {
            let local = socket.local_addr().unwrap();
            let receive = Receive::new(Protocol::Udp, from, local, &buf[..n]).unwrap();
            Input::Receive(Instant::now(), receive)
        }
        Err(_) => Input::Timeout(Instant::now()),
    };
    rtc.handle_input(input).unwrap();
}

/// Drives the viewer over its socket until it is connected (or `within` passes).
pub fn connect(rtc: &mut Rtc, socket: &UdpSocket, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && !rtc.is_connected() {
        step(rtc, socket, Duration::from_millis(100), |_| {});
    }
    rtc.is_connected()
}

/// A viewer that posts its offer for `stream` and completes ICE and DTLS: the viewer, its
/// socket, the session's Location, and the answer.
pub fn whep_viewer(server: &Server, stream: &str) -> (Rtc, UdpSocket, String, String) {
    whep_viewer_from(Rtc::builder(), server, stream)
}

/// [`whep_viewer`] of an `Rtc` made by `builder` (its codecs).
pub fn whep_viewer_from(
    builder: str0m::RtcConfig,
    server: &Server,
    stream: &str,
) -> (Rtc, UdpSocket, String, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut viewer, sdp, pending) = offer_from(builder, socket.local_addr().unwrap());
    let response = request(
        server,
        "POST",
        &format!("/whep/live/{stream}"),
        "application/sdp",
        &sdp,
    );
    let answer = String::from_utf8(response.body.clone()).unwrap();
    assert_eq!(response.status, 201, "{answer}");
    assert_eq!(response.header("content-type"), Some("application/sdp"));
    let location = response.header("location").expect("a Location").to_string();
    viewer
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    assert!(
        connect(&mut viewer, &socket, Duration::from_secs(10)),
        "ICE and DTLS did not complete"
    );
    (viewer, socket, location, answer)
}

/// What a viewer received.
#[derive(Default)]
pub struct Received {
    /// Video frames, Annex B (H.264) or VP8 frames as str0m reassembles them.
    pub video: Vec<Vec<u8>>,
    /// The codec they came in (the last frame's).
    pub video_codec: Option<Codec>,
    /// Each frame's codec.
    pub video_codecs: Vec<Codec>,
    /// Each video frame's arrival and RTP time (90 kHz).
    pub video_times: Vec<(Instant, u64)>,
    /// The mid the video came on.
    pub video_mid: Option<Mid>,
    /// Opus packets: RTP time (48 kHz) and payload.
    pub opus: Vec<(u64, Vec<u8>)>,
}

/// Runs the viewer over its socket for `within`, returning the media it received.
pub fn receive(rtc: &mut Rtc, socket: &UdpSocket, within: Duration) -> Received {
    receive_dropping(rtc, socket, within, 0)
}

/// [`receive`] over a lossy link: every `drop_every`th datagram is lost (0: none).
pub fn receive_dropping(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    within: Duration,
    drop_every: u32,
) -> Received {
    let deadline = Instant::now() + within;
    let mut got = Received::default();
    let mut n = 0u32;
    let mut drop = || {
        n += 1;
        drop_every > 0 && n.is_multiple_of(drop_every)
    };
    while Instant::now() < deadline {
        let wait = Duration::from_millis(50);
        step_dropping(rtc, socket, (wait, &mut drop), |event| {
            if let Event::MediaData(data) = event {
                match data.params.spec().codec {
                    codec @ (Codec::H264 | Codec::Vp8) => {
                        got.video_codec = Some(codec);
                        got.video_codecs.push(codec);
                        got.video.push(data.data.to_vec());
                        got.video_times.push((Instant::now(), data.time.numer()));
                        got.video_mid = Some(data.mid);
                    }
                    Codec::Opus => got.opus.push((data.time.numer(), data.data.to_vec())),
                    _ => {}
                }
            }
        });
    }
    got
}

/// Whether an Annex B frame holds an IDR slice.
pub fn is_keyframe(frame: &[u8]) -> bool {
    shardcast_media::codec::nal_units(frame)
        .iter()
        .any(|unit| unit[0] & 0x1f == 5)
}

/// Decodes Annex B frames with FFmpeg: each decoded picture's size.
pub fn decode_h264(frames: &[Vec<u8>]) -> Vec<(u32, u32)> {
    decode(frames, shardcast_native::CodecId::H264)
}

/// Decodes `codec` frames with FFmpeg: each decoded picture's size.
pub fn decode(frames: &[Vec<u8>], codec: shardcast_native::CodecId) -> Vec<(u32, u32)> {
    use shardcast_native::{CodecContext, Error, Frame, Packet};
    let mut decoder = CodecContext::decoder(codec).unwrap();
    decoder.open(None).unwrap();
    let mut picture = Frame::new().unwrap();
    let mut sizes = Vec::new();
    let mut drain = |decoder: &mut CodecContext, sizes: &mut Vec<(u32, u32)>| loop {
        match decoder.receive_frame(&mut picture) {
            Ok(()) => sizes.push((picture.width(), picture.height())),
            Err(Error::Again | Error::Eof) => break,
            Err(e) => panic!("decoding: {e}"),
        }
    };
    for frame in frames {
        decoder
            .send_packet(&Packet::copy_from(frame).unwrap())
            .unwrap_or_else(|e| panic!("a frame the decoder refuses: {e}"));
        drain(&mut decoder, &mut sizes);
    }
    decoder.send_packet(&Packet::new().unwrap()).ok();
    drain(&mut decoder, &mut sizes);
    sizes
}

/// H.264 access units (Annex B) and Opus packets of `seconds` of a 640x360 30 fps test
/// pattern and a 48 kHz tone, encoded by ffmpeg as a browser would send them: no B-frames, a
/// keyframe every second, 20 ms Opus frames.
pub struct TestMedia {
    pub video: Vec<Vec<u8>>,
    pub opus: Vec<Vec<u8>>,
}

impl TestMedia {
    pub fn make(seconds: u32) -> TestMedia {
        TestMedia::with_gop(seconds, 30)
    }

    /// [`TestMedia::make`] with a keyframe every `gop` frames.
    pub fn with_gop(seconds: u32, gop: u32) -> TestMedia {
        TestMedia::sized(seconds, gop, "640x360")
    }

    /// [`TestMedia::with_gop`] at picture size `size` (`WxH`).
    pub fn sized(seconds: u32, gop: u32, size: &str) -> TestMedia {
        let g = gop.to_string();
        let video = [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-x264-params",
            "aud=1:scenecut=0",
            "-f",
            "h264",
            "-g",
            &g,
        ];
        let (video, opus) = encode_test_media((seconds, size), &video, "v.h264");
        TestMedia {
            video: shardcast_bench::rtc::access_units(&video),
            opus,
        }
    }

    /// [`TestMedia::make`] in VP8 (libvpx, a keyframe every `gop` frames): each video entry
    /// is one VP8 frame.
    pub fn vp8(seconds: u32, gop: u32) -> TestMedia {
        let g = gop.to_string();
        let video = [
            "-c:v",
            "libvpx",
            "-b:v",
            "800k",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-g",
            &g,
            "-keyint_min",
            &g,
            "-auto-alt-ref",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "ivf",
        ];
        let (video, opus) = encode_test_media((seconds, "640x360"), &video, "v.ivf");
        TestMedia {
            video: shardcast_bench::rtc::ivf_frames(&video),
            opus,
        }
    }
}

/// `seconds` of ffmpeg's test picture at `size` and 30 fps encoded with `video_args` into a
/// file named `video_file` (its bytes), and a 440 Hz tone as 20 ms Opus packets.
fn encode_test_media(
    (seconds, size): (u32, &str),
    video_args: &[&str],
    video_file: &str,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("shardcast-whip-{}-{n}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let (video_out, ogg) = (dir.join(video_file), dir.join("a.ogg"));
    let t = seconds.to_string();
    let source = format!("testsrc=size={size}:rate=30");
    let video_in = ["-f", "lavfi", "-i", &source, "-t", &t];
    let audio = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &t,
        "-c:a",
        "libopus",
        "-b:a",
        "64k",
        "-frame_duration",
        "20",
        "-f",
        "ogg",
    ];
    let video = [&video_in[..], video_args].concat();
    for (args, out) in [(&video[..], &video_out), (&audio[..], &ogg)] {
        let status = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(args)
            .arg(out)
            .status()
            .expect("ffmpeg (scripts/setup.sh installs it)");
        assert!(status.success(), "ffmpeg {args:?}");
    }
    let video = std::fs::read(&video_out).unwrap();
    let opus = shardcast_bench::rtc::ogg_packets(&std::fs::read(&ogg).unwrap())
        .into_iter()
        .skip(2) // OpusHead, OpusTags
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    (video, opus)
}

/// A publisher: its `Rtc`, the mids it sends video and audio on.
pub struct Publisher {
    pub rtc: Rtc,
    pub video: Mid,
    pub audio: Mid,
}

/// A publisher's offer to send video and audio, from `local`.
pub fn publish_offer(local: SocketAddr) -> (Publisher, String, str0m::change::SdpPendingOffer) {
    publish_offer_from(Rtc::builder(), local)
}

/// [`publish_offer`] of an `Rtc` made by `builder` (its codecs).
pub fn publish_offer_from(
    builder: str0m::RtcConfig,
    local: SocketAddr,
) -> (Publisher, String, str0m::change::SdpPendingOffer) {
    let mut rtc = builder.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let video = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    (
        Publisher { rtc, video, audio },
        offer.to_sdp_string(),
        pending,
    )
}

/// What a publisher saw while it sent.
#[derive(Debug, Default)]
pub struct Sent {
    pub video_frames: usize,
    pub opus_packets: usize,
    /// Keyframe requests (PLI/FIR) from the server.
    pub keyframe_requests: usize,
}

/// Sends `media` in real time over a connected publisher (video at 30 fps, Opus every 20 ms),
/// for at most `within`.
pub fn send_media(
    publisher: &mut Publisher,
    socket: &UdpSocket,
    media: &TestMedia,
    within: Duration,
) -> Sent {
    let (video_mid, audio_mid) = (publisher.video, publisher.audio);
    let rtc = &mut publisher.rtc;
    let pt_of = |rtc: &mut Rtc, mid, codec| {
        let writer = rtc.writer(mid).expect("a writer once connected");
        let mode_1 = |p: &&str0m::format::PayloadParams| {
            codec != Codec::H264 || p.spec().format.packetization_mode == Some(1)
        };
        let pt = (writer.payload_params())
            .filter(|p| p.spec().codec == codec)
            .find(mode_1)
            .map(|p| p.pt())
            .expect("the codec was accepted");
        pt
    };
    // H.264 when it was accepted, else VP8 (the media's frames must be of that codec).
    let video_codec = match rtc
        .writer(video_mid)
        .map(|w| (w.payload_params()).any(|p| p.spec().codec == Codec::H264))
    {
        Some(true) => Codec::H264,
        _ => Codec::Vp8,
    };
    let (video_pt, audio_pt) = (
        pt_of(rtc, video_mid, video_codec),
        pt_of(rtc, audio_mid, Codec::Opus),
    );
    let start = Instant::now();
    let mut sent = Sent::default();
    while start.elapsed() < within {
        let elapsed = start.elapsed();
        let video_due = (elapsed.as_millis() as usize * 30 / 1000 + 1).min(media.video.len());
        while sent.video_frames < video_due {
            let n = sent.video_frames;
            let time = str0m::media::MediaTime::from_90khz(n as u64 * 3000);
            let data = media.video[n].clone();
            rtc.writer(video_mid)
                .unwrap()
                .write(video_pt, Instant::now(), time, data)
                .unwrap();
            sent.video_frames += 1;
        }
        let audio_due = (elapsed.as_millis() as usize / 20 + 1).min(media.opus.len());
        while sent.opus_packets < audio_due {
            let n = sent.opus_packets;
            let time = str0m::media::MediaTime::new(
                n as u64 * 960,
                str0m::media::Frequency::FORTY_EIGHT_KHZ,
            );
            let data = media.opus[n].clone();
            rtc.writer(audio_mid)
                .unwrap()
                .write(audio_pt, Instant::now(), time, data)
                .unwrap();
            sent.opus_packets += 1;
        }
        step(rtc, socket, Duration::from_millis(5), |event| {
            if let Event::KeyframeRequest(_) = event {
                sent.keyframe_requests += 1;
            }
        });
        if sent.video_frames == media.video.len() && sent.opus_packets == media.opus.len() {
            break;
        }
    }
    sent
}

/// Posts a WHIP offer for `stream` with `auth` (a header line or ""): the status, Location
/// and body.
pub fn post_offer(server: &Server, stream: &str, auth: &str, sdp: &str) -> Response {
    let mut s = server.connect();
    write!(
        s,
        "POST /whip/live/{stream} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .unwrap();
    read_response(&mut s).expect("a response")
}

/// A publisher of `stream` that is accepted and connected: it, its socket and its Location.
pub fn whip_publisher(server: &Server, stream: &str, auth: &str) -> (Publisher, UdpSocket, String) {
    whip_publisher_from(Rtc::builder(), server, stream, auth)
}

/// [`whip_publisher`] of an `Rtc` made by `builder` (its codecs).
pub fn whip_publisher_from(
    builder: str0m::RtcConfig,
    server: &Server,
    stream: &str,
    auth: &str,
) -> (Publisher, UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut publisher, sdp, pending) = publish_offer_from(builder, socket.local_addr().unwrap());
    let response = post_offer(server, stream, auth, &sdp);
    let body = String::from_utf8_lossy(&response.body).to_string();
    assert_eq!(response.status, 201, "{body}");
    let location = response.header("location").expect("a Location").to_string();
    assert!(location.starts_with("/whip/session/"), "{location}");
    let answer = SdpAnswer::from_sdp_string(&body).unwrap();
    publisher
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    assert!(
        connect(&mut publisher.rtc, &socket, Duration::from_secs(10)),
        "ICE and DTLS did not complete"
    );
    (publisher, socket, location)
}

pub fn delete(server: &Server, location: &str) -> u16 {
    let mut s = server.connect();
    write!(
        s,
        "DELETE {location} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s).expect("a response").status
}
