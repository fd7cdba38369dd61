//! The Opus audio of a stream: its AAC decoded and encoded again once, packaged as a
//! follower of the source's audio segments (the `audio-opus` rendition, when
//! `transcode.opus_kbps` is set), and each packet sent to the stream's home for its WebRTC
//! viewers (when WebRTC is on), which forwards it to the shards with sessions of the stream.

use super::ladder::drain_rung;
use super::worker::Worker;
use super::{Queued, RungOut, Sink};
use crate::common::clock::wall_ms;
use crate::media::msg::MediaMsg;
use bytes::Bytes;
use shardcast_engine::ShardId;
use shardcast_media::codec::{parse_opus_head, OPUS_SAMPLE_RATE};
use shardcast_media::{Sample, Segmenter, TrackConfig, TrackKind};
use shardcast_native::{AacToOpus, OpusPacket};
use std::collections::VecDeque;
use std::sync::Arc;

/// The Opus rendition of a stream: its AAC decoded and encoded again, packaged as a follower
/// of the source's audio segments.
pub(super) struct OpusOut {
    aac: TrackConfig,
    pipeline: Option<AacToOpus>,
    pub rung: RungOut,
    packets: Vec<OpusPacket>,
    /// Whether the packets are packaged as the `audio-opus` rendition.
    packaged: bool,
    /// Whether each packet goes to the home too, for WebRTC.
    forwarded: bool,
    failed: bool,
    /// A segment has been started (packets before the first are dropped).
    started: bool,
}

/// The name of the Opus rendition.
pub const OPUS_RENDITION: &str = "audio-opus";

impl Worker {
    /// The source's audio configuration: an Opus rendition (again when it changes).
    pub(super) fn start_audio(
        &mut self,
        home: ShardId,
        stream: Arc<str>,
        epoch: u64,
        config: TrackConfig,
        endpoint: &mut dyn Sink,
    ) {
        let settings = &self.settings;
        if (settings.opus_bps == 0 && settings.webrtc_opus_bps == 0) || config.audio().is_none() {
            return;
        }
        if !self.jobs.contains_key(&stream) {
            self.new_job(home, stream.clone(), epoch, None);
        }
        let job = self.jobs.get_mut(&stream).expect("made above");
        if let Some(opus) = job.opus.as_mut() {
            if opus.aac == config {
                return;
            }
            finish_opus(&stream, job.home, job.epoch, opus, endpoint);
            opus.aac = config;
            opus.pipeline = None;
            opus.failed = false;
            opus.rung.generation = None;
            return;
        }
        let mut segmenter = Segmenter::new(self.settings.segmenter);
        segmenter.set_follower();
        job.opus = Some(OpusOut {
            aac: config,
            pipeline: None,
            rung: RungOut {
                name: Arc::from(OPUS_RENDITION),
                segmenter,
                generation: None,
                starts: VecDeque::new(),
                width: 0,
                height: 0,
                bit_rate_kbps: (self.settings.opus_bps / 1000) as u32,
                frames: 0,
            },
            packets: Vec::new(),
            packaged: self.settings.opus_bps > 0,
            forwarded: self.settings.webrtc_opus_bps > 0,
            failed: false,
            started: false,
        });
    }

    /// A source AAC sample: encoded into the Opus rendition at once (audio is cheap; it is not
    /// queued or skipped).
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
        let Some(opus) = job.opus.as_mut().filter(|o| !o.failed) else {
            return;
        };
        if job_epoch != epoch {
            return;
        }
        let Some(aac) = opus.aac.audio() else {
            return;
        };
        let rate = aac.sample_rate;
        if opus.pipeline.is_none() {
            let made = AacToOpus::new(
                opus.aac.record(),
                rate,
                aac.channel_config.clamp(1, 2),
                match opus.packaged {
                    true => settings.opus_bps,
                    false => settings.webrtc_opus_bps,
                },
            )
            .map_err(|e| e.to_string())
            .and_then(|pipeline| {
                let config = parse_opus_head(pipeline.opus_head())
                    .map_err(|e| format!("Opus header: {e}"))?;
                Ok((pipeline, config))
            });
            match made {
                Ok((pipeline, config)) => {
                    let refused = opus.packaged
                        && (opus.rung.segmenter)
                            .handle_config(TrackConfig::Opus(config))
                            .is_err();
                    if refused {
                        opus.failed = true;
                        return;
                    }
                    opus.rung.generation = Some(0);
                    opus.pipeline = Some(pipeline);
                }
                Err(error) => {
                    log::error!("stream {stream}: no Opus rendition: {error}");
                    opus.failed = true;
                    return;
                }
            }
        }
        let sample = &queued.sample;
        let pts = sample.dts as i64 + i64::from(sample.composition_offset);
        if queued.segment_start {
            let pts48 = (pts.max(0) as u64) * u64::from(OPUS_SAMPLE_RATE) / u64::from(rate.max(1));
            opus.rung
                .starts
                .push_back((pts48, queued.msn, queued.discontinuity));
        }
        let pipeline = opus.pipeline.as_mut().expect("made above");
        if let Err(error) = pipeline.push(&sample.data, pts, &mut opus.packets) {
            log::error!("stream {stream}: Opus rendition stopped: {error}");
            opus.failed = true;
            return;
        }
        package_opus(stream, home, epoch, opus, queued.wall_ms, endpoint);
    }
}
/// Feeds the Opus packets made so far to the Opus rendition's segmenter: a segment starts at
/// the first packet at or after each source audio segment start.
fn package_opus(
    stream: &Arc<str>,
    home: ShardId,
    epoch: u64,
    opus: &mut OpusOut,
    wall_ms: u64,
    endpoint: &mut dyn Sink,
) {
    for packet in opus.packets.drain(..) {
        let pts = packet.pts.max(0) as u64;
        let sample = Sample {
            dts: pts,
            composition_offset: 0,
            duration: packet.duration,
            keyframe: true,
            data: Bytes::from(packet.data),
        };
        if opus.forwarded {
            let msg = MediaMsg::RtcOpus {
                stream: stream.clone(),
                epoch,
                sample: Box::new(sample.clone()),
            };
            endpoint.send(home, msg);
        }
        if !opus.packaged {
            continue;
        }
        let mut start = None;
        while let Some(&(at, msn, discontinuity)) = opus.rung.starts.front() {
            if at > pts {
                break;
            }
            start = Some((msn, discontinuity));
            opus.rung.starts.pop_front();
        }
        match start {
            Some((msn, discontinuity)) => {
                opus.started = true;
                opus.rung.segmenter.start_segment(msn, discontinuity);
            }
            // Before the source's first audio segment (the encoder's priming): dropped, so
            // the rendition starts where the source's audio does.
            None if !opus.started => continue,
            None => {}
        }
        if let Err(error) = opus
            .rung
            .segmenter
            .handle_sample(TrackKind::Audio, sample, wall_ms)
        {
            log::debug!("stream {stream}: Opus packet refused: {error}");
        }
        opus.rung.frames += 1;
        drain_rung(stream, home, epoch, &mut opus.rung, endpoint);
    }
}

/// Drains the Opus pipeline (end of stream or of an AAC configuration).
pub(super) fn finish_opus(
    stream: &Arc<str>,
    home: ShardId,
    epoch: u64,
    opus: &mut OpusOut,
    endpoint: &mut dyn Sink,
) {
    if let Some(mut pipeline) = opus.pipeline.take() {
        if !opus.failed {
            if let Err(error) = pipeline.finish(&mut opus.packets) {
                log::warn!("stream {stream}: draining the Opus encoder: {error}");
            }
        }
        package_opus(stream, home, epoch, opus, wall_ms(), endpoint);
    }
}
