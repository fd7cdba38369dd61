//! Transcode workers: threads (pinned to `transcode.cores`) that run each stream's ABR ladder
//! through FFmpeg and package every rung.
//!
//! A stream's home shard sends its worker the source's video configuration
//! ([`MediaMsg::TranscodeStart`]) and every source video sample as its segmenter placed it
//! ([`MediaMsg::TranscodeSample`]: the segment it went into and whether it started it). The
//! worker decodes once, scales and encodes each rung ([`shardcast_native::Ladder`]: an IDR on
//! every source keyframe, nowhere else) and feeds each rung's packets to a follower
//! [`Segmenter`] that starts a segment exactly where the source's did, with the same number. The
//! rungs' headers, parts and segments go back to the home ([`MediaMsg::RungEvent`]), which
//! publishes them to every shard like the source's, so one home orders everything a shard's
//! index learns about a stream.
//!
//! A worker never touches a socket and never blocks a shard: the mesh does not block its
//! senders, and a stream whose worker falls behind real time skips to keyframes (its waiting
//! pictures are dropped up to the next keyframe, counted and logged), so its queue stays within
//! `transcode.queue_max_ms` and `transcode.queue_max_samples`.

use crate::clock::wall_ms;
use crate::counters::{bump, set};
use crate::media_index::{IndexEvent, RungInfo};
use crate::media_service::{index_event, MediaMsg};
use crate::shard_msg::ShardMsg;
use bytes::Bytes;
use shardcast_engine::{ShardId, WorkerEndpoint, WorkerInbox};
use shardcast_media::codec::{parse_avcc, parse_hvcc, parse_opus_head, OPUS_SAMPLE_RATE};
use shardcast_media::{Event, Sample, Segmenter, SegmenterConfig, TrackConfig, TrackKind};
use shardcast_native::{
    AacToOpus, CodecId, Ladder, LadderConfig, OpusPacket, Rational, RungPacket, RungSpec,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings shared by the workers and the shards that assign streams to them.
pub struct TranscodeSettings {
    /// The rungs, besides `source`.
    pub ladder: Vec<RungSpec>,
    /// What the rungs are encoded as (H.264 or H.265).
    pub codec: CodecId,
    /// Bit rate of the Opus rendition; 0: none.
    pub opus_bps: u64,
    /// The FFmpeg encoder every rung uses (from the probe, or forced).
    pub encoder: String,
    pub preset: String,
    pub codec_threads: u32,
    pub queue_max_ms: u64,
    pub queue_max_samples: usize,
    /// The source's segmenter settings; rungs use the same part target.
    pub segmenter: SegmenterConfig,
    /// (stream or "*", libavfilter description): the first match is a stream's watermark.
    pub watermarks: Vec<(String, String)>,
    /// Workers, and the core each is pinned to.
    pub cores: Vec<Option<usize>>,
    /// Per worker: the pixel rate (width × height × fps) of the streams it runs. Written
    /// only by that worker; shards read it to pick the least loaded.
    pub load: Arc<Vec<AtomicU64>>,
    pub counters: Arc<Vec<TranscodeCounters>>,
}

impl TranscodeSettings {
    /// The picture filter (watermark) of `stream`, if any.
    pub fn watermark(&self, stream: &str) -> Option<&str> {
        self.watermarks
            .iter()
            .find(|(name, _)| name == stream || name == "*")
            .map(|(_, filter)| filter.as_str())
    }

    /// The index of the least loaded worker (ties: the lowest index).
    pub fn least_loaded(&self) -> usize {
        (0..self.load.len())
            .min_by_key(|&i| (self.load[i].load(Ordering::Relaxed), i))
            .unwrap_or(0)
    }
}

crate::service_counters! {
    /// Per-worker transcode counters.
    pub struct TranscodeCounters {
        /// Streams this worker transcodes.
        streams: "gauge",
        /// Source access units taken in.
        samples_in: "counter",
        /// Source pictures decoded.
        frames_decoded: "counter",
        /// Pictures encoded, summed over rungs.
        frames_encoded: "counter",
        /// Source access units dropped to catch up with real time (skipping to keyframes).
        samples_skipped: "counter",
        /// Access units waiting, summed over streams.
        queue_depth: "gauge",
        /// Microseconds spent decoding, scaling and encoding.
        busy_us: "counter",
        /// Streams whose ladder failed (an FFmpeg error); the source goes on.
        failures: "counter",
    }
}

/// One source access unit waiting for the ladder.
struct Queued {
    sample: Sample,
    msn: u64,
    segment_start: bool,
    discontinuity: bool,
    wall_ms: u64,
}

/// One rung's packaging.
struct RungOut {
    name: Arc<str>,
    segmenter: Segmenter,
    /// The generation whose header the segmenter has.
    generation: Option<u32>,
    /// Source segment starts not yet reached by this rung: (pts, msn, discontinuity).
    starts: VecDeque<(u64, u64, bool)>,
    width: u32,
    height: u32,
    bit_rate_kbps: u32,
    frames: u64,
}

/// One stream on this worker.
struct Job {
    home: ShardId,
    epoch: u64,
    /// The source's video configuration (none yet when its audio came first).
    config: Option<TrackConfig>,
    /// The Opus rendition, when configured and the source has AAC.
    opus: Option<OpusOut>,
    ladder: Option<Ladder>,
    rungs: Vec<RungOut>,
    queue: VecDeque<Queued>,
    /// Dropping pictures until the next keyframe.
    skipping: bool,
    skipped: u64,
    /// Media time (ticks) of the first and the latest access unit processed, for the speed.
    media_first: Option<u64>,
    media_last: u64,
    started: Instant,
    frames_window: u64,
    window_start: Instant,
    fps: f64,
    failed: bool,
}

/// Where a worker's messages go: the mesh, or (for `shardcast ladder`) a collector.
pub trait Sink {
    fn send(&mut self, to: ShardId, msg: ShardMsg);
}

impl Sink for WorkerEndpoint<ShardMsg> {
    fn send(&mut self, to: ShardId, msg: ShardMsg) {
        WorkerEndpoint::send(self, to, msg);
    }
}

/// The Opus rendition of a stream: its AAC decoded and encoded again, packaged as a follower
/// of the source's audio segments.
struct OpusOut {
    aac: TrackConfig,
    pipeline: Option<AacToOpus>,
    rung: RungOut,
    packets: Vec<OpusPacket>,
    failed: bool,
    /// A segment has been started (packets before the first are dropped).
    started: bool,
}

/// The name of the Opus rendition.
pub const OPUS_RENDITION: &str = "audio-opus";

/// How long a draining worker keeps retrying messages the shards' full rings held back.
const DRAIN_FLUSH: Duration = Duration::from_secs(2);

/// How often each stream's rung facts go to its home.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// Runs worker `index` until the runtime drains.
pub fn run_worker(
    index: usize,
    mut endpoint: WorkerEndpoint<ShardMsg>,
    settings: Arc<TranscodeSettings>,
) {
    if let Some(core) = settings.cores[index] {
        if let Err(error) = shardcast_engine::sys::pin_to_core(core) {
            log::warn!("transcode {index}: could not pin to core {core}: {error}");
        }
    }
    let mut worker = Worker {
        index,
        settings,
        jobs: HashMap::new(),
        order: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    let mut last_stats = Instant::now();
    let mut draining = false;
    loop {
        let mut inbox = Vec::new();
        endpoint.receive(1024, |message| match message {
            WorkerInbox::Msg(from, ShardMsg::Media(msg)) => inbox.push((from, msg)),
            WorkerInbox::Msg(..) => {}
            WorkerInbox::Drain => draining = true,
        });
        for (from, msg) in inbox {
            worker.on_message(from, msg, &mut endpoint);
        }
        if draining {
            worker.finish_all(&mut endpoint);
            // Shards drain too and stop reading their rings: what still does not fit after a
            // moment has nobody left to read it.
            let deadline = Instant::now() + DRAIN_FLUSH;
            while endpoint.overflow_len() > 0 && Instant::now() < deadline {
                endpoint.flush();
                std::thread::sleep(Duration::from_millis(1));
            }
            if endpoint.overflow_len() > 0 {
                log::warn!(
                    "transcode {index}: {} messages not delivered at shutdown",
                    endpoint.overflow_len()
                );
            }
            log::debug!("transcode {index}: stopped");
            return;
        }
        let worked = worker.step(&mut endpoint);
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            worker.report(&mut endpoint);
        }
        endpoint.flush();
        if !worked {
            endpoint.wait(if endpoint.overflow_len() > 0 { 1 } else { 100 });
        }
    }
}

struct Worker {
    index: usize,
    settings: Arc<TranscodeSettings>,
    jobs: HashMap<Arc<str>, Job>,
    /// Round-robin order of the jobs.
    order: Vec<Arc<str>>,
    next: usize,
    out: Vec<RungPacket>,
}

impl Worker {
    fn counters(&self) -> &TranscodeCounters {
        &self.settings.counters[self.index]
    }

    fn on_message(&mut self, from: ShardId, msg: MediaMsg, endpoint: &mut dyn Sink) {
        match msg {
            MediaMsg::TranscodeStart {
                stream,
                epoch,
                config,
            } => self.start(from, stream, epoch, config, endpoint),
            MediaMsg::TranscodeSample {
                stream,
                epoch,
                track,
                sample,
                msn,
                segment_start,
                discontinuity,
                wall_ms,
            } => {
                let queued = Queued {
                    sample,
                    msn,
                    segment_start,
                    discontinuity,
                    wall_ms,
                };
                match track {
                    TrackKind::Video => self.enqueue(&stream, epoch, queued),
                    TrackKind::Audio => self.audio(&stream, epoch, queued, endpoint),
                }
            }
            MediaMsg::TranscodeEnd { stream, epoch }
                if self.jobs.get(&stream).is_some_and(|j| j.epoch == epoch) =>
            {
                self.end(&stream, endpoint);
            }
            _ => {}
        }
    }

    /// A stream's (new) source configuration: a fresh ladder; rungs keep their packaging, so
    /// a new encoder header becomes a discontinuity in the same rendition.
    fn start(
        &mut self,
        home: ShardId,
        stream: Arc<str>,
        epoch: u64,
        config: TrackConfig,
        endpoint: &mut dyn Sink,
    ) {
        if self.jobs.get(&stream).is_some_and(|j| j.epoch != epoch) {
            // A new publish session of the same stream: the old one is over.
            self.end(&stream, endpoint);
        }
        if config.kind() == TrackKind::Audio {
            return self.start_audio(home, stream, epoch, config, endpoint);
        }
        if let Some(job) = self.jobs.get_mut(&stream) {
            if job.config.as_ref() == Some(&config) {
                return;
            }
            // Process what is queued under the old configuration, then switch.
            while let Some(queued) = job.queue.pop_front() {
                process(
                    &self.settings,
                    self.index,
                    &stream,
                    job,
                    queued,
                    &mut self.out,
                    endpoint,
                );
            }
            finish_ladder(&stream, job, &mut self.out, endpoint);
            job.config = Some(config);
            job.failed = false;
            // The next ladder's encoders start their generations afresh: every rung takes
            // the new header from its first packet.
            for rung in &mut job.rungs {
                rung.generation = None;
            }
            return;
        }
        self.new_job(home, stream, epoch, Some(config));
    }

    fn new_job(
        &mut self,
        home: ShardId,
        stream: Arc<str>,
        epoch: u64,
        config: Option<TrackConfig>,
    ) {
        let rungs = self
            .settings
            .ladder
            .iter()
            .map(|spec| {
                let mut segmenter = Segmenter::new(self.settings.segmenter);
                segmenter.set_follower();
                RungOut {
                    name: Arc::from(spec.name.as_str()),
                    segmenter,
                    generation: None,
                    starts: VecDeque::new(),
                    width: 0,
                    height: 0,
                    bit_rate_kbps: (spec.bit_rate_bps / 1000) as u32,
                    frames: 0,
                }
            })
            .collect();
        log::info!(
            "transcode {}: stream {stream}: ladder of {} rungs with {}",
            self.index,
            self.settings.ladder.len(),
            self.settings.encoder
        );
        self.jobs.insert(
            stream.clone(),
            Job {
                home,
                epoch,
                config,
                opus: None,
                ladder: None,
                rungs,
                queue: VecDeque::new(),
                skipping: false,
                skipped: 0,
                media_first: None,
                media_last: 0,
                started: Instant::now(),
                frames_window: 0,
                window_start: Instant::now(),
                fps: 0.0,
                failed: false,
            },
        );
        self.order.push(stream);
        self.update_gauges();
    }

    /// The source's audio configuration: an Opus rendition (again when it changes).
    fn start_audio(
        &mut self,
        home: ShardId,
        stream: Arc<str>,
        epoch: u64,
        config: TrackConfig,
        endpoint: &mut dyn Sink,
    ) {
        if self.settings.opus_bps == 0 || config.audio().is_none() {
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
            failed: false,
            started: false,
        });
    }

    /// A source AAC sample: encoded into the Opus rendition at once (audio is cheap; it is not
    /// queued or skipped).
    fn audio(&mut self, stream: &Arc<str>, epoch: u64, queued: Queued, endpoint: &mut dyn Sink) {
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
                settings.opus_bps,
            )
            .map_err(|e| e.to_string())
            .and_then(|pipeline| {
                let config = parse_opus_head(pipeline.opus_head())
                    .map_err(|e| format!("Opus header: {e}"))?;
                Ok((pipeline, config))
            });
            match made {
                Ok((pipeline, config)) => {
                    if opus
                        .rung
                        .segmenter
                        .handle_config(TrackConfig::Opus(config))
                        .is_err()
                    {
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

    fn enqueue(&mut self, stream: &Arc<str>, epoch: u64, queued: Queued) {
        let settings = self.settings.clone();
        let Some(job) = self.jobs.get_mut(stream) else {
            return;
        };
        if job.epoch != epoch {
            return;
        }
        let counters = &settings.counters[self.index];
        bump(&counters.samples_in, 1);
        if job.failed {
            return;
        }
        let limit_ticks = settings.queue_max_ms * 90;
        let span = |queue: &VecDeque<Queued>| {
            queue.front().map_or(0, |oldest| {
                queued.sample.dts.saturating_sub(oldest.sample.dts)
            })
        };
        if !job.skipping
            && (span(&job.queue) > limit_ticks || job.queue.len() >= settings.queue_max_samples)
        {
            // Behind real time: drop what waits except keyframes (so every segment start
            // still reaches the rungs), and take only keyframes until caught up.
            job.skipping = true;
            let before = job.queue.len();
            job.queue.retain(|q| q.sample.keyframe);
            let dropped = (before - job.queue.len()) as u64;
            job.skipped += dropped;
            bump(&counters.samples_skipped, dropped);
            log::warn!(
                "transcode {}: stream {stream} fell {} ms behind real time: skipping to \
                 keyframes ({} pictures skipped so far)",
                self.index,
                span(&job.queue).max(limit_ticks) / 90,
                job.skipped
            );
        }
        if job.skipping {
            if !queued.sample.keyframe {
                job.skipped += 1;
                bump(&counters.samples_skipped, 1);
                return;
            }
            if span(&job.queue) <= limit_ticks / 2 {
                job.skipping = false;
                log::info!("transcode {}: stream {stream} caught up", self.index);
            }
        }
        if job.queue.len() >= settings.queue_max_samples {
            // Only keyframes wait, and still too many: the oldest goes.
            job.queue.pop_front();
            job.skipped += 1;
            bump(&counters.samples_skipped, 1);
        }
        job.queue.push_back(queued);
    }

    fn end(&mut self, stream: &Arc<str>, endpoint: &mut dyn Sink) {
        let Some(mut job) = self.jobs.remove(stream) else {
            return;
        };
        while let Some(queued) = job.queue.pop_front() {
            process(
                &self.settings,
                self.index,
                stream,
                &mut job,
                queued,
                &mut self.out,
                endpoint,
            );
        }
        finish_ladder(stream, &mut job, &mut self.out, endpoint);
        for rung in &mut job.rungs {
            rung.segmenter.handle_end();
            drain_rung(stream, job.home, job.epoch, rung, endpoint);
        }
        if let Some(opus) = job.opus.as_mut() {
            finish_opus(stream, job.home, job.epoch, opus, endpoint);
            opus.rung.segmenter.handle_end();
            drain_rung(stream, job.home, job.epoch, &mut opus.rung, endpoint);
        }
        endpoint.send(
            job.home,
            ShardMsg::Media(MediaMsg::RungEnded {
                stream: stream.clone(),
                epoch: job.epoch,
            }),
        );
        self.order.retain(|s| s != stream);
        log::info!(
            "transcode {}: stream {stream}: ended ({} pictures skipped)",
            self.index,
            job.skipped
        );
        drop(job);
        self.update_gauges();
    }

    fn finish_all(&mut self, endpoint: &mut dyn Sink) {
        let streams: Vec<Arc<str>> = self.order.clone();
        for stream in streams {
            self.end(&stream, endpoint);
        }
    }

    /// Processes one access unit of the next stream with work; false when none had any.
    fn step(&mut self, endpoint: &mut dyn Sink) -> bool {
        for _ in 0..self.order.len() {
            self.next = (self.next + 1) % self.order.len();
            let stream = self.order[self.next].clone();
            let job = self.jobs.get_mut(&stream).expect("ordered jobs exist");
            if let Some(queued) = job.queue.pop_front() {
                process(
                    &self.settings,
                    self.index,
                    &stream,
                    job,
                    queued,
                    &mut self.out,
                    endpoint,
                );
                self.update_gauges();
                return true;
            }
        }
        false
    }

    fn update_gauges(&self) {
        let counters = self.counters();
        set(&counters.streams, self.jobs.len() as u64);
        set(
            &counters.queue_depth,
            self.jobs.values().map(|j| j.queue.len() as u64).sum(),
        );
        // A stream weighs its source's pixel rate (at a nominal 30 fps), 1 before its first
        // picture.
        let load: u64 = self
            .jobs
            .values()
            .map(|j| {
                j.ladder
                    .as_ref()
                    .and_then(Ladder::source)
                    .map_or(1, |s| u64::from(s.width) * u64::from(s.height) * 30)
            })
            .sum();
        self.settings.load[self.index].store(load, Ordering::Relaxed);
    }

    /// Sends each stream's rung facts to its home.
    fn report(&mut self, endpoint: &mut dyn Sink) {
        for (stream, job) in &mut self.jobs {
            let window = job.window_start.elapsed().as_secs_f64();
            if window > 0.0 {
                job.fps = job.frames_window as f64 / window;
            }
            job.frames_window = 0;
            job.window_start = Instant::now();
            let media_s = job.media_first.map_or(0.0, |first| {
                job.media_last.saturating_sub(first) as f64 / 90_000.0
            });
            let wall_s = job.started.elapsed().as_secs_f64();
            let speed = if wall_s > 0.0 { media_s / wall_s } else { 0.0 };
            let rungs = job
                .rungs
                .iter()
                .filter(|r| r.generation.is_some())
                .map(|r| RungInfo {
                    name: r.name.to_string(),
                    width: r.width,
                    height: r.height,
                    bitrate_kbps: r.bit_rate_kbps,
                    encoder: self.settings.encoder.clone(),
                    fps: (job.fps * 10.0).round() / 10.0,
                    speed: (speed * 100.0).round() / 100.0,
                    queue: job.queue.len(),
                    frames: r.frames,
                    skipped: job.skipped,
                    worker: self.index,
                })
                .collect();
            endpoint.send(
                job.home,
                ShardMsg::Media(MediaMsg::RungStats {
                    stream: stream.clone(),
                    epoch: job.epoch,
                    rungs,
                }),
            );
        }
    }
}

/// Runs one access unit through the stream's ladder and packages what comes out.
fn process(
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
    let ladder = job.ladder.as_mut().expect("opened above");
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
fn finish_ladder(
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
        let dts = packet.dts.max(0) as u64;
        let sample = Sample {
            dts,
            composition_offset: i32::try_from(packet.pts - packet.dts).unwrap_or(0),
            duration: 0,
            keyframe: packet.keyframe,
            data: Bytes::from(packet.data),
        };
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
fn drain_rung(
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
        let Some(index_event) = index_event(event, rung.name.clone(), config, false) else {
            continue;
        };
        endpoint.send(
            home,
            ShardMsg::Media(MediaMsg::RungEvent {
                stream: stream.clone(),
                epoch,
                event: index_event,
            }),
        );
    }
}

// ------------------------------------------------------------------ the ladder on a file

/// What one run of the ladder over a file did (`shardcast ladder`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileRun {
    /// Media time of the source video, seconds.
    pub media_s: f64,
    /// Wall time spent transcoding and packaging (reading the file excluded), seconds.
    pub wall_s: f64,
    /// CPU time of this thread over the same span, seconds.
    pub cpu_s: f64,
    /// Media time per wall time.
    pub speed: f64,
    /// CPU seconds per minute of output (one minute of the whole ladder).
    pub cpu_s_per_output_min: f64,
    pub encoder: String,
    pub rungs: Vec<FileRung>,
}

/// One rung of a [`FileRun`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileRung {
    pub name: String,
    pub segments: u64,
    pub parts: u64,
    pub bytes: u64,
    /// Bytes of the segments × 8 / their media time.
    pub kbps: f64,
}

/// Collects what the worker would send home.
#[derive(Default)]
struct Collect {
    rungs: Vec<FileRung>,
    ticks: Vec<u64>,
    out_dir: Option<std::path::PathBuf>,
    error: Option<String>,
}

impl Collect {
    fn rung(&mut self, name: &str) -> usize {
        match self.rungs.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rungs.push(FileRung {
                    name: name.to_string(),
                    ..FileRung::default()
                });
                self.ticks.push(0);
                self.rungs.len() - 1
            }
        }
    }

    fn write(&mut self, rendition: &str, file: &str, bytes: &[u8], append: bool) {
        let Some(dir) = &self.out_dir else {
            return;
        };
        let dir = dir.join(rendition);
        let result = std::fs::create_dir_all(&dir).and_then(|()| {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(append)
                .write(true)
                .truncate(!append)
                .open(dir.join(file))
                .and_then(|mut f| f.write_all(bytes))
        });
        if let Err(error) = result {
            self.error
                .get_or_insert(format!("writing {}: {error}", dir.display()));
        }
    }
}

impl Sink for Collect {
    fn send(&mut self, _to: ShardId, msg: ShardMsg) {
        let ShardMsg::Media(MediaMsg::RungEvent { event, .. }) = msg else {
            return;
        };
        match event {
            IndexEvent::Init {
                rendition, init, ..
            } => {
                self.rung(&rendition.name);
                self.write(&rendition.name, "init.mp4", &init, false);
            }
            IndexEvent::Part {
                rendition,
                msn,
                part_index,
                bytes,
                ..
            } => {
                let i = self.rung(&rendition);
                self.rungs[i].parts += 1;
                self.rungs[i].bytes += bytes.len() as u64;
                let file = format!("{msn}.m4s");
                if part_index == 0 {
                    self.write(&rendition, &file, shardcast_media::cmaf::STYP, false);
                }
                self.write(&rendition, &file, &bytes, true);
            }
            IndexEvent::Segment {
                rendition,
                duration_ticks,
                ..
            } => {
                let i = self.rung(&rendition);
                self.rungs[i].segments += 1;
                self.ticks[i] += duration_ticks;
            }
            _ => {}
        }
    }
}

/// Seconds of CPU this thread has used.
fn thread_cpu_s() -> f64 {
    shardcast_engine::sys::thread_cpu_time().as_secs_f64()
}

/// Runs the ladder over the video of a recorded FLV file (an RTMP publish saved by ffmpeg)
/// as fast as this thread goes, packaging every rung as a live stream would, and reports the
/// time it took. With `out_dir`, each rung's `init.mp4` and `{n}.m4s` are written there.
pub fn transcode_flv(
    data: &[u8],
    settings: Arc<TranscodeSettings>,
    out_dir: Option<&std::path::Path>,
) -> Result<FileRun, String> {
    if data.len() < 13 || &data[..3] != b"FLV" {
        return Err("not an FLV file".into());
    }
    let header = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut tags = Vec::new();
    let mut at = header + 4;
    while at + 11 <= data.len() {
        let kind = data[at];
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let ts = u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]);
        let end = at + 11 + size;
        if end > data.len() {
            break;
        }
        if kind == 9 {
            tags.push((ts, Bytes::copy_from_slice(&data[at + 11..end])));
        }
        at = end + 4;
    }
    if tags.is_empty() {
        return Err("no video in the file".into());
    }
    let stream: Arc<str> = Arc::from("file");
    let mut demuxer = shardcast_media::Demuxer::new();
    let mut source = Segmenter::new(settings.segmenter);
    source.set_report_placed_video(true);
    let mut worker = Worker {
        index: 0,
        settings: settings.clone(),
        jobs: HashMap::new(),
        order: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    let mut collect = Collect {
        out_dir: out_dir.map(|d| d.to_path_buf()),
        ..Collect::default()
    };
    let (mut first_dts, mut last_dts) = (None, 0u64);
    let wall = Instant::now();
    let cpu = thread_cpu_s();
    let mut feed = |source: &mut Segmenter, worker: &mut Worker, collect: &mut Collect| {
        while let Some(event) = source.poll_event() {
            match event {
                Event::InitReady {
                    track: TrackKind::Video,
                    ..
                } => {
                    if let Some(config) = source.track_config(TrackKind::Video).cloned() {
                        worker.start(ShardId(0), stream.clone(), 0, config, collect);
                    }
                }
                Event::Placed {
                    track: TrackKind::Video,
                    sample,
                    msn,
                    segment_start,
                    discontinuity,
                } => {
                    first_dts.get_or_insert(sample.dts);
                    last_dts = last_dts.max(sample.dts + u64::from(sample.duration.max(3000)));
                    worker.enqueue(
                        &stream,
                        0,
                        Queued {
                            sample,
                            msn,
                            segment_start,
                            discontinuity,
                            wall_ms: wall_ms(),
                        },
                    );
                    while worker.step(collect) {}
                }
                _ => {}
            }
        }
    };
    for (ts, body) in tags {
        match demuxer.handle_video(ts, &body) {
            Ok(shardcast_media::Demuxed::Config(config)) => {
                source.handle_config(config).map_err(|e| e.to_string())?;
            }
            Ok(shardcast_media::Demuxed::Sample { track, sample }) => {
                source
                    .handle_sample(track, sample, wall_ms())
                    .map_err(|e| e.to_string())?;
            }
            Ok(shardcast_media::Demuxed::Nothing) => {}
            Err(error) => return Err(format!("video tag at {ts} ms: {error}")),
        }
        feed(&mut source, &mut worker, &mut collect);
    }
    source.handle_end();
    feed(&mut source, &mut worker, &mut collect);
    worker.end(&stream, &mut collect);
    let wall_s = wall.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_s() - cpu;
    if let Some(error) = collect.error {
        return Err(error);
    }
    if worker.counters().failures.load(Ordering::Relaxed) > 0 {
        return Err("the ladder failed (see the log)".into());
    }
    let media_s = last_dts.saturating_sub(first_dts.unwrap_or(0)) as f64 / 90_000.0;
    let mut rungs = collect.rungs;
    for (rung, ticks) in rungs.iter_mut().zip(&collect.ticks) {
        if *ticks > 0 {
            rung.kbps = rung.bytes as f64 * 8.0 / (*ticks as f64 / 90_000.0) / 1000.0;
        }
    }
    Ok(FileRun {
        media_s,
        wall_s,
        cpu_s,
        speed: if wall_s > 0.0 { media_s / wall_s } else { 0.0 },
        cpu_s_per_output_min: if media_s > 0.0 {
            cpu_s / (media_s / 60.0)
        } else {
            0.0
        },
        encoder: settings.encoder.clone(),
        rungs,
    })
}

/// The libavfilter description of a configured watermark.
pub fn watermark_filter(w: &crate::config::WatermarkConfig) -> Result<String, String> {
    // Two levels of escaping: an option value escapes `\`, `'` and `:` with a backslash;
    // the graph then takes the value in single quotes (inside which only `'` is special,
    // written as `'\''`).
    let value = |raw: &str| -> String {
        let mut option = String::with_capacity(raw.len() + 8);
        for c in raw.chars() {
            if matches!(c, '\\' | '\'' | ':') {
                option.push('\\');
            }
            option.push(c);
        }
        format!("'{}'", option.replace('\'', "'\\''"))
    };
    if !w.filter.is_empty() {
        Ok(w.filter.clone())
    } else if !w.image.is_empty() {
        Ok(format!(
            "movie=filename={}[wm];[in][wm]overlay=W-w-20:20",
            value(&w.image)
        ))
    } else if !w.text.is_empty() {
        Ok(format!(
            "drawtext=text={}:expansion=none:fontcolor=white@0.85:fontsize=h/18:\
             x=w-tw-20:y=20:box=1:boxcolor=black@0.4:boxborderw=8",
            value(&w.text)
        ))
    } else {
        Err(format!(
            "transcode.watermarks: the entry for {:?} has no text, image or filter",
            w.stream
        ))
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
        let sample = Sample {
            dts: pts,
            composition_offset: 0,
            duration: packet.duration,
            keyframe: true,
            data: Bytes::from(packet.data),
        };
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
fn finish_opus(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WatermarkConfig;

    fn builds(filter: &str) -> bool {
        shardcast_native::FilterGraph::new(
            shardcast_native::VideoFormat {
                width: 320,
                height: 180,
                pixel_format: shardcast_native::PixelFormat::YUV420P,
            },
            Rational::new(1, 90_000),
            filter,
        )
        .is_ok()
    }

    #[test]
    fn watermark_text_survives_quotes_colons_and_backslashes() {
        for text in ["live", "it's 10:30", r"a\b 'c' : d;e,f[g]", "100% [on air]"] {
            let w = WatermarkConfig {
                stream: "*".into(),
                text: text.into(),
                image: String::new(),
                filter: String::new(),
            };
            let filter = watermark_filter(&w).unwrap();
            assert!(builds(&filter), "{text:?} → {filter}");
        }
        let empty = WatermarkConfig {
            stream: "s".into(),
            text: String::new(),
            image: String::new(),
            filter: String::new(),
        };
        assert!(watermark_filter(&empty).is_err());
    }

    #[test]
    fn the_first_watermark_naming_a_stream_applies() {
        let settings = TranscodeSettings {
            ladder: Vec::new(),
            codec: CodecId::H264,
            opus_bps: 0,
            encoder: "libx264".into(),
            preset: "ultrafast".into(),
            codec_threads: 1,
            queue_max_ms: 1000,
            queue_max_samples: 10,
            segmenter: SegmenterConfig::DEFAULT,
            watermarks: vec![
                ("news".into(), "drawbox".into()),
                ("*".into(), "hflip".into()),
                ("sports".into(), "vflip".into()),
            ],
            cores: vec![None],
            load: Arc::new(vec![AtomicU64::new(0)]),
            counters: Arc::new(vec![TranscodeCounters::default()]),
        };
        assert_eq!(settings.watermark("news"), Some("drawbox"));
        assert_eq!(settings.watermark("sports"), Some("hflip"));
        assert_eq!(settings.least_loaded(), 0);
    }
}
