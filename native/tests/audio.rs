//! Audio transcoding against the system FFmpeg: an AAC track (made by the ffmpeg CLI into FLV)
//! is decoded and encoded again as 20 ms Opus packets, and that Opus as AAC again, with
//! nothing lost and every owner freed.

use shardcast_native::{live_owners, AudioInput, AudioPacket, AudioTranscoder, CodecId, Error};
use std::process::Command;

/// (AudioSpecificConfig, [(timestamp ms, raw AAC frame)]) of an FLV file's audio.
fn aac_of_flv(data: &[u8]) -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
    let file = bytes::Bytes::copy_from_slice(data);
    let mut asc = Vec::new();
    let mut frames = Vec::new();
    for tag in shardcast_media::flv::read_file(&file).expect("an FLV file") {
        let body = &tag.body;
        let is_aac = body.len() > 2 && body[0] >> 4 == 10;
        if tag.kind != shardcast_media::flv::TagKind::Audio || !is_aac {
            continue;
        }
        if body[1] == 0 {
            asc = body[2..].to_vec();
        } else {
            frames.push((tag.timestamp_ms, body[2..].to_vec()));
        }
    }
    (asc, frames)
}

/// The owner counts are per process: one test at a time counts them.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Two seconds of a stereo 440 Hz tone as AAC at 44.1 kHz: (AudioSpecificConfig, frames).
fn tone_aac(test: &str) -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
    let dir = std::env::temp_dir().join(format!("shardcast-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tone.flv");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:sample_rate=44100:duration=2"])
        .args(["-ac", "2", "-c:a", "aac", "-b:a", "96k", "-f", "flv"])
        .arg(&path)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (asc, frames) = aac_of_flv(&std::fs::read(&path).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        !asc.is_empty() && frames.len() > 80,
        "{} frames",
        frames.len()
    );
    (asc, frames)
}

/// The tone as Opus packets, with the encoder's `OpusHead`.
fn tone_opus(asc: &[u8], frames: &[(u32, Vec<u8>)]) -> (Vec<u8>, Vec<AudioPacket>) {
    let input = AudioInput {
        codec: CodecId::Aac,
        config: asc,
        sample_rate: 44_100,
    };
    let mut pipeline = AudioTranscoder::new(input, CodecId::Opus, 2, 64_000).unwrap();
    let head = pipeline.output_config().to_vec();
    let mut packets = Vec::new();
    for (ts, frame) in frames {
        let pts = i64::from(*ts) * 44_100 / 1000;
        pipeline.push(frame, pts, &mut packets).unwrap();
    }
    pipeline.finish(&mut packets).unwrap();
    // Garbage is skipped, not fatal.
    assert!(matches!(
        pipeline.push(&[0xff; 7], 0, &mut Vec::new()),
        Ok(()) | Err(Error::Eof)
    ));
    (head, packets)
}

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
    let (asc, frames) = tone_aac("opus");
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
    let (asc, frames) = tone_aac("aac");
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
