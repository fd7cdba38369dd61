//! Counting during a run ([`LoadStats`]) and what is reported after it ([`HttpReport`]): the
//! text table, the JSON document, and the Markdown comparison of several servers over several
//! rounds ([`markdown_comparison`]).

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency the histogram holds, in nanoseconds (one hour). Larger values are
/// recorded as this value. With 3 significant digits the histogram is about 200 KiB.
pub const LATENCY_MAX_NS: u64 = 3_600_000_000_000;

/// Failed requests and connection attempts, by cause.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Connection attempts that failed or timed out.
    pub connect: u64,
    /// Responses whose status differed from `--expect-status`.
    pub status: u64,
    /// Responses whose body length differed from `--expect-body-bytes`.
    pub body: u64,
    /// Responses that could not be framed (the connection is then dropped), and responses
    /// that arrived with no request outstanding.
    pub parse: u64,
    /// Requests lost because the server closed or reset the connection with them in flight.
    pub closed: u64,
    /// Requests lost because the oldest one in flight exceeded `--timeout` (the connection is
    /// then dropped, so every request in flight on it counts).
    pub timeout: u64,
}

impl ErrorCounts {
    /// Sum over all causes.
    pub fn total(&self) -> u64 {
        self.connect + self.status + self.body + self.parse + self.closed + self.timeout
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.status += other.status;
        self.body += other.body;
        self.parse += other.parse;
        self.closed += other.closed;
        self.timeout += other.timeout;
    }
}

/// What one load thread counted. Requests, bytes and latencies count only inside the
/// measurement window (after warm-up); errors and reconnects count over the whole run, so a
/// server that fails during warm-up still shows it.
#[derive(Debug, Clone)]
pub struct LoadStats {
    /// Latency of successful responses in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Successful responses.
    pub requests: u64,
    /// Bytes received (heads and bodies).
    pub bytes_received: u64,
    /// Body bytes of successful responses.
    pub body_bytes: u64,
    /// Failures by cause.
    pub errors: ErrorCounts,
    /// Connections opened again after the server closed one or a request failed.
    pub reconnects: u64,
}

impl Default for LoadStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadStats {
    /// Empty counters.
    pub fn new() -> Self {
        Self {
            latency_ns: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
                .expect("constant histogram bounds are valid"),
            requests: 0,
            bytes_received: 0,
            body_bytes: 0,
            errors: ErrorCounts::default(),
            reconnects: 0,
        }
    }

    /// Records one successful response.
    pub fn record_response(&mut self, latency: Duration, body_bytes: u64) {
        let latency_ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_ns
            .saturating_record(latency_ns.clamp(1, LATENCY_MAX_NS));
        self.requests += 1;
        self.body_bytes += body_bytes;
    }

    /// Adds another thread's counts to these.
    pub fn merge(&mut self, other: &LoadStats) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share bounds");
        self.requests += other.requests;
        self.bytes_received += other.bytes_received;
        self.body_bytes += other.body_bytes;
        self.errors.add(&other.errors);
        self.reconnects += other.reconnects;
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value seen.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl LatencyUs {
    /// Reads the percentiles from a nanosecond histogram. All zero when it is empty.
    pub fn from_histogram(latency_ns: &Histogram<u64>) -> Self {
        if latency_ns.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            p50: us(latency_ns.value_at_quantile(0.50)),
            p99: us(latency_ns.value_at_quantile(0.99)),
            p999: us(latency_ns.value_at_quantile(0.999)),
            max: us(latency_ns.max()),
            mean: latency_ns.mean() / 1000.0,
        }
    }
}

/// The result of one `http` run, as printed and as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpReport {
    /// Target URLs.
    pub urls: Vec<String>,
    /// Keep-alive connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Load threads.
    pub threads: usize,
    /// Open-loop target in requests/s; 0 for a closed loop.
    pub rate_per_sec: u64,
    /// Length of the measurement window (after warm-up), in seconds.
    pub duration_s: f64,
    /// Successful responses in the window.
    pub requests: u64,
    /// Successful responses per second.
    pub requests_per_sec: f64,
    /// Bytes received in the window (heads and bodies).
    pub bytes_received: u64,
    /// Bytes received as gigabits per second.
    pub gbit_per_sec: f64,
    /// Body bytes of successful responses in the window.
    pub body_bytes: u64,
    /// Latency percentiles. In an open loop, measured from the intended send time.
    pub latency_us: LatencyUs,
    /// Failures by cause (whole run, warm-up included).
    pub errors: ErrorCounts,
    /// Sum of `errors`.
    pub errors_total: u64,
    /// Connections reopened during the run.
    pub reconnects: u64,
    /// CPU used by the load generator over the whole run (warm-up included), in percent of
    /// one core. Near 100 per thread, the load generator may be what limits the figures.
    #[serde(default)]
    pub client_cpu_percent: f64,
}

/// How the run was shaped, for the report header.
#[derive(Debug, Clone)]
pub struct RunShape {
    /// Target URLs as given.
    pub urls: Vec<String>,
    /// Keep-alive connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Load threads.
    pub threads: usize,
    /// Open-loop target in requests/s; 0 for a closed loop.
    pub rate_per_sec: u64,
}

impl HttpReport {
    /// Derives rates and percentiles from merged counters over a window of `window`.
    pub fn from_stats(shape: RunShape, stats: &LoadStats, window: Duration) -> Self {
        let seconds = window.as_secs_f64();
        let per_sec = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            urls: shape.urls,
            connections: shape.connections,
            pipeline: shape.pipeline,
            threads: shape.threads,
            rate_per_sec: shape.rate_per_sec,
            duration_s: seconds,
            requests: stats.requests,
            requests_per_sec: per_sec(stats.requests),
            bytes_received: stats.bytes_received,
            gbit_per_sec: per_sec(stats.bytes_received) * 8.0 / 1e9,
            body_bytes: stats.body_bytes,
            latency_us: LatencyUs::from_histogram(&stats.latency_ns),
            errors: stats.errors,
            errors_total: stats.errors.total(),
            reconnects: stats.reconnects,
            client_cpu_percent: 0.0,
        }
    }

    /// The human-readable table printed to stdout.
    pub fn to_text(&self) -> String {
        let mode = if self.rate_per_sec == 0 {
            "closed loop".to_owned()
        } else {
            format!("open loop at {} req/s", self.rate_per_sec)
        };
        let lat = &self.latency_us;
        let err = &self.errors;
        let mut out = String::new();
        let _ = writeln!(out, "target      {}", self.urls.join(", "));
        let _ = writeln!(
            out,
            "load        {} connections x pipeline {} on {} thread(s), {mode}, {:.1} s measured",
            self.connections, self.pipeline, self.threads, self.duration_s
        );
        let _ = writeln!(
            out,
            "requests    {} ({:.0} req/s)",
            self.requests, self.requests_per_sec
        );
        let _ = writeln!(
            out,
            "received    {} bytes ({:.3} Gbit/s), body {} bytes",
            self.bytes_received, self.gbit_per_sec, self.body_bytes
        );
        let _ = writeln!(
            out,
            "latency us  p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            lat.p50, lat.p99, lat.p999, lat.max, lat.mean
        );
        let _ = writeln!(
            out,
            "errors      {} (connect {}, status {}, body {}, parse {}, closed {}, timeout {}); reconnects {}\n\
             client cpu  {:.0} %",
            self.errors_total,
            err.connect,
            err.status,
            err.body,
            err.parse,
            err.closed,
            err.timeout,
            self.reconnects,
            self.client_cpu_percent
        );
        out
    }
}

/// Median of the values (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The per-metric medians of several rounds of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct MedianRow {
    /// Server name.
    pub name: String,
    /// Rounds summarised.
    pub rounds: usize,
    /// Median requests/s.
    pub requests_per_sec: f64,
    /// Median Gbit/s.
    pub gbit_per_sec: f64,
    /// Median of each latency percentile.
    pub latency_us: LatencyUs,
    /// Median error count.
    pub errors_total: f64,
    /// Median CPU of the load generator, percent of one core.
    pub client_cpu_percent: f64,
}

impl MedianRow {
    /// Summarises the rounds of one server. Each figure is the median of that figure.
    pub fn from_reports(name: &str, reports: &[HttpReport]) -> Self {
        let pick = |f: fn(&HttpReport) -> f64| median(&reports.iter().map(f).collect::<Vec<_>>());
        Self {
            name: name.to_owned(),
            rounds: reports.len(),
            requests_per_sec: pick(|r| r.requests_per_sec),
            gbit_per_sec: pick(|r| r.gbit_per_sec),
            latency_us: LatencyUs {
                p50: pick(|r| r.latency_us.p50),
                p99: pick(|r| r.latency_us.p99),
                p999: pick(|r| r.latency_us.p999),
                max: pick(|r| r.latency_us.max),
                mean: pick(|r| r.latency_us.mean),
            },
            errors_total: pick(|r| r.errors_total as f64),
            client_cpu_percent: pick(|r| r.client_cpu_percent),
        }
    }
}

/// A Markdown table with one row per server (medians over its rounds) and, for every server
/// after the first, a ratio row against the first (the baseline). For req/s and Gbit/s a
/// ratio above 1 is better; for latencies, below 1 is better.
pub fn markdown_comparison(rows: &[MedianRow]) -> String {
    let mut out = String::from(
        "| server | rounds | req/s | Gbit/s | p50 µs | p99 µs | p99.9 µs | max µs | errors | load CPU % |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let lat = &row.latency_us;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} |",
            row.name,
            row.rounds,
            row.requests_per_sec,
            row.gbit_per_sec,
            lat.p50,
            lat.p99,
            lat.p999,
            lat.max,
            row.errors_total,
            row.client_cpu_percent
        );
    }
    let Some((baseline, others)) = rows.split_first() else {
        return out;
    };
    for row in others {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}x", a / b)
            } else {
                "n/a".to_owned()
            }
        };
        let (lat, base) = (&row.latency_us, &baseline.latency_us);
        let _ = writeln!(
            out,
            "| **{}/{}** | | **{}** | {} | {} | {} | {} | {} | | |",
            row.name,
            baseline.name,
            ratio(row.requests_per_sec, baseline.requests_per_sec),
            ratio(row.gbit_per_sec, baseline.gbit_per_sec),
            ratio(lat.p50, base.p50),
            ratio(lat.p99, base.p99),
            ratio(lat.p999, base.p999),
            ratio(lat.max, base.max),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> RunShape {
        RunShape {
            urls: vec!["http://127.0.0.1:1/".to_owned()],
            connections: 4,
            pipeline: 1,
            threads: 1,
            rate_per_sec: 0,
        }
    }

    #[test]
    fn rates_and_percentiles() {
        let mut stats = LoadStats::new();
        for us in 1..=1000u64 {
            stats.record_response(Duration::from_micros(us), 200);
        }
        stats.bytes_received = 1_250_000_000;
        stats.errors.timeout = 2;
        stats.errors.connect = 1;
        let report = HttpReport::from_stats(shape(), &stats, Duration::from_secs(10));
        assert_eq!(report.requests, 1000);
        assert!((report.requests_per_sec - 100.0).abs() < 1e-9);
        assert!((report.gbit_per_sec - 1.0).abs() < 1e-9);
        assert_eq!(report.body_bytes, 200_000);
        assert_eq!(report.errors_total, 3);
        // Three significant digits: within 0.1 %.
        assert!((report.latency_us.p50 - 500.0).abs() <= 0.5);
        assert!((report.latency_us.p99 - 990.0).abs() <= 1.0);
        assert!((report.latency_us.p999 - 999.0).abs() <= 1.0);
        assert!((report.latency_us.max - 1000.0).abs() <= 1.0);
        assert!(report.to_text().contains("req/s"));
        let json = serde_json::to_string(&report).unwrap();
        let back: HttpReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn empty_run_reports_zeros() {
        let report = HttpReport::from_stats(shape(), &LoadStats::new(), Duration::ZERO);
        assert_eq!(report.requests_per_sec, 0.0);
        assert_eq!(report.latency_us, LatencyUs::default());
    }

    #[test]
    fn extreme_latencies_saturate() {
        let mut stats = LoadStats::new();
        stats.record_response(Duration::ZERO, 0);
        stats.record_response(Duration::from_secs(100_000), 0);
        assert_eq!(stats.requests, 2);
        assert!(stats.latency_ns.max() >= LATENCY_MAX_NS / 2);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = LoadStats::new();
        a.record_response(Duration::from_micros(10), 1);
        a.errors.closed = 1;
        a.reconnects = 2;
        let mut b = LoadStats::new();
        b.record_response(Duration::from_micros(30), 2);
        b.bytes_received = 7;
        b.errors.closed = 4;
        a.merge(&b);
        assert_eq!(a.requests, 2);
        assert_eq!(a.latency_ns.len(), 2);
        assert_eq!(a.body_bytes, 3);
        assert_eq!(a.bytes_received, 7);
        assert_eq!(a.errors.closed, 5);
        assert_eq!(a.reconnects, 2);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn comparison_table_has_ratio_row() {
        let report = |rps: f64, p50: f64| {
            let mut stats = LoadStats::new();
            stats.requests = 1;
            let mut r = HttpReport::from_stats(shape(), &stats, Duration::from_secs(1));
            r.requests_per_sec = rps;
            r.latency_us.p50 = p50;
            r
        };
        let baseline = MedianRow::from_reports(
            "nginx",
            &[
                report(100.0, 10.0),
                report(300.0, 30.0),
                report(200.0, 20.0),
            ],
        );
        assert_eq!(baseline.requests_per_sec, 200.0);
        assert_eq!(baseline.latency_us.p50, 20.0);
        let candidate = MedianRow::from_reports("shardcast", &[report(300.0, 10.0)]);
        let table = markdown_comparison(&[baseline, candidate]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[4].starts_with("| **shardcast/nginx** | | **1.50x** |"));
        assert!(lines[4].contains("| 0.50x |"));
        assert!(lines[4].contains("n/a"));
    }
}
