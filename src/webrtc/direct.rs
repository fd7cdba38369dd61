//! The media of a viewer that does not adapt, sent without str0m's per-packet path: each RTP
//! packet is built, encrypted (`srtp.rs`) and queued in one pass, at the moment the frame is
//! written, and the viewer's NACKs are answered from the frames it was sent (shared with
//! the stream's other viewers, not copied). Sender reports (RFC 3550 §6.4.1) are made here
//! too, since str0m never sees these packets.
//!
//! str0m keeps the rest of the session: ICE, consent, DTLS, keyframe requests. What it would
//! send as RTP or RTCP for such a session is dropped (`Session::drain`): its sender reports
//! would count none of these packets.

use super::feed::VideoFrame;
use super::srtp::{SrtpTx, RTCP_OVERHEAD, RTP_OVERHEAD};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use str0m::net::{DatagramSend, Protocol};

/// Frames a viewer's NACKs can be answered from: about two seconds at 30 fps. A packet asked
/// for later than that is not sent again.
const HISTORY_FRAMES: usize = 64;
/// Sequence numbers one NACK report may ask for at most (one RTCP packet holds many; the
/// rest are ignored): a keyframe is a few dozen packets.
const NACK_MAX: usize = 256;
/// Packets a viewer may have sent again before it is sent more video: each video packet
/// sent earns one resend, up to this many. A viewer that NACKs everything (or floods NACKs)
/// at most doubles its own stream, and costs the shard no more than that.
const RESEND_BUDGET_MAX: u32 = 512;
/// How often each sent stream gets a sender report.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Seconds from the NTP epoch (1900) to the Unix one.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// The largest RTP header written here: 12 bytes, then one one-byte-header extension block
/// holding the MID (at most 16 bytes, RFC 8285 §4.2) padded to 32 bits.
const HEADER_MAX: usize = 12 + 4 + 20;

/// What sessions hand back to send.
#[derive(Default)]
pub struct Outbox {
    /// str0m's datagrams as it made them: STUN, DTLS, and the RTP and RTCP of the sessions
    /// it sends media for.
    pub queued: Vec<(Protocol, SocketAddr, DatagramSend)>,
    /// Datagrams built here, back to back, and where each goes (over UDP, or framed on the
    /// peer's ICE-TCP connection).
    bytes: Vec<u8>,
    built: Vec<(Protocol, SocketAddr, usize, usize)>,
}

impl Outbox {
    /// Builds one datagram of at most `max_len` bytes to `to`: `fill` writes it and returns
    /// its length.
    pub fn build(
        &mut self,
        to: (Protocol, SocketAddr),
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) {
        let start = self.bytes.len();
        self.bytes.resize(start + max_len, 0);
        let len = fill(&mut self.bytes[start..]).min(max_len);
        self.bytes.truncate(start + len);
        if len > 0 {
            self.built.push((to.0, to.1, start, len));
        }
    }

    /// Bytes of the datagrams built here waiting (str0m's are not counted: they are few,
    /// or the session sends no media of its own).
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.built.is_empty()
    }

    /// Every datagram, str0m's first, and the box emptied (its memory kept).
    pub fn drain(&mut self, mut send: impl FnMut(Protocol, SocketAddr, &[u8])) {
        for (proto, to, data) in self.queued.drain(..) {
            send(proto, to, &data);
        }
        for &(proto, to, start, len) in &self.built {
            send(proto, to, &self.bytes[start..start + len]);
        }
        self.built.clear();
        self.bytes.clear();
    }
}

/// One stream sent to the viewer (its video or its sound).
pub struct Track {
    ssrc: u32,
    /// The header extension block naming the MID (RFC 8843 §15), empty when the answer has
    /// no MID extension.
    mid_ext: Vec<u8>,
    /// The next sequence number, extended (its high bits are the SRTP rollover counter).
    pub seq: u64,
    /// For sender reports: packets and payload bytes sent, the clock rate, and the newest
    /// RTP time with the wall clock it stands for.
    packets: u32,
    octets: u32,
    rate: u32,
    last: Option<(u32, Instant)>,
    reported: Option<Instant>,
}

impl Track {
    /// `ssrc` from the answer; `mid_ext`: the MID header extension's id and the MID, when
    /// the peer takes that extension; `seq`: the first sequence number; `rate`: the RTP clock.
    pub fn new(ssrc: u32, mid_ext: Option<(u8, &str)>, seq: u64, rate: u32) -> Track {
        let mid_ext = match mid_ext {
            Some((id, mid)) if (1..=14).contains(&id) && (1..=16).contains(&mid.len()) => {
                let words = (1 + mid.len()).div_ceil(4);
                let mut ext = vec![0xbe, 0xde, 0, words as u8, id << 4 | (mid.len() as u8 - 1)];
                ext.extend_from_slice(mid.as_bytes());
                ext.resize(4 + words * 4, 0);
                ext
            }
            _ => Vec::new(),
        };
        Track {
            ssrc,
            mid_ext,
            seq,
            packets: 0,
            octets: 0,
            rate,
            last: None,
            reported: None,
        }
    }

    /// Writes the RTP packet `(pt, marker, seq, time)` carrying `payload` into `buf`,
    /// encrypted; returns its length.
    fn packet(
        &self,
        srtp: &SrtpTx,
        buf: &mut [u8],
        (pt, marker, seq, time): (u8, bool, u64, u32),
        payload: &[u8],
    ) -> usize {
        let extension = if self.mid_ext.is_empty() { 0 } else { 0x10 };
        buf[0] = 0x80 | extension;
        buf[1] = u8::from(marker) << 7 | (pt & 0x7f);
        buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
        buf[4..8].copy_from_slice(&time.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let header_len = 12 + self.mid_ext.len();
        buf[12..header_len].copy_from_slice(&self.mid_ext);
        let len = header_len + payload.len();
        buf[header_len..len].copy_from_slice(payload);
        srtp.protect_rtp(buf, (header_len, len), (seq >> 16) as u32)
    }

    /// Sends `payloads` as consecutive packets, the last with the marker bit or none.
    fn send(
        &mut self,
        tx: &DirectTx,
        out: &mut Outbox,
        (pt, time, wallclock): (u8, u32, Instant),
        payloads: &[Arc<[u8]>],
        marker: Marker,
    ) -> u64 {
        let first = self.seq;
        let last = payloads.len().saturating_sub(1);
        for (i, payload) in payloads.iter().enumerate() {
            let header = (pt, marker == Marker::OnLast && i == last, self.seq, time);
            let max_len = HEADER_MAX + payload.len() + RTP_OVERHEAD;
            out.build(tx.peer, max_len, |buf| {
                self.packet(&tx.srtp, buf, header, payload)
            });
            self.seq += 1;
            self.packets = self.packets.wrapping_add(1);
            self.octets = self.octets.wrapping_add(payload.len() as u32);
        }
        self.last = Some((time, wallclock));
        first
    }

    /// Its sender report, with an SDES CNAME (RFC 3550 §6.1: a compound packet), into `buf`
    /// (clear); returns the length. None before it has sent anything.
    fn report(&self, now: Instant, ntp: u64, cname: &str, buf: &mut [u8]) -> Option<usize> {
        let (time, wallclock) = self.last?;
        let ahead = now.saturating_duration_since(wallclock).as_nanos() as i128
            - wallclock.saturating_duration_since(now).as_nanos() as i128;
        let rtp_now = i128::from(time) + ahead * i128::from(self.rate) / 1_000_000_000;
        buf[0] = 0x80;
        buf[1] = 200; // SR
        buf[2..4].copy_from_slice(&6u16.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[8..16].copy_from_slice(&ntp.to_be_bytes());
        buf[16..20].copy_from_slice(&(rtp_now as u32).to_be_bytes());
        buf[20..24].copy_from_slice(&self.packets.to_be_bytes());
        buf[24..28].copy_from_slice(&self.octets.to_be_bytes());
        let cname = &cname.as_bytes()[..cname.len().min(255)];
        // SDES: one chunk (SSRC, CNAME item, a null item), padded to 32 bits.
        let chunk_len = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
        let sdes = &mut buf[28..28 + 4 + chunk_len];
        sdes.fill(0);
        sdes[0] = 0x81;
        sdes[1] = 202; // SDES
        sdes[2..4].copy_from_slice(&((chunk_len / 4) as u16).to_be_bytes());
        sdes[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        sdes[8] = 1; // CNAME
        sdes[9] = cname.len() as u8;
        sdes[10..10 + cname.len()].copy_from_slice(cname);
        Some(28 + 4 + chunk_len)
    }
}

/// Which packet of a run has the RTP marker bit: a video frame's last (RFC 6184 §5.1), or
/// none (Opus, RFC 7587 §4.1, marks only a talkspurt's start, and the stream is continuous).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    OnLast,
    Never,
}

/// A frame sent, for NACKs: its first sequence number, header fields and payloads.
struct Sent {
    first_seq: u64,
    pt: u8,
    time: u32,
    frame: Arc<VideoFrame>,
}

/// A session's own send path (see the module's comment) and its two streams.
pub struct Direct {
    tx: DirectTx,
    video: Option<Track>,
    audio: Option<Track>,
    /// When sender reports are due next.
    report_at: Instant,
}

impl Direct {
    /// The send path of a session connected with `srtp` to `peer`, sending `tracks` (video,
    /// sound) under `cname`.
    pub fn new(
        srtp: SrtpTx,
        peer: (Protocol, SocketAddr),
        cname: String,
        now: Instant,
        (video, audio): (Option<Track>, Option<Track>),
    ) -> Direct {
        Direct {
            tx: DirectTx::new(srtp, peer, cname, now),
            video,
            audio,
            report_at: now,
        }
    }

    /// Sends a video frame as `pt` (see [`DirectTx::video`]); false when the session has no
    /// video stream or no payload type for the frame's codec.
    pub fn video(
        &mut self,
        out: &mut Outbox,
        (pt, time, wallclock): (Option<u8>, u32, Instant),
        frame: &Arc<VideoFrame>,
    ) -> bool {
        let (Some(track), Some(pt)) = (self.video.as_mut(), pt) else {
            return false;
        };
        self.tx.video(track, out, (pt, time, wallclock), frame);
        true
    }

    /// Sends an Opus packet as `pt`; false when the session has no sound stream or no
    /// payload type for Opus.
    pub fn audio(
        &mut self,
        out: &mut Outbox,
        (pt, time, wallclock): (Option<u8>, u32, Instant),
        data: &Arc<[u8]>,
    ) -> bool {
        let (Some(track), Some(pt)) = (self.audio.as_mut(), pt) else {
            return false;
        };
        self.tx.audio(track, out, (pt, time, wallclock), data);
        true
    }

    /// After an input: what NACKs asked for, and the sender reports when due. Returns when
    /// the next reports are due.
    pub fn after_input(&mut self, now: Instant, out: &mut Outbox) -> Instant {
        if let Some(video) = &self.video {
            self.tx.resend(video, out);
        }
        if now >= self.report_at {
            let tracks = [self.video.as_mut(), self.audio.as_mut()];
            self.report_at = self.tx.report(now, tracks, out);
        }
        self.report_at
    }

    /// A generic NACK (RFC 4585 §6.2.1) from the viewer: of its video, the packets go again
    /// at the next [`Direct::after_input`].
    pub fn on_nack(&mut self, nack: &str0m::rtp::rtcp::Nack) {
        if self.video.as_ref().is_none_or(|v| v.ssrc != *nack.ssrc) {
            return;
        }
        let seqs = nack.reports.iter().flat_map(|entry| {
            let lost = (0..16u16).filter(move |bit| entry.blp >> bit & 1 == 1);
            std::iter::once(entry.pid).chain(lost.map(move |bit| entry.pid.wrapping_add(bit + 1)))
        });
        self.tx.nack(seqs);
    }

    /// ICE moved the peer: later packets go there.
    pub fn set_peer(&mut self, peer: (Protocol, SocketAddr)) {
        self.tx.peer = peer;
    }

    /// Packets sent again on NACKs so far.
    pub fn resent(&self) -> u64 {
        self.tx.resent
    }
}

/// The packets, NACK history and reports of a session's own send path.
pub struct DirectTx {
    srtp: SrtpTx,
    /// Where the peer receives: the address ICE nominated, over UDP or ICE-TCP.
    pub peer: (Protocol, SocketAddr),
    cname: String,
    /// The wall clock at a moment of the monotonic one, for sender reports' NTP times.
    clock: (Instant, SystemTime),
    history: VecDeque<Sent>,
    /// Sequence numbers (16 bits) the viewer asked for and not yet sent again.
    nacked: Vec<u16>,
    /// Resends earned and not yet spent (see [`RESEND_BUDGET_MAX`]).
    resend_budget: u32,
    /// Packets sent again on a NACK; asked for but too old (or never sent); asked for past
    /// the budget.
    pub resent: u64,
    pub unknown_nacks: u64,
    pub refused_nacks: u64,
}

impl DirectTx {
    pub fn new(
        srtp: SrtpTx,
        peer: (Protocol, SocketAddr),
        cname: String,
        now: Instant,
    ) -> DirectTx {
        DirectTx {
            srtp,
            peer,
            cname,
            clock: (now, SystemTime::now()),
            history: VecDeque::with_capacity(HISTORY_FRAMES),
            nacked: Vec::new(),
            resend_budget: 0,
            resent: 0,
            unknown_nacks: 0,
            refused_nacks: 0,
        }
    }

    /// Sends `frame` on `track` as payload type `pt` at RTP time `time` (the wall clock it
    /// stands for: `wallclock`), and keeps it for NACKs.
    pub fn video(
        &mut self,
        track: &mut Track,
        out: &mut Outbox,
        (pt, time, wallclock): (u8, u32, Instant),
        frame: &Arc<VideoFrame>,
    ) {
        let first_seq = track.send(
            self,
            out,
            (pt, time, wallclock),
            &frame.payloads,
            Marker::OnLast,
        );
        let earned = u32::try_from(frame.payloads.len()).unwrap_or(u32::MAX);
        self.resend_budget = (self.resend_budget.saturating_add(earned)).min(RESEND_BUDGET_MAX);
        if self.history.len() == HISTORY_FRAMES {
            self.history.pop_front();
        }
        let frame = Arc::clone(frame);
        self.history.push_back(Sent {
            first_seq,
            pt,
            time,
            frame,
        });
    }

    /// Sends one Opus packet on `track`.
    pub fn audio(
        &mut self,
        track: &mut Track,
        out: &mut Outbox,
        (pt, time, wallclock): (u8, u32, Instant),
        data: &Arc<[u8]>,
    ) {
        track.send(
            self,
            out,
            (pt, time, wallclock),
            std::slice::from_ref(data),
            Marker::Never,
        );
    }

    /// A NACK from the viewer for `track`: the packets go again at [`DirectTx::resend`].
    pub fn nack(&mut self, seqs: impl Iterator<Item = u16>) {
        let room = NACK_MAX.saturating_sub(self.nacked.len());
        self.nacked.extend(seqs.take(room));
    }

    /// Sends again, on `track` (the video), the packets NACKs asked for that are still kept:
    /// the same bytes as the first time (the same header, so the same SRTP nonce over the
    /// same input).
    pub fn resend(&mut self, track: &Track, out: &mut Outbox) {
        for seq16 in std::mem::take(&mut self.nacked) {
            // The newest extended sequence number sent with these low 16 bits.
            let newest = track.seq.saturating_sub(1);
            let back = u64::from((newest as u16).wrapping_sub(seq16));
            let Some(seq) = newest.checked_sub(back) else {
                self.unknown_nacks += 1;
                continue;
            };
            let found = self
                .history
                .iter()
                .find(|s| seq >= s.first_seq && seq < s.first_seq + s.frame.payloads.len() as u64);
            let Some(sent) = found else {
                self.unknown_nacks += 1;
                continue;
            };
            if self.resend_budget == 0 {
                self.refused_nacks += 1;
                continue;
            }
            self.resend_budget -= 1;
            let i = (seq - sent.first_seq) as usize;
            let payload = &sent.frame.payloads[i];
            let marker = i + 1 == sent.frame.payloads.len();
            let header = (sent.pt, marker, seq, sent.time);
            let max_len = HEADER_MAX + payload.len() + RTP_OVERHEAD;
            out.build(self.peer, max_len, |buf| {
                track.packet(&self.srtp, buf, header, payload)
            });
            self.resent += 1;
        }
    }

    /// Sender reports for `tracks` that are due; returns when the next is.
    pub fn report(
        &mut self,
        now: Instant,
        tracks: [Option<&mut Track>; 2],
        out: &mut Outbox,
    ) -> Instant {
        let mut next = now + REPORT_EVERY;
        let ntp = self.ntp(now);
        for track in tracks.into_iter().flatten() {
            if track.last.is_none() {
                continue;
            }
            if let Some(at) = track.reported.filter(|at| now < *at + REPORT_EVERY) {
                next = next.min(at + REPORT_EVERY);
                continue;
            }
            track.reported = Some(now);
            let max_len = 28 + 4 + 264 + RTCP_OVERHEAD;
            let (srtp, cname) = (&mut self.srtp, &self.cname);
            out.build(self.peer, max_len, |buf| {
                match track.report(now, ntp, cname, buf) {
                    Some(len) => srtp.protect_rtcp(buf, len),
                    None => 0,
                }
            });
        }
        next
    }

    /// `now` as a 64-bit NTP timestamp (RFC 3550 §4).
    fn ntp(&self, now: Instant) -> u64 {
        let (base, wall) = self.clock;
        let wall = wall + now.saturating_duration_since(base);
        let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        seconds << 32 | fraction
    }
}

#[cfg(test)]
mod tests;
