//! Deterministic fuzz loops (xorshift): FLV tag and file parsing, avcC/hvcC/SPS/ASC parsing,
//! the segmenter and the stream home must never panic, whatever they are fed. A `cargo fuzz`
//! target can call `shardcast_media::fuzz_flv` or `shardcast_media::fuzz_flv_file` with the
//! same contract.

mod common;

use bytes::Bytes;
use common::XorShift;
use shardcast_media::cmaf::inspect;
use shardcast_media::codec::{
    parse_audio_specific_config, parse_avc_sps, parse_avcc, parse_hevc_sps, parse_hvcc,
};
use shardcast_media::flv::{parse_audio, parse_video};
use shardcast_media::{
    fuzz_flv, fuzz_flv_file, Event, Sample, Segmenter, SegmenterConfig, TrackConfig, TrackKind,
};

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !data.is_empty() => {
                let at = rng.below(data.len() as u64) as usize;
                data[at] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let at = rng.below(data.len() as u64) as usize;
                data[at] = rng.next_u64() as u8;
            }
            2 => {
                let len = rng.below(data.len() as u64 + 1) as usize;
                data.truncate(len);
            }
            3 => {
                let at = rng.below(data.len() as u64 + 1) as usize;
                data.insert(at, rng.next_u64() as u8);
            }
            _ => {
                // An interesting value at a random place: lengths and counts.
                if data.len() >= 2 {
                    let at = rng.below(data.len() as u64 - 1) as usize;
                    let value = [0x00, 0xFF, 0x7F, 0x80][rng.below(4) as usize];
                    data[at] = value;
                    data[at + 1] = value;
                }
            }
        }
    }
    data
}

fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let tags = common::read_flv(&common::fixture("avc_aac.flv"));
    seeds.extend(tags.iter().take(12).map(|t| t.body.to_vec()));
    for name in [
        "avc_1080p25_baseline.avcc",
        "avc_360p_high444.avcc",
        "avc_576i_interlaced.avcc",
    ] {
        seeds.push(common::legacy_avc_sequence_header(&common::fixture(name)).to_vec());
    }
    for name in ["hevc_720p30_main.hvcc", "hevc_1080p50_main10.hvcc"] {
        seeds.push(common::enhanced_hevc_sequence_start(&common::fixture(name)).to_vec());
    }
    seeds.push(vec![0xAF, 0, 0x11, 0x90]);
    seeds.push(vec![
        0x97, 2, 0, 0x10, 0, 0x01, b'h', b'v', b'c', b'1', 0, 0, 0, 0, 0, 0, 2, 0x26, 1,
    ]);
    seeds.push(vec![0x91, b'm', b'p', b'4', b'a', 0x21, 0x10]);
    seeds
}

#[test]
fn flv_tags_never_panic() {
    let mut rng = XorShift(0x5EED_F1F0);
    // Pure noise.
    for _ in 0..3000 {
        let len = rng.below(48) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        fuzz_flv(&data);
    }
    // Mutations of real tags.
    let seeds = seeds();
    for _ in 0..10_000 {
        let seed = &seeds[rng.below(seeds.len() as u64) as usize];
        let data = mutate(&mut rng, seed);
        let body = Bytes::from(data.clone());
        let _ = parse_video(&body);
        let _ = parse_audio(&body);
        fuzz_flv(&data);
    }
}

#[test]
fn flv_files_never_panic() {
    let mut rng = XorShift(0xF11E_F11E);
    let file = common::fixture("avc_aac.flv");
    fuzz_flv_file(&file);
    for _ in 0..300 {
        let mut data = mutate(&mut rng, &file);
        // Mutations that reach past the header: flip bytes anywhere in the file.
        for _ in 0..rng.below(8) {
            let at = rng.below(data.len() as u64 + 1) as usize;
            if let Some(byte) = data.get_mut(at) {
                *byte = rng.next_u64() as u8;
            }
        }
        fuzz_flv_file(&data);
    }
    for _ in 0..300 {
        let len = rng.below(64) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        if rng.below(2) == 0 {
            data.splice(0..0, *b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        }
        fuzz_flv_file(&data);
    }
}

#[test]
fn codec_configs_never_panic() {
    let mut rng = XorShift(0xC0DE_C0DE);
    let records: Vec<Bytes> = [
        "avc_1080p25_baseline.avcc",
        "avc_360p_high444.avcc",
        "avc_576i_interlaced.avcc",
        "avc_576p_high10.avcc",
        "hevc_720p30_main.hvcc",
        "hevc_1080p50_main10.hvcc",
    ]
    .iter()
    .map(|name| common::fixture(name))
    .collect();
    let mut sps: Vec<Vec<u8>> = Vec::new();
    for record in &records {
        if let Ok(avc) = parse_avcc(record) {
            sps.push(avc.sps[0].to_vec());
        }
        if let Ok(hevc) = parse_hvcc(record) {
            sps.push(hevc.sps[0].to_vec());
        }
    }
    assert_eq!(sps.len(), records.len());
    let mut parsed = 0;
    for _ in 0..20_000 {
        let which = rng.below(3);
        let data = match which {
            0 => {
                let seed = rng.below(records.len() as u64) as usize;
                mutate(&mut rng, &records[seed])
            }
            1 => {
                let seed = rng.below(sps.len() as u64) as usize;
                mutate(&mut rng, &sps[seed])
            }
            _ => mutate(&mut rng, &[0x2B, 0x11, 0x88, 0x00]),
        };
        let bytes = Bytes::from(data.clone());
        let results = [
            parse_avcc(&bytes).map(TrackConfig::Avc).ok(),
            parse_hvcc(&bytes).map(TrackConfig::Hevc).ok(),
            parse_audio_specific_config(&bytes)
                .map(TrackConfig::Aac)
                .ok(),
        ];
        let _ = parse_avc_sps(&data);
        let _ = parse_hevc_sps(&data);
        for config in results.into_iter().flatten() {
            parsed += 1;
            // Whatever parses must also package.
            let init = shardcast_media::cmaf::init_segment(&config);
            inspect::outline(&init).unwrap();
            let _ = config.codec_string();
        }
    }
    assert!(
        parsed > 100,
        "the mutations still reach the deep parsers ({parsed})"
    );
}

#[test]
fn segmenter_never_panics() {
    let mut rng = XorShift(0x5E6_7E47);
    let avc = TrackConfig::Avc(parse_avcc(&common::fixture("avc_576p_high10.avcc")).unwrap());
    let avc2 = TrackConfig::Avc(parse_avcc(&common::fixture("avc_1080p25_baseline.avcc")).unwrap());
    let aac =
        TrackConfig::Aac(parse_audio_specific_config(&Bytes::from_static(&[0x11, 0x90])).unwrap());
    let aac_44k =
        TrackConfig::Aac(parse_audio_specific_config(&Bytes::from_static(&[0x12, 0x10])).unwrap());
    for round in 0..500 {
        let config = SegmenterConfig {
            segment_target_ms: 1 + rng.below(3000) as u32,
            part_target_ms: 1 + rng.below(500) as u32,
            segment_max_ms: 3000 + rng.below(10_000) as u32,
            segment_max_bytes: 4096 + rng.below(1 << 16) as usize,
            part_max_samples: 1 + rng.below(64) as usize,
            interleave_max_ms: 1 + rng.below(2000) as u32,
            interleave_max_samples: 1 + rng.below(64) as usize,
            dts_backwards_max_ms: rng.below(1000) as u32,
        };
        let config = SegmenterConfig {
            part_target_ms: config.part_target_ms.min(config.segment_target_ms),
            ..config
        };
        let mut segmenter = Segmenter::new(config);
        let mut dts = [rng.below(1 << 40), rng.below(1 << 40)];
        for _ in 0..rng.below(600) {
            let roll = rng.below(100);
            let kind = if rng.below(2) == 0 {
                TrackKind::Video
            } else {
                TrackKind::Audio
            };
            let k = usize::from(kind == TrackKind::Audio);
            if roll < 3 {
                let c = match (kind, rng.below(2)) {
                    (TrackKind::Video, 0) => avc.clone(),
                    (TrackKind::Video, _) => avc2.clone(),
                    (TrackKind::Audio, 0) => aac.clone(),
                    (TrackKind::Audio, _) => aac_44k.clone(),
                };
                let _ = segmenter.handle_config(c);
                continue;
            }
            let step = match rng.below(10) {
                0 => 0,
                1 => rng.below(100_000),
                2 => rng.below(1 << 33),
                _ => rng.below(4000),
            };
            dts[k] = if rng.below(20) == 0 {
                dts[k].saturating_sub(rng.below(50_000))
            } else {
                dts[k].saturating_add(step)
            };
            let sample = Sample {
                dts: dts[k],
                composition_offset: rng.below(20_000) as i32 - 10_000,
                duration: rng.below(3) as u32 * 1024,
                keyframe: rng.below(8) == 0,
                data: Bytes::from(vec![0u8; rng.below(3000) as usize]),
            };
            let _ = segmenter.handle_sample(kind, sample, rng.below(1 << 41));
            drain(&mut segmenter);
        }
        if round % 2 == 0 {
            segmenter.handle_end();
        }
        drain(&mut segmenter);
    }
}

fn drain(segmenter: &mut Segmenter) {
    while let Some(event) = segmenter.poll_event() {
        if let Event::PartReady { bytes, .. } = event {
            let fragments = inspect::parse_fragments(&bytes).unwrap();
            assert!(fragments[0].samples.iter().all(|s| s.duration.unwrap() > 0));
        }
    }
}
