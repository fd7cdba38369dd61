//! Deterministic fuzz loops: random bytes and mutated valid sessions never make the server
//! panic or hold more than its caps, and give the same events and error however they are
//! split.

use super::*;
use crate::fuzz::FUZZ_CONFIG;
use crate::{fuzz_server_input, Amf0Object};

/// Random byte soup, raw and after valid prefixes (what `fuzz_server_input` does).
#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for round in 0..2_000 {
        let len = match round % 4 {
            0 => rng.below(16),
            1 => rng.below(200),
            _ => rng.below(3000),
        };
        let mut data = rng.bytes(len);
        if round % 3 == 0 {
            // A valid C0 more often than chance would give.
            if let Some(first) = data.first_mut() {
                *first = 3;
            }
        }
        fuzz_server_input(&data);
    }
}

/// A valid publishing session for [`FUZZ_CONFIG`]: the bytes up to the accepted publish, and
/// the bytes after it (media, metadata, chunk size changes, pings, unpublishing).
fn valid_session(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let mut client = ClientConfig::new("live", "key");
    client.chunk_size = 512;
    client.interleave = rng.chance(2);
    let mut pair = Pair::new(FUZZ_CONFIG, client);
    pair.drive();
    assert!(pair.client.is_publishing());
    let prefix = pair.sent.clone();
    let mut ts = 0u32;
    for _ in 0..rng.below(12) {
        ts = ts.wrapping_add(match rng.below(10) {
            0 => 0x0100_0000,
            _ => rng.below(50) as u32,
        });
        let max = if rng.chance(4) { 4096 } else { 300 };
        let len = rng.below(max);
        let payload = rng.bytes(len);
        match rng.below(12) {
            0 => pair
                .client
                .set_chunk_size([1, 64, 128, 4096][rng.below(4)])
                .unwrap(),
            1 => pair
                .client
                .send_metadata(&Amf0Object::new().with("width", 640.0))
                .unwrap(),
            2 => pair.client.send_command(0, &call("_checkbw", 9.0, &[])),
            3..=6 => pair.client.send_audio(ts, &payload).unwrap(),
            _ => pair.client.send_video(ts, &payload).unwrap(),
        }
    }
    if rng.chance(3) {
        pair.client.unpublish();
    }
    pair.drive();
    let rest = pair.sent[prefix.len()..].to_vec();
    (prefix, rest)
}

/// Flips, overwrites, inserts, deletes, duplicates and truncates.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.extend(rng.bytes(8));
        }
        let at = rng.below(bytes.len());
        match rng.below(7) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = [0x00, 0x01, 0x3F, 0x7F, 0x80, 0xC0, 0xFF][rng.below(7)],
            2 => {
                let len = 1 + rng.below(16);
                let junk = rng.bytes(len);
                bytes.splice(at..at, junk);
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, copy);
            }
            5 => bytes.truncate(at),
            _ => {
                // A large length or timestamp field where a header may be.
                let end = (at + 3).min(bytes.len());
                bytes[at..end].fill(0xFF);
            }
        }
    }
}

/// What a server does with `rest` cut into `pieces` after a valid `prefix`: its events, and
/// the error if any.
fn drive(prefix: &[u8], pieces: &[&[u8]]) -> (Vec<Event>, Option<RtmpError>) {
    // The send queue cap is the one cap that depends on how input is split (answers pile up
    // within one call); lift it so the rest can be compared.
    let config = SessionConfig {
        transmit_queue_max_bytes: crate::PARTIAL_BYTES_CEILING,
        ..FUZZ_CONFIG
    };
    let mut server = ServerSession::new(config, 0);
    server.handle_input(0, prefix).expect("a valid prefix");
    while server.poll_event().is_some() {}
    server.accept_publish(1).expect("a pending publish");
    let mut events = Vec::new();
    let mut error = None;
    for piece in pieces {
        let finished = server.is_finished();
        let result = server.handle_input(0, piece);
        if finished {
            assert_eq!(result, Ok(()));
        }
        if let Err(e) = result {
            error = Some(e);
        }
        while let Some(event) = server.poll_event() {
            assert!(!finished, "a finished session reports nothing");
            events.push(event);
        }
        while server.poll_transmit().is_some() {}
        assert!(server.buffered_bytes() <= config.partial_max_bytes + HANDSHAKE_PACKET_BYTES);
    }
    (events, error)
}

/// Mutated valid sessions, whole and in random pieces: the same events and error, memory
/// within the caps, and no panic (also through `fuzz_server_input`).
#[test]
fn mutated_sessions_are_split_invariant() {
    let mut rng = Rng(0x5eed_f00d_0bad_cafe);
    let mut errors = 0;
    for round in 0..1_500 {
        let (prefix, mut rest) = valid_session(&mut rng);
        let unmutated = drive(&prefix, &[&rest]);
        assert_eq!(unmutated.1, None, "round {round}: a valid session");
        if round % 5 != 0 {
            mutate(&mut rng, &mut rest);
        }
        let whole = drive(&prefix, &[&rest]);
        let pieces = rng.pieces(&rest);
        assert_eq!(
            drive(&prefix, &pieces),
            whole,
            "round {round}: {} pieces",
            pieces.len()
        );
        errors += usize::from(whole.1.is_some());
        if round % 10 == 0 {
            let mut all = prefix.clone();
            all.extend_from_slice(&rest);
            fuzz_server_input(&all);
            fuzz_server_input(&rest);
        }
    }
    assert!(errors > 300, "mutations reach the error paths: {errors}");
}
