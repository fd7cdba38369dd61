//! `http`: keep-alive HTTP/1.1 load against one or more URLs.
//!
//! Each load thread runs one monoio (io_uring) runtime and drives its share of the
//! connections, one task per connection. A connection keeps up to `pipeline` requests in
//! flight. In a closed loop a new request goes out as soon as a response frees a slot, and
//! latency runs from the actual send. In an open loop (`rate_per_sec > 0`) each connection
//! follows a fixed schedule of intended send times; a request that could not go out on time
//! (because its slot was still busy) still has its latency measured from its intended time,
//! so a server that stalls is charged for the requests it delayed, not only for the ones it
//! answered (no coordinated omission).
//!
//! Every wait of a connection (read, write, next scheduled send) is bounded by one deadline:
//! the oldest request's timeout, the next intended send, or the end of the run. When the
//! deadline passes first, the pending io_uring operation is cancelled and awaited, so any
//! bytes it did receive are still parsed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::IoBuf;
use monoio::io::{CancelableAsyncReadRent, CancelableAsyncWriteRentExt, Canceller};
use monoio::net::TcpStream;
use monoio::time::Sleep;

use crate::net::{self, op_or_deadline};
use crate::parser::{Response, ResponseParser};
use crate::report::{HttpReport, LoadStats, RunShape};
use crate::target::HttpUrl;

/// Most requests in flight per connection. At about 80 bytes per request the unsent part of
/// a full pipeline stays far below a socket send buffer.
pub const PIPELINE_MAX: usize = 1024;

/// Read buffer per connection. 256 KiB keeps large bodies at few reads per MiB; 64
/// connections cost 16 MiB.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Most load threads (one runtime each).
pub const THREADS_MAX: usize = 64;

/// How early an open-loop request may go out. The runtime's timer ticks in milliseconds, so
/// a wake-up for an intended send time can be up to a tick late; sending requests due within
/// the next tick avoids charging that lateness to the server. Latency still runs from the
/// intended time when a request goes out late, and from the actual send when it goes out
/// early.
const SEND_AHEAD: Duration = Duration::from_millis(1);

/// Bodies with at least this much left are discarded in the kernel (recv with MSG_TRUNC: TCP
/// drops the bytes without copying them to user memory) instead of read: the load generator
/// then costs about a system call per socket buffer of body, not a copy of every byte. The
/// head and the body's first bytes still arrive through ordinary reads and are checked.
pub const DISCARD_MIN_BYTES: u64 = 4096;

/// Most bytes one discarding recv asks for (the length of the untouched buffer it is given).
const DISCARD_MAX_BYTES: usize = 4 << 20;

thread_local! {
    /// The buffer discarding recvs name; with MSG_TRUNC the kernel never writes it, so its
    /// pages are never touched.
    static DISCARD: RefCell<Vec<u8>> = RefCell::new(vec![0; DISCARD_MAX_BYTES]);
}

/// Pause after a failed connect before the next attempt.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Submission ring entries per load thread.
const RING_ENTRIES: u32 = 1024;

/// How an `http` run is shaped. Build with [`HttpLoadConfig::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct HttpLoadConfig {
    /// Targets; connection `i` uses `urls[i % urls.len()]`.
    pub urls: Vec<HttpUrl>,
    /// Keep-alive connections in total.
    pub connections: usize,
    /// Requests in flight per connection, 1..=[`PIPELINE_MAX`].
    pub pipeline: usize,
    /// Open-loop target in requests/s over all connections; 0 for a closed loop.
    pub rate_per_sec: u64,
    /// Measurement window after warm-up.
    pub duration: Duration,
    /// Load before measuring (connections open, caches warm).
    pub warmup: Duration,
    /// Load threads, each with its own runtime; connections are dealt round-robin.
    pub threads: usize,
    /// Source addresses bound round-robin (connection `i` uses `source_addrs[i % n]`);
    /// empty to let the kernel choose.
    pub source_addrs: Vec<Ipv4Addr>,
    /// A response with another status counts as a `status` error.
    pub expect_status: Option<u16>,
    /// A response with another body length counts as a `body` error.
    pub expect_body_bytes: Option<u64>,
    /// Read every body byte into user memory instead of discarding bodies in the kernel
    /// past their first bytes ([`DISCARD_MIN_BYTES`]); for comparing the two.
    pub read_bodies: bool,
    /// Longest wait for a response (and for a connect).
    pub timeout: Duration,
}

impl HttpLoadConfig {
    /// The defaults of the command line: 64 connections, pipeline 1, closed loop, 10 s after
    /// a 2 s warm-up, one thread, 5 s timeout, expecting status 200.
    pub fn new(url: HttpUrl) -> Self {
        Self {
            urls: vec![url],
            connections: 64,
            pipeline: 1,
            rate_per_sec: 0,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            threads: 1,
            source_addrs: Vec::new(),
            expect_status: Some(200),
            expect_body_bytes: None,
            read_bodies: false,
            timeout: Duration::from_secs(5),
        }
    }

    fn validate(&self) -> Result<(), HttpLoadError> {
        let refuse = |why: String| Err(HttpLoadError::Config(why));
        if self.urls.is_empty() {
            return refuse("at least one URL is needed".to_owned());
        }
        if self.connections == 0 {
            return refuse("connections must be at least 1".to_owned());
        }
        if !(1..=PIPELINE_MAX).contains(&self.pipeline) {
            return refuse(format!(
                "pipeline {} is outside 1..={PIPELINE_MAX}",
                self.pipeline
            ));
        }
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return refuse(format!(
                "threads {} is outside 1..={THREADS_MAX}",
                self.threads
            ));
        }
        if self.timeout.is_zero() {
            return refuse("timeout must be positive".to_owned());
        }
        if !self.source_addrs.is_empty() && self.urls.iter().any(|u| !u.addr.is_ipv4()) {
            return refuse("source addresses are IPv4; every URL must be IPv4 too".to_owned());
        }
        net::check_open_files(self.connections as u64).map_err(HttpLoadError::Config)
    }
}

/// Why a run could not take place. Failures of the server during a run are counted in the
/// report instead.
#[derive(Debug, thiserror::Error)]
pub enum HttpLoadError {
    /// The configuration is unusable; the message says why.
    #[error("{0}")]
    Config(String),
    /// A load thread could not build its io_uring runtime.
    #[error("{0}")]
    Runtime(io::Error),
}

/// Runs the load and returns the report. Builds its own threads and runtimes and returns when
/// warm-up plus duration have passed (plus at most the time to cancel pending operations).
pub fn run_http(config: HttpLoadConfig) -> Result<HttpReport, HttpLoadError> {
    config.validate()?;
    let cpu_before = net::process_cpu_time();
    let begin = Instant::now();
    let plan = Plan {
        begin,
        warmup_end: begin + config.warmup,
        end: begin + config.warmup + config.duration,
        pipeline: config.pipeline,
        send_interval: (config.rate_per_sec > 0).then(|| {
            Duration::from_secs_f64(config.connections as f64 / config.rate_per_sec as f64)
        }),
        first_send_step: if config.rate_per_sec > 0 {
            Duration::from_secs_f64(1.0 / config.rate_per_sec as f64)
        } else {
            Duration::ZERO
        },
        timeout: config.timeout,
        expect_status: config.expect_status,
        expect_body_bytes: config.expect_body_bytes,
        discard_bodies: !config.read_bodies,
    };
    let results: Vec<io::Result<LoadStats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.threads)
            .map(|thread| {
                let (config, plan) = (&config, &plan);
                std::thread::Builder::new()
                    .name(format!("bench-http-{thread}"))
                    .spawn_scoped(scope, move || run_thread(thread, config, plan))
                    .expect("spawning a load thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("load thread panicked"))
            .collect()
    });
    let mut stats = LoadStats::new();
    for result in results {
        stats.merge(&result.map_err(HttpLoadError::Runtime)?);
    }
    let shape = RunShape {
        urls: config.urls.iter().map(|u| u.text.clone()).collect(),
        connections: config.connections,
        pipeline: config.pipeline,
        threads: config.threads,
        rate_per_sec: config.rate_per_sec,
    };
    let mut report = HttpReport::from_stats(shape, &stats, config.duration);
    if let (Some(before), Some(after)) = (cpu_before, net::process_cpu_time()) {
        let wall = begin.elapsed().as_secs_f64();
        report.client_cpu_percent = 100.0 * (after - before).as_secs_f64() / wall.max(1e-9);
    }
    Ok(report)
}

/// The timeline and rules shared by every connection of a run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    begin: Instant,
    warmup_end: Instant,
    end: Instant,
    pipeline: usize,
    /// Open loop: time between intended sends on one connection.
    send_interval: Option<Duration>,
    /// Open loop: offset between the first sends of consecutive connections.
    first_send_step: Duration,
    timeout: Duration,
    expect_status: Option<u16>,
    expect_body_bytes: Option<u64>,
    discard_bodies: bool,
}

impl Plan {
    fn is_measuring(&self, now: Instant) -> bool {
        now >= self.warmup_end && now < self.end
    }
}

/// One load thread: a runtime driving connections `thread`, `thread + threads`, ...
fn run_thread(thread: usize, config: &HttpLoadConfig, plan: &Plan) -> io::Result<LoadStats> {
    let mut runtime = net::build_runtime(RING_ENTRIES)?;
    let stats = Rc::new(RefCell::new(LoadStats::new()));
    runtime.block_on(async {
        // One request template per URL, shared by this thread's connections.
        let templates: Vec<Rc<Vec<u8>>> = config
            .urls
            .iter()
            .map(|url| Rc::new(url.request_bytes().repeat(plan.pipeline)))
            .collect();
        let tasks: Vec<_> = (thread..config.connections)
            .step_by(config.threads)
            .map(|index| {
                let url = index % config.urls.len();
                let connection = Connection {
                    plan: *plan,
                    stats: stats.clone(),
                    target: config.urls[url].addr,
                    source: (!config.source_addrs.is_empty())
                        .then(|| config.source_addrs[index % config.source_addrs.len()]),
                    requests: templates[url].clone(),
                    request_bytes: templates[url].len() / plan.pipeline,
                    read_buf: Vec::with_capacity(READ_BUFFER_BYTES),
                    parser: ResponseParser::new(),
                    in_flight: VecDeque::with_capacity(plan.pipeline),
                    next_intended: plan.begin + plan.first_send_step * index as u32,
                };
                monoio::spawn(connection.run())
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
    let stats = std::mem::take(&mut *stats.borrow_mut());
    Ok(stats)
}

/// A request on the wire: when it should have gone out, and when it did.
#[derive(Debug, Clone, Copy)]
struct Sent {
    intended: Instant,
    sent: Instant,
}

/// Why a connection stopped being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The run is over; requests still in flight are not counted.
    RunOver,
    /// The server closed or reset the connection (or announced `Connection: close`).
    Closed,
    /// The oldest request in flight waited longer than the timeout.
    TimedOut,
    /// A response could not be framed, or came with no request outstanding.
    Unparsable,
}

/// One keep-alive connection slot: reconnects whenever its connection ends before the run.
struct Connection {
    plan: Plan,
    stats: Rc<RefCell<LoadStats>>,
    target: SocketAddr,
    source: Option<Ipv4Addr>,
    /// `pipeline` copies of the request; a batch of `k` sends the first `k`.
    requests: Rc<Vec<u8>>,
    request_bytes: usize,
    read_buf: Vec<u8>,
    parser: ResponseParser,
    in_flight: VecDeque<Sent>,
    /// Open loop: the intended time of the next request not yet sent.
    next_intended: Instant,
}

impl Connection {
    async fn run(mut self) {
        let plan = self.plan;
        let mut sleep = std::pin::pin!(monoio::time::sleep_until(plan.end.into()));
        let mut opened_before = false;
        while Instant::now() < plan.end {
            let connect_deadline = (Instant::now() + plan.timeout).min(plan.end);
            let stream = match net::connect(self.target, self.source, connect_deadline).await {
                Ok(stream) => stream,
                Err(_) => {
                    if Instant::now() < plan.end {
                        self.stats.borrow_mut().errors.connect += 1;
                    }
                    let pause_end = (Instant::now() + CONNECT_RETRY_PAUSE).min(plan.end);
                    monoio::time::sleep_until(pause_end.into()).await;
                    continue;
                }
            };
            if opened_before {
                self.stats.borrow_mut().reconnects += 1;
            }
            opened_before = true;
            let ended = self.drive(stream, sleep.as_mut()).await;
            self.count_lost(ended);
            self.in_flight.clear();
            self.parser.reset();
        }
    }

    /// Sends and receives on one connection until it ends.
    async fn drive(&mut self, mut stream: TcpStream, mut sleep: Pin<&mut Sleep>) -> Ended {
        let mut canceller = Canceller::new();
        loop {
            let now = Instant::now();
            if now >= self.plan.end {
                return Ended::RunOver;
            }
            let batch = self.fill_pipeline(now);
            if batch > 0 {
                let bytes = self.requests.clone().slice(0..batch * self.request_bytes);
                // A write cut short leaves a partial request behind, so only the timeout or
                // the end of the run may interrupt it, not the schedule.
                sleep.as_mut().reset(self.write_deadline().into());
                let write =
                    CancelableAsyncWriteRentExt::write_all(&mut stream, bytes, canceller.handle());
                let (result, _) = op_or_deadline(write, &mut canceller, sleep.as_mut()).await;
                if let Err(error) = result {
                    return self.classify_failure(&error).unwrap_or(Ended::TimedOut);
                }
            }
            sleep.as_mut().reset(self.deadline().into());
            if self.plan.discard_bodies {
                if let Some(remaining) = self.parser.body_remaining() {
                    if remaining >= DISCARD_MIN_BYTES {
                        match self.discard(&stream, remaining, sleep.as_mut()).await {
                            Some(ended) => return ended,
                            None => continue,
                        }
                    }
                }
            }
            let buf = std::mem::take(&mut self.read_buf);
            let read = stream.cancelable_read(buf, canceller.handle());
            let (result, buf) = op_or_deadline(read, &mut canceller, sleep.as_mut()).await;
            self.read_buf = buf;
            match result {
                Ok(0) => return Ended::Closed,
                Ok(received) => {
                    if let Some(ended) = self.handle_received(received) {
                        return ended;
                    }
                }
                Err(error) => {
                    if let Some(ended) = self.classify_failure(&error) {
                        return ended;
                    }
                }
            }
        }
    }

    /// Queues as many requests as the pipeline and (in an open loop) the schedule allow, and
    /// returns how many to send now.
    fn fill_pipeline(&mut self, now: Instant) -> usize {
        let mut batch = 0;
        while self.in_flight.len() < self.plan.pipeline {
            let intended = match self.plan.send_interval {
                None => now,
                Some(_) if self.next_intended > now + SEND_AHEAD => break,
                Some(interval) => {
                    let intended = self.next_intended;
                    self.next_intended += interval;
                    intended
                }
            };
            self.in_flight.push_back(Sent {
                intended,
                sent: now,
            });
            batch += 1;
        }
        batch
    }

    /// The next moment this connection must act even if nothing arrives.
    fn deadline(&self) -> Instant {
        let mut deadline = self.plan.end;
        if let Some(oldest) = self.in_flight.front() {
            deadline = deadline.min(oldest.sent + self.plan.timeout);
        }
        if self.plan.send_interval.is_some() && self.in_flight.len() < self.plan.pipeline {
            let next_send = self
                .next_intended
                .checked_sub(SEND_AHEAD)
                .unwrap_or(self.next_intended);
            deadline = deadline.min(next_send);
        }
        deadline
    }

    /// The deadline of a write: the timeout of the oldest request or the end of the run.
    fn write_deadline(&self) -> Instant {
        match self.in_flight.front() {
            Some(oldest) => self.plan.end.min(oldest.sent + self.plan.timeout),
            None => self.plan.end,
        }
    }

    /// An operation failed or was cancelled at the deadline. Returns why the connection ends,
    /// or `None` when only the deadline passed and the connection carries on (a scheduled
    /// send came due).
    fn classify_failure(&self, error: &io::Error) -> Option<Ended> {
        if error.raw_os_error() != Some(libc::ECANCELED) {
            return Some(Ended::Closed);
        }
        let now = Instant::now();
        if now >= self.plan.end {
            return Some(Ended::RunOver);
        }
        match self.in_flight.front() {
            Some(oldest) if now >= oldest.sent + self.plan.timeout => Some(Ended::TimedOut),
            _ => None,
        }
    }

    /// Parses `received` bytes at the start of the read buffer, settling every response
    /// completed. Returns why the connection must end, if it must.
    fn handle_received(&mut self, received: usize) -> Option<Ended> {
        let now = Instant::now();
        if self.plan.is_measuring(now) {
            self.stats.borrow_mut().bytes_received += received as u64;
        }
        let buf = std::mem::take(&mut self.read_buf);
        let mut rest = &buf[..received];
        let mut ended = None;
        while !rest.is_empty() {
            let Ok(progress) = self.parser.handle_bytes(rest) else {
                ended = Some(Ended::Unparsable);
                break;
            };
            rest = &rest[progress.consumed..];
            if let Some(response) = progress.response {
                ended = self.handle_response(response, now);
                if ended.is_some() {
                    break;
                }
            }
        }
        self.read_buf = buf;
        self.read_buf.clear();
        ended
    }

    /// One whole response: matched to its request and counted.
    fn handle_response(&mut self, response: Response, now: Instant) -> Option<Ended> {
        let plan = self.plan;
        let Some(sent) = self.in_flight.pop_front() else {
            return Some(Ended::Unparsable);
        };
        let mut stats = self.stats.borrow_mut();
        if plan.expect_status.is_some_and(|s| s != response.status) {
            stats.errors.status += 1;
        } else if plan
            .expect_body_bytes
            .is_some_and(|b| b != response.body_bytes)
        {
            stats.errors.body += 1;
        } else if plan.is_measuring(now) {
            stats.record_response(now - sent.intended.min(sent.sent), response.body_bytes);
        }
        response.close.then_some(Ended::Closed)
    }

    /// Discards up to `remaining` body bytes in the kernel ([`DISCARD_MIN_BYTES`]), waiting
    /// for them until the deadline `sleep` is set to. None: go on with the connection.
    async fn discard(
        &mut self,
        stream: &TcpStream,
        remaining: u64,
        mut sleep: Pin<&mut Sleep>,
    ) -> Option<Ended> {
        use std::os::fd::AsRawFd;
        let want = remaining.min(DISCARD_MAX_BYTES as u64) as usize;
        let discarded = DISCARD.with(|buf| {
            let mut buf = buf.borrow_mut();
            nix::sys::socket::recv(
                stream.as_raw_fd(),
                &mut buf[..want],
                nix::sys::socket::MsgFlags::MSG_TRUNC | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
            )
        });
        match discarded {
            Ok(0) => Some(Ended::Closed),
            Ok(n) => {
                let now = Instant::now();
                if self.plan.is_measuring(now) {
                    self.stats.borrow_mut().bytes_received += n as u64;
                }
                let response = self.parser.skip_body(n as u64)?;
                self.handle_response(response, now)
            }
            Err(nix::errno::Errno::EAGAIN) => {
                monoio::select! {
                    ready = stream.readable(false) => ready.err().map(|_| Ended::Closed),
                    // The deadline: the run's end, a timeout, or (open loop) the next send.
                    _ = sleep.as_mut() => {
                        self.classify_failure(&io::Error::from_raw_os_error(libc::ECANCELED))
                    }
                }
            }
            Err(nix::errno::Errno::EINTR) => None,
            Err(_) => Some(Ended::Closed),
        }
    }

    /// Charges the requests lost with a connection to the cause of its end.
    fn count_lost(&self, ended: Ended) {
        let lost = self.in_flight.len() as u64;
        let mut stats = self.stats.borrow_mut();
        match ended {
            Ended::RunOver => {}
            Ended::Closed => stats.errors.closed += lost,
            Ended::TimedOut => stats.errors.timeout += lost,
            Ended::Unparsable => stats.errors.parse += lost.max(1),
        }
    }
}
