//! Per-sender delivery accounting at one receiver.
//!
//! A receiver keeps one [`SenderTrack`] per sender of its room: the next counter it expects
//! and the gaps it has seen (counters skipped by a later arrival). An arrival is, exactly one
//! of:
//!
//! - **in order**: the expected counter;
//! - **after a gap**: a later counter; the skipped ones become a gap;
//! - **late**: a counter inside a gap, which it fills (counted as out of order);
//! - **duplicate**: a counter already delivered.
//!
//! What is missing at the end is what the gaps still hold plus the tail the receiver never
//! reached: `sent − next`. Only the sender knows `sent`, and it may live in another process,
//! so a receiver hands over `next` and the unfilled gap count ([`SenderTotals`]) and the
//! missing count is settled once every process has reported ([`SenderTotals::missing`]).

use serde::{Deserialize, Serialize};

/// Most gap ranges one track keeps. Beyond it the oldest range is given up: it counts as
/// missing, and late arrivals into it count as duplicates. 4096 ranges cost 64 KiB, reached
/// only when a server drops every other message for thousands of messages.
pub const GAPS_MAX: usize = 4096;

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The counter expected next.
    InOrder,
    /// A later counter; `skipped` counters before it have not arrived (yet).
    AfterGap {
        /// How many counters the gap holds.
        skipped: u64,
    },
    /// A counter that filled part of an earlier gap: delivered, out of order.
    Late,
    /// A counter already delivered (or given up with a gap beyond [`GAPS_MAX`]).
    Duplicate,
}

impl Arrival {
    /// A first delivery (anything but a duplicate).
    pub fn is_delivery(self) -> bool {
        self != Arrival::Duplicate
    }
}

/// One receiver's view of one sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderTrack {
    next: u64,
    /// Half-open ranges of counters not yet received, ascending and disjoint, all below
    /// `next`.
    gaps: Vec<(u64, u64)>,
    /// Counters in gaps dropped past [`GAPS_MAX`].
    given_up: u64,
}

impl SenderTrack {
    /// A track expecting counter 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for the arrival of `counter`.
    pub fn handle(&mut self, counter: u64) -> Arrival {
        if counter == self.next {
            self.next += 1;
            return Arrival::InOrder;
        }
        if counter > self.next {
            let skipped = counter - self.next;
            if self.gaps.len() == GAPS_MAX {
                let (start, end) = self.gaps.remove(0);
                self.given_up += end - start;
            }
            self.gaps.push((self.next, counter));
            self.next = counter + 1;
            return Arrival::AfterGap { skipped };
        }
        // Below `next`: inside a gap, or already seen.
        let at = self.gaps.partition_point(|&(_, end)| end <= counter);
        let Some(&(start, end)) = self.gaps.get(at) else {
            return Arrival::Duplicate;
        };
        if counter < start {
            return Arrival::Duplicate;
        }
        match (counter == start, counter + 1 == end) {
            (true, true) => {
                self.gaps.remove(at);
            }
            (true, false) => self.gaps[at].0 = counter + 1,
            (false, true) => self.gaps[at].1 = counter,
            (false, false) => {
                self.gaps[at].1 = counter;
                self.gaps.insert(at + 1, (counter + 1, end));
            }
        }
        Arrival::Late
    }

    /// The counter expected next: one past the highest received.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Counters below [`next`](Self::next) that never arrived.
    pub fn unfilled(&self) -> u64 {
        self.given_up
            + self
                .gaps
                .iter()
                .map(|(start, end)| end - start)
                .sum::<u64>()
    }
}

/// What the receivers of one sender report about it, summed over receivers (and processes),
/// with what the sender itself reports: how many chats it sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderTotals {
    /// Chats the sender wrote to its connection.
    pub sent: u64,
    /// Receivers in the sender's room that joined before the send phase.
    pub receivers: u64,
    /// Sum over those receivers of [`SenderTrack::next`].
    pub next_sum: u64,
    /// Sum over those receivers of [`SenderTrack::unfilled`].
    pub unfilled: u64,
}

impl SenderTotals {
    /// Adds one receiver's final track.
    pub fn add_receiver(&mut self, track: &SenderTrack) {
        self.receivers += 1;
        self.next_sum += track.next();
        self.unfilled += track.unfilled();
    }

    /// Adds another report on the same sender.
    pub fn merge(&mut self, other: &SenderTotals) {
        self.sent += other.sent;
        self.receivers += other.receivers;
        self.next_sum += other.next_sum;
        self.unfilled += other.unfilled;
    }

    /// Deliveries expected: every receiver gets every chat sent.
    pub fn expected(&self) -> u64 {
        self.receivers * self.sent
    }

    /// Chats that never reached a receiver: the unfilled gaps, plus each receiver's tail past
    /// the highest counter it received (`sent − next`, summed).
    pub fn missing(&self) -> u64 {
        self.unfilled + self.expected().saturating_sub(self.next_sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(track: &mut SenderTrack, counters: &[u64]) -> Vec<Arrival> {
        counters.iter().map(|&c| track.handle(c)).collect()
    }

    #[test]
    fn in_order_stream() {
        let mut track = SenderTrack::new();
        assert!(feed(&mut track, &[0, 1, 2, 3])
            .iter()
            .all(|a| *a == Arrival::InOrder));
        assert_eq!((track.next(), track.unfilled()), (4, 0));
    }

    #[test]
    fn gaps_late_arrivals_and_duplicates() {
        let mut track = SenderTrack::new();
        use Arrival::*;
        let arrivals = feed(&mut track, &[0, 3, 1, 1, 3, 0, 7, 5, 2, 6, 4, 9]);
        assert_eq!(
            arrivals,
            [
                InOrder,
                AfterGap { skipped: 2 }, // 1, 2 missing
                Late,                    // 1 fills the front of the gap
                Duplicate,
                Duplicate,
                Duplicate,
                AfterGap { skipped: 3 }, // 4, 5, 6 missing
                Late,                    // 5 splits the gap in two
                Late,                    // 2 closes the first gap
                Late,                    // 6 closes the back
                Late,                    // 4 closes the last
                AfterGap { skipped: 1 }, // 8 never comes
            ]
        );
        assert_eq!(track.next(), 10);
        assert_eq!(track.unfilled(), 1);
        let delivered = arrivals.iter().filter(|a| a.is_delivery()).count();
        assert_eq!(delivered, 9);
    }

    #[test]
    fn too_many_gaps_give_up_the_oldest() {
        let mut track = SenderTrack::new();
        for i in 0..=GAPS_MAX as u64 {
            track.handle(2 * i + 1); // every even counter skipped
        }
        assert_eq!(track.unfilled(), GAPS_MAX as u64 + 1);
        // Counter 0 was in the range given up: it now reads as a duplicate.
        assert_eq!(track.handle(0), Arrival::Duplicate);
        assert_eq!(track.handle(2), Arrival::Late);
        assert_eq!(track.unfilled(), GAPS_MAX as u64);
    }

    #[test]
    fn missing_counts_gaps_and_tails() {
        // A sender sent 10 chats to a room of three receivers.
        let mut totals = SenderTotals {
            sent: 10,
            ..SenderTotals::default()
        };
        let mut complete = SenderTrack::new();
        feed(&mut complete, &(0..10).collect::<Vec<_>>());
        let mut gappy = SenderTrack::new();
        feed(&mut gappy, &[0, 1, 4, 5, 6, 7, 8, 9, 2]); // 3 never came
        let mut short = SenderTrack::new();
        feed(&mut short, &[0, 1, 2, 3, 4, 5]); // 6..9 never came
        for track in [&complete, &gappy, &short] {
            totals.add_receiver(track);
        }
        assert_eq!(totals.expected(), 30);
        assert_eq!(totals.missing(), 1 + 4);
        // The same receivers reported by two processes, the sender by a third.
        let mut a = SenderTotals::default();
        a.add_receiver(&complete);
        a.add_receiver(&gappy);
        let mut b = SenderTotals::default();
        b.add_receiver(&short);
        let sender = SenderTotals {
            sent: 10,
            ..SenderTotals::default()
        };
        let mut merged = SenderTotals::default();
        for part in [&a, &b, &sender] {
            merged.merge(part);
        }
        assert_eq!(merged, totals);
        // A receiver that saw nothing misses everything.
        let mut silent = SenderTotals {
            sent: 5,
            ..SenderTotals::default()
        };
        silent.add_receiver(&SenderTrack::new());
        assert_eq!(silent.missing(), 5);
    }
}
