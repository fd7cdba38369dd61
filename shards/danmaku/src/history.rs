//! The window of flushed events a room keeps for joins and History requests.

use std::collections::VecDeque;

use crate::event::RoomEvent;

/// Flushed events with consecutive seqs, oldest first, bounded by count and by age.
#[derive(Debug)]
pub(crate) struct History {
    entries: VecDeque<Entry>,
    max_events: usize,
    max_age_ms: u64,
}

#[derive(Debug)]
struct Entry {
    /// Monotonic time at which the room accepted the event; age is measured from here.
    at_ms: u64,
    event: RoomEvent,
}

/// What [`History::lookup`] found.
pub(crate) enum Lookup {
    /// Consecutive events from the requested seq (possibly none), and whether the limit cut
    /// them short of the newest.
    Events { events: Vec<RoomEvent>, more: bool },
    /// The requested seq is older than the window.
    TooOld,
}

impl History {
    pub(crate) fn new(max_events: usize, max_age_ms: u64) -> Self {
        assert!(max_events > 0);
        // Not preallocated: a server holds many rooms and most are quiet; the window grows on
        // demand up to `max_events` and `VecDeque` keeps what it grew to.
        History {
            entries: VecDeque::new(),
            max_events,
            max_age_ms,
        }
    }

    /// Appends a flushed event; its seq must follow the newest one.
    pub(crate) fn push(&mut self, at_ms: u64, event: RoomEvent) {
        if let Some(last) = self.entries.back() {
            assert_eq!(
                last.event.seq + 1,
                event.seq,
                "history seqs are consecutive"
            );
            debug_assert!(last.at_ms <= at_ms, "history times are monotonic");
        }
        if self.entries.len() == self.max_events {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry { at_ms, event });
        debug_assert!(self.entries.len() <= self.max_events);
    }

    /// Forgets every event (the room's order restarts elsewhere: see `Room::reset_relayed`).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops events older than the window at `now_ms`.
    pub(crate) fn trim(&mut self, now_ms: u64) {
        while let Some(front) = self.entries.front() {
            if self.is_expired(front, now_ms) {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }

    /// Number of events held (including any that expired since the last trim).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Events with seq `from_seq..=newest`, at most `limit` of them and at most `max_bytes` of
    /// [`RoomEvent::wire_size_bytes`](crate::RoomEvent::wire_size_bytes), as seen at `now_ms`
    /// (events past their age count as gone even before the next trim). `newest` is the last
    /// flushed seq; `from_seq` must be in `1..=newest + 1`.
    pub(crate) fn lookup(
        &self,
        now_ms: u64,
        from_seq: u64,
        newest: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Lookup {
        debug_assert!(from_seq >= 1 && from_seq <= newest + 1);
        if from_seq == newest + 1 {
            return Lookup::Events {
                events: Vec::new(),
                more: false,
            };
        }
        let live = self.entries.partition_point(|e| self.is_expired(e, now_ms));
        let Some(oldest) = self.entries.get(live) else {
            return Lookup::TooOld;
        };
        if from_seq < oldest.event.seq {
            return Lookup::TooOld;
        }
        debug_assert_eq!(self.entries.back().map(|e| e.event.seq), Some(newest));
        // Seqs are consecutive, so the position is arithmetic.
        let start = live + (from_seq - oldest.event.seq) as usize;
        let available = self.entries.len() - start;
        let mut bytes = 0;
        let events: Vec<RoomEvent> = self
            .entries
            .range(start..start + available.min(limit))
            .take_while(|e| {
                bytes += e.event.wire_size_bytes();
                bytes <= max_bytes
            })
            .map(|e| e.event.clone())
            .collect();
        Lookup::Events {
            more: events.len() < available,
            events,
        }
    }

    fn is_expired(&self, entry: &Entry, now_ms: u64) -> bool {
        now_ms.saturating_sub(entry.at_ms) > self.max_age_ms
    }
}
