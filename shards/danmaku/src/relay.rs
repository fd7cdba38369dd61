//! The events of one batch as they cross hosts (rooms across hosts, through Redis): a compact
//! binary form without seqs, since the seqs are given by Redis when the batch is published.
//!
//! ```text
//! batch  = version:u8 (1) count:u32 event*
//! event  = kind:u8 time_ms:u64 body
//! chat   (1) = user:str text:str color:u32 mode:u8
//! like   (2) = total:u64 added:u64
//! gift   (3) = user:str gift_id:u32 count:u32 value:u64
//! system (4) = text:str
//! str    = len:u32 bytes (UTF-8)
//! ```
//!
//! Integers are little-endian. [`decode`] checks every length against the bytes left and
//! against [`RelayLimits`], and every string for UTF-8; what it returns is as trustworthy as
//! what the home shard itself orders (lengths within the room's limits).

use std::sync::Arc;

use crate::event::{ChatMode, EventBody, RoomEvent};

const VERSION: u8 = 1;
const CHAT: u8 = 1;
const LIKE: u8 = 2;
const GIFT: u8 = 3;
const SYSTEM: u8 = 4;

/// What [`decode`] accepts at most.
#[derive(Clone, Copy, Debug)]
pub struct RelayLimits {
    /// Events in one batch.
    pub events_max: usize,
    /// Bytes of one user name.
    pub user_max_bytes: usize,
    /// Bytes of one chat or notice text.
    pub text_max_bytes: usize,
}

/// Why a relayed batch was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The first byte is not a version this build reads.
    #[error("unknown relay version {0}")]
    Version(u8),
    /// The bytes end inside an event.
    #[error("relay batch truncated")]
    Truncated,
    /// More events than [`RelayLimits::events_max`].
    #[error("relay batch has {0} events, more than allowed")]
    TooManyEvents(u32),
    /// An event kind this build does not know.
    #[error("unknown event kind {0}")]
    Kind(u8),
    /// A user name or text over its limit.
    #[error("a string is longer than allowed ({0} bytes)")]
    TooLong(usize),
    /// A string that is not UTF-8.
    #[error("a string is not UTF-8")]
    Utf8,
    /// A chat mode this build does not know.
    #[error("unknown chat mode {0}")]
    Mode(u8),
    /// Bytes left after the last event.
    #[error("{0} bytes after the last event")]
    Trailing(usize),
}

/// Appends the encoding of `events` (their seqs are not encoded) to `out`.
pub fn encode(events: &[RoomEvent], out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for event in events {
        let kind = match event.body {
            EventBody::Chat { .. } => CHAT,
            EventBody::Like { .. } => LIKE,
            EventBody::Gift { .. } => GIFT,
            EventBody::System { .. } => SYSTEM,
        };
        out.push(kind);
        out.extend_from_slice(&event.time_ms.to_le_bytes());
        match &event.body {
            EventBody::Chat {
                user,
                text,
                color,
                mode,
            } => {
                put_str(out, user);
                put_str(out, text);
                out.extend_from_slice(&color.to_le_bytes());
                out.push(match mode {
                    ChatMode::Scroll => 0,
                    ChatMode::Top => 1,
                    ChatMode::Bottom => 2,
                });
            }
            EventBody::Like { total, added } => {
                out.extend_from_slice(&total.to_le_bytes());
                out.extend_from_slice(&added.to_le_bytes());
            }
            EventBody::Gift {
                user,
                gift_id,
                count,
                value,
            } => {
                put_str(out, user);
                out.extend_from_slice(&gift_id.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            EventBody::System { text } => put_str(out, text),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The events of an encoded batch, with seq 0 (the caller numbers them).
pub fn decode(bytes: &[u8], limits: &RelayLimits) -> Result<Vec<RoomEvent>, RelayError> {
    let mut r = Reader { bytes };
    let version = r.u8()?;
    if version != VERSION {
        return Err(RelayError::Version(version));
    }
    let count = r.u32()?;
    if count as usize > limits.events_max {
        return Err(RelayError::TooManyEvents(count));
    }
    let mut events = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let kind = r.u8()?;
        let time_ms = r.u64()?;
        let body = match kind {
            CHAT => EventBody::Chat {
                user: r.str(limits.user_max_bytes)?,
                text: r.str(limits.text_max_bytes)?,
                color: r.u32()?,
                mode: match r.u8()? {
                    0 => ChatMode::Scroll,
                    1 => ChatMode::Top,
                    2 => ChatMode::Bottom,
                    other => return Err(RelayError::Mode(other)),
                },
            },
            LIKE => EventBody::Like {
                total: r.u64()?,
                added: r.u64()?,
            },
            GIFT => EventBody::Gift {
                user: r.str(limits.user_max_bytes)?,
                gift_id: r.u32()?,
                count: r.u32()?,
                value: r.u64()?,
            },
            SYSTEM => EventBody::System {
                text: r.str(limits.text_max_bytes)?,
            },
            other => return Err(RelayError::Kind(other)),
        };
        events.push(RoomEvent {
            seq: 0,
            time_ms,
            body,
        });
    }
    if !r.bytes.is_empty() {
        return Err(RelayError::Trailing(r.bytes.len()));
    }
    Ok(events)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], RelayError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(RelayError::Truncated)?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, RelayError> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, RelayError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, RelayError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn str(&mut self, max_bytes: usize) -> Result<Arc<str>, RelayError> {
        let len = self.u32()? as usize;
        if len > max_bytes {
            return Err(RelayError::TooLong(len));
        }
        if len > self.bytes.len() {
            return Err(RelayError::Truncated);
        }
        let (s, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        std::str::from_utf8(s)
            .map(Arc::from)
            .map_err(|_| RelayError::Utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RelayLimits = RelayLimits {
        events_max: 16,
        user_max_bytes: 8,
        text_max_bytes: 32,
    };

    fn events() -> Vec<RoomEvent> {
        let at = |time_ms, body| RoomEvent {
            seq: 0,
            time_ms,
            body,
        };
        vec![
            at(
                1,
                EventBody::Chat {
                    user: "ann".into(),
                    text: "héllo".into(),
                    color: 0xff8800,
                    mode: ChatMode::Top,
                },
            ),
            at(2, EventBody::Like { total: 9, added: 3 }),
            at(
                3,
                EventBody::Gift {
                    user: "bob".into(),
                    gift_id: 7,
                    count: 2,
                    value: 200,
                },
            ),
            at(4, EventBody::System { text: "".into() }),
        ]
    }

    #[test]
    fn a_batch_round_trips() {
        let mut bytes = Vec::new();
        encode(&events(), &mut bytes);
        assert_eq!(decode(&bytes, &LIMITS).unwrap(), events());
        let mut empty = Vec::new();
        encode(&[], &mut empty);
        assert_eq!(decode(&empty, &LIMITS).unwrap(), []);
    }

    #[test]
    fn every_truncation_and_corruption_is_refused() {
        let mut bytes = Vec::new();
        encode(&events(), &mut bytes);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], &LIMITS).is_err(), "cut at {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode(&long, &LIMITS), Err(RelayError::Trailing(1)));
        let mut version = bytes.clone();
        version[0] = 2;
        assert_eq!(decode(&version, &LIMITS), Err(RelayError::Version(2)));
        let mut kind = bytes.clone();
        kind[5] = 9;
        assert_eq!(decode(&kind, &LIMITS), Err(RelayError::Kind(9)));
        // The user name's length (after version, count, kind, time) past the limit.
        let mut user = bytes.clone();
        user[14..18].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(decode(&user, &LIMITS), Err(RelayError::TooLong(9)));
        let mut utf8 = bytes.clone();
        utf8[18] = 0xff;
        assert_eq!(decode(&utf8, &LIMITS), Err(RelayError::Utf8));
        let mut count = bytes;
        count[1..5].copy_from_slice(&17u32.to_le_bytes());
        assert_eq!(decode(&count, &LIMITS), Err(RelayError::TooManyEvents(17)));
    }
}
