//! UDP on real shards, both backends: every shard binds its own socket (consecutive ports
//! from a base), a service answers each datagram with the shard's index and the datagram, and
//! clients see every answer come from the socket they sent to: nothing lost on loopback,
//! bursts larger than one receive batch and one loop iteration's read budget included.

use shardcast_engine::{
    launch, CloseReason, ConnId, Ctx, EngineConfig, IoChoice, ListenerId, Service, ShardInfo,
    UdpId, UdpSpec,
};
use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Echoes each datagram back, prefixed with the shard's index and the socket's local port.
struct Echo;

impl Service for Echo {
    type Msg = ();

    fn on_accept(&mut self, cx: &mut Ctx<()>, conn: ConnId, _listener: ListenerId) {
        cx.close(conn);
    }

    fn on_recv(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _data: &[u8]) {}

    fn on_close(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _reason: CloseReason) {}

    fn on_datagram(&mut self, cx: &mut Ctx<()>, socket: UdpId, from: SocketAddr, data: &[u8]) {
        let port = cx.udp_local_addr(socket).map_or(0, |a| a.port());
        let mut answer = format!("{} {port} ", cx.shard().0).into_bytes();
        answer.extend_from_slice(data);
        assert!(cx.send_datagram(socket, from, &answer));
    }
}

/// A base port with `count` free UDP ports after it (checked by binding them).
fn free_ports(count: u16) -> u16 {
    for _ in 0..50 {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base.checked_add(count).is_none() {
            continue;
        }
        let all: Vec<_> = (0..count)
            .map(|i| UdpSocket::bind(("127.0.0.1", base + i)))
            .collect();
        if all.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no {count} consecutive free UDP ports");
}

fn run(io: IoChoice) {
    let shards = 2;
    let base = free_ports(shards as u16);
    let config = EngineConfig {
        max_connections: 64,
        recv_buffers: 64,
        shutdown_grace_ms: 2000,
        udp: vec![UdpSpec {
            name: "media".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], base)),
            port_per_shard: true,
        }],
        ..EngineConfig::default()
    };
    let mut runtime =
        launch(vec![None; shards], io, &[], config, |_: &ShardInfo| Echo).expect("launch");
    let addrs = runtime.info().udp[0].1.clone();
    assert_eq!(
        addrs.iter().map(|a| a.port()).collect::<Vec<_>>(),
        vec![base, base + 1],
        "{io:?}: one port per shard, consecutive"
    );
    // Room for every answer at once (the kernel caps this at net.core.rmem_max, 4 MiB here);
    // with less, the burst goes out in windows that fit.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let _ = socket.set_recv_buffer_size(4 << 20);
    let room = socket.recv_buffer_size().unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let client: UdpSocket = socket.into();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // A burst to each shard: more than one recvmmsg batch (32) and one tick's budget (256).
    let per_shard = 600;
    // About 1.3 KB of receive buffer per small datagram (the kernel's accounting).
    let window = (room / 1300 / shards).clamp(50, per_shard);
    let mut seen = BTreeSet::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    for from in (0..per_shard).step_by(window) {
        for (shard, addr) in addrs.iter().enumerate() {
            for i in from..(from + window).min(per_shard) {
                client
                    .send_to(format!("s{shard}-{i}").as_bytes(), addr)
                    .unwrap();
            }
        }
        let want = shards * (from + window).min(per_shard);
        receive(&client, &mut buf, &mut seen, want, deadline, io);
    }
    assert_eq!(
        seen.len(),
        shards * per_shard,
        "{io:?}: every datagram answered"
    );
    let received: u64 = (runtime.info().counters.iter())
        .map(|c| c.udp_received.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(received, (shards * per_shard) as u64);
    runtime.drain();
    runtime.join().expect("clean exit");
}

/// Reads answers until `seen` holds `want` of them (or the deadline), checking each.
fn receive(
    client: &UdpSocket,
    buf: &mut [u8],
    seen: &mut BTreeSet<String>,
    want: usize,
    deadline: Instant,
    io: IoChoice,
) {
    while seen.len() < want && Instant::now() < deadline {
        let Ok((n, from)) = client.recv_from(buf) else {
            break;
        };
        let text = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        let mut words = text.split(' ');
        let (shard, port, body) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
        );
        assert_eq!(
            body.split('-').next(),
            Some(format!("s{shard}").as_str()),
            "{text}"
        );
        assert_eq!(
            port.parse::<u16>().unwrap(),
            from.port(),
            "answered from its own socket"
        );
        assert!(seen.insert(body.to_string()), "{io:?}: {body} twice");
    }
}

#[test]
fn every_shard_answers_on_its_own_port_over_io_uring() {
    run(IoChoice::Uring);
}

#[test]
fn every_shard_answers_on_its_own_port_over_epoll() {
    run(IoChoice::Epoll);
}

#[test]
fn the_harness_delivers_datagrams_and_shows_what_was_sent() {
    let mut t = shardcast_engine::testing::TestShards::new(2, EngineConfig::default(), |_| Echo);
    let from: SocketAddr = "192.0.2.7:5000".parse().unwrap();
    t.datagram(shardcast_engine::ShardId(1), UdpId(0), from, b"hello");
    // No socket is bound on the harness: the local port reads 0.
    assert_eq!(
        t.take_datagrams(shardcast_engine::ShardId(1)),
        vec![(UdpId(0), from, b"1 0 hello".to_vec())]
    );
    assert!(t.take_datagrams(shardcast_engine::ShardId(1)).is_empty());
    assert!(t.take_datagrams(shardcast_engine::ShardId(0)).is_empty());
}

/// Answers "fan PORT" with `FAN` datagrams of mixed sizes, in runs, to the sender and to
/// 127.0.0.1:PORT by turns: what segmentation offload coalesces (equal sizes, one
/// destination, a shorter last one) and what it must not (another size, another
/// destination).
struct Fan;

const FAN: usize = 400;

/// The size of fanned datagram `k`.
fn fan_size(k: usize) -> usize {
    match k % 10 {
        0..=5 => 1200,
        6 => 700,
        7 | 8 => 1200,
        _ => 40 + k % 7,
    }
}

impl Service for Fan {
    type Msg = ();

    fn on_accept(&mut self, cx: &mut Ctx<()>, conn: ConnId, _listener: ListenerId) {
        cx.close(conn);
    }

    fn on_recv(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _data: &[u8]) {}

    fn on_close(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _reason: CloseReason) {}

    fn on_datagram(&mut self, cx: &mut Ctx<()>, socket: UdpId, from: SocketAddr, data: &[u8]) {
        let text = std::str::from_utf8(data).unwrap();
        let port: u16 = text.strip_prefix("fan ").unwrap().parse().unwrap();
        let other = SocketAddr::from(([127, 0, 0, 1], port));
        for k in 0..FAN {
            let to = if (k / 25) % 2 == 0 { from } else { other };
            let mut datagram = (k as u16).to_be_bytes().to_vec();
            datagram.resize(fan_size(k), k as u8);
            assert!(cx.send_datagram(socket, to, &datagram));
        }
    }
}

fn fan(io: IoChoice) {
    // A queue bound far below the fan's bytes: it is sent as it fills, nothing dropped.
    let config = EngineConfig {
        max_connections: 64,
        recv_buffers: 64,
        shutdown_grace_ms: 2000,
        udp_out_max_bytes: 64 << 10,
        udp: vec![UdpSpec {
            name: "media".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            port_per_shard: false,
        }],
        ..EngineConfig::default()
    };
    let mut runtime = launch(vec![None], io, &[], config, |_: &ShardInfo| Fan).expect("launch");
    let server = runtime.info().udp[0].1[0];
    let clients: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
            let _ = socket.set_recv_buffer_size(4 << 20);
            socket
                .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
                .unwrap();
            let socket: UdpSocket = socket.into();
            socket
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            socket
        })
        .collect();
    let port = clients[1].local_addr().unwrap().port();
    clients[0]
        .send_to(format!("fan {port}").as_bytes(), server)
        .unwrap();
    for (c, client) in clients.iter().enumerate() {
        let expected: Vec<usize> = (0..FAN).filter(|k| (k / 25) % 2 == c).collect();
        let mut buf = [0u8; 4096];
        for &k in &expected {
            let (n, from) = client
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{io:?}: datagram {k} to client {c}: {e}"));
            assert_eq!(from, server);
            assert_eq!(n, fan_size(k), "{io:?}: datagram {k}'s length");
            assert_eq!(u16::from_be_bytes([buf[0], buf[1]]) as usize, k, "in order");
            assert!(
                buf[2..n].iter().all(|&b| b == k as u8),
                "{io:?}: {k}'s bytes"
            );
        }
    }
    let counters = &runtime.info().counters[0];
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    // The shard counts a batch once its send returns, after the client may have read it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while count(&counters.udp_sent) < FAN as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(count(&counters.udp_sent), FAN as u64);
    assert_eq!(count(&counters.udp_dropped), 0);
    // The runs of equal sizes to one destination went as segmented messages.
    assert!(count(&counters.udp_segmented) >= FAN as u64 / 2, "{io:?}");
    runtime.drain();
    runtime.join().expect("clean exit");
}

#[test]
fn fanned_runs_keep_every_datagram_s_bounds_and_order_over_io_uring() {
    fan(IoChoice::Uring);
}

#[test]
fn fanned_runs_keep_every_datagram_s_bounds_and_order_over_epoll() {
    fan(IoChoice::Epoll);
}
