//! What `/api/v1/streams` and `/metrics` show about the streams this shard indexes.

use super::Media;
use serde_json::{json, Value};
use shardcast_media::{RungInfo, StreamIndex};
use std::sync::Arc;

impl Media {
    /// Every transcoded rung of the live streams this shard indexes: (stream, rung).
    pub fn rungs(&self) -> Vec<(Arc<str>, RungInfo)> {
        self.index
            .streams()
            .filter(|s| !s.is_ended())
            .flat_map(|s| s.info.rungs.iter().map(|r| (s.name.clone(), r.clone())))
            .collect()
    }

    /// `/api/v1/streams` as JSON, from this shard's index, at wall time `now_ms`.
    pub fn streams_json(&self, now_ms: u64) -> Value {
        let streams: Vec<Value> = self
            .index
            .streams()
            .map(|s| self.stream_json(s, now_ms))
            .collect();
        json!({ "streams": streams })
    }

    fn stream_json(&self, s: &StreamIndex, now_ms: u64) -> Value {
        let views = s.views();
        let renditions: Vec<Value> = views
            .iter()
            .map(|v| {
                let mut rendition = json!({
                    "name": v.info.name,
                    "codecs": v.info.codecs,
                    "bandwidth_bps": v.info.bandwidth_bps,
                    "average_bandwidth_bps": v.info.average_bandwidth_bps,
                    "segments": v.segments.len(),
                });
                if let Some(rung) = s.info.rungs.iter().find(|r| r.name == v.info.name) {
                    rendition["transcode"] = rung_json(rung);
                }
                rendition
            })
            .collect();
        // What the publisher sends: the source video and the audio, not the rungs.
        let bitrate_in: u64 = views
            .iter()
            .filter(|v| matches!(v.info.name, "source" | "audio"))
            .map(|v| v.info.average_bandwidth_bps)
            .sum();
        // Viewers: playlist requests on this shard per target duration, times shards, since
        // the start (a rough estimate; players reload once per target duration).
        let uptime_s = now_ms.saturating_sub(s.started_ms) / 1000;
        let viewers = (s.served_playlists * u64::from(s.target_duration_s) * self.shards as u64)
            .checked_div(uptime_s)
            .unwrap_or(0);
        json!({
            "stream": &*s.name,
            "title": s.info.title,
            "stage_hosts": s.info.hosts.iter().map(|h| json!({ "slot": h.slot, "name": h.name.as_deref(), "muted": h.muted })).collect::<Vec<_>>(),
            "live": !s.is_ended(),
            "video_codec": s.info.video_codec,
            "audio_codec": s.info.audio_codec,
            "width": s.info.width,
            "height": s.info.height,
            "fps": s.info.fps,
            "bitrate_in_bps": bitrate_in,
            "uptime_s": uptime_s,
            "target_duration_s": s.target_duration_s,
            "renditions": renditions,
            "segments_served_this_shard": s.served_segments,
            "playlists_served_this_shard": s.served_playlists,
            "viewer_estimate": viewers,
            "bytes_held": s.bytes_held(),
        })
    }
}

/// A rung's facts as its worker last reported them.
fn rung_json(rung: &RungInfo) -> Value {
    json!({
        "name": rung.name,
        "width": rung.width,
        "height": rung.height,
        "bitrate_kbps": rung.bitrate_kbps,
        "encoder": rung.encoder,
        "fps": rung.fps,
        "speed": rung.speed,
        "queue": rung.queue,
        "frames": rung.frames,
        "skipped": rung.skipped,
        "worker": rung.worker,
    })
}
