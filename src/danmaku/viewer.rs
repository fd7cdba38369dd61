//! A viewer's WebSocket connection on this shard: frames in, checks (token, size, rate, word
//! filter), and what goes to the room's home; pings, hello and idle timeouts, and the stall
//! close of a viewer that does not read.

use super::msg::{ChatMsg, ChatPriority, DanmakuMsg, GiftMsg, Identity, JoinMsg};
use super::settings::FilterMode;
use super::Danmaku;
use crate::common::auth::{Audience, Role};
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use bytes::Bytes;
use shardcast_danmaku::{RoomId, TokenBucket};
use shardcast_engine::{ConnId, Ctx, TimerId};
use shardcast_wire::ClientMsg;
use shardcast_ws::{CloseCode, Event as WsEvent, MessageKind};
use std::sync::Arc;

/// Likes one message may carry; more is clamped.
const LIKES_PER_MESSAGE_MAX: u32 = 1000;
/// Gift count one message may carry.
const GIFTS_PER_MESSAGE_MAX: u32 = 10_000;
/// Longest user name a token may carry, in bytes.
const USER_MAX_BYTES: usize = 64;
/// Longest `Hello.epoch` (the server's are 16 hex digits, or `local-` and 16).
const EPOCH_MAX_BYTES: usize = 64;
/// Longest idempotency key, in bytes.
const IDEMPOTENCY_KEY_MAX_BYTES: usize = 64;

/// Where a viewer is in its life.
pub(super) enum Session {
    /// Upgraded; waiting for Hello.
    AwaitHello,
    /// Join sent to the home shard; waiting for Joined.
    Joining { local: usize },
    /// A member of a local room, at `position` in its member list.
    Joined { local: usize, position: u32 },
    /// A close frame is queued; input is ignored.
    Closing,
}

/// One WebSocket connection's state.
pub(super) struct Viewer {
    pub conn: ConnId,
    decoder: shardcast_ws::Decoder,
    pub session: Session,
    pub user: Arc<str>,
    /// `None`: anonymous (read-only).
    pub role: Option<Role>,
    chat_bucket: TokenBucket,
    like_bucket: TokenBucket,
    gift_bucket: TokenBucket,
    history_bucket: TokenBucket,
    last_rx_ms: u64,
    /// When the WebSocket opened: Hello is due `ws.hello_timeout_ms` after it, whatever
    /// else the client sends (pings do not keep a connection that never says Hello).
    opened_ms: u64,
    ping_outstanding: bool,
    /// Since when the connection's queue has been over `ws.send_queue_max_bytes`.
    pub over_cap_since_ms: Option<u64>,
    timer: Option<TimerId>,
}

impl Viewer {
    /// Not closing.
    pub fn is_live(&self) -> bool {
        !matches!(self.session, Session::Closing)
    }

    /// The local room it is a member of.
    fn joined(&self) -> Option<usize> {
        match self.session {
            Session::Joined { local, .. } => Some(local),
            _ => None,
        }
    }
}

/// A WebSocket event kept past the decoder's borrow of the receive buffer.
#[derive(Clone, Copy, Debug)]
pub(super) enum MessageKindTag {
    Binary,
    Text,
    Ping,
    Pong,
    Close(Option<u16>),
}

impl Danmaku {
    /// The live viewer `conn` (not closing, and still the connection in its slot).
    pub(super) fn viewer(&self, conn: ConnId) -> Option<&Viewer> {
        self.viewers[conn.slot()]
            .as_ref()
            .filter(|v| v.conn == conn && v.is_live())
    }

    fn viewer_mut(&mut self, conn: ConnId) -> Option<&mut Viewer> {
        self.viewers[conn.slot()]
            .as_mut()
            .filter(|v| v.conn == conn && v.is_live())
    }

    /// A connection was upgraded (the 101 is queued): it is a viewer now.
    pub fn open(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let s = &self.settings;
        self.viewers[conn.slot()] = Some(Viewer {
            conn,
            decoder: shardcast_ws::Decoder::new(s.ws_limits),
            session: Session::AwaitHello,
            user: Arc::from(""),
            role: None,
            chat_bucket: TokenBucket::new(s.chat_rate_per_s, s.chat_burst),
            like_bucket: TokenBucket::new(s.like_rate_per_s, s.like_burst),
            gift_bucket: TokenBucket::new(s.gift_rate_per_s, s.gift_burst),
            history_bucket: TokenBucket::new(s.history_rate_per_s, s.history_burst),
            last_rx_ms: cx.now_ms(),
            opened_ms: cx.now_ms(),
            ping_outstanding: false,
            over_cap_since_ms: None,
            timer: None,
        });
        self.open += 1;
        set(&self.counters().ws_connections, self.open);
        bump(&self.counters().ws_upgrades, 1);
        self.arm_conn_timer(cx, conn.slot());
    }

    /// An upgraded connection whose source address holds `ws.max_connections_per_address`
    /// already: closed with 1013 (try again later).
    pub fn refuse_over_address(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        bump(&self.counters().per_address_refused, 1);
        let reason = "too many connections from this address";
        self.close(cx, conn, CloseCode::TRY_AGAIN_LATER, reason);
    }

    /// Bytes arrived on a WebSocket connection.
    pub fn on_recv(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, data: &[u8]) {
        let Some(viewer) = self.viewers[conn.slot()]
            .as_mut()
            .filter(|v| v.conn == conn && v.is_live())
        else {
            return;
        };
        viewer.last_rx_ms = cx.now_ms();
        viewer.ping_outstanding = false;
        let mut inbox = std::mem::take(&mut self.inbox);
        let result = viewer
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
            if self.viewer(conn).is_none() {
                break;
            }
            self.on_frame(cx, conn, kind, &payload);
        }
        self.inbox = inbox;
        if let Err(error) = result {
            if self.viewer(conn).is_some() {
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

    fn on_frame(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        kind: MessageKindTag,
        payload: &[u8],
    ) {
        match kind {
            MessageKindTag::Binary => self.on_message(cx, conn, payload),
            MessageKindTag::Text => {
                self.close(
                    cx,
                    conn,
                    CloseCode::UNSUPPORTED_DATA,
                    "binary messages only",
                );
            }
            MessageKindTag::Ping => {
                self.reply(cx, conn, shardcast_ws::pong_frame(payload));
            }
            MessageKindTag::Pong => {}
            MessageKindTag::Close(code) => {
                // Echo the code (1000 when none was given) and close once it is written.
                let code = code.map_or(CloseCode::NORMAL, CloseCode::echo);
                self.close(cx, conn, code, "");
            }
        }
    }

    /// Sends a close frame and closes the connection once it is written.
    ///
    /// Batches still queued are dropped first (the viewer would have to read them before the
    /// close frame), and a viewer that does not read even the close frame within
    /// `ws.stall_timeout_ms` is dropped without it: a dead reader cannot hold its slot and
    /// queue.
    pub(super) fn close(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        self.leave_room(cx, conn);
        let deadline_ms = self.settings.stall_timeout_ms;
        if let Some(viewer) = self.viewers[conn.slot()]
            .as_mut()
            .filter(|v| v.conn == conn)
        {
            viewer.session = Session::Closing;
            if let Some(timer) = viewer.timer.take() {
                cx.timer_cancel(timer);
            }
            let key = TimerKey::Conn {
                slot: conn.slot() as u32,
            };
            viewer.timer = cx.timer_after(deadline_ms, key.into());
        }
        cx.shed_oldest(conn, 0);
        cx.send(conn, shardcast_ws::close_frame(code, reason));
        cx.close_after_flush(conn);
    }

    /// Queues an Error message.
    pub(super) fn error(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, code: u16, message: &str) {
        bump(&self.counters().out_errors, 1);
        let frame = shardcast_ws::binary_frame(self.encoder.error(code, message));
        self.reply(cx, conn, frame);
    }

    /// Queues a reply to what the viewer sent (a pong, an error, a heartbeat answer, history).
    ///
    /// Replies cannot be shed like batches, so they are bounded the other way: a viewer whose
    /// queue passes `ws.send_queue_max_bytes` is not reading what it asks for, and is closed
    /// (`reply_overflows`). Its queue holds at most the cap, one reply and the close frame,
    /// and it gets `ws.stall_timeout_ms` to read them before it is dropped.
    pub(super) fn reply(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, frame: Bytes) {
        if self.viewer(conn).is_none() {
            return;
        }
        cx.send(conn, frame);
        if cx.queued_bytes(conn) > self.settings.send_queue_max_bytes {
            bump(&self.counters().reply_overflows, 1);
            self.close(
                cx,
                conn,
                CloseCode::POLICY_VIOLATION,
                "not reading: send queue full",
            );
        }
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
                return self.close(cx, conn, CloseCode::INVALID_PAYLOAD, "invalid message");
            }
        };
        let Some(viewer) = self.viewer(conn) else {
            return;
        };
        let joined = viewer.joined();
        let joining = matches!(viewer.session, Session::Joining { .. });
        match (message, joined) {
            (
                ClientMsg::Hello {
                    room,
                    token,
                    last_seq,
                    epoch,
                    ..
                },
                _,
            ) => {
                bump(&self.counters().in_hello, 1);
                self.on_hello(cx, conn, room, token, (last_seq, epoch));
            }
            (_, None) => {
                let why = if joining {
                    "wait for Welcome"
                } else {
                    "say Hello first"
                };
                self.error(cx, conn, 400, why);
            }
            (message, Some(local)) => self.on_member_message(cx, conn, local, message),
        }
    }

    /// A message that needs the viewer to be in a room.
    fn on_member_message(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        local: usize,
        message: ClientMsg<'_>,
    ) {
        let Some(room) = self.local_room_id(local) else {
            return;
        };
        match message {
            ClientMsg::Chat { text, color, mode } => {
                bump(&self.counters().in_chat, 1);
                self.on_chat(cx, conn, room, text, color, mode);
            }
            ClientMsg::Like { count } => {
                bump(&self.counters().in_like, 1);
                self.on_like(cx, conn, room, count);
            }
            ClientMsg::Gift {
                gift_id,
                count,
                idempotency_key,
            } => {
                bump(&self.counters().in_gift, 1);
                self.on_gift(cx, conn, room, gift_id, count, idempotency_key);
            }
            ClientMsg::History { from_seq, limit } => {
                bump(&self.counters().in_history, 1);
                let now = cx.now_ms();
                if !self
                    .viewer_mut(conn)
                    .is_some_and(|v| v.history_bucket.try_take(now, 1))
                {
                    bump(&self.counters().rate_limited, 1);
                    return self.error(cx, conn, 429, "too many history requests");
                }
                let limit = limit.clamp(1, self.settings.history_request_max);
                let msg = DanmakuMsg::History {
                    room,
                    conn,
                    from_seq,
                    limit,
                };
                self.send_home(cx, msg);
            }
            ClientMsg::KickUser { user, reason } => {
                bump(&self.counters().in_kick, 1);
                if self.viewer(conn).and_then(|v| v.role) != Some(Role::Admin) {
                    return self.error(cx, conn, 403, "only admins can kick");
                }
                let msg = DanmakuMsg::Kick {
                    room,
                    user: Arc::from(user),
                    reason: Arc::from(reason),
                };
                self.send_home(cx, msg);
            }
            ClientMsg::Heartbeat { client_time_ms } => {
                bump(&self.counters().in_heartbeat, 1);
                let frame =
                    shardcast_ws::binary_frame(self.encoder.pong(client_time_ms, cx.wall_ms()));
                self.reply(cx, conn, frame);
            }
            // Answered by `on_message` whatever the session.
            ClientMsg::Hello { .. } => {}
        }
    }

    fn on_hello(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        room: &str,
        token: &str,
        (last_seq, epoch): (u64, &str),
    ) {
        if !matches!(
            self.viewer(conn).map(|v| &v.session),
            Some(Session::AwaitHello)
        ) {
            return self.error(cx, conn, 400, "already joined");
        }
        if epoch.len() > EPOCH_MAX_BYTES {
            return self.error(cx, conn, 400, "epoch must be at most 64 bytes");
        }
        let Ok(room_id) = RoomId::new(room) else {
            return self.error(cx, conn, 400, "room must be 1 to 128 bytes");
        };
        let Some((user, role)) = self.authenticate(cx, conn, room, token) else {
            return;
        };
        let local = self.local_room(room_id.clone());
        let Some(entry) = self.locals.get_mut(local) else {
            return;
        };
        entry.joining += 1;
        let members = entry.members.len() as u32 + entry.joining;
        if let Some(viewer) = self.viewer_mut(conn) {
            viewer.user = user;
            viewer.role = role;
            viewer.session = Session::Joining { local };
        }
        let identity = if role.is_some() {
            Identity::Token
        } else {
            Identity::Anonymous
        };
        let user = self
            .viewer(conn)
            .map_or_else(|| Arc::from(""), |v| v.user.clone());
        let msg = DanmakuMsg::Join(Box::new(JoinMsg {
            room: room_id,
            conn,
            last_seq,
            epoch: Arc::from(epoch),
            members,
            user,
            identity,
        }));
        self.send_home(cx, msg);
    }

    /// Who the Hello speaks for: a token's user and role, or an anonymous reader. Refuses
    /// (and closes) otherwise.
    fn authenticate(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        room: &str,
        token: &str,
    ) -> Option<(Arc<str>, Option<Role>)> {
        if token.is_empty() {
            if !self.settings.allow_anonymous {
                self.error(cx, conn, 401, "a token is required");
                self.close(cx, conn, CloseCode::POLICY_VIOLATION, "unauthenticated");
                return None;
            }
            let user = format!("anon-{}-{}", self.shard.0, conn.slot());
            return Some((Arc::from(user), None));
        }
        let now_s = cx.wall_ms() / 1000;
        match self
            .settings
            .tokens
            .verify_for(token, now_s, Audience::Chat)
        {
            Ok(claims) if claims.allows_room(room) && claims.user.len() <= USER_MAX_BYTES => {
                Some((Arc::from(claims.user), Some(claims.role)))
            }
            Ok(_) => {
                self.error(cx, conn, 403, "token not valid for this room");
                self.close(cx, conn, CloseCode::POLICY_VIOLATION, "forbidden");
                None
            }
            Err(error) => {
                self.error(cx, conn, 401, &error.to_string());
                self.close(cx, conn, CloseCode::POLICY_VIOLATION, "unauthenticated");
                None
            }
        }
    }

    fn on_chat(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        room: RoomId,
        text: &str,
        color: u32,
        mode: shardcast_wire::ChatMode,
    ) {
        let settings = self.settings.clone();
        let now = cx.now_ms();
        let Some(viewer) = self.viewer_mut(conn) else {
            return;
        };
        let Some(role) = viewer.role else {
            return self.error(cx, conn, 401, "anonymous viewers cannot chat");
        };
        if text.is_empty() || text.chars().count() > settings.text_max_chars {
            return self.error(cx, conn, 413, "chat text empty or too long");
        }
        if !viewer.chat_bucket.try_take(now, 1) {
            bump(&self.counters().rate_limited, 1);
            return self.error(cx, conn, 429, "too many chats");
        }
        let user = viewer.user.clone();
        let Some(text) = self.filtered(cx, conn, text) else {
            return;
        };
        let chat = ChatMsg {
            room,
            conn,
            user,
            text,
            color: color & 0x00ff_ffff,
            mode: super::encode::chat_mode_in(mode),
            priority: if role >= Role::Speaker {
                ChatPriority::Paid
            } else {
                ChatPriority::Normal
            },
        };
        self.send_home(cx, DanmakuMsg::Chat(Box::new(chat)));
    }

    /// The chat text after the word filter: masked, or refused (422, `None`).
    fn filtered(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, text: &str) -> Option<Arc<str>> {
        let settings = self.settings.clone();
        let Some(filter) = settings.filter.as_ref() else {
            return Some(Arc::from(text));
        };
        match settings.filter_mode {
            FilterMode::Reject if filter.check(text) => {
                bump(&self.counters().filter_rejected, 1);
                self.error(cx, conn, 422, "rejected by the word filter");
                None
            }
            FilterMode::Reject => Some(Arc::from(text)),
            FilterMode::Mask => match filter.mask(text, '*') {
                Some(masked) => {
                    bump(&self.counters().filter_masked, 1);
                    Some(Arc::from(masked))
                }
                None => Some(Arc::from(text)),
            },
        }
    }

    fn on_like(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId, room: RoomId, count: u32) {
        let now = cx.now_ms();
        let Some(viewer) = self.viewer_mut(conn) else {
            return;
        };
        if viewer.role.is_none() {
            return self.error(cx, conn, 401, "anonymous viewers cannot like");
        }
        if !viewer.like_bucket.try_take(now, 1) {
            bump(&self.counters().rate_limited, 1);
            return self.error(cx, conn, 429, "too many likes");
        }
        let count = count.clamp(1, LIKES_PER_MESSAGE_MAX);
        self.send_home(cx, DanmakuMsg::Like { room, count });
    }

    fn on_gift(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        conn: ConnId,
        room: RoomId,
        gift_id: u32,
        count: u32,
        idempotency_key: &str,
    ) {
        let Some(viewer) = self.viewer(conn) else {
            return;
        };
        if viewer.role.is_none() {
            return self.error(cx, conn, 401, "anonymous viewers cannot send gifts");
        }
        if idempotency_key.is_empty() || idempotency_key.len() > IDEMPOTENCY_KEY_MAX_BYTES {
            return self.error(cx, conn, 400, "idempotency_key must be 1 to 64 bytes");
        }
        if count == 0 || count > GIFTS_PER_MESSAGE_MAX {
            return self.error(cx, conn, 400, "gift count must be 1 to 10000");
        }
        let now = cx.now_ms();
        if !self
            .viewer_mut(conn)
            .is_some_and(|v| v.gift_bucket.try_take(now, 1))
        {
            bump(&self.counters().rate_limited, 1);
            return self.error(cx, conn, 429, "too many gifts");
        }
        let Some(viewer) = self.viewer(conn) else {
            return;
        };
        // STORE HOOK: the home shard makes the gift durable before acknowledging it.
        let gift = GiftMsg {
            room,
            conn,
            user: viewer.user.clone(),
            gift_id,
            count,
            key: Arc::from(idempotency_key),
        };
        self.send_home(cx, DanmakuMsg::Gift(Box::new(gift)));
    }

    /// Everything queued on a WebSocket connection was written: it is not behind any more.
    pub fn on_sent(&mut self, conn: ConnId) {
        if let Some(viewer) = self.viewers[conn.slot()]
            .as_mut()
            .filter(|v| v.conn == conn)
        {
            viewer.over_cap_since_ms = None;
        }
    }

    /// The engine closed a WebSocket connection.
    pub fn on_close(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        if self.viewers[conn.slot()]
            .as_ref()
            .is_none_or(|v| v.conn != conn)
        {
            return;
        }
        self.leave_room(cx, conn);
        if let Some(viewer) = self.viewers[conn.slot()].take() {
            if let Some(timer) = viewer.timer {
                cx.timer_cancel(timer);
            }
        }
        self.open -= 1;
        set(&self.counters().ws_connections, self.open);
    }

    fn arm_conn_timer(&mut self, cx: &mut Ctx<ShardMsg>, slot: usize) {
        let s = &self.settings;
        let now = cx.now_ms();
        let Some(viewer) = self.viewers[slot].as_mut() else {
            return;
        };
        let mut deadline = match viewer.session {
            Session::AwaitHello => viewer.opened_ms + s.hello_timeout_ms,
            _ if viewer.ping_outstanding => viewer.last_rx_ms + s.idle_timeout_ms,
            _ => viewer.last_rx_ms + s.ping_interval_ms,
        };
        if let Some(since) = viewer.over_cap_since_ms {
            deadline = deadline.min(since + s.stall_timeout_ms);
        }
        let key = TimerKey::Conn { slot: slot as u32 };
        viewer.timer = cx.timer_after(deadline.saturating_sub(now).max(1), key.into());
        if viewer.timer.is_none() {
            // The wheel is sized so this cannot happen while the limits hold; a viewer is
            // never run without its timeouts.
            let conn = viewer.conn;
            bump(&self.counters().timer_refusals, 1);
            cx.close(conn);
        }
    }

    /// A connection timer fired: hello timeout, ping, idle timeout or stall.
    pub fn on_conn_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, slot: usize) {
        let s = self.settings.clone();
        let now = cx.now_ms();
        let Some(viewer) = self.viewers[slot].as_mut() else {
            return;
        };
        if viewer.timer != Some(id) {
            return;
        }
        viewer.timer = None;
        let conn = viewer.conn;
        if !viewer.is_live() {
            // The close frame was not written in time: drop the connection without it.
            if cx.is_open(conn) {
                bump(&self.counters().close_timeouts, 1);
                cx.close(conn);
            }
            return;
        }
        if let Some(since) = viewer.over_cap_since_ms {
            if now >= since + s.stall_timeout_ms && cx.queued_bytes(conn) > s.send_queue_max_bytes {
                bump(&self.counters().stalled_closed, 1);
                return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "too slow");
            }
        }
        let quiet_ms = now.saturating_sub(viewer.last_rx_ms);
        match viewer.session {
            Session::AwaitHello if now >= viewer.opened_ms + s.hello_timeout_ms => {
                return self.close(cx, conn, CloseCode::POLICY_VIOLATION, "no Hello");
            }
            _ if quiet_ms >= s.idle_timeout_ms => {
                return self.close(cx, conn, CloseCode::GOING_AWAY, "idle");
            }
            Session::Joining { .. } | Session::Joined { .. }
                if quiet_ms >= s.ping_interval_ms && !viewer.ping_outstanding =>
            {
                viewer.ping_outstanding = true;
                cx.send(conn, shardcast_ws::ping_frame(b""));
            }
            _ => {}
        }
        self.arm_conn_timer(cx, slot);
    }
}
