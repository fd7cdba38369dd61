//! WebRTC fan-out load: one WHIP publisher of a looped H.264 + Opus file and N WHEP viewers of
//! its stream, all str0m clients in this process on one thread (mio), against any server with
//! `POST /whip/live/{stream}` and `POST /whep/live/{stream}` (shardcast, or a peer SFU).
//!
//! Viewers complete ICE and DTLS with str0m, which then keeps their consent alive; their RTP
//! is counted from its clear header (sequence numbers, timestamps, the marker) and never
//! decrypted, so that the client's cost per packet stays far below the server's and the
//! server is what is measured. Each viewer reports:
//!
//! - loss: gaps in its video sequence numbers over the measured window;
//! - frame spread: for each video frame (RTP timestamp), when this viewer got its last packet
//!   (the marker) minus when the first viewer got it: the delay fan-out adds, which grows
//!   when a server falls behind its viewers.
//!
//! A viewer's frames are the same RTP timestamps on every viewer when the server writes the
//! stream's media time as RTP time (shardcast and SFUs that forward packets do).

mod client;
pub mod gro;
mod media;

pub use media::{access_units, ivf_frames, ogg_packets};

use client::{Publisher, Viewer, ViewerStats};
use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct RtcLoadConfig {
    /// The server's HTTP address.
    pub http: SocketAddr,
    pub stream: String,
    pub viewers: usize,
    /// Viewers joined per second.
    pub join_per_s: u32,
    /// Measured time, after every viewer joined and `warmup` passed.
    pub duration: Duration,
    pub warmup: Duration,
    /// Publish `(H.264 Annex B file, Ogg Opus file)` over WHIP first, looped; None: the stream
    /// is published by someone else.
    pub publish: Option<(PathBuf, PathBuf)>,
    /// The stream key (WHIP's Bearer token).
    pub key: Option<String>,
    /// Local addresses the viewers' sockets bind to, in turn.
    pub source_ips: Vec<IpAddr>,
    /// The server's process: its CPU time over the measured window is reported.
    pub server_pid: Option<u32>,
    /// The viewers receive with UDP GRO ([`gro`]).
    pub gro: bool,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct RtcReport {
    pub viewers: usize,
    pub connected: usize,
    pub failed: usize,
    pub failures: Vec<String>,
    pub seconds: f64,
    pub video_packets: u64,
    pub video_lost: u64,
    pub loss_ratio: f64,
    /// Received bit rate per viewer (all RTP), Mbit/s: median over viewers.
    pub mbps_per_viewer: f64,
    /// Viewers that got less than 80 % of the median bit rate.
    pub starved: usize,
    pub frames_measured: u64,
    pub spread_p50_ms: f64,
    pub spread_p99_ms: f64,
    pub spread_max_ms: f64,
    /// The server's CPU time over the window, in cores (1.0: one core busy).
    pub server_cores: Option<f64>,
    /// Server CPU microseconds per viewer per second.
    pub server_us_per_viewer_s: Option<f64>,
    /// This client's CPU time over the window, in cores.
    pub client_cores: f64,
    /// The viewers received with UDP GRO.
    pub gro: bool,
}

/// Runs the load; Err for a setup that fails (the publish refused, no viewer connected).
pub fn run_rtc(config: &RtcLoadConfig) -> Result<RtcReport, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut publisher = match &config.publish {
        Some((h264, ogg)) => Some(Publisher::start(config, h264, ogg, &poll)?),
        None => None,
    };
    let mut viewers: Vec<Viewer> = Vec::with_capacity(config.viewers);
    let mut failures = Vec::new();
    let start = Instant::now();
    let join_every = Duration::from_secs(1) / config.join_per_s.max(1);
    let mut next_join = start + Duration::from_millis(500);
    let mut warm_until: Option<Instant> = None;
    let mut measure: Option<(Instant, CpuMark)> = None;
    // Room for a whole GRO run (at most 64 KiB).
    let mut buf = vec![0u8; 65536];
    let deadline_join = start + Duration::from_secs(10) + join_every * config.viewers as u32;
    loop {
        let now = Instant::now();
        if viewers.len() + failures.len() < config.viewers && now >= next_join {
            next_join += join_every;
            let ip = config.source_ips[viewers.len() % config.source_ips.len().max(1)];
            match Viewer::join(config, ip, &poll, Token(viewers.len())) {
                Ok(viewer) => viewers.push(viewer),
                Err(e) => failures.push(e),
            }
        }
        let joined = viewers.len() + failures.len() >= config.viewers;
        let all_connected = viewers.iter().all(|v| v.connected_at.is_some());
        if warm_until.is_none() && joined && (all_connected || now >= deadline_join) {
            warm_until = Some(now + config.warmup);
        }
        if measure.is_none() && warm_until.is_some_and(|at| now >= at) {
            measure = Some((now, CpuMark::take(config.server_pid)));
            viewers.iter_mut().for_each(|v| v.stats.start(now));
        }
        if measure
            .as_ref()
            .is_some_and(|(from, _)| now.duration_since(*from) >= config.duration)
        {
            break;
        }
        turn(
            &mut poll,
            &mut events,
            &mut viewers,
            &mut publisher,
            &mut buf,
        )?;
    }
    let (from, cpu) = measure.expect("the loop ends while measuring");
    let seconds = from.elapsed().as_secs_f64();
    let (server_cores, client_cores) = cpu.cores_since(config.server_pid, seconds);
    // Leave as players do, so that the server's next run starts with no sessions.
    for viewer in &viewers {
        client::delete(config.http, &viewer.location);
    }
    if let Some(p) = &publisher {
        client::delete(config.http, &p.location);
    }
    Ok(report(
        config,
        viewers,
        failures,
        seconds,
        server_cores,
        client_cores,
    ))
}

/// One turn: datagrams in (at most 5 ms of waiting), the publisher's media due, timeouts.
fn turn(
    poll: &mut Poll,
    events: &mut Events,
    viewers: &mut [Viewer],
    publisher: &mut Option<Publisher>,
    buf: &mut [u8],
) -> Result<(), String> {
    poll.poll(events, Some(Duration::from_millis(2)))
        .map_err(|e| e.to_string())?;
    for event in events.iter() {
        let Token(index) = event.token();
        if index == client::PUBLISHER_TOKEN {
            if let Some(p) = publisher.as_mut() {
                p.readable(buf);
            }
        } else if let Some(viewer) = viewers.get_mut(index) {
            viewer.readable(buf);
        }
    }
    let now = Instant::now();
    if let Some(p) = publisher.as_mut() {
        p.tick(now);
    }
    for viewer in viewers.iter_mut() {
        viewer.tick(now);
    }
    Ok(())
}

fn report(
    config: &RtcLoadConfig,
    viewers: Vec<Viewer>,
    mut failures: Vec<String>,
    seconds: f64,
    server_cores: Option<f64>,
    client_cores: f64,
) -> RtcReport {
    let connected = viewers.iter().filter(|v| v.connected_at.is_some()).count();
    for v in viewers.iter().filter(|v| v.connected_at.is_none()) {
        failures.push(format!("{}: never connected", v.local));
    }
    let stats: Vec<&ViewerStats> = viewers
        .iter()
        .filter(|v| v.connected_at.is_some())
        .map(|v| &v.stats)
        .collect();
    let (packets, lost) = stats.iter().fold((0, 0), |(p, l), s| {
        (p + s.window_packets(), l + s.window_lost())
    });
    let mut rates: Vec<f64> = stats
        .iter()
        .map(|s| s.window_bytes() as f64 * 8.0 / seconds / 1e6)
        .collect();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let starved = rates.iter().filter(|&&r| r < median * 0.8).count();
    // The first arrival of each frame over all viewers, then each viewer's lag behind it.
    let mut first: HashMap<u32, Instant> = HashMap::new();
    for s in &stats {
        for &(ts, at) in &s.frames {
            first
                .entry(ts)
                .and_modify(|f| *f = (*f).min(at))
                .or_insert(at);
        }
    }
    let mut spread = Histogram::<u64>::new(3).expect("a histogram");
    for s in &stats {
        for &(ts, at) in &s.frames {
            let lag = at.duration_since(first[&ts]).as_micros() as u64;
            spread.record(lag.max(1)).ok();
        }
    }
    let ms = |q: f64| spread.value_at_quantile(q) as f64 / 1000.0;
    let failed = config.viewers - connected;
    RtcReport {
        viewers: config.viewers,
        connected,
        failed,
        failures: failures.into_iter().take(10).collect(),
        seconds,
        video_packets: packets,
        video_lost: lost,
        loss_ratio: if packets + lost == 0 {
            0.0
        } else {
            lost as f64 / (packets + lost) as f64
        },
        mbps_per_viewer: median,
        starved,
        frames_measured: spread.len(),
        spread_p50_ms: ms(0.5),
        spread_p99_ms: ms(0.99),
        spread_max_ms: spread.max() as f64 / 1000.0,
        server_cores,
        server_us_per_viewer_s: server_cores.map(|c| c * 1e6 / connected.max(1) as f64),
        client_cores,
        gro: config.gro,
    }
}

/// CPU times at the start of the window: the server's (from /proc) and this process's.
struct CpuMark {
    server: Option<f64>,
    client: f64,
}

impl CpuMark {
    fn take(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            server: server_pid.and_then(|pid| cpu_seconds(&format!("/proc/{pid}/stat"))),
            client: cpu_seconds("/proc/self/stat").unwrap_or(0.0),
        }
    }

    /// Cores busy since: (the server's, this process's).
    fn cores_since(&self, server_pid: Option<u32>, seconds: f64) -> (Option<f64>, f64) {
        let now = CpuMark::take(server_pid);
        let server = match (self.server, now.server) {
            (Some(a), Some(b)) => Some((b - a) / seconds),
            _ => None,
        };
        (server, (now.client - self.client) / seconds)
    }
}

/// utime + stime of a `/proc/…/stat`, in seconds (USER_HZ 100).
fn cpu_seconds(path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
