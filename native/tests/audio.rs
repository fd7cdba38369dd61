//! Audio transcoding against the system FFmpeg: an AAC track (made by the ffmpeg CLI into FLV)
//! is decoded and encoded again as 20 ms Opus packets, and that Opus as AAC again, with
//! nothing lost and every owner freed.

mod common;

use common::{tone_aac, tone_opus};
use shardcast_native::{live_owners, AudioInput, AudioPacket, AudioTranscoder, CodecId, Error};

/// The owner counts are per process: one test at a time counts them.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every packet lasts `duration` and follows the one before without a gap.
fn assert_contiguous(packets: &[AudioPacket], duration: u32) {
    for pair in packets.windows(2) {
        assert_eq!(pair[0].duration, duration);
        assert_eq!(pair[1].pts - pair[0].pts, i64::from(duration), "contiguous");
    }
    assert!(packets.iter().all(|p| !p.data.is_empty()));
}

#[test]
fn aac_becomes_twenty_millisecond_opus_packets() {
    let (asc, frames) = tone_aac("opus", 440);
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let before = live_owners();
    {
        let (head, packets) = tone_opus(&asc, &frames);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2, "stereo");
        // 2 s of audio (plus the AAC encoder's priming) in 20 ms packets.
        assert!(
            (100..=106).contains(&packets.len()),
            "{} packets",
            packets.len()
        );
        assert_contiguous(&packets, 960);
    }
    assert_eq!(live_owners(), before, "owners freed");
}

#[test]
fn opus_becomes_aac_at_48_khz() {
    let (asc, frames) = tone_aac("aac", 440);
    let _counting = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let before = live_owners();
    {
        let (head, opus) = tone_opus(&asc, &frames);
        let input = AudioInput {
            codec: CodecId::Opus,
            config: &head,
            sample_rate: 48_000,
        };
        let mut pipeline = AudioTranscoder::new(input, CodecId::Aac, 2, 128_000).unwrap();
        // AudioSpecificConfig: AAC-LC (2), 48 kHz (index 3), two channels.
        // (FFmpeg may add the explicit "no SBR" extension after it.)
        assert_eq!(&pipeline.output_config()[..2], &[0x11, 0x90][..]);
        let mut packets = Vec::new();
        for packet in &opus {
            pipeline
                .push(&packet.data, packet.pts, &mut packets)
                .unwrap();
        }
        pipeline.finish(&mut packets).unwrap();
        // About 2 s (plus both encoders' priming) in 1024-sample frames: 94 and a few.
        assert!(
            (94..=100).contains(&packets.len()),
            "{} packets",
            packets.len()
        );
        assert_contiguous(&packets, 1024);
        assert!(matches!(
            pipeline.push(&[0xff; 7], 0, &mut packets),
            Ok(()) | Err(Error::Eof)
        ));
    }
    assert_eq!(live_owners(), before, "owners freed");
}
