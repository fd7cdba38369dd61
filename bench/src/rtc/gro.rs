//! Receiving with UDP generic receive offload (`UDP_GRO`, Linux 5.0+): a socket that turns it
//! on may be handed several datagrams of one sender as one buffer, with their size in a
//! control message. On loopback this matters for what a benchmark measures: a sender that
//! sends a run of datagrams as one segmented message (`UDP_SEGMENT`) has the kernel split it
//! again, on the sender's core, for a receiver without GRO; a NIC splits it in hardware and
//! the receivers are other machines. With GRO on, loopback hands the run over whole.
//!
//! Each datagram's arrival is the kernel's receive timestamp (`SO_TIMESTAMPNS`), not the
//! moment this one thread gets round to reading it: with two thousand viewers on one
//! thread, reading in turn would add the client's own delay to what is measured.

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Turns `UDP_GRO` on for the socket `fd`.
pub fn enable(fd: RawFd) -> io::Result<()> {
    setsockopt(fd, sockopt::UdpGroSegment, &true).map_err(io::Error::from)
}

/// Turns the kernel's receive timestamps on for the socket `fd`.
pub fn enable_timestamps(fd: RawFd) -> io::Result<()> {
    setsockopt(fd, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// A wall-clock time (the kernel's timestamps) as an `Instant`, through one pair of readings
/// taken once, so that every conversion agrees with every other.
fn instant_of(wall: Duration) -> Instant {
    static BASE: OnceLock<(Instant, Duration)> = OnceLock::new();
    let &(instant, since_epoch) = BASE.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (Instant::now(), now)
    });
    match wall.checked_sub(since_epoch) {
        Some(after) => instant + after,
        None => instant - (since_epoch - wall),
    }
}

/// One `recvmsg` into `buf`: the bytes read, the size of each datagram in them (the last may
/// be shorter; None: one datagram), the sender, and when the kernel received it (now, when
/// the socket has no timestamps on).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<usize>, SocketAddr, Instant)> {
    let mut control = nix::cmsg_space!(u16, nix::sys::time::TimeSpec);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let (mut segment, mut at) = (None, None);
    for cmsg in msg.cmsgs() {
        match cmsg {
            ControlMessageOwned::UdpGroSegments(size) if size > 0 => {
                segment = Some(usize::from(size))
            }
            ControlMessageOwned::ScmTimestampns(ts) => {
                let wall = Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32);
                at = Some(instant_of(wall));
            }
            _ => {}
        }
    }
    let from = msg
        .address
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| io::Error::other("a datagram from an unknown address family"))?;
    Ok((msg.bytes, segment, from, at.unwrap_or_else(Instant::now)))
}

fn socket_addr(name: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = name.as_sockaddr_in() {
        return Some(SocketAddrV4::new(v4.ip().into(), v4.port()).into());
    }
    let v6 = name.as_sockaddr_in6()?;
    Some(SocketAddrV6::new(v6.ip(), v6.port(), v6.flowinfo(), v6.scope_id()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage, SockaddrIn};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    /// A run of equal datagrams sent as one segmented message arrives whole, with its size;
    /// a lone datagram without one.
    #[test]
    fn a_segmented_run_arrives_whole_with_its_segment_size() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(rx.as_raw_fd()).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = vec![7u8; 3 * 1000 + 200];
        let SocketAddr::V4(to) = rx.local_addr().unwrap() else {
            panic!("bound to IPv4")
        };
        let segment: u16 = 1000;
        let sent = sendmsg(
            tx.as_raw_fd(),
            &[IoSlice::new(&payload)],
            &[ControlMessage::UdpGsoSegments(&segment)],
            MsgFlags::empty(),
            Some(&SockaddrIn::from(to)),
        )
        .unwrap();
        assert_eq!(sent, payload.len());
        let mut buf = vec![0u8; 65536];
        let (n, size, from, _) = recv(rx.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(from, tx.local_addr().unwrap());
        assert_eq!((n, size), (payload.len(), Some(1000)));
        tx.send_to(b"hello", to).unwrap();
        let (n, size, _, _) = recv(rx.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((n, size), (5, None));
    }

    /// A datagram read late is timed when the kernel took it, not when it was read.
    #[test]
    fn arrival_is_the_kernel_s_receive_time() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable_timestamps(rx.as_raw_fd()).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = vec![0u8; 2048];
        // The kernel starts stamping arriving packets a moment after the first socket asks
        // (it turns a static key on from a work queue); until then a datagram is stamped
        // when read. The load client's sockets ask seconds before anything is measured.
        let mut delays = Vec::new();
        for _ in 0..5 {
            let sent = Instant::now();
            tx.send_to(b"early", rx.local_addr().unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let (n, _, _, at) = recv(rx.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(n, 5);
            delays.push(at.saturating_duration_since(sent));
            if delays.last() < Some(&Duration::from_millis(100)) {
                return;
            }
        }
        panic!("every datagram was timed when read: {delays:?}");
    }
}
