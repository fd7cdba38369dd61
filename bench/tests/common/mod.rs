//! Starts the real `shardcast` binary on a free port and talks to it over loopback.
//!
//! The binary is `$SHARDCAST_BIN`, or `target/{debug,release}/shardcast` in the workspace
//! (`just test` builds it first). Every server is killed when its handle drops, so a failing
//! test leaves nothing running.

#![allow(dead_code)]

pub mod browser;
pub mod hls_viewer;
pub mod rtc;
pub mod viewer;
pub mod ws;

/// A redis-server of the test's own (shared with the ledger crate's tests).
#[path = "../../../shards/ledger/tests/support/mod.rs"]
pub mod redis_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BACKENDS: [&str; 2] = ["uring", "epoll"];

pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("SHARDCAST_BIN") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["debug", "release"] {
        let path = root.join("target").join(profile).join("shardcast");
        if path.exists() {
            return path;
        }
    }
    panic!("shardcast binary not found: run `cargo build -p shardcast` (or `just test`), or set SHARDCAST_BIN");
}

pub struct Server {
    child: Option<Child>,
    log_reader: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
    pub rtmp_addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("shardcast-e2e-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `config` with `media.publish_open = true`, unless it sets publish_open itself.
fn with_open_publishing(config: &str) -> String {
    if config.contains("publish_open") {
        return config.to_string();
    }
    match config.find("[media]\n") {
        Some(at) => {
            let end = at + "[media]\n".len();
            format!("{}publish_open = true\n{}", &config[..end], &config[end..])
        }
        None => format!("{config}\n[media]\npublish_open = true\n"),
    }
}

impl Server {
    /// Starts shardcast with `--io io --shards shards` and the extra TOML `config`.
    pub fn start(io: &str, shards: usize, config: &str) -> Server {
        Self::start_in(TempDir::new("srv"), io, shards, config)
    }

    /// [`Server::start`] in `dir`. Publishing is open (`media.publish_open`) unless the
    /// config says otherwise: the tests publish with ffmpeg by stream name alone.
    pub fn start_in(dir: TempDir, io: &str, shards: usize, config: &str) -> Server {
        Self::start_at(dir, io, shards, config, "127.0.0.1:0")
    }

    /// [`Server::start_in`] with HTTP on `http` (`IP:PORT`; RTMP on the same IP, any port).
    /// An edge (a config with `[edge]`) has no RTMP listener: its `rtmp_addr` is unset.
    pub fn start_at(dir: TempDir, io: &str, shards: usize, config: &str, http: &str) -> Server {
        let config_path = dir.0.join("shardcast.toml");
        std::fs::write(&config_path, with_open_publishing(config)).unwrap();
        let ip = http.rsplit_once(':').map_or("127.0.0.1", |(ip, _)| ip);
        let rtmp = format!("{ip}:0");
        let is_edge = config.contains("[edge]");
        let mut child = Command::new(binary())
            .args([
                "serve", "--http", http, "--rtmp", &rtmp, "--io", io, "--shards",
            ])
            .arg(shards.to_string())
            .arg("--config")
            .arg(&config_path)
            // `TEST_LOG=trace cargo test …` for more.
            .env(
                "SHARDCAST_LOG",
                std::env::var("TEST_LOG").unwrap_or("debug".into()),
            )
            // state.data_dir (relative) lands in the test's directory.
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shardcast");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let log_reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            let (mut http_addr, mut rtmp_addr) = (None::<String>, None::<String>);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("http listening on ").nth(1) {
                    http_addr = Some(rest.trim().to_string());
                }
                if let Some(rest) = line.split("rtmp listening on ").nth(1) {
                    rtmp_addr = Some(rest.trim().to_string());
                }
                if is_edge && line.contains("edge: serving /live/ from origins") {
                    rtmp_addr = Some("0.0.0.0:0".to_string());
                }
                if let (Some(http), Some(rtmp)) = (&http_addr, &rtmp_addr) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send((http.clone(), rtmp.clone()));
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (addr, rtmp_addr) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok((http, rtmp)) => (http.parse().unwrap(), rtmp.parse().unwrap()),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("shardcast did not start: {}", log.lock().unwrap());
            }
        };
        Server {
            child: Some(child),
            log_reader: Some(log_reader),
            addr,
            rtmp_addr,
            log,
            _dir: dir,
        }
    }

    /// Kills the server with SIGKILL (no drain, nothing flushed) and returns its directory,
    /// state included, for [`Server::start_in`].
    pub fn crash(mut self) -> TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        std::mem::replace(&mut self._dir, TempDir(PathBuf::new()))
    }

    /// The address the start log gives for listener `name` ("https", "rtmps", …).
    pub fn listener(&self, name: &str) -> SocketAddr {
        let needle = format!("{name} listening on ");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(rest) = log.split(&needle).nth(1) {
                return rest.lines().next().unwrap().trim().parse().unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {name} listener:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's directory (its config file, its state).
    pub fn dir(&self) -> &std::path::Path {
        &self._dir.0
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// One request on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        let mut stream = self.connect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut stream).expect("response")
    }

    /// One admin API request (an admin token signed with `secret`, the server's
    /// auth.secret); panics unless it answers 200.
    fn admin_request(&self, secret: &str, method: &str, path: &str, body: &str) -> Response {
        let mut stream = self.connect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            admin_token(secret),
            body.len()
        )
        .unwrap();
        let response = read_response(&mut stream).expect("response");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        response
    }

    /// `GET path` on the admin API: the JSON answer.
    pub fn admin_get(&self, secret: &str, path: &str) -> serde_json::Value {
        let response = self.admin_request(secret, "GET", path, "");
        serde_json::from_slice(&response.body).unwrap()
    }

    /// Credits `amount` to `user`'s wallet through the admin API, once per `key`.
    pub fn credit(&self, secret: &str, user: &str, amount: u64, key: &str) {
        let body = format!("{{\"amount\": {amount}, \"idempotency_key\": \"{key}\"}}");
        self.admin_request(
            secret,
            "POST",
            &format!("/api/v1/wallets/{user}/credit"),
            &body,
        );
    }

    /// A metric's process total from /metrics.
    pub fn metric(&self, name: &str) -> u64 {
        let body = String::from_utf8(self.get("/metrics").body).unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("metric {name} not found in:\n{body}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        // SAFETY-free: libc::kill on our own child's pid.
        signal(self.pid(), libc::SIGTERM);
        self.wait(within)
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                // The process is gone, so stderr reaches EOF: collect the last lines.
                if let Some(reader) = self.log_reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "shardcast did not exit in {within:?}: {}",
                    self.log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    /// Waits up to 3 s for the server's log to contain `text` (a line is written after
    /// the answer that the client may already have read); the log at the end.
    pub fn wait_log(&self, text: &str) -> (bool, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let log = self.log();
            if log.contains(text) {
                return (true, log);
            }
            if std::time::Instant::now() >= deadline {
                return (false, log);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The token `shardcast token ARGS` prints; panics with its error when it refuses.
pub fn mint_token(args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("token")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shardcast token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An admin API token signed with `secret` (`shardcast token --admin`).
pub fn admin_token(secret: &str) -> String {
    mint_token(&["--admin", "--user", "e2e-payments", "--secret", secret])
}

pub fn signal(pid: i32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (Content-Length bodies, chunked bodies, or to EOF without either).
/// `None` on a clean EOF before any byte.
pub fn read_response(stream: &mut TcpStream) -> Option<Response> {
    read_response_timed(stream).map(|(r, _)| r)
}

/// [`read_response`], and for a chunked body when each chunk arrived and its size. The chunk
/// framing is checked strictly (hex size, CRLF after the data, `0` CRLF CRLF at the end).
pub fn read_response_timed(
    stream: &mut TcpStream,
) -> Option<(Response, Vec<(std::time::Instant, usize)>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) if head.is_empty() => return None,
            Ok(0) => panic!(
                "EOF inside a response head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Ok(_) => head.push(byte[0]),
            Err(e) if head.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return None
            }
            Err(e) => panic!("read error: {e}"),
        }
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let mut chunks = Vec::new();
    if response.header("transfer-encoding") == Some("chunked") {
        assert!(response.header("content-length").is_none(), "both framings");
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream.read_exact(&mut byte).expect("a chunk size line");
                line.push(byte[0]);
            }
            let size_text = std::str::from_utf8(&line[..line.len() - 2]).unwrap();
            let size = usize::from_str_radix(size_text, 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            let mut data = vec![0; size + 2];
            stream.read_exact(&mut data).expect("chunk data");
            assert_eq!(&data[size..], b"\r\n", "CRLF after chunk data");
            if size == 0 {
                break;
            }
            chunks.push((std::time::Instant::now(), size));
            response.body.extend_from_slice(&data[..size]);
        }
        return Some((response, chunks));
    }
    match response
        .header("content-length")
        .map(|v| v.parse::<usize>().unwrap())
    {
        Some(len) => {
            response.body = vec![0; len];
            stream.read_exact(&mut response.body).expect("body");
        }
        None if matches!(status, 204 | 304) => {}
        None => {
            stream.read_to_end(&mut response.body).unwrap();
        }
    }
    Some((response, chunks))
}

/// True when the peer has closed: a read returns EOF (or a reset) within `within`.
pub fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// An ffmpeg recent enough for HEVC over Enhanced RTMP and `-readrate` (the imageio-ffmpeg
/// wheel's static build; `scripts/setup.sh` installs it).
#[allow(dead_code)]
pub fn modern_ffmpeg() -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "imageio-ffmpeg is missing (scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A self-signed certificate for localhost in `dir` (`{name}.pem`, `{name}.key`), made by
/// `shardcast cert --self-signed`.
pub fn self_signed_cert(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new(binary())
        .args(["cert", "--self-signed", "localhost", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .expect("shardcast cert");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// ffmpeg publishing a lavfi test pattern and a tone as FLV, in real time, to an rtmp:// or
/// rtmps:// URL. Killed on drop.
pub struct Publish {
    child: Child,
}

/// Cheap H.264 without B-frames, a keyframe every 2 s at 30 fps.
pub const H264: [&str; 10] = [
    "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "60", "-pix_fmt", "yuv420p",
];

impl Publish {
    /// Publishes `seconds` of a 640x360 30 fps test pattern and a tone, in real time.
    pub fn start(binary: &str, url: &str, seconds: u32, video: &[&str]) -> Publish {
        Publish::start_sized(binary, url, seconds, "640x360", video)
    }

    /// [`Publish::start`] with a picture of `size` (`WxH`).
    pub fn start_sized(
        binary: &str,
        url: &str,
        seconds: u32,
        size: &str,
        video: &[&str],
    ) -> Publish {
        // ffmpeg stops by itself after `-t`, and gives up on a stuck socket after
        // `-rw_timeout`; no wrapper process, so signals reach ffmpeg itself.
        let mut cmd = Command::new(binary);
        cmd.args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=30")])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &seconds.to_string()])
            .args(video)
            .args([
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-f",
                "flv",
                "-rw_timeout",
                "15000000",
                url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Publish {
            child: cmd.spawn().expect("ffmpeg"),
        }
    }

    /// Waits for ffmpeg; returns (success, stderr).
    pub fn wait(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status.success(), err)
    }

    pub fn signal(&self, sig: i32) {
        signal(self.child.id() as i32, sig);
    }
}

impl Drop for Publish {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the Python `websockets` interop client (`tests/interop/ws_python.py`) against `url`
/// (ws:// or wss://, checked against `ca`) with `hello`; returns what it saw, and the first
/// message it read, decoded from hex.
pub fn python_ws_interop(
    url: &str,
    hello: &[u8],
    ca: Option<&std::path::Path>,
) -> (serde_json::Value, Vec<u8>) {
    let hex: String = hello.iter().map(|b| format!("{b:02x}")).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/ws_python.py");
    let mut command = Command::new("timeout");
    command.args(["30", "python3", script, url, &hex]);
    if let Some(ca) = ca {
        command.arg(ca);
    }
    let out = command.output().expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = seen["first_hex"].as_str().unwrap_or_default();
    let bytes = (0..first.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&first[i..i + 2], 16).unwrap())
        .collect();
    (seen, bytes)
}

/// A tiny webhook server for `calls` requests: it answers 200 to a request naming stream
/// `allow` and 403 to the rest. Returns its URL and every request it got, in order.
pub fn webhook_server(
    allow: &'static str,
    calls: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_hook = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(calls) {
            let mut stream = stream.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let allowed = request.contains(&format!("\"stream\":\"{allow}\""));
            seen_hook.lock().unwrap().push(request);
            let status = if allowed { "200 OK" } else { "403 Forbidden" };
            let _ = std::io::Write::write_all(
                &mut stream,
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
            );
        }
    });
    (hook, seen)
}

/// The segments of a media playlist: (msn, EXTINF text, URI), and whether a discontinuity
/// precedes each.
pub fn segments_of(playlist: &str) -> Vec<(u64, String, String, bool)> {
    let mut msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut out = Vec::new();
    let mut extinf = None;
    let mut discontinuity = false;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            extinf = Some(d.trim_end_matches(',').to_string());
        } else if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if !line.starts_with('#') && !line.is_empty() {
            if let Some(d) = extinf.take() {
                out.push((msn, d, line.to_string(), discontinuity));
                msn += 1;
                discontinuity = false;
            }
        }
    }
    out
}
