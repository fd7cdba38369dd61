//! What shards ask of the ledger thread, and its answers.

use shardcast_danmaku::RoomId;
use shardcast_engine::{ConnId, ShardId};
use std::sync::Arc;

/// Largest state message, in bytes (asserted below).
pub const STATE_MSG_MAX_BYTES: usize = 16;
const _: () = assert!(std::mem::size_of::<StateRequest>() <= STATE_MSG_MAX_BYTES);
const _: () = assert!(std::mem::size_of::<StateReply>() <= STATE_MSG_MAX_BYTES);

/// Shard → ledger thread.
pub enum StateRequest {
    /// A room's home shard: make this gift durable.
    Gift(Box<GiftRequest>),
    /// An HTTP shard: an admin API call for one of its connections.
    Api(Box<ApiRequest>),
}

/// Ledger thread → shard.
pub enum StateReply {
    /// The gift's outcome, to the room's home shard that asked.
    Gift(Box<GiftDone>),
    /// The admin API's answer, to the HTTP shard that asked.
    Api(Box<ApiDone>),
}

/// An admin API call.
pub struct ApiRequest {
    pub conn: ConnId,
    pub call: ApiCall,
}

/// What the admin API asks of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiCall {
    /// `POST /api/v1/wallets/{user}/credit` `{amount, idempotency_key}`.
    Credit {
        user: String,
        amount: u64,
        key: String,
    },
    /// `GET /api/v1/wallets/{user}`.
    Wallet { user: String },
    /// `GET /api/v1/rooms/{room}/gifts?after=ID&limit=N`.
    Gifts {
        room: String,
        after: u64,
        limit: usize,
    },
    /// `GET /api/v1/rooms/{room}/leaderboard?limit=N`.
    Leaderboard { room: String, limit: usize },
}

/// The ledger's answer to an [`ApiRequest`]: an HTTP status and a JSON body.
pub struct ApiDone {
    pub conn: ConnId,
    pub status: u16,
    pub json: String,
}

/// A gift the room admitted, on its way to the ledger. Everything the home needs to order
/// it and answer the sender comes back in [`GiftDone`].
pub struct GiftRequest {
    pub room: RoomId,
    /// The sender's shard and connection there.
    pub viewer_shard: ShardId,
    pub conn: ConnId,
    pub user: Arc<str>,
    pub gift_id: u32,
    pub count: u32,
    /// Catalog value × count.
    pub value: u64,
    pub key: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// The ledger's answer to a [`GiftRequest`].
pub struct GiftDone {
    pub request: GiftRequest,
    /// The transfer's outcome, or why the ledger could not write (nothing was written).
    pub outcome: Result<shardcast_ledger::Outcome, String>,
}

/// Home shard → relay thread (rooms across hosts, through Redis): what one room needs.
pub struct RelayRequest {
    pub room: RoomId,
    pub ask: RelayAsk,
}

/// What a home shard asks of the relay thread about one room.
pub enum RelayAsk {
    /// Subscribe to the room (if not yet) and answer [`RelayNews::Synced`] with its order in
    /// Redis. Sent when the room is made on this host, and again after a gap.
    Sync,
    /// Unsubscribe: the room retired on this host.
    Forget,
    /// Publish an outbound batch (unnumbered: Redis numbers it). Answered by the batch coming
    /// back numbered ([`RelayNews::Batch`]), or [`RelayNews::Bounced`] when it could not be
    /// published.
    Publish(Arc<[shardcast_danmaku::RoomEvent]>),
    /// This host's member count; answered with [`RelayNews::Online`], every host's sum.
    Online(u64),
}

/// Whether the relay thread reaches Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Up,
    Down,
}

/// Relay thread → shards.
pub enum RelayReply {
    /// News of one room, to its home shard on this host.
    Room(Box<RoomNews>),
    /// Redis went away (`up` false: every relayed room orders its events here, degraded) or
    /// came back (rooms resubscribe and get [`RelayNews::Synced`]). To every shard.
    Status(Reach),
}

/// News of one room from Redis.
pub struct RoomNews {
    pub room: RoomId,
    pub news: RelayNews,
}

/// What the relay thread tells a room's home.
pub enum RelayNews {
    /// The room's order in Redis now: its epoch, the last seq and like total, and the batches
    /// Redis still holds (oldest first; they may start past what the home has, and they may
    /// overlap what it has).
    Synced {
        epoch: Arc<str>,
        seq: u64,
        likes: u64,
        batches: Vec<RelayedBatch>,
    },
    /// A batch some host published.
    Batch(RelayedBatch),
    /// A batch this host could not publish: order it here (the room is degraded).
    Bounced(Arc<[shardcast_danmaku::RoomEvent]>),
    /// Members on every host.
    Online(u64),
}

/// A batch as Redis numbered it.
pub struct RelayedBatch {
    pub epoch: Arc<str>,
    pub first_seq: u64,
    /// The room's like total after it.
    pub likes: u64,
    pub events: Vec<shardcast_danmaku::RoomEvent>,
}
