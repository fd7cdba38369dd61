//! The ledger's rules and invariants, on every backend: the same operations must give the same
//! answers in memory, on redb and on Redis, conservation must hold after every batch, and the
//! redb file and the Redis AOF must give everything back after a reopen or a restart.

mod support;

use shardcast_ledger::{
    earnings, wallet, GiftRecord, Ledger, MemoryLedger, Op, Outcome, RedbLedger, RedisLedger,
    RedisOptions, Refusal, BALANCE_MAX, PLATFORM,
};
use support::RedisServer;

fn redis_options(server: &RedisServer) -> RedisOptions {
    RedisOptions {
        url: server.url(),
        prefix: "test:".into(),
        timeout_ms: 2000,
        reconnect_ms: 0,
        require_fsync: true,
    }
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("shardcast-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn credit(user: &str, amount: u64, key: &str) -> Op {
    Op::Credit {
        user: user.into(),
        amount,
        key: key.into(),
    }
}

fn gift(user: &str, room: &str, value: u64, key: &str) -> Op {
    Op::Gift {
        user: user.into(),
        room: room.into(),
        owner: format!("owner-{room}"),
        gift_id: 1,
        count: 1,
        value,
        key: key.into(),
        time_ms: 1_700_000_000_000,
    }
}

fn check_rules(ledger: &mut dyn Ledger) {
    let out = ledger
        .apply_batch(&[
            credit("ann", 1000, "pay-1"),
            gift("ann", "r", 301, "g-1"),
            // The retry of a done gift: the first answer, nothing moves.
            gift("ann", "r", 301, "g-1"),
            gift("ann", "r", 5000, "g-2"),
            credit("ann", 1000, "pay-1"),
        ])
        .unwrap();
    assert_eq!(
        out[0],
        Outcome::Done {
            entry: 1,
            balance: 1000
        }
    );
    assert_eq!(
        out[1],
        Outcome::Done {
            entry: 2,
            balance: 699
        }
    );
    assert_eq!(out[2], Outcome::Duplicate(Box::new(out[1].clone())));
    assert_eq!(
        out[3],
        Outcome::Refused(Refusal::InsufficientBalance {
            balance: 699,
            needed: 5000
        })
    );
    assert_eq!(out[4], Outcome::Duplicate(Box::new(out[0].clone())));
    // 50 % of 301, rounded down, to the owner; the rest to the platform.
    assert_eq!(ledger.balance(&wallet("ann")).unwrap(), 699);
    assert_eq!(ledger.balance(&earnings("owner-r")).unwrap(), 150);
    assert_eq!(ledger.balance(PLATFORM).unwrap(), 151);
    // A refused key is tried afresh once the wallet can pay.
    let out = ledger
        .apply_batch(&[
            credit("ann", 10_000, "pay-2"),
            gift("ann", "r", 5000, "g-2"),
        ])
        .unwrap();
    assert_eq!(
        out[1],
        Outcome::Done {
            entry: 4,
            balance: 5699
        }
    );
    // Invalid input is refused without an entry.
    let out = ledger
        .apply_batch(&[credit("ann", 0, "pay-3"), gift("", "r", 1, "g-3")])
        .unwrap();
    assert_eq!(out[0], Outcome::Refused(Refusal::Invalid("amount")));
    assert_eq!(out[1], Outcome::Refused(Refusal::Invalid("user")));
    let audit = ledger.audit().unwrap();
    assert_eq!(audit.credited, 11_000);
    assert_eq!(audit.held, 11_000);
    assert_eq!(audit.entries, 4);
    // Gift and credit keys are separate spaces.
    let out = ledger.apply_batch(&[gift("ann", "r", 1, "pay-1")]).unwrap();
    assert!(matches!(out[0], Outcome::Done { .. }));
}

#[test]
fn the_rules_hold_in_memory() {
    check_rules(&mut MemoryLedger::new(50));
}

#[test]
fn the_rules_hold_on_redb() {
    let dir = TempDir::new("rules");
    check_rules(&mut RedbLedger::open(&dir.0.join("ledger.redb"), 50).unwrap());
}

#[test]
fn the_rules_hold_on_redis() {
    let server = RedisServer::start("rules");
    check_rules(&mut RedisLedger::open(redis_options(&server), 50).unwrap());
}

#[test]
fn balances_stop_at_the_largest_exact_double() {
    let server = RedisServer::start("cap");
    let dir = TempDir::new("cap");
    let mut ledgers: Vec<Box<dyn Ledger>> = vec![
        Box::new(MemoryLedger::new(50)),
        Box::new(RedbLedger::open(&dir.0.join("ledger.redb"), 50).unwrap()),
        Box::new(RedisLedger::open(redis_options(&server), 50).unwrap()),
    ];
    for ledger in &mut ledgers {
        let out = ledger
            .apply_batch(&[
                credit("ann", BALANCE_MAX, "p1"),
                credit("ann", 1, "p2"),
                credit("bob", u64::MAX, "p3"),
                gift("ann", "r", BALANCE_MAX, "g1"),
            ])
            .unwrap();
        assert_eq!(
            out,
            [
                Outcome::Done {
                    entry: 1,
                    balance: BALANCE_MAX
                },
                Outcome::Refused(Refusal::Overflow),
                Outcome::Refused(Refusal::Overflow),
                Outcome::Done {
                    entry: 2,
                    balance: 0
                },
            ]
        );
        assert_eq!(
            ledger.balance(&earnings("owner-r")).unwrap(),
            BALANCE_MAX / 2
        );
        assert_eq!(
            ledger.balance(PLATFORM).unwrap(),
            BALANCE_MAX - BALANCE_MAX / 2
        );
        assert_eq!(
            ledger.leaderboard("r", 5).unwrap(),
            [("ann".to_string(), BALANCE_MAX)]
        );
        // The next top-up that would take the owner past the cap is refused whole.
        let out = ledger
            .apply_batch(&[
                credit("cy", BALANCE_MAX, "p4"),
                gift("cy", "r", BALANCE_MAX, "g2"),
            ])
            .unwrap();
        assert_eq!(out[1], Outcome::Refused(Refusal::Overflow));
        assert_eq!(ledger.balance(&wallet("cy")).unwrap(), BALANCE_MAX);
    }
}

#[test]
fn a_redis_that_does_not_fsync_every_write_is_refused() {
    let server = RedisServer::start_with("everysec", "everysec");
    let error = RedisLedger::open(redis_options(&server), 50)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("appendfsync \"everysec\""), "{error}");
    // Told not to check, it opens.
    let options = RedisOptions {
        require_fsync: false,
        ..redis_options(&server)
    };
    assert!(RedisLedger::open(options, 50).is_ok());
}

/// Redis killed: batches fail (nothing is acknowledged) and reads fail; restarted from its
/// AOF, every transfer done before the kill is there and retries answer their first result.
#[test]
fn the_redis_ledger_fails_closed_and_recovers_from_the_aof() {
    let mut server = RedisServer::start("restart");
    let mut ledger = RedisLedger::open(redis_options(&server), 50).unwrap();
    let done = ledger
        .apply_batch(&[credit("ann", 1000, "p"), gift("ann", "r", 100, "g1")])
        .unwrap();
    server.kill();
    assert!(ledger.apply_batch(&[gift("ann", "r", 100, "g2")]).is_err());
    assert!(ledger.balance(&wallet("ann")).is_err());
    server.restart();
    let out = ledger
        .apply_batch(&[gift("ann", "r", 100, "g1"), gift("ann", "r", 100, "g2")])
        .unwrap();
    assert_eq!(out[0], Outcome::Duplicate(Box::new(done[1].clone())));
    assert_eq!(
        out[1],
        Outcome::Done {
            entry: 3,
            balance: 800
        }
    );
    let audit = ledger.audit().unwrap();
    assert_eq!((audit.credited, audit.held, audit.entries), (1000, 1000, 3));
    let logged: Vec<u64> = ledger
        .gifts_after("r", 0, 10)
        .unwrap()
        .iter()
        .map(|g| g.entry)
        .collect();
    assert_eq!(logged, [2, 3]);
}

/// xorshift64*: deterministic operation sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_op(rng: &mut Rng) -> Op {
    let user = format!("u{}", rng.below(12));
    // Keys repeat often, so retries and duplicates are common.
    let key = format!("k{}", rng.below(40));
    let amount = match rng.below(20) {
        0 => 0,
        1 => u64::MAX - rng.below(3),
        2 => BALANCE_MAX - rng.below(3),
        _ => rng.below(500),
    };
    if rng.below(3) == 0 {
        credit(&user, amount, &key)
    } else {
        let room = format!("r{}", rng.below(4));
        gift(&user, &room, amount, &key)
    }
}

/// Random batches on every backend: identical answers and balances, and after every batch
/// the accounts hold exactly what was credited, and every done gift is in its room's log
/// exactly once.
#[test]
fn random_batches_agree_across_backends_and_conserve_every_unit() {
    let dir = TempDir::new("random");
    let server = RedisServer::start("random");
    let mut memory = MemoryLedger::new(37);
    let mut durable = RedbLedger::open(&dir.0.join("ledger.redb"), 37).unwrap();
    let mut remote = RedisLedger::open(redis_options(&server), 37).unwrap();
    let mut rng = Rng(0x5eed_1ed9_e7a1_0001);
    let mut gifts_done: Vec<(String, u64)> = Vec::new();
    for _ in 0..150 {
        let ops: Vec<Op> = (0..1 + rng.below(12))
            .map(|_| random_op(&mut rng))
            .collect();
        let a = memory.apply_batch(&ops).unwrap();
        let b = durable.apply_batch(&ops).unwrap();
        assert_eq!(a, b, "{ops:?}");
        let c = remote.apply_batch(&ops).unwrap();
        assert_eq!(a, c, "{ops:?}");
        for (op, outcome) in ops.iter().zip(&a) {
            if let (Op::Gift { room, .. }, Outcome::Done { entry, .. }) = (op, outcome) {
                gifts_done.push((room.clone(), *entry));
            }
        }
        for ledger in [&memory as &dyn Ledger, &durable, &remote] {
            let audit = ledger.audit().unwrap();
            assert_eq!(audit.held, audit.credited, "conservation");
        }
        assert_eq!(memory.audit().unwrap(), durable.audit().unwrap());
        assert_eq!(memory.audit().unwrap(), remote.audit().unwrap());
    }
    for room in ["r0", "r1", "r2", "r3"] {
        let logged: Vec<u64> = durable
            .gifts_after(room, 0, usize::MAX)
            .unwrap()
            .iter()
            .map(|g| g.entry)
            .collect();
        let expected: Vec<u64> = gifts_done
            .iter()
            .filter(|(r, _)| r == room)
            .map(|(_, e)| *e)
            .collect();
        assert_eq!(logged, expected, "{room}");
        assert_eq!(
            remote.gifts_after(room, 0, usize::MAX).unwrap(),
            durable.gifts_after(room, 0, usize::MAX).unwrap()
        );
        assert_eq!(
            durable.leaderboard(room, 100).unwrap(),
            memory.leaderboard(room, 100).unwrap()
        );
        // Short boards too: ties at the cut go by name on every backend.
        for limit in [1, 3] {
            assert_eq!(
                remote.leaderboard(room, limit).unwrap(),
                memory.leaderboard(room, limit).unwrap()
            );
        }
        for user in (0..12).map(|u| format!("u{u}")) {
            assert_eq!(
                durable.balance(&wallet(&user)).unwrap(),
                memory.balance(&wallet(&user)).unwrap()
            );
            assert_eq!(
                remote.balance(&wallet(&user)).unwrap(),
                memory.balance(&wallet(&user)).unwrap()
            );
        }
    }
    assert!(gifts_done.len() > 50, "{} gifts done", gifts_done.len());
}

#[test]
fn the_redb_ledger_keeps_everything_across_a_reopen() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("ledger.redb");
    {
        let mut ledger = RedbLedger::open(&path, 50).unwrap();
        let mut ops = vec![credit("ann", 1000, "p"), credit("bob", 1000, "p")];
        for i in 0..10 {
            ops.push(gift("ann", "r", 10 + i, &format!("a{i}")));
        }
        ops.push(gift("bob", "r", 500, "b0"));
        ops.push(gift("bob", "other", 7, "b1"));
        ledger.apply_batch(&ops).unwrap();
    }
    let mut ledger = RedbLedger::open(&path, 50).unwrap();
    assert_eq!(ledger.balance(&wallet("ann")).unwrap(), 1000 - 145);
    assert_eq!(ledger.balance(&wallet("bob")).unwrap(), 493);
    // Idempotency survives the reopen: the retry answers the first result.
    let out = ledger.apply_batch(&[gift("ann", "r", 10, "a0")]).unwrap();
    assert_eq!(
        out[0],
        Outcome::Duplicate(Box::new(Outcome::Done {
            entry: 3,
            balance: 990
        }))
    );
    // The room's log pages in entry order.
    let first: Vec<u64> = ledger
        .gifts_after("r", 0, 4)
        .unwrap()
        .iter()
        .map(|g| g.entry)
        .collect();
    assert_eq!(first, [3, 4, 5, 6]);
    let rest = ledger.gifts_after("r", 6, 100).unwrap();
    assert_eq!(rest.len(), 7);
    assert_eq!(
        rest.last().unwrap(),
        &GiftRecord {
            entry: 13,
            user: "bob".into(),
            gift_id: 1,
            count: 1,
            value: 500,
            time_ms: 1_700_000_000_000
        }
    );
    assert!(ledger.gifts_after("r", 13, 10).unwrap().is_empty());
    assert_eq!(
        ledger.leaderboard("r", 10).unwrap(),
        [("bob".to_string(), 500), ("ann".to_string(), 145)]
    );
    assert_eq!(
        ledger.leaderboard("other", 10).unwrap(),
        [("bob".to_string(), 7)]
    );
    let audit = ledger.audit().unwrap();
    assert_eq!(
        (audit.credited, audit.held, audit.entries),
        (2000, 2000, 14)
    );
}

/// A file whose writes or fsyncs fail on demand: a full disk (ENOSPC on write) or a failing
/// device (EIO on fsync).
#[derive(Debug)]
struct FailingDisk {
    file: redb::backends::FileBackend,
    fail_write: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fail_sync: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl redb::StorageBackend for FailingDisk {
    fn len(&self) -> Result<u64, redb::BackendError> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), redb::BackendError> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), redb::BackendError> {
        if self.fail_write.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28).into());
        }
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), redb::BackendError> {
        if self.fail_sync.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(5).into());
        }
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), redb::BackendError> {
        if self.fail_write.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28).into());
        }
        self.file.write(offset, data)
    }
}

/// A full disk or a failed fsync answers the batch with an error (so nothing of it is
/// acknowledged); reopened, the ledger balances, and a retry of every transfer of the failed
/// batch is applied at most once.
#[test]
fn a_failed_write_or_fsync_answers_an_error_and_a_retry_applies_once() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    for failure in ["write", "fsync"] {
        let dir = TempDir::new(&format!("failing-{failure}"));
        let path = dir.0.join("ledger.redb");
        let fail_write = Arc::new(AtomicBool::new(false));
        let fail_sync = Arc::new(AtomicBool::new(false));
        {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap();
            let disk = FailingDisk {
                file: redb::backends::FileBackend::new(file),
                fail_write: fail_write.clone(),
                fail_sync: fail_sync.clone(),
            };
            let mut ledger = RedbLedger::with_backend(disk, 50).unwrap();
            ledger
                .apply_batch(&[credit("ann", 1000, "p"), gift("ann", "r", 100, "g1")])
                .unwrap();
            match failure {
                "write" => fail_write.store(true, SeqCst),
                _ => fail_sync.store(true, SeqCst),
            }
            // Enough transfers that the batch must write pages.
            let batch: Vec<Op> = (0..200)
                .map(|i| gift("ann", "r", 1, &format!("f{i}")))
                .collect();
            assert!(
                ledger.apply_batch(&batch).is_err(),
                "{failure}: a failed batch errs"
            );
            // While the disk fails, nothing is acknowledged.
            assert!(ledger
                .apply_batch(&[gift("ann", "r", 1, "f-next")])
                .is_err());
        }
        let mut ledger = RedbLedger::open(&path, 50).unwrap();
        let audit = ledger.audit().unwrap();
        assert_eq!(audit.held, audit.credited, "{failure}: conservation");
        let before = ledger.balance(&wallet("ann")).unwrap();
        let retry: Vec<Op> = (0..200)
            .map(|i| gift("ann", "r", 1, &format!("f{i}")))
            .collect();
        let out = ledger.apply_batch(&retry).unwrap();
        let fresh = out
            .iter()
            .filter(|o| matches!(o, Outcome::Done { .. }))
            .count() as u64;
        // Each key is in the ledger once, whether the failed batch reached the disk or not.
        assert_eq!(ledger.balance(&wallet("ann")).unwrap(), before - fresh);
        assert_eq!(
            ledger.gifts_after("r", 0, 1000).unwrap().len(),
            201,
            "{failure}"
        );
        if failure == "write" {
            assert_eq!(fresh, 200, "a batch whose write failed left nothing behind");
        }
    }
}
