//! What danmaku sends between shards: viewer shard → a room's home shard, and back.
//!
//! A message names its room and, where an answer goes to one connection, that connection's id
//! on the sender's shard (the home hands it back untouched). Every message is small; frames
//! travel as shared `Bytes` (one encoded frame for every member on every shard).

use bytes::Bytes;
use shardcast_danmaku::{ChatMode, RoomId};
use shardcast_engine::ConnId;
use std::sync::Arc;
use std::time::Instant;

/// Largest danmaku message, in bytes (asserted below; the mesh ring's slot size follows the
/// largest message of any service, see `shard::msg`).
pub const DANMAKU_MSG_MAX_BYTES: usize = 56;
const _: () = assert!(std::mem::size_of::<DanmakuMsg>() <= DANMAKU_MSG_MAX_BYTES);

/// Danmaku messages between shards.
pub enum DanmakuMsg {
    /// Viewer shard → home: a connection joins.
    Join(Box<JoinMsg>),
    /// Viewer shard → home: the sender's member count for the room changed.
    Members { room: RoomId, members: u32 },
    /// Viewer shard → home: a chat that passed the viewer's checks.
    Chat(Box<ChatMsg>),
    /// Viewer shard → home: likes.
    Like { room: RoomId, count: u32 },
    /// Viewer shard → home: a gift.
    Gift(Box<GiftMsg>),
    /// Viewer shard → home: a History request.
    History {
        room: RoomId,
        conn: ConnId,
        from_seq: u64,
        limit: u32,
    },
    /// Viewer shard → home: an admin kicks `user` from the room.
    Kick {
        room: RoomId,
        user: Arc<str>,
        reason: Arc<str>,
    },
    /// Another service → home: a notice for the room (a host joined or left the stream's
    /// co-hosting stage). Dropped when the room is not open (nobody is in it).
    System { room: RoomId, text: Arc<str> },
    /// Home → viewer shard: the answer to Join.
    Joined(Box<JoinedMsg>),
    /// Home → viewer shard: one frame for one connection (a reply).
    Reply { conn: ConnId, frame: Bytes },
    /// Home → viewer shards: a frame for every member of the room.
    Broadcast(Box<BroadcastMsg>),
}

/// A connection joining a room; `members` is the sender's count for the room including it.
pub struct JoinMsg {
    pub room: RoomId,
    pub conn: ConnId,
    pub last_seq: u64,
    /// The epoch `last_seq` belongs to (`Hello.epoch`); empty: not checked.
    pub epoch: Arc<str>,
    pub members: u32,
    /// Who joins (a kicked user is refused until their ban ends).
    pub user: Arc<str>,
    /// Whether they showed a token (anonymous viewers may create only some rooms).
    pub identity: Identity,
}

/// A chat on its way home.
pub struct ChatMsg {
    pub room: RoomId,
    pub conn: ConnId,
    pub user: Arc<str>,
    pub text: Arc<str>,
    pub color: u32,
    pub mode: ChatMode,
    /// Chats at paid priority (a speaker's).
    pub priority: ChatPriority,
}

/// The admission priority a viewer's shard asks for (the home decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatPriority {
    Normal,
    Paid,
}

/// A gift on its way home.
pub struct GiftMsg {
    pub room: RoomId,
    pub conn: ConnId,
    pub user: Arc<str>,
    pub gift_id: u32,
    pub count: u32,
    pub key: Arc<str>,
}

/// The home's answer to a Join: `frames` follow the Welcome (a replay or a Resync);
/// `refused` carries an Error frame when the room could not be joined.
pub struct JoinedMsg {
    pub room: RoomId,
    pub conn: ConnId,
    pub seq: u64,
    /// The room's epoch, for the Welcome.
    pub epoch: Arc<str>,
    pub online: u64,
    pub frames: Vec<Bytes>,
    pub refused: Option<Refusal>,
}

/// How a viewer identified itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    Token,
}

/// Why a join was refused: the Error frame for the viewer and the close that follows it.
pub struct Refusal {
    pub frame: Bytes,
    pub close: shardcast_ws::CloseCode,
    pub reason: &'static str,
}

/// A frame for every member of a room on the receiving shard.
pub struct BroadcastMsg {
    pub room: RoomId,
    pub frame: Bytes,
    /// When the home cut it (for the delivery latency histogram).
    pub created: Instant,
    /// Close the members whose user is this, after sending the frame (a kick).
    pub kick_user: Option<Arc<str>>,
}

impl DanmakuMsg {
    /// The room a viewer → home message is about (`None` for home → viewer messages).
    pub fn home_room(&self) -> Option<&RoomId> {
        match self {
            DanmakuMsg::Join(join) => Some(&join.room),
            DanmakuMsg::Members { room, .. }
            | DanmakuMsg::Like { room, .. }
            | DanmakuMsg::History { room, .. }
            | DanmakuMsg::Kick { room, .. }
            | DanmakuMsg::System { room, .. } => Some(room),
            DanmakuMsg::Chat(chat) => Some(&chat.room),
            DanmakuMsg::Gift(gift) => Some(&gift.room),
            DanmakuMsg::Joined(_) | DanmakuMsg::Reply { .. } | DanmakuMsg::Broadcast(_) => None,
        }
    }
}
