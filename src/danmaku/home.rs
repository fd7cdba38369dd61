//! The rooms whose home is this shard: each orders its room's events (`shardcast-danmaku`'s
//! `Room`), answers joins and History, and every batching window sends one encoded frame to
//! every shard with members. An empty room is kept `danmaku.history_s` for returning
//! viewers, then retired.

use super::encode::{encode_batch, event_view};
use super::msg::{
    BroadcastMsg, ChatMsg, ChatPriority, DanmakuMsg, GiftMsg, Identity, JoinedMsg, Refusal,
};
use super::settings::AnonymousRooms;
use super::{Danmaku, MeshError};
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use crate::shard::timer::TimerKey;
use crate::state::msg::{GiftDone, GiftRequest, StateRequest};
use bytes::Bytes;
use shardcast_danmaku::{
    Admission, ChatIn, GiftAdmission, GiftIn, HistoryOutcome, Priority, Replay, Room, RoomId,
};
use shardcast_engine::{ConnId, Ctx, ShardId, TimerId};
use shardcast_ledger::{Outcome as LedgerOutcome, Refusal as LedgerRefusal};
use shardcast_wire::cause;
use shardcast_ws::CloseCode;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A room whose home is this shard.
pub(super) struct HomeRoom {
    pub(super) room: Room,
    timer: Option<TimerId>,
    /// Since when nobody is subscribed (the room is retired after `history_s`).
    empty_since_ms: Option<u64>,
    /// Users kicked from the room and until when they may not join again, oldest first, at
    /// most [`BANS_PER_ROOM_MAX`].
    bans: VecDeque<(Arc<str>, u64)>,
    /// For a room across hosts (`state.redis`): its place in Redis's order.
    pub(super) relay: Option<super::relayed::RelayState>,
    /// The epoch of a room ordered here, made with it (a room across hosts has Redis's).
    epoch: Arc<str>,
}

/// Kicked users one room remembers (about 40 B each); past it the oldest ban is forgotten.
const BANS_PER_ROOM_MAX: usize = 1024;

/// A viewer asking to join, as the home sees it.
pub(super) struct Joiner {
    pub from: ShardId,
    pub conn: ConnId,
    pub user: Arc<str>,
    pub identity: Identity,
    pub last_seq: u64,
    /// The epoch `last_seq` belongs to; empty: not checked.
    pub epoch: Arc<str>,
    pub members: u32,
}

impl HomeRoom {
    /// The epoch of the order the room's seqs belong to.
    pub(super) fn epoch(&self) -> Arc<str> {
        self.relay
            .as_ref()
            .and_then(|relay| relay.epoch())
            .unwrap_or_else(|| self.epoch.clone())
    }

    /// True while `user` is banned (anonymous viewers have per-connection names, so a ban
    /// holds only tokens' users).
    fn is_banned(&self, user: &str, now_ms: u64) -> bool {
        self.bans
            .iter()
            .any(|(banned, until)| &**banned == user && *until > now_ms)
    }

    fn ban(&mut self, user: Arc<str>, until_ms: u64) {
        self.bans.retain(|(banned, _)| *banned != user);
        if self.bans.len() >= BANS_PER_ROOM_MAX {
            self.bans.pop_front();
        }
        self.bans.push_back((user, until_ms));
    }
}

impl Danmaku {
    /// A viewer joins `room` (created here on first join, within
    /// `danmaku.rooms_max_per_shard`); a user kicked from it is refused until the ban ends.
    pub(super) fn home_join(&mut self, cx: &mut Ctx<ShardMsg>, room: RoomId, joiner: Joiner) {
        let now = cx.now_ms();
        let index = match self.homes.find(&room) {
            Some(index) => index,
            None if !self.may_create(&room, joiner.identity) => {
                let close = CloseCode::POLICY_VIOLATION;
                let reason = "no such room (anonymous viewers join live streams' rooms)";
                return self.refuse_join(cx, room, &joiner, (404, close, reason));
            }
            None if self.homes.len() >= self.settings.rooms_max_per_shard => {
                let close = CloseCode::TRY_AGAIN_LATER;
                return self.refuse_join(cx, room, &joiner, (503, close, "too many rooms"));
            }
            None => self.create_home(cx, room.clone()),
        };
        if self
            .homes
            .get(index)
            .is_some_and(|home| home.is_banned(&joiner.user, now))
        {
            let close = CloseCode::POLICY_VIOLATION;
            return self.refuse_join(cx, room, &joiner, (403, close, "banned from this room"));
        }
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        home.room.handle_members(joiner.from.0, joiner.members);
        home.empty_since_ms = None;
        if let Some(relay) = home.relay.as_mut().filter(|r| !r.is_synced()) {
            // Answered once the room knows Redis's order (or that Redis is away).
            if let Err(joiner) = relay.wait(joiner) {
                let close = CloseCode::TRY_AGAIN_LATER;
                return self.refuse_join(cx, room, &joiner, (503, close, "room is starting"));
            }
            return;
        }
        self.answer_join(cx, index, room, joiner);
    }

    /// Answers a join from the room's flushed events (the FIFO contract: the answer goes on
    /// the same ring as the room's later batches).
    pub(super) fn answer_join(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        room: RoomId,
        joiner: Joiner,
    ) {
        let now = cx.now_ms();
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        let epoch = home.epoch();
        // A seq of another epoch means nothing here: Resync.
        let other_epoch = joiner.last_seq > 0 && !joiner.epoch.is_empty() && joiner.epoch != epoch;
        let last_seq = if other_epoch { 0 } else { joiner.last_seq };
        let outcome = home.room.join(now, last_seq);
        let replay = if other_epoch {
            Replay::Resync
        } else {
            outcome.replay
        };
        let online = home.room.online_everywhere();
        let frames = self.replay_frames(replay, outcome.seq, &epoch);
        let joined = JoinedMsg {
            room,
            conn: joiner.conn,
            seq: outcome.seq,
            epoch,
            online,
            frames,
            refused: None,
        };
        self.send_to(cx, joiner.from, DanmakuMsg::Joined(Box::new(joined)));
        self.arm_room_timer(cx, index);
    }

    /// Whether a joiner may bring `room` into being (`danmaku.anonymous_rooms`).
    fn may_create(&self, room: &RoomId, identity: Identity) -> bool {
        match (identity, self.settings.anonymous_rooms) {
            (Identity::Token, _) | (Identity::Anonymous, AnonymousRooms::Any) => true,
            (Identity::Anonymous, AnonymousRooms::Live) => self.live.contains(room.as_str()),
            (Identity::Anonymous, AnonymousRooms::None) => false,
        }
    }

    /// Answers a join with an Error frame and the close that follows it.
    pub(super) fn refuse_join(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        room: RoomId,
        joiner: &Joiner,
        (code, close, reason): (u16, CloseCode, &'static str),
    ) {
        let frame = shardcast_ws::binary_frame(self.encoder.error(code, reason));
        let joined = JoinedMsg {
            room,
            conn: joiner.conn,
            seq: 0,
            epoch: Arc::from(""),
            online: 0,
            frames: Vec::new(),
            refused: Some(Refusal {
                frame,
                close,
                reason,
            }),
        };
        self.send_to(cx, joiner.from, DanmakuMsg::Joined(Box::new(joined)));
    }

    /// The frames that follow a Welcome: what the viewer missed, or a Resync.
    fn replay_frames(&mut self, replay: Replay, seq: u64, epoch: &str) -> Vec<Bytes> {
        match replay {
            Replay::None => Vec::new(),
            Replay::Events(events) => {
                bump(&self.counters().resume_hits, 1);
                let Some(first) = events.first() else {
                    return Vec::new();
                };
                let reply =
                    self.encoder
                        .history_reply(first.seq, events.iter().map(event_view), false);
                vec![shardcast_ws::binary_frame(reply)]
            }
            Replay::Resync => {
                bump(&self.counters().resume_misses, 1);
                vec![shardcast_ws::binary_frame(self.encoder.resync(seq, epoch))]
            }
        }
    }

    fn create_home(&mut self, cx: &mut Ctx<ShardMsg>, id: RoomId) -> usize {
        let (room, relay) = match self.settings.relay {
            None => (
                Room::new(id.clone(), self.settings.room.clone(), cx.now_ms()),
                None,
            ),
            Some(_) => (
                Room::new_relayed(id.clone(), self.settings.room.clone(), cx.now_ms()),
                Some(super::relayed::RelayState::new(if self.relay_up {
                    crate::state::msg::Reach::Up
                } else {
                    crate::state::msg::Reach::Down
                })),
            ),
        };
        let relayed = relay.is_some();
        let home = HomeRoom {
            room,
            timer: None,
            empty_since_ms: None,
            bans: VecDeque::new(),
            relay,
            epoch: Arc::from(crate::common::epoch::new_epoch()),
        };
        let index = self.homes.insert(id.clone(), home);
        set(&self.counters().rooms_home, self.homes.len() as u64);
        if relayed {
            self.ask_relay(cx, id, crate::state::msg::RelayAsk::Sync);
            self.count_degraded();
        }
        index
    }

    /// Shard `from` has `members` in `room` now.
    pub(super) fn home_members(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        room: &RoomId,
        members: u32,
    ) -> Result<(), MeshError> {
        let index = self.homed(room)?;
        let now = cx.now_ms();
        let mut emptied_relayed = false;
        if let Some(home) = self.homes.get_mut(index) {
            home.room.handle_members(from.0, members);
            let empty = home.room.online() == 0;
            emptied_relayed = empty && home.relay.is_some() && home.empty_since_ms.is_none();
            home.empty_since_ms = empty.then_some(now);
        }
        if emptied_relayed {
            // Other hosts stop counting this host's members at once.
            self.ask_relay(cx, room.clone(), crate::state::msg::RelayAsk::Online(0));
        }
        self.arm_room_timer(cx, index);
        Ok(())
    }

    pub(super) fn home_chat(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        chat: ChatMsg,
    ) -> Result<(), MeshError> {
        let index = self.homed(&chat.room)?;
        let Some(home) = self.homes.get_mut(index) else {
            return Ok(());
        };
        let priority = match chat.priority {
            ChatPriority::Paid => Priority::Paid,
            ChatPriority::Normal => Priority::Normal,
        };
        let chat_in = ChatIn {
            user: chat.user,
            text: chat.text,
            color: chat.color,
            mode: chat.mode,
            priority,
        };
        let (message, counter) = match home.room.handle_chat(cx.now_ms(), cx.wall_ms(), chat_in) {
            Admission::Accepted { .. } => {
                self.flush_home(cx, index);
                return Ok(());
            }
            Admission::Rejected(error) => ((400, error.to_string()), &self.counters().out_errors),
            Admission::Shed => ((503, "room busy: chat shed".into()), &self.counters().shed),
        };
        bump(counter, 1);
        let frame = shardcast_ws::binary_frame(self.encoder.error(message.0, &message.1));
        let conn = chat.conn;
        self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
        Ok(())
    }

    pub(super) fn home_like(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        room: &RoomId,
        count: u32,
    ) -> Result<(), MeshError> {
        let index = self.homed(room)?;
        if let Some(home) = self.homes.get_mut(index) {
            home.room.handle_like(cx.now_ms(), cx.wall_ms(), count);
        }
        self.arm_room_timer(cx, index);
        Ok(())
    }

    /// A gift reached its room's home: admitted (checks, the catalog, the room's gift cap),
    /// then sent to the ledger. It is ordered and acknowledged only once the ledger has it
    /// durable ([`Danmaku::on_gift_done`]).
    pub(super) fn home_gift(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        gift: GiftMsg,
    ) -> Result<(), MeshError> {
        let index = self.homed(&gift.room)?;
        if self.gifts_in_flight >= self.settings.gifts_in_flight_max {
            self.ledger_busy(cx, from, gift.conn);
            return Ok(());
        }
        let Some(home) = self.homes.get_mut(index) else {
            return Ok(());
        };
        let gift_in = GiftIn {
            user: gift.user.clone(),
            gift_id: gift.gift_id,
            count: gift.count,
            idempotency_key: gift.key.clone(),
        };
        let counters = &self.settings.counters[self.shard.index()];
        let frame = match home.room.admit_gift(cx.now_ms(), &gift_in) {
            GiftAdmission::Submit { value } => {
                bump(&counters.gifts_submitted, 1);
                let request = GiftRequest {
                    room: gift.room,
                    viewer_shard: from,
                    conn: gift.conn,
                    user: gift.user,
                    gift_id: gift.gift_id,
                    count: gift.count,
                    value,
                    key: gift.key,
                    time_ms: cx.wall_ms(),
                };
                let msg: ShardMsg = StateRequest::Gift(Box::new(request)).into();
                cx.mesh_send(self.settings.ledger, msg);
                self.gifts_in_flight += 1;
                return Ok(());
            }
            GiftAdmission::Busy => {
                bump(&counters.gifts_room_busy, 1);
                bump(&counters.out_errors, 1);
                self.encoder.error_with_cause(
                    429,
                    cause::ROOM_BUSY,
                    "the room takes no more gifts this second; retry with the same key",
                )
            }
            GiftAdmission::UnknownGift => {
                bump(&counters.out_errors, 1);
                self.encoder.error(404, "unknown gift")
            }
            GiftAdmission::Rejected(error) => {
                bump(&counters.out_errors, 1);
                self.encoder.error(400, &error.to_string())
            }
        };
        let frame = shardcast_ws::binary_frame(frame);
        self.send_to(
            cx,
            from,
            DanmakuMsg::Reply {
                conn: gift.conn,
                frame,
            },
        );
        Ok(())
    }

    /// Too many of this shard's gifts wait on the ledger: this one is answered at once, not
    /// queued (`ledger.in_flight_max_per_shard`).
    fn ledger_busy(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, conn: ConnId) {
        let counters = &self.settings.counters[self.shard.index()];
        bump(&counters.gifts_ledger_busy, 1);
        bump(&counters.out_errors, 1);
        let frame = self.encoder.error_with_cause(
            503,
            cause::LEDGER_BUSY,
            "the ledger is behind; the gift was not taken: retry shortly with the same key",
        );
        let frame = shardcast_ws::binary_frame(frame);
        self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
    }

    /// The ledger answered a gift this shard's room sent it: a new gift is ordered (and
    /// broadcast with the room's next batch), and the sender gets its ack or the reason.
    pub fn on_gift_done(&mut self, cx: &mut Ctx<ShardMsg>, done: GiftDone) {
        let GiftDone { request, outcome } = done;
        self.gifts_in_flight = self.gifts_in_flight.saturating_sub(1);
        let settings = self.settings.clone();
        let counters = &settings.counters[self.shard.index()];
        let index = self.homes.find(&request.room);
        let frame = match outcome {
            Ok(LedgerOutcome::Done { entry, balance }) => {
                let Some(seq) = self.order_durable_gift(cx, index, &request, entry) else {
                    return;
                };
                bump(&counters.gifts, 1);
                bump(&counters.out_gift_ack, 1);
                self.encoder.gift_ack(&request.key, seq, entry, balance)
            }
            Ok(LedgerOutcome::Duplicate(first)) => {
                let seq = index
                    .and_then(|i| self.homes.get_mut(i))
                    .and_then(|home| home.room.gift_seq(&request.user, &request.key))
                    .unwrap_or(0);
                bump(&counters.gift_duplicates, 1);
                bump(&counters.out_gift_ack, 1);
                let (entry, balance) = match *first {
                    LedgerOutcome::Done { entry, balance } => (entry, balance),
                    _ => (0, 0),
                };
                self.encoder.gift_ack(&request.key, seq, entry, balance)
            }
            Ok(LedgerOutcome::Refused(LedgerRefusal::InsufficientBalance { balance, needed })) => {
                bump(&counters.gifts_unpaid, 1);
                bump(&counters.out_errors, 1);
                self.encoder.error_with_cause(
                    402,
                    cause::INSUFFICIENT_BALANCE,
                    &format!("insufficient balance: {balance} < {needed}"),
                )
            }
            Ok(LedgerOutcome::Refused(refusal)) => {
                bump(&counters.out_errors, 1);
                self.encoder.error(400, &refusal.to_string())
            }
            Err(error) => {
                bump(&counters.gifts_store_failed, 1);
                bump(&counters.out_errors, 1);
                if self.log_budget.allow(cx.now_ms()) {
                    log::error!(
                        "room {}: gift {} from {} not taken: {error}",
                        request.room.as_str(),
                        request.key,
                        request.user
                    );
                }
                self.encoder.error_with_cause(
                    503,
                    cause::STORE_UNAVAILABLE,
                    "the ledger cannot write; the gift was not taken: retry later with the same key",
                )
            }
        };
        let frame = shardcast_ws::binary_frame(frame);
        self.send_to(
            cx,
            request.viewer_shard,
            DanmakuMsg::Reply {
                conn: request.conn,
                frame,
            },
        );
    }

    /// Orders a gift the ledger made durable as `entry`, and returns its seq; `None` when its
    /// room retired meanwhile (the gift is in the ledger and the room's gift log; the sender's
    /// retry is answered from there).
    fn order_durable_gift(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: Option<usize>,
        request: &GiftRequest,
        entry: u64,
    ) -> Option<u64> {
        let Some(home) = index.and_then(|i| self.homes.get_mut(i)) else {
            log::warn!(
                "room {}: retired before gift {} from {} was ordered (ledger entry {entry})",
                request.room.as_str(),
                request.key,
                request.user
            );
            return None;
        };
        let gift = GiftIn {
            user: request.user.clone(),
            gift_id: request.gift_id,
            count: request.count,
            idempotency_key: request.key.clone(),
        };
        let seq = home
            .room
            .order_gift(cx.now_ms(), cx.wall_ms(), gift, request.value);
        if let Some(index) = index {
            self.flush_home(cx, index);
        }
        Some(seq)
    }

    pub(super) fn home_history(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        room: &RoomId,
        conn: ConnId,
        from_seq: u64,
        limit: u32,
    ) -> Result<(), MeshError> {
        let index = self.homed(room)?;
        let Some(home) = self.homes.get(index) else {
            return Ok(());
        };
        let frame = match home.room.history(cx.now_ms(), from_seq, limit) {
            HistoryOutcome::Events {
                first_seq,
                events,
                more,
            } => {
                bump(&self.settings.counters[self.shard.index()].out_history, 1);
                let events = events.iter().map(event_view);
                self.encoder.history_reply(first_seq, events, more)
            }
            HistoryOutcome::Resync { seq } => {
                bump(&self.settings.counters[self.shard.index()].resume_misses, 1);
                self.encoder.resync(seq, &home.epoch())
            }
        };
        let frame = shardcast_ws::binary_frame(frame);
        self.send_to(cx, from, DanmakuMsg::Reply { conn, frame });
        Ok(())
    }

    /// An admin kicks `user`: a notice in the room, and a Kick to the user's connections on
    /// every shard.
    pub(super) fn home_kick(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        room: &RoomId,
        user: Arc<str>,
        reason: &str,
    ) -> Result<(), MeshError> {
        let index = self.homed(room)?;
        let Some(home) = self.homes.get_mut(index) else {
            return Ok(());
        };
        let notice = Arc::from(format!("{user} was removed"));
        home.room.handle_system(cx.now_ms(), cx.wall_ms(), notice);
        home.ban(user.clone(), cx.now_ms() + self.settings.kick_ban_s * 1000);
        let subscribers = home.room.subscribers().to_vec();
        let frame = shardcast_ws::binary_frame(self.encoder.kick(reason));
        let created = Instant::now();
        for shard in subscribers {
            let broadcast = BroadcastMsg {
                room: room.clone(),
                frame: frame.clone(),
                created,
                kick_user: Some(user.clone()),
            };
            self.send_to(
                cx,
                ShardId(shard),
                DanmakuMsg::Broadcast(Box::new(broadcast)),
            );
        }
        self.flush_home(cx, index);
        Ok(())
    }

    /// A notice from another service (the co-hosting stage): ordered in the room like any
    /// event, when the room is open here.
    pub(super) fn home_system(&mut self, cx: &mut Ctx<ShardMsg>, room: &RoomId, text: Arc<str>) {
        let Some(index) = self.homes.find(room) else {
            return;
        };
        if let Some(home) = self.homes.get_mut(index) {
            home.room.handle_system(cx.now_ms(), cx.wall_ms(), text);
        }
        self.flush_home(cx, index);
    }

    /// Cuts due batches and stats of a home room, sends them, and re-arms its timer. A room
    /// across hosts publishes its batches instead (they come back numbered), or orders them
    /// here while Redis is away.
    pub(super) fn flush_home(&mut self, cx: &mut Ctx<ShardMsg>, index: usize) {
        let now = cx.now_ms();
        if self
            .homes
            .get(index)
            .is_some_and(|home| home.relay.is_some())
        {
            self.flush_outbound(cx, index);
        }
        let Some((room, home)) = self.homes.entry_mut(index) else {
            return;
        };
        let room = room.clone();
        let mut out: Vec<Bytes> = Vec::new();
        let (mut batches, mut events) = (0, 0);
        while let Some(batch) = home.room.poll_batch(now) {
            batches += 1;
            events += batch.events.len() as u64;
            out.push(encode_batch(&mut self.encoder, &batch));
        }
        let mut report_online = None;
        if let Some(stats) = home.room.poll_stats(now) {
            let frame = self
                .encoder
                .room_stats(stats.online, stats.likes, stats.heat);
            out.push(shardcast_ws::binary_frame(frame));
            if home.relay.is_some() {
                report_online = Some(home.room.online());
            }
        }
        bump(&self.counters().batches, batches);
        bump(&self.counters().events, events);
        self.broadcast(cx, index, &room, &out);
        if let Some(members) = report_online {
            // Every stats period: this host's members, for every host's online count.
            self.ask_relay(cx, room, crate::state::msg::RelayAsk::Online(members));
        }
        self.arm_room_timer(cx, index);
    }

    /// Sends `frames` to every shard with members in the room at `index`.
    pub(super) fn broadcast(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        room: &RoomId,
        frames: &[Bytes],
    ) {
        if frames.is_empty() {
            return;
        }
        let Some(home) = self.homes.get(index) else {
            return;
        };
        let subscribers = home.room.subscribers().to_vec();
        let created = Instant::now();
        for &shard in &subscribers {
            for frame in frames {
                let broadcast = BroadcastMsg {
                    room: room.clone(),
                    frame: frame.clone(),
                    created,
                    kick_user: None,
                };
                self.send_to(
                    cx,
                    ShardId(shard),
                    DanmakuMsg::Broadcast(Box::new(broadcast)),
                );
            }
        }
    }

    fn arm_room_timer(&mut self, cx: &mut Ctx<ShardMsg>, index: usize) {
        let now = cx.now_ms();
        let history_ms = self.settings.room.history_s * 1000;
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        if let Some(timer) = home.timer.take() {
            cx.timer_cancel(timer);
        }
        // An empty room is kept (its history serves returning viewers) until history_s passes.
        let retire_at = home.empty_since_ms.map(|since| since + history_ms);
        let deadline = match (home.room.poll_timeout(), retire_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(deadline) = deadline {
            let key = TimerKey::Room {
                index: index as u32,
            };
            home.timer = cx.timer_after(deadline.saturating_sub(now), key.into());
        }
    }

    /// A room timer fired: flush, or retire a room empty for `history_s`.
    pub fn on_room_timer(&mut self, cx: &mut Ctx<ShardMsg>, id: TimerId, index: usize) {
        let now = cx.now_ms();
        let history_ms = self.settings.room.history_s * 1000;
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        if home.timer != Some(id) {
            return;
        }
        home.timer = None;
        if home
            .empty_since_ms
            .is_some_and(|since| now >= since + history_ms)
        {
            let relayed = home.relay.is_some();
            if let Some((id, _)) = self.homes.remove(index) {
                if relayed {
                    self.ask_relay(cx, id.clone(), crate::state::msg::RelayAsk::Online(0));
                    self.ask_relay(cx, id, crate::state::msg::RelayAsk::Forget);
                    self.count_degraded();
                }
            }
            set(&self.counters().rooms_home, self.homes.len() as u64);
            return;
        }
        self.flush_home(cx, index);
    }
}
