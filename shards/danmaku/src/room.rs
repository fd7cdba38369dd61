//! The home-shard state of one room: ordering, admission, like aggregation, batching, the
//! history window, membership and stats.
//!
//! # Call order
//!
//! The home shard owns one [`Room`] per active room and drives it from its loop:
//!
//! 1. Inputs as they arrive, each with the loop's monotonic `now_ms`:
//!    [`Room::handle_chat`], [`Room::handle_like`], [`Room::handle_gift`],
//!    [`Room::handle_system`], [`Room::handle_members`] (absolute member counts reported by
//!    shards), and the queries [`Room::join`] (a viewer's `Hello`, forwarded by its shard) and
//!    [`Room::history`].
//! 2. Then, every loop iteration, [`Room::poll_batch`] until it returns `None`, sending each
//!    batch to every shard in [`Room::subscribers`] *as they are when the batch is returned*
//!    (before handling further inputs), and [`Room::poll_stats`] (broadcast the same way).
//! 3. [`Room::poll_timeout`] is the time by which step 2 must run again even if nothing arrives
//!    (`None`: not until the next input).
//!
//! # The join/batch FIFO contract
//!
//! [`Room::join`] replays only **flushed** events (those already returned by
//! [`Room::poll_batch`]) and answers with `seq`, the last flushed seq; events still pending go
//! out in a later batch. Before calling it, the caller records the viewer's shard as a member
//! ([`Room::handle_members`] with that shard's count including the joining viewer; the join
//! message should carry it), so every later batch is sent there. The caller must send the join
//! answer to the viewer's shard on the same FIFO channel as those later batches, before any of
//! them: the viewer then sees the replay followed by `seq + 1, seq + 2, …` with no gap and no
//! duplicate. Batches returned before the join were either sent to that shard already (and are
//! covered by the replay, not delivered to the new viewer) or not sent there at all. On the
//! viewer's shard, the viewer enters the room's local member list when the join answer is
//! processed, not when its `Hello` is read, so the batches queued ahead of the answer are not
//! delivered to it a second time.
//!
//! [`Room::history`] answers explicit History requests from the same window; it may overlap
//! batches the viewer already received, and events carry their `seq` to sort that out.
//!
//! # Memory
//!
//! Per room, with `E` = `size_of::<RoomEvent>()` + 8 bytes (64 bytes on 64-bit targets) and
//! strings counted at their length plus a 16-byte `Arc` header:
//! - history: at most `history_max` × (`E` + `user_max_bytes` + `text_max_bytes` + 32) bytes;
//!   with the defaults 1000 × 672 ≈ 656 KiB. Strings are shared with batches still in flight.
//! - gift keys: at most `idempotency_window` × (`idempotency_key_max_bytes` + about 120) bytes
//!   (a key, two `Arc` handles in the FIFO and the map, the map's slot); with the defaults
//!   4096 × 184 ≈ 736 KiB. The user name is shared with the gift event.
//! - pending events: what arrives between two calls to [`Room::poll_batch`]. Chats are bounded
//!   by the inbound cap (`inbound_burst` + `inbound_max_per_s` × elapsed), gifts by the gift
//!   cap (`gift_burst` + `gift_max_per_s` × elapsed); system notices are never shed, so the
//!   caller bounds them by polling every loop iteration, whose work is capped.
//! - members: 6 bytes per shard with members.
//!
//! Nothing is preallocated: a server holds many rooms and most are quiet. Everything grows on
//! demand up to its cap and stays at what it grew to until the room is dropped.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::bucket::TokenBucket;
use crate::event::{string_len_size_bytes, Batch, ChatMode, EventBody, RoomEvent};
use crate::event::{BATCH_OVERHEAD_BYTES, EVENT_OVERHEAD_BYTES};
use crate::history::{History, Lookup};
use crate::RoomId;

/// Heat points of one chat.
pub const HEAT_CHAT_POINTS: u64 = 10;
/// Heat points of one like.
pub const HEAT_LIKE_POINTS: u64 = 1;
/// Heat points of one gift, before its value (in catalog units) is added.
pub const HEAT_GIFT_BASE_POINTS: u64 = 10;

/// Configuration shared by the rooms of a server (wrap it in an `Arc` once).
#[derive(Clone, Debug)]
pub struct RoomConfig {
    /// Most flushed events kept for joins and History requests. Worst-case memory: see the
    /// module documentation (about 672 bytes per event with the default string caps).
    pub history_max: usize,
    /// Longest an event stays in the history window, seconds (measured from its acceptance).
    pub history_s: u64,
    /// Most events replayed on a join, `1..=history_max`. A viewer further behind is answered
    /// [`Replay::Resync`]: past this many events a fresh view is cheaper than a catch-up, and
    /// History remains available to a client that wants the older part.
    pub replay_max: usize,
    /// Most events in one History answer, `1..=history_max`; a request's `limit` is capped to
    /// it (and `limit == 0` means this cap).
    pub history_request_max: usize,
    /// Largest History answer or join replay, by estimated encoded size
    /// ([`BATCH_OVERHEAD_BYTES`] + the events' [`RoomEvent::wire_size_bytes`]). A History
    /// answer stops before it (with `more`); a gap whose replay would pass it answers
    /// [`Replay::Resync`]. Set it below the viewer's send-queue cap, so that a reply always
    /// fits the queue of a viewer that reads. At least [`Self::largest_event_bytes`] plus the
    /// overhead.
    pub reply_max_bytes: usize,
    /// Batching window: at most one batch per `batch_ms`; an event after a quiet window goes
    /// out at once, later ones wait for the window to close (see `Room::poll_batch`).
    pub batch_ms: u64,
    /// Largest batch, by estimated encoded size ([`Batch::wire_size_bytes`]). Pending events
    /// that reach it are flushed at once. Must hold the largest possible event.
    pub batch_max_bytes: usize,
    /// Interval between [`RoomStats`], milliseconds.
    pub stats_ms: u64,
    /// Per-room inbound cap: chats, gifts and system notices per second, all priorities.
    pub inbound_max_per_s: u32,
    /// Burst of the inbound cap, events.
    pub inbound_burst: u32,
    /// Gifts per second the room takes; a gift past it (and past `gift_burst`) is answered
    /// [`GiftOutcome::Busy`], not ordered, and the sender may retry it with the same key.
    /// Gifts draw on the inbound budget ahead of chats, so this bounds how much of it gifts
    /// can take from chats: keep it well under `inbound_max_per_s`.
    pub gift_max_per_s: u32,
    /// Burst of the gift cap, gifts.
    pub gift_burst: u32,
    /// Share of `inbound_burst` (percent, rounded up) that normal chats may not use: only paid
    /// chats (and gifts) can take the last tokens, so normal chats are shed first.
    pub paid_reserve_percent: u8,
    /// Most likes counted per batching window (per Like event); the excess is dropped and
    /// counted in [`RoomCounters::likes_capped`].
    pub likes_max_per_window: u64,
    /// Gift id → value of one gift.
    pub gift_catalog: GiftCatalog,
    /// Largest `count` in one gift message.
    pub gift_count_max: u32,
    /// Gift idempotency keys remembered per room (FIFO). Worst-case memory: about
    /// (`idempotency_key_max_bytes` + 120) bytes each.
    pub idempotency_window: usize,
    /// Longest user name, bytes.
    pub user_max_bytes: usize,
    /// Longest chat or system text, bytes.
    pub text_max_bytes: usize,
    /// Longest gift idempotency key, bytes.
    pub idempotency_key_max_bytes: usize,
    /// Half-life of the room's heat, seconds.
    pub heat_half_life_s: u64,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            history_max: 1000,
            history_s: 300,
            replay_max: 1000,
            history_request_max: 200,
            reply_max_bytes: 512 * 1024,
            batch_ms: 50,
            batch_max_bytes: 16 * 1024,
            stats_ms: 1000,
            inbound_max_per_s: 2000,
            inbound_burst: 2000,
            gift_max_per_s: 200,
            gift_burst: 200,
            paid_reserve_percent: 20,
            likes_max_per_window: 100_000,
            gift_catalog: GiftCatalog::default(),
            gift_count_max: 9999,
            idempotency_window: 4096,
            user_max_bytes: 64,
            text_max_bytes: 512,
            idempotency_key_max_bytes: 64,
            heat_half_life_s: 60,
        }
    }
}

/// A [`RoomConfig`] value out of its allowed range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field outside `min..=max`.
    #[error("{field} is {seen}, allowed {min}..={max}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// The configured value.
        seen: u64,
    },
}

impl RoomConfig {
    /// Checks every field against its range (including that `batch_max_bytes` holds the
    /// largest possible event).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let history_max = self.history_max as u64;
        check("history_max", history_max, 1, 1_000_000)?;
        check("history_s", self.history_s, 1, 86_400)?;
        check("replay_max", self.replay_max as u64, 1, history_max)?;
        check(
            "history_request_max",
            self.history_request_max as u64,
            1,
            history_max,
        )?;
        check("batch_ms", self.batch_ms, 1, 10_000)?;
        check("stats_ms", self.stats_ms, 1, 3_600_000)?;
        check(
            "inbound_max_per_s",
            self.inbound_max_per_s.into(),
            1,
            10_000_000,
        )?;
        check("inbound_burst", self.inbound_burst.into(), 1, 10_000_000)?;
        check("gift_max_per_s", self.gift_max_per_s.into(), 1, 10_000_000)?;
        check("gift_burst", self.gift_burst.into(), 1, 10_000_000)?;
        check(
            "paid_reserve_percent",
            self.paid_reserve_percent.into(),
            0,
            100,
        )?;
        check(
            "likes_max_per_window",
            self.likes_max_per_window,
            1,
            u64::MAX,
        )?;
        check(
            "gift_count_max",
            self.gift_count_max.into(),
            1,
            u32::MAX.into(),
        )?;
        check(
            "idempotency_window",
            self.idempotency_window as u64,
            1,
            1_000_000,
        )?;
        check("user_max_bytes", self.user_max_bytes as u64, 1, 1024)?;
        check("text_max_bytes", self.text_max_bytes as u64, 1, 64 * 1024)?;
        check(
            "idempotency_key_max_bytes",
            self.idempotency_key_max_bytes as u64,
            1,
            1024,
        )?;
        check("heat_half_life_s", self.heat_half_life_s, 1, 86_400)?;
        let min_batch = (BATCH_OVERHEAD_BYTES + self.largest_event_bytes()) as u64;
        check(
            "batch_max_bytes",
            self.batch_max_bytes as u64,
            min_batch,
            16 * 1024 * 1024,
        )?;
        check(
            "reply_max_bytes",
            self.reply_max_bytes as u64,
            min_batch,
            u64::from(u32::MAX),
        )?;
        Ok(())
    }

    /// The largest [`RoomEvent::wire_size_bytes`] these limits allow (a chat with the longest
    /// user name and text).
    pub fn largest_event_bytes(&self) -> usize {
        let user = string_len_size_bytes(self.user_max_bytes.min(64 * 1024));
        let text = string_len_size_bytes(self.text_max_bytes.min(64 * 1024));
        EVENT_OVERHEAD_BYTES + user + text + 8
    }

    /// Tokens of the inbound burst kept for paid chats.
    fn paid_reserve_tokens(&self) -> u32 {
        let reserve =
            (u64::from(self.inbound_burst) * u64::from(self.paid_reserve_percent)).div_ceil(100);
        // At most `inbound_burst`, a u32.
        reserve as u32
    }
}

fn check(field: &'static str, seen: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&seen) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            min,
            max,
            seen,
        })
    }
}

/// Gift id → value of one gift, in the catalog's unit. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct GiftCatalog(Arc<HashMap<u32, u64>>);

impl GiftCatalog {
    /// A catalog from `(gift_id, value)` pairs; a repeated id keeps the last value.
    pub fn new(gifts: impl IntoIterator<Item = (u32, u64)>) -> Self {
        GiftCatalog(Arc::new(gifts.into_iter().collect()))
    }

    /// Value of one gift `gift_id`, or `None` when it is not in the catalog.
    pub fn value(&self, gift_id: u32) -> Option<u64> {
        self.0.get(&gift_id).copied()
    }

    /// Number of gifts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Admission priority of a chat. Gifts are above both and are never shed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    /// An ordinary chat: shed first.
    #[default]
    Normal,
    /// A paid chat (super chat): shed only when the whole room budget is gone.
    Paid,
}

/// A chat forwarded by the viewer's shard (already size-checked, rate-limited and filtered
/// there).
#[derive(Clone, Debug)]
pub struct ChatIn {
    /// Sender's user name.
    pub user: Arc<str>,
    /// The text to show.
    pub text: Arc<str>,
    /// `0xRRGGBB`.
    pub color: u32,
    /// How it is shown.
    pub mode: ChatMode,
    /// Admission priority.
    pub priority: Priority,
}

/// A gift forwarded by the viewer's shard.
#[derive(Clone, Debug)]
pub struct GiftIn {
    /// Sender's user name.
    pub user: Arc<str>,
    /// Catalog id.
    pub gift_id: u32,
    /// How many at once, `1..=gift_count_max`.
    pub count: u32,
    /// Client-chosen key: the same key from the same user is applied once.
    pub idempotency_key: Arc<str>,
}

/// Which input field an [`InputError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// A room name.
    Room,
    /// A user name.
    User,
    /// A chat or system text.
    Text,
    /// A gift idempotency key.
    IdempotencyKey,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Room => "room",
            Field::User => "user",
            Field::Text => "text",
            Field::IdempotencyKey => "idempotency key",
        })
    }
}

/// An input the room refuses regardless of load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A string outside its allowed length.
    #[error("{field} is {seen_bytes} bytes, allowed {min_bytes}..={max_bytes}")]
    Length {
        /// The field.
        field: Field,
        /// Shortest allowed, bytes.
        min_bytes: usize,
        /// Longest allowed, bytes.
        max_bytes: usize,
        /// Length seen, bytes.
        seen_bytes: usize,
    },
    /// A gift count of 0 or above `gift_count_max`.
    #[error("gift count is {seen}, allowed 1..={max}")]
    GiftCount {
        /// `gift_count_max`.
        max: u32,
        /// Count seen.
        seen: u32,
    },
}

/// The answer to a chat or system notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Ordered as `seq`; it goes out in a later batch.
    Accepted {
        /// The event's sequence number.
        seq: u64,
    },
    /// Dropped by the room's inbound cap (counted in [`RoomCounters`]).
    Shed,
    /// Refused: the input breaks a limit.
    Rejected(InputError),
}

/// The answer to a gift.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiftOutcome {
    /// Ordered as `seq`, worth `value` (catalog value × count).
    Accepted {
        /// The event's sequence number.
        seq: u64,
        /// Catalog value × count (saturating).
        value: u64,
    },
    /// The same user already sent this idempotency key; it was ordered as `seq`.
    Duplicate {
        /// Sequence number of the original gift.
        seq: u64,
    },
    /// `gift_id` is not in the catalog.
    UnknownGift,
    /// The room took `gift_max_per_s` gifts already: this one was not ordered; the sender
    /// may retry it (with the same idempotency key) a moment later.
    Busy,
    /// Refused: the input breaks a limit.
    Rejected(InputError),
}

/// What [`Room::admit_gift`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiftAdmission {
    /// Make it durable, then [`Room::order_gift`] it.
    Submit {
        /// Catalog value × count.
        value: u64,
    },
    /// The room took `gift_max_per_s` gifts already; see [`GiftOutcome::Busy`].
    Busy,
    /// `gift_id` is not in the catalog.
    UnknownGift,
    /// Refused: the input breaks a limit.
    Rejected(InputError),
}

/// What a joining viewer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The last flushed seq: live batches after this answer continue from `seq + 1`.
    pub seq: u64,
    /// What to send before them.
    pub replay: Replay,
}

/// The replay part of a [`JoinOutcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// `last_seq == 0`: a fresh viewer gets no replay.
    None,
    /// Every missed event: seqs `last_seq + 1 ..= seq`, consecutive (none when the viewer is up
    /// to date).
    Events(Vec<RoomEvent>),
    /// `last_seq + 1` is older than the window, the gap is longer than `replay_max` (or its
    /// events larger than `reply_max_bytes`), or
    /// `last_seq` is newer than anything flushed (a client from a previous server life): drop
    /// the view and continue from `seq` (History can still fetch what the window holds).
    Resync,
}

/// The answer to a History request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryOutcome {
    /// Consecutive events from `first_seq`, possibly none.
    Events {
        /// The requested `from_seq` (at least 1).
        first_seq: u64,
        /// At most the capped limit of events.
        events: Vec<RoomEvent>,
        /// True when later flushed events exist beyond the limit.
        more: bool,
    },
    /// `from_seq` is older than the window (or beyond anything flushed): continue from `seq`.
    Resync {
        /// The last flushed seq.
        seq: u64,
    },
}

/// Periodic room figures broadcast to viewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomStats {
    /// Members over all shards.
    pub online: u64,
    /// Like total (including likes whose Like event is still pending).
    pub likes: u64,
    /// See [`Room::heat`].
    pub heat: u64,
}

/// Running counts of what the room did with its inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoomCounters {
    /// Normal chats ordered.
    pub normal_accepted: u64,
    /// Normal chats shed by the inbound cap.
    pub normal_shed: u64,
    /// Paid chats ordered.
    pub paid_accepted: u64,
    /// Paid chats shed by the inbound cap.
    pub paid_shed: u64,
    /// Gifts ordered.
    pub gifts_accepted: u64,
    /// Gifts answered with [`GiftOutcome::Duplicate`].
    pub gifts_duplicate: u64,
    /// Gifts answered with [`GiftOutcome::Busy`] (past `gift_max_per_s`).
    pub gifts_busy: u64,
    /// Gifts answered with [`GiftOutcome::UnknownGift`].
    pub gifts_unknown: u64,
    /// System notices ordered.
    pub system_accepted: u64,
    /// Likes added to the total.
    pub likes_counted: u64,
    /// Likes dropped by `likes_max_per_window`.
    pub likes_capped: u64,
    /// Inputs refused with an [`InputError`].
    pub rejected: u64,
    /// Batches returned by [`Room::poll_batch`].
    pub batches: u64,
    /// Joins answered.
    pub joins: u64,
    /// Joins and History requests answered with a resync.
    pub resyncs: u64,
    /// Relayed batches that started past the next seq ([`Relayed::Gap`]).
    pub relay_gaps: u64,
}

/// What [`Room::apply_relayed`] did with a batch numbered elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relayed {
    /// The events not applied before, numbered: send them to the members.
    Batch(Batch),
    /// Nothing new (every event was applied before).
    Stale,
    /// The batch starts past `expected`, the next seq: events in between were missed. Fetch
    /// them, or [`Room::reset_relayed`] and tell the members to Resync.
    Gap {
        /// The first seq missing.
        expected: u64,
    },
}

/// Heat points of an event (see [`Room::heat`]).
fn heat_points(body: &EventBody) -> u64 {
    match body {
        EventBody::Chat { .. } => HEAT_CHAT_POINTS,
        EventBody::Like { added, .. } => added.saturating_mul(HEAT_LIKE_POINTS),
        EventBody::Gift { value, .. } => HEAT_GIFT_BASE_POINTS.saturating_add(*value),
        EventBody::System { .. } => 0,
    }
}

/// The home-shard state of one room. See the module documentation for the call order, the
/// join/batch FIFO contract and the memory bounds.
///
/// `Send` so a room can be built anywhere, but it lives on its home shard and is never shared.
#[derive(Debug)]
pub struct Room {
    id: RoomId,
    config: Arc<RoomConfig>,
    /// Highest `now_ms` seen; inputs from an earlier time are treated as happening now.
    clock_ms: u64,
    /// Latest seq assigned.
    seq: u64,
    /// Latest seq returned in a batch.
    flushed_seq: u64,
    /// Ordered but not yet flushed, oldest first; seqs `flushed_seq + 1 ..= seq`.
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// Index in `pending` of this window's Like event, which later likes update in place.
    pending_like: Option<usize>,
    likes_total: u64,
    history: History,
    inbound: TokenBucket,
    /// The room's gift cap (`gift_max_per_s`).
    gifts_in: TokenBucket,
    paid_reserve_tokens: u32,
    gift_keys: GiftKeys,
    /// Shards with members, ascending, and each one's member count (> 0) at the same index.
    shards: Vec<u16>,
    shard_members: Vec<u32>,
    heat: Heat,
    next_stats_ms: u64,
    counters: RoomCounters,
    /// When the last batch was cut; `None` before the first.
    last_batch_ms: Option<u64>,
    /// Ordered elsewhere (rooms across hosts): see [`Room::new_relayed`].
    relayed: bool,
    /// Members on other hosts, as last reported ([`Room::set_online_elsewhere`]).
    online_elsewhere: u64,
}

#[derive(Debug)]
struct Pending {
    /// Monotonic time the room accepted the event.
    at_ms: u64,
    event: RoomEvent,
}

impl Room {
    /// A room with no events and no members; stats are due every `stats_ms` from `now_ms` while
    /// it has members.
    ///
    /// # Panics
    ///
    /// When `config` is invalid: check it once with [`RoomConfig::validate`] when the server
    /// starts.
    pub fn new(id: RoomId, config: impl Into<Arc<RoomConfig>>, now_ms: u64) -> Self {
        let config = config.into();
        if let Err(error) = config.validate() {
            panic!("invalid room configuration (validate it at startup): {error}");
        }
        Room {
            id,
            clock_ms: now_ms,
            seq: 0,
            flushed_seq: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_like: None,
            likes_total: 0,
            history: History::new(config.history_max, config.history_s * 1000),
            inbound: TokenBucket::new(config.inbound_max_per_s, config.inbound_burst),
            gifts_in: TokenBucket::new(config.gift_max_per_s, config.gift_burst),
            paid_reserve_tokens: config.paid_reserve_tokens(),
            gift_keys: GiftKeys::new(config.idempotency_window),
            shards: Vec::new(),
            shard_members: Vec::new(),
            heat: Heat::new(config.heat_half_life_s * 1000, now_ms),
            next_stats_ms: now_ms + config.stats_ms,
            counters: RoomCounters::default(),
            last_batch_ms: None,
            relayed: false,
            online_elsewhere: 0,
            config,
        }
    }

    /// A room whose order is kept elsewhere: by Redis, for a room with members on several
    /// hosts. Admission, like summing and batching work as in [`Room::new`], but
    /// [`Room::poll_batch`] returns *outbound* batches, unnumbered (`first_seq` 0, every
    /// event's seq 0), for the caller to publish; they enter neither the history nor the
    /// order. The order comes back through [`Room::apply_relayed`] (every host's batches, this
    /// one's included, numbered by Redis), which fills the history that joins and History
    /// requests read. Heat counts relayed events, so every host agrees on it.
    pub fn new_relayed(id: RoomId, config: impl Into<Arc<RoomConfig>>, now_ms: u64) -> Self {
        Room {
            relayed: true,
            ..Room::new(id, config, now_ms)
        }
    }

    /// Applies a batch numbered elsewhere (see [`Room::new_relayed`]): `events` are
    /// `first_seq, first_seq + 1, …` (their own seqs are ignored), and `likes_total` is the
    /// room's like total after them (it replaces the total of the batch's Like event, which
    /// counted only this host's likes). Events already applied are skipped; a batch that
    /// starts past the next seq is a gap, and nothing of it is applied.
    pub fn apply_relayed(
        &mut self,
        now_ms: u64,
        first_seq: u64,
        events: Vec<RoomEvent>,
        likes_total: u64,
    ) -> Relayed {
        debug_assert!(self.relayed, "apply_relayed on a room ordered here");
        let now_ms = self.advance(now_ms);
        let next = self.flushed_seq + 1;
        let Some(last) = (first_seq + events.len() as u64).checked_sub(1) else {
            return Relayed::Stale;
        };
        if events.is_empty() || last < next || first_seq == 0 {
            return Relayed::Stale;
        }
        if first_seq > next {
            self.counters.relay_gaps += 1;
            return Relayed::Gap { expected: next };
        }
        let skip = (next - first_seq) as usize;
        let mut applied = Vec::with_capacity(events.len() - skip);
        for (offset, mut event) in events.into_iter().skip(skip).enumerate() {
            event.seq = next + offset as u64;
            if let EventBody::Like { total, .. } = &mut event.body {
                *total = likes_total;
            }
            self.heat.add(now_ms, heat_points(&event.body));
            self.history.push(now_ms, event.clone());
            applied.push(event);
        }
        self.seq = last;
        self.flushed_seq = last;
        self.likes_total = likes_total;
        Relayed::Batch(Batch {
            room: self.id.clone(),
            first_seq: next,
            events: applied.into(),
        })
    }

    /// Restarts a relayed room's order at `seq` (after Redis lost the room's stream, or after
    /// this host ordered events alone while Redis was away): the history is dropped, and the
    /// next relayed batch must start at `seq + 1`. The caller tells the members to Resync.
    pub fn reset_relayed(&mut self, seq: u64, likes_total: u64) {
        debug_assert!(self.relayed, "reset_relayed on a room ordered here");
        self.history.clear();
        self.seq = seq;
        self.flushed_seq = seq;
        self.likes_total = likes_total;
    }

    /// Sets how many members the room has on other hosts; stats count them in
    /// ([`Room::online_everywhere`]).
    pub fn set_online_elsewhere(&mut self, members: u64) {
        self.online_elsewhere = members;
    }

    /// Members here and on other hosts.
    pub fn online_everywhere(&self) -> u64 {
        self.online() + self.online_elsewhere
    }

    /// Whether the room is ordered elsewhere ([`Room::new_relayed`]).
    pub fn is_relayed(&self) -> bool {
        self.relayed
    }

    /// Orders a chat unless the inbound cap sheds it. Normal chats may use the budget only while
    /// the paid reserve remains; paid chats may use all of it.
    pub fn handle_chat(&mut self, now_ms: u64, wall_ms: u64, chat: ChatIn) -> Admission {
        let now_ms = self.advance(now_ms);
        if let Err(error) = self
            .check_length(Field::User, &chat.user, self.config.user_max_bytes)
            .and_then(|()| self.check_length(Field::Text, &chat.text, self.config.text_max_bytes))
        {
            self.counters.rejected += 1;
            return Admission::Rejected(error);
        }
        let admitted = match chat.priority {
            Priority::Normal => self
                .inbound
                .try_take_keeping(now_ms, 1, self.paid_reserve_tokens),
            Priority::Paid => self.inbound.try_take(now_ms, 1),
        };
        match (chat.priority, admitted) {
            (Priority::Normal, false) => self.counters.normal_shed += 1,
            (Priority::Paid, false) => self.counters.paid_shed += 1,
            (Priority::Normal, true) => self.counters.normal_accepted += 1,
            (Priority::Paid, true) => self.counters.paid_accepted += 1,
        }
        if !admitted {
            return Admission::Shed;
        }
        self.add_heat(now_ms, HEAT_CHAT_POINTS);
        let seq = self.push_event(
            now_ms,
            wall_ms,
            EventBody::Chat {
                user: chat.user,
                text: chat.text,
                color: chat.color,
                mode: chat.mode,
            },
        );
        Admission::Accepted { seq }
    }

    /// Adds `count` likes to the room total and returns how many were counted (fewer when the
    /// window's `likes_max_per_window` is reached). Likes are never shed by the inbound cap.
    ///
    /// The first like of a batching window orders one Like event (stamped `wall_ms`); later likes
    /// of the same window update that event in place, so each batch carries at most one Like
    /// event, with the total at flush time and everything added since the previous one.
    pub fn handle_like(&mut self, now_ms: u64, wall_ms: u64, count: u32) -> u64 {
        let now_ms = self.advance(now_ms);
        let window_added = match self.pending_like {
            Some(index) => match self.pending[index].event.body {
                EventBody::Like { added, .. } => added,
                _ => unreachable!("pending_like points at a Like event"),
            },
            None => 0,
        };
        let room_left = self.config.likes_max_per_window - window_added;
        let counted = u64::from(count).min(room_left);
        self.counters.likes_capped += u64::from(count) - counted;
        if counted == 0 {
            return 0;
        }
        self.counters.likes_counted += counted;
        self.likes_total += counted;
        self.add_heat(now_ms, counted * HEAT_LIKE_POINTS);
        let total = self.likes_total;
        match self.pending_like {
            Some(index) => {
                self.pending[index].event.body = EventBody::Like {
                    total,
                    added: window_added + counted,
                };
            }
            None => {
                self.push_event(
                    now_ms,
                    wall_ms,
                    EventBody::Like {
                        total,
                        added: counted,
                    },
                );
                self.pending_like = Some(self.pending.len() - 1);
            }
        }
        counted
    }

    /// Admits a gift and orders it at once: [`Room::admit_gift`] then [`Room::order_gift`],
    /// for a room whose gifts need no ledger (tests and tools). A key the same user already
    /// used within the idempotency window answers [`GiftOutcome::Duplicate`] with the original
    /// seq and changes nothing.
    pub fn handle_gift(&mut self, now_ms: u64, wall_ms: u64, gift: GiftIn) -> GiftOutcome {
        if let Some(seq) = self.gift_seq(&gift.user, &gift.idempotency_key) {
            self.counters.gifts_duplicate += 1;
            return GiftOutcome::Duplicate { seq };
        }
        match self.admit_gift(now_ms, &gift) {
            GiftAdmission::Submit { value } => {
                let seq = self.order_gift(now_ms, wall_ms, gift, value);
                GiftOutcome::Accepted { seq, value }
            }
            GiftAdmission::Busy => GiftOutcome::Busy,
            GiftAdmission::UnknownGift => GiftOutcome::UnknownGift,
            GiftAdmission::Rejected(error) => GiftOutcome::Rejected(error),
        }
    }

    /// Checks a gift and prices it. Gifts are never shed; they draw on the inbound budget when
    /// tokens are left, so chats yield to them, up to `gift_max_per_s`: past it a gift is
    /// answered [`GiftAdmission::Busy`]. A gift answered [`GiftAdmission::Submit`] is not
    /// ordered yet: it must be made durable first (the ledger debits the sender, and answers
    /// a (user, key) it has seen before with its first result), then ordered with
    /// [`Room::order_gift`].
    pub fn admit_gift(&mut self, now_ms: u64, gift: &GiftIn) -> GiftAdmission {
        let now_ms = self.advance(now_ms);
        if let Err(error) = self.check_gift(gift) {
            self.counters.rejected += 1;
            return GiftAdmission::Rejected(error);
        }
        let Some(unit_value) = self.config.gift_catalog.value(gift.gift_id) else {
            self.counters.gifts_unknown += 1;
            return GiftAdmission::UnknownGift;
        };
        if !self.gifts_in.try_take(now_ms, 1) {
            self.counters.gifts_busy += 1;
            return GiftAdmission::Busy;
        }
        GiftAdmission::Submit {
            value: unit_value.saturating_mul(u64::from(gift.count)),
        }
    }

    /// Orders a gift that is durable (admitted by [`Room::admit_gift`] at `value`), and
    /// returns its seq. Its key is remembered for [`Room::gift_seq`].
    pub fn order_gift(&mut self, now_ms: u64, wall_ms: u64, gift: GiftIn, value: u64) -> u64 {
        let now_ms = self.advance(now_ms);
        self.inbound.take_up_to(now_ms, 1);
        let key = GiftKey {
            user: gift.user.clone(),
            key: gift.idempotency_key,
        };
        let seq = self.push_event(
            now_ms,
            wall_ms,
            EventBody::Gift {
                user: gift.user,
                gift_id: gift.gift_id,
                count: gift.count,
                value,
            },
        );
        self.gift_keys.insert(key, seq);
        self.counters.gifts_accepted += 1;
        self.add_heat(now_ms, HEAT_GIFT_BASE_POINTS.saturating_add(value));
        seq
    }

    /// The seq of the gift `user` sent with `key`, while the idempotency window remembers it.
    pub fn gift_seq(&self, user: &Arc<str>, key: &Arc<str>) -> Option<u64> {
        self.gift_keys.get(&GiftKey {
            user: user.clone(),
            key: key.clone(),
        })
    }

    /// Orders a room notice. Never shed (it draws on the budget like a gift).
    pub fn handle_system(&mut self, now_ms: u64, wall_ms: u64, text: Arc<str>) -> Admission {
        let now_ms = self.advance(now_ms);
        if let Err(error) = self.check_length(Field::Text, &text, self.config.text_max_bytes) {
            self.counters.rejected += 1;
            return Admission::Rejected(error);
        }
        self.inbound.take_up_to(now_ms, 1);
        self.counters.system_accepted += 1;
        let seq = self.push_event(now_ms, wall_ms, EventBody::System { text });
        Admission::Accepted { seq }
    }

    /// Sets how many members `shard` has in this room (its absolute count, as it reports it).
    /// A shard with 0 members stops receiving batches.
    pub fn handle_members(&mut self, shard: u16, count: u32) {
        match (self.shards.binary_search(&shard), count) {
            (Ok(index), 0) => {
                self.shards.remove(index);
                self.shard_members.remove(index);
            }
            (Ok(index), count) => self.shard_members[index] = count,
            (Err(_), 0) => {}
            (Err(index), count) => {
                self.shards.insert(index, shard);
                self.shard_members.insert(index, count);
            }
        }
        debug_assert_eq!(self.shards.len(), self.shard_members.len());
    }

    /// A viewer joins, having seen everything up to `last_seq` (0: nothing). Answers from
    /// flushed events only, judging age at `now_ms`. The viewer's shard must already count it
    /// ([`Room::handle_members`]); see the FIFO contract in the module documentation.
    pub fn join(&mut self, now_ms: u64, last_seq: u64) -> JoinOutcome {
        let now_ms = self.advance(now_ms);
        debug_assert!(
            !self.shards.is_empty(),
            "record the joining viewer's shard with handle_members before join"
        );
        self.counters.joins += 1;
        let seq = self.flushed_seq;
        let replay = if last_seq == 0 {
            Replay::None
        } else if last_seq > seq || seq - last_seq > self.config.replay_max as u64 {
            Replay::Resync
        } else {
            let (limit, max_bytes) = (self.config.replay_max, self.reply_budget_bytes());
            match self
                .history
                .lookup(now_ms, last_seq + 1, seq, limit, max_bytes)
            {
                // The gap fits in replay_max events, but not in reply_max_bytes.
                Lookup::Events { more: true, .. } => Replay::Resync,
                Lookup::Events { events, .. } => Replay::Events(events),
                Lookup::TooOld => Replay::Resync,
            }
        };
        if replay == Replay::Resync {
            self.counters.resyncs += 1;
        }
        JoinOutcome { seq, replay }
    }

    /// What the events of one reply may take: `reply_max_bytes` less the message's overhead.
    fn reply_budget_bytes(&self) -> usize {
        self.config
            .reply_max_bytes
            .saturating_sub(BATCH_OVERHEAD_BYTES)
    }

    /// Answers a History request: flushed events with seq ≥ `from_seq` (0 counts as 1), at most
    /// `limit` (0 or anything above `history_request_max` means `history_request_max`) and at
    /// most `reply_max_bytes` of them (`more` says the answer stopped short).
    /// `from_seq` beyond the last flushed seq + 1, or older than the window, answers Resync.
    pub fn history(&self, now_ms: u64, from_seq: u64, limit: u32) -> HistoryOutcome {
        let now_ms = now_ms.max(self.clock_ms);
        let newest = self.flushed_seq;
        let from_seq = from_seq.max(1);
        let cap = self.config.history_request_max;
        let limit = match usize::try_from(limit) {
            Ok(0) | Err(_) => cap,
            Ok(limit) => limit.min(cap),
        };
        if from_seq > newest + 1 {
            return HistoryOutcome::Resync { seq: newest };
        }
        match self
            .history
            .lookup(now_ms, from_seq, newest, limit, self.reply_budget_bytes())
        {
            Lookup::Events { events, more } => HistoryOutcome::Events {
                first_seq: from_seq,
                events,
                more,
            },
            Lookup::TooOld => HistoryOutcome::Resync { seq: newest },
        }
    }

    /// The next batch. Batches go out at most once per `batch_ms` window, on the leading edge:
    /// an event in a room that has not cut a batch for `batch_ms` goes out at once, and events
    /// arriving within `batch_ms` of the last batch wait for the window to close — so a quiet
    /// room adds no delay, a busy one adds at most `batch_ms`, and the fan-out stays at one
    /// batch per window. Pending events that reach `batch_max_bytes` go out at once. A batch never exceeds `batch_max_bytes`;
    /// events that do not fit stay pending, so call this until it returns `None`. A returned
    /// batch is already in the history window.
    pub fn poll_batch(&mut self, now_ms: u64) -> Option<Batch> {
        let now_ms = self.advance(now_ms);
        let first = self.pending.first()?;
        if !self.is_full() && now_ms < self.batch_due_ms(first.at_ms) {
            return None;
        }
        self.last_batch_ms = Some(now_ms);
        let mut bytes = BATCH_OVERHEAD_BYTES;
        let mut take = 0;
        for pending in &self.pending {
            let size = pending.event.wire_size_bytes();
            if take > 0 && bytes + size > self.config.batch_max_bytes {
                break;
            }
            bytes += size;
            take += 1;
        }
        debug_assert!(take > 0);
        debug_assert!(bytes <= self.config.batch_max_bytes);
        self.pending_bytes -= bytes - BATCH_OVERHEAD_BYTES;
        self.pending_like = match self.pending_like {
            Some(index) if index >= take => Some(index - take),
            _ => None,
        };
        self.counters.batches += 1;
        if self.relayed {
            // Outbound: Redis numbers it, and it comes back through apply_relayed.
            let events: Vec<RoomEvent> = self.pending.drain(..take).map(|p| p.event).collect();
            return Some(Batch {
                room: self.id.clone(),
                first_seq: 0,
                events: events.into(),
            });
        }
        let first_seq = self.flushed_seq + 1;
        let mut events = Vec::with_capacity(take);
        for (offset, pending) in self.pending.drain(..take).enumerate() {
            assert_eq!(pending.event.seq, first_seq + offset as u64, "batch seqs");
            self.history.push(pending.at_ms, pending.event.clone());
            events.push(pending.event);
        }
        self.flushed_seq += take as u64;
        debug_assert!(self
            .pending
            .first()
            .is_none_or(|p| p.event.seq == self.flushed_seq + 1));
        Some(Batch {
            room: self.id.clone(),
            first_seq,
            events: events.into(),
        })
    }

    /// Room stats, every `stats_ms` (the first at creation + `stats_ms`) while the room has
    /// members; with none there is nobody to tell, and stats due meanwhile come out as soon as a
    /// shard reports members.
    ///
    /// Stats that are due ride with the next batch: call this right after [`Room::poll_batch`]
    /// and they come out when a batch was cut at `now_ms`, so both reach each viewer in one
    /// write. A room with no batch for half a `stats_ms` after they are due sends them alone.
    /// Every stats message is a fan-out to every member; a separate one could hold up the next
    /// chat behind it in a large room.
    ///
    /// The schedule stays on its grid (due at creation + k × `stats_ms`) however late stats ride;
    /// after a call later than the next due time, the next is due `stats_ms` later. Missed
    /// intervals are not made up.
    pub fn poll_stats(&mut self, now_ms: u64) -> Option<RoomStats> {
        let now_ms = self.advance(now_ms);
        let rides_with_batch = self.last_batch_ms == Some(now_ms);
        if now_ms < self.next_stats_ms
            || self.shards.is_empty()
            || (!rides_with_batch && now_ms < self.stats_alone_ms())
        {
            return None;
        }
        self.next_stats_ms += self.config.stats_ms;
        if self.next_stats_ms <= now_ms {
            self.next_stats_ms = now_ms + self.config.stats_ms;
        }
        self.heat.decay_to(now_ms);
        Some(RoomStats {
            online: self.online_everywhere(),
            likes: self.likes_total,
            heat: self.heat(),
        })
    }

    /// When due stats that found no batch to ride with go out alone.
    fn stats_alone_ms(&self) -> u64 {
        self.next_stats_ms + self.config.stats_ms / 2
    }

    /// The time by which [`Room::poll_batch`] / [`Room::poll_stats`] must be called again: the
    /// earlier of the batch deadline (while events are pending) and the time stats go out
    /// alone (while the room has members). A time at or before now means at once (pending
    /// events already fill a batch, or stats are overdue). `None`: nothing is due until the
    /// next input, so an idle room with no members needs no timer.
    pub fn poll_timeout(&self) -> Option<u64> {
        let batch_deadline_ms = self.pending.first().map(|first| {
            if self.is_full() {
                first.at_ms
            } else {
                self.batch_due_ms(first.at_ms)
            }
        });
        let stats_deadline_ms = (!self.shards.is_empty()).then(|| self.stats_alone_ms());
        match (batch_deadline_ms, stats_deadline_ms) {
            (Some(batch), Some(stats)) => Some(batch.min(stats)),
            (batch, stats) => batch.or(stats),
        }
    }

    /// When pending events whose first arrived at `first_at_ms` are due: at once unless a
    /// batch was cut within the last `batch_ms`, else when that window closes.
    fn batch_due_ms(&self, first_at_ms: u64) -> u64 {
        match self.last_batch_ms {
            None => first_at_ms,
            Some(last) => first_at_ms.max(last.saturating_add(self.config.batch_ms)),
        }
    }

    /// The room's id.
    pub fn id(&self) -> &RoomId {
        &self.id
    }

    /// The configuration.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Latest seq assigned (0 before the first event).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Latest seq returned in a batch: what a joining viewer's live batches continue from.
    pub fn flushed_seq(&self) -> u64 {
        self.flushed_seq
    }

    /// Events ordered but not yet returned in a batch.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Events held in the history window.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// The room's like total.
    pub fn likes(&self) -> u64 {
        self.likes_total
    }

    /// Members over all shards.
    pub fn online(&self) -> u64 {
        self.shard_members
            .iter()
            .map(|&count| u64::from(count))
            .sum()
    }

    /// Shards with members, ascending: send each batch and stats to these.
    pub fn subscribers(&self) -> &[u16] {
        &self.shards
    }

    /// The room's heat as of the last input or stats: an exponentially decayed sum of points
    /// with a half-life of `heat_half_life_s`. A chat is [`HEAT_CHAT_POINTS`], a like
    /// [`HEAT_LIKE_POINTS`], a gift [`HEAT_GIFT_BASE_POINTS`] plus its value; system notices
    /// count nothing. A steady `r` points per second settles at `r × half_life / ln 2`
    /// (≈ 86.6 `r` with the default 60 s), so heat is about the points of the last 1.44
    /// half-lives.
    pub fn heat(&self) -> u64 {
        self.heat.value()
    }

    /// Counts of accepted and shed inputs by kind and priority.
    pub fn counters(&self) -> &RoomCounters {
        &self.counters
    }

    /// Moves the room's clock to `now_ms` (never backwards), trims the history window by age,
    /// and returns the clock.
    fn advance(&mut self, now_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(now_ms);
        self.history.trim(self.clock_ms);
        self.clock_ms
    }

    /// Adds heat for an input; a relayed room counts the relayed events instead.
    fn add_heat(&mut self, now_ms: u64, points: u64) {
        if !self.relayed {
            self.heat.add(now_ms, points);
        }
    }

    /// Queues an event for the next batch and returns its seq (0 in a relayed room, where
    /// Redis numbers it).
    fn push_event(&mut self, now_ms: u64, wall_ms: u64, body: EventBody) -> u64 {
        let seq = if self.relayed {
            0
        } else {
            self.seq += 1;
            self.seq
        };
        let event = RoomEvent {
            seq,
            time_ms: wall_ms,
            body,
        };
        self.pending_bytes += event.wire_size_bytes();
        self.pending.push(Pending {
            at_ms: now_ms,
            event,
        });
        debug_assert!(self.relayed || self.flushed_seq + self.pending.len() as u64 == self.seq);
        seq
    }

    fn is_full(&self) -> bool {
        BATCH_OVERHEAD_BYTES + self.pending_bytes >= self.config.batch_max_bytes
    }

    fn check_length(&self, field: Field, value: &str, max_bytes: usize) -> Result<(), InputError> {
        if (1..=max_bytes).contains(&value.len()) {
            Ok(())
        } else {
            Err(InputError::Length {
                field,
                min_bytes: 1,
                max_bytes,
                seen_bytes: value.len(),
            })
        }
    }

    fn check_gift(&self, gift: &GiftIn) -> Result<(), InputError> {
        self.check_length(Field::User, &gift.user, self.config.user_max_bytes)?;
        self.check_length(
            Field::IdempotencyKey,
            &gift.idempotency_key,
            self.config.idempotency_key_max_bytes,
        )?;
        if !(1..=self.config.gift_count_max).contains(&gift.count) {
            return Err(InputError::GiftCount {
                max: self.config.gift_count_max,
                seen: gift.count,
            });
        }
        Ok(())
    }
}

/// A gift's identity for idempotency: the same key from another user is another gift.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GiftKey {
    user: Arc<str>,
    key: Arc<str>,
}

/// The last `capacity` gift keys and the seq each was ordered as; the oldest is forgotten first.
#[derive(Debug)]
struct GiftKeys {
    seqs: HashMap<GiftKey, u64>,
    order: VecDeque<GiftKey>,
    capacity: usize,
}

impl GiftKeys {
    fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        GiftKeys {
            seqs: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn get(&self, key: &GiftKey) -> Option<u64> {
        self.seqs.get(key).copied()
    }

    fn insert(&mut self, key: GiftKey, seq: u64) {
        debug_assert!(!self.seqs.contains_key(&key));
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seqs.remove(&oldest);
            }
        }
        self.order.push_back(key.clone());
        self.seqs.insert(key, seq);
        debug_assert_eq!(self.order.len(), self.seqs.len());
        debug_assert!(self.order.len() <= self.capacity);
    }
}

/// An exponentially decayed sum.
#[derive(Debug)]
struct Heat {
    value: f64,
    half_life_ms: u64,
    last_ms: u64,
}

impl Heat {
    fn new(half_life_ms: u64, now_ms: u64) -> Self {
        assert!(half_life_ms > 0);
        Heat {
            value: 0.0,
            half_life_ms,
            last_ms: now_ms,
        }
    }

    fn add(&mut self, now_ms: u64, points: u64) {
        self.decay_to(now_ms);
        self.value += points as f64;
    }

    fn decay_to(&mut self, now_ms: u64) {
        if now_ms <= self.last_ms {
            return;
        }
        let half_lives = (now_ms - self.last_ms) as f64 / self.half_life_ms as f64;
        self.value *= 0.5f64.powf(half_lives);
        self.last_ms = now_ms;
    }

    fn value(&self) -> u64 {
        // Float to int casts saturate; heat is never negative.
        self.value.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(config: RoomConfig) -> Room {
        Room::new(RoomId::new("r").unwrap(), config, 0)
    }

    #[test]
    fn default_config_is_valid() {
        RoomConfig::default()
            .validate()
            .expect("defaults are valid");
    }

    #[test]
    fn batch_must_hold_the_largest_event() {
        let config = RoomConfig {
            batch_max_bytes: 256,
            ..RoomConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange {
                field: "batch_max_bytes",
                ..
            })
        ));
    }

    #[test]
    fn largest_event_matches_a_real_one() {
        let config = RoomConfig::default();
        let event = RoomEvent {
            seq: 1,
            time_ms: 0,
            body: EventBody::Chat {
                user: Arc::from("u".repeat(config.user_max_bytes)),
                text: Arc::from("t".repeat(config.text_max_bytes)),
                color: 0,
                mode: ChatMode::Scroll,
            },
        };
        assert_eq!(event.wire_size_bytes(), config.largest_event_bytes());
    }

    #[test]
    fn event_size_matches_the_memory_docs() {
        // The module documentation counts 64 bytes per history entry on 64-bit targets.
        if cfg!(target_pointer_width = "64") {
            assert!(std::mem::size_of::<RoomEvent>() + 8 <= 64);
        }
    }

    #[test]
    fn paid_reserve_rounds_up() {
        let config = RoomConfig {
            inbound_burst: 7,
            paid_reserve_percent: 10,
            ..RoomConfig::default()
        };
        assert_eq!(config.paid_reserve_tokens(), 1);
        let none = RoomConfig {
            paid_reserve_percent: 0,
            ..RoomConfig::default()
        };
        assert_eq!(none.paid_reserve_tokens(), 0);
    }

    #[test]
    #[should_panic(expected = "invalid room configuration")]
    fn invalid_config_panics() {
        room(RoomConfig {
            batch_ms: 0,
            ..RoomConfig::default()
        });
    }

    #[test]
    fn heat_halves_every_half_life() {
        let mut heat = Heat::new(60_000, 0);
        heat.add(0, 1000);
        heat.decay_to(60_000);
        assert_eq!(heat.value(), 500);
        heat.decay_to(120_000);
        assert_eq!(heat.value(), 250);
    }

    #[test]
    fn gift_keys_forget_oldest_first() {
        let mut keys = GiftKeys::new(2);
        let key = |k: &str| GiftKey {
            user: Arc::from("u"),
            key: Arc::from(k),
        };
        keys.insert(key("a"), 1);
        keys.insert(key("b"), 2);
        keys.insert(key("c"), 3);
        assert_eq!(keys.get(&key("a")), None);
        assert_eq!(keys.get(&key("b")), Some(2));
        assert_eq!(keys.get(&key("c")), Some(3));
    }

    #[test]
    fn members_sorted_and_zero_removed() {
        let mut room = room(RoomConfig::default());
        room.handle_members(3, 5);
        room.handle_members(1, 2);
        room.handle_members(2, 0);
        assert_eq!(room.subscribers(), &[1, 3]);
        assert_eq!(room.online(), 7);
        room.handle_members(3, 0);
        assert_eq!(room.subscribers(), &[1]);
        assert_eq!(room.online(), 2);
    }
}
