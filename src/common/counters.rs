//! Per-shard service counters and a latency histogram, written by their shard only and read
//! by `/metrics` (the same single-writer pattern as the engine's counters).

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares a cache-line-aligned counter block with a `snapshot()` listing
/// `(name, kind, help, value)` for every field.
#[macro_export]
macro_rules! service_counters {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[doc = $doc:literal])* $field:ident: $kind:literal,)*
    }) => {
        $(#[$meta])*
        #[repr(align(128))]
        #[derive(Default, Debug)]
        $vis struct $name {
            $($(#[doc = $doc])* pub $field: std::sync::atomic::AtomicU64,)*
        }

        impl $name {
            /// Every counter as `(name, kind, help, value)`.
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
                vec![$((
                    stringify!($field),
                    $kind,
                    concat!($($doc),*),
                    self.$field.load(std::sync::atomic::Ordering::Relaxed),
                ),)*]
            }
        }
    };
}

/// Adds `n` to a counter. Only the owning shard may call this.
#[inline]
pub fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Sets a gauge. Only the owning shard may call this.
#[inline]
pub fn set(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}

/// Upper bounds (microseconds) of the latency histogram's buckets; the last bucket is +Inf.
pub const LATENCY_BUCKETS_US: [u64; 20] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000,
    80_000, 100_000, 150_000, 250_000, 500_000, 1_000_000, 5_000_000,
];

/// A fixed-bucket latency histogram (Prometheus `histogram`), single writer.
#[repr(align(128))]
#[derive(Default, Debug)]
pub struct LatencyHistogram {
    /// Non-cumulative counts per bucket; index `LATENCY_BUCKETS_US.len()` is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    /// Records one observation. Only the owning shard may call this.
    pub fn record_us(&self, value_us: u64) {
        let index = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| value_us <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        bump(&self.buckets[index], 1);
        bump(&self.sum_us, value_us);
        bump(&self.count, 1);
    }

    /// Adds this histogram's non-cumulative buckets, sum and count into `into`.
    pub fn merge_into(&self, into: &mut HistogramSnapshot) {
        for (i, bucket) in self.buckets.iter().enumerate() {
            into.buckets[i] += bucket.load(Ordering::Relaxed);
        }
        into.sum_us += self.sum_us.load(Ordering::Relaxed);
        into.count += self.count.load(Ordering::Relaxed);
    }
}

/// Merged histogram values.
#[derive(Default, Debug, Clone)]
pub struct HistogramSnapshot {
    pub buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: u64,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = LatencyHistogram::default();
        h.record_us(0);
        h.record_us(100);
        h.record_us(101);
        h.record_us(10_000_000);
        let mut s = HistogramSnapshot::default();
        h.merge_into(&mut s);
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[LATENCY_BUCKETS_US.len()], 1);
        assert_eq!(s.count, 4);
        assert_eq!(s.sum_us, 10_000_201);
    }
}
