//! Failures per source address in a fixed window (failed publish keys, for one): past a
//! limit, the address is refused until its window ends.
//!
//! Memory: one entry (about 48 B) per address that failed in the current window, at most
//! `capacity`; past that, expired entries are dropped first, and when none has expired the
//! newcomer is not tracked (the table stays bounded; the failure is still refused and logged).

use std::collections::HashMap;
use std::net::IpAddr;

/// What a failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strike {
    /// Counted; the address may still try.
    Counted,
    /// This failure reached the limit: the address is refused until its window ends.
    Blocked,
    /// The table is full of live entries: not tracked.
    Untracked,
}

/// The table.
pub struct Strikes {
    limit: u32,
    window_ms: u64,
    capacity: usize,
    entries: HashMap<IpAddr, (u64, u32)>,
}

impl Strikes {
    /// At most `limit` failures per `window_ms` per address (0: no limit), for at most
    /// `capacity` addresses at once.
    pub fn new(limit: u32, window_ms: u64, capacity: usize) -> Strikes {
        Strikes {
            limit,
            window_ms,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// True when `ip` used up its failures in its current window.
    pub fn is_blocked(&self, ip: IpAddr, now_ms: u64) -> bool {
        self.limit > 0
            && self.entries.get(&ip).is_some_and(|&(start, count)| {
                now_ms < start + self.window_ms && count >= self.limit
            })
    }

    /// One failure of `ip`.
    pub fn strike(&mut self, ip: IpAddr, now_ms: u64) -> Strike {
        if self.limit == 0 {
            return Strike::Counted;
        }
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.capacity {
            let window = self.window_ms;
            self.entries
                .retain(|_, (start, _)| now_ms < *start + window);
            if self.entries.len() >= self.capacity {
                return Strike::Untracked;
            }
        }
        let entry = self.entries.entry(ip).or_insert((now_ms, 0));
        if now_ms >= entry.0 + self.window_ms {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        if entry.1 == self.limit {
            Strike::Blocked
        } else {
            Strike::Counted
        }
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_at_its_limit_until_the_window_ends_and_the_table_stays_bounded() {
        let mut s = Strikes::new(3, 60_000, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(s.strike(a, 0), Strike::Counted);
        assert_eq!(s.strike(a, 10), Strike::Counted);
        assert!(!s.is_blocked(a, 10));
        assert_eq!(s.strike(a, 20), Strike::Blocked);
        assert!(s.is_blocked(a, 59_999));
        assert!(!s.is_blocked(b, 30), "others are not affected");
        assert!(!s.is_blocked(a, 60_000), "the window ended");
        assert_eq!(s.strike(b, 100), Strike::Counted);
        assert_eq!(s.strike(c, 200), Strike::Untracked, "full of live entries");
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.strike(c, 60_050),
            Strike::Counted,
            "a's entry expired and went"
        );
        assert!(
            Strikes::new(0, 1000, 1).strike(a, 0) == Strike::Counted,
            "0: no limit"
        );
    }
}
