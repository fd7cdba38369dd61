//! A deterministic harness for services: shards without sockets or threads, on a virtual
//! clock.
//!
//! [`TestShards`] builds one service per shard with the factory a real [`crate::launch`]
//! takes, and drives each through the same `Core` a backend drives, in the same order per
//! step: injected completions (an accept, bytes in, a peer close) → timers → mesh → `poll` →
//! writes and closes. Where a backend would touch a socket, the harness records instead:
//!
//! - the bytes each connection wrote, as its client would read them ([`TestShards::read`]),
//!   with an optional read window to play a slow client ([`TestShards::set_read_window`]);
//! - each connection's close and why ([`TestShards::closed`]), and a lingering close's
//!   shutdown of the write side ([`TestShards::write_shut`]);
//! - every mesh message, which waits in an in-flight list until the harness routes it, so a
//!   test can look at messages ([`TestShards::in_flight`]), hold them back
//!   ([`TestShards::hold_mesh`]) or take and re-inject them in another order;
//! - messages to the threads that are not shards (the control thread and workers), which the
//!   test takes with [`TestShards::take_outside`] and answers with
//!   [`TestShards::send_from_outside`].
//!
//! Time moves only when the test says so ([`TestShards::advance`]), from one timer deadline
//! to the next, as a real loop would wake; `Ctx::now_ms` and `Ctx::wall_ms` read the virtual
//! clock. Every call that injects an event settles the shards afterwards: it runs steps until
//! no mesh message can be delivered and no write or close is pending.
//!
//! Shards run one after another on the calling thread, which is one of the interleavings a
//! real process can produce; a test that needs another one holds the mesh.

use crate::core::Core;
use crate::counters::ShardCounters;
use crate::mesh::{Envelope, MeshPort};
use crate::runtime::{RuntimeInfo, ShardInfo};
use crate::service::{CloseReason, Service};
use crate::{ConnId, Ctx, EngineConfig, ListenerId, ShardId};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The wall clock at virtual time 0: 2026-01-01T00:00:00Z, so wall times in tests are
/// realistic and repeatable.
pub const WALL_ORIGIN_MS: u64 = 1_767_225_600_000;

/// Steps one settle may take before the harness calls it a livelock (services that keep
/// sending each other messages forever).
const SETTLE_STEPS_MAX: usize = 100_000;

/// One mesh message on its way.
pub struct MeshMessage<M> {
    pub from: ShardId,
    pub to: ShardId,
    pub msg: M,
}

/// The client side of one connection slot.
#[derive(Default)]
struct Peer {
    /// The connection currently in the slot.
    conn: Option<ConnId>,
    /// Bytes the service wrote that the test has not read yet.
    received: Vec<u8>,
    /// Bytes the client still reads before it stops reading (`None`: it reads everything).
    read_window: Option<usize>,
    /// The service shut down its write side (a lingering close).
    write_shut: bool,
    /// The connection closed, and why.
    closed: Option<CloseReason>,
}

/// Shards under test. See the module documentation.
pub struct TestShards<S: Service> {
    cores: Vec<Core<S>>,
    info: Arc<RuntimeInfo>,
    now_ms: u64,
    in_flight: VecDeque<MeshMessage<S::Msg>>,
    mesh_held: bool,
    /// Messages to the endpoints after the shards (control, then workers).
    outside: Vec<Vec<(ShardId, S::Msg)>>,
    peers: Vec<Vec<Peer>>,
    dirty: Vec<u32>,
}

impl<S: Service> TestShards<S> {
    /// `shards` shards, each running the service `factory` builds for it. The connection
    /// table, timer wheel and budgets come from `config`; `config.worker_endpoints` says how
    /// many worker endpoints exist after the control thread's.
    pub fn new(shards: usize, config: EngineConfig, factory: impl Fn(&ShardInfo) -> S) -> Self {
        Self::with_tls(shards, config, Vec::new(), factory)
    }

    /// As [`TestShards::new`], with each listener's TLS acceptor by listener index (`None`:
    /// plain TCP): the test's peers then speak TLS to those listeners.
    pub fn with_tls(
        shards: usize,
        config: EngineConfig,
        tls: Vec<Option<Arc<crate::TlsAcceptor>>>,
        factory: impl Fn(&ShardInfo) -> S,
    ) -> Self {
        assert!((1..=u16::MAX as usize / 2).contains(&shards));
        let counters: Vec<Arc<ShardCounters>> = (0..shards)
            .map(|_| Arc::new(ShardCounters::default()))
            .collect();
        let info = Arc::new(RuntimeInfo {
            backend: "test",
            backend_reason: "the test harness".to_string(),
            features: Vec::new(),
            listeners: Vec::new(),
            listener_addrs: Vec::new(),
            udp: Vec::new(),
            cores: vec![None; shards],
            counters: counters.clone(),
            engine: config.clone(),
        });
        let cores = (0..shards)
            .map(|index| {
                let shard = ShardId(index as u16);
                let service = factory(&ShardInfo {
                    shard,
                    runtime: info.clone(),
                });
                let mut core = Core::new(
                    service,
                    shard,
                    shards,
                    MeshPort::test(),
                    counters[index].clone(),
                    &config,
                );
                core.set_clock(0, WALL_ORIGIN_MS);
                core.set_tls(tls.clone());
                core
            })
            .collect();
        let capacity = config.max_connections as usize;
        TestShards {
            cores,
            info,
            now_ms: 0,
            in_flight: VecDeque::new(),
            mesh_held: false,
            outside: (0..1 + config.worker_endpoints)
                .map(|_| Vec::new())
                .collect(),
            peers: (0..shards)
                .map(|_| (0..capacity).map(|_| Peer::default()).collect())
                .collect(),
            dirty: Vec::new(),
        }
    }

    /// What a service factory is told about the process.
    pub fn info(&self) -> &Arc<RuntimeInfo> {
        &self.info
    }

    /// The virtual monotonic clock, in milliseconds since the harness started.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The control thread's mesh address.
    pub fn control_id(&self) -> ShardId {
        ShardId(self.cores.len() as u16)
    }

    /// The mesh address of worker `index`.
    pub fn worker_id(&self, index: usize) -> ShardId {
        assert!(index + 1 < self.outside.len(), "no worker {index}");
        ShardId((self.cores.len() + 1 + index) as u16)
    }

    /// The service of `shard`.
    pub fn service(&self, shard: ShardId) -> &S {
        &self.cores[shard.index()].service
    }

    /// The context of `shard`.
    pub fn ctx(&self, shard: ShardId) -> &Ctx<S::Msg> {
        &self.cores[shard.index()].cx
    }

    /// Runs `f` on the service of `shard` with its context (as if from one of its
    /// callbacks), then settles.
    pub fn with<R>(&mut self, shard: ShardId, f: impl FnOnce(&mut S, &mut Ctx<S::Msg>) -> R) -> R {
        let core = &mut self.cores[shard.index()];
        let result = f(&mut core.service, &mut core.cx);
        self.settle();
        result
    }

    /// Engine counters of `shard`.
    pub fn counters(&self, shard: ShardId) -> &ShardCounters {
        self.cores[shard.index()].cx.counters()
    }

    /// Timers armed on `shard`.
    pub fn timers_armed(&self, shard: ShardId) -> usize {
        self.cores[shard.index()].cx.timers.len()
    }

    /// A client connects to `listener` on `shard` from 127.0.0.1: the service's `on_accept`
    /// runs. `None` when the connection table is full (a backend closes such a socket at
    /// once).
    pub fn connect(&mut self, shard: ShardId, listener: ListenerId) -> Option<ConnId> {
        self.connect_from(shard, listener, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// As [`TestShards::connect`], from `ip`, which `Ctx::peer_ip` then reports (an
    /// IPv4-mapped IPv6 address as the IPv4 address, as on a real dual-stack listener).
    pub fn connect_from(
        &mut self,
        shard: ShardId,
        listener: ListenerId,
        ip: IpAddr,
    ) -> Option<ConnId> {
        let core = &mut self.cores[shard.index()];
        let conn = core.open(listener, Some(ip))?;
        self.peers[shard.index()][conn.slot()] = Peer {
            conn: Some(conn),
            ..Peer::default()
        };
        self.settle();
        Some(conn)
    }

    /// The client sends `data`; the service's `on_recv` gets it in one piece.
    pub fn write(&mut self, shard: ShardId, conn: ConnId, data: &[u8]) {
        let slot = self.slot_of(shard, conn);
        self.cores[shard.index()].received(slot, data);
        self.settle();
    }

    /// A datagram from `from` arrives at `shard`'s UDP socket `socket`.
    pub fn datagram(
        &mut self,
        shard: ShardId,
        socket: crate::UdpId,
        from: std::net::SocketAddr,
        data: &[u8],
    ) {
        let core = &mut self.cores[shard.index()];
        core.service.on_datagram(&mut core.cx, socket, from, data);
        self.settle();
    }

    /// The datagrams `shard` sent since the last call: socket, destination, bytes.
    pub fn take_datagrams(
        &mut self,
        shard: ShardId,
    ) -> Vec<(crate::UdpId, std::net::SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        self.cores[shard.index()]
            .cx
            .udp_out
            .drain(|socket, to, data| out.push((socket, to, data.to_vec())));
        out
    }

    /// The client half-closes (end of stream): what is queued is still written, then the
    /// connection closes.
    pub fn shutdown(&mut self, shard: ShardId, conn: ConnId) {
        let slot = self.slot_of(shard, conn);
        self.cores[shard.index()].peer_eof(slot);
        self.settle();
    }

    /// The connection breaks with `errno` (a reset).
    pub fn reset(&mut self, shard: ShardId, conn: ConnId, errno: i32) {
        let slot = self.slot_of(shard, conn);
        if self.cores[shard.index()].is_open_slot(slot) {
            self.cores[shard.index()].peer_closed(slot, CloseReason::Error(errno));
        }
        self.settle();
    }

    /// Takes the bytes the service wrote to `conn` that the client has not read yet.
    pub fn read(&mut self, shard: ShardId, conn: ConnId) -> Vec<u8> {
        let peer = self.peer_mut(shard, conn);
        std::mem::take(&mut peer.received)
    }

    /// Limits what the client reads from now on to `window` more bytes (`None`: everything);
    /// the rest stays queued on the server, as behind a full socket buffer. Opening the
    /// window writes what waits.
    pub fn set_read_window(&mut self, shard: ShardId, conn: ConnId, window: Option<usize>) {
        let slot = self.slot_of(shard, conn) as usize;
        self.peers[shard.index()][slot].read_window = window;
        self.write_slot(shard.index(), slot as u32);
        self.settle();
    }

    /// Bytes queued on `conn` and not yet written to its client.
    pub fn queued_bytes(&self, shard: ShardId, conn: ConnId) -> usize {
        self.cores[shard.index()].cx.queued_bytes(conn)
    }

    /// How `conn` closed, once it has (`on_close` ran).
    pub fn closed(&self, shard: ShardId, conn: ConnId) -> Option<CloseReason> {
        let peer = &self.peers[shard.index()][conn.slot()];
        if peer.conn == Some(conn) {
            peer.closed
        } else {
            // The slot was reused: this connection closed long ago.
            Some(CloseReason::Local)
        }
    }

    /// True once the service shut down the write side of `conn` (a lingering close: the
    /// client reads end of stream).
    pub fn write_shut(&self, shard: ShardId, conn: ConnId) -> bool {
        let peer = &self.peers[shard.index()][conn.slot()];
        peer.conn == Some(conn) && (peer.write_shut || peer.closed.is_some())
    }

    /// Moves the virtual clock forward by `ms`, stopping at every timer deadline on the way
    /// (as a real loop wakes for each), and settles.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now_ms + ms;
        loop {
            let next = self
                .cores
                .iter()
                .filter_map(|core| core.next_wait_ms().map(|wait| core.cx.now_ms() + wait))
                .min()
                .filter(|&at| at <= target);
            let Some(at) = next else {
                break;
            };
            self.now_ms = self.now_ms.max(at);
            self.settle();
            if at >= target {
                break;
            }
        }
        self.now_ms = target;
        self.settle();
    }

    /// Mesh messages sent and not yet delivered, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = &MeshMessage<S::Msg>> {
        self.in_flight.iter()
    }

    /// While held, mesh messages between shards stay in flight; releasing delivers them.
    pub fn hold_mesh(&mut self, held: bool) {
        self.mesh_held = held;
        self.settle();
    }

    /// Takes every in-flight message out of the harness (for a test to drop, inspect or
    /// re-inject with [`TestShards::inject`] in another order).
    pub fn take_in_flight(&mut self) -> Vec<MeshMessage<S::Msg>> {
        self.in_flight.drain(..).collect()
    }

    /// Puts a message in flight as if `from` had sent it (to a shard), and settles.
    pub fn inject(&mut self, from: ShardId, to: ShardId, msg: S::Msg) {
        assert!(to.index() < self.cores.len(), "inject to a shard");
        self.in_flight.push_back(MeshMessage { from, to, msg });
        self.settle();
    }

    /// Sends `msg` from the control thread or a worker to shard `to`, and settles.
    pub fn send_from_outside(&mut self, from: ShardId, to: ShardId, msg: S::Msg) {
        assert!(
            from.index() >= self.cores.len(),
            "from a thread that is not a shard"
        );
        self.inject(from, to, msg);
    }

    /// Takes the messages the shards sent to the control thread or a worker (`to`).
    pub fn take_outside(&mut self, to: ShardId) -> Vec<(ShardId, S::Msg)> {
        let index = to
            .index()
            .checked_sub(self.cores.len())
            .expect("the control thread or a worker");
        std::mem::take(&mut self.outside[index])
    }

    /// Starts a graceful drain on every shard (as SIGTERM does), and settles.
    pub fn drain(&mut self) {
        for core in &mut self.cores {
            if let MeshPort::Test(port) = &mut core.cx.mesh {
                port.inbox.push_back((self.info.shards(), Envelope::Drain));
            }
        }
        self.settle();
    }

    /// True once `shard`'s drain has finished or its grace period ran out.
    pub fn drain_done(&self, shard: ShardId) -> bool {
        self.cores[shard.index()].drain_done()
    }

    /// Runs steps until nothing is left to do now: no deliverable mesh message, no pending
    /// write or close, no due timer.
    pub fn settle(&mut self) {
        for _ in 0..SETTLE_STEPS_MAX {
            if !self.mesh_held {
                self.deliver();
            }
            for shard in 0..self.cores.len() {
                self.step(shard);
            }
            if self.quiet() {
                return;
            }
        }
        panic!("shards did not settle in {SETTLE_STEPS_MAX} steps (a message loop?)");
    }

    fn quiet(&self) -> bool {
        let deliverable = !self.mesh_held && !self.in_flight.is_empty();
        let busy = self.cores.iter().any(|core| {
            let inbox = match &core.cx.mesh {
                MeshPort::Test(port) => !port.inbox.is_empty(),
                MeshPort::Ring(_) => false,
            };
            inbox || !core.cx.dirty.is_empty() || !core.cx.closing.is_empty()
        });
        !deliverable && !busy && self.cores.iter().all(|c| c.next_wait_ms() != Some(0))
    }

    /// Moves in-flight messages into their shards' inboxes.
    fn deliver(&mut self) {
        while let Some(message) = self.in_flight.pop_front() {
            let core = &mut self.cores[message.to.index()];
            if let MeshPort::Test(port) = &mut core.cx.mesh {
                port.inbox
                    .push_back((message.from.index(), Envelope::User(message.msg)));
            }
        }
    }

    /// One loop iteration of `shard`, as a backend runs it after its completions.
    fn step(&mut self, shard: usize) {
        let wall_ms = WALL_ORIGIN_MS + self.now_ms;
        let core = &mut self.cores[shard];
        core.set_clock(self.now_ms, wall_ms);
        core.run_timers();
        core.run_mesh();
        core.service.poll(&mut core.cx);
        if core.drain_done() && core.cx.open_connections() > 0 {
            for slot in 0..core.cx.capacity() as u32 {
                if core.is_open_slot(slot) {
                    core.peer_closed(slot, CloseReason::Shutdown);
                }
            }
        }
        self.flush(shard);
        self.route(shard);
    }

    /// Writes and closes, as a backend's flush does.
    fn flush(&mut self, shard: usize) {
        loop {
            let core = &mut self.cores[shard];
            while let Some(slot) = core.cx.to_shutdown.pop() {
                self.peers[shard][slot as usize].write_shut = true;
            }
            while let Some(slot) = core.next_close() {
                let reason = core.cx.conns[slot as usize].close_reason;
                self.peers[shard][slot as usize].closed = Some(reason);
                core.release(slot);
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            core.take_dirty(&mut dirty);
            for &slot in &dirty {
                self.write_slot(shard, slot);
            }
            self.dirty = dirty;
            let cx = &self.cores[shard].cx;
            if cx.closing.is_empty() && cx.dirty.is_empty() && cx.to_shutdown.is_empty() {
                return;
            }
        }
    }

    /// Writes what the client's read window allows from `slot`'s queue.
    fn write_slot(&mut self, shard: usize, slot: u32) {
        let core = &mut self.cores[shard];
        loop {
            if core.conn_id(slot).is_none() {
                return;
            }
            let entry = &core.cx.conns[slot as usize];
            if entry.sendq.is_empty() {
                if entry.close_after_flush {
                    core.cx.finish_after_flush(slot);
                }
                return;
            }
            let peer = &mut self.peers[shard][slot as usize];
            let mut budget = peer.read_window.unwrap_or(usize::MAX);
            if budget == 0 {
                return;
            }
            let mut written = 0;
            for chunk in entry.sendq.chunks() {
                let take = chunk.len().min(budget);
                peer.received.extend_from_slice(&chunk[..take]);
                written += take;
                budget -= take;
                if budget == 0 {
                    break;
                }
            }
            if let Some(window) = peer.read_window.as_mut() {
                *window -= written;
            }
            core.sent(slot, written);
        }
    }

    /// Takes what `shard` sent on the mesh: to shards into flight, the rest to `outside`.
    fn route(&mut self, shard: usize) {
        let MeshPort::Test(port) = &mut self.cores[shard].cx.mesh else {
            return;
        };
        let shards = self.info.shards();
        for (to, msg) in port.outbox.drain(..) {
            let from = ShardId(shard as u16);
            if to < shards {
                self.in_flight.push_back(MeshMessage {
                    from,
                    to: ShardId(to as u16),
                    msg,
                });
            } else {
                self.outside[to - shards].push((from, msg));
            }
        }
    }

    fn slot_of(&self, shard: ShardId, conn: ConnId) -> u32 {
        let peer = &self.peers[shard.index()][conn.slot()];
        assert!(
            peer.conn == Some(conn) && peer.closed.is_none(),
            "connection {conn:?} on shard {shard:?} is not open"
        );
        conn.slot() as u32
    }

    fn peer_mut(&mut self, shard: ShardId, conn: ConnId) -> &mut Peer {
        let peer = &mut self.peers[shard.index()][conn.slot()];
        assert_eq!(
            peer.conn,
            Some(conn),
            "connection {conn:?} is not in its slot"
        );
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimerId;
    use bytes::Bytes;

    /// Echoes lines through the next shard; closes a connection idle for 1 s.
    struct Relay {
        conns: Vec<Option<ConnId>>,
        tails: Vec<Vec<u8>>,
        timers: Vec<Option<TimerId>>,
        closed: Vec<CloseReason>,
    }

    enum Hop {
        Out(u16, ConnId, Bytes),
        Back(ConnId, Bytes),
    }

    impl Service for Relay {
        type Msg = Hop;

        fn on_accept(&mut self, cx: &mut Ctx<Hop>, conn: ConnId, _listener: ListenerId) {
            self.conns[conn.slot()] = Some(conn);
            self.timers[conn.slot()] = cx.timer_after(1000, conn.slot() as u64);
        }

        fn on_recv(&mut self, cx: &mut Ctx<Hop>, conn: ConnId, data: &[u8]) {
            if let Some(timer) = self.timers[conn.slot()].take() {
                cx.timer_cancel(timer);
            }
            self.timers[conn.slot()] = cx.timer_after(1000, conn.slot() as u64);
            self.tails[conn.slot()].extend_from_slice(data);
            while let Some(end) = self.tails[conn.slot()].iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.tails[conn.slot()].drain(..=end).collect();
                let next = ShardId(((cx.shard().index() + 1) % cx.shards()) as u16);
                cx.mesh_send(next, Hop::Out(cx.shard().0, conn, Bytes::from(line)));
            }
        }

        fn on_close(&mut self, cx: &mut Ctx<Hop>, conn: ConnId, reason: CloseReason) {
            if let Some(timer) = self.timers[conn.slot()].take() {
                cx.timer_cancel(timer);
            }
            self.conns[conn.slot()] = None;
            self.closed.push(reason);
        }

        fn on_timer(&mut self, cx: &mut Ctx<Hop>, id: TimerId, key: u64) {
            let slot = key as usize;
            if self.timers[slot] == Some(id) {
                self.timers[slot] = None;
                if let Some(conn) = self.conns[slot] {
                    cx.close(conn);
                }
            }
        }

        fn on_mesh(&mut self, cx: &mut Ctx<Hop>, _from: ShardId, msg: Hop) {
            match msg {
                Hop::Out(origin, conn, line) => {
                    cx.mesh_send(ShardId(origin), Hop::Back(conn, line))
                }
                Hop::Back(conn, line) => {
                    cx.send(conn, line);
                }
            }
        }
    }

    fn relay(shards: usize) -> TestShards<Relay> {
        let config = EngineConfig {
            max_connections: 8,
            ..EngineConfig::default()
        };
        TestShards::new(shards, config, |_| Relay {
            conns: vec![None; 8],
            tails: vec![Vec::new(); 8],
            timers: vec![None; 8],
            closed: Vec::new(),
        })
    }

    #[test]
    fn lines_cross_the_mesh_and_come_back_in_order() {
        let mut t = relay(3);
        let a = ShardId(0);
        let conn = t.connect(a, ListenerId(0)).unwrap();
        t.hold_mesh(true);
        t.write(a, conn, b"one\ntwo\n");
        let held: Vec<_> = t.in_flight().map(|m| (m.from, m.to)).collect();
        assert_eq!(held, vec![(ShardId(0), ShardId(1)); 2]);
        assert!(t.read(a, conn).is_empty());
        t.hold_mesh(false);
        assert_eq!(t.read(a, conn), b"one\ntwo\n");
        let received = &t.counters(ShardId(1)).mesh_received;
        assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn a_slow_client_keeps_bytes_queued_until_it_reads() {
        let mut t = relay(1);
        let s = ShardId(0);
        let conn = t.connect(s, ListenerId(0)).unwrap();
        t.set_read_window(s, conn, Some(3));
        t.write(s, conn, b"hello\n");
        assert_eq!(t.read(s, conn), b"hel");
        assert_eq!(t.queued_bytes(s, conn), 3);
        t.set_read_window(s, conn, None);
        assert_eq!(t.read(s, conn), b"lo\n");
        assert_eq!(t.queued_bytes(s, conn), 0);
    }

    #[test]
    fn the_virtual_clock_fires_timers_at_their_deadline_and_closes_run_on_close() {
        let mut t = relay(1);
        let s = ShardId(0);
        let conn = t.connect(s, ListenerId(0)).unwrap();
        assert_eq!(t.timers_armed(s), 1);
        t.advance(990);
        assert_eq!(t.timers_armed(s), 1);
        assert_eq!(t.closed(s, conn), None);
        t.advance(20);
        assert_eq!(t.timers_armed(s), 0, "fired at 1000 ms");
        assert_eq!(
            t.closed(s, conn),
            Some(CloseReason::Local),
            "closed when idle"
        );
        assert_eq!(t.service(s).closed, vec![CloseReason::Local]);
        let again = t.connect(s, ListenerId(0)).unwrap();
        t.with(s, |_, cx| cx.close(again));
        assert_eq!(t.closed(s, again), Some(CloseReason::Local));
    }

    #[test]
    fn peer_addresses_are_reported_until_the_slot_is_released() {
        let mut t = relay(1);
        let s = ShardId(0);
        let local = t.connect(s, ListenerId(0)).unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let remote = t.connect_from(s, ListenerId(0), ip).unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let six = t.connect_from(s, ListenerId(0), v6).unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.9".parse().unwrap();
        let four = t.connect_from(s, ListenerId(0), mapped).unwrap();
        assert_eq!(t.ctx(s).peer_ip(local), Some(Ipv4Addr::LOCALHOST.into()));
        assert_eq!(t.ctx(s).peer_ip(remote), Some(ip));
        assert_eq!(t.ctx(s).peer_ip(six), Some(v6));
        assert_eq!(
            t.ctx(s).peer_ip(four),
            Some("198.51.100.9".parse().unwrap()),
            "IPv4-mapped IPv6 is reported as IPv4"
        );
        t.with(s, |_, cx| cx.close(remote));
        assert_eq!(t.ctx(s).peer_ip(remote), None, "a stale id has no address");
        // The slot is reused; the old id still reports nothing, the new one its own address.
        let next = t.connect_from(s, ListenerId(0), v6).unwrap();
        assert_eq!(next.slot(), remote.slot());
        assert_eq!(t.ctx(s).peer_ip(remote), None);
        assert_eq!(t.ctx(s).peer_ip(next), Some(v6));
    }

    /// Counts connections per peer address: up in `on_accept`, down in `on_close`.
    struct PerAddress {
        open: std::collections::HashMap<IpAddr, usize>,
    }

    impl Service for PerAddress {
        type Msg = ();

        fn on_accept(&mut self, cx: &mut Ctx<()>, conn: ConnId, _listener: ListenerId) {
            let ip = cx.peer_ip(conn).expect("an address in on_accept");
            *self.open.entry(ip).or_default() += 1;
        }

        fn on_recv(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _data: &[u8]) {}

        fn on_close(&mut self, cx: &mut Ctx<()>, conn: ConnId, _reason: CloseReason) {
            let ip = cx.peer_ip(conn).expect("an address in on_close");
            let count = self.open.get_mut(&ip).expect("counted at accept");
            *count -= 1;
            if *count == 0 {
                self.open.remove(&ip);
            }
        }
    }

    #[test]
    fn the_peer_address_is_there_in_on_close() {
        let config = EngineConfig {
            max_connections: 4,
            ..EngineConfig::default()
        };
        let mut t = TestShards::new(1, config, |_| PerAddress {
            open: Default::default(),
        });
        let s = ShardId(0);
        let a = "192.0.2.1".parse().unwrap();
        let first = t.connect_from(s, ListenerId(0), a).unwrap();
        let second = t.connect_from(s, ListenerId(0), a).unwrap();
        let other = t.connect(s, ListenerId(0)).unwrap();
        assert_eq!(t.service(s).open.get(&a), Some(&2));
        t.reset(s, first, libc::ECONNRESET);
        t.shutdown(s, other);
        assert_eq!(t.service(s).open.get(&a), Some(&1));
        assert_eq!(t.service(s).open.len(), 1);
        t.with(s, |_, cx| cx.close(second));
        assert!(t.service(s).open.is_empty());
    }

    #[test]
    fn a_client_half_close_flushes_then_closes() {
        let mut t = relay(2);
        let s = ShardId(1);
        let conn = t.connect(s, ListenerId(0)).unwrap();
        t.hold_mesh(true);
        t.write(s, conn, b"bye\n");
        t.shutdown(s, conn);
        assert_eq!(t.closed(s, conn), Some(CloseReason::PeerClosed));
        t.hold_mesh(false);
        assert!(
            t.read(s, conn).is_empty(),
            "a closed connection gets nothing"
        );
    }
}
