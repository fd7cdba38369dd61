//! A small stderr logger behind the `log` facade: UTC timestamp, level, thread, message, as
//! text or as one JSON object per line (`log.format = "json"`: `{"ts", "level", "thread",
//! "target", "msg"}`, for log shippers). One line per record, written with a single `write` so
//! lines from shards do not interleave.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// How each record is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-01-01T00:00:00.000Z INFO  [shard-0] message`
    Text,
    /// `{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","thread":"shard-0","target":"…","msg":"message"}`
    Json,
}

impl LogFormat {
    /// Parses `log.format`: "text" or "json".
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

struct StderrLogger {
    level: log::LevelFilter,
    format: LogFormat,
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
        let ts = format_utc(now.as_secs(), now.subsec_millis());
        let thread = thread.name().unwrap_or("main");
        let line = match self.format {
            LogFormat::Text => format!("{ts} {:5} [{thread}] {}\n", record.level(), record.args()),
            LogFormat::Json => json_line(&ts, record, thread),
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// One record as a JSON object and a newline.
fn json_line(ts: &str, record: &log::Record, thread: &str) -> String {
    let mut line = serde_json::json!({
        "ts": ts,
        "level": record.level().as_str(),
        "thread": thread,
        "target": record.target(),
        "msg": record.args().to_string(),
    })
    .to_string();
    line.push('\n');
    line
}

/// Installs the logger. `SHARDCAST_LOG` (a level name) overrides `level`.
pub fn init(level: &str, format: LogFormat) {
    let chosen = std::env::var("SHARDCAST_LOG").unwrap_or_else(|_| level.to_string());
    let level = chosen.parse().unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger { level, format })).is_ok() {
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
    fn json_lines_are_one_object_with_the_message_escaped() {
        let args = format_args!("stream \"x\": ended\nnext");
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Warn)
            .target("shardcast::media")
            .build();
        let line = super::json_line("2026-01-01T00:00:00.000Z", &record, "shard-1");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["thread"], "shard-1");
        assert_eq!(v["target"], "shardcast::media");
        assert_eq!(v["msg"], "stream \"x\": ended\nnext");
        assert_eq!(v["ts"], "2026-01-01T00:00:00.000Z");
    }

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
