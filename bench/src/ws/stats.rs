//! Counting during a `ws` run ([`WsStats`], mergeable across threads and processes, and sent
//! by worker processes as JSON) and what is reported after it ([`WsReport`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::report::{median, LatencyUs, LATENCY_MAX_NS};
use crate::ws::tracker::SenderTotals;

/// The counters of one thread, one process, or a whole run once merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsStats {
    /// Connections this part of the run was given.
    pub connections: u64,
    /// Connections whose `Hello` was answered by `Welcome` before the send phase.
    pub joined: u64,
    /// TCP connects that failed or timed out.
    pub connect_errors: u64,
    /// Upgrades refused or malformed (no valid `101`).
    pub handshake_errors: u64,
    /// Connections upgraded that got no `Welcome` (closed, timed out, or refused).
    pub join_errors: u64,
    /// Joined connections the server closed (or reset) before the end of the run.
    pub closed_by_server: u64,
    /// Frames or messages that could not be decoded; the connection is dropped on a frame
    /// error and carries on after a bad message.
    pub protocol_errors: u64,
    /// `Kick` messages received.
    pub kicks: u64,
    /// `Error` messages received, by code.
    pub server_errors: BTreeMap<u16, u64>,
    /// Chats written by senders, whole send phase (warm-up included).
    pub chats_sent: u64,
    /// Chats due in the measurement window (latency counts only these).
    pub chats_sent_measured: u64,
    /// First deliveries of benchmark chats, whole run.
    pub delivered: u64,
    /// First deliveries of chats sent in the measurement window.
    pub delivered_measured: u64,
    /// Deliveries of a chat a receiver already had.
    pub duplicated: u64,
    /// Chats that arrived after a later chat of the same sender (they filled a gap).
    pub out_of_order: u64,
    /// Chat events whose text was not a benchmark chat, or whose sender is not in the room.
    pub foreign_events: u64,
    /// Batches whose `first_seq` did not follow the previous batch's last event.
    pub seq_gaps: u64,
    /// `Batch` messages received.
    pub batches: u64,
    /// Events in those batches.
    pub events: u64,
    /// `RoomStats` messages received.
    pub room_stats: u64,
    /// `Pong` messages received.
    pub pongs: u64,
    /// Bytes read from the server, whole run (handshakes included).
    pub bytes_received: u64,
    /// Bytes read during the measurement window.
    pub bytes_received_measured: u64,
    /// Per sender (indexed by sender id): what it sent and what its receivers saw.
    pub senders: Vec<SenderTotals>,
    /// Latency of measured deliveries, receive time minus send time, in nanoseconds.
    #[serde(with = "histogram_pairs")]
    pub latency_ns: Histogram<u64>,
    /// Seconds from the start of this part until every connection attempt had finished.
    pub join_s: f64,
    /// CPU time this part used (user + system), seconds.
    pub cpu_s: f64,
    /// Wall time of this part, seconds.
    pub wall_s: f64,
    /// CPU time this part used during the measurement window, seconds.
    #[serde(default)]
    pub cpu_window_s: f64,
    /// Length of the measurement window, seconds (0 when the window CPU was not sampled).
    #[serde(default)]
    pub window_s: f64,
    /// Processes merged into these counts.
    pub processes: u64,
}

impl Default for WsStats {
    fn default() -> Self {
        Self::new(0)
    }
}

impl WsStats {
    /// Empty counters for a run with `senders` senders.
    pub fn new(senders: u64) -> Self {
        Self {
            connections: 0,
            joined: 0,
            connect_errors: 0,
            handshake_errors: 0,
            join_errors: 0,
            closed_by_server: 0,
            protocol_errors: 0,
            kicks: 0,
            server_errors: BTreeMap::new(),
            chats_sent: 0,
            chats_sent_measured: 0,
            delivered: 0,
            delivered_measured: 0,
            duplicated: 0,
            out_of_order: 0,
            foreign_events: 0,
            seq_gaps: 0,
            batches: 0,
            events: 0,
            room_stats: 0,
            pongs: 0,
            bytes_received: 0,
            bytes_received_measured: 0,
            senders: vec![SenderTotals::default(); senders as usize],
            latency_ns: new_histogram(),
            join_s: 0.0,
            cpu_s: 0.0,
            wall_s: 0.0,
            cpu_window_s: 0.0,
            window_s: 0.0,
            processes: 0,
        }
    }

    /// Records the latency of one measured delivery.
    pub fn record_latency_us(&mut self, latency_us: u64) {
        let ns = latency_us.saturating_mul(1000).clamp(1, LATENCY_MAX_NS);
        self.latency_ns.saturating_record(ns);
    }

    /// Adds another part's counts to these. Times: CPU adds up; wall and join times take the
    /// longest part.
    pub fn merge(&mut self, other: &WsStats) {
        self.connections += other.connections;
        self.joined += other.joined;
        self.connect_errors += other.connect_errors;
        self.handshake_errors += other.handshake_errors;
        self.join_errors += other.join_errors;
        self.closed_by_server += other.closed_by_server;
        self.protocol_errors += other.protocol_errors;
        self.kicks += other.kicks;
        for (code, count) in &other.server_errors {
            *self.server_errors.entry(*code).or_default() += count;
        }
        self.chats_sent += other.chats_sent;
        self.chats_sent_measured += other.chats_sent_measured;
        self.delivered += other.delivered;
        self.delivered_measured += other.delivered_measured;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.foreign_events += other.foreign_events;
        self.seq_gaps += other.seq_gaps;
        self.batches += other.batches;
        self.events += other.events;
        self.room_stats += other.room_stats;
        self.pongs += other.pongs;
        self.bytes_received += other.bytes_received;
        self.bytes_received_measured += other.bytes_received_measured;
        if self.senders.len() < other.senders.len() {
            self.senders
                .resize(other.senders.len(), SenderTotals::default());
        }
        for (mine, theirs) in self.senders.iter_mut().zip(&other.senders) {
            mine.merge(theirs);
        }
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share bounds");
        self.join_s = self.join_s.max(other.join_s);
        self.cpu_s += other.cpu_s;
        self.wall_s = self.wall_s.max(other.wall_s);
        self.cpu_window_s += other.cpu_window_s;
        self.window_s = self.window_s.max(other.window_s);
        self.processes += other.processes;
    }

    /// Deliveries expected over the whole send phase: every joined receiver of a room gets
    /// every chat sent in it.
    pub fn expected(&self) -> u64 {
        self.senders.iter().map(SenderTotals::expected).sum()
    }

    /// Deliveries that never happened (gaps never filled, and tails never reached).
    pub fn missing(&self) -> u64 {
        self.senders.iter().map(SenderTotals::missing).sum()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("constant histogram bounds are valid")
}

/// A histogram as JSON: its recorded `[value, count]` pairs. Recording each value again lands
/// in the same bucket, so the round trip is exact at the histogram's precision.
mod histogram_pairs {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(histogram: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(u64, u64)> = histogram
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let pairs = Vec::<(u64, u64)>::deserialize(d)?;
        let mut histogram = super::new_histogram();
        for (value, count) in pairs {
            histogram.saturating_record_n(value, count);
        }
        Ok(histogram)
    }
}

/// How a `ws` run was shaped, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsShape {
    /// Target URL.
    pub url: String,
    /// Connections in total.
    pub connections: u64,
    /// Rooms.
    pub rooms: u64,
    /// Connections that send.
    pub senders: u64,
    /// Chats per second over all senders.
    pub rate_per_sec: f64,
    /// Worker processes.
    pub processes: u64,
    /// Load threads per process.
    pub threads: u64,
    /// Send phase before measuring, seconds.
    pub warmup_s: f64,
    /// Measurement window, seconds.
    pub duration_s: f64,
    /// Wait after the send phase before counting what is missing, seconds.
    pub grace_s: f64,
    /// Idle mode (connections only join and stay).
    pub idle: bool,
}

/// The result of one `ws` run, as printed and as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsReport {
    /// How the run was shaped.
    #[serde(flatten)]
    pub shape: WsShape,
    /// Connections joined (Welcome received) before the send phase.
    pub joined: u64,
    /// Seconds until every connection attempt had finished.
    pub join_s: f64,
    /// Chats written, whole send phase.
    pub chats_sent: u64,
    /// Chats sent in the measurement window.
    pub chats_sent_measured: u64,
    /// Deliveries expected over the whole send phase (receivers × chats sent, per room).
    pub expected: u64,
    /// First deliveries, whole send phase.
    pub delivered: u64,
    /// Deliveries expected but never made (by the end of the grace period).
    pub missing: u64,
    /// Deliveries of a chat a receiver already had.
    pub duplicated: u64,
    /// Chats that arrived after a later chat of the same sender.
    pub out_of_order: u64,
    /// First deliveries of chats sent in the measurement window.
    pub delivered_measured: u64,
    /// `delivered_measured` per second of the window.
    pub deliveries_per_sec: f64,
    /// Delivery latency (receive time − send time) of measured chats, microseconds.
    pub latency_us: LatencyUs,
    /// Bytes read from the server, whole run.
    pub bytes_received: u64,
    /// Bytes read in the window, as megabits per second.
    pub mbit_per_sec: f64,
    /// Batches, events, room stats and pongs received.
    pub batches: u64,
    /// Events in those batches.
    pub events: u64,
    /// `RoomStats` received.
    pub room_stats: u64,
    /// `Pong` received.
    pub pongs: u64,
    /// Batches that did not continue the previous batch's `seq`.
    pub seq_gaps: u64,
    /// Chat events that were not this run's chats for that room.
    pub foreign_events: u64,
    /// Failed TCP connects.
    pub connect_errors: u64,
    /// Failed upgrades.
    pub handshake_errors: u64,
    /// Upgrades with no `Welcome`.
    pub join_errors: u64,
    /// Joined connections closed by the server before the end.
    pub closed_by_server: u64,
    /// Undecodable frames or messages.
    pub protocol_errors: u64,
    /// `Kick` messages.
    pub kicks: u64,
    /// `Error` messages by code (as strings, for JSON).
    pub server_errors: BTreeMap<String, u64>,
    /// Sum of `server_errors`.
    pub server_errors_total: u64,
    /// Connection and protocol errors: connect + handshake + join + closed + protocol.
    pub errors_total: u64,
    /// CPU used by the load generator (all processes), percent of one core, whole run
    /// (connecting and the grace period included).
    pub client_cpu_percent: f64,
    /// CPU used by the load generator (all processes) during the measurement window, percent
    /// of one core. Near 100 per load core, the load generator limits the figures.
    #[serde(default)]
    pub client_cpu_percent_window: f64,
}

impl WsReport {
    /// Derives the report from merged counters.
    pub fn from_stats(shape: WsShape, stats: &WsStats) -> Self {
        let window = shape.duration_s;
        let per_sec = |count: u64| {
            if window > 0.0 {
                count as f64 / window
            } else {
                0.0
            }
        };
        let server_errors: BTreeMap<String, u64> = stats
            .server_errors
            .iter()
            .map(|(code, count)| (code.to_string(), *count))
            .collect();
        Self {
            joined: stats.joined,
            join_s: stats.join_s,
            chats_sent: stats.chats_sent,
            chats_sent_measured: stats.chats_sent_measured,
            expected: stats.expected(),
            delivered: stats.delivered,
            missing: stats.missing(),
            duplicated: stats.duplicated,
            out_of_order: stats.out_of_order,
            delivered_measured: stats.delivered_measured,
            deliveries_per_sec: per_sec(stats.delivered_measured),
            latency_us: LatencyUs::from_histogram(&stats.latency_ns),
            bytes_received: stats.bytes_received,
            mbit_per_sec: per_sec(stats.bytes_received_measured) * 8.0 / 1e6,
            batches: stats.batches,
            events: stats.events,
            room_stats: stats.room_stats,
            pongs: stats.pongs,
            seq_gaps: stats.seq_gaps,
            foreign_events: stats.foreign_events,
            connect_errors: stats.connect_errors,
            handshake_errors: stats.handshake_errors,
            join_errors: stats.join_errors,
            closed_by_server: stats.closed_by_server,
            protocol_errors: stats.protocol_errors,
            kicks: stats.kicks,
            server_errors_total: server_errors.values().sum(),
            server_errors,
            errors_total: stats.connect_errors
                + stats.handshake_errors
                + stats.join_errors
                + stats.closed_by_server
                + stats.protocol_errors,
            client_cpu_percent: if stats.wall_s > 0.0 {
                100.0 * stats.cpu_s / stats.wall_s
            } else {
                0.0
            },
            client_cpu_percent_window: if stats.window_s > 0.0 {
                100.0 * stats.cpu_window_s / stats.window_s
            } else {
                0.0
            },
            shape,
        }
    }

    /// The human-readable table printed to stdout.
    pub fn to_text(&self) -> String {
        let s = &self.shape;
        let lat = &self.latency_us;
        let mut out = String::new();
        let _ = writeln!(out, "target      {}", s.url);
        if s.idle {
            let _ = writeln!(
                out,
                "load        {} idle connections in {} room(s); {} process(es) x {} thread(s); held {:.1} s",
                s.connections, s.rooms, s.processes, s.threads, s.duration_s
            );
        } else {
            let _ = writeln!(
                out,
                "load        {} connections in {} room(s), {} senders at {} chats/s; {} process(es) x {} thread(s); \
                 {:.1} s measured after {:.1} s warm-up, {:.1} s grace",
                s.connections, s.rooms, s.senders, s.rate_per_sec, s.processes, s.threads,
                s.duration_s, s.warmup_s, s.grace_s
            );
        }
        let _ = writeln!(
            out,
            "joined      {} of {} in {:.2} s; closed by server {}",
            self.joined, s.connections, self.join_s, self.closed_by_server
        );
        if !s.idle {
            let _ = writeln!(
                out,
                "chats       sent {} ({} in the window)",
                self.chats_sent, self.chats_sent_measured
            );
            let _ = writeln!(
                out,
                "deliveries  {} of {} expected ({:.0} /s measured); missing {}, duplicated {}, out of order {}",
                self.delivered,
                self.expected,
                self.deliveries_per_sec,
                self.missing,
                self.duplicated,
                self.out_of_order
            );
            let _ = writeln!(
                out,
                "latency us  p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
                lat.p50, lat.p99, lat.p999, lat.max, lat.mean
            );
        }
        let _ = writeln!(
            out,
            "received    {} bytes ({:.3} Mbit/s in the window); batches {}, events {}, room stats {}, pongs {}; \
             seq gaps {}, foreign events {}",
            self.bytes_received,
            self.mbit_per_sec,
            self.batches,
            self.events,
            self.room_stats,
            self.pongs,
            self.seq_gaps,
            self.foreign_events
        );
        let codes = if self.server_errors.is_empty() {
            "none".to_owned()
        } else {
            self.server_errors
                .iter()
                .map(|(code, count)| format!("{code} x {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "errors      {} (connect {}, handshake {}, join {}, closed {}, protocol {}); kicks {}; server errors: {codes}",
            self.errors_total,
            self.connect_errors,
            self.handshake_errors,
            self.join_errors,
            self.closed_by_server,
            self.protocol_errors,
            self.kicks
        );
        let _ = writeln!(
            out,
            "client cpu  {:.0} % in the window, {:.0} % over the whole run (all {} process(es))",
            self.client_cpu_percent_window, self.client_cpu_percent, s.processes
        );
        out
    }
}

/// The per-figure medians of several rounds of one server's `ws` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct WsMedianRow {
    /// Server name.
    pub name: String,
    /// Rounds summarised.
    pub rounds: usize,
    /// Median deliveries per second (measured window).
    pub deliveries_per_sec: f64,
    /// Median of each latency percentile.
    pub latency_us: LatencyUs,
    /// Median deliveries over the whole send phase.
    pub delivered: f64,
    /// Median deliveries expected.
    pub expected: f64,
    /// Median missing deliveries.
    pub missing: f64,
    /// Median duplicated deliveries.
    pub duplicated: f64,
    /// Median out-of-order deliveries.
    pub out_of_order: f64,
    /// Median connection and protocol errors.
    pub errors_total: f64,
    /// Median `Error` messages from the server.
    pub server_errors_total: f64,
    /// Median CPU of the load generator in the window, percent of one core.
    pub client_cpu_percent: f64,
}

impl WsMedianRow {
    /// Summarises the rounds of one server; each figure is the median of that figure.
    pub fn from_reports(name: &str, reports: &[WsReport]) -> Self {
        let pick = |f: fn(&WsReport) -> f64| median(&reports.iter().map(f).collect::<Vec<_>>());
        Self {
            name: name.to_owned(),
            rounds: reports.len(),
            deliveries_per_sec: pick(|r| r.deliveries_per_sec),
            latency_us: LatencyUs {
                p50: pick(|r| r.latency_us.p50),
                p99: pick(|r| r.latency_us.p99),
                p999: pick(|r| r.latency_us.p999),
                max: pick(|r| r.latency_us.max),
                mean: pick(|r| r.latency_us.mean),
            },
            delivered: pick(|r| r.delivered as f64),
            expected: pick(|r| r.expected as f64),
            missing: pick(|r| r.missing as f64),
            duplicated: pick(|r| r.duplicated as f64),
            out_of_order: pick(|r| r.out_of_order as f64),
            errors_total: pick(|r| r.errors_total as f64),
            server_errors_total: pick(|r| r.server_errors_total as f64),
            client_cpu_percent: pick(|r| r.client_cpu_percent_window),
        }
    }
}

/// A Markdown table with one row per server (medians over its rounds) and ratio rows of the
/// last server (the candidate) against each of the others. For deliveries/s a ratio above 1
/// is better; for latencies, below 1 is better.
pub fn ws_markdown_comparison(rows: &[WsMedianRow]) -> String {
    let mut out = String::from(
        "| server | rounds | deliveries/s | p50 µs | p99 µs | p99.9 µs | max µs | delivered | expected | missing | duplicated | out of order | errors | server errors | load CPU % in window |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let lat = &row.latency_us;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            row.name,
            row.rounds,
            row.deliveries_per_sec,
            lat.p50,
            lat.p99,
            lat.p999,
            lat.max,
            row.delivered,
            row.expected,
            row.missing,
            row.duplicated,
            row.out_of_order,
            row.errors_total,
            row.server_errors_total,
            row.client_cpu_percent
        );
    }
    let Some((candidate, others)) = rows.split_last() else {
        return out;
    };
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "n/a".to_owned()
        }
    };
    for other in others {
        let (lat, base) = (&candidate.latency_us, &other.latency_us);
        let _ = writeln!(
            out,
            "| **{}/{}** | | **{}** | {} | {} | {} | {} | | | | | | | | |",
            candidate.name,
            other.name,
            ratio(candidate.deliveries_per_sec, other.deliveries_per_sec),
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

    fn shape() -> WsShape {
        WsShape {
            url: "ws://127.0.0.1:1/ws".to_owned(),
            connections: 4,
            rooms: 1,
            senders: 2,
            rate_per_sec: 10.0,
            processes: 2,
            threads: 1,
            warmup_s: 1.0,
            duration_s: 2.0,
            grace_s: 1.0,
            idle: false,
        }
    }

    /// Two worker processes' reports, through JSON, merge into the whole run's figures.
    #[test]
    fn worker_reports_merge_through_json() {
        let mut a = WsStats::new(2);
        a.connections = 2;
        a.joined = 2;
        a.chats_sent = 10;
        a.delivered = 38;
        a.delivered_measured = 20;
        a.duplicated = 1;
        a.bytes_received_measured = 250_000;
        a.server_errors.insert(429, 2);
        a.senders[0] = SenderTotals {
            sent: 10,
            receivers: 2,
            next_sum: 20,
            unfilled: 0,
        };
        a.senders[1].receivers = 2;
        a.senders[1].next_sum = 19;
        a.senders[1].unfilled = 1;
        for us in 1..=100 {
            a.record_latency_us(us * 10);
        }
        a.cpu_s = 1.0;
        a.wall_s = 4.0;
        a.join_s = 0.5;
        a.processes = 1;
        let mut b = WsStats::new(2);
        b.connections = 2;
        b.joined = 2;
        b.chats_sent = 10;
        b.senders[1].sent = 10; // the sender of process b
        b.senders[0].receivers = 2;
        b.senders[0].next_sum = 20;
        b.senders[1].receivers = 2;
        b.senders[1].next_sum = 20;
        b.server_errors.insert(429, 1);
        b.server_errors.insert(503, 4);
        b.record_latency_us(5_000);
        b.cpu_s = 0.5;
        b.wall_s = 4.1;
        b.join_s = 0.7;
        b.processes = 1;

        let mut merged = WsStats::new(2);
        for part in [&a, &b] {
            let json = serde_json::to_string(part).unwrap();
            let back: WsStats = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, part);
            merged.merge(&back);
        }
        assert_eq!(merged.connections, 4);
        assert_eq!(merged.chats_sent, 20);
        assert_eq!(merged.expected(), 4 * 10 + 4 * 10);
        // Sender 1's receivers: one never reached the last chat (tail) and one gap unfilled.
        assert_eq!(merged.missing(), 1 + 1);
        assert_eq!(merged.server_errors[&429], 3);
        assert_eq!(merged.latency_ns.len(), 101);
        assert_eq!(merged.processes, 2);

        let report = WsReport::from_stats(shape(), &merged);
        assert_eq!(report.missing, 2);
        assert_eq!(report.deliveries_per_sec, 10.0);
        assert!((report.mbit_per_sec - 1.0).abs() < 1e-9);
        assert_eq!(report.server_errors_total, 7);
        assert_eq!(report.server_errors["503"], 4);
        assert!((report.join_s - 0.7).abs() < 1e-9);
        assert!((report.client_cpu_percent - 100.0 * 1.5 / 4.1).abs() < 1e-9);
        assert!((report.latency_us.max - 5000.0).abs() <= 5.0);
        // 10, 20, .., 1000 and 5000: the 51st of 101 values.
        assert!((report.latency_us.p50 - 510.0).abs() <= 1.0);
        let text = report.to_text();
        assert!(text.contains("missing 2"), "{text}");
        assert!(text.contains("429 x 3, 503 x 4"), "{text}");
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"deliveries_per_sec\":10.0"));
        let back: WsReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn comparison_table_compares_the_last_server() {
        let report = |per_sec: f64, p99: f64| {
            let mut r = WsReport::from_stats(shape(), &WsStats::new(0));
            r.deliveries_per_sec = per_sec;
            r.latency_us.p99 = p99;
            r
        };
        let node = WsMedianRow::from_reports(
            "node-ws",
            &[
                report(100.0, 10.0),
                report(300.0, 30.0),
                report(200.0, 20.0),
            ],
        );
        assert_eq!(node.deliveries_per_sec, 200.0);
        let tokio = WsMedianRow::from_reports("tokio-ws", &[report(400.0, 5.0)]);
        let shardcast = WsMedianRow::from_reports("shardcast", &[report(800.0, 10.0)]);
        let table = ws_markdown_comparison(&[node, tokio, shardcast]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(
            lines[5].starts_with("| **shardcast/node-ws** | | **4.00x** |"),
            "{}",
            lines[5]
        );
        assert!(lines[5].contains("| 0.50x |"));
        assert!(lines[6].starts_with("| **shardcast/tokio-ws** | | **2.00x** |"));
        assert!(lines[6].contains("| 2.00x |"));
    }

    #[test]
    fn empty_run_reports_zeros() {
        let report = WsReport::from_stats(shape(), &WsStats::new(0));
        assert_eq!(report.expected, 0);
        assert_eq!(report.latency_us, LatencyUs::default());
        assert_eq!(report.client_cpu_percent, 0.0);
    }
}
