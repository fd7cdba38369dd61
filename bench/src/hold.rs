//! `hold`: opens many connections, optionally proves each one is served with one request,
//! then keeps them idle until the duration is over. The server's memory growth divided by
//! the connections held is its cost per idle connection.
//!
//! One runtime on the calling thread drives every connection. Each idle connection keeps a
//! 64-byte read pending, which is how a close by the server is noticed (and counted). At the
//! end every pending read is cancelled and the connections are dropped.

use std::cell::Cell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncWriteRentExt, CancelHandle, CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;
use serde::{Deserialize, Serialize};

use crate::net::{self, op_or_deadline, CONNECTS_IN_FLIGHT_MAX};
use crate::parser::ResponseParser;

/// Read buffer of an idle connection; it only ever sees a close or stray bytes.
const IDLE_READ_BYTES: usize = 64;

/// Read buffer for the one response read with `request_first`.
const REQUEST_READ_BYTES: usize = 4096;

/// Submission ring entries. Thousands of reads stay pending; the ring only bounds how many
/// are submitted per `io_uring_enter`.
const RING_ENTRIES: u32 = 4096;

/// How long the end of the run waits for cancelled reads to come back before dropping the
/// runtime anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Called once with the counts when every connection attempt has finished.
pub type OnReady = Box<dyn FnOnce(&HoldReport)>;

/// How a `hold` run is shaped.
pub struct HoldConfig {
    /// Server address.
    pub target: SocketAddr,
    /// `Host` header of the optional request.
    pub authority: String,
    /// Connections to open.
    pub connections: usize,
    /// Source addresses bound round-robin; empty to let the kernel choose.
    pub source_addrs: Vec<Ipv4Addr>,
    /// How long to hold, counted from the start (ramp included).
    pub duration: Duration,
    /// New connections per second; 0 opens them as fast as possible.
    pub ramp_per_sec: u64,
    /// Send `GET {request_path}` on each connection and read the response before going idle.
    pub request_first: bool,
    /// Path of that request.
    pub request_path: String,
    /// Longest wait for a connect, and for the response to the first request.
    pub connect_timeout: Duration,
    /// Called once every connection attempt (and first request) has finished, with the
    /// counts at that moment: the steady state starts here.
    pub on_ready: Option<OnReady>,
}

impl HoldConfig {
    /// Defaults: 1000 connections, 60 s, 5000 per second, no request, 10 s connect timeout.
    pub fn new(target: SocketAddr, authority: String) -> Self {
        Self {
            target,
            authority,
            connections: 1000,
            source_addrs: Vec::new(),
            duration: Duration::from_secs(60),
            ramp_per_sec: 5000,
            request_first: false,
            request_path: "/healthz".to_owned(),
            connect_timeout: Duration::from_secs(10),
            on_ready: None,
        }
    }
}

/// Counts of a `hold` run.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldReport {
    /// Server address.
    pub target: String,
    /// Connections asked for.
    pub connections: usize,
    /// Connections whose handshake completed.
    pub established: u64,
    /// Connections whose first request got a 200 (with `request_first`).
    pub served: u64,
    /// First requests that failed: other status, unparsable, closed or timed out.
    pub request_errors: u64,
    /// Connection attempts that failed or timed out.
    pub connect_errors: u64,
    /// Established connections the server closed or reset before the end.
    pub closed_by_server: u64,
    /// Established connections still open at the end (or at the moment of the report).
    pub held: u64,
    /// Bytes the server sent on idle connections (nothing is expected).
    pub unexpected_bytes: u64,
    /// Seconds from the start until every attempt had finished; 0 if not all did.
    pub ramp_s: f64,
    /// Seconds from the start to this report.
    pub elapsed_s: f64,
}

impl HoldReport {
    /// The human-readable summary.
    pub fn to_text(&self) -> String {
        format!(
            "target      {}\n\
             held        {} of {} (established {}, closed by server {}, connect errors {})\n\
             requests    served {}, errors {}; unexpected bytes {}\n\
             time        ramp {:.2} s, elapsed {:.2} s\n",
            self.target,
            self.held,
            self.connections,
            self.established,
            self.closed_by_server,
            self.connect_errors,
            self.served,
            self.request_errors,
            self.unexpected_bytes,
            self.ramp_s,
            self.elapsed_s
        )
    }
}

/// Why a hold run could not take place.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The configuration is unusable; the message says why.
    #[error("{0}")]
    Config(String),
    /// The io_uring runtime could not be built.
    #[error("{0}")]
    Runtime(io::Error),
}

/// Opens, holds and finally drops the connections. Returns when the duration is over.
pub fn run_hold(mut config: HoldConfig) -> Result<HoldReport, HoldError> {
    if config.connections == 0 {
        return Err(HoldError::Config(
            "connections must be at least 1".to_owned(),
        ));
    }
    if !config.source_addrs.is_empty() && !config.target.is_ipv4() {
        return Err(HoldError::Config(
            "source addresses are IPv4; the target must be IPv4 too".to_owned(),
        ));
    }
    net::check_open_files(config.connections as u64).map_err(HoldError::Config)?;
    let mut runtime = net::build_runtime(RING_ENTRIES).map_err(HoldError::Runtime)?;
    let on_ready = config.on_ready.take();
    let begin = Instant::now();
    let shared = Rc::new(Shared {
        begin,
        end: begin + config.duration,
        request: format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast-bench\r\n\r\n",
            config.request_path, config.authority
        )
        .into_bytes(),
        config,
        counts: Counts::default(),
    });
    runtime.block_on(drive(shared.clone(), on_ready));
    Ok(shared.report())
}

/// State shared by the connections of a run (single-threaded).
struct Shared {
    config: HoldConfig,
    begin: Instant,
    end: Instant,
    request: Vec<u8>,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    connecting: Cell<usize>,
    active: Cell<usize>,
    attempts_done: Cell<usize>,
    established: Cell<u64>,
    served: Cell<u64>,
    request_errors: Cell<u64>,
    connect_errors: Cell<u64>,
    closed_by_server: Cell<u64>,
    unexpected_bytes: Cell<u64>,
    ramp_s: Cell<f64>,
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

impl Shared {
    fn report(&self) -> HoldReport {
        let counts = &self.counts;
        HoldReport {
            target: self.config.target.to_string(),
            connections: self.config.connections,
            established: counts.established.get(),
            served: counts.served.get(),
            request_errors: counts.request_errors.get(),
            connect_errors: counts.connect_errors.get(),
            closed_by_server: counts.closed_by_server.get(),
            held: counts.established.get() - counts.closed_by_server.get(),
            unexpected_bytes: counts.unexpected_bytes.get(),
            ramp_s: counts.ramp_s.get(),
            elapsed_s: self.begin.elapsed().as_secs_f64(),
        }
    }
}

/// Ramps the connections up, reports readiness, waits for the end, then cancels every read.
async fn drive(shared: Rc<Shared>, on_ready: Option<OnReady>) {
    let config = &shared.config;
    let canceller = Canceller::new();
    let mut spawned = 0;
    for index in 0..config.connections {
        if config.ramp_per_sec > 0 {
            let due =
                shared.begin + Duration::from_secs_f64(index as f64 / config.ramp_per_sec as f64);
            // The timer ticks in milliseconds: wait only when at least one tick ahead.
            if due > Instant::now() + Duration::from_millis(1) {
                sleep_until(due.min(shared.end)).await;
            }
        }
        while shared.counts.connecting.get() >= CONNECTS_IN_FLIGHT_MAX
            && Instant::now() < shared.end
        {
            sleep_until(Instant::now() + Duration::from_millis(1)).await;
        }
        if Instant::now() >= shared.end {
            break;
        }
        let source = (!config.source_addrs.is_empty())
            .then(|| config.source_addrs[index % config.source_addrs.len()]);
        monoio::spawn(hold_one(shared.clone(), source, canceller.handle()));
        spawned += 1;
    }
    while shared.counts.attempts_done.get() < spawned && Instant::now() < shared.end {
        sleep_until(Instant::now() + Duration::from_millis(5)).await;
    }
    if spawned == config.connections && shared.counts.attempts_done.get() == spawned {
        shared
            .counts
            .ramp_s
            .set(shared.begin.elapsed().as_secs_f64());
        if let Some(on_ready) = on_ready {
            on_ready(&shared.report());
        }
    }
    sleep_until(shared.end).await;
    drop(canceller.cancel());
    let grace_end = Instant::now() + SHUTDOWN_GRACE;
    while shared.counts.active.get() > 0 && Instant::now() < grace_end {
        sleep_until(Instant::now() + Duration::from_millis(1)).await;
    }
}

async fn sleep_until(deadline: Instant) {
    monoio::time::sleep_until(deadline.into()).await;
}

/// One connection: connect, optionally request, then wait for a close or the end.
async fn hold_one(shared: Rc<Shared>, source: Option<Ipv4Addr>, cancel: CancelHandle) {
    let counts = &shared.counts;
    counts.active.set(counts.active.get() + 1);
    counts.connecting.set(counts.connecting.get() + 1);
    let deadline = (Instant::now() + shared.config.connect_timeout).min(shared.end);
    let connected = net::connect(shared.config.target, source, deadline).await;
    counts.connecting.set(counts.connecting.get() - 1);
    match connected {
        Ok(mut stream) => {
            bump(&counts.established);
            if shared.config.request_first {
                let served = request_once(&mut stream, &shared.request, deadline).await;
                bump(if served {
                    &counts.served
                } else {
                    &counts.request_errors
                });
            }
            counts.attempts_done.set(counts.attempts_done.get() + 1);
            idle(&mut stream, counts, cancel).await;
        }
        Err(_) => {
            bump(&counts.connect_errors);
            counts.attempts_done.set(counts.attempts_done.get() + 1);
        }
    }
    counts.active.set(counts.active.get() - 1);
}

/// Sends one request and reads its response; true if it was a 200.
async fn request_once(stream: &mut TcpStream, request: &[u8], deadline: Instant) -> bool {
    let (written, _) = stream.write_all(request.to_vec()).await;
    if written.is_err() {
        return false;
    }
    let mut canceller = Canceller::new();
    let mut sleep = std::pin::pin!(monoio::time::sleep_until(deadline.into()));
    let mut parser = ResponseParser::new();
    let mut buf = Vec::with_capacity(REQUEST_READ_BYTES);
    loop {
        let read = stream.cancelable_read(buf, canceller.handle());
        let (result, returned) = op_or_deadline(read, &mut canceller, sleep.as_mut()).await;
        buf = returned;
        let received = match result {
            Ok(0) | Err(_) => return false,
            Ok(received) => received,
        };
        let mut rest = &buf[..received];
        while !rest.is_empty() {
            match parser.handle_bytes(rest) {
                Ok(progress) => {
                    if let Some(response) = progress.response {
                        return response.status == 200;
                    }
                    rest = &rest[progress.consumed..];
                }
                Err(_) => return false,
            }
        }
        buf.clear();
    }
}

/// Waits for the server to close the connection, or for the run to end (cancellation).
async fn idle(stream: &mut TcpStream, counts: &Counts, cancel: CancelHandle) {
    let mut buf = Vec::with_capacity(IDLE_READ_BYTES);
    loop {
        let (result, returned) = stream.cancelable_read(buf, cancel.clone()).await;
        buf = returned;
        match result {
            Ok(0) => break bump(&counts.closed_by_server),
            Ok(received) => {
                counts
                    .unexpected_bytes
                    .set(counts.unexpected_bytes.get() + received as u64);
                buf.clear();
            }
            Err(error) if error.raw_os_error() == Some(libc::ECANCELED) => break,
            Err(_) => break bump(&counts.closed_by_server),
        }
    }
}
