//! The epoll backend: the same service API on readiness I/O, for hosts where io_uring cannot
//! be set up (seccomp in containers, old kernels) or when chosen with `--io epoll`.
//!
//! Differences from io_uring, each deliberate: descriptors are ordinary fds (so the process's
//! RLIMIT_NOFILE bounds connections); receives go through one shard-wide buffer (an idle
//! connection still holds no receive buffer); sends are `sendmsg` gathers with no zero-copy.
//! Sockets are edge-triggered; a connection that still has input after its per-tick read budget
//! stays on a ready list so one busy peer cannot starve the rest.

use crate::core::Core;
use crate::counters::ShardCounters;
use crate::service::{CloseReason, Service};
use crate::ListenerId;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;

const TAG_LISTENER: u64 = 1 << 62;
const TAG_EVENTFD: u64 = 1 << 61;
const TAG_UDP: u64 = 1 << 60;
/// Reads per ready connection per loop iteration.
const READS_PER_TICK: usize = 4;
/// Accepts per listener per loop iteration.
const ACCEPTS_PER_TICK: usize = 256;

#[derive(Default, Clone, Copy)]
struct EConn {
    fd: RawFd,
    readable: bool,
    writable: bool,
    in_ready: bool,
    in_use: bool,
}

/// One shard on epoll.
pub(crate) struct EpollShard<S: Service> {
    epfd: RawFd,
    core: Core<S>,
    listeners: Vec<RawFd>,
    listeners_open: bool,
    conns: Vec<EConn>,
    ready: VecDeque<u32>,
    buf: Vec<u8>,
    events: Vec<libc::epoll_event>,
    eventfd: RawFd,
    dirty: Vec<u32>,
    scratch: Vec<u32>,
    iov: Vec<libc::iovec>,
    udp: crate::udp::UdpSockets,
}

fn ctl(epfd: RawFd, op: i32, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: a valid epoll fd and event struct; the kernel copies the event.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut event) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl<S: Service> EpollShard<S> {
    pub fn new(
        core: Core<S>,
        listeners: Vec<RawFd>,
        udp: crate::udp::UdpSockets,
    ) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        for (index, &fd) in listeners.iter().enumerate() {
            ctl(
                epfd,
                libc::EPOLL_CTL_ADD,
                fd,
                libc::EPOLLIN as u32,
                TAG_LISTENER | index as u64,
            )?;
        }
        for (index, &fd) in udp.fds().iter().enumerate() {
            let events = (libc::EPOLLIN | libc::EPOLLET) as u32;
            ctl(
                epfd,
                libc::EPOLL_CTL_ADD,
                fd,
                events,
                TAG_UDP | index as u64,
            )?;
        }
        let eventfd = core.cx.mesh.ring().doorbell().eventfd();
        ctl(
            epfd,
            libc::EPOLL_CTL_ADD,
            eventfd,
            libc::EPOLLIN as u32,
            TAG_EVENTFD,
        )?;
        let config = core.config();
        let capacity = config.max_connections as usize;
        let buf = vec![0u8; config.recv_buffer_bytes as usize];
        let max_iov = config.max_iovecs_per_send;
        Ok(EpollShard {
            epfd,
            core,
            listeners,
            listeners_open: true,
            conns: vec![EConn::default(); capacity],
            ready: VecDeque::new(),
            buf,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
            eventfd,
            dirty: Vec::new(),
            scratch: Vec::new(),
            iov: Vec::with_capacity(max_iov),
            udp,
        })
    }

    /// Runs the shard until a drain completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut timeout_ms: i32 = 0;
        loop {
            self.poll_events(timeout_ms)?;
            self.core.tick_clock();
            ShardCounters::bump(&self.core.cx.counters.loop_iterations, 1);
            self.read_ready();
            // Edge-triggered: a socket read dry waits for its next edge, whatever is returned.
            self.core.receive_datagrams(&mut self.udp);
            self.core.run_timers();
            if self.core.run_mesh() {
                self.close_listeners();
            }
            self.core.service.poll(&mut self.core.cx);
            self.flush();
            if self.core.drain_done() {
                if self.core.cx.open_connections() > 0 {
                    for slot in 0..self.conns.len() as u32 {
                        if self.core.is_open_slot(slot) {
                            self.core.peer_closed(slot, CloseReason::Shutdown);
                        }
                    }
                    self.flush();
                }
                break;
            }
            timeout_ms = if !self.ready.is_empty() || self.udp.any_readable() {
                0
            } else {
                match self.core.next_wait_ms().unwrap_or(1000).min(1000) {
                    0 => 0,
                    ms if self.core.cx.mesh.ring().park() => ms as i32,
                    _ => 0,
                }
            };
        }
        self.close_listeners();
        self.udp.close();
        self.core.cx.udp_sender = crate::udp::UdpSender::default();
        crate::sys::close_fd(self.epfd);
        Ok(())
    }

    fn poll_events(&mut self, timeout_ms: i32) -> io::Result<()> {
        // SAFETY: `events` is a valid buffer of `len` entries the kernel fills.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd,
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        self.core.cx.mesh.ring().unpark();
        if n < 0 {
            if errno() == libc::EINTR {
                return Ok(());
            }
            return Err(io::Error::last_os_error());
        }
        for i in 0..n as usize {
            let libc::epoll_event { events, u64: data } = self.events[i];
            if data & TAG_LISTENER != 0 {
                self.accept((data & !TAG_LISTENER) as usize);
            } else if data & TAG_EVENTFD != 0 {
                crate::sys::eventfd_drain(self.eventfd);
            } else if data & TAG_UDP != 0 {
                self.udp.readable[(data & !TAG_UDP) as usize] = true;
            } else {
                self.on_event(data as u32, (data >> 32) as u16, events);
            }
        }
        Ok(())
    }

    fn accept(&mut self, index: usize) {
        if !self.listeners_open {
            return;
        }
        for _ in 0..ACCEPTS_PER_TICK {
            // SAFETY: sockaddr_storage is plain data, for which all zeroes is a valid value.
            let mut peer: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut peer_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: `peer` and `peer_len` are live locals the kernel fills during the call
            // (the length says how much room there is); the flags are valid.
            let fd = unsafe {
                libc::accept4(
                    self.listeners[index],
                    (&mut peer as *mut libc::sockaddr_storage).cast(),
                    &mut peer_len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                match errno() {
                    libc::EAGAIN | libc::EINTR | libc::ECONNABORTED => {}
                    e => log::warn!("accept failed: {}", io::Error::from_raw_os_error(e)),
                }
                return;
            }
            self.core.tick_clock();
            let peer_ip = crate::sys::sockaddr_ip(&peer, peer_len);
            let Some(conn) = self.core.open(ListenerId(index as u16), peer_ip) else {
                ShardCounters::bump(&self.core.cx.counters.accepts_refused, 1);
                crate::sys::close_fd(fd);
                continue;
            };
            let slot = conn.slot() as u32;
            let generation = self.core.cx.conns[slot as usize].generation;
            self.conns[slot as usize] = EConn {
                fd,
                readable: false,
                writable: true,
                in_ready: false,
                in_use: true,
            };
            let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
            if let Err(e) = ctl(
                self.epfd,
                libc::EPOLL_CTL_ADD,
                fd,
                events,
                slot as u64 | (generation as u64) << 32,
            ) {
                log::warn!("epoll_ctl add failed: {e}");
                self.core
                    .peer_closed(slot, CloseReason::Error(e.raw_os_error().unwrap_or(0)));
            }
        }
    }

    fn on_event(&mut self, slot: u32, generation: u16, events: u32) {
        let conn = &mut self.conns[slot as usize];
        if !conn.in_use || self.core.cx.conns[slot as usize].generation != generation {
            return;
        }
        let input = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if events & input != 0 {
            conn.readable = true;
            if !conn.in_ready {
                conn.in_ready = true;
                self.ready.push_back(slot);
            }
        }
        if events & libc::EPOLLOUT as u32 != 0 {
            conn.writable = true;
            self.dirty.push(slot);
        }
    }

    fn read_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(slot) = self.ready.pop_front() else {
                break;
            };
            let fd = self.conns[slot as usize].fd;
            let mut keep = false;
            for _ in 0..READS_PER_TICK {
                if !self.core.is_open_slot(slot) {
                    break;
                }
                // SAFETY: reads into our own buffer of the given length.
                let n = unsafe { libc::recv(fd, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
                if n > 0 {
                    self.core.received(slot, &self.buf[..n as usize]);
                    keep = true;
                    continue;
                }
                keep = false;
                if n == 0 {
                    self.core.peer_eof(slot);
                } else {
                    match errno() {
                        libc::EAGAIN => self.conns[slot as usize].readable = false,
                        libc::EINTR => keep = true,
                        e => self.core.peer_closed(slot, CloseReason::Error(e)),
                    }
                }
                break;
            }
            let conn = &mut self.conns[slot as usize];
            if keep && conn.in_use && self.core.is_open_slot(slot) {
                self.ready.push_back(slot);
            } else {
                conn.in_ready = false;
            }
        }
    }

    fn flush(&mut self) {
        self.core.send_datagrams();
        loop {
            while let Some(slot) = self.core.cx.to_shutdown.pop() {
                let conn = &self.conns[slot as usize];
                if conn.in_use {
                    // SAFETY: shutdown on a descriptor this shard owns.
                    unsafe { libc::shutdown(conn.fd, libc::SHUT_WR) };
                }
            }
            while let Some(slot) = self.core.next_close() {
                let conn = &mut self.conns[slot as usize];
                crate::sys::close_fd(conn.fd);
                conn.in_use = false;
                conn.fd = -1;
                self.core.release(slot);
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            let mut from_core = std::mem::take(&mut self.scratch);
            self.core.take_dirty(&mut from_core);
            dirty.extend_from_slice(&from_core);
            self.scratch = from_core;
            for &slot in &dirty {
                self.write(slot);
            }
            dirty.clear();
            self.dirty = dirty;
            if self.core.cx.closing.is_empty()
                && self.core.cx.dirty.is_empty()
                && self.core.cx.to_shutdown.is_empty()
            {
                break;
            }
        }
        // Wakes for mesh peers went out as eventfd writes when the messages were sent.
        self.core.cx.msg_ring_wakes.clear();
    }

    fn write(&mut self, slot: u32) {
        let conn = self.conns[slot as usize];
        if !conn.in_use || self.core.conn_id(slot).is_none() {
            return;
        }
        let max_iov = self.core.config().max_iovecs_per_send;
        loop {
            if !self.conns[slot as usize].writable {
                return;
            }
            let entry = &self.core.cx.conns[slot as usize];
            if entry.sendq.is_empty() {
                if entry.close_after_flush {
                    self.core.cx.finish_after_flush(slot);
                }
                return;
            }
            self.iov.clear();
            self.iov
                .extend(entry.sendq.chunks().take(max_iov).map(|c| libc::iovec {
                    iov_base: c.as_ptr() as *mut libc::c_void,
                    iov_len: c.len(),
                }));
            // SAFETY: msghdr is plain data; the iovecs point into `Bytes` held by the send
            // queue, which is not touched during the call.
            let n = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = self.iov.as_mut_ptr();
                msg.msg_iovlen = self.iov.len() as _;
                libc::sendmsg(conn.fd, &msg, libc::MSG_NOSIGNAL)
            };
            ShardCounters::bump(&self.core.cx.counters.sends, 1);
            if n >= 0 {
                self.core.sent(slot, n as usize);
                if self.core.conn_id(slot).is_none() {
                    return;
                }
                continue;
            }
            match errno() {
                libc::EAGAIN => self.conns[slot as usize].writable = false,
                libc::EINTR => continue,
                e => self.core.peer_closed(slot, CloseReason::Error(e)),
            }
            return;
        }
    }

    fn close_listeners(&mut self) {
        if !self.listeners_open {
            return;
        }
        self.listeners_open = false;
        log::info!(
            "shard {} draining: {} connections open",
            self.core.cx.shard().0,
            self.core.cx.open_connections()
        );
        for &fd in &self.listeners {
            let _ = ctl(self.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
            crate::sys::close_fd(fd);
        }
    }
}
