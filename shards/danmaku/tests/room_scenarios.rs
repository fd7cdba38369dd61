//! Scenario tests of the sans-io room on a virtual clock.
//!
//! Randomized runs use a fixed-seed xorshift generator, so every run is the same run.

use std::collections::HashMap;
use std::sync::Arc;

use shardcast_danmaku::event::BATCH_OVERHEAD_BYTES;
use shardcast_danmaku::{
    Admission, Batch, ChatIn, ChatMode, EventBody, GiftCatalog, GiftIn, GiftOutcome,
    HistoryOutcome, Priority, Relayed, Replay, Room, RoomConfig, RoomEvent, RoomId,
};

/// Wall clock at virtual time 0.
const WALL0_MS: u64 = 1_700_000_000_000;

/// xorshift64*: small, deterministic, good enough for test schedules.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

fn new_room(config: RoomConfig, now_ms: u64) -> Room {
    Room::new(RoomId::new("lobby").unwrap(), config, now_ms)
}

fn catalog() -> GiftCatalog {
    GiftCatalog::new([(1, 10), (2, 100), (3, 5_000)])
}

fn chat(user: &str, text: &str, priority: Priority) -> ChatIn {
    ChatIn {
        user: Arc::from(user),
        text: Arc::from(text),
        color: 0xFF_FF_FF,
        mode: ChatMode::Scroll,
        priority,
    }
}

fn gift(user: &str, gift_id: u32, count: u32, key: &str) -> GiftIn {
    GiftIn {
        user: Arc::from(user),
        gift_id,
        count,
        idempotency_key: Arc::from(key),
    }
}

fn accepted(admission: Admission) -> u64 {
    match admission {
        Admission::Accepted { seq } => seq,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// Every batch due at `now_ms`, each checked for internal consistency.
fn drain(room: &mut Room, now_ms: u64) -> Vec<Batch> {
    let mut out = Vec::new();
    while let Some(batch) = room.poll_batch(now_ms) {
        assert!(!batch.events.is_empty());
        for (offset, event) in batch.events.iter().enumerate() {
            assert_eq!(event.seq, batch.first_seq + offset as u64);
        }
        assert!(batch.wire_size_bytes() <= room.config().batch_max_bytes);
        let likes = batch
            .events
            .iter()
            .filter(|e| matches!(e.body, EventBody::Like { .. }))
            .count();
        assert!(likes <= 1, "at most one Like event per batch");
        out.push(batch);
    }
    out
}

fn seqs(events: &[RoomEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn flatten(batches: &[Batch]) -> Vec<RoomEvent> {
    batches
        .iter()
        .flat_map(|b| b.events.iter().cloned())
        .collect()
}

/// A randomized driver shared by the order and join scenarios: it applies random inputs at
/// random virtual times, polls at random, and records what the room promised.
struct Driver {
    rng: XorShift,
    room: Room,
    now_ms: u64,
    batches: Vec<Batch>,
    /// Body promised for each accepted chat, gift and system notice.
    expected: HashMap<u64, EventBody>,
    /// Virtual time at which each seq was ordered.
    ordered_at_ms: HashMap<u64, u64>,
    likes_counted: u64,
    gift_keys: Vec<(String, String, u64)>,
}

impl Driver {
    fn new(seed: u64, config: RoomConfig) -> Self {
        let mut room = new_room(config, 0);
        room.handle_members(0, 1);
        Driver {
            rng: XorShift::new(seed),
            room,
            now_ms: 0,
            batches: Vec::new(),
            expected: HashMap::new(),
            ordered_at_ms: HashMap::new(),
            likes_counted: 0,
            gift_keys: Vec::new(),
        }
    }

    fn step(&mut self) {
        self.now_ms += self.rng.below(12);
        let before = self.room.seq();
        let wall_ms = WALL0_MS + self.now_ms;
        match self.rng.below(100) {
            0..=54 => self.chat(wall_ms),
            55..=79 => {
                let count = 1 + self.rng.below(200) as u32;
                self.likes_counted += self.room.handle_like(self.now_ms, wall_ms, count);
            }
            80..=96 => self.gift(wall_ms),
            _ => {
                let text: Arc<str> = Arc::from(format!("notice {}", self.now_ms));
                let seq = accepted(self.room.handle_system(self.now_ms, wall_ms, text.clone()));
                self.expected.insert(seq, EventBody::System { text });
            }
        }
        for seq in before + 1..=self.room.seq() {
            self.ordered_at_ms.insert(seq, self.now_ms);
        }
        if self.rng.percent(40) {
            self.poll();
        }
    }

    fn chat(&mut self, wall_ms: u64) {
        let priority = if self.rng.percent(20) {
            Priority::Paid
        } else {
            Priority::Normal
        };
        let length = 1 + self.rng.below(300) as usize;
        let text = format!("{}{}", self.now_ms, "x".repeat(length));
        let user = format!("user{}", self.rng.below(50));
        let input = chat(&user, &text, priority);
        match self.room.handle_chat(self.now_ms, wall_ms, input.clone()) {
            Admission::Accepted { seq } => {
                let body = EventBody::Chat {
                    user: input.user,
                    text: input.text,
                    color: input.color,
                    mode: input.mode,
                };
                assert!(self.expected.insert(seq, body).is_none());
            }
            Admission::Shed => {}
            Admission::Rejected(error) => panic!("valid chat rejected: {error}"),
        }
    }

    fn gift(&mut self, wall_ms: u64) {
        if !self.gift_keys.is_empty() && self.rng.percent(20) {
            // A retry of an earlier gift: same user, same key.
            let index = self.rng.below(self.gift_keys.len() as u64) as usize;
            let (user, key, seq) = self.gift_keys[index].clone();
            let outcome = self
                .room
                .handle_gift(self.now_ms, wall_ms, gift(&user, 1, 1, &key));
            assert_eq!(outcome, GiftOutcome::Duplicate { seq });
            return;
        }
        let user = format!("user{}", self.rng.below(50));
        let key = format!("k{}", self.rng.next());
        let gift_id = 1 + self.rng.below(4) as u32;
        let count = 1 + self.rng.below(10) as u32;
        let input = gift(&user, gift_id, count, &key);
        match self.room.handle_gift(self.now_ms, wall_ms, input) {
            GiftOutcome::Accepted { seq, value } => {
                let body = EventBody::Gift {
                    user: Arc::from(user.as_str()),
                    gift_id,
                    count,
                    value,
                };
                assert!(self.expected.insert(seq, body).is_none());
                self.gift_keys.push((user, key, seq));
            }
            GiftOutcome::UnknownGift => assert_eq!(gift_id, 4),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn poll(&mut self) {
        let batches = drain(&mut self.room, self.now_ms);
        self.batches.extend(batches);
        let _ = self.room.poll_stats(self.now_ms);
        assert!(self.room.poll_timeout().is_some_and(|t| t > self.now_ms));
    }

    /// Lets every pending event out.
    fn finish(&mut self) {
        self.now_ms += self.room.config().batch_ms;
        self.poll();
        assert_eq!(self.room.pending_len(), 0);
        assert_eq!(self.room.flushed_seq(), self.room.seq());
    }
}

fn busy_config() -> RoomConfig {
    RoomConfig {
        gift_catalog: catalog(),
        inbound_max_per_s: 60,
        inbound_burst: 30,
        batch_max_bytes: 4096,
        likes_max_per_window: 300,
        history_max: 200,
        history_s: 20,
        replay_max: 50,
        history_request_max: 30,
        ..RoomConfig::default()
    }
}

// (a) Order and exactly-once.
#[test]
fn every_accepted_item_appears_once_in_order() {
    let mut driver = Driver::new(0x5EED_0001, busy_config());
    for _ in 0..20_000 {
        driver.step();
    }
    driver.finish();

    let events = flatten(&driver.batches);
    let expected_seqs: Vec<u64> = (1..=driver.room.seq()).collect();
    assert_eq!(
        seqs(&events),
        expected_seqs,
        "consecutive from 1, nothing lost or repeated"
    );
    assert!(
        driver.room.counters().normal_shed > 0,
        "the run exercised shedding"
    );
    assert!(
        driver.room.counters().likes_capped > 0,
        "the run exercised the like cap"
    );

    let mut likes_total = 0;
    let mut like_events = 0;
    for event in &events {
        assert!(event.time_ms >= WALL0_MS);
        match (&event.body, driver.expected.get(&event.seq)) {
            (EventBody::Like { total, added }, None) => {
                assert!(*added > 0);
                assert_eq!(*total, likes_total + added);
                likes_total = *total;
                like_events += 1;
            }
            (body, Some(promised)) => assert_eq!(body, promised, "seq {}", event.seq),
            (body, None) => panic!("seq {} was never accepted: {body:?}", event.seq),
        }
    }
    assert_eq!(events.len(), driver.expected.len() + like_events);
    assert_eq!(likes_total, driver.likes_counted);
    assert_eq!(driver.room.likes(), driver.likes_counted);

    let counters = driver.room.counters();
    let chats = counters.normal_accepted + counters.paid_accepted;
    let gifts = counters.gifts_accepted;
    assert_eq!(
        chats + gifts + counters.system_accepted + like_events as u64,
        driver.room.seq()
    );
    assert_eq!(counters.likes_counted, driver.likes_counted);
    assert_eq!(counters.batches, driver.batches.len() as u64);
}

// (b) Batching: the window and the early flush.
#[test]
fn batch_waits_for_the_window_from_its_first_event() {
    let mut room = new_room(
        RoomConfig {
            batch_ms: 50,
            stats_ms: 1000,
            ..RoomConfig::default()
        },
        1_000,
    );
    assert_eq!(
        room.poll_timeout(),
        None,
        "no members, no events: nothing due"
    );
    room.handle_members(0, 1);
    assert_eq!(
        room.poll_timeout(),
        Some(2_500),
        "only stats are due (alone at 2000 + 500)"
    );
    assert!(room.poll_batch(1_000).is_none());

    // A quiet room sends at once (leading edge) ...
    accepted(room.handle_chat(1_000, WALL0_MS, chat("a", "one", Priority::Normal)));
    assert_eq!(room.poll_timeout(), Some(1_000));
    let batch = room.poll_batch(1_000).expect("leading edge");
    assert_eq!(seqs(&batch.events), vec![1]);

    // ... and events within batch_ms of that batch wait for the window to close.
    accepted(room.handle_chat(1_030, WALL0_MS, chat("b", "two", Priority::Normal)));
    assert_eq!(
        room.poll_timeout(),
        Some(1_050),
        "the window runs from the last batch"
    );
    accepted(room.handle_chat(1_040, WALL0_MS, chat("c", "three", Priority::Normal)));
    assert_eq!(room.poll_timeout(), Some(1_050));
    assert!(room.poll_batch(1_049).is_none());
    let batch = room.poll_batch(1_050).expect("window elapsed");
    assert_eq!(batch.first_seq, 2);
    assert_eq!(seqs(&batch.events), vec![2, 3]);
    assert!(room.poll_batch(1_050).is_none());
    assert_eq!(room.poll_timeout(), Some(2_500));

    // After a quiet window the next event goes out at once again: no fixed grid, and at most
    // one batch per window.
    accepted(room.handle_chat(1_200, WALL0_MS, chat("a", "four", Priority::Normal)));
    assert_eq!(room.poll_timeout(), Some(1_200));
    assert_eq!(room.poll_batch(1_200).expect("leading edge").first_seq, 4);
    accepted(room.handle_chat(1_210, WALL0_MS, chat("a", "five", Priority::Normal)));
    assert!(room.poll_batch(1_249).is_none());
    assert_eq!(room.poll_batch(1_260).expect("late poll").first_seq, 5);
}

#[test]
fn full_batches_flush_at_once_and_never_exceed_the_limit() {
    let config = RoomConfig {
        batch_ms: 50,
        batch_max_bytes: 1_024,
        text_max_bytes: 200,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    let text = "y".repeat(200);
    // Open a window: a first event goes out at once (leading edge), at time 0.
    accepted(room.handle_chat(0, WALL0_MS, chat("u", "open", Priority::Normal)));
    assert!(room.poll_batch(0).is_some());
    let mut sizes = Vec::new();
    // Accumulate events until pending reaches the limit.
    let mut n = 0;
    while room.poll_timeout().is_none_or(|t| t > 10) {
        let seq = accepted(room.handle_chat(10, WALL0_MS, chat("u", &text, Priority::Normal)));
        n += 1;
        assert_eq!(seq, n + 1);
        sizes.push(seq);
    }
    assert!(n >= 2);
    let batch = room
        .poll_batch(10)
        .expect("full: flushed before the window");
    assert!(batch.wire_size_bytes() <= 1_024);
    // Each event is 288 bytes, so three fit under 1 024 with the 48 bytes of overhead.
    assert_eq!(batch.events.len(), 3);
    // What did not fit waits for the window of the last batch (cut at 10).
    let left = room.pending_len();
    assert_eq!(left as u64, n - 3);
    if left > 0 {
        assert_eq!(room.poll_timeout(), Some(60));
        assert!(room.poll_batch(59).is_none());
        assert_eq!(room.poll_batch(60).expect("window").first_seq, 5);
    }
    let n = n + 1;

    // A burst of many events in one instant comes out as several full batches, in order.
    for _ in 0..20 {
        accepted(room.handle_chat(100, WALL0_MS, chat("u", &text, Priority::Normal)));
    }
    let batches = drain(&mut room, 100);
    assert!(batches.len() >= 6);
    let events = flatten(&batches);
    assert_eq!(
        seqs(&events),
        (n + 1..=n + 20).take(events.len()).collect::<Vec<_>>()
    );
    let rest = drain(&mut room, 150);
    let all: Vec<u64> = seqs(&events)
        .into_iter()
        .chain(seqs(&flatten(&rest)))
        .collect();
    assert_eq!(all, (n + 1..=n + 20).collect::<Vec<_>>());
}

#[test]
fn likes_are_summed_into_one_event_per_window() {
    let config = RoomConfig {
        likes_max_per_window: 100,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    assert_eq!(room.handle_like(0, WALL0_MS, 10), 10);
    accepted(room.handle_chat(5, WALL0_MS, chat("a", "hi", Priority::Normal)));
    assert_eq!(room.handle_like(10, WALL0_MS + 10, 30), 30);
    assert_eq!(room.handle_like(20, WALL0_MS + 20, 0), 0);
    let batch = room.poll_batch(50).expect("window");
    assert_eq!(batch.events.len(), 2);
    assert_eq!(
        batch.events[0],
        RoomEvent {
            seq: 1,
            time_ms: WALL0_MS,
            body: EventBody::Like {
                total: 40,
                added: 40
            }
        }
    );

    // Next window: a new Like event; the per-window cap clips the excess.
    assert_eq!(room.handle_like(60, WALL0_MS, 70), 70);
    assert_eq!(room.handle_like(61, WALL0_MS, 70), 30);
    assert_eq!(room.handle_like(62, WALL0_MS, 5), 0);
    let batch = room.poll_batch(110).expect("window");
    assert_eq!(
        batch.events[0].body,
        EventBody::Like {
            total: 140,
            added: 100
        }
    );
    assert_eq!(room.likes(), 140);
    assert_eq!(room.counters().likes_capped, 45);
}

// (c) Join and resume.
#[test]
fn join_covers_flushed_events_only() {
    let mut room = new_room(RoomConfig::default(), 0);
    accepted(room.handle_chat(0, WALL0_MS, chat("a", "one", Priority::Normal)));
    accepted(room.handle_chat(0, WALL0_MS, chat("a", "two", Priority::Normal)));
    let first = room.poll_batch(50).expect("window");
    assert_eq!(seqs(&first.events), vec![1, 2]);
    accepted(room.handle_chat(60, WALL0_MS, chat("a", "three", Priority::Normal)));

    // A batch is in the history as soon as it is returned; the pending event is not.
    room.handle_members(7, 1);
    let join = room.join(60, 1);
    assert_eq!(join.seq, 2);
    match join.replay {
        Replay::Events(events) => assert_eq!(seqs(&events), vec![2]),
        other => panic!("unexpected {other:?}"),
    }
    // Shard 7 now receives batches; the pending event goes there next.
    assert_eq!(room.subscribers(), &[7]);
    let next = room.poll_batch(110).expect("window");
    assert_eq!(seqs(&next.events), vec![3]);

    // Up to date: an empty replay. Fresh: none. From the future: resync.
    assert_eq!(room.join(110, 3).replay, Replay::Events(Vec::new()));
    assert_eq!(room.join(110, 0).replay, Replay::None);
    let future = room.join(110, 4);
    assert_eq!((future.seq, future.replay), (3, Replay::Resync));
    assert_eq!(room.counters().joins, 4);
    assert_eq!(room.counters().resyncs, 1);
}

#[test]
fn join_resyncs_past_the_window_by_count_and_by_age() {
    let config = RoomConfig {
        history_max: 10,
        replay_max: 10,
        history_request_max: 10,
        history_s: 10,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    room.handle_members(1, 1);
    for i in 0..30 {
        accepted(room.handle_chat(0, WALL0_MS, chat("a", &format!("m{i}"), Priority::Paid)));
    }
    let _ = drain(&mut room, 50);
    assert_eq!(room.flushed_seq(), 30);
    assert_eq!(room.history_len(), 10);

    // By count: the window holds 21..=30.
    assert_eq!(room.join(50, 19).replay, Replay::Resync);
    match room.join(50, 20).replay {
        Replay::Events(events) => assert_eq!(seqs(&events), (21..=30).collect::<Vec<_>>()),
        other => panic!("unexpected {other:?}"),
    }

    // By age: ordered at 0, the events stay for 10 s and are gone just after.
    assert!(matches!(room.join(10_000, 25).replay, Replay::Events(_)));
    assert_eq!(room.join(10_001, 25).replay, Replay::Resync);
    let up_to_date = room.join(10_001, 30);
    assert_eq!(
        (up_to_date.seq, up_to_date.replay),
        (30, Replay::Events(Vec::new()))
    );
    assert_eq!(room.history_len(), 0, "trimmed by the join's clock");
}

#[test]
fn a_gap_longer_than_replay_max_resyncs_but_history_still_serves_it() {
    let config = RoomConfig {
        history_max: 100,
        replay_max: 10,
        history_request_max: 15,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    room.handle_members(2, 1);
    for i in 0..50 {
        accepted(room.handle_chat(0, WALL0_MS, chat("a", &format!("m{i}"), Priority::Paid)));
    }
    let _ = drain(&mut room, 50);
    match room.join(50, 40).replay {
        Replay::Events(events) => assert_eq!(seqs(&events), (41..=50).collect::<Vec<_>>()),
        other => panic!("unexpected {other:?}"),
    }
    let join = room.join(50, 39);
    assert_eq!((join.seq, join.replay), (50, Replay::Resync));
    let rest = fetch_history(&room, 50, 6, join.seq);
    assert_eq!(seqs(&rest), (6..=50).collect::<Vec<_>>());
}

/// Replies are bounded in bytes as well as in events: a History answer stops before
/// `reply_max_bytes` (with `more`), and a join whose gap would pass it resyncs.
#[test]
fn replies_stop_at_reply_max_bytes() {
    let probe = RoomEvent {
        seq: 1,
        time_ms: 0,
        body: EventBody::Chat {
            user: Arc::from("a"),
            text: Arc::from("x".repeat(100)),
            color: 0xFF_FF_FF,
            mode: ChatMode::Scroll,
        },
    };
    let event_bytes = probe.wire_size_bytes();
    let config = RoomConfig {
        history_max: 100,
        replay_max: 100,
        history_request_max: 100,
        // Ten of the events below, and the message's overhead.
        reply_max_bytes: BATCH_OVERHEAD_BYTES + 10 * event_bytes,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    room.handle_members(2, 1);
    for _ in 0..30 {
        accepted(room.handle_chat(0, WALL0_MS, chat("a", &"x".repeat(100), Priority::Paid)));
    }
    let _ = drain(&mut room, 50);
    match room.history(50, 1, 0) {
        HistoryOutcome::Events { events, more, .. } => {
            assert_eq!(seqs(&events), (1..=10).collect::<Vec<_>>());
            assert!(more);
            let bytes: usize = events.iter().map(RoomEvent::wire_size_bytes).sum();
            assert!(BATCH_OVERHEAD_BYTES + bytes <= room.config().reply_max_bytes);
        }
        other => panic!("unexpected {other:?}"),
    }
    match room.join(50, 20).replay {
        Replay::Events(events) => assert_eq!(seqs(&events), (21..=30).collect::<Vec<_>>()),
        other => panic!("ten events fit: {other:?}"),
    }
    assert_eq!(room.join(50, 19).replay, Replay::Resync, "eleven do not");
    // History still serves the whole gap, ten at a time.
    let rest = fetch_history(&room, 50, 1, 30);
    assert_eq!(seqs(&rest), (1..=30).collect::<Vec<_>>());
    // A reply cap below one event is refused.
    let too_small = RoomConfig {
        reply_max_bytes: BATCH_OVERHEAD_BYTES + RoomConfig::default().largest_event_bytes() - 1,
        ..RoomConfig::default()
    };
    assert!(too_small.validate().is_err());
}

/// Follows History answers from `from_seq` until `to_seq`, as a client filling a gap does.
fn fetch_history(room: &Room, now_ms: u64, mut from_seq: u64, to_seq: u64) -> Vec<RoomEvent> {
    let mut out = Vec::new();
    while from_seq <= to_seq {
        match room.history(now_ms, from_seq, 0) {
            HistoryOutcome::Events {
                first_seq,
                events,
                more,
            } => {
                assert_eq!(first_seq, from_seq);
                assert!(!events.is_empty());
                from_seq += events.len() as u64;
                out.extend(events);
                assert_eq!(more, from_seq <= room.flushed_seq());
            }
            HistoryOutcome::Resync { .. } => panic!("gap fell out of the window"),
        }
    }
    out
}

/// A viewer that joined at some point of a randomized run.
struct Viewer {
    last_seq: u64,
    join_seq: u64,
    replay: Replay,
    /// Index in the batch log of the first batch delivered after the join answer.
    batches_from: usize,
}

#[test]
fn joins_at_any_point_see_every_later_event_exactly_once() {
    let mut driver = Driver::new(0x5EED_0002, busy_config());
    let mut viewers = Vec::new();
    let mut resyncs_expected = 0;
    for step in 0..15_000 {
        driver.step();
        if step % 37 != 0 {
            continue;
        }
        let flushed = driver.room.flushed_seq();
        let last_seq = match driver.rng.below(10) {
            0 => 0,
            1 => flushed + 1 + driver.rng.below(5),
            2 => flushed,
            // Within replay_max, then anywhere up to twice the window.
            3..=6 => flushed.saturating_sub(driver.rng.below(60)),
            _ => flushed.saturating_sub(driver.rng.below(400)),
        };
        // The viewer's shard reports its members, the joiner included, with the join.
        let shard = driver.rng.below(4) as u16;
        driver
            .room
            .handle_members(shard, 1 + driver.rng.below(3) as u32);
        let join = driver.room.join(driver.now_ms, last_seq);
        assert_eq!(join.seq, flushed);
        assert!(driver.room.subscribers().contains(&shard));

        let config = driver.room.config();
        let window_first = flushed.saturating_sub(config.history_max as u64) + 1;
        let expired =
            |seq: u64| driver.now_ms - driver.ordered_at_ms[&seq] > config.history_s * 1000;
        let expect_resync = last_seq > flushed
            || (last_seq > 0
                && last_seq < flushed
                && (last_seq + 1 < window_first
                    || expired(last_seq + 1)
                    || flushed - last_seq > config.replay_max as u64));
        assert_eq!(
            join.replay == Replay::Resync,
            expect_resync,
            "last_seq {last_seq}"
        );
        resyncs_expected += u64::from(expect_resync);
        viewers.push(Viewer {
            last_seq,
            join_seq: join.seq,
            replay: join.replay,
            batches_from: driver.batches.len(),
        });
    }
    driver.finish();
    assert!(resyncs_expected > 0);
    assert_eq!(driver.room.counters().resyncs, resyncs_expected);
    let replayed = viewers
        .iter()
        .filter(|v| matches!(&v.replay, Replay::Events(events) if !events.is_empty()))
        .count();
    let fresh = viewers.iter().filter(|v| v.replay == Replay::None).count();
    assert!(replayed > 50 && fresh > 0, "{replayed} {fresh}");

    let all = flatten(&driver.batches);
    for viewer in &viewers {
        let (mut seen, start) = match &viewer.replay {
            Replay::Events(events) => (events.clone(), viewer.last_seq + 1),
            Replay::None | Replay::Resync => (Vec::new(), viewer.join_seq + 1),
        };
        seen.extend(flatten(&driver.batches[viewer.batches_from..]));
        let expected: Vec<u64> = (start..=driver.room.seq()).collect();
        assert_eq!(seqs(&seen), expected, "viewer from {}", viewer.last_seq);
        for event in &seen {
            assert_eq!(event, &all[event.seq as usize - 1]);
        }
    }
}

// (d) History requests.
#[test]
fn history_requests_with_limit_and_more() {
    let config = RoomConfig {
        history_max: 50,
        history_request_max: 20,
        replay_max: 50,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    assert_eq!(
        room.history(0, 1, 10),
        HistoryOutcome::Events {
            first_seq: 1,
            events: Vec::new(),
            more: false
        },
        "nothing flushed yet"
    );
    for i in 0..60 {
        accepted(room.handle_chat(0, WALL0_MS, chat("a", &format!("m{i}"), Priority::Paid)));
    }
    // Pending events are not history yet.
    assert_eq!(
        room.history(0, 1, 10),
        HistoryOutcome::Events {
            first_seq: 1,
            events: Vec::new(),
            more: false
        }
    );
    let _ = drain(&mut room, 50);
    // The window holds 11..=60.
    let events_of = |outcome: HistoryOutcome| match outcome {
        HistoryOutcome::Events {
            first_seq,
            events,
            more,
        } => (first_seq, seqs(&events), more),
        HistoryOutcome::Resync { seq } => panic!("resync at {seq}"),
    };
    assert_eq!(
        events_of(room.history(50, 11, 5)),
        (11, (11..=15).collect(), true)
    );
    assert_eq!(
        events_of(room.history(50, 55, 5)),
        (55, (55..=59).collect(), true)
    );
    assert_eq!(
        events_of(room.history(50, 56, 5)),
        (56, (56..=60).collect(), false)
    );
    assert_eq!(
        events_of(room.history(50, 41, 100)),
        (41, (41..=60).collect(), false)
    );
    assert_eq!(
        events_of(room.history(50, 30, 0)),
        (30, (30..=49).collect(), true)
    );
    assert_eq!(events_of(room.history(50, 61, 5)), (61, Vec::new(), false));
    assert_eq!(room.history(50, 10, 5), HistoryOutcome::Resync { seq: 60 });
    assert_eq!(room.history(50, 0, 5), HistoryOutcome::Resync { seq: 60 });
    assert_eq!(room.history(50, 62, 5), HistoryOutcome::Resync { seq: 60 });
    // By age (default 300 s, ordered at 0).
    assert!(matches!(
        room.history(300_000, 11, 5),
        HistoryOutcome::Events { .. }
    ));
    assert_eq!(
        room.history(300_001, 11, 5),
        HistoryOutcome::Resync { seq: 60 }
    );
}

// (e) Shedding by priority.
#[test]
fn overload_sheds_normal_first_then_paid_never_gifts() {
    let config = RoomConfig {
        gift_catalog: catalog(),
        inbound_max_per_s: 100,
        inbound_burst: 100,
        paid_reserve_percent: 20,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    let mut first_normal_shed_ms = None;
    let mut first_paid_shed_ms = None;
    let (mut normal_sent, mut paid_sent, mut gifts_sent) = (0u64, 0u64, 0u64);
    let mut phase_one_normal_accepted = 0;
    let mut phase_two_normal_accepted = 0;
    fn shed_at(admission: &Admission, first: &mut Option<u64>, now_ms: u64) {
        if *admission == Admission::Shed && first.is_none() {
            *first = Some(now_ms);
        }
    }
    for now_ms in (0..20_000).step_by(5) {
        let wall_ms = WALL0_MS + now_ms;
        // Phase one (0..10 s): normal chats at 400/s, paid at 50/s, gifts at 10/s.
        // Phase two (10..20 s): paid chats rise to 200/s, over the whole budget.
        let phase_two = now_ms >= 10_000;
        for _ in 0..2 {
            let admission = room.handle_chat(now_ms, wall_ms, chat("n", "hi", Priority::Normal));
            normal_sent += 1;
            if matches!(admission, Admission::Accepted { .. }) {
                if phase_two {
                    phase_two_normal_accepted += 1;
                } else {
                    phase_one_normal_accepted += 1;
                }
            }
            shed_at(&admission, &mut first_normal_shed_ms, now_ms);
        }
        if phase_two || now_ms % 20 == 0 {
            let admission = room.handle_chat(now_ms, wall_ms, chat("p", "$$", Priority::Paid));
            paid_sent += 1;
            shed_at(&admission, &mut first_paid_shed_ms, now_ms);
        }
        if now_ms % 100 == 0 {
            let key = format!("g{now_ms}");
            let outcome = room.handle_gift(now_ms, wall_ms, gift("g", 1, 1, &key));
            assert!(
                matches!(outcome, GiftOutcome::Accepted { .. }),
                "gifts are never shed"
            );
            gifts_sent += 1;
        }
        let _ = drain(&mut room, now_ms);
    }
    let counters = *room.counters();
    assert_eq!(counters.normal_accepted + counters.normal_shed, normal_sent);
    assert_eq!(counters.paid_accepted + counters.paid_shed, paid_sent);
    assert_eq!(counters.gifts_accepted, gifts_sent);

    // Phase one: paid and gifts (60/s) fit in the budget; normal chats get the other 40/s plus
    // the burst above the reserve (80), about 480 in all.
    let first_paid_shed_ms = first_paid_shed_ms.expect("paid shed in phase two");
    assert!(
        first_paid_shed_ms >= 10_000,
        "no paid chat shed before phase two"
    );
    assert!(first_normal_shed_ms.expect("normal shed") < first_paid_shed_ms);
    assert!(
        (440..=520).contains(&phase_one_normal_accepted),
        "{phase_one_normal_accepted}"
    );
    // Phase two: paid chats want more than the budget, so normal chats get nothing.
    assert!(
        phase_two_normal_accepted <= 5,
        "{phase_two_normal_accepted}"
    );
    // Paid chats took the whole budget, 100/s for 10 s, plus what was left of the reserve;
    // gifts still went through (they only take a token when one is free).
    let phase_two_paid = counters.paid_accepted - 500;
    assert!((990..=1_030).contains(&phase_two_paid), "{phase_two_paid}");
}

#[test]
fn reserve_is_left_for_paid_chats_in_a_burst() {
    let config = RoomConfig {
        gift_catalog: catalog(),
        inbound_max_per_s: 10,
        inbound_burst: 10,
        paid_reserve_percent: 20,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    let normal: Vec<Admission> = (0..10)
        .map(|_| room.handle_chat(0, WALL0_MS, chat("n", "hi", Priority::Normal)))
        .collect();
    assert_eq!(
        normal.iter().filter(|a| **a == Admission::Shed).count(),
        2,
        "8 of 10 tokens are open to normal chats"
    );
    let paid: Vec<Admission> = (0..3)
        .map(|_| room.handle_chat(0, WALL0_MS, chat("p", "hi", Priority::Paid)))
        .collect();
    assert!(matches!(paid[0], Admission::Accepted { .. }));
    assert!(matches!(paid[1], Admission::Accepted { .. }));
    assert_eq!(paid[2], Admission::Shed);
    assert!(matches!(
        room.handle_gift(0, WALL0_MS, gift("g", 2, 1, "k")),
        GiftOutcome::Accepted { .. }
    ));
    assert!(matches!(
        room.handle_system(0, WALL0_MS, Arc::from("stream is live")),
        Admission::Accepted { .. }
    ));
    let counters = room.counters();
    assert_eq!(
        (
            counters.normal_accepted,
            counters.normal_shed,
            counters.paid_accepted,
            counters.paid_shed
        ),
        (8, 2, 2, 1)
    );
}

// (f) Gift idempotency.
#[test]
fn gift_keys_are_per_user_and_forgotten_oldest_first() {
    let config = RoomConfig {
        gift_catalog: catalog(),
        idempotency_window: 3,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    let send = |room: &mut Room, user: &str, key: &str| {
        room.handle_gift(0, WALL0_MS, gift(user, 2, 3, key))
    };
    assert_eq!(
        send(&mut room, "alice", "a"),
        GiftOutcome::Accepted { seq: 1, value: 300 }
    );
    assert_eq!(
        send(&mut room, "alice", "a"),
        GiftOutcome::Duplicate { seq: 1 }
    );
    // Another user with the same key is another gift.
    assert_eq!(
        send(&mut room, "bob", "a"),
        GiftOutcome::Accepted { seq: 2, value: 300 }
    );
    assert_eq!(
        send(&mut room, "alice", "b"),
        GiftOutcome::Accepted { seq: 3, value: 300 }
    );
    // The window holds 3 keys: (alice, a) is forgotten now.
    assert_eq!(
        send(&mut room, "alice", "c"),
        GiftOutcome::Accepted { seq: 4, value: 300 }
    );
    assert_eq!(
        send(&mut room, "bob", "a"),
        GiftOutcome::Duplicate { seq: 2 }
    );
    assert_eq!(
        send(&mut room, "alice", "b"),
        GiftOutcome::Duplicate { seq: 3 }
    );
    assert_eq!(
        send(&mut room, "alice", "a"),
        GiftOutcome::Accepted { seq: 5, value: 300 }
    );
    // That pushed out (bob, a), the oldest.
    assert_eq!(
        send(&mut room, "bob", "a"),
        GiftOutcome::Accepted { seq: 6, value: 300 }
    );

    // Unknown gifts and bad counts change nothing.
    assert_eq!(
        room.handle_gift(0, WALL0_MS, gift("alice", 99, 1, "z")),
        GiftOutcome::UnknownGift
    );
    assert!(matches!(
        room.handle_gift(0, WALL0_MS, gift("alice", 1, 0, "z")),
        GiftOutcome::Rejected(_)
    ));
    assert!(matches!(
        room.handle_gift(0, WALL0_MS, gift("alice", 1, 1, "")),
        GiftOutcome::Rejected(_)
    ));
    assert_eq!(
        room.handle_gift(0, WALL0_MS, gift("alice", 1, 1, "z")),
        GiftOutcome::Accepted { seq: 7, value: 10 }
    );
    let counters = room.counters();
    assert_eq!(
        (
            counters.gifts_accepted,
            counters.gifts_duplicate,
            counters.gifts_unknown,
            counters.rejected
        ),
        (7, 3, 1, 2)
    );
    let batch = room.poll_batch(50).expect("window");
    assert_eq!(
        batch.events[0].body,
        EventBody::Gift {
            user: Arc::from("alice"),
            gift_id: 2,
            count: 3,
            value: 300
        }
    );
}

#[test]
fn oversized_inputs_are_rejected_not_ordered() {
    let mut room = new_room(RoomConfig::default(), 0);
    let long = "x".repeat(513);
    assert!(matches!(
        room.handle_chat(0, WALL0_MS, chat("u", &long, Priority::Paid)),
        Admission::Rejected(_)
    ));
    assert!(matches!(
        room.handle_chat(0, WALL0_MS, chat("", "hi", Priority::Paid)),
        Admission::Rejected(_)
    ));
    assert!(matches!(
        room.handle_system(0, WALL0_MS, Arc::from(long.as_str())),
        Admission::Rejected(_)
    ));
    assert_eq!(room.seq(), 0);
    assert_eq!(room.counters().rejected, 3);
}

// (g) Members, online, subscribers and stats timing.
#[test]
fn members_and_stats() {
    let config = RoomConfig {
        gift_catalog: catalog(),
        stats_ms: 1_000,
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    room.handle_members(2, 10);
    room.handle_members(0, 5);
    room.handle_members(5, 0);
    assert_eq!(room.online(), 15);
    assert_eq!(room.subscribers(), &[0, 2]);
    room.handle_members(5, 1);
    assert_eq!(room.join(0, 0).replay, Replay::None);
    assert_eq!(room.subscribers(), &[0, 2, 5]);
    assert_eq!(room.online(), 16);
    room.handle_members(2, 0);
    assert_eq!(room.subscribers(), &[0, 5]);
    assert_eq!(room.online(), 6);

    assert_eq!(
        room.poll_timeout(),
        Some(1_500),
        "stats due at 1000 wait half an interval for a batch to ride with"
    );
    room.handle_like(500, WALL0_MS, 7);
    assert_eq!(
        room.poll_timeout(),
        Some(500),
        "a Like in a quiet room is due at once"
    );
    assert!(room.poll_batch(500).is_some());
    assert!(room.poll_stats(500).is_none(), "stats are not due yet");
    assert_eq!(room.poll_timeout(), Some(1_500));
    assert!(
        room.poll_stats(1_000).is_none(),
        "due, but waiting for a batch"
    );
    room.handle_like(1_200, WALL0_MS, 1);
    assert_eq!(room.poll_timeout(), Some(1_200));
    assert!(room.poll_batch(1_200).is_some());
    let stats = room.poll_stats(1_200).expect("rides with the batch");
    assert_eq!((stats.online, stats.likes), (6, 8));
    assert_eq!(
        room.poll_timeout(),
        Some(2_500),
        "back on the grid: due at 2000"
    );
    assert!(room.poll_stats(2_499).is_none());
    assert!(room.poll_stats(2_500).is_some(), "no batch came: alone");
    // A late poll does not make up missed intervals.
    assert!(room.poll_stats(4_500).is_some());
    assert!(room.poll_stats(4_600).is_none());
    assert_eq!(room.poll_timeout(), Some(6_000));
    assert!(room.poll_stats(6_000).is_some());

    // Without members nothing is due and no stats come out; stats owed meanwhile come out as
    // soon as a shard reports members again.
    room.handle_members(0, 0);
    room.handle_members(5, 0);
    assert_eq!(room.poll_timeout(), None);
    assert!(room.poll_stats(9_000).is_none());
    room.handle_members(1, 3);
    assert_eq!(room.poll_timeout(), Some(7_000));
    let stats = room.poll_stats(9_000).expect("overdue");
    assert_eq!(stats.online, 3);
    assert_eq!(room.poll_timeout(), Some(10_500));
}

#[test]
fn heat_weighs_gifts_and_decays() {
    let config = RoomConfig {
        gift_catalog: catalog(),
        heat_half_life_s: 60,
        // Due at 40 s; with no batch to ride with they go out alone at 60 s.
        stats_ms: 40_000,
        ..RoomConfig::default()
    };
    let mut chats = new_room(config.clone(), 0);
    let mut gifts = new_room(config, 0);
    chats.handle_members(0, 1);
    gifts.handle_members(0, 1);
    for i in 0..10 {
        accepted(chats.handle_chat(0, WALL0_MS, chat("u", "hi", Priority::Normal)));
        let key = format!("k{i}");
        assert!(matches!(
            gifts.handle_gift(0, WALL0_MS, gift("u", 2, 1, &key)),
            GiftOutcome::Accepted { .. }
        ));
    }
    assert_eq!(chats.heat(), 100);
    assert_eq!(gifts.heat(), 1_100);
    assert_eq!(chats.poll_stats(60_000).expect("due").heat, 50);
    assert_eq!(gifts.poll_stats(60_000).expect("due").heat, 550);
}

#[test]
fn batches_are_shareable_across_threads() {
    let mut room = new_room(RoomConfig::default(), 0);
    accepted(room.handle_chat(0, WALL0_MS, chat("u", "hi", Priority::Normal)));
    let batch = room.poll_batch(50).expect("window");
    let copies: Vec<Batch> = (0..4).map(|_| batch.clone()).collect();
    let handles: Vec<_> = copies
        .into_iter()
        .map(|b| std::thread::spawn(move || b.last_seq()))
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), 1);
    }
    assert!(Arc::ptr_eq(&batch.events, &batch.clone().events));
}

/// One sender with many connections (or many senders) cannot starve chats with gifts: past
/// `gift_max_per_s` a gift is answered Busy and not ordered, and a retry with the same key
/// is taken once the room has room again.
#[test]
fn a_gift_flood_is_capped_per_room_and_chats_keep_their_share() {
    let config = RoomConfig {
        inbound_max_per_s: 100,
        inbound_burst: 100,
        gift_max_per_s: 20,
        gift_burst: 20,
        gift_catalog: catalog(),
        ..RoomConfig::default()
    };
    let mut room = new_room(config, 0);
    room.handle_members(0, 1);
    let (mut gifts, mut busy, mut chats) = (0, 0, 0);
    // One second: 1,000 gifts and 100 paid chats, interleaved every millisecond.
    for ms in 0..1000u64 {
        match room.handle_gift(ms, WALL0_MS + ms, gift("whale", 1, 1, &format!("k{ms}"))) {
            GiftOutcome::Accepted { .. } => gifts += 1,
            GiftOutcome::Busy => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
        if ms % 10 == 0 {
            if let Admission::Accepted { .. } =
                room.handle_chat(ms, WALL0_MS + ms, chat("fan", "hi", Priority::Paid))
            {
                chats += 1;
            }
        }
        let _ = drain(&mut room, ms);
    }
    // The burst and one second of refill.
    assert!((39..=41).contains(&gifts), "{gifts} gifts taken");
    assert_eq!(gifts + busy, 1000);
    assert_eq!(room.counters().gifts_busy, busy);
    assert_eq!(chats, 100, "every chat fits beside the capped gifts");
    // A refused gift retried later with the same key is taken once, then is a duplicate.
    let retry = gift("whale", 1, 1, "k999");
    let seq = match room.handle_gift(5_000, WALL0_MS + 5_000, retry.clone()) {
        GiftOutcome::Accepted { seq, .. } => seq,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        room.handle_gift(5_001, WALL0_MS + 5_001, retry),
        GiftOutcome::Duplicate { seq }
    );
}

/// Redis as the relayed rooms see it: numbers each published batch, sums likes, and keeps
/// every published batch (the room's stream) for hosts to read.
#[derive(Default)]
struct Sequencer {
    seq: u64,
    likes: u64,
    /// (first_seq, events, likes total after).
    stream: Vec<(u64, Vec<RoomEvent>, u64)>,
}

impl Sequencer {
    fn publish(&mut self, batch: &Batch) {
        assert_eq!(batch.first_seq, 0, "outbound batches are unnumbered");
        for event in batch.events.iter() {
            assert_eq!(event.seq, 0);
            if let EventBody::Like { added, .. } = event.body {
                self.likes += added;
            }
        }
        let first = self.seq + 1;
        self.seq += batch.events.len() as u64;
        self.stream.push((first, batch.events.to_vec(), self.likes));
    }
}

/// Two hosts' rooms ordered by one sequencer: both apply every published batch (host B
/// misses some deliveries and catches up from the stream), and both end with the same
/// history, every chat exactly once, in one order, with the global like total.
#[test]
fn relayed_rooms_on_two_hosts_agree_on_one_order() {
    let config = RoomConfig {
        inbound_max_per_s: 1_000_000,
        inbound_burst: 1_000_000,
        history_max: 100_000,
        history_s: 3600,
        ..RoomConfig::default()
    };
    let id = RoomId::new("lobby").unwrap();
    let mut hosts = [
        Room::new_relayed(id.clone(), config.clone(), 0),
        Room::new_relayed(id, config, 0),
    ];
    for host in &mut hosts {
        host.handle_members(0, 1);
        assert!(host.is_relayed());
    }
    let mut redis = Sequencer::default();
    // How far each host has applied the stream.
    let mut applied = [0usize; 2];
    let mut rng = XorShift::new(7);
    let mut sent = 0u64;
    let mut likes = 0u64;
    for step in 0..2_000u64 {
        let now = step * 7;
        let host = rng.below(2) as usize;
        if rng.percent(80) {
            let text = format!("m{sent}");
            assert_eq!(
                accepted(hosts[host].handle_chat(
                    now,
                    WALL0_MS + now,
                    chat("u", &text, Priority::Normal)
                )),
                0
            );
            sent += 1;
        } else {
            likes += hosts[host].handle_like(now, WALL0_MS + now, 3);
        }
        for room in &mut hosts {
            while let Some(batch) = room.poll_batch(now) {
                redis.publish(&batch);
            }
        }
        // Deliveries: host A gets every batch at once; host B misses 1 in 10 and catches up
        // from the stream when it sees the gap.
        for (h, room) in hosts.iter_mut().enumerate() {
            while applied[h] < redis.stream.len() {
                let (first, events, total) = redis.stream[applied[h]].clone();
                applied[h] += 1;
                if h == 1 && rng.percent(10) && applied[h] < redis.stream.len() {
                    continue; // lost; the next one shows the gap
                }
                let last = first + events.len() as u64 - 1;
                match room.apply_relayed(now, first, events, total) {
                    Relayed::Batch(batch) => assert_eq!(batch.last_seq(), last),
                    Relayed::Stale => {}
                    Relayed::Gap { expected } => {
                        // Catch up: every batch from the one holding `expected`.
                        let from = redis
                            .stream
                            .iter()
                            .rposition(|(f, _, _)| *f <= expected)
                            .unwrap();
                        applied[h] = from;
                    }
                }
            }
        }
    }
    for room in &mut hosts {
        while let Some(batch) = room.poll_batch(20_000) {
            redis.publish(&batch);
        }
    }
    for (h, room) in hosts.iter_mut().enumerate() {
        for (first, events, total) in redis.stream[applied[h]..].iter().cloned() {
            assert!(!matches!(
                room.apply_relayed(20_000, first, events, total),
                Relayed::Gap { .. }
            ));
        }
        assert_eq!(room.flushed_seq(), redis.seq, "host {h}");
        assert_eq!(room.likes(), likes, "host {h}");
    }
    // Every chat in the history, page by page.
    let texts = |room: &Room| -> Vec<String> {
        let mut out = Vec::new();
        let mut from = 1;
        while from <= room.flushed_seq() {
            let HistoryOutcome::Events { events, .. } = room.history(20_000, from, 0) else {
                panic!("resync at {from}");
            };
            from += events.len() as u64;
            out.extend(events.iter().filter_map(|e| match &e.body {
                EventBody::Chat { text, .. } => Some(text.to_string()),
                _ => None,
            }));
        }
        out
    };
    let (a, b) = (texts(&hosts[0]), texts(&hosts[1]));
    assert_eq!(a, b, "one order on both hosts");
    assert_eq!(a.len() as u64, sent, "every chat once");
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), a.len(), "no chat twice");
}

/// A relayed room reset to a new order drops its history: joins from the old order resync.
#[test]
fn a_reset_relayed_room_resyncs_old_positions() {
    let mut room = Room::new_relayed(RoomId::new("r").unwrap(), RoomConfig::default(), 0);
    room.handle_members(0, 1);
    let event = |text: &str| RoomEvent {
        seq: 0,
        time_ms: WALL0_MS,
        body: EventBody::System {
            text: Arc::from(text),
        },
    };
    assert!(matches!(
        room.apply_relayed(1, 1, vec![event("a"), event("b")], 0),
        Relayed::Batch(_)
    ));
    assert_eq!(
        room.apply_relayed(2, 5, vec![event("c")], 0),
        Relayed::Gap { expected: 3 }
    );
    assert_eq!(
        room.apply_relayed(2, 2, vec![event("b")], 0),
        Relayed::Stale
    );
    room.reset_relayed(40, 0);
    assert_eq!(room.join(3, 2).replay, Replay::Resync);
    match room.apply_relayed(4, 41, vec![event("d")], 0) {
        Relayed::Batch(batch) => assert_eq!((batch.first_seq, batch.events[0].seq), (41, 41)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(room.join(5, 40).replay, Replay::Events(ref e) if e.len() == 1));
}
