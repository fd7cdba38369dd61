//! AAC → Opus against the system FFmpeg: an AAC track (made by the ffmpeg CLI into FLV) is
//! decoded and encoded again as 20 ms Opus packets, with nothing lost and every owner freed.

use shardcast_native::{live_owners, AacToOpus, Error};
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

#[test]
fn aac_becomes_twenty_millisecond_opus_packets() {
    let dir = std::env::temp_dir().join(format!("shardcast-opus-{}", std::process::id()));
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

    let before = live_owners();
    {
        let mut pipeline = AacToOpus::new(&asc, 44_100, 2, 64_000).unwrap();
        assert_eq!(&pipeline.opus_head()[..8], b"OpusHead");
        assert_eq!(pipeline.opus_head()[9], 2, "stereo");
        let mut packets = Vec::new();
        for (ts, frame) in &frames {
            let pts = i64::from(*ts) * 44_100 / 1000;
            pipeline.push(frame, pts, &mut packets).unwrap();
        }
        pipeline.finish(&mut packets).unwrap();
        // 2 s of audio (plus the AAC encoder's priming) in 20 ms packets.
        assert!(
            (100..=106).contains(&packets.len()),
            "{} packets",
            packets.len()
        );
        for pair in packets.windows(2) {
            assert_eq!(pair[0].duration, 960);
            assert_eq!(pair[1].pts - pair[0].pts, 960, "contiguous");
        }
        assert!(packets.iter().all(|p| !p.data.is_empty()));
        // Garbage is skipped, not fatal.
        assert!(matches!(
            pipeline.push(&[0xff; 7], 0, &mut packets),
            Ok(()) | Err(Error::Eof)
        ));
    }
    assert_eq!(live_owners(), before, "owners freed");
}
