//! The fetcher thread: single-flight origin fetches for every shard of the edge, its cache,
//! and its origin connections. See the module doc of `crate::edge`.

use super::cache::{CachedObject, ObjectCache};
use super::conn::OriginConn;
use super::msg::{EdgeReply, EdgeRequest, FetchRequest, ObjectHead, OriginWait};
use super::origins::Origin;
use super::ring::HashRing;
use super::EdgeOptions;
use crate::common::auth::{Audience, Claims, Role};
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use shardcast_engine::{ShardId, WorkerEndpoint, WorkerInbox};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod exchange;

/// The doorbell's token; connections use their slab key.
const DOORBELL: Token = Token(usize::MAX);
/// Longest sleep with nothing to do (expiry runs at least this often).
const IDLE_WAIT_MS: u64 = 100;
/// Bytes read from a socket at once.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Origins beyond the configured ones that the origin map may name.
const MAPPED_ORIGINS_MAX: usize = 256;
/// The edge's own playback token for a stream is minted for this long.
const EDGE_TOKEN_S: u64 = 3600;

/// Runs the fetcher until the runtime drains.
pub fn run_fetcher(endpoint: WorkerEndpoint<ShardMsg>, options: Arc<EdgeOptions>) {
    let poll = match Poll::new() {
        Ok(poll) => poll,
        Err(e) => {
            log::error!("edge: cannot start the fetcher's poller: {e}; edge misses fail");
            return run_without_poller(endpoint);
        }
    };
    let doorbell = endpoint.doorbell_fd();
    if let Err(e) = poll
        .registry()
        .register(&mut SourceFd(&doorbell), DOORBELL, Interest::READABLE)
    {
        log::error!("edge: cannot watch the fetcher's doorbell: {e}");
        return run_without_poller(endpoint);
    }
    let names: Vec<String> = options.origins.iter().map(|(_, n)| n.clone()).collect();
    let map = options.origin_map.as_ref().map(|o| {
        super::map::OriginMap::new(super::map::OriginMapOptions {
            url: o.url.clone(),
            prefix: o.prefix.clone(),
            timeout_ms: o.timeout_ms,
            reconnect_ms: o.reconnect_ms,
        })
    });
    let mut fetcher = Fetcher {
        ring: HashRing::new(&names, options.virtual_nodes),
        origins: (options.origins.iter())
            .map(|(addr, name)| Origin::new(*addr, name.clone()))
            .collect(),
        idle: vec![Vec::new(); options.origins.len()],
        pending: vec![VecDeque::new(); options.origins.len()],
        cache: ObjectCache::new(options.cache_max_bytes),
        conns: Slab::new(),
        serial: 0,
        flights: HashMap::new(),
        preferred: HashMap::new(),
        tokens: HashMap::new(),
        map,
        log_budget: Default::default(),
        scratch: vec![0; READ_CHUNK_BYTES],
        started: Instant::now(),
        endpoint,
        poll,
        options,
    };
    fetcher.run();
}

/// Without a poller every miss is answered 503 until the edge stops.
fn run_without_poller(mut endpoint: WorkerEndpoint<ShardMsg>) {
    loop {
        let mut drain = false;
        let mut asks = Vec::new();
        endpoint.receive(256, |inbox| match inbox {
            WorkerInbox::Msg(from, ShardMsg::Edge(EdgeRequest::Fetch(req))) => {
                asks.push((from, req.key))
            }
            WorkerInbox::Msg(..) => {}
            WorkerInbox::Drain => drain = true,
        });
        for (from, key) in asks {
            let reply = EdgeReply::Failed {
                key,
                status: 503,
                reason: "the edge cannot reach origins",
            };
            endpoint.send(from, ShardMsg::EdgeReply(Box::new(reply)));
        }
        if drain {
            return;
        }
        endpoint.flush();
        endpoint.wait(100);
    }
}

/// What a socket is ready for.
#[derive(Clone, Copy)]
struct Readiness {
    writable: bool,
    readable: bool,
}

/// One object being fetched.
struct Flight {
    stream: Arc<str>,
    wait: OriginWait,
    /// Shards that asked, each told once.
    shards: Vec<ShardId>,
    /// Origins to try, in order, and the index of the next.
    order: Vec<usize>,
    next: usize,
    /// The origin asked now, and the connection (None: waiting for one).
    origin: Option<usize>,
    conn: Option<usize>,
    head: Option<ObjectHead>,
    chunks: Vec<Bytes>,
    bytes: u64,
    asked_ms: u64,
    deadline_ms: u64,
    /// A reused connection died before answering, and the request was sent again on a new one.
    resent: bool,
    /// An origin answered 404 and the next ones were tried: the answer if they all fail.
    not_found: bool,
}

struct Fetcher {
    endpoint: WorkerEndpoint<ShardMsg>,
    options: Arc<EdgeOptions>,
    poll: Poll,
    ring: HashRing,
    origins: Vec<Origin>,
    /// Idle connections per origin.
    idle: Vec<Vec<usize>>,
    /// Flights waiting for a connection, per origin.
    pending: Vec<VecDeque<Arc<str>>>,
    /// Connections, the flight each serves, and a serial that tells a reused slab key apart.
    conns: Slab<(OriginConn, Option<Arc<str>>, u64)>,
    serial: u64,
    flights: HashMap<Arc<str>, Flight>,
    cache: ObjectCache,
    /// The origin that last answered 200 for a stream, until when.
    preferred: HashMap<Arc<str>, (usize, u64)>,
    /// The edge's playback token per stream (with signed URLs), and when it expires.
    tokens: HashMap<Arc<str>, (String, u64)>,
    /// `edge.origin_map`: the origins streams are registered on.
    map: Option<super::map::OriginMap>,
    /// Failures are logged within a budget: a dead origin under load must not flood the log.
    log_budget: crate::common::log_budget::LogBudget,
    scratch: Vec<u8>,
    started: Instant,
}

impl Fetcher {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut inbox = Vec::new();
        loop {
            let mut drain = false;
            self.endpoint.receive(256, |msg| match msg {
                WorkerInbox::Msg(from, msg) => inbox.push((from, msg)),
                WorkerInbox::Drain => drain = true,
            });
            let busy = !inbox.is_empty();
            for (from, msg) in inbox.drain(..) {
                match msg {
                    ShardMsg::Edge(EdgeRequest::Fetch(request)) => self.fetch(from, *request),
                    _ => {
                        log::error!("edge fetcher: a message meant for someone else from {from:?}")
                    }
                }
            }
            if drain {
                log::info!(
                    "edge fetcher: stopping with {} fetches out",
                    self.flights.len()
                );
                return;
            }
            let now = self.now_ms();
            let wait_ms = if busy || self.endpoint.overflow_len() > 0 {
                0
            } else {
                self.next_deadline_ms()
                    .map_or(IDLE_WAIT_MS, |at| at.saturating_sub(now))
                    .min(IDLE_WAIT_MS)
            };
            self.sleep(&mut events, wait_ms);
            let ready: Vec<(usize, Readiness)> = events
                .iter()
                .filter(|e| e.token() != DOORBELL)
                .map(|e| {
                    let readiness = Readiness {
                        writable: e.is_writable() || e.is_error(),
                        readable: e.is_readable() || e.is_read_closed() || e.is_error(),
                    };
                    (e.token().0, readiness)
                })
                .collect();
            for (key, readiness) in ready {
                self.conn_ready(key, readiness);
            }
            self.expire();
            self.endpoint.flush();
        }
    }

    fn sleep(&mut self, events: &mut Events, wait_ms: u64) {
        let sleep = wait_ms > 0 && self.endpoint.park();
        let timeout = Duration::from_millis(if sleep { wait_ms } else { 0 });
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error!("edge fetcher: poll failed: {e}");
            }
            events.clear();
        }
        if sleep {
            self.endpoint.woke();
        }
    }

    fn next_deadline_ms(&self) -> Option<u64> {
        self.flights.values().map(|f| f.deadline_ms).min()
    }

    /// A shard's miss: from the cache, joined to a flight, or a new flight.
    fn fetch(&mut self, from: ShardId, request: FetchRequest) {
        let now = self.now_ms();
        let counters = self.options.counters.clone();
        if let Some((object, expires_ms)) = self.cache.get(&request.key, now) {
            let object = object.clone();
            bump(&counters.fetcher_hits, 1);
            return self.replay(from, &request.key, &object, expires_ms - now);
        }
        if let Some(flight) = self.flights.get_mut(&request.key) {
            bump(&counters.coalesced, 1);
            if flight.shards.contains(&from) {
                return;
            }
            flight.shards.push(from);
            let (head, chunks) = (flight.head, flight.chunks.clone());
            if let Some(head) = head {
                self.tell(&[from], &request.key, |key| EdgeReply::Head { key, head });
                for bytes in chunks {
                    self.tell(&[from], &request.key, |key| EdgeReply::Body {
                        key,
                        bytes: bytes.clone(),
                    });
                }
            }
            return;
        }
        if self.flights.len() >= self.options.fetches_max {
            bump(&counters.fetches_refused, 1);
            let reason = "the edge is fetching too much (edge.fetches_max)";
            return self.tell(&[from], &request.key, |key| EdgeReply::Failed {
                key,
                status: 503,
                reason,
            });
        }
        let order = self.order_for(&request.stream, now);
        let flight = Flight {
            stream: request.stream,
            wait: request.wait,
            shards: vec![from],
            order,
            next: 0,
            origin: None,
            conn: None,
            head: None,
            chunks: Vec::new(),
            bytes: 0,
            asked_ms: now,
            deadline_ms: now,
            resent: false,
            not_found: false,
        };
        self.flights.insert(request.key.clone(), flight);
        set(&counters.flights, self.flights.len() as u64);
        self.attempt(&request.key);
    }

    /// A cached object to one shard.
    fn replay(&mut self, to: ShardId, key: &Arc<str>, object: &CachedObject, keep_ms: u64) {
        let head = object.head;
        self.tell(&[to], key, |key| EdgeReply::Head { key, head });
        for bytes in &object.chunks {
            self.tell(&[to], key, |key| EdgeReply::Body {
                key,
                bytes: bytes.clone(),
            });
        }
        self.tell(&[to], key, |key| EdgeReply::End {
            key,
            outcome: Ok(keep_ms),
        });
    }

    fn tell(&mut self, shards: &[ShardId], key: &Arc<str>, reply: impl Fn(Arc<str>) -> EdgeReply) {
        for &to in shards {
            self.endpoint
                .send(to, ShardMsg::EdgeReply(Box::new(reply(key.clone()))));
        }
    }

    /// The origins to try for `stream`: the one the origin map names, the one that answered
    /// last, then its ring order.
    fn order_for(&mut self, stream: &Arc<str>, now: u64) -> Vec<usize> {
        let mut order = self.ring.order(stream);
        match self.preferred.get(stream) {
            Some(&(origin, until)) if until > now => {
                order.retain(|&o| o != origin);
                order.insert(0, origin);
            }
            Some(_) => {
                self.preferred.remove(stream);
            }
            None => {}
        }
        let mapped = self.map.as_mut().and_then(|m| m.origin_of(stream));
        if let Some(origin) = mapped.and_then(|name| self.origin_named(&name)) {
            order.retain(|&o| o != origin);
            order.insert(0, origin);
        }
        order
    }

    /// The index of the origin at `name` (`ADDR:PORT`), added when the origin map names one
    /// not configured (at most [`MAPPED_ORIGINS_MAX`] such).
    fn origin_named(&mut self, name: &str) -> Option<usize> {
        if let Some(at) = self.origins.iter().position(|o| o.name == name) {
            return Some(at);
        }
        let configured = self.options.origins.len();
        if self.origins.len() >= configured + MAPPED_ORIGINS_MAX {
            return None;
        }
        let Ok(addr) = name.parse() else {
            if self.log_budget.allow(self.now_ms()) {
                log::warn!("edge: the origin map names {name:?}, not an ADDR:PORT");
            }
            return None;
        };
        log::info!("edge: origin {name} (from the origin map)");
        self.origins.push(Origin::new(addr, name.to_string()));
        self.idle.push(Vec::new());
        self.pending.push(VecDeque::new());
        Some(self.origins.len() - 1)
    }

    /// Sends the flight's request to its next available origin, or fails it when none is left.
    fn attempt(&mut self, key: &Arc<str>) {
        let now = self.now_ms();
        loop {
            let Some(flight) = self.flights.get_mut(key) else {
                return;
            };
            let Some(&origin) = flight.order.get(flight.next) else {
                if flight.not_found {
                    return self.fail(key, 404, "not found");
                }
                let reason = if flight.order.iter().all(|&o| self.origins[o].is_open(now)) {
                    "every origin is failing"
                } else {
                    "no origin answered"
                };
                return self.fail(key, 502, reason);
            };
            flight.next += 1;
            if !self.origins[origin].admit(now) {
                continue;
            }
            let wait = flight.wait;
            let timeout_ms = self.timeout_ms(origin, wait);
            let Some(flight) = self.flights.get_mut(key) else {
                return;
            };
            flight.origin = Some(origin);
            flight.asked_ms = now;
            flight.deadline_ms = now + timeout_ms;
            log::debug!(
                "edge: {key}: asking {} (within {timeout_ms} ms)",
                self.origins[origin].name
            );
            match self.connection(origin) {
                Ok(Some(conn)) => {
                    if self.send(conn, key) {
                        return;
                    }
                }
                Ok(None) => {
                    // Every connection to it is busy: the next one freed takes this flight.
                    self.pending[origin].push_back(key.clone());
                    return;
                }
                Err(e) => {
                    if self.log_budget.allow(now) {
                        let name = &self.origins[origin].name;
                        log::warn!("edge: cannot connect to origin {name}: {e}");
                    }
                    self.origin_failed(origin, now);
                }
            }
        }
    }

    fn timeout_ms(&self, origin: usize, wait: OriginWait) -> u64 {
        match wait {
            OriginWait::Immediate => self.origins[origin].timeout_ms(
                self.options.origin_timeout_min_ms,
                self.options.origin_timeout_ms,
            ),
            OriginWait::Blocking => self.options.blocking_timeout_ms,
        }
    }

    /// An idle connection to `origin`, a new one, or None at the connection bound.
    fn connection(&mut self, origin: usize) -> std::io::Result<Option<usize>> {
        if let Some(conn) = self.idle[origin].pop() {
            return Ok(Some(conn));
        }
        if self.origins[origin].open >= self.options.origin_connections {
            return Ok(None);
        }
        let mut conn = OriginConn::connect(origin, self.origins[origin].addr)?;
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        self.poll.registry().register(
            &mut conn.socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.serial += 1;
        entry.insert((conn, None, self.serial));
        self.origins[origin].open += 1;
        Ok(Some(token.0))
    }

    /// Sends `key`'s request on `conn`; false when the connection failed at once (it is gone,
    /// and the origin's failure counted).
    fn send(&mut self, conn: usize, key: &Arc<str>) -> bool {
        let Some(flight) = self.flights.get_mut(key) else {
            self.park_idle(conn);
            return true;
        };
        flight.conn = Some(conn);
        let stream = flight.stream.clone();
        let target = self.target(key, &stream);
        let (origin_conn, attached, _) = &mut self.conns[conn];
        *attached = Some(key.clone());
        let host = self.origins[origin_conn.origin].name.clone();
        bump(&self.options.counters.origin_requests, 1);
        if origin_conn.start(&host, &target).is_ok() {
            return true;
        }
        let origin = origin_conn.origin;
        let reused = origin_conn.reused;
        self.close_conn(conn);
        if let Some(flight) = self.flights.get_mut(key) {
            flight.conn = None;
            if reused && !flight.resent {
                // The origin closed an idle connection: not its failure; one more try.
                flight.resent = true;
                flight.next -= 1;
                return false;
            }
        }
        self.origin_failed(origin, self.now_ms());
        false
    }

    /// The request target for `key`: with signed playback URLs, the edge's own token added.
    fn target(&mut self, key: &str, stream: &Arc<str>) -> String {
        let Some(signer) = &self.options.playback_tokens else {
            return key.to_string();
        };
        let now_s = crate::common::clock::wall_s();
        let token = match self.tokens.get(stream) {
            Some((token, expires)) if *expires > now_s + EDGE_TOKEN_S / 2 => token.clone(),
            _ => {
                let claims = Claims {
                    user: "edge".into(),
                    room: stream.to_string(),
                    role: Role::Viewer,
                    expires_unix_s: now_s + EDGE_TOKEN_S,
                    audience: Audience::Play,
                };
                let token = signer.mint(&claims);
                self.tokens
                    .insert(stream.clone(), (token.clone(), now_s + EDGE_TOKEN_S));
                token
            }
        };
        let separator = if key.contains('?') { '&' } else { '?' };
        format!(
            "{key}{separator}token={}",
            crate::common::query::encode(&token)
        )
    }

    /// Flights past their deadline fail over (no head yet) or end (mid-body); the cache
    /// drops what expired.
    fn expire(&mut self) {
        let now = self.now_ms();
        let late: Vec<Arc<str>> = (self.flights.iter())
            .filter(|(_, f)| f.deadline_ms <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            let Some(flight) = self.flights.get_mut(&key) else {
                continue;
            };
            let (conn, origin, has_head) =
                (flight.conn.take(), flight.origin, flight.head.is_some());
            if let Some(conn) = conn {
                self.close_conn(conn);
            }
            bump(&self.options.counters.origin_timeouts, 1);
            if let Some(origin) = origin {
                self.origin_failed(origin, now);
            }
            if has_head {
                self.abort(&key, "the origin went silent mid-body");
            } else {
                self.attempt(&key);
            }
        }
        if self.cache.expire(now) > 0 {
            set(&self.options.counters.cache_bytes, self.cache.bytes());
            set(
                &self.options.counters.cache_objects,
                self.cache.len() as u64,
            );
        }
    }
}
