//! The ladder against the system FFmpeg: a 640x360 source with B-frames, keyframes every
//! 30 frames, through rungs of 360p, 240p, 180p, a square 200x200 and a 720p that would upscale.

use std::sync::Mutex;

use shardcast_native::{
    avcc_from_annexb, live_owners, nal_units, CodecContext, CodecId, Error, Frame, Ladder,
    LadderConfig, Options, Packet, PixelFormat, Rational, RungPacket, RungSpec, VideoConfig,
    VideoFormat,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial(test: impl FnOnce()) {
    let _guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = live_owners();
    test();
    assert_eq!(live_owners(), before, "owners leaked");
    assert_eq!(live_owners().total(), 0);
}

const FRAME_TICKS: i64 = 3000; // 30 fps at 90 kHz

struct Source {
    avcc: Vec<u8>,
    /// (data length-prefixed, pts, dts, keyframe) in decode order.
    units: Vec<(Vec<u8>, i64, i64, bool)>,
}

/// Encodes `frames` pictures of `width`x`height` with libx264: 2 B-frames, a keyframe every
/// 30 frames, timestamps in 1/90000 s.
fn source(width: u32, height: u32, frames: i64) -> Source {
    let mut config = VideoConfig::new(width, height, Rational::new(30, 1), 800_000);
    config.max_b_frames = 2;
    config.gop_size = 30;
    config.threads = 1;
    let mut enc = CodecContext::encoder_by_name("libx264").unwrap();
    enc.configure_video(&config);
    let mut options = Options::new();
    options.set("preset", "ultrafast").unwrap();
    options
        .set("x264-params", "scenecut=0:bframes=2:b-adapt=0")
        .unwrap();
    enc.open(Some(&mut options)).unwrap();
    let avcc = avcc_from_annexb(enc.extradata()).unwrap();
    let format = VideoFormat {
        width,
        height,
        pixel_format: PixelFormat::YUV420P,
    };
    let mut units = Vec::new();
    let mut packet = Packet::new().unwrap();
    let mut drain = |enc: &mut CodecContext, units: &mut Vec<_>| loop {
        match enc.receive_packet(&mut packet) {
            Ok(()) => units.push((
                shardcast_native::to_length_prefixed(packet.data(), CodecId::H264),
                packet.pts().unwrap(),
                packet.dts().unwrap(),
                packet.is_key(),
            )),
            Err(_) => return,
        }
    };
    for n in 0..frames {
        let mut frame = Frame::video(format).unwrap();
        // A moving gradient, so that the encoder has something to code.
        let stride = frame.stride(0).unwrap();
        let luma = frame.plane_mut(0).unwrap();
        for (i, b) in luma.iter_mut().enumerate() {
            *b = ((i % stride) as i64 + n * 4) as u8;
        }
        frame.plane_mut(1).unwrap().fill(128);
        frame.plane_mut(2).unwrap().fill(128);
        frame.set_pts(Some(n * FRAME_TICKS));
        enc.send_frame(&frame).unwrap();
        drain(&mut enc, &mut units);
    }
    enc.send_eof().unwrap();
    drain(&mut enc, &mut units);
    Source { avcc, units }
}

fn rung(name: &str, width: u32, height: u32, kbps: u64) -> RungSpec {
    RungSpec {
        name: name.into(),
        width,
        height,
        bit_rate_bps: kbps * 1000,
    }
}

/// Decodes one rung's packets with its avcC; returns the pictures' (width, height, pts).
fn decode(codec: CodecId, record: &[u8], packets: &[&RungPacket]) -> Vec<(u32, u32, i64)> {
    let mut dec = CodecContext::decoder(codec).unwrap();
    dec.set_extradata(record).unwrap();
    dec.open(None).unwrap();
    let mut frame = Frame::new().unwrap();
    let mut out = Vec::new();
    let mut drain = |dec: &mut CodecContext, out: &mut Vec<_>| loop {
        match dec.receive_frame(&mut frame) {
            Ok(()) => out.push((frame.width(), frame.height(), frame.pts().unwrap())),
            Err(stop) => return stop,
        }
    };
    for p in packets {
        let mut packet = Packet::copy_from(&p.data).unwrap();
        packet.set_pts(Some(p.pts));
        packet.set_dts(Some(p.dts));
        dec.send_packet(&packet).unwrap();
        drain(&mut dec, &mut out);
    }
    dec.send_eof().unwrap();
    assert_eq!(drain(&mut dec, &mut out), Error::Eof);
    out
}

#[test]
fn every_rung_gets_every_picture_with_idrs_on_the_source_keyframes() {
    serial(|| {
        let frames = 90;
        let src = source(640, 360, frames);
        assert!(
            src.units.iter().any(|(_, pts, dts, _)| pts != dts),
            "the source has B-frames"
        );
        let source_keys: Vec<i64> = src.units.iter().filter(|u| u.3).map(|u| u.1).collect();
        assert_eq!(source_keys, [0, 30 * FRAME_TICKS, 60 * FRAME_TICKS]);

        let config = LadderConfig {
            codec: CodecId::H264,
            encoder: "libx264".into(),
            preset: "ultrafast".into(),
            rungs: vec![
                rung("720p", 0, 720, 2500),
                rung("360p", 0, 360, 600),
                rung("240p", 0, 240, 300),
                rung("180p", 0, 180, 200),
                rung("square", 200, 200, 150),
            ],
            frame_rate: Rational::new(30, 1),
            threads: 1,
            filter: None,
        };
        let mut ladder = Ladder::new(CodecId::H264, &src.avcc, config).unwrap();
        let mut out = Vec::new();
        for (data, pts, dts, key) in &src.units {
            ladder.push(data, *pts, *dts, *key, &mut out).unwrap();
        }
        ladder.finish(&mut out).unwrap();
        let active: Vec<(usize, u32, u32)> = ladder
            .rungs()
            .map(|r| (r.spec, r.width, r.height))
            .collect();
        assert_eq!(
            active,
            [(1, 640, 360), (2, 426, 240), (3, 320, 180), (4, 200, 200)],
            "720p would upscale"
        );
        // Each rung scales from the smallest larger one (the source for the largest).
        let parents: Vec<(usize, Option<usize>)> =
            ladder.rungs().map(|r| (r.spec, r.parent)).collect();
        assert_eq!(
            parents,
            [(1, None), (2, Some(1)), (3, Some(2)), (4, Some(2))]
        );
        assert_eq!(ladder.stats().frames_decoded, frames as u64);
        assert_eq!(ladder.stats().frames_encoded, 4 * frames as u64);

        for r in ladder.rungs() {
            let packets: Vec<&RungPacket> = out.iter().filter(|p| p.rung == r.spec).collect();
            assert_eq!(packets.len(), frames as usize, "rung {}", r.spec);
            let keys: Vec<i64> = packets
                .iter()
                .filter(|p| p.keyframe)
                .map(|p| p.pts)
                .collect();
            assert_eq!(
                keys, source_keys,
                "rung {}: IDRs where the source has keyframes",
                r.spec
            );
            for p in &packets {
                assert_eq!(p.pts, p.dts, "no B-frames in rungs");
                // Length-prefixed units that add up to the packet, with no parameter sets.
                let mut at = 0;
                while at < p.data.len() {
                    let len = u32::from_be_bytes(p.data[at..at + 4].try_into().unwrap()) as usize;
                    assert_ne!(p.data[at + 4] & 0x1f, 7);
                    at += 4 + len;
                }
                assert_eq!(at, p.data.len());
            }
            let pictures = decode(CodecId::H264, &r.record, &packets);
            assert_eq!(pictures.len(), frames as usize);
            assert!(pictures
                .iter()
                .all(|&(w, h, _)| (w, h) == (r.width, r.height)));
            let pts: Vec<i64> = pictures.iter().map(|p| p.2).collect();
            let expected: Vec<i64> = (0..frames).map(|n| n * FRAME_TICKS).collect();
            assert_eq!(pts, expected);
        }
        assert!(nal_units(&[0, 0, 1, 0x65]).len() == 1);
    });
}

#[test]
fn a_forced_keyframe_lands_on_the_next_picture_of_that_rung_only() {
    serial(|| {
        let src = source(640, 360, 60);
        let config = LadderConfig {
            codec: CodecId::H264,
            encoder: "libx264".into(),
            preset: "ultrafast".into(),
            rungs: vec![rung("360p", 0, 360, 600), rung("180p", 0, 180, 200)],
            frame_rate: Rational::new(30, 1),
            threads: 1,
            filter: None,
        };
        let mut ladder = Ladder::new(CodecId::H264, &src.avcc, config).unwrap();
        let mut out = Vec::new();
        let mut forced_after = None;
        for (n, (data, pts, dts, key)) in src.units.iter().enumerate() {
            if n == 12 {
                ladder.force_keyframe(0);
                ladder.force_keyframe(7); // no such rung: ignored
                forced_after = Some(out.iter().filter(|p: &&RungPacket| p.rung == 0).count());
            }
            ladder.push(data, *pts, *dts, *key, &mut out).unwrap();
        }
        ladder.finish(&mut out).unwrap();
        let keys = |rung: usize| -> Vec<i64> {
            (out.iter().filter(|p| p.rung == rung && p.keyframe))
                .map(|p| p.pts)
                .collect()
        };
        let source_keys = [0, 30 * FRAME_TICKS];
        assert_eq!(keys(1), source_keys, "the other rung keeps the source's");
        let first = out.iter().filter(|p| p.rung == 0).collect::<Vec<_>>();
        let forced = first[forced_after.unwrap()];
        assert!(forced.keyframe, "the very next picture of the rung");
        assert_eq!(keys(0), [0, forced.pts, 30 * FRAME_TICKS]);
        let record = &ladder.rungs().next().unwrap().record;
        assert_eq!(decode(CodecId::H264, record, &first).len(), 60);
    });
}

#[test]
fn a_new_source_size_replans_the_rungs() {
    serial(|| {
        // Two sources back to back through one decoder: the second one's parameter sets
        // arrive in band (Annex B keyframe data carries them), as when an encoder restarts.
        let first = source(640, 360, 30);
        let second = source(320, 180, 30);
        let config = LadderConfig {
            codec: CodecId::H264,
            encoder: "libx264".into(),
            preset: "ultrafast".into(),
            rungs: vec![rung("360p", 0, 360, 600), rung("180p", 0, 180, 200)],
            frame_rate: Rational::new(30, 1),
            threads: 1,
            filter: None,
        };
        let mut ladder = Ladder::new(CodecId::H264, &first.avcc, config).unwrap();
        let mut out = Vec::new();
        for (data, pts, dts, key) in &first.units {
            ladder.push(data, *pts, *dts, *key, &mut out).unwrap();
        }
        let generations: Vec<u32> = ladder.rungs().map(|r| r.generation).collect();
        // Parameter sets of the second source in band, before its first keyframe.
        let mut in_band = Vec::new();
        let mut at = 0;
        let avcc = &second.avcc;
        let sps_len = u16::from_be_bytes([avcc[6], avcc[7]]) as usize;
        let sps = &avcc[8..8 + sps_len];
        at += 8 + sps_len;
        let pps_len = u16::from_be_bytes([avcc[at + 1], avcc[at + 2]]) as usize;
        let pps = &avcc[at + 3..at + 3 + pps_len];
        for set in [sps, pps] {
            in_band.extend_from_slice(&(set.len() as u32).to_be_bytes());
            in_band.extend_from_slice(set);
        }
        let offset = 30 * FRAME_TICKS;
        for (i, (data, pts, dts, key)) in second.units.iter().enumerate() {
            let data = if i == 0 {
                [&in_band[..], data].concat()
            } else {
                data.clone()
            };
            ladder
                .push(&data, pts + offset, dts + offset, *key, &mut out)
                .unwrap();
        }
        ladder.finish(&mut out).unwrap();
        assert_eq!(ladder.stats().replans, 1);
        let after: Vec<(usize, u32, u32, u32)> = ladder
            .rungs()
            .map(|r| (r.spec, r.width, r.height, r.generation))
            .collect();
        assert_eq!(after.len(), 1, "360p would now upscale: {after:?}");
        assert_eq!((after[0].0, after[0].1, after[0].2), (1, 320, 180));
        assert_eq!(
            after[0].3, generations[1],
            "180p kept its encoder (same size)"
        );
        let rung360: Vec<&RungPacket> = out.iter().filter(|p| p.rung == 0).collect();
        assert_eq!(rung360.len(), 30, "360p drained at the change");
        let rung180 = out.iter().filter(|p| p.rung == 1).count();
        assert_eq!(rung180, 60);
    });
}

#[test]
fn hevc_rungs_carry_an_hvcc_and_idrs_on_the_source_keyframes() {
    serial(|| {
        let frames = 60;
        let src = source(640, 360, frames);
        let config = LadderConfig {
            codec: CodecId::Hevc,
            encoder: "libx265".into(),
            preset: "ultrafast".into(),
            rungs: vec![rung("360p", 0, 360, 500), rung("180p", 0, 180, 200)],
            frame_rate: Rational::new(30, 1),
            threads: 1,
            filter: None,
        };
        let mut ladder = Ladder::new(CodecId::H264, &src.avcc, config).unwrap();
        let mut out = Vec::new();
        for (data, pts, dts, key) in &src.units {
            ladder.push(data, *pts, *dts, *key, &mut out).unwrap();
        }
        ladder.finish(&mut out).unwrap();
        let source_keys: Vec<i64> = src.units.iter().filter(|u| u.3).map(|u| u.1).collect();
        for r in ladder.rungs() {
            // hvcC: version 1, then VPS, SPS and PPS arrays.
            assert_eq!(r.record[0], 1);
            assert_eq!(r.record[22], 3, "three parameter set arrays");
            let packets: Vec<&RungPacket> = out.iter().filter(|p| p.rung == r.spec).collect();
            assert_eq!(packets.len(), frames as usize);
            let keys: Vec<i64> = packets
                .iter()
                .filter(|p| p.keyframe)
                .map(|p| p.pts)
                .collect();
            assert_eq!(keys, source_keys, "rung {}", r.spec);
            for p in &packets {
                let mut at = 0;
                while at < p.data.len() {
                    let len = u32::from_be_bytes(p.data[at..at + 4].try_into().unwrap()) as usize;
                    let kind = (p.data[at + 4] >> 1) & 0x3f;
                    assert!(!(32..=35).contains(&kind), "parameter set in band");
                    at += 4 + len;
                }
                assert_eq!(at, p.data.len());
            }
            let pictures = decode(CodecId::Hevc, &r.record, &packets);
            assert_eq!(pictures.len(), frames as usize);
            assert!(pictures
                .iter()
                .all(|&(w, h, _)| (w, h) == (r.width, r.height)));
        }
    });
}

#[test]
fn encoders_that_take_only_hardware_surfaces_are_refused_clearly() {
    serial(|| {
        assert_eq!(
            shardcast_native::system_memory_format("libx264"),
            Some(PixelFormat::YUV420P)
        );
        assert_eq!(
            shardcast_native::system_memory_format("h264_nvenc"),
            Some(PixelFormat::NV12)
        );
        assert_eq!(
            shardcast_native::system_memory_format("hevc_qsv"),
            Some(PixelFormat::NV12)
        );
        assert_eq!(shardcast_native::system_memory_format("h264_vaapi"), None);
        let src = source(320, 180, 2);
        let config = LadderConfig {
            codec: CodecId::H264,
            encoder: "h264_vaapi".into(),
            preset: "ultrafast".into(),
            rungs: vec![rung("180p", 0, 180, 200)],
            frame_rate: Rational::new(30, 1),
            threads: 1,
            filter: None,
        };
        let mut ladder = Ladder::new(CodecId::H264, &src.avcc, config).unwrap();
        let mut out = Vec::new();
        let mut refused = None;
        for (data, pts, dts, key) in &src.units {
            if let Err(error) = ladder.push(data, *pts, *dts, *key, &mut out) {
                refused = Some(error);
                break;
            }
        }
        let refused = refused.or_else(|| ladder.finish(&mut out).err());
        assert!(
            matches!(refused, Some(Error::Unsupported { .. })),
            "{refused:?}"
        );
        assert!(out.is_empty());
    });
}
