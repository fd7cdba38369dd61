//! Danmaku on a shard: the WebSocket viewers connected here ([`viewer`]), the rooms they are
//! in as seen from here ([`local`]), and the rooms whose home this shard is ([`home`]).
//! It owns those three tables and nothing else: it never reads another shard's state, it
//! reaches a room's home only through [`msg::DanmakuMsg`] on the mesh, and it never blocks.
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

mod encode;
mod home;
mod local;
pub mod msg;
mod relayed;
#[cfg(test)]
mod relayed_tests;
pub mod settings;
#[cfg(test)]
mod tests;
mod viewer;

use crate::common::live::LiveSet;
use crate::common::log_budget::LogBudget;
use crate::common::placement::{home_shard, Kind};
use crate::common::table::Table;
use crate::shard::msg::ShardMsg;
use home::{HomeRoom, Joiner};
use local::LocalRoom;
use msg::DanmakuMsg;
use settings::{DanmakuCounters, DanmakuSettings};
use shardcast_danmaku::RoomId;
use shardcast_engine::{Ctx, ShardId};
use std::sync::Arc;
use viewer::{MessageKindTag, Viewer};

/// A mesh message this shard could not act on.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// A viewer's message for a room that is not homed on this shard. Rooms stay homed while
    /// anyone is in them, so this is a bug (a member count gone wrong, or a message routed to
    /// the wrong shard).
    #[error("room {room} is not homed on shard {shard}")]
    NotHomed { room: RoomId, shard: u16 },
}

/// The danmaku state of one shard.
pub struct Danmaku {
    settings: Arc<DanmakuSettings>,
    shard: ShardId,
    shards: usize,
    /// WebSocket viewers, by connection slot.
    viewers: Vec<Option<Viewer>>,
    /// Rooms with members (or members joining) on this shard.
    locals: Table<RoomId, LocalRoom>,
    /// Rooms whose home is this shard.
    homes: Table<RoomId, HomeRoom>,
    encoder: shardcast_wire::Encoder,
    scratch: Vec<u8>,
    inbox: Vec<(MessageKindTag, Vec<u8>)>,
    open: u64,
    log_budget: LogBudget,
    /// The streams live now (media writes it from its index; danmaku reads it).
    live: LiveSet,
    /// Whether the relay thread last said Redis is up (rooms across hosts; true until it
    /// says otherwise).
    relay_up: bool,
    /// Gifts this shard sent to the ledger that it has not answered yet.
    gifts_in_flight: usize,
}

/// The home shard of `room`.
pub fn home_of(room: &RoomId, shards: usize) -> ShardId {
    home_shard(Kind::Room, room.as_str(), shards)
}

impl Danmaku {
    /// The state for one shard with a connection table of `capacity` slots.
    pub fn new(
        settings: Arc<DanmakuSettings>,
        shard: ShardId,
        shards: usize,
        capacity: usize,
        live: LiveSet,
    ) -> Self {
        Danmaku {
            settings,
            shard,
            shards,
            viewers: (0..capacity).map(|_| None).collect(),
            locals: Table::default(),
            homes: Table::default(),
            encoder: shardcast_wire::Encoder::new(),
            scratch: Vec::new(),
            inbox: Vec::new(),
            open: 0,
            log_budget: LogBudget::default(),
            live,
            relay_up: true,
            gifts_in_flight: 0,
        }
    }

    /// This shard's counters.
    pub fn counters(&self) -> &DanmakuCounters {
        &self.settings.counters[self.shard.index()]
    }

    /// Where the ledger and (with Redis) the relay thread are on the mesh.
    pub fn state_threads(&self) -> (ShardId, Option<ShardId>) {
        (self.settings.ledger, self.settings.relay)
    }

    /// Rooms homed here (for tests and the metrics gauge).
    pub fn rooms_homed(&self) -> usize {
        self.homes.len()
    }

    /// Sends `msg` to the home of the room it names (running it here when that is us).
    fn send_home(&mut self, cx: &mut Ctx<ShardMsg>, msg: DanmakuMsg) {
        let Some(room) = msg.home_room() else {
            debug_assert!(false, "only viewer → home messages go home");
            return;
        };
        let home = home_of(room, self.shards);
        self.send_to(cx, home, msg);
    }

    /// Sends `msg` to shard `to` over the mesh, or handles it here when `to` is this shard.
    fn send_to(&mut self, cx: &mut Ctx<ShardMsg>, to: ShardId, msg: DanmakuMsg) {
        if to == self.shard {
            self.on_mesh(cx, to, msg);
        } else {
            cx.mesh_send(to, msg.into());
        }
    }

    /// A message from another shard (or from this one, for rooms homed here). An error is
    /// counted and logged here; the caller has nothing to undo.
    pub fn on_mesh(&mut self, cx: &mut Ctx<ShardMsg>, from: ShardId, msg: DanmakuMsg) {
        if let Err(error) = self.dispatch(cx, from, msg) {
            crate::common::counters::bump(&self.counters().mesh_errors, 1);
            if self.log_budget.allow(cx.now_ms()) {
                log::debug!(
                    "shard {}: danmaku message from shard {}: {error}",
                    self.shard.0,
                    from.0
                );
            }
        }
    }

    fn dispatch(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        from: ShardId,
        msg: DanmakuMsg,
    ) -> Result<(), MeshError> {
        match msg {
            DanmakuMsg::Join(join) => {
                let msg::JoinMsg {
                    room,
                    conn,
                    last_seq,
                    epoch,
                    members,
                    user,
                    identity,
                } = *join;
                let joiner = Joiner {
                    from,
                    conn,
                    user,
                    identity,
                    epoch,
                    last_seq,
                    members,
                };
                self.home_join(cx, room, joiner);
            }
            DanmakuMsg::Members { room, members } => self.home_members(cx, from, &room, members)?,
            DanmakuMsg::Chat(chat) => self.home_chat(cx, from, *chat)?,
            DanmakuMsg::Like { room, count } => self.home_like(cx, &room, count)?,
            DanmakuMsg::Gift(gift) => self.home_gift(cx, from, *gift)?,
            DanmakuMsg::History {
                room,
                conn,
                from_seq,
                limit,
            } => self.home_history(cx, from, &room, conn, from_seq, limit)?,
            DanmakuMsg::Kick { room, user, reason } => self.home_kick(cx, &room, user, &reason)?,
            DanmakuMsg::System { room, text } => self.home_system(cx, &room, text),
            DanmakuMsg::Joined(joined) => self.viewer_joined(cx, *joined),
            DanmakuMsg::Reply { conn, frame } => self.reply(cx, conn, frame),
            DanmakuMsg::Broadcast(broadcast) => self.deliver(cx, *broadcast),
        }
        Ok(())
    }

    /// The index of the home room `room`, or the error that it is not homed here.
    fn homed(&self, room: &RoomId) -> Result<usize, MeshError> {
        self.homes.find(room).ok_or_else(|| MeshError::NotHomed {
            room: room.clone(),
            shard: self.shard.0,
        })
    }

    /// Closes every WebSocket connection with 1001 (the server is going away).
    pub fn on_drain(&mut self, cx: &mut Ctx<ShardMsg>) {
        for slot in 0..self.viewers.len() {
            let Some(conn) = self.viewers[slot]
                .as_ref()
                .filter(|v| v.is_live())
                .map(|v| v.conn)
            else {
                continue;
            };
            self.close(
                cx,
                conn,
                shardcast_ws::CloseCode::GOING_AWAY,
                "server shutting down",
            );
        }
    }
}
