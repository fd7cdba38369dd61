//! Rooms across hosts on the engine's harness: the home of a room whose order Redis keeps,
//! with the relay thread played by the test (its requests taken, its answers injected).

use crate::common::auth::Role;
use crate::shard::testing::{self, token, Got, Viewer};
use shardcast_danmaku::RoomId;
use shardcast_engine::ShardId;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A room name whose home is `shard` of `shards`.
fn room_homed_on(shard: u16, shards: usize) -> String {
    (0..)
        .map(|n| format!("relayed-{n}"))
        .find(|name| super::home_of(&RoomId::new(name).unwrap(), shards) == ShardId(shard))
        .unwrap()
}
/// The relay thread's place on the harness's mesh (after the ledger).
fn relay_id(
    t: &shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
) -> ShardId {
    t.service(ShardId(0))
        .danmaku()
        .state_threads()
        .1
        .expect("state.redis is set")
}

/// What the home asked of the relay thread: (room, kind, events published).
fn relay_asks(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
) -> Vec<(String, &'static str, Vec<shardcast_danmaku::RoomEvent>)> {
    use crate::shard::msg::ShardMsg;
    use crate::state::msg::RelayAsk;
    let id = relay_id(t);
    t.take_outside(id)
        .into_iter()
        .filter_map(|(_, msg)| match msg {
            ShardMsg::Relay(request) => {
                let (kind, events) = match request.ask {
                    RelayAsk::Sync => ("sync", Vec::new()),
                    RelayAsk::Forget => ("forget", Vec::new()),
                    RelayAsk::Publish(events) => ("publish", events.to_vec()),
                    RelayAsk::Online(_) => ("online", Vec::new()),
                };
                Some((request.room.as_str().to_string(), kind, events))
            }
            _ => None,
        })
        .collect()
}

fn tell_home(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
    home: u16,
    reply: crate::state::msg::RelayReply,
) {
    let id = relay_id(t);
    t.send_from_outside(
        id,
        ShardId(home),
        crate::shard::msg::ShardMsg::RelayReply(reply),
    );
}

fn room_news(room: &str, news: crate::state::msg::RelayNews) -> crate::state::msg::RelayReply {
    crate::state::msg::RelayReply::Room(Box::new(crate::state::msg::RoomNews {
        room: RoomId::new(room).unwrap(),
        news,
    }))
}

/// A room across hosts on its home: joins wait for Redis's order; chats are published, not
/// delivered, until they come back numbered; with Redis away they are ordered here and the
/// room counts as degraded; when Redis is back the room restarts at Redis's order and its
/// members get Resync; a batch of another epoch asks for the order again.
#[test]
fn a_room_across_hosts_follows_redis_order_and_orders_alone_while_redis_is_away() {
    use crate::state::msg::{RelayNews, RelayedBatch};
    let config = testing::config("[state]\nredis = \"redis://127.0.0.1:1\"\n");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(1, 2);
    // The join waits for the room's order.
    let mut viewer = Viewer::connect(&mut t, ShardId(0));
    viewer.hello(&mut t, &room, &token("v", &room, Role::Viewer), 0);
    t.advance(1);
    assert!(
        viewer.received(&mut t).is_empty(),
        "no Welcome before the order"
    );
    let asks = relay_asks(&mut t);
    assert_eq!(asks.iter().map(|a| a.1).collect::<Vec<_>>(), ["sync"]);
    let epoch: Arc<str> = Arc::from("e1");
    let chat = |text: &str| shardcast_danmaku::RoomEvent {
        seq: 0,
        time_ms: 1,
        body: shardcast_danmaku::EventBody::Chat {
            user: Arc::from("other-host"),
            text: Arc::from(text),
            color: 0,
            mode: shardcast_danmaku::ChatMode::Scroll,
        },
    };
    let synced = RelayNews::Synced {
        epoch: epoch.clone(),
        seq: 10,
        likes: 0,
        batches: vec![RelayedBatch {
            epoch: epoch.clone(),
            first_seq: 10,
            likes: 0,
            events: vec![chat("old")],
        }],
    };
    tell_home(&mut t, 1, room_news(&room, synced));
    t.advance(1);
    let got = viewer.received(&mut t);
    assert!(
        matches!(got.first(), Some(Got::Welcome { seq: 10, .. })),
        "{got:?}"
    );
    // A chat from here is published, and shown only when it comes back numbered.
    viewer.chat(&mut t, "mine");
    t.advance(1);
    let asks = relay_asks(&mut t);
    let published: Vec<&(String, &str, Vec<shardcast_danmaku::RoomEvent>)> =
        asks.iter().filter(|a| a.1 == "publish").collect();
    assert_eq!(
        published.len(),
        1,
        "{:?}",
        asks.iter().map(|a| a.1).collect::<Vec<_>>()
    );
    assert!(
        viewer.chats(&mut t).is_empty(),
        "not shown before Redis numbers it"
    );
    let mut events = published[0].2.clone();
    events.insert(0, chat("theirs"));
    let batch = RelayedBatch {
        epoch: epoch.clone(),
        first_seq: 11,
        likes: 0,
        events,
    };
    tell_home(&mut t, 1, room_news(&room, RelayNews::Batch(batch)));
    t.advance(1);
    assert_eq!(
        viewer.chats(&mut t),
        [(11, "theirs".to_string()), (12, "mine".to_string())]
    );
    let other_epoch = chat("new-epoch");
    redis_goes_away_and_comes_back(&mut t, &room, &mut viewer, (&epoch, other_epoch));
}

/// The second half of the scenario above: the room is at seq 12 of `epoch`.
fn redis_goes_away_and_comes_back(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
    room: &str,
    viewer: &mut Viewer,
    (epoch, other_epoch_chat): (&Arc<str>, shardcast_danmaku::RoomEvent),
) {
    use crate::state::msg::{Reach, RelayNews, RelayReply, RelayedBatch};
    let batch_ms = testing::config("").danmaku.batch_ms;
    // Redis away: the room orders here, and says it is degraded.
    tell_home(t, 1, RelayReply::Status(Reach::Down));
    tell_home(t, 0, RelayReply::Status(Reach::Down));
    t.advance(batch_ms);
    viewer.chat(t, "alone");
    t.advance(batch_ms);
    assert_eq!(viewer.chats(t), [(13, "alone".to_string())]);
    let home = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(home.rooms_degraded.load(Relaxed), 1);
    assert!(relay_asks(t).iter().all(|a| a.1 != "publish"));
    // Redis back with its own order (it never saw "alone"): the room restarts there and its
    // members Resync.
    tell_home(t, 1, RelayReply::Status(Reach::Up));
    synced_and_resynced(t, (room, viewer), (epoch, 12));
    let home = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(home.rooms_degraded.load(Relaxed), 0);
    assert_eq!(home.relay_resyncs.load(Relaxed), 1);
    // A batch of another epoch: Redis lost the room; the home asks for the order again.
    let lost = RelayedBatch {
        epoch: Arc::from("e2"),
        first_seq: 1,
        likes: 0,
        events: vec![other_epoch_chat],
    };
    tell_home(t, 1, room_news(room, RelayNews::Batch(lost)));
    t.advance(1);
    assert!(viewer.chats(t).is_empty());
    assert!(relay_asks(t).iter().any(|a| a.1 == "sync"));
    // Redis's answer names the new order: the members Resync into it, epoch and all, so
    // their next resume names the order they are in.
    synced_and_resynced(t, (room, viewer), (&Arc::from("e2"), 1));
    assert_eq!(viewer.epoch, "e2");
}

/// Redis's order for `room` reaches its home (on shard 1) as `epoch` at `seq`, with no
/// batches: the viewer must be told to Resync to exactly that seq in that epoch.
fn synced_and_resynced(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
    (room, viewer): (&str, &mut Viewer),
    (epoch, seq): (&Arc<str>, u64),
) {
    let synced = crate::state::msg::RelayNews::Synced {
        epoch: epoch.clone(),
        seq,
        likes: 0,
        batches: Vec::new(),
    };
    tell_home(t, 1, room_news(room, synced));
    t.advance(1);
    let got = viewer.received(t);
    let resync = Got::Resync {
        seq,
        epoch: epoch.to_string(),
    };
    assert!(got.contains(&resync), "{got:?}");
}
