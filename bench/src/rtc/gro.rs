//! Receiving with UDP generic receive offload (`UDP_GRO`, Linux 5.0+): a socket that turns it
//! on may be handed several datagrams of one sender as one buffer, with their size in a
//! control message. On loopback this matters for what a benchmark measures: a sender that
//! sends a run of datagrams as one segmented message (`UDP_SEGMENT`) has the kernel split it
//! again, on the sender's core, for a receiver without GRO; a NIC splits it in hardware and
//! the receivers are other machines. With GRO on, loopback hands the run over whole.

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Turns `UDP_GRO` on for the socket `fd`.
pub fn enable(fd: RawFd) -> io::Result<()> {
    setsockopt(fd, sockopt::UdpGroSegment, &true).map_err(io::Error::from)
}

/// One `recvmsg` into `buf`: the bytes read, the size of each datagram in them (the last may
/// be shorter; None: one datagram) and the sender.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<usize>, SocketAddr)> {
    let mut control = nix::cmsg_space!(u16);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let segment = msg.cmsgs().find_map(|c| match c {
        ControlMessageOwned::UdpGroSegments(size) if size > 0 => Some(usize::from(size)),
        _ => None,
    });
    let from = msg
        .address
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| io::Error::other("a datagram from an unknown address family"))?;
    Ok((msg.bytes, segment, from))
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
        let (n, size, from) = recv(rx.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(from, tx.local_addr().unwrap());
        assert_eq!((n, size), (payload.len(), Some(1000)));
        tx.send_to(b"hello", to).unwrap();
        let (n, size, _) = recv(rx.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((n, size), (5, None));
    }
}
