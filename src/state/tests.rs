//! The admin API and the ledger on the harness: credits, wallets, a gift paid from a funded
//! wallet, the room's gift log and leaderboard, and the refusals.

use crate::common::auth::{Audience, Claims, Role, TokenKey};
use crate::shard::testing::{self, member, request_with_ledger, Got};
use shardcast_engine::testing::WALL_ORIGIN_MS;
use shardcast_engine::ShardId;
use shardcast_ledger::MemoryLedger;

fn admin_token() -> String {
    let claims = Claims {
        user: "payments".into(),
        room: "*".into(),
        role: Role::Admin,
        expires_unix_s: WALL_ORIGIN_MS / 1000 + 3600,
        audience: Audience::Admin,
    };
    TokenKey::new(testing::SECRET.as_bytes()).mint(&claims)
}

fn credit(user: &str, body: &str, token: &str) -> String {
    format!(
        "POST /api/v1/wallets/{user}/credit HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \
         {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn get(target: &str, token: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n")
}

#[test]
fn credits_are_idempotent_and_fund_gifts_that_land_in_the_room_log() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let mut ledger = MemoryLedger::new(50);
    let admin = admin_token();
    let body = r#"{"amount": 500, "idempotency_key": "pay-1"}"#;
    for (shard, duplicate) in [(ShardId(0), false), (ShardId(1), true)] {
        let (status, response) =
            request_with_ledger(&mut t, shard, &credit("fan", body, &admin), &mut ledger);
        assert_eq!(status, 200, "{response}");
        assert!(
            response.contains(&format!(
                r#""balance":500,"duplicate":{duplicate},"entry":1,"user":"fan""#
            )),
            "{response}"
        );
    }
    let mut fan = member(&mut t, 0, "room1", "fan");
    fan.received(&mut t);
    fan.gift(&mut t, 2, "g-1");
    t.advance(1);
    testing::serve_ledger(&mut t, &mut ledger);
    t.advance(config.danmaku.batch_ms);
    assert!(fan.received(&mut t).contains(&Got::GiftAck {
        key: "g-1".into(),
        seq: 1,
        entry: 2,
        balance: 400
    }));
    let wallet = get("/api/v1/wallets/fan", &admin);
    let (status, response) = request_with_ledger(&mut t, ShardId(1), &wallet, &mut ledger);
    assert_eq!(status, 200);
    assert!(
        response.contains(r#"{"balance":400,"user":"fan"}"#),
        "{response}"
    );
    let log = get("/api/v1/rooms/room1/gifts?after=0", &admin);
    let (_, response) = request_with_ledger(&mut t, ShardId(0), &log, &mut ledger);
    assert!(response.contains(r#""entry":2,"gift_id":2"#), "{response}");
    assert!(response.contains(r#""next_after":2"#), "{response}");
    let board = get("/api/v1/rooms/room1/leaderboard", &admin);
    let (_, response) = request_with_ledger(&mut t, ShardId(0), &board, &mut ledger);
    assert!(
        response.contains(r#""top":[{"user":"fan","value":100}]"#),
        "{response}"
    );
}

#[test]
fn the_admin_api_refuses_other_tokens_bad_bodies_and_wrong_methods() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let mut ledger = MemoryLedger::new(50);
    let chat = testing::token("fan", "*", Role::Admin);
    let body = r#"{"amount": 5, "idempotency_key": "k"}"#;
    let cases = [
        (credit("fan", body, "nonsense"), 403),
        (credit("fan", body, &chat), 403),
        (credit("fan", r#"{"amount": -1}"#, &admin_token()), 400),
        (
            credit(
                "fan",
                r#"{"amount": 0, "idempotency_key": "k"}"#,
                &admin_token(),
            ),
            400,
        ),
        (get("/api/v1/wallets/fan/credit", &admin_token()), 405),
        (get("/api/v1/rooms/r/nothing", &admin_token()), 404),
        (
            "GET /api/v1/wallets/fan HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
            401,
        ),
    ];
    for (request, expected) in cases {
        let (status, response) = request_with_ledger(&mut t, ShardId(0), &request, &mut ledger);
        assert_eq!(status, expected, "{request}\n{response}");
        assert!(response.contains("\"cause\""), "{response}");
    }
    let audit = shardcast_ledger::Ledger::audit(&ledger).unwrap();
    assert_eq!(audit.credited, 0, "nothing refused was credited");
}
