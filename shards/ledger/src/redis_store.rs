//! The ledger on Redis: every batch is one Lua script (`ledger.lua`), so the batch is applied
//! atomically with respect to every other Redis client and made durable by one AOF fsync on
//! a Redis with `appendonly yes` and `appendfsync always` (Redis fsyncs before it answers).
//! [`RedisLedger::open`] refuses a Redis that is configured otherwise unless told not to check.
//!
//! Keys, under the configured prefix (default `shardcast:`):
//! - `ledger:balances` (hash: account → balance), `ledger:meta` (hash: `entries`, `credited`);
//! - `ledger:gift_answers`, `ledger:credit_answers` (hash: user and key → `entry:balance`):
//!   idempotency, kept forever like the embedded ledger's;
//! - `ledger:gifts:{room}` (a stream: entry `E-0` is ledger entry E): the room's gift log;
//! - `ledger:board:{room}` (sorted set: user → value given): the leaderboard.
//!
//! A script names every key it touches, but a batch touches keys of several rooms, so the
//! backend needs one Redis (or one Redis Cluster slot), not a cluster.
//!
//! Failure: a connection or script error answers the whole batch with a [`StoreError`], and
//! the caller acknowledges nothing. A batch whose reply was lost may still have been applied:
//! a client's retry with the same key then answers the first result, so nothing is applied
//! twice. After a failure the next batch reconnects, no sooner than
//! [`RedisOptions::reconnect_ms`] later (batches meanwhile fail at once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{Client, Connection, Value};

use crate::rules::invalid;
use crate::{
    earnings, streamer_share, Audit, GiftRecord, Ledger, Op, Outcome, Refusal, StoreError,
    BALANCE_MAX, CREDITED_MAX,
};

/// The batch script.
const LEDGER_LUA: &str = include_str!("ledger.lua");

/// How to reach Redis and what to demand of it.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key.
    pub prefix: String,
    /// Connect, read and write timeout.
    pub timeout_ms: u64,
    /// After a failure, batches fail at once for this long before a reconnect is tried.
    pub reconnect_ms: u64,
    /// Refuse to open unless Redis reports `appendonly yes` and `appendfsync always`.
    pub require_fsync: bool,
}

/// The ledger on Redis.
pub struct RedisLedger {
    link: Link,
    streamer_share_percent: u8,
    script: redis::Script,
    keys: FixedKeys,
}

struct FixedKeys {
    prefix: String,
    balances: String,
    gift_answers: String,
    credit_answers: String,
    meta: String,
}

impl FixedKeys {
    /// A room's gift stream and leaderboard keys.
    fn room(&self, room: &str) -> (String, String) {
        let prefix = &self.prefix;
        (
            format!("{prefix}ledger:gifts:{room}"),
            format!("{prefix}ledger:board:{room}"),
        )
    }
}

/// The batch connection, reconnected after a failure.
struct Link {
    client: Client,
    con: Option<Connection>,
    options: RedisOptions,
    /// When the last failure happened (reconnects wait `reconnect_ms` after it).
    failed_at: Option<Instant>,
}

impl Link {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.options.timeout_ms.max(1))
    }

    /// A new connection with the timeouts set.
    fn connect(&self) -> Result<Connection, StoreError> {
        let timeout = self.timeout();
        self.client
            .get_connection_with_timeout(timeout)
            .and_then(|con| {
                con.set_read_timeout(Some(timeout))?;
                con.set_write_timeout(Some(timeout))?;
                Ok(con)
            })
            .map_err(|e| {
                StoreError(format!(
                    "cannot connect to Redis at {}: {e}",
                    redact(&self.options.url)
                ))
            })
    }

    /// Runs `f` on the batch connection, connecting when there is none (but not within
    /// `reconnect_ms` of the last failure). An error drops the connection.
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        if self.con.is_none() {
            if let Some(at) = self.failed_at {
                if at.elapsed() < Duration::from_millis(self.options.reconnect_ms) {
                    return Err(StoreError("Redis is unreachable (retrying shortly)".into()));
                }
            }
            let checked = self.connect().and_then(|mut con| {
                if self.options.require_fsync {
                    check_fsync(&mut con)?;
                }
                Ok(con)
            });
            match checked {
                Ok(con) => self.con = Some(con),
                Err(e) => {
                    self.failed_at = Some(Instant::now());
                    return Err(e);
                }
            }
        }
        let con = self.con.as_mut().expect("connected above");
        f(con).map_err(|e| {
            self.con = None;
            self.failed_at = Some(Instant::now());
            StoreError(format!("Redis: {e}"))
        })
    }

    /// Runs a read on a connection of its own: reads take `&self` (they are the admin API's,
    /// and rare).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        f(&mut self.connect()?).map_err(|e| StoreError(format!("Redis: {e}")))
    }
}

impl RedisLedger {
    /// Whether the last call reached Redis (false until one does, after a failure).
    pub fn is_connected(&self) -> bool {
        self.link.con.is_some()
    }

    /// Connects and checks that Redis fsyncs every write (unless `require_fsync` is off): a
    /// Redis that does not is an error. An unreachable Redis is not: the ledger opens, and
    /// every batch fails (nothing is acknowledged) until a connection, checked the same way,
    /// succeeds. The script is loaded on first use (and again after Redis forgets it).
    pub fn open(options: RedisOptions, streamer_share_percent: u8) -> Result<Self, StoreError> {
        let client = Client::open(options.url.as_str())
            .map_err(|e| StoreError(format!("state.redis {}: {e}", redact(&options.url))))?;
        let prefix = options.prefix.clone();
        let require_fsync = options.require_fsync;
        let link = Link {
            client,
            con: None,
            options,
            failed_at: None,
        };
        let con = match link.connect() {
            Ok(mut con) => {
                if require_fsync {
                    check_fsync(&mut con)?;
                }
                Some(con)
            }
            Err(_) => None,
        };
        Ok(RedisLedger {
            link: Link {
                failed_at: con.is_none().then(Instant::now),
                con,
                ..link
            },
            streamer_share_percent,
            script: redis::Script::new(LEDGER_LUA),
            keys: FixedKeys {
                balances: format!("{prefix}ledger:balances"),
                gift_answers: format!("{prefix}ledger:gift_answers"),
                credit_answers: format!("{prefix}ledger:credit_answers"),
                meta: format!("{prefix}ledger:meta"),
                prefix,
            },
        })
    }
}

/// Refuses a Redis that would answer before a write is on disk.
fn check_fsync(con: &mut Connection) -> Result<(), StoreError> {
    let get = |con: &mut Connection, name: &str| -> Result<String, StoreError> {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(con)
            .map_err(|e| {
                StoreError(format!(
                    "cannot read Redis's {name} (CONFIG GET: {e}); set state.redis_require_fsync \
                     = false only if you know that Redis fsyncs every write"
                ))
            })?;
        Ok(pair.get(1).cloned().unwrap_or_default())
    };
    let appendonly = get(con, "appendonly")?;
    let appendfsync = get(con, "appendfsync")?;
    if appendonly != "yes" || appendfsync != "always" {
        return Err(StoreError(format!(
            "Redis has appendonly {appendonly:?} and appendfsync {appendfsync:?}: a gift could \
             be acknowledged before it is on disk. Run it with `appendonly yes` and \
             `appendfsync always` (or set state.redis_require_fsync = false to accept the risk)"
        )));
    }
    Ok(())
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A script answer as integers.
fn ints(value: &Value) -> Option<Vec<i64>> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Int(n) => Some(*n),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn as_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError(format!("Redis answered a negative amount: {n}")))
}

impl Ledger for RedisLedger {
    fn apply_batch(&mut self, ops: &[Op]) -> Result<Vec<Outcome>, StoreError> {
        // Invalid transfers are answered here and never sent.
        let refused: Vec<Option<Refusal>> = ops.iter().map(invalid).collect();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.keys.balances)
            .key(&self.keys.gift_answers)
            .key(&self.keys.credit_answers)
            .key(&self.keys.meta)
            .arg(BALANCE_MAX)
            .arg(CREDITED_MAX);
        let mut sent = 0;
        for (op, refusal) in ops.iter().zip(&refused) {
            if refusal.is_some() {
                continue;
            }
            sent += 1;
            match op {
                Op::Credit { user, amount, key } => {
                    invocation
                        .key(&self.keys.meta)
                        .key(&self.keys.meta)
                        .arg("c")
                        .arg(user)
                        .arg(key)
                        .arg(*amount)
                        .arg(0)
                        .arg("")
                        .arg(0)
                        .arg(0)
                        .arg(0);
                }
                Op::Gift {
                    user,
                    room,
                    owner,
                    gift_id,
                    count,
                    value,
                    key,
                    time_ms,
                } => {
                    let (stream, board) = self.keys.room(room);
                    invocation
                        .key(stream)
                        .key(board)
                        .arg("g")
                        .arg(user)
                        .arg(key)
                        .arg(*value)
                        .arg(streamer_share(*value, self.streamer_share_percent))
                        .arg(earnings(owner))
                        .arg(*gift_id)
                        .arg(*count)
                        .arg(*time_ms);
                }
            }
        }
        let answers: Vec<Value> = if sent == 0 {
            Vec::new()
        } else {
            self.link.with(|con| invocation.invoke(con))?
        };
        if answers.len() != sent {
            return Err(StoreError(format!(
                "the ledger script answered {} of {sent} transfers",
                answers.len()
            )));
        }
        let mut answers = answers.iter();
        let mut outcomes = Vec::with_capacity(ops.len());
        for (op, refusal) in ops.iter().zip(refused) {
            if let Some(refusal) = refusal {
                outcomes.push(Outcome::Refused(refusal));
                continue;
            }
            let answer = answers.next().expect("counted above");
            let bad = || StoreError(format!("the ledger script answered {answer:?}"));
            let fields = ints(answer).ok_or_else(bad)?;
            let outcome = match fields.as_slice() {
                [1, entry, balance] => Outcome::Done {
                    entry: as_u64(*entry)?,
                    balance: as_u64(*balance)?,
                },
                [2, entry, balance] => Outcome::Duplicate(Box::new(Outcome::Done {
                    entry: as_u64(*entry)?,
                    balance: as_u64(*balance)?,
                })),
                [3, balance] => Outcome::Refused(Refusal::InsufficientBalance {
                    balance: as_u64(*balance)?,
                    needed: match op {
                        Op::Gift { value, .. } => *value,
                        Op::Credit { .. } => return Err(bad()),
                    },
                }),
                [4] => Outcome::Refused(Refusal::Overflow),
                _ => return Err(bad()),
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    fn balance(&self, account: &str) -> Result<u64, StoreError> {
        let key = &self.keys.balances;
        let balance: Option<u64> = self
            .link
            .read(|con| redis::cmd("HGET").arg(key).arg(account).query(con))?;
        Ok(balance.unwrap_or(0))
    }

    fn gifts_after(
        &self,
        room: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<GiftRecord>, StoreError> {
        if after == u64::MAX || limit == 0 {
            return Ok(Vec::new());
        }
        let (stream, _) = self.keys.room(room);
        let count = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, HashMap<String, String>)> = self.link.read(|con| {
            redis::cmd("XRANGE")
                .arg(&stream)
                .arg(format!("{}-0", after + 1))
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query(con)
        })?;
        rows.into_iter()
            .map(|(id, fields)| {
                let bad = || StoreError(format!("a malformed gift {id} in {stream}"));
                let number = |name: &str| -> Result<u64, StoreError> {
                    fields
                        .get(name)
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(bad)
                };
                Ok(GiftRecord {
                    entry: id
                        .split_once('-')
                        .and_then(|(entry, _)| entry.parse().ok())
                        .ok_or_else(bad)?,
                    user: fields.get("user").cloned().ok_or_else(bad)?,
                    gift_id: u32::try_from(number("gift_id")?).map_err(|_| bad())?,
                    count: u32::try_from(number("count")?).map_err(|_| bad())?,
                    value: number("value")?,
                    time_ms: number("time_ms")?,
                })
            })
            .collect()
    }

    fn leaderboard(&self, room: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (_, board) = self.keys.room(room);
        let stop = i64::try_from(limit - 1).unwrap_or(i64::MAX);
        // The top `limit`, then everyone tied with the last of them: ties go by name, and
        // Redis orders them the other way.
        let mut rows: Vec<(String, u64)> = self.link.read(|con| {
            let top: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
                .arg(&board)
                .arg(0)
                .arg(stop)
                .arg("WITHSCORES")
                .query(con)?;
            match top.last() {
                Some(&(_, lowest)) if top.len() == limit => redis::cmd("ZRANGEBYSCORE")
                    .arg(&board)
                    .arg(lowest)
                    .arg("+inf")
                    .arg("WITHSCORES")
                    .query::<Vec<(String, f64)>>(con)
                    .map(|rows| rows.into_iter().map(|(u, s)| (u, s as u64)).collect()),
                _ => Ok(top.into_iter().map(|(u, s)| (u, s as u64)).collect()),
            }
        })?;
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(limit);
        Ok(rows)
    }

    fn audit(&self) -> Result<Audit, StoreError> {
        let keys = &self.keys;
        let (balances, meta): (Vec<u64>, Vec<Option<u64>>) = self.link.read(|con| {
            let balances: Vec<u64> = redis::cmd("HVALS").arg(&keys.balances).query(con)?;
            let meta: Vec<Option<u64>> = redis::cmd("HMGET")
                .arg(&keys.meta)
                .arg("credited")
                .arg("entries")
                .query(con)?;
            Ok((balances, meta))
        })?;
        let field = |i: usize| meta.get(i).copied().flatten().unwrap_or(0);
        Ok(Audit {
            credited: u128::from(field(0)),
            held: balances.iter().map(|&b| u128::from(b)).sum(),
            entries: field(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("redis://user:secret@10.0.0.1:6379/0"),
            "redis://…@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
