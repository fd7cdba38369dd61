//! shardcast's WebSocket server codec (RFC 6455): sans-io.
//!
//! This crate sits between a shard's connection service and the danmaku protocol. The HTTP
//! codec ([`shardcast_http`]) parses the upgrade request; this crate checks it, writes the
//! `101 Switching Protocols` answer, and from then on turns received bytes into whole messages
//! and control frames, and application payloads into frames to send. There are no sockets,
//! clocks or threads in here: the same code runs on io_uring, on epoll, in a fuzzer and in a
//! deterministic test.
//!
//! The pieces, in the order a connection uses them:
//!
//! - [`accept`] checks an opening handshake (RFC 6455 §4.2.1) and selects the subprotocol;
//!   [`Accept::write_response`] writes the 101 answer, [`HandshakeError::write_response`] the
//!   refusal. [`accept_key`] is the `Sec-WebSocket-Accept` computation on its own.
//! - [`Decoder`] (one per connection) turns received bytes into [`Event`]s: reassembled
//!   [`Event::Message`]s, pings, pongs and the peer's close. It enforces every rule of RFC 6455
//!   §5 that binds a server and the caps in [`Limits`]; each violation is a [`WsError`] that
//!   names its close code. It decodes from a borrowed `&[u8]`, so a shard can hand a pooled
//!   receive buffer back after each call, and it keeps nothing per connection beyond ~100
//!   bytes of state unless a frame or message is actually split across reads.
//! - The encoder ([`frame_header`], [`encode_frame`], [`binary_frame`], [`close_frame`], …)
//!   writes server frames. Server frames are never masked, so a frame encoded once is
//!   byte-identical for every viewer and one `Bytes` can be queued on every connection of a
//!   room.
//! - [`CloseCode`] names and validates close codes; [`CloseHandshake`] tracks the server's half
//!   of the closing handshake (RFC 6455 §5.5.1, §7) and says what to send and when to close
//!   the TCP connection.
//!
//! # A connection's life
//!
//! ```
//! use shardcast_http::{Decoded, HttpDate, RequestDecoder};
//! use shardcast_ws::{accept, pong_frame, CloseHandshake, Decoder, Event, Limits, MessageKind};
//!
//! // The handshake arrives, with the client's first frames right behind it: a masked
//! // Text "hi", then a Close with code 1000.
//! let mut received = b"GET /ws HTTP/1.1\r\nHost: live.example\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: danmaku.v1\r\n\r\n"
//!     .to_vec();
//! received.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
//! received.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]);
//!
//! let mut http = RequestDecoder::new(shardcast_http::Limits::default());
//! let Ok(Decoded::Head { head, consumed }) = http.decode(&received) else {
//!     unreachable!()
//! };
//! let mut to_send: Vec<bytes::Bytes> = Vec::new();
//! let mut response = Vec::new();
//! accept(&head, "danmaku.v1")
//!     .expect("a valid handshake")
//!     .write_response(&mut response, &HttpDate::from_unix_seconds(0));
//! to_send.push(response.into());
//!
//! // From here on the HTTP decoder is done; the rest of the bytes are frames.
//! let mut decoder = Decoder::new(Limits::default());
//! let mut close = CloseHandshake::new();
//! let mut scratch = Vec::new(); // One per shard, shared by all its connections.
//! let mut texts = Vec::new();
//! let result = decoder.decode(&received[consumed..], &mut scratch, |event| match event {
//!     Event::Message { kind: MessageKind::Text, payload } => texts.push(payload.to_vec()),
//!     Event::Message { .. } | Event::Pong(_) => {}
//!     Event::Ping(payload) => to_send.push(pong_frame(payload)),
//!     Event::Close { code, .. } => to_send.extend(close.handle_close(code)),
//! });
//! if let Err(error) = result {
//!     to_send.extend(close.handle_error(&error));
//! }
//! assert_eq!(texts, [b"hi"]);
//! assert_eq!(&to_send[1][..], b"\x88\x02\x03\xe8", "the Close echoed");
//! // Once `to_send` is flushed, `close.is_sent()` says to close the TCP connection.
//! assert!(close.is_sent() && decoder.is_finished());
//! ```
//!
//! What is deliberately not here: extensions (permessage-deflate is not negotiated, so every
//! RSV bit must be zero), the client role (no masking on send, no handshake request), and any
//! timers: the caller owns the close timeout and ping interval.

#![forbid(unsafe_code)]

mod close;
mod decode;
mod encode;
mod error;
mod handshake;
mod limits;

pub use close::{CloseCode, CloseHandshake};
pub use decode::{Decoder, Event, MessageKind};
pub use encode::{
    binary_frame, close_frame, encode_frame, frame_header, ping_frame, pong_frame, text_frame,
    FrameHeader, Opcode, CLOSE_REASON_MAX_BYTES, CONTROL_PAYLOAD_MAX_BYTES, FRAME_HEADER_MAX_BYTES,
};
pub use error::{HandshakeError, LimitsError, WsError};
pub use handshake::{accept, accept_key, Accept, ACCEPT_KEY_LEN, WEBSOCKET_VERSION};
pub use limits::{Limits, BYTES_MAX_CEILING};
