//! The soak's judgement and its Markdown: RSS growth after warm-up, the end state, what the
//! churn did, and the errors the clients saw.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::sample::{end_checks, Baseline, Check, Phase, Sample, Settle, GAUGES};
use super::{Counts, SoakConfig};

/// Samples averaged at each end of the RSS comparison (30 s at the default interval), so
/// one sample taken at a busy or quiet moment does not decide it.
pub const RSS_SAMPLES_AVERAGED: usize = 3;

/// Most rows of the sample table; longer runs show every Nth sample.
const TABLE_ROWS_MAX: usize = 40;

/// RSS after warm-up against the end of the churn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RssGrowth {
    /// The warm-up, seconds.
    pub warmup_s: f64,
    /// Mean RSS of the first samples at or after the warm-up, KiB.
    pub after_warmup_kib: f64,
    /// Mean RSS of the last churn samples, KiB.
    pub end_kib: f64,
    /// `(end − after warm-up) / after warm-up`, percent.
    pub growth_percent: f64,
    /// Within `rss_growth_max_percent`.
    pub pass: bool,
}

impl RssGrowth {
    /// From the churn samples; `None` when there are too few after the warm-up.
    pub fn from_samples(samples: &[Sample], warmup_s: f64, max_percent: f64) -> Option<Self> {
        Self::of(samples, warmup_s, max_percent, |s| s.rss_kib)
    }

    /// The same comparison for another memory figure of the samples (KiB).
    pub fn of(samples: &[Sample], warmup_s: f64, max_percent: f64, kib: KibOf) -> Option<Self> {
        let churn: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.phase == Phase::Churn && s.t_s + 0.5 >= warmup_s)
            .collect();
        if churn.len() < 2 {
            return None;
        }
        let n = RSS_SAMPLES_AVERAGED.min(churn.len() / 2).max(1);
        let mean = |s: &[&Sample]| s.iter().map(|s| kib(s) as f64).sum::<f64>() / s.len() as f64;
        let after_warmup_kib = mean(&churn[..n]);
        let end_kib = mean(&churn[churn.len() - n..]);
        let growth_percent = 100.0 * (end_kib - after_warmup_kib) / after_warmup_kib.max(1.0);
        Some(Self {
            warmup_s,
            after_warmup_kib,
            end_kib,
            growth_percent,
            pass: growth_percent <= max_percent,
        })
    }
}

/// One memory figure of a sample, KiB.
type KibOf = fn(&Sample) -> u64;

/// Everything a soak found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakReport {
    pub config: SoakConfig,
    pub baseline: Baseline,
    pub samples: Vec<Sample>,
    pub settle: Settle,
    pub counts: Counts,
    pub errors: BTreeMap<String, u64>,
    /// Seconds from the start of the churn until every client had closed.
    pub churn_s: f64,
    /// CPU the soak process used over the churn, in percent of one core.
    pub load_cpu_percent: f64,
    pub rss: Option<RssGrowth>,
    pub end_state: Vec<Check>,
    /// Nothing left behind and RSS growth within the limit.
    pub pass: bool,
}

impl SoakReport {
    /// Judges a finished soak.
    pub fn new(
        config: SoakConfig,
        baseline: Baseline,
        samples: Vec<Sample>,
        settle: Settle,
        counts: Counts,
        errors: BTreeMap<String, u64>,
        churn_s: f64,
    ) -> Self {
        let warmup_s = config.warmup().as_secs_f64();
        let rss = RssGrowth::from_samples(&samples, warmup_s, config.rss_growth_max_percent);
        let end_state = match &settle.last {
            Some(last) => end_checks(last, &baseline.sample),
            None => Vec::new(),
        };
        let pass = !end_state.is_empty()
            && end_state.iter().all(|c| c.pass)
            && rss.as_ref().is_some_and(|r| r.pass);
        Self {
            config,
            baseline,
            samples,
            settle,
            counts,
            errors,
            churn_s,
            load_cpu_percent: 0.0,
            rss,
            end_state,
            pass,
        }
    }

    /// The report's body in Markdown (the script adds the command, machine and config).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        self.write_verdict(&mut out);
        self.write_samples(&mut out);
        self.write_rss(&mut out);
        self.write_end_state(&mut out);
        self.write_counts(&mut out);
        self.write_errors(&mut out);
        self.write_totals(&mut out);
        out
    }

    fn write_verdict(&self, out: &mut String) {
        let verdict = if self.pass { "PASS" } else { "FAIL" };
        let growth = self
            .rss
            .as_ref()
            .map_or("n/a (too few samples)".to_owned(), |r| {
                format!("{:+.2} %", r.growth_percent)
            });
        let left = self.end_state.iter().filter(|c| !c.pass).count();
        let _ = writeln!(
            out,
            "## Verdict: {verdict}\n\n- churn: {:.0} s (until every client had closed), then \
             {:.1} s until the server was at rest (bound {} s)\n- end state: {}\n- RSS growth \
             after warm-up: {growth} (limit {} %)\n- load generator CPU: {:.0} % of its core \
             over the churn\n",
            self.churn_s,
            self.settle.waited_s,
            self.config.settle_max.as_secs(),
            if left == 0 {
                "nothing left behind".to_owned()
            } else {
                format!("{left} item(s) left behind")
            },
            self.config.rss_growth_max_percent,
            self.load_cpu_percent
        );
    }

    fn write_samples(&self, out: &mut String) {
        let every = self.config.sample_every.as_secs();
        let mut rows: Vec<&Sample> = std::iter::once(&self.baseline.sample)
            .chain(&self.samples)
            .chain(&self.settle.samples)
            .collect();
        let stride = rows.len().div_ceil(TABLE_ROWS_MAX).max(1);
        let shown = if stride > 1 {
            format!(
                "every {}th sample ({} s apart) and the last",
                stride,
                stride as u64 * every
            )
        } else {
            format!("every sample ({every} s apart during the churn)")
        };
        let _ = writeln!(
            out,
            "## Samples\n\n{shown}; t = seconds since the churn began. Server gauges from \
             `/metrics` (process totals; the heap columns are `shardcast_heap_committed_bytes` \
             and `shardcast_heap_live_bytes`), RSS and CPU from `/proc/PID/`; indexed streams and \
             segments from `/api/v1/streams` (every stream the shard indexes, ended ones \
             included, and the segments of all their renditions); `load` is what the soak \
             held open at that moment (viewers / stallers / publishers / players / bad \
             clients).\n"
        );
        let head: Vec<&str> = GAUGES.iter().map(|(field, _)| *field).collect();
        let _ = writeln!(
            out,
            "| t s | phase | RSS MiB | heap committed MiB | heap live MiB | server CPU % | {} | indexed streams (ended) | indexed segments | load |",
            head.join(" | ")
        );
        let _ = writeln!(
            out,
            "|---:|---|---:|---:|---:|---:|{}---:|---:|---|",
            "---:|".repeat(GAUGES.len())
        );
        let last = rows.len() - 1;
        let mut kept: Vec<&Sample> = Vec::new();
        for (i, sample) in rows.drain(..).enumerate() {
            if i % stride == 0 || i == last {
                kept.push(sample);
            }
        }
        let mut previous: Option<&Sample> = None;
        for sample in &kept {
            write_sample_row(out, sample, previous);
            previous = Some(sample);
        }
        self.write_min_max(out);
    }

    fn write_min_max(&self, out: &mut String) {
        let churn: Vec<&Sample> = self.samples.iter().collect();
        if churn.is_empty() {
            return;
        }
        for (label, pick) in [("min", u64::min as fn(u64, u64) -> u64), ("max", u64::max)] {
            let rss = churn.iter().map(|s| s.rss_kib).reduce(pick).unwrap_or(0);
            let gauges: Vec<String> = (0..GAUGES.len())
                .map(|i| churn.iter().map(|s| s.gauges[i]).reduce(pick).unwrap_or(0))
                .map(|v| v.to_string())
                .collect();
            let _ = writeln!(
                out,
                "| **{label}** | churn | {:.1} | {:.1} | {:.1} | | {} | | | |",
                rss as f64 / 1024.0,
                churn
                    .iter()
                    .map(|s| s.heap_kib[0])
                    .reduce(pick)
                    .unwrap_or(0) as f64
                    / 1024.0,
                churn
                    .iter()
                    .map(|s| s.heap_kib[1])
                    .reduce(pick)
                    .unwrap_or(0) as f64
                    / 1024.0,
                gauges.join(" | ")
            );
        }
        out.push('\n');
    }

    fn write_rss(&self, out: &mut String) {
        let _ = writeln!(out, "## RSS\n");
        match &self.rss {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "Warm-up: the first {:.0} s (by default 5 minutes, or 20 % of a shorter run). Growth \
                     compares the mean of the first {n} samples at or after the warm-up with \
                     the mean of the last {n} churn samples.\n\n\
                     | idle before | after warm-up | end of churn | growth | limit | |\n\
                     |---:|---:|---:|---:|---:|---|\n\
                     | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:+.2} % | {} % | {} |\n",
                    r.warmup_s,
                    self.baseline.sample.rss_kib as f64 / 1024.0,
                    r.after_warmup_kib / 1024.0,
                    r.end_kib / 1024.0,
                    r.growth_percent,
                    self.config.rss_growth_max_percent,
                    pass_word(r.pass),
                    n = RSS_SAMPLES_AVERAGED
                );
            }
            None => {
                let _ = writeln!(out, "Too few samples after the warm-up to judge (FAIL).\n");
            }
        }
        self.write_heap(out);
        if let Some(last) = &self.settle.last {
            let _ = writeln!(
                out,
                "At rest after the churn: {:.1} MiB (idle before the churn: {:.1} MiB).\n",
                last.rss_kib as f64 / 1024.0,
                self.baseline.sample.rss_kib as f64 / 1024.0
            );
        }
    }

    /// The allocator's side of the RSS: what mimalloc committed and what the program held,
    /// compared over the same samples as the RSS (not judged).
    fn write_heap(&self, out: &mut String) {
        let warmup_s = self.config.warmup().as_secs_f64();
        let figures: [(&str, KibOf); 2] = [
            ("committed by the allocator", |s| s.heap_kib[0]),
            ("held by the program (`heap-stats` build)", |s| {
                s.heap_kib[1]
            }),
        ];
        let mut rows = String::new();
        for (what, kib) in figures {
            let idle = kib(&self.baseline.sample);
            let Some(g) = RssGrowth::of(&self.samples, warmup_s, f64::MAX, kib) else {
                continue;
            };
            if g.end_kib <= 0.0 {
                continue;
            }
            let _ = writeln!(
                rows,
                "| {what} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:+.2} % |",
                idle as f64 / 1024.0,
                g.after_warmup_kib / 1024.0,
                g.end_kib / 1024.0,
                g.growth_percent
            );
        }
        if !rows.is_empty() {
            let _ = writeln!(
                out,
                "The heap over the same samples (`shardcast_heap_*` in `/metrics`; not judged):\n\n\
                 | heap | idle before | after warm-up | end of churn | growth |\n\
                 |---|---:|---:|---:|---:|\n{rows}"
            );
        }
    }

    fn write_end_state(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## End state\n\nAfter the churn every client closed; the server was polled every \
             second for up to {} s. Idle values are from before the churn (the scrape's own \
             connection and its timer count in both).\n\n| item | idle | end | |\n|---|---:|---:|---|",
            self.config.settle_max.as_secs()
        );
        for check in &self.end_state {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                check.item,
                check.idle,
                check.end,
                pass_word(check.pass)
            );
        }
        if self.end_state.is_empty() {
            let _ = writeln!(out, "| (no sample after the churn) | | | FAIL |");
        }
        out.push('\n');
    }

    fn write_counts(&self, out: &mut String) {
        let c = &self.counts;
        let _ = writeln!(out, "## What the churn did\n\n| what | count |\n|---|---:|");
        let rows: [(&str, String); 17] = [
            ("viewer joins (Welcome)", c.joins.to_string()),
            ("of them with a chat token", c.chatter_joins.to_string()),
            ("resumes (Hello with last_seq)", c.resumes.to_string()),
            (
                "resume replays (HistoryReply) / Resync",
                format!("{} / {}", c.resume_replays, c.resume_resyncs),
            ),
            (
                "viewers left with a close frame / dropped",
                format!("{} / {}", c.leaves_clean, c.leaves_abrupt),
            ),
            ("chats (viewers)", c.chats.to_string()),
            ("chats (flood chatters)", c.flood_chats.to_string()),
            ("events received by viewers", c.events_received.to_string()),
            ("batches with a seq gap (viewers)", c.seq_gaps.to_string()),
            ("stallers", c.stalls.to_string()),
            (
                "stallers closed by the server / cut by the end",
                format!("{} / {}", c.stalls_closed, c.stalls_cut),
            ),
            (
                "staller mean time to close s",
                mean(c.stall_close_s, c.stalls_closed),
            ),
            ("publishes", c.publishes.to_string()),
            ("published media s", format!("{:.0}", c.published_s)),
            (
                "silent publishers closed by the server",
                c.silent_closed.to_string(),
            ),
            ("HLS player sessions", c.player_sessions.to_string()),
            ("HLS responses other than 200", map_text(&c.player_statuses)),
        ];
        for (what, count) in rows {
            let _ = writeln!(out, "| {what} | {count} |");
        }
        for (end, n) in &c.publish_ends {
            let _ = writeln!(out, "| publishes ended by {end} | {n} |");
        }
        for (kind, n) in &c.player_ok {
            let _ = writeln!(out, "| HLS {kind} requests answered 200 | {n} |");
        }
        let _ = writeln!(
            out,
            "\n| bad client | tried | closed by the server | mean s to close | answers |\n|---|---:|---:|---:|---|"
        );
        for (kind, b) in &c.bad {
            let _ = writeln!(
                out,
                "| {kind} | {} | {} | {} | {} |",
                b.tried,
                b.closed,
                mean(b.close_s, b.closed),
                map_text(&b.answers)
            );
        }
        out.push('\n');
    }

    fn write_errors(&self, out: &mut String) {
        let _ = writeln!(out, "## Errors seen by the clients\n");
        if self.errors.is_empty() {
            let _ = writeln!(out, "None.\n");
            return;
        }
        let _ = writeln!(out, "| error | count |\n|---|---:|");
        for (what, n) in &self.errors {
            let _ = writeln!(out, "| {what} | {n} |");
        }
        out.push('\n');
    }

    fn write_totals(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Server counters at the end\n\n| counter | total |\n|---|---:|"
        );
        for (name, value) in &self.settle.totals {
            let _ = writeln!(out, "| `{name}` | {value} |");
        }
        out.push('\n');
    }
}

/// One row; the CPU column is the server's share of a core since `previous`.
fn write_sample_row(out: &mut String, sample: &Sample, previous: Option<&Sample>) {
    let cpu = previous
        .filter(|p| sample.t_s > p.t_s + 0.5)
        .map_or("".to_owned(), |p| {
            let ticks = sample.cpu_ticks.saturating_sub(p.cpu_ticks) as f64;
            format!("{:.0}", ticks / (sample.t_s - p.t_s))
        });
    let phase = match sample.phase {
        Phase::Idle => "idle",
        Phase::Churn => "churn",
        Phase::Settle => "settle",
    };
    let gauges: Vec<String> = sample.gauges.iter().map(|g| g.to_string()).collect();
    let load: Vec<String> = sample.load.iter().map(|g| g.to_string()).collect();
    let [streams, ended, segments] = sample.indexed;
    let _ = writeln!(
        out,
        "| {:.0} | {phase} | {:.1} | {:.1} | {:.1} | {cpu} | {} | {streams} ({ended}) | {segments} | {} |",
        sample.t_s,
        sample.rss_kib as f64 / 1024.0,
        sample.heap_kib[0] as f64 / 1024.0,
        sample.heap_kib[1] as f64 / 1024.0,
        gauges.join(" | "),
        load.join("/")
    );
}

fn pass_word(pass: bool) -> &'static str {
    if pass {
        "pass"
    } else {
        "**FAIL**"
    }
}

fn mean(sum: f64, n: u64) -> String {
    if n == 0 {
        "n/a".to_owned()
    } else {
        format!("{:.1}", sum / n as f64)
    }
}

fn map_text<K: std::fmt::Display, V: std::fmt::Display>(map: &BTreeMap<K, V>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn churn(t_s: f64, rss_kib: u64) -> Sample {
        Sample {
            t_s,
            phase: Phase::Churn,
            rss_kib,
            heap_kib: [0; 2],
            cpu_ticks: 0,
            indexed: [0; 3],
            gauges: vec![0; GAUGES.len()],
            load: [0; 5],
        }
    }

    #[test]
    fn rss_growth_compares_means_after_the_warmup() {
        let samples: Vec<Sample> = (1..=30)
            .map(|i| churn(10.0 * i as f64, if i <= 6 { 50_000 } else { 100_000 }))
            .collect();
        // Warm-up 60 s: samples from t = 60 s; the first three are 50_000, 100_000, 100_000.
        let growth = RssGrowth::from_samples(&samples, 60.0, 1.0).unwrap();
        assert!((growth.after_warmup_kib - 250_000.0 / 3.0).abs() < 1e-6);
        assert_eq!(growth.end_kib, 100_000.0);
        assert!(!growth.pass);
        let flat: Vec<Sample> = (1..=30).map(|i| churn(10.0 * i as f64, 80_000)).collect();
        let growth = RssGrowth::from_samples(&flat, 60.0, 1.0).unwrap();
        assert_eq!(growth.growth_percent, 0.0);
        assert!(growth.pass);
        assert!(RssGrowth::from_samples(&flat[..3], 60.0, 1.0).is_none());
    }
}
