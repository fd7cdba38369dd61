//! Sample messages shared by the integration tests.

#![allow(dead_code)]

use shardcast_wire::{ChatMode, ClientMsg, EventBodyView, EventView, Role, WelcomeView};

/// One of each client message, with edge values.
pub fn client_samples() -> Vec<ClientMsg<'static>> {
    vec![
        ClientMsg::Hello {
            room: "room-1",
            token: "v1.alice.room-1.viewer.1700000000.c2lnbmF0dXJl",
            last_seq: 42,
            client_version: "load/0.1",
            epoch: "3f2a9c0e11d4b7a5",
        },
        ClientMsg::Hello {
            room: "大厅",
            token: "",
            last_seq: 0,
            client_version: "",
            epoch: "",
        },
        ClientMsg::Hello {
            room: "",
            token: "t",
            last_seq: u64::MAX,
            client_version: "v",
            epoch: "e",
        },
        ClientMsg::Chat {
            text: "hello 世界 🎉",
            color: 0xff8800,
            mode: ChatMode::Top,
        },
        ClientMsg::Chat {
            text: "",
            color: 0,
            mode: ChatMode::Scroll,
        },
        ClientMsg::Chat {
            text: "bottom",
            color: u32::MAX,
            mode: ChatMode::Bottom,
        },
        ClientMsg::Like { count: 1 },
        ClientMsg::Like { count: 0 },
        ClientMsg::Like { count: u32::MAX },
        ClientMsg::Gift {
            gift_id: 7,
            count: 3,
            idempotency_key: "k-123",
        },
        ClientMsg::Gift {
            gift_id: 0,
            count: 1,
            idempotency_key: "",
        },
        ClientMsg::Heartbeat {
            client_time_ms: 1_700_000_000_123,
        },
        ClientMsg::Heartbeat { client_time_ms: 0 },
        ClientMsg::History {
            from_seq: 100,
            limit: 50,
        },
        ClientMsg::KickUser {
            user: "spammer",
            reason: "spam",
        },
        ClientMsg::KickUser {
            user: "quiet",
            reason: "",
        },
    ]
}

pub const WELCOME: WelcomeView<'static> = WelcomeView {
    user: "alice",
    room: "room-1",
    seq: 41,
    online: 1234,
    heartbeat_ms: 15_000,
    role: Role::Admin,
    epoch: "3f2a9c0e11d4b7a5",
};

/// Consecutive events from 42, one of each kind (chat twice).
pub fn events() -> Vec<EventView<'static>> {
    let t = 1_700_000_000_000;
    vec![
        EventView {
            seq: 42,
            time_ms: t,
            body: EventBodyView::Chat {
                user: "bob",
                text: "hi 👋",
                color: 0xffffff,
                mode: ChatMode::Scroll,
            },
        },
        EventView {
            seq: 43,
            time_ms: t + 1,
            body: EventBodyView::Like {
                total: 1000,
                added: 5,
            },
        },
        EventView {
            seq: 44,
            time_ms: t + 2,
            body: EventBodyView::Gift {
                user: "carol",
                gift_id: 7,
                count: 3,
                value: 300,
            },
        },
        EventView {
            seq: 45,
            time_ms: t + 3,
            body: EventBodyView::System {
                text: "stream is live",
            },
        },
        EventView {
            seq: 46,
            time_ms: t + 4,
            body: EventBodyView::Chat {
                user: "",
                text: "anonymous bottom",
                color: 0x00ff00,
                mode: ChatMode::Bottom,
            },
        },
    ]
}

/// `n` chat events from `first_seq`, with texts borrowed from `texts`.
pub fn chat_events(first_seq: u64, texts: &[String]) -> Vec<EventView<'_>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| EventView {
            seq: first_seq + i as u64,
            time_ms: 1_700_000_000_000 + i as u64,
            body: EventBodyView::Chat {
                user: "user-0001",
                text,
                color: 0xffffff,
                mode: ChatMode::Scroll,
            },
        })
        .collect()
}

/// A deterministic xorshift64* generator for fuzz loops.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
