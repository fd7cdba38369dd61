//! Edge mode's settings: whether this host is an edge, and its fetcher's options, from
//! `[edge]` (and `[state]` for the origin map, `[auth]` for signed playback URLs).

use super::config::{parse_addr, Config};
use super::settings::configured_secret;
use crate::common::auth::TokenKey;
use std::sync::Arc;

/// Whether this host is an edge (`[edge] origins` set): it serves `/live/…` from origins and
/// takes no publishers.
pub fn is_edge(config: &Config) -> bool {
    !config.edge.origins.is_empty() || config.edge.origin_map
}

/// The fetcher's options of an edge.
pub fn edge_options(
    config: &Config,
    counters: Arc<crate::edge::EdgeCounters>,
) -> Result<crate::edge::EdgeOptions, String> {
    let e = &config.edge;
    let origins = (e.origins.iter())
        .map(|o| {
            let addr = parse_addr("edge.origins", o).map_err(|e| e.to_string())?;
            Ok((addr, o.clone()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let playback_tokens = if config.media.playback_tokens {
        let secret = configured_secret(config)?
            .ok_or("media.playback_tokens needs auth.secret (or auth.secret_file)")?;
        Some(TokenKey::new(&secret))
    } else {
        None
    };
    Ok(crate::edge::EdgeOptions {
        origins,
        virtual_nodes: e.virtual_nodes,
        cache_window_ms: e.cache_window_s * 1000,
        cache_max_bytes: e.cache_max_bytes,
        object_max_bytes: e.object_max_bytes,
        playlist_cache_ms: e.playlist_cache_ms,
        origin_timeout_ms: e.origin_timeout_ms,
        origin_timeout_min_ms: e.origin_timeout_min_ms,
        blocking_timeout_ms: e.blocking_timeout_ms,
        breaker_open_ms: e.breaker_open_ms,
        origin_connections: e.origin_connections,
        fetches_max: e.fetches_max,
        playback_tokens,
        origin_map: e.origin_map.then(|| crate::edge::map::OriginMapOptions {
            url: config.state.redis.clone(),
            prefix: config.state.redis_prefix.clone(),
            timeout_ms: config.state.redis_timeout_ms,
            reconnect_ms: config.state.redis_reconnect_ms,
        }),
        counters,
    })
}
