//! The `ws_decoder` target: [`shardcast_ws::Decoder`] against its documented contract.

use shardcast_ws::{
    CloseCode, CloseHandshake, Decoder, Event, Limits, MessageKind, WsError,
    CONTROL_PAYLOAD_MAX_BYTES,
};

use crate::{Input, BYTE_AT_A_TIME_MAX_BYTES};

/// The caps an input can select (by its config byte, modulo the length): the defaults, caps
/// that short inputs reach, and a message cap below the frame cap.
const LIMITS: [Limits; 3] = [
    Limits::DEFAULT,
    Limits {
        frame_max_bytes: CONTROL_PAYLOAD_MAX_BYTES,
        message_max_bytes: 200,
    },
    Limits {
        frame_max_bytes: 300,
        message_max_bytes: 16,
    },
];

/// Decodes the payload of `data` (see [`Input`]) whole, in the pieces the input chose, and one
/// byte per call, and checks:
///
/// - the three runs report the same events and the same error (errors are "decided from bytes
///   alone, so the same input gives the same error however it is split");
/// - after every call the connection keeps at most `message_max_bytes + 125` bytes, frees its
///   buffer whenever it holds nothing and once finished, and the shared scratch buffer has
///   not grown past the same bound;
/// - every event is within its caps: messages at most `message_max_bytes`, control payloads
///   at most 125 bytes, text valid UTF-8, close codes allowed on the wire; nothing is reported
///   after a Close in the same call, nor in any call once the decoder is finished, and an error
///   finishes the decoder;
/// - [`CloseHandshake`] answers the outcome with exactly one Close frame.
pub fn ws_decoder(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let limits = LIMITS[usize::from(input.config) % LIMITS.len()];
    let whole = drive(limits, [input.payload]);
    let pieces = drive(limits, input.pieces());
    assert_eq!(pieces, whole, "split at the chosen cuts");
    if input.payload.len() <= BYTE_AT_A_TIME_MAX_BYTES {
        let bytes = drive(limits, input.payload.chunks(1));
        assert_eq!(bytes, whole, "one byte at a time");
    }
    answer(&whole);
}

/// What a connection saw, owned, so that runs over differently split input can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(WsError),
}

/// Feeds `chunks` to one decoder in order, as a shard does, checking the caps as it goes.
fn drive<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Seen> {
    let mut decoder = Decoder::new(limits);
    let mut scratch = Vec::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        let finished = decoder.is_finished();
        let before = seen.len();
        let mut closed = false;
        let result = decoder.decode(chunk, &mut scratch, |event| {
            assert!(!closed, "an event after the peer's Close: {event:?}");
            let event = check_event(&limits, event);
            closed = matches!(event, Seen::Close(..));
            seen.push(event);
        });
        if finished {
            assert_eq!(result, Ok(()), "a finished decoder ignores input");
            assert_eq!(seen.len(), before, "a finished decoder reports nothing");
        }
        if closed {
            assert!(decoder.is_finished(), "a Close finishes the decoder");
        }
        if let Err(error) = result {
            assert!(!closed, "an error after the peer's Close: {error:?}");
            assert!(decoder.is_finished(), "an error finishes the decoder");
            check_error(&limits, &error);
            seen.push(Seen::Error(error));
        }
        check_memory(&decoder, &scratch);
    }
    seen
}

fn check_event(limits: &Limits, event: Event<'_>) -> Seen {
    match event {
        Event::Message { kind, payload } => {
            assert!(payload.len() <= limits.message_max_bytes, "{limits:?}");
            match kind {
                MessageKind::Text => Seen::Text(
                    String::from_utf8(payload.to_vec()).expect("a text message is UTF-8"),
                ),
                MessageKind::Binary => Seen::Binary(payload.to_vec()),
            }
        }
        Event::Ping(payload) => {
            assert!(payload.len() <= CONTROL_PAYLOAD_MAX_BYTES);
            Seen::Ping(payload.to_vec())
        }
        Event::Pong(payload) => {
            assert!(payload.len() <= CONTROL_PAYLOAD_MAX_BYTES);
            Seen::Pong(payload.to_vec())
        }
        Event::Close { code, reason } => {
            if let Some(code) = code {
                assert!(CloseCode::is_allowed_on_wire(code), "close code {code}");
            }
            // Two bytes of code, the reason, within one control frame.
            assert!(reason.len() + 2 <= CONTROL_PAYLOAD_MAX_BYTES);
            assert!(code.is_some() || reason.is_empty());
            Seen::Close(code, reason.to_owned())
        }
    }
}

/// Limit errors carry the limit and a value beyond it.
fn check_error(limits: &Limits, error: &WsError) {
    match *error {
        WsError::FrameTooLarge { limit, seen } => {
            assert_eq!(limit, limits.frame_max_bytes);
            assert!(seen > limit as u64, "{error:?}");
        }
        WsError::MessageTooLarge { limit, seen } => {
            assert_eq!(limit, limits.message_max_bytes);
            assert!(seen > limit as u64, "{error:?}");
        }
        _ => {}
    }
    let _ = error.close_code();
}

fn check_memory(decoder: &Decoder, scratch: &Vec<u8>) {
    let limits = decoder.limits();
    let bound = limits.message_max_bytes + CONTROL_PAYLOAD_MAX_BYTES;
    assert!(decoder.buffered_bytes() <= bound);
    assert!(
        decoder.buffered_capacity_bytes() <= bound,
        "connection buffer capacity {} over {bound}",
        decoder.buffered_capacity_bytes()
    );
    if decoder.buffered_bytes() == 0 || decoder.is_finished() {
        assert_eq!(
            decoder.buffered_capacity_bytes(),
            0,
            "an empty buffer is freed"
        );
    }
    assert!(
        scratch.capacity() <= bound,
        "scratch capacity {} over {bound}",
        scratch.capacity()
    );
}

/// Answers what the connection saw as a server does, and checks the Close frame it sends.
fn answer(seen: &[Seen]) {
    let mut close = CloseHandshake::new();
    let frame = match seen.last() {
        Some(Seen::Close(code, _)) => close.handle_close(*code),
        Some(Seen::Error(error)) => close.handle_error(error),
        _ => return,
    };
    let frame = frame.expect("the first Close is sent");
    assert_eq!(&frame[..2], [0x88, 0x02], "a Close frame with a code only");
    let code = u16::from_be_bytes([frame[2], frame[3]]);
    assert!(
        CloseCode::is_allowed_on_wire(code),
        "close code {code} sent"
    );
    assert!(close.is_sent());
    assert!(close.handle_close(None).is_none(), "only one Close is sent");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> Vec<Seen> {
        let path = format!("{}/seeds/ws_decoder/{name}", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read(path).expect("seed");
        let input = Input::parse(&data).unwrap();
        drive(
            LIMITS[usize::from(input.config) % LIMITS.len()],
            [input.payload],
        )
    }

    /// The seeds are the valid sessions they are named after, not early errors.
    #[test]
    fn seeds_decode_as_named() {
        assert_eq!(seed("text"), [Seen::Text("hello".into())]);
        assert_eq!(
            seed("text_ping_close"),
            [
                Seen::Text("弾幕 chat".into()),
                Seen::Ping(b"p".to_vec()),
                Seen::Pong(Vec::new()),
                Seen::Close(Some(1000), "bye ✓".into()),
            ]
        );
        assert_eq!(
            seed("fragmented_text"),
            [Seen::Ping(b"keepalive".to_vec()), Seen::Text("aé€!".into())]
        );
        assert_eq!(
            seed("binary_16bit_length"),
            [
                Seen::Binary(vec![0xAB; 300]),
                Seen::Binary(vec![0, 1, 2, 3])
            ]
        );
        let mut fragments = vec![1; 8];
        fragments.extend([2; 8]);
        assert_eq!(
            seed("binary_fragments_at_caps"),
            [Seen::Binary(fragments), Seen::Close(None, String::new())]
        );
    }
}
