//! Rooms across hosts: the relay thread between this host's room homes and Redis, as
//! Centrifugo's Redis engine does it.
//!
//! Per room, Redis holds (under `state.redis_prefix`):
//! - `room:{room}:meta`, a hash: `seq` (the last seq given), `likes` (the like total) and
//!   `epoch` (made when the hash is: a room whose hash Redis lost starts a new epoch, and a
//!   viewer's position in the old one means nothing);
//! - `room:{room}:stream`, a stream of published batches (entry `F-0` starts at seq F),
//!   trimmed to about `danmaku.history_max` events;
//! - `room:{room}:online`, a hash: host → `count:deadline_ms`, every host's member count,
//!   each ignored once its deadline passes (Redis 7.0 has no per-field TTL);
//! - the channel `room:{room}`: every published batch.
//!
//! Every key expires `danmaku.cluster_room_ttl_s` after the room's last batch.
//!
//! A home publishes each outbound batch ([`RelayAsk::Publish`]) with one script that numbers
//! it (`HINCRBY seq`), adds its likes, appends it to the stream and PUBLISHes it, atomically.
//! Every host subscribed to the room, this one included, gets it back numbered and applies it
//! in order: one order on every host. A host subscribes only to the rooms homed on it; each
//! batch is decoded once per host and encoded once for every member shard by the room's home.
//!
//! Failure: when Redis is unreachable, every shard is told ([`RelayReply::Status`]), and
//! relayed rooms order their events locally (chats still reach this host's viewers;
//! `rooms_degraded` and the log say so). Every `state.redis_reconnect_ms` the thread tries
//! again; once back, it resubscribes every room and sends each a fresh [`RelayNews::Synced`],
//! after which the room's members resume or Resync.
//!
//! The thread blocks on Redis, never a shard: it reads the subscription with a timeout of
//! [`POLL_MS`] and checks the mesh between reads, so a publish waits at most that long to
//! leave.

use crate::common::counters::{bump, set};
use crate::edge::msg::OriginMapMsg;
use crate::shard::msg::ShardMsg;
use crate::state::msg::{
    Reach, RelayAsk, RelayNews, RelayReply, RelayRequest, RelayedBatch, RoomNews,
};
use crate::state::pubsub::{Reply, Subscriber};
use crate::state::StateCounters;
use shardcast_danmaku::relay::{decode, encode, RelayLimits};
use shardcast_danmaku::{EventBody, RoomEvent, RoomId};
use shardcast_engine::{ShardId, WorkerEndpoint, WorkerInbox};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait on the subscription before the mesh is checked again, ms.
pub const POLL_MS: u64 = 2;

/// Requests taken from the mesh per pass.
const REQUESTS_PER_PASS: usize = 4096;

/// Numbers, stores and publishes one batch. KEYS: meta, stream. ARGV: the encoded events,
/// their count, likes added, an epoch for a new room, events to keep, TTL (s), the channel.
/// Answers the batch's first seq.
const PUBLISH_LUA: &str = r"
local meta, stream = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[4]
  redis.call('HSET', meta, 'epoch', epoch)
  redis.call('DEL', stream)
end
local n = tonumber(ARGV[2])
local last = redis.call('HINCRBY', meta, 'seq', n)
local likes = redis.call('HINCRBY', meta, 'likes', ARGV[3])
local first = last - n + 1
local message = string.format('%d %d %s\n', first, likes, epoch) .. ARGV[1]
local keep_from = math.max(1, last - tonumber(ARGV[5]) + 1)
redis.call('XADD', stream, 'MINID', '~', string.format('%d-0', keep_from),
  string.format('%d-0', first), 'm', message)
redis.call('EXPIRE', meta, ARGV[6])
redis.call('EXPIRE', stream, ARGV[6])
redis.call('PUBLISH', ARGV[7], message)
return first
";

/// A room's order now. KEYS: meta, stream. ARGV: an epoch for a new room, TTL (s), most
/// batches to return. Answers {seq, likes, epoch, newest batches newest first}.
/// How often this origin's live streams are registered again in the origin map, and how
/// long an entry lives after its last registration (an origin that dies stops refreshing).
const ORIGIN_REFRESH_MS: u64 = 3_000;
const ORIGIN_TTL_MS: u64 = 10_000;

/// Removes a stream's origin-map entry if it still names this origin (another may have taken
/// the stream since). KEYS[1]: the entry; ARGV[1]: this origin's address.
const UNREGISTER_ORIGIN_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

const SYNC_LUA: &str = r"
local meta, stream = KEYS[1], KEYS[2]
if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', stream)
end
redis.call('EXPIRE', meta, ARGV[2])
local m = redis.call('HMGET', meta, 'seq', 'likes', 'epoch')
local entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', ARGV[3])
return {m[1] or '0', m[2] or '0', m[3], entries}
";

/// Records this host's member count and sums every host's live one. KEYS: online. ARGV:
/// host, count, how long it counts (ms). Answers the sum.
const ONLINE_LUA: &str = r"
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', key, ARGV[1], ARGV[2] .. ':' .. string.format('%d', now + ttl))
redis.call('PEXPIRE', key, ttl * 2)
local sum = 0
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local count, deadline = string.match(all[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(deadline) > now then
    sum = sum + tonumber(count)
  else
    redis.call('HDEL', key, all[i])
  end
end
return sum
";

/// The sync script's answer: seq, likes, epoch, and the newest batches (id, fields).
type SyncAnswer = (
    String,
    String,
    String,
    Vec<(String, HashMap<String, Vec<u8>>)>,
);

/// What the relay thread needs to know.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    pub url: String,
    pub prefix: String,
    pub timeout_ms: u64,
    pub reconnect_ms: u64,
    /// This host's name in online counts (unique per process).
    pub host: String,
    /// Events a room's stream keeps (about): `danmaku.history_max`.
    pub keep_events: u64,
    /// Every room key expires this long after the room's last batch, s.
    pub room_ttl_s: u64,
    /// How long a host's member count counts after it reports it, ms.
    pub online_ttl_ms: u64,
    /// What a relayed batch may hold.
    pub limits: RelayLimits,
    /// Shards on this host (rooms' homes are placed among them).
    pub shards: usize,
    /// `state.origin_advertise`: the address this origin registers its live streams under
    /// (the origin map edges read); None: not registered.
    pub origin_advertise: Option<String>,
}

/// A room this host is subscribed to.
struct Watched {
    room: RoomId,
    home: ShardId,
}

/// The relay thread's state.
pub struct Relay {
    options: RelayOptions,
    client: redis::Client,
    /// Commands (scripts); `None` while Redis is unreachable.
    con: Option<redis::Connection>,
    subscriber: Option<Subscriber>,
    /// Channel → room.
    watched: HashMap<Vec<u8>, Watched>,
    publish: redis::Script,
    sync: redis::Script,
    online: redis::Script,
    /// When Redis was last found unreachable.
    down_since: Option<Instant>,
    last_attempt: Option<Instant>,
    /// What the shards were last told.
    told: Option<Reach>,
    encoded: Vec<u8>,
    replies: Vec<Reply>,
    counters: Arc<StateCounters>,
    /// Streams live here, kept registered in the origin map.
    origins: std::collections::BTreeSet<Arc<str>>,
    origins_refreshed: Option<Instant>,
    unregister: redis::Script,
}

impl Relay {
    pub fn new(options: RelayOptions) -> Result<Relay, String> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| format!("state.redis is not a Redis URL: {e}"))?;
        Ok(Relay {
            options,
            client,
            con: None,
            subscriber: None,
            watched: HashMap::new(),
            publish: redis::Script::new(PUBLISH_LUA),
            sync: redis::Script::new(SYNC_LUA),
            online: redis::Script::new(ONLINE_LUA),
            down_since: None,
            last_attempt: None,
            told: None,
            encoded: Vec::new(),
            replies: Vec::new(),
            counters: Arc::default(),
            origins: Default::default(),
            origins_refreshed: None,
            unregister: redis::Script::new(UNREGISTER_ORIGIN_LUA),
        })
    }

    fn key(&self, room: &RoomId, what: &str) -> String {
        format!("{}room:{}:{what}", self.options.prefix, room.as_str())
    }

    fn channel(&self, room: &RoomId) -> Vec<u8> {
        format!("{}room:{}", self.options.prefix, room.as_str()).into_bytes()
    }

    fn home(&self, room: &RoomId) -> ShardId {
        crate::danmaku::home_of(room, self.options.shards)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.options.timeout_ms.max(1))
    }

    /// Whether both connections are up.
    pub fn is_up(&self) -> bool {
        self.con.is_some() && self.subscriber.is_some()
    }

    /// Connects both connections (when down and `reconnect_ms` has passed since the last
    /// try), resubscribes every watched room and syncs each. Tells the shards on a change.
    pub fn reconnect(&mut self, out: &mut Vec<(ShardId, ShardMsg)>) {
        if self.is_up() {
            return;
        }
        let wait = Duration::from_millis(self.options.reconnect_ms);
        if self.last_attempt.is_some_and(|at| at.elapsed() < wait) {
            return;
        }
        self.last_attempt = Some(Instant::now());
        let timeout = self.timeout();
        let con = self
            .client
            .get_connection_with_timeout(timeout)
            .and_then(|con| {
                con.set_read_timeout(Some(timeout))?;
                con.set_write_timeout(Some(timeout))?;
                Ok(con)
            });
        let subscriber = Subscriber::connect(self.client.get_connection_info(), timeout);
        match (con, subscriber) {
            (Ok(mut con), Ok(mut subscriber)) => {
                // Publishes go out as EVALSHA in a pipeline: the scripts must be there.
                let loaded = [&self.publish, &self.sync, &self.online]
                    .iter()
                    .try_for_each(|script| script.load(&mut con).map(drop));
                if let Err(e) = loaded {
                    self.went_down(&format!("cannot load a script: {e}"), out);
                    return;
                }
                let channels: Vec<Vec<u8>> = self.watched.keys().cloned().collect();
                let refs: Vec<&[u8]> = channels.iter().map(|c| c.as_slice()).collect();
                if let Err(e) = subscriber.send(b"SUBSCRIBE", &refs) {
                    self.went_down(&format!("cannot subscribe: {e}"), out);
                    return;
                }
                self.con = Some(con);
                self.subscriber = Some(subscriber);
                if let Some(since) = self.down_since.take() {
                    log::warn!(
                        "Redis is back after {:.1} s: {} room(s) resubscribed and resynced",
                        since.elapsed().as_secs_f64(),
                        channels.len()
                    );
                }
                self.tell(Reach::Up, out);
                let rooms: Vec<RoomId> = self.watched.values().map(|w| w.room.clone()).collect();
                for room in rooms {
                    self.sync_room(&room, out);
                }
            }
            (Err(e), _) => self.went_down(&format!("cannot connect: {e}"), out),
            (_, Err(e)) => self.went_down(&format!("cannot connect the subscriber: {e}"), out),
        }
    }

    /// Drops both connections and tells the shards (once per outage).
    fn went_down(&mut self, why: &str, out: &mut Vec<(ShardId, ShardMsg)>) {
        self.con = None;
        self.subscriber = None;
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            bump(&self.counters.relay_outages, 1);
            log::error!(
                "Redis at {} is unreachable ({why}): rooms across hosts are degraded (chats reach \
                 this host's viewers only) and gifts are refused until it is back",
                redact(&self.options.url)
            );
        }
        self.tell(Reach::Down, out);
    }

    /// Tells every shard whether Redis is up, when that changed (or was never told).
    fn tell(&mut self, reach: Reach, out: &mut Vec<(ShardId, ShardMsg)>) {
        if self.told == Some(reach) {
            return;
        }
        self.told = Some(reach);
        set(&self.counters.relay_up, u64::from(reach == Reach::Up));
        for shard in 0..self.options.shards {
            out.push((
                ShardId(shard as u16),
                ShardMsg::RelayReply(RelayReply::Status(reach)),
            ));
        }
    }

    fn news(&self, room: &RoomId, news: RelayNews, out: &mut Vec<(ShardId, ShardMsg)>) {
        let home = self.home(room);
        let news = RoomNews {
            room: room.clone(),
            news,
        };
        out.push((home, ShardMsg::RelayReply(RelayReply::Room(Box::new(news)))));
    }

    /// Handles the requests of one pass: publishes go out in one pipeline.
    pub fn handle(
        &mut self,
        requests: Vec<(ShardId, Box<RelayRequest>)>,
        out: &mut Vec<(ShardId, ShardMsg)>,
    ) {
        let mut publishes: Vec<(RoomId, Arc<[RoomEvent]>)> = Vec::new();
        for (_, request) in requests {
            let RelayRequest { room, ask } = *request;
            match ask {
                RelayAsk::Sync => {
                    let channel = self.channel(&room);
                    if !self.watched.contains_key(&channel) {
                        let home = self.home(&room);
                        let sent = self
                            .subscriber
                            .as_mut()
                            .map(|s| s.send(b"SUBSCRIBE", &[&channel]));
                        if let Some(Err(e)) = sent {
                            self.went_down(&format!("cannot subscribe: {e}"), out);
                        }
                        self.watched.insert(
                            channel,
                            Watched {
                                room: room.clone(),
                                home,
                            },
                        );
                    }
                    // While down, the resync comes with the reconnect.
                    if self.is_up() {
                        self.sync_room(&room, out);
                    }
                }
                RelayAsk::Forget => {
                    let channel = self.channel(&room);
                    if self.watched.remove(&channel).is_some() {
                        let sent = self
                            .subscriber
                            .as_mut()
                            .map(|s| s.send(b"UNSUBSCRIBE", &[&channel]));
                        if let Some(Err(e)) = sent {
                            self.went_down(&format!("cannot unsubscribe: {e}"), out);
                        }
                    }
                }
                RelayAsk::Publish(events) => publishes.push((room, events)),
                RelayAsk::Online(count) => self.report_online(&room, count, out),
            }
        }
        if !publishes.is_empty() {
            self.publish_all(publishes, out);
        }
    }

    /// Publishes batches in one pipeline; each one that fails is bounced to its home.
    fn publish_all(
        &mut self,
        publishes: Vec<(RoomId, Arc<[RoomEvent]>)>,
        out: &mut Vec<(ShardId, ShardMsg)>,
    ) {
        if !self.is_up() {
            for (room, events) in publishes {
                self.news(&room, RelayNews::Bounced(events), out);
            }
            return;
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (room, events) in &publishes {
            self.encoded.clear();
            encode(events, &mut self.encoded);
            let likes: u64 = events
                .iter()
                .map(|e| match e.body {
                    EventBody::Like { added, .. } => added,
                    _ => 0,
                })
                .sum();
            pipe.cmd("EVALSHA")
                .arg(self.publish.get_hash())
                .arg(2)
                .arg(self.key(room, "meta"))
                .arg(self.key(room, "stream"))
                .arg(self.encoded.as_slice())
                .arg(events.len())
                .arg(likes)
                .arg(crate::common::epoch::new_epoch())
                .arg(self.options.keep_events)
                .arg(self.options.room_ttl_s)
                .arg(self.channel(room));
        }
        let answers: Result<Vec<redis::Value>, _> = match self.con.as_mut() {
            Some(con) => pipe.query(con),
            None => unreachable!("is_up"),
        };
        match answers {
            Ok(answers) => {
                let failed = answers
                    .iter()
                    .filter(|a| matches!(a, redis::Value::ServerError(_)))
                    .count();
                bump(
                    &self.counters.relay_published,
                    (answers.len() - failed) as u64,
                );
                let mut reload = false;
                for ((room, events), answer) in publishes.into_iter().zip(answers) {
                    if let redis::Value::ServerError(error) = &answer {
                        if error.code() == "NOSCRIPT" {
                            reload = true;
                        } else {
                            log::error!("Redis refused a batch of room {room}: {error:?}");
                        }
                        self.news(&room, RelayNews::Bounced(events), out);
                    }
                }
                if let (true, Some(con)) = (reload, self.con.as_mut()) {
                    // Someone flushed Redis's scripts: load them again for the next batches.
                    for script in [&self.publish, &self.sync, &self.online] {
                        if let Err(e) = script.load(con) {
                            log::error!("cannot load a relay script into Redis: {e}");
                        }
                    }
                }
            }
            Err(e) => {
                // Whether any of them went out is unknown; the homes order them here, and
                // resync when Redis is back.
                for (room, events) in publishes {
                    self.news(&room, RelayNews::Bounced(events), out);
                }
                self.went_down(&format!("publish failed: {e}"), out);
            }
        }
    }

    /// Answers [`RelayNews::Synced`] for `room`, from Redis.
    fn sync_room(&mut self, room: &RoomId, out: &mut Vec<(ShardId, ShardMsg)>) {
        let invocation = {
            let mut invocation = self.sync.prepare_invoke();
            invocation
                .key(self.key(room, "meta"))
                .key(self.key(room, "stream"))
                .arg(crate::common::epoch::new_epoch())
                .arg(self.options.room_ttl_s)
                .arg(self.options.keep_events);
            invocation
        };
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let answer: redis::RedisResult<SyncAnswer> = invocation.invoke(con);
        match answer {
            Ok((seq, likes, epoch, mut entries)) => {
                entries.reverse();
                let epoch: Arc<str> = Arc::from(epoch);
                let mut batches = Vec::with_capacity(entries.len());
                for (_, fields) in entries {
                    match fields.get("m").and_then(|m| self.parse(m)) {
                        Some(batch) if *batch.epoch == *epoch => batches.push(batch),
                        _ => log::warn!("room {room}: an unreadable batch in Redis skipped"),
                    }
                }
                let news = RelayNews::Synced {
                    epoch,
                    seq: seq.parse().unwrap_or(0),
                    likes: likes.parse().unwrap_or(0),
                    batches,
                };
                self.news(room, news, out);
            }
            Err(e) => self.went_down(&format!("sync of room {room} failed: {e}"), out),
        }
    }

    fn report_online(&mut self, room: &RoomId, count: u64, out: &mut Vec<(ShardId, ShardMsg)>) {
        if !self.is_up() {
            return;
        }
        let mut invocation = self.online.prepare_invoke();
        invocation
            .key(self.key(room, "online"))
            .arg(&self.options.host)
            .arg(count)
            .arg(self.options.online_ttl_ms);
        let Some(con) = self.con.as_mut() else {
            return;
        };
        match invocation.invoke::<u64>(con) {
            Ok(total) => self.news(room, RelayNews::Online(total), out),
            Err(e) => self.went_down(&format!("online count failed: {e}"), out),
        }
    }

    /// A published message: `first likes epoch\n` then the encoded events.
    fn parse(&self, message: &[u8]) -> Option<RelayedBatch> {
        let newline = message.iter().position(|&b| b == b'\n')?;
        let head = std::str::from_utf8(&message[..newline]).ok()?;
        let mut fields = head.split(' ');
        let first_seq = fields.next()?.parse().ok()?;
        let likes = fields.next()?.parse().ok()?;
        let epoch = fields.next()?;
        let events = decode(&message[newline + 1..], &self.options.limits).ok()?;
        Some(RelayedBatch {
            epoch: Arc::from(epoch),
            first_seq,
            likes,
            events,
        })
    }

    /// Reads the subscription for up to `wait` and routes each batch to its room's home.
    pub fn poll(&mut self, wait: Duration, out: &mut Vec<(ShardId, ShardMsg)>) {
        let Some(subscriber) = &mut self.subscriber else {
            return;
        };
        let mut replies = std::mem::take(&mut self.replies);
        if let Err(e) = subscriber.read(wait, &mut replies) {
            self.replies = replies;
            self.replies.clear();
            self.went_down(&format!("subscription lost: {e}"), out);
            return;
        }
        for reply in replies.drain(..) {
            match reply {
                Reply::Message(message) => {
                    let Some(watched) = self.watched.get(&message.channel) else {
                        continue; // unsubscribed meanwhile
                    };
                    let (room, home) = (watched.room.clone(), watched.home);
                    match self.parse(&message.payload) {
                        Some(batch) => {
                            bump(&self.counters.relay_received, 1);
                            let news = RoomNews {
                                room,
                                news: RelayNews::Batch(batch),
                            };
                            out.push((
                                home,
                                ShardMsg::RelayReply(RelayReply::Room(Box::new(news))),
                            ));
                        }
                        None => log::warn!("room {room}: an unreadable batch from Redis skipped"),
                    }
                }
                Reply::Error(error) => log::error!("Redis subscription: {error}"),
                Reply::Other => {}
            }
        }
        self.replies = replies;
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The relay thread: requests from the homes, batches from Redis, until the runtime drains.
pub fn run_relay(
    mut endpoint: WorkerEndpoint<ShardMsg>,
    mut relay: Relay,
    counters: Arc<StateCounters>,
) {
    relay.counters = counters;
    let mut out = Vec::new();
    loop {
        let mut requests = Vec::new();
        let mut origins = Vec::new();
        let mut draining = false;
        endpoint.receive(REQUESTS_PER_PASS, |message| match message {
            WorkerInbox::Msg(from, ShardMsg::Relay(request)) => requests.push((from, request)),
            WorkerInbox::Msg(_, ShardMsg::OriginMap(msg)) => origins.push(msg),
            WorkerInbox::Msg(from, _) => {
                debug_assert!(false, "only relay requests go to the relay thread");
                log::error!("relay: a message not meant for it from thread {}", from.0);
            }
            WorkerInbox::Drain => draining = true,
        });
        relay.reconnect(&mut out);
        let busy = !requests.is_empty() || !origins.is_empty();
        for msg in origins {
            relay.origin_map(msg, &mut out);
        }
        relay.refresh_origins(&mut out);
        relay.handle(requests, &mut out);
        if relay.is_up() {
            let wait = if busy { 0 } else { POLL_MS };
            relay.poll(Duration::from_millis(wait.max(1)), &mut out);
        } else if !busy {
            endpoint.wait(POLL_MS as i32 * 5);
        }
        for (to, msg) in out.drain(..) {
            endpoint.send(to, msg);
        }
        endpoint.flush();
        if draining {
            return;
        }
    }
}

impl Relay {
    /// A stream homed here went live or ended: its origin-map entry follows.
    fn origin_map(&mut self, msg: OriginMapMsg, out: &mut Vec<(ShardId, ShardMsg)>) {
        let Some(advertise) = self.options.origin_advertise.clone() else {
            return;
        };
        match msg {
            OriginMapMsg::Live(stream) => {
                self.origins.insert(stream.clone());
                self.register_origins(&[stream], out);
            }
            OriginMapMsg::Ended(stream) => {
                self.origins.remove(&stream);
                let key = crate::edge::origin_key(&self.options.prefix, &stream);
                let Some(con) = self.con.as_mut() else {
                    return; // the entry expires by itself
                };
                let removed = self.unregister.key(key).arg(advertise).invoke::<i64>(con);
                if let Err(e) = removed {
                    self.went_down(&format!("cannot unregister a stream: {e}"), out);
                }
            }
        }
    }

    /// Registers every live stream again when [`ORIGIN_REFRESH_MS`] has passed (or Redis came
    /// back since).
    fn refresh_origins(&mut self, out: &mut Vec<(ShardId, ShardMsg)>) {
        if self.origins.is_empty() || self.con.is_none() {
            return;
        }
        let due = Duration::from_millis(ORIGIN_REFRESH_MS);
        if self.origins_refreshed.is_some_and(|at| at.elapsed() < due) {
            return;
        }
        let streams: Vec<Arc<str>> = self.origins.iter().cloned().collect();
        self.register_origins(&streams, out);
    }

    fn register_origins(&mut self, streams: &[Arc<str>], out: &mut Vec<(ShardId, ShardMsg)>) {
        let (Some(advertise), Some(con)) = (&self.options.origin_advertise, self.con.as_mut())
        else {
            return; // registered at the first refresh after Redis is back
        };
        let mut pipe = redis::pipe();
        for stream in streams {
            let key = crate::edge::origin_key(&self.options.prefix, stream);
            pipe.cmd("SET")
                .arg(key)
                .arg(advertise)
                .arg("PX")
                .arg(ORIGIN_TTL_MS)
                .ignore();
        }
        match pipe.query::<()>(con) {
            Ok(()) => self.origins_refreshed = Some(Instant::now()),
            Err(e) => self.went_down(&format!("cannot register streams: {e}"), out),
        }
    }
}

/// This host's name in online counts: the hostname and the process id.
pub fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}", std::process::id())
}
