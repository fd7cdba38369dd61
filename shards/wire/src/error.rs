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
    /// Displayed on one line (the verifier's own text spans several, with its trace).
    #[error("invalid message: {}", one_line(.0))]
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

/// `error` as one line: the flatbuffers verifier's text puts each step of its trace on a line
/// of its own, which would break a log line in several.
fn one_line(error: &flatbuffers::InvalidFlatbuffer) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_error_displays_on_one_line() {
        // A Hello whose text is cut short: the verifier's text carries its trace on more
        // lines (while verifying the room field, the Hello table, the message table).
        let mut encoder = crate::ClientEncoder::new();
        let hello = encoder.hello("a room name", "token", 0, "test").to_vec();
        let cut = &hello[..hello.len() - 8];
        let Err(WireError::Invalid(error)) =
            crate::decode_client(cut, &crate::VerifyLimits::client())
        else {
            panic!("a cut message must fail verification");
        };
        assert!(error.to_string().contains('\n'), "{error}");
        let text = WireError::Invalid(error).to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("invalid message: "), "{text}");
    }
}
