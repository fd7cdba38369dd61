//! The TLS half of [`Core`]: wrapping an accepted connection, decrypting what arrives, and
//! the handshake clock. The state machine itself is [`crate::tls::TlsConn`].

use crate::core::Core;
use crate::counters::ShardCounters;
use crate::service::{CloseReason, Service};
use crate::tls::{Opened, TlsAcceptor};
use crate::ConnId;

impl<S: Service> Core<S> {
    /// Wraps a new connection in TLS and starts its handshake clock.
    pub(crate) fn start_tls(&mut self, slot: u32, acceptor: &TlsAcceptor) {
        let deadline = self.cx.now_ms() + acceptor.limits().handshake_timeout_ms;
        let entry = &mut self.cx.conns[slot as usize];
        match acceptor.accept() {
            Ok(tls) => {
                entry.tls = Some(Box::new(tls));
                let generation = entry.generation;
                self.handshakes.push_back((deadline, slot, generation));
            }
            Err(error) => {
                // A configuration rustls refuses: nothing this connection can be served with.
                log::error!("TLS connection refused: {error}");
                ShardCounters::bump(&self.cx.counters.tls_failures, 1);
                self.cx.list_close(slot, CloseReason::Local);
            }
        }
    }

    /// Decrypts what arrived on a TLS connection, hands the plaintext to the service, and
    /// lists the connection for a flush (handshake messages or an alert may wait to go out).
    pub(crate) fn received_tls(&mut self, slot: u32, conn: ConnId, data: &[u8]) {
        let mut plain = std::mem::take(&mut self.tls_plain);
        plain.clear();
        let entry = &mut self.cx.conns[slot as usize];
        let tls = entry
            .tls
            .as_mut()
            .expect("received_tls is for TLS connections");
        let was_handshaking = tls.is_handshaking();
        let opened = tls.open(data, &mut plain);
        let handshake_done = was_handshaking && !tls.is_handshaking();
        if let Opened::Failed(_) = opened {
            // Nothing more goes out but the alert.
            tls.plain.clear();
        }
        // Handshake messages or an alert may be waiting to go out.
        self.cx.mark_dirty(slot);
        let counters = &self.cx.counters;
        if handshake_done {
            ShardCounters::bump(&counters.tls_handshakes, 1);
        }
        if !plain.is_empty() {
            self.service.on_recv(&mut self.cx, conn, &plain);
        }
        self.tls_plain = plain;
        match opened {
            Opened::Fine => {}
            Opened::PeerClosed => self.peer_eof(slot),
            Opened::Failed(error) => {
                ShardCounters::bump(&self.cx.counters.tls_failures, 1);
                log::debug!("TLS connection failed: {error}");
                let entry = &mut self.cx.conns[slot as usize];
                entry.close_after_flush = true;
            }
        }
    }

    /// Closes connections whose TLS handshake ran out of time.
    pub(crate) fn expire_handshakes(&mut self) {
        while let Some(&(deadline, slot, generation)) = self.handshakes.front() {
            if deadline > self.cx.now_ms() {
                break;
            }
            self.handshakes.pop_front();
            let entry = &self.cx.conns[slot as usize];
            // A connection that failed is already closing after its alert.
            let stuck =
                entry.tls.as_ref().is_some_and(|t| t.is_handshaking()) && !entry.close_after_flush;
            if entry.generation == generation && entry.is_open_slot() && stuck {
                ShardCounters::bump(&self.cx.counters.tls_handshake_timeouts, 1);
                self.cx.list_close(slot, CloseReason::Local);
            }
        }
    }
}
