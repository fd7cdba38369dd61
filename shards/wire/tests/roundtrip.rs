//! Every message type through its encoder and back through its decoder.

mod common;

use common::{chat_events, client_samples, events, WELCOME};
use shardcast_wire::{
    cause, decode_client, decode_server, ChatMode, ClientEncoder, ClientMsg, Encoder, EventView,
    ServerMsg, VerifyLimits, WireError, SUBPROTOCOL,
};

fn server(buf: &[u8]) -> ServerMsg<'_> {
    decode_server(buf, &VerifyLimits::server()).expect("server message decodes")
}

fn events_of<'a>(msg: &ServerMsg<'a>) -> Vec<EventView<'a>> {
    match msg {
        ServerMsg::Batch { events, .. } | ServerMsg::HistoryReply { events, .. } => {
            events.iter().collect()
        }
        other => panic!("not a message with events: {other:?}"),
    }
}

#[test]
fn subprotocol_is_v1() {
    assert_eq!(SUBPROTOCOL, "shardcast.v1");
}

#[test]
fn client_messages_round_trip_through_encode() {
    let mut encoder = ClientEncoder::new();
    for msg in client_samples() {
        let buf = encoder.encode(&msg).to_vec();
        assert!(buf.len() <= VerifyLimits::client().max_bytes);
        assert_eq!(
            decode_client(&buf, &VerifyLimits::client()),
            Ok(msg),
            "{msg:?}"
        );
    }
}

#[test]
fn client_methods_match_their_messages() {
    let limits = VerifyLimits::client();
    let mut e = ClientEncoder::default();
    assert_eq!(
        decode_client(e.hello("r", "tok", 9, "v1"), &limits),
        Ok(ClientMsg::Hello {
            room: "r",
            token: "tok",
            last_seq: 9,
            client_version: "v1",
            epoch: ""
        })
    );
    assert_eq!(
        decode_client(e.hello_in_epoch("r", "tok", 9, "ep", "v1"), &limits),
        Ok(ClientMsg::Hello {
            room: "r",
            token: "tok",
            last_seq: 9,
            client_version: "v1",
            epoch: "ep"
        })
    );
    assert_eq!(
        decode_client(e.chat("hi", 0x123456, ChatMode::Bottom), &limits),
        Ok(ClientMsg::Chat {
            text: "hi",
            color: 0x123456,
            mode: ChatMode::Bottom
        })
    );
    assert_eq!(
        decode_client(e.like(3), &limits),
        Ok(ClientMsg::Like { count: 3 })
    );
    assert_eq!(
        decode_client(e.gift(1, 2, "key"), &limits),
        Ok(ClientMsg::Gift {
            gift_id: 1,
            count: 2,
            idempotency_key: "key"
        })
    );
    assert_eq!(
        decode_client(e.heartbeat(77), &limits),
        Ok(ClientMsg::Heartbeat { client_time_ms: 77 })
    );
    assert_eq!(
        decode_client(e.history(5, 6), &limits),
        Ok(ClientMsg::History {
            from_seq: 5,
            limit: 6
        })
    );
    assert_eq!(
        decode_client(e.kick_user("u", "why"), &limits),
        Ok(ClientMsg::KickUser {
            user: "u",
            reason: "why"
        })
    );
}

#[test]
fn empty_optional_strings_are_left_out() {
    let mut e = ClientEncoder::new();
    let with = e.hello("room", "token", 0, "version").len();
    let without = e.hello("room", "", 0, "").len();
    assert!(without + 16 <= with, "{without} vs {with}");
}

#[test]
fn welcome_round_trips() {
    let mut e = Encoder::new();
    assert_eq!(server(e.welcome(&WELCOME)), ServerMsg::Welcome(WELCOME));
    let anonymous = shardcast_wire::WelcomeView {
        user: "",
        epoch: "",
        ..WELCOME
    };
    assert_eq!(server(e.welcome(&anonymous)), ServerMsg::Welcome(anonymous));
}

#[test]
fn batch_round_trips_every_event_kind() {
    let mut e = Encoder::new();
    let buf = e.batch(42, events()).to_vec();
    let msg = server(&buf);
    let ServerMsg::Batch { first_seq, events } = msg else {
        panic!("{msg:?}");
    };
    assert_eq!(first_seq, 42);
    assert_eq!(events.len(), 5);
    assert!(!events.is_empty());
    assert_eq!(events.get(0), Some(common::events()[0]));
    assert_eq!(events.get(5), None);
    assert_eq!(events_of(&msg), common::events());
    assert_eq!(events.iter().len(), 5);
}

#[test]
fn empty_batch_round_trips() {
    let mut e = Encoder::new();
    let msg = server(e.batch(7, []));
    let ServerMsg::Batch { first_seq, events } = msg else {
        panic!("{msg:?}");
    };
    assert_eq!((first_seq, events.len()), (7, 0));
    assert!(events.is_empty());
}

#[test]
fn history_reply_round_trips() {
    let mut e = Encoder::new();
    for more in [false, true] {
        let msg = server(e.history_reply(42, events(), more));
        let ServerMsg::HistoryReply {
            first_seq,
            more: got_more,
            ..
        } = msg
        else {
            panic!("{msg:?}");
        };
        assert_eq!((first_seq, got_more), (42, more));
        assert_eq!(events_of(&msg), common::events());
    }
}

#[test]
fn small_server_messages_round_trip() {
    let mut e = Encoder::new();
    assert_eq!(
        server(e.room_stats(1, 2, u64::MAX)),
        ServerMsg::RoomStats {
            online: 1,
            likes: 2,
            heat: u64::MAX
        }
    );
    assert_eq!(
        server(e.resync(500, "3f2a9c0e11d4b7a5")),
        ServerMsg::Resync {
            seq: 500,
            epoch: "3f2a9c0e11d4b7a5"
        }
    );
    assert_eq!(
        server(e.resync(7, "")),
        ServerMsg::Resync { seq: 7, epoch: "" }
    );
    assert_eq!(
        server(e.pong(10, 20)),
        ServerMsg::Pong {
            client_time_ms: 10,
            server_time_ms: 20
        }
    );
    assert_eq!(
        server(e.error(429, "slow down")),
        ServerMsg::Error {
            code: 429,
            message: "slow down",
            cause: ""
        }
    );
    assert_eq!(
        server(e.error_with_cause(402, cause::INSUFFICIENT_BALANCE, "balance 3 < 10")),
        ServerMsg::Error {
            code: 402,
            message: "balance 3 < 10",
            cause: "insufficient_balance"
        }
    );
    assert_eq!(
        server(e.error(400, "")),
        ServerMsg::Error {
            code: 400,
            message: "",
            cause: ""
        }
    );
    assert_eq!(server(e.kick("bye")), ServerMsg::Kick { reason: "bye" });
    assert_eq!(
        server(e.gift_ack("k-1", 44, 9, u64::MAX)),
        ServerMsg::GiftAck {
            idempotency_key: "k-1",
            seq: 44,
            entry: 9,
            balance: u64::MAX
        }
    );
}

#[test]
fn decoded_server_messages_re_encode_equal() {
    let mut e = Encoder::new();
    let mut again = Encoder::new();
    let samples: Vec<Vec<u8>> = vec![
        e.welcome(&WELCOME).to_vec(),
        e.batch(42, events()).to_vec(),
        e.history_reply(42, events(), true).to_vec(),
        e.room_stats(3, 4, 5).to_vec(),
        e.resync(6, "e").to_vec(),
        e.pong(7, 8).to_vec(),
        e.error(403, "no").to_vec(),
        e.kick("out").to_vec(),
        e.gift_ack("k", 9, 10, 11).to_vec(),
        e.error_with_cause(402, "insufficient_balance", "short")
            .to_vec(),
    ];
    for buf in &samples {
        let msg = server(buf);
        let re = again.encode(&msg);
        assert_eq!(re, &buf[..], "{msg:?}");
        assert_eq!(server(re), msg);
    }
}

#[test]
fn encoder_reuse_gives_independent_results() {
    let mut e = Encoder::with_capacity(16, 1);
    let texts_a: Vec<String> = (0..50).map(|i| format!("first batch {i}")).collect();
    let texts_b: Vec<String> = (0..3).map(|i| format!("second {i}")).collect();

    let a1 = e.batch(1, chat_events(1, &texts_a)).to_vec();
    let b = e.batch(100, chat_events(100, &texts_b)).to_vec();
    let small = e.resync(3, "e").to_vec();
    let a2 = e.batch(1, chat_events(1, &texts_a)).to_vec();
    assert_eq!(a1, a2, "same input, same bytes, whatever came between");

    let ServerMsg::Batch { first_seq, events } = server(&b) else {
        panic!("not a batch");
    };
    assert_eq!(first_seq, 100);
    assert_eq!(
        events.iter().collect::<Vec<_>>(),
        chat_events(100, &texts_b)
    );
    assert_eq!(server(&small), ServerMsg::Resync { seq: 3, epoch: "e" });
    let ServerMsg::Batch { events, .. } = server(&a1) else {
        panic!("not a batch");
    };
    assert_eq!(events.iter().collect::<Vec<_>>(), chat_events(1, &texts_a));

    let mut c = ClientEncoder::new();
    let chat = c.chat("one", 1, ChatMode::Top).to_vec();
    let like = c.like(2).to_vec();
    assert_eq!(
        decode_client(&chat, &VerifyLimits::client()),
        Ok(ClientMsg::Chat {
            text: "one",
            color: 1,
            mode: ChatMode::Top
        })
    );
    assert_eq!(
        decode_client(&like, &VerifyLimits::client()),
        Ok(ClientMsg::Like { count: 2 })
    );
}

#[test]
fn big_batch_fits_server_limits_not_client_limits() {
    let texts: Vec<String> = (0..4000)
        .map(|i| format!("message number {i} with some text in it"))
        .collect();
    let mut e = Encoder::new();
    let buf = e.batch(1, chat_events(1, &texts));
    assert!(
        buf.len() < VerifyLimits::server().max_bytes,
        "{}",
        buf.len()
    );
    let ServerMsg::Batch { events, .. } = server(buf) else {
        panic!("not a batch");
    };
    assert_eq!(events.len(), 4000);
    assert_eq!(events.get(3999), Some(chat_events(1, &texts)[3999]));
    assert!(matches!(
        decode_server(buf, &VerifyLimits::client()),
        Err(WireError::TooLarge { limit: 4096, .. })
    ));
}

#[test]
#[should_panic(expected = "consecutive")]
#[cfg(debug_assertions)]
fn batch_asserts_consecutive_events_in_debug_builds() {
    let mut events = events();
    events[1].seq = 99;
    Encoder::new().batch(42, events);
}
