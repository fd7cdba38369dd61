//! End-to-end tests of TLS on the shards, with independent clients: curl over HTTPS, ffmpeg
//! publishing over RTMPS, Python `websockets` over WSS and `ssl` for certificates, and bad
//! handshakes that must cost nobody else anything. The certificate is made by
//! `shardcast cert --self-signed`.

mod common;

use common::{mint_token, self_signed_cert, Publish, Server, TempDir, H264};
use shardcast_wire::{decode_server, ClientEncoder, ServerMsg, VerifyLimits};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "e2e-tls-secret-0123456789abcdef";

/// A server with HTTPS and RTMPS on free ports, and where they are.
struct TlsServer {
    server: Server,
    https: SocketAddr,
    rtmps: SocketAddr,
    cert: PathBuf,
}

fn start(handshake_timeout_ms: u64) -> TlsServer {
    let dir = TempDir::new("tls");
    let (cert, key) = self_signed_cert(&dir.0, "cert");
    let config = format!(
        "[auth]\nsecret = \"{SECRET}\"\n[transcode]\nenabled = false\n\
         [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nhttps_listen = \"127.0.0.1:0\"\n\
         rtmps_listen = \"127.0.0.1:0\"\nhandshake_timeout_ms = {handshake_timeout_ms}\n",
        cert.display(),
        key.display()
    );
    let cert_copy = std::env::temp_dir().join(format!(
        "shardcast-e2e-tls-ca-{}-{}.pem",
        std::process::id(),
        handshake_timeout_ms
    ));
    std::fs::copy(&cert, &cert_copy).unwrap();
    let server = Server::start_in(dir, "auto", 2, &config);
    let https = server.listener("https");
    let rtmps = server.listener("rtmps");
    TlsServer {
        server,
        https,
        rtmps,
        cert: cert_copy,
    }
}

/// curl over HTTPS, checking the certificate against `ca` for the name localhost.
fn curl(t: &TlsServer, path: &str) -> (String, Vec<u8>) {
    let url = format!("https://localhost:{}{path}", t.https.port());
    let resolve = format!("localhost:{}:127.0.0.1", t.https.port());
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--resolve", &resolve, "--cacert"])
        .arg(&t.cert)
        .args(["-w", "\n%{http_code} %{http_version}", &url])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = out.stdout;
    let split = text.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&text[split + 1..]).to_string();
    (status, text[..split].to_vec())
}

/// The SHA-256 fingerprint of the certificate the server presents, as Python's `ssl` reads
/// it (no certificate check: the test compares certificates).
fn presented_fingerprint(addr: SocketAddr) -> String {
    const SCRIPT: &str = "import hashlib, ssl, sys\n\
        pem = ssl.get_server_certificate((sys.argv[1], int(sys.argv[2])))\n\
        print('Fingerprint=' + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest())";
    let out = Command::new("timeout")
        .args([
            "10",
            "python3",
            "-c",
            SCRIPT,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// HTTPS (curl), RTMPS (ffmpeg), the same bytes as plain HTTP, WSS (Python), and garbage on
/// the TLS ports closing only its own connection.
#[test]
fn https_rtmps_and_wss_serve_what_plain_serves_and_bad_handshakes_cost_nobody() {
    let t = start(10_000);
    let (status, body) = curl(&t, "/healthz");
    assert_eq!(status, "200 1.1", "HTTP/1.1 over TLS (ALPN http/1.1)");
    assert_eq!(body, b"ok\n");
    // The pages learn where RTMPS is (the publish page offers it to a page read over HTTPS).
    let (_, web) = curl(&t, "/api/v1/web");
    let web: serde_json::Value = serde_json::from_slice(&web).unwrap();
    assert_eq!(web["rtmps_port"], t.rtmps.port());

    // Garbage and plain HTTP on both TLS ports, while a publisher comes in over RTMPS.
    let publisher = Publish::start("ffmpeg", &format!("rtmps://{}/live/sec", t.rtmps), 6, &H264);
    for addr in [t.https, t.rtmps, t.https] {
        let mut bad = TcpStream::connect(addr).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01\xff\xff garbage")
            .unwrap();
        let mut answer = Vec::new();
        let _ = bad.read_to_end(&mut answer);
        assert!(
            !answer.starts_with(b"HTTP"),
            "plain text answered in plain text"
        );
        assert!(
            answer.len() < 64,
            "more than an alert: {} bytes",
            answer.len()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = curl(&t, "/live/sec/source/index.m3u8");
        if status.starts_with("200") && String::from_utf8_lossy(&body).contains("#EXTINF") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the RTMPS stream never went live:\n{}",
            t.server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A segment over HTTPS is the segment over HTTP.
    let (status, over_tls) = curl(&t, "/live/sec/source/0.m4s");
    assert!(status.starts_with("200"), "{status}");
    let plain = t.server.get("/live/sec/source/0.m4s");
    assert_eq!(plain.status, 200);
    assert!(
        over_tls == plain.body && !over_tls.is_empty(),
        "HTTPS and HTTP bytes differ"
    );
    let (ok, stderr) = publisher.wait();
    assert!(ok, "ffmpeg over RTMPS: {stderr}");

    // Python websockets over WSS, checking the certificate.
    let hello = ClientEncoder::new()
        .hello(
            "sec",
            &mint_token(&["--user", "py", "--room", "sec", "--secret", SECRET]),
            0,
            "python",
        )
        .to_vec();
    let hex: String = hello.iter().map(|b| format!("{b:02x}")).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/ws_python.py");
    let out = Command::new("timeout")
        .args(["30", "python3", script])
        .arg(format!("wss://localhost:{}/ws", t.https.port()))
        .arg(hex)
        .arg(&t.cert)
        .env("no_proxy", "*")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["subprotocol"], "shardcast.v1");
    let first = seen["first_hex"].as_str().unwrap();
    let bytes: Vec<u8> = (0..first.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&first[i..i + 2], 16).unwrap())
        .collect();
    assert!(matches!(
        decode_server(&bytes, &VerifyLimits::server()).unwrap(),
        ServerMsg::Welcome(_)
    ));
    assert_eq!(seen["close_code"], 1000);
    assert_eq!(seen["text_close_code"], 1003);

    assert_eq!(t.server.metric("shardcast_engine_tls_failures_total"), 3);
    assert!(t.server.metric("shardcast_engine_tls_handshakes_total") >= 6);
    let _ = std::fs::remove_file(&t.cert);
}

/// A client that never starts its handshake is closed after the timeout; SIGHUP serves a new
/// certificate to new connections while one open across it keeps working, and a reload that
/// fails keeps the old certificate.
#[test]
fn a_silent_client_times_out_and_sighup_reloads_the_certificate() {
    let t = start(500);
    let mut silent = TcpStream::connect(t.https).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut nothing = Vec::new();
    let _ = silent.read_to_end(&mut nothing);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    assert_eq!(
        t.server
            .metric("shardcast_engine_tls_handshake_timeouts_total"),
        1
    );

    let before = presented_fingerprint(t.https);
    assert!(before.contains("Fingerprint="), "{before}");
    // A connection open across the reload keeps working.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/tls_keepalive.py"
    );
    let mut kept = Command::new("timeout")
        .args([
            "30",
            "python3",
            script,
            "127.0.0.1",
            &t.https.port().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut kept_out = std::io::BufReader::new(kept.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut kept_out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready 200");
    // The config's files get a new certificate, then SIGHUP.
    let config = std::fs::read_to_string(server_config_path(&t.server)).unwrap();
    let cert_file = field(&config, "cert_file");
    let dir = Path::new(&cert_file).parent().unwrap().to_path_buf();
    self_signed_cert(&dir, "cert");
    const SIGHUP: i32 = 1;
    let hup = |server: &Server| common::signal(server.pid(), SIGHUP);
    hup(&t.server);
    wait_log(&t.server, "TLS certificates reloaded");
    let after = presented_fingerprint(t.https);
    assert_ne!(before, after, "the new certificate is served");
    kept.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut kept_out, &mut line).unwrap();
    assert_eq!(
        line.trim(),
        "again 200",
        "the connection open across the reload"
    );
    let _ = kept.wait();
    // A broken file: the reload fails, says why, and the certificate in use stays.
    std::fs::write(&cert_file, "not a certificate").unwrap();
    hup(&t.server);
    wait_log(&t.server, "the certificates in use stay");
    assert_eq!(presented_fingerprint(t.https), after);
    let (status, _) = curl_insecure(t.https, "/healthz");
    assert_eq!(status, "200");
    let _ = std::fs::remove_file(&t.cert);
}

fn curl_insecure(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("https://{addr}{path}"))
        .output()
        .expect("curl");
    (String::from_utf8_lossy(&out.stdout).to_string(), Vec::new())
}

fn server_config_path(server: &Server) -> PathBuf {
    server.dir().join("shardcast.toml")
}

/// The string value of `name = "…"` in a TOML text.
fn field(toml: &str, name: &str) -> String {
    let line = toml
        .lines()
        .find(|l| l.starts_with(&format!("{name} =")))
        .unwrap_or_else(|| panic!("no {name} in {toml}"));
    line.split('"').nth(1).unwrap().to_string()
}

fn wait_log(server: &Server, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no log line with {text:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
