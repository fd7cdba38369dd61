//! Checks of ranges and relations that the types alone do not express.

use super::{parse_addr, Config, ConfigError};

fn invalid(field: &'static str, value: impl ToString, why: &'static str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        why,
    }
}

impl Config {
    /// `[tls]`: listeners only with a certificate, addresses that parse, sane limits.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let t = &self.tls;
        for (field, value) in [
            ("tls.https_listen", &t.https_listen),
            ("tls.rtmps_listen", &t.rtmps_listen),
        ] {
            if value.is_empty() || value == "off" {
                continue;
            }
            if t.cert_file.is_empty() {
                return Err(invalid(
                    field,
                    value,
                    "needs tls.cert_file and tls.key_file",
                ));
            }
            parse_addr(field, value)?;
        }
        if !t.cert_file.is_empty() && t.key_file.is_empty() {
            return Err(invalid(
                "tls.key_file",
                "",
                "must be set with tls.cert_file",
            ));
        }
        if !(100..=300_000).contains(&t.handshake_timeout_ms) {
            return Err(invalid(
                "tls.handshake_timeout_ms",
                t.handshake_timeout_ms,
                "must be in 100..=300000",
            ));
        }
        if !(16_384..=16 << 20).contains(&t.seal_ahead_bytes) {
            return Err(invalid(
                "tls.seal_ahead_bytes",
                t.seal_ahead_bytes,
                "must be in 16384..=16777216",
            ));
        }
        Ok(())
    }

    /// `[webrtc]`: an address, an IP, a bound.
    fn validate_webrtc(&self) -> Result<(), ConfigError> {
        let w = &self.webrtc;
        if w.udp_listen != "off" {
            parse_addr("webrtc.udp_listen", &w.udp_listen)?;
        }
        if !w.public_ip.is_empty() && w.public_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                "webrtc.public_ip",
                &w.public_ip,
                "expected an IP address",
            ));
        }
        if w.max_cohosts > shardcast_native::GRID_INPUTS_MAX {
            return Err(invalid(
                "webrtc.max_cohosts",
                w.max_cohosts,
                "must be 0 (no co-hosting) ..= 9",
            ));
        }
        if w.tcp_connections_per_address == 0 {
            return Err(invalid(
                "webrtc.tcp_connections_per_address",
                w.tcp_connections_per_address,
                "must be ≥ 1 (webrtc.tcp = false turns ICE over TCP off)",
            ));
        }
        if w.abr_start_kbps > 1_000_000 {
            return Err(invalid(
                "webrtc.abr_start_kbps",
                w.abr_start_kbps,
                "must be 0 (off) ..= 1000000",
            ));
        }
        if w.opus_kbps != 0 && !(6..=510).contains(&w.opus_kbps) {
            return Err(invalid(
                "webrtc.opus_kbps",
                w.opus_kbps,
                "must be 0 (no audio) or 6..=510",
            ));
        }
        if !(1..=1_000_000).contains(&w.max_sessions) {
            return Err(invalid(
                "webrtc.max_sessions",
                w.max_sessions,
                "must be in 1..=1000000",
            ));
        }
        if !(1..=100_000).contains(&w.max_sessions_per_shard) {
            return Err(invalid(
                "webrtc.max_sessions_per_shard",
                w.max_sessions_per_shard,
                "must be in 1..=100000",
            ));
        }
        Ok(())
    }

    /// `[edge]`: origins that parse, bounds in their ranges.
    fn validate_edge(&self) -> Result<(), ConfigError> {
        let e = &self.edge;
        for origin in &e.origins {
            parse_addr("edge.origins", origin)?;
        }
        let ranges = [
            ("edge.origins", e.origins.len() as u64, 0, 64),
            ("edge.virtual_nodes", u64::from(e.virtual_nodes), 1, 1000),
            ("edge.cache_window_s", e.cache_window_s, 1, 86_400),
            ("edge.object_max_bytes", e.object_max_bytes, 1024, 1 << 30),
            (
                "edge.cache_max_bytes",
                e.cache_max_bytes,
                e.object_max_bytes,
                1 << 40,
            ),
            ("edge.playlist_cache_ms", e.playlist_cache_ms, 0, 10_000),
            (
                "edge.origin_timeout_min_ms",
                e.origin_timeout_min_ms,
                10,
                60_000,
            ),
            (
                "edge.origin_timeout_ms",
                e.origin_timeout_ms,
                e.origin_timeout_min_ms,
                120_000,
            ),
            (
                "edge.blocking_timeout_ms",
                e.blocking_timeout_ms,
                100,
                120_000,
            ),
            ("edge.breaker_open_ms", e.breaker_open_ms, 100, 600_000),
            (
                "edge.origin_connections",
                e.origin_connections as u64,
                1,
                10_000,
            ),
            ("edge.fetches_max", e.fetches_max as u64, 1, 1 << 20),
        ];
        if e.origin_map && self.state.redis.is_empty() {
            return Err(invalid("edge.origin_map", true, "needs state.redis"));
        }
        if !self.state.origin_advertise.is_empty() {
            parse_addr("state.origin_advertise", &self.state.origin_advertise)?;
            if self.state.redis.is_empty() {
                return Err(invalid(
                    "state.origin_advertise",
                    &self.state.origin_advertise,
                    "needs state.redis",
                ));
            }
        }
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                let why = "out of range (cache_max_bytes holds at least one object_max_bytes; \
                           origin_timeout_ms is at least origin_timeout_min_ms)";
                return Err(invalid(
                    field,
                    format!("{value} (allowed {min}..={max})"),
                    why,
                ));
            }
        }
        Ok(())
    }

    /// Checks every section; the first error wins.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_engine()?;
        self.validate_http()?;
        self.validate_ws()?;
        self.validate_danmaku()?;
        self.validate_tls()?;
        self.validate_edge()?;
        self.validate_webrtc()?;
        crate::boot::settings::room_config(self).map_err(ConfigError::Rooms)?;
        parse_addr("http.listen", &self.http.listen)?;
        if !self.rtmp.listen.is_empty() {
            parse_addr("rtmp.listen", &self.rtmp.listen)?;
        }
        crate::boot::settings::rtmp_session_config(self)
            .validate()
            .map_err(|e| ConfigError::Rtmp(e.to_string()))?;
        if self.ledger.streamer_share_percent > 100 {
            return Err(invalid(
                "ledger.streamer_share_percent",
                self.ledger.streamer_share_percent,
                "must be 0 to 100",
            ));
        }
        let in_flight = self.ledger.in_flight_max_per_shard;
        if in_flight == 0 || in_flight > 1_000_000 {
            return Err(invalid(
                "ledger.in_flight_max_per_shard",
                in_flight,
                "must be in 1..=1000000",
            ));
        }
        let m = &self.media;
        if m.thumbnail_interval_ms > 0 && !(16..=3840).contains(&m.thumbnail_width) {
            return Err(invalid(
                "media.thumbnail_width",
                m.thumbnail_width,
                "must be 16 to 3840",
            ));
        }
        if !(2..=31).contains(&m.thumbnail_qscale) {
            return Err(invalid(
                "media.thumbnail_qscale",
                m.thumbnail_qscale,
                "must be 2 to 31",
            ));
        }
        if crate::boot::logging::LogFormat::parse(&self.log.format).is_none() {
            return Err(invalid(
                "log.format",
                &self.log.format,
                "must be text or json",
            ));
        }
        if !["auto", "on", "off"].contains(&self.web.guests.as_str()) {
            return Err(invalid(
                "web.guests",
                &self.web.guests,
                "must be auto, on or off",
            ));
        }
        self.validate_state()?;
        self.validate_media()?;
        self.validate_transcode()?;
        self.validate_process()
    }

    fn validate_state(&self) -> Result<(), ConfigError> {
        let s = &self.state;
        if !(s.redis.is_empty()
            || s.redis.starts_with("redis://")
            || s.redis.starts_with("unix://"))
        {
            // The URL may hold a password: it is not echoed.
            return Err(invalid(
                "state.redis",
                "(not shown)",
                "must be empty or a redis:// or unix:// URL",
            ));
        }
        if !(1..=60_000).contains(&s.redis_timeout_ms) {
            return Err(invalid(
                "state.redis_timeout_ms",
                s.redis_timeout_ms,
                "must be in 1..=60000",
            ));
        }
        if s.redis_reconnect_ms > 60_000 {
            return Err(invalid(
                "state.redis_reconnect_ms",
                s.redis_reconnect_ms,
                "must be ≤ 60000",
            ));
        }
        if !(60..=30 * 86_400).contains(&self.danmaku.cluster_room_ttl_s) {
            return Err(invalid(
                "danmaku.cluster_room_ttl_s",
                self.danmaku.cluster_room_ttl_s,
                "must be in 60..=2592000 (30 days)",
            ));
        }
        if s.redis_prefix.len() > 64 {
            return Err(invalid(
                "state.redis_prefix",
                &s.redis_prefix,
                "must be at most 64 bytes",
            ));
        }
        Ok(())
    }

    fn validate_engine(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if !e.recv_buffers.is_power_of_two() || e.recv_buffers > 32768 {
            return Err(invalid(
                "engine.recv_buffers",
                e.recv_buffers,
                "must be a power of two ≤ 32768",
            ));
        }
        if e.recv_buffer_bytes < 512 {
            return Err(invalid(
                "engine.recv_buffer_bytes",
                e.recv_buffer_bytes,
                "must be ≥ 512",
            ));
        }
        if !(8..=32768).contains(&e.ring_entries) {
            return Err(invalid(
                "engine.ring_entries",
                e.ring_entries,
                "must be in 8..=32768",
            ));
        }
        if e.timer_tick_ms > 1000 {
            return Err(invalid(
                "engine.timer_tick_ms",
                e.timer_tick_ms,
                "must be 0 (chosen) ..= 1000",
            ));
        }
        if let Some(name) = e
            .io_uring_disable
            .iter()
            .find(|n| !shardcast_engine::IO_URING_DISABLE_NAMES.contains(&n.as_str()))
        {
            return Err(invalid(
                "engine.io_uring_disable",
                name,
                "unknown feature (io_uring, single_issuer, defer_taskrun, coop_taskrun, send_zc, msg_ring)",
            ));
        }
        if e.mesh_ring_capacity == 0 {
            return Err(invalid("engine.mesh_ring_capacity", 0, "must be ≥ 1"));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        if h.max_connections_per_shard == 0 || h.max_connections_per_shard > 1_000_000 {
            return Err(invalid(
                "http.max_connections_per_shard",
                h.max_connections_per_shard,
                "must be in 1..=1000000",
            ));
        }
        if h.request_line_max_bytes < 64 || h.request_line_max_bytes > h.head_max_bytes {
            return Err(invalid(
                "http.request_line_max_bytes",
                h.request_line_max_bytes,
                "must be ≥ 64 and ≤ http.head_max_bytes",
            ));
        }
        if h.headers_max_count == 0 || h.headers_max_count > shardcast_http::HEADERS_MAX_COUNT {
            return Err(invalid(
                "http.headers_max_count",
                h.headers_max_count,
                "must be in 1..=128",
            ));
        }
        self.http_limits()
            .validate()
            .map_err(|e| ConfigError::Limits(e.to_string()))?;
        if h.pipeline_max_responses == 0 {
            return Err(invalid("http.pipeline_max_responses", 0, "must be ≥ 1"));
        }
        Ok(())
    }

    fn validate_ws(&self) -> Result<(), ConfigError> {
        let w = &self.ws;
        if w.frame_max_bytes < 1024 || w.message_max_bytes < w.frame_max_bytes {
            return Err(invalid(
                "ws.message_max_bytes",
                w.message_max_bytes,
                "ws.frame_max_bytes must be ≥ 1024 and ≤ ws.message_max_bytes",
            ));
        }
        if w.ping_interval_ms == 0 || w.idle_timeout_ms <= w.ping_interval_ms {
            return Err(invalid(
                "ws.idle_timeout_ms",
                w.idle_timeout_ms,
                "must be greater than ws.ping_interval_ms (> 0)",
            ));
        }
        Ok(())
    }

    fn validate_danmaku(&self) -> Result<(), ConfigError> {
        let d = &self.danmaku;
        if d.batch_ms == 0 || d.stats_ms == 0 {
            return Err(invalid(
                "danmaku.batch_ms",
                d.batch_ms,
                "batch_ms and stats_ms must be ≥ 1",
            ));
        }
        if !["live", "any", "none"].contains(&d.anonymous_rooms.as_str()) {
            return Err(invalid(
                "danmaku.anonymous_rooms",
                &d.anonymous_rooms,
                "must be \"live\", \"any\" or \"none\"",
            ));
        }
        let bursts = [d.chat_burst, d.like_burst, d.gift_burst, d.history_burst];
        if d.history_max == 0 || bursts.contains(&0) || d.text_max_chars == 0 {
            return Err(invalid(
                "danmaku",
                "0",
                "history_max, chat_burst, like_burst, gift_burst, history_burst and \
                 text_max_chars must be ≥ 1",
            ));
        }
        if !matches!(d.filter_mode.as_str(), "mask" | "reject") {
            return Err(invalid(
                "danmaku.filter_mode",
                &d.filter_mode,
                "must be mask or reject",
            ));
        }
        let mut ids: Vec<u32> = d.gifts.iter().map(|g| g.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid(
                "danmaku.gifts",
                "duplicate id",
                "gift ids must be unique",
            ));
        }
        Ok(())
    }

    fn validate_media(&self) -> Result<(), ConfigError> {
        let m = &self.media;
        if m.part_target_ms < 100 || m.segment_target_ms < m.part_target_ms {
            return Err(invalid(
                "media.part_target_ms",
                m.part_target_ms,
                "must be ≥ 100 and ≤ media.segment_target_ms",
            ));
        }
        if m.window_s == 0 || m.streams_max == 0 {
            return Err(invalid(
                "media.window_s",
                m.window_s,
                "window_s and streams_max must be ≥ 1",
            ));
        }
        for key in &m.publish_keys {
            if key.key.is_empty() {
                return Err(invalid("media.publish_keys", &key.stream, "empty key"));
            }
        }
        for (field, url) in [
            ("media.on_publish", &m.on_publish),
            ("media.on_unpublish", &m.on_unpublish),
        ] {
            if !url.is_empty() && crate::control::webhook::check_url(url).is_err() {
                return Err(invalid(
                    field,
                    url,
                    "webhooks must be http://host[:port]/path URLs (no user@, spaces or controls)",
                ));
            }
        }
        Ok(())
    }

    fn validate_transcode(&self) -> Result<(), ConfigError> {
        let t = &self.transcode;
        if let Some(w) = t
            .watermarks
            .iter()
            .find(|w| w.text.is_empty() && w.image.is_empty() && w.filter.is_empty())
        {
            return Err(invalid(
                "transcode.watermarks",
                &w.stream,
                "an entry needs a text, an image or a filter",
            ));
        }
        let mut names: Vec<&str> = vec!["source", "audio"];
        for rung in &t.ladder {
            if !shardcast_media::manifest::is_valid_name(&rung.name)
                || names.contains(&rung.name.as_str())
            {
                return Err(invalid(
                    "transcode.ladder.name",
                    &rung.name,
                    "rung names must be unique, not source or audio, and only ASCII letters, \
                     digits, '-', '_' and '.'",
                ));
            }
            names.push(&rung.name);
            if rung.height < 2 || rung.height > 4320 || rung.width > 7680 {
                return Err(invalid(
                    "transcode.ladder.height",
                    rung.height,
                    "height must be 2..=4320 and width at most 7680",
                ));
            }
            if rung.bitrate_kbps < 50 || rung.bitrate_kbps > 100_000 {
                return Err(invalid(
                    "transcode.ladder.bitrate_kbps",
                    rung.bitrate_kbps,
                    "must be 50..=100000",
                ));
            }
        }
        if t.opus_kbps != 0 && !(6..=510).contains(&t.opus_kbps) {
            return Err(invalid(
                "transcode.opus_kbps",
                t.opus_kbps,
                "must be 0 (no Opus) or 6..=510",
            ));
        }
        if t.aac_kbps != 0 && !(16..=512).contains(&t.aac_kbps) {
            return Err(invalid(
                "transcode.aac_kbps",
                t.aac_kbps,
                "must be 0 (no AAC rendition) or 16..=512",
            ));
        }
        if !matches!(t.codec.as_str(), "h264" | "hevc") {
            return Err(invalid("transcode.codec", &t.codec, "must be h264 or hevc"));
        }
        if t.ladder.len() > 8 {
            return Err(invalid(
                "transcode.ladder",
                t.ladder.len(),
                "at most 8 rungs",
            ));
        }
        if t.queue_max_ms == 0 || t.queue_max_samples == 0 || t.streams_per_worker == 0 {
            return Err(invalid(
                "transcode.queue_max_ms",
                t.queue_max_ms,
                "queue_max_ms, queue_max_samples and streams_per_worker must be ≥ 1",
            ));
        }
        if t.cores.iter().any(|c| self.shards.cores.contains(c)) {
            return Err(invalid(
                "transcode.cores",
                format!("{:?}", t.cores),
                "a core runs either shards or transcode threads, not both",
            ));
        }
        Ok(())
    }

    /// Process-wide fields: the I/O backend and the log level.
    fn validate_process(&self) -> Result<(), ConfigError> {
        if !matches!(self.shards.io.as_str(), "auto" | "uring" | "epoll") {
            return Err(invalid(
                "shards.io",
                &self.shards.io,
                "must be auto, uring or epoll",
            ));
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(invalid(
                "log.level",
                &self.log.level,
                "must be error, warn, info, debug or trace",
            ));
        }
        Ok(())
    }
}
