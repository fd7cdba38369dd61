//! The io_uring backend: one ring per shard, driven only by the shard thread.
//!
//! Every op carries `user_data` = (slot, generation, kind, aux). A connection's slot is
//! released only when every op that names it has completed — including the second
//! (notification) completion of a zero-copy send — so a late completion can never touch the
//! slot's next occupant, and every buffer an op reads stays alive until the kernel is done.
//!
//! Accepts are single-shot, [`ACCEPTS_PER_LISTENER`] in flight per listener, each writing the
//! peer's address into its own slot of [`AcceptAddr`]s the shard owns, and each re-armed as it
//! completes. A multishot accept would be one op for all connections, but it has one address
//! buffer at most, which every connection overwrites before we can read it: per-connection
//! peer addresses (for per-address limits) need one op per connection in flight.

use crate::core::Core;
use crate::counters::ShardCounters;
use crate::service::{CloseReason, Service};
use crate::sys::AnonMemory;
use crate::ListenerId;
use bytes::Bytes;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};

const KIND_ACCEPT: u8 = 1;
const KIND_RECV: u8 = 2;
const KIND_SEND: u8 = 3;
const KIND_CANCEL: u8 = 4;
const KIND_CLOSE: u8 = 5;
const KIND_CLOSE_ORPHAN: u8 = 6;
const KIND_EVENTFD: u8 = 7;
const KIND_MESH_WAKE: u8 = 8;
const KIND_MSG_RING_SENT: u8 = 9;
const KIND_CANCEL_ACCEPT: u8 = 10;
const KIND_SHUTDOWN: u8 = 11;
/// A UDP socket became readable (single-shot poll, re-armed once the socket is read dry).
const KIND_UDP_POLL: u8 = 12;

/// `IORING_SEND_ZC_REPORT_USAGE`: ask the notification to say whether the kernel copied.
const SEND_ZC_REPORT_USAGE: u16 = 8;
/// `IORING_NOTIF_USAGE_ZC_COPIED`, set in a notification's result when the data was copied.
const NOTIF_USAGE_ZC_COPIED: i32 = i32::MIN;
/// Zero-copy sends awaiting their notification, per connection, at most.
const ZC_HOLDS_MAX: usize = 255;
/// Largest single send op; longer chunks go out in several (a short send is normal).
const SEND_MAX_BYTES: usize = 1 << 30;
/// The provided buffer group every shard uses.
const BUFFER_GROUP: u16 = 0;
/// Single-shot accepts kept in flight per listener per shard. Each completion is re-armed in
/// the same loop iteration and, with connections queued, completes again at the next submit,
/// so a shard takes up to this many connections per listener per loop iteration; connections
/// beyond that wait in the listen backlog (`engine.listen_backlog`), never dropped. Memory:
/// one [`AcceptAddr`] (136 bytes) each, so 16 × 136 = 2176 bytes per listener per shard,
/// allocated at start. The op number travels in `user_data`'s aux byte, hence the bound.
const ACCEPTS_PER_LISTENER: usize = 16;
const _: () = assert!(ACCEPTS_PER_LISTENER >= 1 && ACCEPTS_PER_LISTENER <= u8::MAX as usize + 1);

fn user_data(kind: u8, slot: u32, generation: u16, aux: u8) -> u64 {
    slot as u64 | (generation as u64) << 32 | (kind as u64) << 48 | (aux as u64) << 56
}

fn decode(user_data: u64) -> (u8, u32, u16, u8) {
    (
        (user_data >> 48) as u8,
        user_data as u32,
        (user_data >> 32) as u16,
        (user_data >> 56) as u8,
    )
}

/// Ring features found on this kernel, decided once at start.
#[derive(Clone, Debug, Default)]
pub struct Features {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub send_zc: bool,
    pub msg_ring: bool,
}

impl Features {
    /// Names of the features in use, for logs and `/api/v1/info`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = vec![
            // Single-shot accepts into auto-allocated direct descriptors, with peer addresses
            // (not multishot: see the module documentation).
            "accept_direct",
            "multishot_recv",
            "provided_buffer_ring",
            "direct_descriptors",
        ];
        for (on, name) in [
            (self.single_issuer, "single_issuer"),
            (self.defer_taskrun, "defer_taskrun"),
            (self.coop_taskrun, "coop_taskrun"),
            (self.send_zc, "send_zc"),
            (self.msg_ring, "msg_ring"),
        ] {
            if on {
                names.push(name);
            }
        }
        names
    }
}

/// Builds a ring with the best setup flags this kernel takes, falling back one by one.
fn build_ring(entries: u32, want: &Features) -> io::Result<(IoUring, Features)> {
    // (single_issuer, defer_taskrun, coop_taskrun), best first; DEFER_TASKRUN needs
    // SINGLE_ISSUER.
    let attempts: [(bool, bool, bool); 6] = [
        (true, true, true),
        (true, true, false),
        (true, false, true),
        (true, false, false),
        (false, false, true),
        (false, false, false),
    ];
    let mut last_error = None;
    for (single_issuer, defer_taskrun, coop_taskrun) in attempts {
        if (single_issuer && !want.single_issuer)
            || (defer_taskrun && !want.defer_taskrun)
            || (coop_taskrun && !want.coop_taskrun)
        {
            continue;
        }
        let mut builder = IoUring::builder();
        builder.setup_cqsize(entries * 4).setup_submit_all();
        if single_issuer {
            builder.setup_single_issuer();
        }
        if defer_taskrun {
            builder.setup_defer_taskrun();
        }
        if coop_taskrun {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        match builder.build(entries) {
            Ok(ring) => {
                let features = Features {
                    single_issuer,
                    defer_taskrun,
                    coop_taskrun,
                    send_zc: want.send_zc,
                    msg_ring: want.msg_ring,
                };
                return Ok((ring, features));
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no ring setup tried")))
}

/// Checks that io_uring can run the engine here and finds the optional features. The error
/// says why not (seccomp, an old kernel, a missing op) so the caller can log it and use epoll.
/// Names `disable` may hold: each optional feature, or "io_uring" to refuse io_uring whole.
pub const DISABLE_NAMES: [&str; 6] = [
    "io_uring",
    "single_issuer",
    "defer_taskrun",
    "coop_taskrun",
    "send_zc",
    "msg_ring",
];

pub fn probe(disable: &[String]) -> Result<Features, String> {
    let off = |name: &str| disable.iter().any(|d| d == name);
    if off("io_uring") {
        return Err("disabled by engine.io_uring_disable".to_string());
    }
    let all = Features {
        single_issuer: !off("single_issuer"),
        defer_taskrun: !off("defer_taskrun") && !off("single_issuer"),
        coop_taskrun: !off("coop_taskrun"),
        send_zc: !off("send_zc"),
        msg_ring: !off("msg_ring"),
    };
    let (ring, mut features) =
        build_ring(8, &all).map_err(|e| format!("io_uring_setup failed: {e}"))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    for (code, name) in [
        (opcode::Accept::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::SendMsg::CODE, "sendmsg"),
        (opcode::Close::CODE, "close"),
        (opcode::AsyncCancel2::CODE, "async_cancel"),
        (opcode::Read::CODE, "read"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!(
                "io_uring op {name} is not supported by this kernel"
            ));
        }
    }
    features.send_zc = all.send_zc && probe.is_supported(opcode::SendZc::CODE);
    features.msg_ring = all.msg_ring && probe.is_supported(opcode::MsgRingData::CODE);
    ring.submitter()
        .register_files_sparse(4)
        .map_err(|e| format!("direct descriptors unavailable: {e}"))?;
    BufRing::new(&ring, 2, 64).map_err(|e| format!("provided buffer rings unavailable: {e}"))?;
    // Accept into an auto-allocated direct descriptor (IORING_FILE_INDEX_ALLOC) came in 5.19
    // with buffer rings, multishot recv in 6.0; a kernel that takes a buffer ring registration
    // has the first, and the second is assumed with it.
    Ok(features)
}

/// A provided buffer ring: `entries` buffers of `buf_len` bytes the kernel picks from for
/// multishot receives. Buffers are returned as soon as the service has seen the data.
struct BufRing {
    ring: AnonMemory,
    bufs: AnonMemory,
    entries: u16,
    buf_len: u32,
    tail: u16,
}

impl BufRing {
    fn new(uring: &IoUring, entries: u16, buf_len: u32) -> io::Result<Self> {
        assert!(entries.is_power_of_two() && entries <= 32768);
        let ring = AnonMemory::new(entries as usize * std::mem::size_of::<types::BufRingEntry>())?;
        let bufs = AnonMemory::new(entries as usize * buf_len as usize)?;
        // SAFETY: `ring` is page-aligned, sized for `entries` entries, zeroed, and is kept
        // alive (and unmoved: it is an mmap) for as long as the io_uring exists, because the
        // BufRing lives beside the ring in the shard and is dropped after it.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                ring.as_ptr() as u64,
                entries,
                BUFFER_GROUP,
                0,
            )?;
        }
        let mut this = BufRing {
            ring,
            bufs,
            entries,
            buf_len,
            tail: 0,
        };
        for bid in 0..entries {
            this.push(bid);
        }
        this.publish();
        Ok(this)
    }

    fn push(&mut self, bid: u16) {
        assert!(bid < self.entries);
        let index = (self.tail & (self.entries - 1)) as usize;
        // SAFETY: index < entries, so the entry is inside `ring`; the kernel only reads
        // entries between its head and our published tail, and this one is past the tail.
        let entry = unsafe { &mut *(self.ring.as_ptr() as *mut types::BufRingEntry).add(index) };
        entry.set_addr(self.bufs.as_ptr() as u64 + bid as u64 * self.buf_len as u64);
        entry.set_len(self.buf_len);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved bytes, inside `ring`,
        // 2-aligned; the kernel reads it with acquire semantics, we write it with release.
        let tail = unsafe {
            &*(types::BufRingEntry::tail(self.ring.as_ptr() as *const types::BufRingEntry)
                as *const AtomicU16)
        };
        tail.store(self.tail, Ordering::Release);
    }

    fn data(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.entries && len <= self.buf_len as usize);
        // SAFETY: the range is inside `bufs`; the kernel wrote it before posting the
        // completion and will not touch this buffer again until we push it back.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs.as_ptr().add(bid as usize * self.buf_len as usize),
                len,
            )
        }
    }
}

/// Storage for one gathered send: must not move while the op is in flight, hence boxed.
struct Gather {
    msg: libc::msghdr,
    iov: Vec<libc::iovec>,
}

/// Where one accept op has the kernel write the peer's address. The kernel writes it while
/// the op is in flight, outside Rust's view, hence the `UnsafeCell`: the shard only touches
/// an entry through raw pointers, and only while its op is not in flight.
#[repr(C)]
struct AcceptAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

// The figure `ACCEPTS_PER_LISTENER`'s memory note uses.
const _: () = assert!(std::mem::size_of::<AcceptAddr>() <= 136);

impl AcceptAddr {
    fn empty() -> UnsafeCell<Self> {
        UnsafeCell::new(AcceptAddr {
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (AF_UNSPEC) value.
            storage: unsafe { std::mem::zeroed() },
            len: 0,
        })
    }
}

enum Inflight {
    Single,
    Gather(usize),
    ZeroCopy,
    /// A zero-copy gathered send (SENDMSG_ZC) using this gather slot.
    GatherZeroCopy(usize),
}

#[derive(Default)]
struct UConn {
    fixed: u32,
    recv_armed: bool,
    send: Option<Inflight>,
    /// Chunks under zero-copy sends, by send serial, kept until the kernel's notification.
    zc_holds: VecDeque<(u8, Bytes)>,
    /// Zero-copy notifications still to come (one per zero-copy send whose result said so).
    zc_notifs_pending: usize,
    /// The kernel reported copying a zero-copy send on this connection (loopback, a device
    /// without scatter-gather or checksum offload): zero-copy only costs here, so it stops.
    zc_copies: bool,
    zc_serial: u8,
    cancel_pending: bool,
    close_pending: bool,
    shutdown_pending: bool,
    closing: bool,
    close_issued: bool,
    in_use: bool,
}

impl UConn {
    fn pending_ops(&self) -> usize {
        self.recv_armed as usize
            + self.send.is_some() as usize
            + self.zc_notifs_pending
            + self.cancel_pending as usize
            + self.close_pending as usize
            + self.shutdown_pending as usize
    }
}

/// One shard on io_uring.
pub(crate) struct UringShard<S: Service> {
    // Field order matters for drop: the ring goes before the buffer ring memory it reads.
    ring: IoUring,
    bufs: BufRing,
    /// One address slot per accept op: op `i` of listener `l` uses entry
    /// `l × ACCEPTS_PER_LISTENER + i`. A boxed slice allocated at start and never resized, so
    /// an entry does not move while its op is in flight; dropped after the ring.
    accept_addrs: Box<[UnsafeCell<AcceptAddr>]>,
    core: Core<S>,
    features: Features,
    listeners: Vec<RawFd>,
    /// Which accept ops are in flight, indexed as `accept_addrs`.
    accept_armed: Vec<bool>,
    accepts_in_flight: usize,
    conns: Vec<UConn>,
    // Boxed so a gather's address stays put while the vector grows: in-flight ops point at it.
    #[allow(clippy::vec_box)]
    gathers: Vec<Box<Gather>>,
    free_gathers: Vec<usize>,
    eventfd: RawFd,
    eventfd_buf: Box<u64>,
    eventfd_armed: bool,
    orphans_pending: usize,
    slots_in_use: usize,
    dirty: Vec<u32>,
    /// UDP sockets, read by readiness (a poll op each) with recvmmsg, written with sendmmsg.
    udp: crate::udp::UdpSockets,
    udp_poll_armed: Vec<bool>,
}

impl<S: Service> UringShard<S> {
    pub fn new(
        core: Core<S>,
        features: &Features,
        listeners: Vec<RawFd>,
        udp: crate::udp::UdpSockets,
    ) -> io::Result<Self> {
        let config = core.config().clone();
        let (ring, features) = build_ring(config.ring_entries, features)?;
        ring.submitter()
            .register_files_sparse(config.max_connections + crate::runtime::DIRECT_TABLE_SPARE)?;
        let bufs = BufRing::new(&ring, config.recv_buffers, config.recv_buffer_bytes)?;
        let mut core = core;
        core.cx.mesh.ring().doorbell().set_ring_fd(ring.as_raw_fd());
        if features.msg_ring {
            core.cx.mesh.ring_mut().enable_msg_ring();
        }
        let eventfd = core.cx.mesh.ring().doorbell().eventfd();
        let capacity = config.max_connections as usize;
        let accept_ops = listeners.len() * ACCEPTS_PER_LISTENER;
        assert!(
            listeners.len() <= u32::MAX as usize,
            "listener index travels in user_data"
        );
        Ok(UringShard {
            ring,
            bufs,
            accept_addrs: (0..accept_ops).map(|_| AcceptAddr::empty()).collect(),
            core,
            features,
            listeners,
            accept_armed: vec![false; accept_ops],
            accepts_in_flight: 0,
            conns: (0..capacity).map(|_| UConn::default()).collect(),
            gathers: Vec::new(),
            free_gathers: Vec::new(),
            eventfd,
            eventfd_buf: Box::new(0),
            eventfd_armed: false,
            orphans_pending: 0,
            slots_in_use: 0,
            dirty: Vec::new(),
            udp_poll_armed: vec![false; udp.fds().len()],
            udp,
        })
    }

    /// Runs the shard until a drain completes.
    pub fn run(mut self) -> io::Result<()> {
        for index in 0..self.accept_armed.len() {
            self.arm_accept(index)?;
        }
        self.arm_eventfd()?;
        for index in 0..self.udp_poll_armed.len() {
            self.arm_udp_poll(index)?;
        }
        let mut exit_deadline_ms = None;
        loop {
            self.core.tick_clock();
            ShardCounters::bump(&self.core.cx.counters.loop_iterations, 1);
            self.reap()?;
            for index in self.core.receive_datagrams(&mut self.udp) {
                self.arm_udp_poll(index)?;
            }
            self.core.run_timers();
            if self.core.run_mesh() {
                self.begin_drain()?;
            }
            self.core.service.poll(&mut self.core.cx);
            self.flush()?;
            if self.core.drain_done() {
                if self.core.cx.open_connections() > 0 {
                    self.close_all(CloseReason::Shutdown);
                    self.flush()?;
                }
                // Wait (bounded) for every op that names a slot or an address buffer to
                // complete, so no buffer the kernel may still read or write is freed under it.
                let deadline = *exit_deadline_ms.get_or_insert(self.core.cx.now_ms() + 2000);
                let idle = self.slots_in_use == 0
                    && self.orphans_pending == 0
                    && self.accepts_in_flight == 0;
                if idle || self.core.cx.now_ms() >= deadline {
                    break;
                }
            }
            self.wait()?;
        }
        for &fd in &self.listeners {
            crate::sys::close_fd(fd);
        }
        self.udp.close();
        self.core.cx.udp_sender = crate::udp::UdpSender::default();
        Ok(())
    }

    /// Arms the readiness poll of UDP socket `index` (it names only the descriptor).
    fn arm_udp_poll(&mut self, index: usize) -> io::Result<()> {
        if self.udp_poll_armed[index] {
            return Ok(());
        }
        let fd = self.udp.fds()[index];
        let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(user_data(KIND_UDP_POLL, index as u32, 0, 0));
        self.push(entry)?;
        self.udp_poll_armed[index] = true;
        Ok(())
    }

    fn wait(&mut self) -> io::Result<()> {
        let busy = self.udp.any_readable()
            || !self.ring.completion().is_empty()
            || !self.core.cx.closing.is_empty()
            || !self.core.cx.dirty.is_empty();
        if busy {
            return self.submit(0, None);
        }
        let timeout_ms = self.core.next_wait_ms().unwrap_or(1000).min(1000);
        if timeout_ms == 0 || !self.core.cx.mesh.ring().park() {
            return self.submit(0, None);
        }
        let result = self.submit(1, Some(timeout_ms));
        self.core.cx.mesh.ring().unpark();
        result
    }

    fn submit(&mut self, want: usize, timeout_ms: Option<u64>) -> io::Result<()> {
        let result = match timeout_ms {
            Some(ms) => {
                let ts = types::Timespec::new()
                    .sec(ms / 1000)
                    .nsec(((ms % 1000) * 1_000_000) as u32);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submitter().submit_and_wait(want),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed here points only at memory that outlives its op:
            // buffer-ring memory, boxed gather storage, `Bytes` held in the send queue or the
            // zero-copy holds until completion, the boxed eventfd buffer, and the accept
            // address slots (see `arm_accept`).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Arms accept op `index` (op `index % ACCEPTS_PER_LISTENER` of listener
    /// `index / ACCEPTS_PER_LISTENER`) into an auto-allocated direct descriptor, with the
    /// peer's address written to its own slot.
    fn arm_accept(&mut self, index: usize) -> io::Result<()> {
        assert!(!self.accept_armed[index], "accept op {index} armed twice");
        let (listener, op) = (index / ACCEPTS_PER_LISTENER, index % ACCEPTS_PER_LISTENER);
        let slot = self.accept_addrs[index].get();
        // SAFETY: `slot` points into `accept_addrs`, owned by this shard, allocated at start
        // and never resized, and dropped only after the ring (field order), whose teardown
        // cancels what is still in flight; so it stays valid and unmoved while the op is in
        // flight. The op ends by completing (reaped in `on_accept`) or by the cancel on drain,
        // and `run` waits (bounded) for `accepts_in_flight` to reach 0 before returning. Op
        // `index` is not in flight (asserted above), so the kernel is not writing the slot
        // while we reset its length, and nothing else touches it until the op completes.
        let (addr, len) = unsafe {
            (*slot).len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            (
                (&raw mut (*slot).storage).cast::<libc::sockaddr>(),
                &raw mut (*slot).len,
            )
        };
        let entry = opcode::Accept::new(types::Fd(self.listeners[listener]), addr, len)
            .file_index(Some(types::DestinationSlot::auto_target()))
            .build()
            .user_data(user_data(KIND_ACCEPT, listener as u32, 0, op as u8));
        self.push(entry)?;
        self.accept_armed[index] = true;
        self.accepts_in_flight += 1;
        Ok(())
    }

    fn arm_eventfd(&mut self) -> io::Result<()> {
        let buf = &mut *self.eventfd_buf as *mut u64 as *mut u8;
        let entry = opcode::Read::new(types::Fd(self.eventfd), buf, 8)
            .build()
            .user_data(user_data(KIND_EVENTFD, 0, 0, 0));
        self.push(entry)?;
        self.eventfd_armed = true;
        Ok(())
    }

    fn arm_recv(&mut self, slot: u32) -> io::Result<()> {
        let conn = &self.conns[slot as usize];
        debug_assert!(!conn.recv_armed && !conn.closing);
        let generation = self.core.cx.conns[slot as usize].generation;
        let entry = opcode::RecvMulti::new(types::Fixed(conn.fixed), BUFFER_GROUP)
            .build()
            .user_data(user_data(KIND_RECV, slot, generation, 0));
        self.push(entry)?;
        self.conns[slot as usize].recv_armed = true;
        Ok(())
    }

    fn reap(&mut self) -> io::Result<()> {
        let budget = self.core.config().max_completions_per_tick;
        let mut handled = 0;
        let mut batch: Vec<(u64, i32, u32)> = Vec::with_capacity(256);
        while handled < budget {
            batch.clear();
            batch.extend(
                self.ring
                    .completion()
                    .take(256.min(budget - handled))
                    .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
            );
            if batch.is_empty() {
                break;
            }
            handled += batch.len();
            for &(data, result, flags) in &batch {
                self.complete(data, result, flags)?;
            }
        }
        Ok(())
    }

    fn complete(&mut self, data: u64, result: i32, flags: u32) -> io::Result<()> {
        let (kind, slot, generation, aux) = decode(data);
        match kind {
            KIND_ACCEPT => self.on_accept(slot as usize, aux as usize, result),
            KIND_RECV => self.on_recv(slot, generation, result, flags),
            KIND_SEND => self.on_send(slot, generation, aux, result, flags),
            KIND_CANCEL => {
                self.conns[slot as usize].cancel_pending = false;
                self.maybe_release(slot);
                Ok(())
            }
            KIND_CLOSE => {
                self.conns[slot as usize].close_pending = false;
                self.maybe_release(slot);
                Ok(())
            }
            KIND_SHUTDOWN => {
                self.conns[slot as usize].shutdown_pending = false;
                self.maybe_release(slot);
                Ok(())
            }
            KIND_CLOSE_ORPHAN => {
                self.orphans_pending -= 1;
                Ok(())
            }
            KIND_EVENTFD => {
                self.eventfd_armed = false;
                self.arm_eventfd()
            }
            KIND_UDP_POLL => {
                let index = slot as usize;
                self.udp_poll_armed[index] = false;
                if result >= 0 {
                    self.udp.readable[index] = true;
                } else if result != -libc::ECANCELED {
                    log::error!(
                        "shard {}: UDP socket {index} cannot be polled: {}",
                        self.core.cx.shard().0,
                        io::Error::from_raw_os_error(-result)
                    );
                }
                Ok(())
            }
            KIND_MESH_WAKE | KIND_MSG_RING_SENT | KIND_CANCEL_ACCEPT => Ok(()),
            _ => unreachable!("unknown op kind {kind} in user_data {data:#x}"),
        }
    }

    /// One accept op completed: take the connection (or refuse it), then re-arm the op
    /// unless draining. The re-arm is queued after any orphan close, so a table that is full
    /// gets its direct descriptor back before the next accept can take one.
    fn on_accept(&mut self, listener: usize, op: usize, result: i32) -> io::Result<()> {
        let index = listener * ACCEPTS_PER_LISTENER + op;
        assert!(
            self.accept_armed[index],
            "completion of accept op {index}, not armed"
        );
        self.accept_armed[index] = false;
        self.accepts_in_flight -= 1;
        if result >= 0 {
            let slot = self.accept_addrs[index].get();
            // SAFETY: this is the op's completion, so the kernel is done writing the slot, and
            // the borrow ends with `sockaddr_ip`, before the op is re-armed below.
            let (storage, len) = unsafe { (&(*slot).storage, (*slot).len) };
            let peer_ip = crate::sys::sockaddr_ip(storage, len);
            self.take_accepted(ListenerId(listener as u16), result as u32, peer_ip)?;
        } else if result != -libc::ECANCELED {
            log::warn!("accept failed: {}", io::Error::from_raw_os_error(-result));
        }
        if !self.core.cx.is_draining() {
            self.arm_accept(index)?;
        }
        Ok(())
    }

    /// Opens a connection for the direct descriptor `fixed`, or closes it when draining or
    /// when the connection table is full.
    fn take_accepted(
        &mut self,
        listener: ListenerId,
        fixed: u32,
        peer_ip: Option<IpAddr>,
    ) -> io::Result<()> {
        if self.core.cx.is_draining() {
            return self.close_orphan(fixed);
        }
        let Some(conn) = self.core.open(listener, peer_ip) else {
            ShardCounters::bump(&self.core.cx.counters.accepts_refused, 1);
            return self.close_orphan(fixed);
        };
        let slot = conn.slot() as u32;
        let uconn = &mut self.conns[slot as usize];
        assert!(!uconn.in_use, "slot {slot} reused before release");
        *uconn = UConn {
            fixed,
            in_use: true,
            ..UConn::default()
        };
        self.slots_in_use += 1;
        // The service may have closed it from on_accept; the flush phase handles that.
        if self.core.conn_id(slot).is_some() {
            self.arm_recv(slot)?;
        }
        Ok(())
    }

    fn close_orphan(&mut self, fixed: u32) -> io::Result<()> {
        self.orphans_pending += 1;
        let entry = opcode::Close::new(types::Fixed(fixed))
            .build()
            .user_data(user_data(KIND_CLOSE_ORPHAN, 0, 0, 0));
        self.push(entry)
    }

    fn on_recv(&mut self, slot: u32, generation: u16, result: i32, flags: u32) -> io::Result<()> {
        let more = cqueue::more(flags);
        debug_assert_eq!(self.core.cx.conns[slot as usize].generation, generation);
        if result > 0 {
            let bid = cqueue::buffer_select(flags).expect("multishot recv without a buffer");
            let closing = self.conns[slot as usize].closing;
            if !closing {
                let data = self.bufs.data(bid, result as usize);
                self.core.received(slot, data);
            }
            self.bufs.push(bid);
            self.bufs.publish();
        }
        if !more {
            let uconn = &mut self.conns[slot as usize];
            uconn.recv_armed = false;
            if !uconn.closing {
                match result {
                    0 => self.core.peer_eof(slot),
                    r if r > 0 || r == -libc::ENOBUFS => {
                        if r == -libc::ENOBUFS {
                            let c = &self.core.cx.counters;
                            ShardCounters::bump(&c.recv_buffer_exhausted, 1);
                        }
                        if self.core.is_open_slot(slot) {
                            self.arm_recv(slot)?;
                        }
                    }
                    r => self.core.peer_closed(slot, CloseReason::Error(-r)),
                }
            }
            self.maybe_release(slot);
        }
        Ok(())
    }

    fn on_send(
        &mut self,
        slot: u32,
        generation: u16,
        serial: u8,
        result: i32,
        flags: u32,
    ) -> io::Result<()> {
        debug_assert_eq!(self.core.cx.conns[slot as usize].generation, generation);
        let uconn = &mut self.conns[slot as usize];
        if cqueue::notif(flags) {
            assert!(
                uconn.zc_holds.iter().any(|(s, _)| *s == serial),
                "notification for an unknown zero-copy send"
            );
            uconn.zc_holds.retain(|(s, _)| *s != serial);
            uconn.zc_notifs_pending -= 1;
            if result & NOTIF_USAGE_ZC_COPIED != 0 {
                uconn.zc_copies = true;
                ShardCounters::bump(&self.core.cx.counters.sends_zerocopy_copied, 1);
            }
            self.maybe_release(slot);
            return Ok(());
        }
        self.core.cx.conns[slot as usize].sendq.set_in_flight(0);
        match uconn
            .send
            .take()
            .expect("send completion without a send in flight")
        {
            Inflight::Gather(index) => self.free_gathers.push(index),
            Inflight::GatherZeroCopy(index) => {
                self.free_gathers.push(index);
                if cqueue::more(flags) {
                    uconn.zc_notifs_pending += 1;
                } else {
                    uconn.zc_holds.retain(|(s, _)| *s != serial);
                }
            }
            Inflight::ZeroCopy if cqueue::more(flags) => uconn.zc_notifs_pending += 1,
            Inflight::ZeroCopy => uconn.zc_holds.retain(|(s, _)| *s != serial),
            Inflight::Single => {}
        }
        let closing = self.conns[slot as usize].closing;
        if !closing {
            if result > 0 {
                self.core.sent(slot, result as usize);
                self.start_send(slot)?;
            } else if result == -libc::EAGAIN || result == -libc::EINTR {
                self.start_send(slot)?;
            } else {
                let reason = if result == 0 {
                    CloseReason::PeerClosed
                } else {
                    CloseReason::Error(-result)
                };
                self.core.peer_closed(slot, reason);
            }
        }
        self.maybe_release(slot);
        Ok(())
    }

    /// Issues the next send for `slot` if none is in flight and data is queued.
    fn start_send(&mut self, slot: u32) -> io::Result<()> {
        let uconn = &self.conns[slot as usize];
        if uconn.send.is_some() || uconn.closing || !uconn.in_use {
            return Ok(());
        }
        let config = self.core.config();
        let (zc_min, max_iov) = (config.zerocopy_min_bytes, config.max_iovecs_per_send);
        let entry = &self.core.cx.conns[slot as usize];
        let Some(front) = entry.sendq.front() else {
            if entry.close_after_flush {
                self.core.cx.finish_after_flush(slot);
            }
            return Ok(());
        };
        let generation = entry.generation;
        let fixed = types::Fixed(uconn.fixed);
        let counters = self.core.cx.counters.clone();
        ShardCounters::bump(&counters.sends, 1);
        // Everything queued goes in one op (up to max_iovecs_per_send chunks): a response's
        // head and body, or a segment's styp and parts, leave together. The op is zero-copy
        // when it carries zerocopy_min_bytes or more.
        let count = entry.sendq.len_chunks().min(max_iov);
        let total: usize = entry.sendq.chunks().take(count).map(Bytes::len).sum();
        let uconn = &self.conns[slot as usize];
        let zero_copy = self.features.send_zc
            && total >= zc_min
            && !uconn.zc_copies
            && uconn.zc_notifs_pending < ZC_HOLDS_MAX;
        let serial = uconn.zc_serial;
        if zero_copy {
            ShardCounters::bump(&counters.sends_zerocopy, 1);
            let uconn = &mut self.conns[slot as usize];
            uconn.zc_serial = uconn.zc_serial.wrapping_add(1);
            // The chunks must outlive the kernel's use of them: until the notification.
            uconn.zc_holds.extend(
                entry
                    .sendq
                    .chunks()
                    .take(count)
                    .map(|c| (serial, c.clone())),
            );
        }
        if count == 1 {
            let len = front.len().min(SEND_MAX_BYTES) as u32;
            let op = if zero_copy {
                self.conns[slot as usize].send = Some(Inflight::ZeroCopy);
                opcode::SendZc::new(fixed, front.as_ptr(), len)
                    .flags(libc::MSG_NOSIGNAL)
                    .zc_flags(SEND_ZC_REPORT_USAGE)
                    .build()
                    .user_data(user_data(KIND_SEND, slot, generation, serial))
            } else {
                self.conns[slot as usize].send = Some(Inflight::Single);
                opcode::Send::new(fixed, front.as_ptr(), len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(KIND_SEND, slot, generation, 0))
            };
            self.core.cx.conns[slot as usize].sendq.set_in_flight(1);
            return self.push(op);
        }
        let index = match self.free_gathers.pop() {
            Some(index) => index,
            None => {
                self.gathers.push(Box::new(Gather {
                    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
                    msg: unsafe { std::mem::zeroed() },
                    iov: Vec::with_capacity(max_iov),
                }));
                self.gathers.len() - 1
            }
        };
        let gather = &mut *self.gathers[index];
        gather.iov.clear();
        gather
            .iov
            .extend(entry.sendq.chunks().take(count).map(|c| libc::iovec {
                iov_base: c.as_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            }));
        gather.msg.msg_iov = gather.iov.as_mut_ptr();
        gather.msg.msg_iovlen = gather.iov.len() as _;
        let op = if zero_copy {
            self.conns[slot as usize].send = Some(Inflight::GatherZeroCopy(index));
            opcode::SendMsgZc::new(fixed, &gather.msg)
                .ioprio(SEND_ZC_REPORT_USAGE)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
                .user_data(user_data(KIND_SEND, slot, generation, serial))
        } else {
            self.conns[slot as usize].send = Some(Inflight::Gather(index));
            opcode::SendMsg::new(fixed, &gather.msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
                .user_data(user_data(KIND_SEND, slot, generation, 0))
        };
        self.core.cx.conns[slot as usize].sendq.set_in_flight(count);
        self.push(op)
    }

    /// Closes what the services asked to close, starts sends for new data, posts wakes.
    fn flush(&mut self) -> io::Result<()> {
        self.core.send_datagrams();
        loop {
            while let Some(slot) = self.core.cx.to_shutdown.pop() {
                let uconn = &mut self.conns[slot as usize];
                if uconn.closing || !uconn.in_use {
                    continue;
                }
                uconn.shutdown_pending = true;
                let generation = self.core.cx.conns[slot as usize].generation;
                let op = opcode::Shutdown::new(types::Fixed(uconn.fixed), libc::SHUT_WR)
                    .build()
                    .user_data(user_data(KIND_SHUTDOWN, slot, generation, 0));
                self.push(op)?;
            }
            while let Some(slot) = self.core.next_close() {
                self.close_slot(slot)?;
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            self.core.take_dirty(&mut dirty);
            for &slot in &dirty {
                self.start_send(slot)?;
            }
            self.dirty = dirty;
            if self.core.cx.closing.is_empty()
                && self.core.cx.dirty.is_empty()
                && self.core.cx.to_shutdown.is_empty()
            {
                break;
            }
        }
        while let Some(fd) = self.core.cx.msg_ring_wakes.pop() {
            let op = opcode::MsgRingData::new(
                types::Fd(fd),
                0,
                user_data(KIND_MESH_WAKE, 0, 0, 0),
                None,
            )
            .build()
            .user_data(user_data(KIND_MSG_RING_SENT, 0, 0, 0));
            self.push(op)?;
        }
        Ok(())
    }

    fn close_slot(&mut self, slot: u32) -> io::Result<()> {
        let generation = self.core.cx.conns[slot as usize].generation;
        let uconn = &mut self.conns[slot as usize];
        debug_assert!(uconn.in_use && !uconn.closing);
        uconn.closing = true;
        let fixed = types::Fixed(uconn.fixed);
        if uconn.recv_armed || uconn.send.is_some() {
            uconn.cancel_pending = true;
            let op = opcode::AsyncCancel2::new(types::CancelBuilder::fd(fixed).all())
                .build()
                .user_data(user_data(KIND_CANCEL, slot, generation, 0));
            self.push(op)?;
        }
        self.try_close(slot);
        Ok(())
    }

    /// Closes the direct descriptor once no op that names it is in flight. An op punted to
    /// the kernel's workers (a shutdown, say) looks its fixed file up when it runs; closing the
    /// slot first would let it act on the next connection the kernel puts in that slot.
    fn try_close(&mut self, slot: u32) {
        let generation = self.core.cx.conns[slot as usize].generation;
        let uconn = &mut self.conns[slot as usize];
        let names_the_file = uconn.recv_armed
            || uconn.send.is_some()
            || uconn.cancel_pending
            || uconn.shutdown_pending;
        if !uconn.closing || uconn.close_issued || names_the_file {
            return;
        }
        uconn.close_issued = true;
        uconn.close_pending = true;
        let op = opcode::Close::new(types::Fixed(uconn.fixed))
            .build()
            .user_data(user_data(KIND_CLOSE, slot, generation, 0));
        if let Err(e) = self.push(op) {
            log::error!("cannot submit a close: {e}");
        }
    }

    fn maybe_release(&mut self, slot: u32) {
        self.try_close(slot);
        let uconn = &mut self.conns[slot as usize];
        if uconn.in_use && uconn.closing && uconn.close_issued && uconn.pending_ops() == 0 {
            uconn.in_use = false;
            self.slots_in_use -= 1;
            self.core.release(slot);
        }
    }

    fn begin_drain(&mut self) -> io::Result<()> {
        log::info!(
            "shard {} draining: {} connections open",
            self.core.cx.shard().0,
            self.core.cx.open_connections()
        );
        for index in 0..self.listeners.len() {
            let ops = index * ACCEPTS_PER_LISTENER..(index + 1) * ACCEPTS_PER_LISTENER;
            if self.accept_armed[ops].contains(&true) {
                // One cancel takes every accept op on the listener.
                let op = opcode::AsyncCancel2::new(
                    types::CancelBuilder::fd(types::Fd(self.listeners[index])).all(),
                )
                .build()
                .user_data(user_data(KIND_CANCEL_ACCEPT, index as u32, 0, 0));
                self.push(op)?;
            }
        }
        // Cancels run inline at submission, so once this returns no accept holds the
        // listeners and closing them stops the kernel queueing new connections for us.
        self.ring.submit()?;
        for fd in self.listeners.iter_mut() {
            crate::sys::close_fd(*fd);
            *fd = -1;
        }
        Ok(())
    }

    fn close_all(&mut self, reason: CloseReason) {
        for slot in 0..self.conns.len() as u32 {
            if self.core.is_open_slot(slot) {
                self.core.peer_closed(slot, reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// A ring with one provided buffer ring and one end of a socket pair as direct
    /// descriptor 0, with a multishot receive armed on it.
    fn receiving_ring(buffers: u16, buf_len: u32) -> (IoUring, BufRing, UnixStream, UnixStream) {
        let ring = IoUring::new(64).unwrap();
        let bufs = BufRing::new(&ring, buffers, buf_len).unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        ring.submitter().register_files_sparse(4).unwrap();
        ring.submitter()
            .register_files_update(0, &[ours.as_raw_fd()])
            .unwrap();
        let entry = opcode::RecvMulti::new(types::Fixed(0), BUFFER_GROUP)
            .build()
            .user_data(7);
        // SAFETY: the op reads only buffer-ring memory, which outlives the ring in this test.
        unsafe { ring.submission_shared().push(&entry).unwrap() };
        (ring, bufs, ours, theirs)
    }

    #[test]
    fn recycled_buffers_carry_any_number_of_receives() {
        // 4 buffers, 200 messages: only recycling makes that possible.
        let (mut ring, mut bufs, _ours, mut theirs) = receiving_ring(4, 64);
        let mut received = Vec::new();
        for i in 0..200u32 {
            theirs.write_all(format!("m{i:04};").as_bytes()).unwrap();
            ring.submit_and_wait(1).unwrap();
            let cqes: Vec<_> = ring.completion().map(|c| (c.result(), c.flags())).collect();
            for (result, flags) in cqes {
                assert!(result > 0, "receive failed: {result}");
                assert!(cqueue::more(flags), "multishot receive ended");
                let bid = cqueue::buffer_select(flags).unwrap();
                received.extend_from_slice(bufs.data(bid, result as usize));
                bufs.push(bid);
                bufs.publish();
            }
        }
        let expected: String = (0..200u32).map(|i| format!("m{i:04};")).collect();
        assert_eq!(String::from_utf8(received).unwrap(), expected);
    }

    #[test]
    fn an_exhausted_buffer_ring_ends_the_receive_with_enobufs() {
        let (mut ring, bufs, _ours, mut theirs) = receiving_ring(2, 64);
        let mut results = Vec::new();
        for _ in 0..3 {
            theirs.write_all(b"x").unwrap();
            ring.submit_and_wait(1).unwrap();
            results.extend(
                ring.completion()
                    .map(|c| (c.result(), cqueue::more(c.flags()))),
            );
        }
        // Two buffers taken and never returned; the third receive finds none.
        assert_eq!(results[..2], [(1, true), (1, true)]);
        assert_eq!(results[2], (-libc::ENOBUFS, false));
        drop(bufs);
    }

    #[test]
    fn user_data_round_trips() {
        for &(kind, slot, generation, aux) in &[
            (KIND_SEND, 0u32, 0u16, 0u8),
            (KIND_RECV, u32::MAX, u16::MAX, u8::MAX),
            (KIND_CLOSE, 12345, 678, 9),
        ] {
            assert_eq!(
                decode(user_data(kind, slot, generation, aux)),
                (kind, slot, generation, aux)
            );
        }
    }
}
