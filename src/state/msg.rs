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
