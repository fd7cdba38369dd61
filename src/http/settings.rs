//! What every shard's HTTP front door is configured with, and its counters.

use crate::danmaku::settings::DanmakuSettings;
use crate::http::static_files::StaticFiles;
use crate::http::web::WebSettings;
use crate::media::settings::MediaSettings;
use shardcast_http::Limits;
use std::sync::Arc;
use std::time::SystemTime;

/// Settings shared by every shard's HTTP front door.
pub struct HttpSettings {
    pub limits: Limits,
    /// Connections per shard past which a client gets 503 (the engine's table holds
    /// `engine.connection_reserve` more, to answer them).
    pub max_connections_per_shard: usize,
    pub header_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub pipeline_max_responses: usize,
    pub pipeline_buffer_max_bytes: usize,
    pub static_files: Arc<StaticFiles>,
    /// The web front end (`[web]`).
    pub web: WebSettings,
    /// Who may read the pages that name streams (/metrics, /api/v1/streams).
    pub api_access: ApiAccess,
    /// Every shard's HTTP counters, indexed by shard.
    pub counters: Arc<Vec<HttpCounters>>,
    /// Danmaku settings, for the metrics page (its counters and histogram).
    pub danmaku: Arc<DanmakuSettings>,
    /// Live media settings, for the metrics page.
    pub media: Arc<MediaSettings>,
    pub started: SystemTime,
}

/// Who may read the pages that name every live stream.
#[derive(Clone, Debug)]
pub enum ApiAccess {
    /// Anyone (no `http.api_token`, and playback needs no token).
    Open,
    /// Whoever sends `Authorization: Bearer` with this token.
    Bearer(String),
    /// Nobody: playback needs tokens and no `http.api_token` is set.
    Closed,
}

crate::service_counters! {
    /// Per-shard HTTP counters (single writer: the shard).
    pub struct HttpCounters {
        /// HTTP requests decoded.
        requests: "counter",
        /// HTTP responses with a 2xx status.
        responses_2xx: "counter",
        /// HTTP responses with a 3xx status.
        responses_3xx: "counter",
        /// HTTP responses with a 4xx status.
        responses_4xx: "counter",
        /// HTTP responses with a 5xx status.
        responses_5xx: "counter",
        /// Connections answered 503 because the shard was at http.max_connections_per_shard.
        rejected_over_capacity: "counter",
        /// Connections answered 503 because their address held
        /// http.max_connections_per_address.
        rejected_per_address: "counter",
        /// Requests refused as malformed or over a cap.
        bad_requests: "counter",
        /// Connections answered 408 (request head too slow).
        header_timeouts: "counter",
        /// Idle connections closed.
        idle_timeouts: "counter",
        /// Connections closed because the client read nothing of its responses for
        /// http.idle_timeout_ms.
        send_stalls: "counter",
    }
}
