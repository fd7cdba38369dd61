//! `/metrics` (Prometheus text format 0.0.4) and `/api/v1/info` (JSON).
//!
//! Every counter is exported twice: a process total (`shardcast_<name>`) and per shard
//! (`shardcast_shard_<name>{shard="i"}`), under different names so that summing a metric never
//! counts a shard twice.

use super::settings::HttpSettings;
use shardcast_engine::RuntimeInfo;
use std::fmt::Write as _;

/// Renders the Prometheus exposition.
pub fn render(
    info: &RuntimeInfo,
    settings: &HttpSettings,
    rungs: &[(std::sync::Arc<str>, shardcast_media::RungInfo)],
) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let shards = info.shards();
    let engine: Vec<_> = info.counters.iter().map(|c| c.snapshot()).collect();
    write_block(&mut out, "engine", &engine);
    let http: Vec<_> = settings.counters.iter().map(|c| c.snapshot()).collect();
    write_block(&mut out, "http", &http);
    let danmaku: Vec<_> = settings
        .danmaku
        .counters
        .iter()
        .map(|c| c.snapshot())
        .collect();
    write_block(&mut out, "danmaku", &danmaku);
    write_threads(&mut out, settings);
    write_histogram(
        &mut out,
        "shardcast_danmaku_delivery_latency_seconds",
        "Time from a room's home shard cutting a batch to the batch being queued on the \
         sockets of a shard with members (once per batch per shard).",
        &settings.danmaku.latency,
    );
    let media: Vec<_> = settings
        .media
        .counters
        .iter()
        .map(|c| c.snapshot())
        .collect();
    write_block(&mut out, "media", &media);
    write_histogram(
        &mut out,
        "shardcast_media_part_ready_latency_seconds",
        "Time from the last sample of an LL-HLS part reaching the server to the part being \
         servable (once per part per track per shard).",
        &settings.media.part_latency,
    );
    if let Some(transcode) = &settings.media.transcode {
        let workers: Vec<_> = transcode.counters.iter().map(|c| c.snapshot()).collect();
        write_block_labelled(&mut out, "transcode", "worker", &workers);
        write_rungs(&mut out, rungs);
    }
    let owners = shardcast_native::live_owners();
    let _ = writeln!(
        out,
        "# HELP shardcast_ffmpeg_live_owners FFmpeg objects (codec contexts, frames, packets, \
         scalers, ...) alive in the process.\n# TYPE shardcast_ffmpeg_live_owners gauge\n\
         shardcast_ffmpeg_live_owners {}",
        owners.total()
    );
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
    write_heap(&mut out);
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

/// What the allocator has committed and, in a `heap-stats` build, what the program holds.
fn write_heap(out: &mut String) {
    let committed = shardcast_engine::heap::committed_bytes();
    let _ = writeln!(
        out,
        "# HELP shardcast_heap_committed_bytes Memory the allocator (mimalloc) has committed \
         from the OS: live blocks, free space in its pages, pages not yet purged.\n\
         # TYPE shardcast_heap_committed_bytes gauge\nshardcast_heap_committed_bytes {committed}"
    );
    if let Some(live) = shardcast_engine::heap::live_bytes() {
        let _ = writeln!(
            out,
            "# HELP shardcast_heap_live_bytes Bytes the program holds on the heap (sizes as \
             requested; built with the heap-stats feature).\n\
             # TYPE shardcast_heap_live_bytes gauge\nshardcast_heap_live_bytes {live}"
        );
    }
}

/// Counter snapshots of every shard (same names, same order) as `shardcast_{prefix}_*`.
pub fn write_block(out: &mut String, prefix: &str, snapshots: &[Snapshot]) {
    write_block_labelled(out, prefix, "shard", snapshots);
}

/// [`write_block`] for threads that are not shards: per-thread series carry `{label="i"}`.
pub fn write_block_labelled(out: &mut String, prefix: &str, label: &str, snapshots: &[Snapshot]) {
    let Some(first) = snapshots.first() else {
        return;
    };
    for (i, &(name, kind, help, _)) in first.iter().enumerate() {
        let per_shard: Vec<u64> = snapshots.iter().map(|s| s[i].3).collect();
        let name = if kind == "counter" {
            format!("{prefix}_{name}_total")
        } else {
            format!("{prefix}_{name}")
        };
        write_series(out, &name, kind, help.trim(), label, &per_shard);
    }
}

/// A latency histogram merged over shards, in seconds.
fn write_histogram(
    out: &mut String,
    name: &str,
    help: &str,
    shards: &[crate::common::counters::LatencyHistogram],
) {
    use crate::common::counters::{HistogramSnapshot, LATENCY_BUCKETS_US};
    let mut merged = HistogramSnapshot::default();
    for histogram in shards {
        histogram.merge_into(&mut merged);
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += merged.buckets[i];
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    cumulative += merged.buckets[LATENCY_BUCKETS_US.len()];
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", merged.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {}", merged.count);
}

/// One shard's counters as `(name, kind, help, value)`.
pub type Snapshot = Vec<(&'static str, &'static str, &'static str, u64)>;

fn write_series(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    per_thread: &[u64],
) {
    let total: u64 = per_thread.iter().sum();
    let _ = writeln!(out, "# HELP shardcast_{name} {help}");
    let _ = writeln!(out, "# TYPE shardcast_{name} {kind}");
    let _ = writeln!(out, "shardcast_{name} {total}");
    let _ = writeln!(out, "# HELP shardcast_{label}_{name} {help} Per {label}.");
    let _ = writeln!(out, "# TYPE shardcast_{label}_{name} {kind}");
    for (index, value) in per_thread.iter().enumerate() {
        let _ = writeln!(
            out,
            "shardcast_{label}_{name}{{{label}=\"{index}\"}} {value}"
        );
    }
}

/// Per live stream and rung: fps, speed, queue depth and the encoder (as a label of an info
/// series), from the rung facts the workers last reported.
fn write_rungs(out: &mut String, rungs: &[(std::sync::Arc<str>, shardcast_media::RungInfo)]) {
    type Value = fn(&shardcast_media::RungInfo) -> f64;
    let series: [(&str, &str, Value); 4] = [
        (
            "fps",
            "Pictures encoded per second over the last second.",
            |r| r.fps,
        ),
        (
            "speed",
            "Media time transcoded per second of wall time (1 keeps up with a live source).",
            |r| r.speed,
        ),
        (
            "queue_depth",
            "Source access units waiting on the worker.",
            |r| r.queue as f64,
        ),
        (
            "skipped",
            "Source access units skipped to catch up with real time.",
            |r| r.skipped as f64,
        ),
    ];
    for (name, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP shardcast_rung_{name} {help}\n# TYPE shardcast_rung_{name} gauge"
        );
        for (stream, rung) in rungs {
            let _ = writeln!(
                out,
                "shardcast_rung_{name}{{stream=\"{}\",rung=\"{}\"}} {}",
                escape_label(stream),
                escape_label(&rung.name),
                value(rung)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP shardcast_rung_info A transcoded rung: its encoder and size.\n\
         # TYPE shardcast_rung_info gauge"
    );
    for (stream, rung) in rungs {
        let _ = writeln!(
            out,
            "shardcast_rung_info{{stream=\"{}\",rung=\"{}\",encoder=\"{}\",width=\"{}\",height=\"{}\",worker=\"{}\"}} 1",
            escape_label(stream),
            escape_label(&rung.name),
            escape_label(&rung.encoder),
            rung.width,
            rung.height,
            rung.worker
        );
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The counters of the threads that are not shards: the ledger's and relay's, the recorder's.
fn write_threads(out: &mut String, settings: &HttpSettings) {
    let state = [settings.danmaku.state_counters.snapshot()];
    write_block_labelled(out, "state", "thread", &state);
    let record = [settings.media.record.counters.snapshot()];
    write_block_labelled(out, "record", "thread", &record);
    if let Some(edge) = &settings.media.edge {
        write_block_labelled(out, "edge", "thread", &[edge.counters.snapshot()]);
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
