//! Co-hosting on the media service. Each host publishes a feed `{program}~{slot}` (WHIP or
//! RTMP; slot 0 is the owner's). A feed's home tells the program's home when the feed goes
//! live or ends (`MediaMsg::StageJoin`/`StageLeave`). The program's home keeps the stage:
//! the first host starts it on the least loaded transcode thread, which becomes the
//! program's one publisher (`PublisherId::Stage`); each change of hosts goes to that thread
//! (`StageOp::Slots`); the last host to leave ends the program. The program's home also tells
//! each feed's home where to send the feed (`MediaMsg::StageWatch`), and that home forwards
//! the feed's configurations and samples straight to the thread (`StageOp::Input`), as its
//! home already does for WebRTC shards. Hosts see one another over WHEP of the feeds,
//! forwarded and never re-encoded; the audience gets the program.

use super::msg::{MediaMsg, Muted, PublishFrom, PublishRole, PublisherId, RtcMedia};
use super::names::{home_of, stage_feed};
use super::Media;
use crate::common::placement::{home_shard, Kind};
use crate::danmaku::msg::DanmakuMsg;
use crate::shard::msg::ShardMsg;
use crate::transcode::msg::{FeedMedia, StageOp, TranscodeMsg};
use shardcast_engine::{Ctx, ShardId};
use shardcast_media::StageHost;
use std::sync::Arc;

/// A host's feed joined the stage (went live) or left it (ended).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    Joined,
    Left,
}

/// Where a feed's home sends the feed: its program's stage.
pub(super) struct StageTarget {
    pub worker: ShardId,
    pub program: Arc<str>,
    pub slot: u8,
}

/// A co-hosted program, at its home.
pub(super) struct Stage {
    /// The transcode thread composing it.
    worker: ShardId,
    /// Live hosts (bit `n`: `{program}~n`).
    slots: u16,
    /// Hosts not heard for a while (bit `n`: `{program}~n`).
    muted: u16,
    /// Hosts' names (their feeds' `?title=`), by slot.
    names: Vec<(u8, Arc<str>)>,
}

impl Stage {
    /// The name of the host in `slot`: theirs, or "The host" (slot 0) / "Guest N".
    fn host_name(&self, slot: u8) -> String {
        match self.names.iter().find(|(s, _)| *s == slot) {
            Some((_, name)) => name.to_string(),
            None => default_host_name(slot),
        }
    }
}

/// A host's name when they gave none: the owner, or a guest by slot.
pub(super) fn default_host_name(slot: u8) -> String {
    match slot {
        0 => "The host".to_string(),
        n => format!("Guest {n}"),
    }
}

impl Media {
    /// At a feed's home: the feed went live (its publisher's `?title=` is the host's name) or
    /// ended; its program's home hears.
    pub(super) fn stage_feed_changed(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        feed: &Arc<str>,
        presence: Presence,
    ) {
        let Some((program, _)) = stage_feed(feed) else {
            return;
        };
        let home = home_of(program, self.shards);
        let name = (self.homes.find(feed))
            .and_then(|index| self.homes.get(index))
            .map(|slot| slot.title())
            .filter(|title| !title.is_empty())
            .map(Arc::from);
        let feed = feed.clone();
        let msg = match presence {
            Presence::Joined => MediaMsg::StageJoin { feed, name },
            Presence::Left => MediaMsg::StageLeave { feed },
        };
        self.send_to(cx, home, msg);
    }

    /// At the program's home: feed `feed` (of the host called `name`, if given) joined or
    /// left the stage.
    pub(super) fn stage_member(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        (feed, name): (Arc<str>, Option<Arc<str>>),
        presence: Presence,
    ) {
        let Some((program, slot)) = stage_feed(&feed) else {
            return;
        };
        let live = presence == Presence::Joined;
        let program: Arc<str> = Arc::from(program);
        let bit = 1u16 << slot;
        if !self.stages.contains_key(&program) {
            if !live {
                return;
            }
            if self.program_published(&program) {
                log::warn!(
                    "stage {program}: {program} is live from its own publisher, so {feed} is not \
                     composed into it; co-hosts' owner publishes {program}~0, not {program}"
                );
                return;
            }
            let Some(worker) = self.stage_start(cx, &program) else {
                return;
            };
            let stage = Stage {
                worker,
                slots: 0,
                muted: 0,
                names: Vec::new(),
            };
            self.stages.insert(program.clone(), stage);
        }
        let stage = self.stages.get_mut(&program).expect("made above");
        let slots = match live {
            true => stage.slots | bit,
            false => stage.slots & !bit,
        };
        let worker = stage.worker;
        if let (true, Some(name)) = (live, name) {
            stage.names.retain(|(s, _)| *s != slot);
            stage.names.push((slot, name));
        }
        if slots != stage.slots {
            stage.slots = slots;
            stage.muted &= slots;
            let (verb, count) = (if live { "joined" } else { "left" }, slots.count_ones());
            log::info!("stage {program}: {feed} {verb}; {count} host(s) on stage");
            let op = Box::new(StageOp::Slots(slots));
            let msg = TranscodeMsg::Stage {
                program: program.clone(),
                op,
            };
            cx.mesh_send(worker, msg.into());
            let hosts = if count == 1 { "host" } else { "hosts" };
            let who = stage.host_name(slot);
            if !live {
                stage.names.retain(|(s, _)| *s != slot);
            }
            let notice = format!("{who} {verb} the stage: {count} {hosts} live");
            self.stage_notice(cx, &program, notice);
            self.stage_roster(cx, &program);
        }
        let feed_home = home_of(&feed, self.shards);
        let watch = MediaMsg::StageWatch {
            feed,
            worker: live.then_some(worker),
        };
        self.send_to(cx, feed_home, watch);
        if slots == 0 {
            self.stage_end(cx, &program);
        }
    }

    /// Whether `program` is live from a publisher of its own (not a stage).
    fn program_published(&self, program: &str) -> bool {
        (self.homes.find(program))
            .and_then(|index| self.homes.get(index))
            .and_then(|slot| slot.active_publisher())
            .is_some_and(|(_, id)| id != PublisherId::Stage)
    }

    /// The program's stage starts on the least loaded transcode thread, which publishes it.
    fn stage_start(&mut self, cx: &mut Ctx<ShardMsg>, program: &Arc<str>) -> Option<ShardId> {
        let transcode = self.settings.transcode.clone()?;
        if !transcode.has_room() {
            log::warn!(
                "stage {program}: every transcode thread runs transcode.streams_per_worker \
                 streams; no program (the hosts still see one another)"
            );
            return None;
        }
        let worker = transcode.least_loaded_worker(self.shards);
        log::info!(
            "stage {program}: composed by transcode {}",
            crate::transcode::settings::TranscodeSettings::worker_index(worker, self.shards)
        );
        let from = PublishFrom {
            remote: Arc::from("co-hosting stage"),
            title: None,
            vp8: false,
        };
        let role = PublishRole::Primary;
        self.home_publish(cx, worker, program.clone(), PublisherId::Stage, role, from);
        Some(worker)
    }

    /// The last host left: the thread stops composing and the program ends.
    fn stage_end(&mut self, cx: &mut Ctx<ShardMsg>, program: &Arc<str>) {
        let Some(stage) = self.stages.remove(program) else {
            return;
        };
        log::info!("stage {program}: no host left; the program ends");
        let msg = TranscodeMsg::Stage {
            program: program.clone(),
            op: Box::new(StageOp::End),
        };
        cx.mesh_send(stage.worker, msg.into());
        self.home_unpublish(cx, program, stage.worker, PublisherId::Stage);
    }

    /// At a feed's home: send the feed to `worker` (its stage), or stop.
    pub(super) fn stage_watch(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        feed: Arc<str>,
        worker: Option<ShardId>,
    ) {
        let Some(index) = self.homes.find(&feed) else {
            return;
        };
        let watched = self.rtc_watched(&feed);
        let Some(slot) = self.homes.get_mut(index) else {
            return;
        };
        slot.stage = match (worker, stage_feed(&feed)) {
            (Some(worker), Some((program, slot))) => Some(StageTarget {
                worker,
                program: Arc::from(program),
                slot,
            }),
            _ => None,
        };
        slot.set_forward(watched);
        if slot.stage.is_none() {
            return;
        }
        let configs: Vec<_> = slot.source_configs().into_iter().flatten().collect();
        for config in configs {
            self.stage_forward(cx, index, &RtcMedia::Config(config));
        }
        // The stage decodes from a keyframe: a WHIP host is asked for one now (an RTMP
        // host's comes with its next).
        self.rtc_keyframe_wanted(cx, &feed);
    }

    /// At a feed's home: one of its configurations or samples, for its stage if it has one.
    pub(super) fn stage_forward(&mut self, cx: &mut Ctx<ShardMsg>, index: usize, media: &RtcMedia) {
        let Some(target) = self.homes.get(index).and_then(|slot| slot.stage.as_ref()) else {
            return;
        };
        let media = match media {
            RtcMedia::Config(config) => FeedMedia::Config(config.clone()),
            RtcMedia::Sample { track, sample } => FeedMedia::Sample {
                track: *track,
                sample: sample.clone(),
            },
            RtcMedia::Opus(_) => return, // made for WebRTC viewers, not a publisher's
        };
        let op = StageOp::Input {
            slot: target.slot,
            media,
        };
        let msg = TranscodeMsg::Stage {
            program: target.program.clone(),
            op: Box::new(op),
        };
        cx.mesh_send(target.worker, msg.into());
    }

    /// At the program's home: its stage's thread heard a host go quiet or speak again.
    pub(super) fn stage_muted(
        &mut self,
        cx: &mut Ctx<ShardMsg>,
        program: &Arc<str>,
        slot: u8,
        muted: Muted,
    ) {
        let Some(stage) = self.stages.get_mut(program) else {
            return;
        };
        let bit = 1u16 << slot;
        let now = match muted {
            Muted::Yes => stage.muted | bit,
            Muted::No => stage.muted & !bit,
        } & stage.slots;
        if now == stage.muted {
            return;
        }
        stage.muted = now;
        let verb = if now & bit != 0 {
            "is muted"
        } else {
            "is heard again"
        };
        let notice = format!("{} {verb}", stage.host_name(slot));
        self.stage_notice(cx, program, notice);
        self.stage_roster(cx, program);
    }

    /// A notice in the program's danmaku room (when it is open).
    fn stage_notice(&mut self, cx: &mut Ctx<ShardMsg>, program: &str, text: String) {
        let Ok(room) = shardcast_danmaku::RoomId::new(program) else {
            return;
        };
        let home = home_shard(Kind::Room, program, self.shards);
        let msg = DanmakuMsg::System {
            room,
            text: Arc::from(text),
        };
        if home == self.shard {
            // The room's home is this shard: the router hands it over (`take_for_danmaku`).
            self.for_danmaku.push(msg);
        } else {
            cx.mesh_send(home, ShardMsg::Danmaku(msg));
        }
    }

    /// The program's hosts, for every shard's index (`/live/{program}/stage.json`).
    fn stage_roster(&mut self, cx: &mut Ctx<ShardMsg>, program: &Arc<str>) {
        let Some(stage) = self.stages.get(program) else {
            return;
        };
        let hosts: Vec<StageHost> = (0..16u8)
            .filter(|s| stage.slots & (1 << s) != 0)
            .map(|slot| StageHost {
                slot,
                muted: stage.muted & (1 << slot) != 0,
                name: (stage.names.iter())
                    .find(|(s, _)| *s == slot)
                    .map(|(_, name)| name.clone()),
            })
            .collect();
        let Some(index) = self.homes.find(program) else {
            return;
        };
        if let Some(slot) = self.homes.get_mut(index) {
            slot.set_hosts(hosts);
        }
        self.drive(cx, index);
    }

    /// Notices for danmaku rooms homed on this shard, for the router to hand over.
    pub fn take_for_danmaku(&mut self) -> Vec<DanmakuMsg> {
        std::mem::take(&mut self.for_danmaku)
    }

    /// At the program's home: its WebRTC viewers need a keyframe; the stage makes one.
    pub(super) fn stage_keyframe(&mut self, cx: &mut Ctx<ShardMsg>, program: &Arc<str>) {
        if let Some(stage) = self.stages.get(program) {
            let msg = TranscodeMsg::Stage {
                program: program.clone(),
                op: Box::new(StageOp::Keyframe),
            };
            cx.mesh_send(stage.worker, msg.into());
        }
    }
}
