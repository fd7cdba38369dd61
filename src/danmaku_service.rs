//! Danmaku on a shard: WebSocket viewers on this shard, and the rooms whose home this shard is.
//!
//! A viewer's messages are checked here (token, size, rate, word filter) and forwarded to the
//! room's home shard (`hash(room) % shards`), which orders them (`shardcast-danmaku`'s `Room`),
//! and every batching window encodes one batch into one WebSocket frame and sends the same
//! `Bytes` to every shard with members in the room. Each shard queues that frame on each of its
//! members. When the home is this shard the same handlers run directly instead of over the mesh.
//!
//! Exactly-once, in order: a join is answered by the home on the same FIFO ring as the
//! room's later batches, with the events flushed so far (replay) and the seq live batches
//! continue from; events not yet flushed go out in the next batch. A viewer that falls behind
//! (its queue over `ws.send_queue_max_bytes`) loses its oldest batches and sees a gap it can
//! fill with History; one that stays over for `ws.stall_timeout_ms` is closed with 1008.

use crate::auth::{Role, TokenKey};
use crate::clock::{wall_ms, wall_s};
use crate::counters::{bump, set, LatencyHistogram};
use crate::shard_msg::ShardMsg;
use bytes::Bytes;
use shardcast_danmaku::{
    Admission, Batch, ChatIn, EventBody, GiftIn, GiftOutcome, HistoryOutcome, Priority, Replay,
    Room, RoomConfig, RoomEvent, RoomId, TokenBucket, WordFilter,
};
use shardcast_engine::{ConnId, Ctx, ShardId, TimerId};
use shardcast_wire::{ClientMsg, EventBodyView, EventView, VerifyLimits};
use shardcast_ws::{CloseCode, Event as WsEvent, MessageKind};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Timer keys with this bit set are room timers (the low bits index the home room table);
/// other keys are connection slots.
pub const ROOM_TIMER_BIT: u64 = 1 << 63;

/// Likes one message may carry; more is clamped.
const LIKES_PER_MESSAGE_MAX: u32 = 1000;
/// Gift count one message may carry.
const GIFTS_PER_MESSAGE_MAX: u32 = 10_000;
/// Longest user name a token may carry, in bytes.
const USER_MAX_BYTES: usize = 64;
/// Longest idempotency key, in bytes.
const IDEMPOTENCY_KEY_MAX_BYTES: usize = 64;

/// Settings shared by every shard.
pub struct DanmakuSettings {
    pub ws_limits: shardcast_ws::Limits,
    pub verify: VerifyLimits,
    pub hello_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub ping_interval_ms: u64,
    pub send_queue_max_bytes: usize,
    pub stall_timeout_ms: u64,
    pub room: Arc<RoomConfig>,
    pub chat_rate_per_s: u32,
    pub chat_burst: u32,
    pub like_rate_per_s: u32,
    pub like_burst: u32,
    pub text_max_chars: usize,
    pub history_request_max: u32,
    pub allow_anonymous: bool,
    pub heartbeat_ms: u32,
    pub filter: Option<WordFilter>,
    pub filter_reject: bool,
    pub rooms_max_per_shard: usize,
    pub tokens: TokenKey,
    /// Every shard's counters, by shard.
    pub counters: Arc<Vec<DanmakuCounters>>,
    /// Every shard's home → socket latency histogram, by shard.
    pub latency: Arc<Vec<LatencyHistogram>>,
}

crate::service_counters! {
    /// Per-shard danmaku counters.
    pub struct DanmakuCounters {
        /// WebSocket connections open on this shard.
        ws_connections: "gauge",
        /// WebSocket upgrades accepted.
        ws_upgrades: "counter",
        /// Connections closed for a protocol error (bad frames, oversize, bad UTF-8).
        ws_protocol_errors: "counter",
        /// Messages that failed FlatBuffers verification (closed with 1007).
        wire_invalid: "counter",
        /// Rooms whose home is this shard.
        rooms_home: "gauge",
        /// Rooms with members on this shard.
        rooms_local: "gauge",
        /// Hello messages received.
        in_hello: "counter",
        /// Chat messages received.
        in_chat: "counter",
        /// Like messages received.
        in_like: "counter",
        /// Gift messages received.
        in_gift: "counter",
        /// Heartbeat messages received.
        in_heartbeat: "counter",
        /// History requests received.
        in_history: "counter",
        /// Kick requests received.
        in_kick: "counter",
        /// Welcome messages sent.
        out_welcome: "counter",
        /// HistoryReply or Resync messages sent (joins with last_seq, History requests).
        out_history: "counter",
        /// Pong messages sent.
        out_pong: "counter",
        /// GiftAck messages sent.
        out_gift_ack: "counter",
        /// Requests refused with an Error message (auth, rate, size, filter, shed).
        out_errors: "counter",
        /// Chats refused by the per-connection rate limit.
        rate_limited: "counter",
        /// Chats masked by the word filter.
        filter_masked: "counter",
        /// Chats rejected by the word filter.
        filter_rejected: "counter",
        /// Batches cut by rooms whose home is this shard.
        batches: "counter",
        /// Events ordered by rooms whose home is this shard.
        events: "counter",
        /// Chats shed by room admission (normal and paid).
        shed: "counter",
        /// Frames queued on member connections (one per member per broadcast).
        deliveries: "counter",
        /// Broadcast frames dropped from slow viewers' queues.
        dropped: "counter",
        /// Slow viewers closed after ws.stall_timeout_ms over the queue cap.
        stalled_closed: "counter",
        /// Joins with last_seq answered from the history window.
        resume_hits: "counter",
        /// Joins or History requests answered with Resync.
        resume_misses: "counter",
        /// Gifts accepted.
        gifts: "counter",
        /// Gift retries recognised by idempotency key.
        gift_duplicates: "counter",
        /// Connections kicked by an admin.
        kicked: "counter",
    }
}

/// Danmaku messages between shards.
pub enum DanmakuMsg {
    /// Viewer shard → home: a connection joins; `members` is the sender's count for the room
    /// including it.
    Join {
        room: RoomId,
        conn: ConnId,
        last_seq: u64,
        members: u32,
    },
    /// Viewer shard → home: the sender's member count for the room changed.
    Members { room: RoomId, members: u32 },
    /// Viewer shard → home: a chat that passed the viewer's checks.
    Chat {
        room: RoomId,
        conn: ConnId,
        user: Arc<str>,
        text: Arc<str>,
        color: u32,
        mode: shardcast_danmaku::ChatMode,
        paid: bool,
    },
    /// Viewer shard → home: likes.
    Like { room: RoomId, count: u32 },
    /// Viewer shard → home: a gift.
    Gift {
        room: RoomId,
        conn: ConnId,
        user: Arc<str>,
        gift_id: u32,
        count: u32,
        key: Arc<str>,
    },
    /// Viewer shard → home: a History request.
    History {
        room: RoomId,
        conn: ConnId,
        from_seq: u64,
        limit: u32,
    },
    /// Viewer shard → home: an admin kicks `user` from the room.
    Kick {
        room: RoomId,
        user: Arc<str>,
        reason: Arc<str>,
    },
    /// Home → viewer shard: the answer to Join. `frames` follow the Welcome (a replay or a
    /// Resync); `refused` carries an Error frame when the room could not be joined.
    Joined {
        room: RoomId,
        conn: ConnId,
        seq: u64,
        online: u64,
        frames: Vec<Bytes>,
        refused: Option<Bytes>,
    },
    /// Home → viewer shard: one frame for one connection (a reply).
    Reply { conn: ConnId, frame: Bytes },
    /// Home → viewer shards: a frame for every member of the room.
    Broadcast {
        room: RoomId,
        frame: Bytes,
        created: Instant,
        /// Close the members whose user is this, after sending the frame (a kick).
        kick_user: Option<Arc<str>>,
    },
}

enum Session {
    /// Upgraded; waiting for Hello.
    AwaitHello,
    /// Join sent to the home shard; waiting for Joined.
    Joining { local: u32 },
    /// A member of a local room.
    Joined { local: u32, position: u32 },
    /// A close frame is queued; input is ignored.
    Closing,
}

/// One WebSocket connection's state.
struct WsConn {
    conn: ConnId,
    decoder: shardcast_ws::Decoder,
    session: Session,
    user: Arc<str>,
    role: Option<Role>,
    chat_bucket: TokenBucket,
    like_bucket: TokenBucket,
    last_rx_ms: u64,
    ping_outstanding: bool,
    over_cap_since_ms: Option<u64>,
    timer: Option<TimerId>,
}

/// The members of a room on this shard.
struct LocalRoom {
    room: RoomId,
    home: ShardId,
    members: Vec<ConnId>,
    joining: u32,
}

/// A room whose home is this shard.
struct HomeRoom {
    room: Room,
    id: RoomId,
    timer: Option<TimerId>,
    /// Since when nobody is subscribed (the room is dropped after history_s).
    empty_since_ms: Option<u64>,
}

/// The danmaku state of one shard.
pub struct Danmaku {
    settings: Arc<DanmakuSettings>,
    shard: ShardId,
    shards: usize,
    conns: Vec<Option<WsConn>>,
    locals: Vec<Option<LocalRoom>>,
    local_index: HashMap<RoomId, u32>,
    free_locals: Vec<u32>,
    homes: Vec<Option<HomeRoom>>,
    home_index: HashMap<RoomId, u32>,
    free_homes: Vec<u32>,
    encoder: shardcast_wire::Encoder,
    scratch: Vec<u8>,
    inbox: Vec<(MessageKindTag, Vec<u8>)>,
    open: u64,
    log_budget: LogBudget,
}

/// Caps per-connection log lines (bad frames, bad messages) so a flood of bad clients cannot
/// flood the log: at most `LINES_PER_S` a second per shard, the rest counted and reported.
struct LogBudget {
    window_start_ms: u64,
    lines: u32,
    suppressed: u64,
}

impl LogBudget {
    const LINES_PER_S: u32 = 10;

    fn allow(&mut self, now_ms: u64) -> bool {
        if now_ms >= self.window_start_ms + 1000 {
            if self.suppressed > 0 {
                log::info!("{} similar log lines suppressed", self.suppressed);
            }
            *self = LogBudget {
                window_start_ms: now_ms,
                lines: 0,
                suppressed: 0,
            };
        }
        if self.lines < Self::LINES_PER_S {
            self.lines += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum MessageKindTag {
    Binary,
    Text,
    Ping,
    Pong,
    Close(Option<u16>),
}

/// Puts `value` in a free slot of `slots` (one listed in `free`, else a new one) and returns
/// its index.
fn slab_insert<T>(slots: &mut Vec<Option<T>>, free: &mut Vec<u32>, value: T) -> u32 {
    match free.pop() {
        Some(index) => {
            slots[index as usize] = Some(value);
            index
        }
        None => {
            slots.push(Some(value));
            slots.len() as u32 - 1
        }
    }
}

/// The home shard of `room`.
pub fn home_of(room: &RoomId, shards: usize) -> ShardId {
    crate::shard_msg::home_shard("room", room.as_str(), shards)
}

impl Danmaku {
    /// The state for one shard with a connection table of `capacity` slots.
    pub fn new(
        settings: Arc<DanmakuSettings>,
        shard: ShardId,
        shards: usize,
        capacity: usize,
    ) -> Self {
        Danmaku {
            settings,
            shard,
            shards,
            conns: (0..capacity).map(|_| None).collect(),
            locals: Vec::new(),
            local_index: HashMap::new(),
            free_locals: Vec::new(),
            homes: Vec::new(),
            home_index: HashMap::new(),
            free_homes: Vec::new(),
            encoder: shardcast_wire::Encoder::new(),
            scratch: Vec::new(),
            inbox: Vec::new(),
            open: 0,
            log_budget: LogBudget {
                window_start_ms: 0,
                lines: 0,
                suppressed: 0,
            },
        }
    }

    fn counters(&self) -> &DanmakuCounters {
        &self.settings.counters[self.shard.index()]
    }

    /// True when `slot` holds a WebSocket connection.
    pub fn is_ws(&self, slot: usize) -> bool {
        self.conns[slot].is_some()
    }

    /// A connection was upgraded (the 101 is queued).
    pub fn open(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let s = &self.settings;
        let now = cx.now_ms();
        self.conns[conn.slot()] = Some(WsConn {
            conn,
            decoder: shardcast_ws::Decoder::new(s.ws_limits),
            session: Session::AwaitHello,
            user: Arc::from(""),
            role: None,
            chat_bucket: TokenBucket::new(s.chat_rate_per_s, s.chat_burst),
            like_bucket: TokenBucket::new(s.like_rate_per_s, s.like_burst),
            last_rx_ms: now,
            ping_outstanding: false,
            over_cap_since_ms: None,
            timer: None,
        });
        self.open += 1;
        let open = self.open;
        set(&self.counters().ws_connections, open);
        bump(&self.counters().ws_upgrades, 1);
        self.arm_conn_timer(cx, conn.slot());
    }

    /// Bytes arrived on a WebSocket connection.
    pub fn on_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        let slot = conn.slot();
        let Some(ws) = self.conns[slot].as_mut() else {
            return;
        };
        if matches!(ws.session, Session::Closing) {
            return;
        }
        ws.last_rx_ms = cx.now_ms();
        ws.ping_outstanding = false;
        let mut inbox = std::mem::take(&mut self.inbox);
        let result = ws
            .decoder
            .decode(data, &mut self.scratch, |event| match event {
                WsEvent::Message { kind, payload } => inbox.push((
                    match kind {
                        MessageKind::Binary => MessageKindTag::Binary,
                        MessageKind::Text => MessageKindTag::Text,
                    },
                    payload.to_vec(),
                )),
                WsEvent::Ping(payload) => inbox.push((MessageKindTag::Ping, payload.to_vec())),
                WsEvent::Pong(_) => inbox.push((MessageKindTag::Pong, Vec::new())),
                WsEvent::Close { code, .. } => {
                    inbox.push((MessageKindTag::Close(code), Vec::new()))
                }
            });
        for (kind, payload) in inbox.drain(..) {
            if !self.is_live(slot) {
                break;
            }
            match kind {
                MessageKindTag::Binary => self.on_message(cx, conn, &payload),
                MessageKindTag::Text => {
                    self.close(
                        cx,
                        conn,
                        CloseCode::UNSUPPORTED_DATA,
                        "binary messages only",
                    );
                }
                MessageKindTag::Ping => {
                    cx.send(conn, shardcast_ws::pong_frame(&payload));
                }
                MessageKindTag::Pong => {}
                MessageKindTag::Close(code) => {
                    // Echo the code (1000 when none was given) and close once it is written.
                    let code = code.map_or(CloseCode::NORMAL, CloseCode::echo);
                    self.close(cx, conn, code, "");
                }
            }
        }
        self.inbox = inbox;
        if let Err(error) = result {
            if self.is_live(slot) {
                bump(&self.counters().ws_protocol_errors, 1);
                if self.log_budget.allow(cx.now_ms()) {
                    log::info!(
                        "shard {}: closing websocket {}: {error} (close {})",
                        self.shard.0,
                        conn.slot(),
                        error.close_code().get()
                    );
                }
                self.close(cx, conn, error.close_code(), &error.to_string());
            }
        }
    }

    fn is_live(&self, slot: usize) -> bool {
        self.conns[slot]
            .as_ref()
            .is_some_and(|ws| !matches!(ws.session, Session::Closing))
    }

    /// Sends a close frame and closes the connection once it is written.
    fn close(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, code: CloseCode, reason: &str) {
        self.leave_room(cx, conn.slot());
        if let Some(ws) = self.conns[conn.slot()].as_mut() {
            ws.session = Session::Closing;
        }
        cx.send(conn, shardcast_ws::close_frame(code, reason));
        cx.close_after_flush(conn);
    }

    fn error(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, code: u16, message: &str) {
        bump(&self.counters().out_errors, 1);
        let frame = shardcast_ws::binary_frame(self.encoder.error(code, message));
        cx.send(conn, frame);
    }

    fn on_message(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, payload: &[u8]) {
        let message = match shardcast_wire::decode_client(payload, &self.settings.verify) {
            Ok(message) => message,
            Err(error) => {
                bump(&self.counters().wire_invalid, 1);
                if self.log_budget.allow(cx.now_ms()) {
                    log::info!(
                        "shard {}: closing websocket {} with 1007: invalid message: {error}",
                        self.shard.0,
                        conn.slot()
                    );
                }
                self.close(cx, conn, CloseCode::INVALID_PAYLOAD, "invalid message");
                return;
            }
        };
        let slot = conn.slot();
        let joined = match &self.conns[slot].as_ref().expect("live").session {
            Session::Joined { local, .. } => Some(*local),
            _ => None,
        };
        match message {
            ClientMsg::Hello {
                room,
                token,
                last_seq,
                ..
            } => {
                bump(&self.counters().in_hello, 1);
                self.on_hello(cx, conn, room, token, last_seq);
            }
            _ if joined.is_none() => {
                let waiting = matches!(
                    self.conns[slot].as_ref().expect("live").session,
                    Session::Joining { .. }
                );
                let why = if waiting {
                    "wait for Welcome"
                } else {
                    "say Hello first"
                };
                self.error(cx, conn, 400, why);
            }
            ClientMsg::Chat { text, color, mode } => {
                bump(&self.counters().in_chat, 1);
                self.on_chat(cx, conn, joined.expect("joined"), text, color, mode);
            }
            ClientMsg::Like { count } => {
                bump(&self.counters().in_like, 1);
                let ws = self.conns[slot].as_mut().expect("live");
                if ws.role.is_none() {
                    return self.error(cx, conn, 401, "anonymous viewers cannot like");
                }
                if !ws.like_bucket.try_take(cx.now_ms(), 1) {
                    bump(&self.counters().rate_limited, 1);
                    return self.error(cx, conn, 429, "too many likes");
                }
                let count = count.clamp(1, LIKES_PER_MESSAGE_MAX);
                let room = self.local_room_id(joined.expect("joined"));
                self.send_home(cx, DanmakuMsg::Like { room, count });
            }
            ClientMsg::Gift {
                gift_id,
                count,
                idempotency_key,
            } => {
                bump(&self.counters().in_gift, 1);
                let ws = self.conns[slot].as_ref().expect("live");
                if ws.role.is_none() {
                    return self.error(cx, conn, 401, "anonymous viewers cannot send gifts");
                }
                if idempotency_key.is_empty() || idempotency_key.len() > IDEMPOTENCY_KEY_MAX_BYTES {
                    return self.error(cx, conn, 400, "idempotency_key must be 1 to 64 bytes");
                }
                if count == 0 || count > GIFTS_PER_MESSAGE_MAX {
                    return self.error(cx, conn, 400, "gift count must be 1 to 10000");
                }
                let user = ws.user.clone();
                let room = self.local_room_id(joined.expect("joined"));
                // STORE HOOK: the home shard makes the gift durable before acknowledging it.
                self.send_home(
                    cx,
                    DanmakuMsg::Gift {
                        room,
                        conn,
                        user,
                        gift_id,
                        count,
                        key: Arc::from(idempotency_key),
                    },
                );
            }
            ClientMsg::Heartbeat { client_time_ms } => {
                bump(&self.counters().in_heartbeat, 1);
                let frame =
                    shardcast_ws::binary_frame(self.encoder.pong(client_time_ms, wall_ms()));
                cx.send(conn, frame);
            }
            ClientMsg::History { from_seq, limit } => {
                bump(&self.counters().in_history, 1);
                let limit = limit.clamp(1, self.settings.history_request_max);
                let room = self.local_room_id(joined.expect("joined"));
                self.send_home(
                    cx,
                    DanmakuMsg::History {
                        room,
                        conn,
                        from_seq,
                        limit,
                    },
                );
            }
            ClientMsg::KickUser { user, reason } => {
                bump(&self.counters().in_kick, 1);
                let ws = self.conns[slot].as_ref().expect("live");
                if ws.role != Some(Role::Admin) {
                    return self.error(cx, conn, 403, "only admins can kick");
                }
                let room = self.local_room_id(joined.expect("joined"));
                self.send_home(
                    cx,
                    DanmakuMsg::Kick {
                        room,
                        user: Arc::from(user),
                        reason: Arc::from(reason),
                    },
                );
            }
        }
    }

    fn on_hello(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        room: &str,
        token: &str,
        last_seq: u64,
    ) {
        let slot = conn.slot();
        if !matches!(
            self.conns[slot].as_ref().expect("live").session,
            Session::AwaitHello
        ) {
            return self.error(cx, conn, 400, "already joined");
        }
        let Ok(room_id) = RoomId::new(room) else {
            return self.error(cx, conn, 400, "room must be 1 to 128 bytes");
        };
        let (user, role): (Arc<str>, Option<Role>) = if token.is_empty() {
            if !self.settings.allow_anonymous {
                self.error(cx, conn, 401, "a token is required");
                return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "unauthenticated");
            }
            (Arc::from(format!("anon-{}-{}", self.shard.0, slot)), None)
        } else {
            match self.settings.tokens.verify(token, wall_s()) {
                Ok(claims)
                    if claims.allows_room(room)
                        && !claims.publish
                        && claims.user.len() <= USER_MAX_BYTES =>
                {
                    (Arc::from(claims.user), Some(claims.role))
                }
                Ok(_) => {
                    self.error(cx, conn, 403, "token not valid for this room");
                    return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "forbidden");
                }
                Err(error) => {
                    self.error(cx, conn, 401, &error.to_string());
                    return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "unauthenticated");
                }
            }
        };
        let local = self.local_room(room_id.clone());
        let entry = self.locals[local as usize].as_mut().expect("local room");
        entry.joining += 1;
        let members = entry.members.len() as u32 + entry.joining;
        let ws = self.conns[slot].as_mut().expect("live");
        ws.user = user;
        ws.role = role;
        ws.session = Session::Joining { local };
        self.send_home(
            cx,
            DanmakuMsg::Join {
                room: room_id,
                conn,
                last_seq,
                members,
            },
        );
    }

    fn on_chat(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        local: u32,
        text: &str,
        color: u32,
        mode: shardcast_wire::ChatMode,
    ) {
        let settings = self.settings.clone();
        let ws = self.conns[conn.slot()].as_mut().expect("live");
        let Some(role) = ws.role else {
            return self.error(cx, conn, 401, "anonymous viewers cannot chat");
        };
        if text.is_empty() || text.chars().count() > settings.text_max_chars {
            return self.error(cx, conn, 413, "chat text empty or too long");
        }
        if !ws.chat_bucket.try_take(cx.now_ms(), 1) {
            bump(&self.counters().rate_limited, 1);
            return self.error(cx, conn, 429, "too many chats");
        }
        let user = ws.user.clone();
        let text: Arc<str> = match settings.filter.as_ref() {
            Some(filter) if settings.filter_reject => {
                if filter.check(text) {
                    bump(&self.counters().filter_rejected, 1);
                    return self.error(cx, conn, 422, "rejected by the word filter");
                }
                Arc::from(text)
            }
            Some(filter) => match filter.mask(text, '*') {
                Some(masked) => {
                    bump(&self.counters().filter_masked, 1);
                    Arc::from(masked)
                }
                None => Arc::from(text),
            },
            None => Arc::from(text),
        };
        let room = self.local_room_id(local);
        self.send_home(
            cx,
            DanmakuMsg::Chat {
                room,
                conn,
                user,
                text,
                color: color & 0x00ff_ffff,
                mode: match mode {
                    shardcast_wire::ChatMode::Scroll => shardcast_danmaku::ChatMode::Scroll,
                    shardcast_wire::ChatMode::Top => shardcast_danmaku::ChatMode::Top,
                    shardcast_wire::ChatMode::Bottom => shardcast_danmaku::ChatMode::Bottom,
                },
                paid: role >= Role::Speaker,
            },
        );
    }

    fn local_room_id(&self, local: u32) -> RoomId {
        self.locals[local as usize]
            .as_ref()
            .expect("local room")
            .room
            .clone()
    }

    /// The local room entry for `room`, created if needed.
    fn local_room(&mut self, room: RoomId) -> u32 {
        if let Some(&index) = self.local_index.get(&room) {
            return index;
        }
        let entry = LocalRoom {
            home: home_of(&room, self.shards),
            room: room.clone(),
            members: Vec::new(),
            joining: 0,
        };
        let index = slab_insert(&mut self.locals, &mut self.free_locals, entry);
        self.local_index.insert(room, index);
        set(&self.counters().rooms_local, self.local_index.len() as u64);
        index
    }

    /// Sends `msg` to the home of the room it names (running it here when that is us).
    fn send_home(&mut self, cx: &mut Ctx<ShardMsg>, msg: DanmakuMsg) {
        let room = match &msg {
            DanmakuMsg::Join { room, .. }
            | DanmakuMsg::Members { room, .. }
            | DanmakuMsg::Chat { room, .. }
            | DanmakuMsg::Like { room, .. }
            | DanmakuMsg::Gift { room, .. }
            | DanmakuMsg::History { room, .. }
            | DanmakuMsg::Kick { room, .. } => room,
            _ => unreachable!("only viewer→home messages go home"),
        };
        let home = home_of(room, self.shards);
        self.send_to(cx, home, msg);
    }

    fn send_to(&mut self, cx: &mut Ctx<ShardMsg>, to: ShardId, msg: DanmakuMsg) {
        if to == self.shard {
            self.on_mesh(cx, to, msg);
        } else {
            cx.mesh_send(to, ShardMsg::Danmaku(msg));
        }
    }

    /// A message from another shard (or from this one, for rooms homed here).
    pub fn on_mesh(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: DanmakuMsg) {
        match msg {
            DanmakuMsg::Join {
                room,
                conn,
                last_seq,
                members,
            } => self.home_join(cx, from, room, conn, last_seq, members),
            DanmakuMsg::Members { room, members } => {
                if let Some(&index) = self.home_index.get(&room) {
                    let now = cx.now_ms();
                    let home = self.homes[index as usize].as_mut().expect("home room");
                    home.room.handle_members(from.0, members);
                    home.empty_since_ms = (home.room.online() == 0).then_some(now);
                }
            }
            DanmakuMsg::Chat {
                room,
                conn,
                user,
                text,
                color,
                mode,
                paid,
            } => {
                let Some(index) = self.home_index.get(&room).copied() else {
                    return;
                };
                let (now, wall) = (cx.now_ms(), wall_ms());
                let home = self.homes[index as usize].as_mut().expect("home room");
                let priority = if paid {
                    Priority::Paid
                } else {
                    Priority::Normal
                };
                let admission = home.room.handle_chat(
                    now,
                    wall,
                    ChatIn {
                        user,
                        text,
                        color,
                        mode,
                        priority,
                    },
                );
                match admission {
                    Admission::Accepted { .. } => self.flush_home(cx, index),
                    Admission::Rejected(error) => {
                        bump(&self.counters().out_errors, 1);
                        let message = error.to_string();
                        let frame = shardcast_ws::binary_frame(self.encoder.error(400, &message));
                        self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
                    }
                    Admission::Shed => {
                        bump(&self.counters().shed, 1);
                        let frame = shardcast_ws::binary_frame(
                            self.encoder.error(503, "room busy: chat shed"),
                        );
                        self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
                    }
                }
            }
            DanmakuMsg::Like { room, count } => {
                if let Some(index) = self.home_index.get(&room).copied() {
                    let now = cx.now_ms();
                    let home = self.homes[index as usize].as_mut().expect("home room");
                    home.room.handle_like(now, wall_ms(), count);
                    self.arm_room_timer(cx, index);
                }
            }
            DanmakuMsg::Gift {
                room,
                conn,
                user,
                gift_id,
                count,
                key,
            } => {
                let Some(index) = self.home_index.get(&room).copied() else {
                    return;
                };
                let (now, wall) = (cx.now_ms(), wall_ms());
                let home = self.homes[index as usize].as_mut().expect("home room");
                let outcome = home.room.handle_gift(
                    now,
                    wall,
                    GiftIn {
                        user,
                        gift_id,
                        count,
                        idempotency_key: key.clone(),
                    },
                );
                let frame = match outcome {
                    GiftOutcome::Accepted { seq, .. } => {
                        bump(&self.counters().gifts, 1);
                        bump(&self.counters().out_gift_ack, 1);
                        // STORE HOOK: acknowledge only once the store has the gift durable.
                        shardcast_ws::binary_frame(self.encoder.gift_ack(&key, seq))
                    }
                    GiftOutcome::Duplicate { seq } => {
                        bump(&self.counters().gift_duplicates, 1);
                        bump(&self.counters().out_gift_ack, 1);
                        shardcast_ws::binary_frame(self.encoder.gift_ack(&key, seq))
                    }
                    GiftOutcome::UnknownGift => {
                        bump(&self.counters().out_errors, 1);
                        shardcast_ws::binary_frame(self.encoder.error(404, "unknown gift"))
                    }
                    GiftOutcome::Rejected(error) => {
                        bump(&self.counters().out_errors, 1);
                        shardcast_ws::binary_frame(self.encoder.error(400, &error.to_string()))
                    }
                };
                self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
                self.flush_home(cx, index);
            }
            DanmakuMsg::History {
                room,
                conn,
                from_seq,
                limit,
            } => {
                let Some(index) = self.home_index.get(&room).copied() else {
                    return;
                };
                let home = self.homes[index as usize].as_ref().expect("home room");
                let frame = match home.room.history(cx.now_ms(), from_seq, limit) {
                    HistoryOutcome::Events {
                        first_seq,
                        events,
                        more,
                    } => {
                        bump(&self.counters().out_history, 1);
                        shardcast_ws::binary_frame(self.encoder.history_reply(
                            first_seq,
                            events.iter().map(event_view),
                            more,
                        ))
                    }
                    HistoryOutcome::Resync { seq } => {
                        bump(&self.counters().resume_misses, 1);
                        shardcast_ws::binary_frame(self.encoder.resync(seq))
                    }
                };
                self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
            }
            DanmakuMsg::Kick { room, user, reason } => {
                let Some(index) = self.home_index.get(&room).copied() else {
                    return;
                };
                let (now, wall) = (cx.now_ms(), wall_ms());
                let home = self.homes[index as usize].as_mut().expect("home room");
                home.room
                    .handle_system(now, wall, Arc::from(format!("{user} was removed")));
                let frame = shardcast_ws::binary_frame(self.encoder.kick(&reason));
                let subscribers = home.room.subscribers().to_vec();
                let created = Instant::now();
                for shard in subscribers {
                    self.send_to(
                        cx,
                        ShardId(shard),
                        DanmakuMsg::Broadcast {
                            room: room.clone(),
                            frame: frame.clone(),
                            created,
                            kick_user: Some(user.clone()),
                        },
                    );
                }
                self.flush_home(cx, index);
            }
            DanmakuMsg::Joined {
                room,
                conn,
                seq,
                online,
                frames,
                refused,
            } => self.viewer_joined(cx, room, conn, seq, online, frames, refused),
            DanmakuMsg::Reply { conn, frame } => {
                if self.is_live(conn.slot())
                    && self.conns[conn.slot()]
                        .as_ref()
                        .is_some_and(|w| w.conn == conn)
                {
                    cx.send(conn, frame);
                }
            }
            DanmakuMsg::Broadcast {
                room,
                frame,
                created,
                kick_user,
            } => self.deliver(cx, room, frame, created, kick_user),
        }
    }

    fn home_join(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        room: RoomId,
        conn: ConnId,
        last_seq: u64,
        members: u32,
    ) {
        let now = cx.now_ms();
        let index = match self.home_index.get(&room).copied() {
            Some(index) => index,
            None if self.home_index.len() >= self.settings.rooms_max_per_shard => {
                let refused = shardcast_ws::binary_frame(self.encoder.error(503, "too many rooms"));
                return self.send_to(
                    cx,
                    from,
                    DanmakuMsg::Joined {
                        room,
                        conn,
                        seq: 0,
                        online: 0,
                        frames: Vec::new(),
                        refused: Some(refused),
                    },
                );
            }
            None => self.create_home(cx, room.clone()),
        };
        let home = self.homes[index as usize].as_mut().expect("home room");
        home.room.handle_members(from.0, members);
        home.empty_since_ms = None;
        let outcome = home.room.join(now, last_seq);
        let online = home.room.online();
        let mut frames = Vec::new();
        match outcome.replay {
            Replay::None => {}
            Replay::Events(events) => {
                bump(&self.counters().resume_hits, 1);
                if !events.is_empty() {
                    let first_seq = events[0].seq;
                    frames.push(shardcast_ws::binary_frame(self.encoder.history_reply(
                        first_seq,
                        events.iter().map(event_view),
                        false,
                    )));
                }
            }
            Replay::Resync => {
                bump(&self.counters().resume_misses, 1);
                frames.push(shardcast_ws::binary_frame(self.encoder.resync(outcome.seq)));
            }
        }
        self.send_to(
            cx,
            from,
            DanmakuMsg::Joined {
                room,
                conn,
                seq: outcome.seq,
                online,
                frames,
                refused: None,
            },
        );
        self.arm_room_timer(cx, index);
    }

    fn create_home(&mut self, cx: &mut Ctx<ShardMsg>, id: RoomId) -> u32 {
        let home = HomeRoom {
            room: Room::new(id.clone(), self.settings.room.clone(), cx.now_ms()),
            id: id.clone(),
            timer: None,
            empty_since_ms: None,
        };
        let index = slab_insert(&mut self.homes, &mut self.free_homes, home);
        self.home_index.insert(id, index);
        set(&self.counters().rooms_home, self.home_index.len() as u64);
        index
    }

    #[allow(clippy::too_many_arguments)]
    fn viewer_joined(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        room: RoomId,
        conn: ConnId,
        seq: u64,
        online: u64,
        frames: Vec<Bytes>,
        refused: Option<Bytes>,
    ) {
        let Some(&local) = self.local_index.get(&room) else {
            return;
        };
        let slot = conn.slot();
        let waiting = self.conns[slot].as_ref().is_some_and(|ws| {
            ws.conn == conn && matches!(ws.session, Session::Joining { local: l } if l == local)
        });
        let entry = self.locals[local as usize].as_mut().expect("local room");
        entry.joining = entry.joining.saturating_sub(1);
        if !waiting {
            // The connection left while joining: its count was already reported.
            return;
        }
        if let Some(frame) = refused {
            cx.send(conn, frame);
            self.conns[slot].as_mut().expect("live").session = Session::AwaitHello;
            self.leave_local_if_empty(local);
            return self.close(cx, conn, CloseCode::TRY_AGAIN_LATER, "too many rooms");
        }
        let position = entry.members.len() as u32;
        entry.members.push(conn);
        let ws = self.conns[slot].as_mut().expect("live");
        ws.session = Session::Joined { local, position };
        let role = match ws.role {
            None | Some(Role::Viewer) => shardcast_wire::Role::Viewer,
            Some(Role::Speaker) => shardcast_wire::Role::Speaker,
            Some(Role::Admin) => shardcast_wire::Role::Admin,
        };
        let user = ws.user.clone();
        let welcome = self.encoder.welcome(&shardcast_wire::WelcomeView {
            user: &user,
            room: room.as_str(),
            seq,
            online,
            heartbeat_ms: self.settings.heartbeat_ms,
            role,
        });
        cx.send(conn, shardcast_ws::binary_frame(welcome));
        let counters = &self.settings.counters[self.shard.index()];
        bump(&counters.out_welcome, 1);
        bump(&counters.out_history, frames.len() as u64);
        for frame in frames {
            cx.send(conn, frame);
        }
    }

    /// Queues a broadcast frame on every local member of `room`.
    fn deliver(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        room: RoomId,
        frame: Bytes,
        created: Instant,
        kick_user: Option<Arc<str>>,
    ) {
        let Some(&local) = self.local_index.get(&room) else {
            return;
        };
        let now = cx.now_ms();
        let max = self.settings.send_queue_max_bytes;
        let stall_ms = self.settings.stall_timeout_ms;
        let members =
            std::mem::take(&mut self.locals[local as usize].as_mut().expect("local").members);
        let mut delivered = 0u64;
        let mut dropped = 0u64;
        let mut stalled = Vec::new();
        let mut kicked = Vec::new();
        for &conn in &members {
            if kick_user.is_some() {
                let ws = self.conns[conn.slot()].as_ref().expect("member");
                if Some(&ws.user) == kick_user.as_ref() {
                    cx.send(conn, frame.clone());
                    kicked.push(conn);
                }
                continue;
            }
            cx.send_droppable(conn, frame.clone());
            delivered += 1;
            if cx.queued_bytes(conn) > max {
                dropped += cx.shed_oldest(conn, max).chunks as u64;
                let ws = self.conns[conn.slot()].as_mut().expect("member");
                let since = *ws.over_cap_since_ms.get_or_insert(now);
                if now.saturating_sub(since) >= stall_ms {
                    stalled.push(conn);
                }
            }
        }
        self.locals[local as usize].as_mut().expect("local").members = members;
        let counters = self.counters();
        bump(&counters.deliveries, delivered);
        bump(&counters.dropped, dropped);
        if delivered > 0 {
            self.settings.latency[self.shard.index()]
                .record_us(created.elapsed().as_micros() as u64);
        }
        for conn in stalled {
            bump(&self.counters().stalled_closed, 1);
            self.close(cx, conn, CloseCode::POLICY_VIOLATION, "too slow");
        }
        for conn in kicked {
            bump(&self.counters().kicked, 1);
            self.close(cx, conn, CloseCode::POLICY_VIOLATION, "kicked");
        }
    }

    /// Cuts due batches and stats of a home room, sends them, and re-arms its timer.
    fn flush_home(&mut self, cx: &mut Ctx<ShardMsg>, index: u32) {
        let now = cx.now_ms();
        let Some(home) = self.homes[index as usize].as_mut() else {
            return;
        };
        let mut out: Vec<Bytes> = Vec::new();
        let mut batches = 0;
        let mut events = 0;
        while let Some(batch) = home.room.poll_batch(now) {
            batches += 1;
            events += batch.events.len() as u64;
            out.push(encode_batch(&mut self.encoder, &batch));
        }
        if let Some(stats) = home.room.poll_stats(now) {
            out.push(shardcast_ws::binary_frame(self.encoder.room_stats(
                stats.online,
                stats.likes,
                stats.heat,
            )));
        }
        let subscribers = home.room.subscribers().to_vec();
        let room = home.id.clone();
        let counters = self.counters();
        bump(&counters.batches, batches);
        bump(&counters.events, events);
        if !out.is_empty() {
            let created = Instant::now();
            for &shard in &subscribers {
                for frame in &out {
                    self.send_to(
                        cx,
                        ShardId(shard),
                        DanmakuMsg::Broadcast {
                            room: room.clone(),
                            frame: frame.clone(),
                            created,
                            kick_user: None,
                        },
                    );
                }
            }
        }
        self.arm_room_timer(cx, index);
    }

    fn arm_room_timer(&mut self, cx: &mut Ctx<ShardMsg>, index: u32) {
        let now = cx.now_ms();
        let Some(home) = self.homes[index as usize].as_mut() else {
            return;
        };
        if let Some(timer) = home.timer.take() {
            cx.timer_cancel(timer);
        }
        // An empty room is kept (its history serves returning viewers) until history_s passes.
        let retire_at = home
            .empty_since_ms
            .map(|since| since + self.settings.room.history_s * 1000);
        let deadline = match (home.room.poll_timeout(), retire_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(deadline) = deadline {
            home.timer =
                cx.timer_after(deadline.saturating_sub(now), ROOM_TIMER_BIT | index as u64);
        }
    }

    /// A room timer fired.
    pub fn on_room_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, index: u32) {
        let now = cx.now_ms();
        let Some(home) = self.homes.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        if home.timer != Some(id) {
            return;
        }
        home.timer = None;
        let retire = home
            .empty_since_ms
            .is_some_and(|since| now >= since + self.settings.room.history_s * 1000);
        if retire {
            let id = home.id.clone();
            self.homes[index as usize] = None;
            self.home_index.remove(&id);
            self.free_homes.push(index);
            set(&self.counters().rooms_home, self.home_index.len() as u64);
            return;
        }
        self.flush_home(cx, index);
    }

    /// Removes a connection from its local room (if any) and reports the new count home.
    fn leave_room(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        let Some(ws) = self.conns[slot].as_mut() else {
            return;
        };
        let local = match ws.session {
            Session::Joined { local, position } => {
                let entry = self.locals[local as usize].as_mut().expect("local room");
                let removed = entry.members.swap_remove(position as usize);
                debug_assert_eq!(removed, ws.conn);
                if let Some(&moved) = entry.members.get(position as usize) {
                    if let Some(Session::Joined { position: p, .. }) =
                        self.conns[moved.slot()].as_mut().map(|w| &mut w.session)
                    {
                        *p = position;
                    }
                }
                local
            }
            // The Joined answer will find the session changed and drop the joining count.
            Session::Joining { local } => local,
            Session::AwaitHello | Session::Closing => return,
        };
        self.conns[slot].as_mut().expect("ws").session = Session::Closing;
        let entry = self.locals[local as usize].as_ref().expect("local room");
        let msg = DanmakuMsg::Members {
            room: entry.room.clone(),
            members: entry.members.len() as u32 + entry.joining,
        };
        let home = entry.home;
        self.send_to(cx, home, msg);
        self.leave_local_if_empty(local);
    }

    fn leave_local_if_empty(&mut self, local: u32) {
        let entry = self.locals[local as usize].as_ref().expect("local room");
        if entry.members.is_empty() && entry.joining == 0 {
            let room = entry.room.clone();
            self.locals[local as usize] = None;
            self.local_index.remove(&room);
            self.free_locals.push(local);
            set(&self.counters().rooms_local, self.local_index.len() as u64);
        }
    }

    /// Everything queued on a WebSocket connection was written.
    pub fn on_sent(&mut self, conn: ConnId) {
        if let Some(ws) = self.conns[conn.slot()].as_mut() {
            ws.over_cap_since_ms = None;
        }
    }

    /// The engine closed a WebSocket connection.
    pub fn on_close(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let slot = conn.slot();
        if self.conns[slot].is_none() {
            return;
        }
        self.leave_room(cx, slot);
        if let Some(ws) = self.conns[slot].take() {
            if let Some(timer) = ws.timer {
                cx.timer_cancel(timer);
            }
        }
        self.open -= 1;
        let open = self.open;
        set(&self.counters().ws_connections, open);
    }

    /// Closes every WebSocket connection with 1001 (the server is going away).
    pub fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        for slot in 0..self.conns.len() {
            if let Some(conn) = self.conns[slot]
                .as_ref()
                .filter(|_| self.is_live(slot))
                .map(|w| w.conn)
            {
                self.close(cx, conn, CloseCode::GOING_AWAY, "server shutting down");
            }
        }
    }

    fn arm_conn_timer(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        let s = &self.settings;
        let now = cx.now_ms();
        let Some(ws) = self.conns[slot].as_mut() else {
            return;
        };
        let mut deadline = match ws.session {
            Session::AwaitHello => ws.last_rx_ms + s.hello_timeout_ms,
            _ if ws.ping_outstanding => ws.last_rx_ms + s.idle_timeout_ms,
            _ => ws.last_rx_ms + s.ping_interval_ms,
        };
        if let Some(since) = ws.over_cap_since_ms {
            deadline = deadline.min(since + s.stall_timeout_ms);
        }
        ws.timer = cx.timer_after(deadline.saturating_sub(now).max(1), slot as u64);
    }

    /// A connection timer fired: hello timeout, ping, idle timeout or stall.
    pub fn on_conn_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, slot: usize) {
        let s = self.settings.clone();
        let now = cx.now_ms();
        let Some(ws) = self.conns[slot].as_mut() else {
            return;
        };
        if ws.timer != Some(id) {
            return;
        }
        ws.timer = None;
        if matches!(ws.session, Session::Closing) {
            return;
        }
        let conn = ws.conn;
        if let Some(since) = ws.over_cap_since_ms {
            if now >= since + s.stall_timeout_ms && cx.queued_bytes(conn) > s.send_queue_max_bytes {
                bump(&self.counters().stalled_closed, 1);
                return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "too slow");
            }
        }
        let ws = self.conns[slot].as_mut().expect("ws");
        let quiet_ms = now.saturating_sub(ws.last_rx_ms);
        match ws.session {
            Session::AwaitHello if quiet_ms >= s.hello_timeout_ms => {
                return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "no Hello");
            }
            _ if quiet_ms >= s.idle_timeout_ms => {
                return self.close(cx, conn, CloseCode::GOING_AWAY, "idle");
            }
            Session::Joining { .. } | Session::Joined { .. }
                if quiet_ms >= s.ping_interval_ms && !ws.ping_outstanding =>
            {
                ws.ping_outstanding = true;
                cx.send(conn, shardcast_ws::ping_frame(b""));
            }
            _ => {}
        }
        self.arm_conn_timer(cx, slot);
    }
}

fn event_view(event: &RoomEvent) -> EventView<'_> {
    EventView {
        seq: event.seq,
        time_ms: event.time_ms,
        body: match &event.body {
            EventBody::Chat {
                user,
                text,
                color,
                mode,
            } => EventBodyView::Chat {
                user,
                text,
                color: *color,
                mode: match mode {
                    shardcast_danmaku::ChatMode::Scroll => shardcast_wire::ChatMode::Scroll,
                    shardcast_danmaku::ChatMode::Top => shardcast_wire::ChatMode::Top,
                    shardcast_danmaku::ChatMode::Bottom => shardcast_wire::ChatMode::Bottom,
                },
            },
            EventBody::Like { total, added } => EventBodyView::Like {
                total: *total,
                added: *added,
            },
            EventBody::Gift {
                user,
                gift_id,
                count,
                value,
            } => EventBodyView::Gift {
                user,
                gift_id: *gift_id,
                count: *count,
                value: *value,
            },
            EventBody::System { text } => EventBodyView::System { text },
        },
    }
}

fn encode_batch(encoder: &mut shardcast_wire::Encoder, batch: &Batch) -> Bytes {
    shardcast_ws::binary_frame(encoder.batch(batch.first_seq, batch.events.iter().map(event_view)))
}
