//! Server frames: opcodes, frame headers and whole frames ready to queue.
//!
//! A server never masks (RFC 6455 §5.1), so a frame is a pure function of its opcode and
//! payload: a broadcast batch is encoded once and the same `Bytes` is queued on every
//! viewer's connection.

use bytes::{BufMut, Bytes};

use crate::CloseCode;

/// The largest payload of a control frame (Close, Ping, Pong) (RFC 6455 §5.5).
pub const CONTROL_PAYLOAD_MAX_BYTES: usize = 125;

/// The longest reason a Close frame can carry: the control payload less the two-byte code.
pub const CLOSE_REASON_MAX_BYTES: usize = CONTROL_PAYLOAD_MAX_BYTES - 2;

/// The longest unmasked frame header: two bytes and an eight-byte extended length.
pub const FRAME_HEADER_MAX_BYTES: usize = 10;

/// A frame's opcode (RFC 6455 §5.2, §11.8). The reserved opcodes have no variant: a frame
/// carrying one is refused with [`WsError::UnknownOpcode`](crate::WsError::UnknownOpcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// A later fragment of a fragmented message.
    Continuation = 0x0,
    /// The first (or only) frame of a text message.
    Text = 0x1,
    /// The first (or only) frame of a binary message.
    Binary = 0x2,
    /// The closing handshake.
    Close = 0x8,
    /// A ping, to be answered with a pong carrying the same payload.
    Ping = 0x9,
    /// A pong: an answer to a ping, or an unsolicited heartbeat.
    Pong = 0xA,
}

impl Opcode {
    /// The opcode with this four-bit value; `None` for the reserved ones.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The four-bit value.
    pub fn bits(self) -> u8 {
        self as u8
    }

    /// Whether this is a control opcode (Close, Ping, Pong): at most 125 bytes, never
    /// fragmented, allowed between the fragments of a message.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// An unmasked frame header: up to [`FRAME_HEADER_MAX_BYTES`] bytes on the stack.
///
/// Write [`as_bytes`](Self::as_bytes) and then the payload. Useful to frame a payload that is
/// already in its own buffer (a vectored write of header and `Bytes`) or to send a message in
/// several fragments.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    bytes: [u8; FRAME_HEADER_MAX_BYTES],
    len: u8,
}

impl FrameHeader {
    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The header's length: 2, 4 or 10 bytes.
    #[allow(clippy::len_without_is_empty, reason = "a header is never empty")]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
}

impl std::fmt::Debug for FrameHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FrameHeader")
            .field(&self.as_bytes())
            .finish()
    }
}

/// The header of an unmasked frame with this opcode, FIN bit and payload length, with the
/// length in its shortest encoding (RFC 6455 §5.2): 7 bits up to 125, 16 bits up to 65535,
/// 64 bits above.
///
/// To fragment a message, send `Text`/`Binary` with `fin` false, then `Continuation` frames,
/// the last with `fin` true; control frames may go in between.
///
/// # Panics
///
/// For a control opcode with `fin` false or a payload above [`CONTROL_PAYLOAD_MAX_BYTES`]:
/// such a frame would break the protocol, and sending one is a bug in the caller.
pub fn frame_header(opcode: Opcode, fin: bool, payload_len: usize) -> FrameHeader {
    assert!(
        !opcode.is_control() || (fin && payload_len <= CONTROL_PAYLOAD_MAX_BYTES),
        "{opcode:?} frame must be final and at most 125 bytes (fin {fin}, {payload_len} bytes)"
    );
    let mut bytes = [0; FRAME_HEADER_MAX_BYTES];
    bytes[0] = (u8::from(fin) << 7) | opcode.bits();
    let len = match payload_len {
        0..=125 => {
            bytes[1] = u8::try_from(payload_len).expect("matched 0..=125");
            2
        }
        126..=0xFFFF => {
            bytes[1] = 126;
            let length = u16::try_from(payload_len).expect("matched 126..=0xFFFF");
            bytes[2..4].copy_from_slice(&length.to_be_bytes());
            4
        }
        _ => {
            bytes[1] = 127;
            let length = u64::try_from(payload_len).expect("usize fits in u64");
            bytes[2..10].copy_from_slice(&length.to_be_bytes());
            10
        }
    };
    FrameHeader { bytes, len }
}

/// Appends one final (FIN) unmasked frame with this opcode and payload to `out`.
///
/// # Panics
///
/// As [`frame_header`]: for a control frame above [`CONTROL_PAYLOAD_MAX_BYTES`].
pub fn encode_frame<B: BufMut>(out: &mut B, opcode: Opcode, payload: &[u8]) {
    out.put_slice(frame_header(opcode, true, payload.len()).as_bytes());
    out.put_slice(payload);
}

/// A whole Binary frame, header and payload in one allocation: encode a broadcast once and
/// queue clones of the result on every connection.
pub fn binary_frame(payload: &[u8]) -> Bytes {
    frame(Opcode::Binary, &[payload])
}

/// A whole Text frame, header and payload in one allocation.
pub fn text_frame(text: &str) -> Bytes {
    frame(Opcode::Text, &[text.as_bytes()])
}

/// A Close frame with this code and as much of `reason` as fits in
/// [`CLOSE_REASON_MAX_BYTES`], cut on a character boundary so it stays valid UTF-8.
pub fn close_frame(code: CloseCode, reason: &str) -> Bytes {
    let reason = truncate_on_char_boundary(reason, CLOSE_REASON_MAX_BYTES);
    frame(
        Opcode::Close,
        &[&code.get().to_be_bytes(), reason.as_bytes()],
    )
}

/// A Ping frame.
///
/// # Panics
///
/// If `payload` is longer than [`CONTROL_PAYLOAD_MAX_BYTES`].
pub fn ping_frame(payload: &[u8]) -> Bytes {
    frame(Opcode::Ping, &[payload])
}

/// A Pong frame: the answer to a ping, carrying the ping's payload
/// ([`Event::Ping`](crate::Event::Ping) payloads always fit).
///
/// # Panics
///
/// If `payload` is longer than [`CONTROL_PAYLOAD_MAX_BYTES`].
pub fn pong_frame(payload: &[u8]) -> Bytes {
    frame(Opcode::Pong, &[payload])
}

/// One final frame whose payload is the concatenation of `parts`, in a single allocation.
fn frame(opcode: Opcode, parts: &[&[u8]]) -> Bytes {
    let payload_len = parts.iter().map(|part| part.len()).sum();
    let header = frame_header(opcode, true, payload_len);
    let mut out = Vec::with_capacity(header.len() + payload_len);
    out.extend_from_slice(header.as_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    assert_eq!(out.len(), out.capacity());
    Bytes::from(out)
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character
/// boundary.
fn truncate_on_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let end = (0..=max_bytes)
        .rev()
        .find(|&end| text.is_char_boundary(end))
        .expect("0 is a char boundary");
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Event, Limits, MessageKind};

    /// The client side of the wire, for round trips: masks a payload the way RFC 6455 §5.3
    /// says (octet i XOR key octet i mod 4) and builds the matching masked header.
    fn client_frame(opcode: Opcode, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let header = frame_header(opcode, fin, payload.len());
        let mut out = header.as_bytes().to_vec();
        out[1] |= 0x80;
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// Turns a server frame into the client frame carrying the same content.
    fn mask_server_frame(frame: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let (opcode, fin, header_len) = (
            Opcode::from_bits(frame[0] & 0x0F).unwrap(),
            frame[0] & 0x80 != 0,
            match frame[1] {
                126 => 4,
                127 => 10,
                _ => 2,
            },
        );
        assert_eq!(frame[0] & 0x70, 0, "no RSV bits");
        assert_eq!(frame[1] & 0x80, 0, "server frames are unmasked");
        client_frame(opcode, fin, &frame[header_len..], mask)
    }

    fn decode_all(bytes: &[u8]) -> Vec<String> {
        let mut decoder = Decoder::new(Limits {
            frame_max_bytes: 1 << 20,
            message_max_bytes: 1 << 20,
        });
        let mut scratch = Vec::new();
        let mut seen = Vec::new();
        decoder
            .decode(bytes, &mut scratch, |event| seen.push(format!("{event:?}")))
            .unwrap();
        seen
    }

    #[test]
    fn header_bytes_for_each_length_class() {
        let cases: &[(Opcode, bool, usize, &[u8])] = &[
            (Opcode::Binary, true, 0, &[0x82, 0]),
            (Opcode::Text, true, 125, &[0x81, 125]),
            (Opcode::Binary, true, 126, &[0x82, 126, 0, 126]),
            (Opcode::Binary, false, 65535, &[0x02, 126, 0xFF, 0xFF]),
            (
                Opcode::Continuation,
                true,
                65536,
                &[0x80, 127, 0, 0, 0, 0, 0, 1, 0, 0],
            ),
            (
                Opcode::Continuation,
                false,
                0x0123_4567,
                &[0x00, 127, 0, 0, 0, 0, 0x01, 0x23, 0x45, 0x67],
            ),
            (Opcode::Close, true, 2, &[0x88, 2]),
            (Opcode::Ping, true, 125, &[0x89, 125]),
            (Opcode::Pong, true, 0, &[0x8A, 0]),
        ];
        for &(opcode, fin, len, bytes) in cases {
            let header = frame_header(opcode, fin, len);
            assert_eq!(header.as_bytes(), bytes, "{opcode:?} {fin} {len}");
            assert_eq!(header.len(), bytes.len());
        }
    }

    #[test]
    #[should_panic(expected = "must be final")]
    fn oversized_ping_is_a_bug() {
        ping_frame(&[0; 126]);
    }

    #[test]
    #[should_panic(expected = "must be final")]
    fn fragmented_control_is_a_bug() {
        frame_header(Opcode::Pong, false, 0);
    }

    #[test]
    fn whole_frames() {
        assert_eq!(&binary_frame(b"abc")[..], b"\x82\x03abc");
        assert_eq!(&text_frame("hé")[..], b"\x81\x03h\xc3\xa9");
        assert_eq!(&ping_frame(b"p")[..], b"\x89\x01p");
        assert_eq!(&pong_frame(b"")[..], b"\x8a\x00");
        assert_eq!(
            &close_frame(CloseCode::GOING_AWAY, "bye")[..],
            b"\x88\x05\x03\xe9bye"
        );
        let mut out = bytes::BytesMut::new();
        encode_frame(&mut out, Opcode::Binary, &[7; 300]);
        assert_eq!(&out[..4], &[0x82, 126, 1, 44]);
        assert_eq!(out.len(), 304);
        let big = binary_frame(&[1; 70_000]);
        assert_eq!(&big[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(big.len(), 70_010);
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let ascii = "a".repeat(200);
        let frame = close_frame(CloseCode::NORMAL, &ascii);
        assert_eq!(frame.len(), 2 + 125);
        assert_eq!(&frame[4..], "a".repeat(123).as_bytes());

        // 61 two-byte characters are 122 bytes; one more would need 124.
        let wide = "é".repeat(80);
        let frame = close_frame(CloseCode::POLICY_VIOLATION, &wide);
        assert_eq!(&frame[..4], &[0x88, 124, 0x03, 0xF0]);
        assert_eq!(&frame[4..], "é".repeat(61).as_bytes());

        // A four-byte character that would straddle the cut is dropped whole.
        let reason = format!("{}😀", "a".repeat(121));
        let frame = close_frame(CloseCode::NORMAL, &reason);
        assert_eq!(&frame[4..], "a".repeat(121).as_bytes());
        let exact = format!("{}😀", "a".repeat(119));
        assert_eq!(
            &close_frame(CloseCode::NORMAL, &exact)[4..],
            exact.as_bytes()
        );
    }

    #[test]
    fn round_trip_through_a_masking_client() {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let lengths = [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 100_000];
        for len in lengths {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let seen = decode_all(&mask_server_frame(&binary_frame(&payload), mask));
            let expected = format!(
                "{:?}",
                Event::Message {
                    kind: MessageKind::Binary,
                    payload: &payload
                }
            );
            assert_eq!(seen, [expected], "length {len}");
        }

        let text = "héllo wörld 😀".repeat(9000);
        let seen = decode_all(&mask_server_frame(&text_frame(&text), mask));
        let expected = Event::Message {
            kind: MessageKind::Text,
            payload: text.as_bytes(),
        };
        assert_eq!(seen, [format!("{expected:?}")]);

        let mut wire = Vec::new();
        for frame in [
            ping_frame(b"are you there"),
            pong_frame(b""),
            close_frame(CloseCode::TRY_AGAIN_LATER, "full"),
        ] {
            wire.extend(mask_server_frame(&frame, mask));
        }
        assert_eq!(
            decode_all(&wire),
            [
                format!("{:?}", Event::Ping(b"are you there")),
                format!("{:?}", Event::Pong(b"")),
                format!(
                    "{:?}",
                    Event::Close {
                        code: Some(1013),
                        reason: "full"
                    }
                ),
            ]
        );
    }

    #[test]
    fn fragmented_round_trip() {
        let mask = [1, 2, 3, 4];
        let mut wire = Vec::new();
        let parts: [&[u8]; 3] = [b"frag", b"men", b"ted"];
        for (i, part) in parts.iter().enumerate() {
            let opcode = if i == 0 {
                Opcode::Text
            } else {
                Opcode::Continuation
            };
            let header = frame_header(opcode, i == parts.len() - 1, part.len());
            let mut frame = header.as_bytes().to_vec();
            frame.extend_from_slice(part);
            wire.extend(mask_server_frame(&frame, mask));
            wire.extend(mask_server_frame(&ping_frame(&[i as u8]), mask));
        }
        let message = Event::Message {
            kind: MessageKind::Text,
            payload: b"fragmented",
        };
        assert_eq!(
            decode_all(&wire),
            [
                format!("{:?}", Event::Ping(&[0])),
                format!("{:?}", Event::Ping(&[1])),
                format!("{message:?}"),
                format!("{:?}", Event::Ping(&[2])),
            ]
        );
    }
}
