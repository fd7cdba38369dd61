//! Danmaku scenarios on the engine's harness: several shards, no sockets, a virtual clock.

use super::home_of;
use crate::common::auth::Role;
use crate::shard::testing::{self, in_flight_kinds, member, token, Got, Viewer};
use shardcast_danmaku::RoomId;
use shardcast_engine::{CloseReason, ShardId};
use shardcast_ledger::{Audit, GiftRecord, Ledger, MemoryLedger, Op, Outcome, StoreError};
use std::sync::atomic::Ordering::Relaxed;

/// A room name whose home is `shard` of `shards`.
fn room_homed_on(shard: u16, shards: usize) -> String {
    (0..)
        .map(|i| format!("room-{i}"))
        .find(|name| home_of(&RoomId::new(name).unwrap(), shards) == ShardId(shard))
        .unwrap()
}

#[test]
fn a_viewer_joins_on_one_shard_a_room_homed_on_another() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(1, 2);
    let mut viewer = Viewer::connect(&mut t, ShardId(0));
    t.hold_mesh(true);
    viewer.hello(&mut t, &room, &token("ann", &room, Role::Viewer), 0);
    assert_eq!(in_flight_kinds(&t), [(ShardId(0), ShardId(1), "join")]);
    assert!(
        viewer.received(&mut t).is_empty(),
        "no Welcome before the home answers"
    );
    t.hold_mesh(false);
    let got = viewer.received(&mut t);
    assert_eq!(
        got,
        [Got::Welcome {
            user: "ann".into(),
            seq: 0,
            online: 1
        }]
    );
    assert_eq!(t.service(ShardId(1)).danmaku().rooms_homed(), 1);
    assert_eq!(t.service(ShardId(0)).danmaku().rooms_homed(), 0);
}

#[test]
fn a_batch_goes_once_to_each_shard_and_once_to_each_member_in_seq_order() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(1, 2);
    let mut viewers = vec![
        member(&mut t, 0, &room, "a"),
        member(&mut t, 0, &room, "b"),
        member(&mut t, 1, &room, "c"),
    ];
    for viewer in &mut viewers {
        viewer.received(&mut t);
    }
    t.hold_mesh(true);
    viewers[0].chat(&mut t, "one");
    assert_eq!(in_flight_kinds(&t), [(ShardId(0), ShardId(1), "chat")]);
    t.hold_mesh(false);
    // The first chat after a quiet window goes out at once; the next two wait for the window.
    viewers[2].chat(&mut t, "two");
    viewers[1].chat(&mut t, "three");
    t.advance(config.danmaku.batch_ms);
    let expected: Vec<(u64, String)> =
        vec![(1, "one".into()), (2, "two".into()), (3, "three".into())];
    for viewer in &mut viewers {
        assert_eq!(viewer.chats(&mut t), expected);
    }
    let home = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(
        home.batches.load(Relaxed),
        2,
        "one batch at once, one after the window"
    );
    assert_eq!(home.events.load(Relaxed), 3);
    let (shard0, shard1) = (
        t.service(ShardId(0)).danmaku().counters(),
        t.service(ShardId(1)).danmaku().counters(),
    );
    // Two batches: queued on two members on shard 0 and one on shard 1 each time.
    assert_eq!(shard0.deliveries.load(Relaxed), 4);
    assert_eq!(shard1.deliveries.load(Relaxed), 2);
}

#[test]
fn a_stalled_viewer_loses_its_oldest_batches_and_is_closed_while_others_get_everything() {
    let config = testing::config(
        "[ws]\nsend_queue_max_bytes = 4096\nstall_timeout_ms = 1000\n\
         [danmaku]\nchat_rate_per_s = 1000\nchat_burst = 1000\nbatch_ms = 10\n",
    );
    let mut t = testing::shards(1, &config, 0);
    let room = "r";
    let mut talker = member(&mut t, 0, room, "talker");
    let mut healthy = member(&mut t, 0, room, "healthy");
    let stalled = member(&mut t, 0, room, "stalled");
    t.set_read_window(ShardId(0), stalled.conn, Some(0));
    let text = "x".repeat(90);
    let mut got = Vec::new();
    let mut sent = 0;
    for _ in 0..200 {
        talker.chat(&mut t, &text);
        sent += 1;
        t.advance(10);
        got.extend(healthy.chats(&mut t));
        talker.received(&mut t);
        let queued = t.queued_bytes(ShardId(0), stalled.conn);
        // The cap, plus the one batch that went over it (shed down to the cap right after).
        assert!(queued <= 4096 + 512, "queue bounded: {queued}");
    }
    assert_eq!(got.len(), sent, "the healthy viewer lost nothing");
    assert!(
        got.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "in order, no gap"
    );
    let counters = t.service(ShardId(0)).danmaku().counters();
    assert!(
        counters.dropped.load(Relaxed) > 0,
        "the stalled viewer's batches were shed"
    );
    assert_eq!(counters.stalled_closed.load(Relaxed), 1);
    // It never reads its close frame either: dropped once that has had its time.
    t.advance(config.ws.stall_timeout_ms);
    assert_eq!(t.closed(ShardId(0), stalled.conn), Some(CloseReason::Local));
    let counters = t.service(ShardId(0)).danmaku().counters();
    assert_eq!(counters.close_timeouts.load(Relaxed), 1);
    assert_eq!(t.closed(ShardId(0), healthy.conn), None);
}

#[test]
fn a_viewer_that_leaves_while_joining_is_not_counted() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(1, 2);
    let leaver = {
        let mut viewer = Viewer::connect(&mut t, ShardId(0));
        t.hold_mesh(true);
        viewer.hello(&mut t, &room, &token("leaver", &room, Role::Viewer), 0);
        viewer
    };
    t.reset(ShardId(0), leaver.conn, libc_econnreset());
    t.hold_mesh(false);
    let shard0 = t.service(ShardId(0)).danmaku().counters();
    assert_eq!(
        shard0.rooms_local.load(Relaxed),
        0,
        "nothing left of the room on shard 0"
    );
    let mut second = Viewer::connect(&mut t, ShardId(1));
    second.hello(&mut t, &room, "", 0);
    let got = second.received(&mut t);
    assert!(
        matches!(got.first(), Some(Got::Welcome { online: 1, .. })),
        "only the second viewer is online: {got:?}"
    );
}

#[test]
fn a_returning_viewer_gets_what_it_missed_and_an_old_one_a_resync() {
    let config =
        testing::config("[danmaku]\nhistory_max = 2\nchat_rate_per_s = 100\nchat_burst = 100\n");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(0, 2);
    let mut talker = member(&mut t, 1, &room, "talker");
    for text in ["a", "b", "c"] {
        talker.chat(&mut t, text);
        t.advance(config.danmaku.batch_ms);
    }
    let mut back = Viewer::connect(&mut t, ShardId(1));
    back.hello(&mut t, &room, "", 1);
    let got = back.received(&mut t);
    assert!(matches!(got[0], Got::Welcome { seq: 3, .. }), "{got:?}");
    assert_eq!(
        got[1],
        Got::History {
            events: vec![(2, "b".into()), (3, "c".into())],
            more: false
        }
    );
    let mut old = Viewer::connect(&mut t, ShardId(0));
    old.hello(&mut t, &room, "", 0);
    old.received(&mut t);
    old.history(&mut t, 1, 10);
    let epoch = old.epoch.clone();
    assert_eq!(old.received(&mut t), [Got::Resync { seq: 3, epoch }]);
}

/// A seq of another epoch means nothing: a resume that names the room's epoch gets what it
/// missed, one that names another (the room was made again meanwhile) gets Resync.
#[test]
fn a_resume_from_another_epoch_is_answered_with_resync() {
    let config = testing::config("[danmaku]\nchat_rate_per_s = 100\nchat_burst = 100\n");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(0, 2);
    let mut talker = member(&mut t, 1, &room, "talker");
    let epoch = talker.epoch.clone();
    assert_eq!(epoch.len(), 16, "{epoch:?}");
    for text in ["a", "b", "c"] {
        talker.chat(&mut t, text);
        t.advance(config.danmaku.batch_ms);
    }
    let mut same = Viewer::connect(&mut t, ShardId(1));
    same.hello_in_epoch(&mut t, &room, (1, &epoch));
    let got = same.received(&mut t);
    assert_eq!(
        got[1],
        Got::History {
            events: vec![(2, "b".into()), (3, "c".into())],
            more: false
        }
    );
    assert_eq!(same.epoch, epoch);
    let mut other = Viewer::connect(&mut t, ShardId(1));
    other.hello_in_epoch(&mut t, &room, (1, "0123456789abcdef"));
    let got = other.received(&mut t);
    assert!(matches!(got[0], Got::Welcome { seq: 3, .. }), "{got:?}");
    // The Resync names the room's epoch, and the viewer's next resume from it is answered.
    assert_eq!(
        got[1],
        Got::Resync {
            seq: 3,
            epoch: epoch.clone()
        }
    );
    assert_eq!(other.epoch, epoch);
    talker.chat(&mut t, "d");
    t.advance(config.danmaku.batch_ms);
    let mut again = Viewer::connect(&mut t, ShardId(1));
    again.hello_in_epoch(&mut t, &room, (3, &other.epoch));
    let got = again.received(&mut t);
    assert_eq!(
        got[1],
        Got::History {
            events: vec![(4, "d".into())],
            more: false
        }
    );
}

#[test]
fn a_viewer_message_for_a_room_not_homed_here_is_counted_not_fatal() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let room = RoomId::new(&room_homed_on(1, 2)).unwrap();
    let msg = super::msg::DanmakuMsg::Like { room, count: 1 };
    t.inject(ShardId(0), ShardId(1), msg.into());
    let counters = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(counters.mesh_errors.load(Relaxed), 1);
}

#[test]
fn a_viewer_that_never_says_hello_is_closed_with_1008() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let mut viewer = Viewer::connect(&mut t, ShardId(0));
    t.advance(config.ws.hello_timeout_ms - 10);
    assert!(viewer.received(&mut t).is_empty());
    t.advance(20);
    assert_eq!(viewer.received(&mut t), [Got::Close(Some(1008))]);
    assert!(
        t.write_shut(ShardId(0), viewer.conn),
        "closed after the frame"
    );
}

fn libc_econnreset() -> i32 {
    104
}

/// Funds `user`'s wallet in the harness's ledger.
fn fund(ledger: &mut MemoryLedger, user: &str, amount: u64) {
    let credit = Op::Credit {
        user: user.into(),
        amount,
        key: format!("fund-{user}-{amount}"),
    };
    let done = ledger.apply_batch(&[credit]).unwrap();
    assert!(matches!(done[0], Outcome::Done { .. }), "{done:?}");
}

#[test]
fn a_gift_is_acknowledged_once_durable_once_per_key_and_shown_to_everyone() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let mut ledger = MemoryLedger::new(50);
    fund(&mut ledger, "giver", 250);
    let room = room_homed_on(1, 2);
    let mut giver = member(&mut t, 0, &room, "giver");
    let mut watcher = member(&mut t, 1, &room, "watcher");
    giver.received(&mut t);
    watcher.received(&mut t);
    giver.gift(&mut t, 2, "key-1");
    giver.gift(&mut t, 2, "key-1");
    t.advance(config.danmaku.batch_ms);
    // Nothing is acknowledged or shown before the ledger answers.
    assert!(!giver
        .received(&mut t)
        .iter()
        .any(|g| matches!(g, Got::GiftAck { .. })));
    assert!(watcher.chats(&mut t).is_empty());
    assert_eq!(testing::serve_ledger(&mut t, &mut ledger), 2);
    t.advance(config.danmaku.batch_ms);
    let got = giver.received(&mut t);
    let acks: Vec<&Got> = got
        .iter()
        .filter(|g| matches!(g, Got::GiftAck { .. }))
        .collect();
    let ack = Got::GiftAck {
        key: "key-1".into(),
        seq: 1,
        entry: 2,
        balance: 150,
    };
    assert_eq!(acks, [&ack, &ack], "the retry answers the original");
    assert_eq!(
        watcher.chats(&mut t),
        [(1, "gift 2 from giver".to_string())]
    );
    // A gift the wallet cannot pay is refused by name, and shown to nobody.
    giver.gift(&mut t, 2, "key-2");
    giver.gift(&mut t, 2, "key-3");
    t.advance(1);
    testing::serve_ledger(&mut t, &mut ledger);
    t.advance(config.danmaku.batch_ms);
    let got = giver.received(&mut t);
    assert!(got.contains(&Got::GiftAck {
        key: "key-2".into(),
        seq: 2,
        entry: 3,
        balance: 50
    }));
    assert!(got.iter().any(|g| matches!(
        g,
        Got::Error { code: 402, cause, .. } if cause == "insufficient_balance"
    )));
    assert_eq!(watcher.chats(&mut t).len(), 1);
    assert_eq!(
        ledger.balance(&shardcast_ledger::earnings(&room)).unwrap(),
        100
    );
    let home = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(
        (
            home.gifts.load(Relaxed),
            home.gift_duplicates.load(Relaxed),
            home.gifts_unpaid.load(Relaxed)
        ),
        (2, 1, 1)
    );
}

/// A ledger whose disk fails while `failing` is set (a full disk or an fsync error): every
/// batch then answers an error and writes nothing.
struct FailingDisk {
    inner: MemoryLedger,
    failing: bool,
}

impl Ledger for FailingDisk {
    fn apply_batch(&mut self, ops: &[Op]) -> Result<Vec<Outcome>, StoreError> {
        if self.failing {
            return Err(StoreError("No space left on device (os error 28)".into()));
        }
        self.inner.apply_batch(ops)
    }
    fn balance(&self, account: &str) -> Result<u64, StoreError> {
        self.inner.balance(account)
    }
    fn gifts_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<GiftRecord>, StoreError> {
        self.inner.gifts_after(room, after, limit)
    }
    fn leaderboard(&self, room: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.leaderboard(room, limit)
    }
    fn audit(&self) -> Result<Audit, StoreError> {
        self.inner.audit()
    }
}

#[test]
fn a_gift_the_ledger_cannot_write_is_refused_by_name_and_shown_to_nobody() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let mut ledger = FailingDisk {
        inner: MemoryLedger::new(50),
        failing: true,
    };
    fund(&mut ledger.inner, "giver", 100);
    let room = room_homed_on(1, 2);
    let mut giver = member(&mut t, 0, &room, "giver");
    let mut watcher = member(&mut t, 1, &room, "watcher");
    giver.received(&mut t);
    watcher.received(&mut t);
    giver.gift(&mut t, 2, "key-1");
    t.advance(1);
    assert_eq!(testing::serve_ledger(&mut t, &mut ledger), 1);
    t.advance(config.danmaku.batch_ms);
    let got = giver.received(&mut t);
    assert!(
        got.iter().any(|g| matches!(
            g,
            Got::Error { code: 503, cause, .. } if cause == "store_unavailable"
        )),
        "{got:?}"
    );
    assert!(!got.iter().any(|g| matches!(g, Got::GiftAck { .. })));
    assert!(
        watcher.chats(&mut t).is_empty(),
        "nobody sees a gift not taken"
    );
    let home = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(home.gifts_store_failed.load(Relaxed), 1);
    assert_eq!(
        ledger.balance(&shardcast_ledger::wallet("giver")).unwrap(),
        100
    );
    // The disk recovers: the retry with the same key is taken once.
    ledger.failing = false;
    giver.gift(&mut t, 2, "key-1");
    t.advance(1);
    testing::serve_ledger(&mut t, &mut ledger);
    t.advance(config.danmaku.batch_ms);
    assert!(giver.received(&mut t).contains(&Got::GiftAck {
        key: "key-1".into(),
        seq: 1,
        entry: 2,
        balance: 0
    }));
    assert_eq!(
        watcher.chats(&mut t),
        [(1, "gift 2 from giver".to_string())]
    );
}

#[test]
fn an_anonymous_room_flood_leaves_every_new_connection_its_timeouts() {
    // Rooms outlive their members (danmaku.history_s) and each home room holds a timer. The
    // wheel is sized from the connection and room limits, so a flood of rooms made by
    // anonymous viewers that come and go cannot starve new connections of their timeouts
    // (with danmaku.anonymous_rooms = "any"; the default lets them create live rooms only).
    let config = testing::config("[danmaku]\nanonymous_rooms = \"any\"\n");
    let mut t = testing::shards(1, &config, 0);
    let rooms = 1500;
    for i in 0..rooms {
        let mut viewer = Viewer::connect(&mut t, ShardId(0));
        viewer.hello(&mut t, &format!("flood-{i}"), "", 0);
        assert!(
            matches!(viewer.received(&mut t).first(), Some(Got::Welcome { .. })),
            "room {i} made"
        );
        t.reset(ShardId(0), viewer.conn, 104);
    }
    assert_eq!(t.service(ShardId(0)).danmaku().rooms_homed(), rooms);
    // A new HTTP connection that never sends a request still gets its header timeout, and a
    // new viewer that never says Hello its hello timeout.
    let idle = t.connect(ShardId(0), testing::HTTP).expect("a free slot");
    let mut silent = Viewer::connect(&mut t, ShardId(0));
    t.advance(
        config
            .http
            .header_timeout_ms
            .max(config.ws.hello_timeout_ms)
            + 100,
    );
    assert!(t.closed(ShardId(0), idle).is_some(), "header timeout ran");
    assert!(
        silent
            .received(&mut t)
            .iter()
            .any(|got| matches!(got, Got::Close(_))),
        "hello timeout ran"
    );
    assert_eq!(t.counters(ShardId(0)).timers_refused.load(Relaxed), 0);
}

/// The ping frame of a client (masked) with a full 125-byte payload.
fn big_ping() -> Vec<u8> {
    testing::masked_frame(0x9, &[b'p'; 125])
}

#[test]
fn a_ping_flood_that_never_reads_is_closed_at_the_queue_cap_while_others_are_served() {
    let config = testing::config(
        "[ws]\nsend_queue_max_bytes = 8192\nstall_timeout_ms = 1000\n\
         [danmaku]\nchat_rate_per_s = 100\nchat_burst = 100\n",
    );
    let mut t = testing::shards(1, &config, 0);
    let mut honest = member(&mut t, 0, "r", "honest");
    let mut talker = member(&mut t, 0, "r", "talker");
    // No Hello needed: the flood starts right after the upgrade.
    let flooder = Viewer::connect(&mut t, ShardId(0));
    t.set_read_window(ShardId(0), flooder.conn, Some(0));
    let ping = big_ping();
    for round in 0..1000 {
        if t.closed(ShardId(0), flooder.conn).is_none() {
            t.write(ShardId(0), flooder.conn, &ping.repeat(10));
        }
        let queued = t.queued_bytes(ShardId(0), flooder.conn);
        // The cap, one pong over it, and the close frame.
        assert!(
            queued <= 8192 + 127 + 64,
            "round {round}: queue bounded at {queued}"
        );
        talker.chat(&mut t, &format!("m{round}"));
        t.advance(config.danmaku.batch_ms);
    }
    let got = honest.chats(&mut t);
    assert_eq!(got.len(), 1000, "the honest viewer got every chat");
    let counters = t.service(ShardId(0)).danmaku().counters();
    assert_eq!(counters.reply_overflows.load(Relaxed), 1);
    // It read nothing, not even the close frame: dropped once that had its time.
    assert!(t.closed(ShardId(0), flooder.conn).is_some());
    assert_eq!(counters.close_timeouts.load(Relaxed), 1);
    talker.received(&mut t);
}

#[test]
fn history_requests_and_gifts_are_rate_limited_per_connection() {
    let config = testing::config(
        "[danmaku]\nhistory_rate_per_s = 1\nhistory_burst = 3\ngift_rate_per_s = 2\n\
         gift_burst = 5\nchat_rate_per_s = 1000\nchat_burst = 1000\n",
    );
    let mut t = testing::shards(1, &config, 0);
    let mut ledger = MemoryLedger::new(50);
    fund(&mut ledger, "attacker", 1000);
    let mut honest = member(&mut t, 0, "r", "honest");
    let mut attacker = member(&mut t, 0, "r", "attacker");
    for i in 0..20 {
        attacker.history(&mut t, 0, 200);
        attacker.gift(&mut t, 1, &format!("k{i}"));
    }
    honest.chat(&mut t, "still here");
    t.advance(1);
    assert_eq!(testing::serve_ledger(&mut t, &mut ledger), 5, "the burst");
    t.advance(config.danmaku.batch_ms);
    let got = attacker.received(&mut t);
    let count = |f: &dyn Fn(&Got) -> bool| got.iter().filter(|g| f(g)).count();
    assert_eq!(count(&|g| matches!(g, Got::History { .. })), 3, "the burst");
    assert_eq!(count(&|g| matches!(g, Got::GiftAck { .. })), 5, "the burst");
    assert_eq!(
        count(&|g| matches!(g, Got::Error { code: 429, .. })),
        17 + 15,
        "{got:?}"
    );
    assert!(honest
        .chats(&mut t)
        .iter()
        .any(|(_, text)| text == "still here"));
    // A second later the buckets have one history request and two gifts again.
    t.advance(1000);
    for i in 0..3 {
        attacker.history(&mut t, 0, 10);
        attacker.gift(&mut t, 1, &format!("later{i}"));
    }
    t.advance(1);
    testing::serve_ledger(&mut t, &mut ledger);
    t.advance(config.danmaku.batch_ms);
    let got = attacker.received(&mut t);
    let count = |f: &dyn Fn(&Got) -> bool| got.iter().filter(|g| f(g)).count();
    assert_eq!(count(&|g| matches!(g, Got::History { .. })), 1);
    assert_eq!(count(&|g| matches!(g, Got::GiftAck { .. })), 2);
}

#[test]
fn a_websocket_that_pings_but_never_says_hello_is_closed_at_the_hello_timeout() {
    let config = testing::config("[ws]\nhello_timeout_ms = 10000\n");
    let mut t = testing::shards(1, &config, 0);
    let mut silent = Viewer::connect(&mut t, ShardId(0));
    let ping = testing::masked_frame(0x9, b"hi");
    for _ in 0..3 {
        t.advance(3000);
        t.write(ShardId(0), silent.conn, &ping);
    }
    t.advance(1100);
    let got = silent.received(&mut t);
    assert!(
        got.iter().any(|g| matches!(g, Got::Close(Some(1008)))),
        "closed for no Hello despite its pings: {got:?}"
    );
}

#[test]
fn a_kicked_user_cannot_rejoin_until_the_ban_ends_on_any_shard() {
    let config = testing::config("[danmaku]\nkick_ban_s = 60\n");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(1, 2);
    let mut admin = Viewer::connect(&mut t, ShardId(1));
    admin.hello(&mut t, &room, &token("mod", &room, Role::Admin), 0);
    let mut bob = member(&mut t, 0, &room, "bob");
    admin.received(&mut t);
    bob.received(&mut t);
    admin.kick(&mut t, "bob", "spam");
    let got = bob.received(&mut t);
    assert!(got.iter().any(|g| matches!(g, Got::Kick { .. })), "{got:?}");
    // Back at once, on either shard: refused.
    for shard in [0, 1] {
        let mut again = Viewer::connect(&mut t, ShardId(shard));
        again.hello(&mut t, &room, &token("bob", &room, Role::Viewer), 0);
        let got = again.received(&mut t);
        assert!(
            got.iter()
                .any(|g| matches!(g, Got::Error { code: 403, .. }))
                && got.iter().any(|g| matches!(g, Got::Close(Some(1008)))),
            "shard {shard}: {got:?}"
        );
    }
    // Others are not affected, and after the ban bob may come back.
    member(&mut t, 0, &room, "carol");
    t.advance(60_000);
    member(&mut t, 0, &room, "bob");
}

#[test]
fn anonymous_viewers_create_only_the_rooms_of_live_streams() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let room = room_homed_on(1, 2);
    // No such stream: refused, and no room is made.
    let mut anon = Viewer::connect(&mut t, ShardId(0));
    anon.hello(&mut t, &room, "", 0);
    let got = anon.received(&mut t);
    assert!(
        got.iter()
            .any(|g| matches!(g, Got::Error { code: 404, .. }))
            && got.iter().any(|g| matches!(g, Got::Close(Some(1008)))),
        "{got:?}"
    );
    assert_eq!(t.service(ShardId(1)).danmaku().rooms_homed(), 0);
    // A token's user makes it; then anonymous viewers join it.
    member(&mut t, 0, &room, "host");
    let mut anon = Viewer::connect(&mut t, ShardId(0));
    anon.hello(&mut t, &room, "", 0);
    assert!(matches!(
        anon.received(&mut t).first(),
        Some(Got::Welcome { .. })
    ));
    // A live stream's room is open to anonymous viewers from the first one.
    let mut publisher = testing::Publisher::connect(&mut t, ShardId(0), "show");
    publisher.send(&mut t, &testing::fixture_tags(), 0..500, 0);
    t.settle();
    let mut anon = Viewer::connect(&mut t, ShardId(1));
    anon.hello(&mut t, "show", "", 0);
    let got = anon.received(&mut t);
    assert!(matches!(got.first(), Some(Got::Welcome { .. })), "{got:?}");
}

/// Gifts waiting on the ledger are capped per shard: past `ledger.in_flight_max_per_shard` a
/// gift is answered 503 ledger_busy at once instead of queueing; once the ledger answers, gifts
/// go through again, and every gift is answered exactly once.
#[test]
fn gifts_past_the_in_flight_cap_are_answered_ledger_busy() {
    let config = testing::config("[ledger]\nin_flight_max_per_shard = 2\n");
    let mut t = testing::shards(2, &config, 0);
    let mut ledger = MemoryLedger::new(50);
    fund(&mut ledger, "giver", 10_000);
    let room = room_homed_on(1, 2);
    let mut giver = member(&mut t, 0, &room, "giver");
    giver.received(&mut t);
    for key in ["k1", "k2", "k3"] {
        giver.gift(&mut t, 1, key);
    }
    t.advance(1);
    let busy = |got: &[Got]| {
        got.iter()
            .filter(|g| matches!(g, Got::Error { code: 503, cause, .. } if cause == "ledger_busy"))
            .count()
    };
    let acked = |got: &[Got]| -> Vec<String> {
        got.iter()
            .filter_map(|g| match g {
                Got::GiftAck { key, .. } => Some(key.clone()),
                _ => None,
            })
            .collect()
    };
    let got = giver.received(&mut t);
    assert_eq!((busy(&got), acked(&got).len()), (1, 0), "{got:?}");
    assert_eq!(testing::serve_ledger(&mut t, &mut ledger), 2);
    t.advance(config.danmaku.batch_ms);
    let got = giver.received(&mut t);
    assert_eq!(
        (busy(&got), acked(&got)),
        (0, vec!["k1".into(), "k2".into()])
    );
    // The ledger caught up: the refused gift's retry is taken.
    giver.gift(&mut t, 1, "k3");
    t.advance(1);
    assert_eq!(testing::serve_ledger(&mut t, &mut ledger), 1);
    t.advance(config.danmaku.batch_ms);
    let got = giver.received(&mut t);
    assert_eq!((busy(&got), acked(&got)), (0, vec!["k3".to_string()]));
    let home = t.service(ShardId(1)).danmaku().counters();
    assert_eq!(home.gifts_ledger_busy.load(Relaxed), 1);
    assert_eq!(home.gifts_submitted.load(Relaxed), 3);
    assert_eq!(
        ledger.audit().unwrap().entries,
        4,
        "one credit and three gifts"
    );
}
