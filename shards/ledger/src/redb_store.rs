//! The durable ledger, on redb: every batch is one write transaction committed with
//! `Durability::Immediate` (one fsync for the batch), so a transfer is on disk before its
//! answer leaves [`Ledger::apply_batch`], and a failed write answers nothing.

use std::collections::HashMap;
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

/// The tables of one write transaction, with the batch's hot rows held in memory.
///
/// Every gift touches the same few rows (the giver's wallet, the streamer's earnings, the
/// platform's account, the entry counter, the giver's total in the room and its place on the
/// leaderboard). Reading and rewriting each of them in the B-trees once per gift cost 14
/// tree operations a gift; the batch instead reads each row once, keeps it here, and writes
/// its final value once before the commit ([`Tx::write_back`]). What is written per gift is
/// only what is new per gift: its answer and its line in the room's log. Reads within the
/// batch see the writes before them, as [`Tables`] requires; a storage error drops the whole
/// transaction, overlay and all.
struct Tx<'t> {
    balances: Table<'t, &'static str, u64>,
    gift_answers: Table<'t, (&'static str, &'static str), (u64, u64)>,
    credit_answers: Table<'t, (&'static str, &'static str), (u64, u64)>,
    gifts: Table<'t, (&'static str, u64), GiftRow>,
    totals: Table<'t, (&'static str, &'static str), u64>,
    board: Table<'t, (&'static str, u64, &'static str), ()>,
    meta: Table<'t, &'static str, u128>,
    /// account → (balance now, changed in this batch).
    held: HashMap<String, Row<u64>>,
    /// (room, user) → (value given as stored, value given now).
    given: HashMap<(String, String), (Option<u64>, u64)>,
    /// meta counter → its value now.
    counters: HashMap<&'static str, Row<u128>>,
}

/// A row read once in a batch: its value now, and whether the batch changed it.
#[derive(Clone, Copy)]
struct Row<V> {
    value: V,
    changed: bool,
}

impl<V> Row<V> {
    /// As the B-tree holds it.
    fn read(value: V) -> Self {
        Row {
            value,
            changed: false,
        }
    }

    /// Set by the batch: written back before the commit.
    fn written(value: V) -> Self {
        Row {
            value,
            changed: true,
        }
    }
}

impl<'t> Tx<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tx {
            balances: txn.open_table(BALANCES)?,
            gift_answers: txn.open_table(GIFT_ANSWERS)?,
            credit_answers: txn.open_table(CREDIT_ANSWERS)?,
            gifts: txn.open_table(GIFTS)?,
            totals: txn.open_table(TOTALS)?,
            board: txn.open_table(BOARD)?,
            meta: txn.open_table(META)?,
            held: HashMap::new(),
            given: HashMap::new(),
            counters: HashMap::new(),
        })
    }

    fn counter(&mut self, name: &'static str) -> Result<u128, StoreError> {
        if let Some(row) = self.counters.get(name) {
            return Ok(row.value);
        }
        let value = self.meta.get(name)?.map_or(0, |v| v.value());
        self.counters.insert(name, Row::read(value));
        Ok(value)
    }

    fn add_counter(&mut self, name: &'static str, n: u128) -> Result<u128, StoreError> {
        let value = self.counter(name)? + n;
        self.counters.insert(name, Row::written(value));
        Ok(value)
    }

    /// Writes every row the batch changed, once, into its B-tree.
    fn write_back(mut self) -> Result<(), StoreError> {
        for (account, row) in &self.held {
            if row.changed {
                self.balances.insert(account.as_str(), row.value)?;
            }
        }
        for ((room, user), (stored, now)) in &self.given {
            if *stored == Some(*now) {
                continue;
            }
            self.totals.insert((room.as_str(), user.as_str()), *now)?;
            if let Some(before) = stored {
                self.board
                    .remove((room.as_str(), u64::MAX - before, user.as_str()))?;
            }
            self.board
                .insert((room.as_str(), u64::MAX - now, user.as_str()), ())?;
        }
        for (name, row) in &self.counters {
            if row.changed {
                self.meta.insert(*name, row.value)?;
            }
        }
        Ok(())
    }
}

impl Tables for Tx<'_> {
    fn balance(&mut self, account: &str) -> Result<u64, StoreError> {
        if let Some(row) = self.held.get(account) {
            return Ok(row.value);
        }
        let value = self.balances.get(account)?.map_or(0, |v| v.value());
        self.held.insert(account.to_string(), Row::read(value));
        Ok(value)
    }

    fn set_balance(&mut self, account: &str, value: u64) -> Result<(), StoreError> {
        match self.held.get_mut(account) {
            Some(held) => *held = Row::written(value),
            None => {
                self.held.insert(account.to_string(), Row::written(value));
            }
        }
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
        let entries = self.add_counter("entries", 1)?;
        u64::try_from(entries).map_err(|_| StoreError("ledger entries past u64".into()))
    }

    fn credited(&mut self) -> Result<u128, StoreError> {
        self.counter("credited")
    }

    fn add_credited(&mut self, amount: u64) -> Result<(), StoreError> {
        self.add_counter("credited", u128::from(amount))?;
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
        let key = (room.to_string(), gift.user.clone());
        let (stored, now) = match self.given.get(&key) {
            Some(&given) => given,
            None => {
                let stored = self
                    .totals
                    .get((room, gift.user.as_str()))?
                    .map(|v| v.value());
                (stored, stored.unwrap_or(0))
            }
        };
        let now = now.saturating_add(gift.value).min(BALANCE_MAX);
        self.given.insert(key, (stored, now));
        Ok(())
    }
}

impl Ledger for RedbLedger {
    fn apply_batch(&mut self, ops: &[Op]) -> Result<Vec<Outcome>, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let outcomes = {
            let mut tx = Tx::open(&txn)?;
            let percent = self.streamer_share_percent;
            // A storage error here drops the transaction: nothing of the batch is written.
            let outcomes = ops
                .iter()
                .map(|op| apply(&mut tx, op, percent))
                .collect::<Result<Vec<_>, _>>()?;
            tx.write_back()?;
            outcomes
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
