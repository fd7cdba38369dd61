//! The end-to-end scenario: a client publishes 1,000 audio and video messages of random sizes
//! and timestamps, with metadata and chunk size changes in between, and the server reports
//! exactly what was sent.

use super::*;
use crate::Amf0Object;

/// One media message, as sent or as reported.
#[derive(Clone, PartialEq, Eq)]
struct Media {
    video: bool,
    timestamp_ms: u32,
    payload: Vec<u8>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.video { "video" } else { "audio" };
        write!(
            f,
            "{kind}@{} ({} bytes)",
            self.timestamp_ms,
            self.payload.len()
        )
    }
}

/// Chunk stream ids of every basic header width: one byte (up to 63), two (64 to 319) and
/// three (320 and up).
const CHUNK_STREAM_IDS: &[u32] = &[4, 5, 63, 64, 70, 319, 320, 1000, 65_599];

const MESSAGE_MAX_BYTES: usize = 200_000;

fn next_timestamp(rng: &mut Rng, timestamp: u32, usual_delta: u32) -> u32 {
    match rng.below(60) {
        // A delta that needs an extended timestamp.
        0 => timestamp.wrapping_add(0x0100_0000 + rng.below(5000) as u32),
        // An absolute jump anywhere, backwards included (a type 0 header), often past
        // 0xFFFFFF.
        1 => rng.next() as u32,
        2 => timestamp,
        3..=20 => timestamp.wrapping_add(rng.below(100) as u32),
        _ => timestamp.wrapping_add(usual_delta),
    }
}

fn audio_size(rng: &mut Rng) -> usize {
    match rng.below(20) {
        // Repeated sizes with a steady delta: type 3 headers for whole messages.
        0..=13 => [4, 200, 371][rng.below(3)],
        14..=18 => rng.below(1000),
        _ => rng.below(MESSAGE_MAX_BYTES + 1),
    }
}

fn video_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=59 => rng.below(5000),
        60..=89 => 5000 + rng.below(60_000),
        90..=96 => rng.below(MESSAGE_MAX_BYTES + 1),
        _ => MESSAGE_MAX_BYTES,
    }
}

/// Runs one scenario; returns the client encoder's header statistics.
fn run(seed: u64, interleave: bool) -> ([u64; 4], u64) {
    let mut rng = Rng(seed);
    let config = SessionConfig {
        message_max_bytes: MESSAGE_MAX_BYTES,
        // Interleaving can leave an audio, a video and a data message unfinished at once.
        partial_max_bytes: 2 * MESSAGE_MAX_BYTES + SessionConfig::DEFAULT.command_max_bytes,
        ..SessionConfig::DEFAULT
    };
    let mut client_config = ClientConfig::new("live", "key");
    client_config.interleave = interleave;
    client_config.chunk_size = [128, 1000, 4096, 65_536][rng.below(4)];
    let mut ids = CHUNK_STREAM_IDS.to_vec();
    for slot in [
        &mut client_config.audio_chunk_stream_id,
        &mut client_config.video_chunk_stream_id,
        &mut client_config.data_chunk_stream_id,
    ] {
        *slot = ids.remove(rng.below(ids.len()));
    }
    client_config.seed = seed;
    let mut pair = Pair::new(config, client_config);
    pair.rng = Some(Rng(seed ^ 0xA5A5));
    pair.drive();
    assert!(pair.client.is_publishing());
    let stream_id = pair.client.stream_id().expect("a stream");

    let mut sent = Vec::new();
    let mut metadata = Vec::new();
    let mut audio_ts = rng.next() as u32 >> rng.below(32);
    let mut video_ts = audio_ts;
    while sent.len() < 1000 {
        match rng.below(100) {
            0..=1 => {
                let size = [1, 7, 128, 129, 1000, 4096, 65_536][rng.below(7)];
                pair.client.set_chunk_size(size).unwrap();
            }
            2..=3 => {
                let values = Amf0Object::new()
                    .with("width", 1280.0)
                    .with("height", rng.below(2000) as f64)
                    .with("encoder", "Lavf61.7.100");
                pair.client.send_metadata(&values).unwrap();
                metadata.push(values);
            }
            4..=47 => {
                audio_ts = next_timestamp(&mut rng, audio_ts, 23);
                let len = audio_size(&mut rng);
                let payload = rng.bytes(len);
                pair.client.send_audio(audio_ts, &payload).unwrap();
                sent.push(Media {
                    video: false,
                    timestamp_ms: audio_ts,
                    payload,
                });
            }
            _ => {
                video_ts = next_timestamp(&mut rng, video_ts, 33);
                let len = video_size(&mut rng);
                let payload = rng.bytes(len);
                pair.client.send_video(video_ts, &payload).unwrap();
                sent.push(Media {
                    video: true,
                    timestamp_ms: video_ts,
                    payload,
                });
            }
        }
        if rng.chance(6) {
            pair.drive();
        }
    }
    pair.client.unpublish();
    pair.drive();

    let events = pair.media_events();
    assert_eq!(
        events.last(),
        Some(&Event::Unpublished { stream_id }),
        "seed {seed}"
    );
    let mut got = Vec::new();
    let mut got_metadata = Vec::new();
    for event in &events[..events.len() - 1] {
        match event {
            Event::Audio {
                stream_id: id,
                timestamp_ms,
                payload,
            }
            | Event::Video {
                stream_id: id,
                timestamp_ms,
                payload,
            } => {
                assert_eq!(*id, stream_id);
                got.push(Media {
                    video: matches!(event, Event::Video { .. }),
                    timestamp_ms: *timestamp_ms,
                    payload: payload.to_vec(),
                });
            }
            Event::Metadata {
                stream_id: id,
                values,
            } => {
                assert_eq!(*id, stream_id);
                got_metadata.push(values.clone());
            }
            other => panic!("seed {seed}: unexpected {other:?}"),
        }
    }
    assert_eq!(got_metadata, metadata, "seed {seed}");
    if interleave {
        // Messages on different chunk streams complete in chunk order, not call order; each
        // kind keeps its own order.
        for video in [false, true] {
            let want: Vec<&Media> = sent.iter().filter(|m| m.video == video).collect();
            let have: Vec<&Media> = got.iter().filter(|m| m.video == video).collect();
            assert_same(&have, &want, seed);
        }
    } else {
        let want: Vec<&Media> = sent.iter().collect();
        let have: Vec<&Media> = got.iter().collect();
        assert_same(&have, &want, seed);
    }
    assert_eq!(pair.server.buffered_bytes(), 0, "nothing left unfinished");
    assert!(pair.buffered_max <= config.partial_max_bytes);
    assert!(
        pair.buffered_max >= MESSAGE_MAX_BYTES,
        "a message at the cap was held"
    );
    pair.client.encoder_stats()
}

/// Compares element by element, so a failure names the first difference instead of printing
/// megabytes.
fn assert_same(have: &[&Media], want: &[&Media], seed: u64) {
    for (i, (h, w)) in have.iter().zip(want).enumerate() {
        assert!(h == w, "seed {seed}, message {i}: got {h:?}, sent {w:?}");
    }
    assert_eq!(have.len(), want.len(), "seed {seed}");
}

#[test]
fn thousand_messages_in_order_whole() {
    let mut totals = ([0; 4], 0);
    for seed in [0x5eed_0001, 0x5eed_0002, 0x5eed_0003] {
        let (fmt, extended) = run(seed, false);
        for (total, n) in totals.0.iter_mut().zip(fmt) {
            *total += n;
        }
        totals.1 += extended;
    }
    // Every header type and the extended timestamp were exercised.
    assert!(totals.0.iter().all(|&n| n > 20), "{totals:?}");
    assert!(totals.1 > 20, "{totals:?}");
}

#[test]
fn thousand_messages_with_interleaved_chunk_streams() {
    for seed in [0x1eaf_0001, 0x1eaf_0002, 0x1eaf_0003] {
        let (fmt, extended) = run(seed, true);
        assert!(
            fmt.iter().all(|&n| n > 0) && extended > 0,
            "{fmt:?} {extended}"
        );
    }
}

/// A message at the default cap (8 MiB, a large keyframe) goes through with default settings.
#[test]
fn message_at_the_default_cap() {
    let mut pair = Pair::publishing(SessionConfig::DEFAULT, ClientConfig::new("live", "key"));
    let payload: Vec<u8> = (0..SessionConfig::DEFAULT.message_max_bytes)
        .map(|i| (i % 251) as u8)
        .collect();
    pair.client.send_video(40, &payload).unwrap();
    pair.drive();
    match pair.media_events() {
        [Event::Video {
            timestamp_ms: 40,
            payload: got,
            ..
        }] => assert!(got[..] == payload[..]),
        other => panic!("{:?}", other.len()),
    }
}
