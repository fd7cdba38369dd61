//! Who does what in a `ws` run: which room each connection joins, which connections send and
//! on what schedule, which process and thread owns a connection, and which source address it
//! binds. Every process computes the same answers from the same configuration, so nothing
//! about the assignment has to be exchanged.
//!
//! - Connection `i` (0-based, over the whole run) joins room `i mod rooms`, so rooms differ
//!   in size by at most one.
//! - The first `senders` connections send. Sender `k` is connection `k`, so it sits in room
//!   `k mod rooms`: senders are spread over the rooms as evenly as viewers are.
//! - Sender `k` sends its chat number `n` at `start + k / rate + n × senders / rate` seconds:
//!   each sender every `senders / rate` seconds, the senders staggered by `1 / rate`, so the
//!   total is `rate` chats per second, evenly paced.
//! - Connection `i` belongs to process `i mod processes`, and within it to thread
//!   `(i div processes) mod threads`.
//! - Connection `i` binds source address `i mod addresses`.

use std::net::Ipv4Addr;

/// Most connections one source address carries: connects slow sharply past ~14k per address.
pub const CONNECTIONS_PER_SOURCE_MAX: usize = 10_000;

/// The assignment rules of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// Connections in the whole run.
    pub connections: u64,
    /// Rooms (at least 1).
    pub rooms: u64,
    /// Connections that also send (at most `connections`).
    pub senders: u64,
    /// Worker processes (at least 1).
    pub processes: u64,
    /// Load threads per process (at least 1).
    pub threads: u64,
}

impl Assignment {
    /// The room connection `index` joins.
    pub fn room_of(&self, index: u64) -> u64 {
        index % self.rooms
    }

    /// The room name of room `room`.
    pub fn room_name(room: u64) -> String {
        format!("bench-{room}")
    }

    /// The sender id of connection `index`, if it sends.
    pub fn sender_of(&self, index: u64) -> Option<u64> {
        (index < self.senders).then_some(index)
    }

    /// How many senders post in room `room`.
    pub fn senders_in_room(&self, room: u64) -> u64 {
        if room >= self.rooms || room >= self.senders {
            return 0;
        }
        (self.senders - room).div_ceil(self.rooms)
    }

    /// The slot of sender `sender` among the senders of its room (0, 1, ...).
    pub fn slot_of(&self, sender: u64) -> u64 {
        sender / self.rooms
    }

    /// The sender in slot `slot` of room `room`.
    pub fn sender_at(&self, room: u64, slot: u64) -> u64 {
        room + slot * self.rooms
    }

    /// The process that owns connection `index`.
    pub fn process_of(&self, index: u64) -> u64 {
        index % self.processes
    }

    /// The thread (within its process) that drives connection `index`.
    pub fn thread_of(&self, index: u64) -> u64 {
        (index / self.processes) % self.threads
    }

    /// The connections of thread `thread` of process `process`, in increasing order.
    pub fn connections_of(&self, process: u64, thread: u64) -> impl Iterator<Item = u64> + '_ {
        let first = process + thread * self.processes;
        (first..self.connections).step_by((self.processes * self.threads) as usize)
    }

    /// How many connections process `process` owns.
    pub fn connections_in_process(&self, process: u64) -> u64 {
        if process >= self.processes {
            return 0;
        }
        (self.connections - process).div_ceil(self.processes)
    }
}

/// The source address of connection `index`, if addresses were given.
pub fn source_of(addrs: &[Ipv4Addr], index: u64) -> Option<Ipv4Addr> {
    (!addrs.is_empty()).then(|| addrs[(index % addrs.len() as u64) as usize])
}

/// Refuses more than [`CONNECTIONS_PER_SOURCE_MAX`] connections on one source address.
pub fn check_sources(connections: u64, addrs: &[Ipv4Addr]) -> Result<(), String> {
    if addrs.is_empty() {
        return Ok(());
    }
    let per_address = connections.div_ceil(addrs.len() as u64);
    if per_address <= CONNECTIONS_PER_SOURCE_MAX as u64 {
        return Ok(());
    }
    Err(format!(
        "{connections} connections over {} source address(es) is {per_address} per address; \
         keep it at or under {CONNECTIONS_PER_SOURCE_MAX} (give more --source-addrs)",
        addrs.len()
    ))
}

/// The open-loop schedule of the senders, in microseconds from the start of the send phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Time between two chats of one sender.
    pub interval_us: f64,
    /// Offset between the first chats of consecutive senders.
    pub stagger_us: f64,
}

impl Schedule {
    /// `rate_per_sec` chats per second in total over `senders` senders.
    pub fn new(senders: u64, rate_per_sec: f64) -> Self {
        if senders == 0 || rate_per_sec <= 0.0 {
            return Self {
                interval_us: f64::INFINITY,
                stagger_us: 0.0,
            };
        }
        Self {
            interval_us: senders as f64 * 1e6 / rate_per_sec,
            stagger_us: 1e6 / rate_per_sec,
        }
    }

    /// When sender `sender` is due to send its chat `counter`, from the start.
    pub fn due_us(&self, sender: u64, counter: u64) -> u64 {
        (sender as f64 * self.stagger_us + counter as f64 * self.interval_us) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        connections: u64,
        rooms: u64,
        senders: u64,
        processes: u64,
        threads: u64,
    ) -> Assignment {
        Assignment {
            connections,
            rooms,
            senders,
            processes,
            threads,
        }
    }

    #[test]
    fn rooms_even_and_senders_spread() {
        let a = plan(10, 3, 4, 1, 1);
        let sizes: Vec<usize> = (0..3)
            .map(|room| (0..10).filter(|&i| a.room_of(i) == room).count())
            .collect();
        assert_eq!(sizes, [4, 3, 3]);
        assert_eq!(
            (0..3).map(|r| a.senders_in_room(r)).collect::<Vec<_>>(),
            [2, 1, 1]
        );
        for sender in 0..4 {
            let room = a.room_of(sender);
            assert_eq!(a.sender_of(sender), Some(sender));
            assert_eq!(a.sender_at(room, a.slot_of(sender)), sender);
            assert!(a.slot_of(sender) < a.senders_in_room(room));
        }
        assert_eq!(a.sender_of(4), None);
        // 1000 rooms, one sender each.
        let a = plan(10_000, 1000, 1000, 2, 1);
        assert!((0..1000).all(|room| a.senders_in_room(room) == 1));
        assert!((0..1000).all(|s| a.slot_of(s) == 0 && a.room_of(s) == s));
        // More rooms than senders: the rooms past the senders have none.
        let a = plan(100, 10, 3, 1, 1);
        assert_eq!(a.senders_in_room(2), 1);
        assert_eq!(a.senders_in_room(3), 0);
    }

    #[test]
    fn processes_and_threads_partition_the_connections() {
        let a = plan(103, 7, 5, 3, 2);
        let mut seen = Vec::new();
        for process in 0..3 {
            let mut in_process = 0;
            for thread in 0..2 {
                for index in a.connections_of(process, thread) {
                    assert_eq!(a.process_of(index), process);
                    assert_eq!(a.thread_of(index), thread);
                    seen.push(index);
                    in_process += 1;
                }
            }
            assert_eq!(in_process, a.connections_in_process(process));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
        assert_eq!(a.connections_in_process(3), 0);
    }

    #[test]
    fn sources_round_robin_and_capped() {
        let addrs: Vec<Ipv4Addr> = (2..=9).map(|d| Ipv4Addr::new(127, 0, 0, d)).collect();
        assert_eq!(source_of(&addrs, 0), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_of(&addrs, 9), Some(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(source_of(&[], 9), None);
        assert!(check_sources(80_000, &addrs).is_ok());
        assert!(check_sources(80_001, &addrs).is_err());
        assert!(check_sources(50_000, &[]).is_ok());
    }

    #[test]
    fn schedule_paces_the_total_rate() {
        // 200 chats/s over 20 senders: each every 100 ms, staggered by 5 ms.
        let s = Schedule::new(20, 200.0);
        assert_eq!(s.due_us(0, 0), 0);
        assert_eq!(s.due_us(1, 0), 5_000);
        assert_eq!(s.due_us(0, 1), 100_000);
        assert_eq!(s.due_us(19, 2), 295_000);
        assert_eq!(Schedule::new(0, 0.0).interval_us, f64::INFINITY);
    }
}
