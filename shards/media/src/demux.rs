//! [`Demuxer`]: FLV tag bodies in, codec configurations and [`Sample`]s out.

use bytes::Bytes;

use crate::codec::{
    parse_audio_specific_config, parse_avcc, parse_hvcc, scan_sample, TrackConfig, VideoCodec,
    VIDEO_TIMESCALE,
};
use crate::flv::{self, AudioPacket, VideoPacket};
use crate::sample::{AudioClock, Sample, TimestampUnwrapper};
use crate::{MediaError, TrackKind};

/// Turns the audio and video messages of one RTMP publish into codec configurations and
/// samples for the [`Segmenter`](crate::Segmenter).
///
/// # Call order
///
/// For each RTMP audio or video message, in arrival order, call [`handle_audio`] or
/// [`handle_video`] with the message timestamp (absolute, as the chunk stream reassembled it)
/// and body, and pass what comes out to the segmenter: [`Demuxed::Config`] to
/// [`Segmenter::handle_config`], [`Demuxed::Sample`] to [`Segmenter::handle_sample`].
///
/// An `Err` concerns that one message; the demuxer is unchanged and the next message may be
/// handled. [`MediaError::UnsupportedCodec`] is the one the caller should end the publish for
/// (with the error's text in the RTMP `onStatus`), since every later message will say the same.
///
/// Timing: one [`TimestampUnwrapper`] serves both tracks. Video decode times are the
/// millisecond timestamps times 90; composition offsets are the FLV composition time times 90.
/// Audio decode times come from an [`AudioClock`], exact to the sample.
///
/// [`handle_audio`]: Self::handle_audio
/// [`handle_video`]: Self::handle_video
/// [`Segmenter::handle_config`]: crate::Segmenter::handle_config
/// [`Segmenter::handle_sample`]: crate::Segmenter::handle_sample
#[derive(Debug, Default)]
pub struct Demuxer {
    unwrapper: TimestampUnwrapper,
    video: Option<TrackConfig>,
    audio: Option<(TrackConfig, AudioClock)>,
}

/// What one message produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Demuxed {
    /// Nothing to pass on: a repeated identical sequence header, an empty frame, a command or
    /// metadata tag, an end of sequence.
    Nothing,
    /// A new or changed codec configuration.
    Config(TrackConfig),
    /// A sample.
    Sample {
        /// Its track.
        track: TrackKind,
        /// The sample, in the track's timescale.
        sample: Sample,
    },
}

impl Demuxer {
    /// A demuxer for a new publish.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current video configuration.
    pub fn video_config(&self) -> Option<&TrackConfig> {
        self.video.as_ref()
    }

    /// The current audio configuration.
    pub fn audio_config(&self) -> Option<&TrackConfig> {
        self.audio.as_ref().map(|(config, _)| config)
    }

    /// Handles the body of an RTMP video message.
    pub fn handle_video(&mut self, timestamp_ms: u32, body: &Bytes) -> Result<Demuxed, MediaError> {
        match flv::parse_video(body)?.packet {
            VideoPacket::SequenceStart { codec, record } => {
                if self.video.as_ref().is_some_and(|c| c.record() == &record) {
                    return Ok(Demuxed::Nothing);
                }
                let config = match codec {
                    VideoCodec::Avc => TrackConfig::Avc(parse_avcc(&record)?),
                    VideoCodec::Hevc => TrackConfig::Hevc(parse_hvcc(&record)?),
                };
                self.video = Some(config.clone());
                Ok(Demuxed::Config(config))
            }
            VideoPacket::CodedFrames {
                codec,
                composition_time_ms,
                data,
            } => {
                let config = self
                    .video
                    .as_ref()
                    .ok_or(MediaError::MissingSequenceHeader {
                        kind: TrackKind::Video,
                    })?;
                let Some((config_codec, length_size)) = config.video_codec() else {
                    unreachable!("the video slot only holds video configurations");
                };
                if config_codec != codec {
                    return Err(MediaError::CodecMismatch {
                        kind: TrackKind::Video,
                    });
                }
                if data.is_empty() {
                    return Ok(Demuxed::Nothing);
                }
                let keyframe = scan_sample(codec, &data, length_size)?;
                let ms = self.unwrapper.unwrap(timestamp_ms);
                let ticks_per_ms = VIDEO_TIMESCALE / 1000;
                Ok(Demuxed::Sample {
                    track: TrackKind::Video,
                    sample: Sample {
                        dts: ms * u64::from(ticks_per_ms),
                        composition_offset: composition_time_ms * ticks_per_ms as i32,
                        duration: 0,
                        keyframe,
                        data,
                    },
                })
            }
            VideoPacket::SequenceEnd { .. } | VideoPacket::Skipped(_) => Ok(Demuxed::Nothing),
        }
    }

    /// Handles the body of an RTMP audio message.
    pub fn handle_audio(&mut self, timestamp_ms: u32, body: &Bytes) -> Result<Demuxed, MediaError> {
        match flv::parse_audio(body)? {
            AudioPacket::SequenceStart { record } => {
                if self
                    .audio
                    .as_ref()
                    .is_some_and(|(c, _)| c.record() == &record)
                {
                    return Ok(Demuxed::Nothing);
                }
                let aac = parse_audio_specific_config(&record)?;
                let clock = AudioClock::new(aac.sample_rate, aac.frame_samples);
                let config = TrackConfig::Aac(aac);
                self.audio = Some((config.clone(), clock));
                Ok(Demuxed::Config(config))
            }
            AudioPacket::CodedFrames { data } => {
                let (_, clock) = self
                    .audio
                    .as_mut()
                    .ok_or(MediaError::MissingSequenceHeader {
                        kind: TrackKind::Audio,
                    })?;
                if data.is_empty() {
                    return Ok(Demuxed::Nothing);
                }
                let ms = self.unwrapper.unwrap(timestamp_ms);
                Ok(Demuxed::Sample {
                    track: TrackKind::Audio,
                    sample: Sample {
                        dts: clock.dts(ms),
                        composition_offset: 0,
                        duration: clock.frame_samples(),
                        keyframe: true,
                        data,
                    },
                })
            }
            AudioPacket::SequenceEnd | AudioPacket::Skipped(_) => Ok(Demuxed::Nothing),
        }
    }
}
