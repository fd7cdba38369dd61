//! What every shard's media service is configured with, and its counters.

use crate::common::auth::TokenKey;
use crate::common::counters::LatencyHistogram;
use crate::record::settings::RecordSettings;
use crate::transcode::settings::TranscodeSettings;
use shardcast_engine::ShardId;
use shardcast_media::{IndexLimits, SegmenterConfig};
use shardcast_rtmp::SessionConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// Settings shared by every shard.
pub struct MediaSettings {
    pub rtmp: SessionConfig,
    pub rtmp_limits: RtmpLimits,
    /// The RTMP application publishers use (`rtmp://host/{app}/{stream}`).
    pub app: String,
    pub segmenter: SegmenterConfig,
    pub ll_hls: bool,
    pub index: IndexLimits,
    pub failover_ms: u64,
    pub publish_keys: HashMap<String, String>,
    /// Publish tokens (`shardcast token --publish`) verify with this key.
    pub publish_tokens: Option<TokenKey>,
    /// Who may publish beyond `publish_keys` and `publish_tokens`.
    pub publish_access: PublishAccess,
    pub on_publish: Option<String>,
    pub on_unpublish: Option<String>,
    pub webhook_timeout_ms: u64,
    /// Hosts of a co-hosted program at most (feeds `{stream}~0` …); 0: no co-hosting (off,
    /// or transcoding is).
    pub stage_hosts_max: usize,
    /// Signed playback URLs: `?token=` required on every /live/ request.
    pub playback_tokens: Option<TokenKey>,
    pub max_width: u32,
    pub max_height: u32,
    pub counters: Arc<Vec<MediaCounters>>,
    /// Per shard: time from a part's last sample reaching the server to the part being
    /// servable on that shard.
    pub part_latency: Arc<Vec<LatencyHistogram>>,
    /// The ladder and its workers; `None` when transcoding is off.
    pub transcode: Option<Arc<TranscodeSettings>>,
    /// The recorder thread's place on the mesh, and what it records.
    pub recorder: ShardId,
    pub record: Arc<RecordSettings>,
    /// Edge mode (`[edge] origins`): `/live/…` comes from origins through the fetcher.
    pub edge: Option<Arc<super::edge::EdgeShardSettings>>,
    /// On an origin that registers its streams in Redis (`state.origin_advertise`): the relay
    /// thread, told when a stream homed here starts and ends.
    pub origin_map: Option<ShardId>,
    /// WHEP playback on this shard's UDP socket; None when `webrtc.udp_listen` is off.
    pub webrtc: Option<Arc<crate::webrtc::WebrtcSettings>>,
}

/// Who may publish, beyond the stream keys and publish tokens configured.
#[derive(Clone, Debug)]
pub enum PublishAccess {
    /// Stream keys or publish tokens are configured: they alone decide.
    Configured,
    /// Nothing configured and `media.publish_open`: anyone may publish any stream.
    Open,
    /// Nothing configured: `{stream}?key={this}` publishes any stream (the key generated on
    /// first start and kept in `state.data_dir`).
    ServerKey(String),
}

/// What bounds an RTMP connection beyond its session (`rtmp.*`).
#[derive(Clone, Copy, Debug)]
pub struct RtmpLimits {
    /// From the connection to an accepted publish.
    pub publish_timeout_ms: u64,
    /// Silence from a publisher before it is closed.
    pub idle_timeout_ms: u64,
    /// RTMP connections per shard.
    pub max_connections_per_shard: u32,
    /// Refused publish credentials per address per minute.
    pub publish_failures_per_minute: u32,
}

crate::service_counters! {
    /// Per-shard media counters.
    pub struct MediaCounters {
        /// WebRTC sessions open on this shard.
        webrtc_sessions: "gauge",
        /// WebRTC datagrams dropped: from an address no session knows, and not a STUN check
        /// naming a session waiting for its peer (garbage, floods, stray peers).
        webrtc_datagrams_dropped: "counter",
        /// Video samples forwarded for WebRTC that could not be sent: not H.264, or NAL unit
        /// lengths that run past the sample.
        webrtc_frames_unusable: "counter",
        /// Adaptive WebRTC viewers' moves between a stream's layers (at keyframes, following
        /// their bandwidth estimates).
        webrtc_layer_switches: "counter",
        /// WebRTC viewers whose media went out on shardcast's own send path (plain viewers
        /// with an AEAD SRTP profile); the others' goes through str0m.
        webrtc_direct_viewers: "counter",
        /// RTP packets sent again on viewers' NACKs by that path.
        webrtc_packets_resent: "counter",
        /// Edge mode: `/live/…` requests answered from this shard's cache.
        edge_hits: "counter",
        /// Edge mode: `/live/…` requests that waited for the fetcher (joined to this shard's
        /// fetch of the object, or starting it).
        edge_misses: "counter",
        /// RTMP connections open on this shard.
        rtmp_connections: "gauge",
        /// Parts of recorded streams not sent to the recorder: its queue
        /// (media.record_queue_max_bytes) was full. Each costs the recording a segment.
        record_queue_full: "counter",
        /// RTMP connections closed for a protocol error or a cap.
        rtmp_errors: "counter",
        /// RTMP connections closed at once: the shard held rtmp.max_connections_per_shard.
        rtmp_refused: "counter",
        /// RTMP connections closed for not finishing the handshake and `connect` within
        /// rtmp.handshake_timeout_ms, not publishing within rtmp.publish_timeout_ms, sending
        /// nothing for rtmp.idle_timeout_ms, or not reading their last message in 5 s.
        rtmp_timeouts: "counter",
        /// Publishes accepted.
        publishes: "counter",
        /// Publishes refused (auth, webhook, busy stream, bad input).
        publishes_refused: "counter",
        /// Publishes refused for an unsupported codec.
        unsupported_codecs: "counter",
        /// Failovers from one publisher to another.
        failovers: "counter",
        /// Streams whose home is this shard.
        streams_home: "gauge",
        /// Streams in this shard's index (every shard indexes every stream), live or ended.
        streams_indexed: "gauge",
        /// Of those, streams that have ended and are kept for media.ended_keep_s.
        streams_indexed_ended: "gauge",
        /// Media bytes this shard's index holds. The bytes are shared by every shard's
        /// index, so the process holds one shard's value, not the sum.
        index_bytes: "gauge",
        /// Ended streams forgotten after media.ended_keep_s, or to make room for a new one.
        streams_retired: "counter",
        /// Samples a stream home dropped (a decode time that went back, a track it cannot
        /// package); each is logged, within the log budget.
        samples_rejected: "counter",
        /// Publishers' timestamp jumps (back, or forward past a segment's longest), each
        /// re-based with a discontinuity.
        timestamp_jumps: "counter",
        /// Streams started without the ladder: every transcode thread ran
        /// transcode.streams_per_worker streams.
        untranscoded_streams: "counter",
        /// Publishes refused at once: their address presented too many bad credentials in
        /// the last minute (rtmp.publish_failures_per_minute).
        publish_guesses_blocked: "counter",
        /// Media bytes received from publishers.
        ingest_bytes: "counter",
        /// Parts produced by streams homed here.
        parts: "counter",
        /// Segments produced by streams homed here.
        segments: "counter",
        /// Playlists and MPDs served.
        playlists_served: "counter",
        /// Segments, parts and init segments served.
        media_served: "counter",
        /// Media bytes served.
        media_bytes_served: "counter",
        /// Requests that waited (blocking reloads, preload hints).
        blocked_requests: "counter",
        /// Waiting requests that timed out.
        blocked_timeouts: "counter",
        /// Requests refused for a missing or bad playback token.
        token_refusals: "counter",
        /// Mesh messages this shard could not act on (sent to the wrong thread); each is
        /// logged. Always 0 unless there is a bug.
        mesh_errors: "counter",
    }
}
