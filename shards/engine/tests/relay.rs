//! The engine end to end, on both backends, with a service that crosses shards: every line a
//! client sends goes to the next shard over the mesh and comes back before it is echoed. A
//! client therefore sees its lines echoed exactly once and in order only if accept, receive,
//! the mesh (order, doorbells, overflow), send and close all work.

use bytes::Bytes;
use shardcast_engine::{
    launch, CloseReason, ConnId, Ctx, EngineConfig, IoChoice, ListenerId, ListenerSpec, Service,
    ShardId, ShardInfo,
};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

enum Hop {
    /// Going out to the relay shard: (origin shard, origin connection, line).
    Out(u16, ConnId, Bytes),
    /// Coming back to the origin shard.
    Back(ConnId, Bytes),
}

struct Relay {
    tails: Vec<Vec<u8>>,
    closed: Arc<AtomicUsize>,
}

impl Service for Relay {
    type Msg = Hop;

    fn on_accept(&mut self, _cx: &mut Ctx<Hop>, conn: ConnId, _listener: ListenerId) {
        self.tails[conn.slot()].clear();
    }

    fn on_recv(&mut self, cx: &mut Ctx<Hop>, conn: ConnId, data: &[u8]) {
        self.tails[conn.slot()].extend_from_slice(data);
        while let Some(end) = self.tails[conn.slot()].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.tails[conn.slot()].drain(..=end).collect();
            let next = ShardId(((cx.shard().index() + 1) % cx.shards()) as u16);
            let hop = Hop::Out(cx.shard().0, conn, Bytes::from(line));
            if next == cx.shard() {
                self.on_mesh(cx, next, hop);
            } else {
                cx.mesh_send(next, hop);
            }
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<Hop>, _conn: ConnId, _reason: CloseReason) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    fn on_mesh(&mut self, cx: &mut Ctx<Hop>, _from: ShardId, msg: Hop) {
        match msg {
            Hop::Out(origin, conn, line) if origin != cx.shard().0 => {
                cx.mesh_send(ShardId(origin), Hop::Back(conn, line))
            }
            Hop::Out(_, conn, line) | Hop::Back(conn, line) => {
                cx.send(conn, line);
            }
        }
    }
}

fn run(io: IoChoice, shards: usize) {
    run_with(io, shards, 4);
}

fn run_with(io: IoChoice, shards: usize, mesh_ring_capacity: usize) {
    let closed = Arc::new(AtomicUsize::new(0));
    let factory_closed = closed.clone();
    let config = EngineConfig {
        max_connections: 256,
        recv_buffers: 64,
        mesh_ring_capacity,
        shutdown_grace_ms: 2000,
        ..EngineConfig::default()
    };
    let mut runtime = launch(
        vec![None; shards],
        io,
        &[ListenerSpec {
            name: "relay".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            at_udp_port: None,
        }],
        config,
        move |info: &ShardInfo| Relay {
            tails: vec![Vec::new(); info.runtime.engine.max_connections as usize],
            closed: factory_closed.clone(),
        },
    )
    .expect("launch");
    let addr = runtime.info().listeners[0].1;

    let clients: Vec<_> = (0..16)
        .map(|c| {
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut writer = stream.try_clone().unwrap();
                let sender = std::thread::spawn(move || {
                    let mut batch = String::new();
                    for i in 0..2000 {
                        batch.push_str(&format!("client {c} line {i}\n"));
                        if i % 100 == 99 {
                            writer.write_all(batch.as_bytes()).unwrap();
                            batch.clear();
                        }
                    }
                });
                let mut reader = BufReader::new(stream);
                for i in 0..2000 {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    assert_eq!(line, format!("client {c} line {i}\n"));
                }
                sender.join().unwrap();
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    // Every close is seen by the service exactly once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while closed.load(Ordering::Relaxed) < 16 {
        assert!(std::time::Instant::now() < deadline, "closes not seen");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(closed.load(Ordering::Relaxed), 16);
    let mesh_messages: u64 = runtime
        .info()
        .counters
        .iter()
        .map(|c| c.mesh_received.load(Ordering::Relaxed))
        .sum();
    if shards > 1 {
        assert_eq!(
            mesh_messages,
            16 * 2000 * 2,
            "each line crosses the mesh twice"
        );
    }
    runtime.drain();
    runtime.join().expect("clean exit");
}

// Rings of 4 messages: the overflow path carries most of the traffic.
#[test]
fn relay_across_two_shards_on_io_uring() {
    run(IoChoice::Uring, 2);
}

// Rings large enough that nothing overflows: every message rides the doorbell path.
#[test]
fn relay_with_roomy_rings_on_both_backends() {
    run_with(IoChoice::Uring, 2, 4096);
    run_with(IoChoice::Epoll, 2, 4096);
}

#[test]
fn relay_across_two_shards_on_epoll() {
    run(IoChoice::Epoll, 2);
}

#[test]
fn relay_across_three_shards_on_io_uring() {
    run(IoChoice::Uring, 3);
}

#[test]
fn single_shard_on_both_backends() {
    run(IoChoice::Uring, 1);
    run(IoChoice::Epoll, 1);
}
