//! The router on the engine's harness: who owns a connection as it changes hands, what a
//! drain does to each kind, and messages that reach the wrong thread.

use super::router::ConnKind;
use super::testing::{self, masked_frame, token, Got, Viewer, HTTP, RTMP};
use crate::common::auth::Role;
use shardcast_engine::{CloseReason, ShardId};
use std::sync::atomic::Ordering::Relaxed;

const S: ShardId = ShardId(0);

#[test]
fn a_connection_is_http_then_websocket_after_the_upgrade_then_free() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let viewer = Viewer::connect(&mut t, S);
    assert_eq!(t.service(S).kind(viewer.conn.slot()), ConnKind::WebSocket);
    let rtmp = t.connect(S, RTMP).unwrap();
    assert_eq!(t.service(S).kind(rtmp.slot()), ConnKind::Rtmp);
    let http = t.connect(S, HTTP).unwrap();
    assert_eq!(t.service(S).kind(http.slot()), ConnKind::Http);
    t.reset(S, viewer.conn, 104);
    assert_eq!(t.service(S).kind(viewer.conn.slot()), ConnKind::Free);
    assert_eq!(
        t.timers_armed(S),
        2,
        "the HTTP and RTMP timers; the viewer's went with it"
    );
}

#[test]
fn frames_sent_with_the_upgrade_request_reach_danmaku() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let conn = t.connect(S, HTTP).unwrap();
    let mut request =
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Protocol: shardcast.v1\r\n\r\n"
            .to_vec();
    let hello = shardcast_wire::ClientEncoder::new()
        .hello("lobby", &token("eve", "lobby", Role::Viewer), 0, "test")
        .to_vec();
    request.extend(masked_frame(0x2, &hello));
    t.write(S, conn, &request);
    let bytes = t.read(S, conn);
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(bytes.starts_with(b"HTTP/1.1 101"));
    let welcome = shardcast_wire::decode_server(&bytes[head_end + 2..], &Default::default());
    assert!(
        matches!(welcome, Ok(shardcast_wire::ServerMsg::Welcome(w)) if w.user == "eve"),
        "{welcome:?}"
    );
}

#[test]
fn a_drain_says_going_away_to_viewers_and_closes_publishers() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let mut viewer = Viewer::connect(&mut t, S);
    viewer.hello(&mut t, "lobby", &token("eve", "lobby", Role::Viewer), 0);
    viewer.received(&mut t);
    let rtmp = t.connect(S, RTMP).unwrap();
    t.drain();
    assert_eq!(viewer.received(&mut t), [Got::Close(Some(1001))]);
    assert_eq!(t.closed(S, rtmp), Some(CloseReason::Local));
    t.shutdown(S, viewer.conn);
    assert!(t.drain_done(S));
}

#[test]
fn a_message_meant_for_a_worker_is_counted_not_obeyed() {
    let config = testing::config("");
    let mut t = testing::shards(2, &config, 0);
    let msg = crate::transcode::msg::TranscodeMsg::End {
        stream: "x".into(),
        epoch: 0,
    };
    t.inject(ShardId(0), ShardId(1), msg.into());
    let errors = &t.service(ShardId(1)).media().counters().mesh_errors;
    assert_eq!(errors.load(Relaxed), 1);
}

#[test]
fn one_address_gets_its_limit_of_each_kind_while_another_is_served() {
    use std::net::IpAddr;
    let config = testing::config(
        "[http]\nmax_connections_per_address = 10\n[ws]\nmax_connections_per_address = 3\n\
         [rtmp]\nmax_connections_per_address = 2\n",
    );
    let mut t = testing::shards(1, &config, 0);
    let attacker: IpAddr = "10.0.0.1".parse().unwrap();
    let honest: IpAddr = "10.0.0.2".parse().unwrap();
    // HTTP: ten held, the rest answered 503 and closed.
    let held: Vec<_> = (0..15)
        .map(|_| t.connect_from(S, testing::HTTP, attacker).unwrap())
        .collect();
    let refused = held
        .iter()
        .filter(|&&conn| t.read(S, conn).starts_with(b"HTTP/1.1 503"))
        .count();
    assert_eq!(refused, 5);
    let conn = t.connect_from(S, testing::HTTP, honest).unwrap();
    t.write(S, conn, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(t.read(S, conn).starts_with(b"HTTP/1.1 200"));
    // Closing frees the places.
    for conn in held {
        t.reset(S, conn, 104);
    }
    let conn = t.connect_from(S, testing::HTTP, attacker).unwrap();
    t.write(S, conn, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(t.read(S, conn).starts_with(b"HTTP/1.1 200"));
    // WebSockets: three upgrades held, the fourth closed with 1013.
    let upgrade = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Protocol: shardcast.v1\r\n\r\n";
    let mut codes = Vec::new();
    for _ in 0..4 {
        let conn = t.connect_from(S, testing::HTTP, attacker).unwrap();
        t.write(S, conn, upgrade.as_bytes());
        let bytes = t.read(S, conn);
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        codes.push(bytes.get(end..end + 2) == Some(&[0x88, 0x28][..]));
    }
    assert_eq!(
        codes,
        [false, false, false, true],
        "the fourth gets a close frame"
    );
    // RTMP: two held, the third closed at once.
    let rtmp: Vec<_> = (0..3)
        .map(|_| t.connect_from(S, testing::RTMP, attacker).unwrap())
        .collect();
    let closed: Vec<bool> = rtmp.iter().map(|&c| t.closed(S, c).is_some()).collect();
    assert_eq!(closed, [false, false, true]);
    let counters = t.service(S).media().counters();
    assert_eq!(counters.rtmp_refused.load(Relaxed), 1);
}
