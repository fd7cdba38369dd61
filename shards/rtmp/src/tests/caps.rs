//! Every cap at its limit and one over, the handshake's version check and its deadline.

use super::*;
use crate::message::{AUDIO, COMMAND_AMF0, SET_CHUNK_SIZE, USER_CONTROL, VIDEO};
use crate::{Amf0Object, AmfError};

fn set_chunk_size(raw: &mut Raw, size: u32) {
    raw.message(2, SET_CHUNK_SIZE, 0, 0, &size.to_be_bytes());
}

#[test]
fn chunk_size_at_limit_and_one_over() {
    let config = SessionConfig {
        chunk_size_max: 1000,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::publishing(config);
    set_chunk_size(&mut raw, 1000);
    raw.writer.encoder.set_chunk_size(1000);
    raw.message(4, VIDEO, 1, 0, &[9; 1000]);
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(raw.server.peer_chunk_size(), 1000);
    assert!(matches!(&raw.events[..], [Event::Video { payload, .. }] if payload.len() == 1000));

    set_chunk_size(&mut raw, 1001);
    assert_eq!(
        raw.flush(),
        Err(RtmpError::ChunkSizeTooLarge {
            limit: 1000,
            seen: 1001
        })
    );
    assert!(raw.server.is_finished());
}

#[test]
fn chunk_size_zero_or_with_the_high_bit_is_refused() {
    for size in [0, 0x8000_0000, 0x8000_0080, u32::MAX] {
        let mut raw = Raw::connected(SessionConfig::DEFAULT);
        set_chunk_size(&mut raw, size);
        assert_eq!(
            raw.flush(),
            Err(RtmpError::InvalidChunkSize { seen: size }),
            "{size:#x}"
        );
    }
    // The smallest chunk size works: one payload byte per chunk.
    let mut raw = Raw::publishing(SessionConfig::DEFAULT);
    set_chunk_size(&mut raw, 1);
    raw.writer.encoder.set_chunk_size(1);
    raw.message(4, AUDIO, 1, 5, b"abc");
    assert_eq!(raw.flush(), Ok(()));
    assert!(matches!(&raw.events[..], [Event::Audio { payload, .. }] if payload[..] == b"abc"[..]));
}

#[test]
fn message_size_at_limit_and_one_over() {
    let config = SessionConfig {
        message_max_bytes: 5000,
        partial_max_bytes: 5000,
        command_max_bytes: 4096,
        partial_max_bytes_before_publish: 4096,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::publishing(config);
    raw.message(4, VIDEO, 1, 0, &[1; 5000]);
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(raw.events.len(), 1);

    // One byte over is refused from the header alone, before any payload.
    raw.message(6, VIDEO, 1, 0, &[1; 5001]);
    let header = raw.writer.out[..12].to_vec();
    raw.writer.out.clear();
    assert_eq!(
        raw.feed(&header),
        Err(RtmpError::MessageTooLarge {
            limit: 5000,
            seen: 5001
        })
    );
    assert_eq!(
        raw.server.buffered_bytes(),
        0,
        "nothing kept after an error"
    );
}

#[test]
fn command_size_at_limit_and_one_over() {
    let config = SessionConfig {
        command_max_bytes: 300,
        ..SessionConfig::DEFAULT
    };
    // An unknown command padded to `len` bytes: answered with `_error`, not fatal.
    let padded = |len: usize| {
        let base = call("whatever", 0.0, &["".into()]);
        let mut bytes = Vec::new();
        crate::amf0::encode_all(&base, &mut bytes);
        let pad = "p".repeat(len - bytes.len());
        let mut bytes = Vec::new();
        crate::amf0::encode_all(&call("whatever", 0.0, &[pad.into()]), &mut bytes);
        assert_eq!(bytes.len(), len);
        bytes
    };
    let mut raw = Raw::connected(config);
    raw.message(3, COMMAND_AMF0, 0, 0, &padded(300));
    assert_eq!(raw.flush(), Ok(()));
    raw.message(3, COMMAND_AMF0, 0, 0, &padded(301));
    assert_eq!(
        raw.flush(),
        Err(RtmpError::CommandTooLarge {
            limit: 300,
            seen: 301
        })
    );
}

#[test]
fn chunk_streams_at_limit_and_one_over() {
    let config = SessionConfig {
        chunk_streams_max: 5,
        ..SessionConfig::DEFAULT
    };
    // The connect used chunk stream 3; four more reach the limit.
    let mut raw = Raw::publishing(config);
    assert_eq!(raw.server.chunk_stream_count(), 1);
    for csid in [4, 64, 320, 65_599] {
        raw.message(csid, AUDIO, 1, 0, b"a");
    }
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(raw.server.chunk_stream_count(), 5);
    assert_eq!(raw.events.len(), 4);
    raw.message(5, AUDIO, 1, 0, b"a");
    assert_eq!(
        raw.flush(),
        Err(RtmpError::TooManyChunkStreams { limit: 5, seen: 6 })
    );
}

#[test]
fn partial_bytes_at_limit_and_one_over() {
    let config = SessionConfig {
        message_max_bytes: 600,
        partial_max_bytes: 1000,
        command_max_bytes: 1000,
        partial_max_bytes_before_publish: 1000,
        ..SessionConfig::DEFAULT
    };
    // The first chunk of a 600-byte message on chunk stream 4 and of an `n`-byte message on
    // chunk stream 6: both stay unfinished.
    let first_chunks = |n: usize| {
        let mut raw = Raw::publishing(config);
        raw.message(4, VIDEO, 1, 0, &[1; 600]);
        let a = raw.writer.out[..12 + 128].to_vec();
        raw.writer.out.clear();
        raw.message(6, AUDIO, 1, 0, &vec![2; n]);
        let b = raw.writer.out[..12 + 128.min(n)].to_vec();
        raw.writer.out.clear();
        let result = raw.feed(&[a, b].concat());
        (raw, result)
    };
    let (raw, result) = first_chunks(400);
    assert_eq!(result, Ok(()));
    assert_eq!(raw.server.buffered_bytes(), 1000);
    let (_, result) = first_chunks(401);
    assert_eq!(
        result,
        Err(RtmpError::PartialBytesTooLarge {
            limit: 1000,
            seen: 1001
        })
    );
}

/// An object nested `levels` deep.
fn nested(levels: usize) -> crate::Amf0Value {
    let mut value: crate::Amf0Value = Amf0Object::new().into();
    for _ in 1..levels {
        value = Amf0Object::new().with("k", value).into();
    }
    value
}

#[test]
fn amf_depth_at_limit_and_one_over() {
    let config = SessionConfig {
        amf_depth_max: 4,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::connected(config);
    // The argument sits at the top of the message, so its innermost object is at depth 4.
    raw.command(0, &call("whatever", 7.0, &[nested(4)]));
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(command_names(&raw.sent_messages()), ["_error"]);
    raw.command(0, &call("whatever", 8.0, &[nested(5)]));
    assert_eq!(
        raw.flush(),
        Err(RtmpError::Amf(AmfError::TooDeep { limit: 4, seen: 5 }))
    );
}

#[test]
fn amf_values_at_limit_and_one_over() {
    let config = SessionConfig {
        amf_values_max: 10,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::connected(config);
    // Name, transaction id, null: three values; seven more reach the limit.
    let args = |n: usize| vec![crate::Amf0Value::Null; n];
    raw.command(0, &call("whatever", 7.0, &args(7)));
    assert_eq!(raw.flush(), Ok(()));
    raw.command(0, &call("whatever", 8.0, &args(8)));
    assert_eq!(
        raw.flush(),
        Err(RtmpError::Amf(AmfError::TooManyValues {
            limit: 10,
            seen: 11
        }))
    );
}

/// Pings flooded within one read fill the send queue; at the cap they are answered, one more
/// fails the session.
#[test]
fn transmit_queue_at_limit_and_one_over() {
    let ping = |raw: &mut Raw, n: usize| {
        for i in 0..n {
            let mut payload = vec![0, 6];
            payload.extend_from_slice(&(i as u32).to_be_bytes());
            raw.message(2, USER_CONTROL, 0, 0, &payload);
        }
        let bytes = std::mem::take(&mut raw.writer.out);
        let result = raw.server.handle_input(0, &bytes);
        let sent = raw.server.poll_transmit().map_or(0, |b| b.len());
        (result, sent)
    };
    let n = 3000;
    let big = SessionConfig {
        transmit_queue_max_bytes: crate::PARTIAL_BYTES_CEILING,
        ..SessionConfig::DEFAULT
    };
    let (result, at_limit) = ping(&mut Raw::connected(big), n);
    assert_eq!(result, Ok(()));
    let (_, one_more) = ping(&mut Raw::connected(big), n + 1);
    assert!(at_limit >= crate::TRANSMIT_QUEUE_FLOOR && one_more > at_limit);

    let config = SessionConfig {
        transmit_queue_max_bytes: at_limit,
        ..SessionConfig::DEFAULT
    };
    assert_eq!(ping(&mut Raw::connected(config), n), (Ok(()), at_limit));
    assert_eq!(
        ping(&mut Raw::connected(config), n + 1),
        (
            Err(RtmpError::TransmitQueueFull {
                limit: at_limit,
                seen: one_more
            }),
            0
        ),
        "nothing is sent after an error"
    );
}

#[test]
fn bad_handshake_version() {
    for version in [0u8, 6, 0x7F] {
        let mut server = ServerSession::new(SessionConfig::DEFAULT, 0);
        let mut bytes = handshake_bytes();
        bytes[0] = version;
        assert_eq!(
            server.handle_input(0, &bytes),
            Err(RtmpError::BadVersion { seen: version })
        );
        assert!(server.is_finished());
        assert_eq!(server.poll_transmit(), None);
        assert_eq!(server.poll_timeout(), None);
        assert_eq!(server.handle_input(1, &bytes), Ok(()), "input is ignored");
    }
}

#[test]
fn handshake_timeout() {
    let config = SessionConfig {
        handshake_timeout_ms: 5000,
        ..SessionConfig::DEFAULT
    };
    // Nothing arrives.
    let mut server = ServerSession::new(config, 1000);
    assert_eq!(server.poll_timeout(), Some(6000));
    assert_eq!(server.handle_timeout(5999), Ok(()));
    assert_eq!(
        server.handle_timeout(6000),
        Err(RtmpError::HandshakeTimeout {
            limit_ms: 5000,
            elapsed_ms: 5000
        })
    );
    assert_eq!(server.poll_timeout(), None);

    // The handshake completes, but connect does not come in time; late input fails too.
    let mut server = ServerSession::new(config, 0);
    assert_eq!(server.handle_input(10, &handshake_bytes()), Ok(()));
    assert_eq!(server.poll_timeout(), Some(5000));
    assert_eq!(
        server.handle_input(5000, &[]),
        Err(RtmpError::HandshakeTimeout {
            limit_ms: 5000,
            elapsed_ms: 5000
        })
    );

    // Connect just in time: no deadline any more.
    let mut raw = Raw::handshaken(config);
    raw.now_ms = 4999;
    raw.command(0, &connect_command());
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(raw.server.poll_timeout(), None);
    assert_eq!(raw.server.handle_timeout(1 << 40), Ok(()));
}

/// Memory stays within the caps while messages trickle in a byte at a time, and nothing is
/// kept between messages.
#[test]
fn trickled_messages_stay_within_the_caps() {
    let config = SessionConfig {
        message_max_bytes: 3000,
        partial_max_bytes: 6000,
        command_max_bytes: 4096,
        partial_max_bytes_before_publish: 4096,
        ..SessionConfig::DEFAULT
    };
    let mut raw = Raw::publishing(config);
    raw.writer.encoder.set_chunk_size(100);
    set_chunk_size(&mut raw, 100);
    let mut chunks_a = Vec::new();
    let mut chunks_v = Vec::new();
    let (mut ends_a, mut ends_v) = (Vec::new(), Vec::new());
    raw.writer
        .encoder
        .encode(4, AUDIO, 1, 0, &[1; 3000], &mut chunks_a, Some(&mut ends_a));
    raw.writer
        .encoder
        .encode(6, VIDEO, 1, 0, &[2; 3000], &mut chunks_v, Some(&mut ends_v));
    let mut bytes = std::mem::take(&mut raw.writer.out);
    let (mut a, mut v) = (0, 0);
    for (&ea, &ev) in ends_a.iter().zip(&ends_v) {
        bytes.extend_from_slice(&chunks_a[a..ea]);
        bytes.extend_from_slice(&chunks_v[v..ev]);
        (a, v) = (ea, ev);
    }
    for byte in bytes.chunks(1) {
        assert_eq!(raw.feed(byte), Ok(()));
        assert!(raw.server.buffered_bytes() <= 6000 + crate::chunk::CHUNK_HEADER_MAX_BYTES);
    }
    assert_eq!(raw.events.len(), 2);
    assert_eq!(raw.server.buffered_bytes(), 0);
}

/// A session's fixed state is small: what a connection costs before it sends anything.
#[test]
fn idle_session_is_small() {
    let size = std::mem::size_of::<ServerSession>();
    assert!(size <= 1024, "{size} bytes");
    let session = ServerSession::new(SessionConfig::DEFAULT, 0);
    assert_eq!(session.buffered_bytes(), 0);
}
