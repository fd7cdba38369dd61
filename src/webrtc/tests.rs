//! Scenarios of WHEP on whole shards (the engine's harness binds no UDP socket, so sessions
//! are made in the end-to-end tests; the routing of a session's resource between shards is
//! tested here).

use crate::shard::testing::{self, status_of, HTTP};
use shardcast_engine::ShardId;

fn request(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
    shard: ShardId,
    text: &str,
) -> String {
    let conn = t.connect(shard, HTTP).expect("a free slot");
    t.write(shard, conn, text.as_bytes());
    t.settle();
    String::from_utf8(t.read(shard, conn)).unwrap()
}

#[test]
fn a_delete_goes_to_the_shard_that_holds_the_session_and_back() {
    let mut t = testing::shards(
        2,
        &testing::config("[webrtc]\nudp_listen = \"127.0.0.1:0\"\n"),
        0,
    );
    // Asked on shard 0 for a session of shard 1: shard 1 answers through shard 0.
    let answer = request(
        &mut t,
        ShardId(0),
        "DELETE /whep/session/1-00ff HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 404, "{answer}");
    let kinds = testing::in_flight_kinds(&t);
    assert!(kinds.is_empty(), "the round trip is over: {kinds:?}");
    // A shard that does not exist, and garbage: 404 at once.
    for id in ["7-00ff", "x", "-", ""] {
        let text = format!("DELETE /whep/session/{id} HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(status_of(&request(&mut t, ShardId(1), &text)), 404, "{id}");
    }
    // An offer for a stream that is not live here: 404.
    let offer = "v=0\r\n";
    let text = format!(
        "POST /whep/live/s HTTP/1.1\r\nHost: t\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    let answer = request(&mut t, ShardId(0), &text);
    assert_eq!(status_of(&answer), 404, "no live stream s: {answer}");
}
