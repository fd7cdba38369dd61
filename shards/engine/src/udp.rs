//! UDP on the shards (WebRTC media): each [`UdpSpec`] gives every shard a socket of its own,
//! on the spec's port plus the shard's index when `port_per_shard` (so a peer reaches the
//! shard that owns its session), else on the one port given (0: any).
//!
//! Both backends drive UDP the same way, by readiness: when a socket is readable, datagrams
//! are taken with `recvmmsg` in batches of [`RECV_BATCH`], at most [`RECV_PER_TICK`] per socket
//! per loop iteration, and handed to [`crate::Service::on_datagram`]; what the service queued
//! with [`crate::Ctx::send_datagram`] goes out with `sendmmsg` at the end of the iteration, in
//! batches of [`SEND_BATCH`], or at once when the queue reaches its bound
//! (`EngineConfig::udp_out_max_bytes`): a keyframe written to a thousand viewers is tens of
//! megabytes in one iteration, and is sent as it is queued rather than held. UDP never
//! waits: a datagram the socket cannot take now is dropped and counted, as a router would
//! drop it. The sockets' send buffers are `EngineConfig::udp_send_buffer_bytes`.
//!
//! Memory per shard and socket, allocated at start: [`RECV_BATCH`] × [`DATAGRAM_MAX_BYTES`]
//! of receive buffers (64 KiB), plus the outbound queue's bound.

use crate::counters::ShardCounters;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Largest datagram received; a longer one arrives truncated and is dropped (counted). Media
/// over WebRTC stays under the path MTU (about 1200 bytes of RTP).
pub const DATAGRAM_MAX_BYTES: usize = 2048;
/// Datagrams taken by one `recvmmsg`.
pub const RECV_BATCH: usize = 32;
/// Datagrams taken from one socket per loop iteration, at most; the rest wait for the next.
pub const RECV_PER_TICK: usize = 256;
/// Datagrams given to one `sendmmsg`.
pub const SEND_BATCH: usize = 64;

/// A UDP port the shards bind.
#[derive(Clone, Debug)]
pub struct UdpSpec {
    /// A name for logs ("webrtc").
    pub name: String,
    /// Address to bind (with `port_per_shard`, shard `i` binds port + `i`).
    pub addr: SocketAddr,
    /// One port per shard, consecutive from `addr`'s port (which must not be 0).
    pub port_per_shard: bool,
}

/// Which UDP socket (the index of its spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpId(pub u16);

/// Datagrams the service queued this loop iteration, bounded in bytes.
#[derive(Debug, Default)]
pub(crate) struct UdpOut {
    bytes: Vec<u8>,
    items: Vec<(UdpId, SocketAddr, usize, usize)>,
    max_bytes: usize,
}

impl UdpOut {
    pub(crate) fn new(max_bytes: usize) -> Self {
        UdpOut {
            bytes: Vec::new(),
            items: Vec::new(),
            max_bytes,
        }
    }

    /// Queues one datagram; false (and nothing queued) over [`DATAGRAM_MAX_BYTES`]. A queue
    /// at its bound is sent first.
    pub(crate) fn push(
        &mut self,
        sender: &mut UdpSender,
        counters: &ShardCounters,
        (socket, to, data): (UdpId, SocketAddr, &[u8]),
    ) -> bool {
        if data.len() > DATAGRAM_MAX_BYTES {
            return false;
        }
        if self.bytes.len() + data.len() > self.max_bytes {
            sender.send(self, counters);
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.items.push((socket, to, start, data.len()));
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every queued datagram, in order, and the queue emptied.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(UdpId, SocketAddr, &[u8])) {
        for &(socket, to, start, len) in &self.items {
            f(socket, to, &self.bytes[start..start + len]);
        }
        self.items.clear();
        self.bytes.clear();
    }
}

/// The sending half of a shard's UDP sockets (the service's context owns it, so that a full
/// queue is sent at once), with the buffers `sendmmsg` uses.
#[derive(Default)]
pub(crate) struct UdpSender {
    fds: Vec<RawFd>,
    /// Whether consecutive datagrams to one destination go as one segmented message.
    gso: bool,
    cmsgs: Box<[SegmentCmsg]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovecs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
}

impl UdpSender {
    /// Sends what `out` holds, in batches per socket; what a socket refuses is dropped.
    ///
    /// Consecutive datagrams to one destination of one size (the last may be shorter) go
    /// as one message with UDP segmentation offload (`UDP_SEGMENT`): a frame's packets to
    /// one viewer cost the kernel one route lookup and one buffer instead of one each.
    pub(crate) fn send(&mut self, out: &mut UdpOut, counters: &ShardCounters) {
        let mut batch: Vec<Run> = Vec::with_capacity(SEND_BATCH);
        let items = std::mem::take(&mut out.items);
        let bytes = std::mem::take(&mut out.bytes);
        let mut run: Option<Run> = None;
        for &(socket, to, start, len) in &items {
            let index = usize::from(socket.0);
            if index >= self.fds.len() {
                ShardCounters::bump(&counters.udp_dropped, 1);
                continue;
            }
            if let Some(r) = run.as_mut() {
                if self.gso && r.extends(index, to, start, len) {
                    r.end = start + len;
                    r.count += 1;
                    continue;
                }
            }
            if let Some(done) = run.take() {
                if batch.len() == SEND_BATCH || batch.first().is_some_and(|b| b.index != index) {
                    self.send_batch(&batch, &bytes, counters);
                    batch.clear();
                }
                batch.push(done);
            }
            run = Some(Run {
                index,
                to,
                start,
                end: start + len,
                segment: len,
                count: 1,
            });
        }
        if let Some(done) = run.take() {
            if batch.len() == SEND_BATCH || batch.first().is_some_and(|b| b.index != done.index) {
                self.send_batch(&batch, &bytes, counters);
                batch.clear();
            }
            batch.push(done);
        }
        self.send_batch(&batch, &bytes, counters);
        drop(batch);
        // The queue's memory is kept for the next iteration.
        out.items = items;
        out.items.clear();
        out.bytes = bytes;
        out.bytes.clear();
    }

    fn send_batch(&mut self, batch: &[Run], bytes: &[u8], counters: &ShardCounters) {
        let Some(first) = batch.first() else {
            return;
        };
        let index = first.index;
        for (i, run) in batch.iter().enumerate() {
            let (storage, len) = crate::sys::sockaddr_of(run.to);
            self.addrs[i] = storage;
            let data = &bytes[run.start..run.end];
            self.iovecs[i] = libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = len;
            hdr.msg_iov = &mut self.iovecs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_flags = 0;
            if run.count > 1 {
                self.cmsgs[i] = segment_cmsg(run.segment as u16);
                hdr.msg_control = self.cmsgs[i].bytes.as_mut_ptr().cast();
                hdr.msg_controllen = std::mem::size_of::<SegmentCmsg>() as _;
            } else {
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
            }
        }
        let (mut sent, mut dropped, mut dropped_segmented) = (0usize, 0usize, 0usize);
        while sent < batch.len() {
            // SAFETY: `msgs[sent..batch.len()]` point at this struct's addresses, iovecs and
            // control buffers, and the iovecs at `bytes`, all live during the call.
            let n = unsafe {
                libc::sendmmsg(
                    self.fds[index],
                    self.msgs.as_mut_ptr().add(sent),
                    (batch.len() - sent) as u32,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                sent += n as usize;
                continue;
            }
            let error = io::Error::last_os_error().raw_os_error();
            if error == Some(libc::EINTR) {
                continue;
            }
            // A kernel or device without segmentation offload refuses the first such
            // message: sent one by one from now on (this one is dropped).
            if batch[sent].count > 1 && matches!(error, Some(libc::EIO | libc::EINVAL)) {
                self.gso = false;
            }
            // Full (EAGAIN), or this datagram's destination refused: drop it, go on.
            dropped += batch[sent].count;
            if batch[sent].count > 1 {
                dropped_segmented += batch[sent].count;
            }
            sent += 1;
        }
        let datagrams: usize = batch.iter().map(|r| r.count).sum();
        let segmented: usize = batch.iter().filter(|r| r.count > 1).map(|r| r.count).sum();
        ShardCounters::bump(
            &counters.udp_segmented,
            (segmented - dropped_segmented) as u64,
        );
        ShardCounters::bump(&counters.udp_dropped, dropped as u64);
        ShardCounters::bump(&counters.udp_sent, (datagrams - dropped) as u64);
    }

    pub(crate) fn new(fds: Vec<RawFd>) -> Self {
        UdpSender {
            fds,
            gso: true,
            cmsgs: vec![SegmentCmsg::default(); SEND_BATCH].into_boxed_slice(),
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain data, for which all zeroes
            // is a valid value; the pointers in them are set before each use.
            addrs: (0..SEND_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
            iovecs: (0..SEND_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
            msgs: (0..SEND_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
        }
    }
}

/// Datagrams sent as one message: consecutive bytes of the queue, `count` datagrams of
/// `segment` bytes (the last may be shorter) to one destination.
struct Run {
    index: usize,
    to: SocketAddr,
    start: usize,
    end: usize,
    segment: usize,
    count: usize,
}

/// Segments in one message, at most (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
const GSO_SEGMENTS_MAX: usize = 64;
/// Bytes in one segmented message, at most (a UDP datagram's payload limit, less headers).
const GSO_BYTES_MAX: usize = 65_000;

impl Run {
    /// Whether datagram `(start, len)` to `to` on socket `index` can join this run: it
    /// follows it in the queue, every datagram so far is `segment` long and it is not
    /// longer, and the run stays within the kernel's limits.
    fn extends(&self, index: usize, to: SocketAddr, start: usize, len: usize) -> bool {
        index == self.index
            && to == self.to
            && start == self.end
            && len <= self.segment
            && self.end - self.start == self.segment * self.count
            && self.count < GSO_SEGMENTS_MAX
            && self.end + len - self.start <= GSO_BYTES_MAX
    }
}

/// A control message carrying `UDP_SEGMENT` (the segment size), as `sendmsg` reads it.
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
struct SegmentCmsg {
    bytes: [u8; 24],
}

/// The `UDP_SEGMENT` control message for segments of `size` bytes.
fn segment_cmsg(size: u16) -> SegmentCmsg {
    let header = libc::cmsghdr {
        // SAFETY: CMSG_LEN is arithmetic on its argument.
        cmsg_len: unsafe { libc::CMSG_LEN(2) } as _,
        cmsg_level: libc::SOL_UDP,
        cmsg_type: libc::UDP_SEGMENT,
    };
    let mut cmsg = SegmentCmsg::default();
    let header_len = std::mem::size_of::<libc::cmsghdr>();
    // SAFETY: cmsghdr is plain data, 16 bytes, copied into a 24-byte buffer aligned to 8.
    let raw = unsafe {
        std::slice::from_raw_parts((&header as *const libc::cmsghdr).cast::<u8>(), header_len)
    };
    cmsg.bytes[..header_len].copy_from_slice(raw);
    cmsg.bytes[header_len..header_len + 2].copy_from_slice(&size.to_ne_bytes());
    cmsg
}

/// A shard's UDP sockets and the buffers batched calls use.
pub(crate) struct UdpSockets {
    fds: Vec<RawFd>,
    /// Sockets that may have datagrams waiting (readiness seen, not yet read dry).
    pub(crate) readable: Vec<bool>,
    bufs: Box<[[u8; DATAGRAM_MAX_BYTES]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovecs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
}

impl UdpSockets {
    pub(crate) fn new(fds: Vec<RawFd>) -> Self {
        UdpSockets {
            readable: vec![false; fds.len()],
            fds,
            bufs: vec![[0u8; DATAGRAM_MAX_BYTES]; RECV_BATCH].into_boxed_slice(),
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain data, for which all zeroes
            // is a valid value; the pointers in them are set before each use.
            addrs: (0..RECV_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
            iovecs: (0..RECV_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
            msgs: (0..RECV_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
        }
    }

    pub(crate) fn fds(&self) -> &[RawFd] {
        &self.fds
    }

    /// True when a socket still has datagrams to read (the loop must not sleep).
    pub(crate) fn any_readable(&self) -> bool {
        self.readable.iter().any(|&r| r)
    }

    /// Reads socket `index` until it is dry or [`RECV_PER_TICK`] datagrams were taken, handing
    /// each to `f`. Returns true when it read the socket dry (readiness must be awaited again).
    pub(crate) fn receive(
        &mut self,
        index: usize,
        counters: &ShardCounters,
        mut f: impl FnMut(UdpId, SocketAddr, &[u8]),
    ) -> bool {
        let mut taken = 0;
        while taken < RECV_PER_TICK {
            let n = self.recv_batch(index);
            if n < 0 {
                return match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // EAGAIN: dry. Anything else (an ICMP error reported on the socket) is
                    // consumed by this call; the socket stays usable.
                    _ => {
                        self.readable[index] = false;
                        true
                    }
                };
            }
            for i in 0..n as usize {
                let msg = &self.msgs[i];
                let len = msg.msg_len as usize;
                if msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    ShardCounters::bump(&counters.udp_truncated, 1);
                    continue;
                }
                let Some(from) = crate::sys::sockaddr_to(&self.addrs[i], msg.msg_hdr.msg_namelen)
                else {
                    continue;
                };
                ShardCounters::bump(&counters.udp_received, 1);
                f(UdpId(index as u16), from, &self.bufs[i][..len]);
            }
            taken += n as usize;
            if (n as usize) < RECV_BATCH {
                self.readable[index] = false;
                return true;
            }
        }
        false
    }

    fn recv_batch(&mut self, index: usize) -> i32 {
        for i in 0..RECV_BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: DATAGRAM_MAX_BYTES,
            };
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iovecs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: `msgs[..RECV_BATCH]` point at this struct's own buffers, addresses and
        // iovecs, all live and not moved during the call (boxed slices).
        unsafe {
            libc::recvmmsg(
                self.fds[index],
                self.msgs.as_mut_ptr(),
                RECV_BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        }
    }

    /// Closes every socket.
    pub(crate) fn close(&mut self) {
        for fd in self.fds.drain(..) {
            crate::sys::close_fd(fd);
        }
        self.readable.clear();
    }
}
