//! The ledger against the real binary and kill -9: gift storms from several clients, the
//! server killed mid-storm again and again, and after every restart the clients retry what
//! was not acknowledged. Every acknowledged gift must be in the ledger exactly once, every
//! retry must get the first answer, and every wallet must equal its credits minus its gifts.

mod common;

use common::ws::{Frame, WsClient};
use common::Server;
use shardcast_wire::{decode_server, ClientEncoder, ServerMsg, VerifyLimits};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

const SECRET: &str = "ledger-e2e-secret-0123456789abcdef01";
const USERS: [&str; 4] = ["ann", "bob", "cyd", "dee"];
const ROOM: &str = "storm";
const FUNDS: u64 = 1_000_000;
/// Kills in one run: 5 in `just test`; `just chaos N` sets SHARDCAST_CHAOS_KILLS=N and
/// SHARDCAST_CHAOS_REPORT to the file where each kill's counts go (bench/results/chaos.md).
const KILLS: usize = 5;

fn kills() -> usize {
    std::env::var("SHARDCAST_CHAOS_KILLS")
        .ok()
        .map(|n| n.parse().expect("SHARDCAST_CHAOS_KILLS is a number"))
        .unwrap_or(KILLS)
}

/// One kill: how long into the storm it came, what was sent and acknowledged before it.
struct Kill {
    after_ms: u64,
    sent: usize,
    acked: usize,
    restart_ms: u64,
}

fn config() -> String {
    format!(
        "[auth]\nsecret = \"{SECRET}\"\n\
         [danmaku]\ngift_rate_per_s = 100000\ngift_burst = 100000\nroom_gift_max_per_s = 100000\n\
         [transcode]\nenabled = false\n"
    )
}

fn token(user: &str) -> String {
    common::mint_token(&["--user", user, "--room", ROOM, "--secret", SECRET])
}

/// What one client saw: the keys it sent, and the answer to each it got.
#[derive(Default)]
struct Seen {
    sent: BTreeSet<String>,
    /// key → (ledger entry, balance after).
    acked: BTreeMap<String, (u64, u64)>,
}

/// A client that joins and sends `keys` as gifts (one heart each), reading answers as it
/// goes, until every key is answered or the connection dies. Returns what it saw.
fn storm(server_addr: std::net::SocketAddr, user: &str, keys: Vec<String>) -> Seen {
    let mut seen = Seen::default();
    let mut ws = WsClient::connect(server_addr);
    let mut enc = ClientEncoder::new();
    let hello = enc.hello(ROOM, &token(user), 0, "e2e").to_vec();
    let frame = ws.frame_bytes(0x2, true, &hello);
    if ws.stream.write_all(&frame).is_err() || !welcomed(&mut ws) {
        return seen;
    }
    let mut pending = keys.len();
    for (i, key) in keys.iter().enumerate() {
        let gift = enc.gift(1, 1, key).to_vec();
        let frame = ws.frame_bytes(0x2, true, &gift);
        if ws.stream.write_all(&frame).is_err() {
            return seen;
        }
        seen.sent.insert(key.clone());
        // Read what has come back every few gifts, so the storm keeps gifts in flight.
        if i % 8 == 7 && !drain(&mut ws, &mut seen, &mut pending, Duration::ZERO) {
            return seen;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while pending > 0 && Instant::now() < deadline {
        if !drain(&mut ws, &mut seen, &mut pending, Duration::from_millis(200)) {
            break;
        }
    }
    seen
}

/// Waits for the Welcome; false when the connection dies first.
fn welcomed(ws: &mut WsClient) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match ws.try_read_frame(Duration::from_millis(200)) {
            Ok(Some(Frame::Binary(bytes))) => {
                if let Ok(ServerMsg::Welcome(_)) = decode_server(&bytes, &VerifyLimits::server()) {
                    return true;
                }
            }
            Ok(Some(_)) | Err(()) => {}
            Ok(None) => return false,
        }
    }
    false
}

/// Reads the answers waiting (or arriving within `wait`); false once the connection is gone.
fn drain(ws: &mut WsClient, seen: &mut Seen, pending: &mut usize, wait: Duration) -> bool {
    loop {
        match ws.try_read_frame(wait.max(Duration::from_millis(1))) {
            Ok(Some(Frame::Binary(bytes))) => {
                match decode_server(&bytes, &VerifyLimits::server()).unwrap() {
                    ServerMsg::GiftAck {
                        idempotency_key,
                        entry,
                        balance,
                        ..
                    } => {
                        assert!(entry > 0, "an ack names its ledger entry");
                        seen.acked
                            .insert(idempotency_key.to_string(), (entry, balance));
                        *pending -= 1;
                    }
                    ServerMsg::Error { code, message, .. } => {
                        panic!("gift refused: {code} {message}")
                    }
                    _ => {}
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(()) => return true,
        }
    }
}

fn keys(user: &str, round: usize, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{user}-{round}-{n}")).collect()
}

#[test]
fn every_acknowledged_gift_survives_kill_9_exactly_once() {
    let mut server = Server::start("uring", 2, &config());
    for user in USERS {
        server.credit(SECRET, user, FUNDS, &format!("fund-{user}"));
    }
    // Acknowledged before some kill: key → (entry, balance).
    let mut acked: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut sent: BTreeSet<String> = BTreeSet::new();
    let kills = kills();
    let mut record = Vec::with_capacity(kills);
    let started = Instant::now();
    for round in 0..kills {
        let addr = server.addr;
        let clients: Vec<_> = USERS
            .iter()
            .map(|user| {
                let keys = keys(user, round, 400);
                std::thread::spawn(move || storm(addr, user, keys))
            })
            .collect();
        // Kill mid-storm: some gifts acknowledged, some written but not acknowledged, some
        // not yet written.
        let after_ms = 150 + 50 * (round as u64 % 8);
        std::thread::sleep(Duration::from_millis(after_ms));
        let dir = server.crash();
        let mut kill = Kill {
            after_ms,
            sent: 0,
            acked: 0,
            restart_ms: 0,
        };
        for client in clients {
            let seen = client.join().unwrap();
            kill.sent += seen.sent.len();
            kill.acked += seen.acked.len();
            sent.extend(seen.sent);
            for (key, answer) in seen.acked {
                assert!(acked.insert(key, answer).is_none(), "acknowledged twice");
            }
        }
        let restarting = Instant::now();
        server = Server::start_in(dir, "uring", 2, &config());
        kill.restart_ms = restarting.elapsed().as_millis() as u64;
        record.push(kill);
    }
    assert!(!acked.is_empty(), "no gift was acknowledged before a kill");
    assert!(
        acked.len() < sent.len(),
        "every kill came after the storm ended"
    );
    // Every client retries everything it ever sent: what was acknowledged must answer the
    // same entry, and the rest is taken now (or was, unacknowledged, before a kill).
    let addr = server.addr;
    let retries: Vec<_> = USERS
        .iter()
        .map(|user| {
            let mine: Vec<String> = sent
                .iter()
                .filter(|k| k.starts_with(&format!("{user}-")))
                .cloned()
                .collect();
            std::thread::spawn(move || storm(addr, user, mine))
        })
        .collect();
    let mut answered: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for retry in retries {
        let seen = retry.join().unwrap();
        answered.extend(seen.acked);
    }
    assert_eq!(answered.len(), sent.len(), "every retry is answered");
    for (key, first) in &acked {
        assert_eq!(
            answered[key], *first,
            "{key}: a retry answers the first result"
        );
    }
    // The room's log holds each gift once: one entry per key, no more.
    let mut logged = Vec::new();
    let mut after = 0;
    loop {
        let page = server.admin_get(
            SECRET,
            &format!("/api/v1/rooms/{ROOM}/gifts?after={after}&limit=1000"),
        );
        let gifts = page["gifts"].as_array().unwrap().clone();
        if gifts.is_empty() {
            break;
        }
        after = page["next_after"].as_u64().unwrap();
        logged.extend(gifts);
    }
    let entries: BTreeSet<u64> = logged
        .iter()
        .map(|g| g["entry"].as_u64().unwrap())
        .collect();
    eprintln!(
        "{kills} kills: {} gifts sent, {} acknowledged before a kill, {} in the ledger",
        sent.len(),
        acked.len(),
        logged.len()
    );
    assert_eq!(entries.len(), logged.len(), "no entry twice");
    assert_eq!(
        logged.len(),
        sent.len(),
        "each gift sent is in the ledger exactly once"
    );
    let answered_entries: BTreeSet<u64> = answered.values().map(|a| a.0).collect();
    assert_eq!(
        answered_entries, entries,
        "every answer names a logged entry"
    );
    // Every wallet holds its credits minus its gifts (one heart, value 1, each).
    for user in USERS {
        let given = logged.iter().filter(|g| g["user"] == user).count() as u64;
        let wallet = server.admin_get(SECRET, &format!("/api/v1/wallets/{user}"));
        assert_eq!(wallet["balance"].as_u64().unwrap(), FUNDS - given, "{user}");
    }
    let top = server.admin_get(SECRET, &format!("/api/v1/rooms/{ROOM}/leaderboard"));
    let total: u64 = top["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["value"].as_u64().unwrap())
        .sum();
    assert_eq!(total, logged.len() as u64);
    if let Ok(path) = std::env::var("SHARDCAST_CHAOS_REPORT") {
        write_report(&path, &record, started.elapsed(), logged.len(), acked.len());
    }
}

/// The chaos run's record: one row per kill, then the totals checked above.
fn write_report(path: &str, record: &[Kill], took: Duration, logged: usize, acked: usize) {
    let mut out = String::new();
    out.push_str(&format!(
        "- kills: {}, run time {:.0} s\n- gifts sent {}, acknowledged before a kill {}, in \
         the ledger after the retries {} (each exactly once: checked)\n\n",
        record.len(),
        took.as_secs_f64(),
        record.iter().map(|k| k.sent).sum::<usize>(),
        acked,
        logged
    ));
    out.push_str("| kill | killed after (ms) | gifts sent | acknowledged | restart (ms) |\n");
    out.push_str("|---:|---:|---:|---:|---:|\n");
    for (n, kill) in record.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            n + 1,
            kill.after_ms,
            kill.sent,
            kill.acked,
            kill.restart_ms
        ));
    }
    std::fs::write(path, out).unwrap();
}
