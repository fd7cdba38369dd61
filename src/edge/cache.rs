//! Complete objects an edge keeps: each until its expiry, and within a byte bound by least
//! recent use. The fetcher has one for the whole edge; each shard has one of references to
//! the same `Bytes` for the objects it served, so a hit costs no message.

use super::msg::ObjectHead;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A whole object, as fetched.
#[derive(Clone, Debug)]
pub struct CachedObject {
    pub head: ObjectHead,
    /// The body in the pieces it arrived in.
    pub chunks: Vec<Bytes>,
    /// Sum of the pieces' lengths.
    pub bytes: u64,
}

struct Entry {
    object: CachedObject,
    expires_ms: u64,
    /// When it was last used, as a tick of this cache (unique per entry).
    used: u64,
}

/// An LRU of objects with expiry times.
pub struct ObjectCache {
    entries: HashMap<Arc<str>, Entry>,
    /// (expires_ms, used) of every entry: the next to expire first.
    by_expiry: BTreeSet<(u64, u64, Arc<str>)>,
    /// (used) of every entry: the least recently used first.
    by_use: BTreeSet<(u64, Arc<str>)>,
    tick: u64,
    bytes: u64,
    max_bytes: u64,
}

impl ObjectCache {
    /// An empty cache that holds at most `max_bytes` of bodies.
    pub fn new(max_bytes: u64) -> Self {
        ObjectCache {
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            by_use: BTreeSet::new(),
            tick: 0,
            bytes: 0,
            max_bytes,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The object at `key` and when it expires, unless it expired (then it goes), marked as
    /// just used.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<(&CachedObject, u64)> {
        let (stored_key, expires_ms, used) = {
            let (k, e) = self.entries.get_key_value(key)?;
            (k.clone(), e.expires_ms, e.used)
        };
        if expires_ms <= now_ms {
            self.remove(&stored_key);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        self.by_use.remove(&(used, stored_key.clone()));
        self.by_use.insert((tick, stored_key.clone()));
        self.by_expiry
            .remove(&(expires_ms, used, stored_key.clone()));
        self.by_expiry
            .insert((expires_ms, tick, stored_key.clone()));
        let entry = self.entries.get_mut(&stored_key)?;
        entry.used = tick;
        Some((&entry.object, expires_ms))
    }

    /// Keeps `object` at `key` until `expires_ms`, evicting the least recently used to stay
    /// within the bound. An object bigger than the bound is not kept.
    pub fn insert(&mut self, key: Arc<str>, object: CachedObject, expires_ms: u64) {
        self.remove(&key);
        if object.bytes > self.max_bytes {
            return;
        }
        while self.bytes + object.bytes > self.max_bytes {
            let Some((_, oldest)) = self.by_use.first().cloned() else {
                break;
            };
            self.remove(&oldest);
        }
        self.tick += 1;
        self.bytes += object.bytes;
        self.by_use.insert((self.tick, key.clone()));
        self.by_expiry.insert((expires_ms, self.tick, key.clone()));
        let entry = Entry {
            object,
            expires_ms,
            used: self.tick,
        };
        self.entries.insert(key, entry);
    }

    /// Drops every object that expired by `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let mut dropped = 0;
        while let Some((expires_ms, _, key)) = self.by_expiry.first().cloned() {
            if expires_ms > now_ms {
                break;
            }
            self.remove(&key);
            dropped += 1;
        }
        dropped
    }

    fn remove(&mut self, key: &Arc<str>) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.object.bytes;
            self.by_use.remove(&(entry.used, key.clone()));
            self.by_expiry
                .remove(&(entry.expires_ms, entry.used, key.clone()));
        }
        debug_assert_eq!(self.entries.len(), self.by_use.len());
        debug_assert_eq!(self.entries.len(), self.by_expiry.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bytes: usize) -> CachedObject {
        CachedObject {
            head: ObjectHead {
                status: 200,
                content_type: "video/mp4",
                length: Some(bytes as u64),
                max_age_ms: Some(1000),
            },
            chunks: vec![Bytes::from(vec![0u8; bytes])],
            bytes: bytes as u64,
        }
    }

    #[test]
    fn objects_expire_and_the_least_recently_used_go_past_the_bound() {
        let mut cache = ObjectCache::new(300);
        cache.insert("a".into(), object(100), 1000);
        cache.insert("b".into(), object(100), 2000);
        cache.insert("c".into(), object(100), 3000);
        assert!(cache.get("a", 0).is_some(), "a is now the most recent");
        cache.insert("d".into(), object(100), 4000);
        assert!(cache.get("b", 0).is_none(), "b was the least recently used");
        assert!(cache.get("a", 0).is_some());
        assert_eq!(cache.bytes(), 300);
        assert_eq!(cache.expire(1000), 1, "a expires at 1000");
        assert!(cache.get("c", 3000).is_none(), "c expired at 3000");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), 100);
        cache.insert("big".into(), object(301), 9000);
        assert!(
            cache.get("big", 0).is_none(),
            "bigger than the bound: not kept"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn replacing_a_key_counts_its_bytes_once() {
        let mut cache = ObjectCache::new(1000);
        cache.insert("a".into(), object(100), 1000);
        cache.insert("a".into(), object(200), 1000);
        assert_eq!(cache.bytes(), 200);
        assert_eq!(cache.len(), 1);
    }
}
