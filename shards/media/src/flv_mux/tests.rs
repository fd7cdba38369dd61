//! What is written reads back through [`crate::flv`]'s parser, field for field.

use super::*;
use crate::flv::{parse_audio, parse_video, read_file, AudioPacket, FrameType, VideoPacket};

fn parsed_video(body: Vec<u8>) -> crate::flv::VideoTag {
    parse_video(&Bytes::from(body)).unwrap()
}

#[test]
fn h264_and_h265_tags_read_back_as_written() {
    for codec in [VideoCodec::Avc, VideoCodec::Hevc] {
        let record = [1u8, 0x64, 0, 0x1f, 0xff];
        let tag = parsed_video(video_sequence_start(codec, &record));
        let expected = VideoPacket::SequenceStart {
            codec,
            record: Bytes::copy_from_slice(&record),
        };
        assert_eq!((tag.frame_type, tag.packet), (FrameType::Key, expected));
        let nals = [0u8, 0, 0, 2, 0x65, 0x88];
        for (keyframe, composition_ms) in [(true, 0), (false, 66), (false, -33)] {
            let tag = parsed_video(video_frame(codec, (keyframe, composition_ms), &nals));
            let frame_type = if keyframe {
                FrameType::Key
            } else {
                FrameType::Inter
            };
            assert_eq!(tag.frame_type, frame_type, "{codec:?}");
            let expected = VideoPacket::CodedFrames {
                codec,
                composition_time_ms: composition_ms,
                data: Bytes::copy_from_slice(&nals),
            };
            assert_eq!(tag.packet, expected, "{codec:?}");
        }
        let end = parsed_video(video_sequence_end(codec));
        assert_eq!(end.packet, VideoPacket::SequenceEnd { codec });
    }
    // The legacy H.264 head every FLV player reads: keyframe, codec 7, packet type 1.
    assert_eq!(video_frame(VideoCodec::Avc, (true, 0), &[])[..2], [0x17, 1]);
}

#[test]
fn aac_tags_read_back_as_written() {
    let config = [0x12u8, 0x10];
    let parsed = parse_audio(&Bytes::from(audio_sequence_start(&config))).unwrap();
    let expected = AudioPacket::SequenceStart {
        record: Bytes::copy_from_slice(&config),
    };
    assert_eq!(parsed, expected);
    let frame = [0x21u8, 0x00, 0x49];
    let parsed = parse_audio(&Bytes::from(audio_frame(&frame))).unwrap();
    let expected = AudioPacket::CodedFrames {
        data: Bytes::copy_from_slice(&frame),
    };
    assert_eq!(parsed, expected);
    assert_eq!(audio_frame(&frame)[0], 0xaf);
}

#[test]
fn a_file_of_tags_reads_back_with_its_timestamps_and_sizes() {
    let mut file = file_header((true, true)).to_vec();
    assert_eq!(file[..9], [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9]);
    let video = video_frame(VideoCodec::Avc, (true, 0), &[0, 0, 0, 1, 0x65]);
    let audio = audio_frame(&[1, 2, 3]);
    // Past 2^24 ms the timestamp goes on in the extension byte.
    let times = [0u32, 40, 0x0100_0010];
    let tags = [
        tag(TagKind::Video, times[0], &video).unwrap(),
        tag(TagKind::Audio, times[1], &audio).unwrap(),
        tag(TagKind::Video, times[2], &video).unwrap(),
    ];
    for t in &tags {
        // Each ends with its own size: header and body.
        let size = u32::from_be_bytes(t[t.len() - 4..].try_into().unwrap()) as usize;
        assert_eq!(size, t.len() - 4);
        file.extend_from_slice(t);
    }
    let read = read_file(&Bytes::from(file)).unwrap();
    let got: Vec<(TagKind, u32, usize)> = (read.iter())
        .map(|t| (t.kind, t.timestamp_ms, t.body.len()))
        .collect();
    let expected = vec![
        (TagKind::Video, times[0], video.len()),
        (TagKind::Audio, times[1], audio.len()),
        (TagKind::Video, times[2], video.len()),
    ];
    assert_eq!(got, expected);
    // No tag for a body its length field cannot hold, or a reserved type.
    assert!(tag(TagKind::Video, 0, &vec![0; TAG_BODY_MAX + 1]).is_none());
    assert!(tag(TagKind::Other(7), 0, &[]).is_none());
}
