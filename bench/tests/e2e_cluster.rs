//! Rooms across hosts: two shardcast processes and one redis-server of the test's own, with
//! `state.redis` set on both. Chats from either host reach viewers on both exactly once in
//! one seq order; a viewer moving host with `last_seq` misses nothing; gifts from both hosts
//! land in one ledger; and with Redis killed, chats still reach viewers on the same host,
//! gifts are refused, the metrics say rooms are degraded, and once Redis is back the hosts
//! resubscribe and their viewers Resync and hear each other again.

mod common;

use common::redis_server::RedisServer;
use common::viewer::Viewer;
use common::Server;
use std::time::Duration;

const SECRET: &str = "cluster-e2e-secret-0123456789abcdef01";
const ROOM: &str = "lobby";

fn config(redis: &RedisServer) -> String {
    format!(
        "[auth]\nsecret = \"{SECRET}\"\n\
         [state]\nredis = \"{}\"\nredis_reconnect_ms = 200\nredis_timeout_ms = 1000\n\
         [danmaku]\nchat_rate_per_s = 10000\nchat_burst = 10000\nroom_inbound_max_per_s = 100000\n\
         gift_rate_per_s = 1000\ngift_burst = 1000\n\
         [transcode]\nenabled = false\n",
        redis.url()
    )
}

fn token(user: &str) -> String {
    common::mint_token(&[
        "--user", user, "--room", ROOM, "--role", "viewer", "--secret", SECRET,
    ])
}

fn texts(viewer: &Viewer) -> Vec<(u64, String)> {
    viewer.seen.chats.clone()
}

#[test]
fn a_room_spans_two_hosts_in_one_order_and_survives_a_redis_outage() {
    let mut redis = RedisServer::start("cluster");
    let a = Server::start("uring", 2, &config(&redis));
    let b = Server::start("uring", 2, &config(&redis));

    // Viewers on both hosts, a sender on each.
    let mut watch_a = Viewer::join(&a, ROOM, &token("wa"), 0);
    let mut watch_b = Viewer::join(&b, ROOM, &token("wb"), 0);
    let mut send_a = Viewer::join(&a, ROOM, &token("sa"), 0);
    let mut send_b = Viewer::join(&b, ROOM, &token("sb"), 0);
    for i in 0..100 {
        send_a.chat(&format!("a{i}"));
        send_b.chat(&format!("b{i}"));
    }
    for viewer in [&mut watch_a, &mut watch_b] {
        viewer.read_until(Duration::from_secs(10), |s| s.chats.len() >= 200);
    }
    // Exactly once, in one order: both hosts' viewers saw the same (seq, text) list.
    let (seen_a, seen_b) = (texts(&watch_a), texts(&watch_b));
    assert_eq!(seen_a.len(), 200, "{}", watch_a.summary());
    assert_eq!(seen_a, seen_b, "one order on both hosts");
    let mut unique: Vec<&String> = seen_a.iter().map(|(_, t)| t).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200, "no chat twice");
    for pair in watch_a.seen.seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "no gap: {}", watch_a.summary());
    }

    // A viewer moves from A to B with its last seq and misses nothing.
    let last = *watch_a.seen.seqs.last().unwrap();
    drop(watch_a);
    for i in 0..20 {
        send_a.chat(&format!("moved{i}"));
    }
    watch_b.read_until(Duration::from_secs(10), |s| s.chats.len() >= 220);
    let mut moved = Viewer::join(&b, ROOM, &token("wa"), last);
    moved.read_until(Duration::from_secs(10), |s| s.chats.len() >= 20);
    let caught: Vec<String> = moved.seen.chats.iter().map(|(_, t)| t.clone()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("moved{i}")).collect();
    assert_eq!(caught, expected, "{}", moved.summary());
    assert_eq!(moved.seen.seqs.first(), Some(&(last + 1)));

    // Gifts from both hosts go to one ledger.
    a.credit(SECRET, "sa", 1000, "fund-sa");
    a.credit(SECRET, "sb", 1000, "fund-sb");
    send_a.send(|e| e.gift(1, 1, "ga").to_vec());
    send_b.send(|e| e.gift(1, 1, "gb").to_vec());
    send_a.read_until(Duration::from_secs(10), |s| !s.acks.is_empty());
    send_b.read_until(Duration::from_secs(10), |s| !s.acks.is_empty());
    let wallet_b = b.admin_get(SECRET, "/api/v1/wallets/sa");
    let wallet_a = a.admin_get(SECRET, "/api/v1/wallets/sb");
    assert_eq!(wallet_b["balance"].as_u64(), Some(send_a.seen.acks[0].2));
    assert_eq!(wallet_a["balance"].as_u64(), Some(send_b.seen.acks[0].2));
    let log = a.admin_get(SECRET, &format!("/api/v1/rooms/{ROOM}/gifts?after=0"));
    assert_eq!(log["gifts"].as_array().unwrap().len(), 2, "{log}");

    // Redis goes away: chats still reach viewers on the same host, gifts are refused.
    redis.kill();
    let degraded = |server: &Server| server.metric("shardcast_danmaku_rooms_degraded");
    let before = watch_b.seen.chats.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    // Until B notices (its next publish fails), keep sending.
    while degraded(&b) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "B never went degraded"
        );
        send_b.chat(&format!("alone{n}"));
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    send_b.chat("alone-last");
    watch_b.read_until(Duration::from_secs(10), |s| {
        s.chats.iter().any(|(_, t)| t == "alone-last")
    });
    assert!(watch_b.seen.chats.len() > before);
    send_b.send(|e| e.gift(1, 1, "g-outage").to_vec());
    send_b.read_until(Duration::from_secs(10), |s| {
        s.causes.iter().any(|c| c == "store_unavailable")
    });
    assert!(
        !send_b.seen.acks.iter().any(|(k, _, _)| k == "g-outage"),
        "no gift is acknowledged while Redis is away"
    );

    // Redis is back (from its AOF): the hosts resubscribe; B's viewers Resync, and chats
    // cross hosts again.
    redis.restart();
    watch_b.read_until(Duration::from_secs(10), |s| s.resync.is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while degraded(&b) != 0 || degraded(&a) != 0 {
        assert!(std::time::Instant::now() < deadline, "still degraded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let resync = watch_b.seen.resync.unwrap();
    send_a.chat("together-again");
    watch_b.read_until(Duration::from_secs(10), |s| {
        s.chats.iter().any(|(_, t)| t == "together-again")
    });
    let (seq, _) = watch_b
        .seen
        .chats
        .iter()
        .find(|(_, t)| t == "together-again")
        .unwrap();
    assert!(*seq > resync, "live batches continue after the Resync");
}
