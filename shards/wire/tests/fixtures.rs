//! Cross-checks with the TypeScript client (`ts/test/roundtrip.mjs`) through committed
//! fixtures in `tests/fixtures/`:
//!
//! - `server/*.bin` are written here, by the Rust encoder, and decoded by the TypeScript test.
//!   With `SHARDCAST_WRITE_FIXTURES=1` this test rewrites them; otherwise it checks that the
//!   encoder still produces exactly the committed bytes.
//! - `client/*.bin` are written by the TypeScript encoders (the same variable there) and
//!   decoded here, each checked against the values the TypeScript test encoded.
//!
//! The values on both sides must match; change them together.

use std::path::PathBuf;

use shardcast_wire::{
    decode_client, decode_server, ChatMode, ClientMsg, Encoder, EventBodyView, EventView, Role,
    ServerMsg, VerifyLimits, WelcomeView,
};

fn dir(side: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(side)
}

fn writing() -> bool {
    std::env::var_os("SHARDCAST_WRITE_FIXTURES").is_some_and(|v| v == "1")
}

const T: u64 = 1_700_000_000_000;

fn fixture_events() -> Vec<EventView<'static>> {
    vec![
        EventView {
            seq: 42,
            time_ms: T,
            body: EventBodyView::Chat {
                user: "bob",
                text: "hi 👋",
                color: 0xffffff,
                mode: ChatMode::Scroll,
            },
        },
        EventView {
            seq: 43,
            time_ms: T + 1,
            body: EventBodyView::Like {
                total: 1000,
                added: 5,
            },
        },
        EventView {
            seq: 44,
            time_ms: T + 2,
            body: EventBodyView::Gift {
                user: "carol",
                gift_id: 7,
                count: 3,
                value: 300,
            },
        },
        EventView {
            seq: 45,
            time_ms: T + 3,
            body: EventBodyView::System {
                text: "stream is live",
            },
        },
        EventView {
            seq: 46,
            time_ms: T + 4,
            body: EventBodyView::Chat {
                user: "",
                text: "弹幕 bottom",
                color: 0x00ff00,
                mode: ChatMode::Bottom,
            },
        },
    ]
}

/// The server messages the TypeScript test decodes, by fixture name.
fn server_fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let mut e = Encoder::new();
    let welcome = WelcomeView {
        user: "alice",
        room: "room-1",
        seq: 41,
        online: 1234,
        heartbeat_ms: 15_000,
        role: Role::Admin,
        epoch: "3f2a9c0e11d4b7a5",
    };
    let history: Vec<_> = fixture_events().into_iter().take(2).collect();
    vec![
        ("welcome", e.welcome(&welcome).to_vec()),
        ("batch", e.batch(42, fixture_events()).to_vec()),
        ("batch_empty", e.batch(47, []).to_vec()),
        ("history_reply", e.history_reply(42, history, true).to_vec()),
        ("room_stats", e.room_stats(1234, 99_999, 5555).to_vec()),
        ("resync", e.resync(500, "3f2a9c0e11d4b7a5").to_vec()),
        ("pong", e.pong(T + 123, T + 200).to_vec()),
        ("error", e.error(429, "slow down").to_vec()),
        (
            "error_cause",
            e.error_with_cause(402, "insufficient_balance", "balance 3 < 10")
                .to_vec(),
        ),
        ("kick", e.kick("kicked by admin").to_vec()),
        ("gift_ack", e.gift_ack("k-123", 44, 7, 1_000_000).to_vec()),
    ]
}

/// What the TypeScript test encodes, by fixture name.
fn client_fixtures() -> Vec<(&'static str, ClientMsg<'static>)> {
    vec![
        (
            "hello",
            ClientMsg::Hello {
                room: "room-1",
                token: "tok.abc",
                last_seq: 42,
                client_version: "web/1.0",
                epoch: "3f2a9c0e11d4b7a5",
            },
        ),
        (
            "hello_anonymous",
            ClientMsg::Hello {
                room: "大厅",
                token: "",
                last_seq: 0,
                client_version: "",
                epoch: "",
            },
        ),
        (
            "chat",
            ClientMsg::Chat {
                text: "hello 世界 🎉",
                color: 0xff8800,
                mode: ChatMode::Top,
            },
        ),
        (
            "chat_default",
            ClientMsg::Chat {
                text: "plain",
                color: 0,
                mode: ChatMode::Scroll,
            },
        ),
        ("like", ClientMsg::Like { count: 5 }),
        ("like_default", ClientMsg::Like { count: 1 }),
        (
            "gift",
            ClientMsg::Gift {
                gift_id: 7,
                count: 3,
                idempotency_key: "k-123",
            },
        ),
        (
            "heartbeat",
            ClientMsg::Heartbeat {
                client_time_ms: T + 123,
            },
        ),
        (
            "history",
            ClientMsg::History {
                from_seq: 100,
                limit: 50,
            },
        ),
        (
            "kick_user",
            ClientMsg::KickUser {
                user: "spammer",
                reason: "spam",
            },
        ),
    ]
}

#[test]
fn server_fixtures_match_the_encoder() {
    let dir = dir("server");
    if writing() {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in server_fixtures() {
        // Every fixture is a valid message in the first place.
        decode_server(&bytes, &VerifyLimits::server()).unwrap();
        let path = dir.join(format!("{name}.bin"));
        if writing() {
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run SHARDCAST_WRITE_FIXTURES=1 cargo test -p shardcast-wire --test fixtures",
                path.display()
            )
        });
        assert_eq!(
            committed,
            bytes,
            "{} differs from the encoder's output; if the change is intended, rewrite the \
             fixtures with SHARDCAST_WRITE_FIXTURES=1 and rerun the TypeScript test",
            path.display()
        );
    }
}

#[test]
fn server_fixtures_decode_to_their_values() {
    let fixtures = server_fixtures();
    let get = |name: &str| fixtures.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let batch = get("batch");
    let ServerMsg::Batch { first_seq, events } =
        decode_server(&batch, &VerifyLimits::server()).unwrap()
    else {
        panic!("batch fixture is not a batch");
    };
    assert_eq!(first_seq, 42);
    assert_eq!(events.iter().collect::<Vec<_>>(), fixture_events());
}

#[test]
fn typescript_client_fixtures_decode() {
    let dir = dir("client");
    for (name, expected) in client_fixtures() {
        let path = dir.join(format!("{name}.bin"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run SHARDCAST_WRITE_FIXTURES=1 node shards/wire/ts/test/roundtrip.mjs",
                path.display()
            )
        });
        assert_eq!(
            decode_client(&bytes, &VerifyLimits::client()),
            Ok(expected),
            "{}",
            path.display()
        );
    }
}
