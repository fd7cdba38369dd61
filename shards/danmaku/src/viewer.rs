//! Per-connection rate limits, applied on the viewer's shard before anything is forwarded to
//! the room's home shard.
//!
//! Call order: one [`ViewerGate`] per connection that may send; call
//! [`ViewerGate::handle_chat`] for each chat and [`ViewerGate::handle_likes`] for each Like
//! message, with the shard loop's `now_ms`. Size checks and the [`crate::WordFilter`] run beside
//! it; the room applies its own per-room cap afterwards.

use crate::bucket::TokenBucket;

/// Per-connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerLimits {
    /// Chats per second, sustained.
    pub chat_per_s: u32,
    /// Chats allowed in a burst.
    pub chat_burst: u32,
    /// Likes per second, sustained (counted in likes, not messages: clients batch taps).
    pub likes_per_s: u32,
    /// Likes allowed in a burst.
    pub likes_burst: u32,
    /// Gifts per second, sustained (a guard against runaway clients; gifts cost money).
    pub gifts_per_s: u32,
    /// Gifts allowed in a burst.
    pub gifts_burst: u32,
}

impl Default for ViewerLimits {
    fn default() -> Self {
        ViewerLimits {
            chat_per_s: 1,
            chat_burst: 3,
            likes_per_s: 20,
            likes_burst: 50,
            gifts_per_s: 5,
            gifts_burst: 20,
        }
    }
}

/// The rate limits of one connection. Memory: 96 bytes.
#[derive(Clone, Debug)]
pub struct ViewerGate {
    chat: TokenBucket,
    likes: TokenBucket,
    gifts: TokenBucket,
}

impl ViewerGate {
    /// A gate with full buckets.
    pub fn new(limits: &ViewerLimits) -> Self {
        ViewerGate {
            chat: TokenBucket::new(limits.chat_per_s, limits.chat_burst),
            likes: TokenBucket::new(limits.likes_per_s, limits.likes_burst),
            gifts: TokenBucket::new(limits.gifts_per_s, limits.gifts_burst),
        }
    }

    /// True when the connection may send this chat now.
    pub fn handle_chat(&mut self, now_ms: u64) -> bool {
        self.chat.try_take(now_ms, 1)
    }

    /// How many of `count` likes the connection may send now (the rest are dropped; likes are
    /// not worth an error).
    pub fn handle_likes(&mut self, now_ms: u64, count: u32) -> u32 {
        self.likes.take_up_to(now_ms, count)
    }

    /// True when the connection may send this gift now. A refused gift must be answered with
    /// an error so the client retries with the same idempotency key.
    pub fn handle_gift(&mut self, now_ms: u64) -> bool {
        self.gifts.try_take(now_ms, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chat_rate_is_one_per_second_burst_three() {
        let mut gate = ViewerGate::new(&ViewerLimits::default());
        assert!(gate.handle_chat(0));
        assert!(gate.handle_chat(0));
        assert!(gate.handle_chat(0));
        assert!(!gate.handle_chat(999));
        assert!(gate.handle_chat(1_000));
        assert!(!gate.handle_chat(1_000));
    }

    #[test]
    fn likes_are_clipped_not_refused() {
        let mut gate = ViewerGate::new(&ViewerLimits::default());
        assert_eq!(gate.handle_likes(0, 30), 30);
        assert_eq!(gate.handle_likes(0, 30), 20);
        assert_eq!(gate.handle_likes(0, 30), 0);
        assert_eq!(gate.handle_likes(500, 30), 10);
    }
}
