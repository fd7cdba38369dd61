//! `/metrics` (Prometheus text format 0.0.4) and `/api/v1/info` (JSON).
//!
//! Every counter is exported twice: a process total (`shardcast_<name>`) and per shard
//! (`shardcast_shard_<name>{shard="i"}`), under different names so that summing a metric never
//! counts a shard twice.

use crate::http_service::{HttpCounters, HttpSettings};
use shardcast_engine::RuntimeInfo;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// The HTTP counters as `(name, help, value per shard)`.
fn http_series(settings: &HttpSettings) -> Vec<(&'static str, &'static str, Vec<u64>)> {
    type Pick = fn(&HttpCounters) -> &std::sync::atomic::AtomicU64;
    let rows: [(&'static str, &'static str, Pick); 9] = [
        ("http_requests_total", "HTTP requests decoded.", |c| {
            &c.requests
        }),
        (
            "http_responses_2xx_total",
            "HTTP responses with a 2xx status.",
            |c| &c.responses_2xx,
        ),
        (
            "http_responses_3xx_total",
            "HTTP responses with a 3xx status.",
            |c| &c.responses_3xx,
        ),
        (
            "http_responses_4xx_total",
            "HTTP responses with a 4xx status.",
            |c| &c.responses_4xx,
        ),
        (
            "http_responses_5xx_total",
            "HTTP responses with a 5xx status.",
            |c| &c.responses_5xx,
        ),
        (
            "http_rejected_over_capacity_total",
            "Connections answered 503 because the shard was at http.max_connections_per_shard.",
            |c| &c.rejected_over_capacity,
        ),
        (
            "http_bad_requests_total",
            "Requests refused as malformed or over a cap.",
            |c| &c.bad_requests,
        ),
        (
            "http_header_timeouts_total",
            "Connections answered 408 (request head too slow).",
            |c| &c.header_timeouts,
        ),
        (
            "http_idle_timeouts_total",
            "Idle connections closed.",
            |c| &c.idle_timeouts,
        ),
    ];
    rows.iter()
        .map(|(name, help, pick)| {
            let values = settings
                .counters
                .iter()
                .map(|c| pick(c).load(Ordering::Relaxed))
                .collect();
            (*name, *help, values)
        })
        .collect()
}

/// Renders the Prometheus exposition.
pub fn render(info: &RuntimeInfo, settings: &HttpSettings) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let shards = info.shards();
    // Engine counters: same names on every shard, in the same order.
    let snapshots: Vec<_> = info.counters.iter().map(|c| c.snapshot()).collect();
    for (i, &(name, kind, help, _)) in snapshots[0].iter().enumerate() {
        let per_shard: Vec<u64> = snapshots.iter().map(|s| s[i].3).collect();
        let name = if kind == "counter" {
            format!("engine_{name}_total")
        } else {
            format!("engine_{name}")
        };
        write_series(&mut out, &name, kind, help.trim(), &per_shard);
    }
    for (name, help, per_shard) in http_series(settings) {
        write_series(&mut out, name, "counter", help, &per_shard);
    }
    let _ = writeln!(
        out,
        "# HELP shardcast_shards Shards (threads pinned one per core)."
    );
    let _ = writeln!(out, "# TYPE shardcast_shards gauge");
    let _ = writeln!(out, "shardcast_shards {shards}");
    let _ = writeln!(
        out,
        "# HELP shardcast_info Build and runtime facts, as labels.\n# TYPE shardcast_info gauge\n\
         shardcast_info{{version=\"{}\",io_backend=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        info.backend
    );
    let rss = shardcast_engine::sys::resident_memory_bytes();
    let _ = writeln!(
        out,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
         # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
    );
    let started = settings
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = writeln!(
        out,
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n\
         # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started:.3}"
    );
    out
}

fn write_series(out: &mut String, name: &str, kind: &str, help: &str, per_shard: &[u64]) {
    let total: u64 = per_shard.iter().sum();
    let _ = writeln!(out, "# HELP shardcast_{name} {help}");
    let _ = writeln!(out, "# TYPE shardcast_{name} {kind}");
    let _ = writeln!(out, "shardcast_{name} {total}");
    let _ = writeln!(out, "# HELP shardcast_shard_{name} {help} Per shard.");
    let _ = writeln!(out, "# TYPE shardcast_shard_{name} {kind}");
    for (shard, value) in per_shard.iter().enumerate() {
        let _ = writeln!(out, "shardcast_shard_{name}{{shard=\"{shard}\"}} {value}");
    }
}

/// Renders `/api/v1/info`.
pub fn info_json(info: &RuntimeInfo, settings: &HttpSettings) -> String {
    let listeners: serde_json::Map<String, serde_json::Value> = info
        .listeners
        .iter()
        .map(|(name, addr)| (name.clone(), serde_json::Value::String(addr.to_string())))
        .collect();
    let uptime_s = settings.started.elapsed().map_or(0, |d| d.as_secs());
    let value = serde_json::json!({
        "name": "shardcast",
        "version": env!("CARGO_PKG_VERSION"),
        "shards": info.shards(),
        "cores": info.cores,
        "io": {
            "backend": info.backend,
            "reason": info.backend_reason,
            "ring_features": info.features,
        },
        "listeners": listeners,
        "uptime_s": uptime_s,
        "pid": std::process::id(),
    });
    let mut text = value.to_string();
    text.push('\n');
    text
}
