//! Rooms across hosts, on the room's home shard: with `state.redis` set, a room's events are
//! ordered by Redis (through the relay thread, `state::relay`) instead of here.
//!
//! The home still admits everything (rate caps, the word filter, gifts through the ledger)
//! and still cuts one outbound batch per window, but publishes it unnumbered. Every host's
//! home of the room gets every host's batches back numbered, in one order, and applies them
//! (`Room::apply_relayed`): only then are they broadcast to members, here as on every host.
//!
//! A home learns the room's order from a `Synced` answer: at creation (joins wait for it,
//! at most [`WAITING_JOINS_MAX`]), after a gap, and after every Redis outage. While Redis is
//! away, the room orders its batches here (degraded: this host's viewers only) and its order
//! forks from Redis's; the next `Synced` restarts the room at Redis's order and tells the
//! members to Resync.

use super::encode::encode_batch;
use super::home::Joiner;
use super::Danmaku;
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use crate::state::msg::{
    Reach, RelayAsk, RelayNews, RelayReply, RelayRequest, RelayedBatch, RoomNews,
};
use bytes::Bytes;
use shardcast_danmaku::{Relayed, RoomEvent, RoomId};
use shardcast_engine::Ctx;
use std::sync::Arc;

/// Joins one room holds while it waits for Redis's order; more are refused (503, try later).
pub const WAITING_JOINS_MAX: usize = 1024;

/// A room's place in Redis's order.
pub(super) struct RelayState {
    /// The epoch of the order the room's history holds; `None` until the first `Synced`.
    epoch: Option<Arc<str>>,
    /// Events were ordered here while Redis was away: the next `Synced` restarts the order.
    forked: bool,
    /// Joins waiting for the first `Synced`.
    waiting: Vec<Joiner>,
    /// A `Sync` was asked (a gap, or another epoch) and not answered yet: batches wait for it.
    syncing: bool,
}

impl RelayState {
    /// A room made while Redis is `up` waits for its order; one made while Redis is away
    /// orders here from the start (forked).
    pub(super) fn new(reach: Reach) -> RelayState {
        let down = reach == Reach::Down;
        RelayState {
            epoch: down.then(local_epoch),
            forked: down,
            waiting: Vec::new(),
            syncing: false,
        }
    }

    /// The epoch of the room's order, once known.
    pub(super) fn epoch(&self) -> Option<Arc<str>> {
        self.epoch.clone()
    }

    /// Whether joins can be answered.
    pub(super) fn is_synced(&self) -> bool {
        self.epoch.is_some()
    }

    /// Holds a join until the room is synced; gives it back when too many wait.
    pub(super) fn wait(&mut self, joiner: Joiner) -> Result<(), Joiner> {
        if self.waiting.len() >= WAITING_JOINS_MAX {
            return Err(joiner);
        }
        self.waiting.push(joiner);
        Ok(())
    }
}

/// The epoch of an order a room makes on its own host while Redis is away.
fn local_epoch() -> Arc<str> {
    Arc::from(format!("local-{}", crate::common::epoch::new_epoch()))
}

impl Danmaku {
    /// Sends `ask` about `room` to the relay thread.
    pub(super) fn ask_relay(&mut self, cx: &mut Ctx<ShardMsg>, room: RoomId, ask: RelayAsk) {
        if let Some(relay) = self.settings.relay {
            cx.mesh_send(relay, RelayRequest { room, ask }.into());
        }
    }

    /// Sets the `rooms_degraded` gauge.
    pub(super) fn count_degraded(&self) {
        let degraded = self
            .homes
            .iter()
            .filter(|(_, _, home)| home.relay.as_ref().is_some_and(|r| r.forked))
            .count();
        set(&self.counters().rooms_degraded, degraded as u64);
    }

    /// Publishes the room's due outbound batches, or orders them here while Redis is away.
    pub(super) fn flush_outbound(&mut self, cx: &mut Ctx<ShardMsg>, index: usize) {
        let now = cx.now_ms();
        let Some((room, home)) = self.homes.entry_mut(index) else {
            return;
        };
        let room = room.clone();
        let mut outbound = Vec::new();
        while let Some(batch) = home.room.poll_batch(now) {
            outbound.push(batch.events);
        }
        let publish = self.relay_up && home.relay.as_ref().is_some_and(|r| !r.forked);
        for events in outbound {
            if publish {
                self.ask_relay(cx, room.clone(), RelayAsk::Publish(events));
            } else {
                self.order_here(cx, index, &room, &events);
            }
        }
    }

    /// Orders `events` here (Redis away): numbered after the room's last seq and sent to its
    /// members on this host. The room's order has forked from Redis's.
    fn order_here(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        room: &RoomId,
        events: &Arc<[RoomEvent]>,
    ) {
        let now = cx.now_ms();
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        let was_forked = home.relay.as_ref().is_some_and(|r| r.forked);
        if let Some(relay) = home.relay.as_mut() {
            relay.forked = true;
            if !was_forked {
                // A new order of this host's own.
                relay.epoch = Some(local_epoch());
            }
        }
        let next = home.room.flushed_seq() + 1;
        let likes = home.room.likes();
        let applied = home.room.apply_relayed(now, next, events.to_vec(), likes);
        if let Relayed::Batch(batch) = applied {
            bump(&self.counters().events, batch.events.len() as u64);
            let frame = encode_batch(&mut self.encoder, &batch);
            self.broadcast(cx, index, room, &[frame]);
        }
        if !was_forked {
            self.count_degraded();
        }
    }

    /// News from the relay thread.
    pub fn on_relay(&mut self, cx: &mut Ctx<ShardMsg>, reply: RelayReply) {
        match reply {
            RelayReply::Status(reach) => {
                self.relay_up = reach == Reach::Up;
                if reach == Reach::Down {
                    // Rooms still waiting for their first order start on their own.
                    let waiting: Vec<usize> = self
                        .homes
                        .iter()
                        .filter(|(_, _, home)| home.relay.as_ref().is_some_and(|r| !r.is_synced()))
                        .map(|(index, _, _)| index)
                        .collect();
                    for index in waiting {
                        self.start_local(cx, index);
                    }
                }
            }
            RelayReply::Room(news) => {
                let RoomNews { room, news } = *news;
                let Some(index) = self.homes.find(&room) else {
                    return; // retired meanwhile
                };
                match news {
                    RelayNews::Synced {
                        epoch,
                        seq,
                        likes,
                        batches,
                    } => self.synced(cx, index, &room, (epoch, seq, likes), batches),
                    RelayNews::Batch(batch) => self.relayed_batch(cx, index, &room, batch),
                    RelayNews::Bounced(events) => {
                        bump(&self.counters().relay_bounced, 1);
                        self.order_here(cx, index, &room, &events);
                        if self.relay_up {
                            // Redis refused this batch but is up: take its order again.
                            self.ask_sync(cx, index, &room);
                        }
                    }
                    RelayNews::Online(total) => {
                        if let Some(home) = self.homes.get_mut(index) {
                            // The total counts this host's members as last reported.
                            let here = home.room.online();
                            home.room.set_online_elsewhere(total.saturating_sub(here));
                        }
                    }
                }
            }
        }
    }

    /// Asks Redis's order of the room again; batches wait for it.
    fn ask_sync(&mut self, cx: &mut Ctx<ShardMsg>, index: usize, room: &RoomId) {
        if let Some(relay) = self.homes.get_mut(index).and_then(|h| h.relay.as_mut()) {
            if relay.syncing {
                return;
            }
            relay.syncing = true;
        }
        self.ask_relay(cx, room.clone(), RelayAsk::Sync);
    }

    /// A room waiting for its first order, with Redis away: it orders here, and its waiting
    /// joins are answered.
    fn start_local(&mut self, cx: &mut Ctx<ShardMsg>, index: usize) {
        let Some((room, home)) = self.homes.entry_mut(index) else {
            return;
        };
        let room = room.clone();
        let Some(relay) = home.relay.as_mut() else {
            return;
        };
        relay.epoch = Some(local_epoch());
        relay.forked = true;
        let waiting = std::mem::take(&mut relay.waiting);
        self.count_degraded();
        for joiner in waiting {
            self.answer_join(cx, index, room.clone(), joiner);
        }
    }

    /// The room's order in Redis. A room that had an order of its own (a first sync, another
    /// epoch, or events ordered here while Redis was away) restarts at Redis's, seeded with
    /// the batches Redis holds, and its members are told to Resync; one that only missed
    /// batches applies them and carries on.
    fn synced(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        room: &RoomId,
        (epoch, seq, likes): (Arc<str>, u64, u64),
        batches: Vec<RelayedBatch>,
    ) {
        let now = cx.now_ms();
        let settings = self.settings.clone();
        let counters = &settings.counters[self.shard.index()];
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        let Some(relay) = home.relay.as_mut() else {
            return;
        };
        let first_sync = relay.epoch.is_none();
        let same_order = relay.epoch.as_deref() == Some(&*epoch) && !relay.forked;
        let was_forked = relay.forked;
        relay.epoch = Some(epoch);
        relay.forked = false;
        relay.syncing = false;
        let waiting = std::mem::take(&mut relay.waiting);
        let mut frames: Vec<Bytes> = Vec::new();
        let mut restart = !same_order;
        if same_order {
            // Fill the gap from the batches Redis holds; a gap they do not cover restarts.
            for batch in &batches {
                let events = batch.events.clone();
                match home
                    .room
                    .apply_relayed(now, batch.first_seq, events, batch.likes)
                {
                    Relayed::Batch(applied) => {
                        frames.push(encode_batch(&mut self.encoder, &applied));
                    }
                    Relayed::Stale => {}
                    Relayed::Gap { .. } => {
                        restart = true;
                        break;
                    }
                }
            }
            if !restart && home.room.flushed_seq() < seq {
                restart = true;
            }
        }
        if restart {
            // Seed the history with what Redis holds; members learn the new position by a
            // Resync, then get live batches from it.
            frames.clear();
            let start = batches.first().map_or(seq, |b| b.first_seq - 1);
            home.room.reset_relayed(start, likes);
            for batch in batches {
                let _ = home
                    .room
                    .apply_relayed(now, batch.first_seq, batch.events, batch.likes);
            }
            if home.room.flushed_seq() != seq {
                // The stream was trimmed or cut short: start at Redis's seq, empty.
                home.room.reset_relayed(seq, likes);
            }
            if !first_sync {
                bump(&counters.relay_resyncs, 1);
                let resync = self.encoder.resync(home.room.flushed_seq(), &home.epoch());
                frames.push(shardcast_ws::binary_frame(resync));
            }
        }
        bump(&counters.relay_batches, frames.len() as u64);
        if was_forked {
            self.count_degraded();
        }
        self.broadcast(cx, index, room, &frames);
        for joiner in waiting {
            self.answer_join(cx, index, room.clone(), joiner);
        }
        self.flush_home(cx, index);
    }

    /// A batch some host published: applied in order and sent to the members here.
    fn relayed_batch(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        index: usize,
        room: &RoomId,
        batch: RelayedBatch,
    ) {
        let now = cx.now_ms();
        let Some(home) = self.homes.get_mut(index) else {
            return;
        };
        let Some(relay) = home.relay.as_ref() else {
            return;
        };
        if relay.forked || relay.syncing || !relay.is_synced() {
            // Ordering here, or waiting for an order: the next Synced carries it.
            return;
        }
        if relay.epoch.as_deref() != Some(&*batch.epoch) {
            // Redis lost the room and started another order.
            self.ask_sync(cx, index, room);
            return;
        }
        match home
            .room
            .apply_relayed(now, batch.first_seq, batch.events, batch.likes)
        {
            Relayed::Batch(applied) => {
                bump(&self.counters().relay_batches, 1);
                bump(&self.counters().events, applied.events.len() as u64);
                let frame = encode_batch(&mut self.encoder, &applied);
                self.broadcast(cx, index, room, &[frame]);
                self.flush_home(cx, index);
            }
            Relayed::Stale => {}
            Relayed::Gap { .. } => self.ask_sync(cx, index, room),
        }
    }
}
