//! What the FFmpeg tests share: tones made by the ffmpeg CLI, as AAC and as Opus.
#![allow(dead_code)]

use shardcast_native::{AudioInput, AudioPacket, AudioTranscoder, CodecId, Error};
use std::process::Command;

/// (AudioSpecificConfig, [(timestamp ms, raw AAC frame)]) of an FLV file's audio.
pub fn aac_of_flv(data: &[u8]) -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
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

/// Two seconds of a stereo tone of `hz` as AAC at 44.1 kHz: (AudioSpecificConfig, frames).
pub fn tone_aac(test: &str, hz: u32) -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
    let dir = std::env::temp_dir().join(format!("shardcast-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tone.flv");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            &format!("sine=frequency={hz}:sample_rate=44100:duration=2"),
        ])
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
pub fn tone_opus(asc: &[u8], frames: &[(u32, Vec<u8>)]) -> (Vec<u8>, Vec<AudioPacket>) {
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
