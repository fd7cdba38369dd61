//! Hostile clients against the real binary: each attack runs while an honest client on the
//! same shard keeps being served, and costs the server only the attacker's own connections,
//! within the memory its configuration implies.

mod common;

use common::ws::{Frame, WsClient};
use common::Server;
use shardcast_wire::{decode_server, ChatMode, ClientEncoder, ServerMsg, VerifyLimits};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SECRET: &str = "hostile-secret-0123456789abcdef0123";

/// One shard, short timeouts, small queues: attacks show their effect within seconds.
fn config(extra: &str) -> String {
    format!(
        "[auth]\nsecret = \"{SECRET}\"\n\
         [http]\nheader_timeout_ms = 1000\nidle_timeout_ms = 2000\n\
         [ws]\nhello_timeout_ms = 1000\nsend_queue_max_bytes = 65536\nstall_timeout_ms = 1000\n\
         [danmaku]\nchat_rate_per_s = 100\nchat_burst = 100\n\
         {extra}"
    )
}

fn token(user: &str, room: &str) -> String {
    common::mint_token(&["--user", user, "--room", room, "--secret", SECRET])
}

/// An honest viewer: joins, chats and must see its own chat come back within a second.
struct Honest {
    ws: WsClient,
    enc: ClientEncoder,
    sent: u32,
}

impl Honest {
    fn join(server: &Server, room: &str) -> Honest {
        let mut ws = WsClient::connect(server.addr);
        let mut enc = ClientEncoder::new();
        ws.send_binary(enc.hello(room, &token("honest", room), 0, "e2e"));
        let mut honest = Honest { ws, enc, sent: 0 };
        assert!(
            honest.wait_for(|m| matches!(m, ServerMsg::Welcome(_))),
            "no Welcome"
        );
        honest
    }

    /// Reads until `want` matches a message, answering pings; false on close or timeout.
    fn wait_for(&mut self, want: impl Fn(&ServerMsg<'_>) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match self.ws.try_read_frame(Duration::from_millis(100)) {
                Ok(Some(Frame::Binary(bytes))) => {
                    let message = decode_server(&bytes, &VerifyLimits::server()).unwrap();
                    if want(&message) {
                        return true;
                    }
                }
                Ok(Some(Frame::Ping(payload))) => {
                    let pong = self.ws.frame_bytes(0xA, true, &payload);
                    self.ws.send_raw(&pong);
                }
                Ok(Some(Frame::Close(..))) | Err(()) => return false,
                Ok(_) => {}
            }
        }
        false
    }

    /// One chat round trip; panics when it does not come back in time.
    fn round_trip(&mut self) {
        self.sent += 1;
        let text = format!("honest-{}", self.sent);
        let chat = self.enc.chat(&text, 0xffffff, ChatMode::Scroll).to_vec();
        self.ws.send_binary(&chat);
        let seen = self.wait_for(|m| {
            match m {
            ServerMsg::Batch { events, .. } => events.iter().any(|e| {
                matches!(e.body, shardcast_wire::EventBodyView::Chat { text: t, .. } if t == text)
            }),
            _ => false,
        }
        });
        assert!(seen, "the honest viewer's chat {text} did not come back");
    }
}

/// True when the server closed `stream` (EOF or reset) within `within`, reading and
/// discarding whatever it sent first.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_ping_flood_that_never_reads_is_cut_off_and_memory_stays_bounded() {
    let server = Server::start("uring", 1, &config(""));
    let mut honest = Honest::join(&server, "lobby");
    let before = server.rss_kib();
    let addr = server.addr;
    // Pings with full payloads, written as fast as the socket takes them, never reading.
    let flooder = std::thread::spawn(move || {
        let mut ws = WsClient::connect(addr);
        let ping = ws.frame_bytes(0x9, true, &[b'p'; 125]);
        let burst = ping.repeat(512);
        let started = Instant::now();
        ws.stream
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut written = 0usize;
        while started.elapsed() < Duration::from_secs(6) {
            match ws.stream.write(&burst) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return (written, true),
            }
        }
        (written, false)
    });
    for _ in 0..10 {
        honest.round_trip();
        std::thread::sleep(Duration::from_millis(300));
    }
    let (written, cut_off) = flooder.join().unwrap();
    assert!(
        cut_off,
        "the flooder was never cut off ({written} bytes written)"
    );
    let grown = server.rss_kib().saturating_sub(before);
    // One flooder's queue is capped at 64 KiB plus a pong and a close frame; the rest is the
    // receive path's own buffers. 32 MiB leaves room for allocator noise, not for a queue
    // of the gigabytes of pongs asked for.
    assert!(grown < 32 * 1024, "RSS grew {grown} KiB");
    assert!(server.metric("shardcast_danmaku_reply_overflows_total") >= 1);
    honest.round_trip();
}

#[test]
fn history_and_gift_floods_are_rate_limited_while_chat_flows() {
    let server = Server::start("uring", 1, &config(""));
    let mut honest = Honest::join(&server, "lobby");
    server.credit(SECRET, "attacker", 1_000_000, "pay");
    let mut attacker = WsClient::connect(server.addr);
    let mut enc = ClientEncoder::new();
    attacker.send_binary(enc.hello("lobby", &token("attacker", "lobby"), 0, "e2e"));
    for i in 0..300 {
        attacker.send_binary(enc.history(0, 200));
        attacker.send_binary(enc.gift(1, 1, &format!("k{i}")));
    }
    honest.round_trip();
    let (mut refused, mut histories) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && refused + histories < 600 {
        match attacker.try_read_frame(Duration::from_millis(200)) {
            Ok(Some(Frame::Binary(bytes))) => {
                match decode_server(&bytes, &VerifyLimits::server()).unwrap() {
                    ServerMsg::Error { code: 429, .. } => refused += 1,
                    ServerMsg::HistoryReply { .. } => histories += 1,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(()) => break,
        }
    }
    assert!(histories <= 6, "{histories} history replies (burst 3, 1/s)");
    assert!(refused >= 580, "{refused} refusals");
    assert!(server.metric("shardcast_danmaku_rate_limited_total") >= 580);
    honest.round_trip();
}

/// One token on many connections: each stays within its own gift rate, together they pass
/// the room's gift cap; the rest are answered 429 and chats keep flowing.
#[test]
fn a_gift_flood_from_many_connections_is_capped_per_room() {
    let server = Server::start("uring", 1, &config("room_gift_max_per_s = 50\n"));
    let mut honest = Honest::join(&server, "lobby");
    server.credit(SECRET, "whale", 1_000_000, "pay");
    let whale = token("whale", "lobby");
    let mut connections: Vec<WsClient> = (0..40)
        .map(|_| {
            let mut ws = WsClient::connect(server.addr);
            ws.send_binary(ClientEncoder::new().hello("lobby", &whale, 0, "e2e"));
            ws
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut enc = ClientEncoder::new();
    for (c, ws) in connections.iter_mut().enumerate() {
        // The per-connection gift burst (10).
        for i in 0..10 {
            ws.send_binary(enc.gift(1, 1, &format!("c{c}-{i}")));
        }
    }
    honest.round_trip();
    let (mut acks, mut busy) = (0, 0);
    for ws in &mut connections {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut answers = 0;
        while answers < 10 && Instant::now() < deadline {
            match ws.try_read_frame(Duration::from_millis(100)) {
                Ok(Some(Frame::Binary(bytes))) => {
                    match decode_server(&bytes, &VerifyLimits::server()).unwrap() {
                        ServerMsg::GiftAck { .. } => (acks, answers) = (acks + 1, answers + 1),
                        ServerMsg::Error { code: 429, .. } => {
                            (busy, answers) = (busy + 1, answers + 1)
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(()) => break,
            }
        }
    }
    assert_eq!(acks + busy, 400, "every gift answered");
    // The burst (50) and what refilled while they arrived.
    assert!((50..=120).contains(&acks), "{acks} gifts taken");
    assert_eq!(
        server.metric("shardcast_danmaku_gifts_room_busy_total"),
        busy
    );
    honest.round_trip();
}

#[test]
fn an_anonymous_room_flood_makes_no_rooms_and_new_connections_keep_their_timeouts() {
    let server = Server::start("uring", 1, &config(""));
    let mut honest = Honest::join(&server, "lobby");
    let mut enc = ClientEncoder::new();
    for i in 0..2000 {
        let mut ws = WsClient::connect(server.addr);
        ws.send_binary(enc.hello(&format!("flood-{i}"), "", 0, "e2e"));
    }
    // No stream of those names is live: none of the rooms was made (danmaku.anonymous_rooms).
    assert_eq!(
        server.metric("shardcast_danmaku_rooms_home"),
        1,
        "the lobby only"
    );
    // A socket that sends nothing and a WebSocket that only pings are both timed out.
    let mut idle = server.connect();
    let mut pinger = WsClient::connect(server.addr);
    let started = Instant::now();
    let ping = pinger.frame_bytes(0x9, true, b"hi");
    while started.elapsed() < Duration::from_millis(900) {
        pinger.send_raw(&ping);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)),
        "idle HTTP kept"
    );
    assert!(
        closed_within(&mut pinger.stream, Duration::from_secs(4)),
        "a WebSocket without Hello kept"
    );
    assert_eq!(server.metric("shardcast_engine_timers_refused_total"), 0);
    honest.round_trip();
}

#[test]
fn slowloris_and_idle_rtmp_sockets_are_dropped_on_time() {
    let server = Server::start(
        "uring",
        1,
        &config("[rtmp]\nhandshake_timeout_ms = 1000\nmax_connections_per_shard = 8\n"),
    );
    let mut honest = Honest::join(&server, "lobby");
    // Twenty RTMP sockets that never speak: eight are held until the handshake timeout, the
    // rest are closed at once.
    let mut rtmp: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(server.rtmp_addr).unwrap())
        .collect();
    // A request head dribbled a byte every 100 ms.
    let mut slow = server.connect();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in head.iter().take(15) {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    honest.round_trip();
    let mut response = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = slow.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    for socket in &mut rtmp {
        assert!(
            closed_within(socket, Duration::from_secs(3)),
            "an idle RTMP socket kept"
        );
    }
    assert_eq!(server.metric("shardcast_media_rtmp_refused_total"), 12);
    // The eight held ones hit the handshake timeout: counted as timeouts, not as errors.
    assert_eq!(server.metric("shardcast_media_rtmp_timeouts_total"), 8);
    assert_eq!(server.metric("shardcast_media_rtmp_errors_total"), 0);
    honest.round_trip();
}

/// Connects to `addr` from the local address `from`.
fn connect_from(addr: std::net::SocketAddr, from: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

#[test]
fn one_address_with_thousands_of_connections_is_capped_while_another_is_served() {
    let config = config("").replace("[http]\n", "[http]\nmax_connections_per_address = 1000\n");
    let server = Server::start("uring", 1, &config);
    let mut flood: Vec<TcpStream> = (0..3000)
        .map(|_| connect_from(server.addr, "127.0.0.2"))
        .collect();
    // Each flood connection asks for /healthz: 1,000 are served, 2,000 answered 503.
    for s in &mut flood {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
    }
    let statuses: Vec<u16> = flood
        .iter_mut()
        .map(|s| common::read_response(s).map_or(0, |r| r.status))
        .collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1000);
    assert_eq!(statuses.iter().filter(|&&s| s == 503).count(), 2000);
    let mut other = connect_from(server.addr, "127.0.0.3");
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(common::read_response(&mut other).unwrap().status, 200);
    assert_eq!(
        server.metric("shardcast_http_rejected_per_address_total"),
        2000
    );
}

/// Publishes `name` from `from` with a raw RTMP client; `Err` with the server's refusal.
fn try_publish(server: &Server, from: &str, name: &str) -> Result<(), String> {
    use shardcast_rtmp::{ClientConfig, ClientEvent, ClientSession};
    let mut tcp = connect_from(server.rtmp_addr, from);
    tcp.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut client = ClientSession::new(ClientConfig::new("live", name));
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        while let Some(out) = client.poll_transmit() {
            tcp.write_all(&out).map_err(|e| e.to_string())?;
        }
        match tcp.read(&mut buf) {
            Ok(0) => return Err("closed".to_string()),
            Ok(n) => client.handle_input(&buf[..n]).map_err(|e| e.to_string())?,
            Err(_) => {}
        }
        while let Some(event) = client.poll_event() {
            if let ClientEvent::Status {
                level, description, ..
            } = event
            {
                if level == "error" {
                    return Err(description);
                }
            }
        }
        if client.is_publishing() {
            return Ok(());
        }
    }
    Err("no answer".to_string())
}

#[test]
fn stream_key_guessing_is_cut_off_and_logged_while_the_owner_publishes() {
    let server = Server::start(
        "uring",
        1,
        &config(
            "[media]\npublish_keys = [{ stream = \"cam\", key = \"right\" }]\n\
             [rtmp]\npublish_failures_per_minute = 5\n",
        ),
    );
    for guess in 0..5 {
        let refused = try_publish(&server, "127.0.0.4", &format!("cam?key=guess{guess}"));
        assert_eq!(refused, Err("bad or missing stream key".to_string()));
    }
    let blocked = try_publish(&server, "127.0.0.4", "cam?key=right").unwrap_err();
    assert!(
        blocked.contains("too many refused credentials"),
        "{blocked}"
    );
    let (logged, log) = server.wait_log("127.0.0.4 presented 5 refused publish credentials");
    assert!(logged, "{log}");
    try_publish(&server, "127.0.0.5", "cam?key=right").expect("the owner publishes");
}
