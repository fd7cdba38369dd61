//! The ledger's rules, once, over the storage primitives of [`Tables`].

use crate::{
    earnings, streamer_share, wallet, GiftRecord, Op, Outcome, Refusal, StoreError, BALANCE_MAX,
    CREDITED_MAX, NAME_MAX_BYTES, PLATFORM,
};

/// Which idempotency key space a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpace {
    Gift,
    Credit,
}

/// The storage a ledger backend gives the rules. Reads see the writes made before them in
/// the same batch.
pub trait Tables {
    /// An account's balance (0 when it never held anything).
    fn balance(&mut self, account: &str) -> Result<u64, StoreError>;
    fn set_balance(&mut self, account: &str, value: u64) -> Result<(), StoreError>;
    /// The answer kept for (user, key) in `space`, if any.
    fn answer(
        &mut self,
        space: KeySpace,
        user: &str,
        key: &str,
    ) -> Result<Option<Outcome>, StoreError>;
    /// Keeps the answer of a transfer that was done.
    fn keep_answer(
        &mut self,
        space: KeySpace,
        user: &str,
        key: &str,
        entry: u64,
        balance: u64,
    ) -> Result<(), StoreError>;
    /// The next ledger entry number (1, 2, …).
    fn next_entry(&mut self) -> Result<u64, StoreError>;
    /// The total ever credited.
    fn credited(&mut self) -> Result<u128, StoreError>;
    /// Adds to the total ever credited.
    fn add_credited(&mut self, amount: u64) -> Result<(), StoreError>;
    /// Appends a gift to its room's log and adds its value to the giver's total in the room
    /// (which stops at [`BALANCE_MAX`]).
    fn log_gift(&mut self, room: &str, gift: &GiftRecord) -> Result<(), StoreError>;
}

/// Applies one transfer. An `Err` is a storage failure: the caller must drop the whole batch.
pub fn apply<T: Tables>(
    tables: &mut T,
    op: &Op,
    streamer_share_percent: u8,
) -> Result<Outcome, StoreError> {
    match op {
        Op::Credit { user, amount, key } => match invalid(op) {
            Some(refusal) => Ok(Outcome::Refused(refusal)),
            None => credit(tables, user, *amount, key),
        },
        Op::Gift {
            user,
            room,
            owner,
            gift_id,
            count,
            value,
            key,
            time_ms,
        } => {
            if let Some(refusal) = invalid(op) {
                return Ok(Outcome::Refused(refusal));
            }
            if let Some(first) = tables.answer(KeySpace::Gift, user, key)? {
                return Ok(Outcome::Duplicate(Box::new(first)));
            }
            let from = wallet(user);
            let to = earnings(owner);
            let balance = tables.balance(&from)?;
            let Some(left) = balance.checked_sub(*value) else {
                return Ok(Outcome::Refused(Refusal::InsufficientBalance {
                    balance,
                    needed: *value,
                }));
            };
            let share = streamer_share(*value, streamer_share_percent);
            // Every new balance is worked out before anything is written.
            let streamer = capped_add(tables.balance(&to)?, share);
            let platform = capped_add(tables.balance(PLATFORM)?, *value - share);
            let (Some(streamer), Some(platform)) = (streamer, platform) else {
                return Ok(Outcome::Refused(Refusal::Overflow));
            };
            tables.set_balance(&from, left)?;
            tables.set_balance(&to, streamer)?;
            tables.set_balance(PLATFORM, platform)?;
            let entry = tables.next_entry()?;
            let gift = GiftRecord {
                entry,
                user: user.clone(),
                gift_id: *gift_id,
                count: *count,
                value: *value,
                time_ms: *time_ms,
            };
            tables.log_gift(room, &gift)?;
            tables.keep_answer(KeySpace::Gift, user, key, entry, left)?;
            Ok(Outcome::Done {
                entry,
                balance: left,
            })
        }
    }
}

fn credit<T: Tables>(
    tables: &mut T,
    user: &str,
    amount: u64,
    key: &str,
) -> Result<Outcome, StoreError> {
    if let Some(first) = tables.answer(KeySpace::Credit, user, key)? {
        return Ok(Outcome::Duplicate(Box::new(first)));
    }
    let account = wallet(user);
    let Some(balance) = capped_add(tables.balance(&account)?, amount) else {
        return Ok(Outcome::Refused(Refusal::Overflow));
    };
    if tables.credited()? + u128::from(amount) > u128::from(CREDITED_MAX) {
        return Ok(Outcome::Refused(Refusal::Overflow));
    }
    tables.set_balance(&account, balance)?;
    tables.add_credited(amount)?;
    let entry = tables.next_entry()?;
    tables.keep_answer(KeySpace::Credit, user, key, entry, balance)?;
    Ok(Outcome::Done { entry, balance })
}

/// Why `op` is refused before the ledger is read, if it is: an empty or over-long name, or a
/// credit of nothing. Every backend checks this first.
pub fn invalid(op: &Op) -> Option<Refusal> {
    match op {
        Op::Credit { user, amount, key } => {
            if !valid_name(user) {
                Some(Refusal::Invalid("user"))
            } else if !valid_name(key) {
                Some(Refusal::Invalid("key"))
            } else if *amount == 0 {
                Some(Refusal::Invalid("amount"))
            } else {
                None
            }
        }
        Op::Gift {
            user,
            room,
            owner,
            key,
            ..
        } => [
            ("user", user),
            ("room", room),
            ("owner", owner),
            ("key", key),
        ]
        .into_iter()
        .find(|(_, name)| !valid_name(name))
        .map(|(what, _)| Refusal::Invalid(what)),
    }
}

/// `balance + amount` unless it passes [`BALANCE_MAX`].
fn capped_add(balance: u64, amount: u64) -> Option<u64> {
    balance
        .checked_add(amount)
        .filter(|&sum| sum <= BALANCE_MAX)
}

/// Whether a user, room, owner or key may be used: not empty, at most [`NAME_MAX_BYTES`].
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX_BYTES
}
