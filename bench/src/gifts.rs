//! Durable gifts through the server: `shardcast-bench gifts`.
//!
//! `clients` WebSocket connections join one room, each with its own token (its own wallet,
//! funded first through the admin API), and send one-unit gifts on a fixed schedule (open
//! loop: gift *i* of a client is due at start + *i* × `clients` / `rate`). A gift's ack
//! latency runs from its *scheduled* send time to the moment its `GiftAck` is read, so a
//! server that falls behind is charged for it (no coordinated omission). Only gifts scheduled
//! after the warm-up count. Every gift is answered or counted as unanswered: the report says
//! how many were acknowledged, refused (by cause) or never answered.
//!
//! Plain blocking threads (a writer and a reader per connection): at the rates a durable
//! ledger reaches (tens of thousands per second) the client is far from the limit.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use shardcast_wire::{decode_server, ClientEncoder, ServerMsg, VerifyLimits};

/// What to run.
#[derive(Clone, Debug)]
pub struct GiftsConfig {
    pub addr: SocketAddr,
    pub room: String,
    /// One chat token per client (`shardcast token --user U --room R`); the users must hold
    /// enough in their wallets (see [`fund`]).
    pub tokens: Vec<String>,
    /// Gifts per second over all clients.
    pub rate: u64,
    pub duration: Duration,
    pub warmup: Duration,
    /// The gift's catalog id (its value is debited per gift).
    pub gift_id: u32,
    /// Distinguishes this run's idempotency keys from earlier runs' on the same ledger.
    pub run: String,
}

/// What happened.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GiftsReport {
    pub clients: usize,
    pub target_rate: u64,
    pub duration_s: f64,
    /// Gifts sent in the measured window.
    pub sent: u64,
    pub acked: u64,
    /// Refusals by cause (`code cause`).
    pub refused: BTreeMap<String, u64>,
    /// Sent but never answered by the end of the drain.
    pub unanswered: u64,
    /// Acknowledged gifts per second in the measured window.
    pub acked_per_s: f64,
    pub ack_p50_ms: f64,
    pub ack_p90_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_p999_ms: f64,
    pub ack_max_ms: f64,
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum GiftsError {
    #[error("connect {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("WebSocket upgrade refused: {0}")]
    Upgrade(String),
    #[error("no Welcome: {0}")]
    Welcome(String),
    #[error("funding {0}: {1}")]
    Fund(String, String),
}

/// Credits `amount` to `user`'s wallet through the admin API (idempotent on `key`).
pub fn fund(
    addr: SocketAddr,
    admin_token: &str,
    user: &str,
    amount: u64,
    key: &str,
) -> Result<(), GiftsError> {
    let fail = |why: String| GiftsError::Fund(user.to_string(), why);
    let body = format!("{{\"amount\":{amount},\"idempotency_key\":\"{key}\"}}");
    let request = format!(
        "POST /api/v1/wallets/{user}/credit HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer \
         {admin_token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: \
         close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).map_err(|e| fail(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| fail(e.to_string()))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| fail(e.to_string()))?;
    if response.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(fail(response.lines().next().unwrap_or("").to_string()))
    }
}

/// One client's connection, joined to the room.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn connect(config: &GiftsConfig, token: &str) -> Result<Conn, GiftsError> {
    let stream =
        TcpStream::connect(config.addr).map_err(|e| GiftsError::Connect(config.addr, e))?;
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut writer = stream
        .try_clone()
        .map_err(|e| GiftsError::Connect(config.addr, e))?;
    let request = "GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: \
                   Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: shardcast.v1\r\n\r\n";
    writer
        .write_all(request.as_bytes())
        .map_err(|e| GiftsError::Connect(config.addr, e))?;
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        reader
            .read_exact(&mut byte)
            .map_err(|e| GiftsError::Upgrade(e.to_string()))?;
        head.push(byte[0]);
        if head.len() > 8192 {
            return Err(GiftsError::Upgrade("head too long".into()));
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(GiftsError::Upgrade(
            String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ));
    }
    let mut conn = Conn { reader, writer };
    let mut encoder = ClientEncoder::new();
    let hello = encoder
        .hello(&config.room, token, 0, "bench-gifts")
        .to_vec();
    send(&mut conn.writer, &hello, 1).map_err(|e| GiftsError::Welcome(e.to_string()))?;
    match read_frame(&mut conn.reader) {
        Ok(Some(payload)) => match decode_server(&payload, &VerifyLimits::server()) {
            Ok(ServerMsg::Welcome(_)) => Ok(conn),
            other => Err(GiftsError::Welcome(format!("{other:?}"))),
        },
        other => Err(GiftsError::Welcome(format!("{other:?}"))),
    }
}

/// Writes one masked binary frame.
fn send(writer: &mut TcpStream, payload: &[u8], mask_seed: u32) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x82);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = mask_seed.wrapping_mul(0x9e37_79b9).to_be_bytes();
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    writer.write_all(&frame)
}

/// Reads one server frame's payload (`None` on a close frame or EOF).
fn read_frame(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 2];
    if let Err(e) = reader.read_exact(&mut head) {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Ok(None),
            _ => Err(e),
        };
    }
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            reader.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    if len > 16 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "frame over 16 MiB",
        ));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    match head[0] & 0x0f {
        0x8 => Ok(None),
        _ => Ok(Some(payload)),
    }
}

/// What the readers gather.
struct Tally {
    latency: Histogram<u64>,
    acked: u64,
    refused: BTreeMap<String, u64>,
    answered: u64,
}

/// Runs the load and reports.
pub fn run_gifts(config: GiftsConfig) -> Result<GiftsReport, GiftsError> {
    let clients = config.tokens.len().max(1);
    let conns = config
        .tokens
        .iter()
        .map(|token| connect(&config, token))
        .collect::<Result<Vec<_>, _>>()?;
    let interval = Duration::from_secs_f64(clients as f64 / config.rate.max(1) as f64);
    let start = Instant::now() + Duration::from_millis(200);
    let measured_from = start + config.warmup;
    let end = measured_from + config.duration;
    let tally = Arc::new(Mutex::new(Tally {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        acked: 0,
        refused: BTreeMap::new(),
        answered: 0,
    }));
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    let sent_measured = Arc::new(Mutex::new(0u64));
    for (client, conn) in conns.into_iter().enumerate() {
        let Conn {
            mut reader,
            mut writer,
        } = conn;
        let run = config.run.clone();
        let gift_id = config.gift_id;
        // Client c's gifts are offset by c/clients of an interval, so the sends interleave.
        let offset = interval.mul_f64(client as f64 / clients as f64);
        let sent_measured = sent_measured.clone();
        writers.push(std::thread::spawn(move || {
            let mut encoder = ClientEncoder::new();
            let mut i: u64 = 0;
            let mut measured = 0;
            loop {
                let due = start + offset + interval.mul_f64(i as f64);
                if due >= end {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let key = format!("{run}-{client}-{i}");
                let frame = encoder.gift(gift_id, 1, &key).to_vec();
                if send(&mut writer, &frame, i as u32).is_err() {
                    break;
                }
                if due >= measured_from {
                    measured += 1;
                }
                i += 1;
            }
            *sent_measured.lock().unwrap() += measured;
            (writer, i)
        }));
        let tally = tally.clone();
        let prefix = format!("{}-{client}-", config.run);
        readers.push(std::thread::spawn(move || {
            // Reads until the drain deadline (the socket's timeout ends a quiet read).
            reader
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)))
                .ok();
            let drain_until = end + Duration::from_secs(10);
            let mut seen: u64 = 0;
            while Instant::now() < drain_until {
                let payload = match read_frame(&mut reader) {
                    Ok(Some(payload)) => payload,
                    Ok(None) => break,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    Err(_) => break,
                };
                let read_at = Instant::now();
                let Ok(msg) = decode_server(&payload, &VerifyLimits::server()) else {
                    continue;
                };
                let mut tally = tally.lock().unwrap();
                match msg {
                    ServerMsg::GiftAck {
                        idempotency_key, ..
                    } => {
                        let Some(i) = idempotency_key
                            .strip_prefix(&prefix)
                            .and_then(|n| n.parse::<u64>().ok())
                        else {
                            continue;
                        };
                        seen += 1;
                        tally.answered += 1;
                        let due = start + offset + interval.mul_f64(i as f64);
                        if due >= measured_from {
                            tally.acked += 1;
                            let us = read_at.saturating_duration_since(due).as_micros() as u64;
                            let _ = tally.latency.record(us.max(1));
                        }
                    }
                    ServerMsg::Error { code, cause, .. } => {
                        seen += 1;
                        tally.answered += 1;
                        *tally.refused.entry(format!("{code} {cause}")).or_default() += 1;
                    }
                    _ => {}
                }
            }
            seen
        }));
    }
    let mut sent_total = 0;
    for writer in writers {
        let (_writer, sent) = writer.join().expect("writer thread");
        sent_total += sent;
    }
    for reader in readers {
        reader.join().expect("reader thread");
    }
    let tally = tally.lock().unwrap();
    let ms = |q: f64| tally.latency.value_at_quantile(q) as f64 / 1000.0;
    let sent = *sent_measured.lock().unwrap();
    Ok(GiftsReport {
        clients,
        target_rate: config.rate,
        duration_s: config.duration.as_secs_f64(),
        sent,
        acked: tally.acked,
        refused: tally.refused.clone(),
        unanswered: sent_total.saturating_sub(tally.answered),
        acked_per_s: tally.acked as f64 / config.duration.as_secs_f64(),
        ack_p50_ms: ms(0.5),
        ack_p90_ms: ms(0.9),
        ack_p99_ms: ms(0.99),
        ack_p999_ms: ms(0.999),
        ack_max_ms: tally.latency.max() as f64 / 1000.0,
    })
}
