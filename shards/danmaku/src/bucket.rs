//! A token bucket in integer milli-tokens.
//!
//! A rate of `r` tokens per second is exactly `r` milli-tokens per millisecond, so refilling is
//! one multiplication with no rounding: the bucket never drifts, however it is polled. Used per
//! connection (chats, likes; see [`crate::ViewerGate`]) and per room (the inbound cap with its
//! paid reserve; see [`crate::Room`]).
//!
//! Call order: any method, at any time, with the caller's monotonic `now_ms`. A `now_ms` earlier
//! than one already seen refills nothing (time never runs backwards for the bucket).

/// Milli-tokens per token.
const MILLI: u64 = 1000;

/// A token bucket: at most `burst` tokens, refilled at `rate_per_s` tokens per second.
///
/// Memory: 32 bytes.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens per second, which is also milli-tokens per millisecond.
    rate_per_s: u32,
    capacity_milli: u64,
    level_milli: u64,
    /// Time of the last refill.
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket holding at most `burst` tokens, refilled at `rate_per_s` tokens per
    /// second. A rate of 0 never refills; a burst of 0 never gives a token.
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        let capacity_milli = u64::from(burst) * MILLI;
        TokenBucket {
            rate_per_s,
            capacity_milli,
            level_milli: capacity_milli,
            last_ms: 0,
        }
    }

    /// Takes `n` tokens if all of them are there; otherwise takes nothing. `n == 0` always
    /// succeeds; `n > burst` never does.
    pub fn try_take(&mut self, now_ms: u64, n: u32) -> bool {
        self.try_take_keeping(now_ms, n, 0)
    }

    /// Takes `n` tokens only if at least `keep` tokens remain afterwards; otherwise takes
    /// nothing. This is how a lower priority is kept out of a reserve left for a higher one.
    pub fn try_take_keeping(&mut self, now_ms: u64, n: u32, keep: u32) -> bool {
        self.refill(now_ms);
        let need_milli = (u64::from(n) + u64::from(keep)) * MILLI;
        if self.level_milli < need_milli {
            return false;
        }
        self.level_milli -= u64::from(n) * MILLI;
        true
    }

    /// Takes as many whole tokens as are there, at most `n`, and returns how many it took.
    pub fn take_up_to(&mut self, now_ms: u64, n: u32) -> u32 {
        self.refill(now_ms);
        let whole = self.level_milli / MILLI;
        let taken = whole.min(u64::from(n));
        self.level_milli -= taken * MILLI;
        // `taken <= n`, which is a u32.
        taken as u32
    }

    /// Whole tokens available at `now_ms`.
    pub fn available(&mut self, now_ms: u64) -> u32 {
        self.refill(now_ms);
        // Bounded by the capacity, which came from a u32 burst.
        (self.level_milli / MILLI) as u32
    }

    /// Milli-tokens held as of the last refill (no refill is done).
    pub fn level_milli(&self) -> u64 {
        self.level_milli
    }

    /// The configured rate, tokens per second.
    pub fn rate_per_s(&self) -> u32 {
        self.rate_per_s
    }

    /// The configured burst, tokens.
    pub fn burst(&self) -> u32 {
        (self.capacity_milli / MILLI) as u32
    }

    fn refill(&mut self, now_ms: u64) {
        if now_ms <= self.last_ms {
            return;
        }
        let elapsed_ms = now_ms - self.last_ms;
        let added_milli = elapsed_ms.saturating_mul(u64::from(self.rate_per_s));
        self.level_milli = self
            .level_milli
            .saturating_add(added_milli)
            .min(self.capacity_milli);
        self.last_ms = now_ms;
        debug_assert!(self.level_milli <= self.capacity_milli);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_and_refuses_past_burst() {
        let mut bucket = TokenBucket::new(1, 3);
        assert!(bucket.try_take(1_000, 1));
        assert!(bucket.try_take(1_000, 1));
        assert!(bucket.try_take(1_000, 1));
        assert!(!bucket.try_take(1_000, 1));
    }

    #[test]
    fn refills_exactly_at_the_millisecond() {
        let mut bucket = TokenBucket::new(1, 3);
        assert!(bucket.try_take(10_000, 3));
        assert!(!bucket.try_take(10_999, 1));
        assert!(bucket.try_take(11_000, 1));
        assert!(!bucket.try_take(11_000, 1));
    }

    #[test]
    fn fractional_refills_accumulate_without_drift() {
        // 3 tokens per second: one token every 333.33 ms. Polling every millisecond for 10 s
        // must give exactly 30 tokens, the same as one poll at the end.
        let mut polled = TokenBucket::new(3, 100);
        let mut once = TokenBucket::new(3, 100);
        assert!(polled.try_take(0, 100));
        assert!(once.try_take(0, 100));
        let mut taken = 0;
        for now_ms in 1..=10_000 {
            if polled.try_take(now_ms, 1) {
                taken += 1;
            }
        }
        assert_eq!(taken, 30);
        assert_eq!(once.take_up_to(10_000, 1_000), 30);
    }

    #[test]
    fn never_exceeds_burst_after_a_long_idle() {
        let mut bucket = TokenBucket::new(1_000, 5);
        assert_eq!(bucket.take_up_to(u64::MAX, 100), 5);
        assert_eq!(bucket.available(u64::MAX), 0);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut bucket = TokenBucket::new(1, 1);
        assert!(bucket.try_take(5_000, 1));
        assert!(!bucket.try_take(4_000, 1));
        // Still measured from 5 000, not from 4 000.
        assert!(!bucket.try_take(5_999, 1));
        assert!(bucket.try_take(6_000, 1));
    }

    #[test]
    fn zero_rate_and_zero_burst() {
        let mut never_refills = TokenBucket::new(0, 2);
        assert!(never_refills.try_take(0, 2));
        assert!(!never_refills.try_take(1_000_000, 1));
        let mut empty = TokenBucket::new(1_000, 0);
        assert!(!empty.try_take(1_000_000, 1));
        assert!(empty.try_take(1_000_000, 0));
    }

    #[test]
    fn taking_more_than_burst_never_succeeds_and_takes_nothing() {
        let mut bucket = TokenBucket::new(10, 4);
        assert!(!bucket.try_take(0, 5));
        assert_eq!(bucket.available(0), 4);
    }

    #[test]
    fn keeping_a_reserve() {
        let mut bucket = TokenBucket::new(10, 10);
        // Lower priority may take only while 2 tokens remain.
        let mut low = 0;
        while bucket.try_take_keeping(0, 1, 2) {
            low += 1;
        }
        assert_eq!(low, 8);
        // Higher priority takes the reserve.
        assert!(bucket.try_take(0, 1));
        assert!(bucket.try_take(0, 1));
        assert!(!bucket.try_take(0, 1));
        // 100 ms later one token is back, but it is inside the reserve.
        assert!(!bucket.try_take_keeping(100, 1, 2));
        assert!(bucket.try_take(100, 1));
    }

    #[test]
    fn take_up_to_takes_whole_tokens_only() {
        let mut bucket = TokenBucket::new(2, 10);
        assert_eq!(bucket.take_up_to(0, 10), 10);
        // 1.5 tokens after 750 ms.
        assert_eq!(bucket.take_up_to(750, 10), 1);
        assert_eq!(bucket.level_milli(), 500);
        assert_eq!(bucket.take_up_to(1_000, 10), 1);
    }
}
