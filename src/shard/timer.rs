//! The keys of a shard's timers. The engine's wheel carries a `u64` per timer; this is the one
//! place that says what the bits mean.

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKey {
    /// A connection's timeout (HTTP header or idle, WebSocket hello/ping/stall, RTMP
    /// handshake), by connection slot; the connection's kind says whose it is.
    Conn { slot: u32 },
    /// A danmaku room homed here, by its index in the home-room table.
    Room { index: u32 },
    /// A stream homed here, by its index in the stream-home table.
    Stream { index: u32 },
    /// The sweep of waiting LL-HLS requests.
    Waiters,
    /// The retirement of ended streams from this shard's index.
    Retire,
}

/// Timers a shard may hold that are not a connection's: one per room homed here (at most
/// `danmaku.rooms_max_per_shard`), one per stream homed here (at most `media.streams_max`),
/// the waiters' sweep and the index's retirement of ended streams. Every connection holds at most one (`TimerKey::Conn`). The engine's
/// wheel is sized from both, so arming a timer never fails while each limit holds.
pub fn other_timers(rooms_max: usize, streams_max: usize) -> usize {
    rooms_max + streams_max + 2
}

const TAG_SHIFT: u32 = 56;
const CONN: u64 = 1;
const ROOM: u64 = 2;
const STREAM: u64 = 3;
const WAITERS: u64 = 4;
const RETIRE: u64 = 5;

impl TimerKey {
    /// The wheel's key.
    pub fn encode(self) -> u64 {
        let (tag, payload) = match self {
            TimerKey::Conn { slot } => (CONN, slot),
            TimerKey::Room { index } => (ROOM, index),
            TimerKey::Stream { index } => (STREAM, index),
            TimerKey::Waiters => (WAITERS, 0),
            TimerKey::Retire => (RETIRE, 0),
        };
        tag << TAG_SHIFT | u64::from(payload)
    }

    /// The key back from the wheel; `None` for a key this module did not make.
    pub fn decode(key: u64) -> Option<TimerKey> {
        let payload = u32::try_from(key & ((1 << TAG_SHIFT) - 1)).ok()?;
        Some(match key >> TAG_SHIFT {
            CONN => TimerKey::Conn { slot: payload },
            ROOM => TimerKey::Room { index: payload },
            STREAM => TimerKey::Stream { index: payload },
            WAITERS if payload == 0 => TimerKey::Waiters,
            RETIRE if payload == 0 => TimerKey::Retire,
            _ => return None,
        })
    }
}

impl From<TimerKey> for u64 {
    fn from(key: TimerKey) -> u64 {
        key.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_and_strangers_are_refused() {
        for key in [
            TimerKey::Conn { slot: 0 },
            TimerKey::Conn { slot: u32::MAX },
            TimerKey::Room { index: 7 },
            TimerKey::Stream { index: 123_456 },
            TimerKey::Waiters,
            TimerKey::Retire,
        ] {
            assert_eq!(TimerKey::decode(key.encode()), Some(key));
        }
        assert_eq!(TimerKey::decode(0), None);
        assert_eq!(TimerKey::decode(9 << TAG_SHIFT), None);
        assert_eq!(TimerKey::decode(CONN << TAG_SHIFT | 1 << 40), None);
    }
}
