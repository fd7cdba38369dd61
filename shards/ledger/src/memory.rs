//! The ledger in memory: the reference for tests, with the same rules as the durable one.

use std::collections::{BTreeMap, HashMap};

use crate::rules::{apply, KeySpace, Tables};
use crate::{Audit, GiftRecord, Ledger, Op, Outcome, StoreError, BALANCE_MAX};

/// A ledger in memory (lost with the process).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    streamer_share_percent: u8,
    balances: HashMap<String, u64>,
    answers: HashMap<(bool, String, String), (u64, u64)>,
    entries: u64,
    credited: u128,
    /// Per room: entry → gift.
    gifts: HashMap<String, BTreeMap<u64, GiftRecord>>,
    /// Per room: user → value given.
    totals: HashMap<String, HashMap<String, u64>>,
}

impl MemoryLedger {
    pub fn new(streamer_share_percent: u8) -> Self {
        MemoryLedger {
            streamer_share_percent,
            ..MemoryLedger::default()
        }
    }
}

impl Tables for MemoryLedger {
    fn balance(&mut self, account: &str) -> Result<u64, StoreError> {
        Ok(self.balances.get(account).copied().unwrap_or(0))
    }

    fn set_balance(&mut self, account: &str, value: u64) -> Result<(), StoreError> {
        self.balances.insert(account.to_string(), value);
        Ok(())
    }

    fn answer(
        &mut self,
        space: KeySpace,
        user: &str,
        key: &str,
    ) -> Result<Option<Outcome>, StoreError> {
        let id = (space == KeySpace::Gift, user.to_string(), key.to_string());
        Ok(self
            .answers
            .get(&id)
            .map(|&(entry, balance)| Outcome::Done { entry, balance }))
    }

    fn keep_answer(
        &mut self,
        space: KeySpace,
        user: &str,
        key: &str,
        entry: u64,
        balance: u64,
    ) -> Result<(), StoreError> {
        let id = (space == KeySpace::Gift, user.to_string(), key.to_string());
        self.answers.insert(id, (entry, balance));
        Ok(())
    }

    fn next_entry(&mut self) -> Result<u64, StoreError> {
        self.entries += 1;
        Ok(self.entries)
    }

    fn credited(&mut self) -> Result<u128, StoreError> {
        Ok(self.credited)
    }

    fn add_credited(&mut self, amount: u64) -> Result<(), StoreError> {
        self.credited += u128::from(amount);
        Ok(())
    }

    fn log_gift(&mut self, room: &str, gift: &GiftRecord) -> Result<(), StoreError> {
        self.gifts
            .entry(room.to_string())
            .or_default()
            .insert(gift.entry, gift.clone());
        let total = self
            .totals
            .entry(room.to_string())
            .or_default()
            .entry(gift.user.clone())
            .or_default();
        *total = total.saturating_add(gift.value).min(BALANCE_MAX);
        Ok(())
    }
}

impl Ledger for MemoryLedger {
    fn apply_batch(&mut self, ops: &[Op]) -> Result<Vec<Outcome>, StoreError> {
        let percent = self.streamer_share_percent;
        ops.iter().map(|op| apply(self, op, percent)).collect()
    }

    fn balance(&self, account: &str) -> Result<u64, StoreError> {
        Ok(self.balances.get(account).copied().unwrap_or(0))
    }

    fn gifts_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<GiftRecord>, StoreError> {
        Ok(self.gifts.get(room).map_or_else(Vec::new, |log| {
            log.range(after.saturating_add(1)..)
                .take(limit)
                .map(|(_, g)| g.clone())
                .collect()
        }))
    }

    fn leaderboard(&self, room: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let mut board: Vec<(String, u64)> = self
            .totals
            .get(room)
            .map(|t| t.iter().map(|(u, v)| (u.clone(), *v)).collect())
            .unwrap_or_default();
        board.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        board.truncate(limit);
        Ok(board)
    }

    fn audit(&self) -> Result<Audit, StoreError> {
        Ok(Audit {
            credited: self.credited,
            held: self.balances.values().map(|&v| u128::from(v)).sum(),
            entries: self.entries,
        })
    }
}
