//! shardcast's engine: a completion-based, thread-per-core reactor on io_uring, with an epoll
//! backend behind the same service API.
//!
//! One shard runs per core, pinned. Each owns its io_uring, one SO_REUSEPORT listener per
//! port, every connection it accepted, a hashed timer wheel and its end of the mesh (bounded
//! lock-free rings to every other thread). Protocols plug in through [`Service`]; the engine
//! knows none of them. See `ARCHITECTURE.md` ("The engine") for why each io_uring feature is
//! used: accept into direct descriptors (no RLIMIT_NOFILE bound; single-shot ops, a fixed
//! number per listener, so each connection's peer address is kept for `Ctx::peer_ip`),
//! multishot receive from a provided buffer ring (an idle connection holds no receive buffer),
//! one gathered send in flight per connection with SEND_ZC for large chunks, and direct
//! close.
//!
//! `unsafe` is confined to this crate's backends, `sys` and `heap`, each block argued in a
//! `// SAFETY:` comment.

#![deny(unsafe_op_in_unsafe_fn)]

mod core;
mod core_tls;
pub mod counters;
mod epoll;
pub mod heap;
pub mod mesh;
mod runtime;
pub mod sendq;
pub mod service;
pub mod sys;
pub mod testing;
pub mod timer;
pub mod tls;
mod udp;
mod uring;

pub use crate::core::Ctx;
pub use counters::ShardCounters;
pub use runtime::{
    launch, IoChoice, ListenerSpec, Runtime, RuntimeInfo, ShardInfo, WorkerEndpoint, WorkerInbox,
};
/// rustls, as the engine uses it (a TLS listener's configuration is a `rustls::ServerConfig`).
pub use rustls;
pub use sendq::Shed;
pub use service::{CloseReason, Service};
pub use timer::TimerId;
pub use tls::{TlsAcceptor, TlsLimits};
pub use udp::{UdpId, UdpSpec, DATAGRAM_MAX_BYTES};

/// Index of a shard (0-based, dense).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl ShardId {
    /// The index as a `usize`, for tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a listener in the order given to [`launch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(pub u16);

/// A connection on one shard: its slot in the connection table and the slot's generation, so
/// an id kept past the connection's close never reaches the slot's next occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u16,
}

impl ConnId {
    /// The slot index, below `Ctx::capacity()`: services index their own per-connection
    /// tables with it.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

/// Engine limits and tunables. Every field is sized at shard start; nothing grows past it.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Submission queue entries per ring (the completion queue is 4× this).
    pub ring_entries: u32,
    /// Size of one provided receive buffer.
    pub recv_buffer_bytes: u32,
    /// Receive buffers per shard (a power of two ≤ 32768). Memory: this × `recv_buffer_bytes`.
    pub recv_buffers: u16,
    /// Chunks at or over this size are sent with SEND_ZC (io_uring only).
    pub zerocopy_min_bytes: usize,
    /// Connection table size per shard. Memory: about 200 bytes per slot (the engine's entry
    /// of 96, peer address included, the io_uring backend's 72, one timer's 32) plus the
    /// kernel's socket buffers for open connections.
    pub max_connections: u32,
    /// Timer wheel tick.
    pub timer_tick_ms: u64,
    /// Timer wheel slots.
    pub timer_slots: usize,
    /// Timers per connection slot. The wheel holds `max_connections × this + other_timers`
    /// (32 bytes each, allocated at start), so a service that keeps within both never sees
    /// `timer_after` refuse.
    pub timers_per_connection: usize,
    /// Timers not tied to a connection that the service may hold at once (its rooms,
    /// streams and sweeps, each bounded by its own limit).
    pub other_timers: usize,
    /// Messages each mesh ring holds before the sender's overflow list takes over.
    pub mesh_ring_capacity: usize,
    /// Completions handled per loop iteration before other work gets a turn.
    pub max_completions_per_tick: usize,
    /// Mesh messages handled per loop iteration.
    pub max_mesh_messages_per_tick: usize,
    /// Timers fired per loop iteration.
    pub max_timers_per_tick: usize,
    /// Listen backlog per listener.
    pub listen_backlog: i32,
    /// SO_SNDBUF set on the listeners and so inherited by accepted sockets; 0 leaves the
    /// kernel's autotuning.
    pub socket_send_buffer_bytes: u32,
    /// How long a drain waits for in-flight work before closing what is left.
    pub shutdown_grace_ms: u64,
    /// Iovecs gathered into one send.
    pub max_iovecs_per_send: usize,
    /// After a close-after-flush the write side is shut down and input read and dropped for
    /// up to this long, so the peer reads the last response instead of a reset. 0 closes at
    /// once.
    pub linger_ms: u64,
    /// io_uring features not to use even where the kernel has them (names in
    /// [`IO_URING_DISABLE_NAMES`]); "io_uring" refuses io_uring altogether.
    pub io_uring_disable: Vec<String>,
    /// Mesh endpoints for threads the caller runs itself (transcode workers), after the
    /// shards and the control thread; take them with [`Runtime::take_workers`].
    pub worker_endpoints: usize,
    /// UDP sockets every shard binds (see [`UdpSpec`]), by [`UdpId`].
    pub udp: Vec<UdpSpec>,
    /// Bytes of datagrams a shard may queue in one loop iteration; past it
    /// [`Ctx::send_datagram`] refuses (counted in `udp_dropped`). Allocated as used, reused.
    pub udp_out_max_bytes: usize,
    /// Receive and send buffer asked of the kernel for each UDP socket.
    pub udp_socket_buffer_bytes: usize,
}

/// What `EngineConfig::io_uring_disable` may name.
pub const IO_URING_DISABLE_NAMES: [&str; 6] = uring::DISABLE_NAMES;

impl EngineConfig {
    /// Total timer capacity.
    pub fn timers_max(&self) -> usize {
        self.max_connections as usize * self.timers_per_connection + self.other_timers
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ring_entries: 1024,
            recv_buffer_bytes: 16 * 1024,
            recv_buffers: 1024,
            zerocopy_min_bytes: 16 * 1024,
            max_connections: 20_000,
            timer_tick_ms: 10,
            timer_slots: 1024,
            timers_per_connection: 1,
            other_timers: 1024,
            mesh_ring_capacity: 4096,
            max_completions_per_tick: 4096,
            max_mesh_messages_per_tick: 4096,
            max_timers_per_tick: 4096,
            listen_backlog: 4096,
            socket_send_buffer_bytes: 0,
            shutdown_grace_ms: 10_000,
            max_iovecs_per_send: 64,
            linger_ms: 2000,
            io_uring_disable: Vec::new(),
            worker_endpoints: 0,
            udp: Vec::new(),
            udp_out_max_bytes: 4 << 20,
            udp_socket_buffer_bytes: 4 << 20,
        }
    }
}
