//! The streams live now, as one shard's media index knows them, shared with the shard's other
//! services (danmaku lets anonymous viewers create only live streams' rooms). Single-threaded:
//! one set per shard, written by media only.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

/// A shard's set of live stream names. Clones share the set.
#[derive(Clone, Default)]
pub struct LiveSet(Rc<RefCell<HashSet<Arc<str>>>>);

impl LiveSet {
    /// Marks `stream` live or not.
    pub fn set(&self, stream: &Arc<str>, live: Liveness) {
        let mut names = self.0.borrow_mut();
        match live {
            Liveness::Live => {
                names.insert(stream.clone());
            }
            Liveness::Ended => {
                names.remove(stream);
            }
        }
    }

    /// True while `stream` is live.
    pub fn contains(&self, stream: &str) -> bool {
        self.0.borrow().contains(stream)
    }
}

/// Whether a stream is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Ended,
}
