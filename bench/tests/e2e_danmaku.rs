//! End-to-end tests of danmaku: the real binary, WebSocket clients (our own minimal one, the
//! Python `websockets` package), the shardcast.v1 FlatBuffers protocol, rooms across shards.

mod common;

use common::viewer::{Seen, ServerKind, Viewer};
use common::ws::{Frame, WsClient};
use common::{Server, TempDir, BACKENDS};
use shardcast_wire::{decode_server, ClientEncoder, ServerMsg, VerifyLimits};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

const SECRET: &str = "e2e-secret-0123456789abcdef0123456789";

/// These tests fill rooms with anonymous readers, so anonymous viewers may make any room here
/// (the default, rooms of live streams only, is tested in e2e_hostile and the scenarios).
fn config(extra: &str) -> String {
    format!(
        "[auth]\nsecret = \"{SECRET}\"\n[danmaku]\nchat_rate_per_s = 10000\nchat_burst = 10000\n\
         room_inbound_max_per_s = 100000\nanonymous_rooms = \"any\"\n{extra}"
    )
}

fn token(user: &str, room: &str, role: &str) -> String {
    common::mint_token(&[
        "--user", user, "--room", room, "--role", role, "--secret", SECRET,
    ])
}

fn chats_of(seen: &Seen) -> Vec<String> {
    seen.chats.iter().map(|(_, t)| t.clone()).collect()
}

#[test]
fn every_member_on_both_shards_gets_every_chat_once_in_seq_order() {
    for io in BACKENDS {
        let server = Server::start(io, 2, &config(""));
        let speaker = token("speaker", "*", "viewer");
        // Enough viewers that the kernel spreads them over both shards' listeners.
        let mut viewers: Vec<Viewer> = (0..24)
            .map(|_| Viewer::join(&server, "r1", "", 0))
            .collect();
        let metrics = String::from_utf8(server.get("/metrics").body).unwrap();
        for shard in 0..2 {
            assert!(
                metrics.contains(&format!(
                    "shardcast_shard_danmaku_rooms_local{{shard=\"{shard}\"}} 1"
                )),
                "{io}: viewers not on both shards:\n{metrics}"
            );
        }
        let mut senders: Vec<Viewer> = (0..4)
            .map(|_| Viewer::join(&server, "r1", &speaker, 0))
            .collect();
        let mut expected = Vec::new();
        for round in 0..50 {
            for (s, sender) in senders.iter_mut().enumerate() {
                let text = format!("s{s}-m{round}");
                sender.chat(&text);
                expected.push(text);
            }
        }
        expected.sort();
        for viewer in viewers.iter_mut().chain(senders.iter_mut()) {
            viewer.read_until(Duration::from_secs(10), |s| s.chats.len() >= 200);
            let seen = &viewer.seen;
            // In seq order, consecutive, starting right after the Welcome.
            for (i, seq) in seen.seqs.iter().enumerate() {
                assert!(*seq > seen.welcome_seq);
                if i > 0 {
                    assert_eq!(*seq, seen.seqs[i - 1] + 1, "{io}: gap or reorder");
                }
            }
            let mut got = chats_of(seen);
            got.sort();
            assert_eq!(got, expected, "{io}: every chat exactly once");
        }
        // Every viewer saw the same seq for the same chat.
        let reference: HashMap<String, u64> = viewers[0]
            .seen
            .chats
            .iter()
            .map(|(q, t)| (t.clone(), *q))
            .collect();
        for viewer in &viewers {
            for (seq, text) in &viewer.seen.chats {
                assert_eq!(reference[text], *seq);
            }
        }
        assert!(server.metric("shardcast_danmaku_batches_total") >= 1);
    }
}

#[test]
fn a_reconnecting_viewer_resumes_from_last_seq_without_gaps() {
    let server = Server::start("uring", 2, &config("history_max = 50\n"));
    let talker = token("talker", "r2", "viewer");
    let mut sender = Viewer::join(&server, "r2", &talker, 0);
    let mut viewer = Viewer::join(&server, "r2", "", 0);
    for i in 0..10 {
        sender.chat(&format!("a{i}"));
    }
    viewer.read_until(Duration::from_secs(5), |s| s.chats.len() >= 10);
    let last_seq = *viewer.seen.seqs.last().unwrap();
    drop(viewer);
    for i in 0..10 {
        sender.chat(&format!("b{i}"));
    }
    sender.read_until(Duration::from_secs(5), |s| s.chats.len() >= 20);
    // Resume: the missed events come first (HistoryReply), then live ones, no gap.
    let mut back = Viewer::join(&server, "r2", "", last_seq);
    for i in 10..15 {
        sender.chat(&format!("c{i}"));
    }
    back.read_until(Duration::from_secs(5), |s| s.chats.len() >= 15);
    let texts = chats_of(&back.seen);
    let want: Vec<String> = (0..10)
        .map(|i| format!("b{i}"))
        .chain((10..15).map(|i| format!("c{i}")))
        .collect();
    assert_eq!(texts, want);
    assert_eq!(back.seen.seqs[0], last_seq + 1);
    assert!(server.metric("shardcast_danmaku_resume_hits_total") >= 1);

    // Too old for the window (history_max = 50): Resync instead.
    for i in 0..60 {
        sender.chat(&format!("d{i}"));
    }
    sender.read_until(Duration::from_secs(5), |s| s.chats.len() >= 85);
    let mut old = Viewer::join(&server, "r2", "", 1);
    old.read_until(Duration::from_secs(5), |s| s.resync.is_some());
    assert!(server.metric("shardcast_danmaku_resume_misses_total") >= 1);

    // History request for a range inside the window.
    let from = *sender.seen.seqs.last().unwrap() - 5;
    let mut asker = Viewer::join(&server, "r2", "", 0);
    asker.send(|e| e.history(from, 3).to_vec());
    asker.read_until(Duration::from_secs(5), |s| s.seqs.len() >= 3);
    assert_eq!(asker.seen.seqs, vec![from, from + 1, from + 2]);
}

#[test]
fn a_stalled_viewer_is_dropped_and_closed_without_holding_others_back() {
    let extra = "[ws]\nsend_queue_max_bytes = 16384\nstall_timeout_ms = 1000\n\
                 [engine]\nsocket_send_buffer_bytes = 8192\n";
    let server = Server::start("uring", 1, &format!("{}{extra}", config("batch_ms = 5\n")));
    let talker = token("talker", "r3", "viewer");
    let mut sender = Viewer::join(&server, "r3", &talker, 0);
    // The sender is a member too: keep reading its copy of the room so it is not slow itself.
    let mut sender_reader = sender.ws.stream.try_clone().unwrap();
    let drainer = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while matches!(std::io::Read::read(&mut sender_reader, &mut buf), Ok(n) if n > 0) {}
    });
    let mut healthy = Viewer::join(&server, "r3", "", 0);
    // The stalled viewer never reads; a tiny receive buffer makes its queue build up fast.
    let stalled = Viewer::join(&server, "r3", "", 0);
    socket2::SockRef::from(&stalled.ws.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
    let big = "x".repeat(90);
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(3) {
        sender.chat(&format!("{sent}-{big}"));
        sent += 1;
        if sent % 20 == 0 {
            // The healthy viewer keeps up, and sees everything so far.
            healthy.read_until(Duration::from_secs(5), |s| s.chats.len() >= sent - 20);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    healthy.read_until(Duration::from_secs(5), |s| s.chats.len() >= sent);
    let got = chats_of(&healthy.seen);
    assert_eq!(got.len(), sent, "the healthy viewer lost nothing");
    assert!(
        server.metric("shardcast_danmaku_dropped_total") > 0,
        "batches dropped for the slow viewer"
    );
    assert_eq!(server.metric("shardcast_danmaku_stalled_closed_total"), 1);
    drop(stalled);
    sender.ws.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drainer.join().unwrap();
}

#[test]
fn bad_frames_and_bad_messages_get_their_close_codes_and_others_keep_going() {
    for io in BACKENDS {
        let server = Server::start(
            io,
            1,
            &config("[ws]\nframe_max_bytes = 4096\nmessage_max_bytes = 8192\n"),
        );
        let talker = token("talker", "r4", "viewer");
        let mut bystander = Viewer::join(&server, "r4", &talker, 0);
        let mut cases: Vec<(Vec<u8>, u16, &str)> = Vec::new();
        // Unmasked client frame.
        cases.push((vec![0x82, 0x02, 0x01, 0x02], 1002, "unmasked"));
        // Reserved bit set.
        let mut probe = WsClient::connect(server.addr);
        let mut rsv = probe.frame_bytes(0x2, true, b"ab");
        rsv[0] |= 0x40;
        cases.push((rsv, 1002, "rsv"));
        // Unknown opcode.
        cases.push((probe.frame_bytes(0x3, true, b"ab"), 1002, "opcode"));
        // Frame over frame_max_bytes.
        cases.push((
            probe.frame_bytes(0x2, true, &vec![0u8; 5000]),
            1009,
            "frame too big",
        ));
        // Fragmented message over message_max_bytes.
        let mut frag = probe.frame_bytes(0x2, false, &vec![0u8; 4000]);
        frag.extend(probe.frame_bytes(0x0, false, &vec![0u8; 4000]));
        frag.extend(probe.frame_bytes(0x0, true, &vec![0u8; 4000]));
        cases.push((frag, 1009, "message too big"));
        // Invalid UTF-8 in a text frame.
        cases.push((probe.frame_bytes(0x1, true, &[0xc3, 0x28]), 1007, "utf8"));
        // Valid text: not part of the protocol.
        cases.push((probe.frame_bytes(0x1, true, b"hello"), 1003, "text"));
        // Garbage in a binary frame: not a FlatBuffer.
        cases.push((
            probe.frame_bytes(0x2, true, b"\x00\x01\x02garbage-not-flatbuffers"),
            1007,
            "garbage",
        ));
        drop(probe);
        for (bytes, code, what) in cases {
            let mut ws = WsClient::connect(server.addr);
            ws.send_raw(&bytes);
            assert_eq!(ws.read_until_close(), Some(code), "{io}: {what}");
        }
        // The bystander still chats and receives.
        bystander.chat("still here");
        bystander.read_until(Duration::from_secs(5), |s| {
            s.chats.iter().any(|(_, t)| t == "still here")
        });
        assert!(server.metric("shardcast_danmaku_ws_protocol_errors_total") >= 6);
        assert!(server.metric("shardcast_danmaku_wire_invalid_total") >= 1);
    }
}

#[test]
fn tokens_roles_rate_limits_filter_and_kick() {
    let dir = TempDir::new("words");
    let words = dir.0.join("words.txt");
    std::fs::write(&words, "# test list\nbadword\n").unwrap();
    let extra = format!(
        "[danmaku]\nchat_rate_per_s = 1\nchat_burst = 3\nword_list = \"{}\"\nfilter_mode = \"mask\"\n",
        words.display()
    );
    let cfg = format!("[auth]\nsecret = \"{SECRET}\"\n{extra}");
    let server = Server::start_in(dir, "uring", 2, &cfg);
    // A wrong token: Error 401 then close 1008.
    let mut ws = WsClient::connect(server.addr);
    let mut enc = ClientEncoder::new();
    ws.send_binary(enc.hello("r5", "not-a-token", 0, "e2e"));
    assert!(matches!(ws.read_frame(), Some(Frame::Binary(_))));
    assert_eq!(ws.read_until_close(), Some(1008));
    // A token for another room: refused too.
    let other = token("mallory", "elsewhere", "viewer");
    let mut ws = WsClient::connect(server.addr);
    ws.send_binary(enc.hello("r5", &other, 0, "e2e"));
    assert_eq!(ws.read_until_close(), Some(1008));

    let alice = token("alice", "r5", "viewer");
    let admin = token("root", "r5", "admin");
    let mut a = Viewer::join(&server, "r5", &alice, 0);
    // Anonymous viewers may join a room that exists (alice made it), and only read.
    let mut anon = Viewer::join(&server, "r5", "", 0);
    anon.chat("hi");
    anon.read_until(Duration::from_secs(5), |s| s.errors.contains(&401));
    // The filter masks, whatever the disguise.
    a.chat("a B.A.D-word here");
    a.read_until(Duration::from_secs(5), |s| !s.chats.is_empty());
    assert_eq!(a.seen.chats[0].1, "a ********** here");
    // Burst of 3, then 429.
    for i in 0..4 {
        a.chat(&format!("n{i}"));
    }
    a.read_until(Duration::from_secs(5), |s| s.errors.contains(&429));
    // Too long.
    a.chat(&"y".repeat(101));
    a.read_until(Duration::from_secs(5), |s| s.errors.contains(&413));
    // Only admins kick.
    a.send(|e| e.kick_user("root", "no").to_vec());
    a.read_until(Duration::from_secs(5), |s| s.errors.contains(&403));
    let mut root = Viewer::join(&server, "r5", &admin, 0);
    root.send(|e| e.kick_user("alice", "spam").to_vec());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "alice not kicked: {:?}", a.seen);
        match a.next() {
            Some(ServerKind::Close(code)) => {
                assert_eq!(code, Some(1008));
                break;
            }
            None => panic!("closed without a close frame"),
            _ => {}
        }
    }
    assert_eq!(server.metric("shardcast_danmaku_kicked_total"), 1);
    assert!(server.metric("shardcast_danmaku_filter_masked_total") >= 1);
}

#[test]
fn gifts_are_acknowledged_once_durable_and_once_per_idempotency_key() {
    let server = Server::start("uring", 2, &config(""));
    server.credit(SECRET, "bob", 5, "pay-1");
    // The payment system's retry credits nothing more.
    server.credit(SECRET, "bob", 5, "pay-1");
    let bob = token("bob", "*", "viewer");
    let mut v = Viewer::join(&server, "r6", &bob, 0);
    let mut acks = Vec::new();
    for key in ["k1", "k1", "k2"] {
        v.send(|e| e.gift(1, 2, key).to_vec());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline);
            let bytes = match v.ws.read_frame().unwrap() {
                Frame::Binary(b) => b,
                _ => continue,
            };
            if let ServerMsg::GiftAck {
                idempotency_key,
                seq,
                entry,
                balance,
            } = decode_server(&bytes, &VerifyLimits::server()).unwrap()
            {
                acks.push((idempotency_key.to_string(), seq, entry, balance));
                break;
            }
        }
    }
    assert_eq!(acks[0], acks[1], "a retry gets the original answer");
    assert_ne!(acks[0].1, acks[2].1);
    // Two hearts (value 1 each) per gift, from a wallet of 5.
    assert_eq!((acks[0].3, acks[2].3), (3, 1));
    v.send(|e| e.gift(999, 1, "k3").to_vec());
    v.read_until(Duration::from_secs(5), |s| s.errors.contains(&404));
    // Two hearts more than the wallet holds: refused, and not shown.
    v.send(|e| e.gift(1, 2, "k4").to_vec());
    v.read_until(Duration::from_secs(5), |s| s.errors.contains(&402));
    assert_eq!(server.metric("shardcast_danmaku_gifts_total"), 2);
    assert_eq!(server.metric("shardcast_danmaku_gift_duplicates_total"), 1);
    assert_eq!(server.metric("shardcast_danmaku_gifts_unpaid_total"), 1);
}

#[test]
fn python_websockets_client_interoperates() {
    let server = Server::start("uring", 1, &config(""));
    let hello = ClientEncoder::new()
        .hello("r7", &token("py", "r7", "viewer"), 0, "python")
        .to_vec();
    let (seen, bytes) =
        common::python_ws_interop(&format!("ws://{}/ws", server.addr), &hello, None);
    assert_eq!(seen["subprotocol"], "shardcast.v1");
    assert_eq!(seen["first_is_binary"], true);
    assert!(matches!(
        decode_server(&bytes, &VerifyLimits::server()).unwrap(),
        ServerMsg::Welcome(_)
    ));
    assert_eq!(seen["pong"], true);
    assert_eq!(seen["close_code"], 1000);
    assert_eq!(seen["text_close_code"], 1003);
}

#[test]
fn upgrade_refusals_are_http_errors() {
    let server = Server::start("uring", 1, &config(""));
    // Plain GET /ws.
    assert_eq!(server.get("/ws").status, 426);
    // Wrong version.
    let mut s = server.connect();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    )
    .unwrap();
    let r = common::read_response(&mut s).unwrap();
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    // Another subprotocol only.
    let mut s = server.connect();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat\r\n\r\n"
    )
    .unwrap();
    assert_eq!(common::read_response(&mut s).unwrap().status, 400);
}

#[test]
fn quiet_clients_are_pinged_and_silent_ones_closed() {
    let server = Server::start(
        "uring",
        1,
        &config("[ws]\nping_interval_ms = 200\nidle_timeout_ms = 700\nhello_timeout_ms = 500\n"),
    );
    // No Hello within hello_timeout_ms: 1008.
    let mut mute = WsClient::connect(server.addr);
    assert_eq!(mute.read_until_close(), Some(1008));
    let mut alive = Viewer::join(&server, "r8", "", 0);
    let mut deaf = Viewer::join(&server, "r8", "", 0);
    // The live client answers every ping and is still there after twice the idle timeout.
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        match alive.ws.try_read_frame(Duration::from_millis(50)) {
            Ok(Some(Frame::Ping(payload))) => {
                pings += 1;
                let pong = alive.ws.frame_bytes(0xa, true, &payload);
                alive.ws.send_raw(&pong);
            }
            Ok(Some(Frame::Close(code, _))) => panic!("live client closed with {code:?}"),
            Ok(Some(_)) | Err(()) => {}
            Ok(None) => panic!("live client closed"),
        }
    }
    assert!(pings >= 3, "server pings a quiet client: {pings}");
    // The deaf client never answered: closed as idle (1001).
    let mut code = None;
    while let Some(frame) = deaf.ws.read_frame() {
        if let Frame::Close(c, _) = frame {
            code = c;
            break;
        }
    }
    assert_eq!(code, Some(1001));
    // And a Heartbeat is answered with Pong.
    alive.send(|e| e.heartbeat(42).to_vec());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline);
        if let Some(Frame::Binary(bytes)) = alive.ws.read_frame() {
            if let ServerMsg::Pong { client_time_ms, .. } =
                decode_server(&bytes, &VerifyLimits::server()).unwrap()
            {
                assert_eq!(client_time_ms, 42);
                break;
            }
        }
    }
}

#[test]
fn node_ws_client_with_the_generated_js_module_interoperates() {
    let server = Server::start("epoll", 2, &config(""));
    let token = token("nodeuser", "node-room", "speaker");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/ws_node.mjs");
    let out = std::process::Command::new("timeout")
        .args(["30", "node", script])
        .arg(format!("ws://{}/ws", server.addr))
        .arg(token)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["protocol"], "shardcast.v1");
    assert_eq!(seen["welcome"]["user"], "nodeuser");
    assert_eq!(seen["welcome"]["role"], "speaker");
    assert_eq!(seen["chat"]["user"], "nodeuser");
    assert_eq!(seen["chat"]["mode"], "top");
    assert_eq!(seen["chat"]["color"], 0x00ff00);
    assert_eq!(seen["pong"], 1234);
    assert_eq!(seen["close_code"], 1000);
    assert!(
        seen.get("text").is_none(),
        "the server sends binary messages only"
    );
}
