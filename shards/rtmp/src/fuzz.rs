//! The entry point a `cargo fuzz` target calls: [`fuzz_server_input`].

use std::sync::OnceLock;

use crate::{
    ClientConfig, ClientSession, Event, ServerSession, SessionConfig, StatusLevel,
    HANDSHAKE_PACKET_BYTES, RTMP_VERSION, TRANSMIT_QUEUE_FLOOR,
};

/// Small caps, so that short inputs reach every limit.
pub(crate) const FUZZ_CONFIG: SessionConfig = SessionConfig {
    handshake_timeout_ms: 1_000,
    chunk_size_max: 4096,
    chunk_size_out: 128,
    message_max_bytes: 4096,
    command_max_bytes: 1024,
    chunk_streams_max: 8,
    partial_max_bytes: 8192,
    partial_max_bytes_before_publish: 2048,
    amf_depth_max: 8,
    amf_values_max: 128,
    streams_max: 2,
    window_ack_size_bytes: 4096,
    peer_bandwidth_bytes: 4096,
    transmit_queue_max_bytes: TRANSMIT_QUEUE_FLOOR,
};

/// Feeds `data` to fresh server sessions three ways: as the first bytes of a connection, after
/// a valid handshake, and after a valid handshake, `connect`, `createStream` and an accepted
/// `publish`. The input is cut into pieces whose sizes derive from the input itself, so a
/// given input always runs the same way.
///
/// Checks, by panicking (which is what a fuzzer looks for): the session never panics, never
/// holds more than its caps allow (the smaller partial cap until a publish is accepted),
/// returns no error once finished, and reports nothing once failed.
pub fn fuzz_server_input(data: &[u8]) {
    run(&[], data);
    let mut handshake = vec![RTMP_VERSION];
    handshake.resize(1 + 2 * HANDSHAKE_PACKET_BYTES, 0);
    run(&handshake, data);
    run(published_prefix(), data);
}

fn run(prefix: &[u8], data: &[u8]) {
    let mut session = ServerSession::new(FUZZ_CONFIG, 0);
    let mut accepted = false;
    feed(&mut session, &mut accepted, 0, prefix);
    let mut state = (data.len() as u64) << 32 | u64::from(data.first().copied().unwrap_or(0));
    state |= 1;
    let mut rest = data;
    let mut now_ms = 0;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = match state % 4 {
            0 => 1,
            1 => (state >> 8) as usize % 16,
            _ => (state >> 8) as usize % (rest.len() + 1),
        };
        let (front, back) = rest.split_at(take.min(rest.len()));
        rest = back;
        now_ms += 10;
        feed(&mut session, &mut accepted, now_ms, front);
    }
    let finished = session.is_finished();
    let result = session.handle_timeout(u64::MAX);
    assert!(
        !finished || result.is_ok(),
        "a finished session has no timeout"
    );
}

/// Feeds `bytes` and answers publish requests; `accepted` records whether a publish on the
/// session was ever accepted, which is what raises its partial cap.
fn feed(session: &mut ServerSession, accepted: &mut bool, now_ms: u64, bytes: &[u8]) {
    let finished = session.is_finished();
    let result = session.handle_input(now_ms, bytes);
    if finished {
        assert_eq!(result, Ok(()), "a finished session ignores input");
        assert!(
            session.poll_event().is_none(),
            "a finished session reports nothing"
        );
    }
    while session.poll_transmit().is_some() {}
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    for (i, event) in events.iter().enumerate() {
        if let Event::PublishRequested {
            stream_id, name, ..
        } = event
        {
            let stream_id = *stream_id;
            // Exercise every answer: most are accepted, some refused.
            let answer = if name.len() % 3 == 2 {
                session.reject_publish(stream_id, "NetStream.Publish.BadName", "bad")
            } else {
                session.accept_publish(stream_id)
            };
            // The client may withdraw a publish in the same input (closeStream, deleteStream,
            // another publish): then a later event says so, and there is nothing to answer.
            let withdrawn = events[i + 1..].iter().any(|later| {
                matches!(later, Event::Unpublished { stream_id: s }
                    | Event::PublishRequested { stream_id: s, .. } if *s == stream_id)
            });
            assert!(
                answer.is_ok() || session.is_finished() || withdrawn,
                "{answer:?}"
            );
            *accepted |= answer.is_ok() && !session.is_finished();
            session.send_status(stream_id, StatusLevel::Status, "NetStream.Info", "hi");
        }
    }
    while session.poll_transmit().is_some() {}
    let cap = session.partial_max_bytes();
    assert!(
        cap == FUZZ_CONFIG.partial_max_bytes_before_publish
            || (cap == FUZZ_CONFIG.partial_max_bytes && *accepted),
        "partial cap {cap}"
    );
    assert!(
        session.buffered_bytes() <= cap + HANDSHAKE_PACKET_BYTES,
        "{} bytes buffered",
        session.buffered_bytes()
    );
}

/// What a client sends up to and including an accepted `publish`, recorded once from a client
/// and server paired in memory.
fn published_prefix() -> &'static [u8] {
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut config = ClientConfig::new("live", "key");
        config.chunk_size = 512;
        let mut client = ClientSession::new(config);
        let mut server = ServerSession::new(FUZZ_CONFIG, 0);
        let mut sent = Vec::new();
        while !client.is_publishing() {
            while let Some(bytes) = client.poll_transmit() {
                sent.extend_from_slice(&bytes);
                server.handle_input(0, &bytes).expect("a valid client");
            }
            while let Some(event) = server.poll_event() {
                if let Event::PublishRequested { stream_id, .. } = event {
                    server.accept_publish(stream_id).expect("pending");
                }
            }
            let mut answered = false;
            while let Some(bytes) = server.poll_transmit() {
                client.handle_input(&bytes).expect("a valid server");
                answered = true;
            }
            assert!(answered || client.is_publishing(), "the exchange stalled");
        }
        sent
    })
}
