//! The durable ledger, on redb: every batch is one write transaction committed with
//! `Durability::Immediate` (one fsync for the batch), so a transfer is on disk before its
//! answer leaves [`Ledger::apply_batch`], and a failed write answers nothing.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::rules::{apply, KeySpace, Tables};
use crate::{Audit, GiftRecord, Ledger, Op, Outcome, StoreError, BALANCE_MAX};

/// account → balance.
const BALANCES: TableDefinition<&str, u64> = TableDefinition::new("balances");
/// (user, key) → (entry, balance after), per key space.
const GIFT_ANSWERS: TableDefinition<(&str, &str), (u64, u64)> =
    TableDefinition::new("gift_answers");
const CREDIT_ANSWERS: TableDefinition<(&str, &str), (u64, u64)> =
    TableDefinition::new("credit_answers");
/// A row of the gift log: (user, gift_id, count, value, time_ms).
type GiftRow = (&'static str, u32, u32, u64, u64);
/// (room, entry) → the gift.
const GIFTS: TableDefinition<(&str, u64), GiftRow> = TableDefinition::new("gifts");
/// (room, user) → value given.
const TOTALS: TableDefinition<(&str, &str), u64> = TableDefinition::new("totals");
/// (room, u64::MAX - value given, user): the leaderboard in order.
const BOARD: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("board");
/// "entries", "credited" → counters.
const META: TableDefinition<&str, u128> = TableDefinition::new("meta");

/// A ledger in a redb file.
pub struct RedbLedger {
    db: Database,
    streamer_share_percent: u8,
}

impl RedbLedger {
    /// Opens (or creates) the ledger file at `path`.
    pub fn open(path: &Path, streamer_share_percent: u8) -> Result<Self, StoreError> {
        RedbLedger::on(Database::create(path)?, streamer_share_percent)
    }

    /// Opens (or creates) a ledger on a storage backend of the caller's: the tests inject disk
    /// failures (a full disk, an fsync error) this way.
    pub fn with_backend(
        backend: impl redb::StorageBackend,
        streamer_share_percent: u8,
    ) -> Result<Self, StoreError> {
        let db = redb::Builder::new().create_with_backend(backend)?;
        RedbLedger::on(db, streamer_share_percent)
    }

    fn on(db: Database, streamer_share_percent: u8) -> Result<Self, StoreError> {
        // Every table exists from the start, so readers never meet a missing one.
        let txn = db.begin_write()?;
        {
            txn.open_table(BALANCES)?;
            txn.open_table(GIFT_ANSWERS)?;
            txn.open_table(CREDIT_ANSWERS)?;
            txn.open_table(GIFTS)?;
            txn.open_table(TOTALS)?;
            txn.open_table(BOARD)?;
            txn.open_table(META)?;
        }
        txn.commit()?;
        Ok(RedbLedger {
            db,
            streamer_share_percent,
        })
    }
}

/// The tables of one write transaction.
struct Tx<'t> {
    balances: Table<'t, &'static str, u64>,
    gift_answers: Table<'t, (&'static str, &'static str), (u64, u64)>,
    credit_answers: Table<'t, (&'static str, &'static str), (u64, u64)>,
    gifts: Table<'t, (&'static str, u64), GiftRow>,
    totals: Table<'t, (&'static str, &'static str), u64>,
    board: Table<'t, (&'static str, u64, &'static str), ()>,
    meta: Table<'t, &'static str, u128>,
}

impl Tx<'_> {
    fn add_meta(&mut self, name: &str, n: u128) -> Result<u128, StoreError> {
        let value = self.meta.get(name)?.map_or(0, |v| v.value()) + n;
        self.meta.insert(name, value)?;
        Ok(value)
    }
}

impl Tables for Tx<'_> {
    fn balance(&mut self, account: &str) -> Result<u64, StoreError> {
        Ok(self.balances.get(account)?.map_or(0, |v| v.value()))
    }

    fn set_balance(&mut self, account: &str, value: u64) -> Result<(), StoreError> {
        self.balances.insert(account, value)?;
        Ok(())
    }

    fn answer(
        &mut self,
        space: KeySpace,
        user: &str,
        key: &str,
    ) -> Result<Option<Outcome>, StoreError> {
        let table = match space {
            KeySpace::Gift => &self.gift_answers,
            KeySpace::Credit => &self.credit_answers,
        };
        Ok(table.get((user, key))?.map(|v| {
            let (entry, balance) = v.value();
            Outcome::Done { entry, balance }
        }))
    }

    fn keep_answer(
        &mut self,
        space: KeySpace,
        user: &str,
        key: &str,
        entry: u64,
        balance: u64,
    ) -> Result<(), StoreError> {
        let table = match space {
            KeySpace::Gift => &mut self.gift_answers,
            KeySpace::Credit => &mut self.credit_answers,
        };
        table.insert((user, key), (entry, balance))?;
        Ok(())
    }

    fn next_entry(&mut self) -> Result<u64, StoreError> {
        let entries = self.add_meta("entries", 1)?;
        u64::try_from(entries).map_err(|_| StoreError("ledger entries past u64".into()))
    }

    fn credited(&mut self) -> Result<u128, StoreError> {
        Ok(self.meta.get("credited")?.map_or(0, |v| v.value()))
    }

    fn add_credited(&mut self, amount: u64) -> Result<(), StoreError> {
        self.add_meta("credited", u128::from(amount))?;
        Ok(())
    }

    fn log_gift(&mut self, room: &str, gift: &GiftRecord) -> Result<(), StoreError> {
        let row = (
            gift.user.as_str(),
            gift.gift_id,
            gift.count,
            gift.value,
            gift.time_ms,
        );
        self.gifts.insert((room, gift.entry), row)?;
        let user = gift.user.as_str();
        let before = self.totals.get((room, user))?.map(|v| v.value());
        let after = before
            .unwrap_or(0)
            .saturating_add(gift.value)
            .min(BALANCE_MAX);
        self.totals.insert((room, user), after)?;
        if let Some(before) = before {
            self.board.remove((room, u64::MAX - before, user))?;
        }
        self.board.insert((room, u64::MAX - after, user), ())?;
        Ok(())
    }
}

impl Ledger for RedbLedger {
    fn apply_batch(&mut self, ops: &[Op]) -> Result<Vec<Outcome>, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let outcomes = {
            let mut tx = Tx {
                balances: txn.open_table(BALANCES)?,
                gift_answers: txn.open_table(GIFT_ANSWERS)?,
                credit_answers: txn.open_table(CREDIT_ANSWERS)?,
                gifts: txn.open_table(GIFTS)?,
                totals: txn.open_table(TOTALS)?,
                board: txn.open_table(BOARD)?,
                meta: txn.open_table(META)?,
            };
            let percent = self.streamer_share_percent;
            // A storage error here drops the transaction: nothing of the batch is written.
            ops.iter()
                .map(|op| apply(&mut tx, op, percent))
                .collect::<Result<Vec<_>, _>>()?
        };
        txn.commit()?;
        Ok(outcomes)
    }

    fn balance(&self, account: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BALANCES)?;
        let balance = table.get(account)?.map_or(0, |v| v.value());
        Ok(balance)
    }

    fn gifts_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<GiftRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(GIFTS)?;
        let mut out = Vec::new();
        if after == u64::MAX {
            return Ok(out);
        }
        for row in table.range((room, after + 1)..=(room, u64::MAX))? {
            if out.len() >= limit {
                break;
            }
            let (key, value) = row?;
            let (_, entry) = key.value();
            let (user, gift_id, count, value, time_ms) = value.value();
            out.push(GiftRecord {
                entry,
                user: user.to_string(),
                gift_id,
                count,
                value,
                time_ms,
            });
        }
        Ok(out)
    }

    fn leaderboard(&self, room: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BOARD)?;
        let mut out = Vec::new();
        for row in table.range((room, 0, "")..)? {
            let (key, _) = row?;
            let (r, inverted, user) = key.value();
            if r != room || out.len() >= limit {
                break;
            }
            out.push((user.to_string(), u64::MAX - inverted));
        }
        Ok(out)
    }

    fn audit(&self) -> Result<Audit, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let get = |name: &str| -> Result<u128, StoreError> {
            Ok(meta.get(name)?.map_or(0, |v| v.value()))
        };
        let mut held = 0u128;
        for row in txn.open_table(BALANCES)?.iter()? {
            held += u128::from(row?.1.value());
        }
        Ok(Audit {
            credited: get("credited")?,
            held,
            entries: u64::try_from(get("entries")?).unwrap_or(u64::MAX),
        })
    }
}
