//! Transcode workers: threads (pinned to `transcode.cores`) that run each stream's ABR ladder
//! through FFmpeg and package every rung. A worker owns its streams' FFmpeg objects and their
//! rungs' segmenters; it never touches a socket and never blocks a shard.
//!
//! A stream's home shard sends its worker the source's configuration
//! ([`TranscodeMsg::Start`]) and every source sample as its segmenter placed it
//! ([`TranscodeMsg::Sample`]: the segment it went into and whether it started it). The worker
//! decodes once, scales and encodes each rung ([`shardcast_native::Ladder`]: an IDR on every
//! source keyframe, nowhere else) and feeds each rung's packets to a follower [`Segmenter`]
//! that starts a segment exactly where the source's did, with the same number. The rungs'
//! headers, parts and segments go back to the home (`MediaMsg::RungEvent`), which publishes
//! them to every shard like the source's, so one home orders everything a shard's index
//! learns about a stream.
//!
//! The mesh does not block its senders, and a stream whose worker falls behind real time
//! skips to keyframes (its waiting pictures are dropped up to the next keyframe, counted and
//! logged), so its queue stays within `transcode.queue_max_ms` and
//! `transcode.queue_max_samples`.

mod audio;
mod convert;
pub mod file;
mod ladder;
pub mod msg;
mod rtc;
pub mod settings;
mod stage;
pub mod watermark;
mod worker;

use crate::media::msg::MediaMsg;
use crate::shard::msg::ShardMsg;
use shardcast_engine::{ShardId, WorkerEndpoint};
use shardcast_media::{Sample, Segmenter, TrackConfig};
use shardcast_native::Ladder;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

pub use audio::{AAC_RENDITION, OPUS_RENDITION};
pub use worker::run_worker;

use audio::AudioOut;

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
    /// The source's audio in the other codec, when configured.
    audio: Option<AudioOut>,
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
    /// When the last thumbnail was asked for.
    thumbnail_at: Option<Instant>,
    /// The rungs forwarded to the home for WebRTC viewers (pinned, or standing in for a
    /// source with B-frames).
    rtc: rtc::RtcRungs,
}

/// Where a worker's messages go: the mesh, or (for `shardcast ladder`) a collector.
pub trait Sink {
    fn send(&mut self, to: ShardId, msg: MediaMsg);
}

impl Sink for WorkerEndpoint<ShardMsg> {
    fn send(&mut self, to: ShardId, msg: MediaMsg) {
        WorkerEndpoint::send(self, to, msg.into());
    }
}
