//! The control thread: stop signals, the drain, and blocking work the shards must never do
//! themselves (webhooks today; stores and Redis later).
//!
//! It waits on two descriptors at once — a signalfd for SIGTERM/SIGINT and the doorbell of its
//! end of the mesh — so a shard's request is picked up at once and a signal is never missed.
//! Blocking calls run on short-lived worker threads (at most [`WEBHOOK_IN_FLIGHT_MAX`] at a
//! time); their answers come back through a channel and the same doorbell.

use crate::shard_msg::ShardMsg;
use shardcast_engine::{Runtime, ShardId};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Webhook calls running at once; past it a call is refused at once (and logged).
pub const WEBHOOK_IN_FLIGHT_MAX: usize = 16;
/// Largest webhook response head read, in bytes.
const WEBHOOK_RESPONSE_HEAD_MAX_BYTES: usize = 8192;

/// Work a shard asks of the control thread.
#[derive(Debug)]
pub enum ControlRequest {
    /// POST `body` (JSON) to `url`; answer with whether it returned 2xx.
    Webhook {
        url: String,
        body: String,
        timeout_ms: u64,
        /// Handed back in the reply so the shard can match it.
        token: u64,
    },
}

/// The control thread's answer.
#[derive(Debug)]
pub enum ControlReply {
    Webhook {
        token: u64,
        allowed: bool,
        detail: String,
    },
}

/// Runs the control loop until a stop signal and the drain that follows complete.
pub fn run(mut runtime: Runtime<ShardMsg>, grace_ms: u64) -> Result<(), String> {
    let signals = shardcast_engine::sys::termination_signalfd()
        .map_err(|e| format!("cannot open a signalfd: {e}"))?;
    let (done_tx, done_rx) = mpsc::channel::<(ShardId, ControlReply)>();
    let mut in_flight = 0usize;
    let mut drain_started: Option<Instant> = None;
    let mut inbox = Vec::new();
    loop {
        let parked = runtime.park();
        let ready = shardcast_engine::sys::poll_readable(
            &[signals, runtime.doorbell_fd()],
            if parked { 200 } else { 0 },
        );
        runtime.unpark();
        if ready[0] {
            while let Some(signal) = shardcast_engine::sys::read_signalfd(signals) {
                match drain_started {
                    None => {
                        log::info!(
                            "{} received: draining (grace {grace_ms} ms; another signal after 1 s exits at once)",
                            signal_name(signal)
                        );
                        drain_started = Some(Instant::now());
                        runtime.drain();
                    }
                    // A terminal's Ctrl-C reaches both a wrapper (just, cargo run) and us, and
                    // the wrapper forwards it again: a repeat within a second is the same request.
                    Some(started) if started.elapsed() >= SECOND_SIGNAL_AFTER => {
                        log::warn!("{} received during drain: exiting now", signal_name(signal));
                        std::process::exit(1);
                    }
                    Some(_) => log::debug!(
                        "{} repeated within 1 s: still draining",
                        signal_name(signal)
                    ),
                }
            }
        }
        runtime.receive(1024, |from, msg| inbox.push((from, msg)));
        for (from, msg) in inbox.drain(..) {
            match msg {
                ShardMsg::Control(request) => {
                    handle(&runtime, from, request, &done_tx, &mut in_flight);
                }
                _ => log::warn!("control thread got a message meant for a shard from {from:?}"),
            }
        }
        while let Ok((to, reply)) = done_rx.try_recv() {
            in_flight -= 1;
            runtime.send(to, ShardMsg::ControlReply(reply));
        }
        runtime.flush();
        if runtime.is_finished() {
            let result = runtime.join();
            return match (drain_started, result) {
                (Some(started), Ok(())) => {
                    log::info!("drained in {} ms; exiting", started.elapsed().as_millis());
                    Ok(())
                }
                (Some(_), Err(e)) => Err(format!("a shard failed while draining: {e}")),
                (None, Ok(())) => Err("shards exited unexpectedly".to_string()),
                (None, Err(e)) => Err(format!("a shard failed: {e}")),
            };
        }
        if let Some(started) = drain_started {
            if started.elapsed() > Duration::from_millis(grace_ms + 5_000) {
                return Err("drain did not finish within the grace period plus 5 s".to_string());
            }
        }
    }
}

fn handle(
    runtime: &Runtime<ShardMsg>,
    from: ShardId,
    request: ControlRequest,
    done: &mpsc::Sender<(ShardId, ControlReply)>,
    in_flight: &mut usize,
) {
    match request {
        ControlRequest::Webhook {
            url,
            body,
            timeout_ms,
            token,
        } => {
            if *in_flight >= WEBHOOK_IN_FLIGHT_MAX {
                log::warn!(
                    "webhook {url}: {WEBHOOK_IN_FLIGHT_MAX} calls already running; refusing"
                );
                let _ = done.send((
                    from,
                    ControlReply::Webhook {
                        token,
                        allowed: false,
                        detail: "too many webhook calls in flight".to_string(),
                    },
                ));
                *in_flight += 1;
                return;
            }
            *in_flight += 1;
            let done = done.clone();
            let doorbell = runtime.doorbell_fd();
            let spawned = std::thread::Builder::new()
                .name("webhook".to_string())
                .spawn(move || {
                    let started = Instant::now();
                    let outcome = post_json(&url, &body, Duration::from_millis(timeout_ms));
                    let (allowed, detail) = match outcome {
                        Ok(status) => ((200..300).contains(&status), format!("HTTP {status}")),
                        Err(e) => (false, e),
                    };
                    log::info!(
                        "webhook {url}: {detail} in {} ms",
                        started.elapsed().as_millis()
                    );
                    let reply = ControlReply::Webhook {
                        token,
                        allowed,
                        detail,
                    };
                    let _ = done.send((from, reply));
                    shardcast_engine::sys::eventfd_signal(doorbell);
                });
            if let Err(e) = spawned {
                log::error!("cannot start a webhook thread: {e}");
            }
        }
    }
}

/// POSTs `body` as JSON to an `http://` URL and returns the response status.
pub fn post_json(url: &str, body: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// webhook URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {authority}: no address"))?;
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let remaining = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(remaining(deadline)))
        .and_then(|()| stream.set_read_timeout(Some(remaining(deadline))))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: shardcast/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a status line".to_string());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > WEBHOOK_RESPONSE_HEAD_MAX_BYTES {
            return Err("status line too long".to_string());
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| "malformed status line".to_string())?;
    Ok(status)
}

/// A stop signal this long after the first forces an immediate exit.
const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

fn signal_name(signal: i32) -> &'static str {
    match signal {
        15 => "SIGTERM",
        2 => "SIGINT",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
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
    fn refuses_what_it_cannot_do() {
        assert!(post_json("https://example.invalid/", "{}", Duration::from_millis(100)).is_err());
        // Nothing listens on port 1 of loopback.
        assert!(post_json("http://127.0.0.1:1/", "{}", Duration::from_millis(500)).is_err());
    }
}
