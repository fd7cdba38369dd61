//! What operators get: the Grafana board and the alerting rules name only metrics the server
//! (an origin and an edge) exports, and `log.format = "json"` writes one JSON object per line.

mod common;

use common::{binary, Server, TempDir};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Every metric name (`shardcast_…`, `process_…`) in `text`, with a histogram's `_bucket`
/// suffix taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let starts_name = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_name && (rest.starts_with("shardcast_") || rest.starts_with("process_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..len];
            names.insert(name.strip_suffix("_bucket").unwrap_or(name).to_string());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

/// The metric names of the samples in a Prometheus exposition (histograms by their base name).
fn exported(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| n.strip_suffix("_bucket").unwrap_or(n).to_string())
        .collect()
}

#[test]
fn the_dashboard_and_the_alerts_query_only_metrics_the_server_exports() {
    let server = Server::start(
        "uring",
        2,
        "[transcode]\npreset = \"ultrafast\"\nqueue_max_ms = 30000\nladder = [\n  \
         { name = \"144p\", height = 144, bitrate_kbps = 200 },\n]\n",
    );
    // A transcoded stream, so the per-rung series exist too.
    let url = format!("rtmp://{}/live/ops", server.rtmp_addr);
    let mut publisher = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "20"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-c:a",
            "aac",
        ])
        .args(["-f", "flv", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let body = String::from_utf8(server.get("/metrics").body).unwrap();
        if body.contains("shardcast_rung_speed{") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no rung metrics:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let _ = publisher.kill();
    let _ = publisher.wait();
    let mut have = exported(&metrics);
    // An edge in front of it exports the edge's series too.
    let edge_config = format!(
        "[edge]\norigins = [\"{}\"]\n[transcode]\nenabled = false\n",
        server.addr
    );
    let edge = Server::start_at(
        TempDir::new("ops-edge"),
        "uring",
        1,
        &edge_config,
        "127.0.0.1:0",
    );
    have.extend(exported(
        &String::from_utf8(edge.get("/metrics").body).unwrap(),
    ));

    let board = repo_file("ops/grafana/shardcast.json");
    let board_json: serde_json::Value = serde_json::from_str(&board).expect("the board is JSON");
    let exprs: Vec<&str> = board_json["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let alerts = repo_file("ops/prometheus/alerts.yml");
    for (file, text) in [
        ("ops/grafana/shardcast.json", exprs.join("\n")),
        ("ops/prometheus/alerts.yml", alerts),
    ] {
        let wanted = metric_names(&text);
        assert!(wanted.len() >= 8, "{file}: {wanted:?}");
        let missing: Vec<_> = wanted.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "{file} queries metrics /metrics lacks: {missing:?}"
        );
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = TempDir::new("jsonlog");
    let config = dir.0.join("shardcast.toml");
    std::fs::write(
        &config,
        "[log]\nformat = \"json\"\n[transcode]\nenabled = false\n",
    )
    .unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--http", "127.0.0.1:0", "--rtmp", "", "--config"])
        .arg(&config)
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let listening = line.contains("http listening on");
        lines.push(line);
        if listening {
            break;
        }
    }
    common::signal(child.id() as i32, 15);
    let _ = child.wait();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["ts", "level", "thread", "target", "msg"] {
            assert!(v[field].is_string(), "{field} missing: {line}");
        }
    }
    assert!(lines.iter().any(|l| l.contains("\"level\":\"INFO\"")));
}
