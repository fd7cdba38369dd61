//! ICE over TCP (RFC 6544), for peers whose UDP is blocked. Each shard listens on TCP at its
//! UDP port (`webrtc.tcp`) and names it in answers as a passive candidate; a peer connects
//! and sends the same packets it would send over UDP, each framed by a 2-byte length
//! (RFC 4571). The connection's first packet must be a STUN check naming a session that
//! waits for its peer, with its credentials; anything else closes it. From then on the
//! connection is that session's, and what the session sends to the peer goes back on it.
//!
//! The engine keeps a connection's peer IP only, so each connection is given an address
//! of its own (the peer's IP and a port made from its slot) for str0m to tell peers apart.

use super::shard::Webrtc;
use bytes::{BufMut, Bytes, BytesMut};
use shardcast_engine::{ConnId, Ctx};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use str0m::net::Protocol;

/// Largest framed packet taken: a WebRTC packet fits a 1,500-byte path; RFC 4571 would allow
/// 65,535.
pub const FRAME_MAX_BYTES: usize = 2048;
/// Bytes held per connection while a frame is incomplete.
pub const PENDING_MAX_BYTES: usize = 4 * FRAME_MAX_BYTES;
/// A connection that has not named its session by then is closed.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

/// One peer's TCP connection.
struct TcpPeer {
    /// The address str0m knows the peer by.
    addr: SocketAddr,
    /// Bytes of a frame not complete yet.
    pending: Vec<u8>,
    /// The session it reached, once its first packet named one.
    key: Option<usize>,
}

/// A shard's peers on TCP.
#[derive(Default)]
pub(super) struct TcpPeers {
    by_conn: HashMap<ConnId, TcpPeer>,
    by_addr: HashMap<SocketAddr, ConnId>,
    /// Connections whose session ended, for the caller to close.
    pub(super) closing: Vec<ConnId>,
}

/// What becomes of a TCP connection after its bytes were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpVerdict {
    Keep,
    /// Not ICE (or too large a frame, or no session for it): close it.
    Close,
}

/// Sends `data` to the TCP peer known as `to`, framed; nothing when it is gone.
pub(super) fn send_framed<M: Send>(peers: &TcpPeers, cx: &mut Ctx<M>, to: SocketAddr, data: &[u8]) {
    let Some(&conn) = peers.by_addr.get(&to) else {
        return;
    };
    let Ok(len) = u16::try_from(data.len()) else {
        return;
    };
    let mut frame = BytesMut::with_capacity(2 + data.len());
    frame.put_u16(len);
    frame.put_slice(data);
    cx.send(conn, frame.freeze());
}

/// The complete frames at the front of `pending` (taken out of it), or None when a frame is
/// empty or larger than [`FRAME_MAX_BYTES`].
fn take_frames(pending: &mut Vec<u8>) -> Option<Vec<Bytes>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while pending.len() - at >= 2 {
        let len = usize::from(u16::from_be_bytes([pending[at], pending[at + 1]]));
        if len == 0 || len > FRAME_MAX_BYTES {
            return None;
        }
        if pending.len() - at - 2 < len {
            break;
        }
        frames.push(Bytes::copy_from_slice(&pending[at + 2..at + 2 + len]));
        at += 2 + len;
    }
    pending.drain(..at);
    Some(frames)
}

impl Webrtc {
    /// A TCP connection from `ip` on the WebRTC listener.
    pub fn tcp_open(&mut self, conn: ConnId, ip: IpAddr) {
        let port = 1 + (conn.slot() % usize::from(u16::MAX)) as u16;
        let addr = SocketAddr::new(ip, port);
        let peer = TcpPeer {
            addr,
            pending: Vec::new(),
            key: None,
        };
        self.tcp.by_conn.insert(conn, peer);
        self.tcp.by_addr.insert(addr, conn);
    }

    /// Bytes on a WebRTC TCP connection: each complete frame to its session.
    pub fn tcp_recv<M: Send>(&mut self, cx: &mut Ctx<M>, conn: ConnId, data: &[u8]) -> TcpVerdict {
        let Some(peer) = self.tcp.by_conn.get_mut(&conn) else {
            return TcpVerdict::Close;
        };
        peer.pending.extend_from_slice(data);
        let (addr, key) = (peer.addr, peer.key);
        let frames = take_frames(&mut peer.pending);
        let Some(frames) = frames.filter(|_| peer.pending.len() <= PENDING_MAX_BYTES) else {
            return TcpVerdict::Close;
        };
        let now = self.now(cx);
        let from = (Protocol::Tcp, addr);
        let mut key = key;
        for frame in frames {
            let session = match key {
                Some(key) => key,
                None => {
                    let Some(claimed) = self.claim(now, from, &frame) else {
                        return TcpVerdict::Close;
                    };
                    self.sessions[claimed].tcp = Some(conn);
                    let stream = &self.sessions[claimed].stream;
                    log::debug!("webrtc: a peer of {stream} reached its session over TCP");
                    if let Some(peer) = self.tcp.by_conn.get_mut(&conn) {
                        peer.key = Some(claimed);
                    }
                    key = Some(claimed);
                    claimed
                }
            };
            if !self
                .sessions
                .get(session)
                .is_some_and(|e| e.tcp == Some(conn))
            {
                return TcpVerdict::Close; // its session ended
            }
            self.datagram_to(session, now, from, &frame);
            self.after_input(cx, session, now);
        }
        TcpVerdict::Keep
    }

    /// The connection in `slot` when it has not named its session yet: past
    /// [`CLAIM_TIMEOUT`], the caller closes it.
    pub fn tcp_unclaimed(&self, slot: usize) -> Option<ConnId> {
        (self.tcp.by_conn.iter())
            .find(|(conn, peer)| conn.slot() == slot && peer.key.is_none())
            .map(|(&conn, _)| conn)
    }

    /// Closes the connections of sessions that ended.
    pub fn close_ended_tcp<M: Send>(&mut self, cx: &mut Ctx<M>) {
        for conn in self.tcp.closing.drain(..) {
            cx.close(conn);
        }
    }

    /// A WebRTC TCP connection closed: its session ends with it.
    pub fn tcp_closed(&mut self, conn: ConnId) {
        let Some(peer) = self.tcp.by_conn.remove(&conn) else {
            return;
        };
        self.tcp.by_addr.remove(&peer.addr);
        let key = peer
            .key
            .filter(|&k| self.sessions.get(k).is_some_and(|e| e.tcp == Some(conn)));
        if let Some(key) = key {
            self.sessions[key].tcp = None;
            self.sessions[key].session.close();
            self.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_bad_lengths_refused() {
        let mut pending = vec![0, 3, 1, 2, 3, 0, 2, 9];
        let frames = take_frames(&mut pending).unwrap();
        assert_eq!(frames, [Bytes::from_static(&[1, 2, 3])]);
        assert_eq!(
            pending,
            [0, 2, 9],
            "the second frame waits for its last byte"
        );
        pending.push(8);
        assert_eq!(
            take_frames(&mut pending).unwrap(),
            [Bytes::from_static(&[9, 8])]
        );
        assert!(pending.is_empty());
        assert!(take_frames(&mut vec![0, 0]).is_none(), "an empty frame");
        assert!(take_frames(&mut vec![0x08, 0x01]).is_none(), "2,049 bytes");
        assert_eq!(take_frames(&mut vec![0x08]).unwrap(), Vec::<Bytes>::new());
    }
}
