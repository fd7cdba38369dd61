//! A table of entries found both by a dense index (a timer key, a member's back-reference) and
//! by name (a room, a stream): one slab and one map, kept in step in one place only.
//!
//! Indexes are reused after removal, so anything that keeps an index across calls (a timer
//! key) must check that the entry it finds is still the one it meant, e.g. by comparing a
//! timer id stored in the entry.

use slab::Slab;
use std::collections::HashMap;
use std::hash::Hash;

/// The table. `len()` is bounded by the caller (it refuses inserts past its own limit).
pub struct Table<K, V> {
    entries: Slab<(K, V)>,
    index: HashMap<K, usize>,
}

impl<K: Clone + Eq + Hash, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            entries: Slab::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash, V> Table<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index of `key`.
    pub fn find<Q>(&self, key: &Q) -> Option<usize>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.get(key).copied()
    }

    /// Inserts `value` under `key`, which must not be present; returns its index.
    pub fn insert(&mut self, key: K, value: V) -> usize {
        debug_assert!(!self.index.contains_key(&key), "insert of a present key");
        let index = self.entries.insert((key.clone(), value));
        self.index.insert(key, index);
        index
    }

    /// The entry at `index`.
    pub fn get(&self, index: usize) -> Option<&V> {
        self.entries.get(index).map(|(_, v)| v)
    }

    /// The entry at `index`, mutable.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut V> {
        self.entries.get_mut(index).map(|(_, v)| v)
    }

    /// The key and entry at `index`.
    pub fn entry(&self, index: usize) -> Option<(&K, &V)> {
        self.entries.get(index).map(|(k, v)| (k, v))
    }

    /// The key and entry at `index`, the entry mutable.
    pub fn entry_mut(&mut self, index: usize) -> Option<(&K, &mut V)> {
        self.entries.get_mut(index).map(|(k, v)| (&*k, v))
    }

    /// The entry named `key`, mutable.
    pub fn by_key_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let index = *self.index.get(key)?;
        self.get_mut(index)
    }

    /// The entry named `key`.
    pub fn by_key<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(*self.index.get(key)?)
    }

    /// Removes and returns the entry at `index`.
    pub fn remove(&mut self, index: usize) -> Option<(K, V)> {
        let (key, value) = self.entries.try_remove(index)?;
        self.index.remove(&key);
        Some((key, value))
    }

    /// Every entry with its index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &K, &V)> {
        self.entries.iter().map(|(i, (k, v))| (i, k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_key_stay_in_step_through_reuse() {
        let mut t: Table<String, u32> = Table::default();
        let a = t.insert("a".into(), 1);
        let b = t.insert("b".into(), 2);
        assert_eq!(t.find("a"), Some(a));
        assert_eq!(t.by_key("b"), Some(&2));
        assert_eq!(t.remove(a), Some(("a".into(), 1)));
        assert_eq!(t.find("a"), None);
        assert_eq!(t.remove(a), None, "removing twice finds nothing");
        let c = t.insert("c".into(), 3);
        assert_eq!(c, a, "the slot is reused");
        assert_eq!(t.entry(c), Some((&"c".to_string(), &3)));
        *t.by_key_mut("b").unwrap() += 10;
        assert_eq!(t.get(b), Some(&12));
        assert_eq!(t.len(), 2);
        let mut keys: Vec<_> = t.iter().map(|(_, k, _)| k.clone()).collect();
        keys.sort();
        assert_eq!(keys, ["b", "c"]);
    }
}
