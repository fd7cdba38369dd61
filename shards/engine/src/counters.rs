//! Per-shard counters: written by their shard only, read by whoever scrapes.
//!
//! Each shard owns one cache-line-aligned block. The owner updates with a relaxed load and
//! store (no locked instruction: there is a single writer); readers see values that are at
//! most one loop iteration old. A scrape merges the blocks of every shard.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident: $kind:literal,)*) => {
        /// The engine's counters for one shard.
        #[repr(align(128))]
        #[derive(Default, Debug)]
        pub struct ShardCounters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        impl ShardCounters {
            /// Every counter as `(name, kind, help, value)`; kind is "counter" or "gauge".
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
                vec![$((
                    stringify!($name),
                    $kind,
                    concat!($($doc),*),
                    self.$name.load(Ordering::Relaxed),
                ),)*]
            }
        }
    };
}

counters! {
    /// Connections currently open.
    connections_open: "gauge",
    /// Timers armed (as of the last timer run of each loop iteration).
    timers_armed: "gauge",
    /// Connections accepted.
    accepts: "counter",
    /// Accepted connections closed at once because the connection table was full.
    accepts_refused: "counter",
    /// Connections closed, for any reason.
    closes: "counter",
    /// Bytes received from peers.
    bytes_in: "counter",
    /// Bytes written to peers.
    bytes_out: "counter",
    /// Send operations issued.
    sends: "counter",
    /// Zero-copy send operations issued.
    sends_zerocopy: "counter",
    /// Zero-copy sends the kernel completed by copying (always so on loopback).
    sends_zerocopy_copied: "counter",
    /// Times the receive buffer ring ran dry (a multishot receive stopped with ENOBUFS).
    recv_buffer_exhausted: "counter",
    /// Mesh messages sent.
    mesh_sent: "counter",
    /// Mesh messages received.
    mesh_received: "counter",
    /// Mesh messages that found the ring full and waited in the overflow list.
    mesh_overflowed: "counter",
    /// Timers fired.
    timers_fired: "counter",
    /// Timers refused because the timer table was full.
    timers_refused: "counter",
    /// Shard loop iterations.
    loop_iterations: "counter",
    /// TLS handshakes completed.
    tls_handshakes: "counter",
    /// TLS connections that failed: a bad handshake, a record that did not decrypt, an
    /// alert, or plain text on a TLS port.
    tls_failures: "counter",
    /// TLS connections closed because their handshake took longer than its timeout.
    tls_handshake_timeouts: "counter",
    /// UDP datagrams received.
    udp_received: "counter",
    /// UDP datagrams received longer than the engine takes (dropped).
    udp_truncated: "counter",
    /// UDP datagrams sent.
    udp_sent: "counter",
    /// UDP datagrams dropped: the socket could not take them, or the outbound queue
    /// (engine.udp_out_max_bytes) was full.
    udp_dropped: "counter",
    /// Of the UDP datagrams sent, those sent in segmented messages (UDP_SEGMENT: a run to
    /// one destination in one send).
    udp_segmented: "counter",
}

impl ShardCounters {
    /// Adds `n` to a counter. Only the owning shard may call this.
    #[inline]
    pub fn bump(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets a gauge. Only the owning shard may call this.
    #[inline]
    pub fn set(counter: &AtomicU64, value: u64) {
        counter.store(value, Ordering::Relaxed);
    }
}
