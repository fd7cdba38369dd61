//! The per-connection send queue: chunks of `Bytes` waiting to be written, in order.
//!
//! The engine keeps at most one send op in flight per connection. The op reads the chunks at
//! the front of the queue in place (a gathered write), so the queue is only ever appended to
//! while an op is in flight, and [`SendQueue::advance`] is called with the byte count the
//! kernel reports — which may be short.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;

/// Ordered chunks not yet written.
#[derive(Default)]
pub struct SendQueue {
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

impl SendQueue {
    /// Appends a chunk. Empty chunks are dropped.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
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
        self.chunks.iter()
    }

    /// The front chunk.
    pub fn front(&self) -> Option<&Bytes> {
        self.chunks.front()
    }

    /// Drops the first `n` bytes, which the kernel has written.
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.bytes, "advance {n} past queued {}", self.bytes);
        self.bytes -= n;
        while n > 0 {
            let front = self.chunks.front_mut().expect("bytes accounted");
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
        if self.chunks.is_empty() && self.chunks.capacity() > 16 {
            // A burst grew the deque; give the memory back so idle connections stay small.
            self.chunks = VecDeque::new();
        }
    }

    /// Drops every queued chunk. Only allowed when no send op reads them.
    pub fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.bytes = 0;
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
}
