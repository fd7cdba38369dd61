//! HTTP scenarios on the engine's harness: routing, pipelining, timeouts, limits.

use crate::shard::testing::{self, get, status_of, HTTP};
use shardcast_engine::{CloseReason, ShardId};
use std::sync::atomic::Ordering::Relaxed;

const S: ShardId = ShardId(0);

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The status codes of every response in `responses`, in order.
fn statuses(responses: &str) -> Vec<u16> {
    responses
        .split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|r| r.get(..3)?.parse().ok())
        .collect()
}

#[test]
fn routes_answer_with_their_status_and_type() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let cases = [
        ("/healthz", 200, "text/plain"),
        ("/metrics", 200, "text/plain; version=0.0.4"),
        ("/api/v1/info", 200, "application/json"),
        ("/api/v1/streams", 200, "application/json"),
        ("/live/nothing/index.m3u8", 404, "text/plain"),
        ("/live/../etc/passwd", 404, "text/plain"),
        ("/static/none.txt", 404, "text/plain"),
        ("/nowhere", 404, "text/plain"),
        ("/ws", 426, "text/plain"),
    ];
    for (path, status, content_type) in cases {
        let (got, response) = get(&mut t, S, path);
        assert_eq!(got, status, "{path}: {response}");
        assert!(
            response.contains(&format!("Content-Type: {content_type}")),
            "{path}: {response}"
        );
    }
    let (_, metrics) = get(&mut t, S, "/metrics");
    assert!(
        metrics.contains("shardcast_http_requests_total "),
        "{metrics}"
    );
}

#[test]
fn other_methods_get_405_and_head_gets_no_body() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let conn = t.connect(S, HTTP).unwrap();
    t.write(
        S,
        conn,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
    );
    let response = text(t.read(S, conn));
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(response.contains("Allow: GET, HEAD"));
    t.write(S, conn, b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = text(t.read(S, conn));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("Content-Length: 3\r\n"), "{response}");
    assert!(
        response.ends_with("\r\n\r\n"),
        "no body after the head: {response:?}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order_and_past_the_cap_wait_for_the_writes() {
    let config = testing::config("[http]\npipeline_max_responses = 2\n");
    let mut t = testing::shards(1, &config, 0);
    let conn = t.connect(S, HTTP).unwrap();
    t.set_read_window(S, conn, Some(0));
    let requests = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\
                    GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n\
                    GET /api/v1/info HTTP/1.1\r\nHost: t\r\n\r\n";
    t.write(S, conn, requests.as_bytes());
    let counters = &t.service(S).http_counters();
    assert_eq!(
        counters.requests.load(Relaxed),
        2,
        "the third waits for the writes"
    );
    t.set_read_window(S, conn, None);
    let responses = text(t.read(S, conn));
    assert_eq!(statuses(&responses), [200, 404, 200], "{responses}");
    // A request split anywhere is put back together.
    for piece in [&b"GET /hea"[..], b"lthz HTTP/1.1\r\nHo", b"st: t\r\n\r\n"] {
        t.write(S, conn, piece);
    }
    assert_eq!(statuses(&text(t.read(S, conn))), [200]);
}

#[test]
fn a_slow_head_gets_408_and_an_idle_connection_is_closed() {
    let config = testing::config("[http]\nheader_timeout_ms = 1000\nidle_timeout_ms = 5000\n");
    let mut t = testing::shards(1, &config, 0);
    let slow = t.connect(S, HTTP).unwrap();
    t.write(S, slow, b"GET /healthz HTTP/1.1\r\n");
    t.advance(990);
    assert!(t.read(S, slow).is_empty());
    t.advance(20);
    let response = text(t.read(S, slow));
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("Connection: close"));
    assert!(t.write_shut(S, slow));
    let idle = t.connect(S, HTTP).unwrap();
    t.write(S, idle, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(statuses(&text(t.read(S, idle))), [200]);
    t.advance(4900);
    assert_eq!(t.closed(S, idle), None);
    t.advance(200);
    assert_eq!(t.closed(S, idle), Some(CloseReason::Local));
    let counters = t.service(S).http_counters();
    assert_eq!(counters.header_timeouts.load(Relaxed), 1);
    assert_eq!(counters.idle_timeouts.load(Relaxed), 1);
}

#[test]
fn bad_requests_and_oversized_heads_are_refused_and_closed() {
    let config = testing::config("[http]\nhead_max_bytes = 1024\nrequest_line_max_bytes = 256\n");
    let mut t = testing::shards(1, &config, 0);
    let cases: [(&[u8], u16); 3] = [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (
            format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(300))
                .leak()
                .as_bytes(),
            414,
        ),
        (
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(2000))
                .leak()
                .as_bytes(),
            431,
        ),
    ];
    for (request, status) in cases {
        let conn = t.connect(S, HTTP).unwrap();
        t.write(S, conn, request);
        let response = text(t.read(S, conn));
        assert_eq!(status_of(&response), status, "{response}");
        assert!(t.write_shut(S, conn), "closed after the answer");
    }
}

#[test]
fn past_the_connection_cap_a_client_gets_503() {
    let config = testing::config("[http]\nmax_connections_per_shard = 2\n");
    let mut t = testing::shards(1, &config, 0);
    let _a = t.connect(S, HTTP).unwrap();
    let _b = t.connect(S, HTTP).unwrap();
    let c = t.connect(S, HTTP).unwrap();
    let response = text(t.read(S, c));
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert_eq!(
        t.service(S)
            .http_counters()
            .rejected_over_capacity
            .load(Relaxed),
        1
    );
}

#[test]
fn a_drain_closes_idle_connections_and_lets_a_busy_one_finish() {
    let config = testing::config("");
    let mut t = testing::shards(1, &config, 0);
    let idle = t.connect(S, HTTP).unwrap();
    let busy = t.connect(S, HTTP).unwrap();
    t.set_read_window(S, busy, Some(0));
    t.write(S, busy, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    t.drain();
    assert_eq!(t.closed(S, idle), Some(CloseReason::Local));
    assert_eq!(
        t.closed(S, busy),
        None,
        "its response is still being written"
    );
    t.set_read_window(S, busy, None);
    let response = text(t.read(S, busy));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(t.write_shut(S, busy), "closed once written");
}

/// A GET with an `Authorization` header; the status.
fn get_with_auth(
    t: &mut shardcast_engine::testing::TestShards<crate::shard::router::ShardService>,
    target: &str,
    authorization: &str,
) -> u16 {
    let conn = t.connect(S, HTTP).unwrap();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nAuthorization: {authorization}\r\n\r\n");
    t.write(S, conn, request.as_bytes());
    status_of(&text(t.read(S, conn)))
}

#[test]
fn the_pages_that_name_streams_take_the_api_token() {
    let config = testing::config("[http]\napi_token = \"s3cret\"\n");
    let mut t = testing::shards(1, &config, 0);
    for page in ["/metrics", "/api/v1/streams"] {
        assert_eq!(get(&mut t, S, page).0, 401, "{page}");
        assert_eq!(get_with_auth(&mut t, page, "Bearer nope"), 401, "{page}");
        assert_eq!(get_with_auth(&mut t, page, "Bearer s3cret"), 200, "{page}");
    }
    assert_eq!(get(&mut t, S, "/healthz").0, 200, "health needs no token");
    // Playback behind tokens and no api token: the stream list is closed to everyone.
    let config = testing::config("[media]\nplayback_tokens = true\n");
    let mut t = testing::shards(1, &config, 0);
    assert_eq!(get(&mut t, S, "/api/v1/streams").0, 403);
    assert_eq!(get(&mut t, S, "/metrics").0, 403);
}

#[test]
fn a_client_that_reads_nothing_of_its_responses_is_closed_after_the_idle_timeout() {
    let config = testing::config("[http]\nidle_timeout_ms = 2000\nstatic_dir = \"\"\n");
    let mut t = testing::shards(1, &config, 0);
    // Keep-alive, and a closing request: both hold their slot only until the idle timeout.
    let requests: [&[u8]; 2] = [
        b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ];
    let conns: Vec<_> = requests
        .iter()
        .map(|request| {
            let conn = t.connect(S, HTTP).unwrap();
            t.set_read_window(S, conn, Some(0));
            t.write(S, conn, request);
            assert!(t.queued_bytes(S, conn) > 0, "the response waits unread");
            conn
        })
        .collect();
    t.advance(1500);
    assert!(conns.iter().all(|&c| t.closed(S, c).is_none()));
    // Noticed at the connection's next timer (here the header timeout armed at connect,
    // 10 s), then given idle_timeout_ms more to read something.
    t.advance(config.http.header_timeout_ms + 2100);
    assert!(conns.iter().all(|&c| t.closed(S, c).is_some()), "dropped");
    let counters = t.service(S).http_counters();
    assert_eq!(counters.send_stalls.load(Relaxed), 2);
}
