//! The worker thread: its loop, its streams (jobs), the queue each stream's samples wait in,
//! skipping to keyframes when behind, and the facts reported home every second.

use super::audio::finish_audio;
use super::ladder::{drain_rung, finish_ladder, process};
use super::msg::{PlacedSample, TranscodeMsg};
use super::settings::{TranscodeCounters, TranscodeSettings};
use super::{Job, Queued, RungOut, Sink};
use crate::common::counters::{bump, set};
use crate::media::msg::MediaMsg;
use crate::shard::msg::ShardMsg;
use shardcast_engine::{ShardId, WorkerEndpoint, WorkerInbox};
use shardcast_media::{RungInfo, Segmenter, TrackConfig, TrackKind};
use shardcast_native::{Ladder, RungPacket};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let mut worker = Worker::new(index, settings);
    let mut last_stats = Instant::now();
    let mut draining = false;
    loop {
        let mut inbox = Vec::new();
        endpoint.receive(1024, |message| match message {
            WorkerInbox::Msg(from, ShardMsg::Transcode(msg)) => inbox.push((from, msg)),
            WorkerInbox::Msg(from, _) => {
                debug_assert!(false, "only transcode messages go to a worker");
                log::error!("transcode {index}: a message not meant for a worker from {from:?}");
            }
            WorkerInbox::Drain => draining = true,
        });
        for (from, msg) in inbox {
            worker.on_message(from, msg, &mut endpoint);
        }
        if draining {
            return worker.drain(&mut endpoint);
        }
        let worked = worker.step(&mut endpoint);
        // Co-hosted programs compose on their own clock, between the ladder's pictures.
        let stage_due = worker.stage_step(&mut endpoint);
        if last_stats.elapsed() >= STATS_EVERY {
            last_stats = Instant::now();
            worker.report(&mut endpoint);
        }
        endpoint.flush();
        if !worked {
            let idle_ms = match stage_due {
                Some(at) => at
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(100),
                None => 100,
            };
            endpoint.wait(if endpoint.overflow_len() > 0 {
                1
            } else {
                idle_ms as i32
            });
        }
    }
}

/// One worker's streams.
pub(super) struct Worker {
    pub index: usize,
    pub settings: Arc<TranscodeSettings>,
    pub jobs: HashMap<Arc<str>, Job>,
    /// Round-robin order of the jobs.
    order: Vec<Arc<str>>,
    next: usize,
    out: Vec<RungPacket>,
    /// Co-hosted programs composed here.
    pub stages: HashMap<Arc<str>, super::stage::Stage>,
    /// WHIP publishers' VP8 made into H.264 here, by stream and publisher.
    pub converters: HashMap<(Arc<str>, (u32, u32)), super::convert::Converter>,
}

impl Worker {
    pub fn new(index: usize, settings: Arc<TranscodeSettings>) -> Self {
        Worker {
            index,
            settings,
            jobs: HashMap::new(),
            order: Vec::new(),
            next: 0,
            out: Vec::new(),
            stages: HashMap::new(),
            converters: HashMap::new(),
        }
    }

    pub fn counters(&self) -> &TranscodeCounters {
        &self.settings.counters[self.index]
    }

    fn on_message(&mut self, from: ShardId, msg: TranscodeMsg, endpoint: &mut dyn Sink) {
        match msg {
            TranscodeMsg::Start {
                stream,
                epoch,
                config,
            } => self.start(from, stream, epoch, *config, endpoint),
            TranscodeMsg::Sample(placed) => {
                let PlacedSample {
                    stream,
                    epoch,
                    track,
                    sample,
                    msn,
                    segment_start,
                    discontinuity,
                    wall_ms,
                } = *placed;
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
            TranscodeMsg::End { stream, epoch }
                if self.jobs.get(&stream).is_some_and(|j| j.epoch == epoch) =>
            {
                self.end(&stream, endpoint);
            }
            TranscodeMsg::End { .. } => {}
            TranscodeMsg::Rtc(ask) => self.rtc(*ask),
            TranscodeMsg::Stage { program, op } => self.stage(from, program, *op),
            TranscodeMsg::Convert(msg) => self.convert(from, *msg, endpoint),
        }
    }

    /// The runtime drains: every stream is flushed, and what the shards' full rings hold back
    /// is retried for a moment.
    fn drain(&mut self, endpoint: &mut WorkerEndpoint<ShardMsg>) {
        let index = self.index;
        self.finish_all(endpoint);
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
    }

    /// A stream's (new) source configuration: a fresh ladder; rungs keep their packaging, so
    /// a new encoder header becomes a discontinuity in the same rendition.
    pub fn start(
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

    pub(super) fn new_job(
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
                audio: None,
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
                thumbnail_at: None,
                rtc: Default::default(),
            },
        );
        self.order.push(stream);
        self.update_gauges();
    }

    pub fn enqueue(&mut self, stream: &Arc<str>, epoch: u64, queued: Queued) {
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

    pub fn end(&mut self, stream: &Arc<str>, endpoint: &mut dyn Sink) {
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
        if let Some(audio) = job.audio.as_mut() {
            finish_audio(stream, job.home, job.epoch, audio, endpoint);
            audio.rung.segmenter.handle_end();
            drain_rung(stream, job.home, job.epoch, &mut audio.rung, endpoint);
        }
        endpoint.send(
            job.home,
            MediaMsg::RungEnded {
                stream: stream.clone(),
                epoch: job.epoch,
            },
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
    pub fn step(&mut self, endpoint: &mut dyn Sink) -> bool {
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

    pub(super) fn update_gauges(&self) {
        let counters = self.counters();
        // A co-hosted program's stage counts as a stream, weighing its canvas's pixel rate.
        let stages = self.stages.len() as u64;
        set(&counters.streams, self.jobs.len() as u64 + stages);
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
            .sum::<u64>()
            + stages * super::stage::STAGE_PIXEL_RATE
            + self.convert_load();
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
                MediaMsg::RungStats {
                    stream: stream.clone(),
                    epoch: job.epoch,
                    rungs,
                },
            );
        }
    }
}
