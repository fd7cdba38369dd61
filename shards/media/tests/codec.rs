//! avcC / hvcC / SPS / AudioSpecificConfig parsing against parameter sets written by x264,
//! x265 and FFmpeg's AAC encoder (see tests/fixtures/README.md).

mod common;

use bytes::Bytes;
use shardcast_media::codec::{
    parse_audio_specific_config, parse_avc_sps, parse_avcc, parse_hevc_sps, parse_hvcc,
    scan_sample, FrameRate, NalUnits, VideoCodec,
};
use shardcast_media::flv::{parse_audio, AudioPacket};
use shardcast_media::{MediaError, TrackConfig};

struct Expected {
    fixture: &'static str,
    codec: &'static str,
    width: u32,
    height: u32,
    chroma_format_idc: u8,
    bit_depth: u8,
    interlaced: bool,
    frame_rate: (u32, u32),
}

const AVC: &[Expected] = &[
    Expected {
        // x264 ultrafast picks Constrained Baseline; 1088 coded lines cropped to 1080.
        fixture: "avc_1080p25_baseline.avcc",
        codec: "avc1.42c028",
        width: 1920,
        height: 1080,
        chroma_format_idc: 1,
        bit_depth: 8,
        interlaced: false,
        frame_rate: (25, 1),
    },
    Expected {
        // High 4:4:4 Predictive: chroma_format_idc 3, crop unit 1 (368 → 360).
        fixture: "avc_360p_high444.avcc",
        codec: "avc1.f4001f",
        width: 640,
        height: 360,
        chroma_format_idc: 3,
        bit_depth: 8,
        interlaced: false,
        frame_rate: (60000, 1001),
    },
    Expected {
        // Interlaced Main: frame_mbs_only_flag 0, height in field pairs of map units.
        fixture: "avc_576i_interlaced.avcc",
        codec: "avc1.4d401e",
        width: 720,
        height: 576,
        chroma_format_idc: 1,
        bit_depth: 8,
        interlaced: true,
        frame_rate: (25, 1),
    },
    Expected {
        fixture: "avc_576p_high10.avcc",
        codec: "avc1.6e001e",
        width: 720,
        height: 576,
        chroma_format_idc: 1,
        bit_depth: 10,
        interlaced: false,
        frame_rate: (25, 1),
    },
];

const HEVC: &[Expected] = &[
    Expected {
        fixture: "hevc_720p30_main.hvcc",
        codec: "hvc1.1.6.L93.90",
        width: 1280,
        height: 720,
        chroma_format_idc: 1,
        bit_depth: 8,
        interlaced: false,
        frame_rate: (30, 1),
    },
    Expected {
        fixture: "hevc_1080p50_main10.hvcc",
        codec: "hvc1.2.4.L123.90",
        width: 1920,
        height: 1080,
        chroma_format_idc: 1,
        bit_depth: 10,
        interlaced: false,
        frame_rate: (50, 1),
    },
];

fn check(config: &TrackConfig, expected: &Expected) {
    let name = expected.fixture;
    assert_eq!(config.codec_string(), expected.codec, "{name}");
    let video = config.video().unwrap();
    assert_eq!(
        (video.width, video.height),
        (expected.width, expected.height),
        "{name}"
    );
    assert_eq!(
        video.chroma_format_idc, expected.chroma_format_idc,
        "{name}"
    );
    assert_eq!(video.bit_depth_luma, expected.bit_depth, "{name}");
    assert_eq!(video.bit_depth_chroma, expected.bit_depth, "{name}");
    assert_eq!(video.interlaced, expected.interlaced, "{name}");
    let (numerator, denominator) = expected.frame_rate;
    assert_eq!(
        video.frame_rate,
        Some(FrameRate {
            numerator,
            denominator
        }),
        "{name}"
    );
    assert_eq!(config.timescale(), 90_000);
}

#[test]
fn avcc_fixtures() {
    for expected in AVC {
        let record = common::fixture(expected.fixture);
        let avc = parse_avcc(&record).unwrap_or_else(|e| panic!("{}: {e}", expected.fixture));
        assert_eq!(avc.nal_length_size, 4);
        assert_eq!((avc.sps.len(), avc.pps.len()), (1, 1));
        assert_eq!(parse_avc_sps(&avc.sps[0]).unwrap(), avc.sps_info);
        check(&TrackConfig::Avc(avc), expected);
    }
}

#[test]
fn hvcc_fixtures() {
    for expected in HEVC {
        let record = common::fixture(expected.fixture);
        let hevc = parse_hvcc(&record).unwrap_or_else(|e| panic!("{}: {e}", expected.fixture));
        assert_eq!(hevc.nal_length_size, 4);
        assert_eq!((hevc.vps.len(), hevc.sps.len(), hevc.pps.len()), (1, 1, 1));
        assert_eq!(parse_hevc_sps(&hevc.sps[0]).unwrap(), hevc.sps_info);
        assert!(!hevc.sps_info.profile_tier_level.tier_high);
        check(&TrackConfig::Hevc(hevc), expected);
    }
}

#[test]
fn avcc_from_the_flv_fixture() {
    let tags = common::read_flv(&common::fixture("avc_aac.flv"));
    let record = common::first_video_sequence_header(&tags);
    let avc = parse_avcc(&record).unwrap();
    let video = &avc.sps_info.video;
    // 180 = 12 macroblock rows (192) cropped by 12 lines.
    assert_eq!((video.width, video.height), (320, 180));
    assert_eq!(avc.codec_string(), "avc1.64000d");
    assert_eq!(
        video.frame_rate,
        Some(FrameRate {
            numerator: 30,
            denominator: 1
        })
    );
}

#[test]
fn bad_records_are_refused() {
    let good = common::fixture("avc_1080p25_baseline.avcc");
    let mut version = good.to_vec();
    version[0] = 0;
    assert!(matches!(
        parse_avcc(&Bytes::from(version)),
        Err(MediaError::Invalid { .. })
    ));
    let mut length_size = good.to_vec();
    length_size[4] = 0xFE; // lengthSizeMinusOne 2
    assert!(parse_avcc(&Bytes::from(length_size)).is_err());
    for cut in 0..good.len() {
        assert!(parse_avcc(&good.slice(..cut)).is_err(), "cut at {cut}");
    }
    let hevc = common::fixture("hevc_720p30_main.hvcc");
    for cut in (0..hevc.len()).step_by(7) {
        assert!(parse_hvcc(&hevc.slice(..cut)).is_err(), "cut at {cut}");
    }
    // A PPS where the SPS should be.
    assert!(parse_avc_sps(&[0x68, 0xCE, 0x0F, 0xC8]).is_err());
    assert!(parse_hevc_sps(&[0x44, 0x01, 0xC1]).is_err());
}

#[test]
fn audio_specific_configs() {
    let cases: &[(&[u8], &str, u32, u8, u32)] = &[
        (&[0x11, 0x90], "mp4a.40.2", 48_000, 2, 1024),
        (&[0x12, 0x10], "mp4a.40.2", 44_100, 2, 1024),
        (&[0x11, 0x94], "mp4a.40.2", 48_000, 2, 960),
        // Explicit 24-bit sampling frequency.
        (
            &[0x17, 0x80, 0x2B, 0x67, 0x08],
            "mp4a.40.2",
            22_222,
            1,
            1024,
        ),
        // HE-AAC with explicit SBR: core 24 kHz, output 48 kHz.
        (&[0x2B, 0x11, 0x88, 0x00], "mp4a.40.5", 24_000, 2, 1024),
    ];
    for &(bytes, codec, rate, channels, frame) in cases {
        let aac = parse_audio_specific_config(&Bytes::copy_from_slice(bytes))
            .unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
        assert_eq!(aac.codec_string(), codec, "{bytes:02x?}");
        assert_eq!(aac.sample_rate, rate, "{bytes:02x?}");
        assert_eq!(aac.channel_config, channels, "{bytes:02x?}");
        assert_eq!(aac.frame_samples, frame, "{bytes:02x?}");
        assert_eq!(TrackConfig::Aac(aac).timescale(), rate);
    }
    let he = parse_audio_specific_config(&Bytes::from_static(&[0x2B, 0x11, 0x88, 0x00])).unwrap();
    assert_eq!(he.extension_sample_rate, Some(48_000));
    // Object type 42 (USAC, via the escape) is not AAC.
    assert!(matches!(
        parse_audio_specific_config(&Bytes::from_static(&[0xF9, 0x46, 0x40])),
        Err(MediaError::Unsupported { .. })
    ));
    // Reserved frequency index 13, object type 0, truncation.
    for bad in [&[0x16, 0x90][..], &[0x01, 0x90], &[0x11]] {
        assert!(parse_audio_specific_config(&Bytes::copy_from_slice(bad)).is_err());
    }
    // The FLV fixture: AAC-LC, 48 kHz, mono.
    let tags = common::read_flv(&common::fixture("avc_aac.flv"));
    let record = tags
        .iter()
        .filter(|t| t.kind == common::TagKind::Audio)
        .find_map(|t| match parse_audio(&t.body) {
            Ok(AudioPacket::SequenceStart { record }) => Some(record),
            _ => None,
        })
        .unwrap();
    let aac = parse_audio_specific_config(&record).unwrap();
    assert_eq!(
        (aac.object_type, aac.sample_rate, aac.channels()),
        (2, 48_000, 1)
    );
}

#[test]
fn nal_units_and_keyframes() {
    let idr = [0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 3, 0x65, 0x88, 0x84];
    let units: Vec<&[u8]> = NalUnits::new(&idr, 4).map(Result::unwrap).collect();
    assert_eq!(units, [&[0x09, 0xF0][..], &[0x65, 0x88, 0x84]]);
    assert_eq!(scan_sample(VideoCodec::Avc, &idr, 4), Ok(true));
    assert_eq!(
        scan_sample(VideoCodec::Avc, &[0, 2, 0x41, 0x9A], 2),
        Ok(false)
    );
    assert_eq!(scan_sample(VideoCodec::Avc, &[2, 0x41, 0x9A], 1), Ok(false));
    // H.265: CRA (21) is a random access point, TRAIL_R (1) is not.
    assert_eq!(
        scan_sample(VideoCodec::Hevc, &[0, 0, 0, 2, 0x2A, 0x01], 4),
        Ok(true)
    );
    assert_eq!(
        scan_sample(VideoCodec::Hevc, &[0, 0, 0, 2, 0x02, 0x01], 4),
        Ok(false)
    );
    // Framing errors.
    assert!(scan_sample(VideoCodec::Avc, &[0, 0, 0, 9, 0x65], 4).is_err());
    assert!(scan_sample(VideoCodec::Avc, &[0, 0, 0, 0], 4).is_err());
    assert!(scan_sample(VideoCodec::Avc, &[0, 0, 1], 4).is_err());
}
