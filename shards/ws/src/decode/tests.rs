use super::*;

/// Small caps, so tests can cross them with short inputs.
const SMALL: Limits = Limits {
    frame_max_bytes: 200,
    message_max_bytes: 500,
};

const MASK: [u8; 4] = [0xA1, 0xB2, 0xC3, 0xD4];

/// A client frame: `first` is the whole first byte (FIN, RSV, opcode), the length is in its
/// shortest encoding, and the payload is masked with `mask` (RFC 6455 §5.3).
fn masked(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A client frame with this opcode and FIN bit, masked with [`MASK`].
fn frame(opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    masked((u8::from(fin) << 7) | opcode.bits(), payload, MASK)
}

/// A client Close frame with this code and reason.
fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(Opcode::Close, true, &payload)
}

fn concat(frames: &[&[u8]]) -> Vec<u8> {
    frames.concat()
}

/// What a connection saw, owned, so runs over differently split input can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(WsError),
}

impl Seen {
    fn from_event(event: Event<'_>) -> Seen {
        match event {
            Event::Message {
                kind: MessageKind::Text,
                payload,
            } => Seen::Text(String::from_utf8(payload.to_vec()).expect("text is UTF-8")),
            Event::Message {
                kind: MessageKind::Binary,
                payload,
            } => Seen::Binary(payload.to_vec()),
            Event::Ping(payload) => Seen::Ping(payload.to_vec()),
            Event::Pong(payload) => Seen::Pong(payload.to_vec()),
            Event::Close { code, reason } => Seen::Close(code, reason.to_owned()),
        }
    }
}

/// Feeds `chunks` to one decoder in order, as a shard does, collecting its events and error.
/// After every call, checks that the decoder keeps no more than its caps allow, frees its
/// buffer whenever it is empty, and reports nothing once finished.
fn drive<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Seen> {
    let mut decoder = Decoder::new(limits);
    let mut scratch = Vec::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        let finished = decoder.is_finished();
        let before = seen.len();
        let result = decoder.decode(chunk, &mut scratch, |event| {
            seen.push(Seen::from_event(event));
        });
        if finished {
            assert_eq!(result, Ok(()), "a finished decoder ignores input");
            assert_eq!(seen.len(), before, "a finished decoder reports nothing");
        }
        if let Err(error) = result {
            seen.push(Seen::Error(error));
            assert!(decoder.is_finished());
        }
        assert_memory_bounds(&decoder);
    }
    seen
}

fn assert_memory_bounds(decoder: &Decoder) {
    let limits = decoder.limits();
    assert!(decoder.buffered_bytes() <= limits.message_max_bytes + CONTROL_PAYLOAD_MAX_BYTES);
    assert!(
        decoder.buffered_capacity_bytes() <= limits.message_max_bytes + CONTROL_PAYLOAD_MAX_BYTES,
        "capacity {} over the bound",
        decoder.buffered_capacity_bytes()
    );
    if decoder.buffered_bytes() == 0 {
        assert_eq!(
            decoder.buffered_capacity_bytes(),
            0,
            "an empty buffer is freed"
        );
    }
    if decoder.is_finished() {
        assert_eq!(decoder.buffered_capacity_bytes(), 0);
    }
}

/// Every two-piece split, and byte-at-a-time delivery, must give the same events (and error)
/// as the whole.
fn assert_split_invariant(limits: Limits, bytes: &[u8]) -> Vec<Seen> {
    let whole = drive(limits, [bytes]);
    for split in 0..=bytes.len() {
        let (front, back) = bytes.split_at(split);
        assert_eq!(
            drive(limits, [front, back]),
            whole,
            "split at {split} of {bytes:02x?}"
        );
    }
    assert_eq!(drive(limits, bytes.chunks(1)), whole, "byte at a time");
    whole
}

fn error_of(seen: &[Seen]) -> Option<WsError> {
    match seen.last() {
        Some(Seen::Error(error)) => Some(*error),
        _ => None,
    }
}

fn text(s: &str) -> Seen {
    Seen::Text(s.to_owned())
}

// --- Single frames ---

#[test]
fn masked_single_frames_of_each_length_class() {
    let limits = Limits::DEFAULT;
    for (len, length_bytes) in [
        (0, &[0x80][..]),
        (125, &[0x80 | 125][..]),
        (126, &[0x80 | 126, 0, 126][..]),
        (65535, &[0x80 | 126, 0xFF, 0xFF][..]),
        (65536, &[0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0][..]),
    ] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let bytes = frame(Opcode::Binary, true, &payload);
        assert_eq!(&bytes[1..1 + length_bytes.len()], length_bytes, "{len}");
        assert_eq!(drive(limits, [&bytes[..]]), [Seen::Binary(payload.clone())]);
        // A split payload (and a header split at every byte) decodes the same.
        let cut = bytes.len() / 2;
        assert_eq!(
            drive(
                limits,
                [&bytes[..1], &bytes[1..3], &bytes[3..cut], &bytes[cut..]]
            ),
            [Seen::Binary(payload)]
        );
    }
}

#[test]
fn text_ping_pong_and_close() {
    let bytes = concat(&[
        &frame(Opcode::Text, true, "hello, 世界".as_bytes()),
        &frame(Opcode::Text, true, b""),
        &frame(Opcode::Ping, true, b"ping!"),
        &frame(Opcode::Pong, true, b""),
        &frame(Opcode::Ping, true, &[7; 125]),
        &close(1000, b"bye"),
    ]);
    assert_eq!(
        assert_split_invariant(Limits::DEFAULT, &bytes),
        [
            text("hello, 世界"),
            text(""),
            Seen::Ping(b"ping!".to_vec()),
            Seen::Pong(vec![]),
            Seen::Ping(vec![7; 125]),
            Seen::Close(Some(1000), "bye".into()),
        ]
    );
}

#[test]
fn close_payloads() {
    let cases: [(Vec<u8>, Seen); 6] = [
        (
            frame(Opcode::Close, true, b""),
            Seen::Close(None, String::new()),
        ),
        (close(1000, b""), Seen::Close(Some(1000), String::new())),
        (
            close(1001, "é".as_bytes()),
            Seen::Close(Some(1001), "é".into()),
        ),
        (close(1014, b"x"), Seen::Close(Some(1014), "x".into())),
        (close(3000, b""), Seen::Close(Some(3000), String::new())),
        (
            close(4999, &[b'r'; 123]),
            Seen::Close(Some(4999), "r".repeat(123)),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(assert_split_invariant(Limits::DEFAULT, &bytes), [expected]);
    }
}

// --- Protocol errors ---

/// Every rule of RFC 6455 §5 a server enforces, as raw bytes and the error and close code
/// they must produce, however the bytes are split.
#[test]
fn protocol_violations() {
    let m = MASK;
    let with_mask = |head: &[u8], rest: &[u8]| [head, &m, rest].concat();
    let text_start = frame(Opcode::Text, false, b"a");
    let mut cases: Vec<(&str, Vec<u8>, WsError, u16)> = vec![
        (
            "unmasked text",
            vec![0x81, 0x01, b'a'],
            WsError::Unmasked {
                opcode: Opcode::Text,
            },
            1002,
        ),
        (
            "unmasked empty close",
            vec![0x88, 0x00],
            WsError::Unmasked {
                opcode: Opcode::Close,
            },
            1002,
        ),
        (
            "RSV1 (compression was not negotiated)",
            with_mask(&[0xC1, 0x80], &[]),
            WsError::ReservedBits { bits: 0b100 },
            1002,
        ),
        (
            "RSV2",
            with_mask(&[0xA2, 0x80], &[]),
            WsError::ReservedBits { bits: 0b010 },
            1002,
        ),
        (
            "RSV3 on a ping",
            with_mask(&[0x99, 0x80], &[]),
            WsError::ReservedBits { bits: 0b001 },
            1002,
        ),
        (
            "reserved data opcode 3",
            with_mask(&[0x83, 0x80], &[]),
            WsError::UnknownOpcode { opcode: 3 },
            1002,
        ),
        (
            "reserved data opcode 7",
            with_mask(&[0x87, 0x80], &[]),
            WsError::UnknownOpcode { opcode: 7 },
            1002,
        ),
        (
            "reserved control opcode 0xB",
            with_mask(&[0x8B, 0x80], &[]),
            WsError::UnknownOpcode { opcode: 0xB },
            1002,
        ),
        (
            "reserved control opcode 0xF",
            with_mask(&[0x8F, 0x80], &[]),
            WsError::UnknownOpcode { opcode: 0xF },
            1002,
        ),
        (
            "ping without FIN",
            with_mask(&[0x09, 0x80], &[]),
            WsError::FragmentedControl {
                opcode: Opcode::Ping,
            },
            1002,
        ),
        (
            "close without FIN",
            with_mask(&[0x08, 0x80], &[]),
            WsError::FragmentedControl {
                opcode: Opcode::Close,
            },
            1002,
        ),
        (
            "ping of 126 bytes",
            frame(Opcode::Ping, true, &[0; 126]),
            WsError::ControlTooLong {
                opcode: Opcode::Ping,
                length_field: 126,
            },
            1002,
        ),
        (
            "pong with a 64-bit length",
            with_mask(&[0x8A, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1], &[0]),
            WsError::ControlTooLong {
                opcode: Opcode::Pong,
                length_field: 127,
            },
            1002,
        ),
        (
            "one-byte close payload",
            frame(Opcode::Close, true, &[3]),
            WsError::CloseTooShort,
            1002,
        ),
        (
            "continuation with no message",
            frame(Opcode::Continuation, true, b"x"),
            WsError::ContinuationWithoutMessage,
            1002,
        ),
        (
            "continuation after a finished message",
            concat(&[
                &frame(Opcode::Binary, true, b"x"),
                &frame(Opcode::Continuation, false, b"y"),
            ]),
            WsError::ContinuationWithoutMessage,
            1002,
        ),
        (
            "text inside a fragmented text",
            concat(&[&text_start, &frame(Opcode::Text, true, b"b")]),
            WsError::MessageInterrupted {
                opcode: Opcode::Text,
            },
            1002,
        ),
        (
            "binary inside a fragmented text",
            concat(&[&text_start, &frame(Opcode::Binary, true, b"b")]),
            WsError::MessageInterrupted {
                opcode: Opcode::Binary,
            },
            1002,
        ),
        (
            "64-bit length with its top bit set",
            with_mask(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], &[]),
            WsError::LengthHighBit { length: 1 << 63 },
            1002,
        ),
        (
            "16-bit length for 125 bytes",
            with_mask(&[0x82, 0xFE, 0, 125], &[0; 125]),
            WsError::NonMinimalLength {
                length: 125,
                field_bytes: 2,
            },
            1002,
        ),
        (
            "16-bit length for 0 bytes",
            with_mask(&[0x82, 0xFE, 0, 0], &[]),
            WsError::NonMinimalLength {
                length: 0,
                field_bytes: 2,
            },
            1002,
        ),
        (
            "64-bit length for 65535 bytes",
            with_mask(&[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], &[]),
            WsError::NonMinimalLength {
                length: 65535,
                field_bytes: 8,
            },
            1002,
        ),
        (
            "64-bit length for 5 bytes",
            with_mask(&[0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5], b"hello"),
            WsError::NonMinimalLength {
                length: 5,
                field_bytes: 8,
            },
            1002,
        ),
        (
            "invalid UTF-8 in a text message",
            frame(Opcode::Text, true, b"ok\xFFok"),
            WsError::InvalidUtf8 { offset: 2 },
            1007,
        ),
        (
            "invalid UTF-8 in a close reason",
            close(1000, b"ab\xC3\x28"),
            WsError::InvalidCloseReason { offset: 2 },
            1007,
        ),
        (
            "close reason cut inside a character",
            close(1000, b"\xE2\x82"),
            WsError::InvalidCloseReason { offset: 0 },
            1007,
        ),
        (
            "frame over frame_max_bytes",
            frame(Opcode::Binary, true, &[0; 201]),
            WsError::FrameTooLarge {
                limit: 200,
                seen: 201,
            },
            1009,
        ),
        (
            "frame with a huge 64-bit length",
            with_mask(
                &[0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                &[],
            ),
            WsError::FrameTooLarge {
                limit: 200,
                seen: u64::MAX >> 1,
            },
            1009,
        ),
        (
            "message over message_max_bytes",
            concat(&[
                &frame(Opcode::Binary, false, &[0; 200]),
                &frame(Opcode::Continuation, false, &[0; 200]),
                &frame(Opcode::Continuation, true, &[0; 101]),
            ]),
            WsError::MessageTooLarge {
                limit: 500,
                seen: 501,
            },
            1009,
        ),
    ];
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push((
            "close code not allowed on the wire",
            close(code, b""),
            WsError::InvalidCloseCode { code },
            1002,
        ));
    }
    for (name, bytes, error, close_code) in cases {
        let seen = assert_split_invariant(SMALL, &bytes);
        assert_eq!(error_of(&seen), Some(error), "{name}: {seen:?}");
        assert_eq!(error.close_code().get(), close_code, "{name}");
        // Anything after the bad bytes is ignored.
        let mut followed = bytes.clone();
        followed.extend(frame(Opcode::Ping, true, b"after"));
        assert_eq!(drive(SMALL, [&followed[..]]), seen, "{name}");
    }
}

#[test]
fn header_errors_are_reported_as_soon_as_certain() {
    // From the first byte alone: nothing after it is needed.
    for first in [0xC1, 0x83, 0x09, 0x80] {
        let mut decoder = Decoder::new(SMALL);
        assert!(decoder.decode(&[first], &mut Vec::new(), |_| {}).is_err());
    }
    // From the second byte: an unmasked frame, an oversized control frame.
    for head in [[0x82, 0x05], [0x89, 0xFE], [0x88, 0x81]] {
        let mut decoder = Decoder::new(SMALL);
        assert!(decoder.decode(&head, &mut Vec::new(), |_| {}).is_err());
    }
    // Caps from the length, before the masking key or any payload.
    let mut decoder = Decoder::new(SMALL);
    assert_eq!(
        decoder.decode(&[0x82, 0xFE, 0x01, 0x00], &mut Vec::new(), |_| {}),
        Err(WsError::FrameTooLarge {
            limit: 200,
            seen: 256
        })
    );
}

// --- Fragmentation ---

#[test]
fn fragmented_messages_with_interleaved_control_frames() {
    let bytes = concat(&[
        &frame(Opcode::Text, false, b"Hel"),
        &frame(Opcode::Ping, true, b"p1"),
        &frame(Opcode::Continuation, false, b""),
        &frame(Opcode::Pong, true, b"p2"),
        &frame(Opcode::Continuation, false, b"lo"),
        &frame(Opcode::Ping, true, b""),
        &frame(Opcode::Continuation, true, b" world"),
        &frame(Opcode::Binary, false, &[1, 2]),
        &frame(Opcode::Continuation, true, &[3]),
        &frame(Opcode::Binary, false, b""),
        &frame(Opcode::Continuation, true, b""),
        &frame(Opcode::Ping, true, b"last"),
        &close(1001, b"going"),
        // After the Close: ignored, even though it is invalid.
        &[0xFF, 0xFF, 0xFF],
    ]);
    assert_eq!(
        assert_split_invariant(Limits::DEFAULT, &bytes),
        [
            Seen::Ping(b"p1".to_vec()),
            Seen::Pong(b"p2".to_vec()),
            Seen::Ping(vec![]),
            text("Hello world"),
            Seen::Binary(vec![1, 2, 3]),
            Seen::Binary(vec![]),
            Seen::Ping(b"last".to_vec()),
            Seen::Close(Some(1001), "going".into()),
        ]
    );
}

#[test]
fn close_inside_a_fragmented_message_ends_it() {
    let bytes = concat(&[
        &frame(Opcode::Binary, false, b"partial"),
        &close(1000, b""),
        &frame(Opcode::Continuation, true, b"never"),
    ]);
    assert_eq!(
        assert_split_invariant(Limits::DEFAULT, &bytes),
        [Seen::Close(Some(1000), String::new())]
    );
}

// --- UTF-8 ---

/// A text message whose bytes are cut into `cuts`-delimited fragments.
fn fragmented_text(bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut points = vec![0];
    points.extend_from_slice(cuts);
    points.push(bytes.len());
    let mut out = Vec::new();
    for (i, pair) in points.windows(2).enumerate() {
        let opcode = if i == 0 {
            Opcode::Text
        } else {
            Opcode::Continuation
        };
        let last = i == points.len() - 2;
        out.extend(frame(opcode, last, &bytes[pair[0]..pair[1]]));
        // A control frame between every two fragments.
        if !last {
            out.extend(frame(Opcode::Ping, true, &[i as u8]));
        }
    }
    out
}

#[test]
fn characters_split_across_fragments_are_accepted() {
    let cases: &[(&str, &[usize])] = &[
        ("é", &[1]),
        ("€", &[1]),
        ("€", &[2]),
        ("€", &[1, 2]),
        ("😀", &[1]),
        ("😀", &[2]),
        ("😀", &[3]),
        ("😀", &[1, 2, 3]),
        ("a😀b€c", &[2, 3, 4, 6, 7, 8]),
        ("\u{10FFFF}\u{FFFF}\u{800}\u{7FF}\u{80}", &[1, 5, 6, 9]),
        ("", &[0, 0]),
    ];
    for &(s, cuts) in cases {
        let bytes = fragmented_text(s.as_bytes(), cuts);
        let seen = assert_split_invariant(Limits::DEFAULT, &bytes);
        assert_eq!(seen.last(), Some(&text(s)), "{s:?} cut at {cuts:?}");
        assert_eq!(seen.len(), cuts.len() + 1, "one ping per cut");
    }
}

#[test]
fn invalid_utf8_across_fragments() {
    // (bytes, cuts, offset of the bad sequence, the fragment in which it becomes certain)
    let cases: &[(&[u8], &[usize], usize, usize)] = &[
        // A lone continuation byte.
        (b"ab\x80", &[2], 2, 1),
        // Overlong two-byte form of '/': C0 is never a lead byte.
        (b"\xC0\xAF", &[1], 0, 0),
        // Overlong three-byte form: E0 must be followed by A0..BF.
        (b"\xE0\x80\xAF", &[1], 0, 1),
        // Overlong four-byte form: F0 must be followed by 90..BF.
        (b"\xF0\x80\x80\x80", &[1, 2, 3], 0, 1),
        // A surrogate (U+D800): ED must be followed by 80..9F.
        (b"x\xED\xA0\x80", &[2], 1, 1),
        // Above U+10FFFF: F4 must be followed by 80..8F.
        (b"\xF4\x90\x80\x80", &[1], 0, 1),
        // F5 and above are never lead bytes.
        (b"\xF5\x80", &[1], 0, 0),
        // A four-byte character interrupted by ASCII in the next fragment.
        (b"\xF0\x9F\x98a", &[3], 0, 1),
        // A character cut at the end of the message: certain only when the last frame ends.
        (b"ok\xF0\x9F\x98", &[3], 2, 1),
        (b"\xE2\x82", &[1], 0, 1),
    ];
    for &(bytes, cuts, offset, fragment) in cases {
        let input = fragmented_text(bytes, cuts);
        let seen = assert_split_invariant(Limits::DEFAULT, &input);
        let expected = WsError::InvalidUtf8 { offset };
        assert_eq!(
            error_of(&seen),
            Some(expected),
            "{bytes:02x?} cut at {cuts:?}"
        );
        assert_eq!(expected.close_code(), CloseCode::INVALID_PAYLOAD);
        // The error comes before the ping that follows the fragment where it became certain:
        // one ping per fragment before it.
        assert_eq!(seen.len(), fragment + 1, "{bytes:02x?}: {seen:?}");
    }
}

#[test]
fn invalid_utf8_fails_before_the_message_ends() {
    let mut decoder = Decoder::new(Limits::DEFAULT);
    let mut scratch = Vec::new();
    decoder
        .decode(&frame(Opcode::Text, false, b"\xE2"), &mut scratch, |_| {})
        .unwrap();
    assert_eq!(
        decoder.decode(
            &frame(Opcode::Continuation, false, b"\x28"),
            &mut scratch,
            |_| {}
        ),
        Err(WsError::InvalidUtf8 { offset: 0 }),
        "a non-final fragment already makes it certain"
    );
}

#[test]
fn binary_messages_are_not_checked_as_text() {
    let bytes = fragmented_text(b"\xFF\xC0\xED\xA0\x80", &[1, 3]);
    let bytes: Vec<u8> = {
        // Same frames, but the first says Binary.
        let mut bytes = bytes;
        bytes[0] = 0x02;
        bytes
    };
    let seen = assert_split_invariant(Limits::DEFAULT, &bytes);
    assert_eq!(
        seen.last(),
        Some(&Seen::Binary(b"\xFF\xC0\xED\xA0\x80".to_vec()))
    );
}

// --- Caps ---

#[test]
fn frame_cap_at_limit_and_one_over() {
    let limits = Limits {
        frame_max_bytes: 1000,
        message_max_bytes: 5000,
    };
    let at = frame(Opcode::Binary, true, &[9; 1000]);
    assert_eq!(drive(limits, [&at[..]]), [Seen::Binary(vec![9; 1000])]);
    let over = frame(Opcode::Binary, true, &[9; 1001]);
    let expected = WsError::FrameTooLarge {
        limit: 1000,
        seen: 1001,
    };
    assert_eq!(error_of(&drive(limits, [&over[..]])), Some(expected));

    // Refused from the header alone: none of the payload is buffered.
    let mut decoder = Decoder::new(limits);
    assert_eq!(
        decoder.decode(&over[..8], &mut Vec::new(), |_| {}),
        Err(expected)
    );
    assert_eq!(decoder.buffered_capacity_bytes(), 0);
}

#[test]
fn message_cap_at_limit_and_one_over() {
    let limits = Limits {
        frame_max_bytes: 1500,
        message_max_bytes: 3000,
    };
    let fragments = |last: usize| {
        concat(&[
            &frame(Opcode::Text, false, &[b'a'; 1000]),
            &frame(Opcode::Continuation, false, &[b'b'; 1000]),
            &frame(Opcode::Continuation, true, &vec![b'c'; last]),
        ])
    };
    let at = fragments(1000);
    let expected = format!(
        "{}{}{}",
        "a".repeat(1000),
        "b".repeat(1000),
        "c".repeat(1000)
    );
    assert_eq!(drive(limits, [&at[..]]), [text(&expected)]);
    let over = fragments(1001);
    assert_eq!(
        error_of(&drive(limits, [&over[..]])),
        Some(WsError::MessageTooLarge {
            limit: 3000,
            seen: 3001
        })
    );

    // Refused from the header of the frame that would cross the cap, with only the earlier
    // fragments buffered.
    let mut decoder = Decoder::new(limits);
    let mut scratch = Vec::new();
    let header_end = 2 * (1000 + 8) + 8;
    decoder
        .decode(&over[..2 * (1000 + 8)], &mut scratch, |_| {})
        .unwrap();
    assert_eq!(decoder.buffered_bytes(), 2000);
    assert!(decoder
        .decode(&over[2 * (1000 + 8)..header_end], &mut scratch, |_| {})
        .is_err());
    assert_eq!(decoder.buffered_capacity_bytes(), 0, "freed on error");

    // A single frame at the default caps.
    let whole = frame(Opcode::Binary, true, &vec![1; 65536]);
    assert_eq!(
        drive(Limits::DEFAULT, [&whole[..]]),
        [Seen::Binary(vec![1; 65536])]
    );
    let over = frame(Opcode::Binary, true, &vec![1; 65537]);
    assert_eq!(
        error_of(&drive(Limits::DEFAULT, [&over[..]])),
        Some(WsError::FrameTooLarge {
            limit: 65536,
            seen: 65537
        })
    );
}

#[test]
fn message_cap_below_frame_cap() {
    let limits = Limits {
        frame_max_bytes: 1000,
        message_max_bytes: 10,
    };
    let at = frame(Opcode::Binary, true, &[0; 10]);
    assert_eq!(drive(limits, [&at[..]]), [Seen::Binary(vec![0; 10])]);
    let over = frame(Opcode::Binary, true, &[0; 11]);
    assert_eq!(
        error_of(&drive(limits, [&over[..]])),
        Some(WsError::MessageTooLarge {
            limit: 10,
            seen: 11
        })
    );
    // Control frames are capped by the protocol, not by the message cap.
    let ping = frame(Opcode::Ping, true, &[0; 125]);
    assert_eq!(drive(limits, [&ping[..]]), [Seen::Ping(vec![0; 125])]);
}

// --- Memory ---

#[test]
fn idle_decoder_is_small() {
    assert!(
        std::mem::size_of::<Decoder>() <= 112,
        "{} bytes",
        std::mem::size_of::<Decoder>()
    );
}

#[test]
fn whole_frames_cost_no_connection_memory() {
    let mut decoder = Decoder::new(Limits::DEFAULT);
    let mut scratch = Vec::new();
    let bytes = concat(&[
        &frame(Opcode::Binary, false, &[1; 3000]),
        &frame(Opcode::Ping, true, b"x"),
        &frame(Opcode::Continuation, true, &[2; 3000]),
        &frame(Opcode::Text, true, b"hi"),
    ]);
    let mut count = 0;
    decoder
        .decode(&bytes, &mut scratch, |_| count += 1)
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(decoder.buffered_capacity_bytes(), 0);
    assert!(
        scratch.capacity() >= 6000,
        "the scratch buffer did the work"
    );

    // A header split across calls is kept in the fixed array, not in a buffer.
    let ping = frame(Opcode::Ping, true, b"abc");
    for cut in 1..6 {
        decoder.decode(&ping[..cut], &mut scratch, |_| {}).unwrap();
        assert_eq!(decoder.buffered_capacity_bytes(), 0);
        let mut seen = Vec::new();
        decoder
            .decode(&ping[cut..], &mut scratch, |event| {
                seen.push(Seen::from_event(event))
            })
            .unwrap();
        assert_eq!(seen, [Seen::Ping(b"abc".to_vec())]);
    }
}

#[test]
fn connection_buffer_is_released_after_a_fragmented_message() {
    let mut decoder = Decoder::new(Limits::DEFAULT);
    let mut scratch = Vec::new();
    let mut seen = Vec::new();
    let mut feed = |decoder: &mut Decoder, bytes: &[u8]| {
        decoder
            .decode(bytes, &mut scratch, |event| {
                seen.push(Seen::from_event(event))
            })
            .unwrap();
    };

    feed(&mut decoder, &frame(Opcode::Text, false, &[b'a'; 100]));
    assert_eq!(decoder.buffered_bytes(), 100);
    assert!(decoder.buffered_capacity_bytes() >= 100);

    // A control frame split inside the message goes after the message's bytes, then away.
    let ping = frame(Opcode::Ping, true, b"12345");
    feed(&mut decoder, &ping[..8]);
    assert_eq!(decoder.buffered_bytes(), 102);
    feed(&mut decoder, &ping[8..]);
    assert_eq!(decoder.buffered_bytes(), 100);

    // A data frame split across calls.
    let middle = frame(Opcode::Continuation, false, &[b'b'; 1000]);
    feed(&mut decoder, &middle[..500]);
    assert_eq!(decoder.buffered_bytes(), 100 + 500 - 8);
    feed(&mut decoder, &middle[500..]);
    assert_eq!(decoder.buffered_bytes(), 1100);

    feed(&mut decoder, &frame(Opcode::Continuation, true, b"c"));
    assert_eq!(decoder.buffered_bytes(), 0);
    assert_eq!(
        decoder.buffered_capacity_bytes(),
        0,
        "released, not just cleared"
    );
    assert_eq!(
        seen,
        [
            Seen::Ping(b"12345".to_vec()),
            text(&format!("{}{}c", "a".repeat(100), "b".repeat(1000))),
        ]
    );

    // A single frame split across calls: the buffer is sized for the whole frame once.
    let big = frame(Opcode::Binary, true, &[5; 40_000]);
    decoder.decode(&big[..1000], &mut scratch, |_| {}).unwrap();
    assert_eq!(decoder.buffered_bytes(), 1000 - 8);
    assert_eq!(decoder.buffered_capacity_bytes(), 40_000);
    decoder.decode(&big[1000..], &mut scratch, |_| {}).unwrap();
    assert_eq!(decoder.buffered_capacity_bytes(), 0);

    // A control frame split with no message in progress.
    let pong = frame(Opcode::Pong, true, b"xyz");
    decoder.decode(&pong[..7], &mut scratch, |_| {}).unwrap();
    assert_eq!(decoder.buffered_bytes(), 1);
    decoder.decode(&pong[7..], &mut scratch, |_| {}).unwrap();
    assert_eq!(decoder.buffered_capacity_bytes(), 0);
}

#[test]
fn one_scratch_buffer_serves_many_connections() {
    let mut scratch = Vec::new();
    let mut decoders = [Decoder::new(Limits::DEFAULT), Decoder::new(Limits::DEFAULT)];
    let a_bytes = concat(&[
        &frame(Opcode::Text, false, b"alpha "),
        &frame(Opcode::Continuation, true, b"done"),
    ]);
    let b_bytes = frame(Opcode::Binary, true, b"bravo");
    let mut seen = Vec::new();
    let feeds: [(usize, &[u8]); 4] = [
        (0, &a_bytes[..9]),
        (1, &b_bytes[..4]),
        (0, &a_bytes[9..]),
        (1, &b_bytes[4..]),
    ];
    for (i, (connection, bytes)) in feeds.into_iter().enumerate() {
        decoders[connection]
            .decode(bytes, &mut scratch, |event| {
                seen.push((i, connection, Seen::from_event(event)))
            })
            .unwrap();
    }
    assert_eq!(
        seen,
        [
            (2, 0, text("alpha done")),
            (3, 1, Seen::Binary(b"bravo".to_vec())),
        ]
    );
}

// --- After the end ---

#[test]
fn input_after_close_is_ignored() {
    let mut decoder = Decoder::new(Limits::DEFAULT);
    let mut scratch = Vec::new();
    let mut seen = Vec::new();
    let bytes = concat(&[
        &frame(Opcode::Binary, false, b"pending"),
        &close(1000, b""),
        &frame(Opcode::Ping, true, b"after"),
    ]);
    decoder
        .decode(&bytes, &mut scratch, |event| {
            seen.push(Seen::from_event(event))
        })
        .unwrap();
    assert!(decoder.is_finished());
    assert_eq!(decoder.buffered_capacity_bytes(), 0);
    decoder
        .decode(&[0xFF; 10], &mut scratch, |event| {
            seen.push(Seen::from_event(event))
        })
        .unwrap();
    assert_eq!(seen, [Seen::Close(Some(1000), String::new())]);
}

#[test]
fn input_after_an_error_is_ignored() {
    let mut decoder = Decoder::new(Limits::DEFAULT);
    let mut scratch = Vec::new();
    assert!(decoder.decode(&[0x81, 0x00], &mut scratch, |_| {}).is_err());
    assert!(decoder.is_finished());
    let ping = frame(Opcode::Ping, true, b"");
    let mut count = 0;
    assert_eq!(decoder.decode(&ping, &mut scratch, |_| count += 1), Ok(()));
    assert_eq!(count, 0);
}

#[test]
#[should_panic(expected = "invalid WebSocket limits")]
fn invalid_limits_are_a_bug() {
    Decoder::new(Limits {
        frame_max_bytes: 10,
        message_max_bytes: 10,
    });
}

#[test]
fn unmask_matches_the_definition_at_every_offset() {
    let mask = [0x01, 0x20, 0x40, 0x80];
    let data: Vec<u8> = (0..=40).collect();
    for offset in 0..8 {
        for len in 0..data.len() {
            let mut bytes = data[..len].to_vec();
            unmask(&mut bytes, mask, offset);
            let expected: Vec<u8> = data[..len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[(offset + i) % 4])
                .collect();
            assert_eq!(bytes, expected, "offset {offset} len {len}");
        }
    }
}

// --- Property-style tests ---

/// xorshift64*: deterministic, good enough to pick fragments and splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }

    /// Cuts `bytes` into random pieces, some of them empty.
    fn chunks<'a>(&mut self, bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = match self.below(5) {
                0 => 0,
                1 => 1,
                2 => self.below(16.min(rest.len()) + 1),
                _ => self.below(rest.len() + 1),
            };
            let (front, back) = rest.split_at(take);
            chunks.push(front);
            rest = back;
        }
        chunks
    }

    /// `len` bytes cut into 1 to 5 random fragments (some may be empty).
    fn cuts(&mut self, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = (0..self.below(5)).map(|_| self.below(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }
}

const CHARS: &[&str] = &[
    "a",
    "Z",
    " ",
    "\u{7F}",
    "é",
    "\u{7FF}",
    "€",
    "世",
    "\u{FFFF}",
    "😀",
    "\u{10FFFF}",
];

/// A random valid session: data messages of random kind, length and fragmentation, with
/// pings and pongs between messages and between fragments, each frame with its own mask,
/// sometimes ended by a Close and trailing garbage. Returns the bytes and the events they must
/// produce under `limits`.
fn random_session(rng: &mut Rng, limits: &Limits) -> (Vec<u8>, Vec<Seen>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    let control = |rng: &mut Rng, bytes: &mut Vec<u8>, expected: &mut Vec<Seen>| {
        let len = if rng.chance(8) { 125 } else { rng.below(10) };
        let payload = rng.bytes(len);
        let ping = rng.chance(2);
        let opcode = if ping { 0x89 } else { 0x8A };
        bytes.extend(masked(opcode, &payload, rng.mask()));
        expected.push(if ping {
            Seen::Ping(payload)
        } else {
            Seen::Pong(payload)
        });
    };
    for _ in 0..rng.below(8) {
        if rng.chance(4) {
            control(rng, &mut bytes, &mut expected);
            continue;
        }
        let max = limits
            .message_max_bytes
            .min(if rng.chance(10) { 3000 } else { 40 });
        let is_text = rng.chance(2);
        let payload = if is_text {
            let mut text = String::new();
            loop {
                let c = CHARS[rng.below(CHARS.len())];
                if text.len() + c.len() > max || rng.chance(max.max(1)) {
                    break;
                }
                text.push_str(c);
            }
            text.into_bytes()
        } else {
            let len = rng.below(max + 1);
            rng.bytes(len)
        };
        let mut points = vec![0];
        points.extend(rng.cuts(payload.len()));
        points.push(payload.len());
        // Keep every fragment within the frame cap.
        let mut fragments = Vec::new();
        for pair in points.windows(2) {
            let mut at = pair[0];
            loop {
                let end = pair[1].min(at + limits.frame_max_bytes);
                fragments.push(&payload[at..end]);
                at = end;
                if at == pair[1] {
                    break;
                }
            }
        }
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = match (i, is_text) {
                (0, true) => 0x1,
                (0, false) => 0x2,
                _ => 0x0,
            };
            let fin = i == fragments.len() - 1;
            bytes.extend(masked((u8::from(fin) << 7) | opcode, fragment, rng.mask()));
            if !fin && rng.chance(3) {
                control(rng, &mut bytes, &mut expected);
            }
        }
        expected.push(if is_text {
            Seen::Text(String::from_utf8(payload).unwrap())
        } else {
            Seen::Binary(payload)
        });
    }
    if rng.chance(3) {
        let code = [1000, 1001, 1003, 1008, 1011, 3333, 4000][rng.below(7)];
        let reason = CHARS[rng.below(CHARS.len())].repeat(rng.below(5));
        let mut payload = u16::to_be_bytes(code).to_vec();
        payload.extend_from_slice(reason.as_bytes());
        bytes.extend(masked(0x88, &payload, rng.mask()));
        expected.push(Seen::Close(Some(code), reason));
        let junk = rng.below(20);
        bytes.extend(rng.bytes(junk));
    }
    (bytes, expected)
}

/// Random valid sessions, encoded with random masks and fragmentation, decoded from random
/// pieces: exactly the events that were encoded, whatever the split.
#[test]
fn random_sessions_round_trip_in_random_pieces() {
    let mut rng = Rng(0x5eed_0000_cafe_f00d);
    for round in 0..3_000 {
        let limits = if round % 3 == 0 {
            SMALL
        } else {
            Limits::DEFAULT
        };
        let (bytes, expected) = random_session(&mut rng, &limits);
        assert_eq!(drive(limits, [&bytes[..]]), expected, "round {round} whole");
        let chunks = rng.chunks(&bytes);
        assert_eq!(
            drive(limits, chunks.iter().copied()),
            expected,
            "round {round} in {} pieces",
            chunks.len()
        );
    }
}

/// Frames with random flaws: a random first byte, length encodings of every width, unmasked
/// frames, random payloads, truncation and byte flips.
fn mutated_frames(rng: &mut Rng) -> Vec<u8> {
    const FIRST: &[u8] = &[
        0x81, 0x82, 0x01, 0x02, 0x01, 0x02, 0x80, 0x00, 0x00, 0x00, 0x88, 0x89, 0x8A, 0x09, 0xC1,
    ];
    let mut bytes = Vec::new();
    for _ in 0..rng.below(8) {
        let first = if rng.chance(10) {
            rng.next() as u8
        } else {
            FIRST[rng.below(FIRST.len())]
        };
        let len = match rng.below(4) {
            0 => rng.below(4),
            1 => rng.below(130),
            2 => 120 + rng.below(200),
            _ => rng.below(600),
        };
        let payload = if rng.chance(3) {
            // Mostly-valid text, so UTF-8 checks see near misses.
            let mut text = Vec::new();
            while text.len() < len {
                text.extend_from_slice(CHARS[rng.below(CHARS.len())].as_bytes());
            }
            text.truncate(len);
            text
        } else {
            rng.bytes(len)
        };
        let mut frame = masked(first, &payload, rng.mask());
        match rng.below(10) {
            0 => frame[1] &= 0x7F,
            1 => frame.truncate(rng.below(frame.len() + 1)),
            2 => {
                let at = rng.below(frame.len());
                frame[at] ^= 1 << rng.below(8);
            }
            3 => {
                // A 64-bit length field: sometimes with its top bit set, sometimes huge,
                // sometimes the true length in a non-minimal form.
                let length = match rng.below(3) {
                    0 => rng.next() | 1 << 63,
                    1 => rng.next() >> rng.below(64),
                    _ => len as u64,
                };
                let mut wide = vec![frame[0], 0x80 | 127];
                wide.extend_from_slice(&length.to_be_bytes());
                let header_len = match frame[1] & 0x7F {
                    126 => 4,
                    127 => 10,
                    _ => 2,
                };
                wide.extend_from_slice(&frame[header_len..]);
                frame = wide;
            }
            4 if len < 126 => {
                // The same length in a non-minimal 16-bit field.
                let mut wide = vec![frame[0], 0x80 | 126, 0, len as u8];
                wide.extend_from_slice(&frame[2..]);
                frame = wide;
            }
            _ => {}
        }
        bytes.extend(frame);
    }
    bytes
}

/// Random byte soup and mutated frames, in random pieces: decoding never panics, never keeps
/// more than the caps allow (checked in `drive`), and gives the same events and error as
/// decoding the whole input at once.
#[test]
fn random_soup_in_random_pieces() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for round in 0..30_000 {
        let bytes = if round % 4 == 0 {
            let len = rng.below(64);
            rng.bytes(len)
        } else {
            mutated_frames(&mut rng)
        };
        let whole = drive(SMALL, [&bytes[..]]);
        let chunks = rng.chunks(&bytes);
        assert_eq!(
            drive(SMALL, chunks.iter().copied()),
            whole,
            "round {round}: {bytes:02x?} in {chunks:?}"
        );
    }
}
