//! `shardcast ladder`: the ladder over a recorded FLV file, as fast as one thread goes,
//! packaging every rung as a live stream would.

use super::settings::TranscodeSettings;
use super::worker::Worker;
use super::{Queued, Sink};
use crate::common::clock::wall_ms;
use crate::media::msg::MediaMsg;
use bytes::Bytes;
use shardcast_engine::ShardId;
use shardcast_media::flv::{FileReader, TagKind};
use shardcast_media::{Demuxed, Demuxer, Event, IndexEvent, Segmenter, TrackKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

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

/// How a rung's file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteMode {
    /// A new file (or emptied).
    Create,
    /// After what is there.
    Append,
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

    fn write(&mut self, rendition: &str, file: &str, bytes: &[u8], mode: WriteMode) {
        let Some(dir) = &self.out_dir else {
            return;
        };
        let dir = dir.join(rendition);
        let result = std::fs::create_dir_all(&dir).and_then(|()| {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(mode == WriteMode::Append)
                .write(true)
                .truncate(mode == WriteMode::Create)
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
    fn send(&mut self, _to: ShardId, msg: MediaMsg) {
        let MediaMsg::RungEvent { event, .. } = msg else {
            return;
        };
        match *event {
            IndexEvent::Init {
                rendition, init, ..
            } => {
                self.rung(&rendition.name);
                self.write(&rendition.name, "init.mp4", &init, WriteMode::Create);
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
                    self.write(
                        &rendition,
                        &file,
                        shardcast_media::cmaf::STYP,
                        WriteMode::Create,
                    );
                }
                self.write(&rendition, &file, &bytes, WriteMode::Append);
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
    data: Bytes,
    settings: Arc<TranscodeSettings>,
    out_dir: Option<&std::path::Path>,
) -> Result<FileRun, String> {
    let reader = FileReader::new(data).map_err(|e| format!("not an FLV file: {e}"))?;
    let tags: Vec<(u32, Bytes)> = reader
        .filter(|tag| tag.kind == TagKind::Video)
        .map(|tag| (tag.timestamp_ms, tag.body))
        .collect();
    if tags.is_empty() {
        return Err("no video in the file".into());
    }
    let mut run = FileLadder::new(settings, out_dir);
    let wall = Instant::now();
    let cpu = thread_cpu_s();
    for (timestamp_ms, body) in tags {
        run.video_tag(timestamp_ms, &body)?;
    }
    run.finish();
    run.report(wall.elapsed().as_secs_f64(), thread_cpu_s() - cpu)
}

/// The source's segmenter and a worker, fed from a file instead of the mesh.
struct FileLadder {
    stream: Arc<str>,
    settings: Arc<TranscodeSettings>,
    demuxer: Demuxer,
    source: Segmenter,
    worker: Worker,
    collect: Collect,
    /// Decode times of the first and past the last source picture (ticks).
    first_dts: Option<u64>,
    end_dts: u64,
}

impl FileLadder {
    fn new(settings: Arc<TranscodeSettings>, out_dir: Option<&std::path::Path>) -> Self {
        let mut source = Segmenter::new(settings.segmenter);
        source.set_report_placed_video(true);
        FileLadder {
            stream: Arc::from("file"),
            worker: Worker::new(0, settings.clone()),
            settings,
            demuxer: Demuxer::new(),
            source,
            collect: Collect {
                out_dir: out_dir.map(|d| d.to_path_buf()),
                ..Collect::default()
            },
            first_dts: None,
            end_dts: 0,
        }
    }

    /// One video tag through the demuxer and the source's segmenter, then the ladder.
    fn video_tag(&mut self, timestamp_ms: u32, body: &Bytes) -> Result<(), String> {
        match self.demuxer.handle_video(timestamp_ms, body) {
            Ok(Demuxed::Config(config)) => {
                self.source
                    .handle_config(config)
                    .map_err(|e| e.to_string())?;
            }
            Ok(Demuxed::Sample { track, sample }) => {
                self.source
                    .handle_sample(track, sample, wall_ms())
                    .map_err(|e| e.to_string())?;
            }
            Ok(Demuxed::Nothing) => {}
            Err(error) => return Err(format!("video tag at {timestamp_ms} ms: {error}")),
        }
        self.feed();
        Ok(())
    }

    /// Hands what the source's segmenter placed to the worker, as a home would.
    fn feed(&mut self) {
        while let Some(event) = self.source.poll_event() {
            match event {
                Event::InitReady {
                    track: TrackKind::Video,
                    ..
                } => {
                    if let Some(config) = self.source.track_config(TrackKind::Video).cloned() {
                        let stream = self.stream.clone();
                        self.worker
                            .start(ShardId(0), stream, 0, config, &mut self.collect);
                    }
                }
                Event::Placed {
                    track: TrackKind::Video,
                    sample,
                    msn,
                    segment_start,
                    discontinuity,
                } => {
                    self.first_dts.get_or_insert(sample.dts);
                    let end = sample.dts + u64::from(sample.duration.max(3000));
                    self.end_dts = self.end_dts.max(end);
                    let queued = Queued {
                        sample,
                        msn,
                        segment_start,
                        discontinuity,
                        wall_ms: wall_ms(),
                    };
                    self.worker.enqueue(&self.stream, 0, queued);
                    while self.worker.step(&mut self.collect) {}
                }
                _ => {}
            }
        }
    }

    /// The end of the file: the source's last segment, then the worker's flush.
    fn finish(&mut self) {
        self.source.handle_end();
        self.feed();
        self.worker.end(&self.stream, &mut self.collect);
    }

    fn report(self, wall_s: f64, cpu_s: f64) -> Result<FileRun, String> {
        if let Some(error) = self.collect.error {
            return Err(error);
        }
        if self.worker.counters().failures.load(Ordering::Relaxed) > 0 {
            return Err("the ladder failed (see the log)".into());
        }
        let media_s = self.end_dts.saturating_sub(self.first_dts.unwrap_or(0)) as f64 / 90_000.0;
        let mut rungs = self.collect.rungs;
        for (rung, ticks) in rungs.iter_mut().zip(&self.collect.ticks) {
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
            encoder: self.settings.encoder.clone(),
            rungs,
        })
    }
}
