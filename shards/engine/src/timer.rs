//! A hashed timer wheel with coarse ticks, one per shard.
//!
//! Connections need idle, header and heartbeat timeouts by the tens of thousands; an io_uring
//! timeout op (or a heap entry) per connection would cost a syscall or a log-time update per
//! reset. The wheel costs O(1) to set and to cancel, and O(entries in one slot) per tick.
//!
//! Call order: [`TimerWheel::set`] / [`TimerWheel::cancel`] at any time; the shard loop calls
//! [`TimerWheel::poll_expired`] with the current time once per iteration, and asks
//! [`TimerWheel::next_deadline_ms`] how long it may sleep.
//!
//! Memory: `slots` vectors of `u32` plus one 32-byte entry per live timer; the entry slab is
//! allocated at start for `capacity` timers and refuses (returns `None`) past it.

/// Identifies one armed timer. Stale ids (cancelled or fired) are recognised by generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Tick at or after which the timer fires.
    deadline_tick: u64,
    /// Caller's key, handed back on expiry.
    key: u64,
    /// Slot the entry sits in, and its position inside that slot's vector.
    slot: u32,
    position: u32,
    generation: u32,
    live: bool,
}

/// The wheel. Times are milliseconds on the shard's monotonic clock.
pub struct TimerWheel {
    tick_ms: u64,
    slots: Vec<Vec<u32>>,
    slot_mask: u64,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Every tick up to and including this one has been processed.
    current_tick: u64,
    live: usize,
}

impl TimerWheel {
    /// A wheel of `slots` (rounded up to a power of two) slots of `tick_ms` each, holding at
    /// most `capacity` timers.
    pub fn new(tick_ms: u64, slots: usize, capacity: usize, now_ms: u64) -> Self {
        assert!(tick_ms > 0, "timer tick must be positive");
        assert!(capacity < u32::MAX as usize);
        let slots = slots.max(1).next_power_of_two();
        let mut free: Vec<u32> = (0..capacity as u32).collect();
        free.reverse();
        TimerWheel {
            tick_ms,
            slots: (0..slots).map(|_| Vec::new()).collect(),
            slot_mask: slots as u64 - 1,
            entries: vec![
                Entry {
                    deadline_tick: 0,
                    key: 0,
                    slot: 0,
                    position: 0,
                    generation: 0,
                    live: false,
                };
                capacity
            ],
            free,
            current_tick: now_ms / tick_ms,
            live: 0,
        }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Arms a timer that fires at or after `deadline_ms` (rounded up to the next tick; a
    /// deadline in the past fires at the next poll). `None` when the wheel is at capacity.
    pub fn set(&mut self, deadline_ms: u64, key: u64) -> Option<TimerId> {
        let index = self.free.pop()?;
        let deadline_tick = deadline_ms
            .div_ceil(self.tick_ms)
            .max(self.current_tick + 1);
        let slot = (deadline_tick & self.slot_mask) as u32;
        let position = self.slots[slot as usize].len() as u32;
        self.slots[slot as usize].push(index);
        let entry = &mut self.entries[index as usize];
        debug_assert!(!entry.live);
        entry.deadline_tick = deadline_tick;
        entry.key = key;
        entry.slot = slot;
        entry.position = position;
        entry.live = true;
        self.live += 1;
        Some(TimerId {
            index,
            generation: entry.generation,
        })
    }

    /// Disarms a timer. Returns false when it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        let Some(entry) = self.entries.get(id.index as usize) else {
            return false;
        };
        if !entry.live || entry.generation != id.generation {
            return false;
        }
        let (slot, position) = (entry.slot as usize, entry.position as usize);
        self.remove_at(slot, position);
        true
    }

    /// Moves time to `now_ms` and appends every expired timer to `out` as `(id, key)`, in
    /// deadline-tick order. At most `max` timers are expired per call (the rest stay due and
    /// come out next call), so one tick with many timers cannot stall the shard loop.
    pub fn poll_expired(&mut self, now_ms: u64, max: usize, out: &mut Vec<(TimerId, u64)>) {
        let target_tick = now_ms / self.tick_ms;
        let mut budget = max;
        while self.current_tick < target_tick && budget > 0 {
            let tick = self.current_tick + 1;
            let slot = (tick & self.slot_mask) as usize;
            let mut position = 0;
            while position < self.slots[slot].len() && budget > 0 {
                let index = self.slots[slot][position];
                let entry = self.entries[index as usize];
                if entry.deadline_tick <= tick {
                    out.push((
                        TimerId {
                            index,
                            generation: entry.generation,
                        },
                        entry.key,
                    ));
                    // swap_remove moves the last entry into `position`: look at it next.
                    self.remove_at(slot, position);
                    budget -= 1;
                } else {
                    position += 1;
                }
            }
            if budget == 0 {
                // Unfinished slot: stay on the previous tick so this slot is scanned again.
                break;
            }
            self.current_tick = tick;
        }
        if self.live == 0 && self.current_tick < target_tick {
            self.current_tick = target_tick;
        }
    }

    /// The earliest time at which a timer may be due, or `None` when none is armed. May be
    /// earlier than the true deadline (a slot holds entries of later rotations); never later.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if self.live == 0 {
            return None;
        }
        let slots = self.slots.len() as u64;
        for step in 1..=slots {
            let tick = self.current_tick + step;
            if !self.slots[(tick & self.slot_mask) as usize].is_empty() {
                return Some(tick * self.tick_ms);
            }
        }
        Some((self.current_tick + slots) * self.tick_ms)
    }

    fn remove_at(&mut self, slot: usize, position: usize) {
        let index = self.slots[slot].swap_remove(position);
        if let Some(&moved) = self.slots[slot].get(position) {
            self.entries[moved as usize].position = position as u32;
        }
        let entry = &mut self.entries[index as usize];
        entry.live = false;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(index);
        self.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expire(wheel: &mut TimerWheel, now_ms: u64) -> Vec<u64> {
        let mut out = Vec::new();
        wheel.poll_expired(now_ms, usize::MAX, &mut out);
        out.into_iter().map(|(_, key)| key).collect()
    }

    #[test]
    fn fires_at_or_after_deadline_never_before() {
        let mut wheel = TimerWheel::new(10, 8, 16, 0);
        wheel.set(25, 1).unwrap();
        assert!(expire(&mut wheel, 20).is_empty());
        assert!(expire(&mut wheel, 29).is_empty());
        assert_eq!(expire(&mut wheel, 30), vec![1]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn deadlines_beyond_one_rotation_wait_for_their_turn() {
        // 8 slots of 10 ms: one rotation is 80 ms.
        let mut wheel = TimerWheel::new(10, 8, 16, 0);
        wheel.set(250, 7).unwrap();
        for now in (10..250).step_by(10) {
            assert!(expire(&mut wheel, now).is_empty(), "fired early at {now}");
        }
        assert_eq!(expire(&mut wheel, 250), vec![7]);
    }

    #[test]
    fn cancel_is_exact_and_stale_ids_are_refused() {
        let mut wheel = TimerWheel::new(10, 8, 16, 0);
        let a = wheel.set(50, 1).unwrap();
        let b = wheel.set(50, 2).unwrap();
        let c = wheel.set(50, 3).unwrap();
        assert!(wheel.cancel(b));
        assert!(!wheel.cancel(b));
        assert_eq!(expire(&mut wheel, 60), vec![1, 3]);
        assert!(!wheel.cancel(a));
        assert!(!wheel.cancel(c));
        // The slot is reused with a new generation; the old id must not cancel it.
        let d = wheel.set(100, 4).unwrap();
        assert!(!wheel.cancel(a));
        assert!(wheel.cancel(d));
    }

    #[test]
    fn capacity_is_a_hard_limit() {
        let mut wheel = TimerWheel::new(10, 8, 2, 0);
        assert!(wheel.set(10, 1).is_some());
        assert!(wheel.set(10, 2).is_some());
        assert!(wheel.set(10, 3).is_none());
        expire(&mut wheel, 10);
        assert!(wheel.set(10, 3).is_some());
    }

    #[test]
    fn past_deadlines_fire_on_next_poll() {
        let mut wheel = TimerWheel::new(10, 8, 4, 1000);
        wheel.set(0, 9).unwrap();
        assert_eq!(expire(&mut wheel, 1010), vec![9]);
    }

    #[test]
    fn budget_leaves_the_rest_due() {
        let mut wheel = TimerWheel::new(10, 8, 64, 0);
        for key in 0..10 {
            wheel.set(20, key).unwrap();
        }
        let mut out = Vec::new();
        wheel.poll_expired(100, 4, &mut out);
        assert_eq!(out.len(), 4);
        wheel.poll_expired(100, 4, &mut out);
        assert_eq!(out.len(), 8);
        wheel.poll_expired(100, 4, &mut out);
        assert_eq!(out.len(), 10);
        let mut keys: Vec<u64> = out.iter().map(|(_, k)| *k).collect();
        keys.sort();
        assert_eq!(keys, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn next_deadline_is_a_lower_bound() {
        let mut wheel = TimerWheel::new(10, 8, 4, 0);
        assert_eq!(wheel.next_deadline_ms(), None);
        wheel.set(35, 1).unwrap();
        let next = wheel.next_deadline_ms().unwrap();
        assert!(next <= 40 && next > 0, "{next}");
        wheel.set(500, 2).unwrap();
        assert!(wheel.next_deadline_ms().unwrap() <= 40);
    }

    #[test]
    fn many_timers_random_order_all_fire_once_in_deadline_order() {
        let mut wheel = TimerWheel::new(5, 64, 5000, 0);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut deadlines = Vec::new();
        for key in 0..5000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let deadline = seed % 20_000;
            deadlines.push(deadline);
            wheel.set(deadline, key).unwrap();
        }
        let mut fired = vec![false; 5000];
        let mut last_tick = 0;
        for now in (0..=20_010).step_by(7) {
            let mut out = Vec::new();
            wheel.poll_expired(now, usize::MAX, &mut out);
            for (_, key) in out {
                let deadline = deadlines[key as usize];
                assert!(deadline <= now, "fired early");
                assert!(now < deadline + 5 + 7, "fired late: {deadline} at {now}");
                let tick = deadline.div_ceil(5).max(1);
                assert!(tick >= last_tick.min(tick));
                last_tick = tick;
                assert!(!fired[key as usize], "fired twice");
                fired[key as usize] = true;
            }
        }
        assert!(fired.iter().all(|f| *f));
    }
}
