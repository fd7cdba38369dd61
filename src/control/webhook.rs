//! Webhook calls: a JSON POST to an `http://` URL with a deadline, on a short-lived thread of
//! the control thread's (never on a shard).
//!
//! # One deadline for the whole call
//!
//! [`post_json`] is bounded by a single deadline, `timeout` after it is called, that covers
//! name resolution, connect, write and every read. Before each socket operation the socket's
//! timeout is set to the time left, and the call fails with [`WebhookError::TimedOut`] once
//! none is left, so a server that drips its answer a byte at a time cannot hold a call (and
//! one of the control thread's webhook slots) past it. At most
//! [`WEBHOOK_RESPONSE_HEAD_MAX_BYTES`] of the answer are read, and only up to its status line.
//!
//! # Name resolution
//!
//! std's resolver (`getaddrinfo`) takes no timeout. An IP-literal host is used as it is; any
//! other host (`localhost` included) is resolved on a thread of its own, which the call waits
//! for only until the deadline. Host names are kept, rather than accepting IP literals only,
//! because the configuration accepts them and webhook services are usually named
//! (`http://auth:8080/hook`). A resolver thread left behind by its caller runs on until
//! `getaddrinfo` gives up (the system resolver's own timeouts and attempts,
//! `/etc/resolv.conf`); such threads are bounded: at most [`RESOLVER_THREADS_MAX`] run at
//! once, and past that a call needing resolution fails at once with
//! [`WebhookError::ResolverBusy`] rather than start another.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Largest webhook response head read, in bytes (on the stack of the webhook thread).
pub const WEBHOOK_RESPONSE_HEAD_MAX_BYTES: usize = 8192;

/// Resolver threads running at once, whether or not their caller still waits. Each is a
/// thread blocked in `getaddrinfo` with its default stack (2 MiB reserved, little touched).
pub const RESOLVER_THREADS_MAX: usize = 16;

/// Resolver threads running now (see [`RESOLVER_THREADS_MAX`]).
static RESOLVER_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The URL is not `http://host[:port][/path]` without spaces or control characters.
    #[error("only http://host[:port]/path webhook URLs are supported: {0}")]
    UnsupportedUrl(String),
    /// The host name did not resolve, or resolved to no address.
    #[error("resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
    /// `limit` resolver threads are already running.
    #[error("resolve {host}: {limit} resolutions already running")]
    ResolverBusy { host: String, limit: usize },
    /// The deadline, `timeout_ms` after the call began, passed while at `stage`.
    #[error("timed out after {timeout_ms} ms ({stage})")]
    TimedOut { stage: Stage, timeout_ms: u64 },
    /// A socket operation failed at `stage`.
    #[error("{stage}: {detail}")]
    Io { stage: Stage, detail: String },
    /// The server closed the connection before a whole status line.
    #[error("connection closed before a status line")]
    Closed,
    /// `limit` bytes came without the end of a status line.
    #[error("no status line within {limit} bytes")]
    HeadTooLong { limit: usize },
    /// The status line is not `HTTP/x.y NNN ...` with NNN in 100..=599.
    #[error("malformed status line")]
    MalformedStatus,
}

/// Where a webhook call was when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Resolve,
    Connect,
    Send,
    Receive,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Resolve => "resolve",
            Stage::Connect => "connect",
            Stage::Send => "send",
            Stage::Receive => "receive",
        })
    }
}

/// POSTs `body` as JSON to an `http://` URL and returns the response status, all within
/// `timeout` (see the module doc).
pub fn post_json(url: &str, body: &str, timeout: Duration) -> Result<u16, WebhookError> {
    let deadline = Deadline::after(timeout);
    let target = Target::parse(url)?;
    let addrs = resolve(&target.host_port, &deadline)?;
    let mut stream = connect(&addrs, &deadline)?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        target.path,
        target.authority,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    send(&mut stream, request.as_bytes(), &deadline)?;
    read_status(&mut stream, &deadline)
}

/// The one deadline of a call.
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Self {
        Self {
            at: Instant::now() + timeout,
            timeout,
        }
    }

    /// The time left (never zero: socket timeouts refuse zero), or `TimedOut` if none is.
    fn left(&self, stage: Stage) -> Result<Duration, WebhookError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(self.timed_out(stage))
        } else {
            Ok(left)
        }
    }

    fn timed_out(&self, stage: Stage) -> WebhookError {
        WebhookError::TimedOut {
            stage,
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A socket error: a socket timeout (set to the time left) is the deadline's.
    fn io_error(&self, stage: Stage, e: io::Error) -> WebhookError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timed_out(stage),
            _ => WebhookError::Io {
                stage,
                detail: e.to_string(),
            },
        }
    }
}

/// Checks that `url` is one [`post_json`] can call (configuration checks it at load).
pub fn check_url(url: &str) -> Result<(), WebhookError> {
    Target::parse(url).map(|_| ())
}

/// The parts of a webhook URL.
struct Target<'a> {
    /// `host[:port]` as written, for the `Host` header.
    authority: &'a str,
    /// `host:port`, port 80 when none is written.
    host_port: String,
    path: &'a str,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Self, WebhookError> {
        let unsupported = || WebhookError::UnsupportedUrl(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(unsupported)?;
        // The URL goes into the request line and a header as it is.
        if rest.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(unsupported());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(unsupported());
        }
        // `[::1]` is a host without a port; `[::1]:8080` and `host:8080` have one.
        let has_port = match authority.rfind(']') {
            Some(end) => authority[end..].contains(':'),
            None => authority.contains(':'),
        };
        let host_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            host_port,
            path,
        })
    }
}

/// The addresses of `host_port`: an IP literal as it is, a name through a resolver thread.
fn resolve(host_port: &str, deadline: &Deadline) -> Result<Vec<SocketAddr>, WebhookError> {
    match host_port.parse::<SocketAddr>() {
        Ok(addr) => Ok(vec![addr]),
        Err(_) => resolve_on_thread(host_port, deadline, &RESOLVER_THREADS, system_lookup),
    }
}

/// A blocking name lookup (the system's, or a test's).
type Lookup = fn(&str) -> io::Result<Vec<SocketAddr>>;

fn system_lookup(host_port: &str) -> io::Result<Vec<SocketAddr>> {
    Ok(host_port.to_socket_addrs()?.collect())
}

/// Runs `lookup` on a thread holding one of the slots counted by `threads`, and waits for it
/// until the deadline; the thread gives its slot back when it ends, waited for or not.
fn resolve_on_thread(
    host_port: &str,
    deadline: &Deadline,
    threads: &'static AtomicUsize,
    lookup: Lookup,
) -> Result<Vec<SocketAddr>, WebhookError> {
    let failed = |detail: String| WebhookError::Resolve {
        host: host_port.to_string(),
        detail,
    };
    let slot = ResolverSlot::take(threads).ok_or_else(|| WebhookError::ResolverBusy {
        host: host_port.to_string(),
        limit: RESOLVER_THREADS_MAX,
    })?;
    let (answer_tx, answer_rx) = mpsc::sync_channel(1);
    let name = host_port.to_string();
    // If the spawn fails, the closure (and the slot in it) is dropped: the slot comes back.
    std::thread::Builder::new()
        .name("webhook-resolve".to_string())
        .spawn(move || {
            let _slot = slot;
            let _ = answer_tx.send(lookup(&name));
        })
        .map_err(|e| failed(format!("cannot start a resolver thread: {e}")))?;
    match answer_rx.recv_timeout(deadline.left(Stage::Resolve)?) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(failed("no address".to_string())),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(deadline.timed_out(Stage::Resolve)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(failed(
            "the resolver thread ended without an answer".to_string(),
        )),
    }
}

/// One of the resolver threads counted by a counter; given back when dropped.
struct ResolverSlot(&'static AtomicUsize);

impl ResolverSlot {
    /// A slot, unless [`RESOLVER_THREADS_MAX`] are taken.
    fn take(threads: &'static AtomicUsize) -> Option<Self> {
        threads
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < RESOLVER_THREADS_MAX).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(threads))
    }
}

impl Drop for ResolverSlot {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::AcqRel);
        assert!(before > 0, "resolver slot given back twice");
    }
}

/// Connects to the first of `addrs` that answers, before the deadline.
fn connect(addrs: &[SocketAddr], deadline: &Deadline) -> Result<TcpStream, WebhookError> {
    let mut last = WebhookError::Io {
        stage: Stage::Connect,
        detail: "no address".to_string(),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(addr, deadline.left(Stage::Connect)?) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                last = match deadline.io_error(Stage::Connect, e) {
                    WebhookError::Io { stage, detail } => WebhookError::Io {
                        stage,
                        detail: format!("{addr}: {detail}"),
                    },
                    timed_out => timed_out,
                }
            }
        }
    }
    Err(last)
}

/// Writes all of `bytes`, each write bounded by the time left.
fn send(stream: &mut TcpStream, mut bytes: &[u8], deadline: &Deadline) -> Result<(), WebhookError> {
    while !bytes.is_empty() {
        let left = deadline.left(Stage::Send)?;
        stream
            .set_write_timeout(Some(left))
            .map_err(|e| deadline.io_error(Stage::Send, e))?;
        match stream.write(bytes) {
            Ok(0) => return Err(deadline.io_error(Stage::Send, io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io_error(Stage::Send, e)),
        }
    }
    Ok(())
}

/// Reads the response up to the end of its status line (at most
/// [`WEBHOOK_RESPONSE_HEAD_MAX_BYTES`]), each read bounded by the time left, and returns the
/// status.
fn read_status(stream: &mut TcpStream, deadline: &Deadline) -> Result<u16, WebhookError> {
    let mut head = [0u8; WEBHOOK_RESPONSE_HEAD_MAX_BYTES];
    let mut len = 0;
    // Bytes before `scanned` hold no "\r\n" start: a server dripping bytes costs no rescans.
    let mut scanned = 0;
    loop {
        if let Some(i) = head[scanned..len].windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&head[..scanned + i]);
        }
        scanned = len.saturating_sub(1);
        if len == head.len() {
            return Err(WebhookError::HeadTooLong { limit: head.len() });
        }
        let left = deadline.left(Stage::Receive)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| deadline.io_error(Stage::Receive, e))?;
        match stream.read(&mut head[len..]) {
            Ok(0) => return Err(WebhookError::Closed),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io_error(Stage::Receive, e)),
        }
    }
}

/// `HTTP/1.1 204 No Content` → 204.
fn parse_status_line(line: &[u8]) -> Result<u16, WebhookError> {
    let line = std::str::from_utf8(line).map_err(|_| WebhookError::MalformedStatus)?;
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or_default();
    words
        .next()
        .filter(|_| version.starts_with("HTTP/"))
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or(WebhookError::MalformedStatus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    fn serve_once(status: &'static str) -> (String, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = vec![0u8; 4096];
            let n = s.read(&mut got).unwrap();
            s.write_all(status.as_bytes()).unwrap();
            String::from_utf8_lossy(&got[..n]).to_string()
        });
        (url, handle)
    }

    /// Accepts one connection, reads the request, then sends `reply` one byte every `gap`,
    /// stopping early once the client has gone.
    fn drip_once(reply: &'static [u8], gap: Duration) -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0u8; 4096]);
            for byte in reply {
                std::thread::sleep(gap);
                if s.write_all(std::slice::from_ref(byte)).is_err() {
                    return;
                }
            }
        });
        (url, handle)
    }

    #[test]
    fn posts_json_and_reads_the_status() {
        let (url, server) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            post_json(&url, "{\"a\":1}", Duration::from_secs(5)),
            Ok(204)
        );
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("Content-Type: application/json"));
        assert!(request.ends_with("{\"a\":1}"));
        let (url, server) = serve_once("HTTP/1.1 403 Forbidden\r\n\r\n");
        assert_eq!(post_json(&url, "{}", Duration::from_secs(5)), Ok(403));
        server.join().unwrap();
    }

    #[test]
    fn a_status_line_in_pieces_within_the_deadline_is_read() {
        let (url, server) = drip_once(b"HTTP/1.1 204 No Content\r\n\r\n", Duration::from_millis(5));
        assert_eq!(post_json(&url, "{}", Duration::from_secs(5)), Ok(204));
        server.join().unwrap();
    }

    #[test]
    fn a_dripping_server_is_cut_off_at_the_deadline() {
        // Each byte comes well within a read timeout of 1 s; the 25-byte status line would
        // take 7.5 s.
        let gap = Duration::from_millis(300);
        let (url, server) = drip_once(b"HTTP/1.1 204 No Content\r\n\r\n", gap);
        let started = Instant::now();
        let outcome = post_json(&url, "{}", Duration::from_secs(1));
        let took = started.elapsed();
        let timed_out = WebhookError::TimedOut {
            stage: Stage::Receive,
            timeout_ms: 1000,
        };
        assert_eq!(outcome, Err(timed_out));
        assert!(took >= Duration::from_millis(950), "took {took:?}");
        assert!(took < Duration::from_millis(2000), "took {took:?}");
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_is_cut_off_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Reads until the client gives up and closes.
            while matches!(s.read(&mut [0u8; 4096]), Ok(n) if n > 0) {}
        });
        let started = Instant::now();
        let outcome = post_json(&url, "{}", Duration::from_millis(500));
        let took = started.elapsed();
        let timed_out = WebhookError::TimedOut {
            stage: Stage::Receive,
            timeout_ms: 500,
        };
        assert_eq!(outcome, Err(timed_out));
        assert!(took >= Duration::from_millis(450), "took {took:?}");
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        server.join().unwrap();
    }

    #[test]
    fn a_head_without_a_status_line_is_bounded() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0u8; 4096]);
            let _ = s.write_all(&[b'x'; 2 * WEBHOOK_RESPONSE_HEAD_MAX_BYTES]);
        });
        let too_long = WebhookError::HeadTooLong {
            limit: WEBHOOK_RESPONSE_HEAD_MAX_BYTES,
        };
        assert_eq!(post_json(&url, "{}", Duration::from_secs(5)), Err(too_long));
        server.join().unwrap();
    }

    #[test]
    fn a_host_name_resolves_on_a_thread() {
        let (url, server) = serve_once("HTTP/1.1 200 OK\r\n\r\n");
        let port = url.rsplit(':').next().unwrap().trim_end_matches("/hook");
        let by_name = format!("http://localhost:{port}");
        assert_eq!(post_json(&by_name, "{}", Duration::from_secs(5)), Ok(200));
        assert!(server
            .join()
            .unwrap()
            .contains(&format!("Host: localhost:{port}")));
    }

    fn slow_lookup(_: &str) -> io::Result<Vec<SocketAddr>> {
        std::thread::sleep(Duration::from_millis(600));
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], 9))])
    }

    #[test]
    fn a_slow_resolver_is_cut_off_at_the_deadline_and_its_thread_still_counted() {
        static THREADS: AtomicUsize = AtomicUsize::new(0);
        let deadline = Deadline::after(Duration::from_millis(200));
        let started = Instant::now();
        let outcome = resolve_on_thread("slow.invalid:80", &deadline, &THREADS, slow_lookup);
        let took = started.elapsed();
        let timed_out = WebhookError::TimedOut {
            stage: Stage::Resolve,
            timeout_ms: 200,
        };
        assert_eq!(outcome, Err(timed_out));
        assert!(took < Duration::from_millis(500), "took {took:?}");
        // The thread runs on, holding its slot, and gives it back when its lookup ends.
        assert_eq!(THREADS.load(Ordering::Acquire), 1);
        let waited = Instant::now();
        while THREADS.load(Ordering::Acquire) != 0 {
            assert!(
                waited.elapsed() < Duration::from_secs(3),
                "slot never returned"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn resolver_threads_are_capped() {
        static THREADS: AtomicUsize = AtomicUsize::new(0);
        let slots: Vec<_> = (0..RESOLVER_THREADS_MAX)
            .map(|_| ResolverSlot::take(&THREADS).unwrap())
            .collect();
        assert!(ResolverSlot::take(&THREADS).is_none());
        let deadline = Deadline::after(Duration::from_secs(1));
        let busy = WebhookError::ResolverBusy {
            host: "a.invalid:80".to_string(),
            limit: RESOLVER_THREADS_MAX,
        };
        let outcome = resolve_on_thread("a.invalid:80", &deadline, &THREADS, slow_lookup);
        assert_eq!(outcome, Err(busy));
        drop(slots);
        assert_eq!(THREADS.load(Ordering::Acquire), 0);
        assert!(ResolverSlot::take(&THREADS).is_some());
    }

    #[test]
    fn urls_are_split_and_ports_defaulted() {
        let t = Target::parse("http://hooks:8080/a/b?c=d").unwrap();
        assert_eq!(
            (t.authority, t.host_port.as_str(), t.path),
            ("hooks:8080", "hooks:8080", "/a/b?c=d")
        );
        let t = Target::parse("http://hooks").unwrap();
        assert_eq!((t.host_port.as_str(), t.path), ("hooks:80", "/"));
        assert_eq!(
            Target::parse("http://[::1]/").unwrap().host_port,
            "[::1]:80"
        );
        assert_eq!(
            Target::parse("http://[::1]:81/").unwrap().host_port,
            "[::1]:81"
        );
        for bad in [
            "https://a/",
            "http:///x",
            "http://u:p@a/",
            "http://a/b c",
            "http://a/\r\nX: y",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(post_json("https://example.invalid/", "{}", Duration::from_millis(100)).is_err());
        // Nothing listens on port 1 of loopback.
        let refused = post_json("http://127.0.0.1:1/", "{}", Duration::from_millis(500));
        assert!(
            matches!(
                refused,
                Err(WebhookError::Io {
                    stage: Stage::Connect,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(
            parse_status_line(b"SIP/2.0 200 OK"),
            Err(WebhookError::MalformedStatus)
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 700 Odd"),
            Err(WebhookError::MalformedStatus)
        );
    }
}
