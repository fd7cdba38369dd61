//! End-to-end check against FFmpeg: the real x264 + AAC FLV fixture goes through the demuxer
//! and segmenter, the headers and segments are written to disk, and `ffprobe` decodes them.
//! When `ffprobe` is not on PATH the test prints why it did not run and passes.

mod common;

use std::path::Path;
use std::process::Command;

use shardcast_media::cmaf::{self, inspect};
use shardcast_media::flv::{parse_video, VideoPacket};
use shardcast_media::{Demuxed, Demuxer, Event, Segmenter, SegmenterConfig, TrackKind};

struct TrackFiles {
    init: Vec<u8>,
    /// Each segment: `styp` followed by its parts.
    segments: Vec<Vec<u8>>,
    current: Vec<u8>,
}

impl TrackFiles {
    fn new() -> Self {
        Self {
            init: Vec::new(),
            segments: Vec::new(),
            current: cmaf::STYP.to_vec(),
        }
    }
}

fn ffprobe_available() -> bool {
    Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs ffprobe on `file` and returns (stream lines, frame lines), failing on any error
/// output (a decode error, a demux warning at level error).
fn probe(file: &Path) -> (Vec<String>, Vec<String>) {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_frames",
            "-of",
            "compact=p=1",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,profile,width,height,sample_rate,channels:\
             frame=media_type,pts,pts_time,key_frame",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ffprobe failed: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "ffprobe reported errors: {stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let streams = stdout
        .lines()
        .filter(|l| l.starts_with("stream|"))
        .map(str::to_owned)
        .collect();
    let frames = stdout
        .lines()
        .filter(|l| l.starts_with("frame|"))
        .map(str::to_owned)
        .collect();
    (streams, frames)
}

/// The interesting fields of a stream line, for the printed summary.
fn summary(stream: &str) -> String {
    stream
        .split('|')
        .filter(|kv| !kv.starts_with("disposition") && !kv.starts_with("tag:"))
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split('|')
        .find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

#[test]
fn ffprobe_decodes_what_the_segmenter_wrote() {
    if !ffprobe_available() {
        eprintln!(
            "ffprobe_decodes_what_the_segmenter_wrote: SKIPPED — ffprobe is not on PATH, so \
             the CMAF output was not checked against FFmpeg"
        );
        return;
    }
    let file = common::fixture("avc_aac.flv");
    let tags = common::read_flv(&file);

    // The presentation times x264 wrote (timestamp + composition time), in 90 kHz ticks.
    let mut expected_video_pts: Vec<i64> = tags
        .iter()
        .filter(|t| t.kind == common::TagKind::Video)
        .filter_map(|t| match parse_video(&t.body).unwrap().packet {
            VideoPacket::CodedFrames {
                composition_time_ms,
                ..
            } => Some((i64::from(t.timestamp_ms) + i64::from(composition_time_ms)) * 90),
            _ => None,
        })
        .collect();
    expected_video_pts.sort_unstable();

    let mut demuxer = Demuxer::new();
    let mut segmenter = Segmenter::new(SegmenterConfig {
        segment_target_ms: 1000,
        ..SegmenterConfig::DEFAULT
    });
    let mut video = TrackFiles::new();
    let mut audio = TrackFiles::new();
    let mut audio_dts = Vec::new();
    let mut events = Vec::new();
    for tag in &tags {
        let demuxed = match tag.kind {
            common::TagKind::Video => demuxer.handle_video(tag.timestamp_ms, &tag.body).unwrap(),
            common::TagKind::Audio => demuxer.handle_audio(tag.timestamp_ms, &tag.body).unwrap(),
            _ => continue,
        };
        match demuxed {
            Demuxed::Config(config) => segmenter.handle_config(config).unwrap(),
            Demuxed::Sample { track, sample } => {
                if track == TrackKind::Audio {
                    audio_dts.push(sample.dts);
                }
                let wall = 1_700_000_000_000 + u64::from(tag.timestamp_ms);
                segmenter.handle_sample(track, sample, wall).unwrap();
            }
            Demuxed::Nothing => {}
        }
        events.extend(std::iter::from_fn(|| segmenter.poll_event()));
    }
    segmenter.handle_end();
    events.extend(std::iter::from_fn(|| segmenter.poll_event()));

    let mut min_offset = 0i64;
    for event in events {
        match event {
            Event::InitReady { track, init, .. } => {
                let files = if track == TrackKind::Video {
                    &mut video
                } else {
                    &mut audio
                };
                files.init = init.to_vec();
            }
            Event::PartReady { track, bytes, .. } => {
                if track == TrackKind::Video {
                    for fragment in inspect::parse_fragments(&bytes).unwrap() {
                        for sample in fragment.samples {
                            min_offset = min_offset.min(sample.composition_offset.unwrap());
                        }
                    }
                }
                let files = if track == TrackKind::Video {
                    &mut video
                } else {
                    &mut audio
                };
                files.current.extend_from_slice(&bytes);
            }
            Event::Placed { .. } => unreachable!("not asked for"),
            Event::SegmentReady { track, bytes, .. } => {
                let files = if track == TrackKind::Video {
                    &mut video
                } else {
                    &mut audio
                };
                let segment = std::mem::replace(&mut files.current, cmaf::STYP.to_vec());
                assert_eq!(segment.len(), bytes);
                files.segments.push(segment);
            }
        }
    }
    assert_eq!(video.segments.len(), 2, "1 s segments of a 2 s stream");

    let dir = std::env::temp_dir().join(format!("shardcast-media-ffprobe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut outputs = Vec::new();
    for (name, files) in [("video", &video), ("audio", &audio)] {
        std::fs::write(dir.join(format!("{name}_init.mp4")), &files.init).unwrap();
        let mut whole = files.init.clone();
        for (n, segment) in files.segments.iter().enumerate() {
            std::fs::write(dir.join(format!("{name}_{n}.m4s")), segment).unwrap();
            whole.extend_from_slice(segment);
        }
        let path = dir.join(format!("{name}.mp4"));
        std::fs::write(&path, whole).unwrap();
        outputs.push(path);
    }

    // Video: H.264 High 320x180, 60 decoded frames, 2 keyframes, presentation times as x264
    // wrote them. The segmenter gives the first keyframe composition offset 0, so B-frames
    // have negative offsets; FFmpeg's MP4 demuxer (unlike MSE and AVFoundation, which use the
    // signed offsets as they are) keeps its PTS at or above DTS by adding the most negative
    // offset's magnitude to every PTS of the track (its `dts_shift`). So FFmpeg reports each
    // presentation time exactly that much later.
    let (streams, frames) = probe(&outputs[0]);
    assert_eq!(streams.len(), 1, "{streams:?}");
    let stream = &streams[0];
    assert_eq!(field(stream, "codec_name"), "h264");
    assert_eq!(field(stream, "profile"), "High");
    assert_eq!(
        (field(stream, "width"), field(stream, "height")),
        ("320", "180")
    );
    assert_eq!(frames.len(), 60, "decoded frames");
    let keyframes = frames
        .iter()
        .filter(|f| field(f, "key_frame") == "1")
        .count();
    assert_eq!(keyframes, 2);
    let ffmpeg_dts_shift = -min_offset;
    assert!(ffmpeg_dts_shift > 0, "the fixture has B-frames");
    let mut pts: Vec<i64> = frames
        .iter()
        .map(|f| field(f, "pts").parse::<i64>().unwrap() - ffmpeg_dts_shift)
        .collect();
    pts.sort_unstable();
    assert_eq!(pts, expected_video_pts);
    eprintln!(
        "ffprobe video: {}; {} frames, {keyframes} keyframes, pts {}..{} (90 kHz, \
         after FFmpeg's dts_shift of {ffmpeg_dts_shift})",
        summary(stream),
        frames.len(),
        pts[0],
        pts[pts.len() - 1]
    );

    // Audio: AAC 48 kHz mono, every frame kept by the segmenter decoded, at its decode time.
    let (streams, frames) = probe(&outputs[1]);
    let stream = &streams[0];
    assert_eq!(field(stream, "codec_name"), "aac");
    assert_eq!(field(stream, "sample_rate"), "48000");
    assert_eq!(field(stream, "channels"), "1");
    let pts: Vec<u64> = frames
        .iter()
        .map(|f| field(f, "pts").parse().unwrap())
        .collect();
    // The segmenter drops audio before the first video keyframe; the rest must all be there.
    let kept: Vec<u64> = audio_dts
        .iter()
        .copied()
        .filter(|&dts| dts >= pts[0])
        .collect();
    assert_eq!(pts, kept);
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 1024));
    eprintln!(
        "ffprobe audio: {}; {} frames, pts {}..{} (48 kHz ticks)",
        summary(stream),
        frames.len(),
        pts[0],
        pts[pts.len() - 1]
    );

    // A segment on its own (header + segment 1) is independently decodable.
    let mut alone = video.init.clone();
    alone.extend_from_slice(&video.segments[1]);
    let path = dir.join("video_alone.mp4");
    std::fs::write(&path, alone).unwrap();
    let (_, frames) = probe(&path);
    assert_eq!(frames.len(), 30);
    assert_eq!(field(&frames[0], "key_frame"), "1");
    eprintln!(
        "ffprobe video segment 1 alone: {} frames, first is a keyframe",
        frames.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The fixture's tags written again by `flv_mux`: ffprobe reads the same streams and the
/// same frames (times and keyframes) from the copy as from the original.
#[test]
fn ffprobe_reads_what_the_flv_muxer_wrote_as_it_reads_the_original() {
    use shardcast_media::flv::{parse_audio, read_file, AudioPacket, TagKind};
    use shardcast_media::flv_mux;
    if !ffprobe_available() {
        eprintln!("ffprobe is not on PATH: skipped");
        return;
    }
    let original = common::fixture("avc_aac.flv");
    let mut copy = flv_mux::file_header((true, true)).to_vec();
    let mut written = (0, 0);
    for tag in read_file(&original).unwrap() {
        let body = match tag.kind {
            TagKind::Video => match parse_video(&tag.body).unwrap().packet {
                VideoPacket::SequenceStart { codec, record } => {
                    flv_mux::video_sequence_start(codec, &record)
                }
                VideoPacket::CodedFrames {
                    codec,
                    composition_time_ms,
                    data,
                } => {
                    let key = parse_video(&tag.body).unwrap().frame_type.is_key();
                    flv_mux::video_frame(codec, (key, composition_time_ms), &data)
                }
                VideoPacket::SequenceEnd { codec } => flv_mux::video_sequence_end(codec),
                VideoPacket::Skipped(_) => continue,
            },
            TagKind::Audio => match parse_audio(&tag.body).unwrap() {
                AudioPacket::SequenceStart { record } => flv_mux::audio_sequence_start(&record),
                AudioPacket::CodedFrames { data } => flv_mux::audio_frame(&data),
                _ => continue,
            },
            _ => continue, // onMetaData: players do without it
        };
        let counter = if tag.kind == TagKind::Video {
            &mut written.0
        } else {
            &mut written.1
        };
        *counter += 1;
        copy.extend_from_slice(&flv_mux::tag(tag.kind, tag.timestamp_ms, &body).unwrap());
    }
    let dir = std::env::temp_dir().join(format!("shardcast-flv-mux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("copy.flv");
    std::fs::write(&path, &copy).unwrap();
    let (streams, frames) = probe(&path);
    let (original_streams, original_frames) = probe(&common::fixture_path("avc_aac.flv"));
    std::fs::remove_dir_all(&dir).ok();
    println!("{} video and {} audio tags written", written.0, written.1);
    assert!(written.0 > 30 && written.1 > 30, "{written:?}");
    let fields = |lines: &[String]| -> Vec<String> { lines.iter().map(|l| summary(l)).collect() };
    assert_eq!(fields(&streams), fields(&original_streams));
    assert_eq!(
        frames, original_frames,
        "the same frames, times and keyframes"
    );
}
