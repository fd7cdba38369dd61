//! A WHIP publisher's VP8 made into H.264 on a transcode thread, so that the stream is an
//! ordinary H.264 one (LL-HLS/DASH, the ladder, WHEP, FLV, thumbnails, recordings).
//!
//! The publisher's shard sends each VP8 frame here ([`ConvertOp::Frame`]) and its Opus to the
//! stream's home as usual. A [`Ladder`] of one rung at the picture's own size decodes the VP8
//! and encodes H.264 with the ladder's encoder and preset (libx264 `zerolatency`: no B-frames,
//! one picture in, one out), an IDR exactly where the VP8 had a keyframe. What comes out goes
//! to the home as the publisher's video configuration and samples, at the VP8 frames' times,
//! so sound and picture stay as in sync as they came.
//!
//! A keyframe of another size (a browser lowers its resolution under congestion) starts a new
//! encoder, hence a new configuration (at most 4 in 10 s: `ENCODERS_PER_WINDOW`). Frames
//! waiting longer than `transcode.queue_max_ms` are dropped up to the next keyframe (the
//! publisher is asked for keyframes every segment target), so a thread that falls behind
//! catches up instead of adding delay.

use super::msg::{ConvertMsg, ConvertOp};
use super::worker::Worker;
use super::Sink;
use crate::common::clock::wall_ms;
use crate::common::counters::bump;
use crate::media::msg::{MediaMsg, PublisherId, SampleMsg};
use bytes::Bytes;
use shardcast_engine::ShardId;
use shardcast_media::codec::parse_avcc;
use shardcast_media::{Sample, TrackConfig, TrackKind};
use shardcast_native::{CodecId, Error, Ladder, LadderConfig, Rational, RungPacket, RungSpec};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The H.264 bit rate per pixel of a picture at 30 frames a second: 720p gets 2.8 Mbit/s,
/// 360p 0.7 Mbit/s (a browser sends 720p VP8 at 1.5–2.5 Mbit/s).
const BITS_PER_PIXEL: f64 = 0.1;
/// The H.264 bit rate at most, whatever the size.
const BIT_RATE_MAX: u64 = 8_000_000;
/// New encoders (a keyframe of another size) of one publisher: at most `ENCODERS_PER_WINDOW`
/// in `ENCODER_WINDOW` (a browser settling its size at the start needs a few); frames that
/// would need one more are dropped up to a keyframe once the window allows it.
const ENCODERS_PER_WINDOW: usize = 4;
const ENCODER_WINDOW: Duration = Duration::from_secs(10);

/// One publisher's conversion.
pub(super) struct Converter {
    /// The publisher's shard.
    shard: ShardId,
    /// The decoder and encoder for the current picture size.
    ladder: Option<Ladder>,
    size: (u32, u32),
    /// The encoder generation whose configuration went home.
    announced: Option<u32>,
    /// When the last encoders were opened (at most `ENCODERS_PER_WINDOW`).
    opened: VecDeque<Instant>,
    /// Dropping frames until the next keyframe (behind real time, or the encoder failed).
    skipping: bool,
    out: Vec<RungPacket>,
}

impl Worker {
    /// A conversion message from a WHIP publisher's shard.
    pub(super) fn convert(&mut self, from: ShardId, msg: ConvertMsg, endpoint: &mut dyn Sink) {
        let ConvertMsg {
            stream,
            publisher,
            op,
        } = msg;
        let key = (stream, publisher);
        let (sample, size, arrived_ms) = match op {
            ConvertOp::End => {
                if let Some(mut converter) = self.converters.remove(&key) {
                    converter.finish(&key, endpoint);
                    log::info!(
                        "transcode {}: stream {}: VP8 publisher ended",
                        self.index,
                        key.0
                    );
                    self.update_gauges();
                }
                return;
            }
            ConvertOp::Frame {
                sample,
                size,
                wall_ms,
            } => (sample, size, wall_ms),
        };
        if !self.converters.contains_key(&key) {
            if size.is_none() {
                return bump(&self.counters().vp8_dropped, 1);
            }
            log::info!(
                "transcode {}: stream {}: making VP8 into H.264",
                self.index,
                key.0
            );
            self.converters.insert(
                key.clone(),
                Converter {
                    shard: from,
                    ladder: None,
                    size: (0, 0),
                    announced: None,
                    opened: VecDeque::new(),
                    skipping: true,
                    out: Vec::new(),
                },
            );
        }
        let began = Instant::now();
        let converter = self.converters.get_mut(&key).expect("made above");
        let sizes_changed = size.is_some_and(|s| s != converter.size);
        let result = converter.frame(&self.settings, (sample, size, arrived_ms), &key, endpoint);
        let counters = &self.settings.counters[self.index];
        bump(&counters.busy_us, began.elapsed().as_micros() as u64);
        match result {
            Ok(true) => bump(&counters.vp8_frames, 1),
            Ok(false) => bump(&counters.vp8_dropped, 1),
            Err(error) => {
                bump(&counters.vp8_dropped, 1);
                bump(&counters.failures, 1);
                log::warn!(
                    "transcode {}: stream {}: VP8 to H.264: {error}; waiting for a keyframe",
                    self.index,
                    key.0
                );
                converter.ladder = None;
                converter.size = (0, 0);
                converter.skipping = true;
            }
        }
        if sizes_changed {
            self.update_gauges();
        }
    }

    /// The pixel rate (at a nominal 30 fps) of the pictures this worker converts.
    pub(super) fn convert_load(&self) -> u64 {
        (self.converters.values())
            .map(|c| u64::from(c.size.0) * u64::from(c.size.1) * 30)
            .sum()
    }
}

/// The H.264 encoding of one picture size, with the worker's encoder when it makes H.264 from
/// pictures in memory (libx264, NVENC, QSV), else libx264.
fn ladder_for(
    settings: &super::settings::TranscodeSettings,
    (width, height): (u32, u32),
) -> Result<Ladder, Error> {
    let encoder = match settings.codec {
        CodecId::H264 if shardcast_native::system_memory_format(&settings.encoder).is_some() => {
            settings.encoder.clone()
        }
        _ => "libx264".to_string(),
    };
    let pixels = f64::from(width) * f64::from(height) * 30.0;
    let bit_rate_bps = ((pixels * BITS_PER_PIXEL) as u64).clamp(100_000, BIT_RATE_MAX);
    let config = LadderConfig {
        codec: CodecId::H264,
        encoder,
        preset: settings.preset.clone(),
        rungs: vec![RungSpec {
            name: "source".into(),
            width,
            height,
            bit_rate_bps,
        }],
        frame_rate: Rational::new(30, 1),
        threads: settings.codec_threads,
        filter: None,
    };
    Ladder::new(CodecId::Vp8, &[], config)
}

impl Converter {
    /// One VP8 frame: Ok(true) when it went to the decoder, Ok(false) when it was dropped
    /// (waiting for a keyframe, or not one and older than `transcode.queue_max_ms`).
    fn frame(
        &mut self,
        settings: &super::settings::TranscodeSettings,
        (sample, size, arrived_ms): (Sample, Option<(u32, u32)>, u64),
        key: &(Arc<str>, (u32, u32)),
        endpoint: &mut dyn Sink,
    ) -> Result<bool, Error> {
        if let Some(size) = size {
            self.skipping = false;
            if size != self.size || self.ladder.is_none() {
                // A new encoder costs milliseconds: a publisher that changes its size at
                // every keyframe is held to `ENCODERS_PER_WINDOW` per `ENCODER_WINDOW`.
                let now = Instant::now();
                let full = self.opened.len() >= ENCODERS_PER_WINDOW;
                if full && (self.opened.front()).is_some_and(|&at| now - at < ENCODER_WINDOW) {
                    self.skipping = true;
                    return Ok(false);
                }
                if full {
                    self.opened.pop_front();
                }
                self.opened.push_back(now);
                self.finish(key, endpoint);
                self.ladder = Some(ladder_for(settings, size)?);
                self.size = size;
                self.announced = None;
            }
        } else if wall_ms().saturating_sub(arrived_ms) > settings.queue_max_ms {
            self.skipping = true;
        }
        let Some(ladder) = self.ladder.as_mut().filter(|_| !self.skipping) else {
            return Ok(false);
        };
        let pts = sample.dts as i64;
        ladder.push(&sample.data, pts, pts, sample.keyframe, &mut self.out)?;
        self.send(key, arrived_ms, endpoint)?;
        Ok(true)
    }

    /// What the encoder holds goes home; the encoder is closed.
    fn finish(&mut self, key: &(Arc<str>, (u32, u32)), endpoint: &mut dyn Sink) {
        let Some(ladder) = self.ladder.as_mut() else {
            return;
        };
        let finished = ladder.finish(&mut self.out);
        if let Err(error) = finished.and_then(|()| self.send(key, wall_ms(), endpoint)) {
            log::warn!("stream {}: VP8 to H.264: the last pictures: {error}", key.0);
        }
        self.ladder = None;
    }

    /// Sends the encoded packets home: the configuration first whenever the encoder is new.
    fn send(
        &mut self,
        (stream, (key, serial)): &(Arc<str>, (u32, u32)),
        arrived_ms: u64,
        endpoint: &mut dyn Sink,
    ) -> Result<(), Error> {
        let conn = PublisherId::Whip {
            key: *key,
            serial: *serial,
        };
        for packet in self.out.drain(..) {
            if self.announced != Some(packet.generation) {
                let ladder = self.ladder.as_ref().expect("packets come from a ladder");
                let rung = (ladder.rungs())
                    .find(|r| r.generation == packet.generation)
                    .ok_or(Error::BadHeader {
                        what: "the encoder of a packet is gone",
                    })?;
                let avc = parse_avcc(&Bytes::copy_from_slice(&rung.record)).map_err(|_| {
                    Error::BadHeader {
                        what: "the encoder's avcC cannot be read",
                    }
                })?;
                self.announced = Some(packet.generation);
                let config = Box::new(TrackConfig::Avc(avc));
                let msg = MediaMsg::Config {
                    stream: stream.clone(),
                    conn,
                    config,
                };
                endpoint.send(self.shard, MediaMsg::Converted(Box::new(msg)));
            }
            let sample = Sample {
                dts: packet.dts.max(0) as u64,
                composition_offset: (packet.pts - packet.dts) as i32,
                duration: 0,
                keyframe: packet.keyframe,
                data: Bytes::from(packet.data),
            };
            let msg = SampleMsg {
                stream: stream.clone(),
                conn,
                track: TrackKind::Video,
                sample,
                received_wall_ms: arrived_ms,
            };
            let msg = MediaMsg::Sample(Box::new(msg));
            endpoint.send(self.shard, MediaMsg::Converted(Box::new(msg)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::settings::tests::settings_for_tests;
    use std::sync::atomic::Ordering;

    /// What the worker sent back: video configurations' sizes, and samples' times and
    /// keyframe flags.
    #[derive(Default)]
    struct Shard {
        sizes: Vec<(u32, u32)>,
        samples: Vec<(u64, bool)>,
    }

    impl Sink for Shard {
        fn send(&mut self, _to: ShardId, msg: MediaMsg) {
            let MediaMsg::Converted(msg) = msg else {
                panic!("a conversion answers with Converted only");
            };
            match *msg {
                MediaMsg::Config { config, .. } => {
                    let video = config.video().expect("video");
                    self.sizes.push((video.width, video.height));
                }
                MediaMsg::Sample(s) => self.samples.push((s.sample.dts, s.sample.keyframe)),
                _ => panic!("a Config or a Sample"),
            }
        }
    }

    /// `frames` VP8 frames of ffmpeg's test picture at `size`, a keyframe every `gop`.
    fn vp8(size: &str, frames: u32, gop: u32) -> Vec<Vec<u8>> {
        let out = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc=size={size}:rate=30"))
            .args(["-frames:v", &frames.to_string(), "-c:v", "libvpx", "-g"])
            .args([
                &gop.to_string(),
                "-keyint_min",
                &gop.to_string(),
                "-f",
                "ivf",
                "-",
            ])
            .output()
            .expect("ffmpeg (scripts/setup.sh installs it)");
        assert!(out.status.success());
        let (data, mut at, mut frames) = (out.stdout, 32, Vec::new());
        while at + 12 <= data.len() {
            let n = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            frames.push(data[at + 12..at + 12 + n].to_vec());
            at += 12 + n;
        }
        frames
    }

    fn frame(worker: &mut Worker, shard: &mut Shard, dts: u64, data: &[u8]) {
        let size = crate::webrtc::whip::vp8_keyframe_size(data);
        let sample = Sample {
            dts,
            composition_offset: 0,
            duration: 0,
            keyframe: size.is_some(),
            data: Bytes::copy_from_slice(data),
        };
        let op = ConvertOp::Frame {
            sample,
            size,
            wall_ms: wall_ms(),
        };
        let msg = ConvertMsg {
            stream: Arc::from("s"),
            publisher: (1, 1),
            op,
        };
        worker.convert(ShardId(0), msg, shard);
    }

    #[test]
    fn every_vp8_frame_becomes_an_h264_picture_at_its_time_with_idrs_at_its_keyframes() {
        let mut worker = Worker::new(0, Arc::new(settings_for_tests(1)));
        let mut shard = Shard::default();
        for (i, data) in vp8("320x240", 10, 5).iter().enumerate() {
            frame(&mut worker, &mut shard, i as u64 * 3000, data);
        }
        let end = ConvertMsg {
            stream: Arc::from("s"),
            publisher: (1, 1),
            op: ConvertOp::End,
        };
        worker.convert(ShardId(0), end, &mut shard);
        assert_eq!(shard.sizes, [(320, 240)]);
        let expected: Vec<(u64, bool)> = (0..10).map(|i| (i * 3000, i % 5 == 0)).collect();
        assert_eq!(shard.samples, expected);
        assert!(worker.converters.is_empty());
        assert_eq!(worker.counters().vp8_frames.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_publisher_changing_its_size_at_every_keyframe_gets_a_bounded_number_of_encoders() {
        let mut worker = Worker::new(0, Arc::new(settings_for_tests(1)));
        let mut shard = Shard::default();
        let (large, small) = (vp8("320x240", 6, 1), vp8("160x120", 6, 1));
        for i in 0..12 {
            let data = if i % 2 == 0 {
                &large[i / 2]
            } else {
                &small[i / 2]
            };
            frame(&mut worker, &mut shard, i as u64 * 3000, data);
        }
        assert_eq!(shard.sizes.len(), ENCODERS_PER_WINDOW, "{:?}", shard.sizes);
        assert_eq!(shard.sizes[..2], [(320, 240), (160, 120)]);
        // After the fourth, the 160x120 encoder stays: the 320x240 keyframes are dropped,
        // the 160x120 ones go on.
        let dropped = worker.counters().vp8_dropped.load(Ordering::Relaxed);
        assert_eq!(dropped, 4);
        assert_eq!(shard.samples.len(), 8);
    }
}
