//! Byte-level fixtures: a publisher's command sequence written out byte by byte, decoded to
//! the expected events, and the server's answers checked byte by byte.

use super::*;
use crate::Amf0Object;

/// Bytes from hex, ignoring whitespace, and ASCII between double quotes.
fn hex(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut parts = text.split('"');
    while let Some(hex_part) = parts.next() {
        let digits: Vec<u8> = hex_part
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        assert!(
            digits.len().is_multiple_of(2),
            "odd hex digits in {hex_part:?}"
        );
        for pair in digits.chunks(2) {
            let s = std::str::from_utf8(pair).unwrap();
            bytes.push(u8::from_str_radix(s, 16).expect("hex"));
        }
        if let Some(ascii) = parts.next() {
            bytes.extend_from_slice(ascii.as_bytes());
        }
    }
    bytes
}

/// `connect` as ffmpeg and librtmp write it for `rtmp://localhost/live/test`: 129 bytes of
/// AMF0, so at the initial chunk size of 128 it takes a type 3 continuation chunk for its last
/// byte (the object-end marker's 0x09).
const CONNECT: &str = r#"
    03 000000 000081 14 00000000
    02 0007 "connect"
    00 3FF0000000000000
    03
      0003 "app"      02 0004 "live"
      0004 "type"     02 000A "nonprivate"
      0008 "flashVer" 02 001F "FMLE/3.0 (compatible; FMSc/1.0)"
      0005 "tcUrl"    02 0015 "rtmp://localhost/live"
      0000
    C3 09
"#;

/// What follows `connect` once it is answered: the client's Window Acknowledgement Size and
/// Set Chunk Size, then `releaseStream`, `FCPublish` and `createStream` with type 1 headers on
/// chunk stream 3, then `publish` on chunk stream 8, message stream 1.
const PUBLISH: &str = r#"
    02 000000 000004 05 00000000   002625A0
    42 000000 000004 01            00001000
    43 000000 000021 14
       02 000D "releaseStream"  00 4000000000000000  05  02 0004 "test"
    43 000000 00001D 14
       02 0009 "FCPublish"      00 4008000000000000  05  02 0004 "test"
    43 000000 000019 14
       02 000C "createStream"   00 4010000000000000  05
    08 000000 000022 14 01000000
       02 0007 "publish"        00 4014000000000000  05  02 0004 "test"  02 0004 "live"
"#;

/// After Publish.Start: `@setDataFrame` with an ECMA array, an AVC sequence header and an AAC
/// sequence header, then a type 2 header for the next video frame at +40 ms.
const MEDIA: &str = r#"
    08 000000 000046 12 01000000
       02 000D "@setDataFrame"  02 000A "onMetaData"
       08 00000002
         0005 "width"  00 4074000000000000
         0006 "height" 00 406E000000000000
         000009
    06 000000 00000A 09 01000000   17 00 000000 0142C01E FF
    04 000000 000004 08 01000000   AF 00 1210
    86 000028                      27 01 000000 0142C01E FF
"#;

fn expected_connected() -> Event {
    Event::Connected {
        app: "live".into(),
        tc_url: "rtmp://localhost/live".into(),
        flash_ver: "FMLE/3.0 (compatible; FMSc/1.0)".into(),
    }
}

#[test]
fn fixture_lengths_match_their_headers() {
    let connect = hex(CONNECT);
    assert_eq!(connect.len(), 12 + 128 + 1 + 1);
    let publish = hex(PUBLISH);
    assert_eq!(
        publish.len(),
        16 + 12 + 0x21 + 8 + 0x1D + 8 + 0x19 + 8 + 12 + 0x22
    );
    let media = hex(MEDIA);
    assert_eq!(media.len(), 12 + 0x46 + 12 + 10 + 12 + 4 + 4 + 10);
}

#[test]
fn publisher_command_sequence_byte_by_byte() {
    let mut input = handshake_bytes();
    input.extend(hex(CONNECT));
    let mut raw = Raw {
        server: ServerSession::new(SessionConfig::DEFAULT, 0),
        writer: crate::message::Writer::new(),
        now_ms: 0,
        events: Vec::new(),
        received: Vec::new(),
        seen: 0,
    };
    raw.feed(&input).unwrap();
    assert_eq!(raw.events, [expected_connected()]);
    // S0, S1 (time and version zero) and S2 (C1 echoed: zeros here), then the answers.
    assert_eq!(raw.received[0], 3);
    assert_eq!(&raw.received[1..9], &[0; 8]);
    assert_eq!(&raw.received[1537..3073], &[0; 1536][..]);
    let answers = &raw.received[3073..];
    let expected_head = hex(r#"
        02 000000 000004 05 00000000  002625A0
        42 000000 000005 06           002625A0 02
        42 000000 000004 01           00001000
        03 000000 0000BE 14 00000000
           02 0007 "_result"  00 3FF0000000000000
           03 0006 "fmsVer" 02 000D "FMS/3,0,1,123"  000C "capabilities" 00 403F000000000000  000009
           03 0005 "level" 02 0006 "status"
              0004 "code" 02 001D "NetConnection.Connect.Success"
              000B "description" 02 0015 "Connection succeeded."
              000E "objectEncoding" 00 0000000000000000
              000009
    "#);
    assert_eq!(answers, &expected_head[..]);

    let answered = raw.received.len();
    raw.feed(&hex(PUBLISH)).unwrap();
    assert_eq!(
        raw.events[1..],
        [Event::PublishRequested {
            stream_id: 1,
            name: "test".into(),
            kind: "live".into()
        }]
    );
    assert_eq!(raw.server.peer_chunk_size(), 4096);
    let sent = decode_messages(&raw.received[3073..]);
    // Set Chunk Size is applied by the decoder rather than returned.
    assert_eq!(sent.len(), 7);
    assert_eq!(
        command_names(&sent[3..]),
        ["_result", "onFCPublish", "_result", "_result"]
    );
    assert!(raw.received.len() > answered);

    let published = raw.received.len();
    raw.server.accept_publish(1).unwrap();
    raw.feed(&hex(MEDIA)).unwrap();
    // Chunk stream 2 carried the connect answer, so Stream Begin has a type 1 header;
    // chunk stream 5 is new, so onStatus has a type 0 header.
    let expected_start = hex(r#"
        42 000000 000006 04            0000 00000001
        05 000000 00007F 14 01000000
           02 0008 "onStatus"  00 0000000000000000  05
           03 0005 "level" 02 0006 "status"
              0004 "code" 02 0017 "NetStream.Publish.Start"
              000B "description" 02 0016 "test is now published."
              0007 "details" 02 0004 "test"
              000009
    "#);
    assert_eq!(raw.received[published..], expected_start[..]);
    assert_eq!(
        raw.events[2..],
        [
            Event::Metadata {
                stream_id: 1,
                values: Amf0Object::new().with("width", 320.0).with("height", 240.0),
            },
            Event::Video {
                stream_id: 1,
                timestamp_ms: 0,
                payload: hex("17 00 000000 0142C01E FF").into(),
            },
            Event::Audio {
                stream_id: 1,
                timestamp_ms: 0,
                payload: hex("AF 00 1210").into(),
            },
            Event::Video {
                stream_id: 1,
                timestamp_ms: 40,
                payload: hex("27 01 000000 0142C01E FF").into(),
            },
        ]
    );
}

/// The same bytes, cut at every point, give the same events.
#[test]
fn publisher_command_sequence_at_every_split() {
    let mut input = handshake_bytes();
    input.extend(hex(CONNECT));
    input.extend(hex(PUBLISH));
    let run = |pieces: &[&[u8]]| {
        let mut server = ServerSession::new(SessionConfig::DEFAULT, 0);
        let mut events = Vec::new();
        let mut output = Vec::new();
        for piece in pieces {
            server.handle_input(0, piece).unwrap();
            while let Some(event) = server.poll_event() {
                events.push(event);
            }
            while let Some(bytes) = server.poll_transmit() {
                output.extend_from_slice(&bytes);
            }
        }
        (events, output)
    };
    let whole = run(&[&input]);
    assert_eq!(whole.0.len(), 2);
    for split in (0..=input.len()).step_by(7).chain(3070..3080) {
        let (front, back) = input.split_at(split);
        assert_eq!(run(&[front, back]), whole, "split at {split}");
    }
}

/// Bytes ffmpeg 5.1 (Lavf59.27.100) sent after the handshake when publishing
/// `rtmp://127.0.0.1:39231/live/test`, captured from a real run: `connect` (140 bytes, so a type
/// 3 continuation after 128), Set Chunk Size 4096, `releaseStream`, `FCPublish` and
/// `createStream` with type 1 headers, `publish` on chunk stream 8; then, after
/// `NetStream.Publish.Start`, `@setDataFrame` on chunk stream 4 and the AVC sequence header on
/// chunk stream 6.
const FFMPEG_5_1: &str = "
    0300000000008C1400000000020007636F6E6E656374003FF000000000000003
    00036170700200046C69766500047479706502000A6E6F6E7072697661746500
    08666C617368566572020024464D4C452F332E302028636F6D70617469626C65
    3B204C61766635392E32372E313030290005746355726C02001B72746D703A2F
    2F3132372E302E302E313A33C3393233312F6C69766500000902000000000004
    010000000000001000430000000000211402000D72656C656173655374726561
    6D00400000000000000005020004746573744300000000001D14020009464350
    75626C6973680040080000000000000502000474657374430000000000191402
    000C63726561746553747265616D004010000000000000050800000000002214
    010000000200077075626C697368004014000000000000050200047465737402
    00046C69766504000000000135120100000002000D4073657444617461467261
    6D6502000A6F6E4D65746144617461080000000D00086475726174696F6E0040
    0800000000000000057769647468004074000000000000000668656967687400
    406E000000000000000D766964656F6461746172617465000000000000000000
    00096672616D6572617465004039000000000000000C766964656F636F646563
    696400401C000000000000000D617564696F6461746172617465004050D88000
    000000000F617564696F73616D706C65726174650040E5888000000000000F61
    7564696F73616D706C6573697A65004030000000000000000673746572656F01
    00000C617564696F636F64656369640040240000000000000007656E636F6465
    7202000D4C61766635392E32372E313030000866696C6573697A650000000000
    00000000000009060000000000330901000000170000000001F4000DFFE10019
    67F4000D919B28283F6022000003000200000300641E28532C01000668EBE3C4
    4844FFF8F800
";

/// Where `publish` ends in [`FFMPEG_5_1`].
const FFMPEG_5_1_PUBLISH_END: usize = 326;

#[test]
fn captured_ffmpeg_publish() {
    let capture = hex(FFMPEG_5_1);
    assert_eq!(capture.len(), 710);
    let (commands, media) = capture.split_at(FFMPEG_5_1_PUBLISH_END);
    let mut input = handshake_bytes();
    input.extend_from_slice(commands);
    let mut server = ServerSession::new(SessionConfig::DEFAULT, 0);
    server.handle_input(5, &input).unwrap();
    let mut events = Vec::new();
    while let Some(event) = server.poll_event() {
        events.push(event);
    }
    assert_eq!(
        events,
        [
            Event::Connected {
                app: "live".into(),
                tc_url: "rtmp://127.0.0.1:39231/live".into(),
                flash_ver: "FMLE/3.0 (compatible; Lavf59.27.100)".into(),
            },
            Event::PublishRequested {
                stream_id: 1,
                name: "test".into(),
                kind: "live".into()
            },
        ]
    );
    assert_eq!(server.peer_chunk_size(), 4096);
    server.accept_publish(1).unwrap();
    server.handle_input(6, media).unwrap();
    let Some(Event::Metadata {
        stream_id: 1,
        values,
    }) = server.poll_event()
    else {
        panic!("metadata first");
    };
    assert_eq!(values.len(), 13);
    assert_eq!(values.get_number("width"), Some(320.0));
    assert_eq!(values.get_number("height"), Some(240.0));
    assert_eq!(values.get_number("framerate"), Some(25.0));
    assert_eq!(values.get_number("videocodecid"), Some(7.0));
    assert_eq!(values.get_number("audiocodecid"), Some(10.0));
    assert_eq!(values.get_str("encoder"), Some("Lavf59.27.100"));
    match server.poll_event() {
        Some(Event::Video {
            stream_id: 1,
            timestamp_ms: 0,
            payload,
        }) => {
            assert_eq!(payload.len(), 51);
            assert_eq!(payload[..5], [0x17, 0, 0, 0, 0], "an AVC sequence header");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.poll_event(), None);
    assert_eq!(server.buffered_bytes(), 0);
}
