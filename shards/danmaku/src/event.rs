//! Room events and the batches that carry them between shards.
//!
//! Events are built once on the home shard and then only shared: strings are `Arc<str>` and a
//! batch's events sit behind one `Arc<[RoomEvent]>`, so sending a batch to N shards costs N
//! reference counts, not N copies. Every type here is `Send + Sync`.

use std::sync::Arc;

use crate::RoomId;

/// Estimated encoded size of an `Event` table without its variable-length parts: the event table
/// and its vtable (seq, time, union tag and offset), the body table's vtable and header, and the
/// 4-byte offset in the batch's vector. FlatBuffers alignment makes the exact figure depend on
/// the neighbours; this errs on the large side.
pub const EVENT_OVERHEAD_BYTES: usize = 56;

/// Estimated encoded size of a `ServerMessage { Batch }` or `{ HistoryReply }` without its
/// events, plus the largest WebSocket frame header (10 bytes). Measured: up to 72 bytes with
/// one event (the first event's vtables are not shared, which [`EVENT_OVERHEAD_BYTES`] assumes);
/// the server's encoder tests check every size against this estimate.
pub const BATCH_OVERHEAD_BYTES: usize = 96;

/// How a bullet comment is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChatMode {
    /// Scrolls across the video (the default).
    #[default]
    Scroll,
    /// Pinned at the top.
    Top,
    /// Pinned at the bottom.
    Bottom,
}

/// One ordered room event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEvent {
    /// Position in the room's order: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// Wall-clock Unix milliseconds passed in by the caller when the home shard ordered it.
    pub time_ms: u64,
    /// What happened.
    pub body: EventBody,
}

/// The payload of a [`RoomEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// A bullet comment. `color` is `0xRRGGBB`.
    Chat {
        /// Sender's user name.
        user: Arc<str>,
        /// The (possibly masked) text.
        text: Arc<str>,
        /// `0xRRGGBB`.
        color: u32,
        /// How it is shown.
        mode: ChatMode,
    },
    /// Likes summed over one batching window.
    Like {
        /// The room's like total after this event.
        total: u64,
        /// Likes this event adds.
        added: u64,
    },
    /// A gift from the catalog.
    Gift {
        /// Sender's user name.
        user: Arc<str>,
        /// Catalog id.
        gift_id: u32,
        /// How many were sent at once.
        count: u32,
        /// Catalog value × count, in the catalog's unit.
        value: u64,
    },
    /// A room notice (a user kicked, the stream going live, …).
    System {
        /// The notice.
        text: Arc<str>,
    },
}

impl RoomEvent {
    /// Estimated size of this event once encoded in a batch, in bytes. Used for batch limits
    /// only; it is an estimate that errs on the large side, not the exact encoding.
    pub fn wire_size_bytes(&self) -> usize {
        EVENT_OVERHEAD_BYTES
            + match &self.body {
                // color (4) + mode (1, padded to 4).
                EventBody::Chat { user, text, .. } => {
                    string_size_bytes(user) + string_size_bytes(text) + 8
                }
                // total + added.
                EventBody::Like { .. } => 16,
                // gift_id + count + value.
                EventBody::Gift { user, .. } => string_size_bytes(user) + 16,
                EventBody::System { text } => string_size_bytes(text),
            }
    }
}

/// A FlatBuffers string: a 4-byte offset in the table, a 4-byte length, the bytes, a NUL, padded
/// to 4.
pub(crate) fn string_size_bytes(s: &str) -> usize {
    string_len_size_bytes(s.len())
}

/// [`string_size_bytes`] of a string of `len` bytes.
pub(crate) fn string_len_size_bytes(len: usize) -> usize {
    4 + (4 + len + 1).next_multiple_of(4)
}

/// Consecutive events cut by [`crate::Room::poll_batch`]: `events[i].seq == first_seq + i`.
///
/// Cloning is cheap (two reference counts); send one clone to each subscribed shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The room the events belong to.
    pub room: RoomId,
    /// Sequence number of `events[0]`.
    pub first_seq: u64,
    /// The events, never empty.
    pub events: Arc<[RoomEvent]>,
}

impl Batch {
    /// Sequence number of the last event.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64 - 1
    }

    /// Estimated encoded size of the batch, in bytes (see [`RoomEvent::wire_size_bytes`]).
    pub fn wire_size_bytes(&self) -> usize {
        BATCH_OVERHEAD_BYTES
            + self
                .events
                .iter()
                .map(RoomEvent::wire_size_bytes)
                .sum::<usize>()
    }
}

// Batches cross shards: they must stay shareable between threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Batch>();
    assert_send_sync::<RoomEvent>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_sizes_are_padded_to_four() {
        assert_eq!(string_size_bytes(""), 12);
        assert_eq!(string_size_bytes("abc"), 12);
        assert_eq!(string_size_bytes("abcd"), 16);
    }

    #[test]
    fn wire_size_grows_with_text() {
        let chat = |text: &str| RoomEvent {
            seq: 1,
            time_ms: 0,
            body: EventBody::Chat {
                user: Arc::from("u"),
                text: Arc::from(text),
                color: 0,
                mode: ChatMode::Scroll,
            },
        };
        assert!(chat("").wire_size_bytes() < chat("hello world").wire_size_bytes());
        assert_eq!(
            chat("abcdefgh").wire_size_bytes() - chat("abcd").wire_size_bytes(),
            4
        );
    }
}
