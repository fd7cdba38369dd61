//! Co-hosting's program, composed on a transcode thread. The program's home names the live
//! hosts' slots ([`StageOp::Slots`]); each host's feed home sends its configurations and
//! samples here ([`StageOp::Input`]). The worker decodes each host's video and sound and, on
//! its own clock, composes a grid picture every frame time ([`Grid`]) and mixes an AAC frame
//! every 1024 samples ([`Mixer`]), never waiting for a host. What comes out goes to the
//! program's home as its one publisher ([`PublisherId::Stage`]): an ordinary stream from
//! there (ladder, LL-HLS/DASH, WHEP, recordings).

use super::msg::{FeedMedia, StageOp};
use super::worker::Worker;
use super::Sink;
use crate::common::clock::wall_ms;
use crate::media::msg::{MediaMsg, Muted, PublisherId, SampleMsg};
use bytes::Bytes;
use shardcast_engine::ShardId;
use shardcast_media::codec::{parse_audio_specific_config, parse_avcc};
use shardcast_media::{Sample, TrackConfig, TrackKind};
use shardcast_native::{
    AudioInput, AudioPacket, CodecContext, CodecId, Error, Frame, Grid, GridConfig, Mixer, Packet,
    Rational, VideoPacket, MIX_FRAME_SAMPLES,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The program's picture: 1280x720 at 30 fps, 2.5 Mbit/s.
pub const STAGE_WIDTH: u32 = 1280;
pub const STAGE_HEIGHT: u32 = 720;
pub const STAGE_FPS: u32 = 30;
pub const STAGE_VIDEO_BPS: u64 = 2_500_000;
/// What a stage weighs on its thread, like a stream of this pixel rate.
pub const STAGE_PIXEL_RATE: u64 = STAGE_WIDTH as u64 * STAGE_HEIGHT as u64 * STAGE_FPS as u64;
/// A keyframe every two seconds (the segment target's order).
const STAGE_KEYFRAME_FRAMES: u32 = 2 * STAGE_FPS;
/// The program's sound when `transcode.aac_kbps` is 0.
const STAGE_AUDIO_BPS_DEFAULT: u64 = 128_000;
/// A stage whose thread fell this far behind its clock skips ahead rather than catch up.
const STAGE_CATCH_UP_MAX: i64 = 5;
/// A stage that fails again this soon after being composed again is stopped.
const REBUILD_GAP: Duration = Duration::from_secs(1);
/// A host whose sound stopped this long ago is muted (a browser's muted track sends none).
const MUTED_AFTER: Duration = Duration::from_millis(1500);
/// Feeds of one stage (slots `~0` … `~9`).
const SLOTS: usize = 10;

/// One host's feed on the stage.
#[derive(Default)]
struct Feed {
    /// The H.264 decoder for its video configuration.
    decoder: Option<(TrackConfig, CodecContext)>,
    /// Its sound's configuration.
    audio: Option<TrackConfig>,
    /// The next picture to decode into (the last one went to the grid).
    picture: Option<Frame>,
}

/// One program being composed.
pub(super) struct Stage {
    home: ShardId,
    grid: Grid,
    mixer: Mixer,
    /// Live hosts' slots, in grid order.
    slots: Vec<u8>,
    feeds: [Feed; SLOTS],
    started: Instant,
    mixed: i64,
    /// Headers sent home (video, audio).
    announced: [bool; 2],
    /// Pictures left out because the thread fell behind.
    skipped: i64,
    /// When each slot's sound last arrived.
    heard: [Option<Instant>; SLOTS],
    /// Slots told home as muted (bit `n`).
    muted: u16,
    /// When it was last composed again after a failure.
    rebuilt_at: Option<Instant>,
}

impl Worker {
    /// A stage message for `program` from shard `from`.
    pub(super) fn stage(&mut self, from: ShardId, program: Arc<str>, op: StageOp) {
        if let StageOp::End = op {
            if let Some(stage) = self.stages.remove(&program) {
                log::info!(
                    "transcode {}: stage {program}: ended ({} pictures skipped behind the clock)",
                    self.index,
                    stage.skipped
                );
                self.update_gauges();
            }
            return;
        }
        if !self.stages.contains_key(&program) {
            let StageOp::Slots(_) = op else {
                return; // a feed's sample for a stage that ended
            };
            match new_stage(&self.settings, from) {
                Ok(stage) => {
                    log::info!("transcode {}: stage {program}: composing", self.index);
                    self.stages.insert(program.clone(), stage);
                    self.update_gauges();
                }
                Err(error) => {
                    log::error!("stage {program}: cannot compose: {error}");
                    return;
                }
            }
        }
        let stage = self.stages.get_mut(&program).expect("made above");
        let result = match op {
            StageOp::Slots(slots) => stage.set_slots(slots),
            StageOp::Input { slot, media } => stage.input(slot, media),
            StageOp::Keyframe => {
                stage.grid.force_keyframe();
                Ok(())
            }
            StageOp::End => Ok(()),
        };
        if let Err(error) = result {
            log::warn!("stage {program}: {error}");
        }
    }

    /// Composes what is due on every stage; the time of the next due picture or mix.
    pub(super) fn stage_step(&mut self, endpoint: &mut dyn Sink) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut failed = Vec::new();
        for (program, stage) in &mut self.stages {
            match stage.step(program, endpoint) {
                Ok(at) => next = Some(next.map_or(at, |n| n.min(at))),
                Err(error) => {
                    // Composing again from fresh encoders, on the same clock, unless that
                    // already failed a moment ago.
                    let again = stage
                        .rebuilt_at
                        .is_none_or(|at| at.elapsed() >= REBUILD_GAP);
                    match again.then(|| stage.rebuild(&self.settings)) {
                        Some(Ok(())) => {
                            log::warn!("stage {program}: composing failed ({error}); started again")
                        }
                        _ => {
                            log::error!("stage {program}: composing failed: {error}; stopped");
                            failed.push(program.clone());
                        }
                    }
                }
            }
        }
        let removed = !failed.is_empty();
        for program in failed {
            self.stages.remove(&program);
        }
        if removed {
            self.update_gauges();
        }
        next
    }
}

fn new_stage(settings: &super::settings::TranscodeSettings, home: ShardId) -> Result<Stage, Error> {
    let encoder = match settings.encoder.as_str() {
        name if name.starts_with("libx264") => name.to_string(),
        // The grid takes CPU pictures: a hardware encoder would need an upload step.
        _ => "libx264".to_string(),
    };
    let config = GridConfig {
        width: STAGE_WIDTH,
        height: STAGE_HEIGHT,
        frame_rate: Rational::new(STAGE_FPS as i32, 1),
        bit_rate_bps: STAGE_VIDEO_BPS,
        encoder,
        preset: settings.preset.clone(),
        keyframe_interval: STAGE_KEYFRAME_FRAMES,
        threads: settings.codec_threads,
    };
    let audio_bps = match settings.aac_bps {
        0 => STAGE_AUDIO_BPS_DEFAULT,
        bps => bps,
    };
    Ok(Stage {
        home,
        grid: Grid::new(config, 1)?,
        mixer: Mixer::new(1, audio_bps)?,
        slots: Vec::new(),
        feeds: Default::default(),
        started: Instant::now(),
        mixed: 0,
        announced: [false; 2],
        skipped: 0,
        heard: [None; SLOTS],
        muted: 0,
        rebuilt_at: None,
    })
}

impl Stage {
    /// Fresh encoders and graphs after a failure, on the same clock: the program's next
    /// picture is a keyframe, its headers are sent again, each host's sound starts again.
    fn rebuild(&mut self, settings: &super::settings::TranscodeSettings) -> Result<(), Error> {
        self.rebuilt_at = Some(Instant::now());
        let fresh = new_stage(settings, self.home)?;
        let (frames, mixed) = (self.grid.frames(), self.mixed);
        self.grid = fresh.grid;
        self.mixer = fresh.mixer;
        self.grid.skip(frames);
        self.mixer.skip(mixed)?;
        self.announced = [false; 2];
        let slots = std::mem::take(&mut self.slots);
        let bits = slots.iter().fold(0u16, |bits, &s| bits | 1 << s);
        self.set_slots(bits)
    }

    /// The live hosts are now those of `slots` (bit `n`: slot `n`): the grid and the mix are
    /// laid out again, each host keeping their picture.
    fn set_slots(&mut self, slots: u16) -> Result<(), Error> {
        let new: Vec<u8> = (0..SLOTS as u8).filter(|s| slots & (1 << s) != 0).collect();
        if new == self.slots {
            return Ok(());
        }
        let mut pictures: HashMap<u8, Frame> = HashMap::new();
        for (index, &slot) in self.slots.iter().enumerate() {
            if let Some(picture) = self.grid.take_picture(index) {
                pictures.insert(slot, picture);
            }
        }
        self.grid.set_inputs(new.len());
        self.mixer.set_inputs(new.len());
        for (index, &slot) in new.iter().enumerate() {
            if let Some(picture) = pictures.remove(&slot) {
                self.grid.set_picture(index, picture);
            }
            if let Some(audio) = &self.feeds[usize::from(slot)].audio {
                set_sound(&mut self.mixer, index, audio)?;
            }
        }
        for (slot, feed) in self.feeds.iter_mut().enumerate() {
            if !new.contains(&(slot as u8)) {
                *feed = Feed::default();
                self.heard[slot] = None;
                self.muted &= !(1 << slot);
            }
        }
        self.slots = new;
        Ok(())
    }

    /// A configuration or sample of the feed in `slot`.
    fn input(&mut self, slot: u8, media: FeedMedia) -> Result<(), Error> {
        let Some(index) = self.slots.iter().position(|&s| s == slot) else {
            return Ok(()); // not (or no longer) on the stage
        };
        let feed = &mut self.feeds[usize::from(slot)];
        match media {
            FeedMedia::Config(config @ TrackConfig::Avc(_)) => {
                if feed.decoder.as_ref().is_some_and(|(c, _)| *c == config) {
                    return Ok(());
                }
                let mut decoder = CodecContext::decoder(CodecId::H264)?;
                decoder.set_extradata(config.record())?;
                decoder.set_threads(1);
                decoder.open(None)?;
                feed.decoder = Some((config, decoder));
            }
            FeedMedia::Config(config @ (TrackConfig::Aac(_) | TrackConfig::Opus(_))) => {
                if feed.audio.as_ref() != Some(&config) {
                    set_sound(&mut self.mixer, index, &config)?;
                    feed.audio = Some(config);
                }
            }
            FeedMedia::Config(TrackConfig::Hevc(_)) => {
                return Err(Error::Unsupported {
                    what: "an H.265 host on a stage (H.264 only)",
                })
            }
            FeedMedia::Sample {
                track: TrackKind::Audio,
                sample,
            } => {
                self.heard[usize::from(slot)] = Some(Instant::now());
                self.mixer.push(index, &sample.data)?
            }
            FeedMedia::Sample {
                track: TrackKind::Video,
                sample,
            } => {
                let Some((_, decoder)) = feed.decoder.as_mut() else {
                    return Ok(());
                };
                let packet = Packet::copy_from(&sample.data)?;
                match decoder.send_packet(&packet) {
                    Ok(()) | Err(Error::Again) => {}
                    Err(Error::InvalidData) => return Ok(()),
                    Err(error) => return Err(error),
                }
                loop {
                    let mut picture = match feed.picture.take() {
                        Some(picture) => picture,
                        None => Frame::new()?,
                    };
                    match decoder.receive_frame(&mut picture) {
                        Ok(()) => feed.picture = self.grid.set_picture(index, picture),
                        Err(Error::Again | Error::Eof) => {
                            feed.picture = Some(picture);
                            return Ok(());
                        }
                        Err(Error::InvalidData) => feed.picture = Some(picture),
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Ok(())
    }

    /// Composes the pictures and mixes the sound due by now; when the next is due.
    fn step(&mut self, program: &Arc<str>, endpoint: &mut dyn Sink) -> Result<Instant, Error> {
        let elapsed = self.started.elapsed().as_micros() as i64;
        let frame_us = 1_000_000 / i64::from(STAGE_FPS);
        let due_frames = elapsed / frame_us + 1;
        let behind = due_frames - self.grid.frames();
        if behind > STAGE_CATCH_UP_MAX {
            // Far behind (the thread was busy): the program skips pictures, keeping its
            // clock (and lip sync) rather than drifting.
            self.skipped += behind - 1;
            self.grid.skip(behind - 1);
        }
        let mut video = Vec::new();
        while self.grid.frames() < due_frames {
            self.grid.tick(&mut video)?;
        }
        let mix_us = 1_000_000 * MIX_FRAME_SAMPLES as i64 / 48_000;
        let due_mixes = elapsed / mix_us + 1;
        let behind = due_mixes - self.mixed;
        if behind > STAGE_CATCH_UP_MAX {
            self.mixer.skip(behind - 1)?;
            self.mixed += behind - 1;
        }
        let mut audio = Vec::new();
        while self.mixed < due_mixes {
            self.mixer.tick(&mut audio)?;
            self.mixed += 1;
        }
        self.send(program, video, audio, endpoint)?;
        self.tell_muted(program, endpoint);
        let next_frame = Duration::from_micros((self.grid.frames() * frame_us) as u64);
        let next_mix = Duration::from_micros((self.mixed * mix_us) as u64);
        Ok(self.started + next_frame.min(next_mix))
    }

    /// Tells home of hosts gone quiet for [`MUTED_AFTER`] (or heard again). A host who never
    /// sent sound is not counted as muted.
    fn tell_muted(&mut self, program: &Arc<str>, endpoint: &mut dyn Sink) {
        for &slot in &self.slots {
            let Some(heard) = self.heard[usize::from(slot)] else {
                continue;
            };
            let bit = 1u16 << slot;
            let quiet = heard.elapsed() >= MUTED_AFTER;
            if quiet == (self.muted & bit != 0) {
                continue;
            }
            self.muted ^= bit;
            let msg = MediaMsg::StageMuted {
                program: program.clone(),
                slot,
                muted: if quiet { Muted::Yes } else { Muted::No },
            };
            endpoint.send(self.home, msg);
        }
    }

    /// Sends the program's headers (once) and packets home as its publisher's.
    fn send(
        &mut self,
        program: &Arc<str>,
        video: Vec<VideoPacket>,
        audio: Vec<AudioPacket>,
        endpoint: &mut dyn Sink,
    ) -> Result<(), Error> {
        let home = self.home;
        let mut config = |config: TrackConfig| {
            let msg = MediaMsg::Config {
                stream: program.clone(),
                conn: PublisherId::Stage,
                config: Box::new(config),
            };
            endpoint.send(home, msg);
        };
        if !video.is_empty() && !self.announced[0] {
            let record = Bytes::copy_from_slice(self.grid.record());
            let avc = parse_avcc(&record).map_err(|_| Error::BadHeader {
                what: "the grid encoder's avcC",
            })?;
            config(TrackConfig::Avc(avc));
            self.announced[0] = true;
        }
        if !audio.is_empty() && !self.announced[1] {
            let record = Bytes::copy_from_slice(self.mixer.output_config());
            let aac = parse_audio_specific_config(&record).map_err(|_| Error::BadHeader {
                what: "the mix encoder's AudioSpecificConfig",
            })?;
            config(TrackConfig::Aac(aac));
            self.announced[1] = true;
        }
        let now = wall_ms();
        let samples = (video.into_iter())
            .map(|p| {
                let sample = Sample {
                    dts: p.pts.max(0) as u64,
                    composition_offset: 0,
                    duration: 0,
                    keyframe: p.keyframe,
                    data: Bytes::from(p.data),
                };
                (TrackKind::Video, sample)
            })
            .chain(audio.into_iter().map(|p| {
                // The encoder's first packet starts a frame early (its priming).
                let sample = Sample {
                    dts: (p.pts + MIX_FRAME_SAMPLES as i64).max(0) as u64,
                    composition_offset: 0,
                    duration: p.duration,
                    keyframe: true,
                    data: Bytes::from(p.data),
                };
                (TrackKind::Audio, sample)
            }));
        for (track, sample) in samples {
            let msg = MediaMsg::Sample(Box::new(SampleMsg {
                stream: program.clone(),
                conn: PublisherId::Stage,
                track,
                sample,
                received_wall_ms: now,
            }));
            endpoint.send(home, msg);
        }
        Ok(())
    }
}

/// Gives the mix input `index` the sound configured as `config`.
fn set_sound(mixer: &mut Mixer, index: usize, config: &TrackConfig) -> Result<(), Error> {
    let (rate, _) = config.audio_format().unwrap_or((48_000, 2));
    let (codec, extradata) = super::audio::decoder_config(config);
    let input = AudioInput {
        codec,
        config: &extradata,
        sample_rate: rate,
    };
    mixer.set_source(index, input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::settings::tests::settings_for_tests;

    /// What a stage sent home, by kind.
    #[derive(Default)]
    struct Home {
        configs: usize,
        video: Vec<u64>,
    }

    impl Sink for Home {
        fn send(&mut self, _to: ShardId, msg: MediaMsg) {
            match msg {
                MediaMsg::Config { config, .. } if config.kind() == TrackKind::Video => {
                    self.configs += 1
                }
                MediaMsg::Sample(s) if s.track == TrackKind::Video => self.video.push(s.sample.dts),
                _ => {}
            }
        }
    }

    #[test]
    fn a_stage_composed_again_keeps_its_clock_and_sends_its_headers_again() {
        let settings = settings_for_tests(1);
        let mut stage = new_stage(&settings, ShardId(0)).unwrap();
        stage.set_slots(0b1).unwrap();
        let (program, mut home) = (Arc::from("p"), Home::default());
        // Half a second of program with nobody's picture yet (black), on the stage's clock.
        stage.started = Instant::now() - Duration::from_millis(500);
        stage.step(&program, &mut home).unwrap();
        let frames = stage.grid.frames();
        assert!((15..=17).contains(&frames), "{frames}");
        assert_eq!(home.configs, 1, "the video header");
        stage.rebuild(&settings).unwrap();
        assert_eq!(stage.grid.frames(), frames, "the clock goes on");
        stage.started -= Duration::from_millis(100);
        stage.step(&program, &mut home).unwrap();
        assert_eq!(home.configs, 2, "the fresh encoder's header");
        // Decode times only go forward across the rebuild, one frame time apart.
        assert!(
            home.video.windows(2).all(|w| w[1] == w[0] + 3000),
            "{:?}",
            home.video
        );
        assert_eq!(stage.slots, [0], "the same hosts");
    }
}
