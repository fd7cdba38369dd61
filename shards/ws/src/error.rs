//! The errors of this layer: a refused handshake, a peer breaking the framing rules, and a
//! configuration the decoder cannot run with.

use shardcast_http::Method;

use crate::{CloseCode, Opcode};

/// Why an opening handshake (RFC 6455 §4.2.1) was refused.
///
/// Every variant is the client's fault and maps to a status code ([`status`](Self::status)).
/// The caller answers with [`write_response`](Self::write_response), which also writes the
/// headers some statuses require, flushes it and closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The method is not GET (RFC 6455 §4.1). Status 405, with `Allow: GET`.
    #[error("WebSocket handshake with method {method:?}, not GET")]
    MethodNotGet {
        /// The method sent.
        method: Method,
    },
    /// The request is HTTP/1.0; a handshake needs HTTP/1.1 or later. Status 400.
    #[error("WebSocket handshake over HTTP/1.{minor}, not HTTP/1.1")]
    HttpVersion {
        /// The minor version sent.
        minor: u8,
    },
    /// The request declares a body. A handshake has none, and whatever follows its head must
    /// be frames, not a body: accepting both would let the two framings disagree. Status 400.
    #[error("WebSocket handshake with a {content_length}-byte body")]
    BodyNotAllowed {
        /// The declared `Content-Length`.
        content_length: u64,
    },
    /// No `Host` header, or an empty one: a handshake must name the server's authority.
    /// Status 400.
    #[error("WebSocket handshake without a Host")]
    MissingHost,
    /// No `Upgrade` header lists `websocket`. Status 400.
    #[error("request does not upgrade to websocket")]
    MissingUpgrade,
    /// No `Connection` header lists `upgrade`. Status 400.
    #[error("Connection header does not include upgrade")]
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is absent or not 13. Status 426, with
    /// `Sec-WebSocket-Version: 13` so the client can retry with a version this server speaks
    /// (RFC 6455 §4.4).
    #[error("unsupported WebSocket version {seen:?}")]
    UnsupportedVersion {
        /// The version sent; `None` when the header is absent, repeated or not a number.
        seen: Option<u16>,
    },
    /// No `Sec-WebSocket-Key` header. Status 400.
    #[error("WebSocket handshake without Sec-WebSocket-Key")]
    MissingKey,
    /// More than one `Sec-WebSocket-Key` header (RFC 6455 §11.3.1). Status 400.
    #[error("WebSocket handshake with more than one Sec-WebSocket-Key")]
    DuplicateKey,
    /// The `Sec-WebSocket-Key` value is not the base64 of 16 bytes (RFC 6455 §4.1).
    /// Status 400.
    #[error("Sec-WebSocket-Key of {len} bytes is not the base64 of 16 bytes")]
    InvalidKey {
        /// The value's length in bytes (a valid key has 24).
        len: usize,
    },
    /// The client offers subprotocols, but not the one this server speaks. Status 400: the
    /// server could only accept without one, which the client would then fail anyway.
    #[error("client offers subprotocols, but not the one this server speaks")]
    SubprotocolNotOffered,
}

impl HandshakeError {
    /// The status code to answer with before closing the connection.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::MethodNotGet { .. } => 405,
            HandshakeError::UnsupportedVersion { .. } => 426,
            HandshakeError::HttpVersion { .. }
            | HandshakeError::BodyNotAllowed { .. }
            | HandshakeError::MissingHost
            | HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::MissingKey
            | HandshakeError::DuplicateKey
            | HandshakeError::InvalidKey { .. }
            | HandshakeError::SubprotocolNotOffered => 400,
        }
    }

    /// Headers the status requires besides the standard ones.
    pub(crate) fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeError::MethodNotGet { .. } => &[("Allow", "GET")],
            HandshakeError::UnsupportedVersion { .. } => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }
}

/// Why a peer's frames were refused: it broke RFC 6455 §5, §7.4 or §8.1, or crossed a cap in
/// [`Limits`](crate::Limits).
///
/// Every variant maps to the close code to send ([`close_code`](Self::close_code)). After an
/// error the [`Decoder`](crate::Decoder) is finished and ignores further input: the caller
/// sends a Close frame with that code ([`CloseHandshake::handle_error`](crate::CloseHandshake::handle_error)),
/// flushes it and closes the TCP connection. Nothing after the bad bytes is trusted: the
/// framing of what follows is unknown.
///
/// Limit errors carry the limit and the value seen. Every variant is decided from bytes alone,
/// so the same input gives the same error however it is split across calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A frame from the client is not masked (RFC 6455 §5.1). Close code 1002.
    #[error("unmasked {opcode:?} frame from a client")]
    Unmasked {
        /// The frame's opcode.
        opcode: Opcode,
    },
    /// An RSV bit is set, but no extension was negotiated (RFC 6455 §5.2). Close code 1002.
    #[error("reserved bits {bits:#05b} set without an extension")]
    ReservedBits {
        /// RSV1, RSV2 and RSV3 as a three-bit number (RSV1 highest).
        bits: u8,
    },
    /// The opcode is reserved (3–7, 11–15) (RFC 6455 §5.2). Close code 1002.
    #[error("reserved opcode {opcode:#x}")]
    UnknownOpcode {
        /// The four-bit opcode.
        opcode: u8,
    },
    /// A control frame without FIN: control frames cannot be fragmented (RFC 6455 §5.5).
    /// Close code 1002.
    #[error("fragmented {opcode:?} frame")]
    FragmentedControl {
        /// The control opcode.
        opcode: Opcode,
    },
    /// A control frame announces more than 125 bytes (RFC 6455 §5.5). Decided from the 7-bit
    /// length field alone, so the extended length is never read. Close code 1002.
    #[error("{opcode:?} frame with length field {length_field}, above 125")]
    ControlTooLong {
        /// The control opcode.
        opcode: Opcode,
        /// The 7-bit length field: 126 or 127.
        length_field: u8,
    },
    /// A Close frame with a one-byte payload: a close body starts with a two-byte code
    /// (RFC 6455 §5.5.1). Close code 1002.
    #[error("Close frame with a one-byte payload")]
    CloseTooShort,
    /// A Close frame carries a code that may not appear on the wire (RFC 6455 §7.4): below
    /// 1000, 1004–1006, 1015, unassigned 1016–2999, or 5000 and above. Close code 1002.
    #[error("close code {code} is not allowed on the wire")]
    InvalidCloseCode {
        /// The code received.
        code: u16,
    },
    /// A continuation frame arrived with no fragmented message in progress (RFC 6455 §5.4).
    /// Close code 1002.
    #[error("continuation frame with no message in progress")]
    ContinuationWithoutMessage,
    /// A Text or Binary frame arrived while a fragmented message was still in progress
    /// (RFC 6455 §5.4). Close code 1002.
    #[error("{opcode:?} frame inside a fragmented message")]
    MessageInterrupted {
        /// The opcode of the interrupting frame.
        opcode: Opcode,
    },
    /// A 64-bit payload length has its most significant bit set (RFC 6455 §5.2).
    /// Close code 1002.
    #[error("64-bit payload length {length:#x} has its most significant bit set")]
    LengthHighBit {
        /// The length field as sent.
        length: u64,
    },
    /// A payload length is not in the shortest encoding, which RFC 6455 §5.2 requires.
    /// Close code 1002.
    #[error("payload length {length} sent in {field_bytes} extra bytes, not the minimum")]
    NonMinimalLength {
        /// The length.
        length: u64,
        /// The size of the extended length field used: 2 or 8.
        field_bytes: u8,
    },
    /// A text message, or a fragment of one, is not valid UTF-8 (RFC 6455 §5.6, §8.1).
    /// Detected as soon as a sequence cannot be completed, even in a fragment that is not the
    /// last; a character cut at the message's end is detected when the last frame ends.
    /// Close code 1007.
    #[error("invalid UTF-8 at byte {offset} of a text message")]
    InvalidUtf8 {
        /// Where the bad sequence starts, counted from the message's first byte.
        offset: usize,
    },
    /// A Close frame's reason is not valid UTF-8 (RFC 6455 §5.5.1). Close code 1007.
    #[error("invalid UTF-8 at byte {offset} of a close reason")]
    InvalidCloseReason {
        /// Where the bad sequence starts, counted from the reason's first byte.
        offset: usize,
    },
    /// A frame's payload is larger than
    /// [`Limits::frame_max_bytes`](crate::Limits::frame_max_bytes). Decided from the header,
    /// before any payload is buffered. Close code 1009.
    #[error("frame of {seen} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
        /// The payload length announced.
        seen: u64,
    },
    /// A frame would take its message past
    /// [`Limits::message_max_bytes`](crate::Limits::message_max_bytes). Decided from the
    /// header, before any payload is buffered. Close code 1009.
    #[error("message of at least {seen} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
        /// The message's bytes so far plus the frame's announced length.
        seen: u64,
    },
}

impl WsError {
    /// The close code to send before closing the connection.
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::Unmasked { .. }
            | WsError::ReservedBits { .. }
            | WsError::UnknownOpcode { .. }
            | WsError::FragmentedControl { .. }
            | WsError::ControlTooLong { .. }
            | WsError::CloseTooShort
            | WsError::InvalidCloseCode { .. }
            | WsError::ContinuationWithoutMessage
            | WsError::MessageInterrupted { .. }
            | WsError::LengthHighBit { .. }
            | WsError::NonMinimalLength { .. } => CloseCode::PROTOCOL_ERROR,
            WsError::InvalidUtf8 { .. } | WsError::InvalidCloseReason { .. } => {
                CloseCode::INVALID_PAYLOAD
            }
            WsError::FrameTooLarge { .. } | WsError::MessageTooLarge { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
        }
    }
}

/// Why a [`Limits`](crate::Limits) value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A cap that must admit at least something is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// `frame_max_bytes` is below 125, so legal control frames would be refused.
    #[error("frame_max_bytes {frame_max_bytes} is below the {floor} bytes of a control frame")]
    FrameBelowControl {
        /// The configured value.
        frame_max_bytes: usize,
        /// The floor: [`CONTROL_PAYLOAD_MAX_BYTES`](crate::CONTROL_PAYLOAD_MAX_BYTES).
        floor: usize,
    },
    /// A cap is above [`BYTES_MAX_CEILING`](crate::BYTES_MAX_CEILING).
    #[error("{field} {value} exceeds the ceiling of {ceiling}")]
    OverCeiling {
        /// The field's name.
        field: &'static str,
        /// The configured value.
        value: usize,
        /// The ceiling.
        ceiling: usize,
    },
}
