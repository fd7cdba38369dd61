//! The origin map in Redis, read by the fetcher (`edge.origin_map`): which origin a stream is
//! live on, as that origin registered it (`state.origin_advertise`, written by its relay
//! thread). Answers are kept for [`MAP_FRESH_MS`], so a busy edge asks Redis about once a
//! second per stream; while Redis is unreachable the fetcher goes on by hashing alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an answer of the map (an origin, or none) is used before asking again.
pub const MAP_FRESH_MS: u64 = 1_000;
/// Streams whose answers are kept at most; past it the stale ones go.
const KNOWN_MAX: usize = 65_536;

/// Where the map is.
pub struct OriginMapOptions {
    pub url: String,
    pub prefix: String,
    pub timeout_ms: u64,
    pub reconnect_ms: u64,
}

pub struct OriginMap {
    options: OriginMapOptions,
    client: Option<redis::Client>,
    con: Option<redis::Connection>,
    /// When the last connection attempt failed (no new attempt before `reconnect_ms`).
    failed_at: Option<Instant>,
    known: HashMap<Arc<str>, (Option<String>, Instant)>,
}

impl OriginMap {
    pub fn new(options: OriginMapOptions) -> Self {
        let client = match redis::Client::open(options.url.as_str()) {
            Ok(client) => Some(client),
            Err(e) => {
                log::error!("edge: state.redis is not a Redis URL ({e}): no origin map");
                None
            }
        };
        OriginMap {
            options,
            client,
            con: None,
            failed_at: None,
            known: HashMap::new(),
        }
    }

    /// The origin (`ADDR:PORT`) `stream` is registered on, if any (None too while Redis is
    /// unreachable). May block for up to `state.redis_timeout_ms` on a slow Redis.
    pub fn origin_of(&mut self, stream: &Arc<str>) -> Option<String> {
        let fresh = Duration::from_millis(MAP_FRESH_MS);
        if let Some((origin, at)) = self.known.get(stream) {
            if at.elapsed() < fresh {
                return origin.clone();
            }
        }
        let key = super::origin_key(&self.options.prefix, stream);
        let con = self.connection()?;
        match redis::cmd("GET").arg(key).query::<Option<String>>(con) {
            Ok(origin) => {
                if self.known.len() >= KNOWN_MAX {
                    self.known.retain(|_, (_, at)| at.elapsed() < fresh);
                }
                self.known
                    .insert(stream.clone(), (origin.clone(), Instant::now()));
                origin
            }
            Err(e) => {
                log::warn!(
                    "edge: the origin map is unreachable ({e}); hashing alone until it is back"
                );
                self.con = None;
                self.failed_at = Some(Instant::now());
                None
            }
        }
    }

    fn connection(&mut self) -> Option<&mut redis::Connection> {
        if self.con.is_none() {
            let wait = Duration::from_millis(self.options.reconnect_ms);
            if self.failed_at.is_some_and(|at| at.elapsed() < wait) {
                return None;
            }
            let timeout = Duration::from_millis(self.options.timeout_ms.max(1));
            let connected = self
                .client
                .as_ref()?
                .get_connection_with_timeout(timeout)
                .and_then(|con| {
                    con.set_read_timeout(Some(timeout))?;
                    con.set_write_timeout(Some(timeout))?;
                    Ok(con)
                });
            match connected {
                Ok(con) => {
                    self.con = Some(con);
                    self.failed_at = None;
                }
                Err(e) => {
                    if self.failed_at.is_none() {
                        log::warn!("edge: cannot reach the origin map ({e}); hashing alone until it is back");
                    }
                    self.failed_at = Some(Instant::now());
                    return None;
                }
            }
        }
        self.con.as_mut()
    }
}
