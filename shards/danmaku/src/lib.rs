//! Sans-io room logic of the danmaku (bullet comment) system.
//!
//! Viewers connect to any shard. Their messages are checked on their own shard (size, the
//! per-connection [`ViewerGate`], the [`WordFilter`]) and forwarded to the room's *home shard*,
//! which owns the room's [`Room`]: it orders events (per-room `seq` 1, 2, 3, …), applies room
//! admission (a per-room rate cap with priorities gift > paid > normal), sums likes, keeps the
//! history window and cuts [`Batch`]es. The home shard sends each batch to every shard that has
//! members in the room; those shards encode it once and queue the same bytes on every member.
//!
//! Nothing here does I/O, reads a clock or spawns a thread: the caller passes `now_ms` (its
//! monotonic clock, milliseconds) and `wall_ms` (Unix milliseconds, stamped on events) into every
//! call, and asks [`Room::poll_timeout`] when it must call back. The same code therefore runs on
//! io_uring, on epoll, and in the deterministic scenario tests under `tests/`.
//!
//! ```
//! use std::sync::Arc;
//! use shardcast_danmaku::{Admission, ChatIn, ChatMode, Priority, Replay, Room, RoomConfig, RoomId};
//!
//! let config = Arc::new(RoomConfig::default());
//! config.validate()?; // once, at startup
//! let mut room = Room::new(RoomId::new("lobby")?, config, 0);
//! let chat = ChatIn {
//!     user: Arc::from("alice"),
//!     text: Arc::from("hello"),
//!     color: 0xFFFFFF,
//!     mode: ChatMode::Scroll,
//!     priority: Priority::Normal,
//! };
//! assert_eq!(room.handle_chat(10, 1_700_000_000_010, chat), Admission::Accepted { seq: 1 });
//! // Home-shard loop: poll until nothing is due, then sleep until `poll_timeout`. A quiet
//! // room's first event goes out at once; later ones wait for the `batch_ms` window.
//! let batch = room.poll_batch(10).expect("leading edge");
//! assert_eq!(batch.first_seq, 1);
//! assert_eq!(room.poll_timeout(), None, "no members yet: no stats due");
//! // A fresh viewer on shard 3 (its shard reports 1 member): no replay, live from seq 2.
//! room.handle_members(3, 1);
//! let join = room.join(61, 0);
//! assert_eq!((join.seq, join.replay), (1, Replay::None));
//! assert_eq!(room.subscribers(), &[3]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where things live:
//! - [`event`]: [`RoomEvent`], [`EventBody`], [`Batch`] and the encoded-size estimate.
//! - [`room`]: [`Room`], its [`RoomConfig`], inputs, outcomes and counters.
//! - [`bucket`]: [`TokenBucket`], integer milli-token arithmetic.
//! - [`filter`]: [`WordFilter`] over a normalized form of the text.
//! - [`viewer`]: [`ViewerGate`], the per-connection rate limits used on the viewer's shard.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bucket;
pub mod event;
pub mod filter;
mod history;
pub mod relay;
pub mod room;
pub mod viewer;

pub use bucket::TokenBucket;
pub use event::{Batch, ChatMode, EventBody, RoomEvent};
pub use filter::{FilterBuildError, FilterMode, FilterVerdict, WordFilter};
pub use room::{
    Admission, ChatIn, ConfigError, Field, GiftAdmission, GiftCatalog, GiftIn, GiftOutcome,
    HistoryOutcome, InputError, JoinOutcome, Priority, Relayed, Replay, Room, RoomConfig,
    RoomCounters, RoomStats,
};
pub use viewer::{ViewerGate, ViewerLimits};

use std::fmt;
use std::sync::Arc;

/// Longest room name accepted by [`RoomId::new`], in bytes.
pub const ROOM_ID_MAX_BYTES: usize = 128;

/// The name of a room, as sent in `Hello.room`. Cheap to clone (one reference count) and to send
/// across shards.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

impl RoomId {
    /// A room id from its name. Fails when the name is empty or longer than
    /// [`ROOM_ID_MAX_BYTES`].
    pub fn new(name: &str) -> Result<Self, InputError> {
        if name.is_empty() || name.len() > ROOM_ID_MAX_BYTES {
            return Err(InputError::Length {
                field: Field::Room,
                min_bytes: 1,
                max_bytes: ROOM_ID_MAX_BYTES,
                seen_bytes: name.len(),
            });
        }
        Ok(RoomId(Arc::from(name)))
    }

    /// The room's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({:?})", &*self.0)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
