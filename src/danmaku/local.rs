//! The rooms as seen from this shard: who of this shard's viewers is in which room, the
//! answer to their joins, and the delivery of the home's broadcast frames to them.
//!
//! Member counts: the home learns this shard's count for a room with every Join (the count
//! including the joiner) and every Members message. A viewer counts from its Hello until it
//! leaves, joining or joined; a viewer that leaves while its Join is in flight is taken off
//! the count at once, and the home's answer for it is then dropped without counting again.

use super::msg::{BroadcastMsg, DanmakuMsg, JoinedMsg};
use super::viewer::Session;
use super::{home_of, Danmaku};
use crate::common::auth::Role;
use crate::common::counters::{bump, set};
use crate::shard::msg::ShardMsg;
use shardcast_danmaku::RoomId;
use shardcast_engine::{ConnId, Ctx, ShardId};
use shardcast_ws::CloseCode;

/// The members of a room on this shard.
pub(super) struct LocalRoom {
    pub home: ShardId,
    /// Joined members; a viewer's `Session::Joined::position` is its index here.
    pub members: Vec<ConnId>,
    /// Viewers whose Join is in flight.
    pub joining: u32,
}

/// Why a member is closed while a frame is delivered.
#[derive(Clone, Copy, Debug)]
enum Ejection {
    /// An admin kicked its user.
    Kicked,
    /// Over `ws.send_queue_max_bytes` for `ws.stall_timeout_ms`.
    TooSlow,
}

impl LocalRoom {
    /// What this shard reports to the home.
    fn count(&self) -> u32 {
        self.members.len() as u32 + self.joining
    }
}

impl Danmaku {
    /// The local room entry for `room`, created if needed.
    pub(super) fn local_room(&mut self, room: RoomId) -> usize {
        if let Some(index) = self.locals.find(&room) {
            return index;
        }
        let entry = LocalRoom {
            home: home_of(&room, self.shards),
            members: Vec::new(),
            joining: 0,
        };
        let index = self.locals.insert(room, entry);
        set(&self.counters().rooms_local, self.locals.len() as u64);
        index
    }

    pub(super) fn local_room_id(&self, local: usize) -> Option<RoomId> {
        self.locals.entry(local).map(|(room, _)| room.clone())
    }

    /// The home answered a Join.
    pub(super) fn viewer_joined(&mut self, cx: &mut Ctx<ShardMsg>, joined: JoinedMsg) {
        let Some(local) = self.locals.find(&joined.room) else {
            // Everyone here left while the Join was in flight.
            return;
        };
        let conn = joined.conn;
        let waiting = self
            .viewer(conn)
            .is_some_and(|v| matches!(v.session, Session::Joining { local: l } if l == local));
        if !waiting {
            // The viewer left while joining; `leave_room` already took it off the count.
            return;
        }
        let Some(entry) = self.locals.get_mut(local) else {
            return;
        };
        entry.joining -= 1;
        if let Some(refusal) = joined.refused {
            cx.send(conn, refusal.frame);
            if let Some(viewer) = self.viewers[conn.slot()].as_mut() {
                viewer.session = Session::AwaitHello;
            }
            self.leave_local_if_empty(local);
            return self.close(cx, conn, refusal.close, refusal.reason);
        }
        let position = entry.members.len() as u32;
        entry.members.push(conn);
        let Some(viewer) = self.viewers[conn.slot()].as_mut() else {
            return;
        };
        viewer.session = Session::Joined { local, position };
        let role = match viewer.role {
            None | Some(Role::Viewer) => shardcast_wire::Role::Viewer,
            // A co-host chats as a host.
            Some(Role::Speaker | Role::Cohost) => shardcast_wire::Role::Speaker,
            Some(Role::Admin) => shardcast_wire::Role::Admin,
        };
        let user = viewer.user.clone();
        let welcome = self.encoder.welcome(&shardcast_wire::WelcomeView {
            user: &user,
            room: joined.room.as_str(),
            seq: joined.seq,
            online: joined.online,
            heartbeat_ms: self.settings.heartbeat_ms,
            role,
            epoch: &joined.epoch,
        });
        let welcome = shardcast_ws::binary_frame(welcome);
        self.reply(cx, conn, welcome);
        bump(&self.counters().out_welcome, 1);
        bump(&self.counters().out_history, joined.frames.len() as u64);
        for frame in joined.frames {
            self.reply(cx, conn, frame);
        }
    }

    /// Queues a broadcast frame on every local member of its room.
    pub(super) fn deliver(&mut self, cx: &mut Ctx<ShardMsg>, broadcast: BroadcastMsg) {
        let Some(local) = self.locals.find(&broadcast.room) else {
            // Everyone here left while the frame was in flight.
            return;
        };
        let Some(entry) = self.locals.get_mut(local) else {
            return;
        };
        let members = std::mem::take(&mut entry.members);
        let (delivered, dropped, closing) = match &broadcast.kick_user {
            Some(user) => (0, 0, self.deliver_kick(cx, &members, &broadcast, user)),
            None => self.deliver_batch(cx, &members, &broadcast),
        };
        if let Some(entry) = self.locals.get_mut(local) {
            entry.members = members;
        }
        let counters = self.counters();
        bump(&counters.deliveries, delivered);
        bump(&counters.dropped, dropped);
        if delivered > 0 {
            self.settings.latency[self.shard.index()]
                .record_us(broadcast.created.elapsed().as_micros() as u64);
        }
        for (conn, why) in closing {
            let (counter, reason) = match why {
                Ejection::Kicked => (&self.counters().kicked, "kicked"),
                Ejection::TooSlow => (&self.counters().stalled_closed, "too slow"),
            };
            bump(counter, 1);
            self.close(cx, conn, CloseCode::POLICY_VIOLATION, reason);
        }
    }

    /// Queues a batch on every member as droppable; sheds the oldest of a viewer over its cap
    /// and lists those over it for `ws.stall_timeout_ms`. Returns (delivered, dropped, to
    /// close).
    fn deliver_batch(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        members: &[ConnId],
        broadcast: &BroadcastMsg,
    ) -> (u64, u64, Vec<(ConnId, Ejection)>) {
        let now = cx.now_ms();
        let max = self.settings.send_queue_max_bytes;
        let stall_ms = self.settings.stall_timeout_ms;
        let (mut delivered, mut dropped) = (0u64, 0u64);
        let mut stalled = Vec::new();
        for &conn in members {
            cx.send_droppable(conn, broadcast.frame.clone());
            delivered += 1;
            if cx.queued_bytes(conn) <= max {
                continue;
            }
            dropped += cx.shed_oldest(conn, max).chunks as u64;
            if let Some(viewer) = self.viewers[conn.slot()].as_mut() {
                let since = *viewer.over_cap_since_ms.get_or_insert(now);
                if now.saturating_sub(since) >= stall_ms {
                    stalled.push((conn, Ejection::TooSlow));
                }
            }
        }
        (delivered, dropped, stalled)
    }

    /// Sends a Kick to the members that are `user`, listing them to close.
    fn deliver_kick(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        members: &[ConnId],
        broadcast: &BroadcastMsg,
        user: &str,
    ) -> Vec<(ConnId, Ejection)> {
        let mut kicked = Vec::new();
        for &conn in members {
            if self.viewer(conn).is_some_and(|v| &*v.user == user) {
                cx.send(conn, broadcast.frame.clone());
                kicked.push((conn, Ejection::Kicked));
            }
        }
        kicked
    }

    /// Takes a viewer out of its local room (if any) and reports the new count home.
    pub(super) fn leave_room(&mut self, cx: &mut Ctx<ShardMsg>, conn: ConnId) {
        let Some(viewer) = self.viewers[conn.slot()]
            .as_mut()
            .filter(|v| v.conn == conn)
        else {
            return;
        };
        let (local, position) = match viewer.session {
            Session::Joined { local, position } => (local, Some(position)),
            Session::Joining { local } => (local, None),
            Session::AwaitHello | Session::Closing => return,
        };
        viewer.session = Session::Closing;
        let Some(entry) = self.locals.get_mut(local) else {
            return;
        };
        match position {
            Some(position) => {
                let removed = entry.members.swap_remove(position as usize);
                debug_assert_eq!(removed, conn, "a member's position is its index");
                if let Some(&moved) = entry.members.get(position as usize) {
                    if let Some(Session::Joined { position: p, .. }) =
                        self.viewers[moved.slot()].as_mut().map(|v| &mut v.session)
                    {
                        *p = position;
                    }
                }
            }
            // Off the count now: the home's answer will find the session changed.
            None => entry.joining -= 1,
        }
        let Some((room, entry)) = self.locals.entry(local) else {
            return;
        };
        let msg = DanmakuMsg::Members {
            room: room.clone(),
            members: entry.count(),
        };
        let home = entry.home;
        self.send_to(cx, home, msg);
        self.leave_local_if_empty(local);
    }

    /// Forgets a local room nobody here is in or joining any more.
    pub(super) fn leave_local_if_empty(&mut self, local: usize) {
        if self.locals.get(local).is_some_and(|e| e.count() == 0) {
            self.locals.remove(local);
            set(&self.counters().rooms_local, self.locals.len() as u64);
        }
    }
}
