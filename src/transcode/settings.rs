//! What every transcode worker (and the shards that assign streams to them) is configured
//! with, and the workers' counters.

use shardcast_media::SegmenterConfig;
use shardcast_native::{CodecId, RungSpec, ThumbnailSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Settings shared by the workers and the shards that assign streams to them.
pub struct TranscodeSettings {
    /// The rungs, besides `source`.
    pub ladder: Vec<RungSpec>,
    /// What the rungs are encoded as (H.264 or H.265).
    pub codec: CodecId,
    /// Bit rate of the Opus rendition; 0: none.
    pub opus_bps: u64,
    /// Bit rate of the Opus audio sent to the home for WebRTC sessions (when the Opus
    /// rendition is made, its packets are sent instead); 0: none.
    pub webrtc_opus_bps: u64,
    /// Bit rate of the AAC rendition of an Opus source; 0: none.
    pub aac_bps: u64,
    /// The FFmpeg encoder every rung uses (from the probe, or forced).
    pub encoder: String,
    pub preset: String,
    pub codec_threads: u32,
    pub queue_max_ms: u64,
    pub queue_max_samples: usize,
    /// Streams one worker runs at most (`transcode.streams_per_worker`).
    pub streams_per_worker: usize,
    /// The source's segmenter settings; rungs use the same part target.
    pub segmenter: SegmenterConfig,
    /// (stream or "*", libavfilter description): the first match is a stream's watermark.
    pub watermarks: Vec<(String, String)>,
    /// Thumbnails (`media.thumbnail_*`): what they are made as and how often; `None`: none.
    pub thumbnails: Option<(ThumbnailSpec, std::time::Duration)>,
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

    /// True when some worker runs fewer than `streams_per_worker` streams (as far as its
    /// gauge says: two shards starting streams at once may each take the last place).
    pub fn has_room(&self) -> bool {
        self.counters
            .iter()
            .any(|c| (c.streams.load(Ordering::Relaxed) as usize) < self.streams_per_worker)
    }

    /// The least loaded worker's place on the mesh, in a runtime of `shards` shards (the
    /// workers come after the shards and the control thread).
    pub fn least_loaded_worker(&self, shards: usize) -> shardcast_engine::ShardId {
        shardcast_engine::ShardId((shards + 1 + self.least_loaded()) as u16)
    }

    /// The index (`transcode N` in logs) of the worker at `id` on the mesh, in a runtime of
    /// `shards` shards.
    pub fn worker_index(id: shardcast_engine::ShardId, shards: usize) -> usize {
        usize::from(id.0).saturating_sub(shards + 1)
    }

    /// The index of the least loaded worker with room (ties: the lowest index; when none has
    /// room, the least loaded of all).
    pub fn least_loaded(&self) -> usize {
        let full = |i: usize| {
            self.counters.get(i).is_some_and(|c| {
                c.streams.load(Ordering::Relaxed) as usize >= self.streams_per_worker
            })
        };
        (0..self.load.len())
            .min_by_key(|&i| (full(i), self.load[i].load(Ordering::Relaxed), i))
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
        /// Thumbnails made (`media.thumbnail_interval_ms`).
        thumbnails: "counter",
        /// VP8 frames of WHIP publishers made into H.264 (`transcode::convert`).
        vp8_frames: "counter",
        /// VP8 frames dropped: before a keyframe, behind real time, or undecodable.
        vp8_dropped: "counter",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings for `workers` workers with one 144p H.264 rung (nothing is encoded unless a
    /// worker runs).
    pub(crate) fn settings_for_tests(workers: usize) -> TranscodeSettings {
        TranscodeSettings {
            ladder: vec![RungSpec {
                name: "144p".into(),
                width: 0,
                height: 144,
                bit_rate_bps: 200_000,
            }],
            codec: CodecId::H264,
            opus_bps: 0,
            webrtc_opus_bps: 0,
            aac_bps: 0,
            encoder: "libx264".into(),
            preset: "ultrafast".into(),
            codec_threads: 1,
            queue_max_ms: 1000,
            queue_max_samples: 10,
            streams_per_worker: 2,
            segmenter: SegmenterConfig::DEFAULT,
            watermarks: Vec::new(),
            thumbnails: None,
            cores: vec![None; workers],
            load: Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect()),
            counters: Arc::new((0..workers).map(|_| TranscodeCounters::default()).collect()),
        }
    }

    #[test]
    fn the_first_watermark_naming_a_stream_applies_and_the_least_loaded_worker_is_picked() {
        let mut settings = settings_for_tests(2);
        settings.watermarks = vec![
            ("news".into(), "drawbox".into()),
            ("*".into(), "hflip".into()),
            ("sports".into(), "vflip".into()),
        ];
        assert_eq!(settings.watermark("news"), Some("drawbox"));
        assert_eq!(settings.watermark("sports"), Some("hflip"));
        assert_eq!(settings.least_loaded(), 0);
        settings.load[0].store(10, Ordering::Relaxed);
        assert_eq!(settings.least_loaded(), 1);
    }

    #[test]
    fn a_full_worker_is_passed_over_and_room_is_reported() {
        let settings = settings_for_tests(2);
        settings.counters[0].streams.store(2, Ordering::Relaxed);
        settings.load[1].store(1_000_000, Ordering::Relaxed);
        assert_eq!(
            settings.least_loaded(),
            1,
            "worker 0 is full, however light"
        );
        assert!(settings.has_room());
        settings.counters[1].streams.store(2, Ordering::Relaxed);
        assert!(!settings.has_room());
    }
}
