//! The smaller cap on unfinished messages until a publish is accepted
//! ([`SessionConfig::partial_max_bytes_before_publish`]): an anonymous connection cannot pin
//! the full `partial_max_bytes` by announcing a large message, an accepted publisher can.

use super::*;
use crate::message::{AUDIO, COMMAND_AMF0, VIDEO};
use crate::Amf0Object;

const BEFORE_PUBLISH: usize = SessionConfig::DEFAULT.partial_max_bytes_before_publish;
const KEYFRAME_BYTES: usize = 8 << 20;

/// The first chunk of a message of `len` bytes on chunk stream `csid` (2 to 63), written by
/// hand: a type 0 header announcing the whole length, then the first payload bytes up to the
/// initial chunk size of 128.
fn first_chunk(csid: u8, type_id: u8, stream_id: u32, len: usize) -> Vec<u8> {
    assert!((2..64).contains(&csid));
    let mut bytes = vec![csid, 0, 0, 0];
    bytes.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes()[1..]);
    bytes.push(type_id);
    bytes.extend_from_slice(&stream_id.to_le_bytes());
    bytes.resize(bytes.len() + len.min(128), 0x55);
    bytes
}

/// A message in chunks from the client's encoder, split after its first chunk.
fn split_after_first_chunk(
    raw: &mut Raw,
    (csid, type_id, stream_id): (u32, u8, u32),
    payload: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    raw.writer.encoder.encode(
        csid,
        type_id,
        stream_id,
        0,
        payload,
        &mut bytes,
        Some(&mut ends),
    );
    let rest = bytes.split_off(ends[0]);
    (bytes, rest)
}

/// A server whose client sent `createStream` and `publish`, not yet answered.
fn pending(config: SessionConfig) -> Raw {
    let mut raw = Raw::connected(config);
    raw.command(0, &call("createStream", 2.0, &[]));
    raw.command(1, &call("publish", 0.0, &["key".into(), "live".into()]));
    raw.flush().expect("a valid publish");
    assert!(matches!(&raw.events[..], [Event::PublishRequested { .. }]));
    raw.events.clear();
    raw
}

/// An 8 MiB video message announced after the handshake, after `connect`, or while the publish
/// waits for its answer is refused from its first chunk, and nothing stays reserved.
#[test]
fn large_video_before_publish_is_refused() {
    type Start = fn(SessionConfig) -> Raw;
    let stages: [(&str, Start); 3] = [
        ("handshake", Raw::handshaken),
        ("connect", Raw::connected),
        ("publish pending", pending),
    ];
    for (stage, start) in stages {
        let mut raw = start(SessionConfig::DEFAULT);
        assert_eq!(raw.server.partial_max_bytes(), BEFORE_PUBLISH, "{stage}");
        assert_eq!(
            raw.feed(&first_chunk(6, VIDEO, 1, KEYFRAME_BYTES)),
            Err(RtmpError::PartialBytesTooLarge {
                limit: BEFORE_PUBLISH,
                seen: KEYFRAME_BYTES
            }),
            "{stage}"
        );
        assert!(raw.server.is_finished(), "{stage}");
        assert_eq!(raw.server.buffered_bytes(), 0, "{stage}");
        assert!(raw.events.is_empty(), "{stage}");
    }
}

/// Before publishing, media counts against the small cap like any message: up to the cap it
/// is reserved (and dropped when complete, as before), one byte over is refused. Commands in
/// flight count too.
#[test]
fn before_publish_cap_at_limit_and_one_over() {
    let config = SessionConfig {
        command_max_bytes: 1000,
        partial_max_bytes_before_publish: 1000,
        ..SessionConfig::DEFAULT
    };
    let mut raw = pending(config);
    let (first, rest) = split_after_first_chunk(&mut raw, (6, VIDEO, 1), &[0x17; 1000]);
    assert_eq!(first[..12], first_chunk(6, VIDEO, 1, 1000)[..12]);
    assert_eq!(raw.feed(&first), Ok(()));
    assert_eq!(raw.server.buffered_bytes(), 1000);
    assert_eq!(raw.feed(&rest), Ok(()));
    assert_eq!(raw.server.buffered_bytes(), 0);
    assert!(raw.events.is_empty(), "media before the answer is dropped");

    // A 500-byte command started on chunk stream 3 leaves room for 500 bytes of audio.
    let (command, _) = split_after_first_chunk(&mut raw, (3, COMMAND_AMF0, 0), &[0x05; 500]);
    assert_eq!(raw.feed(&command), Ok(()));
    assert_eq!(
        raw.feed(&first_chunk(4, AUDIO, 1, 501)),
        Err(RtmpError::PartialBytesTooLarge {
            limit: 1000,
            seen: 1001
        })
    );
}

/// Once `accept_publish` succeeds the full cap applies: the same 8 MiB keyframe is reserved
/// from its first chunk and reported whole.
#[test]
fn large_video_after_accept_publish_is_accepted() {
    let mut raw = pending(SessionConfig::DEFAULT);
    raw.server.accept_publish(1).expect("pending");
    assert_eq!(
        raw.server.partial_max_bytes(),
        SessionConfig::DEFAULT.partial_max_bytes
    );
    let keyframe = vec![0x17; KEYFRAME_BYTES];
    let (first, rest) = split_after_first_chunk(&mut raw, (6, VIDEO, 1), &keyframe);
    assert_eq!(first[..12], first_chunk(6, VIDEO, 1, KEYFRAME_BYTES)[..12]);
    assert_eq!(raw.feed(&first), Ok(()));
    assert_eq!(raw.server.buffered_bytes(), KEYFRAME_BYTES);
    assert_eq!(raw.feed(&rest), Ok(()));
    assert!(matches!(
        &raw.events[..],
        [Event::Video { stream_id: 1, payload, .. }] if payload[..] == keyframe[..]
    ));
    assert_eq!(raw.server.buffered_bytes(), 0);
}

/// A message started under the small cap finishes under the full one, and the full cap stays
/// after the publish ends: the connection has shown it may publish.
#[test]
fn the_cap_rises_once_and_stays() {
    let mut raw = pending(SessionConfig::DEFAULT);
    let (audio_first, audio_rest) = split_after_first_chunk(&mut raw, (4, AUDIO, 1), &[7; 1000]);
    assert_eq!(raw.feed(&audio_first), Ok(()));
    raw.server.accept_publish(1).expect("pending");
    assert_eq!(raw.feed(&first_chunk(6, VIDEO, 1, KEYFRAME_BYTES)), Ok(()));
    assert_eq!(raw.server.buffered_bytes(), 1000 + KEYFRAME_BYTES);
    assert_eq!(raw.feed(&audio_rest), Ok(()));
    assert!(matches!(
        &raw.events[..],
        [Event::Audio { payload, .. }] if payload[..] == [7; 1000][..]
    ));
    assert_eq!(raw.server.buffered_bytes(), KEYFRAME_BYTES);

    raw.events.clear();
    raw.command(1, &call("closeStream", 0.0, &[]));
    assert_eq!(raw.flush(), Ok(()));
    assert_eq!(raw.events, [Event::Unpublished { stream_id: 1 }]);
    assert_eq!(
        raw.server.partial_max_bytes(),
        SessionConfig::DEFAULT.partial_max_bytes,
        "still the full cap after the publish ended"
    );
}

/// An ffmpeg-like publisher (Set Chunk Size 4096, `releaseStream`, `FCPublish`,
/// `createStream`, `publish`, then metadata and media once `NetStream.Publish.Start` arrives)
/// never comes near the small cap, and publishes large keyframes once accepted.
#[test]
fn ffmpeg_like_publish_within_the_small_cap() {
    let mut pair = Pair::new(SessionConfig::DEFAULT, ClientConfig::new("live", "key"));
    pair.accept = false;
    pair.drive();
    assert!(!pair.client.is_publishing());
    assert!(matches!(
        &pair.events[..],
        [
            Event::Connected { .. },
            Event::PublishRequested { stream_id: 1, .. }
        ]
    ));
    assert_eq!(pair.server.partial_max_bytes(), BEFORE_PUBLISH);
    assert!(
        pair.buffered_max <= 2 * HANDSHAKE_PACKET_BYTES,
        "{}",
        pair.buffered_max
    );

    pair.server.accept_publish(1).expect("pending");
    pair.drive();
    assert!(pair.client.is_publishing(), "{:?}", pair.client_events);
    let keyframe = vec![0x17; 4 << 20];
    pair.client
        .send_metadata(&Amf0Object::new().with("width", 1920.0))
        .unwrap();
    pair.client.send_video(0, &keyframe).unwrap();
    pair.client.send_audio(0, &[0xAF, 0x01, 0x21]).unwrap();
    pair.drive();
    let media = pair.media_events();
    assert_eq!(media.len(), 3, "{media:?}");
    assert!(matches!(&media[0], Event::Metadata { stream_id: 1, .. }));
    assert!(matches!(&media[1], Event::Video { payload, .. } if payload[..] == keyframe[..]));
    assert!(matches!(
        &media[2],
        Event::Audio {
            timestamp_ms: 0,
            ..
        }
    ));
    assert_eq!(pair.server.buffered_bytes(), 0);
}
