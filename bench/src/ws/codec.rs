//! The client side of RFC 6455, sans-io: the opening handshake request and the check of its
//! answer, masked frames out, unmasked frames in.
//!
//! The server codec in `shards/ws` is server-only (it requires masked frames and never masks
//! its own), so the load generator carries this small client codec. It keeps what a client
//! needs to measure a server: binary and text messages (reassembled when fragmented), pings
//! (to answer), pongs and the close frame. Extensions are never offered, so every RSV bit must
//! be zero.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// Longest handshake answer accepted. A 101 answer is a few hundred bytes.
pub const HANDSHAKE_MAX_BYTES: usize = 8192;

/// Largest message accepted: the protocol's largest server message plus nothing, since frame
/// headers are not part of a message.
pub const MESSAGE_MAX_BYTES: usize = shardcast_wire::SERVER_MAX_BYTES;

/// Largest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const FRAME_HEADER_MAX_BYTES: usize = 14;

const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

/// Why the server's side of the connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The handshake answer grew past [`HANDSHAKE_MAX_BYTES`] without ending.
    #[error("handshake answer longer than {limit} bytes")]
    HandshakeTooLong {
        /// [`HANDSHAKE_MAX_BYTES`].
        limit: usize,
    },
    /// The answer was not `HTTP/1.1 101`.
    #[error("handshake answered `{0}`")]
    HandshakeStatus(String),
    /// A header the handshake needs was missing or wrong.
    #[error("handshake header {0} missing or wrong")]
    HandshakeHeader(&'static str),
    /// A frame had an RSV bit set (no extension was negotiated).
    #[error("frame with reserved bits set")]
    ReservedBits,
    /// A frame from the server was masked.
    #[error("masked frame from the server")]
    Masked,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0:#x}")]
    Opcode(u8),
    /// A control frame was fragmented or longer than 125 bytes.
    #[error("malformed control frame")]
    Control,
    /// A continuation with no message started, or a new message inside a fragmented one.
    #[error("bad fragmentation")]
    Fragmentation,
    /// A message longer than [`MESSAGE_MAX_BYTES`].
    #[error("message of {seen} bytes exceeds {limit}")]
    TooLarge {
        /// [`MESSAGE_MAX_BYTES`].
        limit: usize,
        /// The length announced or reassembled.
        seen: u64,
    },
}

/// The opening handshake request for `path` on `authority`, offering `subprotocol` (none
/// when empty).
pub fn handshake_request(authority: &str, path: &str, key: &str, subprotocol: &str) -> Vec<u8> {
    let offer = if subprotocol.is_empty() {
        String::new()
    } else {
        format!("Sec-WebSocket-Protocol: {subprotocol}\r\n")
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
         {offer}User-Agent: shardcast-bench\r\n\r\n"
    )
    .into_bytes()
}

/// A `Sec-WebSocket-Key`: 16 bytes from `seed`, base64. The key only has to differ between
/// connections; it protects nothing.
pub fn handshake_key(seed: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&(!seed).rotate_left(17).to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Checks the handshake answer at the start of `received`. `Ok(None)`: the head is not
/// complete yet. `Ok(Some(n))`: a valid 101 whose head is `n` bytes long; what follows is
/// frames. A subprotocol in the answer must be `subprotocol`; no subprotocol is accepted (as
/// browsers do).
pub fn check_handshake(
    received: &[u8],
    key: &str,
    subprotocol: &str,
) -> Result<Option<usize>, CodecError> {
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        if received.len() > HANDSHAKE_MAX_BYTES {
            return Err(CodecError::HandshakeTooLong {
                limit: HANDSHAKE_MAX_BYTES,
            });
        }
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&received[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    if parts.next() != Some("HTTP/1.1") || parts.next() != Some("101") {
        return Err(CodecError::HandshakeStatus(status.to_owned()));
    }
    let (mut upgrade, mut connection, mut accept, mut protocol_ok) = (false, false, false, true);
    let expected_accept = accept_key(key);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => {
                connection = value
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
            }
            "sec-websocket-accept" => accept = value == expected_accept,
            "sec-websocket-protocol" => protocol_ok = value == subprotocol,
            _ => {}
        }
    }
    let refusal = match () {
        _ if !upgrade => "Upgrade",
        _ if !connection => "Connection",
        _ if !accept => "Sec-WebSocket-Accept",
        _ if !protocol_ok => "Sec-WebSocket-Protocol",
        _ => return Ok(Some(end + 4)),
    };
    Err(CodecError::HandshakeHeader(refusal))
}

/// Appends one masked frame (`fin` set) to `out`.
pub fn encode_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// Appends one masked binary frame to `out`.
pub fn encode_binary(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    encode_masked(out, OPCODE_BINARY, payload, mask);
}

/// Appends one masked text frame to `out`.
pub fn encode_text(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    encode_masked(out, OPCODE_TEXT, payload, mask);
}

/// Appends the masked pong answering a ping with `payload`.
pub fn encode_pong(out: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    encode_masked(out, OPCODE_PONG, payload, mask);
}

/// A masking key generator (xorshift). Masks need not be secret here: the load generator
/// talks to its own servers, and a proxy-cache attack is not a concern on loopback.
#[derive(Debug, Clone)]
pub struct Masks(u32);

impl Masks {
    /// Masks seeded by `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        let folded = (seed ^ (seed >> 32)) as u32;
        Self(if folded == 0 { 0x9E37_79B9 } else { folded })
    }

    /// The next masking key.
    pub fn next_mask(&mut self) -> [u8; 4] {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0.to_be_bytes()
    }
}

/// What a server's frames amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A complete text message (the protocol sends none).
    Text(&'a [u8]),
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The server's close frame, with its code if it gave one.
    Close(Option<u16>),
}

/// Turns the server's bytes into [`Event`]s. Feed it the unconsumed bytes each time; it says
/// how many it consumed (only whole frames), so the caller keeps the rest for the next call.
/// A fragmented message is reassembled in an internal buffer.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    fragments: Vec<u8>,
    fragment_opcode: Option<u8>,
}

impl FrameDecoder {
    /// A decoder between messages.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes every whole frame at the start of `buf`, calling `on_event` for each message
    /// or control frame, and returns the bytes consumed. When the next frame is incomplete,
    /// `needed` is set to its total length so the caller can make room for it.
    pub fn handle_bytes(
        &mut self,
        buf: &[u8],
        needed: &mut usize,
        mut on_event: impl FnMut(Event<'_>),
    ) -> Result<usize, CodecError> {
        let mut consumed = 0;
        *needed = 0;
        loop {
            let rest = &buf[consumed..];
            let Some(header) = parse_header(rest)? else {
                *needed = FRAME_HEADER_MAX_BYTES;
                return Ok(consumed);
            };
            let total = header.header_bytes as u64 + header.payload_bytes;
            if (rest.len() as u64) < total {
                *needed = total as usize;
                return Ok(consumed);
            }
            let payload = &rest[header.header_bytes..total as usize];
            consumed += total as usize;
            self.handle_frame(&header, payload, &mut on_event)?;
        }
    }

    fn handle_frame(
        &mut self,
        header: &Header,
        payload: &[u8],
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<(), CodecError> {
        match header.opcode {
            OPCODE_PING => on_event(Event::Ping(payload)),
            OPCODE_PONG => on_event(Event::Pong),
            OPCODE_CLOSE => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                on_event(Event::Close(code));
            }
            OPCODE_TEXT | OPCODE_BINARY if self.fragment_opcode.is_some() => {
                return Err(CodecError::Fragmentation)
            }
            OPCODE_TEXT | OPCODE_BINARY if header.fin => {
                on_event(message(header.opcode, payload));
            }
            OPCODE_TEXT | OPCODE_BINARY => {
                self.fragment_opcode = Some(header.opcode);
                self.fragments.clear();
                self.fragments.extend_from_slice(payload);
            }
            OPCODE_CONTINUATION => {
                let Some(opcode) = self.fragment_opcode else {
                    return Err(CodecError::Fragmentation);
                };
                let seen = (self.fragments.len() + payload.len()) as u64;
                if seen > MESSAGE_MAX_BYTES as u64 {
                    return Err(CodecError::TooLarge {
                        limit: MESSAGE_MAX_BYTES,
                        seen,
                    });
                }
                self.fragments.extend_from_slice(payload);
                if header.fin {
                    self.fragment_opcode = None;
                    on_event(message(opcode, &self.fragments));
                    self.fragments.clear();
                }
            }
            other => return Err(CodecError::Opcode(other)),
        }
        Ok(())
    }
}

fn message(opcode: u8, payload: &[u8]) -> Event<'_> {
    if opcode == OPCODE_TEXT {
        Event::Text(payload)
    } else {
        Event::Binary(payload)
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    header_bytes: usize,
    payload_bytes: u64,
}

/// Reads a frame header; `Ok(None)` when `buf` does not hold all of it yet.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, CodecError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (buf[0], buf[1]);
    if first & 0x70 != 0 {
        return Err(CodecError::ReservedBits);
    }
    if second & 0x80 != 0 {
        return Err(CodecError::Masked);
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0f;
    let (header_bytes, payload_bytes) = match second & 0x7f {
        126 if buf.len() < 4 => return Ok(None),
        126 => (4, u64::from(u16::from_be_bytes([buf[2], buf[3]]))),
        127 if buf.len() < 10 => return Ok(None),
        127 => {
            let mut length = [0u8; 8];
            length.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(length))
        }
        short => (2, u64::from(short)),
    };
    if opcode >= OPCODE_CLOSE && (!fin || payload_bytes > 125) {
        return Err(CodecError::Control);
    }
    if payload_bytes > MESSAGE_MAX_BYTES as u64 {
        return Err(CodecError::TooLarge {
            limit: MESSAGE_MAX_BYTES,
            seen: payload_bytes,
        });
    }
    Ok(Some(Header {
        fin,
        opcode,
        header_bytes,
        payload_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n <= 0xffff => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    fn decode_all(decoder: &mut FrameDecoder, buf: &[u8]) -> (Vec<String>, usize, usize) {
        let mut seen = Vec::new();
        let mut needed = 0;
        let consumed = decoder
            .handle_bytes(buf, &mut needed, |event| seen.push(format!("{event:?}")))
            .unwrap();
        (seen, consumed, needed)
    }

    #[test]
    fn accept_key_of_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_ne!(handshake_key(1), handshake_key(2));
        assert_eq!(handshake_key(7).len(), 24);
    }

    #[test]
    fn handshake_answer_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                    Sec-WebSocket-Protocol: shardcast.v1\r\n\r\n\x02\x00";
        let head = good.len() - 2;
        assert_eq!(
            check_handshake(good.as_bytes(), key, "shardcast.v1"),
            Ok(Some(head))
        );
        assert_eq!(
            check_handshake(&good.as_bytes()[..40], key, "shardcast.v1"),
            Ok(None)
        );
        assert_eq!(
            check_handshake(good.as_bytes(), key, "other.v2"),
            Err(CodecError::HandshakeHeader("Sec-WebSocket-Protocol"))
        );
        let no_protocol = good.replace("Sec-WebSocket-Protocol: shardcast.v1\r\n", "");
        assert!(check_handshake(no_protocol.as_bytes(), key, "shardcast.v1").is_ok());
        let wrong_key = good.replace("s3pP", "AAAA");
        assert_eq!(
            check_handshake(wrong_key.as_bytes(), key, "shardcast.v1"),
            Err(CodecError::HandshakeHeader("Sec-WebSocket-Accept"))
        );
        let refused = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            check_handshake(refused, key, "shardcast.v1"),
            Err(CodecError::HandshakeStatus(_))
        ));
        let endless = vec![b'x'; HANDSHAKE_MAX_BYTES + 1];
        assert!(matches!(
            check_handshake(&endless, key, "shardcast.v1"),
            Err(CodecError::HandshakeTooLong { .. })
        ));
        let request =
            String::from_utf8(handshake_request("h:1", "/ws", key, "shardcast.v1")).unwrap();
        assert!(request.starts_with("GET /ws HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(request.contains("Sec-WebSocket-Protocol: shardcast.v1\r\n"));
    }

    #[test]
    fn masked_frames_unmask() {
        let mut masks = Masks::new(0);
        for length in [0usize, 5, 125, 126, 70_000] {
            let payload: Vec<u8> = (0..length).map(|i| i as u8).collect();
            let mask = masks.next_mask();
            let mut out = Vec::new();
            encode_binary(&mut out, &payload, mask);
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0x80);
            let header = match length {
                n if n < 126 => 2,
                n if n <= 0xffff => 4,
                _ => 10,
            };
            assert_eq!(&out[header..header + 4], &mask);
            let unmasked: Vec<u8> = out[header + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn frames_split_anywhere() {
        let mut stream = server_frame(true, OPCODE_BINARY, b"hello");
        stream.extend(server_frame(true, OPCODE_PING, b"p"));
        stream.extend(server_frame(false, OPCODE_BINARY, &[1; 200]));
        stream.extend(server_frame(true, OPCODE_PONG, b""));
        stream.extend(server_frame(true, OPCODE_CONTINUATION, &[2; 70_000]));
        stream.extend(server_frame(true, OPCODE_CLOSE, &1000u16.to_be_bytes()));
        // Feed the stream in pieces of every size, keeping the unconsumed rest each time.
        for step in [1, 3, 7, 64, 1000, stream.len()] {
            let mut decoder = FrameDecoder::new();
            let mut pending = Vec::new();
            let mut seen = Vec::new();
            for chunk in stream.chunks(step) {
                pending.extend_from_slice(chunk);
                let mut needed = 0;
                let consumed = decoder
                    .handle_bytes(&pending, &mut needed, |event| {
                        seen.push(match event {
                            Event::Binary(m) => format!("binary {}", m.len()),
                            other => format!("{other:?}"),
                        })
                    })
                    .unwrap();
                pending.drain(..consumed);
                assert!(pending.is_empty() || needed > pending.len());
            }
            assert_eq!(
                seen,
                [
                    "binary 5",
                    "Ping([112])",
                    "Pong",
                    "binary 70200",
                    "Close(Some(1000))"
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn protocol_violations_refused() {
        let mut decoder = FrameDecoder::new();
        let mut needed = 0;
        let mut fail = |bytes: &[u8]| {
            FrameDecoder::new()
                .handle_bytes(bytes, &mut needed, |_| {})
                .unwrap_err()
        };
        assert_eq!(fail(&[0xC2, 0x00]), CodecError::ReservedBits);
        assert_eq!(fail(&[0x82, 0x80, 0, 0, 0, 0]), CodecError::Masked);
        assert_eq!(fail(&[0x83, 0x00]), CodecError::Opcode(3));
        assert_eq!(fail(&[0x09, 0x00]), CodecError::Control);
        assert_eq!(fail(&[0x80, 0x00]), CodecError::Fragmentation);
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(matches!(fail(&huge), CodecError::TooLarge { .. }));
        let mut started = server_frame(false, OPCODE_BINARY, b"a");
        started.extend(server_frame(true, OPCODE_BINARY, b"b"));
        assert_eq!(
            decoder.handle_bytes(&started, &mut needed, |_| {}),
            Err(CodecError::Fragmentation)
        );
        let (seen, consumed, needed) = decode_all(&mut FrameDecoder::new(), &[0x82, 126, 1]);
        assert!(seen.is_empty());
        assert_eq!((consumed, needed), (0, FRAME_HEADER_MAX_BYTES));
    }
}
