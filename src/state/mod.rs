//! State that outlives a connection and a restart: the gift ledger.
//!
//! The ledger runs on a thread of its own on the mesh (a worker endpoint, after the transcode
//! workers), never on a shard and never on the control thread: its writes wait on fsync.
//! Group commit: every request that arrived while the last batch was being written goes into
//! the next one, applied in one transaction and made durable by one fsync
//! ([`shardcast_ledger::Ledger::apply_batch`]); only then do the answers go back over the
//! mesh. A failed write answers every request of its batch with the error, and nothing of
//! the batch is acknowledged.

mod api;
pub mod msg;
mod pubsub;
pub mod relay;
#[cfg(test)]
mod tests;

use crate::shard::msg::ShardMsg;
use msg::{ApiCall, ApiDone, GiftDone, StateReply, StateRequest};
use shardcast_engine::{ShardId, WorkerEndpoint, WorkerInbox};
use shardcast_ledger::{Ledger, Op};
use std::path::Path;
use std::time::{Duration, Instant};

crate::service_counters! {
    /// The state threads' counters (the ledger's, and the relay's with `state.redis`).
    pub struct StateCounters {
        /// Ledger writes: each is one transaction and one fsync on the embedded store, or one
        /// script on Redis, for every request that arrived while the previous one was written.
        ledger_batches: "counter",
        /// Ledger requests answered (gifts, credits, reads).
        ledger_requests: "counter",
        /// Ledger writes that failed: their gifts were refused, none acknowledged.
        ledger_failures: "counter",
        /// 1 while the relay thread reaches Redis (rooms across hosts), else 0.
        relay_up: "gauge",
        /// Times Redis became unreachable for the relay thread.
        relay_outages: "counter",
        /// Room batches published to Redis.
        relay_published: "counter",
        /// Room batches received from Redis (each handed to the room's home here).
        relay_received: "counter",
    }
}

/// Requests one batch takes at most.
pub const BATCH_MAX: usize = 4096;

/// The ledger file under `state.data_dir`.
pub const LEDGER_FILE: &str = "ledger.redb";

/// A failed write is logged at most this often (every failure is counted).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Opens the ledger the configuration names: Redis when `redis` is given (`state.redis`),
/// else the embedded one under `data_dir`. Either must balance (the conservation check) to
/// start.
pub fn open_configured(
    data_dir: &Path,
    redis: Option<shardcast_ledger::RedisOptions>,
    streamer_share_percent: u8,
) -> Result<Box<dyn Ledger + Send>, String> {
    let Some(options) = redis else {
        return Ok(Box::new(open_ledger(data_dir, streamer_share_percent)?));
    };
    let prefix = options.prefix.clone();
    let ledger = shardcast_ledger::RedisLedger::open(options, streamer_share_percent)
        .map_err(|e| format!("cannot open the ledger in Redis: {e}"))?;
    if !ledger.is_connected() {
        // Serving without Redis: gifts are refused until it answers.
        log::error!(
            "the ledger's Redis is unreachable: gifts are refused until it answers \
             (retried every state.redis_reconnect_ms)"
        );
        return Ok(Box::new(ledger));
    }
    let audit = ledger
        .audit()
        .map_err(|e| format!("cannot read the ledger in Redis: {e}"))?;
    check_balances(&audit, "in Redis")?;
    log::info!(
        "ledger in Redis (keys {}ledger:*): {} entries, {} credited",
        prefix,
        audit.entries,
        audit.credited
    );
    Ok(Box::new(ledger))
}

/// The conservation check at start: the accounts must hold exactly what was credited.
fn check_balances(audit: &shardcast_ledger::Audit, place: &str) -> Result<(), String> {
    if audit.held != audit.credited {
        return Err(format!(
            "the ledger {place} does not balance: accounts hold {}, credits total {}",
            audit.held, audit.credited
        ));
    }
    Ok(())
}

/// Opens the embedded ledger under `data_dir` (made if missing, mode 0700).
pub fn open_ledger(
    data_dir: &Path,
    streamer_share_percent: u8,
) -> Result<shardcast_ledger::RedbLedger, String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| format!("cannot create state.data_dir {}: {e}", data_dir.display()))?;
    let path = data_dir.join(LEDGER_FILE);
    let ledger = shardcast_ledger::RedbLedger::open(&path, streamer_share_percent)
        .map_err(|e| format!("cannot open the ledger {}: {e}", path.display()))?;
    let audit = ledger
        .audit()
        .map_err(|e| format!("cannot read the ledger {}: {e}", path.display()))?;
    check_balances(&audit, &path.display().to_string())?;
    log::info!(
        "ledger {}: {} entries, {} credited",
        path.display(),
        audit.entries,
        audit.credited
    );
    Ok(ledger)
}

/// Applies `requests` as one batch (gifts and credits in one transaction) and pairs each
/// with its answer, in order. Reads (wallets, gift logs, leaderboards) are answered after the
/// batch, so they see it.
pub fn answer(
    ledger: &mut dyn Ledger,
    requests: Vec<(ShardId, StateRequest)>,
) -> Vec<(ShardId, StateReply)> {
    // The transfers, in order; reads make none.
    let mut ops = Vec::with_capacity(requests.len());
    let makes: Vec<bool> = requests
        .iter()
        .map(|(_, r)| transfer(r).map(|op| ops.push(op)).is_some())
        .collect();
    let outcomes = ledger.apply_batch(&ops).map_err(|e| e.to_string());
    let mut next_op = 0;
    requests
        .into_iter()
        .zip(makes)
        .map(|((from, request), makes)| {
            let outcome = if makes {
                next_op += 1;
                match &outcomes {
                    Ok(outcomes) => Ok(outcomes[next_op - 1].clone()),
                    Err(error) => Err(error.clone()),
                }
            } else {
                // Unused: a read answers from the ledger itself.
                Err(String::new())
            };
            let reply = match request {
                StateRequest::Gift(request) => StateReply::Gift(Box::new(GiftDone {
                    request: *request,
                    outcome,
                })),
                StateRequest::Api(api) => {
                    let (status, json) = api::answer(ledger, &api.call, outcome);
                    StateReply::Api(Box::new(ApiDone {
                        conn: api.conn,
                        status,
                        json,
                    }))
                }
            };
            (from, reply)
        })
        .collect()
}

/// The ledger transfer a request asks for, if it asks for one.
fn transfer(request: &StateRequest) -> Option<Op> {
    match request {
        StateRequest::Gift(gift) => Some(Op::Gift {
            user: gift.user.to_string(),
            room: gift.room.as_str().to_string(),
            owner: gift.room.as_str().to_string(),
            gift_id: gift.gift_id,
            count: gift.count,
            value: gift.value,
            key: gift.key.to_string(),
            time_ms: gift.time_ms,
        }),
        StateRequest::Api(api) => match &api.call {
            ApiCall::Credit { user, amount, key } => Some(Op::Credit {
                user: user.clone(),
                amount: *amount,
                key: key.clone(),
            }),
            _ => None,
        },
    }
}

/// The ledger thread: batches, writes, answers, until the runtime drains.
pub fn run_ledger(
    mut endpoint: WorkerEndpoint<ShardMsg>,
    mut ledger: Box<dyn Ledger + Send>,
    counters: std::sync::Arc<StateCounters>,
) {
    use crate::common::counters::bump;
    let mut last_failure_log: Option<Instant> = None;
    loop {
        let mut batch = Vec::new();
        let mut draining = false;
        endpoint.receive(BATCH_MAX, |message| match message {
            WorkerInbox::Msg(from, ShardMsg::State(request)) => batch.push((from, request)),
            WorkerInbox::Msg(from, _) => {
                debug_assert!(false, "only state requests go to the ledger");
                log::error!("ledger: a message not meant for it from thread {}", from.0);
            }
            WorkerInbox::Drain => draining = true,
        });
        let received = batch.len();
        if received > 0 {
            let replies = answer(ledger.as_mut(), batch);
            let failed = replies.iter().any(|(_, reply)| match reply {
                StateReply::Gift(done) => done.outcome.is_err(),
                StateReply::Api(done) => done.status == 503,
            });
            bump(&counters.ledger_batches, 1);
            bump(&counters.ledger_requests, received as u64);
            if failed {
                bump(&counters.ledger_failures, 1);
            }
            if failed && last_failure_log.is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY) {
                last_failure_log = Some(Instant::now());
                log::error!(
                    "ledger: a write failed; {received} request(s) refused, none \
                     acknowledged (gifts answer store_unavailable)"
                );
            }
            for (to, reply) in replies {
                endpoint.send(to, ShardMsg::StateReply(reply));
            }
            endpoint.flush();
        }
        if draining {
            // What arrived before the drain was answered above.
            return;
        }
        if received == 0 {
            endpoint.wait(if endpoint.overflow_len() > 0 { 1 } else { 100 });
        }
    }
}
