//! The one trait a protocol service implements to run on a shard.
//!
//! The engine calls these from the shard thread only. Within one loop iteration the order is:
//! `on_accept` / `on_recv` / `on_sent` / `on_close` as completions arrive, then `on_timer`,
//! then `on_mesh`, then `poll`. `on_close` is called exactly once for every accepted
//! connection, whoever closed it; after it the `ConnId` is dead and sends to it are dropped.

use crate::core::Ctx;
use crate::timer::TimerId;
use crate::udp::UdpId;
use crate::{ConnId, ListenerId, ShardId};

/// Why a connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The service asked for it (`close` or `close_after_flush`).
    Local,
    /// The peer closed its side (end of stream).
    PeerClosed,
    /// A socket error (reset, broken pipe); the errno is kept.
    Error(i32),
    /// The shard is shutting down and the grace period ran out.
    Shutdown,
}

/// A protocol service living on one shard.
pub trait Service: 'static {
    /// What this service's shards send each other over the mesh.
    type Msg: Send + 'static;

    /// A connection was accepted on `listener`. The service may send or close at once.
    fn on_accept(&mut self, cx: &mut Ctx<Self::Msg>, conn: ConnId, listener: ListenerId);

    /// Bytes arrived. `data` is a pooled receive buffer lent for this call only: consume it or
    /// copy the part that must be kept.
    fn on_recv(&mut self, cx: &mut Ctx<Self::Msg>, conn: ConnId, data: &[u8]);

    /// Everything queued on `conn` has been written.
    fn on_sent(&mut self, cx: &mut Ctx<Self::Msg>, conn: ConnId) {
        let _ = (cx, conn);
    }

    /// The connection is closed (exactly once per accepted connection).
    fn on_close(&mut self, cx: &mut Ctx<Self::Msg>, conn: ConnId, reason: CloseReason);

    /// A datagram arrived on UDP socket `socket` from `from`. `data` is lent for this call
    /// only.
    fn on_datagram(
        &mut self,
        cx: &mut Ctx<Self::Msg>,
        socket: UdpId,
        from: std::net::SocketAddr,
        data: &[u8],
    ) {
        let _ = (cx, socket, from, data);
    }

    /// A timer armed with `Ctx::timer_after` fired.
    fn on_timer(&mut self, cx: &mut Ctx<Self::Msg>, id: TimerId, key: u64) {
        let _ = (cx, id, key);
    }

    /// A message from another shard.
    fn on_mesh(&mut self, cx: &mut Ctx<Self::Msg>, from: ShardId, msg: Self::Msg) {
        let _ = (cx, from, msg);
    }

    /// A graceful drain began: listeners are closed; finish in-flight work and close
    /// connections as they become idle. Connections still open after
    /// `engine.shutdown_grace_ms` are closed with [`CloseReason::Shutdown`].
    fn on_drain(&mut self, cx: &mut Ctx<Self::Msg>) {
        let _ = cx;
    }

    /// Called once per loop iteration after completions, timers and mesh messages.
    fn poll(&mut self, cx: &mut Ctx<Self::Msg>) {
        let _ = cx;
    }
}
