//! The CMAF muxer's boxes, walked with the crate's own box reader.

mod common;

use bytes::Bytes;
use shardcast_media::cmaf::{self, inspect};
use shardcast_media::codec::{
    parse_audio_specific_config, parse_avcc, parse_hvcc, parse_opus_head,
};
use shardcast_media::{Sample, TrackConfig, TrackKind};

fn avc() -> TrackConfig {
    TrackConfig::Avc(parse_avcc(&common::fixture("avc_1080p25_baseline.avcc")).unwrap())
}

fn hevc() -> TrackConfig {
    TrackConfig::Hevc(parse_hvcc(&common::fixture("hevc_720p30_main.hvcc")).unwrap())
}

fn aac() -> TrackConfig {
    TrackConfig::Aac(parse_audio_specific_config(&Bytes::from_static(&[0x11, 0x90])).unwrap())
}

fn opus() -> TrackConfig {
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x44, 0xac, 0, 0, 0, 0, 0]);
    TrackConfig::Opus(parse_opus_head(&head).unwrap())
}

fn u32_at(body: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
}

fn u16_at(body: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([body[at], body[at + 1]])
}

#[test]
fn init_segments_have_the_cmaf_header_boxes() {
    let cases = [
        (avc(), "avc1(avcC colr pasp)", "vmhd", b"vide"),
        (hevc(), "hvc1(hvcC colr pasp)", "vmhd", b"vide"),
        (aac(), "mp4a(esds)", "smhd", b"soun"),
        (opus(), "Opus(dOps)", "smhd", b"soun"),
    ];
    for (config, entry, media_header, handler) in cases {
        let init = cmaf::init_segment(&config);
        let outline = inspect::outline(&init).unwrap();
        let expected = format!(
            "ftyp moov(mvhd trak(tkhd mdia(mdhd hdlr minf({media_header} dinf(dref(url )) \
             stbl(stsd({entry}) stts stsc stco stsz)))) mvex(trex))"
        );
        assert_eq!(outline, expected);

        let ftyp = inspect::find(&init, &["ftyp"]).unwrap();
        assert_eq!(ftyp.body, b"cmf2\0\0\0\0cmf2cmfciso6isom");

        let mdhd = inspect::find(&init, &["moov", "trak", "mdia", "mdhd"]).unwrap();
        assert_eq!(u32_at(mdhd.body, 12), config.timescale());
        assert_eq!(u16_at(mdhd.body, 20), 0x55C4, "language und");

        let hdlr = inspect::find(&init, &["moov", "trak", "mdia", "hdlr"]).unwrap();
        assert_eq!(&hdlr.body[8..12], handler);

        let tkhd = inspect::find(&init, &["moov", "trak", "tkhd"]).unwrap();
        assert_eq!(u32_at(tkhd.body, 12), cmaf::TRACK_ID);
        let (width, height) = config.video().map_or((0, 0), |v| (v.width, v.height));
        assert_eq!(u32_at(tkhd.body, 76), width << 16);
        assert_eq!(u32_at(tkhd.body, 80), height << 16);

        let trex = inspect::find(&init, &["moov", "mvex", "trex"]).unwrap();
        assert_eq!(u32_at(trex.body, 4), cmaf::TRACK_ID);
        assert_eq!(u32_at(trex.body, 8), 1);

        let stsd = inspect::find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd"]).unwrap();
        let sample_entry = stsd.children().unwrap().unwrap()[0];
        match &config {
            TrackConfig::Avc(_) | TrackConfig::Hevc(_) => {
                assert_eq!(u16_at(sample_entry.body, 24), width as u16);
                assert_eq!(u16_at(sample_entry.body, 26), height as u16);
                let record = sample_entry.children().unwrap().unwrap()[0];
                assert_eq!(record.body, &config.record()[..], "record copied unchanged");
            }
            TrackConfig::Aac(_) => {
                assert_eq!(u16_at(sample_entry.body, 16), 2, "channels");
                assert_eq!(u32_at(sample_entry.body, 24), 48_000 << 16);
                let esds = sample_entry.children().unwrap().unwrap()[0];
                // ES_Descriptor → DecoderConfigDescriptor (0x40 audio) → DecoderSpecificInfo.
                assert_eq!(esds.body[4], 0x03);
                let dsi_at = esds
                    .body
                    .windows(5)
                    .position(|w| w == [0x05, 0x80, 0x80, 0x80, 0x02])
                    .unwrap();
                assert_eq!(&esds.body[dsi_at + 5..dsi_at + 7], &[0x11, 0x90]);
                assert!(esds.body.windows(2).any(|w| w == [0x40, 0x15]));
            }
            TrackConfig::Opus(_) => {
                assert_eq!(u16_at(sample_entry.body, 16), 2, "channels");
                assert_eq!(u32_at(sample_entry.body, 24), 48_000 << 16);
                let dops = sample_entry.children().unwrap().unwrap()[0];
                // Version 0, 2 channels, pre-skip 312, input rate 44100, gain 0, family 0.
                assert_eq!(dops.body, [0, 2, 0x01, 0x38, 0, 0, 0xac, 0x44, 0, 0, 0]);
                assert_eq!(config.codec_string(), "opus");
            }
        }
    }
}

fn video_samples() -> Vec<Sample> {
    // I P B B P: decode order with composition offsets, as x264 -bf 2 writes them after the
    // segmenter's shift (the keyframe at offset 0).
    let offsets = [0, 6000, -3000, -3000, 6000];
    offsets
        .iter()
        .enumerate()
        .map(|(i, &offset)| Sample {
            dts: 90_000 + i as u64 * 3000,
            composition_offset: offset,
            duration: 3000,
            keyframe: i == 0,
            data: Bytes::from(vec![i as u8; 10 + i]),
        })
        .collect()
}

#[test]
fn video_fragment_structure() {
    let samples = video_samples();
    let part = cmaf::write_fragment(TrackKind::Video, 7, &samples);
    assert_eq!(
        inspect::outline(&part).unwrap(),
        "moof(mfhd traf(tfhd tfdt trun)) mdat"
    );
    let fragments = inspect::parse_fragments(&part).unwrap();
    assert_eq!(fragments.len(), 1);
    let f = &fragments[0];
    assert_eq!(f.sequence_number, 7);
    assert_eq!(f.track_id, 1);
    assert_eq!(f.base_media_decode_time, 90_000);
    assert_eq!((f.tfdt_version, f.trun_version), (1, 1));
    assert_eq!(f.samples.len(), 5);
    for (sample, entry) in samples.iter().zip(&f.samples) {
        assert_eq!(entry.duration, Some(3000));
        assert_eq!(entry.size, Some(sample.data.len() as u32));
        assert_eq!(
            entry.composition_offset,
            Some(i64::from(sample.composition_offset))
        );
        let expected_flags = if sample.keyframe {
            cmaf::SYNC_SAMPLE_FLAGS
        } else {
            cmaf::NON_SYNC_SAMPLE_FLAGS
        };
        assert_eq!(entry.flags, Some(expected_flags));
    }
    let data: Vec<u8> = samples.iter().flat_map(|s| s.data.to_vec()).collect();
    assert_eq!(f.data, &data[..]);
    assert_eq!(
        part.len(),
        cmaf::fragment_overhead(TrackKind::Video, 5) + data.len()
    );
}

#[test]
fn audio_fragment_structure() {
    let samples: Vec<Sample> = (0..4)
        .map(|i| Sample {
            dts: 1 << 33 | (i * 1024),
            composition_offset: 0,
            duration: 1024,
            keyframe: true,
            data: Bytes::from(vec![0xAA; 7]),
        })
        .collect();
    let part = cmaf::write_fragment(TrackKind::Audio, 1, &samples);
    let f = &inspect::parse_fragments(&part).unwrap()[0];
    assert_eq!(f.base_media_decode_time, 1 << 33, "64-bit tfdt");
    assert_eq!(f.default_sample_flags, Some(cmaf::SYNC_SAMPLE_FLAGS));
    assert_eq!(f.trun_version, 0);
    assert!(f
        .samples
        .iter()
        .all(|s| s.duration == Some(1024) && s.flags.is_none()));
}

#[test]
fn a_segment_is_styp_then_parts() {
    let samples = video_samples();
    let mut segment = cmaf::STYP.to_vec();
    segment.extend_from_slice(&cmaf::write_fragment(TrackKind::Video, 1, &samples[..3]));
    segment.extend_from_slice(&cmaf::write_fragment(TrackKind::Video, 2, &samples[3..]));
    assert_eq!(
        inspect::outline(&segment).unwrap(),
        "styp moof(mfhd traf(tfhd tfdt trun)) mdat moof(mfhd traf(tfhd tfdt trun)) mdat"
    );
    let styp = inspect::find(&segment, &["styp"]).unwrap();
    assert_eq!(styp.body, b"msdh\0\0\0\0msdhcmfs");
    let fragments = inspect::parse_fragments(&segment).unwrap();
    assert_eq!(
        fragments
            .iter()
            .map(|f| (f.sequence_number, f.base_media_decode_time))
            .collect::<Vec<_>>(),
        [(1, 90_000), (2, 99_000)]
    );
}

#[test]
fn the_box_reader_refuses_inconsistent_sizes() {
    let part = cmaf::write_fragment(TrackKind::Video, 1, &video_samples());
    assert!(inspect::parse_boxes(&part[..part.len() - 1]).is_err());
    let mut bad = part.to_vec();
    bad[3] += 1; // moof one byte longer than its children
    assert!(inspect::outline(&bad).is_err() || inspect::parse_fragments(&bad).is_err());
    let mut offset = part.to_vec();
    // trun data_offset sits after moof(8) mfhd(16) traf(8) tfhd(16) tfdt(20) trun header(16).
    let at = 8 + 16 + 8 + 16 + 20 + 16;
    offset[at + 3] ^= 1;
    assert!(inspect::parse_fragments(&offset).is_err());
}
