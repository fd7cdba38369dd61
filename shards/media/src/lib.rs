//! shardcast's media path: sans-io, from FLV tag bodies to CMAF parts and segments.
//!
//! This crate sits between an RTMP session (which reassembles audio and video messages) and
//! the segment index that HTTP delivery serves from. Tag bodies and the caller's wall clock go
//! in; codec configurations, CMAF headers, LL-HLS parts and segment boundaries come out. There
//! are no sockets, clocks or threads in here: the same code runs on an ingest shard, on a
//! transcode thread packaging its encoder's output, in a fuzzer and in a deterministic test.
//!
//! The pieces, in the order a publish uses them:
//!
//! - [`flv`] parses audio/video tag bodies, legacy and Enhanced RTMP, into sequence headers and
//!   coded frames, naming any codec it refuses ([`MediaError::UnsupportedCodec`]); it also
//!   reads FLV files tag by tag ([`flv::FileReader`]).
//! - [`codec`] reads `avcC`, `hvcC`, their SPS (size, profile, level, bit depth, frame rate) and
//!   the AAC `AudioSpecificConfig`, builds `CODECS` strings, and scans length-prefixed NAL
//!   units for keyframes.
//! - [`Demuxer`] ties those together per publish: tag bodies in, [`TrackConfig`]s and
//!   [`Sample`]s (64-bit track ticks; the 2^32 ms RTMP wrap and the 2^31 ms wrap of FLV-based
//!   publishers handled by [`TimestampUnwrapper`]) out.
//! - [`Segmenter`] cuts the samples of a stream into GOP-aligned segments made of LL-HLS parts,
//!   aligned across audio and video, and reports them as [`Event`]s.
//! - [`home`]: a stream's home ([`StreamHome`]) decides which publisher is packaged (primary,
//!   backup, failover at a keyframe with re-based timestamps), owns the source segmenter, and
//!   turns its events into index updates and messages for a transcode worker.
//! - [`cmaf`] writes the CMAF headers and fragments, one track per file; [`cmaf::inspect`]
//!   reads them back for tests.
//! - [`index`]: every shard's copy of every stream's segment window ([`MediaIndex`]), filled
//!   with the home's [`IndexEvent`]s, from which HTTP delivery serves.
//! - [`manifest`] writes HLS, LL-HLS and DASH playlists from what the index holds.
//!
//! Every `Bytes` that comes out shares memory with what went in or was built once: a coded
//! frame is copied exactly once, from the RTMP message into the part that carries it.

#![forbid(unsafe_code)]

mod bits;
pub mod cmaf;
pub mod codec;
mod demux;
mod error;
pub mod flv;
pub mod flv_mux;
pub mod home;
pub mod index;
pub mod manifest;
mod sample;
mod segmenter;

pub use codec::TrackConfig;
pub use demux::{Demuxed, Demuxer};
pub use error::{CodecTag, ConfigError, MediaError, SegmenterError};
pub use home::{AudioTranscode, HomeConfig, HomeEvent, Refusal, Role, StreamHome, TranscodeEvent};
pub use index::{
    Fetch, IndexEvent, IndexLimits, IndexTotals, MediaIndex, Progressive, RenditionMeta, RungInfo,
    StageHost, StreamIndex, StreamInfo,
};
pub use sample::{ms_to_ticks, ticks_to_ms, AudioClock, Sample, TimestampUnwrapper};
pub use segmenter::{
    Event, Segmenter, SegmenterConfig, SegmenterStats, INTERLEAVE_MAX_SAMPLES_CEILING,
    PART_MAX_SAMPLES_CEILING, SEGMENT_MAX_BYTES_CEILING,
};

use std::fmt;

/// Which track of a stream: each stream has at most one video and one audio track, and each
/// is packaged as its own CMAF track file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

impl fmt::Display for TrackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        })
    }
}

/// A fuzzing entry point: parses `data` as a video tag body and as an audio tag body, and
/// runs whatever configuration or sample comes out through the codec parsers, the muxer and
/// the segmenter. It must never panic, whatever the input.
pub fn fuzz_flv(data: &[u8]) {
    let body = bytes::Bytes::copy_from_slice(data);
    let mut demuxer = Demuxer::new();
    let mut segmenter = Segmenter::new(SegmenterConfig::DEFAULT);
    // Feed the same body as a sequence header first and as a frame second, so that a valid
    // configuration is in place when the frame parser runs.
    for timestamp_ms in [0u32, 40] {
        for result in [
            demuxer.handle_video(timestamp_ms, &body),
            demuxer.handle_audio(timestamp_ms, &body),
        ] {
            match result {
                Ok(Demuxed::Config(config)) => {
                    let _ = config.codec_string();
                    let _ = cmaf::init_segment(&config);
                    let _ = segmenter.handle_config(config);
                }
                Ok(Demuxed::Sample { track, sample }) => {
                    let _ = segmenter.handle_sample(track, sample, 0);
                }
                Ok(Demuxed::Nothing) | Err(_) => {}
            }
        }
    }
    segmenter.handle_end();
    while let Some(event) = segmenter.poll_event() {
        if let Event::PartReady { bytes, .. } = event {
            let _ = cmaf::inspect::parse_fragments(&bytes);
        }
    }
    let _ = codec::parse_avcc(&body);
    let _ = codec::parse_hvcc(&body);
    let _ = codec::parse_avc_sps(data);
    let _ = codec::parse_hevc_sps(data);
    let _ = codec::parse_audio_specific_config(&body);
}

/// A fuzzing entry point for whole files: reads `data` as an FLV file and plays its tags
/// through the demuxer and a [`StreamHome`] with one publisher (which drives the segmenter and
/// the index conversions), then ends the stream. It must never panic, whatever the input.
pub fn fuzz_flv_file(data: &[u8]) {
    let Ok(reader) = flv::FileReader::new(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut demuxer = Demuxer::new();
    let mut home = StreamHome::new(HomeConfig {
        segmenter: SegmenterConfig::DEFAULT,
        ll_hls: true,
        failover_ms: 1000,
        publishers_max: home::PUBLISHERS_MAX_DEFAULT,
        stall_check_ms: home::STALL_CHECK_MS_DEFAULT,
        transcode_video: true,
        transcode_audio: AudioTranscode::ALL,
        transcode_end_wait_ms: home::TRANSCODE_END_WAIT_MS_DEFAULT,
    });
    let publisher = 0u8;
    let _ = home.handle_publish(0, 0, publisher, Role::Primary, std::sync::Arc::from("fuzz"));
    let mut index = MediaIndex::new(IndexLimits {
        window_ms: 10_000,
        stream_max_bytes: 1 << 20,
        inits_kept: 2,
        streams_max: 1,
        ended_keep_ms: 60_000,
    });
    let stream: std::sync::Arc<str> = std::sync::Arc::from("fuzz");
    let mut pump = |home: &mut StreamHome<u8>| {
        while let Some(event) = home.poll_event() {
            if let HomeEvent::Index(event) = event {
                index.apply(&stream, event, 0);
            }
        }
    };
    pump(&mut home);
    for tag in reader {
        let demuxed = match tag.kind {
            flv::TagKind::Video => demuxer.handle_video(tag.timestamp_ms, &tag.body),
            flv::TagKind::Audio => demuxer.handle_audio(tag.timestamp_ms, &tag.body),
            flv::TagKind::Script | flv::TagKind::Other(_) => continue,
        };
        let now_ms = u64::from(tag.timestamp_ms);
        match demuxed {
            Ok(Demuxed::Config(config)) => home.handle_config(publisher, config),
            Ok(Demuxed::Sample { track, sample }) => {
                home.handle_sample(now_ms, publisher, track, sample, now_ms)
            }
            Ok(Demuxed::Nothing) | Err(_) => {}
        }
        pump(&mut home);
    }
    home.handle_unpublish(0, publisher);
    pump(&mut home);
}
