//! TLS on a shard's connections: rustls driven as a state machine inside the engine.
//!
//! A listener with a [`TlsAcceptor`] wraps each connection it accepts in a rustls
//! `ServerConnection`. Ciphertext comes from the backend's receive buffers and leaves through
//! the connection's send queue as on any connection; the service sees only plaintext, through
//! the same `on_recv`, and what it sends waits as plaintext (still droppable, still counted in
//! [`crate::Ctx::queued_bytes`]) until it is sealed into records. No thread and no async
//! runtime: all of it runs on the shard, in the loop's order.
//!
//! Memory per TLS connection, beyond the plaintext the service queued (which a plain
//! connection holds too):
//! - rustls's connection state and the buffers it keeps between records: measured at about
//!   8 KiB for an idle connection (4,000 idle HTTPS keep-alive connections, after one request
//!   each, grew the server's resident memory by 9.6 KB each, against 1.3 KB over plain HTTP);
//! - received ciphertext not yet decrypted: at most one record, 16 KiB + 325 B, since every
//!   read is processed before the next;
//! - records sealed and not yet written: at most [`TlsLimits::seal_ahead_bytes`] plus one seal
//!   step ([`SEAL_STEP_BYTES`] of plaintext and its record overhead);
//! - inside rustls, plaintext written before the handshake ends, at most
//!   [`TLS_BUFFER_LIMIT_BYTES`].
//!
//! With the defaults that is under 220 KiB for a connection with a full backlog, and about
//! 8 KiB for an idle one: 20,000 idle TLS connections on a shard hold about 160 MiB.
//! A handshake that has not finished within [`TlsLimits::handshake_timeout_ms`] closes the
//! connection.

use crate::sendq::SendQueue;
use bytes::Bytes;
use std::io::{Read, Write};
use std::sync::{Arc, RwLock};

/// Plaintext sealed in one step before the records are taken out of rustls.
pub const SEAL_STEP_BYTES: usize = 64 * 1024;

/// rustls's own buffer limit (plaintext written before the handshake completes, and records
/// not yet taken out), per connection.
pub const TLS_BUFFER_LIMIT_BYTES: usize = 64 * 1024;

/// The limits of a TLS listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsLimits {
    /// A connection whose handshake has not completed this long after it was accepted is
    /// closed.
    pub handshake_timeout_ms: u64,
    /// Records are sealed from the queued plaintext only while fewer than this many bytes of
    /// records wait to be written: the rest stays plaintext, which a slow reader's sender can
    /// still shed.
    pub seal_ahead_bytes: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            handshake_timeout_ms: 10_000,
            seal_ahead_bytes: 64 * 1024,
        }
    }
}

/// What a TLS listener accepts with: its rustls configuration, which can be replaced while it
/// runs (a certificate reloaded on SIGHUP: new connections use the new one, open ones keep
/// theirs), and its limits.
#[derive(Debug)]
pub struct TlsAcceptor {
    config: RwLock<Arc<rustls::ServerConfig>>,
    limits: TlsLimits,
}

impl TlsAcceptor {
    pub fn new(config: Arc<rustls::ServerConfig>, limits: TlsLimits) -> Self {
        TlsAcceptor {
            config: RwLock::new(config),
            limits,
        }
    }

    /// Replaces the configuration for connections accepted from now on.
    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn limits(&self) -> TlsLimits {
        self.limits
    }

    /// A server connection in its handshake.
    pub(crate) fn accept(&self) -> Result<TlsConn, rustls::Error> {
        let mut conn = rustls::ServerConnection::new(self.current())?;
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT_BYTES));
        Ok(TlsConn {
            conn,
            plain: SendQueue::default(),
            seal_ahead_bytes: self.limits.seal_ahead_bytes,
            close_notify_sent: false,
        })
    }
}

/// How reading ciphertext went.
#[derive(Debug)]
pub(crate) enum Opened {
    /// Plaintext (possibly none yet) was read; the connection goes on.
    Fine,
    /// The peer sent `close_notify`: no more plaintext will come.
    PeerClosed,
    /// A TLS error: the alert is queued; the connection must close once it is written.
    Failed(rustls::Error),
}

/// One connection's TLS state.
pub(crate) struct TlsConn {
    conn: rustls::ServerConnection,
    /// What the service sent, not yet sealed.
    pub plain: SendQueue,
    seal_ahead_bytes: usize,
    close_notify_sent: bool,
}

impl TlsConn {
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Takes ciphertext in and appends the plaintext it carries to `plain`. Records that
    /// rustls must answer with (handshake messages, alerts) are queued on `wire` by the next
    /// [`TlsConn::seal`].
    pub fn open(&mut self, mut data: &[u8], plain: &mut Vec<u8>) -> Opened {
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(_) => {}
                Err(e) => {
                    return Opened::Failed(rustls::Error::General(format!("reading records: {e}")));
                }
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(error) => return Opened::Failed(error),
            };
            let ready = state.plaintext_bytes_to_read();
            if ready > 0 {
                let at = plain.len();
                plain.resize(at + ready, 0);
                match self.conn.reader().read(&mut plain[at..]) {
                    Ok(n) => plain.truncate(at + n),
                    Err(_) => plain.truncate(at),
                }
            }
            if state.peer_has_closed() {
                return Opened::PeerClosed;
            }
        }
        Opened::Fine
    }

    /// Seals queued plaintext into records on `wire` while fewer than the seal-ahead bytes
    /// wait there, and takes out whatever else rustls has to send (handshake messages, alerts,
    /// `close_notify` when `closing`). Plaintext waits until the handshake is done.
    pub fn seal(&mut self, wire: &mut SendQueue, closing: bool) {
        loop {
            let mut fed = 0;
            if !self.conn.is_handshaking() {
                while wire.len_bytes() < self.seal_ahead_bytes && fed < SEAL_STEP_BYTES {
                    let Some(front) = self.plain.front() else {
                        break;
                    };
                    let take = front.len().min(SEAL_STEP_BYTES - fed);
                    let n = self.conn.writer().write(&front[..take]).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    self.plain.advance(n);
                    fed += n;
                }
                if closing && self.plain.is_empty() && !self.close_notify_sent {
                    self.conn.send_close_notify();
                    self.close_notify_sent = true;
                }
            }
            let records = self.take_records();
            let took = !records.is_empty();
            wire.push(records);
            if fed == 0 && !took {
                return;
            }
        }
    }

    /// Everything rustls has ready to send, as one chunk (empty when nothing).
    fn take_records(&mut self) -> Bytes {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Bytes::from(out)
    }

    /// True when nothing is left to seal or take out.
    pub fn is_drained(&self) -> bool {
        self.plain.is_empty() && !self.conn.wants_write()
    }
}
