//! Clients that break the rules, one kind after another, each waiting (bounded) for the
//! server to close it: what the server answered and how long it took are counted per kind.
//!
//! A publish with a wrong stream key is not among them: the soak's server runs with
//! `media.publish_open` (any key publishes), and `e2e_hostile` covers key guessing.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::io::{status_of, Conn, Incoming, Read, WsConn, WsEnd};
use super::{LoadGauges, Rng, Shared};

/// Longest wait for the server to close a bad client; far past every timeout of the soak's
/// configuration.
const CLOSE_BOUND: Duration = Duration::from_secs(20);

/// Bytes kept from what the server sent, to read its answer.
const ANSWER_KEEP_BYTES: usize = 4096;

/// The kinds, in the order a slot goes through them.
const KINDS: [BadKind; 8] = [
    BadKind::HttpGarbage,
    BadKind::HttpSlowloris,
    BadKind::HttpSilent,
    BadKind::WsNoHello,
    BadKind::WsInvalidMessage,
    BadKind::WsUnmasked,
    BadKind::RtmpSilent,
    BadKind::RtmpGarbage,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadKind {
    /// Random bytes and a blank line on the HTTP port.
    HttpGarbage,
    /// A request head that never ends, one header line a second.
    HttpSlowloris,
    /// An HTTP connection that sends nothing.
    HttpSilent,
    /// A WebSocket upgrade and then nothing (no `Hello`).
    WsNoHello,
    /// A WebSocket message that is not a FlatBuffer of the protocol.
    WsInvalidMessage,
    /// A WebSocket frame from the client without a mask.
    WsUnmasked,
    /// An RTMP connection that never starts the handshake.
    RtmpSilent,
    /// Random bytes on the RTMP port (a wrong version byte).
    RtmpGarbage,
}

impl BadKind {
    fn name(self) -> &'static str {
        match self {
            BadKind::HttpGarbage => "HTTP garbage bytes",
            BadKind::HttpSlowloris => "HTTP slowloris head",
            BadKind::HttpSilent => "HTTP connection that sends nothing",
            BadKind::WsNoHello => "WebSocket without Hello",
            BadKind::WsInvalidMessage => "WebSocket invalid message",
            BadKind::WsUnmasked => "WebSocket unmasked frame",
            BadKind::RtmpSilent => "RTMP without handshake",
            BadKind::RtmpGarbage => "RTMP garbage bytes",
        }
    }
}

/// How a bad client ended.
struct Verdict {
    /// When the server closed it, from the start of the misbehaviour.
    closed_after: Option<Duration>,
    /// What the server said (`HTTP 400`, `WS close 1008`, `no bytes`, ...).
    answer: String,
}

/// A bad-client slot: every kind in turn until the churn ends.
pub async fn bad_slot(shared: Rc<Shared>, slot: u32) {
    let mut rng = Rng::new(shared.config.seed ^ 0xBAD ^ (u64::from(slot) << 8));
    let mut turn = slot as usize;
    shared
        .nap(rng.between(Duration::ZERO, Duration::from_secs(3)))
        .await;
    while shared.churning() {
        let kind = KINDS[turn % KINDS.len()];
        turn += 1;
        let open = LoadGauges::add(&shared.gauges.bad);
        let verdict = misbehave(&shared, kind, &mut rng).await;
        drop(open);
        let Some(verdict) = verdict else {
            shared.error("bad client: connect failed");
            continue;
        };
        let closed = verdict.closed_after;
        shared.count(|counts| {
            let count = counts.bad.entry(kind.name().to_owned()).or_default();
            count.tried += 1;
            *count.answers.entry(verdict.answer).or_default() += 1;
            if let Some(after) = closed {
                count.closed += 1;
                count.close_s += after.as_secs_f64();
            }
        });
        if closed.is_none() {
            shared.error(&format!("bad client: {} not closed in 20 s", kind.name()));
        }
        shared
            .nap(rng.between(Duration::from_millis(200), Duration::from_millis(1500)))
            .await;
    }
}

async fn misbehave(shared: &Shared, kind: BadKind, rng: &mut Rng) -> Option<Verdict> {
    let config = &shared.config;
    let deadline = Instant::now() + Duration::from_secs(5);
    let addr = match kind {
        BadKind::RtmpSilent | BadKind::RtmpGarbage => config.rtmp,
        _ => config.http,
    };
    let conn = Conn::connect(addr, deadline).await.ok()?;
    Some(match kind {
        BadKind::HttpGarbage => {
            let mut bytes = random_bytes(rng, 200);
            bytes.extend_from_slice(b"\r\n\r\n");
            send_then_wait(conn, bytes, http_answer).await
        }
        BadKind::HttpSlowloris => slowloris(conn).await,
        BadKind::HttpSilent => send_then_wait(conn, Vec::new(), http_answer).await,
        BadKind::WsNoHello => ws_misbehave(conn, rng.next_u64(), None).await,
        BadKind::WsInvalidMessage => {
            let junk = random_bytes(rng, 64);
            ws_misbehave(conn, rng.next_u64(), Some(Frame::Masked(junk))).await
        }
        BadKind::WsUnmasked => {
            let frame = b"\x82\x05hello".to_vec();
            ws_misbehave(conn, rng.next_u64(), Some(Frame::Raw(frame))).await
        }
        BadKind::RtmpSilent => send_then_wait(conn, Vec::new(), rtmp_answer).await,
        BadKind::RtmpGarbage => {
            let mut bytes = random_bytes(rng, 1537);
            bytes[0] = 0x07;
            send_then_wait(conn, bytes, rtmp_answer).await
        }
    })
}

/// Sends `bytes` (maybe none) and waits for the server to close.
async fn send_then_wait(mut conn: Conn, bytes: Vec<u8>, answer: fn(&[u8]) -> String) -> Verdict {
    let started = Instant::now();
    if !bytes.is_empty() && conn.write_all(bytes, started + CLOSE_BOUND).await.is_err() {
        return Verdict {
            closed_after: Some(started.elapsed()),
            answer: "reset while sending".to_owned(),
        };
    }
    let closed = wait_closed(&mut conn, started + CLOSE_BOUND).await;
    Verdict {
        closed_after: closed.then(|| started.elapsed()),
        answer: answer(&conn.buf),
    }
}

/// Reads until the server closes or `deadline`, keeping the first bytes in `conn.buf`.
async fn wait_closed(conn: &mut Conn, deadline: Instant) -> bool {
    loop {
        let kept = conn.buf.len();
        match conn.read_more(deadline).await {
            Read::Data(_) => conn
                .buf
                .truncate(kept.max(ANSWER_KEEP_BYTES).min(conn.buf.len())),
            Read::Eof | Read::Failed => return true,
            Read::TimedOut => return false,
        }
    }
}

/// Sends a request head that never ends, one line a second, until the server closes.
async fn slowloris(mut conn: Conn) -> Verdict {
    let started = Instant::now();
    let mut next = b"GET /healthz HTTP/1.1\r\nHost: soak\r\n".to_vec();
    while started.elapsed() < CLOSE_BOUND {
        if conn.write_all(next, started + CLOSE_BOUND).await.is_err() {
            break;
        }
        next = b"X-Slow: 1\r\n".to_vec();
        let kept = conn.buf.len();
        match conn
            .read_more(Instant::now() + Duration::from_secs(1))
            .await
        {
            Read::Data(_) => conn
                .buf
                .truncate(kept.max(ANSWER_KEEP_BYTES).min(conn.buf.len())),
            Read::TimedOut => {}
            Read::Eof | Read::Failed => {
                return Verdict {
                    closed_after: Some(started.elapsed()),
                    answer: http_answer(&conn.buf),
                }
            }
        }
    }
    let closed = started.elapsed() < CLOSE_BOUND;
    Verdict {
        closed_after: closed.then(|| started.elapsed()),
        answer: http_answer(&conn.buf),
    }
}

/// What a bad WebSocket client sends after the upgrade.
enum Frame {
    /// A masked binary message with this payload.
    Masked(Vec<u8>),
    /// These bytes as they are.
    Raw(Vec<u8>),
}

/// Upgrades, sends `frame` (or nothing), and waits for the server's close.
async fn ws_misbehave(conn: Conn, seed: u64, frame: Option<Frame>) -> Verdict {
    let started = Instant::now();
    let deadline = started + CLOSE_BOUND;
    let mut ws = match WsConn::upgrade(conn, seed, deadline).await {
        Ok(ws) => ws,
        Err(_) => {
            return Verdict {
                closed_after: Some(started.elapsed()),
                answer: "upgrade refused".to_owned(),
            }
        }
    };
    match frame {
        Some(Frame::Masked(payload)) => ws.queue_binary(&payload),
        Some(Frame::Raw(bytes)) => ws.queue_raw(&bytes),
        None => {}
    }
    let _ = ws.flush(deadline).await;
    let mut answer = "no close frame".to_owned();
    let mut incoming = Vec::new();
    loop {
        incoming.clear();
        match ws.recv(deadline, &mut incoming).await {
            Ok(()) if incoming.is_empty() => {
                return Verdict {
                    closed_after: None,
                    answer,
                }
            }
            Ok(()) => {
                for message in &incoming {
                    if let Incoming::Close(code) = message {
                        answer = format!("WS close {}", code.unwrap_or(0));
                    }
                }
            }
            Err(WsEnd::Closed | WsEnd::Protocol) => {
                return Verdict {
                    closed_after: Some(started.elapsed()),
                    answer,
                }
            }
        }
    }
}

fn http_answer(received: &[u8]) -> String {
    let line = received.split(|&b| b == b'\r').next().unwrap_or_default();
    match status_of(&String::from_utf8_lossy(line)) {
        Some(status) => format!("HTTP {status}"),
        None if received.is_empty() => "no bytes".to_owned(),
        None => "bytes that are not HTTP".to_owned(),
    }
}

fn rtmp_answer(received: &[u8]) -> String {
    if received.is_empty() {
        "no bytes".to_owned()
    } else {
        "handshake bytes".to_owned()
    }
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_named() {
        assert_eq!(
            http_answer(b"HTTP/1.1 408 Request Timeout\r\n\r\n"),
            "HTTP 408"
        );
        assert_eq!(http_answer(b""), "no bytes");
        assert_eq!(http_answer(b"\x03abc"), "bytes that are not HTTP");
        assert_eq!(rtmp_answer(b""), "no bytes");
        assert_eq!(KINDS.len(), 8);
    }
}
