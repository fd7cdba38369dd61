//! What the fetcher knows about each origin: its breaker and its recent answer times (the
//! dynamic timeout).

use std::collections::VecDeque;
use std::net::SocketAddr;

/// Failures in a row that open an origin's breaker.
pub const BREAKER_FAILURES: u32 = 3;
/// Answer times kept per origin for the p95.
const LATENCY_SAMPLES: usize = 64;
/// Samples needed before the p95 is trusted (before: the upper bound).
const LATENCY_SAMPLES_MIN: usize = 8;

/// One origin.
pub struct Origin {
    pub addr: SocketAddr,
    /// As configured (the `Host` of requests).
    pub name: String,
    failures: u32,
    /// While the breaker is open: when it half-opens.
    open_until_ms: u64,
    /// A trial request is out while half-open.
    trial: bool,
    latencies_ms: VecDeque<u64>,
    /// Connections open (busy or idle).
    pub open: usize,
}

/// What a failure did to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breaker {
    Closed,
    /// This failure opened it.
    Tripped,
}

impl Origin {
    pub fn new(addr: SocketAddr, name: String) -> Self {
        Origin {
            addr,
            name,
            failures: 0,
            open_until_ms: 0,
            trial: false,
            latencies_ms: VecDeque::with_capacity(LATENCY_SAMPLES),
            open: 0,
        }
    }

    /// Whether a request may go to this origin now; a half-open breaker lets one through
    /// (and marks it).
    pub fn admit(&mut self, now_ms: u64) -> bool {
        if self.failures < BREAKER_FAILURES {
            return true;
        }
        if now_ms < self.open_until_ms || self.trial {
            return false;
        }
        self.trial = true;
        true
    }

    /// True while the breaker keeps requests away.
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.failures >= BREAKER_FAILURES && (now_ms < self.open_until_ms || self.trial)
    }

    /// An answer began `latency_ms` after the request (None: a request allowed to wait,
    /// whose time says nothing about the origin).
    pub fn succeeded(&mut self, latency_ms: Option<u64>) {
        self.failures = 0;
        self.trial = false;
        if let Some(ms) = latency_ms {
            if self.latencies_ms.len() == LATENCY_SAMPLES {
                self.latencies_ms.pop_front();
            }
            self.latencies_ms.push_back(ms);
        }
    }

    /// A request failed (refused, reset, timed out, 5xx).
    pub fn failed(&mut self, now_ms: u64, open_ms: u64) -> Breaker {
        self.failures = self.failures.saturating_add(1);
        self.trial = false;
        if self.failures >= BREAKER_FAILURES {
            self.open_until_ms = now_ms + open_ms;
            return if self.failures == BREAKER_FAILURES {
                Breaker::Tripped
            } else {
                Breaker::Closed
            };
        }
        Breaker::Closed
    }

    /// The time an answer may take to begin: p95 of recent ones plus 20 %, within
    /// `min_ms..=max_ms` (the upper bound until enough answers were seen).
    pub fn timeout_ms(&self, min_ms: u64, max_ms: u64) -> u64 {
        if self.latencies_ms.len() < LATENCY_SAMPLES_MIN {
            return max_ms;
        }
        let mut sorted: Vec<u64> = self.latencies_ms.iter().copied().collect();
        sorted.sort_unstable();
        let p95 = sorted[(sorted.len() * 95).div_ceil(100) - 1];
        (p95 + p95 / 5).clamp(min_ms, max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::new("127.0.0.1:1".parse().unwrap(), "o".into())
    }

    #[test]
    fn three_failures_open_the_breaker_and_one_trial_goes_through_later() {
        let mut o = origin();
        assert_eq!(o.failed(0, 1000), Breaker::Closed);
        assert_eq!(o.failed(0, 1000), Breaker::Closed);
        assert!(o.admit(0));
        assert_eq!(o.failed(10, 1000), Breaker::Tripped);
        assert!(!o.admit(500), "open");
        assert!(o.admit(1010), "half-open: one trial");
        assert!(!o.admit(1011), "only one");
        assert_eq!(
            o.failed(1020, 1000),
            Breaker::Closed,
            "still open, not tripped again"
        );
        assert!(!o.admit(1500));
        assert!(o.admit(2020));
        o.succeeded(Some(5));
        assert!(o.admit(2021) && o.admit(2022), "closed after a success");
    }

    #[test]
    fn the_timeout_follows_the_p95_with_a_margin() {
        let mut o = origin();
        assert_eq!(o.timeout_ms(50, 2000), 2000, "too few samples: the bound");
        for ms in 1..=100 {
            o.succeeded(Some(ms));
        }
        // The last 64 samples are 37..=100: the 61st is the p95, 97; plus 20 % is 116.
        assert_eq!(o.timeout_ms(50, 2000), 116);
        assert_eq!(o.timeout_ms(200, 2000), 200);
        assert_eq!(o.timeout_ms(10, 100), 100);
    }
}
