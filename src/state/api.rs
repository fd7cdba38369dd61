//! The admin API's answers, as JSON, from the ledger (on the ledger thread).

use super::msg::ApiCall;
use serde_json::json;
use shardcast_ledger::{wallet, Ledger, Outcome, Refusal};

/// Most rows one gift-log or leaderboard answer holds.
pub const ROWS_MAX: usize = 1000;

/// The status and JSON body for `call`. `transfer` is the outcome of its transfer when it
/// made one (a credit), from the batch it rode in.
pub fn answer(
    ledger: &dyn Ledger,
    call: &ApiCall,
    transfer: Result<Outcome, String>,
) -> (u16, String) {
    let (status, body) = match call {
        ApiCall::Credit { user, .. } => credited(user, transfer),
        ApiCall::Wallet { user } => match ledger.balance(&wallet(user)) {
            Ok(balance) => (200, json!({ "user": user, "balance": balance })),
            Err(error) => unavailable(&error.to_string()),
        },
        ApiCall::Gifts { room, after, limit } => {
            match ledger.gifts_after(room, *after, (*limit).min(ROWS_MAX)) {
                Ok(gifts) => {
                    let last = gifts.last().map_or(*after, |g| g.entry);
                    let rows: Vec<_> = gifts
                        .iter()
                        .map(|g| {
                            json!({
                                "entry": g.entry,
                                "user": g.user,
                                "gift_id": g.gift_id,
                                "count": g.count,
                                "value": g.value,
                                "time_ms": g.time_ms,
                            })
                        })
                        .collect();
                    (
                        200,
                        json!({ "room": room, "gifts": rows, "next_after": last }),
                    )
                }
                Err(error) => unavailable(&error.to_string()),
            }
        }
        ApiCall::Leaderboard { room, limit } => {
            match ledger.leaderboard(room, (*limit).min(ROWS_MAX)) {
                Ok(top) => {
                    let rows: Vec<_> = top
                        .iter()
                        .map(|(user, value)| json!({ "user": user, "value": value }))
                        .collect();
                    (200, json!({ "room": room, "top": rows }))
                }
                Err(error) => unavailable(&error.to_string()),
            }
        }
    };
    let mut text = body.to_string();
    text.push('\n');
    (status, text)
}

fn credited(user: &str, transfer: Result<Outcome, String>) -> (u16, serde_json::Value) {
    match transfer {
        Ok(Outcome::Done { entry, balance }) => (
            200,
            json!({ "user": user, "entry": entry, "balance": balance, "duplicate": false }),
        ),
        Ok(Outcome::Duplicate(first)) => match *first {
            Outcome::Done { entry, balance } => (
                200,
                json!({ "user": user, "entry": entry, "balance": balance, "duplicate": true }),
            ),
            _ => unavailable("a duplicate without its first answer"),
        },
        Ok(Outcome::Refused(refusal)) => {
            let cause = match refusal {
                Refusal::Overflow => "overflow",
                Refusal::Invalid(_) => "invalid",
                Refusal::InsufficientBalance { .. } => "insufficient_balance",
            };
            (400, json!({ "error": refusal.to_string(), "cause": cause }))
        }
        Err(error) => unavailable(&error),
    }
}

fn unavailable(error: &str) -> (u16, serde_json::Value) {
    (
        503,
        json!({ "error": format!("the ledger cannot answer: {error}"), "cause": "store_unavailable" }),
    )
}
