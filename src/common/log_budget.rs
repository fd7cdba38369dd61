//! Caps log lines driven by clients (bad frames, bad messages, refused publishes) so that a
//! flood of bad clients cannot flood the log: at most [`LogBudget::LINES_PER_S`] a second per
//! shard; the rest are counted and reported in one line when the next second begins.

/// One shard's budget.
#[derive(Debug, Default)]
pub struct LogBudget {
    window_start_ms: u64,
    lines: u32,
    suppressed: u64,
}

impl LogBudget {
    /// Lines allowed per second.
    pub const LINES_PER_S: u32 = 10;

    /// True when a line may be written now (`now_ms`: the shard's clock).
    pub fn allow(&mut self, now_ms: u64) -> bool {
        if now_ms >= self.window_start_ms + 1000 {
            if self.suppressed > 0 {
                log::info!("{} similar log lines suppressed", self.suppressed);
            }
            *self = LogBudget {
                window_start_ms: now_ms,
                lines: 0,
                suppressed: 0,
            };
        }
        if self.lines < Self::LINES_PER_S {
            self.lines += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_lines_a_second_then_silence_until_the_next_second() {
        let mut budget = LogBudget::default();
        let allowed = (0..50).filter(|_| budget.allow(5_000)).count();
        assert_eq!(allowed, 10);
        assert!(!budget.allow(5_999));
        assert!(budget.allow(6_000));
    }
}
