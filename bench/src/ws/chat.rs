//! The text of a benchmark chat, `b:<sender>:<counter>:<sent_us>`, and the clock it is read
//! against.
//!
//! The text carries everything a receiver needs to account for a delivery without asking
//! anyone: which sender, which of its chats (counters run 0, 1, 2, ... per sender), and when it
//! was sent, in microseconds of `CLOCK_MONOTONIC`. That clock is shared by every process on
//! one host, so a receiver in another worker process can subtract the send time from its own
//! receive time.

/// Longest benchmark chat text: `b:` + three 20-digit numbers + two colons.
pub const CHAT_TEXT_MAX_BYTES: usize = 2 + 3 * 20 + 2;

/// What a benchmark chat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatText {
    /// The sender's id: its index among the run's senders.
    pub sender: u64,
    /// The sender's counter: 0 for its first chat, then 1, 2, ...
    pub counter: u64,
    /// When it was sent (or due, if it went out late), `CLOCK_MONOTONIC` microseconds.
    pub sent_us: u64,
}

impl ChatText {
    /// Writes the text into `out` (cleared first).
    pub fn write(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.clear();
        let _ = write!(out, "b:{}:{}:{}", self.sender, self.counter, self.sent_us);
    }

    /// Reads a text written by [`ChatText::write`]; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("b:")?;
        if rest.len() > CHAT_TEXT_MAX_BYTES {
            return None;
        }
        let mut fields = rest.split(':');
        let mut number = || -> Option<u64> {
            let field = fields.next()?;
            // `parse` would accept a leading `+`; the writer never produces one.
            if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            field.parse().ok()
        };
        let parsed = Self {
            sender: number()?,
            counter: number()?,
            sent_us: number()?,
        };
        fields.next().is_none().then_some(parsed)
    }
}

/// Microseconds of `CLOCK_MONOTONIC`: comparable between processes on one host, unlike
/// `Instant`, whose value cannot leave its process.
pub fn monotonic_us() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1000
}

/// Ties `CLOCK_MONOTONIC` microseconds to `Instant`s of this process, so that deadlines given
/// in one can be waited for with timers that take the other.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: std::time::Instant,
    anchor_us: u64,
}

impl Clock {
    /// Reads both clocks now.
    pub fn new() -> Self {
        Self {
            anchor: std::time::Instant::now(),
            anchor_us: monotonic_us(),
        }
    }

    /// The `Instant` of monotonic time `us` (clamped to the anchor for earlier times).
    pub fn instant_of(&self, us: u64) -> std::time::Instant {
        self.anchor + std::time::Duration::from_micros(us.saturating_sub(self.anchor_us))
    }

    /// The monotonic time of `instant`.
    pub fn us_of(&self, instant: std::time::Instant) -> u64 {
        self.anchor_us + instant.saturating_duration_since(self.anchor).as_micros() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let mut out = String::new();
        for chat in [
            ChatText {
                sender: 0,
                counter: 0,
                sent_us: 0,
            },
            ChatText {
                sender: 999,
                counter: 123_456,
                sent_us: 98_765_432_101,
            },
            ChatText {
                sender: u64::MAX,
                counter: u64::MAX,
                sent_us: u64::MAX,
            },
        ] {
            chat.write(&mut out);
            assert!(out.len() <= CHAT_TEXT_MAX_BYTES + 2);
            assert_eq!(ChatText::parse(&out), Some(chat));
        }
        ChatText {
            sender: 3,
            counter: 17,
            sent_us: 42,
        }
        .write(&mut out);
        assert_eq!(out, "b:3:17:42");
    }

    #[test]
    fn foreign_texts_refused() {
        for text in [
            "",
            "hello",
            "b:",
            "b:1:2",
            "b:1:2:3:4",
            "b:1::3",
            "b:+1:2:3",
            "b:-1:2:3",
            "b:1:2:x",
            "x:1:2:3",
            "b:1:2:99999999999999999999999",
        ] {
            assert_eq!(ChatText::parse(text), None, "{text}");
        }
    }

    #[test]
    fn clock_maps_both_ways() {
        let clock = Clock::new();
        let a = monotonic_us();
        let b = monotonic_us();
        assert!(b >= a);
        let later = clock.instant_of(a + 5_000);
        let back = clock.us_of(later);
        assert!(back.abs_diff(a + 5_000) <= 1, "{back} vs {}", a + 5_000);
        assert!(clock.instant_of(0) <= std::time::Instant::now());
    }
}
