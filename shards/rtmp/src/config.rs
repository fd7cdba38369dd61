//! What a [`ServerSession`](crate::ServerSession) is configured with: its caps, each with its
//! worst-case memory, and the values it announces to the client.

use crate::amf0::AmfLimits;
use crate::ConfigError;

/// The largest chunk size either side may use: 16,777,215 bytes. No message is longer (the
/// length field of a message header has 24 bits), so a larger chunk could never be filled.
pub const CHUNK_SIZE_CEILING: u32 = 0xFF_FFFF;

/// The chunk size both directions start with (RTMP 1.0 §5.4.1), until a Set Chunk Size.
pub const CHUNK_SIZE_DEFAULT: u32 = 128;

/// The longest message the RTMP header can describe: 16,777,215 bytes (24 bits).
pub const MESSAGE_LENGTH_CEILING: usize = 0xFF_FFFF;

/// The most distinct chunk stream ids any configuration may allow per connection. Each costs
/// about 64 bytes of state; RTMP allows 65,598 of them, no encoder uses more than a handful.
pub const CHUNK_STREAMS_CEILING: usize = 1024;

/// The largest [`SessionConfig::partial_max_bytes`] any configuration may set: 64 MiB. It
/// bounds what one connection can make a shard hold and refuses typos such as a cap in bits.
pub const PARTIAL_BYTES_CEILING: usize = 64 << 20;

/// The deepest AMF nesting any configuration may allow. The decoder recurses once per level,
/// so this also bounds its stack use (a few hundred bytes a level).
pub const AMF_DEPTH_CEILING: usize = 64;

/// The most AMF values per message any configuration may allow.
pub const AMF_VALUES_CEILING: usize = 65_536;

/// The most message streams (`createStream`) any configuration may allow per connection.
pub const STREAMS_CEILING: usize = 64;

/// The smallest [`SessionConfig::transmit_queue_max_bytes`]: room for the handshake answer
/// (3,073 bytes) and the answer to `connect`, which are queued before the caller can drain
/// anything.
pub const TRANSMIT_QUEUE_FLOOR: usize = 16 << 10;

/// The caps and announced values of one RTMP server session.
///
/// Every cap is checked as early as the bytes allow: message lengths from the first chunk
/// header of a message, before any of its payload is buffered, so a peer cannot make the
/// session hold more than these fields say by announcing large messages and trickling them.
///
/// # Memory per connection
///
/// A session holds, at most: about 1 KiB of fixed state; `chunk_streams_max` × 64 bytes of
/// chunk stream state (4 KiB at the default); the C1 packet during the handshake (1,536
/// bytes, freed after it); unfinished messages, up to
/// [`partial_max_bytes_before_publish`](Self::partial_max_bytes_before_publish) until a publish
/// is accepted and [`partial_max_bytes`](Self::partial_max_bytes) from then on;
/// [`transmit_queue_max_bytes`](Self::transmit_queue_max_bytes) of answers not yet taken by
/// [`poll_transmit`](crate::ServerSession::poll_transmit); and, while one command or data
/// message is being decoded, `command_max_bytes` + `amf_values_max` × 64 bytes (128 KiB at the
/// defaults). At the defaults that is about 450 KiB for a connection that has not been accepted
/// as a publisher (anyone who can reach the port can hold this much), about 12.4 MiB for an
/// accepted publisher in the worst case, and a few KiB for one that sends media at ordinary
/// bitrates: a message's buffer is handed to the caller, not kept, when it completes.
///
/// Completed messages are the caller's once they are reported: a caller that stops draining
/// [`poll_event`](crate::ServerSession::poll_event) holds them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long the handshake plus the `connect` command may take, from
    /// [`ServerSession::new`](crate::ServerSession::new). A slower client gets
    /// [`RtmpError::HandshakeTimeout`](crate::RtmpError::HandshakeTimeout). It frees the
    /// connection slot of a client that connects and says nothing; after `connect` an idle
    /// publisher is the caller's to time out. Costs no memory. At least 1.
    pub handshake_timeout_ms: u64,
    /// The largest chunk size the client may set. A larger Set Chunk Size is
    /// [`RtmpError::ChunkSizeTooLarge`](crate::RtmpError::ChunkSizeTooLarge).
    ///
    /// Costs no memory: payload bytes go straight into their message's buffer, which
    /// `message_max_bytes` bounds, whatever the chunk size. It refuses clients that try to
    /// disable chunking altogether (SRS and nginx-rtmp refuse above 65,536 as well). Between
    /// 128 and [`CHUNK_SIZE_CEILING`].
    pub chunk_size_max: u32,
    /// The chunk size the server announces in its answer to `connect` and uses from then on.
    /// Larger chunks mean fewer headers; the server only sends small command answers, so this
    /// matters little. Costs no memory. Between 128 and [`CHUNK_SIZE_CEILING`].
    pub chunk_size_out: u32,
    /// The longest message the client may send: a video keyframe is the largest thing an
    /// encoder sends (8 MiB holds an I-frame of a 4K stream at a generous bitrate). A longer
    /// one is [`RtmpError::MessageTooLarge`](crate::RtmpError::MessageTooLarge) as soon as its
    /// header arrives. Its memory is counted in `partial_max_bytes`. Between 1 and
    /// [`MESSAGE_LENGTH_CEILING`].
    pub message_max_bytes: usize,
    /// The longest command or data message (AMF0 or AMF3: types 15, 17, 18, 20). Real ones are
    /// under 2 KiB (`connect`, `onMetaData`); the cap keeps the decoded form small, since every
    /// byte of AMF can become a 64-byte value. A longer one is
    /// [`RtmpError::CommandTooLarge`](crate::RtmpError::CommandTooLarge) as soon as its header
    /// arrives. Between 1 and [`MESSAGE_LENGTH_CEILING`].
    pub command_max_bytes: usize,
    /// The most distinct chunk stream ids the client may use on one connection. OBS and
    /// ffmpeg use about five. Each costs about 64 bytes, kept until the connection ends: 4 KiB
    /// at the default. One more is
    /// [`RtmpError::TooManyChunkStreams`](crate::RtmpError::TooManyChunkStreams). Between 1 and
    /// [`CHUNK_STREAMS_CEILING`].
    pub chunk_streams_max: usize,
    /// The most bytes reserved for unfinished messages, across all chunk streams. A message's
    /// whole announced length is reserved when its first chunk arrives (so its payload is
    /// copied once, into a buffer that becomes the event's `Bytes`) and released when it
    /// completes or is aborted. This is the connection's worst-case message memory; 10,000
    /// connections each holding the default 12 MiB would be 120 GiB, so a shard's ingest
    /// connection count must be capped with this in mind. Starting a message past it is
    /// [`RtmpError::PartialBytesTooLarge`](crate::RtmpError::PartialBytesTooLarge). Between
    /// `message_max_bytes` and [`PARTIAL_BYTES_CEILING`]; the default leaves room for a
    /// keyframe at the cap plus 4 MiB of audio and data messages interleaved with it.
    ///
    /// It applies once [`accept_publish`](crate::ServerSession::accept_publish) has succeeded
    /// on the connection; until then the smaller
    /// [`partial_max_bytes_before_publish`](Self::partial_max_bytes_before_publish) does.
    pub partial_max_bytes: usize,
    /// The most bytes reserved for unfinished messages, counted as for `partial_max_bytes`,
    /// until a publish on the connection is accepted with
    /// [`accept_publish`](crate::ServerSession::accept_publish); from then on, for the rest of
    /// the connection, `partial_max_bytes` applies.
    ///
    /// It is what a connection that has not proved it may publish (it may not even have sent
    /// `connect`) can make a shard hold in unfinished messages: 64 KiB at the default, so
    /// 10,000 such connections cost 640 MiB rather than 120 GiB. Until the publish is accepted
    /// a client needs only command messages (`connect`, `releaseStream`, `FCPublish`,
    /// `createStream`, `publish`, each under 2 KiB in practice and under `command_max_bytes`
    /// by rule), protocol control messages and perhaps small data messages. Audio and video
    /// are counted against this cap like any other message, not refused outright: ffmpeg and
    /// OBS send none before `NetStream.Publish.Start`, and what a client that does not wait
    /// sends (sequence headers, small frames) is dropped unreported, as before, while a large
    /// one (a keyframe) is
    /// [`RtmpError::PartialBytesTooLarge`](crate::RtmpError::PartialBytesTooLarge) with this
    /// cap as its limit. Between `command_max_bytes` (so a command at its cap can always be
    /// received) and `partial_max_bytes`.
    pub partial_max_bytes_before_publish: usize,
    /// How deep objects and arrays may nest in one AMF0 message. `connect` from an Enhanced
    /// RTMP client nests three levels (`videoFourCcInfoMap`). Bounds the decoder's recursion.
    /// Between 1 and [`AMF_DEPTH_CEILING`].
    pub amf_depth_max: usize,
    /// The most AMF0 values in one message, nested ones included. Each decoded value costs up
    /// to 64 bytes (a property with its name), so the default costs at most 64 KiB while a
    /// message is handled. Between 1 and [`AMF_VALUES_CEILING`].
    pub amf_values_max: usize,
    /// The most message streams (`createStream`) open at once. OBS and ffmpeg open one. Each
    /// costs about 64 bytes. At the cap, `createStream` is answered with `_error`. Between 1 and
    /// [`STREAMS_CEILING`].
    pub streams_max: usize,
    /// The Window Acknowledgement Size the server announces: the client is asked to
    /// acknowledge every this many bytes it receives. The server sends little, so this only
    /// matters to clients that wait for acknowledgements. Costs no memory. At least 1.
    pub window_ack_size_bytes: u32,
    /// The Set Peer Bandwidth the server announces (limit type dynamic). Advisory: no client
    /// in scope throttles on it. Costs no memory. At least 1.
    pub peer_bandwidth_bytes: u32,
    /// The most bytes queued for sending before the caller takes them with
    /// [`poll_transmit`](crate::ServerSession::poll_transmit). Every answer is small and the
    /// caller drains after each call, so only a peer that floods requests (pings, unknown
    /// commands) within one read comes near it; past it the session fails with
    /// [`RtmpError::TransmitQueueFull`](crate::RtmpError::TransmitQueueFull). Between
    /// [`TRANSMIT_QUEUE_FLOOR`] and [`PARTIAL_BYTES_CEILING`].
    pub transmit_queue_max_bytes: usize,
}

impl SessionConfig {
    /// The defaults: a 10 s handshake, 64 KiB chunks in, 4 KiB chunks out, 8 MiB messages,
    /// 64 KiB commands, 64 chunk streams, 12 MiB of unfinished messages (64 KiB until a publish
    /// is accepted), AMF depth 16 and 1,024 values, 4 streams, a 2.5 MB window, and a 256 KiB
    /// send queue.
    pub const DEFAULT: SessionConfig = SessionConfig {
        handshake_timeout_ms: 10_000,
        chunk_size_max: 65_536,
        chunk_size_out: 4096,
        message_max_bytes: 8 << 20,
        command_max_bytes: 64 << 10,
        chunk_streams_max: 64,
        partial_max_bytes: 12 << 20,
        partial_max_bytes_before_publish: 64 << 10,
        amf_depth_max: 16,
        amf_values_max: 1024,
        streams_max: 4,
        window_ack_size_bytes: 2_500_000,
        peer_bandwidth_bytes: 2_500_000,
        transmit_queue_max_bytes: 256 << 10,
    };

    /// Checks each field against its range and the relations between them.
    ///
    /// Configuration loading should call this to report a bad value;
    /// [`ServerSession::new`](crate::ServerSession::new) asserts it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ranges: [(&'static str, u64, u64, u64); 11] = [
            (
                "handshake_timeout_ms",
                self.handshake_timeout_ms,
                1,
                u64::MAX,
            ),
            (
                "chunk_size_max",
                self.chunk_size_max.into(),
                CHUNK_SIZE_DEFAULT.into(),
                CHUNK_SIZE_CEILING.into(),
            ),
            (
                "chunk_size_out",
                self.chunk_size_out.into(),
                CHUNK_SIZE_DEFAULT.into(),
                CHUNK_SIZE_CEILING.into(),
            ),
            (
                "message_max_bytes",
                self.message_max_bytes as u64,
                1,
                MESSAGE_LENGTH_CEILING as u64,
            ),
            (
                "command_max_bytes",
                self.command_max_bytes as u64,
                1,
                MESSAGE_LENGTH_CEILING as u64,
            ),
            (
                "chunk_streams_max",
                self.chunk_streams_max as u64,
                1,
                CHUNK_STREAMS_CEILING as u64,
            ),
            (
                "partial_max_bytes",
                self.partial_max_bytes as u64,
                1,
                PARTIAL_BYTES_CEILING as u64,
            ),
            (
                "amf_depth_max",
                self.amf_depth_max as u64,
                1,
                AMF_DEPTH_CEILING as u64,
            ),
            (
                "amf_values_max",
                self.amf_values_max as u64,
                1,
                AMF_VALUES_CEILING as u64,
            ),
            (
                "streams_max",
                self.streams_max as u64,
                1,
                STREAMS_CEILING as u64,
            ),
            (
                "transmit_queue_max_bytes",
                self.transmit_queue_max_bytes as u64,
                TRANSMIT_QUEUE_FLOOR as u64,
                PARTIAL_BYTES_CEILING as u64,
            ),
        ];
        for (field, value, min, max) in ranges {
            if value == 0 && min > 0 {
                return Err(ConfigError::Zero { field });
            }
            if value < min || value > max {
                return Err(ConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        for (field, value) in [
            ("window_ack_size_bytes", self.window_ack_size_bytes),
            ("peer_bandwidth_bytes", self.peer_bandwidth_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.partial_max_bytes < self.message_max_bytes {
            return Err(ConfigError::PartialBelowMessage {
                partial_max_bytes: self.partial_max_bytes,
                message_max_bytes: self.message_max_bytes,
            });
        }
        let before = self.partial_max_bytes_before_publish;
        if before < self.command_max_bytes || before > self.partial_max_bytes {
            return Err(ConfigError::PartialBeforePublishOutOfRange {
                partial_max_bytes_before_publish: before,
                command_max_bytes: self.command_max_bytes,
                partial_max_bytes: self.partial_max_bytes,
            });
        }
        Ok(())
    }

    /// The AMF decoder's share of the caps.
    pub fn amf_limits(&self) -> AmfLimits {
        AmfLimits {
            depth_max: self.amf_depth_max,
            values_max: self.amf_values_max,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const _: () =
    assert!(SessionConfig::DEFAULT.partial_max_bytes >= SessionConfig::DEFAULT.message_max_bytes);
const _: () = assert!(SessionConfig::DEFAULT.partial_max_bytes <= PARTIAL_BYTES_CEILING);
const _: () = assert!(
    SessionConfig::DEFAULT.partial_max_bytes_before_publish
        >= SessionConfig::DEFAULT.command_max_bytes
);
const _: () = assert!(
    SessionConfig::DEFAULT.partial_max_bytes_before_publish
        <= SessionConfig::DEFAULT.partial_max_bytes
);
const _: () = assert!(SessionConfig::DEFAULT.message_max_bytes <= MESSAGE_LENGTH_CEILING);
const _: () = assert!(SessionConfig::DEFAULT.chunk_streams_max <= CHUNK_STREAMS_CEILING);
const _: () = assert!(SessionConfig::DEFAULT.transmit_queue_max_bytes >= TRANSMIT_QUEUE_FLOOR);
// Sums of reserved bytes, a message length and a queue length stay inside `usize` even where it
// is 32 bits.
const _: () = assert!(2 * PARTIAL_BYTES_CEILING + MESSAGE_LENGTH_CEILING <= u32::MAX as usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SessionConfig::default().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let base = SessionConfig::DEFAULT;
        let cases = [
            (
                SessionConfig {
                    handshake_timeout_ms: 0,
                    ..base
                },
                ConfigError::Zero {
                    field: "handshake_timeout_ms",
                },
            ),
            (
                SessionConfig {
                    chunk_size_max: 127,
                    ..base
                },
                ConfigError::OutOfRange {
                    field: "chunk_size_max",
                    value: 127,
                    min: 128,
                    max: CHUNK_SIZE_CEILING.into(),
                },
            ),
            (
                SessionConfig {
                    chunk_size_out: CHUNK_SIZE_CEILING + 1,
                    ..base
                },
                ConfigError::OutOfRange {
                    field: "chunk_size_out",
                    value: u64::from(CHUNK_SIZE_CEILING) + 1,
                    min: 128,
                    max: CHUNK_SIZE_CEILING.into(),
                },
            ),
            (
                SessionConfig {
                    message_max_bytes: MESSAGE_LENGTH_CEILING + 1,
                    partial_max_bytes: PARTIAL_BYTES_CEILING,
                    ..base
                },
                ConfigError::OutOfRange {
                    field: "message_max_bytes",
                    value: MESSAGE_LENGTH_CEILING as u64 + 1,
                    min: 1,
                    max: MESSAGE_LENGTH_CEILING as u64,
                },
            ),
            (
                SessionConfig {
                    chunk_streams_max: 0,
                    ..base
                },
                ConfigError::Zero {
                    field: "chunk_streams_max",
                },
            ),
            (
                SessionConfig {
                    partial_max_bytes: base.message_max_bytes - 1,
                    ..base
                },
                ConfigError::PartialBelowMessage {
                    partial_max_bytes: base.message_max_bytes - 1,
                    message_max_bytes: base.message_max_bytes,
                },
            ),
            (
                SessionConfig {
                    partial_max_bytes_before_publish: base.command_max_bytes - 1,
                    ..base
                },
                ConfigError::PartialBeforePublishOutOfRange {
                    partial_max_bytes_before_publish: base.command_max_bytes - 1,
                    command_max_bytes: base.command_max_bytes,
                    partial_max_bytes: base.partial_max_bytes,
                },
            ),
            (
                SessionConfig {
                    partial_max_bytes_before_publish: base.partial_max_bytes + 1,
                    ..base
                },
                ConfigError::PartialBeforePublishOutOfRange {
                    partial_max_bytes_before_publish: base.partial_max_bytes + 1,
                    command_max_bytes: base.command_max_bytes,
                    partial_max_bytes: base.partial_max_bytes,
                },
            ),
            (
                // A command cap above the partial cap leaves no valid value.
                SessionConfig {
                    command_max_bytes: MESSAGE_LENGTH_CEILING,
                    partial_max_bytes_before_publish: base.partial_max_bytes,
                    ..base
                },
                ConfigError::PartialBeforePublishOutOfRange {
                    partial_max_bytes_before_publish: base.partial_max_bytes,
                    command_max_bytes: MESSAGE_LENGTH_CEILING,
                    partial_max_bytes: base.partial_max_bytes,
                },
            ),
            (
                SessionConfig {
                    amf_depth_max: AMF_DEPTH_CEILING + 1,
                    ..base
                },
                ConfigError::OutOfRange {
                    field: "amf_depth_max",
                    value: AMF_DEPTH_CEILING as u64 + 1,
                    min: 1,
                    max: AMF_DEPTH_CEILING as u64,
                },
            ),
            (
                SessionConfig {
                    transmit_queue_max_bytes: TRANSMIT_QUEUE_FLOOR - 1,
                    ..base
                },
                ConfigError::OutOfRange {
                    field: "transmit_queue_max_bytes",
                    value: TRANSMIT_QUEUE_FLOOR as u64 - 1,
                    min: TRANSMIT_QUEUE_FLOOR as u64,
                    max: PARTIAL_BYTES_CEILING as u64,
                },
            ),
            (
                SessionConfig {
                    window_ack_size_bytes: 0,
                    ..base
                },
                ConfigError::Zero {
                    field: "window_ack_size_bytes",
                },
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error), "{config:?}");
        }
    }

    #[test]
    fn extremes_are_valid() {
        let smallest = SessionConfig {
            handshake_timeout_ms: 1,
            chunk_size_max: 128,
            chunk_size_out: 128,
            message_max_bytes: 1,
            command_max_bytes: 1,
            chunk_streams_max: 1,
            partial_max_bytes: 1,
            partial_max_bytes_before_publish: 1,
            amf_depth_max: 1,
            amf_values_max: 1,
            streams_max: 1,
            window_ack_size_bytes: 1,
            peer_bandwidth_bytes: 1,
            transmit_queue_max_bytes: TRANSMIT_QUEUE_FLOOR,
        };
        let largest = SessionConfig {
            handshake_timeout_ms: u64::MAX,
            chunk_size_max: CHUNK_SIZE_CEILING,
            chunk_size_out: CHUNK_SIZE_CEILING,
            message_max_bytes: MESSAGE_LENGTH_CEILING,
            command_max_bytes: MESSAGE_LENGTH_CEILING,
            chunk_streams_max: CHUNK_STREAMS_CEILING,
            partial_max_bytes: PARTIAL_BYTES_CEILING,
            partial_max_bytes_before_publish: PARTIAL_BYTES_CEILING,
            amf_depth_max: AMF_DEPTH_CEILING,
            amf_values_max: AMF_VALUES_CEILING,
            streams_max: STREAMS_CEILING,
            window_ack_size_bytes: u32::MAX,
            peer_bandwidth_bytes: u32::MAX,
            transmit_queue_max_bytes: PARTIAL_BYTES_CEILING,
        };
        for config in [smallest, largest] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }
}
