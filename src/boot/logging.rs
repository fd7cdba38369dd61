//! A small stderr logger behind the `log` facade: UTC timestamp, level, thread, message.
//! One line per record, written with a single `write` so lines from shards do not interleave.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

struct StderrLogger {
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let thread = std::thread::current();
        let line = format!(
            "{} {:5} [{}] {}\n",
            format_utc(now.as_secs(), now.subsec_millis()),
            record.level(),
            thread.name().unwrap_or("main"),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger. `SHARDCAST_LOG` (a level name) overrides `level`.
pub fn init(level: &str) {
    let chosen = std::env::var("SHARDCAST_LOG").unwrap_or_else(|_| level.to_string());
    let level = chosen.parse().unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from Unix seconds and milliseconds.
fn format_utc(unix_seconds: u64, millis: u32) -> String {
    shardcast_media::manifest::Iso8601Ms(unix_seconds * 1000 + u64::from(millis)).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::format_utc(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::format_utc(784_111_777, 5),
            "1994-11-06T08:49:37.005Z"
        );
        assert_eq!(
            super::format_utc(1_709_208_000, 999),
            "2024-02-29T12:00:00.999Z"
        );
    }
}
