//! End-to-end tests of the HTTP front door: the real binary, both I/O backends, real clients
//! (std sockets, curl). Each test bounds its own time and kills its server on exit.

mod common;

use common::{closed_by_peer, read_response, Server, TempDir, BACKENDS};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn health_info_and_metrics_answer_curl() {
    for io in BACKENDS {
        let server = Server::start(io, 2, "");
        let base = format!("http://{}", server.addr);
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10"])
            .arg(format!("{base}/healthz"))
            .output()
            .expect("curl is installed");
        assert!(
            out.status.success(),
            "{io}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"ok\n");

        let info = server.get("/api/v1/info");
        assert_eq!(info.status, 200);
        let json: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
        let want = if io == "uring" { "io_uring" } else { "epoll" };
        assert_eq!(json["io"]["backend"], want);
        assert_eq!(json["shards"], 2);
        if io == "uring" {
            let features = json["io"]["ring_features"].as_array().unwrap();
            assert!(features.iter().any(|f| f == "accept_direct"), "{json}");
        }

        let metrics = String::from_utf8(server.get("/metrics").body).unwrap();
        for name in [
            "shardcast_engine_accepts_total ",
            "shardcast_shard_engine_accepts_total{shard=\"1\"} ",
            "shardcast_http_requests_total ",
            "shardcast_engine_loop_iterations_total ",
            "shardcast_engine_mesh_sent_total ",
        ] {
            assert!(metrics.contains(name), "{io}: {name} missing");
        }
        // Three requests so far, each on its own connection, plus the one being scraped.
        assert!(server.metric("shardcast_http_requests_total") >= 4);

        let missing = server.get("/nope");
        assert_eq!(missing.status, 404);
        let post = {
            let mut s = server.connect();
            s.write_all(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
                .unwrap();
            read_response(&mut s).unwrap()
        };
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), Some("GET, HEAD"));
    }
}

#[test]
fn concurrent_keep_alive_clients_get_every_response() {
    for io in BACKENDS {
        let server = Server::start(io, 2, "");
        let addr = server.addr;
        let threads: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    for _ in 0..200 {
                        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                            .unwrap();
                        let r = read_response(&mut s).unwrap();
                        assert_eq!((r.status, &r.body[..]), (200, &b"ok\n"[..]));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            server.metric("shardcast_http_responses_2xx_total"),
            16 * 200
        );
        // The 16 clients and the two scrapes.
        assert_eq!(server.metric("shardcast_engine_accepts_total"), 16 + 2);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = TempDir::new("pipe");
    let files = dir.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    for i in 0..10 {
        std::fs::write(files.join(format!("{i}.txt")), format!("file {i}\n")).unwrap();
    }
    let config = format!("[http]\nstatic_dir = \"{}\"\n", files.display());
    for io in BACKENDS {
        let server = Server::start(io, 1, &config);
        let mut s = server.connect();
        // 300 requests in one write: more than pipeline_max_responses, so the server must
        // hold input back and resume as responses drain.
        let mut batch = String::new();
        for i in 0..300 {
            batch.push_str(&format!(
                "GET /static/{}.txt HTTP/1.1\r\nHost: t\r\n\r\n",
                i % 10
            ));
        }
        s.write_all(batch.as_bytes()).unwrap();
        for i in 0..300 {
            let r = read_response(&mut s).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(
                r.body,
                format!("file {}\n", i % 10).into_bytes(),
                "{io}: response {i}"
            );
        }
        // A request split across writes byte by byte still works.
        for b in b"GET /static/3.txt HTTP/1.1\r\nHost: t\r\n\r\n" {
            s.write_all(&[*b]).unwrap();
        }
        assert_eq!(read_response(&mut s).unwrap().body, b"file 3\n");
    }
}

#[test]
fn static_files_support_range_and_conditional_get() {
    let dir = TempDir::new("static");
    let files = dir.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(files.join("seg.m4s"), &body).unwrap();
    let config = format!("[http]\nstatic_dir = \"{}\"\n", files.display());
    for io in BACKENDS {
        let server = Server::start(io, 1, &config);
        let full = server.get("/static/seg.m4s");
        assert_eq!(full.status, 200);
        assert_eq!(full.body, body, "{io}: large body intact");
        assert_eq!(full.header("content-type"), Some("video/mp4"));
        let etag = full.header("etag").unwrap().to_string();

        let mut s = server.connect();
        write!(
            s,
            "GET /static/seg.m4s HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n"
        )
        .unwrap();
        let part = read_response(&mut s).unwrap();
        assert_eq!(part.status, 206);
        assert_eq!(part.body, &body[10..20]);
        assert_eq!(part.header("content-range"), Some("bytes 10-19/100000"));

        write!(
            s,
            "GET /static/seg.m4s HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n"
        )
        .unwrap();
        assert_eq!(read_response(&mut s).unwrap().status, 304);

        write!(
            s,
            "GET /static/seg.m4s HTTP/1.1\r\nHost: t\r\nRange: bytes=200000-\r\n\r\n"
        )
        .unwrap();
        assert_eq!(read_response(&mut s).unwrap().status, 416);

        write!(s, "HEAD /static/seg.m4s HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let head = read_response_head_only(&mut s);
        assert!(head.contains("Content-Length: 100000"), "{head}");

        assert_eq!(server.get("/static/../shardcast.toml").status, 404);
    }
}

fn read_response_head_only(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn five_thousand_connections_held_on_one_shard() {
    for io in BACKENDS {
        // All from 127.0.0.1: past the default per-address limit (4096).
        let server = Server::start(io, 1, "[http]\nmax_connections_per_address = 6000\n");
        let mut conns: Vec<TcpStream> = (0..5000).map(|_| server.connect()).collect();
        // Every connection is served, not just accepted.
        for s in conns.iter_mut() {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
        }
        for s in conns.iter_mut() {
            let r = read_response(s).unwrap();
            assert_eq!(r.status, 200);
        }
        assert_eq!(
            server.metric("shardcast_engine_connections_open"),
            5001,
            "{io}"
        );
        drop(conns);
        // The server notices every close.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while server.metric("shardcast_engine_connections_open") != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "{io}: closes not seen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn over_the_connection_cap_clients_get_503_then_close() {
    for io in BACKENDS {
        let server = Server::start(io, 1, "[http]\nmax_connections_per_shard = 8\n");
        let mut held: Vec<TcpStream> = (0..8).map(|_| server.connect()).collect();
        for s in held.iter_mut() {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(s).unwrap().status, 200);
        }
        let mut extra = server.connect();
        let r = read_response(&mut extra).expect("a 503 before the close");
        assert_eq!(r.status, 503, "{io}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed_by_peer(&mut extra, Duration::from_secs(5)));
        // Freeing a slot lets the next client in.
        drop(held.pop());
        std::thread::sleep(Duration::from_millis(100));
        drop(extra);
        std::thread::sleep(Duration::from_millis(100));
        let mut again = server.connect();
        again
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let metrics = read_response(&mut again).unwrap();
        assert_eq!(metrics.status, 200, "{io}");
        let text = String::from_utf8(metrics.body).unwrap();
        assert!(
            text.contains("shardcast_http_rejected_over_capacity_total 1\n"),
            "{text}"
        );
    }
}

#[test]
fn malformed_and_oversized_requests_get_their_status_and_others_are_unaffected() {
    let config = "[http]\nrequest_line_max_bytes = 256\nhead_max_bytes = 1024\nheaders_max_count = 8\nheader_timeout_ms = 300\n";
    for io in BACKENDS {
        let server = Server::start(io, 1, config);
        // A keep-alive client that has been served once (so the idle timeout, not the
        // header timeout, applies to it).
        let mut bystander = server.connect();
        bystander
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut bystander).unwrap().status, 200);
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (
                format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(400)).into_bytes(),
                414,
            ),
            (
                format!(
                    "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
                    (0..12).map(|i| format!("X-{i}: v\r\n")).collect::<String>()
                )
                .into_bytes(),
                431,
            ),
            (
                format!(
                    "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
                    "b".repeat(2000)
                )
                .into_bytes(),
                431,
            ),
            (b"\x16\x03\x01\x02\x00garbage\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
            (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 505),
            (
                b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                501,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n".to_vec(),
                413,
            ),
        ];
        for (request, status) in cases {
            let mut s = server.connect();
            s.write_all(&request).unwrap();
            let r = read_response(&mut s).unwrap();
            assert_eq!(
                r.status,
                status,
                "{io}: {:?}",
                String::from_utf8_lossy(&request)
            );
            assert!(
                closed_by_peer(&mut s, Duration::from_secs(5)),
                "{io}: close after {status}"
            );
        }
        // A head that stalls half way gets 408 after header_timeout_ms.
        let mut slow = server.connect();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
        let r = read_response(&mut slow).unwrap();
        assert_eq!(r.status, 408, "{io}");
        // The bystander's keep-alive connection still works.
        bystander
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut bystander).unwrap().status, 200);
    }
}

#[test]
fn sigterm_drains_in_flight_responses_and_exits_zero() {
    for io in BACKENDS {
        let dir = TempDir::new("drain");
        let files = dir.0.join("files");
        std::fs::create_dir_all(&files).unwrap();
        let body: Vec<u8> = (0..32u32 << 20).map(|i| (i % 253) as u8).collect();
        std::fs::write(files.join("big.bin"), &body).unwrap();
        let config = format!(
            "[http]\nstatic_dir = \"{}\"\n[shutdown]\ngrace_ms = 10000\n",
            files.display()
        );
        let mut server = Server::start_in(dir, io, 2, &config);

        let mut idle = server.connect();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut idle).unwrap().status, 200);

        // Start a 32 MiB download and read only a little of it, so most of the response is
        // still in flight when the signal arrives.
        let mut download = server.connect();
        download.set_read_buffer_size_hint();
        download
            .write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 4096];
        download.read_exact(&mut first).unwrap();

        common::signal(server.pid(), libc::SIGTERM);
        // The idle keep-alive connection is closed promptly.
        assert!(
            closed_by_peer(&mut idle, Duration::from_secs(5)),
            "{io}: idle not closed"
        );

        // The download completes in full.
        let mut rest = Vec::new();
        download
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        download.read_to_end(&mut rest).unwrap();
        let mut all = first.to_vec();
        all.extend_from_slice(&rest);
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&all[..split]).to_string();
        assert!(head.contains("Content-Length: 33554432"), "{head}");
        assert_eq!(all.len() - split, body.len(), "{io}: body cut short");
        assert!(all[split..] == body[..], "{io}: body corrupted");

        let status = server.wait(Duration::from_secs(15));
        assert!(status.success(), "{io}: exit {status:?}\n{}", server.log());
        assert!(server.log().contains("drained in"), "{}", server.log());
        // Nothing listens any more.
        assert!(TcpStream::connect(server.addr).is_err());
    }
}

trait ReadHint {
    fn set_read_buffer_size_hint(&self);
}

impl ReadHint for TcpStream {
    /// A small receive buffer keeps the server's send blocked, so the response stays in flight.
    fn set_read_buffer_size_hint(&self) {
        let sock = socket2::SockRef::from(self);
        sock.set_recv_buffer_size(64 * 1024).unwrap();
    }
}

#[test]
fn a_client_that_half_closes_still_gets_every_response() {
    for io in BACKENDS {
        let server = Server::start(io, 1, "");
        let mut s = server.connect();
        let mut batch = Vec::new();
        for _ in 0..100 {
            batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        s.write_all(&batch).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        for i in 0..100 {
            let r = read_response(&mut s).unwrap_or_else(|| panic!("{io}: response {i} missing"));
            assert_eq!(r.status, 200);
        }
        assert!(
            closed_by_peer(&mut s, Duration::from_secs(5)),
            "{io}: not closed after EOF"
        );
    }
}

#[test]
fn the_bench_client_gets_every_response_it_asked_for() {
    use shardcast_bench::{run_http, target::HttpUrl, HttpLoadConfig};
    let dir = TempDir::new("load");
    let files = dir.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("200b.bin"), [7u8; 200]).unwrap();
    std::fs::write(files.join("64k.bin"), vec![9u8; 65536]).unwrap();
    let config = format!("[http]\nstatic_dir = \"{}\"\n", files.display());
    for io in BACKENDS {
        let server = Server::start(io, 2, &config);
        for (path, len, pipeline) in [("200b.bin", 200, 8), ("64k.bin", 65536, 1)] {
            let url = HttpUrl::parse(&format!("http://{}/static/{path}", server.addr)).unwrap();
            let mut load = HttpLoadConfig::new(url);
            load.connections = 16;
            load.pipeline = pipeline;
            load.duration = Duration::from_millis(700);
            load.warmup = Duration::ZERO;
            load.expect_status = Some(200);
            load.expect_body_bytes = Some(len);
            let before = server.metric("shardcast_http_responses_2xx_total");
            let report = run_http(load).expect("load run");
            assert_eq!(report.errors_total, 0, "{io} {path}: {:?}", report.errors);
            assert!(
                report.requests > 100,
                "{io} {path}: only {} requests",
                report.requests
            );
            // The server answered at least every request the client counted (requests still in
            // flight when the run ended were answered too, but not counted by the client).
            let answered = server.metric("shardcast_http_responses_2xx_total") - before - 1;
            assert!(
                answered >= report.requests,
                "{io} {path}: {answered} < {}",
                report.requests
            );
            assert!(
                answered <= report.requests + 16 * pipeline as u64,
                "{io} {path}"
            );
        }
    }
}

#[test]
fn io_uring_features_fall_back_one_by_one_and_whole() {
    let dir = TempDir::new("features");
    let files = dir.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(files.join("big.bin"), &body).unwrap();
    let off = [
        "send_zc",
        "msg_ring",
        "defer_taskrun",
        "coop_taskrun",
        "single_issuer",
    ];
    // Each optional feature off on its own, then all of them: io_uring still serves.
    let mut sets: Vec<Vec<&str>> = off.iter().map(|f| vec![*f]).collect();
    sets.push(off.to_vec());
    for set in sets {
        let list = set
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "[engine]\nio_uring_disable = [{list}]\n[http]\nstatic_dir = \"{}\"\n",
            files.display()
        );
        let server = Server::start("uring", 2, &config);
        let info: serde_json::Value =
            serde_json::from_slice(&server.get("/api/v1/info").body).unwrap();
        assert_eq!(info["io"]["backend"], "io_uring");
        let features = info["io"]["ring_features"].as_array().unwrap();
        for f in &set {
            assert!(!features.iter().any(|x| x == f), "{f} still in use: {info}");
        }
        let r = server.get("/static/big.bin");
        assert_eq!(r.status, 200);
        assert!(r.body == body, "{set:?}: body differs");
        // Cross-shard wakes (drain) still work without MSG_RING.
        drop(server);
    }
    // io_uring refused: auto falls back to epoll and says why.
    let server = Server::start("auto", 1, "[engine]\nio_uring_disable = [\"io_uring\"]\n");
    let info: serde_json::Value = serde_json::from_slice(&server.get("/api/v1/info").body).unwrap();
    assert_eq!(info["io"]["backend"], "epoll");
    let reason = info["io"]["reason"].as_str().unwrap();
    assert!(reason.contains("io_uring unusable"), "{reason}");
    assert!(
        server.log().contains("io backend epoll (io_uring unusable"),
        "{}",
        server.log()
    );
    // And `--io uring` with io_uring refused is a clear start-up error, not a silent fallback.
    let config_dir = TempDir::new("refuse");
    let path = config_dir.0.join("c.toml");
    std::fs::write(&path, "[engine]\nio_uring_disable = [\"io_uring\"]\n").unwrap();
    let out = std::process::Command::new(common::binary())
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--io",
            "uring",
            "--config",
        ])
        .arg(&path)
        .current_dir(&config_dir.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--io uring: disabled by engine.io_uring_disable"),
        "{stderr}"
    );
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = TempDir::new("badcfg");
    for (text, expect) in [
        (
            "[http]\nmax_connections = 5\n",
            "unknown field `max_connections`",
        ),
        (
            "[engine]\nrecv_buffers = 1000\n",
            "engine.recv_buffers = 1000",
        ),
        (
            "[engine]\nio_uring_disable = [\"warp\"]\n",
            "engine.io_uring_disable = warp",
        ),
        ("[http]\nlisten = \"8080\"\n", "http.listen = 8080"),
        (
            "[ws]\nsend_queue_max_bytes = 1000\n",
            "ws.send_queue_max_bytes is 1000: it must hold two History replies",
        ),
        ("not toml", "invalid config file"),
    ] {
        let path = dir.0.join("c.toml");
        std::fs::write(&path, text).unwrap();
        // `timeout` bounds the run should a bad file ever be accepted and the server start.
        let out = std::process::Command::new("timeout")
            .arg("10")
            .arg(common::binary())
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{text}: {stderr}");
        let check = std::process::Command::new(common::binary())
            .args(["config", "--check"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!check.status.success(), "{text}");
    }
    let printed = std::process::Command::new(common::binary())
        .args(["config", "--print-default"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    let path = dir.0.join("defaults.toml");
    std::fs::write(&path, &printed.stdout).unwrap();
    let check = std::process::Command::new(common::binary())
        .args(["config", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn metrics_are_valid_prometheus_text() {
    let server = Server::start("uring", 2, "");
    let text = String::from_utf8(server.get("/metrics").body).unwrap();
    let mut typed = std::collections::HashMap::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        // name{labels} value
        let (series, value) = line.rsplit_once(' ').unwrap();
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        samples += 1;
    }
    assert!(samples > 100, "{samples}");
}

#[test]
fn probe_falls_back_to_software_and_says_why_each_hardware_encoder_failed() {
    let out = std::process::Command::new(common::binary())
        .arg("probe")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    for hw in ["h264_nvenc", "h264_qsv", "h264_vaapi"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(hw))
            .unwrap_or_else(|| panic!("{hw} missing:\n{text}"));
        assert!(line.contains("failed:"), "{line}");
    }
    assert!(text.contains("chosen: libx264"), "{text}");
    let forced = std::process::Command::new(common::binary())
        .args(["probe", "--force", "no_such_encoder"])
        .output()
        .unwrap();
    assert!(!forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stdout).contains("not registered"));
}
