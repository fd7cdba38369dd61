//! The mesh: one bounded lock-free ring for every ordered pair of threads, plus a doorbell per
//! thread so a parked shard wakes when a message arrives.
//!
//! A full ring never blocks the sender and never drops a message: the sender keeps a local
//! overflow list per destination and retries on its next loop iteration (and keeps order: once
//! a destination has overflow, new messages queue behind it).
//!
//! Parking protocol (a Dekker pair of SeqCst operations, so a wake cannot be lost):
//! the receiver sets `parked`, then checks its inboxes, then sleeps only if they were empty;
//! the sender pushes, then clears `parked` and rings the doorbell only if it was set.
//!
//! Memory: `endpoints² × ring_capacity × size_of::<Envelope<M>>()` for the rings, allocated at
//! start, plus whatever overflow the senders hold (bounded by what the services send).

use crossbeam_queue::ArrayQueue;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

/// What travels on a mesh ring: a service message or an engine command.
pub enum Envelope<M> {
    /// A message for the receiving shard's service.
    User(M),
    /// Begin a graceful drain: stop accepting, finish in-flight work, exit.
    Drain,
}

/// How a thread is woken.
pub struct Doorbell {
    parked: AtomicBool,
    /// An eventfd the owner waits on (always present: threads without a ring use it).
    eventfd: RawFd,
    /// The owner's io_uring fd when it has one and MSG_RING may be used, else -1.
    ring_fd: AtomicI32,
}

impl Doorbell {
    fn new() -> std::io::Result<Self> {
        Ok(Doorbell {
            parked: AtomicBool::new(false),
            eventfd: crate::sys::eventfd()?,
            ring_fd: AtomicI32::new(-1),
        })
    }

    /// The eventfd the owner must watch.
    pub fn eventfd(&self) -> RawFd {
        self.eventfd
    }

    /// Publishes the owner's ring fd so other ring owners may wake it with MSG_RING.
    pub fn set_ring_fd(&self, fd: RawFd) {
        self.ring_fd.store(fd, Ordering::Release);
    }

    fn ring(&self) {
        crate::sys::eventfd_signal(self.eventfd);
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        crate::sys::close_fd(self.eventfd);
    }
}

/// How a sender should wake a parked receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Nothing to do: the receiver was not parked.
    None,
    /// The eventfd was written.
    Eventfd,
    /// The caller owns an io_uring and should post an IORING_OP_MSG_RING to this ring fd.
    MsgRing(RawFd),
}

struct Shared<M> {
    endpoints: usize,
    /// `queues[from * endpoints + to]`; `None` on the diagonal.
    queues: Vec<Option<ArrayQueue<Envelope<M>>>>,
    doorbells: Vec<Doorbell>,
}

/// Builds the mesh for `endpoints` threads, each ring holding `ring_capacity` messages.
pub fn build<M: Send>(
    endpoints: usize,
    ring_capacity: usize,
) -> std::io::Result<Vec<MeshEndpoint<M>>> {
    assert!(endpoints >= 1 && ring_capacity >= 1);
    let mut queues = Vec::with_capacity(endpoints * endpoints);
    for from in 0..endpoints {
        for to in 0..endpoints {
            queues.push((from != to).then(|| ArrayQueue::new(ring_capacity)));
        }
    }
    let doorbells = (0..endpoints)
        .map(|_| Doorbell::new())
        .collect::<std::io::Result<Vec<_>>>()?;
    let shared = Arc::new(Shared {
        endpoints,
        queues,
        doorbells,
    });
    Ok((0..endpoints)
        .map(|id| MeshEndpoint {
            id,
            shared: shared.clone(),
            overflow: (0..endpoints).map(|_| VecDeque::new()).collect(),
            overflow_len: 0,
            may_use_msg_ring: false,
            stats: MeshStats::default(),
        })
        .collect())
}

/// Counts kept by one endpoint.
#[derive(Default, Clone, Copy, Debug)]
pub struct MeshStats {
    pub sent: u64,
    pub received: u64,
    pub overflowed: u64,
    pub wakes: u64,
}

/// One thread's end of the mesh. `Send` so it can be moved into its thread at start; it is
/// then used by that thread only.
pub struct MeshEndpoint<M> {
    id: usize,
    shared: Arc<Shared<M>>,
    overflow: Vec<VecDeque<Envelope<M>>>,
    overflow_len: usize,
    may_use_msg_ring: bool,
    stats: MeshStats,
}

impl<M: Send> MeshEndpoint<M> {
    /// This endpoint's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Number of endpoints in the mesh.
    pub fn endpoints(&self) -> usize {
        self.shared.endpoints
    }

    /// This endpoint's doorbell.
    pub fn doorbell(&self) -> &Doorbell {
        &self.shared.doorbells[self.id]
    }

    /// Lets [`MeshEndpoint::send`] ask for MSG_RING wakes (the caller owns an io_uring).
    pub fn enable_msg_ring(&mut self) {
        self.may_use_msg_ring = true;
    }

    /// Counts so far.
    pub fn stats(&self) -> MeshStats {
        self.stats
    }

    /// Messages held in overflow lists, waiting for ring space.
    pub fn overflow_len(&self) -> usize {
        self.overflow_len
    }

    /// Sends `envelope` to endpoint `to`. Never blocks, never drops. Returns how the receiver
    /// must be woken (the caller posts MSG_RING itself when asked to).
    pub fn send(&mut self, to: usize, envelope: Envelope<M>) -> Wake {
        assert!(
            to != self.id,
            "a thread does not send to itself over the mesh"
        );
        self.stats.sent += 1;
        let queue = self.queue(self.id, to);
        if self.overflow[to].is_empty() {
            if let Err(envelope) = queue.push(envelope) {
                self.overflow[to].push_back(envelope);
                self.overflow_len += 1;
                self.stats.overflowed += 1;
            }
        } else {
            self.overflow[to].push_back(envelope);
            self.overflow_len += 1;
            self.stats.overflowed += 1;
        }
        self.wake(to)
    }

    /// Moves overflowed messages into their rings while there is room, in order. Call once
    /// per loop iteration; `wakes` receives the wakes to perform.
    pub fn flush_overflow(&mut self, wakes: &mut Vec<Wake>) {
        if self.overflow_len == 0 {
            return;
        }
        for to in 0..self.shared.endpoints {
            let mut moved = false;
            while let Some(envelope) = self.overflow[to].pop_front() {
                match self.queue(self.id, to).push(envelope) {
                    Ok(()) => {
                        self.overflow_len -= 1;
                        moved = true;
                    }
                    Err(envelope) => {
                        self.overflow[to].push_front(envelope);
                        break;
                    }
                }
            }
            if moved {
                wakes.push(self.wake(to));
            }
        }
    }

    /// Takes up to `budget` messages from the inboxes, fairly across senders, calling `f`
    /// with the sender's index for each. Returns how many were taken.
    pub fn receive(&mut self, budget: usize, mut f: impl FnMut(usize, Envelope<M>)) -> usize {
        let n = self.shared.endpoints;
        let mut taken = 0;
        // Round-robin one message per sender per pass, so one chatty sender cannot starve.
        loop {
            let before = taken;
            for from in 0..n {
                if from == self.id || taken == budget {
                    continue;
                }
                if let Some(envelope) = self.queue(from, self.id).pop() {
                    taken += 1;
                    f(from, envelope);
                }
            }
            if taken == before || taken == budget {
                break;
            }
        }
        self.stats.received += taken as u64;
        taken
    }

    /// Marks this endpoint parked and reports whether it may sleep: false when a message is
    /// already waiting (then the endpoint is unparked again).
    pub fn park(&self) -> bool {
        let doorbell = self.doorbell();
        doorbell.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.has_incoming() {
            doorbell.parked.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Clears the parked mark after waking.
    pub fn unpark(&self) {
        self.doorbell().parked.store(false, Ordering::SeqCst);
    }

    /// True when any inbox holds a message.
    pub fn has_incoming(&self) -> bool {
        (0..self.shared.endpoints)
            .any(|from| from != self.id && !self.queue(from, self.id).is_empty())
    }

    fn wake(&mut self, to: usize) -> Wake {
        fence(Ordering::SeqCst);
        let doorbell = &self.shared.doorbells[to];
        if !doorbell.parked.load(Ordering::SeqCst) || !doorbell.parked.swap(false, Ordering::SeqCst)
        {
            return Wake::None;
        }
        self.stats.wakes += 1;
        let ring_fd = doorbell.ring_fd.load(Ordering::Acquire);
        if self.may_use_msg_ring && ring_fd >= 0 {
            Wake::MsgRing(ring_fd)
        } else {
            doorbell.ring();
            Wake::Eventfd
        }
    }

    fn queue(&self, from: usize, to: usize) -> &ArrayQueue<Envelope<M>> {
        self.shared.queues[from * self.shared.endpoints + to]
            .as_ref()
            .expect("no ring on the diagonal")
    }
}

/// A shard's way onto the mesh: an endpoint of the real rings, or, under the test harness
/// ([`crate::testing`]), two queues that the harness routes by hand so that a test can see,
/// hold back and reorder every message.
pub(crate) enum MeshPort<M> {
    /// An endpoint of the rings (a running shard).
    Ring(MeshEndpoint<M>),
    /// The harness's queues.
    Test(TestPort<M>),
}

/// The test harness's end of a shard: what the shard sent, not yet routed, and what was
/// routed to it, not yet received.
pub(crate) struct TestPort<M> {
    pub outbox: Vec<(usize, M)>,
    pub inbox: VecDeque<(usize, Envelope<M>)>,
    pub stats: MeshStats,
}

impl<M: Send> MeshPort<M> {
    /// A port for the test harness.
    pub fn test() -> Self {
        MeshPort::Test(TestPort {
            outbox: Vec::new(),
            inbox: VecDeque::new(),
            stats: MeshStats::default(),
        })
    }

    /// Sends `msg` to endpoint `to` (see [`MeshEndpoint::send`]).
    pub fn send(&mut self, to: usize, msg: M) -> Wake {
        match self {
            MeshPort::Ring(endpoint) => endpoint.send(to, Envelope::User(msg)),
            MeshPort::Test(port) => {
                port.stats.sent += 1;
                port.outbox.push((to, msg));
                Wake::None
            }
        }
    }

    /// Takes up to `budget` messages (see [`MeshEndpoint::receive`]).
    pub fn receive(&mut self, budget: usize, mut f: impl FnMut(usize, Envelope<M>)) -> usize {
        match self {
            MeshPort::Ring(endpoint) => endpoint.receive(budget, f),
            MeshPort::Test(port) => {
                let mut taken = 0;
                while taken < budget {
                    let Some((from, envelope)) = port.inbox.pop_front() else {
                        break;
                    };
                    taken += 1;
                    f(from, envelope);
                }
                port.stats.received += taken as u64;
                taken
            }
        }
    }

    /// Retries overflowed messages (see [`MeshEndpoint::flush_overflow`]); the test port has
    /// no rings and so never overflows.
    pub fn flush_overflow(&mut self, wakes: &mut Vec<Wake>) {
        if let MeshPort::Ring(endpoint) = self {
            endpoint.flush_overflow(wakes);
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> MeshStats {
        match self {
            MeshPort::Ring(endpoint) => endpoint.stats(),
            MeshPort::Test(port) => port.stats,
        }
    }

    /// Messages held in overflow lists.
    pub fn overflow_len(&self) -> usize {
        match self {
            MeshPort::Ring(endpoint) => endpoint.overflow_len(),
            MeshPort::Test(_) => 0,
        }
    }

    /// The ring endpoint. Backends own sockets and rings and run only shards built with a
    /// ring port; the harness never starts a backend.
    pub fn ring(&self) -> &MeshEndpoint<M> {
        match self {
            MeshPort::Ring(endpoint) => endpoint,
            MeshPort::Test(_) => unreachable!("a backend runs only shards with a ring port"),
        }
    }

    /// The ring endpoint, mutable (see [`MeshPort::ring`]).
    pub fn ring_mut(&mut self) -> &mut MeshEndpoint<M> {
        match self {
            MeshPort::Ring(endpoint) => endpoint,
            MeshPort::Test(_) => unreachable!("a backend runs only shards with a ring port"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(envelope: Envelope<u64>) -> u64 {
        match envelope {
            Envelope::User(v) => v,
            Envelope::Drain => panic!("unexpected drain"),
        }
    }

    #[test]
    fn order_is_kept_through_overflow() {
        let mut eps = build::<u64>(2, 4).unwrap();
        let mut b = eps.pop().unwrap();
        let mut a = eps.pop().unwrap();
        for i in 0..20 {
            a.send(1, Envelope::User(i));
        }
        assert_eq!(a.overflow_len(), 16);
        assert_eq!(a.stats().overflowed, 16);
        let mut got = Vec::new();
        let mut wakes = Vec::new();
        while got.len() < 20 {
            b.receive(3, |from, e| {
                assert_eq!(from, 0);
                got.push(user(e))
            });
            a.flush_overflow(&mut wakes);
        }
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert_eq!(a.overflow_len(), 0);
        // Sending again after overflow drained goes straight to the ring.
        a.send(1, Envelope::User(99));
        assert_eq!(a.overflow_len(), 0);
    }

    #[test]
    fn receive_is_fair_across_senders() {
        let mut eps = build::<u64>(3, 64).unwrap();
        for i in 0..10 {
            eps[0].send(2, Envelope::User(i));
            eps[1].send(2, Envelope::User(100 + i));
        }
        let mut from = Vec::new();
        eps[2].receive(4, |f, _| from.push(f));
        assert_eq!(from, vec![0, 1, 0, 1]);
    }

    #[test]
    fn parked_receiver_is_woken_once() {
        let mut eps = build::<u64>(2, 8).unwrap();
        assert!(eps[1].park());
        assert_eq!(eps[0].send(1, Envelope::User(1)), Wake::Eventfd);
        // Already woken: the next send does not ring again.
        assert_eq!(eps[0].send(1, Envelope::User(2)), Wake::None);
        // With messages waiting, park refuses to sleep.
        assert!(!eps[1].park());
        assert_eq!(crate::sys::eventfd_drain(eps[1].doorbell().eventfd()), 1);
    }

    #[test]
    fn msg_ring_wake_is_requested_when_enabled() {
        let mut eps = build::<u64>(2, 8).unwrap();
        eps[0].enable_msg_ring();
        eps[1].doorbell().set_ring_fd(42);
        assert!(eps[1].park());
        assert_eq!(eps[0].send(1, Envelope::User(1)), Wake::MsgRing(42));
    }

    #[test]
    fn threads_exchange_a_million_messages_in_order() {
        let mut eps = build::<u64>(2, 256).unwrap();
        let mut rx = eps.pop().unwrap();
        let mut tx = eps.pop().unwrap();
        const N: u64 = 1_000_000;
        let sender = std::thread::spawn(move || {
            let mut wakes = Vec::new();
            for i in 0..N {
                tx.send(1, Envelope::User(i));
                if i % 64 == 0 {
                    tx.flush_overflow(&mut wakes);
                }
            }
            while tx.overflow_len() > 0 {
                tx.flush_overflow(&mut wakes);
                std::thread::yield_now();
            }
        });
        let mut next = 0;
        while next < N {
            let n = rx.receive(1024, |_, e| {
                assert_eq!(user(e), next);
                next += 1;
            });
            if n == 0 {
                if rx.park() {
                    crate::sys::eventfd_wait(rx.doorbell().eventfd(), 100);
                }
                rx.unpark();
            }
        }
        sender.join().unwrap();
    }
}
