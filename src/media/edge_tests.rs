//! Scenarios of the edge's shard half on the engine's harness: the fetcher is played by the
//! test (its messages taken from and put on the mesh by hand).

use crate::edge::msg::{EdgeReply, EdgeRequest, ObjectHead};
use crate::shard::msg::ShardMsg;
use crate::shard::router::ShardService;
use crate::shard::testing::{self, status_of, HTTP};
use bytes::Bytes;
use shardcast_engine::testing::TestShards;
use shardcast_engine::{ConnId, ShardId};
use std::sync::Arc;

const S0: ShardId = ShardId(0);
const S1: ShardId = ShardId(1);

/// Two edge shards; `extra` TOML on top (its own `[edge]` replaces the two origins).
fn edge(extra: &str) -> TestShards<ShardService> {
    let config = if extra.contains("[edge]") {
        testing::config(extra)
    } else {
        testing::config(&format!(
            "[edge]\norigins = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n{extra}"
        ))
    };
    testing::shards(2, &config, 0)
}

/// The fetcher's place: the last worker endpoint (after the ledger and the recorder).
fn fetcher(t: &TestShards<ShardService>) -> ShardId {
    t.worker_id(2)
}

fn ask(t: &mut TestShards<ShardService>, shard: ShardId, target: &str) -> ConnId {
    let conn = t.connect(shard, HTTP).expect("a free slot");
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
    t.write(shard, conn, request.as_bytes());
    t.settle();
    conn
}

/// The keys the fetcher was asked for, with the asking shard.
fn fetches(t: &mut TestShards<ShardService>) -> Vec<(ShardId, String)> {
    let id = fetcher(t);
    (t.take_outside(id).into_iter())
        .filter_map(|(from, msg)| match msg {
            ShardMsg::Edge(EdgeRequest::Fetch(request)) => Some((from, request.key.to_string())),
            _ => None,
        })
        .collect()
}

fn reply(t: &mut TestShards<ShardService>, to: ShardId, reply: EdgeReply) {
    let id = fetcher(t);
    t.send_from_outside(id, to, ShardMsg::EdgeReply(Box::new(reply)));
    t.settle();
}

fn head(length: Option<u64>) -> ObjectHead {
    ObjectHead {
        status: 200,
        content_type: "video/mp4",
        length,
        max_age_ms: Some(600_000),
    }
}

#[test]
fn one_fetch_per_shard_and_object_then_hits_from_the_shard_s_cache() {
    let mut t = edge("");
    let a = ask(&mut t, S0, "/live/s/v0/1.m4s?cb=1");
    let b = ask(&mut t, S0, "/live/s/v0/1.m4s?cb=2");
    let c = ask(&mut t, S1, "/live/s/v0/1.m4s");
    let asked = fetches(&mut t);
    assert_eq!(
        asked,
        vec![
            (S0, "/live/s/v0/1.m4s".to_string()),
            (S1, "/live/s/v0/1.m4s".to_string())
        ],
        "one message per shard; the cache-buster is not part of the key"
    );
    assert!(t.read(S0, a).is_empty(), "waits for the fetcher");
    let key: Arc<str> = Arc::from("/live/s/v0/1.m4s");
    for shard in [S0, S1] {
        reply(
            &mut t,
            shard,
            EdgeReply::Head {
                key: key.clone(),
                head: head(Some(6)),
            },
        );
        reply(
            &mut t,
            shard,
            EdgeReply::Body {
                key: key.clone(),
                bytes: Bytes::from_static(b"abc"),
            },
        );
        reply(
            &mut t,
            shard,
            EdgeReply::Body {
                key: key.clone(),
                bytes: Bytes::from_static(b"def"),
            },
        );
        reply(
            &mut t,
            shard,
            EdgeReply::End {
                key: key.clone(),
                outcome: Ok(60_000),
            },
        );
    }
    for (shard, conn) in [(S0, a), (S0, b), (S1, c)] {
        let response = String::from_utf8(t.read(shard, conn)).unwrap();
        assert_eq!(status_of(&response), 200, "{response}");
        assert!(response.contains("Content-Length: 6\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nabcdef"), "{response}");
    }
    let d = ask(&mut t, S0, "/live/s/v0/1.m4s");
    assert!(fetches(&mut t).is_empty(), "a hit asks nobody");
    assert!(String::from_utf8(t.read(S0, d))
        .unwrap()
        .ends_with("abcdef"));
    t.advance(60_001);
    ask(&mut t, S0, "/live/s/v0/1.m4s");
    assert_eq!(fetches(&mut t).len(), 1, "expired: asked again");
}

#[test]
fn an_object_being_made_is_streamed_to_waiters_and_to_late_joiners() {
    let mut t = edge("");
    let early = ask(&mut t, S0, "/live/s/v0/7.m4s");
    assert_eq!(fetches(&mut t).len(), 1);
    let key: Arc<str> = Arc::from("/live/s/v0/7.m4s");
    reply(
        &mut t,
        S0,
        EdgeReply::Head {
            key: key.clone(),
            head: head(None),
        },
    );
    reply(
        &mut t,
        S0,
        EdgeReply::Body {
            key: key.clone(),
            bytes: Bytes::from_static(b"part0"),
        },
    );
    let sent = String::from_utf8(t.read(S0, early)).unwrap();
    assert!(sent.contains("Transfer-Encoding: chunked"), "{sent}");
    assert!(
        sent.ends_with("5\r\npart0\r\n"),
        "the first part before the segment ends: {sent}"
    );
    let late = ask(&mut t, S0, "/live/s/v0/7.m4s");
    assert!(
        fetches(&mut t).is_empty(),
        "the late viewer joins the fetch"
    );
    let sent = String::from_utf8(t.read(S0, late)).unwrap();
    assert!(sent.ends_with("5\r\npart0\r\n"), "what came so far: {sent}");
    reply(
        &mut t,
        S0,
        EdgeReply::Body {
            key: key.clone(),
            bytes: Bytes::from_static(b"part1"),
        },
    );
    reply(
        &mut t,
        S0,
        EdgeReply::End {
            key,
            outcome: Ok(60_000),
        },
    );
    for conn in [early, late] {
        assert_eq!(t.read(S0, conn), b"5\r\npart1\r\n0\r\n\r\n");
    }
}

#[test]
fn failures_and_a_silent_fetcher_answer_every_waiter() {
    let mut t = edge("[edge]\norigins = [\"127.0.0.1:1\"]\nblocking_timeout_ms = 1000\norigin_timeout_ms = 1000\n");
    let a = ask(&mut t, S0, "/live/s/index.m3u8");
    let key: Arc<str> = Arc::from("/live/s/index.m3u8");
    reply(
        &mut t,
        S0,
        EdgeReply::Failed {
            key,
            status: 502,
            reason: "every origin is failing",
        },
    );
    assert_eq!(status_of(&String::from_utf8(t.read(S0, a)).unwrap()), 502);

    let streaming = ask(&mut t, S0, "/live/s/v0/9.m4s");
    let waiting = ask(&mut t, S0, "/live/s/v0/index.m3u8");
    let key: Arc<str> = Arc::from("/live/s/v0/9.m4s");
    reply(
        &mut t,
        S0,
        EdgeReply::Head {
            key,
            head: head(None),
        },
    );
    t.read(S0, streaming);
    // One origin: 1000 ms of silence each, and 5 s for the fetcher itself.
    t.advance(5_999);
    assert!(t.read(S0, waiting).is_empty());
    t.advance(2);
    let response = String::from_utf8(t.read(S0, waiting)).unwrap();
    assert_eq!(status_of(&response), 504, "{response}");
    assert!(
        t.closed(S0, streaming).is_some(),
        "a cut stream closes its connection"
    );
}

#[test]
fn playback_tokens_are_checked_at_the_edge_and_playlists_carry_the_viewer_s() {
    let mut t = edge("[media]\nplayback_tokens = true\n");
    let (status, _) = testing::get(&mut t, S0, "/live/s/index.m3u8");
    assert_eq!(
        status, 401,
        "no token: refused at the edge, nothing fetched"
    );
    assert!(fetches(&mut t).is_empty());
    let claims = crate::common::auth::Claims {
        user: "v".into(),
        room: "s".into(),
        role: crate::common::auth::Role::Viewer,
        expires_unix_s: shardcast_engine::testing::WALL_ORIGIN_MS / 1000 + 3600,
        audience: crate::common::auth::Audience::Play,
    };
    let token = crate::common::auth::TokenKey::new(testing::SECRET.as_bytes()).mint(&claims);
    let a = ask(&mut t, S0, &format!("/live/s/v0/index.m3u8?token={token}"));
    assert_eq!(
        fetches(&mut t),
        vec![(S0, "/live/s/v0/index.m3u8".to_string())]
    );
    let key: Arc<str> = Arc::from("/live/s/v0/index.m3u8");
    let playlist = ObjectHead {
        content_type: "application/vnd.apple.mpegurl",
        length: None,
        max_age_ms: None,
        ..head(None)
    };
    reply(
        &mut t,
        S0,
        EdgeReply::Head {
            key: key.clone(),
            head: playlist,
        },
    );
    let body = Bytes::from_static(b"#EXTM3U\n1.m4s?token=EDGE\n");
    reply(
        &mut t,
        S0,
        EdgeReply::Body {
            key: key.clone(),
            bytes: body,
        },
    );
    reply(
        &mut t,
        S0,
        EdgeReply::End {
            key,
            outcome: Ok(200),
        },
    );
    let response = String::from_utf8(t.read(S0, a)).unwrap();
    assert!(
        response.ends_with(&format!("1.m4s?token={token}\n")),
        "{response}"
    );
}
