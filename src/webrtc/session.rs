//! One WebRTC peer of a shard (a WHEP viewer now; WHIP publishers and co-hosts later), as a
//! sans-io state machine around a `str0m::Rtc`: datagrams and `now` in, datagrams to send and
//! the next deadline out. No socket, clock or thread here; the shard owns the UDP socket.
//!
//! Call order (str0m's rule, kept here): every input ([`Session::answer`],
//! [`Session::handle_datagram`], [`Session::handle_timeout`]) drains the `Rtc` until it asks
//! for the next timeout, so outputs never pile up between inputs.

use super::direct::{Direct, Track};
use super::feed::VideoFrame;
use super::sdp::{media_mids, offers_codec, offers_video};
use super::srtp::{build_tapped, KeySlot, SrtpTx};
use std::collections::hash_map::RandomState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, Mid, Pt};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::rtcp::Rtcp;
use str0m::rtp::{Extension, RawPacket, RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

pub use super::direct::Outbox;

/// One video frame time at 30 fps on the 90 kHz clock: the step an adaptive viewer's video
/// time takes at a switch to a layer that is behind.
const FRAME_TICKS: u64 = 3_000;

/// The `Rtc` of a session in `role` answering `(h264, vp8)`: a viewer's media goes in as
/// ready RTP payloads (RTP mode), a publisher's comes out as frames.
fn rtc_config(role: PeerRole, (h264, vp8): (bool, bool), bwe_start: Option<u64>) -> RtcConfig {
    Rtc::builder()
        .set_rtp_mode(role == PeerRole::Viewer)
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(h264)
        .enable_vp8(vp8)
        .enable_opus(true, false)
        .enable_bwe(bwe_start.map(Bitrate::bps))
}

/// The `Rtc` of a session (see [`rtc_config`]). A viewer that does not adapt gets its media
/// from its own send path once connected: its DTLS keys are kept, and its NACKs come out as
/// raw RTCP.
fn build_rtc(
    now: Instant,
    role: PeerRole,
    codecs: (bool, bool),
    bwe_start: Option<u64>,
) -> (Rtc, Option<KeySlot>) {
    let config = rtc_config(role, codecs, bwe_start);
    if role == PeerRole::Viewer && bwe_start.is_none() {
        let (rtc, keys) = build_tapped(config.enable_raw_packets(true), now);
        (rtc, Some(keys))
    } else {
        (config.build(now), None)
    }
}

/// Why an offer was refused, in HTTP's words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    /// The offer is not SDP str0m can read (400).
    #[error("malformed SDP offer: {0}")]
    Malformed(String),
    /// Nothing in the offer can carry the stream: no audio or video it would receive, or no
    /// codec in common (406).
    #[error("no media or codec in common: the offer must receive H.264 video or Opus audio")]
    NothingInCommon,
    /// A publisher's offer sends video in no codec this side takes (406): it would go live
    /// without its picture.
    #[error("the offer's video is in no codec this server takes ({0})")]
    NoVideoCodec(&'static str),
    /// The offer could not be answered (400).
    #[error("cannot answer the offer: {0}")]
    Unanswerable(String),
}

impl OfferError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            OfferError::NothingInCommon | OfferError::NoVideoCodec(_) => 406,
            OfferError::Malformed(_) | OfferError::Unanswerable(_) => 400,
        }
    }
}

/// Where a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// Answered; ICE and DTLS under way.
    Connecting,
    /// ICE and DTLS done: media may flow.
    Connected,
    /// ICE gave up (consent expired, the peer is gone), or the session was ended.
    Closed,
}

/// What the peer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// A WHEP viewer: the session sends.
    Viewer,
    /// A WHIP publisher: the session receives.
    Publisher,
}

/// A frame a publisher sent, as str0m reassembled it.
#[derive(Debug)]
pub struct Incoming {
    pub codec: Codec,
    /// The RTP timestamp (90 kHz video, 48 kHz Opus).
    pub rtp: u32,
    /// When its first packet arrived.
    pub at: Instant,
    pub data: Arc<[u8]>,
}

/// Frames a publisher's session holds between two drains (a keyframe of a few hundred
/// packets is one frame); past it, frames are dropped and counted.
const INCOMING_MAX: usize = 512;

/// One peer.
pub struct Session {
    rtc: Rtc,
    local: SocketAddr,
    /// The shard's TCP listener for ICE over TCP, when on.
    tcp_local: Option<SocketAddr>,
    /// This side's ICE username fragment: a peer's STUN checks name it first.
    ufrag: String,
    video: Option<Mid>,
    audio: Option<Mid>,
    state: SessionState,
    next_timeout: Instant,
    /// The payload types video and audio go out with, chosen once connected.
    /// The payload type of the video codec it sends now.
    video_pt: Option<(Codec, Pt)>,
    audio_pt: Option<Pt>,
    /// The next RTP sequence numbers (extended; they start below 2^15, so the SRTP rollover
    /// counter starts at 0 as the receiver assumes).
    video_seq: u64,
    audio_seq: u64,
    /// Whether video has started (it starts at a keyframe).
    video_started: bool,
    /// Frames written, and dropped because str0m refused them.
    pub frames_written: u64,
    /// Opus packets written.
    pub packets_written: u64,
    pub frames_refused: u64,
    /// Keyframe requests (PLI, FIR) received from the viewer.
    pub keyframe_requests: u64,
    /// Of those, the ones [`Session::wants_keyframe`] has reported.
    keyframe_requests_seen: u64,
    role: PeerRole,
    /// A publisher's frames not yet taken.
    incoming: Vec<Incoming>,
    /// A publisher's frames dropped because `incoming` was full.
    pub incoming_dropped: u64,
    /// An adaptive viewer's newest bandwidth estimate (bit/s), not yet taken.
    estimate: Option<u64>,
    /// Added to forwarded video times (90 kHz): an adaptive viewer's layers can be apart by
    /// the transcode's delay, and its RTP times must not run backwards at a switch.
    video_offset: u64,
    /// The last video time written, offset included.
    video_last: Option<u64>,
    /// The next frame is the first of another layer.
    layer_switched: bool,
    /// The last Opus time written (48 kHz): at a switch the new layer's feed may repeat a
    /// packet the old one sent.
    audio_last: Option<u64>,
    /// A viewer that moves between layers (its estimator is on).
    adaptive: bool,
    /// The video codec of the answer (H.264 or VP8).
    video_codec: Codec,
    /// A plain viewer's DTLS keying material, until its own send path takes it.
    keys: Option<KeySlot>,
    /// A plain viewer's own send path (`direct.rs`), once connected with an AEAD profile;
    /// None: str0m sends.
    direct: Option<Box<Direct>>,
    /// Where str0m sends to (its DTLS and RTCP go to the address ICE nominated).
    peer: Option<(Protocol, SocketAddr)>,
    /// The time of the newest input.
    now: Instant,
}

impl Session {
    /// Answers `offer_sdp` of a peer in `role` as an ICE-lite peer reachable at `local` (the
    /// shard's UDP socket as the peer must address it). Returns the session and the answer's
    /// SDP.
    ///
    /// `bwe_start`: an adaptive viewer's starting bandwidth estimate (bit/s); its estimates
    /// then come from the viewer's transport-wide congestion feedback
    /// ([`Session::take_estimate`]).
    ///
    /// `tcp_local`: the shard's TCP listener for ICE over TCP, named as a passive candidate.
    ///
    /// `video`: the video codecs this side takes (a publisher) or sends (a viewer), best
    /// first (H.264 or VP8). A publisher's answer has only the first the offer has: a browser
    /// sends the answer's first codec, and Chromium offers VP8 before H.264. A viewer's has
    /// each the offer has, so that it can be moved to another (a VP8 publisher's viewers to
    /// the H.264 of a backup that takes over).
    pub fn answer(
        now: Instant,
        offer_sdp: &str,
        (local, tcp_local): (SocketAddr, Option<SocketAddr>),
        (role, bwe_start): (PeerRole, Option<u64>),
        video_codecs: &[Codec],
    ) -> Result<(Session, String), OfferError> {
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|e| OfferError::Malformed(e.to_string()))?;
        let video_codec = (video_codecs.iter().copied())
            .find(|&codec| offers_codec(offer_sdp, codec))
            .or(video_codecs.first().copied())
            .unwrap_or(Codec::H264);
        let answers = |codec: Codec| match role {
            PeerRole::Publisher => codec == video_codec,
            PeerRole::Viewer => video_codecs.contains(&codec),
        };
        let video_enabled = (answers(Codec::H264), answers(Codec::Vp8));
        let (mut rtc, keys) = build_rtc(now, role, video_enabled, bwe_start);
        let unanswerable = |e: str0m::error::IceError| OfferError::Unanswerable(e.to_string());
        rtc.add_local_candidate(Candidate::host(local, "udp").map_err(unanswerable)?);
        if let Some(tcp) = tcp_local {
            let candidate = Candidate::builder()
                .tcp()
                .host(tcp)
                .tcptype(TcpType::Passive);
            rtc.add_local_candidate(candidate.build().map_err(unanswerable)?);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| OfferError::Unanswerable(e.to_string()))?;
        let answer = answer.to_sdp_string();
        let directions: &[&str] = match role {
            PeerRole::Viewer => &["a=sendonly", "a=sendrecv"],
            PeerRole::Publisher => &["a=recvonly", "a=sendrecv"],
        };
        let (video, audio) = media_mids(&answer, directions);
        if video.is_none() && audio.is_none() {
            return Err(OfferError::NothingInCommon);
        }
        if role == PeerRole::Publisher && video.is_none() && offers_video(offer_sdp) {
            return Err(OfferError::NoVideoCodec(match video_codecs {
                [Codec::H264] => "H.264; VP8 needs transcoding on",
                _ => "H.264 or VP8",
            }));
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        // Random first sequence numbers (RFC 3550 §5.1), from the random username fragment.
        let first_seq = std::hash::BuildHasher::hash_one(&RandomState::new(), &ufrag);
        let mut session = Session {
            rtc,
            local,
            tcp_local,
            ufrag,
            video,
            audio,
            state: SessionState::Connecting,
            next_timeout: now,
            video_pt: None,
            audio_pt: None,
            video_seq: first_seq & 0x3fff,
            audio_seq: first_seq >> 16 & 0x3fff,
            packets_written: 0,
            role,
            incoming: Vec::new(),
            incoming_dropped: 0,
            video_started: false,
            frames_written: 0,
            frames_refused: 0,
            keyframe_requests: 0,
            keyframe_requests_seen: 0,
            estimate: None,
            video_offset: 0,
            video_last: None,
            layer_switched: false,
            audio_last: None,
            adaptive: bwe_start.is_some(),
            video_codec,
            keys,
            direct: None,
            peer: None,
            now,
        };
        session.drain(&mut Outbox::default());
        Ok((session, answer))
    }

    /// The video codec of the answer (H.264 or VP8).
    pub fn video_codec(&self) -> Codec {
        self.video_codec
    }

    /// This side's ICE username fragment.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn next_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// The media lines the viewer receives: video, audio.
    pub fn mids(&self) -> (Option<Mid>, Option<Mid>) {
        (self.video, self.audio)
    }

    /// Whether a datagram from `from` belongs to this session (a STUN check with its
    /// credentials, or traffic from its peer's nominated address).
    pub fn accepts(
        &self,
        now: Instant,
        (proto, from): (Protocol, SocketAddr),
        data: &[u8],
    ) -> bool {
        let Some(local) = self.local_for(proto) else {
            return false;
        };
        match Receive::new(proto, from, local, data) {
            Ok(receive) => self.rtc.accepts(&Input::Receive(now, receive)),
            Err(_) => false,
        }
    }

    /// A datagram from the peer; what to send in answer is appended to `out`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        (proto, from): (Protocol, SocketAddr),
        data: &[u8],
        out: &mut Outbox,
    ) {
        let Some(local) = self.local_for(proto) else {
            return;
        };
        let Ok(receive) = Receive::new(proto, from, local, data) else {
            return; // not STUN, DTLS, RTP or RTCP: dropped
        };
        self.now = now;
        if let Err(e) = self.rtc.handle_input(Input::Receive(now, receive)) {
            log::debug!("webrtc: a datagram from {from} refused: {e}");
        }
        self.drain(out);
    }

    /// Where this side receives over `proto`: its UDP socket, or its TCP listener.
    fn local_for(&self, proto: Protocol) -> Option<SocketAddr> {
        match proto {
            Protocol::Udp => Some(self.local),
            Protocol::Tcp => self.tcp_local,
            _ => None,
        }
    }

    /// Time passed to [`Session::next_timeout`].
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        self.now = now;
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            log::debug!("webrtc: timeout: {e}");
        }
        self.drain(out);
    }

    /// A video frame of the stream (its RTP payloads, parameter sets before keyframes),
    /// shared with the stream's other sessions. Written once connected, from the first
    /// keyframe on; what to send is appended to `out`.
    pub fn write_video(&mut self, wallclock: Instant, frame: &Arc<VideoFrame>, out: &mut Outbox) {
        let Some(mid) = self.video.filter(|_| self.state == SessionState::Connected) else {
            return;
        };
        if !self.video_started && !frame.keyframe {
            return;
        }
        if self.video_pt.is_none_or(|(codec, _)| codec != frame.codec) {
            self.video_pt = payload_type(&self.rtc, mid, frame.codec).map(|pt| (frame.codec, pt));
        }
        let mut time = frame.rtp_time + self.video_offset;
        if let (true, Some(last)) = (std::mem::take(&mut self.layer_switched), self.video_last) {
            if time <= last {
                // The new layer is behind the old one: its first frame goes one frame time
                // after the last sent, and so on.
                self.video_offset += last + FRAME_TICKS - time;
                time = last + FRAME_TICKS;
            }
        }
        self.video_last = Some(time);
        let time = time as u32;
        if let Some(direct) = self.direct.as_deref_mut() {
            let pt = self.video_pt.map(|(_, pt)| *pt);
            if direct.video(out, (pt, time, wallclock), frame) {
                self.video_started = true;
                self.frames_written += 1;
            } else {
                self.frames_refused += 1;
            }
            return;
        }
        let last = frame.payloads.len().saturating_sub(1);
        let sent = self.write_rtp(
            mid,
            self.video_pt.map(|(_, pt)| pt),
            (time, wallclock),
            |i| i == last,
            &frame.payloads,
        );
        if sent {
            self.video_started = true;
            self.frames_written += 1;
        }
        self.drain(out);
    }

    /// An Opus packet of the stream (`ticks` at 48 kHz), shared with the stream's other
    /// sessions. Written once connected; what to send is appended to `out`.
    pub fn write_audio(
        &mut self,
        wallclock: Instant,
        ticks: u64,
        data: &Arc<[u8]>,
        out: &mut Outbox,
    ) {
        let Some(mid) = self.audio.filter(|_| self.state == SessionState::Connected) else {
            return;
        };
        if self.audio_pt.is_none() {
            self.audio_pt = payload_type(&self.rtc, mid, Codec::Opus);
        }
        let repeated = self
            .audio_last
            .is_some_and(|last| ticks <= last && last - ticks < 48_000);
        if self.adaptive && repeated {
            return; // sent already, from the layer before a switch
        }
        self.audio_last = Some(ticks);
        if let Some(direct) = self.direct.as_deref_mut() {
            let pt = self.audio_pt.map(|pt| *pt);
            if direct.audio(out, (pt, ticks as u32, wallclock), data) {
                self.packets_written += 1;
            }
            return;
        }
        let payloads = std::slice::from_ref(data);
        if self.write_rtp(
            mid,
            self.audio_pt,
            (ticks as u32, wallclock),
            |_| false,
            payloads,
        ) {
            self.packets_written += 1;
        }
        self.drain(out);
    }

    /// Writes `payloads` as consecutive RTP packets of `mid`'s send stream (the session is in
    /// RTP mode: str0m adds the header, keeps them for NACKs and encrypts them). False when
    /// the stream or its payload type is not there.
    fn write_rtp(
        &mut self,
        mid: Mid,
        pt: Option<Pt>,
        (time, wallclock): (u32, Instant),
        marker: impl Fn(usize) -> bool,
        payloads: &[Arc<[u8]>],
    ) -> bool {
        let Some(pt) = pt else {
            self.frames_refused += 1;
            return false;
        };
        let seq = if Some(mid) == self.video {
            &mut self.video_seq
        } else {
            &mut self.audio_seq
        };
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            self.frames_refused += 1;
            return false;
        };
        for (i, payload) in payloads.iter().enumerate() {
            let write = RtpWrite::new(pt, SeqNo::from(*seq), time, wallclock, payload.clone())
                .marker(marker(i))
                .nackable(true);
            stream.write_rtp(write);
            *seq += 1;
        }
        true
    }

    /// Whether this viewer needs a keyframe: connected and waiting for its first, or it asked
    /// for one (PLI, FIR) since the last call.
    pub fn wants_keyframe(&mut self) -> bool {
        let asked = self.keyframe_requests > self.keyframe_requests_seen;
        self.keyframe_requests_seen = self.keyframe_requests;
        let waiting =
            self.state == SessionState::Connected && self.video.is_some() && !self.video_started;
        self.role == PeerRole::Viewer && (asked || waiting)
    }

    /// The next video frame is the first of another layer (a keyframe).
    pub fn layer_switched(&mut self) {
        self.layer_switched = true;
    }

    /// Its video comes from another feed from now on, in whichever of its codecs that feed
    /// has: nothing is sent until that feed's next keyframe, which it waits for as a new
    /// viewer does.
    pub fn restart_video(&mut self) {
        self.layer_switched = true;
        self.video_started = false;
    }

    /// Whether its answer has `codec` for its video.
    pub fn takes(&self, codec: Codec) -> bool {
        self.video
            .is_some_and(|mid| payload_type(&self.rtc, mid, codec).is_some())
    }

    /// An adaptive viewer's newest bandwidth estimate (bit/s) since the last call.
    pub fn take_estimate(&mut self) -> Option<u64> {
        self.estimate.take()
    }

    /// Tells an adaptive viewer's estimator what to keep sending (padding what media
    /// leaves, within the estimate) and what to probe for, in bit/s.
    pub fn set_bitrates(&mut self, (minimum, desired): (u64, u64)) {
        (self.rtc.bwe()).set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
    }

    /// Takes the frames a publisher sent since the last call.
    pub fn take_incoming(&mut self) -> Vec<Incoming> {
        std::mem::take(&mut self.incoming)
    }

    /// Asks a publisher for a keyframe (a PLI); what to send is appended to `out`.
    pub fn request_keyframe(&mut self, out: &mut Outbox) {
        let Some(mid) = self.video.filter(|_| self.state == SessionState::Connected) else {
            return;
        };
        if let Some(mut writer) = self.rtc.writer(mid) {
            if let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli) {
                log::debug!("webrtc: no keyframe request possible: {e}");
            }
        }
        self.drain(out);
    }

    /// Ends the session (a DELETE of its resource).
    pub fn close(&mut self) {
        self.rtc.disconnect();
        self.state = SessionState::Closed;
    }

    /// Takes every output up to the next timeout.
    fn drain(&mut self, out: &mut Outbox) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = at;
                    if let Some(direct) = self.direct.as_deref_mut() {
                        self.next_timeout = at.min(direct.after_input(self.now, out));
                    }
                    return;
                }
                Ok(Output::Transmit(transmit)) => {
                    // RFC 7983: STUN starts with 0-3, DTLS 20-63, RTP and RTCP 128-191.
                    let kind = transmit.contents.first().copied().unwrap_or(0);
                    if kind >= 20 {
                        self.peer = Some((transmit.proto, transmit.destination));
                        if let Some(direct) = self.direct.as_deref_mut() {
                            direct.set_peer((transmit.proto, transmit.destination));
                        }
                    }
                    if self.direct.is_some() && kind >> 6 == 2 {
                        continue; // str0m's reports of packets it did not send
                    }
                    let queued = (transmit.proto, transmit.destination, transmit.contents);
                    out.queued.push(queued);
                }
                Ok(Output::Event(event)) => self.on_event(event),
                Err(e) => {
                    log::debug!("webrtc: session failed: {e}");
                    self.state = SessionState::Closed;
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.state = SessionState::Connected;
                self.start_direct();
            }
            Event::RawPacket(raw) => {
                if let (RawPacket::RtcpRx(Rtcp::Nack(nack)), Some(direct)) =
                    (*raw, self.direct.as_deref_mut())
                {
                    direct.on_nack(&nack);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.state = SessionState::Closed;
            }
            Event::KeyframeRequest(_) => self.keyframe_requests += 1,
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.estimate = Some(estimate.as_u64());
            }
            Event::MediaData(data) if self.role == PeerRole::Publisher => {
                if self.incoming.len() >= INCOMING_MAX {
                    self.incoming_dropped += 1;
                } else {
                    self.incoming.push(Incoming {
                        codec: data.params.spec().codec,
                        rtp: data.time.numer() as u32,
                        at: data.network_time,
                        data: data.data,
                    });
                }
            }
            _ => {}
        }
        if !self.rtc.is_alive() {
            self.state = SessionState::Closed;
        }
    }
}

impl Session {
    /// A plain viewer's own send path takes over, when it can: its DTLS settled on an AEAD
    /// profile. Otherwise str0m goes on sending. Its packets go where str0m's DTLS went (the
    /// pair ICE nominated, over UDP or framed on the ICE-TCP connection).
    fn start_direct(&mut self) {
        let Some(keys) = self.keys.take() else {
            return;
        };
        let Some(srtp) = keys.get().and_then(SrtpTx::new) else {
            log::debug!("webrtc: the viewer's SRTP profile is not AEAD: str0m sends its media");
            return;
        };
        let Some(peer) = self.peer else {
            return;
        };
        let track = |rtc: &mut Rtc, mid: Option<Mid>, seq: u64, rate: u32| {
            let mid = mid?;
            let ssrc = *rtc.direct_api().stream_tx_by_mid(mid, None)?.ssrc();
            let media = rtc.media(mid)?;
            let ext = media.remote_extmap().id_of(Extension::RtpMid);
            Some(Track::new(ssrc, ext.map(|id| (id, &*mid)), seq, rate))
        };
        let video = track(&mut self.rtc, self.video, self.video_seq, 90_000);
        let audio = track(&mut self.rtc, self.audio, self.audio_seq, 48_000);
        let cname = (self.video.or(self.audio))
            .and_then(|mid| self.rtc.media(mid))
            .map(|media| media.cname().to_string())
            .unwrap_or_default();
        self.direct = Some(Box::new(Direct::new(
            srtp,
            peer,
            cname,
            self.now,
            (video, audio),
        )));
    }

    /// Whether its media goes out on its own send path.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Packets sent again on the viewer's NACKs (its own send path).
    pub fn resent(&self) -> u64 {
        self.direct.as_ref().map_or(0, |d| d.resent())
    }
}

/// The local (server's) username fragment a STUN Binding request names: the part before
/// `:` of its USERNAME attribute (RFC 8445 §7.2.2). None for anything that is not a STUN
/// message with one. Reads at most the message's own length; never fails on garbage.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if data.len() < 20 || data[0] & 0xc0 != 0 || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let mut attributes = data.get(20..20 + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        let padded = (len + 3) & !3;
        attributes = attributes.get(4 + padded..)?;
    }
    None
}

/// The payload type to send `codec` with on `mid`: of those the peer accepted, for H.264
/// packetization mode 1 (what browsers decode and what the feed makes), else the first.
fn payload_type(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let remote = rtc.media(mid)?.remote_pts();
    let params = || {
        (rtc.codec_config().params().iter())
            .filter(|p| remote.contains(&p.pt()) && p.spec().codec == codec)
    };
    let mode_1 = params().find(|p| p.spec().format.packetization_mode == Some(1));
    mode_1.or_else(|| params().next()).map(|p| p.pt())
}

#[cfg(test)]
mod tests;
