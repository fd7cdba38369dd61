//! `ws`: danmaku load over WebSocket (subprotocol `shardcast.v1`), and idle WebSocket
//! connections for memory measurements.
//!
//! A run has `connections` viewers spread over `rooms` rooms; the first `senders` of them also
//! post chats, at `rate_per_sec` chats per second in total, open loop ([`plan`] says who does
//! what). Each chat's text says who sent it, its number, and when ([`chat::ChatText`]); every
//! receiver accounts per sender for what arrived in order, late, twice, or never
//! ([`tracker`]), and for the delivery latency. The counts of all connections, threads and
//! processes merge into one [`WsReport`].
//!
//! The connections can be split over `processes` worker processes (each a descriptor budget
//! of its own) and `threads` io_uring runtimes per process. Workers are this same executable
//! started as `shardcast-bench ws-worker`; they read the configuration from stdin, join their
//! connections, report `joined`, wait for a common start time (in `CLOCK_MONOTONIC`
//! microseconds, shared by every process on the host), run, and print their counts as JSON.
//! With one process everything runs in the calling process.
//!
//! The protocol parts are sans-io and tested on their own: [`codec`] (the client side of RFC
//! 6455), [`chat`], [`tracker`], [`plan`], and the merging of counts in [`stats`].

pub mod chat;
pub mod codec;
mod conn;
pub mod plan;
pub mod socketio;
pub mod stats;
pub mod tracker;

use std::io::{self, BufRead, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use stats::{WsReport, WsShape, WsStats};

use crate::net;
use crate::target::{resolve, TargetError};
use conn::{ThreadJoined, ABORT_US};
use plan::Assignment;

/// Most load threads per process.
pub const THREADS_MAX: u64 = 64;

/// Most worker processes.
pub const PROCESSES_MAX: u64 = 64;

/// Time between fixing the start and the start itself, so that every process and thread
/// hears of it before it comes.
const START_DELAY: Duration = Duration::from_millis(200);

/// One parsed and resolved `ws://HOST:PORT/PATH` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsUrl {
    /// The URL as given.
    pub text: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// `HOST:PORT` as written, for the `Host` header.
    pub authority: String,
    /// The request target, starting with `/`.
    pub path: String,
}

impl WsUrl {
    /// Parses and resolves a URL (`ws://` only: TLS is not spoken).
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        let rest = text
            .strip_prefix("ws://")
            .ok_or_else(|| TargetError::Scheme(text.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let addr = resolve(authority, 80).map_err(|error| match error {
            TargetError::Malformed(_) => TargetError::Malformed(text.to_owned()),
            other => other,
        })?;
        Ok(Self {
            text: text.to_owned(),
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// What the server speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WsProtocol {
    /// `shardcast.v1` (binary FlatBuffers): Hello/Welcome, Chat, Batch.
    #[default]
    Shardcast,
    /// Socket.IO 5 over Engine.IO 4, WebSocket transport only ([`socketio`]): `join`, `chat`
    /// events. No sequence numbers, so no gap accounting; order and loss are still tracked
    /// per sender from the chat texts.
    SocketIo,
}

/// How a `ws` run is shaped. Build with [`WsLoadConfig::new`] and adjust the fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WsLoadConfig {
    /// Target (the first host).
    pub url: WsUrl,
    /// More hosts serving the same rooms: with `h` hosts in all, connection `i` goes to host
    /// `(i / rooms) mod h`, so every room has members on every host (when it has at least
    /// `h` connections) and the senders (the first connections) are on the first host.
    pub more_urls: Vec<WsUrl>,
    /// What the hosts speak.
    pub protocol: WsProtocol,
    /// Connections in total (viewers; senders are among them).
    pub connections: u64,
    /// Rooms `bench-0` .. `bench-{rooms-1}`; connection `i` joins room `i mod rooms`.
    pub rooms: u64,
    /// Connections that also send chats (the first `senders`).
    pub senders: u64,
    /// Chats per second over all senders (open loop, evenly paced).
    pub rate_per_sec: f64,
    /// Send phase before the measurement window.
    pub warmup: Duration,
    /// Measurement window.
    pub duration: Duration,
    /// Wait after the send phase before what has not arrived counts as missing: by default
    /// two batching windows (2 × 50 ms) plus one second.
    pub grace: Duration,
    /// Worker processes; 1 runs in the calling process.
    pub processes: u64,
    /// Load threads (io_uring runtimes) per process.
    pub threads: u64,
    /// Source addresses, connection `i` binding `source_addrs[i mod n]`; empty to let the
    /// kernel choose.
    pub source_addrs: Vec<Ipv4Addr>,
    /// Token of the senders' `Hello`; viewers that only read join anonymously.
    pub token: String,
    /// New connections per second over the run; 0 for as fast as possible.
    pub ramp_per_sec: u64,
    /// Longest wait for connect, upgrade and `Welcome` of one connection.
    pub connect_timeout: Duration,
    /// Idle mode: no senders; connections join and stay for `duration` after all joined.
    pub idle: bool,
    /// The executable started as a worker (`EXE ws-worker`); `None` for this one.
    pub worker_exe: Option<PathBuf>,
}

impl WsLoadConfig {
    /// The defaults of the command line: 100 connections in 1 room, 10 senders at 100
    /// chats/s, 10 s after 2 s of warm-up, 1.1 s grace, one process and thread, 5000
    /// connects/s, 10 s connect timeout.
    pub fn new(url: WsUrl) -> Self {
        Self {
            url,
            more_urls: Vec::new(),
            protocol: WsProtocol::Shardcast,
            connections: 100,
            rooms: 1,
            senders: 10,
            rate_per_sec: 100.0,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            grace: Duration::from_millis(1100),
            processes: 1,
            threads: 1,
            source_addrs: Vec::new(),
            token: String::new(),
            ramp_per_sec: 5000,
            connect_timeout: Duration::from_secs(10),
            idle: false,
            worker_exe: None,
        }
    }

    /// The host connection `index` goes to.
    pub fn url_of(&self, index: u64) -> &WsUrl {
        let hosts = 1 + self.more_urls.len() as u64;
        match (index / self.rooms.max(1)) % hosts {
            0 => &self.url,
            host => &self.more_urls[host as usize - 1],
        }
    }

    /// The assignment rules of this run.
    pub fn assignment(&self) -> Assignment {
        Assignment {
            connections: self.connections,
            rooms: self.rooms,
            senders: self.senders,
            processes: self.processes,
            threads: self.threads,
        }
    }

    /// Refuses a configuration that cannot run, saying why.
    pub fn validate(&self) -> Result<(), WsLoadError> {
        let refuse = |why: String| Err(WsLoadError::Config(why));
        if self.connections == 0 {
            return refuse("connections must be at least 1".to_owned());
        }
        if !(1..=self.connections).contains(&self.rooms) {
            return refuse(format!(
                "rooms {} is outside 1..={} (every room needs a connection)",
                self.rooms, self.connections
            ));
        }
        if self.senders > self.connections {
            return refuse(format!(
                "senders {} exceed connections {}",
                self.senders, self.connections
            ));
        }
        if self.idle && self.senders > 0 {
            return refuse("idle connections do not send: use --senders 0".to_owned());
        }
        if self.senders > 0 && !(self.rate_per_sec > 0.0 && self.rate_per_sec.is_finite()) {
            return refuse("senders need a positive --rate".to_owned());
        }
        if !(1..=PROCESSES_MAX).contains(&self.processes) {
            return refuse(format!(
                "processes {} is outside 1..={PROCESSES_MAX}",
                self.processes
            ));
        }
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return refuse(format!(
                "threads {} is outside 1..={THREADS_MAX}",
                self.threads
            ));
        }
        if self.processes > self.connections {
            return refuse("more processes than connections".to_owned());
        }
        if self.idle && self.protocol == WsProtocol::SocketIo {
            return refuse("idle mode speaks shardcast.v1 only".to_owned());
        }
        let mut urls = std::iter::once(&self.url).chain(&self.more_urls);
        if !self.source_addrs.is_empty() && !urls.all(|url| url.addr.is_ipv4()) {
            return refuse("source addresses are IPv4; the URL must be IPv4 too".to_owned());
        }
        plan::check_sources(self.connections, &self.source_addrs).map_err(WsLoadError::Config)?;
        let per_process = self.assignment().connections_in_process(0);
        net::check_open_files(per_process).map_err(|why| {
            WsLoadError::Config(format!(
                "{why} ({} processes carry {per_process} connections each)",
                self.processes
            ))
        })
    }

    fn shape(&self) -> WsShape {
        WsShape {
            url: std::iter::once(&self.url)
                .chain(&self.more_urls)
                .map(|url| url.text.as_str())
                .collect::<Vec<_>>()
                .join(","),
            connections: self.connections,
            rooms: self.rooms,
            senders: self.senders,
            rate_per_sec: self.rate_per_sec,
            processes: self.processes,
            threads: self.threads,
            warmup_s: self.warmup.as_secs_f64(),
            duration_s: self.duration.as_secs_f64(),
            grace_s: self.grace.as_secs_f64(),
            idle: self.idle,
        }
    }
}

/// Why a run could not take place. Failures of the server are counted in the report instead.
#[derive(Debug, thiserror::Error)]
pub enum WsLoadError {
    /// The configuration is unusable; the message says why.
    #[error("{0}")]
    Config(String),
    /// A load thread could not build its io_uring runtime.
    #[error("{0}")]
    Runtime(io::Error),
    /// A worker process could not be started or failed.
    #[error("worker: {0}")]
    Worker(String),
}

/// Every connection attempt of the run has finished: how many joined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinSummary {
    /// Connections asked for.
    pub connections: u64,
    /// Connections that got their `Welcome`.
    pub joined: u64,
    /// Attempts that failed (connect, upgrade or `Welcome`).
    pub errors: u64,
    /// Milliseconds from the start until all attempts had finished.
    pub join_ms: u64,
}

impl JoinSummary {
    fn add(&mut self, other: &JoinSummary) {
        self.connections += other.connections;
        self.joined += other.joined;
        self.errors += other.errors;
        self.join_ms = self.join_ms.max(other.join_ms);
    }
}

/// Called once every connection attempt has finished, before the send phase (in idle mode,
/// before holding): the steady state starts here.
pub type OnJoined = Box<dyn FnOnce(&JoinSummary)>;

/// Runs the load and returns the report; see the module documentation. Returns after the
/// connect phase, warm-up, duration and grace.
pub fn run_ws(config: WsLoadConfig) -> Result<WsReport, WsLoadError> {
    run_ws_with(config, None)
}

/// [`run_ws`], calling `on_joined` when every connection attempt has finished.
pub fn run_ws_with(
    config: WsLoadConfig,
    on_joined: Option<OnJoined>,
) -> Result<WsReport, WsLoadError> {
    config.validate()?;
    let stats = if config.processes == 1 {
        run_process(&config, 0, |summary| {
            if let Some(on_joined) = on_joined {
                on_joined(summary);
            }
            chat::monotonic_us() + START_DELAY.as_micros() as u64
        })?
    } else {
        run_workers(&config, on_joined)?
    };
    Ok(WsReport::from_stats(config.shape(), &stats))
}

/// The entry point of a worker process (`shardcast-bench ws-worker`): reads the
/// configuration (one JSON line) from stdin, joins process `process`'s connections, prints
/// `joined <JSON>`, waits for `go <start_us>` on stdin, runs, and prints `report <JSON>`.
pub fn worker_main(process: u64) -> Result<(), String> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| format!("reading the configuration: {e}"))?;
    let config: WsLoadConfig =
        serde_json::from_str(&line).map_err(|e| format!("configuration: {e}"))?;
    if process >= config.processes {
        return Err(format!(
            "process {process} of {} does not exist",
            config.processes
        ));
    }
    let stats = run_process(&config, process, |summary| {
        let json = serde_json::to_string(summary).expect("a summary serialises");
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "joined {json}");
        let _ = stdout.flush();
        let mut go = String::new();
        match input.read_line(&mut go) {
            Ok(n) if n > 0 => go
                .trim()
                .strip_prefix("go ")
                .and_then(|us| us.parse().ok())
                .unwrap_or(ABORT_US),
            _ => ABORT_US,
        }
    })
    .map_err(|e| e.to_string())?;
    let json = serde_json::to_string(&stats).map_err(|e| e.to_string())?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "report {json}").map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())
}

/// Runs process `process`'s share on `threads` threads. `go` is called once every thread has
/// finished its connection attempts, with their summary, and returns the start time
/// ([`ABORT_US`] to stop).
fn run_process(
    config: &WsLoadConfig,
    process: u64,
    go: impl FnOnce(&JoinSummary) -> u64,
) -> Result<WsStats, WsLoadError> {
    let cpu_before = net::process_cpu_time();
    let begin = Instant::now();
    let gate = Gate::default();
    let mut window_cpu_s = None;
    let results: Vec<io::Result<WsStats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.threads)
            .map(|thread| {
                let gate = &gate;
                std::thread::Builder::new()
                    .name(format!("bench-ws-{thread}"))
                    .spawn_scoped(scope, move || {
                        conn::run_thread(
                            config,
                            process,
                            thread,
                            |joined| gate.thread_joined(joined),
                            || gate.start_us(),
                        )
                    })
                    .expect("spawning a load thread")
            })
            .collect();
        let mut summary = gate.wait_joined(config.threads as usize);
        summary.join_ms = begin.elapsed().as_millis() as u64;
        let start_us = go(&summary);
        gate.set_start(start_us);
        window_cpu_s = cpu_over_window(config, start_us);
        handles
            .into_iter()
            .map(|handle| handle.join().expect("load thread panicked"))
            .collect()
    });
    let mut stats = WsStats::new(config.senders);
    for result in results {
        stats.merge(&result.map_err(WsLoadError::Runtime)?);
    }
    stats.wall_s = begin.elapsed().as_secs_f64();
    if let (Some(before), Some(after)) = (cpu_before, net::process_cpu_time()) {
        stats.cpu_s = (after - before).as_secs_f64();
    }
    if let Some(window_cpu_s) = window_cpu_s {
        stats.cpu_window_s = window_cpu_s;
        stats.window_s = config.duration.as_secs_f64();
    }
    stats.processes = 1;
    Ok(stats)
}

/// CPU time this process uses during the measurement window: sampled at its start and end
/// (the calling thread sleeps meanwhile). `None` for an aborted run or without `/proc`.
fn cpu_over_window(config: &WsLoadConfig, start_us: u64) -> Option<f64> {
    if start_us == ABORT_US || config.duration.is_zero() {
        return None;
    }
    let clock = chat::Clock::new();
    let measure_us = start_us + config.warmup.as_micros() as u64;
    let end_us = measure_us + config.duration.as_micros() as u64;
    let sleep_to = |us: u64| {
        let until = clock.instant_of(us);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    };
    sleep_to(measure_us);
    let before = net::process_cpu_time()?;
    sleep_to(end_us);
    let after = net::process_cpu_time()?;
    Some((after - before).as_secs_f64())
}

/// Where the threads of one process meet before the start.
#[derive(Default)]
struct Gate {
    joined: Mutex<(usize, JoinSummary)>,
    all_joined: Condvar,
    /// 0 until the start is fixed.
    start_us: AtomicU64,
}

impl Gate {
    fn thread_joined(&self, thread: ThreadJoined) {
        let mut joined = self.joined.lock().expect("gate lock");
        joined.0 += 1;
        joined.1.add(&JoinSummary {
            connections: thread.connections,
            joined: thread.joined,
            errors: thread.errors,
            join_ms: 0,
        });
        self.all_joined.notify_all();
    }

    fn wait_joined(&self, threads: usize) -> JoinSummary {
        let mut joined = self.joined.lock().expect("gate lock");
        while joined.0 < threads {
            joined = self.all_joined.wait(joined).expect("gate lock");
        }
        joined.1
    }

    fn set_start(&self, start_us: u64) {
        self.start_us.store(start_us.max(1), Ordering::Release);
    }

    fn start_us(&self) -> Option<u64> {
        let start_us = self.start_us.load(Ordering::Acquire);
        (start_us != 0).then_some(start_us)
    }
}

/// What a worker's stdout said.
enum WorkerLine {
    Joined(usize, JoinSummary),
    Report(usize, Box<WsStats>),
    Ended(usize),
}

/// Starts the workers, relays the start, and merges their reports.
fn run_workers(
    config: &WsLoadConfig,
    mut on_joined: Option<OnJoined>,
) -> Result<WsStats, WsLoadError> {
    // `/proc/self/exe` still names this program when its file has been replaced (by a
    // rebuild during a run), where `current_exe` would name the new file or a deleted path.
    let exe = match &config.worker_exe {
        Some(exe) => exe.clone(),
        None if std::path::Path::new("/proc/self/exe").exists() => PathBuf::from("/proc/self/exe"),
        None => std::env::current_exe().map_err(|e| WsLoadError::Worker(e.to_string()))?,
    };
    let json = serde_json::to_string(config).map_err(|e| WsLoadError::Worker(e.to_string()))?;
    let (lines_tx, lines) = mpsc::channel();
    let mut workers: Vec<Child> = Vec::new();
    let stop_all = |workers: &mut Vec<Child>| {
        for worker in workers.iter_mut() {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    };
    for process in 0..config.processes {
        let spawned = Command::new(&exe)
            .arg("ws-worker")
            .arg("--process")
            .arg(process.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut worker = match spawned {
            Ok(worker) => worker,
            Err(error) => {
                stop_all(&mut workers);
                return Err(WsLoadError::Worker(format!("{}: {error}", exe.display())));
            }
        };
        let mut stdin = worker.stdin.take().expect("piped stdin");
        if writeln!(stdin, "{json}").is_err() {
            stop_all(&mut workers);
            return Err(WsLoadError::Worker(
                "a worker refused its configuration".to_owned(),
            ));
        }
        worker.stdin = Some(stdin);
        let stdout = worker.stdout.take().expect("piped stdout");
        let tx = lines_tx.clone();
        let index = process as usize;
        std::thread::spawn(move || read_worker(index, stdout, tx));
        workers.push(worker);
    }
    drop(lines_tx);

    let mut summary = JoinSummary::default();
    let mut reports: Vec<Option<WsStats>> = vec![None; workers.len()];
    let mut joined = vec![false; workers.len()];
    let mut ended = vec![false; workers.len()];
    let mut started = false;
    while let Ok(line) = lines.recv() {
        match line {
            WorkerLine::Joined(index, part) => {
                joined[index] = true;
                summary.add(&part);
            }
            WorkerLine::Report(index, stats) => reports[index] = Some(*stats),
            WorkerLine::Ended(index) => ended[index] = true,
        }
        if !started && joined.iter().all(|&j| j) {
            started = true;
            if let Some(on_joined) = on_joined.take() {
                on_joined(&summary);
            }
            let start_us = chat::monotonic_us() + START_DELAY.as_micros() as u64;
            for worker in &mut workers {
                if let Some(stdin) = worker.stdin.as_mut() {
                    let _ = writeln!(stdin, "go {start_us}");
                    let _ = stdin.flush();
                }
            }
        }
        if !started && ended.iter().zip(&joined).any(|(&e, &j)| e && !j) {
            // A worker died before joining: the others would wait forever.
            stop_all(&mut workers);
            return Err(WsLoadError::Worker(
                "a worker exited before joining its connections".to_owned(),
            ));
        }
        if ended.iter().all(|&e| e) {
            break;
        }
    }
    let mut failed = Vec::new();
    for (index, worker) in workers.iter_mut().enumerate() {
        drop(worker.stdin.take());
        match worker.wait() {
            Ok(status) if status.success() => {}
            Ok(status) => failed.push(format!("worker {index} {status}")),
            Err(error) => failed.push(format!("worker {index}: {error}")),
        }
    }
    let mut stats = WsStats::new(config.senders);
    for (index, report) in reports.into_iter().enumerate() {
        match report {
            Some(report) => stats.merge(&report),
            None => failed.push(format!("worker {index} sent no report")),
        }
    }
    if !failed.is_empty() {
        return Err(WsLoadError::Worker(failed.join("; ")));
    }
    Ok(stats)
}

fn read_worker(index: usize, stdout: std::process::ChildStdout, tx: mpsc::Sender<WorkerLine>) {
    for line in io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let parsed = if let Some(json) = line.strip_prefix("joined ") {
            serde_json::from_str(json)
                .ok()
                .map(|summary| WorkerLine::Joined(index, summary))
        } else if let Some(json) = line.strip_prefix("report ") {
            serde_json::from_str(json)
                .ok()
                .map(|stats| WorkerLine::Report(index, Box::new(stats)))
        } else {
            None
        };
        match parsed {
            Some(parsed) => {
                if tx.send(parsed).is_err() {
                    return;
                }
            }
            None => eprintln!("shardcast-bench: worker {index}: unexpected line: {line}"),
        }
    }
    let _ = tx.send(WorkerLine::Ended(index));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let url = WsUrl::parse("ws://127.0.0.1:9002/ws").unwrap();
        assert_eq!(url.addr, "127.0.0.1:9002".parse().unwrap());
        assert_eq!(url.authority, "127.0.0.1:9002");
        assert_eq!(url.path, "/ws");
        assert_eq!(WsUrl::parse("ws://127.0.0.1:9").unwrap().path, "/");
        assert!(matches!(
            WsUrl::parse("wss://127.0.0.1/ws"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://:1/ws"),
            Err(TargetError::Malformed(_))
        ));
    }

    #[test]
    fn config_refusals() {
        let base = WsLoadConfig::new(WsUrl::parse("ws://127.0.0.1:9/ws").unwrap());
        assert!(base.validate().is_ok());
        let refused = |change: fn(&mut WsLoadConfig)| {
            let mut config = base.clone();
            change(&mut config);
            config.validate().is_err()
        };
        assert!(refused(|c| c.connections = 0));
        assert!(refused(|c| c.rooms = 0));
        assert!(refused(|c| c.rooms = 101));
        assert!(refused(|c| c.senders = 101));
        assert!(refused(|c| c.rate_per_sec = 0.0));
        assert!(refused(|c| c.processes = 0));
        assert!(refused(|c| c.threads = 0));
        assert!(refused(|c| c.idle = true));
        assert!(refused(|c| {
            c.idle = true;
            c.senders = 0;
            c.protocol = WsProtocol::SocketIo;
        }));
        assert!(refused(|c| {
            c.connections = 30_000;
            c.source_addrs = vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
        }));
        let mut idle = base.clone();
        idle.idle = true;
        idle.senders = 0;
        assert!(idle.validate().is_ok());
    }

    #[test]
    fn every_room_has_members_on_every_host() {
        let mut config = WsLoadConfig::new(WsUrl::parse("ws://127.0.0.1:9/a").unwrap());
        config.more_urls = vec![WsUrl::parse("ws://127.0.0.1:10/b").unwrap()];
        config.connections = 40;
        config.rooms = 4;
        let host = |i: u64| config.url_of(i).path.clone();
        for room in 0..4 {
            let hosts: std::collections::BTreeSet<String> =
                (0..40).filter(|i| i % 4 == room).map(host).collect();
            assert_eq!(hosts.len(), 2, "room {room}");
        }
        // The first `rooms` connections (the senders, with one per room) are on host A.
        assert!((0..4).all(|i| host(i) == "/a"));
        assert!((4..8).all(|i| host(i) == "/b"));
    }

    #[test]
    fn config_travels_as_json() {
        let mut config = WsLoadConfig::new(WsUrl::parse("ws://127.0.0.1:9/ws").unwrap());
        config.source_addrs = vec![Ipv4Addr::new(127, 0, 0, 2)];
        config.token = "t.k".to_owned();
        let json = serde_json::to_string(&config).unwrap();
        let back: WsLoadConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.url, config.url);
        assert_eq!(back.source_addrs, config.source_addrs);
        assert_eq!(back.grace, config.grace);
        assert_eq!(back.token, "t.k");
    }

    #[test]
    fn gate_counts_threads() {
        let gate = Gate::default();
        assert_eq!(gate.start_us(), None);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    gate.thread_joined(ThreadJoined {
                        connections: 5,
                        joined: 4,
                        errors: 1,
                    })
                });
            }
            let summary = gate.wait_joined(3);
            assert_eq!(
                (summary.connections, summary.joined, summary.errors),
                (15, 12, 3)
            );
        });
        gate.set_start(42);
        assert_eq!(gate.start_us(), Some(42));
    }
}
