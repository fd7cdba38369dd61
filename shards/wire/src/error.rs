//! Why a message was refused.

/// Why [`decode_client`](crate::decode_client) or [`decode_server`](crate::decode_server)
/// refused a message. Every variant is the peer's doing; the server answers with WebSocket
/// close 1007 (or 1009 for [`TooLarge`](WireError::TooLarge)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message is longer than [`VerifyLimits::max_bytes`](crate::VerifyLimits::max_bytes).
    /// Checked before anything else, so an oversized message costs nothing to refuse.
    #[error("message of {seen} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// The limit in force.
        limit: usize,
        /// The message's length.
        seen: usize,
    },
    /// The flatbuffers verifier refused the message: truncated, an offset out of range,
    /// misaligned, a required field missing, invalid UTF-8, or over the depth, table or
    /// apparent-size limit.
    #[error("invalid message: {0}")]
    Invalid(#[from] flatbuffers::InvalidFlatbuffer),
    /// The message's body (or an event's body) is of type NONE, or of a type this version does
    /// not know.
    #[error("message body type is NONE or unknown to {}", crate::SUBPROTOCOL)]
    UnknownBody,
    /// An enum field holds a value this version does not know.
    #[error("unknown {field} value {value}")]
    UnknownEnum {
        /// The field, as `Table.field`.
        field: &'static str,
        /// The value seen.
        value: u8,
    },
}
