//! FLV tag body parsing: legacy and Enhanced RTMP, every packet type, refused codecs by name.

mod common;

use bytes::Bytes;
use shardcast_media::codec::VideoCodec;
use shardcast_media::flv::{
    parse_audio, parse_video, AudioPacket, FrameType, SkipReason, VideoPacket,
};
use shardcast_media::{CodecTag, MediaError, TrackKind};

fn b(data: &[u8]) -> Bytes {
    Bytes::copy_from_slice(data)
}

#[test]
fn legacy_avc_packet_types() {
    let cases: Vec<(&[u8], FrameType, VideoPacket)> = vec![
        (
            &[0x17, 0, 0, 0, 0, 1, 2, 3],
            FrameType::Key,
            VideoPacket::SequenceStart {
                codec: VideoCodec::Avc,
                record: b(&[1, 2, 3]),
            },
        ),
        (
            &[0x17, 1, 0, 0, 0x43, 0, 0, 0, 1, 0x65],
            FrameType::Key,
            VideoPacket::CodedFrames {
                codec: VideoCodec::Avc,
                composition_time_ms: 67,
                data: b(&[0, 0, 0, 1, 0x65]),
            },
        ),
        (
            // Negative composition time: SI24 0xFFFFDF = -33.
            &[0x27, 1, 0xFF, 0xFF, 0xDF, 0, 0, 0, 1, 0x41],
            FrameType::Inter,
            VideoPacket::CodedFrames {
                codec: VideoCodec::Avc,
                composition_time_ms: -33,
                data: b(&[0, 0, 0, 1, 0x41]),
            },
        ),
        (
            &[0x17, 2, 0, 0, 0],
            FrameType::Key,
            VideoPacket::SequenceEnd {
                codec: VideoCodec::Avc,
            },
        ),
        (
            &[0x57, 0],
            FrameType::Command,
            VideoPacket::Skipped(SkipReason::Command),
        ),
        (
            // Legacy codec id 12: H.265 before Enhanced RTMP.
            &[0x1C, 1, 0, 0, 0, 0, 0, 0, 2, 0x26, 1],
            FrameType::Key,
            VideoPacket::CodedFrames {
                codec: VideoCodec::Hevc,
                composition_time_ms: 0,
                data: b(&[0, 0, 0, 2, 0x26, 1]),
            },
        ),
    ];
    for (body, frame_type, packet) in cases {
        let tag = parse_video(&b(body)).unwrap_or_else(|e| panic!("{body:02x?}: {e}"));
        assert_eq!(tag.frame_type, frame_type, "{body:02x?}");
        assert_eq!(tag.packet, packet, "{body:02x?}");
    }
}

#[test]
fn enhanced_video_packet_types() {
    let hvc1 = |first: u8, rest: &[u8]| {
        let mut body = vec![first, b'h', b'v', b'c', b'1'];
        body.extend_from_slice(rest);
        Bytes::from(body)
    };
    let cases: Vec<(Bytes, VideoPacket)> = vec![
        (
            hvc1(0x90, &[1, 2]),
            VideoPacket::SequenceStart {
                codec: VideoCodec::Hevc,
                record: b(&[1, 2]),
            },
        ),
        (
            hvc1(0x91, &[0, 0, 0x21, 0, 0, 0, 2, 0x26, 1]),
            VideoPacket::CodedFrames {
                codec: VideoCodec::Hevc,
                composition_time_ms: 33,
                data: b(&[0, 0, 0, 2, 0x26, 1]),
            },
        ),
        (
            hvc1(0xA3, &[0, 0, 0, 2, 0x02, 1]),
            VideoPacket::CodedFrames {
                codec: VideoCodec::Hevc,
                composition_time_ms: 0,
                data: b(&[0, 0, 0, 2, 0x02, 1]),
            },
        ),
        (
            hvc1(0x92, &[]),
            VideoPacket::SequenceEnd {
                codec: VideoCodec::Hevc,
            },
        ),
        (
            hvc1(0x94, &[2, 0, 0]),
            VideoPacket::Skipped(SkipReason::Metadata),
        ),
        (
            b(&[0x91, b'a', b'v', b'c', b'1', 0, 0, 0, 0, 0, 0, 1, 0x65]),
            VideoPacket::CodedFrames {
                codec: VideoCodec::Avc,
                composition_time_ms: 0,
                data: b(&[0, 0, 0, 1, 0x65]),
            },
        ),
        (
            // Command frame: VideoCommand byte, no FourCC, no body.
            b(&[0xD1, 0]),
            VideoPacket::Skipped(SkipReason::Command),
        ),
        (
            // ModEx (TimestampOffsetNano, 3 bytes) then CodedFramesX.
            b(&[
                0x97, 2, 0x00, 0x10, 0x00, 0x03, b'h', b'v', b'c', b'1', 0, 0, 0, 2, 0x26, 1,
            ]),
            VideoPacket::CodedFrames {
                codec: VideoCodec::Hevc,
                composition_time_ms: 0,
                data: b(&[0, 0, 0, 2, 0x26, 1]),
            },
        ),
    ];
    for (body, packet) in cases {
        let tag = parse_video(&body).unwrap_or_else(|e| panic!("{body:02x?}: {e}"));
        assert_eq!(tag.packet, packet, "{body:02x?}");
    }
    assert_eq!(
        parse_video(&hvc1(0x95, &[1, 2])),
        Err(MediaError::Unsupported {
            what: "Enhanced RTMP MPEG2TSSequenceStart"
        })
    );
    assert!(matches!(
        parse_video(&b(&[0x96, 0x01, b'h', b'v', b'c', b'1'])),
        Err(MediaError::Unsupported { .. })
    ));
}

#[test]
fn unsupported_video_codecs_are_named() {
    let cases: Vec<(Bytes, &str, CodecTag)> = vec![
        (b(&[0x22, 0, 0]), "Sorenson H.263", CodecTag::Legacy(2)),
        (b(&[0x13, 0]), "Screen Video", CodecTag::Legacy(3)),
        (b(&[0x14, 0]), "On2 VP6", CodecTag::Legacy(4)),
        (b(&[0x15, 0]), "On2 VP6 with alpha", CodecTag::Legacy(5)),
        (b(&[0x16, 0]), "Screen Video v2", CodecTag::Legacy(6)),
        (
            b(&[0x90, b'a', b'v', b'0', b'1', 0]),
            "AV1",
            CodecTag::FourCc(*b"av01"),
        ),
        (
            b(&[0x90, b'v', b'p', b'0', b'9', 0]),
            "VP9",
            CodecTag::FourCc(*b"vp09"),
        ),
        (
            b(&[0x91, b'v', b'v', b'c', b'1', 0, 0, 0]),
            "H.266",
            CodecTag::FourCc(*b"vvc1"),
        ),
        (
            b(&[0x90, b'x', b'y', b'z', b'w']),
            "unknown video codec",
            CodecTag::FourCc(*b"xyzw"),
        ),
    ];
    for (body, name, tag) in cases {
        let error = parse_video(&body).unwrap_err();
        assert_eq!(
            error,
            MediaError::UnsupportedCodec {
                kind: TrackKind::Video,
                name,
                tag
            },
            "{body:02x?}"
        );
        // The message a publisher sees names the codec.
        assert!(error.to_string().contains(name), "{error}");
    }
    assert_eq!(
        parse_video(&b(&[0x22, 0])).unwrap_err().to_string(),
        "unsupported video codec Sorenson H.263 (FLV codec id 2)"
    );
}

#[test]
fn aac_packet_types() {
    assert_eq!(
        parse_audio(&b(&[0xAF, 0, 0x11, 0x90])),
        Ok(AudioPacket::SequenceStart {
            record: b(&[0x11, 0x90])
        })
    );
    assert_eq!(
        parse_audio(&b(&[0xAF, 1, 0x21, 0x10])),
        Ok(AudioPacket::CodedFrames {
            data: b(&[0x21, 0x10])
        })
    );
    assert!(matches!(
        parse_audio(&b(&[0xAF, 7])),
        Err(MediaError::Invalid { .. })
    ));
    // Enhanced RTMP AAC.
    let mp4a = |first: u8, rest: &[u8]| {
        let mut body = vec![first, b'm', b'p', b'4', b'a'];
        body.extend_from_slice(rest);
        Bytes::from(body)
    };
    assert_eq!(
        parse_audio(&mp4a(0x90, &[0x11, 0x90])),
        Ok(AudioPacket::SequenceStart {
            record: b(&[0x11, 0x90])
        })
    );
    assert_eq!(
        parse_audio(&mp4a(0x91, &[1, 2, 3])),
        Ok(AudioPacket::CodedFrames {
            data: b(&[1, 2, 3])
        })
    );
    assert_eq!(parse_audio(&mp4a(0x92, &[])), Ok(AudioPacket::SequenceEnd));
    assert_eq!(
        parse_audio(&mp4a(0x94, &[0, 2])),
        Ok(AudioPacket::Skipped(SkipReason::MultichannelConfig))
    );
    assert!(matches!(
        parse_audio(&b(&[0x95, 0x01])),
        Err(MediaError::Unsupported { .. })
    ));
}

#[test]
fn unsupported_audio_codecs_are_named() {
    let cases: Vec<(Bytes, &str, CodecTag)> = vec![
        (b(&[0x2F, 0xFF]), "MP3", CodecTag::Legacy(2)),
        (b(&[0xBE, 0]), "Speex", CodecTag::Legacy(11)),
        (b(&[0x6E, 0]), "Nellymoser", CodecTag::Legacy(6)),
        (b(&[0x7E, 0]), "G.711 A-law", CodecTag::Legacy(7)),
        (
            b(&[0x3E, 0]),
            "Linear PCM (little endian)",
            CodecTag::Legacy(3),
        ),
        (b(&[0xEE, 0]), "MP3 8 kHz", CodecTag::Legacy(14)),
        (
            b(&[0x90, b'O', b'p', b'u', b's']),
            "Opus",
            CodecTag::FourCc(*b"Opus"),
        ),
        (
            b(&[0x91, b'.', b'm', b'p', b'3', 0]),
            "MP3",
            CodecTag::FourCc(*b".mp3"),
        ),
        (
            b(&[0x90, b'a', b'c', b'-', b'3']),
            "AC-3",
            CodecTag::FourCc(*b"ac-3"),
        ),
        (
            b(&[0x90, b'e', b'c', b'-', b'3']),
            "E-AC-3",
            CodecTag::FourCc(*b"ec-3"),
        ),
        (
            b(&[0x90, b'f', b'L', b'a', b'C']),
            "FLAC",
            CodecTag::FourCc(*b"fLaC"),
        ),
    ];
    for (body, name, tag) in cases {
        assert_eq!(
            parse_audio(&body),
            Err(MediaError::UnsupportedCodec {
                kind: TrackKind::Audio,
                name,
                tag
            }),
            "{body:02x?}"
        );
    }
    assert_eq!(
        parse_audio(&b(&[0x90, b'O', b'p', b'u', b's']))
            .unwrap_err()
            .to_string(),
        "unsupported audio codec Opus (FourCC 'Opus')"
    );
}

#[test]
fn truncated_and_invalid_bodies_are_errors() {
    let video: &[&[u8]] = &[
        &[],
        &[0x17],
        &[0x17, 1, 0],
        &[0x07, 1, 0, 0, 0],                // frame type 0
        &[0x17, 3, 0, 0, 0],                // AVCPacketType 3
        &[0x90, b'h', b'v'],                // FourCC cut short
        &[0x91, b'h', b'v', b'c', b'1', 0], // composition time cut short
        &[0x97, 200, 1],                    // ModEx data cut short
        &[0x9F, b'h', b'v', b'c', b'1'],    // packet type 15
    ];
    for body in video {
        assert!(parse_video(&b(body)).is_err(), "{body:02x?}");
    }
    let audio: &[&[u8]] = &[&[], &[0xAF], &[0x90, b'm', b'p'], &[0x97, 0]];
    for body in audio {
        assert!(parse_audio(&b(body)).is_err(), "{body:02x?}");
    }
}

#[test]
fn real_flv_file_tags_parse() {
    let file = common::fixture("avc_aac.flv");
    let tags = common::read_flv(&file);
    let (mut video_frames, mut keyframes, mut audio_frames, mut headers) = (0, 0, 0, 0);
    for tag in &tags {
        match tag.kind {
            common::TagKind::Video => match parse_video(&tag.body).unwrap().packet {
                VideoPacket::SequenceStart { .. } => headers += 1,
                VideoPacket::CodedFrames { .. } => {
                    video_frames += 1;
                    if parse_video(&tag.body).unwrap().frame_type.is_key() {
                        keyframes += 1;
                    }
                }
                _ => {}
            },
            common::TagKind::Audio => match parse_audio(&tag.body).unwrap() {
                AudioPacket::SequenceStart { .. } => headers += 1,
                AudioPacket::CodedFrames { .. } => audio_frames += 1,
                _ => {}
            },
            _ => {}
        }
    }
    assert_eq!(headers, 2);
    assert_eq!(video_frames, 60, "2 s at 30 fps");
    assert_eq!(keyframes, 2, "a keyframe every 30 frames");
    assert!(
        (90..=96).contains(&audio_frames),
        "{audio_frames} AAC frames in 2 s"
    );
}

#[test]
fn a_cut_flv_file_gives_its_complete_tags() {
    let file = common::fixture("avc_aac.flv");
    let whole = common::read_flv(&file);
    assert_eq!(
        whole.len(),
        shardcast_media::flv::read_file(&file).unwrap().len()
    );
    let mut truncated = 0;
    for len in (9..file.len()).step_by(97) {
        let mut reader = shardcast_media::flv::FileReader::new(file.slice(..len)).unwrap();
        let tags: Vec<_> = reader.by_ref().collect();
        assert_eq!(tags[..], whole[..tags.len()], "cut at {len}");
        assert!(tags.len() < whole.len());
        truncated += usize::from(reader.is_truncated());
    }
    assert!(truncated > 0);
    // Not an FLV file: a typed refusal, not a panic.
    assert_eq!(
        shardcast_media::flv::read_file(&common::fixture("avc_576p_high10.avcc")),
        Err(shardcast_media::MediaError::Invalid {
            what: "FLV file signature"
        })
    );
}
