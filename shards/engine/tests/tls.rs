//! TLS listeners over real sockets, on both backends: an echo service behind a TLS listener
//! (it sees plaintext only) and a plain one beside it; rustls clients.
//!
//! - 4 MiB echoed over TLS arrive whole and in order, from several clients at once;
//! - `bye` makes the service close after its flush: the client reads a `close_notify`;
//! - plain text on the TLS port, garbage, and a client that never starts its handshake are
//!   closed (the last after the handshake timeout), counted, and cost the other clients
//!   nothing.

use shardcast_engine::rustls;
use shardcast_engine::{
    launch, CloseReason, ConnId, Ctx, EngineConfig, IoChoice, ListenerId, ListenerSpec, Service,
    ShardInfo, TlsAcceptor, TlsLimits,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Echoes what it gets; `bye` closes after the flush.
struct Echo;

impl Service for Echo {
    type Msg = ();

    fn on_accept(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _listener: ListenerId) {}

    fn on_recv(&mut self, cx: &mut Ctx<()>, conn: ConnId, data: &[u8]) {
        if data.ends_with(b"bye") {
            cx.send(conn, bytes::Bytes::copy_from_slice(b"farewell"));
            cx.close_after_flush(conn);
            return;
        }
        cx.send(conn, bytes::Bytes::copy_from_slice(data));
    }

    fn on_close(&mut self, _cx: &mut Ctx<()>, _conn: ConnId, _reason: CloseReason) {}
}

struct Pki {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn pki() -> Pki {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Pki {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

fn tls_client(
    to: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(to).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Sends `total` bytes of a pattern from one thread and reads the echo back on this one.
fn echo_round_trip(to: SocketAddr, config: Arc<rustls::ClientConfig>, total: usize, seed: u8) {
    let pattern: Vec<u8> = (0..total)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    // Connected after the pattern is made: the handshake must begin within its timeout.
    let mut stream = tls_client(to, &config);
    // The first write completes the handshake; then the socket is split for reading.
    stream.write_all(&pattern[..1]).unwrap();
    let mut got = Vec::with_capacity(total);
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 1;
    while got.len() < total {
        if sent < total {
            let end = (sent + 16 * 1024).min(total);
            stream.write_all(&pattern[sent..end]).unwrap();
            sent = end;
        }
        // Read what has come so far without waiting for all of it.
        if got.len() < sent {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed early after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got.len(), total);
    assert!(got == pattern, "the echo differs from what was sent");
}

fn run(io: IoChoice) {
    let pki = pki();
    let limits = TlsLimits {
        handshake_timeout_ms: 300,
        ..TlsLimits::default()
    };
    let acceptor = Arc::new(TlsAcceptor::new(pki.server.clone(), limits));
    let config = EngineConfig {
        max_connections: 64,
        recv_buffers: 64,
        shutdown_grace_ms: 2000,
        ..EngineConfig::default()
    };
    let listeners = [
        ListenerSpec {
            name: "tls".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: Some(acceptor),
            at_udp_port: None,
        },
        ListenerSpec {
            name: "plain".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            at_udp_port: None,
        },
    ];
    let mut runtime =
        launch(vec![None], io, &listeners, config, |_: &ShardInfo| Echo).expect("launch");
    let tls_addr = runtime.info().listeners[0].1;
    let plain_addr = runtime.info().listeners[1].1;

    // A client that never speaks, and one that speaks plain HTTP to the TLS port.
    let silent = TcpStream::connect(tls_addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut plain_text = TcpStream::connect(tls_addr).unwrap();
    plain_text
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain_text
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    // Four TLS clients echo 4 MiB each at the same time.
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let config = pki.client.clone();
            std::thread::spawn(move || echo_round_trip(tls_addr, config, 4 << 20, i))
        })
        .collect();
    for client in clients {
        client.join().expect("a TLS client failed");
    }

    // The plain-text client got at most an alert, then the end of the stream.
    let mut answer = Vec::new();
    let _ = plain_text.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP"),
        "{io:?}: plain text was answered in plain text"
    );
    assert!(
        answer.len() < 64,
        "{io:?}: more than an alert: {} bytes",
        answer.len()
    );

    // The silent client is closed after the handshake timeout.
    let started = Instant::now();
    let mut silent = silent;
    let mut nothing = Vec::new();
    let _ = silent.read_to_end(&mut nothing);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{io:?}: the silent client stayed"
    );

    // `bye`: the echo service closes after its answer, and the client reads close_notify
    // (a clean end, not a truncation).
    let mut stream = tls_client(tls_addr, &pki.client);
    stream.write_all(b"bye").unwrap();
    let mut farewell = Vec::new();
    stream
        .read_to_end(&mut farewell)
        .expect("a clean close_notify");
    assert_eq!(farewell, b"farewell");

    // The plain listener beside it is plain.
    let mut plain = TcpStream::connect(plain_addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(b"hello").unwrap();
    let mut hello = [0u8; 5];
    plain.read_exact(&mut hello).unwrap();
    assert_eq!(&hello, b"hello");

    let counters = &runtime.info().counters[0];
    let handshakes = counters
        .tls_handshakes
        .load(std::sync::atomic::Ordering::Relaxed);
    let failures = counters
        .tls_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    let timeouts = counters
        .tls_handshake_timeouts
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        handshakes, 5,
        "{io:?}: four echo clients and the bye client"
    );
    assert_eq!(failures, 1, "{io:?}: the plain-text client");
    assert_eq!(timeouts, 1, "{io:?}: the silent client");
    runtime.drain();
    runtime.join().expect("clean exit");
}

#[test]
fn tls_on_io_uring() {
    run(IoChoice::Uring);
}

#[test]
fn tls_on_epoll() {
    run(IoChoice::Epoll);
}
