//! Peer addresses of real accepted connections, on both backends: a service that writes each
//! client the address `Ctx::peer_ip` gives for it, and records it again in `on_close`.
//! Clients connect from 127.0.0.1 and from 127.0.0.2 (a bound source address), more at once
//! than the io_uring backend keeps accepts in flight, so every accept op is re-armed.

use shardcast_engine::{
    launch, CloseReason, ConnId, Ctx, EngineConfig, IoChoice, ListenerId, ListenerSpec, Service,
    ShardInfo,
};
use socket2::{Domain, Socket, Type};
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tells each client its address, then closes after the write.
struct Echo {
    closed: Arc<Mutex<Vec<Option<IpAddr>>>>,
}

impl Service for Echo {
    type Msg = ();

    fn on_accept(&mut self, cx: &mut Ctx<()>, conn: ConnId, _listener: ListenerId) {
        let answer = match cx.peer_ip(conn) {
            Some(ip) => format!("{ip}\n"),
            None => "none\n".to_string(),
        };
        cx.send(conn, answer.into());
        cx.close_after_flush(conn);
    }

    fn on_recv(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _data: &[u8]) {}

    fn on_close(&mut self, cx: &mut Ctx<()>, conn: ConnId, _reason: CloseReason) {
        self.closed.lock().unwrap().push(cx.peer_ip(conn));
    }
}

/// Connects to `to`, from `from` when given, and reads everything the server writes.
fn ask(to: SocketAddr, from: Option<IpAddr>) -> String {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None).unwrap();
    if let Some(from) = from {
        socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
    }
    socket.connect(&to.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Runs `shards` shards on `io` listening on `listen`; each case is (address to connect to,
/// source address to bind, the peer address the server must report), asked `rounds` times,
/// all of a round's cases at once.
fn run(
    io: IoChoice,
    shards: usize,
    listen: &str,
    cases: &[(IpAddr, Option<IpAddr>, IpAddr)],
    rounds: usize,
) {
    let closed = Arc::new(Mutex::new(Vec::new()));
    let factory_closed = closed.clone();
    let config = EngineConfig {
        max_connections: 256,
        recv_buffers: 64,
        shutdown_grace_ms: 2000,
        ..EngineConfig::default()
    };
    let mut runtime = launch(
        vec![None; shards],
        io,
        &[ListenerSpec {
            name: "echo".into(),
            addr: listen.parse().unwrap(),
            tls: None,
            at_udp_port: None,
        }],
        config,
        move |_: &ShardInfo| Echo {
            closed: factory_closed.clone(),
        },
    )
    .expect("launch");
    let port = runtime.info().listeners[0].1.port();
    let mut expected = Vec::new();
    for _ in 0..rounds {
        let clients: Vec<_> = cases
            .iter()
            .map(|&(to, from, want)| {
                std::thread::spawn(move || (ask(SocketAddr::new(to, port), from), want))
            })
            .collect();
        for client in clients {
            let (answer, want) = client.join().unwrap();
            assert_eq!(answer, format!("{want}\n"), "{io:?}: peer of {want}");
            expected.push(Some(want));
        }
    }
    // on_close sees the same address for every connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while closed.lock().unwrap().len() < expected.len() {
        assert!(Instant::now() < deadline, "{io:?}: closes not seen");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut seen = closed.lock().unwrap().clone();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "{io:?}: addresses in on_close");
    runtime.drain();
    runtime.join().expect("clean exit");
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// 48 clients at once (three times the accepts io_uring keeps in flight per listener), half
/// of them from 127.0.0.2, three rounds.
fn loopback_cases() -> Vec<(IpAddr, Option<IpAddr>, IpAddr)> {
    let (one, two) = (ip("127.0.0.1"), ip("127.0.0.2"));
    (0..48)
        .map(|i| {
            if i % 2 == 0 {
                (one, None, one)
            } else {
                (one, Some(two), two)
            }
        })
        .collect()
}

#[test]
fn peer_addresses_on_io_uring() {
    run(IoChoice::Uring, 2, "127.0.0.1:0", &loopback_cases(), 3);
}

#[test]
fn peer_addresses_on_epoll() {
    run(IoChoice::Epoll, 2, "127.0.0.1:0", &loopback_cases(), 3);
}

/// On a dual-stack listener an IPv4 client arrives as IPv4-mapped IPv6 and is reported as
/// IPv4; an IPv6 client as itself. Skipped where the host has no IPv6 loopback.
#[test]
fn dual_stack_listeners_report_ipv4_clients_as_ipv4() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    let cases = [
        (ip("127.0.0.1"), Some(ip("127.0.0.2")), ip("127.0.0.2")),
        (ip("127.0.0.1"), None, ip("127.0.0.1")),
        (ip("::1"), None, ip("::1")),
    ];
    run(IoChoice::Uring, 1, "[::]:0", &cases, 2);
    run(IoChoice::Epoll, 1, "[::]:0", &cases, 2);
}

/// Keeps every connection open and does nothing.
struct Hold;

impl Service for Hold {
    type Msg = ();

    fn on_accept(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _listener: ListenerId) {}

    fn on_recv(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _data: &[u8]) {}

    fn on_close(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _reason: CloseReason) {}
}

/// With the table full, a connection is accepted, counted as refused and closed at once, and
/// the accepts keep going (the next refusal is counted too); the drain still finishes.
fn refuse_when_full(io: IoChoice) {
    let config = EngineConfig {
        max_connections: 2,
        recv_buffers: 8,
        shutdown_grace_ms: 100,
        ..EngineConfig::default()
    };
    let listen = ListenerSpec {
        name: "hold".into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        at_udp_port: None,
    };
    let mut runtime = launch(vec![None], io, &[listen], config, |_: &ShardInfo| Hold).unwrap();
    let addr = runtime.info().listeners[0].1;
    let counters = runtime.info().counters[0].clone();
    let count =
        |name: &std::sync::atomic::AtomicU64| name.load(std::sync::atomic::Ordering::Relaxed);
    let _held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for refused in 1..=2 {
        let mut extra = TcpStream::connect(addr).unwrap();
        extra
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Closed by the server: end of stream or a reset, never a timeout.
        match extra.read(&mut [0u8; 16]) {
            Ok(n) => assert_eq!(n, 0, "{io:?}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{io:?}"),
        }
        assert_eq!(count(&counters.accepts_refused), refused, "{io:?}");
        assert_eq!(count(&counters.accepts), 2, "{io:?}");
    }
    runtime.drain();
    runtime.join().expect("clean exit");
}

#[test]
fn a_full_table_refuses_on_both_backends() {
    refuse_when_full(IoChoice::Uring);
    refuse_when_full(IoChoice::Epoll);
}
