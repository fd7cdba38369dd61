//! The clients of the WebRTC load: WHEP viewers that count RTP from its clear header, and a
//! WHIP publisher that sends a looped file in real time.

use super::media::{access_units, ogg_packets};
use super::RtcLoadConfig;
use mio::net::UdpSocket;
use mio::{Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// The publisher's token in the poll (viewers are 0..N).
pub const PUBLISHER_TOKEN: usize = usize::MAX - 1;

/// What a viewer counted.
#[derive(Debug, Default)]
pub struct ViewerStats {
    /// The payload types of H.264 in the answer.
    h264: Vec<u8>,
    ssrc: Option<u32>,
    last_ext: Option<u64>,
    pub window_start: Option<Instant>,
    start_ext: Option<u64>,
    max_ext: u64,
    received: u64,
    bytes: u64,
    /// (RTP timestamp, arrival of its marker packet), over the window.
    pub frames: Vec<(u32, Instant)>,
}

impl ViewerStats {
    /// Starts the measured window.
    pub fn start(&mut self, now: Instant) {
        self.window_start = Some(now);
    }

    pub fn window_packets(&self) -> u64 {
        self.received
    }

    pub fn window_lost(&self) -> u64 {
        match self.start_ext {
            Some(first) => (self.max_ext - first + 1).saturating_sub(self.received),
            None => 0,
        }
    }

    pub fn window_bytes(&self) -> u64 {
        self.bytes
    }

    fn rtp(&mut self, packet: &[u8], now: Instant) {
        if packet.len() < 12 {
            return;
        }
        let measuring = self.window_start.is_some();
        if measuring {
            self.bytes += packet.len() as u64;
        }
        if !self.h264.contains(&(packet[1] & 0x7f)) {
            return; // audio, RTX
        }
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        if *self.ssrc.get_or_insert(ssrc) != ssrc {
            return;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ext = match self.last_ext {
            None => u64::from(seq) + (1 << 16),
            Some(last) => {
                let step = i64::from(seq.wrapping_sub(last as u16) as i16);
                (last as i64 + step) as u64
            }
        };
        self.last_ext = Some(self.last_ext.map_or(ext, |l| l.max(ext)));
        if !measuring {
            return;
        }
        if self.start_ext.is_none() {
            self.start_ext = Some(ext);
        }
        if ext < self.start_ext.unwrap_or(0) {
            return;
        }
        self.max_ext = self.max_ext.max(ext);
        self.received += 1;
        if packet[1] & 0x80 != 0 {
            let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
            self.frames.push((ts, now));
        }
    }
}

/// One WHEP viewer.
pub struct Viewer {
    rtc: Rtc,
    socket: UdpSocket,
    pub local: SocketAddr,
    /// The session's resource, for the DELETE that ends it.
    pub location: String,
    pub connected_at: Option<Instant>,
    pub stats: ViewerStats,
    next_timeout: Instant,
}

impl Viewer {
    /// Posts a viewer's offer; the viewer, connecting.
    pub fn join(
        config: &RtcLoadConfig,
        ip: IpAddr,
        poll: &Poll,
        token: Token,
    ) -> Result<Viewer, String> {
        let std_socket =
            std::net::UdpSocket::bind((ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
        std_socket
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let local = std_socket.local_addr().map_err(|e| e.to_string())?;
        if config.gro {
            super::gro::enable(std_socket.as_raw_fd()).map_err(|e| format!("UDP_GRO: {e}"))?;
        }
        super::gro::enable_timestamps(std_socket.as_raw_fd())
            .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
        let mut socket = UdpSocket::from_std(std_socket);
        poll.registry()
            .register(&mut socket, token, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        // H.264 and Opus only, as a browser that prefers them would: a server that
        // re-encodes must encode H.264 too, and every viewer is counted the same way.
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change.apply().ok_or("no offer")?;
        let path = format!("/whep/live/{}", config.stream);
        let (answer, location) = post_sdp(config.http, &path, &offer.to_sdp_string(), None)?;
        let h264 = answer
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, codec)| codec.starts_with("H264/"))
            .filter_map(|(pt, _)| pt.parse().ok())
            .collect();
        let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| e.to_string())?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        let mut viewer = Viewer {
            rtc,
            socket,
            local,
            location,
            connected_at: None,
            stats: ViewerStats {
                h264,
                ..ViewerStats::default()
            },
            next_timeout: now,
        };
        viewer.drain();
        Ok(viewer)
    }

    /// Datagrams until the socket is empty (a GRO run split into its datagrams): RTP
    /// counted, the rest to str0m.
    pub fn readable(&mut self, buf: &mut [u8]) {
        let fd = self.socket.as_raw_fd();
        loop {
            let (n, segment, from, now) = match super::gro::recv(fd, buf) {
                Ok(got) => got,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            for packet in buf[..n].chunks(segment.unwrap_or(n).max(1)) {
                self.datagram(packet, from, now);
            }
        }
    }

    fn datagram(&mut self, packet: &[u8], from: SocketAddr, now: Instant) {
        let n = packet.len();
        let is_rtp = n >= 2 && packet[0] >> 6 == 2 && !(64..=95).contains(&(packet[1] & 0x7f));
        if is_rtp {
            return self.stats.rtp(packet, now);
        }
        if let Ok(receive) = Receive::new(Protocol::Udp, from, self.local, packet) {
            let _ = self.rtc.handle_input(Input::Receive(now, receive));
            self.drain();
        }
    }

    pub fn tick(&mut self, now: Instant) {
        if now >= self.next_timeout {
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain();
        }
    }

    fn drain(&mut self) {
        let connected = &mut self.connected_at;
        self.next_timeout = drain(&mut self.rtc, &self.socket, |event| {
            if let Event::Connected = event {
                connected.get_or_insert_with(Instant::now);
            }
        });
    }
}

/// The WHIP publisher: a looped file in real time.
pub struct Publisher {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    /// The session's resource, for the DELETE that ends it.
    pub location: String,
    video: (Mid, Pt),
    audio: (Mid, Pt),
    frames: Vec<Vec<u8>>,
    packets: Vec<Vec<u8>>,
    started: Instant,
    sent_video: u64,
    sent_audio: u64,
    next_timeout: Instant,
}

impl Publisher {
    /// Publishes the files over WHIP; returns once connected and sending for 2 s.
    pub fn start(
        config: &RtcLoadConfig,
        h264: &Path,
        ogg: &Path,
        poll: &Poll,
    ) -> Result<Publisher, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let frames = access_units(&read(h264)?);
        let packets: Vec<Vec<u8>> = ogg_packets(&read(ogg)?).into_iter().skip(2).collect();
        if frames.is_empty() || packets.is_empty() {
            return Err("empty media files".into());
        }
        let ip = config
            .source_ips
            .first()
            .copied()
            .unwrap_or([127, 0, 0, 1].into());
        let std_socket = std::net::UdpSocket::bind((ip, 0)).map_err(|e| e.to_string())?;
        std_socket
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let local = std_socket.local_addr().map_err(|e| e.to_string())?;
        let mut socket = UdpSocket::from_std(std_socket);
        poll.registry()
            .register(&mut socket, Token(PUBLISHER_TOKEN), Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        let mut rtc = Rtc::builder().build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply().ok_or("no offer")?;
        let path = format!("/whip/live/{}", config.stream);
        let (answer, location) = post_sdp(
            config.http,
            &path,
            &offer.to_sdp_string(),
            config.key.as_deref(),
        )?;
        let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| e.to_string())?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        let mut publisher = Publisher {
            rtc,
            socket,
            local,
            location,
            video: (video, Pt::from(0)),
            audio: (audio, Pt::from(0)),
            frames,
            packets,
            started: now,
            sent_video: 0,
            sent_audio: 0,
            next_timeout: now,
        };
        publisher.drain();
        let deadline = now + Duration::from_secs(10);
        let mut buf = vec![0u8; 2048];
        while !publisher.rtc.is_connected() {
            if Instant::now() > deadline {
                return Err("the publisher did not connect within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(2));
            publisher.readable(&mut buf);
            publisher.tick(Instant::now());
        }
        publisher.video.1 = payload_type(&mut publisher.rtc, video, Codec::H264)?;
        publisher.audio.1 = payload_type(&mut publisher.rtc, audio, Codec::Opus)?;
        publisher.started = Instant::now();
        while publisher.started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(2));
            publisher.readable(&mut buf);
            publisher.tick(Instant::now());
        }
        Ok(publisher)
    }

    pub fn readable(&mut self, buf: &mut [u8]) {
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            if let Ok(receive) = Receive::new(Protocol::Udp, from, self.local, &buf[..n]) {
                let _ = self
                    .rtc
                    .handle_input(Input::Receive(Instant::now(), receive));
            }
        }
        self.drain();
    }

    /// Writes what is due (video at 30 fps, Opus every 20 ms), then the timeouts.
    pub fn tick(&mut self, now: Instant) {
        if self.rtc.is_connected() && self.video.1 != Pt::from(0) {
            let elapsed = now.duration_since(self.started);
            let video_due = elapsed.as_millis() as u64 * 30 / 1000 + 1;
            while self.sent_video < video_due {
                let n = self.sent_video;
                let frame = self.frames[(n % self.frames.len() as u64) as usize].clone();
                let time = MediaTime::from_90khz(n * 3000);
                if let Some(w) = self.rtc.writer(self.video.0) {
                    let _ = w.write(self.video.1, now, time, frame);
                }
                self.sent_video += 1;
            }
            let audio_due = elapsed.as_millis() as u64 / 20 + 1;
            while self.sent_audio < audio_due {
                let n = self.sent_audio;
                let packet = self.packets[(n % self.packets.len() as u64) as usize].clone();
                let time = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
                if let Some(w) = self.rtc.writer(self.audio.0) {
                    let _ = w.write(self.audio.1, now, time, packet);
                }
                self.sent_audio += 1;
            }
            self.drain();
        }
        if now >= self.next_timeout {
            let _ = self.rtc.handle_input(Input::Timeout(now));
            self.drain();
        }
    }

    fn drain(&mut self) {
        self.next_timeout = drain(&mut self.rtc, &self.socket, |_| {});
    }
}

/// Sends what `rtc` has to send over `socket` and hands its events to `on_event`; returns
/// when it must be driven next (an hour on when it failed: the client stops driving it).
fn drain(rtc: &mut Rtc, socket: &UdpSocket, mut on_event: impl FnMut(Event)) -> Instant {
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(at)) => return at,
            Ok(Output::Transmit(t)) => {
                let _ = socket.send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(event)) => on_event(event),
            Err(_) => return Instant::now() + Duration::from_secs(3600),
        }
    }
}

/// The payload type of `codec` on `mid` (packetization mode 1 for H.264).
fn payload_type(rtc: &mut Rtc, mid: Mid, codec: Codec) -> Result<Pt, String> {
    let writer = rtc.writer(mid).ok_or("no writer")?;
    let mut params = writer.payload_params().filter(|p| p.spec().codec == codec);
    let pt = params
        .find(|p| codec != Codec::H264 || p.spec().format.packetization_mode == Some(1))
        .map(|p| p.pt())
        .ok_or_else(|| format!("the server accepted no {codec:?}"));
    pt
}

/// Ends a session: DELETE on its resource (errors ignored: the server frees it when its
/// consent lapses anyway).
pub fn delete(http: SocketAddr, location: &str) {
    let Ok(mut stream) = TcpStream::connect_timeout(&http, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE {location} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

/// POSTs an SDP offer to `path`; the answer's SDP and the session's Location, or why not.
fn post_sdp(
    http: SocketAddr,
    path: &str,
    sdp: &str,
    bearer: Option<&str>,
) -> Result<(String, String), String> {
    let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(5))
        .map_err(|e| format!("connect {http}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let auth = bearer.map_or(String::new(), |b| format!("Authorization: Bearer {b}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n{auth}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "201" {
        return Err(format!("POST {path}: {status} {}", body.trim()));
    }
    let location = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    Ok((body.to_string(), location))
}
