//! A stream's audio in the other codec, encoded once on its transcode thread:
//! - an RTMP source's AAC as Opus: packaged as the `audio-opus` rendition (when
//!   `transcode.opus_kbps` is set) and each packet sent to the stream's home for its WebRTC
//!   viewers (when WebRTC is on), which forwards it to the shards with sessions of the stream;
//! - a WHIP source's Opus as AAC: packaged as the `audio-aac` rendition (`transcode.aac_kbps`),
//!   for players whose HLS has no Opus. Its WebRTC viewers get the source's Opus as it came.
//!
//! Either rendition follows the source's audio segments.

use super::ladder::drain_rung;
use super::worker::Worker;
use super::{Queued, RungOut, Sink};
use crate::common::clock::wall_ms;
use crate::media::msg::{MediaMsg, RtcMedia};
use bytes::Bytes;
use shardcast_engine::ShardId;
use shardcast_media::codec::{parse_audio_specific_config, parse_opus_head, OPUS_SAMPLE_RATE};
use shardcast_media::{Sample, Segmenter, TrackConfig, TrackKind};
use shardcast_native::{AudioInput, AudioPacket, AudioTranscoder, CodecId};
use std::collections::VecDeque;
use std::sync::Arc;

/// The name of the Opus rendition (of an AAC source).
pub const OPUS_RENDITION: &str = "audio-opus";
/// The name of the AAC rendition (of an Opus source).
pub const AAC_RENDITION: &str = "audio-aac";

/// A stream's audio in the other codec, packaged as a follower of the source's audio
/// segments and/or forwarded for WebRTC.
pub(super) struct AudioOut {
    /// The source's configuration.
    source: TrackConfig,
    pipeline: Option<AudioTranscoder>,
    pub rung: RungOut,
    packets: Vec<AudioPacket>,
    /// Whether the packets are packaged as a rendition.
    packaged: bool,
    /// Whether each packet goes to the home too, for WebRTC (Opus only).
    forwarded: bool,
    failed: bool,
    /// A segment has been started (packets before the first are dropped).
    started: bool,
}

/// What a source's audio is made into: (output codec, rendition, bit rate, packaged,
/// forwarded), or None when nothing is wanted of it.
fn plan(
    settings: &super::settings::TranscodeSettings,
    source: &TrackConfig,
) -> Option<(CodecId, &'static str, u64, bool, bool)> {
    match source {
        TrackConfig::Aac(_) => {
            let packaged = settings.opus_bps > 0;
            let forwarded = settings.webrtc_opus_bps > 0;
            let bps = if packaged {
                settings.opus_bps
            } else {
                settings.webrtc_opus_bps
            };
            (packaged || forwarded).then_some((
                CodecId::Opus,
                OPUS_RENDITION,
                bps,
                packaged,
                forwarded,
            ))
        }
        TrackConfig::Opus(_) if settings.aac_bps > 0 => {
            Some((CodecId::Aac, AAC_RENDITION, settings.aac_bps, true, false))
        }
        _ => None,
    }
}

impl Worker {
    /// The source's audio configuration: its rendition in the other codec (again when it
    /// changes).
    pub(super) fn start_audio(
        &mut self,
        home: ShardId,
        stream: Arc<str>,
        epoch: u64,
        config: TrackConfig,
        endpoint: &mut dyn Sink,
    ) {
        let Some((_, name, bps, packaged, forwarded)) = plan(&self.settings, &config) else {
            return;
        };
        if !self.jobs.contains_key(&stream) {
            self.new_job(home, stream.clone(), epoch, None);
        }
        let job = self.jobs.get_mut(&stream).expect("made above");
        if let Some(audio) = job.audio.as_mut() {
            if audio.source == config {
                return;
            }
            finish_audio(&stream, job.home, job.epoch, audio, endpoint);
            if *audio.rung.name == *name {
                audio.source = config;
                audio.pipeline = None;
                audio.failed = false;
                audio.rung.generation = None;
                return;
            }
            // The source changed codec (a WHIP publisher took over from an RTMP one): the
            // other rendition from here on.
            audio.rung.segmenter.handle_end();
            drain_rung(&stream, job.home, job.epoch, &mut audio.rung, endpoint);
        }
        let mut segmenter = Segmenter::new(self.settings.segmenter);
        segmenter.set_follower();
        job.audio = Some(AudioOut {
            source: config,
            pipeline: None,
            rung: RungOut {
                name: Arc::from(name),
                segmenter,
                generation: None,
                starts: VecDeque::new(),
                width: 0,
                height: 0,
                bit_rate_kbps: (bps / 1000) as u32,
                frames: 0,
            },
            packets: Vec::new(),
            packaged,
            forwarded,
            failed: false,
            started: false,
        });
    }

    /// A source audio sample: encoded into the other codec at once (audio is cheap; it is
    /// not queued or skipped).
    pub(super) fn audio(
        &mut self,
        stream: &Arc<str>,
        epoch: u64,
        queued: Queued,
        endpoint: &mut dyn Sink,
    ) {
        let settings = self.settings.clone();
        let Some(job) = self.jobs.get_mut(stream) else {
            return;
        };
        let (home, job_epoch) = (job.home, job.epoch);
        let Some(audio) = job.audio.as_mut().filter(|o| !o.failed) else {
            return;
        };
        if job_epoch != epoch {
            return;
        }
        let Some((rate, _)) = audio.source.audio_format() else {
            return;
        };
        if audio.pipeline.is_none() {
            if let Err(error) = open_pipeline(&settings, audio) {
                log::error!("stream {stream}: no {} rendition: {error}", audio.rung.name);
                audio.failed = true;
                return;
            }
        }
        let sample = &queued.sample;
        let pts = sample.dts as i64 + i64::from(sample.composition_offset);
        if queued.segment_start {
            let pts48 = (pts.max(0) as u64) * u64::from(OPUS_SAMPLE_RATE) / u64::from(rate.max(1));
            audio
                .rung
                .starts
                .push_back((pts48, queued.msn, queued.discontinuity));
        }
        let pipeline = audio.pipeline.as_mut().expect("opened above");
        if let Err(error) = pipeline.push(&sample.data, pts, &mut audio.packets) {
            log::error!(
                "stream {stream}: {} rendition stopped: {error}",
                audio.rung.name
            );
            audio.failed = true;
            return;
        }
        package_audio(stream, home, epoch, audio, queued.wall_ms, endpoint);
    }
}

/// How to decode audio configured as `config`: AAC with its `AudioSpecificConfig`, or Opus
/// with an `OpusHead` made from its fields.
pub(super) fn decoder_config(config: &TrackConfig) -> (CodecId, std::borrow::Cow<'_, [u8]>) {
    match config {
        TrackConfig::Opus(opus) => (CodecId::Opus, opus.opus_head().into()),
        other => (CodecId::Aac, other.record()[..].into()),
    }
}

/// Opens the decoder and encoder of `audio`, and gives its segmenter the output's header.
fn open_pipeline(
    settings: &super::settings::TranscodeSettings,
    audio: &mut AudioOut,
) -> Result<(), String> {
    let (output, _, bps, _, _) = plan(settings, &audio.source).ok_or("nothing to make")?;
    let (rate, channels) = audio.source.audio_format().ok_or("not audio")?;
    let (codec, extradata) = decoder_config(&audio.source);
    let input = AudioInput {
        codec,
        config: &extradata,
        sample_rate: rate,
    };
    let pipeline = AudioTranscoder::new(input, output, channels.clamp(1, 2), bps)
        .map_err(|e| e.to_string())?;
    let made = Bytes::copy_from_slice(pipeline.output_config());
    let config = match output {
        CodecId::Opus => {
            TrackConfig::Opus(parse_opus_head(&made).map_err(|e| format!("Opus header: {e}"))?)
        }
        _ => TrackConfig::Aac(
            parse_audio_specific_config(&made).map_err(|e| format!("AAC header: {e}"))?,
        ),
    };
    if audio.packaged {
        (audio.rung.segmenter)
            .handle_config(config)
            .map_err(|e| format!("the segmenter refused the header: {e}"))?;
    }
    audio.rung.generation = Some(0);
    audio.pipeline = Some(pipeline);
    Ok(())
}

/// Feeds the packets made so far to the rendition's segmenter (and Opus to the home, for
/// WebRTC): a segment starts at the first packet at or after each source audio segment start.
fn package_audio(
    stream: &Arc<str>,
    home: ShardId,
    epoch: u64,
    audio: &mut AudioOut,
    wall_ms: u64,
    endpoint: &mut dyn Sink,
) {
    for packet in audio.packets.drain(..) {
        let pts = packet.pts.max(0) as u64;
        let sample = Sample {
            dts: pts,
            composition_offset: 0,
            duration: packet.duration,
            keyframe: true,
            data: Bytes::from(packet.data),
        };
        if audio.forwarded {
            let msg = MediaMsg::RtcTranscoded {
                stream: stream.clone(),
                epoch,
                rung: None,
                media: Box::new(RtcMedia::Opus(sample.clone())),
            };
            endpoint.send(home, msg);
        }
        if !audio.packaged {
            continue;
        }
        let mut start = None;
        while let Some(&(at, msn, discontinuity)) = audio.rung.starts.front() {
            if at > pts {
                break;
            }
            start = Some((msn, discontinuity));
            audio.rung.starts.pop_front();
        }
        match start {
            Some((msn, discontinuity)) => {
                audio.started = true;
                audio.rung.segmenter.start_segment(msn, discontinuity);
            }
            // Before the source's first audio segment (the encoders' priming): dropped, so
            // the rendition starts where the source's audio does.
            None if !audio.started => continue,
            None => {}
        }
        if let Err(error) = audio
            .rung
            .segmenter
            .handle_sample(TrackKind::Audio, sample, wall_ms)
        {
            log::debug!(
                "stream {stream}: {} packet refused: {error}",
                audio.rung.name
            );
        }
        audio.rung.frames += 1;
        drain_rung(stream, home, epoch, &mut audio.rung, endpoint);
    }
}

/// Drains the pipeline (end of stream or of a source configuration).
pub(super) fn finish_audio(
    stream: &Arc<str>,
    home: ShardId,
    epoch: u64,
    audio: &mut AudioOut,
    endpoint: &mut dyn Sink,
) {
    if let Some(mut pipeline) = audio.pipeline.take() {
        if !audio.failed {
            if let Err(error) = pipeline.finish(&mut audio.packets) {
                log::warn!(
                    "stream {stream}: draining the {} encoder: {error}",
                    audio.rung.name
                );
            }
        }
        package_audio(stream, home, epoch, audio, wall_ms(), endpoint);
    }
}
