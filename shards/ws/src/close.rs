//! Close codes and the server's half of the closing handshake.

use bytes::Bytes;

use crate::{close_frame, WsError};

/// A close code that may appear in a Close frame (RFC 6455 §7.4).
///
/// Only codes allowed on the wire can be built, so a [`close_frame`] never carries 1005, 1006
/// or 1015, which only name local conditions. The named constants are the ones a server
/// sends; [`new`](Self::new) validates any other, such as a received code or an application
/// code in 4000–4999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going away (shutting down, or the stream ended).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the peer sent a kind of data the endpoint cannot accept (text where only binary
    /// is understood, say).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: a message's data does not match its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: the peer broke a policy (authentication, rate limits, content rules).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1013: the server is at capacity; try again later (IANA registry, RFC 6455 §11.7).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// The code, if it may appear on the wire; `None` for the codes RFC 6455 §7.4 reserves
    /// or leaves unassigned.
    pub const fn new(code: u16) -> Option<CloseCode> {
        if Self::is_allowed_on_wire(code) {
            Some(CloseCode(code))
        } else {
            None
        }
    }

    /// Whether `code` may appear in a Close frame: 1000–1003, 1007–1014 (defined by RFC 6455
    /// or registered with IANA), and 3000–4999 (libraries, frameworks and applications).
    /// Below 1000, 1004 (reserved), 1005 and 1006 (local-only), 1015 (local-only), the
    /// unassigned 1016–2999 and 5000 and above are not.
    pub const fn is_allowed_on_wire(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// The numeric code.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The code to answer a peer's Close with (RFC 6455 §5.5.1): its own code
    /// [echoed](Self::echo), or [`NORMAL`](Self::NORMAL) when it sent none.
    pub fn reply_to(received: Option<u16>) -> CloseCode {
        received.map_or(CloseCode::NORMAL, CloseCode::echo)
    }

    /// The code to answer a peer's Close carrying `received` with: that code itself.
    ///
    /// A code the [`Decoder`](crate::Decoder) reported is always allowed on the wire (it
    /// refuses the others), so this never echoes 1005; any code not allowed is answered with
    /// 1002.
    pub fn echo(received: u16) -> CloseCode {
        CloseCode::new(received).unwrap_or(CloseCode::PROTOCOL_ERROR)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.get()
    }
}

/// The server's half of the closing handshake (RFC 6455 §5.5.1, §7.1): whether a Close has
/// been sent, and what to do next. One per connection; one byte.
///
/// # Call order
///
/// The [`Decoder`](crate::Decoder) reports the peer's side; this type decides the server's.
/// Whenever a method returns a frame, queue it after everything already queued and send no
/// data frame after it.
///
/// - **The peer closes** ([`Event::Close`](crate::Event::Close)): call
///   [`handle_close`](Self::handle_close) and queue the frame it returns (the peer's code
///   echoed, or 1000 when it sent none). Once the queue is flushed, close the TCP connection:
///   RFC 6455 §7.1.1 has the server close it first.
/// - **The peer breaks the protocol** (`decode` returned a [`WsError`]): call
///   [`handle_error`](Self::handle_error), queue the frame (carrying
///   [`WsError::close_code`]), flush, close the TCP connection. Do not wait for the peer's
///   Close: its framing can no longer be trusted.
/// - **The server closes** (shutdown 1001, at capacity 1013, policy 1008, a stalled viewer):
///   call [`start`](Self::start) and queue the frame. Keep decoding (messages may be
///   discarded) until the decoder reports the peer's Close or an error, or the caller's close
///   timeout passes; then close the TCP connection. `handle_close` returns `None` then: the
///   peer's Close is the answer to ours.
///
/// A method returns `None` whenever a Close was already sent, since an endpoint sends at most
/// one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloseHandshake {
    sent: bool,
}

impl CloseHandshake {
    /// A connection on which no Close has been sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a server-initiated close: the Close frame to queue, or `None` if one was already
    /// sent. `reason` is cut to fit, as in [`close_frame`].
    pub fn start(&mut self, code: CloseCode, reason: &str) -> Option<Bytes> {
        self.send(code, reason)
    }

    /// Answers the peer's Close (`code` as reported in [`Event::Close`](crate::Event::Close)):
    /// the reply to queue, or `None` if the server had already sent its Close. Either way,
    /// close the TCP connection once the queue is flushed.
    pub fn handle_close(&mut self, code: Option<u16>) -> Option<Bytes> {
        self.send(CloseCode::reply_to(code), "")
    }

    /// Answers a protocol error: the Close frame carrying [`WsError::close_code`] to queue, or
    /// `None` if a Close was already sent. Either way, close the TCP connection once the queue
    /// is flushed.
    pub fn handle_error(&mut self, error: &WsError) -> Option<Bytes> {
        self.send(error.close_code(), "")
    }

    /// Whether a Close has been sent: no data frame may follow it.
    pub fn is_sent(&self) -> bool {
        self.sent
    }

    fn send(&mut self, code: CloseCode, reason: &str) -> Option<Bytes> {
        if self.sent {
            return None;
        }
        self.sent = true;
        Some(close_frame(code, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_allowed_on_the_wire() {
        let allowed = |code| CloseCode::new(code).is_some();
        for code in [
            0,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2000,
            2999,
            5000,
            u16::MAX,
        ] {
            assert!(!allowed(code), "{code}");
        }
        for code in [
            1000, 1001, 1002, 1003, 1007, 1010, 1011, 1012, 1014, 3000, 4000, 4999,
        ] {
            assert!(allowed(code), "{code}");
            assert_eq!(CloseCode::new(code).map(u16::from), Some(code));
        }
        let named = [
            (CloseCode::NORMAL, 1000),
            (CloseCode::GOING_AWAY, 1001),
            (CloseCode::PROTOCOL_ERROR, 1002),
            (CloseCode::UNSUPPORTED_DATA, 1003),
            (CloseCode::INVALID_PAYLOAD, 1007),
            (CloseCode::POLICY_VIOLATION, 1008),
            (CloseCode::MESSAGE_TOO_BIG, 1009),
            (CloseCode::INTERNAL_ERROR, 1011),
            (CloseCode::TRY_AGAIN_LATER, 1013),
        ];
        for (code, value) in named {
            assert_eq!(code.get(), value);
            assert_eq!(CloseCode::new(value), Some(code));
        }
    }

    #[test]
    fn reply_echoes_the_code_or_says_normal() {
        assert_eq!(CloseCode::reply_to(None), CloseCode::NORMAL);
        assert_eq!(CloseCode::reply_to(Some(1001)).get(), 1001);
        assert_eq!(CloseCode::reply_to(Some(4321)).get(), 4321);
        // Never echoed: 1005 means "no code" and cannot be sent.
        assert_eq!(CloseCode::reply_to(Some(1005)), CloseCode::PROTOCOL_ERROR);
        assert_eq!(CloseCode::echo(1005), CloseCode::PROTOCOL_ERROR);
        assert_eq!(CloseCode::echo(1008), CloseCode::POLICY_VIOLATION);
    }

    #[test]
    fn peer_initiated_close() {
        let mut close = CloseHandshake::new();
        assert!(!close.is_sent());
        assert_eq!(
            close.handle_close(None).as_deref(),
            Some(&b"\x88\x02\x03\xe8"[..])
        );
        assert!(close.is_sent());
        assert_eq!(close.handle_close(Some(1000)), None);

        let mut close = CloseHandshake::new();
        assert_eq!(
            close.handle_close(Some(4001)).as_deref(),
            Some(&b"\x88\x02\x0f\xa1"[..])
        );
    }

    #[test]
    fn server_initiated_close_is_answered_by_the_peer() {
        let mut close = CloseHandshake::new();
        assert_eq!(
            close.start(CloseCode::TRY_AGAIN_LATER, "full").as_deref(),
            Some(&b"\x88\x06\x03\xf5full"[..])
        );
        assert_eq!(close.start(CloseCode::GOING_AWAY, ""), None);
        assert_eq!(
            close.handle_close(Some(1013)),
            None,
            "the peer's Close is its answer"
        );
        assert_eq!(close.handle_error(&WsError::CloseTooShort), None);
    }

    #[test]
    fn protocol_error_close() {
        let mut close = CloseHandshake::new();
        let error = WsError::FrameTooLarge {
            limit: 10,
            seen: 11,
        };
        assert_eq!(
            close.handle_error(&error).as_deref(),
            Some(&b"\x88\x02\x03\xf1"[..])
        );
        assert!(close.is_sent());
    }
}
