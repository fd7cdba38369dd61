//! The errors of this layer: a peer breaking RTMP or crossing a cap, malformed AMF0, a
//! configuration the session cannot run with, and an answer to a publish that is no longer
//! pending.

/// Why a session stopped: the peer broke the RTMP 1.0 rules, sent something this ingest server
/// does not speak, crossed a cap in [`SessionConfig`](crate::SessionConfig), or was too slow.
///
/// After a session returns an `RtmpError` it is finished: it ignores further input, drops
/// what it had queued to send, and the caller closes the connection. RTMP has no error frame
/// below the command layer, so there is nothing more to say to the peer; the variant is for
/// the log line.
///
/// Limit errors carry the limit and the value seen. Every variant except
/// [`HandshakeTimeout`](Self::HandshakeTimeout) is decided from bytes alone, so the same input
/// gives the same error however it is split across calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtmpError {
    /// C0 (or S0, on the client side) names a version other than 3. Version 6 is RTMPE
    /// (encrypted), which this server does not speak; anything else is not RTMP.
    #[error("handshake version {seen}, not 3")]
    BadVersion {
        /// The version byte received.
        seen: u8,
    },
    /// The handshake and the `connect` command did not complete within
    /// [`SessionConfig::handshake_timeout_ms`](crate::SessionConfig::handshake_timeout_ms).
    #[error("handshake and connect not done after {elapsed_ms} ms (limit {limit_ms} ms)")]
    HandshakeTimeout {
        /// The configured limit, in milliseconds.
        limit_ms: u64,
        /// The time since the session was created, in milliseconds.
        elapsed_ms: u64,
    },
    /// The server's S2 does not echo the client's C1 (client side only).
    #[error("S2 does not echo C1")]
    HandshakeMismatch,
    /// A Set Chunk Size above
    /// [`SessionConfig::chunk_size_max`](crate::SessionConfig::chunk_size_max).
    #[error("chunk size {seen} exceeds the limit of {limit}")]
    ChunkSizeTooLarge {
        /// The configured limit, in bytes.
        limit: u32,
        /// The chunk size requested.
        seen: u32,
    },
    /// A Set Chunk Size of zero, or with its most significant bit set (RTMP 1.0 §5.4.1: the
    /// bit must be zero).
    #[error("invalid chunk size {seen:#x}")]
    InvalidChunkSize {
        /// The 32-bit value received.
        seen: u32,
    },
    /// A message header announces a message longer than
    /// [`SessionConfig::message_max_bytes`](crate::SessionConfig::message_max_bytes). Decided
    /// from the header, before any payload is buffered.
    #[error("message of {seen} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
        /// The length announced.
        seen: usize,
    },
    /// A command or data message (AMF) longer than
    /// [`SessionConfig::command_max_bytes`](crate::SessionConfig::command_max_bytes). Decided
    /// from the header, before any payload is buffered.
    #[error("command or data message of {seen} bytes exceeds the limit of {limit}")]
    CommandTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
        /// The length announced.
        seen: usize,
    },
    /// A chunk names a chunk stream id beyond the
    /// [`SessionConfig::chunk_streams_max`](crate::SessionConfig::chunk_streams_max) distinct
    /// ones already seen on this connection.
    #[error("{seen} chunk streams exceed the limit of {limit}")]
    TooManyChunkStreams {
        /// The configured limit.
        limit: usize,
        /// The number of chunk streams this chunk would make: always `limit + 1`.
        seen: usize,
    },
    /// Starting this message would take the bytes reserved for unfinished messages, across all
    /// chunk streams, past the cap in force:
    /// [`SessionConfig::partial_max_bytes_before_publish`](crate::SessionConfig::partial_max_bytes_before_publish)
    /// until a publish on the connection is accepted,
    /// [`SessionConfig::partial_max_bytes`](crate::SessionConfig::partial_max_bytes) after.
    /// Decided from the message's first chunk header, before any of its payload is buffered.
    #[error("{seen} bytes of unfinished messages exceed the limit of {limit}")]
    PartialBytesTooLarge {
        /// The limit in force, in bytes.
        limit: usize,
        /// The bytes reserved by unfinished messages, including this one.
        seen: usize,
    },
    /// The bytes queued for sending passed
    /// [`SessionConfig::transmit_queue_max_bytes`](crate::SessionConfig::transmit_queue_max_bytes):
    /// the peer makes the server answer faster than the caller drains
    /// [`poll_transmit`](crate::ServerSession::poll_transmit), for example by flooding pings or
    /// unknown commands.
    #[error("{seen} bytes queued for sending exceed the limit of {limit}")]
    TransmitQueueFull {
        /// The configured limit, in bytes.
        limit: usize,
        /// The bytes queued.
        seen: usize,
    },
    /// A protocol control or user control message shorter than its fixed format.
    #[error("message of type {type_id} has {len} bytes, fewer than its format needs")]
    MessageTooShort {
        /// The message type id.
        type_id: u8,
        /// The message's length.
        len: usize,
    },
    /// An AMF3 command or data message (type 17 or 15) whose body is not AMF0 behind a leading
    /// zero byte. Flash clients with `objectEncoding` 3 send those; OBS and ffmpeg never do.
    #[error("AMF3 message of type {type_id} is not supported")]
    Amf3Unsupported {
        /// The message type id.
        type_id: u8,
    },
    /// A command or data message is not valid AMF0, or crosses an AMF cap.
    #[error("bad AMF0: {0}")]
    Amf(#[from] AmfError),
    /// The peer broke a rule of RTMP 1.0 or of the NetConnection/NetStream command sequence;
    /// the text says which.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
}

/// Why AMF0 bytes could not be decoded.
///
/// Limit errors carry the limit and the value seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    /// The input ends inside a value. A command is always a whole message, so this is not
    /// "need more bytes": the message itself is short.
    #[error("AMF0 input ends inside a value")]
    Truncated,
    /// A type marker this decoder does not accept: movie clip (4), reference (7), record set
    /// (14), XML document (15), typed object (16), the AMF3 switch (17), the "unsupported"
    /// marker (13), or a byte that is no marker at all.
    #[error("AMF0 marker {marker:#04x} is not supported")]
    UnsupportedMarker {
        /// The marker byte.
        marker: u8,
    },
    /// An object property with an empty name that is not followed by the object-end marker.
    #[error(
        "AMF0 property with an empty name, followed by marker {marker:#04x} instead of object end"
    )]
    EmptyKey {
        /// The marker that followed the empty name.
        marker: u8,
    },
    /// Objects and arrays nested deeper than
    /// [`AmfLimits::depth_max`](crate::AmfLimits::depth_max).
    #[error("AMF0 nesting depth {seen} exceeds the limit of {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
        /// The depth reached: always `limit + 1`.
        seen: usize,
    },
    /// More values in one message than
    /// [`AmfLimits::values_max`](crate::AmfLimits::values_max), counting nested ones.
    #[error("more than {limit} AMF0 values in one message")]
    TooManyValues {
        /// The configured limit.
        limit: usize,
        /// The count reached: always `limit + 1`.
        seen: usize,
    },
}

/// Why a [`SessionConfig`](crate::SessionConfig) was refused by
/// [`validate`](crate::SessionConfig::validate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field that must be positive is zero.
    #[error("{field} must not be zero")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// A field is outside the range it may take.
    #[error("{field} {value} is outside {min}..={max}")]
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The configured value.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// [`partial_max_bytes`](crate::SessionConfig::partial_max_bytes) is below
    /// [`message_max_bytes`](crate::SessionConfig::message_max_bytes), so a message at the
    /// cap could never be received.
    #[error(
        "partial_max_bytes {partial_max_bytes} is below message_max_bytes {message_max_bytes}"
    )]
    PartialBelowMessage {
        /// The configured partial cap.
        partial_max_bytes: usize,
        /// The configured message cap.
        message_max_bytes: usize,
    },
    /// [`partial_max_bytes_before_publish`](crate::SessionConfig::partial_max_bytes_before_publish)
    /// is below [`command_max_bytes`](crate::SessionConfig::command_max_bytes), so a command at
    /// its cap could never be received before publishing, or above
    /// [`partial_max_bytes`](crate::SessionConfig::partial_max_bytes), so it would not lower
    /// the cap for connections that have not been accepted as publishers.
    #[error(
        "partial_max_bytes_before_publish {partial_max_bytes_before_publish} is outside \
         command_max_bytes {command_max_bytes} ..= partial_max_bytes {partial_max_bytes}"
    )]
    PartialBeforePublishOutOfRange {
        /// The configured cap before publishing.
        partial_max_bytes_before_publish: usize,
        /// The configured command cap: the smallest allowed value.
        command_max_bytes: usize,
        /// The configured partial cap: the largest allowed value.
        partial_max_bytes: usize,
    },
}

/// [`ServerSession::accept_publish`](crate::ServerSession::accept_publish) or
/// [`reject_publish`](crate::ServerSession::reject_publish) named a stream with no publish
/// waiting for an answer: the client deleted or closed the stream in the meantime, the session
/// is finished, or the stream was answered already. Nothing was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no publish is pending on stream {stream_id}")]
pub struct NoPendingPublish {
    /// The stream id passed in.
    pub stream_id: u32,
}
