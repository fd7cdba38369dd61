use super::*;

fn decoder() -> ChunkDecoder {
    ChunkDecoder::new(&SessionConfig::DEFAULT)
}

/// Decodes `pieces` in order with one decoder, collecting messages until the first error.
fn decode_pieces<'a>(
    decoder: &mut ChunkDecoder,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Message>, RtmpError> {
    let mut messages = Vec::new();
    for piece in pieces {
        let mut input = piece;
        while let Some(message) = decoder.decode(&mut input)? {
            messages.push(message);
        }
        assert!(input.is_empty(), "all input consumed");
    }
    Ok(messages)
}

fn decode(bytes: &[u8]) -> Result<Vec<Message>, RtmpError> {
    decode_pieces(&mut decoder(), [bytes])
}

/// Every two-piece split, and byte-at-a-time delivery, give the same messages (or error).
fn assert_split_invariant(bytes: &[u8]) -> Result<Vec<Message>, RtmpError> {
    let whole = decode(bytes);
    for split in 0..=bytes.len() {
        let (front, back) = bytes.split_at(split);
        assert_eq!(
            decode_pieces(&mut decoder(), [front, back]),
            whole,
            "split at {split}"
        );
    }
    assert_eq!(decode_pieces(&mut decoder(), bytes.chunks(1)), whole);
    whole
}

fn message(csid: u32, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) -> Message {
    Message {
        chunk_stream_id: csid,
        type_id,
        stream_id,
        timestamp,
        payload: Bytes::copy_from_slice(payload),
    }
}

/// RTMP 1.0 §5.3.2.1: four audio messages of 32 bytes, 20 ms apart, on chunk stream 3 of
/// message stream 12345: a type 0 header, a type 2, then two type 3.
#[test]
fn spec_example_audio_messages() {
    let payload = [0xAA; 32];
    let mut bytes = vec![
        0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x20, 0x08, 0x39, 0x30, 0, 0,
    ];
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(&[0x83, 0x00, 0x00, 0x14]);
    bytes.extend_from_slice(&payload);
    bytes.push(0xC3);
    bytes.extend_from_slice(&payload);
    bytes.push(0xC3);
    bytes.extend_from_slice(&payload);
    let expected: Vec<Message> = [1000, 1020, 1040, 1060]
        .map(|ts| message(3, 8, 12345, ts, &payload))
        .to_vec();
    assert_eq!(assert_split_invariant(&bytes), Ok(expected));

    // The encoder chooses the same headers.
    let mut encoder = ChunkEncoder::new();
    let mut out = Vec::new();
    for ts in [1000, 1020, 1040, 1060] {
        encoder.encode(3, 8, 12345, ts, &payload, &mut out, None);
    }
    assert_eq!(out, bytes);
}

/// RTMP 1.0 §5.3.2.2: a 307-byte video message in chunks of 128: a type 0 chunk, then two
/// type 3 continuations.
#[test]
fn spec_example_message_split_into_chunks() {
    let payload: Vec<u8> = (0..307).map(|i| i as u8).collect();
    let mut bytes = vec![
        0x04, 0x00, 0x03, 0xE8, 0x00, 0x01, 0x33, 0x09, 0x39, 0x30, 0, 0,
    ];
    bytes.extend_from_slice(&payload[..128]);
    bytes.push(0xC4);
    bytes.extend_from_slice(&payload[128..256]);
    bytes.push(0xC4);
    bytes.extend_from_slice(&payload[256..]);
    assert_eq!(
        assert_split_invariant(&bytes),
        Ok(vec![message(4, 9, 12345, 1000, &payload)])
    );
    let mut out = Vec::new();
    ChunkEncoder::new().encode(4, 9, 12345, 1000, &payload, &mut out, None);
    assert_eq!(out, bytes);
}

/// A type 3 header that starts a message after a type 0 header adds the type 0 timestamp
/// again: the "delta" of a type 0 header is its timestamp (§5.3.1.2.4, and what ffmpeg and
/// SRS do).
#[test]
fn type_3_after_type_0_repeats_the_absolute_timestamp() {
    let bytes = [
        0x05, 0x00, 0x00, 0x64, 0x00, 0x00, 0x01, 0x08, 0x01, 0, 0, 0, 0x11, // ts 100
        0xC5, 0x22, // ts 200
        0x45, 0x00, 0x00, 0x05, 0x00, 0x00, 0x02, 0x09, 0x33, 0x44, // type 1: +5, video
        0xC5, 0x55, 0x66, // type 3: +5 again
    ];
    assert_eq!(
        assert_split_invariant(&bytes),
        Ok(vec![
            message(5, 8, 1, 100, &[0x11]),
            message(5, 8, 1, 200, &[0x22]),
            message(5, 9, 1, 205, &[0x33, 0x44]),
            message(5, 9, 1, 210, &[0x55, 0x66]),
        ])
    );
}

/// Two- and three-byte basic headers, at the edges of their ranges.
#[test]
fn basic_header_widths() {
    for (csid, header) in [
        (2u32, vec![0x02]),
        (63, vec![0x3F]),
        (64, vec![0x00, 0x00]),
        (319, vec![0x00, 0xFF]),
        (320, vec![0x01, 0x00, 0x01]),
        (65_599, vec![0x01, 0xFF, 0xFF]),
    ] {
        let mut out = Vec::new();
        ChunkEncoder::new().encode(csid, 8, 1, 7, b"x", &mut out, None);
        assert_eq!(&out[..header.len()], &header[..], "csid {csid}");
        assert_eq!(
            assert_split_invariant(&out),
            Ok(vec![message(csid, 8, 1, 7, b"x")]),
            "csid {csid}"
        );
    }
}

/// A timestamp of 0xFFFFFF or more goes in the extended field, and every type 3 chunk of the
/// chunk stream repeats it: continuations, and messages that start with a type 3 header.
#[test]
fn extended_timestamps_in_every_chunk() {
    let payload: Vec<u8> = (0..300).map(|i| i as u8).collect();
    let mut bytes = vec![
        0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x2C, 0x09, 0x01, 0, 0, 0,
    ];
    bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0x00]);
    bytes.extend_from_slice(&payload[..128]);
    bytes.extend_from_slice(&[0xC6, 0x01, 0x00, 0x00, 0x00]);
    bytes.extend_from_slice(&payload[128..256]);
    bytes.extend_from_slice(&[0xC6, 0x01, 0x00, 0x00, 0x00]);
    bytes.extend_from_slice(&payload[256..]);
    let mut out = Vec::new();
    let mut encoder = ChunkEncoder::new();
    encoder.encode(6, 9, 1, 0x0100_0000, &payload, &mut out, None);
    assert_eq!(out, bytes);

    // Type 1 with an extended delta, then a type 3 message that repeats it.
    encoder.encode(6, 9, 1, 0x0200_0010, &[1], &mut out, None);
    encoder.encode(6, 9, 1, 0x0300_0020, &[2], &mut out, None);
    // A small delta again: a type 2 header without the extended field.
    encoder.encode(6, 9, 1, 0x0300_0030, &[3], &mut out, None);
    encoder.encode(6, 9, 1, 0x0300_0040, &[4], &mut out, None);
    let tail = &out[bytes.len()..];
    assert_eq!(
        tail,
        [
            0x46, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x09, 0x01, 0x00, 0x00, 0x10,
            1, // type 1
            0xC6, 0x01, 0x00, 0x00, 0x10, 2, // type 3, extended
            0x86, 0x00, 0x00, 0x10, 3, // type 2
            0xC6, 4, // type 3, not extended
        ]
    );
    assert_eq!(
        assert_split_invariant(&out),
        Ok(vec![
            message(6, 9, 1, 0x0100_0000, &payload),
            message(6, 9, 1, 0x0200_0010, &[1]),
            message(6, 9, 1, 0x0300_0020, &[2]),
            message(6, 9, 1, 0x0300_0030, &[3]),
            message(6, 9, 1, 0x0300_0040, &[4]),
        ])
    );
}

/// Deltas are added modulo 2^32: a timestamp wraps rather than failing.
#[test]
fn timestamps_wrap() {
    let mut out = Vec::new();
    let mut encoder = ChunkEncoder::new();
    encoder.encode(4, 8, 1, u32::MAX - 5, &[1], &mut out, None);
    // A type 2 header whose delta takes the timestamp past 2^32.
    out.extend_from_slice(&[0x84, 0x00, 0x00, 0x0A, 2]);
    assert_eq!(
        decode(&out),
        Ok(vec![
            message(4, 8, 1, u32::MAX - 5, &[1]),
            message(4, 8, 1, 4, &[2])
        ])
    );
}

/// ffmpeg 5.1 publishing with `-output_ts_offset 4294961`, chunk headers as captured on the
/// wire (payloads replaced): the first frames after the sequence headers carry the whole
/// timestamp as a type 1 delta in the extended field, repeated in the type 3 continuation;
/// 6.3 s later its 31-bit FLV timestamps wrap from 0x7FFFFFxx to a few milliseconds, which it
/// sends as type 0 headers, and small type 1 deltas follow. The chunk layer reports those
/// timestamps as sent; the media layer's unwrapper reads the 2^31 wrap.
#[test]
fn ffmpeg_timestamps_at_its_31_bit_wrap() {
    let mut bytes = vec![0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0x00];
    let mut chunk = |header: &[u8], len: usize| {
        bytes.extend_from_slice(header);
        bytes.extend(std::iter::repeat_n(0xAB, len));
    };
    chunk(&[0x06, 0, 0, 0, 0, 0, 0x31, 0x09, 1, 0, 0, 0], 0x31);
    chunk(&[0x04, 0, 0, 0, 0, 0, 0x07, 0x08, 1, 0, 0, 0], 0x07);
    chunk(
        &[
            0x44, 0xFF, 0xFF, 0xFF, 0, 0, 0xC2, 0x08, 0x7F, 0xFF, 0xE7, 0x53,
        ],
        0xC2,
    );
    chunk(
        &[
            0x46, 0xFF, 0xFF, 0xFF, 0, 0x11, 0xD4, 0x09, 0x7F, 0xFF, 0xE7, 0x68,
        ],
        4096,
    );
    chunk(&[0xC6, 0x7F, 0xFF, 0xE7, 0x68], 0x11D4 - 4096);
    chunk(&[0x44, 0, 0, 0x15, 0, 0, 0xED, 0x08], 0xED);
    // (490 messages elided: one delta brings each chunk stream to its last timestamp before
    // the wrap.)
    chunk(&[0x46, 0, 0x18, 0x7B, 0, 0x01, 0x38, 0x09], 0x138);
    chunk(&[0x44, 0, 0x18, 0x95, 0, 0, 0xA6, 0x08], 0xA6);
    chunk(&[0x06, 0, 0, 0x04, 0, 0x01, 0x5A, 0x09, 1, 0, 0, 0], 0x15A);
    chunk(&[0x04, 0, 0, 0x13, 0, 0, 0xAF, 0x08, 1, 0, 0, 0], 0xAF);
    chunk(&[0x46, 0, 0, 0x21, 0, 0x01, 0x3E, 0x09], 0x13E);
    let timestamps: Vec<(u32, u32)> = decode(&bytes)
        .unwrap()
        .iter()
        .map(|m| (m.chunk_stream_id, m.timestamp))
        .collect();
    assert_eq!(
        timestamps,
        [
            (6, 0),
            (4, 0),
            (4, 2147477331),
            (6, 2147477352),
            (4, 2147477352),
            (6, 2147483619),
            (4, 2147483645),
            (6, 4),
            (4, 19),
            (6, 37),
        ]
    );
}

#[test]
fn zero_length_messages() {
    let mut out = Vec::new();
    let mut encoder = ChunkEncoder::new();
    encoder.encode(4, 8, 1, 10, &[], &mut out, None);
    encoder.encode(4, 8, 1, 20, &[], &mut out, None);
    encoder.encode(4, 8, 1, 30, &[], &mut out, None);
    assert_eq!(
        assert_split_invariant(&out),
        Ok(vec![
            message(4, 8, 1, 10, &[]),
            message(4, 8, 1, 20, &[]),
            message(4, 8, 1, 30, &[])
        ])
    );
}

/// Chunks of messages on different chunk streams may alternate.
#[test]
fn interleaved_chunk_streams() {
    let a: Vec<u8> = vec![0xA; 300];
    let b: Vec<u8> = vec![0xB; 200];
    let mut encoder = ChunkEncoder::new();
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    let (mut ends_a, mut ends_b) = (Vec::new(), Vec::new());
    encoder.encode(4, 8, 1, 1, &a, &mut out_a, Some(&mut ends_a));
    encoder.encode(6, 9, 1, 2, &b, &mut out_b, Some(&mut ends_b));
    assert_eq!((ends_a.len(), ends_b.len()), (3, 2));
    let mut bytes = Vec::new();
    let (mut start_a, mut start_b) = (0, 0);
    for i in 0..3 {
        bytes.extend_from_slice(&out_a[start_a..ends_a[i]]);
        start_a = ends_a[i];
        if let Some(&end) = ends_b.get(i) {
            bytes.extend_from_slice(&out_b[start_b..end]);
            start_b = end;
        }
    }
    assert_eq!(
        assert_split_invariant(&bytes),
        Ok(vec![message(6, 9, 1, 2, &b), message(4, 8, 1, 1, &a)])
    );
}

#[test]
fn set_chunk_size_applies_to_the_next_chunk() {
    let payload = vec![7; 1000];
    let mut encoder = ChunkEncoder::new();
    let mut out = Vec::new();
    encoder.encode(
        2,
        SET_CHUNK_SIZE,
        0,
        0,
        &1000u32.to_be_bytes(),
        &mut out,
        None,
    );
    encoder.set_chunk_size(1000);
    encoder.encode(4, 9, 1, 0, &payload, &mut out, None);
    assert_eq!(out.len(), 12 + 4 + 12 + 1000, "one chunk at the new size");
    let mut decoder = decoder();
    assert_eq!(
        decode_pieces(&mut decoder, [&out[..]]),
        Ok(vec![message(4, 9, 1, 0, &payload)])
    );
    assert_eq!(decoder.chunk_size(), 1000);
}

#[test]
fn structural_errors() {
    // Type 1, 2 or 3 on a chunk stream never opened by a type 0 header.
    for first in [0x44, 0x84, 0xC4] {
        assert_eq!(
            decode(&[first, 0, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0]),
            Err(RtmpError::ProtocolViolation(
                "the first chunk of a chunk stream is not type 0"
            ))
        );
    }
    // A type 0 header where a continuation is due.
    let mut bytes = vec![0x04, 0, 0, 0, 0, 0x00, 0xC8, 8, 1, 0, 0, 0];
    bytes.extend_from_slice(&[0; 128]);
    bytes.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 1, 8, 1, 0, 0, 0, 0]);
    assert_eq!(
        decode(&bytes),
        Err(RtmpError::ProtocolViolation(
            "a new message header inside an unfinished message"
        ))
    );
    // A Set Chunk Size with two bytes.
    assert_eq!(
        decode(&[0x02, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0x10, 0x00]),
        Err(RtmpError::MessageTooShort { type_id: 1, len: 2 })
    );
}

#[test]
fn abort_drops_the_unfinished_message() {
    let mut bytes = vec![0x04, 0, 0, 0, 0, 0x01, 0x00, 9, 1, 0, 0, 0];
    bytes.extend_from_slice(&[1; 128]);
    let mut decoder = decoder();
    assert_eq!(decode_pieces(&mut decoder, [&bytes[..]]), Ok(vec![]));
    assert_eq!(
        decoder.buffered_bytes(),
        256,
        "the whole message is reserved"
    );
    // Abort chunk stream 4, then start a new message on it with a type 1 header.
    let abort = [0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 4];
    assert_eq!(decode_pieces(&mut decoder, [&abort[..]]), Ok(vec![]));
    assert_eq!(decoder.buffered_bytes(), 0, "the reservation is released");
    let next = [0x44, 0, 0, 5, 0, 0, 1, 8, 0x42];
    assert_eq!(
        decode_pieces(&mut decoder, [&next[..]]),
        Ok(vec![message(4, 8, 1, 5, &[0x42])])
    );
    // Aborting an unknown or idle chunk stream is harmless.
    let abort_unknown = [0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 9];
    assert_eq!(
        decode_pieces(&mut decoder, [&abort_unknown[..]]),
        Ok(vec![])
    );
}

#[test]
fn idle_decoder_keeps_nothing() {
    let mut encoder = ChunkEncoder::new();
    let mut out = Vec::new();
    encoder.encode(4, 9, 1, 0, &[5; 1000], &mut out, None);
    let mut decoder = decoder();
    let messages = decode_pieces(&mut decoder, out.chunks(7)).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(decoder.buffered_bytes(), 0);
    decoder.clear();
    assert_eq!(decoder.chunk_stream_count(), 0);
}

/// The per-chunk-stream state that `SessionConfig::chunk_streams_max` multiplies.
#[test]
fn chunk_stream_state_is_small() {
    assert!(std::mem::size_of::<ChunkStream>() <= 64);
}
