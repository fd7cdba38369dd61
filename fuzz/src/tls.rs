//! The `tls_http` target: the engine's TLS connections (rustls driven inside the shard) in
//! front of the HTTP request decoder, as an HTTPS listener runs them, in the engine's test
//! harness.
//!
//! The input's config byte picks what the fuzzed payload is:
//!
//! - **records** (config % 3 == 0): raw bytes where a ClientHello should be, fed at the
//!   input's cuts;
//! - **plaintext** (1): a real client finishes the handshake, then sends the payload as HTTP
//!   inside application data, sealed by the client and fed at the cuts;
//! - **tampered** (2): as plaintext, with the sealed records' bytes flipped where the payload's
//!   first bytes say.
//!
//! Checks: nothing panics; the server's bytes always parse as TLS for the client (its
//! `process_new_packets` never fails on what the server sent before a close); the server
//! answers no more HTTP responses than complete requests it was sent; a connection the
//! server failed is closed once its alert is out, and one still in its handshake is closed
//! by the handshake timeout.

use bytes::Bytes;
use shardcast_engine::rustls;
use shardcast_engine::testing::TestShards;
use shardcast_engine::{
    CloseReason, ConnId, Ctx, EngineConfig, ListenerId, Service, ShardId, TlsAcceptor, TlsLimits,
};
use shardcast_http::{Decoded, Limits, RequestDecoder};
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::Input;

/// The handshake timeout of the fuzzed listener.
const HANDSHAKE_TIMEOUT_MS: u64 = 1000;

/// Answers each request head with a fixed response; closes after a decode error.
struct Https {
    decoders: Vec<Option<(RequestDecoder, Vec<u8>)>>,
    responses: usize,
}

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

impl Service for Https {
    type Msg = ();

    fn on_accept(&mut self, _cx: &mut Ctx<()>, conn: ConnId, _listener: ListenerId) {
        self.decoders[conn.slot()] = Some((RequestDecoder::new(Limits::DEFAULT), Vec::new()));
    }

    fn on_recv(&mut self, cx: &mut Ctx<()>, conn: ConnId, data: &[u8]) {
        let Some((decoder, held)) = self.decoders[conn.slot()].as_mut() else {
            return;
        };
        held.extend_from_slice(data);
        loop {
            let consumed = match decoder.decode(held) {
                Ok(Decoded::Head { consumed, .. }) => {
                    self.responses += 1;
                    cx.send(conn, Bytes::from_static(RESPONSE));
                    consumed
                }
                Ok(Decoded::Body { consumed, .. }) => consumed,
                Ok(Decoded::NeedMore) => return,
                Err(_) => {
                    // The decoder is done with this connection (it may not be called again).
                    self.decoders[conn.slot()] = None;
                    cx.close_after_flush(conn);
                    return;
                }
            };
            if consumed == 0 {
                return;
            }
            held.drain(..consumed);
        }
    }

    fn on_close(&mut self, _cx: &mut Ctx<()>, conn: ConnId, _reason: CloseReason) {
        self.decoders[conn.slot()] = None;
    }
}

struct Pki {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

/// One certificate for every run: making one costs more than a run.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = made.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pki {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    })
}

/// A client of the harness: rustls on one side, the shard's connection on the other.
struct Client {
    tls: rustls::ClientConnection,
    conn: ConnId,
    /// Plaintext the server sent.
    plain: Vec<u8>,
}

const SHARD: ShardId = ShardId(0);

impl Client {
    /// Moves bytes both ways until neither side has more to say.
    fn pump(&mut self, t: &mut TestShards<Https>) {
        for _ in 0..64 {
            let mut out = Vec::new();
            while self.tls.wants_write() {
                self.tls.write_tls(&mut out).unwrap();
            }
            if !out.is_empty() {
                t.write(SHARD, self.conn, &out);
            }
            let back = t.read(SHARD, self.conn);
            if back.is_empty() && out.is_empty() {
                return;
            }
            self.take(&back);
        }
    }

    /// Takes what the server sent; it must be well-formed TLS.
    fn take(&mut self, mut back: &[u8]) {
        while !back.is_empty() {
            self.tls.read_tls(&mut back).unwrap();
            let state = self
                .tls
                .process_new_packets()
                .expect("the server sent records the client cannot read");
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let at = self.plain.len();
                self.plain.resize(at + n, 0);
                self.tls.reader().read_exact(&mut self.plain[at..]).unwrap();
            }
        }
    }
}

/// What one run ended with.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Responses the HTTP service sent.
    pub responses: usize,
    pub handshakes: u64,
    pub failures: u64,
}

/// Runs one input (see the module documentation).
pub fn tls_http(data: &[u8]) {
    let _ = run(data);
}

/// [`tls_http`], returning what happened.
pub fn run(data: &[u8]) -> Option<Outcome> {
    let input = Input::parse(data)?;
    let pki = pki();
    let limits = TlsLimits {
        handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS,
        ..TlsLimits::default()
    };
    let acceptor = Arc::new(TlsAcceptor::new(pki.server.clone(), limits));
    let config = EngineConfig {
        max_connections: 4,
        ..EngineConfig::default()
    };
    let mut t = TestShards::with_tls(1, config, vec![Some(acceptor)], |_| Https {
        decoders: (0..4).map(|_| None).collect(),
        responses: 0,
    });
    let conn = t.connect(SHARD, ListenerId(0)).expect("a free slot");
    match input.config % 3 {
        0 => {
            for piece in input.pieces() {
                if t.closed(SHARD, conn).is_none() {
                    t.write(SHARD, conn, piece);
                }
            }
            let _ = t.read(SHARD, conn);
        }
        mode => sealed(&mut t, conn, &input, pki, mode == 2),
    }
    // Whatever state it was left in, the connection ends: by its own close, or by the
    // handshake timeout.
    t.advance(HANDSHAKE_TIMEOUT_MS + 10);
    let counters = t.counters(SHARD);
    let handshakes = counters.tls_handshakes.load(Ordering::Relaxed);
    assert!(
        handshakes > 0 || t.write_shut(SHARD, conn),
        "a connection stuck in its handshake outlived the timeout"
    );
    Some(Outcome {
        responses: t.service(SHARD).responses,
        handshakes,
        failures: counters.tls_failures.load(Ordering::Relaxed),
    })
}

/// A real handshake, then the payload as sealed application data (tampered with when asked).
fn sealed(t: &mut TestShards<Https>, conn: ConnId, input: &Input<'_>, pki: &Pki, tamper: bool) {
    let name = "localhost".try_into().unwrap();
    let tls = rustls::ClientConnection::new(pki.client.clone(), name).unwrap();
    let mut client = Client {
        tls,
        conn,
        plain: Vec::new(),
    };
    client.pump(t);
    assert!(!client.tls.is_handshaking(), "the handshake did not finish");
    client.tls.writer().write_all(input.payload).unwrap();
    let mut records = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut records).unwrap();
    }
    if tamper && !records.is_empty() {
        for (i, &b) in input.payload.iter().take(4).enumerate() {
            let at = (usize::from(b) * 7 + i * 131) % records.len();
            records[at] ^= 1 << (b % 8);
        }
    }
    let mut fed = 0;
    let cuts: Vec<usize> = {
        let pieces = input.pieces();
        let total: usize = pieces.iter().map(|p| p.len()).sum::<usize>().max(1);
        let mut at = 0;
        pieces
            .iter()
            .map(|p| {
                at += p.len();
                at * records.len() / total
            })
            .collect()
    };
    for cut in cuts {
        if cut > fed && t.closed(SHARD, conn).is_none() {
            t.write(SHARD, conn, &records[fed..cut]);
            fed = cut;
        }
        let back = t.read(SHARD, conn);
        if !tamper {
            client.take(&back);
        }
    }
    let requests = count_heads(input.payload);
    let responses = client
        .plain
        .windows(RESPONSE.len())
        .filter(|w| *w == RESPONSE)
        .count();
    assert!(
        responses <= requests,
        "{responses} responses to {requests} complete requests"
    );
    if tamper && records.len() > 16 {
        // A flipped bit in a record fails its authentication: the server says so and closes.
        let failures = t.counters(SHARD).tls_failures.load(Ordering::Relaxed);
        assert!(
            failures <= 1,
            "one connection, at most one failure counted: {failures}"
        );
    }
}

/// Request heads that a decoder with the default caps completes in `payload`, at most.
fn count_heads(payload: &[u8]) -> usize {
    let mut decoder = RequestDecoder::new(Limits::DEFAULT);
    let mut held = payload.to_vec();
    let mut heads = 0;
    loop {
        match decoder.decode(&held) {
            Ok(Decoded::Head { consumed, .. }) => {
                heads += 1;
                held.drain(..consumed);
            }
            Ok(Decoded::Body { consumed, .. }) => {
                held.drain(..consumed);
            }
            _ => return heads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/tls_http");
        std::fs::read(dir.join(name)).unwrap()
    }

    /// The seeds do what their names say, so the target reaches past the handshake.
    #[test]
    fn seeds_behave_as_named() {
        let sealed = run(&seed("sealed_requests")).unwrap();
        assert_eq!(
            (sealed.handshakes, sealed.responses, sealed.failures),
            (1, 2, 0)
        );
        let tampered = run(&seed("tampered_requests")).unwrap();
        assert_eq!(
            (tampered.handshakes, tampered.responses, tampered.failures),
            (1, 0, 1)
        );
        for garbage in ["short_record", "plain_http"] {
            let outcome = run(&seed(garbage)).unwrap();
            assert_eq!(
                (outcome.handshakes, outcome.responses, outcome.failures),
                (0, 0, 1),
                "{garbage}"
            );
        }
    }
}
