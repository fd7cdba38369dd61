//! A worker thread on the mesh (what a transcode thread is): shards hand it lines, it hands
//! back their upper-case form, and it leaves when the runtime drains. Both backends, rings of
//! 4 messages so that the overflow path (and its retry from the worker) carries traffic.

use bytes::Bytes;
use shardcast_engine::{
    launch, CloseReason, ConnId, Ctx, EngineConfig, IoChoice, ListenerId, ListenerSpec, Service,
    ShardId, ShardInfo, WorkerInbox,
};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

enum Msg {
    Line(ConnId, Bytes),
    Upper(ConnId, Bytes),
}

struct Upper {
    worker: ShardId,
    tails: Vec<Vec<u8>>,
}

impl Service for Upper {
    type Msg = Msg;

    fn on_accept(&mut self, _cx: &mut Ctx<Msg>, conn: ConnId, _listener: ListenerId) {
        self.tails[conn.slot()].clear();
    }

    fn on_recv(&mut self, cx: &mut Ctx<Msg>, conn: ConnId, data: &[u8]) {
        self.tails[conn.slot()].extend_from_slice(data);
        while let Some(end) = self.tails[conn.slot()].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.tails[conn.slot()].drain(..=end).collect();
            cx.mesh_send(self.worker, Msg::Line(conn, Bytes::from(line)));
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<Msg>, _conn: ConnId, _reason: CloseReason) {}

    fn on_mesh(&mut self, cx: &mut Ctx<Msg>, from: ShardId, msg: Msg) {
        assert_eq!(from, self.worker);
        if let Msg::Upper(conn, line) = msg {
            cx.send(conn, line);
        }
    }
}

fn run(io: IoChoice) {
    let config = EngineConfig {
        max_connections: 64,
        recv_buffers: 64,
        mesh_ring_capacity: 4,
        shutdown_grace_ms: 2000,
        worker_endpoints: 1,
        ..EngineConfig::default()
    };
    let mut runtime = launch(
        vec![None; 2],
        io,
        &[ListenerSpec {
            name: "upper".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            at_udp_port: None,
        }],
        config,
        |info: &ShardInfo| Upper {
            worker: info.runtime.worker_id(0),
            tails: vec![Vec::new(); 64],
        },
    )
    .expect("launch");
    let mut workers = runtime.take_workers();
    assert_eq!(workers.len(), 1);
    assert!(runtime.take_workers().is_empty());
    let mut worker = workers.pop().unwrap();
    assert_eq!(worker.id(), runtime.info().worker_id(0));
    assert_eq!(worker.id(), ShardId(3));
    let worker_thread = std::thread::spawn(move || {
        let mut handled = 0u64;
        let mut draining = false;
        while !draining || worker.overflow_len() > 0 {
            let mut out = Vec::new();
            worker.receive(64, |inbox| match inbox {
                WorkerInbox::Msg(from, Msg::Line(conn, line)) => {
                    out.push((from, conn, line.to_ascii_uppercase()));
                }
                WorkerInbox::Msg(_, Msg::Upper(..)) => panic!("shards do not send Upper"),
                WorkerInbox::Drain => draining = true,
            });
            handled += out.len() as u64;
            for (from, conn, line) in out {
                worker.send(from, Msg::Upper(conn, Bytes::from(line)));
            }
            worker.flush();
            if worker.overflow_len() == 0 && !draining {
                worker.wait(5);
            }
        }
        handled
    });

    let addr = runtime.info().listeners[0].1;
    let clients: Vec<_> = (0..8)
        .map(|c| {
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut batch = String::new();
                for i in 0..500 {
                    batch.push_str(&format!("client {c} line {i}\n"));
                }
                writer.write_all(batch.as_bytes()).unwrap();
                let mut reader = BufReader::new(stream);
                for i in 0..500 {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    assert_eq!(line, format!("CLIENT {c} LINE {i}\n"));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    runtime.drain();
    runtime.join().expect("clean exit");
    assert_eq!(worker_thread.join().unwrap(), 8 * 500);
}

#[test]
fn a_worker_serves_shards_on_io_uring() {
    run(IoChoice::Uring);
}

#[test]
fn a_worker_serves_shards_on_epoll() {
    run(IoChoice::Epoll);
}
