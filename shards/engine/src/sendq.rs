//! The per-connection send queue: chunks of `Bytes` waiting to be written, in order.
//!
//! The engine keeps at most one send op in flight per connection. The op reads the chunks at
//! the front of the queue in place (a gathered write): while it is in flight the backend marks
//! those chunks with [`SendQueue::set_in_flight`], the queue is only appended to or shed behind
//! them, and [`SendQueue::advance`] is called with the byte count the kernel reports — which
//! may be short.
//!
//! Chunks queued as *droppable* (a broadcast batch a slow viewer can do without) may be shed
//! oldest first by [`SendQueue::shed_oldest`], never the in-flight ones and never a chunk
//! whose first bytes are already written, so the byte stream stays well-formed.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;

struct Chunk {
    bytes: Bytes,
    droppable: bool,
}

/// Ordered chunks not yet written.
#[derive(Default)]
pub struct SendQueue {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    /// Front chunks an in-flight op reads.
    in_flight: usize,
    /// The front chunk has been partly written.
    front_partial: bool,
}

/// What [`SendQueue::shed_oldest`] dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shed {
    pub chunks: usize,
    pub bytes: usize,
}

impl SendQueue {
    /// Appends a chunk that must be written. Empty chunks are dropped.
    pub fn push(&mut self, chunk: Bytes) {
        self.push_chunk(chunk, false);
    }

    /// Appends a chunk that [`SendQueue::shed_oldest`] may drop before it is written.
    pub fn push_droppable(&mut self, chunk: Bytes) {
        self.push_chunk(chunk, true);
    }

    fn push_chunk(&mut self, bytes: Bytes, droppable: bool) {
        if bytes.is_empty() {
            return;
        }
        self.bytes += bytes.len();
        self.chunks.push_back(Chunk { bytes, droppable });
    }

    /// Bytes queued and not yet written.
    pub fn len_bytes(&self) -> usize {
        self.bytes
    }

    /// Chunks queued.
    pub fn len_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The chunks in order, front first.
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        self.chunks.iter().map(|c| &c.bytes)
    }

    /// The front chunk.
    pub fn front(&self) -> Option<&Bytes> {
        self.chunks.front().map(|c| &c.bytes)
    }

    /// Marks the first `chunks` chunks as read by an in-flight op (0 when it completes).
    pub fn set_in_flight(&mut self, chunks: usize) {
        assert!(chunks <= self.chunks.len());
        self.in_flight = chunks;
    }

    /// Drops the first `n` bytes, which the kernel has written.
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.bytes, "advance {n} past queued {}", self.bytes);
        assert_eq!(self.in_flight, 0, "advance while an op reads the queue");
        self.bytes -= n;
        while n > 0 {
            let front = self.chunks.front_mut().expect("bytes accounted");
            if n >= front.bytes.len() {
                n -= front.bytes.len();
                self.chunks.pop_front();
                self.front_partial = false;
            } else {
                front.bytes.advance(n);
                self.front_partial = true;
                n = 0;
            }
        }
        if self.chunks.is_empty() && self.chunks.capacity() > 16 {
            // A burst grew the deque; give the memory back so idle connections stay small.
            self.chunks = VecDeque::new();
        }
    }

    /// Drops droppable chunks, oldest first, until at most `target_bytes` are queued (or no
    /// droppable chunk is left). In-flight and partly written chunks are never dropped.
    pub fn shed_oldest(&mut self, target_bytes: usize) -> Shed {
        let mut shed = Shed::default();
        if self.bytes <= target_bytes {
            return shed;
        }
        let protected = self.in_flight.max(self.front_partial as usize);
        let mut index = 0;
        let mut bytes = self.bytes;
        self.chunks.retain(|chunk| {
            let keep = index < protected || !chunk.droppable || bytes <= target_bytes;
            index += 1;
            if !keep {
                bytes -= chunk.bytes.len();
                shed.chunks += 1;
                shed.bytes += chunk.bytes.len();
            }
            keep
        });
        self.bytes = bytes;
        shed
    }

    /// Drops every queued chunk. Only allowed when no send op reads them.
    pub fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.bytes = 0;
        self.in_flight = 0;
        self.front_partial = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(q: &SendQueue) -> Vec<u8> {
        q.chunks().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn short_writes_keep_order_and_counts() {
        let mut q = SendQueue::default();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::new());
        q.push(Bytes::from_static(b"world"));
        assert_eq!(q.len_bytes(), 11);
        assert_eq!(q.len_chunks(), 2);
        q.advance(3);
        assert_eq!(collect(&q), b"lo world");
        q.advance(3);
        assert_eq!(collect(&q), b"world");
        assert_eq!(q.len_chunks(), 1);
        q.advance(5);
        assert!(q.is_empty());
        assert_eq!(q.len_bytes(), 0);
    }

    #[test]
    #[should_panic]
    fn advancing_past_the_end_is_a_bug() {
        let mut q = SendQueue::default();
        q.push(Bytes::from_static(b"ab"));
        q.advance(3);
    }

    #[test]
    fn shedding_drops_oldest_droppable_only() {
        let mut q = SendQueue::default();
        q.push(Bytes::from_static(b"W")); // a welcome: must be written
        for b in [b"1111", b"2222", b"3333", b"4444"] {
            q.push_droppable(Bytes::from_static(b));
        }
        q.push(Bytes::from_static(b"K")); // a control frame: must be written
        assert_eq!(q.len_bytes(), 18);
        let shed = q.shed_oldest(10);
        assert_eq!(
            shed,
            Shed {
                chunks: 2,
                bytes: 8
            }
        );
        assert_eq!(collect(&q), b"W33334444K");
        assert_eq!(q.len_bytes(), 10);
        // Nothing droppable left under the target: no-op.
        assert_eq!(q.shed_oldest(10), Shed::default());
        // Everything droppable goes when the target is zero; the rest stays.
        q.shed_oldest(0);
        assert_eq!(collect(&q), b"WK");
    }

    #[test]
    fn in_flight_and_partly_written_chunks_are_never_shed() {
        let mut q = SendQueue::default();
        for b in [b"aaaa", b"bbbb", b"cccc"] {
            q.push_droppable(Bytes::from_static(b));
        }
        q.set_in_flight(2);
        q.shed_oldest(0);
        assert_eq!(collect(&q), b"aaaabbbb");
        q.set_in_flight(0);
        q.advance(2); // "aa" written: the front is partial now
        q.shed_oldest(0);
        assert_eq!(collect(&q), b"aa");
        q.advance(2);
        assert!(q.is_empty());
    }
}
