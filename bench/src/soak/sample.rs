//! What the soak reads from the server: its gauges from `/metrics` (process totals), its
//! RSS from `/proc/PID/status`; every `sample_every` during the churn, then until it has let
//! everything go.
//!
//! Each scrape is one `GET /metrics` on a new connection with `Connection: close`; that
//! connection is open while the server renders, so `connections_open` counts it (the idle
//! baseline is 1, and so are the timers: the connection's own).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{LoadGauges, SoakConfig};

/// Longest wait for one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for the idle server to have no connection but the scrape's.
const BASELINE_WAIT: Duration = Duration::from_secs(10);

/// How often the settle polls.
const SETTLE_POLL: Duration = Duration::from_secs(1);

/// The gauges sampled, as `(field, metric)`.
pub const GAUGES: [(&str, &str); 9] = [
    ("connections_open", "shardcast_engine_connections_open"),
    ("timers_armed", "shardcast_engine_timers_armed"),
    ("rooms_home", "shardcast_danmaku_rooms_home"),
    ("rooms_local", "shardcast_danmaku_rooms_local"),
    ("streams_home", "shardcast_media_streams_home"),
    ("index_bytes", "shardcast_media_index_bytes"),
    ("ffmpeg_owners", "shardcast_ffmpeg_live_owners"),
    ("ws_connections", "shardcast_danmaku_ws_connections"),
    ("rtmp_connections", "shardcast_media_rtmp_connections"),
];

/// Server counters reported at the end (process totals).
pub const TOTALS: [&str; 24] = [
    "shardcast_engine_accepts_total",
    "shardcast_engine_accepts_refused_total",
    "shardcast_engine_closes_total",
    "shardcast_engine_timers_refused_total",
    "shardcast_engine_recv_buffer_exhausted_total",
    "shardcast_engine_mesh_overflowed_total",
    "shardcast_http_bad_requests_total",
    "shardcast_http_header_timeouts_total",
    "shardcast_http_idle_timeouts_total",
    "shardcast_danmaku_ws_upgrades_total",
    "shardcast_danmaku_ws_protocol_errors_total",
    "shardcast_danmaku_wire_invalid_total",
    "shardcast_danmaku_in_chat_total",
    "shardcast_danmaku_rate_limited_total",
    "shardcast_danmaku_dropped_total",
    "shardcast_danmaku_stalled_closed_total",
    "shardcast_danmaku_close_timeouts_total",
    "shardcast_danmaku_resume_hits_total",
    "shardcast_danmaku_resume_misses_total",
    "shardcast_media_rtmp_errors_total",
    "shardcast_media_rtmp_timeouts_total",
    "shardcast_media_publishes_total",
    "shardcast_media_publishes_refused_total",
    "shardcast_media_samples_rejected_total",
];

/// When a sample was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the churn.
    Idle,
    /// During the churn.
    Churn,
    /// After the churn, while the server lets go.
    Settle,
}

/// One sample: the server's gauges and RSS, and the clients open at that moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the churn started.
    pub t_s: f64,
    pub phase: Phase,
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// The allocator's figures from `/metrics`, KiB: committed by mimalloc, and held by the
    /// program (0 unless the server was built with the `heap-stats` feature).
    #[serde(default)]
    pub heap_kib: [u64; 2],
    /// CPU time the server has used so far (user and system), in 10 ms ticks.
    pub cpu_ticks: u64,
    /// From `/api/v1/streams`: streams indexed (live or ended), of them ended, and the
    /// segments of all their renditions.
    pub indexed: [u64; 3],
    /// The [`GAUGES`], in order.
    pub gauges: Vec<u64>,
    /// Clients open: viewers, stallers, publishers, players, bad clients.
    pub load: [u64; 5],
}

impl Sample {
    /// Gauge `field` (a name of [`GAUGES`]).
    pub fn gauge(&self, field: &str) -> u64 {
        let index = GAUGES
            .iter()
            .position(|(f, _)| *f == field)
            .expect("a field of GAUGES");
        self.gauges[index]
    }
}

/// The server at rest before the churn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub sample: Sample,
}

impl Baseline {
    /// Scrapes the idle server, once the connections of whoever checked that it listens
    /// (and their lingering closes) are gone, or after [`BASELINE_WAIT`].
    pub fn take(config: &SoakConfig) -> Result<Baseline, String> {
        let began = Instant::now();
        loop {
            let metrics = scrape(config.http)?;
            let gauges = gauges_of(&metrics);
            let sample = Sample {
                t_s: 0.0,
                phase: Phase::Idle,
                rss_kib: rss_kib(config.server_pid)
                    .ok_or_else(|| format!("no VmRSS in /proc/{}/status", config.server_pid))?,
                heap_kib: heap_kib(&metrics),
                cpu_ticks: cpu_ticks(config.server_pid).unwrap_or(0),
                indexed: indexed(config.http).unwrap_or_default(),
                gauges,
                load: [0; 5],
            };
            let quiet = sample.gauge("connections_open") <= 1;
            if quiet || began.elapsed() >= BASELINE_WAIT {
                return Ok(Baseline { sample });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Starts the sampler: a sample every `sample_every` from `start` until `stop` is set.
pub fn spawn_sampler(
    config: SoakConfig,
    start: Instant,
    gauges: Arc<LoadGauges>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        let mut next = start + config.sample_every;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() < next {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            match take_sample(&config, start, Phase::Churn, &gauges) {
                Ok(sample) => samples.push(sample),
                Err(why) => eprintln!("soak: sample failed: {why}"),
            }
            next += config.sample_every;
        }
        samples
    })
}

fn take_sample(
    config: &SoakConfig,
    start: Instant,
    phase: Phase,
    load: &LoadGauges,
) -> Result<Sample, String> {
    let metrics = scrape(config.http)?;
    let t_s = start.elapsed().as_secs_f64();
    let rss_kib = rss_kib(config.server_pid).ok_or("the server's VmRSS is gone")?;
    let cpu_ticks = cpu_ticks(config.server_pid).unwrap_or(0);
    let indexed = indexed(config.http)?;
    let read = |g: &std::sync::atomic::AtomicU64| g.load(Ordering::Relaxed);
    Ok(Sample {
        t_s,
        phase,
        rss_kib,
        heap_kib: heap_kib(&metrics),
        cpu_ticks,
        indexed,
        gauges: gauges_of(&metrics),
        load: [
            read(&load.viewers),
            read(&load.stallers),
            read(&load.publishers),
            read(&load.players),
            read(&load.bad),
        ],
    })
}

/// The end of the soak: polled until the server is back to rest or `settle_max` passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settle {
    /// Seconds from the end of the churn to rest (or to giving up).
    pub waited_s: f64,
    /// The last sample.
    pub last: Option<Sample>,
    /// Samples every `sample_every` while waiting (the last one included).
    pub samples: Vec<Sample>,
    /// Server counters at the end ([`TOTALS`]).
    pub totals: Vec<(String, f64)>,
}

/// Polls after the churn until [`at_rest`] or `config.settle_max`.
pub fn settle(config: &SoakConfig, baseline: &Baseline, start: Instant) -> Settle {
    let began = Instant::now();
    let idle = LoadGauges::default();
    let mut samples: Vec<Sample> = Vec::new();
    let mut last = None;
    let mut next_kept = began;
    loop {
        let polled = Instant::now();
        match take_sample(config, start, Phase::Settle, &idle) {
            Ok(sample) => {
                let rest = at_rest(&sample, &baseline.sample);
                if rest || polled >= next_kept || began.elapsed() >= config.settle_max {
                    samples.push(sample.clone());
                    next_kept = polled + config.sample_every;
                }
                last = Some(sample);
                if rest {
                    break;
                }
            }
            Err(why) => eprintln!("soak: sample failed: {why}"),
        }
        if began.elapsed() >= config.settle_max {
            break;
        }
        std::thread::sleep(SETTLE_POLL);
    }
    let totals = scrape(config.http)
        .map(|m| {
            TOTALS
                .iter()
                .map(|name| (name.to_string(), m.get(*name).copied().unwrap_or(f64::NAN)))
                .collect()
        })
        .unwrap_or_default();
    Settle {
        waited_s: began.elapsed().as_secs_f64(),
        last,
        samples,
        totals,
    }
}

/// Whether `sample` shows nothing left of the churn: connections, rooms, streams, FFmpeg
/// owners, WebSocket and RTMP connections at their idle values, timers at or below.
pub fn at_rest(sample: &Sample, baseline: &Sample) -> bool {
    end_checks(sample, baseline).iter().all(|check| check.pass)
}

/// One item of the end state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub item: String,
    pub idle: u64,
    pub end: u64,
    pub pass: bool,
}

/// Each gauge at the end against its idle value, and the streams indexed (ended ones retire
/// after the server's `media.ended_keep_s`).
pub fn end_checks(sample: &Sample, baseline: &Sample) -> Vec<Check> {
    let indexed = Check {
        item: "indexed_streams".to_string(),
        idle: baseline.indexed[0],
        end: sample.indexed[0],
        pass: sample.indexed[0] == 0,
    };
    GAUGES
        .iter()
        .map(|(field, _)| {
            let (idle, end) = (baseline.gauge(field), sample.gauge(field));
            let pass = match *field {
                // The scrape's own connection (and its timer) is open at both ends.
                "timers_armed" => end <= idle,
                "connections_open" => end <= 1,
                _ => end == 0,
            };
            Check {
                item: field.to_string(),
                idle,
                end,
                pass,
            }
        })
        .chain(std::iter::once(indexed))
        .collect()
}

/// `shardcast_heap_committed_bytes` and `shardcast_heap_live_bytes`, KiB (0 when absent).
fn heap_kib(metrics: &HashMap<String, f64>) -> [u64; 2] {
    [
        "shardcast_heap_committed_bytes",
        "shardcast_heap_live_bytes",
    ]
    .map(|name| (metrics.get(name).copied().unwrap_or(0.0).max(0.0) / 1024.0) as u64)
}

fn gauges_of(metrics: &HashMap<String, f64>) -> Vec<u64> {
    GAUGES
        .iter()
        .map(|(_, metric)| metrics.get(*metric).copied().unwrap_or(0.0) as u64)
        .collect()
}

/// `GET /metrics`, parsed.
pub fn scrape(addr: SocketAddr) -> Result<HashMap<String, f64>, String> {
    Ok(parse_metrics(&get(addr, "/metrics")?))
}

/// `GET /api/v1/streams`: streams indexed, of them ended, and their segments.
pub fn indexed(addr: SocketAddr) -> Result<[u64; 3], String> {
    let body = get(addr, "/api/v1/streams")?;
    parse_streams(&body)
}

fn parse_streams(body: &str) -> Result<[u64; 3], String> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("/api/v1/streams: {e}"))?;
    let streams = json["streams"]
        .as_array()
        .ok_or("/api/v1/streams: no `streams` array")?;
    let ended = streams.iter().filter(|s| s["live"] == false).count();
    let segments: u64 = streams
        .iter()
        .filter_map(|s| s["renditions"].as_array())
        .flatten()
        .filter_map(|r| r["segments"].as_u64())
        .sum();
    Ok([streams.len() as u64, ended as u64, segments])
}

/// One `GET` with `Connection: close`; the body of a 200 response.
fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(SCRAPE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    let status_line = head.lines().next().unwrap_or("");
    if super::io::status_of(status_line) != Some(200) {
        return Err(format!("{path} answered `{status_line}`"));
    }
    Ok(body.to_owned())
}

/// The unlabelled samples of a Prometheus text exposition (the process totals).
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.contains('{'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// VmRSS of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

/// utime + stime of `pid` (fields 14 and 15 of `/proc/PID/stat`, counted after the
/// parenthesised name), in the kernel's 100 Hz ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the loopback TCP connection between `local_port` and `peer_port` is ESTABLISHED
/// at both ends (`/proc/net/tcp` lists both, the server's too). A server that closed its end
/// moves it to FIN_WAIT1 (or drops it after a reset) even while its FIN waits behind bytes
/// the client never read, which the client's own end cannot tell.
pub fn tcp_open_both_ends(local_port: u16, peer_port: u16) -> bool {
    std::fs::read_to_string("/proc/net/tcp")
        .map(|table| {
            tcp_state(&table, local_port, peer_port) == Some(TCP_ESTABLISHED)
                && tcp_state(&table, peer_port, local_port) == Some(TCP_ESTABLISHED)
        })
        .unwrap_or(false)
}

/// `TCP_ESTABLISHED` in `/proc/net/tcp`'s `st` column.
const TCP_ESTABLISHED: u8 = 1;

/// The state (`st`, hex) of the socket from `local_port` to `peer_port` in a
/// `/proc/net/tcp` table.
fn tcp_state(table: &str, local_port: u16, peer_port: u16) -> Option<u8> {
    let port = |address: &str| u16::from_str_radix(address.rsplit_once(':')?.1, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (local, peer, state) = (fields.next()?, fields.next()?, fields.next()?);
        (port(local)? == local_port && port(peer)? == peer_port)
            .then(|| u8::from_str_radix(state, 16).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_totals_are_parsed_and_shard_series_ignored() {
        let text = "# HELP x\n# TYPE shardcast_engine_connections_open gauge\n\
                    shardcast_engine_connections_open 3\n\
                    shardcast_shard_connections_open{shard=\"0\"} 3\n\
                    shardcast_danmaku_rooms_home 12\n";
        let metrics = parse_metrics(text);
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics["shardcast_danmaku_rooms_home"], 12.0);
        assert_eq!(gauges_of(&metrics)[0], 3);
    }

    #[test]
    fn indexed_streams_are_counted() {
        let body = r#"{"streams":[{"stream":"a","live":true,"renditions":[{"segments":3},{"segments":4}]},
                       {"stream":"b","live":false,"renditions":[{"segments":5}]}]}"#;
        assert_eq!(parse_streams(body), Ok([2, 1, 12]));
        assert_eq!(parse_streams(r#"{"streams":[]}"#), Ok([0, 0, 0]));
        assert!(parse_streams("nope").is_err());
    }

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tshardcast\nVmPeak:\t  100 kB\nVmRSS:\t   51234 kB\n";
        assert_eq!(parse_rss_kib(status), Some(51234));
        assert_eq!(parse_rss_kib("Name: x\n"), None);
        let stat = "42 (shard cast) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 3 0 99";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
    }

    #[test]
    fn tcp_states_are_found_by_ports() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
                     0: 0100007F:1F90 0100007F:D431 01 00000000:00000000\n\
                     1: 0100007F:D431 0100007F:1F90 08 00000000:00000000\n";
        assert_eq!(tcp_state(table, 0xD431, 0x1F90), Some(8));
        assert_eq!(tcp_state(table, 0x1F90, 0xD431), Some(1));
        assert_eq!(tcp_state(table, 1, 2), None);
        assert_eq!(TCP_ESTABLISHED, 1);
    }

    #[test]
    fn the_end_state_allows_the_scrape_connection_only() {
        let sample = |gauges: Vec<u64>, indexed: u64| Sample {
            t_s: 0.0,
            phase: Phase::Settle,
            rss_kib: 0,
            heap_kib: [0; 2],
            cpu_ticks: 0,
            indexed: [indexed, indexed, 0],
            gauges,
            load: [0; 5],
        };
        let idle = sample(vec![1, 1, 0, 0, 0, 0, 0, 0, 0], 0);
        assert!(at_rest(&sample(vec![1, 1, 0, 0, 0, 0, 0, 0, 0], 0), &idle));
        assert!(!at_rest(&sample(vec![2, 1, 0, 0, 0, 0, 0, 0, 0], 0), &idle));
        assert!(!at_rest(&sample(vec![1, 2, 0, 0, 0, 0, 0, 0, 0], 0), &idle));
        assert!(!at_rest(&sample(vec![1, 1, 1, 0, 0, 0, 0, 0, 0], 0), &idle));
        let checks = end_checks(&sample(vec![1, 1, 0, 0, 3, 0, 0, 0, 0], 0), &idle);
        assert_eq!(checks.iter().filter(|c| !c.pass).count(), 1);
        assert_eq!(checks[4].item, "streams_home");
        // An ended stream still indexed (bytes held) is left behind too.
        let checks = end_checks(&sample(vec![1, 1, 0, 0, 0, 4096, 0, 0, 0], 1), &idle);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.item.as_str())
            .collect();
        assert_eq!(failed, ["index_bytes", "indexed_streams"]);
    }
}
