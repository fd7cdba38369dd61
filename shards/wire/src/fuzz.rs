//! Entry points for fuzz targets (`cargo fuzz`), also run by this crate's own tests.
//!
//! Each decodes arbitrary bytes, reads every field of what it accepts, then re-encodes it and
//! checks that the encoding decodes to the same message. A panic here is a bug in this crate
//! (or in the flatbuffers verifier), never the input's fault.

use core::hint::black_box;

use crate::{
    decode_client, decode_server, ClientEncoder, ClientMsg, Encoder, EventBodyView, EventView,
    ServerMsg, VerifyLimits,
};

/// Decodes `data` as a client message with [`VerifyLimits::client`] and, when it is accepted,
/// touches every field and checks that it re-encodes to an equal message.
pub fn fuzz_decode_client(data: &[u8]) {
    let Ok(msg) = decode_client(data, &VerifyLimits::client()) else {
        return;
    };
    touch_client(&msg);
    let mut encoder = ClientEncoder::new();
    let again = encoder.encode(&msg);
    // A crafted input may share one string between two fields; the re-encoding writes it
    // twice, so it can be longer than the input. The server limits leave room for that.
    let decoded = decode_client(again, &VerifyLimits::server());
    assert_eq!(decoded, Ok(msg), "client message changed in a re-encode");
}

/// Decodes `data` as a server message with [`VerifyLimits::server`] and, when it is accepted,
/// touches every field and checks that it re-encodes to an equal message.
pub fn fuzz_decode_server(data: &[u8]) {
    let Ok(msg) = decode_server(data, &VerifyLimits::server()) else {
        return;
    };
    touch_server(&msg);
    if !consecutive(&msg) {
        // The encoder asserts (in debug builds) that it is given consecutive events, and the
        // decoder does not insist on it: such input is the server's bug, not a decoding one.
        return;
    }
    let mut encoder = Encoder::with_capacity(data.len(), 0);
    let again = encoder.encode(&msg);
    let generous = VerifyLimits {
        max_bytes: usize::MAX,
        max_apparent_size: 1 << 30,
        ..VerifyLimits::server()
    };
    assert_eq!(
        decode_server(again, &generous),
        Ok(msg),
        "server message changed in a re-encode"
    );
}

fn consecutive(msg: &ServerMsg<'_>) -> bool {
    match *msg {
        ServerMsg::Batch { first_seq, events }
        | ServerMsg::HistoryReply {
            first_seq, events, ..
        } => events
            .iter()
            .enumerate()
            .all(|(i, event)| event.seq == first_seq.wrapping_add(i as u64)),
        _ => true,
    }
}

fn touch_client(msg: &ClientMsg<'_>) {
    match *msg {
        ClientMsg::Hello {
            room,
            token,
            last_seq,
            client_version,
            epoch,
        } => {
            black_box((
                room.len(),
                token.len(),
                last_seq,
                client_version.len(),
                epoch.len(),
            ));
        }
        ClientMsg::Chat { text, color, mode } => {
            black_box((text.chars().count(), color, mode));
        }
        ClientMsg::Like { count } => {
            black_box(count);
        }
        ClientMsg::Gift {
            gift_id,
            count,
            idempotency_key,
        } => {
            black_box((gift_id, count, idempotency_key.len()));
        }
        ClientMsg::Heartbeat { client_time_ms } => {
            black_box(client_time_ms);
        }
        ClientMsg::History { from_seq, limit } => {
            black_box((from_seq, limit));
        }
        ClientMsg::KickUser { user, reason } => {
            black_box((user.len(), reason.len()));
        }
    }
}

fn touch_server(msg: &ServerMsg<'_>) {
    match *msg {
        ServerMsg::Welcome(welcome) => {
            black_box(welcome);
        }
        ServerMsg::Batch { first_seq, events } => {
            black_box(first_seq);
            events.iter().for_each(touch_event);
        }
        ServerMsg::HistoryReply {
            first_seq,
            events,
            more,
        } => {
            black_box((first_seq, more));
            events.iter().for_each(touch_event);
        }
        ServerMsg::RoomStats {
            online,
            likes,
            heat,
        } => {
            black_box((online, likes, heat));
        }
        ServerMsg::Resync { seq, epoch } => {
            black_box((seq, epoch));
        }
        ServerMsg::Pong {
            client_time_ms,
            server_time_ms,
        } => {
            black_box((client_time_ms, server_time_ms));
        }
        ServerMsg::Error {
            code,
            message,
            cause,
        } => {
            black_box((code, message.len(), cause.len()));
        }
        ServerMsg::Kick { reason } => {
            black_box(reason.len());
        }
        ServerMsg::GiftAck {
            idempotency_key,
            seq,
            entry,
            balance,
        } => {
            black_box((idempotency_key.len(), seq, entry, balance));
        }
    }
}

fn touch_event(event: EventView<'_>) {
    black_box((event.seq, event.time_ms));
    match event.body {
        EventBodyView::Chat {
            user,
            text,
            color,
            mode,
        } => {
            black_box((user.len(), text.chars().count(), color, mode));
        }
        EventBodyView::Like { total, added } => {
            black_box((total, added));
        }
        EventBodyView::Gift {
            user,
            gift_id,
            count,
            value,
        } => {
            black_box((user.len(), gift_id, count, value));
        }
        EventBodyView::System { text } => {
            black_box(text.len());
        }
    }
}
