//! The co-hosting mix against the system FFmpeg: two hosts' Opus (a 440 Hz and a 1 kHz tone)
//! are mixed into one AAC track in which both are heard; when one host stops, the program
//! goes on with the other, and the one who stopped is silence.

mod common;

use common::{tone_aac, tone_opus};
use shardcast_native::{live_owners, AudioInput, AudioPacket, CodecId, Mixer, MIX_FRAME_SAMPLES};
use std::process::Command;

/// The packets as an ADTS stream (AAC-LC, 48 kHz, stereo), which the ffmpeg CLI reads.
fn adts(packets: &[AudioPacket]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        let len = p.data.len() + 7;
        // Sync, MPEG-4, no CRC; LC (profile 1), 48 kHz (index 3), two channels.
        out.extend_from_slice(&[
            0xff,
            0xf1,
            (1 << 6) | (3 << 2),
            (2 << 6) | (len >> 11) as u8,
        ]);
        out.extend_from_slice(&[(len >> 3) as u8, ((len & 7) << 5) as u8 | 0x1f, 0xfc]);
        out.extend_from_slice(&p.data);
    }
    out
}

/// The RMS level (dB) of `file` from `start` s on, through a band-pass at `hz`.
fn level(file: &std::path::Path, start: &str, hz: u32) -> f64 {
    let band = format!("bandpass=f={hz}:width_type=q:w=8");
    let filter = format!("{band},{band},{band},astats=metadata=0:reset=0");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-ss", start, "-i"])
        .arg(file)
        .args(["-af", &filter, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    (log.lines())
        .filter(|l| l.contains("RMS level dB"))
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<f64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no level:\n{log}"))
}

#[test]
fn two_hosts_are_heard_together_and_one_who_stops_is_silence() {
    let (asc_a, frames_a) = tone_aac("mix-a", 440);
    let (asc_b, frames_b) = tone_aac("mix-b", 1000);
    let before = live_owners();
    let dir = std::env::temp_dir().join(format!("shardcast-mix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mix.aac");
    {
        let (head_a, opus_a) = tone_opus(&asc_a, &frames_a);
        let (head_b, opus_b) = tone_opus(&asc_b, &frames_b);
        let mut mixer = Mixer::new(2, 128_000).unwrap();
        assert_eq!(
            &mixer.output_config()[..2],
            &[0x11, 0x90],
            "AAC-LC 48 kHz stereo"
        );
        let opus = |head| AudioInput {
            codec: CodecId::Opus,
            config: head,
            sample_rate: 48_000,
        };
        mixer.set_source(0, opus(&head_a)).unwrap();
        mixer.set_source(1, opus(&head_b)).unwrap();
        // As in real time: each 20 ms both hosts' packets arrive (host B only for the first
        // second), and the mix takes an AAC frame whenever that much time has passed.
        let mut out = Vec::new();
        let mut ticks = 0;
        for (n, packet) in opus_a.iter().enumerate() {
            mixer.push(0, &packet.data).unwrap();
            if n < 50 {
                mixer.push(1, &opus_b[n].data).unwrap();
            }
            let due = (n as i64 + 1) * 960 / MIX_FRAME_SAMPLES as i64;
            while ticks < due {
                mixer.tick(&mut out).unwrap();
                ticks += 1;
            }
        }
        assert_eq!(mixer.samples(), ticks * MIX_FRAME_SAMPLES as i64);
        assert!(ticks >= 93, "{ticks} mixing steps for 2 s");
        // One AAC frame per step, less the encoder's delay.
        assert!(out.len() as i64 >= ticks - 2, "{} packets", out.len());
        assert!(out.windows(2).all(|w| w[1].pts - w[0].pts == 1024));
        // Garbage from a host is skipped.
        mixer.push(1, &[0xff; 3]).unwrap();
        std::fs::write(&path, adts(&out)).unwrap();
    }
    assert_eq!(live_owners(), before, "owners freed");
    // Both tones in the first second, only A's after B stopped.
    let (a, b) = (level(&path, "0.2", 440), level(&path, "0.2", 1000));
    let (a_late, b_late) = (level(&path, "1.3", 440), level(&path, "1.3", 1000));
    std::fs::remove_dir_all(&dir).ok();
    println!("440 Hz {a:.1} dB, 1 kHz {b:.1} dB; after B stopped: {a_late:.1}, {b_late:.1}");
    assert!(a > -30.0 && b > -30.0, "both heard: {a} {b}");
    assert!(a_late > -30.0, "A goes on: {a_late}");
    assert!(
        b_late < b - 20.0,
        "B is silence once gone: {b_late} (was {b})"
    );
}
