//! One stream's ladder: an access unit through the decoder, scalers and encoders, and each
//! rung's packets into its follower segmenter, whose output goes home.

use super::settings::TranscodeSettings;
use super::{Job, Queued, RungOut, Sink};
use crate::common::clock::wall_ms;
use crate::common::counters::bump;
use crate::media::msg::MediaMsg;
use bytes::Bytes;
use shardcast_engine::ShardId;
use shardcast_media::codec::{parse_avcc, parse_hvcc};
use shardcast_media::index::{index_event, PartTiming};
use shardcast_media::{Event, IndexEvent, Sample, TrackConfig, TrackKind};
use shardcast_native::{CodecId, Ladder, LadderConfig, Rational, RungPacket};
use std::sync::Arc;
use std::time::Instant;

/// Runs one access unit through the stream's ladder and packages what comes out.
pub(super) fn process(
    settings: &TranscodeSettings,
    index: usize,
    stream: &Arc<str>,
    job: &mut Job,
    queued: Queued,
    out: &mut Vec<RungPacket>,
    endpoint: &mut dyn Sink,
) {
    if job.failed {
        return;
    }
    let counters = &settings.counters[index];
    let began = Instant::now();
    if job.ladder.is_none() {
        let Some(config) = job.config.as_ref() else {
            return;
        };
        match new_ladder(settings, config, settings.watermark(stream)) {
            Ok(ladder) => job.ladder = Some(ladder),
            Err(error) => {
                fail(
                    index,
                    stream,
                    job,
                    &format!("cannot open the decoder: {error}"),
                );
                bump(&counters.failures, 1);
                return;
            }
        }
    }
    let sample = &queued.sample;
    let pts = (sample.dts as i64 + i64::from(sample.composition_offset)).max(0) as u64;
    if queued.segment_start {
        for rung in &mut job.rungs {
            rung.starts
                .push_back((pts, queued.msn, queued.discontinuity));
        }
    }
    job.media_first.get_or_insert(sample.dts);
    job.media_last = job.media_last.max(sample.dts);
    super::rtc::force_due(job, began);
    let ladder = job.ladder.as_mut().expect("opened above");
    if let Some((spec, every)) = settings.thumbnails {
        if job.thumbnail_at.is_none_or(|at| at.elapsed() >= every) {
            job.thumbnail_at = Some(Instant::now());
            ladder.want_thumbnail(spec);
        }
    }
    let before = ladder.stats();
    let result = ladder.push(
        &sample.data,
        pts as i64,
        sample.dts as i64,
        sample.keyframe,
        out,
    );
    let after = ladder.stats();
    bump(
        &counters.frames_decoded,
        after.frames_decoded - before.frames_decoded,
    );
    bump(
        &counters.frames_encoded,
        after.frames_encoded - before.frames_encoded,
    );
    job.frames_window += after.frames_decoded - before.frames_decoded;
    if let Err(error) = result {
        fail(index, stream, job, &format!("ladder error: {error}"));
        bump(&counters.failures, 1);
        return;
    }
    if let Some(jpeg) = ladder.take_thumbnail() {
        bump(&counters.thumbnails, 1);
        let event = IndexEvent::Thumbnail {
            jpeg: Bytes::from(jpeg),
            made_ms: wall_ms(),
        };
        let msg = MediaMsg::RungEvent {
            stream: stream.clone(),
            epoch: job.epoch,
            event: Box::new(event),
        };
        endpoint.send(job.home, msg);
    }
    package(stream, job, out, queued.wall_ms, endpoint);
    bump(&counters.busy_us, began.elapsed().as_micros() as u64);
}

fn new_ladder(
    settings: &TranscodeSettings,
    config: &TrackConfig,
    watermark: Option<&str>,
) -> Result<Ladder, String> {
    let codec = match config {
        TrackConfig::Avc(_) => CodecId::H264,
        TrackConfig::Hevc(_) => CodecId::Hevc,
        TrackConfig::Aac(_) | TrackConfig::Opus(_) => {
            return Err("not a video configuration".into())
        }
    };
    let frame_rate = config
        .video()
        .and_then(|v| v.frame_rate)
        .map_or(Rational::new(30, 1), |f| {
            Rational::new(f.numerator as i32, f.denominator as i32)
        });
    Ladder::new(
        codec,
        config.record(),
        LadderConfig {
            codec: settings.codec,
            encoder: settings.encoder.clone(),
            preset: settings.preset.clone(),
            rungs: settings.ladder.clone(),
            frame_rate,
            threads: settings.codec_threads,
            filter: watermark.map(str::to_owned),
        },
    )
    .map_err(|e| e.to_string())
}

/// Drains the ladder at the end of a stream or configuration.
pub(super) fn finish_ladder(
    stream: &Arc<str>,
    job: &mut Job,
    out: &mut Vec<RungPacket>,
    endpoint: &mut dyn Sink,
) {
    if let Some(mut ladder) = job.ladder.take() {
        if !job.failed {
            if let Err(error) = ladder.finish(out) {
                log::warn!("stream {stream}: draining the ladder: {error}");
            }
        }
        package(stream, job, out, wall_ms(), endpoint);
    }
}

fn fail(index: usize, stream: &Arc<str>, job: &mut Job, why: &str) {
    log::error!("transcode {index}: stream {stream}: {why}; the rungs stop, the source goes on");
    job.failed = true;
    job.queue.clear();
}

/// Feeds each rung's new packets to its segmenter and sends the results home.
fn package(
    stream: &Arc<str>,
    job: &mut Job,
    out: &mut Vec<RungPacket>,
    wall_ms: u64,
    endpoint: &mut dyn Sink,
) {
    let ladder = job.ladder.as_ref();
    let settings_codec = ladder.map_or(CodecId::H264, Ladder::codec);
    let rtc_spec = ladder.and_then(super::rtc::rtc_spec);
    for packet in out.drain(..) {
        let rung = &mut job.rungs[packet.rung];
        if rung.generation != Some(packet.generation) {
            let Some(active) = ladder.and_then(|l| {
                l.rungs()
                    .find(|r| r.spec == packet.rung && r.generation == packet.generation)
            }) else {
                continue;
            };
            let record = Bytes::copy_from_slice(&active.record);
            let parsed = match settings_codec {
                CodecId::Hevc => parse_hvcc(&record).map(TrackConfig::Hevc),
                _ => parse_avcc(&record).map(TrackConfig::Avc),
            };
            let config = match parsed {
                Ok(config) => config,
                Err(error) => {
                    log::warn!(
                        "stream {stream}: rung {}: bad encoder header: {error}",
                        rung.name
                    );
                    continue;
                }
            };
            rung.width = active.width;
            rung.height = active.height;
            if rung.segmenter.handle_config(config).is_err() {
                continue;
            }
            rung.generation = Some(packet.generation);
        }
        let dts = packet.dts.max(0) as u64;
        let sample = Sample {
            dts,
            composition_offset: i32::try_from(packet.pts - packet.dts).unwrap_or(0),
            duration: 0,
            keyframe: packet.keyframe,
            data: Bytes::from(packet.data),
        };
        let to = (stream, job.home, job.epoch);
        job.rtc.forward(
            (&job.rungs, rtc_spec),
            (packet.rung, packet.generation),
            &sample,
            |rung, media| super::rtc::send_home(endpoint, to, rung, media),
        );
        let rung = &mut job.rungs[packet.rung];
        let pts = packet.pts.max(0) as u64;
        while rung
            .starts
            .front()
            .is_some_and(|&(start, _, _)| start < pts)
        {
            rung.starts.pop_front();
        }
        if packet.keyframe {
            if let Some(&(start, msn, discontinuity)) = rung.starts.front() {
                if start == pts {
                    rung.segmenter.start_segment(msn, discontinuity);
                    rung.starts.pop_front();
                }
            }
        }
        if let Err(error) = rung
            .segmenter
            .handle_sample(TrackKind::Video, sample, wall_ms)
        {
            log::debug!(
                "stream {stream}: rung {}: sample refused: {error}",
                rung.name
            );
        }
        rung.frames += 1;
        drain_rung(stream, job.home, job.epoch, rung, endpoint);
    }
}

/// Sends a rung segmenter's events to the stream's home.
pub(super) fn drain_rung(
    stream: &Arc<str>,
    home: ShardId,
    epoch: u64,
    rung: &mut RungOut,
    endpoint: &mut dyn Sink,
) {
    while let Some(event) = rung.segmenter.poll_event() {
        let config = match &event {
            Event::InitReady { track, .. } => rung.segmenter.track_config(*track),
            _ => None,
        };
        // Timed for the source only: a rung's latency is the transcode's.
        let timing = PartTiming::Untimed;
        let Some(index_event) = index_event(event, rung.name.clone(), config, timing) else {
            continue;
        };
        endpoint.send(
            home,
            MediaMsg::RungEvent {
                stream: stream.clone(),
                epoch,
                event: Box::new(index_event),
            },
        );
    }
}
