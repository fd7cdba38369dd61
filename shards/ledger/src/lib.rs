//! The gift ledger: viewer wallets, each room owner's earnings and the platform's share.
//!
//! Two kinds of transfer change the accounts:
//! - a **credit** puts money in a viewer's wallet (the platform's payment system, through the
//!   admin API);
//! - a **gift** debits the viewer's wallet by its value and credits the room owner's earnings
//!   with `streamer_share_percent` of it (rounded down) and the platform with the rest, so no
//!   unit is created or lost.
//!
//! Each transfer is idempotent on (user, idempotency key) for as long as the ledger exists:
//! the first answer is kept, and a retry gets it back ([`Outcome::Duplicate`]) without
//! touching an account. Gifts and credits have separate key spaces.
//!
//! The rules live here once ([`apply`]), over [`Tables`]: an in-memory implementation for
//! tests ([`MemoryLedger`]) and the durable one on redb ([`RedbLedger`], every batch one write
//! transaction committed with `Durability::Immediate`, so one fsync covers the batch: group
//! commit). The Redis backend ([`RedisLedger`]) runs the same rules as one Lua script per
//! batch on a Redis that fsyncs every write (`appendfsync always`); the differential tests
//! hold it to the same answers. Conservation: the sum of every account equals the sum of every credit
//! ([`Audit`]); the tests check it after every batch.

mod memory;
mod redb_store;
mod redis_store;
mod rules;

pub use memory::MemoryLedger;
pub use redb_store::RedbLedger;
pub use redis_store::{RedisLedger, RedisOptions};
pub use rules::{apply, invalid, KeySpace, Tables};

/// The platform's account (its share of every gift).
pub const PLATFORM: &str = "platform";

/// Longest user, room or idempotency key, bytes.
pub const NAME_MAX_BYTES: usize = 128;

/// Largest balance any account may hold, and largest total a user's gifts in one room reach
/// on its leaderboard: 2^53 − 1, the largest integer an IEEE double holds exactly, so JSON
/// readers and the Redis backend's Lua script see every amount exactly. A transfer that would
/// take an account past it is refused ([`Refusal::Overflow`]); a leaderboard total stops there.
pub const BALANCE_MAX: u64 = (1 << 53) - 1;

/// Largest total of all credits ever made (2^62): Redis keeps it in a signed 64-bit counter.
/// A credit past it is refused ([`Refusal::Overflow`]).
pub const CREDITED_MAX: u64 = 1 << 62;

/// A transfer asked of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Credit `amount` to `user`'s wallet.
    Credit {
        user: String,
        amount: u64,
        key: String,
    },
    /// `user` gives `count` × gift `gift_id`, worth `value` in all, in `room`, whose owner's
    /// earnings get the streamer's share.
    Gift {
        user: String,
        room: String,
        owner: String,
        gift_id: u32,
        count: u32,
        value: u64,
        key: String,
        /// Milliseconds since the Unix epoch, kept in the room's gift log.
        time_ms: u64,
    },
}

/// What a transfer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: ledger entry `entry`; `balance` is the user's wallet after it.
    Done { entry: u64, balance: u64 },
    /// This (user, key) was answered before: the first answer, unchanged.
    Duplicate(Box<Outcome>),
    /// Refused; nothing changed (and a retry with the same key is tried afresh).
    Refused(Refusal),
}

impl Outcome {
    /// The ledger entry of a transfer that was done (now or at the first attempt).
    pub fn entry(&self) -> Option<u64> {
        match self {
            Outcome::Done { entry, .. } => Some(*entry),
            Outcome::Duplicate(first) => first.entry(),
            Outcome::Refused(_) => None,
        }
    }
}

/// Why a transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The wallet holds less than the gift's value.
    #[error("insufficient balance: {balance} < {needed}")]
    InsufficientBalance { balance: u64, needed: u64 },
    /// A transfer would take an account past [`BALANCE_MAX`], or all credits past
    /// [`CREDITED_MAX`].
    #[error("amount too large")]
    Overflow,
    /// An empty or over-long name, or a zero amount.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The split of a gift's value: what the room owner gets; the platform gets the rest.
pub fn streamer_share(value: u64, streamer_share_percent: u8) -> u64 {
    // value × percent fits u128; the quotient is at most value.
    (u128::from(value) * u128::from(streamer_share_percent.min(100)) / 100) as u64
}

/// One gift in a room's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiftRecord {
    pub entry: u64,
    pub user: String,
    pub gift_id: u32,
    pub count: u32,
    pub value: u64,
    pub time_ms: u64,
}

/// Sums over the whole ledger, for the conservation check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// Every credit ever done.
    pub credited: u128,
    /// Every account's balance (wallets, earnings, the platform).
    pub held: u128,
    /// Ledger entries made.
    pub entries: u64,
}

/// A storage failure: the batch was not written, and none of its transfers may be
/// acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("ledger store: {0}")]
pub struct StoreError(pub String);

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError(e.to_string())
    }
}

macro_rules! store_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.to_string())
            }
        }
    )*};
}
store_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// What every ledger backend answers.
pub trait Ledger {
    /// Applies `ops` in order, atomically and durably: every outcome, or an error and no
    /// change at all.
    fn apply_batch(&mut self, ops: &[Op]) -> Result<Vec<Outcome>, StoreError>;
    /// An account's balance: [`wallet`]`(user)`, [`earnings`]`(owner)` or [`PLATFORM`].
    fn balance(&self, account: &str) -> Result<u64, StoreError>;
    /// A room's gifts with entry > `after`, oldest first, at most `limit`.
    fn gifts_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<GiftRecord>, StoreError>;
    /// A room's top `limit` gifters by value given, largest first (ties by name).
    fn leaderboard(&self, room: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError>;
    /// The conservation sums.
    fn audit(&self) -> Result<Audit, StoreError>;
}

/// A user's wallet account.
pub fn wallet(user: &str) -> String {
    format!("wallet:{user}")
}

/// A room owner's earnings account.
pub fn earnings(owner: &str) -> String {
    format!("earnings:{owner}")
}
