//! What the decoders refuse, and that no input makes them panic.

mod common;

use common::{client_samples, events, XorShift, WELCOME};
use flatbuffers::{FlatBufferBuilder, InvalidFlatbuffer, WIPOffset};
use shardcast_wire::generated::shardcast::wire as fb;
use shardcast_wire::{
    decode_client, decode_server, fuzz_decode_client, fuzz_decode_server, ChatMode, ClientEncoder,
    Encoder, VerifyLimits, WireError, CLIENT_MAX_BYTES, SERVER_MAX_TABLES,
};

/// Every sample client message, encoded.
fn client_buffers() -> Vec<Vec<u8>> {
    let mut e = ClientEncoder::new();
    client_samples()
        .iter()
        .map(|m| e.encode(m).to_vec())
        .collect()
}

/// One of each server message, encoded.
fn server_buffers() -> Vec<Vec<u8>> {
    let mut e = Encoder::new();
    vec![
        e.welcome(&WELCOME).to_vec(),
        e.batch(42, events()).to_vec(),
        e.batch(1, []).to_vec(),
        e.history_reply(42, events(), true).to_vec(),
        e.room_stats(1, 2, 3).to_vec(),
        e.resync(4, "").to_vec(),
        e.pong(5, 6).to_vec(),
        e.error(429, "slow down").to_vec(),
        e.kick("bye").to_vec(),
        e.gift_ack("key", 7, 3, 100).to_vec(),
    ]
}

fn finish_client(
    fbb: &mut FlatBufferBuilder<'static>,
    body_type: fb::ClientBody,
    body: WIPOffset<flatbuffers::UnionWIPOffset>,
) -> Vec<u8> {
    let root = fb::ClientMessage::create(
        fbb,
        &fb::ClientMessageArgs {
            body_type,
            body: Some(body),
        },
    );
    fbb.finish_minimal(root);
    fbb.finished_data().to_vec()
}

fn finish_server(
    fbb: &mut FlatBufferBuilder<'static>,
    body_type: fb::ServerBody,
    body: WIPOffset<flatbuffers::UnionWIPOffset>,
) -> Vec<u8> {
    let root = fb::ServerMessage::create(
        fbb,
        &fb::ServerMessageArgs {
            body_type,
            body: Some(body),
        },
    );
    fbb.finish_minimal(root);
    fbb.finished_data().to_vec()
}

/// A batch whose events vector lists one event `copies` times: a few bytes per entry, but
/// every entry is verified again.
fn shared_event_batch(copies: usize) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let like = fb::LikeEvent::create(&mut fbb, &fb::LikeEventArgs { total: 1, added: 1 });
    let event = fb::Event::create(
        &mut fbb,
        &fb::EventArgs {
            seq: 1,
            time_ms: 1,
            body_type: fb::EventBody::LikeEvent,
            body: Some(like.as_union_value()),
        },
    );
    let list = fbb.create_vector(&vec![event; copies]);
    let batch = fb::Batch::create(
        &mut fbb,
        &fb::BatchArgs {
            first_seq: 1,
            events: Some(list),
        },
    );
    finish_server(&mut fbb, fb::ServerBody::Batch, batch.as_union_value())
}

fn invalid(result: Result<impl std::fmt::Debug, WireError>) -> InvalidFlatbuffer {
    match result {
        Err(WireError::Invalid(e)) => e,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn default_limits_are_the_client_limits() {
    assert_eq!(VerifyLimits::default(), VerifyLimits::client());
    let client = VerifyLimits::client();
    assert_eq!(
        (client.max_depth, client.max_tables, client.max_bytes),
        (8, 64, 4096)
    );
    let server = VerifyLimits::server();
    assert_eq!(server.max_bytes, 1 << 20);
}

#[test]
fn over_max_bytes_is_too_large() {
    let text = "x".repeat(CLIENT_MAX_BYTES);
    let mut e = ClientEncoder::new();
    let buf = e.chat(&text, 0, ChatMode::Scroll);
    assert_eq!(
        decode_client(buf, &VerifyLimits::client()),
        Err(WireError::TooLarge {
            limit: 4096,
            seen: buf.len()
        })
    );
    // The size is checked before anything is read: garbage gets the same answer.
    let garbage = vec![0xffu8; 10 << 20];
    assert_eq!(
        decode_server(&garbage, &VerifyLimits::server()),
        Err(WireError::TooLarge {
            limit: 1 << 20,
            seen: 10 << 20
        })
    );
    // Within the limit it decodes.
    let text = "y".repeat(CLIENT_MAX_BYTES - 64);
    assert!(decode_client(e.chat(&text, 0, ChatMode::Scroll), &VerifyLimits::client()).is_ok());
}

#[test]
fn nesting_over_max_depth_is_invalid() {
    let batch = Encoder::new().batch(42, events()).to_vec();
    let shallow = VerifyLimits {
        max_depth: 3,
        ..VerifyLimits::server()
    };
    assert_eq!(
        invalid(decode_server(&batch, &shallow)),
        InvalidFlatbuffer::DepthLimitReached
    );
    let exact = VerifyLimits {
        max_depth: 4,
        ..VerifyLimits::server()
    };
    assert!(decode_server(&batch, &exact).is_ok());

    let hello = ClientEncoder::new().hello("room", "", 0, "").to_vec();
    let flat = VerifyLimits {
        max_depth: 1,
        ..VerifyLimits::client()
    };
    assert_eq!(
        invalid(decode_client(&hello, &flat)),
        InvalidFlatbuffer::DepthLimitReached
    );
}

#[test]
fn tables_over_max_tables_are_invalid() {
    let batch = Encoder::new().batch(42, events()).to_vec();
    // 1 message + 1 batch + 5 events × 2 tables = 12.
    let few = VerifyLimits {
        max_tables: 11,
        ..VerifyLimits::server()
    };
    assert_eq!(
        invalid(decode_server(&batch, &few)),
        InvalidFlatbuffer::TooManyTables
    );
    let enough = VerifyLimits {
        max_tables: 12,
        ..VerifyLimits::server()
    };
    assert!(decode_server(&batch, &enough).is_ok());
}

#[test]
fn shared_tables_are_refused_by_the_default_server_limits() {
    // 140 000 references to one event: about 560 KB, under max_bytes, but 280 002 table
    // visits and several MB of apparent size.
    let buf = shared_event_batch(140_000);
    assert!(buf.len() < VerifyLimits::server().max_bytes);
    invalid(decode_server(&buf, &VerifyLimits::server()));

    // Each limit on its own.
    let tables_only = VerifyLimits {
        max_apparent_size: 1 << 30,
        ..VerifyLimits::server()
    };
    const { assert!(2 + 2 * 140_000 > SERVER_MAX_TABLES) };
    assert_eq!(
        invalid(decode_server(&buf, &tables_only)),
        InvalidFlatbuffer::TooManyTables
    );
    let apparent_only = VerifyLimits {
        max_tables: usize::MAX,
        ..VerifyLimits::server()
    };
    assert_eq!(
        invalid(decode_server(&buf, &apparent_only)),
        InvalidFlatbuffer::ApparentSizeTooLarge
    );
    // A modest amount of sharing is still a valid buffer.
    assert!(decode_server(&shared_event_batch(10), &VerifyLimits::server()).is_ok());
}

/// Every prefix is an error, except one that only drops the alignment padding after the last
/// string (the builder pads the end of the buffer to 4 bytes): that one reads the same.
#[test]
fn every_truncation_is_an_error() {
    for buf in client_buffers() {
        let whole = decode_client(&buf, &VerifyLimits::client()).unwrap();
        for len in 0..buf.len() {
            match decode_client(&buf[..len], &VerifyLimits::client()) {
                Err(_) => {}
                Ok(got) => {
                    assert!(buf[len..].iter().all(|&b| b == 0) && buf.len() - len < 4);
                    assert_eq!(got, whole);
                }
            }
            fuzz_decode_client(&buf[len..]);
        }
    }
    for buf in server_buffers() {
        let whole = decode_server(&buf, &VerifyLimits::server()).unwrap();
        for len in 0..buf.len() {
            match decode_server(&buf[..len], &VerifyLimits::server()) {
                Err(_) => {}
                Ok(got) => {
                    assert!(buf[len..].iter().all(|&b| b == 0) && buf.len() - len < 4);
                    assert_eq!(got, whole);
                }
            }
            fuzz_decode_server(&buf[len..]);
        }
    }
}

#[test]
fn none_or_unknown_body_is_unknown_body() {
    for body_type in [fb::ClientBody::NONE, fb::ClientBody(8), fb::ClientBody(255)] {
        let mut fbb = FlatBufferBuilder::new();
        // NONE is the default, so it is only written when defaults are forced.
        fbb.force_defaults(true);
        let body = fb::Heartbeat::create(&mut fbb, &fb::HeartbeatArgs { client_time_ms: 1 });
        let buf = finish_client(&mut fbb, body_type, body.as_union_value());
        assert_eq!(
            decode_client(&buf, &VerifyLimits::client()),
            Err(WireError::UnknownBody),
            "{body_type:?}"
        );
    }
    for body_type in [fb::ServerBody::NONE, fb::ServerBody(10)] {
        let mut fbb = FlatBufferBuilder::new();
        fbb.force_defaults(true);
        let body = fb::Resync::create(
            &mut fbb,
            &fb::ResyncArgs {
                seq: 1,
                epoch: None,
            },
        );
        let buf = finish_server(&mut fbb, body_type, body.as_union_value());
        assert_eq!(
            decode_server(&buf, &VerifyLimits::server()),
            Err(WireError::UnknownBody),
            "{body_type:?}"
        );
    }
}

#[test]
fn unknown_event_type_refuses_the_batch() {
    for body_type in [fb::EventBody::NONE, fb::EventBody(9)] {
        let mut fbb = FlatBufferBuilder::new();
        fbb.force_defaults(true);
        let like = fb::LikeEvent::create(&mut fbb, &fb::LikeEventArgs { total: 1, added: 1 });
        let event = fb::Event::create(
            &mut fbb,
            &fb::EventArgs {
                seq: 1,
                time_ms: 1,
                body_type,
                body: Some(like.as_union_value()),
            },
        );
        let list = fbb.create_vector(&[event]);
        let batch = fb::Batch::create(
            &mut fbb,
            &fb::BatchArgs {
                first_seq: 1,
                events: Some(list),
            },
        );
        let buf = finish_server(&mut fbb, fb::ServerBody::Batch, batch.as_union_value());
        assert_eq!(
            decode_server(&buf, &VerifyLimits::server()),
            Err(WireError::UnknownBody)
        );
    }
}

#[test]
fn missing_body_or_required_field_is_invalid() {
    // An empty table where a ClientMessage with its required body should be.
    let mut fbb = FlatBufferBuilder::new();
    let start = fbb.start_table();
    let root = fbb.end_table(start);
    fbb.finish_minimal(root);
    let e = invalid(decode_client(fbb.finished_data(), &VerifyLimits::client()));
    assert!(
        matches!(e, InvalidFlatbuffer::MissingRequiredField { .. }),
        "{e:?}"
    );

    // A Heartbeat with no fields labelled as a Hello: Hello.room is missing.
    let mut fbb = FlatBufferBuilder::new();
    let body = fb::Heartbeat::create(&mut fbb, &fb::HeartbeatArgs { client_time_ms: 0 });
    let buf = finish_client(&mut fbb, fb::ClientBody::Hello, body.as_union_value());
    let e = invalid(decode_client(&buf, &VerifyLimits::client()));
    assert!(
        matches!(e, InvalidFlatbuffer::MissingRequiredField { .. }),
        "{e:?}"
    );
}

#[test]
fn unknown_enum_values_are_refused() {
    let mut fbb = FlatBufferBuilder::new();
    let text = fbb.create_string("hi");
    let chat = fb::Chat::create(
        &mut fbb,
        &fb::ChatArgs {
            text: Some(text),
            color: 0,
            mode: fb::ChatMode(9),
        },
    );
    let buf = finish_client(&mut fbb, fb::ClientBody::Chat, chat.as_union_value());
    assert_eq!(
        decode_client(&buf, &VerifyLimits::client()),
        Err(WireError::UnknownEnum {
            field: "ChatMode",
            value: 9
        })
    );

    let mut fbb = FlatBufferBuilder::new();
    let welcome = fb::Welcome::create(
        &mut fbb,
        &fb::WelcomeArgs {
            role: fb::Role(7),
            ..Default::default()
        },
    );
    let buf = finish_server(&mut fbb, fb::ServerBody::Welcome, welcome.as_union_value());
    assert_eq!(
        decode_server(&buf, &VerifyLimits::server()),
        Err(WireError::UnknownEnum {
            field: "Role",
            value: 7
        })
    );
}

#[test]
fn errors_display_their_limits() {
    let e = WireError::TooLarge {
        limit: 4096,
        seen: 5000,
    };
    assert_eq!(
        e.to_string(),
        "message of 5000 bytes is over the 4096-byte limit"
    );
    assert!(WireError::UnknownBody.to_string().contains("shardcast.v1"));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift::new(0x5eed_0001);
    let mut buf = Vec::new();
    for _ in 0..30_000 {
        buf.clear();
        let len = match rng.below(10) {
            0 => rng.below(8),
            1..=7 => rng.below(256),
            _ => rng.below(5000),
        };
        buf.extend((0..len).map(|_| rng.next_u64() as u8));
        // Plausible roots: a small root offset makes the verifier go further.
        if len >= 4 && rng.below(2) == 0 {
            let root = (rng.below(len.min(64)) as u32 & !3).to_le_bytes();
            buf[..4].copy_from_slice(&root);
        }
        fuzz_decode_client(&buf);
        fuzz_decode_server(&buf);
    }
}

#[test]
fn mutated_valid_messages_never_panic() {
    let mut rng = XorShift::new(0x5eed_0002);
    let samples: Vec<(bool, Vec<u8>)> = client_buffers()
        .into_iter()
        .map(|b| (true, b))
        .chain(server_buffers().into_iter().map(|b| (false, b)))
        .collect();
    let mut accepted = 0;
    for round in 0..60_000 {
        let (client, sample) = &samples[round % samples.len()];
        let mut buf = sample.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(buf.len());
            match rng.below(3) {
                0 => buf[at] ^= 1 << rng.below(8),
                1 => buf[at] = rng.next_u64() as u8,
                _ => buf[at] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)],
            }
        }
        if *client {
            accepted += usize::from(decode_client(&buf, &VerifyLimits::client()).is_ok());
            fuzz_decode_client(&buf);
        } else {
            accepted += usize::from(decode_server(&buf, &VerifyLimits::server()).is_ok());
            fuzz_decode_server(&buf);
        }
    }
    // The loop must reach the accepting paths too, not only the refusals.
    assert!(accepted > 1000, "only {accepted} mutants accepted");
}
