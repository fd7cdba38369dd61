//! The caps a [`Decoder`](crate::Decoder) enforces, and the ceiling on them.

use crate::{LimitsError, CONTROL_PAYLOAD_MAX_BYTES};

/// The largest value any cap in [`Limits`] may take: 64 MiB.
///
/// It bounds what one connection can ever make a shard hold, keeps every length sum inside
/// `usize` on 32-bit targets too, and refuses configuration typos such as a cap in bits.
pub const BYTES_MAX_CEILING: usize = 64 << 20;

/// Caps on what a peer may send on one WebSocket connection.
///
/// Both caps are checked from a frame's header, before any of its payload is buffered, so a
/// peer cannot make the decoder hold more than they allow by announcing a large frame and
/// trickling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload of a single frame, data or control. A larger frame is refused with
    /// close code 1009 as soon as its header has arrived.
    ///
    /// Costs no memory of its own: a data frame is part of a message, which
    /// [`message_max_bytes`](Self::message_max_bytes) bounds, and a control frame is at most
    /// 125 bytes. A frame that arrives whole in one read costs nothing per connection at all:
    /// it is unmasked into the caller's shard-wide scratch buffer. This cap lets a peer be
    /// refused early for one oversized frame even when messages may be larger. At least
    /// [`CONTROL_PAYLOAD_MAX_BYTES`] (so every legal ping fits), at most
    /// [`BYTES_MAX_CEILING`].
    pub frame_max_bytes: usize,
    /// The largest reassembled message: the sum of the payloads of its frames. A frame that
    /// would take a message past it is refused with close code 1009 as soon as its header has
    /// arrived.
    ///
    /// Worst-case memory per connection: the fragments of a message that spans reads are kept
    /// in the connection's own buffer until its last frame, plus up to 125 bytes of a control
    /// frame split inside it, so `message_max_bytes + 125` bytes (10,000 connections at the
    /// default 64 KiB: 626 MiB). The buffer is freed as soon as the message completes, and the
    /// caller's scratch buffer grows to at most the same. At least 1, at most
    /// [`BYTES_MAX_CEILING`].
    pub message_max_bytes: usize,
}

impl Limits {
    /// The defaults: 64 KiB frames and 64 KiB messages, far above a danmaku message and small
    /// enough that an idle-heavy shard survives every connection being mid-message.
    pub const DEFAULT: Limits = Limits {
        frame_max_bytes: 65536,
        message_max_bytes: 65536,
    };

    /// Checks each cap against its floor and ceiling.
    ///
    /// Configuration loading should call this to report a bad value;
    /// [`Decoder::new`](crate::Decoder::new) asserts it.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.frame_max_bytes < CONTROL_PAYLOAD_MAX_BYTES {
            return Err(LimitsError::FrameBelowControl {
                frame_max_bytes: self.frame_max_bytes,
                floor: CONTROL_PAYLOAD_MAX_BYTES,
            });
        }
        if self.message_max_bytes == 0 {
            return Err(LimitsError::Zero {
                field: "message_max_bytes",
            });
        }
        for (field, value) in [
            ("frame_max_bytes", self.frame_max_bytes),
            ("message_max_bytes", self.message_max_bytes),
        ] {
            if value > BYTES_MAX_CEILING {
                return Err(LimitsError::OverCeiling {
                    field,
                    value,
                    ceiling: BYTES_MAX_CEILING,
                });
            }
        }
        Ok(())
    }

    /// The most bytes a connection's own buffer (and the scratch buffer between two growths)
    /// ever has to hold: a message in progress plus a control frame split inside it.
    pub(crate) fn buffer_max_bytes(&self) -> usize {
        self.message_max_bytes + CONTROL_PAYLOAD_MAX_BYTES
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const _: () = assert!(Limits::DEFAULT.frame_max_bytes >= CONTROL_PAYLOAD_MAX_BYTES);
const _: () = assert!(Limits::DEFAULT.frame_max_bytes <= BYTES_MAX_CEILING);
const _: () = assert!(Limits::DEFAULT.message_max_bytes <= BYTES_MAX_CEILING);
// Sums of a message length, a frame length and a control payload stay far inside `usize` even
// where it is 32 bits.
const _: () = assert!(2 * BYTES_MAX_CEILING + CONTROL_PAYLOAD_MAX_BYTES <= u32::MAX as usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Limits::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_limits_are_refused() {
        let base = Limits::DEFAULT;
        let cases = [
            (
                Limits {
                    frame_max_bytes: 124,
                    ..base
                },
                LimitsError::FrameBelowControl {
                    frame_max_bytes: 124,
                    floor: 125,
                },
            ),
            (
                Limits {
                    message_max_bytes: 0,
                    ..base
                },
                LimitsError::Zero {
                    field: "message_max_bytes",
                },
            ),
            (
                Limits {
                    frame_max_bytes: BYTES_MAX_CEILING + 1,
                    ..base
                },
                LimitsError::OverCeiling {
                    field: "frame_max_bytes",
                    value: BYTES_MAX_CEILING + 1,
                    ceiling: BYTES_MAX_CEILING,
                },
            ),
            (
                Limits {
                    message_max_bytes: BYTES_MAX_CEILING + 1,
                    ..base
                },
                LimitsError::OverCeiling {
                    field: "message_max_bytes",
                    value: BYTES_MAX_CEILING + 1,
                    ceiling: BYTES_MAX_CEILING,
                },
            ),
        ];
        for (limits, error) in cases {
            assert_eq!(limits.validate(), Err(error), "{limits:?}");
        }
        let extremes = [
            Limits {
                frame_max_bytes: CONTROL_PAYLOAD_MAX_BYTES,
                message_max_bytes: 1,
            },
            Limits {
                frame_max_bytes: BYTES_MAX_CEILING,
                message_max_bytes: BYTES_MAX_CEILING,
            },
        ];
        for limits in extremes {
            assert_eq!(limits.validate(), Ok(()), "{limits:?}");
        }
    }
}
