//! What every shard's danmaku service is configured with, and its counters.

use crate::common::auth::TokenKey;
use crate::common::counters::LatencyHistogram;
use shardcast_danmaku::{RoomConfig, WordFilter};
use shardcast_engine::ShardId;
use shardcast_wire::VerifyLimits;
use std::sync::Arc;

/// Settings shared by every shard.
pub struct DanmakuSettings {
    /// The ledger thread's place on the mesh.
    pub ledger: ShardId,
    /// Gifts a shard may have waiting on the ledger (`ledger.in_flight_max_per_shard`).
    pub gifts_in_flight_max: usize,
    /// The relay thread's place on the mesh, when rooms span hosts (`state.redis`).
    pub relay: Option<ShardId>,
    /// The ledger and relay threads' counters (shown in `/metrics`).
    pub state_counters: Arc<crate::state::StateCounters>,
    pub ws_limits: shardcast_ws::Limits,
    pub verify: VerifyLimits,
    pub hello_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub ping_interval_ms: u64,
    pub send_queue_max_bytes: usize,
    pub stall_timeout_ms: u64,
    pub room: Arc<RoomConfig>,
    pub chat_rate_per_s: u32,
    pub chat_burst: u32,
    pub like_rate_per_s: u32,
    pub like_burst: u32,
    pub gift_rate_per_s: u32,
    pub gift_burst: u32,
    pub history_rate_per_s: u32,
    pub history_burst: u32,
    pub kick_ban_s: u64,
    pub text_max_chars: usize,
    pub history_request_max: u32,
    pub allow_anonymous: bool,
    pub anonymous_rooms: AnonymousRooms,
    pub heartbeat_ms: u32,
    pub filter: Option<WordFilter>,
    pub filter_mode: FilterMode,
    pub rooms_max_per_shard: usize,
    pub tokens: TokenKey,
    /// Every shard's counters, by shard.
    pub counters: Arc<Vec<DanmakuCounters>>,
    /// Every shard's home → socket latency histogram, by shard.
    pub latency: Arc<Vec<LatencyHistogram>>,
}

/// What the word filter does with a chat that matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    /// Replace the matched words with `*`.
    Mask,
    /// Refuse the chat (422).
    Reject,
}

/// Which rooms an anonymous viewer may bring into being (`danmaku.anonymous_rooms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnonymousRooms {
    /// Rooms named after a live stream.
    Live,
    /// Any room.
    Any,
    /// None: only rooms that exist.
    None,
}

crate::service_counters! {
    /// Per-shard danmaku counters.
    pub struct DanmakuCounters {
        /// WebSocket connections open on this shard.
        ws_connections: "gauge",
        /// WebSocket upgrades accepted.
        ws_upgrades: "counter",
        /// Connections closed for a protocol error (bad frames, oversize, bad UTF-8).
        ws_protocol_errors: "counter",
        /// Messages that failed FlatBuffers verification (closed with 1007).
        wire_invalid: "counter",
        /// Rooms whose home is this shard.
        rooms_home: "gauge",
        /// Rooms with members on this shard.
        rooms_local: "gauge",
        /// Hello messages received.
        in_hello: "counter",
        /// Chat messages received.
        in_chat: "counter",
        /// Like messages received.
        in_like: "counter",
        /// Gift messages received.
        in_gift: "counter",
        /// Heartbeat messages received.
        in_heartbeat: "counter",
        /// History requests received.
        in_history: "counter",
        /// Kick requests received.
        in_kick: "counter",
        /// Welcome messages sent.
        out_welcome: "counter",
        /// HistoryReply or Resync messages sent (joins with last_seq, History requests).
        out_history: "counter",
        /// Pong messages sent.
        out_pong: "counter",
        /// GiftAck messages sent.
        out_gift_ack: "counter",
        /// Requests refused with an Error message (auth, rate, size, filter, shed).
        out_errors: "counter",
        /// Chats refused by the per-connection rate limit.
        rate_limited: "counter",
        /// Chats masked by the word filter.
        filter_masked: "counter",
        /// Chats rejected by the word filter.
        filter_rejected: "counter",
        /// Batches cut by rooms whose home is this shard.
        batches: "counter",
        /// Events ordered by rooms whose home is this shard.
        events: "counter",
        /// Chats shed by room admission (normal and paid).
        shed: "counter",
        /// Frames queued on member connections (one per member per broadcast).
        deliveries: "counter",
        /// Broadcast frames dropped from slow viewers' queues.
        dropped: "counter",
        /// Slow viewers closed after ws.stall_timeout_ms over the queue cap.
        stalled_closed: "counter",
        /// Connections dropped because their close frame was not read within
        /// ws.stall_timeout_ms.
        close_timeouts: "counter",
        /// Viewers closed because no timer was free for them (the wheel is sized from the
        /// connection and room limits, so this stays 0 while they hold).
        timer_refusals: "counter",
        /// Viewers closed because their replies (pongs, errors, history) passed
        /// ws.send_queue_max_bytes: they ask and do not read.
        reply_overflows: "counter",
        /// WebSockets closed at once: their address held ws.max_connections_per_address.
        per_address_refused: "counter",
        /// Joins with last_seq answered from the history window.
        resume_hits: "counter",
        /// Joins or History requests answered with Resync.
        resume_misses: "counter",
        /// Gifts accepted.
        gifts: "counter",
        /// Gift retries recognised by idempotency key.
        gift_duplicates: "counter",
        /// Gifts answered 429 because their room took danmaku.room_gift_max_per_s already.
        gifts_room_busy: "counter",
        /// Gifts sent to the ledger (each is acknowledged or refused once it answers).
        gifts_submitted: "counter",
        /// Gifts the ledger refused for an insufficient balance (402).
        gifts_unpaid: "counter",
        /// Gifts the ledger could not write (503 store_unavailable; never acknowledged).
        gifts_store_failed: "counter",
        /// Gifts answered 503 ledger_busy: ledger.in_flight_max_per_shard gifts of this shard
        /// were waiting on the ledger already.
        gifts_ledger_busy: "counter",
        /// Connections kicked by an admin.
        kicked: "counter",
        /// Rooms homed here that span hosts (state.redis) and order their events here for
        /// now, because Redis is away: their chats reach this host's viewers only.
        rooms_degraded: "gauge",
        /// Batches of rooms across hosts applied here, as Redis numbered them.
        relay_batches: "counter",
        /// Batches of rooms across hosts that could not be published (Redis away) and were
        /// ordered here instead.
        relay_bounced: "counter",
        /// Times a room across hosts restarted its order from Redis's (after Redis lost the
        /// room, or after ordering alone while Redis was away); its viewers got Resync.
        relay_resyncs: "counter",
        /// Mesh messages this shard could not act on (a viewer's message for a room that is
        /// not homed here); each is logged at debug level. Always 0 unless there is a bug.
        mesh_errors: "counter",
    }
}
