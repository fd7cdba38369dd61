//! The backend-independent half of a shard: the connection table, send queues, timers, the
//! mesh endpoint, counters, and the [`Ctx`] handed to services.
//!
//! A backend (io_uring or epoll) owns the sockets and drives this in a fixed order each loop
//! iteration: dispatch completions → [`Core::run_timers`] → [`Core::run_mesh`] →
//! `Service::poll` → [`Core::take_closes`] / [`Core::take_dirty`] → submit and wait.

use crate::counters::ShardCounters;
use crate::mesh::{Envelope, MeshPort, Wake};
use crate::sendq::{SendQueue, Shed};
use crate::service::{CloseReason, Service};
use crate::timer::{TimerId, TimerWheel};
use crate::tls::{TlsAcceptor, TlsConn};
use crate::udp::UdpId;
use crate::{ConnId, EngineConfig, ListenerId, ShardId};
use bytes::Bytes;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    Free,
    Open,
    /// The service has been told (`on_close`); the backend is releasing the socket.
    Closing,
}

pub(crate) struct ConnSlot {
    pub generation: u16,
    pub state: SlotState,
    pub listener: ListenerId,
    pub sendq: SendQueue,
    /// Close once the send queue is empty.
    pub close_after_flush: bool,
    /// Listed in `dirty` already.
    pub dirty: bool,
    /// Listed in `closing` already.
    pub close_listed: bool,
    pub close_reason: CloseReason,
    /// Write side shut down after a flush; reading and discarding until the peer closes or
    /// the linger time passes (so the peer reads our last bytes instead of a reset).
    pub lingering: bool,
    /// The peer has closed its sending side.
    pub peer_eof: bool,
    /// The address the peer connected from (IPv4-mapped IPv6 stored as IPv4); `None` when the
    /// backend could not tell. 17 bytes, which grow the slot from 80 to 96 bytes (320 KiB
    /// per shard at the default 20,000 slots).
    pub peer_ip: Option<IpAddr>,
    /// TLS state, on a TLS listener's connections (8 bytes in the slot; see `tls` for what a
    /// TLS connection holds). Then `sendq` holds sealed records, and what the service sends
    /// waits in `TlsConn::plain`.
    pub tls: Option<Box<TlsConn>>,
}

impl ConnSlot {
    /// Where the service's sends go: the TLS plaintext queue, or the send queue itself.
    fn service_queue(&mut self) -> &mut SendQueue {
        match self.tls.as_mut() {
            Some(tls) => &mut tls.plain,
            None => &mut self.sendq,
        }
    }

    /// Nothing left to write: no queued bytes, and nothing TLS still has to seal.
    pub(crate) fn all_sent(&self) -> bool {
        self.sendq.is_empty() && self.tls.as_ref().is_none_or(|t| t.is_drained())
    }

    /// Open and not yet asked to close: the service may still act on it.
    fn is_live(&self) -> bool {
        self.state == SlotState::Open && !self.close_listed && !self.lingering
    }

    /// Open and not yet asked to close (lingering included).
    pub(crate) fn is_open_slot(&self) -> bool {
        self.state == SlotState::Open && !self.close_listed
    }
}

/// The state a service acts on from its callbacks. Shard-local: not `Send`.
pub struct Ctx<M> {
    shard: ShardId,
    shards: usize,
    pub(crate) conns: Vec<ConnSlot>,
    free: Vec<u32>,
    open: usize,
    pub(crate) timers: TimerWheel,
    pub(crate) mesh: MeshPort<M>,
    pub(crate) counters: Arc<ShardCounters>,
    start: Instant,
    now_ms: u64,
    wall_ms: u64,
    pub(crate) dirty: Vec<u32>,
    pub(crate) closing: Vec<u32>,
    /// Connections whose write side the backend must shut down (lingering close).
    pub(crate) to_shutdown: Vec<u32>,
    /// Lingering connections by deadline (FIFO: every linger lasts `linger_ms`).
    linger_queue: std::collections::VecDeque<(u64, u32, u16)>,
    linger_ms: u64,
    /// Ring fds to post MSG_RING wakes to (io_uring backend only).
    pub(crate) msg_ring_wakes: Vec<i32>,
    pub(crate) draining: bool,
    pub(crate) drain_deadline_ms: u64,
    /// Datagrams queued this loop iteration.
    pub(crate) udp_out: crate::udp::UdpOut,
    /// Sends them (at the end of the iteration, or when the queue is full).
    pub(crate) udp_sender: crate::udp::UdpSender,
    /// This shard's UDP sockets' addresses, by [`UdpId`].
    pub(crate) udp_local: Vec<std::net::SocketAddr>,
    /// This shard's listeners' addresses, by [`ListenerId`].
    pub(crate) listener_local: Vec<std::net::SocketAddr>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<M: Send> Ctx<M> {
    /// This shard's id.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// Number of shards in the process.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Milliseconds since the shard started, on the monotonic clock, as of this loop
    /// iteration.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Milliseconds since the Unix epoch, read once per loop iteration with [`Ctx::now_ms`].
    /// For what leaves the process or must agree across threads (program date times, token
    /// expiry); timeouts use `now_ms`, which never jumps.
    pub fn wall_ms(&self) -> u64 {
        self.wall_ms
    }

    /// Queues a datagram to `to` on UDP socket `socket`; it goes out at the end of this loop
    /// iteration. False (nothing queued, counted) when it is over [`crate::DATAGRAM_MAX_BYTES`]
    /// or this iteration's queue is full (`EngineConfig::udp_out_max_bytes`).
    pub fn send_datagram(&mut self, socket: UdpId, to: std::net::SocketAddr, data: &[u8]) -> bool {
        let queued = (self.udp_out).push(&mut self.udp_sender, &self.counters, (socket, to, data));
        if !queued {
            ShardCounters::bump(&self.counters.udp_dropped, 1);
        }
        queued
    }

    /// The address this shard's UDP socket `socket` is bound to.
    pub fn udp_local_addr(&self, socket: UdpId) -> Option<std::net::SocketAddr> {
        self.udp_local.get(usize::from(socket.0)).copied()
    }

    /// The address this shard's listener `listener` is bound to (its own port for a
    /// listener per shard, [`crate::ListenerSpec::at_udp_port`]).
    pub fn listener_local_addr(&self, listener: ListenerId) -> Option<std::net::SocketAddr> {
        self.listener_local.get(usize::from(listener.0)).copied()
    }

    /// Connections open on this shard.
    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// Size of the connection table (`engine.max_connections`): slot indexes are below it.
    pub fn capacity(&self) -> usize {
        self.conns.len()
    }

    /// True once a graceful drain has begun: the service should finish what is in flight and
    /// close connections as they become idle.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// This shard's engine counters.
    pub fn counters(&self) -> &ShardCounters {
        &self.counters
    }

    /// True when `conn` is open (not closed or closing).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.slot(conn).is_some()
    }

    /// The IP address `conn`'s peer connected from, for per-address connection and rate
    /// limits; an IPv4 client of a dual-stack listener is given as IPv4, not IPv4-mapped
    /// IPv6. It answers from `on_accept` through `on_close` (included, so a count kept per
    /// address can be decremented there) and while the connection lingers; `None` once the
    /// slot is released (a stale id), or when the backend could not read an IP address.
    pub fn peer_ip(&self, conn: ConnId) -> Option<IpAddr> {
        self.conns
            .get(conn.slot as usize)
            .filter(|s| s.generation == conn.generation && s.state != SlotState::Free)
            .and_then(|s| s.peer_ip)
    }

    /// Queues `data` on `conn`. Returns false (and drops the data) when the connection is
    /// closed or closing.
    pub fn send(&mut self, conn: ConnId, data: Bytes) -> bool {
        let Some(slot) = self.slot_mut(conn) else {
            return false;
        };
        slot.service_queue().push(data);
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(conn.slot);
        }
        true
    }

    /// Queues `data` on `conn` as droppable: [`Ctx::shed_oldest`] may drop it before it is
    /// written (for broadcast data a slow reader can miss and ask for again).
    pub fn send_droppable(&mut self, conn: ConnId, data: Bytes) -> bool {
        let Some(slot) = self.slot_mut(conn) else {
            return false;
        };
        slot.service_queue().push_droppable(data);
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(conn.slot);
        }
        true
    }

    /// Drops droppable chunks queued on `conn`, oldest first, until at most `target_bytes`
    /// remain queued (chunks being written are kept whole).
    pub fn shed_oldest(&mut self, conn: ConnId, target_bytes: usize) -> Shed {
        match self.slot_mut(conn) {
            Some(slot) => {
                // Sealed records are never shed: only what is still plaintext.
                let sealed = slot.tls.is_some().then(|| slot.sendq.len_bytes());
                let target = target_bytes.saturating_sub(sealed.unwrap_or(0));
                slot.service_queue().shed_oldest(target)
            }
            None => Shed::default(),
        }
    }

    /// Bytes queued on `conn` and not yet written (0 for a closed connection); on a TLS
    /// connection, plaintext not yet sealed plus records not yet written.
    pub fn queued_bytes(&self, conn: ConnId) -> usize {
        self.slot(conn).map_or(0, |s| {
            s.sendq.len_bytes() + s.tls.as_ref().map_or(0, |t| t.plain.len_bytes())
        })
    }

    /// Chunks queued on `conn` and not yet written (plaintext and records on TLS).
    pub fn queued_chunks(&self, conn: ConnId) -> usize {
        self.slot(conn).map_or(0, |s| {
            s.sendq.len_chunks() + s.tls.as_ref().map_or(0, |t| t.plain.len_chunks())
        })
    }

    /// Closes `conn` now; queued data is dropped. `on_close` follows.
    pub fn close(&mut self, conn: ConnId) {
        if self.slot(conn).is_some() {
            self.list_close(conn.slot, CloseReason::Local);
        }
    }

    /// Closes `conn` once everything queued on it has been written.
    pub fn close_after_flush(&mut self, conn: ConnId) {
        let Some(slot) = self.slot_mut(conn) else {
            return;
        };
        slot.close_after_flush = true;
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(conn.slot);
        }
    }

    /// Arms a timer firing `after_ms` from now with `key`; `None` when the timer table
    /// (`engine.timers_max`) is full.
    pub fn timer_after(&mut self, after_ms: u64, key: u64) -> Option<TimerId> {
        let id = self.timers.set(self.now_ms + after_ms, key);
        if id.is_none() {
            ShardCounters::bump(&self.counters.timers_refused, 1);
        }
        id
    }

    /// Disarms a timer; false when it already fired or was cancelled.
    pub fn timer_cancel(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Sends `msg` to the control thread (blocking work: webhooks, stores). Never blocks.
    pub fn mesh_send_control(&mut self, msg: M) {
        let control = ShardId(self.shards as u16);
        self.mesh_send(control, msg);
    }

    /// Sends `msg` to shard `to` over the mesh. Never blocks, never drops.
    pub fn mesh_send(&mut self, to: ShardId, msg: M) {
        let wake = self.mesh.send(to.index(), msg);
        if let Wake::MsgRing(fd) = wake {
            self.msg_ring_wakes.push(fd);
        }
    }

    /// Lists `slot` for the backend's next flush.
    pub(crate) fn mark_dirty(&mut self, slot: u32) {
        let entry = &mut self.conns[slot as usize];
        if !entry.dirty {
            entry.dirty = true;
            self.dirty.push(slot);
        }
    }

    fn slot(&self, conn: ConnId) -> Option<&ConnSlot> {
        self.conns
            .get(conn.slot as usize)
            .filter(|s| s.generation == conn.generation && s.is_live())
    }

    fn slot_mut(&mut self, conn: ConnId) -> Option<&mut ConnSlot> {
        self.conns
            .get_mut(conn.slot as usize)
            .filter(|s| s.generation == conn.generation && s.is_live())
    }

    /// Everything queued was written and the connection should close: shut down the write
    /// side and linger (or close at once when the peer already closed its side).
    pub(crate) fn finish_after_flush(&mut self, slot: u32) {
        let now = self.now_ms;
        let linger_ms = self.linger_ms;
        let entry = &mut self.conns[slot as usize];
        if !entry.is_open_slot() || entry.lingering || !entry.all_sent() {
            return;
        }
        if entry.peer_eof || linger_ms == 0 {
            let reason = entry.close_reason;
            self.list_close(slot, reason);
            return;
        }
        entry.lingering = true;
        let generation = entry.generation;
        self.to_shutdown.push(slot);
        self.linger_queue
            .push_back((now + linger_ms, slot, generation));
    }

    /// Closes lingering connections whose time is up.
    pub(crate) fn expire_lingers(&mut self) {
        while let Some(&(deadline, slot, generation)) = self.linger_queue.front() {
            if deadline > self.now_ms {
                break;
            }
            self.linger_queue.pop_front();
            let entry = &self.conns[slot as usize];
            if entry.generation == generation && entry.lingering && entry.is_open_slot() {
                self.list_close(slot, CloseReason::Local);
            }
        }
    }

    pub(crate) fn list_close(&mut self, slot: u32, reason: CloseReason) {
        let entry = &mut self.conns[slot as usize];
        if entry.state == SlotState::Open && !entry.close_listed {
            entry.close_listed = true;
            entry.close_reason = reason;
            self.closing.push(slot);
        }
    }
}

/// A shard's service and its context, driven by a backend.
pub(crate) struct Core<S: Service> {
    pub service: S,
    pub cx: Ctx<S::Msg>,
    expired: Vec<(TimerId, u64)>,
    inbox: Vec<(usize, S::Msg)>,
    config: EngineConfig,
    /// Each listener's TLS acceptor, by listener index (`None`: plain TCP).
    tls: Vec<Option<Arc<TlsAcceptor>>>,
    /// Plaintext decrypted from one read, reused.
    pub(crate) tls_plain: Vec<u8>,
    /// Handshakes in progress by deadline (FIFO: every TLS listener has the same timeout).
    pub(crate) handshakes: std::collections::VecDeque<(u64, u32, u16)>,
}

impl<S: Service> Core<S> {
    pub fn new(
        service: S,
        shard: ShardId,
        shards: usize,
        mesh: MeshPort<S::Msg>,
        counters: Arc<ShardCounters>,
        config: &EngineConfig,
    ) -> Self {
        let capacity = config.max_connections as usize;
        let mut free: Vec<u32> = (0..capacity as u32).collect();
        free.reverse();
        Core {
            service,
            cx: Ctx {
                shard,
                shards,
                conns: (0..capacity)
                    .map(|_| ConnSlot {
                        generation: 0,
                        state: SlotState::Free,
                        listener: ListenerId(0),
                        sendq: SendQueue::default(),
                        close_after_flush: false,
                        dirty: false,
                        close_listed: false,
                        close_reason: CloseReason::Local,
                        lingering: false,
                        peer_eof: false,
                        peer_ip: None,
                        tls: None,
                    })
                    .collect(),
                free,
                open: 0,
                timers: TimerWheel::new(
                    config.timer_tick_ms,
                    config.timer_slots,
                    config.timers_max(),
                    0,
                ),
                mesh,
                counters,
                start: Instant::now(),
                now_ms: 0,
                wall_ms: 0,
                dirty: Vec::new(),
                closing: Vec::new(),
                to_shutdown: Vec::new(),
                linger_queue: std::collections::VecDeque::new(),
                linger_ms: config.linger_ms,
                msg_ring_wakes: Vec::new(),
                draining: false,
                drain_deadline_ms: u64::MAX,
                udp_out: crate::udp::UdpOut::new(config.udp_out_max_bytes),
                udp_sender: crate::udp::UdpSender::default(),
                udp_local: Vec::new(),
                listener_local: Vec::new(),
                _not_send: std::marker::PhantomData,
            },
            expired: Vec::new(),
            inbox: Vec::new(),
            config: config.clone(),
            tls: Vec::new(),
            tls_plain: Vec::new(),
            handshakes: std::collections::VecDeque::new(),
        }
    }

    /// Sets each listener's TLS acceptor, by listener index.
    pub fn set_tls(&mut self, acceptors: Vec<Option<Arc<TlsAcceptor>>>) {
        self.tls = acceptors;
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Refreshes the loop's notion of now.
    pub fn tick_clock(&mut self) {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.set_clock(self.cx.start.elapsed().as_millis() as u64, wall_ms);
    }

    /// Sets the loop's notion of now (the test harness's virtual clock). `now_ms` never goes
    /// back.
    pub fn set_clock(&mut self, now_ms: u64, wall_ms: u64) {
        debug_assert!(now_ms >= self.cx.now_ms, "the monotonic clock went back");
        self.cx.now_ms = now_ms;
        self.cx.wall_ms = wall_ms;
    }

    /// Takes a free slot for a connection accepted on `listener` from `peer_ip` and tells the
    /// service; `None` when the table is full (the caller closes the socket). An IPv4-mapped
    /// IPv6 address is stored as the IPv4 address it maps.
    pub fn open(&mut self, listener: ListenerId, peer_ip: Option<IpAddr>) -> Option<ConnId> {
        let slot = self.cx.free.pop()?;
        let entry = &mut self.cx.conns[slot as usize];
        debug_assert_eq!(entry.state, SlotState::Free);
        entry.state = SlotState::Open;
        entry.listener = listener;
        entry.peer_ip = peer_ip.map(|ip| ip.to_canonical());
        entry.close_after_flush = false;
        entry.dirty = false;
        entry.close_listed = false;
        entry.lingering = false;
        entry.peer_eof = false;
        entry.close_reason = CloseReason::Local;
        debug_assert!(entry.sendq.is_empty());
        let conn = ConnId {
            slot,
            generation: entry.generation,
        };
        self.cx.open += 1;
        let c = &self.cx.counters;
        ShardCounters::bump(&c.accepts, 1);
        ShardCounters::set(&c.connections_open, self.cx.open as u64);
        if let Some(acceptor) = self.tls.get(usize::from(listener.0)).cloned().flatten() {
            self.start_tls(slot, &acceptor);
        }
        self.service.on_accept(&mut self.cx, conn, listener);
        Some(conn)
    }

    /// The live id of `slot`, if open.
    pub fn conn_id(&self, slot: u32) -> Option<ConnId> {
        let entry = &self.cx.conns[slot as usize];
        entry.is_live().then_some(ConnId {
            slot,
            generation: entry.generation,
        })
    }

    /// Hands received bytes to the service (decrypted first on a TLS connection).
    /// Reads this shard's UDP sockets that are readable (at most `udp::RECV_PER_TICK`
    /// datagrams each) into the service; returns the indexes of sockets read dry, whose
    /// readiness must be awaited again.
    pub fn receive_datagrams(&mut self, udp: &mut crate::udp::UdpSockets) -> Vec<usize> {
        let mut dry = Vec::new();
        for index in 0..udp.readable.len() {
            if !udp.readable[index] {
                continue;
            }
            let counters = self.cx.counters.clone();
            let (service, cx) = (&mut self.service, &mut self.cx);
            let read_dry = udp.receive(index, &counters, |socket, from, data| {
                service.on_datagram(cx, socket, from, data);
            });
            if read_dry {
                dry.push(index);
            }
        }
        dry
    }

    /// Sends the datagrams the service queued.
    pub fn send_datagrams(&mut self) {
        let cx = &mut self.cx;
        if !cx.udp_out.is_empty() {
            cx.udp_sender.send(&mut cx.udp_out, &cx.counters);
        }
    }

    pub fn received(&mut self, slot: u32, data: &[u8]) {
        ShardCounters::bump(&self.cx.counters.bytes_in, data.len() as u64);
        // A lingering connection's input is read and dropped.
        let Some(conn) = self.conn_id(slot) else {
            return;
        };
        if self.cx.conns[slot as usize].tls.is_none() {
            self.service.on_recv(&mut self.cx, conn, data);
            return;
        }
        self.received_tls(slot, conn, data);
    }

    /// Records `n` bytes written from `slot`'s queue; tells the service when it drained.
    pub fn sent(&mut self, slot: u32, n: usize) {
        let entry = &mut self.cx.conns[slot as usize];
        entry.sendq.advance(n);
        ShardCounters::bump(&self.cx.counters.bytes_out, n as u64);
        let closing = entry.close_after_flush;
        if let Some(tls) = entry.tls.as_mut() {
            tls.seal(&mut entry.sendq, closing);
        }
        if !entry.all_sent() {
            return;
        }
        if let Some(conn) = self.conn_id(slot) {
            self.service.on_sent(&mut self.cx, conn);
        }
        let entry = &mut self.cx.conns[slot as usize];
        if entry.close_after_flush {
            // On TLS, `close_notify` goes out first.
            let closing = entry.close_after_flush;
            if let Some(tls) = entry.tls.as_mut() {
                tls.seal(&mut entry.sendq, closing);
            }
            if entry.all_sent() {
                self.cx.finish_after_flush(slot);
            }
        }
    }

    /// The peer finished sending (end of stream). What is already queued is still written —
    /// a client may half-close after its last request — and then the connection closes.
    pub fn peer_eof(&mut self, slot: u32) {
        let entry = &mut self.cx.conns[slot as usize];
        entry.peer_eof = true;
        if entry.lingering && entry.is_open_slot() {
            self.cx.list_close(slot, CloseReason::Local);
            return;
        }
        if !entry.is_live() {
            return;
        }
        if entry.all_sent() {
            self.cx.list_close(slot, CloseReason::PeerClosed);
        } else {
            entry.close_after_flush = true;
            entry.close_reason = CloseReason::PeerClosed;
        }
    }

    /// The slot is open (lingering included) and not yet asked to close.
    pub fn is_open_slot(&self, slot: u32) -> bool {
        self.cx.conns[slot as usize].is_open_slot()
    }

    /// Runs due timers (bounded per call), and ends lingers whose time is up.
    pub fn run_timers(&mut self) {
        self.cx.expire_lingers();
        self.expire_handshakes();
        self.expired.clear();
        let budget = self.config.max_timers_per_tick;
        self.cx
            .timers
            .poll_expired(self.cx.now_ms, budget, &mut self.expired);
        ShardCounters::bump(&self.cx.counters.timers_fired, self.expired.len() as u64);
        for i in 0..self.expired.len() {
            let (id, key) = self.expired[i];
            self.service.on_timer(&mut self.cx, id, key);
        }
        let armed = self.cx.timers.len() as u64;
        ShardCounters::set(&self.cx.counters.timers_armed, armed);
    }

    /// Delivers mesh messages (bounded per call). Returns true when a drain was requested.
    pub fn run_mesh(&mut self) -> bool {
        let mut drain = false;
        let budget = self.config.max_mesh_messages_per_tick;
        let Core {
            service, cx, inbox, ..
        } = self;
        // Messages are collected first: the service may send on the mesh while handling one.
        let taken = cx.mesh.receive(budget, |from, envelope| match envelope {
            Envelope::User(msg) => inbox.push((from, msg)),
            Envelope::Drain => drain = true,
        });
        ShardCounters::bump(&cx.counters.mesh_received, taken as u64);
        for (from, msg) in inbox.drain(..) {
            service.on_mesh(cx, ShardId(from as u16), msg);
        }
        let mut wakes = Vec::new();
        cx.mesh.flush_overflow(&mut wakes);
        for wake in wakes {
            if let Wake::MsgRing(fd) = wake {
                cx.msg_ring_wakes.push(fd);
            }
        }
        let stats = cx.mesh.stats();
        ShardCounters::set(&cx.counters.mesh_sent, stats.sent);
        ShardCounters::set(&cx.counters.mesh_overflowed, stats.overflowed);
        if drain && !cx.draining {
            cx.draining = true;
            cx.drain_deadline_ms = cx.now_ms + self.config.shutdown_grace_ms;
            service.on_drain(cx);
        }
        drain
    }

    /// Begins closing a connection because of the peer or an I/O error.
    pub fn peer_closed(&mut self, slot: u32, reason: CloseReason) {
        self.cx.list_close(slot, reason);
    }

    /// Takes the next connection to close: marks it closing and tells the service. The
    /// backend then releases the socket and calls [`Core::release`] when no op refers to it.
    pub fn next_close(&mut self) -> Option<u32> {
        let slot = self.cx.closing.pop()?;
        let entry = &mut self.cx.conns[slot as usize];
        debug_assert!(entry.close_listed);
        if entry.state != SlotState::Open {
            return self.next_close();
        }
        let conn = ConnId {
            slot,
            generation: entry.generation,
        };
        entry.state = SlotState::Closing;
        let reason = entry.close_reason;
        self.cx.open -= 1;
        ShardCounters::bump(&self.cx.counters.closes, 1);
        ShardCounters::set(&self.cx.counters.connections_open, self.cx.open as u64);
        self.service.on_close(&mut self.cx, conn, reason);
        Some(slot)
    }

    /// Returns a closed slot to the free list; its queue is dropped now that no op reads it.
    pub fn release(&mut self, slot: u32) {
        let entry = &mut self.cx.conns[slot as usize];
        assert_eq!(
            entry.state,
            SlotState::Closing,
            "release of a slot not closing"
        );
        entry.state = SlotState::Free;
        entry.generation = entry.generation.wrapping_add(1);
        entry.sendq.clear();
        entry.tls = None;
        entry.dirty = false;
        entry.peer_ip = None;
        self.cx.free.push(slot);
    }

    /// Takes the list of connections with new data queued (or a pending flush-close).
    pub fn take_dirty(&mut self, out: &mut Vec<u32>) {
        out.clear();
        std::mem::swap(out, &mut self.cx.dirty);
        for &slot in out.iter() {
            let entry = &mut self.cx.conns[slot as usize];
            entry.dirty = false;
            let closing = entry.close_after_flush;
            if let Some(tls) = entry.tls.as_mut() {
                if entry.state == SlotState::Open {
                    tls.seal(&mut entry.sendq, closing);
                }
            }
        }
    }

    /// True when the drain has finished or its grace period ran out.
    pub fn drain_done(&self) -> bool {
        self.cx.draining && (self.cx.open == 0 || self.cx.now_ms >= self.cx.drain_deadline_ms)
    }

    /// Milliseconds until the next timer (or drain, TLS handshake or linger deadline), for the
    /// wait.
    /// While mesh messages wait in the overflow list the wait is one millisecond: nothing
    /// wakes a sender when its receiver makes room, so it retries on a short tick instead.
    pub fn next_wait_ms(&self) -> Option<u64> {
        if self.cx.mesh.overflow_len() > 0 {
            return Some(1);
        }
        let timer = self.cx.timers.next_deadline_ms();
        let drain = self.cx.draining.then_some(self.cx.drain_deadline_ms);
        let handshake = self.handshakes.front().map(|&(deadline, _, _)| deadline);
        let linger = self
            .cx
            .linger_queue
            .front()
            .map(|&(deadline, _, _)| deadline);
        let deadline = [timer, drain, handshake, linger]
            .into_iter()
            .flatten()
            .min()?;
        Some(deadline.saturating_sub(self.cx.now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EngineConfig::max_connections` documents the per-slot memory; this keeps the figure
    /// honest (80 bytes before the peer address, 96 with it, 104 with the TLS pointer).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn slot_size_is_known() {
        assert_eq!(std::mem::size_of::<ConnSlot>(), 104);
    }
}
